//! DHCPv6 through a lease's life with ISC `dhclient -6` in namespaces, seen from the operator's
//! side: Rapid Commit (two messages), the renewal at T1 moving the expiry in `dhcpd leases`,
//! `dhclient -r` ending the binding, the same for a delegated prefix, `dhcpd release` of a v6
//! address (after datagrams that would crash dhcproto alone), and the `dhcpd_v6_*` metrics.
//!
//! Synchronisation is on dhcpd's own log: its "DHCPv6 reply" line (`asked=Renew kind=Reply`) is
//! written after the binding is durable, so the lease listing read after it must show the change.

mod common;

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use e2e::{Host, Lab, Proc};
use nix::sys::signal::Signal;

/// T1 of 2 s: dhclient renews two seconds after binding.
const HOSTS: &str = r#"domain = "lan.test"
[[subnet]]
network = "10.97.0.0/24"
[[subnet.pool]]
range = "10.97.0.100-10.97.0.200"
[[subnet]]
name = "lan6"
network = "fd00:97::/64"
dns = ["fd00:97::1"]
preferred-lifetime = "60s"
valid-lifetime = "120s"
t1 = "2s"
t2 = "50s"
rapid-commit = true
ra = false
[[subnet.pool]]
range = "fd00:97::1000-fd00:97::10ff"
[[subnet.pd-pool]]
prefix = "fd00:9700::/48"
delegated-length = 56
[dhcp]
lease-db = "leases.redb"
metrics = "127.0.0.1:9367"
"#;

const POOL: &str = "fd00:97::1000-fd00:97::10ff";
const LOG: Duration = Duration::from_secs(20);

struct Net {
    lab: Lab,
    srv: Host,
    cl: Host,
    conf: PathBuf,
    state: PathBuf,
}

impl Net {
    fn build(prefix: &str) -> Net {
        let lab = Lab::new(prefix);
        let (srv, cl) = common::v6link::server_and_client(&lab, "10.97.0.1/24", "fd00:97::1/64");
        let conf = lab.dir().join("hosts.toml");
        std::fs::write(&conf, HOSTS).unwrap();
        let state = lab.dir().join("state");
        std::fs::create_dir_all(&state).unwrap();
        Net {
            lab,
            srv,
            cl,
            conf,
            state,
        }
    }

    fn start(&self) -> Proc {
        common::start(&self.srv, &self.conf, &self.state)
    }

    /// `dhcpd leases --json --all`: the v6 row of `ip` (an address or a prefix's first address).
    fn row(&self, ip: Ipv6Addr) -> Option<serde_json::Value> {
        common::leases(&self.srv, &self.conf, &self.state)
            .into_iter()
            .find(|r| r["family"] == "ipv6" && r["ip"].as_str() == Some(&ip.to_string()))
    }

    fn dhcpd(&self, args: &[&str]) -> std::process::Output {
        let mut a = vec![common::BIN];
        a.extend_from_slice(args);
        a.extend([
            "--config",
            self.conf.to_str().unwrap(),
            "--state-dir",
            self.state.to_str().unwrap(),
        ]);
        self.srv.run_unchecked(&a)
    }

    fn metrics(&self) -> String {
        self.srv.enter(|| {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect("127.0.0.1:9367").unwrap();
            s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        })
    }

    /// Waits (bounded) until the metric `name` reads at least `min`; returns the scrape.
    fn wait_metric(&self, name: &str, min: f64) -> String {
        let deadline = Instant::now() + LOG;
        loop {
            let text = self.metrics();
            let v = text
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok());
            if v.is_some_and(|v| v >= min) {
                return text;
            }
            assert!(Instant::now() < deadline, "{name} < {min} in\n{text}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A dhclient left running after it bound (it renews on its own); killed by its PID on drop.
struct Client<'n> {
    net: &'n Net,
    mode: &'static str,
    lf: PathBuf,
    pf: PathBuf,
    cf: PathBuf,
}

impl<'n> Client<'n> {
    /// `dhclient -6 MODE -1`, with `conf` as its configuration; returns once it has bound.
    fn bind(net: &'n Net, name: &str, mode: &'static str, conf: &str) -> Client<'n> {
        let dir = net.lab.dir();
        let c = Client {
            net,
            mode,
            lf: dir.join(format!("{name}.leases")),
            pf: dir.join(format!("{name}.pid")),
            cf: dir.join(format!("{name}.conf")),
        };
        std::fs::write(&c.cf, conf).unwrap();
        let out = c.run(&["-1"]);
        assert!(
            out.status.success(),
            "dhclient {mode}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            c.lease_file()
        );
        c
    }

    fn run(&self, extra: &[&str]) -> std::process::Output {
        let mut a = vec!["dhclient", "-6", self.mode, "-v"];
        a.extend_from_slice(extra);
        a.extend([
            "-sf",
            "/bin/true",
            "-cf",
            self.cf.to_str().unwrap(),
            "-lf",
            self.lf.to_str().unwrap(),
            "-pf",
            self.pf.to_str().unwrap(),
            "eth0",
        ]);
        self.net.cl.run_unchecked(&a)
    }

    fn lease_file(&self) -> String {
        std::fs::read_to_string(&self.lf).unwrap_or_default()
    }

    /// The last `key VALUE {` of the lease file.
    fn last(&self, key: &str) -> String {
        let text = self.lease_file();
        text.lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().trim_end_matches('{').trim().to_owned())
            .unwrap_or_else(|| panic!("no {key} in\n{text}"))
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(&self.pf).ok()?.trim().parse().ok()
    }

    /// `dhclient -6 -r`: stops the running client (by its PID file) and sends a RELEASE.
    fn release(&self) {
        let pid = self.pid();
        let out = self.run(&["-r"]);
        assert!(
            out.status.success(),
            "dhclient -r: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(pid) = pid {
            wait_gone(pid);
        }
    }
}

fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !e2e::procstatus::is_gone(pid as u32) && Instant::now() < deadline {
        std::thread::yield_now();
    }
}

impl Drop for Client<'_> {
    fn drop(&mut self) {
        if let Some(pid) = self.pid()
            && !e2e::procstatus::is_gone(pid as u32)
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            wait_gone(pid);
        }
    }
}

fn opt(code: u16, body: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn expires(row: &serde_json::Value) -> u64 {
    row["expires"].as_u64().unwrap_or_else(|| panic!("{row}"))
}

#[test]
fn dhclient_rapid_commit_then_renew_moves_the_expiry_and_release_ends_the_binding() {
    e2e::require_netns!("dhclient");
    let net = Net::build("dhcp6ops");
    let mut d = net.start();
    let cursor = d.log_cursor();
    // ISC dhclient puts Rapid Commit in its SOLICIT when told to send it, and then accepts (only)
    // a REPLY carrying it.
    let c = Client::bind(&net, "na", "-N", "send dhcp6.rapid-commit;\n");
    let line = d
        .wait_for_log_after(cursor, "asked=Solicit kind=Reply", LOG)
        .expect("a REPLY to the SOLICIT (Rapid Commit)");
    assert!(
        d.wait_for_log_after(cursor, "asked=Request", Duration::ZERO)
            .is_err(),
        "two messages, no REQUEST: {line}"
    );
    let addr: Ipv6Addr = c.last("iaaddr").parse().unwrap();
    let row = net.row(addr).expect("the binding in dhcpd leases");
    assert_eq!(
        (&row["type"], &row["state"], &row["prefix_len"]),
        (&"IA_NA".into(), &"bound".into(), &128.into()),
        "{row}"
    );
    assert!(row["duid"].as_str().is_some_and(|d| d.len() > 8), "{row}");
    let first = expires(&row);

    // T1 is 2 s: dhclient renews on its own; the listing after dhcpd's REPLY shows the new expiry.
    let renewed = d.log_cursor();
    d.wait_for_log_after(renewed, "asked=Renew kind=Reply", LOG)
        .expect("dhclient renews at T1");
    let row = net.row(addr).expect("still bound after the renewal");
    assert!(expires(&row) > first, "{first} -> {row}");

    // The text listing has the v6 table after the v4 one.
    let out = net.dhcpd(&["leases"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{addr} ")))
        .unwrap_or_else(|| panic!("{addr} not in\n{text}"));
    assert!(line.contains("IA_NA") && line.contains("bound"), "{line}");

    // The metrics count the messages and the pool's use.
    let used = format!("dhcpd_v6_pool_used_addresses{{range=\"{POOL}\"}}");
    let m = net.wait_metric(&used, 1.0);
    for name in [
        "dhcpd_v6_requests_total{type=\"solicit\"}",
        "dhcpd_v6_requests_total{type=\"renew\"}",
        "dhcpd_v6_replies_total{type=\"reply\"}",
    ] {
        assert!(
            m.lines().any(|l| l.starts_with(name) && !l.ends_with(" 0")),
            "{name} in\n{m}"
        );
    }

    let released = d.log_cursor();
    c.release();
    d.wait_for_log_after(released, "asked=Release kind=Reply", LOG)
        .expect("dhclient -r sends a RELEASE");
    assert_eq!(net.row(addr), None, "released: gone from dhcpd leases");
    net.wait_metric(
        &format!("dhcpd_v6_pool_free_addresses{{range=\"{POOL}\"}}"),
        256.0,
    );
}

#[test]
fn dhclient_prefix_renews_and_is_released() {
    e2e::require_netns!("dhclient");
    let net = Net::build("dhcp6opp");
    let mut d = net.start();
    let cursor = d.log_cursor();
    // No Rapid Commit asked for: SOLICIT, ADVERTISE, REQUEST, REPLY.
    let c = Client::bind(&net, "pd", "-P", "");
    d.wait_for_log_after(cursor, "asked=Request kind=Reply", LOG)
        .expect("the four-message exchange");
    let prefix: ipnet::Ipv6Net = c.last("iaprefix").parse().unwrap();
    assert_eq!(prefix.prefix_len(), 56);
    let row = net
        .row(prefix.network())
        .expect("the prefix in dhcpd leases");
    assert_eq!(
        (&row["type"], &row["prefix_len"]),
        (&"IA_PD".into(), &56.into()),
        "{row}"
    );
    let first = expires(&row);
    let out = net.dhcpd(&["leases"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{prefix} ")) && l.contains("IA_PD")),
        "{prefix} not in\n{text}"
    );

    let renewed = d.log_cursor();
    d.wait_for_log_after(renewed, "asked=Renew kind=Reply", LOG)
        .expect("dhclient renews the prefix at T1");
    let row = net.row(prefix.network()).expect("still delegated");
    assert!(expires(&row) > first, "{first} -> {row}");
    net.wait_metric(
        "dhcpd_v6_pd_pool_used_prefixes{prefix=\"fd00:9700::/48\",delegated_length=\"56\"}",
        1.0,
    );

    let released = d.log_cursor();
    c.release();
    d.wait_for_log_after(released, "asked=Release kind=Reply", LOG)
        .expect("dhclient -r -P sends a RELEASE");
    assert_eq!(net.row(prefix.network()), None, "released: gone");
}

#[test]
fn dhcpd_release_ends_a_v6_binding_through_the_control_socket() {
    e2e::require_netns!("dhclient");
    let net = Net::build("dhcp6opr");
    let mut d = net.start();
    let c = Client::bind(&net, "na", "-N", "");
    let addr: Ipv6Addr = c.last("iaaddr").parse().unwrap();
    assert!(net.row(addr).is_some());
    // Without a running daemon `dhcpd leases` reads leases6.redb itself.
    d.stop();
    let row = net.row(addr).expect("read from the lease file");
    assert_eq!(row["type"], "IA_NA", "{row}");
    let mut d = net.start();
    // Datagrams dhcproto 0.15 alone would panic on (a 1-octet Status Code) or recurse through
    // until the stack ends (4,000 nested IA_NAs): dropped, and the core goes on (it answers the
    // release below).
    let cursor = d.log_cursor();
    let mut deep = Vec::new();
    for _ in 0..4000 {
        let mut body = vec![0; 12];
        body.extend_from_slice(&deep);
        deep = opt(3, &body);
    }
    let mut short = opt(13, &[0]);
    short.extend_from_slice(&opt(8, &[0, 0]));
    net.cl.enter(|| {
        let s = std::net::UdpSocket::bind("[::]:0").unwrap();
        let idx = nix::net::if_::if_nametoindex("eth0").unwrap();
        let to = std::net::SocketAddrV6::new("ff02::1:2".parse().unwrap(), 547, 0, idx);
        for body in [&deep, &short] {
            let mut m = vec![1, 0, 0, 9];
            m.extend_from_slice(&opt(1, &[0, 3, 0, 1, 2, 0, 0, 0, 0, 9]));
            m.extend_from_slice(body);
            s.send_to(&m, to).unwrap();
        }
    });
    let line = d
        .wait_for_log_after(cursor, "options nested more than", LOG)
        .expect("the nested message dropped");
    assert!(line.contains("malformed DHCPv6 message dropped"), "{line}");
    d.wait_for_log_after(cursor, "too short for its fixed fields", LOG)
        .expect("the short Status Code dropped");
    let out = net.dhcpd(&["release", &addr.to_string()]);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(said.trim(), format!("released {addr}"));
    assert_eq!(net.row(addr), None, "gone from dhcpd leases");
    // Twice: nothing is bound there any more; a prefix nobody holds neither.
    for what in [addr.to_string(), "fd00:9700:0:ff00::/56".into()] {
        let out = net.dhcpd(&["release", &what]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: {err}");
        assert!(err.contains("is not bound"), "{what}: {err}");
    }
    // Not an address at all: refused before asking the daemon.
    let out = net.dhcpd(&["release", "fd00:9700::1/56"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("IPv6 prefix"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(c);
}
