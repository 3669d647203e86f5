//! Writing the resolved host file as TOML, in the layout of `etc/hosts.toml`, with comments.

use std::fmt::Write as _;

use crate::emit_vrrp;
use crate::facts::{OptVal, RawOpt};
use crate::source::Unsupported;

pub(crate) use crate::doc::{
    DBackend, DCheck, DDdns, DDns, DHost, DKey, DOption, DPdPool, DPool, DService, DSubnet, DVrrp,
    Doc,
};

impl DOption {
    pub(crate) fn from_raw(o: &RawOpt) -> DOption {
        let value = match &o.value {
            OptVal::Text(t) => format!("text = {}", q(t)),
            OptVal::Ips(v) => format!(
                "ip = {}",
                list(&v.iter().map(ToString::to_string).collect::<Vec<_>>())
            ),
            OptVal::Hex(h) => format!("hex = {}", q(h)),
            OptVal::U8(n) => format!("u8 = {n}"),
            OptVal::U16(n) => format!("u16 = {n}"),
            OptVal::U32(n) => format!("u32 = {n}"),
            OptVal::Bool(b) => format!("bool = {b}"),
        };
        DOption {
            src: o.src.clone(),
            note: format!("was: option {} ({})", o.name, o.src),
            code: o.code,
            value,
        }
    }
}

fn options(out: &mut String, table: &str, opts: &[DOption]) {
    for op in opts {
        let _ = writeln!(out, "[[{table}.option]]{}", trailing(&op.note));
        kv(out, "code", op.code);
        let _ = writeln!(out, "{}", op.value);
    }
}

/// A TOML basic string with every needed escape.
pub(crate) fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        s.to_owned()
    } else {
        q(s)
    }
}

fn list(v: &[String]) -> String {
    format!(
        "[{}]",
        v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ")
    )
}

/// A duration in the largest whole unit: `12h`, `90s`, `1d`, `500ms`.
pub(crate) fn dur_ms(ms: u64) -> String {
    if ms == 0 || !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    dur(ms / 1000)
}

pub(crate) fn dur(secs: u64) -> String {
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}

fn comments(out: &mut String, notes: &[String]) {
    for n in notes {
        for l in n.lines() {
            let _ = writeln!(out, "# {l}");
        }
    }
}

fn kv(out: &mut String, k: &str, v: impl std::fmt::Display) {
    let _ = writeln!(out, "{k} = {v}");
}

fn kv_opt_str(out: &mut String, k: &str, v: &Option<String>) {
    if let Some(v) = v {
        kv(out, k, q(v));
    }
}

fn kv_list(out: &mut String, k: &str, v: &[String]) {
    if !v.is_empty() {
        kv(out, k, list(v));
    }
}

/// The host file without its "not imported" list.
pub(crate) fn render(d: &Doc) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# Host file imported by `import` (check it with: dhcpd --check -c FILE)."
    );
    comments(&mut o, &d.header);
    o.push('\n');
    comments(&mut o, d.domain_note.as_slice());
    kv(&mut o, "domain", q(&d.domain));
    if let Some((s, note)) = &d.server {
        if !note.is_empty() {
            comments(&mut o, std::slice::from_ref(note));
        }
        kv(&mut o, "server", q(s));
    }
    if let Some(t) = d.ttl {
        kv(&mut o, "ttl", q(&dur(u64::from(t))));
    }

    if !d.subnets.is_empty() {
        o.push_str(
            "\n# ---------------------------------------------------------------- networks\n",
        );
    }
    for s in &d.subnets {
        o.push('\n');
        comments(&mut o, &s.notes);
        o.push_str("[[subnet]]\n");
        kv(&mut o, "network", q(&s.network));
        kv_opt_str(&mut o, "interface", &s.interface);
        kv_list(&mut o, "routers", &s.routers);
        kv_list(&mut o, "dns", &s.dns);
        kv_opt_str(&mut o, "domain", &s.domain);
        kv_list(&mut o, "search", &s.search);
        kv_list(&mut o, "ntp", &s.ntp);
        kv_opt_str(&mut o, "broadcast", &s.broadcast);
        if let Some(m) = s.mtu {
            kv(&mut o, "mtu", m);
        }
        for (k, v) in [("lease", &s.lease), ("max-lease", &s.max_lease)] {
            if let Some((secs, note)) = v {
                let _ = writeln!(o, "{k} = {}{}", q(&dur(*secs)), trailing(note));
            }
        }
        if s.authoritative {
            kv(&mut o, "authoritative", true);
        }
        kv_opt_str(&mut o, "next-server", &s.next_server);
        kv_opt_str(&mut o, "boot-file", &s.boot_file);
        for (k, secs) in &s.lifetimes6 {
            kv(&mut o, k, q(&dur(*secs)));
        }
        if let Some(ra) = s.ra {
            kv(&mut o, "ra", ra);
        }
        options(&mut o, "subnet", &s.options);
        for p in &s.pools {
            o.push('\n');
            let _ = writeln!(o, "[[subnet.pool]]{}", trailing(&p.note));
            if p.end.is_empty() {
                kv(&mut o, "range", q(&p.start));
            } else {
                kv(&mut o, "range", q(&format!("{}-{}", p.start, p.end)));
            }
            if p.bootp {
                kv(&mut o, "bootp", true);
            }
        }
        for p in &s.pd_pools {
            o.push('\n');
            let _ = writeln!(o, "[[subnet.pd-pool]]{}", trailing(&p.note));
            kv(&mut o, "prefix", q(&p.prefix));
            kv(&mut o, "delegated-length", p.delegated_length);
        }
    }

    if !d.hosts.is_empty() {
        o.push_str("\n# ---------------------------------------------------------------- hosts\n");
    }
    for h in &d.hosts {
        o.push('\n');
        comments(&mut o, &h.notes);
        let _ = writeln!(o, "[host.{}]", key(&h.name));
        match h.ips.as_slice() {
            [] => {}
            [one] => kv(&mut o, "ip", q(one)),
            many => kv(&mut o, "ip", list(many)),
        }
        match h.ipv6.as_slice() {
            [] => {}
            [one] => kv(&mut o, "ipv6", q(one)),
            many => kv(&mut o, "ipv6", list(many)),
        }
        kv_opt_str(&mut o, "mac", &h.mac);
        kv_opt_str(&mut o, "duid", &h.duid);
        kv_opt_str(&mut o, "client-id", &h.client_id);
        kv_list(&mut o, "aliases", &h.aliases);
        if let Some(b) = h.dns {
            kv(&mut o, "dns", b);
        }
        kv_opt_str(&mut o, "boot-file", &h.boot_file);
        options(&mut o, &format!("host.{}", key(&h.name)), &h.options);
    }

    if !d.services.is_empty() {
        o.push_str("\n# ---------------------------------------------------------------- balanced services\n");
    }
    for s in &d.services {
        o.push('\n');
        comments(&mut o, &s.notes);
        let _ = writeln!(o, "[service.{}]", key(&s.name));
        match &s.vip6 {
            Some(v6) => kv(&mut o, "vip", format!("[{}, {}]", q(&s.vip), q(v6))),
            None => kv(&mut o, "vip", q(&s.vip)),
        }
        kv(&mut o, "port", s.port);
        if s.udp {
            kv(&mut o, "protocol", q("udp"));
        }
        let bs: Vec<String> = s
            .backends
            .iter()
            .map(|b| {
                if b.port.is_none() && b.weight.is_none() {
                    q(&b.host)
                } else {
                    let mut parts = vec![format!("host = {}", q(&b.host))];
                    if let Some(p) = b.port {
                        parts.push(format!("port = {p}"));
                    }
                    if let Some(w) = b.weight {
                        parts.push(format!("weight = {w}"));
                    }
                    format!("{{ {} }}", parts.join(", "))
                }
            })
            .collect();
        kv(&mut o, "backends", format!("[{}]", bs.join(", ")));
        if let Some(p) = s.backend_port {
            kv(&mut o, "backend-port", p);
        }
        kv_opt_str(&mut o, "scheduler", &s.scheduler);
        if let Some(dp) = s.dataplane {
            kv(&mut o, "dataplane", q(dp));
        }
        if let Some(p) = s.persistence {
            kv(&mut o, "persistence", q(&dur(p)));
        }
        kv_opt_str(&mut o, "sorry", &s.sorry);
        if let Some(qu) = s.quorum {
            kv(&mut o, "quorum", qu);
        }
        kv_opt_str(&mut o, "interface", &s.interface);
        if let Some(b) = s.dns {
            kv(&mut o, "dns", b);
        }
        if let Some(c) = &s.check {
            let mut parts = vec![format!("type = {}", q(c.kind))];
            if let Some(p) = &c.path {
                parts.push(format!("path = {}", q(p)));
            }
            if let Some(e) = &c.expect {
                parts.push(format!("expect = {}", q(e)));
            }
            if let Some(h) = &c.host_header {
                parts.push(format!("host-header = {}", q(h)));
            }
            if let Some(p) = c.port {
                parts.push(format!("port = {p}"));
            }
            if let Some(i) = c.interval_ms {
                parts.push(format!("interval = {}", q(&dur_ms(i))));
            }
            if let Some(t) = c.timeout_ms {
                parts.push(format!("timeout = {}", q(&dur_ms(t))));
            }
            if let Some(f) = c.fall {
                parts.push(format!("fall = {f}"));
            }
            kv(&mut o, "check", format!("{{ {} }}", parts.join(", ")));
        }
    }

    if !d.keys.is_empty() || !d.old_keys.is_empty() {
        o.push_str("\n# ---------------------------------------------------------------- keys\n");
    }
    for k in &d.keys {
        o.push('\n');
        comments(&mut o, std::slice::from_ref(&k.note));
        let _ = writeln!(o, "[key.{}]", key(&k.name));
        kv(&mut o, "algorithm", q(&k.algorithm));
        kv(&mut o, "secret", q(&k.secret));
    }
    for k in &d.old_keys {
        o.push('\n');
        comments(&mut o, std::slice::from_ref(&k.note));
        let _ = writeln!(o, "# [key.{}]", key(&k.name));
        let _ = writeln!(o, "# algorithm = {}", q(&k.algorithm));
        let _ = writeln!(o, "# secret = {}", q(&k.secret));
    }

    let dns = &d.dns;
    let has_dns = !dns.ns.is_empty()
        || dns.contact.is_some()
        || dns.refresh.is_some()
        || dns.retry.is_some()
        || dns.expire.is_some()
        || dns.negative_ttl.is_some()
        || !dns.update_keys.is_empty();
    if d.ping_check.is_some()
        || d.ddns.is_some()
        || has_dns
        || d.vrrp.is_some()
        || !d.floats.is_empty()
    {
        o.push_str(
            "\n# ---------------------------------------------------------------- daemons\n",
        );
    }
    if d.ping_check.is_some() || d.ddns.is_some() {
        o.push_str("\n[dhcp]\n");
        if let Some(p) = d.ping_check {
            kv(&mut o, "ping-check", p);
        }
        if let Some(dd) = &d.ddns {
            comments(&mut o, std::slice::from_ref(&dd.note));
            let mut parts = vec![format!("server = {}", q(&dd.server))];
            if let Some(k) = &dd.key {
                parts.push(format!("key = {}", q(k)));
            }
            if let Some(t) = dd.ttl {
                parts.push(format!("ttl = {}", q(&dur(t))));
            }
            match &dd.disabled {
                None => kv(&mut o, "ddns", format!("{{ {} }}", parts.join(", "))),
                Some(why) => {
                    comments(&mut o, std::slice::from_ref(why));
                    let _ = writeln!(o, "# ddns = {{ {} }}", parts.join(", "));
                }
            }
        }
    }
    if has_dns {
        o.push('\n');
        comments(&mut o, &dns.notes);
        o.push_str("[dns]\n");
        kv_list(&mut o, "ns", &dns.ns);
        kv_opt_str(&mut o, "contact", &dns.contact);
        for (k, v) in [
            ("refresh", dns.refresh),
            ("retry", dns.retry),
            ("expire", dns.expire),
            ("negative-ttl", dns.negative_ttl),
        ] {
            if let Some(v) = v {
                kv(&mut o, k, q(&dur(v)));
            }
        }
        kv_list(&mut o, "update-keys", &dns.update_keys);
    }
    if let Some(v) = &d.vrrp {
        o.push('\n');
        comments(&mut o, &v.notes);
        o.push_str("[lb.vrrp]\n");
        kv(&mut o, "vrid", v.vrid);
        if let Some(p) = v.priority {
            kv(&mut o, "priority", p);
        }
        if !v.preempt {
            kv(&mut o, "preempt", false);
        }
        if let Some(i) = v.interval_ms {
            kv(&mut o, "interval", q(&dur_ms(i)));
        }
        kv_opt_str(&mut o, "interface", &v.interface);
        kv_list(&mut o, "peers", &v.peers);
        kv_opt_str(&mut o, "source", &v.source);
        emit_vrrp::extras(&mut o, &v.extras);
    }
    emit_vrrp::render(&mut o, &d.floats);

    o
}

/// The "not imported" list, as comments to append to the host file.
pub(crate) fn footer(unsupported: &[Unsupported]) -> String {
    let mut o = String::new();
    if !unsupported.is_empty() {
        o.push_str(
            "\n# ---------------------------------------------------------------- not imported\n",
        );
        for u in unsupported {
            let line = format!("{u}");
            for l in line.lines() {
                let _ = writeln!(o, "# {l}");
            }
        }
    }
    o
}

fn trailing(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!("  # {}", note.replace('\n', " "))
    }
}
