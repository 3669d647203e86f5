//! The whole suite on the seed LAN: the three daemons in `main` from one host file, an upstream
//! resolver in `router`, HTTP servers on web1 and web2 that say who they are, and helpers for
//! what the LAN's clients do (dhclient, dig, curl). Shared by the demo and the end-to-end tests.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::addrs::{HOST_IF, MAIN_OUTER_IF, VIP};
use crate::{Host, Proc, Ready, SeedLan, bin_path};

/// The outside world's zone, served by the resolver in `router`.
pub const OUTSIDE_NAME: &str = "www.example.org";
/// What [`OUTSIDE_NAME`] resolves to (a documentation address; nothing is sent to it).
pub const OUTSIDE_ADDR: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running suite on the seed LAN.
#[derive(Debug)]
pub struct Suite {
    /// The LAN.
    pub lan: SeedLan,
    /// The host file the daemons read (a copy in the lab folder, editable by the test).
    pub conf: PathBuf,
    /// dnsd in main.
    pub dnsd: Proc,
    /// lbd in main.
    pub lbd: Proc,
    /// dhcpd in main.
    pub dhcpd: Proc,
    /// The upstream resolver in router.
    pub upstream: Proc,
    /// HTTP servers: web1, web2.
    pub web: Vec<Proc>,
}

/// What dhclient was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lease {
    /// The address.
    pub address: Option<Ipv4Addr>,
    /// Option 3.
    pub routers: String,
    /// Option 6.
    pub dns: String,
    /// Option 15.
    pub domain: String,
    /// The whole lease file.
    pub raw: String,
}

impl Suite {
    /// Builds the LAN and starts everything from `host_file` (copied into the lab), waiting for
    /// each daemon's readiness.
    pub fn start(prefix: &str, host_file: &Path) -> Suite {
        let lan = SeedLan::build(prefix);
        let dir = lan.lab.dir().to_owned();
        let conf = dir.join("hosts.toml");
        std::fs::copy(host_file, &conf).expect("copy host file");

        // main routes and masquerades 192.168.10.0/24 to the outside, as in the seed LAN.
        lan.main.run_stdin(
            &["nft", "-f", "-"],
            format!(
                "table ip seednat {{\n chain post {{\n  type nat hook postrouting priority srcnat; policy accept;\n  \
                 ip saddr 192.168.10.0/24 oifname \"{MAIN_OUTER_IF}\" ip daddr != 192.168.10.0/24 masquerade\n }}\n}}\n"
            )
            .as_bytes(),
        );

        // The outside world's resolver: a dnsd authoritative for example.org in router.
        let up_conf = dir.join("upstream.toml");
        std::fs::write(
            &up_conf,
            format!(
                "domain = \"example.org\"\n[[subnet]]\nnetwork = \"203.0.113.0/24\"\n\
                 [host.www]\nip = \"{OUTSIDE_ADDR}\"\n[dns]\nlisten = [\"192.168.1.1:53\"]\n"
            ),
        )
        .unwrap();
        let upstream = daemon(&lan.router, "dnsd", &up_conf, &dir.join("upstream"));

        let web = [(&lan.web1, "web1"), (&lan.web2, "web2")]
            .into_iter()
            .map(|(h, name)| http_server(h, name, &dir))
            .collect();

        let dnsd = daemon(&lan.main, "dnsd", &conf, &dir.join("dnsd"));
        let lbd = daemon(&lan.main, "lbd", &conf, &dir.join("lbd"));
        let dhcpd = daemon(&lan.main, "dhcpd", &conf, &dir.join("dhcpd"));
        Suite {
            lan,
            conf,
            dnsd,
            lbd,
            dhcpd,
            upstream,
            web,
        }
    }

    /// Kills `which` ("dhcpd", "dnsd" or "lbd") with SIGKILL and starts it again from the same
    /// host file and state, waiting for readiness.
    pub fn kill9_and_restart(&mut self, which: &str) {
        let dir = self.lan.lab.dir().to_owned();
        let slot = match which {
            "dhcpd" => &mut self.dhcpd,
            "dnsd" => &mut self.dnsd,
            "lbd" => &mut self.lbd,
            other => panic!("no daemon {other}"),
        };
        slot.signal(nix::sys::signal::Signal::SIGKILL);
        slot.wait_exit(Duration::from_secs(10))
            .expect("killed daemon exits");
        *slot = daemon(&self.lan.main, which, &self.conf, &dir.join(which));
    }

    /// Runs ISC dhclient on the LAN client, sending `hostname`; returns the lease it got.
    pub fn dhclient(&self, hostname: &str) -> Lease {
        dhclient_on(&self.lan.client, hostname)
    }

    /// `dig +short` from `from` at `server`.
    pub fn dig(&self, from: &Host, server: Ipv4Addr, args: &[&str]) -> String {
        let at = format!("@{server}");
        let mut a = vec!["dig", "+short", "+time=2", "+tries=2", at.as_str()];
        a.extend_from_slice(args);
        let out = from.run_unchecked(&a);
        // dig +short prints failures as ";; ..." lines on stdout: they are not answers.
        let text = String::from_utf8_lossy(&out.stdout);
        let answers: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with(";;") && !l.trim().is_empty())
            .collect();
        answers.join("\n")
    }

    /// Polls `dig +short NAME` until it answers exactly `want` (bounded by `timeout`): for answers
    /// that arrive asynchronously, such as dhcpd's dynamic updates.
    pub fn wait_dig(
        &self,
        from: &Host,
        server: Ipv4Addr,
        name: &str,
        want: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let got = self.dig(from, server, &[name]);
            if got == want {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(format!("{name}: wanted {want:?}, got {got:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One HTTP GET of http://www3.it-ishin.com/ from the outside client, the name resolved
    /// through main's dnsd; returns the body (the backend's name) or the error.
    pub fn fetch_www3(&self) -> Result<String, String> {
        let ip = self.dig(
            &self.lan.outside,
            crate::addrs::MAIN_OUTER,
            &["www3.it-ishin.com", "A"],
        );
        if ip.is_empty() {
            return Err("www3.it-ishin.com did not resolve".into());
        }
        let resolve = format!(
            "www3.it-ishin.com:80:{}",
            ip.lines().next().unwrap_or_default()
        );
        let out = self.lan.outside.run_unchecked(&[
            "curl",
            "-sS",
            "--max-time",
            "3",
            "--resolve",
            &resolve,
            "http://www3.it-ishin.com/",
        ]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    /// Fetches until `pred` holds for `streak` answers in a row, at most `limit`; returns every
    /// answer seen (bounded in count and time).
    pub fn fetch_until(
        &self,
        streak: usize,
        limit: Duration,
        pred: impl Fn(&Result<String, String>) -> bool,
    ) -> (bool, Vec<Result<String, String>>) {
        let start = Instant::now();
        let mut seen = Vec::new();
        let mut run = 0;
        while start.elapsed() < limit && seen.len() < 500 {
            let r = self.fetch_www3();
            run = if pred(&r) { run + 1 } else { 0 };
            seen.push(r);
            if run >= streak {
                return (true, seen);
            }
        }
        (false, seen)
    }
}

/// Runs ISC dhclient on `c`'s eth0 (once, `-1`, no changes to the host: `-sf /bin/true`), sending
/// `hostname`; returns the lease it got.
pub fn dhclient_on(c: &Host, hostname: &str) -> Lease {
    let dir = c.dir().to_owned();
    let conf = dir.join("dhclient.conf");
    std::fs::write(
        &conf,
        format!("send host-name \"{hostname}\";\ntimeout 20;\n"),
    )
    .unwrap();
    let lf = dir.join("dhclient.leases");
    let pf = dir.join("dhclient.pid");
    // An earlier lease in the file makes dhclient ask for that address again (INIT-REBOOT).
    let out = c.run_timeout(
        &[
            "dhclient",
            "-4",
            "-1",
            "-v",
            "-sf",
            "/bin/true",
            "-cf",
            conf.to_str().unwrap(),
            "-lf",
            lf.to_str().unwrap(),
            "-pf",
            pf.to_str().unwrap(),
            HOST_IF,
        ],
        None,
        Duration::from_secs(40),
    );
    // dhclient stays in the background once bound: end it by its PID.
    if let Ok(pid) = std::fs::read_to_string(&pf)
        && let Ok(pid) = pid.trim().parse::<i32>()
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let raw = std::fs::read_to_string(&lf).unwrap_or_default();
    let mut lease = parse_lease(&raw);
    if out.is_err() && lease.address.is_none() {
        lease.raw = format!("dhclient failed: {out:?}");
    }
    lease
}

fn daemon(host: &Host, name: &str, conf: &Path, state: &Path) -> Proc {
    std::fs::create_dir_all(state).unwrap();
    host.process(bin_path(name))
        .args(["--config", conf.to_str().unwrap()])
        .arg("--state-dir")
        .arg(state)
        .arg("--runtime-dir")
        .arg(state)
        .ready(Ready::Notify)
        .timeout(READY_TIMEOUT)
        .spawn()
}

/// busybox httpd on port 80 serving a page that names the host.
pub fn http_server(host: &Host, name: &str, dir: &Path) -> Proc {
    let root = dir.join(format!("www-{name}"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), format!("{name}\n")).unwrap();
    host.process("busybox")
        .args(["httpd", "-f", "-p", "80", "-h"])
        .arg(&root)
        .ready(Ready::Tcp(80))
        .timeout(Duration::from_secs(10))
        .spawn()
}

fn parse_lease(raw: &str) -> Lease {
    let mut l = Lease {
        raw: raw.to_owned(),
        ..Lease::default()
    };
    // dhclient appends a block per lease: the last one is the current one.
    let last = raw.rfind("lease {").map_or(raw, |i| &raw[i..]);
    for line in last.lines().map(str::trim) {
        let line = line.trim_end_matches(';');
        if let Some(a) = line.strip_prefix("fixed-address ") {
            l.address = a.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("option routers ") {
            l.routers = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("option domain-name-servers ") {
            l.dns = v.trim().to_owned();
        } else if let Some(v) = line.strip_prefix("option domain-name ") {
            l.domain = v.trim().trim_matches('"').to_owned();
        }
    }
    l
}

/// The VIP, for callers that print it.
pub fn vip() -> Ipv4Addr {
    VIP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_file_is_parsed() {
        let raw = "lease {\n  interface \"eth0\";\n  fixed-address 192.168.10.200;\n  option subnet-mask 255.255.255.0;\n  option routers 192.168.10.1;\n  option domain-name-servers 192.168.10.1;\n  option domain-name \"it-ishin.com\";\n}\n";
        let l = parse_lease(raw);
        assert_eq!(l.address, Some(Ipv4Addr::new(192, 168, 10, 200)));
        assert_eq!(l.routers, "192.168.10.1");
        assert_eq!(l.dns, "192.168.10.1");
        assert_eq!(l.domain, "it-ishin.com");
    }
}
