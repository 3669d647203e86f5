//! Writing floating addresses as TOML: `[lb.vrrp-instance.NAME]`, `[lb.vrrp-script.NAME]`,
//! `[lb.sync-group.NAME]`, and the tracking and notify keys `[lb.vrrp]` shares with them.

use std::fmt::Write as _;

use crate::source::Src;

/// `track-script`, `track-interface` and `notify-*` of one instance.
#[derive(Debug, Clone, Default)]
pub(crate) struct DExtras {
    /// (name, weight) each.
    pub(crate) scripts: Vec<(String, Option<i64>)>,
    pub(crate) interfaces: Vec<(String, Option<i64>)>,
    /// notify-master, notify-backup, notify-fault: argv lists.
    pub(crate) notify: [Option<Vec<String>>; 3],
}

/// `[lb.vrrp-instance.NAME]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DInstance {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) name: String,
    pub(crate) vrid: u8,
    pub(crate) interface: Option<String>,
    pub(crate) addresses: Vec<String>,
    pub(crate) priority: Option<u8>,
    pub(crate) preempt: bool,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) peers: Vec<String>,
    pub(crate) source: Option<String>,
    pub(crate) extras: DExtras,
}

/// `[lb.vrrp-script.NAME]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DScript {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) name: String,
    pub(crate) command: Vec<String>,
    pub(crate) shell: bool,
    pub(crate) interval_ms: Option<u64>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) weight: Option<i64>,
    pub(crate) rise: Option<u32>,
    pub(crate) fall: Option<u32>,
}

/// `[lb.sync-group.NAME]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DGroup {
    /// Where it came from (not written).
    pub(crate) src: Option<Src>,
    pub(crate) notes: Vec<String>,
    pub(crate) name: String,
    pub(crate) instances: Vec<String>,
}

/// Everything floating, in the order written.
#[derive(Debug, Clone, Default)]
pub(crate) struct DFloats {
    pub(crate) instances: Vec<DInstance>,
    pub(crate) scripts: Vec<DScript>,
    pub(crate) groups: Vec<DGroup>,
}

impl DFloats {
    pub(crate) fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.scripts.is_empty() && self.groups.is_empty()
    }
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

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

/// Milliseconds as a host-file duration: `2s`, `1500ms`.
fn dur_ms(ms: u64) -> String {
    if ms != 0 && ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

fn comments(out: &mut String, notes: &[String]) {
    for n in notes {
        for l in n.lines() {
            let _ = writeln!(out, "# {l}");
        }
    }
}

fn tracks(v: &[(String, Option<i64>)]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|(n, w)| match w {
            None => q(n),
            Some(w) => format!("{{ name = {}, weight = {w} }}", q(n)),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// The tracking and notify keys of an instance (`[lb.vrrp]` or a floating one).
pub(crate) fn extras(o: &mut String, e: &DExtras) {
    if !e.scripts.is_empty() {
        let _ = writeln!(o, "track-script = {}", tracks(&e.scripts));
    }
    if !e.interfaces.is_empty() {
        let _ = writeln!(o, "track-interface = {}", tracks(&e.interfaces));
    }
    for (k, v) in ["notify-master", "notify-backup", "notify-fault"]
        .iter()
        .zip(&e.notify)
    {
        if let Some(argv) = v {
            let _ = writeln!(o, "{k} = {}", list(argv));
        }
    }
}

/// The floating tables, after `[lb.vrrp]`.
pub(crate) fn render(o: &mut String, d: &DFloats) {
    for i in &d.instances {
        o.push('\n');
        comments(o, &i.notes);
        let _ = writeln!(o, "[lb.vrrp-instance.{}]", key(&i.name));
        let _ = writeln!(o, "vrid = {}", i.vrid);
        if let Some(f) = &i.interface {
            let _ = writeln!(o, "interface = {}", q(f));
        }
        let _ = writeln!(o, "addresses = {}", list(&i.addresses));
        if let Some(p) = i.priority {
            let _ = writeln!(o, "priority = {p}");
        }
        if !i.preempt {
            o.push_str("preempt = false\n");
        }
        if let Some(ms) = i.interval_ms {
            let _ = writeln!(o, "interval = {}", q(&dur_ms(ms)));
        }
        if !i.peers.is_empty() {
            let _ = writeln!(o, "peers = {}", list(&i.peers));
        }
        if let Some(s) = &i.source {
            let _ = writeln!(o, "source = {}", q(s));
        }
        extras(o, &i.extras);
    }
    for s in &d.scripts {
        o.push('\n');
        comments(o, &s.notes);
        let _ = writeln!(o, "[lb.vrrp-script.{}]", key(&s.name));
        let _ = writeln!(o, "command = {}", list(&s.command));
        if s.shell {
            o.push_str("shell = true\n");
        }
        for (k, v) in [("interval", s.interval_ms), ("timeout", s.timeout_ms)] {
            if let Some(ms) = v {
                let _ = writeln!(o, "{k} = {}", q(&dur_ms(ms)));
            }
        }
        if let Some(w) = s.weight {
            let _ = writeln!(o, "weight = {w}");
        }
        for (k, v) in [("rise", s.rise), ("fall", s.fall)] {
            if let Some(n) = v {
                let _ = writeln!(o, "{k} = {n}");
            }
        }
    }
    for g in &d.groups {
        o.push('\n');
        comments(o, &g.notes);
        let _ = writeln!(o, "[lb.sync-group.{}]", key(&g.name));
        let _ = writeln!(o, "instances = {}", list(&g.instances));
    }
}
