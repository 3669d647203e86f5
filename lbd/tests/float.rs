//! Floating addresses on a pair of lbd nodes (lb1, lb2), each with an outer (eth0, bridge br0)
//! and an inner (eth1, bridge br1) leg, like the seed LAN's main and main2: the service VIP
//! 192.168.1.120 held by `[lb.vrrp]` and the inner gateway 192.168.10.1 held by
//! `[lb.vrrp-instance.gateway]`, in one sync group. kill -9 of the master moves both addresses;
//! a tracked script that starts failing moves both; notify-master writes a file.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::vrrp::{
    ADVERT_MS, GATEWAY, Legs, VIP, haproxy_like, holds, holds_nothing_for, kill_node,
    kill9_pidfile, lbd_node as lbd, takeover_bound, wait_holds,
};
use e2e::{Host, Lab, Proc};
use nix::sys::signal::Signal;

/// lb1's and lb2's legs: the VIP on eth0, the gateway on eth1.
const LEGS: Legs = Legs {
    outer: "eth0",
    inner: "eth1",
};

struct Pair {
    lab: Lab,
    lb1: Host,
    lb2: Host,
}

/// lb1 .2 and lb2 .3 on both 192.168.1.0/24 (br0) and 192.168.10.0/24 (br1).
fn pair(prefix: &str) -> Pair {
    let lab = Lab::new(prefix);
    let sw = lab.host("sw");
    sw.add_bridge("br0");
    sw.add_bridge("br1");
    let mut hosts = Vec::new();
    for (name, ip) in [("lb1", 2), ("lb2", 3)] {
        let h = lab.host(name);
        for (leg, br, net) in [("eth0", "br0", "192.168.1"), ("eth1", "br1", "192.168.10")] {
            let port = format!("p-{name}-{leg}");
            lab.veth(&sw, &port, &h, leg);
            sw.enslave(&port, br);
            h.add_addr(leg, &format!("{net}.{ip}/24"));
        }
        hosts.push(h);
    }
    for br in ["br0", "br1"] {
        sw.wait_link_up(br, Duration::from_secs(10));
    }
    for h in &hosts {
        h.wait_link_up("eth0", Duration::from_secs(10));
        h.wait_link_up("eth1", Duration::from_secs(10));
    }
    let lb2 = hosts.pop().unwrap();
    let lb1 = hosts.pop().unwrap();
    Pair { lab, lb1, lb2 }
}

/// The file whose presence makes `name`'s tracked script fail.
fn fail_flag(lab: &Lab, name: &str) -> PathBuf {
    lab.dir().join(format!("{name}.fail"))
}

/// The file `name`'s notify commands write the state to.
fn state_file(lab: &Lab, name: &str) -> PathBuf {
    lab.dir().join(format!("{name}.state"))
}

fn conf(lab: &Lab, name: &str, priority: u8) -> PathBuf {
    conf_with(lab, name, priority, "")
}

/// `gateway_extra` goes into `[lb.vrrp-instance.gateway]`.
fn conf_with(lab: &Lab, name: &str, priority: u8, gateway_extra: &str) -> PathBuf {
    let fail = fail_flag(lab, name);
    let check = format!(r#"["/usr/bin/test", "!", "-e", "{}"]"#, fail.display());
    conf_script(lab, name, priority, gateway_extra, &check)
}

/// `check` is the tracked script's `command` (TOML).
fn conf_script(lab: &Lab, name: &str, priority: u8, gateway_extra: &str, check: &str) -> PathBuf {
    let path = lab.dir().join(format!("{name}.toml"));
    let state = state_file(lab, name);
    std::fs::write(
        &path,
        format!(
            r#"domain = "it-ishin.com"
[[subnet]]
network = "192.168.1.0/24"
[[subnet]]
network = "192.168.10.0/24"
[host.web1]
ip = "192.168.10.10"
[service.www3]
vip = "{VIP}"
port = 80
backends = ["web1"]
check = {{ type = "none" }}
[lb]
metrics = "127.0.0.1:9169"
[lb.vrrp]
vrid = 51
priority = {priority}
interval = "{ADVERT_MS}ms"
interface = "eth0"
track-script = ["chk_haproxy"]
notify-master = ["/bin/sh", "-c", "echo \"$LBD_INSTANCE $LBD_STATE\" >> {state}"]
notify-fault = ["/bin/sh", "-c", "echo \"$LBD_INSTANCE $LBD_STATE\" >> {state}"]
[lb.vrrp-script.chk_haproxy]
command = {check}
interval = "100ms"
timeout = "100ms"
[lb.vrrp-instance.gateway]
vrid = 52
interface = "eth1"
priority = {priority}
interval = "{ADVERT_MS}ms"
addresses = ["{GATEWAY}/24"]
{gateway_extra}
notify-master = ["/bin/sh", "-c", "echo \"$LBD_INSTANCE $LBD_STATE\" >> {state}"]
[lb.sync-group.nat]
instances = ["vrrp", "gateway"]
"#,
            state = state.display(),
        ),
    )
    .unwrap();
    path
}

/// `lbd status` (text) on `h`.
fn status_text(h: &Host, conf: &Path) -> String {
    let rt = h.dir().join(format!("run-{}", h.name()));
    let out = h.run(&[
        common::BIN,
        "status",
        "--config",
        conf.to_str().unwrap(),
        "--runtime-dir",
        rt.to_str().unwrap(),
    ]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls until `path` contains `line`; panics after `bound`.
fn wait_line(path: &Path, line: &str, bound: Duration) {
    let t0 = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| l == line) {
            return;
        }
        assert!(
            t0.elapsed() < bound,
            "{}: no line {line:?} within {bound:?}: {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Both nodes up: lb1 (150) holds both addresses, lb2 (100) neither and stays so.
fn both_up(p: &Pair) -> (Proc, Proc) {
    both_up_with(p, "")
}

fn both_up_with(p: &Pair, gateway_extra: &str) -> (Proc, Proc) {
    let mut lb1 = lbd(&p.lb1, &conf_with(&p.lab, "lb1", 150, gateway_extra));
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_holds(LEGS, &p.lb1, true, Duration::from_secs(2));
    let lb2 = lbd(&p.lb2, &conf_with(&p.lab, "lb2", 100, gateway_extra));
    // lb2 hears both instances' adverts: it takes neither for several Master_Down_Intervals.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(ADVERT_MS * 10) {
        assert_eq!(
            holds(LEGS, &p.lb2),
            (false, false),
            "lb2 took an address from a live master"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(holds(LEGS, &p.lb1), (true, true));
    (lb1, lb2)
}

#[test]
fn kill9_of_the_master_moves_the_vip_and_the_gateway_together() {
    e2e::require_netns!("nft");
    let p = pair("lbflt1");
    let (mut lb1, mut lb2) = both_up(&p);
    // notify-master ran on lb1 for both instances.
    let s1 = state_file(&p.lab, "lb1");
    wait_line(&s1, "vrrp MASTER", Duration::from_secs(2));
    wait_line(&s1, "gateway MASTER", Duration::from_secs(2));
    assert!(
        !state_file(&p.lab, "lb2").exists(),
        "lb2 ran notify-master as backup"
    );

    let t0 = Instant::now();
    lb1.signal(Signal::SIGKILL);
    let _ = lb1.wait_exit(Duration::from_secs(2));
    let took = wait_holds(LEGS, &p.lb2, true, takeover_bound(100));
    println!(
        "floating pair, adverts {ADVERT_MS} ms: lb2 holds the VIP and the gateway {took:?} after kill -9 of lb1 ({:?} incl. the kill)",
        t0.elapsed()
    );
    let s2 = state_file(&p.lab, "lb2");
    wait_line(&s2, "vrrp MASTER", Duration::from_secs(2));
    wait_line(&s2, "gateway MASTER", Duration::from_secs(2));

    // lb1 returns: its crashed run's addresses go while it waits as backup, then it preempts
    // both back.
    let mut lb1 = lbd(&p.lb1, &conf(&p.lab, "lb1", 150));
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_holds(LEGS, &p.lb1, true, Duration::from_secs(2));
    wait_holds(LEGS, &p.lb2, false, Duration::from_secs(2));
    assert!(lb1.stop_with(Duration::from_secs(5)).success());
    wait_holds(LEGS, &p.lb2, true, Duration::from_secs(2));
    assert_eq!(
        holds(LEGS, &p.lb1),
        (false, false),
        "clean exit left an address behind"
    );
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
    assert_eq!(
        holds(LEGS, &p.lb2),
        (false, false),
        "clean exit left an address behind"
    );
}

#[test]
fn a_failing_tracked_script_moves_both_addresses_and_back() {
    e2e::require_netns!("nft");
    let p = pair("lbflt2");
    let (mut lb1, mut lb2) = both_up(&p);
    // lb1's "haproxy" dies: its script fails, [lb.vrrp] goes to FAULT and the gateway with it.
    let t0 = Instant::now();
    std::fs::write(fail_flag(&p.lab, "lb1"), "").unwrap();
    let took = wait_holds(LEGS, &p.lb2, true, Duration::from_secs(2));
    println!(
        "tracked script failing on lb1: lb2 holds both addresses {took:?} later ({:?})",
        t0.elapsed()
    );
    wait_holds(LEGS, &p.lb1, false, Duration::from_secs(1));
    lb1.wait_for_log("vrrp-script down", Duration::from_secs(1))
        .unwrap();
    lb1.wait_for_log("entering FAULT", Duration::from_secs(1))
        .unwrap();
    let s1 = state_file(&p.lab, "lb1");
    wait_line(&s1, "vrrp FAULT", Duration::from_secs(2));
    // The metrics (keepalived-exporter's numbering: 2 MASTER, 3 FAULT) and `lbd status` say so.
    let m1 = common::scrape(&p.lb1);
    let m2 = common::scrape(&p.lb2);
    for i in ["vrrp", "gateway"] {
        let series = format!("lbd_vrrp_state{{instance=\"{i}\"}}");
        assert_eq!(common::sample(&m1, &series), Some(3.0), "{m1}");
        assert_eq!(common::sample(&m2, &series), Some(2.0), "{m2}");
    }
    let text = status_text(&p.lb1, &p.lab.dir().join("lb1.toml"));
    assert!(
        text.contains("VRRP instance gateway vrid 52 on eth1 priority 150 (configured 150): FAULT 192.168.10.1"),
        "{text}"
    );
    // It stays out while the script fails.
    let t1 = Instant::now();
    while t1.elapsed() < Duration::from_millis(ADVERT_MS * 8) {
        assert_eq!(
            holds(LEGS, &p.lb1),
            (false, false),
            "lb1 took an address while in FAULT"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The script passes again: lb1 waits as backup, then preempts both back.
    std::fs::remove_file(fail_flag(&p.lab, "lb1")).unwrap();
    wait_holds(LEGS, &p.lb1, true, Duration::from_secs(3));
    wait_holds(LEGS, &p.lb2, false, Duration::from_secs(1));
    assert!(lb1.stop_with(Duration::from_secs(5)).success());
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
}

#[test]
fn a_tracked_interface_going_down_moves_both_addresses() {
    e2e::require_netns!("nft");
    let p = pair("lbflt3");
    for h in [&p.lb1, &p.lb2] {
        // A veth pair: taking the far end down drops uplink's carrier (a pulled cable).
        h.run(&[
            "ip",
            "link",
            "add",
            "uplink",
            "type",
            "veth",
            "peer",
            "name",
            "uplink-far",
        ]);
        h.run(&["ip", "link", "set", "uplink", "up"]);
        h.run(&["ip", "link", "set", "uplink-far", "up"]);
        h.wait_link_up("uplink", Duration::from_secs(10));
    }
    let (mut lb1, mut lb2) = both_up_with(&p, "track-interface = [\"uplink\"]");
    // lb1's uplink loses its link: the gateway instance faults, [lb.vrrp] with it (one group).
    let t0 = Instant::now();
    p.lb1.run(&["ip", "link", "set", "uplink-far", "down"]);
    let took = wait_holds(LEGS, &p.lb2, true, Duration::from_secs(2));
    println!(
        "tracked interface down on lb1: lb2 holds both addresses {took:?} later ({:?})",
        t0.elapsed()
    );
    wait_holds(LEGS, &p.lb1, false, Duration::from_secs(1));
    lb1.wait_for_log("tracked interface down", Duration::from_secs(1))
        .unwrap();
    p.lb1.run(&["ip", "link", "set", "uplink-far", "up"]);
    wait_holds(LEGS, &p.lb1, true, Duration::from_secs(3));
    wait_holds(LEGS, &p.lb2, false, Duration::from_secs(1));
    assert!(lb1.stop_with(Duration::from_secs(5)).success());
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
}

/// keepalived on `h` with the same two instances in a `vrrp_sync_group` (and the pid files to
/// stop it with).
fn keepalived(h: &Host, priority: u8) -> (Proc, PathBuf, PathBuf) {
    let int = ADVERT_MS as f64 / 1000.0;
    let conf = format!(
        "global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\n\
             vrrp_sync_group nat {{\n  group {{\n    VI_1\n    GW\n  }}\n}}\n\
             vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {priority}\n  advert_int {int}\n  virtual_ipaddress {{\n    {VIP}/24\n  }}\n}}\n\
             vrrp_instance GW {{\n  state BACKUP\n  interface eth1\n  virtual_router_id 52\n  priority {priority}\n  advert_int {int}\n  virtual_ipaddress {{\n    {GATEWAY}/24\n  }}\n}}\n",
        name = h.name(),
    );
    common::vrrp::keepalived(h, &conf)
}

#[test]
fn lbd_group_master_keepalived_sync_group_backup_then_kill9() {
    e2e::require_netns!("nft", "keepalived");
    let p = pair("lbfltka1");
    let mut lb1 = lbd(&p.lb1, &conf(&p.lab, "lb1", 150));
    lb1.wait_for_log("entering MASTER", Duration::from_secs(3))
        .unwrap();
    wait_holds(LEGS, &p.lb1, true, Duration::from_secs(2));
    let (mut ka, pid, vpid) = keepalived(&p.lb2, 100);
    holds_nothing_for(LEGS, &p.lb2, Duration::from_millis(ADVERT_MS * 8));
    assert_eq!(holds(LEGS, &p.lb1), (true, true));
    let t0 = Instant::now();
    lb1.signal(Signal::SIGKILL);
    let _ = lb1.wait_exit(Duration::from_secs(2));
    wait_holds(LEGS, &p.lb2, true, takeover_bound(100));
    println!(
        "lbd master -> keepalived sync group, adverts {ADVERT_MS} ms: keepalived holds both addresses {:?} after kill -9",
        t0.elapsed()
    );
    kill9_pidfile(&vpid);
    kill9_pidfile(&pid);
    let _ = ka.wait_exit(Duration::from_secs(2));
}

#[test]
fn keepalived_sync_group_master_lbd_group_backup_then_kill9() {
    e2e::require_netns!("nft", "keepalived");
    let p = pair("lbfltka2");
    let (mut ka, pid, vpid) = keepalived(&p.lb1, 200);
    ka.wait_for_log("Entering MASTER STATE", Duration::from_secs(3))
        .unwrap();
    wait_holds(LEGS, &p.lb1, true, Duration::from_secs(2));
    let mut lb2 = lbd(&p.lb2, &conf(&p.lab, "lb2", 150));
    holds_nothing_for(LEGS, &p.lb2, Duration::from_millis(ADVERT_MS * 8));
    assert!(!lb2.stderr().contains("advert ignored"), "{}", lb2.stderr());
    let t0 = Instant::now();
    kill9_pidfile(&vpid);
    kill9_pidfile(&pid);
    let _ = ka.wait_exit(Duration::from_secs(2));
    wait_holds(LEGS, &p.lb2, true, takeover_bound(100));
    println!(
        "keepalived sync group master -> lbd group backup, adverts {ADVERT_MS} ms: lbd holds both addresses {:?} after kill -9",
        t0.elapsed()
    );
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
    assert_eq!(holds(LEGS, &p.lb2), (false, false));
}

/// One request from `client` to the VIP, bounded at 300 ms.
fn get(client: &Host) -> Result<String, String> {
    let out = client
        .run_timeout(
            &[
                "curl",
                "-sS",
                "--max-time",
                "0.3",
                &format!("http://{VIP}/"),
            ],
            None,
            Duration::from_secs(3),
        )
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

#[test]
fn nat_replies_follow_the_floating_gateway_after_kill9() {
    e2e::require_netns!("nft", "curl", "busybox");
    let p = pair("lbfltnat");
    // web1 on the inner bridge routes everything via the floating gateway; the client is
    // outside. Balanced NAT style: no masquerade, web1 replies to the client's own address.
    let sw = p.lab.host("sw");
    let web1 = p.lab.host("web1");
    p.lab.veth(&sw, "p-web1", &web1, "eth0");
    sw.enslave("p-web1", "br1");
    web1.add_addr("eth0", "192.168.10.10/24");
    let client = p.lab.host("client");
    p.lab.veth(&sw, "p-client", &client, "eth0");
    sw.enslave("p-client", "br0");
    client.add_addr("eth0", "192.168.1.50/24");
    web1.wait_link_up("eth0", Duration::from_secs(10));
    client.wait_link_up("eth0", Duration::from_secs(10));
    web1.run(&["ip", "route", "add", "default", "via", GATEWAY]);
    for h in [&p.lb1, &p.lb2] {
        h.sysctl("net.ipv4.ip_forward", "1");
    }
    let _www = common::web(&web1, "web1");
    let (mut lb1, mut lb2) = both_up(&p);
    // Through lb1: the request is DNATed to web1, whose reply goes via 192.168.10.1 = lb1.
    let t0 = Instant::now();
    while get(&client).as_deref() != Ok("web1") {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no answer through lb1: {:?}",
            get(&client)
        );
    }
    // lb1 dies as a machine does: lbd killed and its links gone (a killed lbd alone leaves its
    // addresses and nftables table in lb1's kernel, which would go on forwarding).
    let t0 = Instant::now();
    kill_node(LEGS, &p.lb1, &mut lb1);
    // The client keeps asking (each try bounded at 300 ms) until lb2 carries it: the reply
    // can only come back if the gateway moved with the VIP.
    let mut tries = 0;
    loop {
        tries += 1;
        if get(&client).as_deref() == Ok("web1") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "no answer through lb2 {:?} after kill -9 ({tries} tries; lb2 holds {:?})",
            t0.elapsed(),
            holds(LEGS, &p.lb2)
        );
    }
    let took = t0.elapsed();
    println!(
        "NAT pair, adverts {ADVERT_MS} ms: the client is answered through lb2 {took:?} after lb1 died ({tries} tries)"
    );
    assert_eq!(holds(LEGS, &p.lb2), (true, true));
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert!(lb2.stop_with(Duration::from_secs(5)).success());
}

#[test]
fn stopping_the_masters_tracked_process_moves_both_addresses() {
    e2e::require_netns!("nft", "pgrep");
    let p = pair("lbflt4");
    let tag = p
        .lab
        .dir()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let marker = |n: &str| format!("haproxy-like-{tag}-{n}");
    let mut procs = Vec::new();
    let mut lbds = Vec::new();
    for (h, n, prio) in [(&p.lb1, "lb1", 150), (&p.lb2, "lb2", 100)] {
        procs.push(haproxy_like(h, &marker(n)));
        let check = format!(r#"["/usr/bin/pgrep", "-f", "{}"]"#, marker(n));
        let c = conf_script(&p.lab, n, prio, "", &check);
        let mut l = lbd(h, &c);
        if n == "lb1" {
            l.wait_for_log("entering MASTER", Duration::from_secs(3))
                .unwrap();
            wait_holds(LEGS, &p.lb1, true, Duration::from_secs(2));
        }
        lbds.push(l);
    }
    holds_nothing_for(LEGS, &p.lb2, Duration::from_millis(ADVERT_MS * 8));
    assert_eq!(holds(LEGS, &p.lb1), (true, true));
    // lb1's "HAProxy" dies: pgrep fails, both instances go to FAULT, lb2 takes both.
    let t0 = Instant::now();
    procs[0].signal(Signal::SIGKILL);
    let _ = procs[0].wait_exit(Duration::from_secs(2));
    let took = wait_holds(LEGS, &p.lb2, true, Duration::from_secs(2));
    println!(
        "HAProxy-like process killed on lb1: lb2 holds both addresses {took:?} later ({:?})",
        t0.elapsed()
    );
    wait_holds(LEGS, &p.lb1, false, Duration::from_secs(1));
    // It is back: lb1 preempts both again.
    procs[0] = haproxy_like(&p.lb1, &marker("lb1"));
    wait_holds(LEGS, &p.lb1, true, Duration::from_secs(3));
    wait_holds(LEGS, &p.lb2, false, Duration::from_secs(1));
    for mut l in lbds {
        assert!(l.stop_with(Duration::from_secs(5)).success());
    }
    for mut pr in procs {
        pr.signal(Signal::SIGKILL);
        let _ = pr.wait_exit(Duration::from_secs(2));
    }
}
