//! RFC 1035 master files as BIND reads them: `$ORIGIN`, `$TTL`, `$INCLUDE`, `@` and relative
//! names, an omitted owner meaning the previous one, `( ... )` continuing a record over lines,
//! `;` comments, quoted strings and `\` escapes, TTL and class in either order, BIND's TTL units.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::Arc;

use crate::facts::{Raw, RawAddr, RawLink, RawSoa, reverse_net};
use crate::source::{ImportError, ReadFn, Src, abridge, include_path, read_include};

#[derive(Debug, Clone)]
struct Word {
    text: String,
    quoted: bool,
}

/// One logical record: the tokens of a line (joined across parentheses).
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    blank_owner: bool,
    words: Vec<Word>,
}

fn lex(text: &str, file: &Arc<Path>) -> Result<Vec<Entry>, ImportError> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut cur: Option<Entry> = None;
    let mut paren: Option<usize> = None; // line of the open parenthesis
    let mut at_line_start = true;
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        if at_line_start && paren.is_none() {
            at_line_start = false;
            if cur.is_none() {
                cur = Some(Entry {
                    line,
                    blank_owner: c == ' ' || c == '\t',
                    words: Vec::new(),
                });
            }
        }
        match c {
            '\n' => {
                line += 1;
                at_line_start = true;
                if paren.is_none()
                    && let Some(e) = cur.take()
                    && !e.words.is_empty()
                {
                    out.push(e);
                }
            }
            ';' => {
                while it.peek().is_some_and(|c| *c != '\n') {
                    it.next();
                }
            }
            '(' => {
                if paren.is_some() {
                    return Err(
                        Src::new(file, line).error("nested `(`: close the first one with `)`")
                    );
                }
                paren = Some(line);
            }
            ')' => {
                if paren.take().is_none() {
                    return Err(Src::new(file, line).error("`)` without a matching `(`"));
                }
            }
            '"' => {
                let start = line;
                let mut s = String::new();
                loop {
                    match it.next() {
                        None | Some('\n') => {
                            return Err(Src::new(file, start)
                                .error("quoted string opened on this line is never closed"));
                        }
                        Some('"') => break,
                        Some('\\') => {
                            s.push('\\');
                            match it.next() {
                                Some('\n') | None => {
                                    return Err(Src::new(file, start).error(
                                        "quoted string opened on this line is never closed",
                                    ));
                                }
                                Some(c) => s.push(c),
                            }
                        }
                        Some(c) => s.push(c),
                    }
                }
                if let Some(e) = cur.as_mut() {
                    e.words.push(Word {
                        text: s,
                        quoted: true,
                    });
                }
            }
            c if c.is_whitespace() => {}
            c => {
                let mut w = String::from(c);
                if c == '\\'
                    && let Some(n) = it.next()
                {
                    if n == '\n' {
                        return Err(Src::new(file, line).error("`\\` at the end of a line"));
                    }
                    w.push(n);
                }
                while let Some(&n) = it.peek() {
                    if n.is_whitespace() || "();\"".contains(n) {
                        break;
                    }
                    it.next();
                    w.push(n);
                    if n == '\\'
                        && let Some(&e) = it.peek()
                        && e != '\n'
                    {
                        it.next();
                        w.push(e);
                    }
                }
                if let Some(e) = cur.as_mut() {
                    e.words.push(Word {
                        text: w,
                        quoted: false,
                    });
                }
            }
        }
    }
    if let Some(l) = paren {
        return Err(
            Src::new(file, l).error("`(` opened on this line is never closed (missing `)`)")
        );
    }
    if let Some(e) = cur.take()
        && !e.words.is_empty()
    {
        out.push(e);
    }
    Ok(out)
}

/// BIND TTL syntax: `3600`, `1h`, `1h30m`, `2W` (weeks, days, hours, minutes, seconds).
pub(crate) fn parse_ttl(s: &str) -> Option<u32> {
    if s.is_empty() || !s.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    if let Ok(n) = s.parse::<u32>() {
        return Some(n);
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
        } else {
            let mult = match c.to_ascii_lowercase() {
                'w' => 604_800,
                'd' => 86_400,
                'h' => 3_600,
                'm' => 60,
                's' => 1,
                _ => return None,
            };
            total = total.checked_add(num.take()?.checked_mul(mult)?)?;
        }
    }
    if let Some(n) = num {
        total = total.checked_add(n)?;
    }
    u32::try_from(total).ok()
}

const CLASSES: [&str; 5] = ["IN", "CH", "HS", "CS", "ANY"];

struct Zone<'a> {
    raw: &'a mut Raw,
    read: ReadFn<'a>,
    default_ttl: Option<u32>,
    seen_soa: bool,
}

pub(crate) fn import(
    text: &str,
    origin: Option<&str>,
    file: &Path,
    read: ReadFn<'_>,
    raw: &mut Raw,
) -> Result<(), ImportError> {
    let file: Arc<Path> = Arc::from(file);
    let mut origin = origin.map(absolute_origin);
    let mut guessed = None;
    if origin.is_none()
        && !text
            .lines()
            .any(|l| l.trim_start().to_ascii_uppercase().starts_with("$ORIGIN"))
    {
        guessed = origin_from_file_name(&file);
        origin.clone_from(&guessed);
    }
    let mut z = Zone {
        raw,
        read,
        default_ttl: None,
        seen_soa: false,
    };
    let mut last_owner = None;
    z.file(text, &file, origin, &mut last_owner, &mut Vec::new())?;
    if let Some(g) = guessed {
        z.raw.unsupported.push(Src::new(&file, 1).unsupported(
            format!("(origin {g})"),
            "the file sets no $ORIGIN: the origin was guessed from the file name; give the zone name if it is wrong",
        ));
    }
    Ok(())
}

fn absolute_origin(o: &str) -> String {
    let o = o.trim().to_ascii_lowercase();
    if o.ends_with('.') { o } else { format!("{o}.") }
}

/// `db.example.com` -> `example.com.`, `example.com.zone` -> `example.com.`.
fn origin_from_file_name(p: &Path) -> Option<String> {
    let n = p.file_name()?.to_string_lossy().to_ascii_lowercase();
    let n = n
        .strip_prefix("db.")
        .or_else(|| n.strip_suffix(".zone"))
        .or_else(|| n.strip_suffix(".db"))?;
    // BIND's habit for reverse zones: db.192.168.10 holds 10.168.192.in-addr.arpa.
    let octets: Vec<&str> = n.split('.').collect();
    if (1..=3).contains(&octets.len()) && octets.iter().all(|o| o.parse::<u8>().is_ok()) {
        let rev: Vec<&str> = octets.into_iter().rev().collect();
        return Some(absolute_origin(&format!("{}.in-addr.arpa", rev.join("."))));
    }
    (n.contains('.') && hostfile::is_dns_name(n)).then(|| absolute_origin(n))
}

impl Zone<'_> {
    fn file(
        &mut self,
        text: &str,
        file: &Arc<Path>,
        mut origin: Option<String>,
        last_owner: &mut Option<String>,
        stack: &mut Vec<Arc<Path>>,
    ) -> Result<(), ImportError> {
        for e in lex(text, file)? {
            let src = Src::new(file, e.line);
            let first = &e.words[0];
            if !e.blank_owner && !first.quoted && first.text.starts_with('$') {
                let arg = e.words.get(1).map(|w| w.text.clone());
                match first.text.to_ascii_uppercase().as_str() {
                    "$ORIGIN" => {
                        let a = arg.ok_or_else(|| src.error("$ORIGIN needs a domain name"))?;
                        origin = Some(name(&src, &a, origin.as_deref())?);
                    }
                    "$TTL" => {
                        let a = arg.ok_or_else(|| src.error("$TTL needs a value"))?;
                        let t = parse_ttl(&a)
                            .ok_or_else(|| src.error(format!("$TTL `{a}` is not a TTL")))?;
                        self.default_ttl = Some(t);
                        if self.raw.ttl.is_none() {
                            self.raw.ttl = Some((t, src.clone()));
                        }
                    }
                    "$INCLUDE" => {
                        let a = arg.ok_or_else(|| src.error("$INCLUDE needs a file name"))?;
                        let inc_origin = match e.words.get(2) {
                            Some(o) => Some(name(&src, &o.text, origin.as_deref())?),
                            None => origin.clone(),
                        };
                        let path = include_path(file, &a);
                        let text = read_include(self.read, stack, &src, &path)?;
                        stack.push(file.clone());
                        let mut owner = last_owner.clone();
                        self.file(
                            &text,
                            &Arc::from(path.as_path()),
                            inc_origin,
                            &mut owner,
                            stack,
                        )?;
                        stack.pop();
                    }
                    "$GENERATE" => self.raw.unsupported.push(src.unsupported(
                        abridge(&words_text(&e.words)),
                        "$GENERATE is not expanded: list the hosts it generates in the host file",
                    )),
                    d => return Err(src.error(format!("unknown directive `{d}`"))),
                }
                continue;
            }
            self.record(&e, &src, origin.as_deref(), last_owner)?;
        }
        Ok(())
    }

    fn record(
        &mut self,
        e: &Entry,
        src: &Src,
        origin: Option<&str>,
        last_owner: &mut Option<String>,
    ) -> Result<(), ImportError> {
        let mut w = e.words.iter().peekable();
        let owner = if e.blank_owner {
            last_owner
                .clone()
                .ok_or_else(|| src.error("record without an owner name and no previous record"))?
        } else {
            let o = w.next().expect("entries are never empty");
            name(src, &o.text, origin)?
        };
        *last_owner = Some(owner.clone());
        let mut ttl = None;
        let mut class = None;
        let mut rtype = None;
        for _ in 0..3 {
            let Some(t) = w.next() else { break };
            let up = t.text.to_ascii_uppercase();
            if ttl.is_none()
                && !t.quoted
                && let Some(v) = parse_ttl(&t.text)
            {
                ttl = Some(v);
            } else if class.is_none() && CLASSES.contains(&up.as_str()) {
                class = Some(up);
            } else {
                rtype = Some(up);
                break;
            }
        }
        let rtype = rtype.ok_or_else(|| src.error(format!("record for `{owner}` has no type")))?;
        let rdata: Vec<&Word> = w.collect();
        let construct = || {
            abridge(&format!(
                "{owner} {rtype} {}",
                rdata.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
            ))
        };
        if let Some(c) = &class
            && c != "IN"
        {
            self.raw
                .unsupported
                .push(src.unsupported(construct(), format!("class {c} records are not served")));
            return Ok(());
        }
        let arg = |i: usize| -> Result<String, ImportError> {
            rdata.get(i).map(|w| w.text.clone()).ok_or_else(|| {
                src.error(format!("{rtype} record for `{owner}` is missing its data"))
            })
        };
        let ttl_or_default = ttl.or(self.default_ttl);
        match rtype.as_str() {
            "A" => {
                let a = arg(0)?;
                let ip: Ipv4Addr = a
                    .parse()
                    .map_err(|_| src.error(format!("A record for `{owner}`: `{a}` is not an IPv4 address")))?;
                self.raw.addrs.push(RawAddr {
                    name: owner,
                    ip: IpAddr::V4(ip),
                    ttl: ttl_or_default,
                    src: src.clone(),
                });
            }
            "AAAA" => {
                let a = arg(0)?;
                let ip: Ipv6Addr = a
                    .parse()
                    .map_err(|_| src.error(format!("AAAA record for `{owner}`: `{a}` is not an IPv6 address")))?;
                self.raw.addrs.push(RawAddr {
                    name: owner,
                    ip: IpAddr::V6(ip),
                    ttl: ttl_or_default,
                    src: src.clone(),
                });
            }
            "CNAME" | "PTR" | "NS" => {
                let target = name(src, &arg(0)?, origin)?;
                let link = RawLink {
                    owner: owner.clone(),
                    target,
                    src: src.clone(),
                };
                match rtype.as_str() {
                    "CNAME" => self.raw.cnames.push(link),
                    "PTR" => self.raw.ptrs.push(link),
                    _ => self.raw.ns.push(link),
                }
            }
            "SOA" => {
                if rdata.len() < 7 {
                    return Err(src.error(format!(
                        "SOA record for `{owner}` needs 7 fields (mname rname serial refresh retry expire minimum), found {}",
                        rdata.len()
                    )));
                }
                let mname = name(src, &rdata[0].text, origin)?;
                let rname = name(src, &rdata[1].text, origin)?;
                let mut nums = [0u32; 5];
                for (i, n) in nums.iter_mut().enumerate() {
                    let t = &rdata[2 + i].text;
                    *n = parse_ttl(t).ok_or_else(|| src.error(format!("SOA field `{t}` is not a number")))?;
                }
                if self.seen_soa {
                    // A second SOA within one import: another zone via $INCLUDE is fine, same owner is not.
                    if self.raw.soa.iter().any(|s| s.owner == owner) {
                        return Err(src.error(format!("second SOA record for `{owner}`")));
                    }
                }
                self.seen_soa = true;
                if self.raw.ttl.is_none()
                    && let Some(t) = ttl.or(self.default_ttl)
                {
                    self.raw.ttl = Some((t, src.clone()));
                }
                if !owner.ends_with(".arpa.") {
                    self.raw
                        .domains
                        .push((owner.trim_end_matches('.').to_owned(), src.clone(), 2));
                } else if let Some(net) = reverse_net(&owner) {
                    self.raw.net_hints.push((
                        net,
                        src.clone(),
                        format!("from the reverse zone {owner}"),
                    ));
                }
                self.raw.soa.push(RawSoa {
                    owner,
                    mname,
                    rname,
                    refresh: nums[1],
                    retry: nums[2],
                    expire: nums[3],
                    minimum: nums[4],
                    src: src.clone(),
                });
                self.raw.unsupported.push(src.unsupported(
                    format!("SOA serial {}", nums[0]),
                    "dnsd numbers its own serials (it starts above this one only if you set it; secondaries may need a full transfer)",
                ));
            }
            "MX" => self.raw.unsupported.push(src.unsupported(
                construct(),
                "the host file has no mail exchanger records; serve them from a zone-file ([[dns.zone-file]])",
            )),
            "TXT" | "SPF" => self.raw.unsupported.push(src.unsupported(
                construct(),
                "the host file has no TXT records; serve them from a zone-file ([[dns.zone-file]])",
            )),
            "SRV" => self.raw.unsupported.push(src.unsupported(
                construct(),
                "the host file has no SRV records (Active Directory's are registered by Samba itself); serve them from a zone-file ([[dns.zone-file]])",
            )),
            _ => self.raw.unsupported.push(src.unsupported(
                construct(),
                format!("the host file cannot express {rtype} records; serve them from a zone-file ([[dns.zone-file]])"),
            )),
        }
        Ok(())
    }
}

fn quote(w: &Word) -> String {
    if w.quoted {
        format!("\"{}\"", w.text)
    } else {
        w.text.clone()
    }
}

fn words_text(w: &[Word]) -> String {
    w.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Absolute, lower-case form of a name relative to `origin`.
fn name(src: &Src, n: &str, origin: Option<&str>) -> Result<String, ImportError> {
    let n = n.to_ascii_lowercase();
    if n == "@" {
        return origin.map(str::to_owned).ok_or_else(|| {
            src.error(
                "`@` used but the zone's origin is unknown: add $ORIGIN or give the zone name",
            )
        });
    }
    if n.ends_with('.') && !n.ends_with("\\.") {
        if n == "." {
            return Ok(n);
        }
        return Ok(n);
    }
    match origin {
        Some(".") => Ok(format!("{n}.")),
        Some(o) => Ok(format!("{n}.{o}")),
        None => Err(src.error(format!(
            "relative name `{n}` but the zone's origin is unknown: add $ORIGIN or give the zone name"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_units() {
        assert_eq!(parse_ttl("3600"), Some(3600));
        assert_eq!(parse_ttl("1h30m"), Some(5400));
        assert_eq!(parse_ttl("1W"), Some(604_800));
        assert_eq!(parse_ttl("IN"), None);
        assert_eq!(parse_ttl("1x"), None);
    }
}
