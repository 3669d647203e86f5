//! The host file's own validator judges every import.
//!
//! The importer does not restate the host file's rules. It renders its document, runs
//! [`HostTable::from_toml`] on it and turns each problem back into a "not imported" entry at the
//! input's file and line, leaving the offending value out: the list entry the problem points at,
//! else the key, else (for a key its table cannot be without, or a table header) the whole table
//! with the tables nested in it. Then it validates again, because leaving a host out can leave a
//! service's backend naming nothing, which the next round reports. So each rule lives in
//! `hostfile` only; what `resolve` still decides is what the validator cannot: which name, which
//! host two records share, where a pool is split around a reservation, the nearest allowed value.

use hostfile::{ConfigError, HostTable, Problem};

use crate::emit::Doc;
use crate::source::{Src, Unsupported, abridge};

/// Rounds of validate-and-leave-out before giving up (each round removes at least one line).
const MAX_ROUNDS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Top,
    Subnet,
    Pool,
    Option,
    Host,
    Service,
    Key,
    Dhcp,
    Dns,
    Vrrp,
    Float,
    Script,
    Group,
}

impl Kind {
    /// Keys a table of this kind cannot be without: a problem there leaves the table out.
    fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Top => &["domain"],
            Kind::Subnet => &["network"],
            Kind::Pool => &["range"],
            Kind::Option => &["code", "text", "ip", "hex", "u8", "u16", "u32", "bool"],
            Kind::Host => &["ip"],
            Kind::Service => &["vip", "port", "backends"],
            Kind::Key => &["algorithm", "secret"],
            Kind::Dhcp | Kind::Dns => &[],
            Kind::Vrrp => &["vrid"],
            Kind::Float => &["vrid", "interface", "addresses"],
            Kind::Script => &["command"],
            Kind::Group => &["instances"],
        }
    }
}

/// One table of the rendered file.
struct Table {
    kind: Kind,
    /// The table it is nested in (`[[subnet.pool]]` in its `[[subnet]]`).
    parent: Option<usize>,
    /// Where in the inputs it came from.
    src: Option<Src>,
    /// Where single keys came from, when that is not `src`.
    key_srcs: std::collections::BTreeMap<&'static str, Src>,
}

struct Line {
    text: String,
    table: usize,
}

/// Validates the rendered `doc`; returns the host file that passes (what failed left out) and
/// one "not imported" entry per problem the validator found.
pub(crate) fn verify(doc: &Doc, body: &str) -> (String, Vec<Unsupported>) {
    let (mut lines, tables) = tag(doc, body);
    let mut refused = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let text = join(&lines);
        let problems = match HostTable::from_toml(&text) {
            Ok(_) => break,
            Err(ConfigError::Invalid { problems, .. }) => problems,
            Err(ConfigError::Io { .. }) => break,
        };
        let before = join(&lines);
        // Later lines first, so that earlier line numbers stay valid while lines go.
        let mut problems = problems;
        problems.sort_by_key(|p| std::cmp::Reverse((p.line, p.column)));
        let mut done: Vec<usize> = Vec::new();
        for p in &problems {
            let Some(i) = p.line.checked_sub(1).filter(|i| *i < lines.len()) else {
                continue;
            };
            if done.contains(&i) {
                continue;
            }
            done.push(i);
            let dropped_table = match leave_out(&mut lines, &tables, i, p) {
                Some((u, whole)) => {
                    refused.push(u);
                    whole
                }
                None => false,
            };
            if dropped_table {
                break; // earlier lines moved: validate again
            }
        }
        if join(&lines) == before {
            break; // nothing more can be left out
        }
    }
    (join(&lines), refused)
}

fn join(lines: &[Line]) -> String {
    let mut s = String::new();
    for l in lines {
        s.push_str(&l.text);
        s.push('\n');
    }
    s
}

/// Leaves out what problem `p` at line `i` is about: the entry, and whether a whole table went;
/// `None` when nothing can go.
fn leave_out(
    lines: &mut Vec<Line>,
    tables: &[Table],
    i: usize,
    p: &Problem,
) -> Option<(Unsupported, bool)> {
    let t = lines[i].table;
    let table = &tables[t];
    let text = lines[i].text.clone();
    let trimmed = text.trim_start();
    let key = (!trimmed.starts_with('['))
        .then(|| trimmed.split_once(" = ").map(|(k, _)| k.trim().to_owned()))
        .flatten();
    let src = key
        .as_deref()
        .and_then(|k| table.key_srcs.get(k))
        .or(table.src.as_ref())
        .cloned()
        .unwrap_or_else(|| Src::new(&std::sync::Arc::from(std::path::Path::new("-")), 0));
    let reason = format!(
        "the host file refuses it: {} ({})",
        p.message,
        p.fix.trim_end_matches('.')
    );
    if trimmed.starts_with('#') || trimmed.is_empty() {
        return None;
    }
    if let Some(k) = &key {
        if let Some(shorter) = without_entry(&text, p.column) {
            let construct = format!("{k}: {}", entry_at(&text, p.column).unwrap_or_default());
            lines[i].text = shorter;
            return Some((src.unsupported(abridge(&construct), reason), false));
        }
        if !table.kind.required().contains(&k.as_str()) {
            lines.remove(i);
            return Some((src.unsupported(abridge(&text), reason), false));
        }
    }
    if table.kind == Kind::Top {
        return None;
    }
    let header = lines
        .iter()
        .find(|l| l.table == t && l.text.starts_with('['))
        .map_or_else(|| text.clone(), |l| header_of(&l.text).to_owned());
    let gone = |x: usize| x == t || tables[x].parent == Some(t);
    lines.retain(|l| !gone(l.table));
    Some((
        src.unsupported(abridge(&format!("{header} ({text})")), reason),
        true,
    ))
}

/// A table header without its trailing comment.
fn header_of(line: &str) -> &str {
    line.split("  #").next().unwrap_or(line).trim()
}

/// The entries of an inline array value: (start, end) in characters, `"..."` or `{ ... }` each.
fn entries(line: &str) -> Vec<(usize, usize)> {
    let chars: Vec<char> = line.chars().collect();
    let Some(eq) = line.find(" = [").map(|b| line[..b].chars().count() + 3) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut i = eq + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => {
                let s = i;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    i += 1;
                }
                out.push((s, i + 1));
            }
            '{' => {
                let s = i;
                let mut in_str = false;
                while i < chars.len() && (in_str || chars[i] != '}') {
                    if chars[i] == '"' {
                        in_str = !in_str;
                    }
                    i += 1;
                }
                out.push((s, i + 1));
            }
            ']' => break,
            _ => {}
        }
        i += 1;
    }
    out
}

fn entry_index(line: &str, column: usize) -> Option<usize> {
    let c = column.checked_sub(1)?;
    entries(line)
        .iter()
        .position(|(s, e)| (*s..*e).contains(&c))
}

fn entry_at(line: &str, column: usize) -> Option<String> {
    let (s, e) = entries(line)[entry_index(line, column)?];
    Some(line.chars().skip(s).take(e - s).collect())
}

/// The line without the array entry at `column`, when there is one and others stay.
fn without_entry(line: &str, column: usize) -> Option<String> {
    let all = entries(line);
    if all.len() < 2 {
        return None;
    }
    let k = entry_index(line, column)?;
    let chars: Vec<char> = line.chars().collect();
    let text = |(s, e): (usize, usize)| chars[s..e].iter().collect::<String>();
    let kept: Vec<String> = all
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != k)
        .map(|(_, r)| text(*r))
        .collect();
    let start: String = chars[..=all[0].0 - 1].iter().collect();
    let end: String = chars[all[all.len() - 1].1..].iter().collect();
    Some(format!("{start}{}{end}", kept.join(", ")))
}

/// Splits the rendered file into lines, each tagged with its table; comments just above a
/// table header belong to that table.
fn tag(doc: &Doc, body: &str) -> (Vec<Line>, Vec<Table>) {
    let mut tables = vec![Table {
        kind: Kind::Top,
        parent: None,
        src: None,
        key_srcs: Default::default(),
    }];
    let mut lines: Vec<Line> = Vec::new();
    let (mut ns, mut nh, mut nv, mut nk) = (0usize, 0usize, 0, 0);
    // Pools and options of the subnet or host last seen, numbered as they come.
    let (mut np, mut no) = (0, 0);
    let mut last_subnet = None;
    let mut last_host = None;
    for l in body.lines() {
        let h = header_of(l);
        let subnet = ns.checked_sub(1).and_then(|i| doc.subnets.get(i));
        let mut key_srcs: std::collections::BTreeMap<&'static str, Src> = Default::default();
        let new = if h == "[[subnet]]" {
            let src = doc.subnets.get(ns).and_then(|s| s.src.clone());
            if let Some(s) = doc.subnets.get(ns) {
                key_srcs.clone_from(&s.key_srcs);
            }
            (ns, np, no) = (ns + 1, 0, 0);
            last_subnet = Some(tables.len());
            Some((Kind::Subnet, None, src))
        } else if h == "[[subnet.pool]]" {
            let src = subnet.and_then(|s| s.pools.get(np)).map(|p| p.src.clone());
            np += 1;
            Some((Kind::Pool, last_subnet, src))
        } else if h == "[[subnet.option]]" {
            let src = subnet
                .and_then(|s| s.options.get(no))
                .map(|o| o.src.clone());
            no += 1;
            Some((Kind::Option, last_subnet, src))
        } else if h.starts_with("[[host.") {
            let host = nh.checked_sub(1).and_then(|i| doc.hosts.get(i));
            let src = host.and_then(|x| x.options.get(no)).map(|o| o.src.clone());
            no += 1;
            Some((Kind::Option, last_host, src))
        } else if h.starts_with("[host.") {
            let src = doc.hosts.get(nh).and_then(|x| x.src.clone());
            (nh, no) = (nh + 1, 0);
            last_host = Some(tables.len());
            Some((Kind::Host, None, src))
        } else if h.starts_with("[service.") {
            let src = doc.services.get(nv).and_then(|x| x.src.clone());
            nv += 1;
            Some((Kind::Service, None, src))
        } else if h.starts_with("[key.") {
            let src = doc.keys.get(nk).map(|x| x.src.clone());
            nk += 1;
            Some((Kind::Key, None, src))
        } else if h == "[dhcp]" {
            Some((Kind::Dhcp, None, doc.ddns.as_ref().map(|d| d.src.clone())))
        } else if h == "[dns]" {
            Some((Kind::Dns, None, doc.dns.src.clone()))
        } else if h == "[lb.vrrp]" {
            Some((
                Kind::Vrrp,
                None,
                doc.vrrp.as_ref().and_then(|v| v.src.clone()),
            ))
        } else {
            float_table(doc, h)
        };
        if let Some((kind, parent, src)) = new {
            let t = tables.len();
            tables.push(Table {
                kind,
                parent,
                src,
                key_srcs,
            });
            for prev in lines.iter_mut().rev() {
                if !prev.text.starts_with('#') {
                    break;
                }
                prev.table = t;
            }
        }
        lines.push(Line {
            text: l.to_owned(),
            table: tables.len() - 1,
        });
    }
    (lines, tables)
}

/// `[lb.vrrp-instance.N]`, `[lb.vrrp-script.N]`, `[lb.sync-group.N]`: kind and source.
fn float_table(doc: &Doc, h: &str) -> Option<(Kind, Option<usize>, Option<Src>)> {
    let f = &doc.floats;
    let name = |p: &str| {
        h.strip_prefix(p)
            .and_then(|r| r.strip_suffix(']'))
            .map(|n| n.trim_matches('"').to_owned())
    };
    if let Some(n) = name("[lb.vrrp-instance.") {
        let src = f.instances.iter().find(|i| i.name == n);
        return Some((Kind::Float, None, src.and_then(|i| i.src.clone())));
    }
    if let Some(n) = name("[lb.vrrp-script.") {
        let src = f.scripts.iter().find(|i| i.name == n);
        return Some((Kind::Script, None, src.and_then(|i| i.src.clone())));
    }
    let n = name("[lb.sync-group.")?;
    let src = f.groups.iter().find(|i| i.name == n);
    Some((Kind::Group, None, src.and_then(|i| i.src.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_entry_of_a_list_goes() {
        let l = r#"search = ["ok.com", "bad..x", "b.org"]"#;
        let col = l.find("bad").unwrap(); // 1-based column of the opening quote
        assert_eq!(
            without_entry(l, col).as_deref(),
            Some(r#"search = ["ok.com", "b.org"]"#)
        );
        assert_eq!(entry_at(l, col).as_deref(), Some("\"bad..x\""));
        assert_eq!(without_entry(r#"routers = ["10.9.9.9"]"#, 12), None);
        let b = r#"backends = ["a", { host = "b", port = 81 }]"#;
        let col = b.find('{').unwrap() + 1;
        assert_eq!(
            without_entry(b, col).as_deref(),
            Some(r#"backends = ["a"]"#)
        );
    }
}
