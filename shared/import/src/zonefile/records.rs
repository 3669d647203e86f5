//! From entries to records: directives, owners, TTL and class, includes and `$GENERATE`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::lex::{Entry, Word, lex};
use super::{
    Pos, Record, TtlDirective, ZoneFile, ZoneFileError, absolute, name, parse_ttl, quote, rdata,
};

/// Includes nested deeper than this are refused.
const MAX_DEPTH: usize = 16;
/// `$GENERATE` ranges larger than this are refused (a typo, not a zone).
const MAX_GENERATE: u64 = 65_536;

const CLASSES: [&str; 5] = ["IN", "CH", "HS", "CS", "ANY"];

/// Reads zone file `text` (named `file` in messages; relative `$INCLUDE`s are read with `read`
/// from its folder). `origin` is the zone's name unless the file sets its own with `$ORIGIN`.
pub fn read(
    text: &str,
    file: &Path,
    origin: Option<&str>,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<ZoneFile, ZoneFileError> {
    let mut r = Reader {
        read,
        out: ZoneFile::default(),
        dollar_ttl: None,
        last_ttl: None,
        soa_minimum: None,
    };
    let mut last_owner = None;
    r.file(
        text,
        &Arc::from(file),
        origin.map(absolute),
        &mut last_owner,
        &mut Vec::new(),
    )?;
    Ok(r.out)
}

/// [`read`] with `$INCLUDE`s read from the file system.
pub fn read_str(text: &str, file: &Path, origin: Option<&str>) -> Result<ZoneFile, ZoneFileError> {
    read(text, file, origin, &|p| std::fs::read_to_string(p))
}

struct Reader<'a> {
    read: &'a dyn Fn(&Path) -> std::io::Result<String>,
    out: ZoneFile,
    dollar_ttl: Option<u32>,
    last_ttl: Option<u32>,
    soa_minimum: Option<u32>,
}

impl Reader<'_> {
    fn file(
        &mut self,
        text: &str,
        file: &Arc<Path>,
        mut origin: Option<String>,
        last_owner: &mut Option<String>,
        stack: &mut Vec<Arc<Path>>,
    ) -> Result<(), ZoneFileError> {
        let top = Pos {
            file: file.clone(),
            line: 1,
            column: 1,
        };
        for e in lex(text, &top)? {
            let first = &e.words[0];
            let at = top.at(first.line, first.column);
            if e.blank_owner || first.quoted || !first.text.starts_with('$') {
                self.record(&e, &top, origin.as_deref(), last_owner)?;
                continue;
            }
            let arg = e.words.get(1);
            let need = |what: &str, fix: &str| {
                arg.ok_or_else(|| at.error(format!("{} needs {what}", first.text), fix))
            };
            match first.text.to_ascii_uppercase().as_str() {
                "$ORIGIN" => {
                    let a = need("a domain name", "write `$ORIGIN example.com.`")?;
                    origin = Some(name(a, origin.as_deref(), &top)?);
                }
                "$TTL" => {
                    let a = need("a value", "write `$TTL 1h` or `$TTL 3600`")?;
                    let t = parse_ttl(&a.text).ok_or_else(|| {
                        top.at(a.line, a.column).error(
                            format!("$TTL `{}` is not a TTL", a.text),
                            "write seconds (3600) or a time with units (1h, 1d2h, 2w)",
                        )
                    })?;
                    self.dollar_ttl = Some(t);
                    self.out.ttls.push(TtlDirective { ttl: t, pos: at });
                }
                "$INCLUDE" => {
                    let a = need("a file name", "write `$INCLUDE file [origin]`")?;
                    let inc_origin = match e.words.get(2) {
                        Some(o) => Some(name(o, origin.as_deref(), &top)?),
                        None => origin.clone(),
                    };
                    let path = include_path(file, &a.text);
                    if stack.len() >= MAX_DEPTH
                        || stack.iter().any(|p| **p == *path)
                        || **file == *path
                    {
                        return Err(at.error(
                            format!(
                                "`{}` includes itself or nests deeper than {MAX_DEPTH} files",
                                path.display()
                            ),
                            "remove the $INCLUDE loop",
                        ));
                    }
                    let text = (self.read)(&path).map_err(|source| ZoneFileError::Read {
                        file: file.to_path_buf(),
                        line: at.line,
                        path: path.clone(),
                        source,
                    })?;
                    stack.push(file.clone());
                    // The included file starts with the current owner; the origin comes back.
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
                "$GENERATE" => self.generate(&e, &top, origin.as_deref(), last_owner)?,
                d => {
                    return Err(at.error(
                        format!("unknown directive `{d}`"),
                        "use $ORIGIN, $TTL, $INCLUDE or $GENERATE",
                    ));
                }
            }
        }
        Ok(())
    }

    fn record(
        &mut self,
        e: &Entry,
        top: &Pos,
        origin: Option<&str>,
        last_owner: &mut Option<String>,
    ) -> Result<(), ZoneFileError> {
        let mut w = e.words.iter().peekable();
        let start = &e.words[0];
        let at = top.at(e.line, if e.blank_owner { start.column } else { 1 });
        let owner = if e.blank_owner {
            last_owner.clone().ok_or_else(|| {
                at.error(
                    "record without an owner name and no previous record",
                    "write the owner at the start of the line (`@` for the zone itself)",
                )
            })?
        } else {
            name(w.next().expect("entries are never empty"), origin, top)?
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
            } else if class.is_none() && !t.quoted && CLASSES.contains(&up.as_str()) {
                class = Some(up);
            } else {
                rtype = Some((up, t));
                break;
            }
        }
        let (rtype, tword) = rtype.ok_or_else(|| {
            at.error(
                format!("record for `{owner}` has no type"),
                "write the type after the owner, TTL and class (`www IN A 192.0.2.1`)",
            )
        })?;
        if tword.quoted || !rtype.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(top.at(tword.line, tword.column).error(
                format!("`{}` is not a record type", quote(tword)),
                "write a type such as A, AAAA, CNAME, MX, NS, PTR, SOA, SRV or TXT",
            ));
        }
        let words: Vec<Word> = w.cloned().collect();
        let class = class.unwrap_or_else(|| "IN".to_owned());
        let data = if class == "IN" {
            rdata::parse(&rtype, &owner, &words, origin, top)?
        } else {
            rdata::Rdata::Other
        };
        if let rdata::Rdata::Soa { minimum, .. } = &data {
            self.soa_minimum.get_or_insert(*minimum);
        }
        if ttl.is_some() {
            self.last_ttl = ttl;
        }
        let effective = ttl
            .or(self.dollar_ttl)
            .or(self.last_ttl)
            .or(self.soa_minimum)
            .unwrap_or(0);
        self.out.records.push(Record {
            owner,
            ttl: effective,
            explicit_ttl: ttl,
            dollar_ttl: self.dollar_ttl,
            class,
            rtype,
            data,
            words,
            pos: at,
        });
        Ok(())
    }

    /// `$GENERATE start-stop[/step] lhs [ttl] [class] type rhs`: `$` is the counter,
    /// `${offset,width,base}` a formatted one (base d, o, x, X), `\$` a dollar sign.
    fn generate(
        &mut self,
        e: &Entry,
        top: &Pos,
        origin: Option<&str>,
        last_owner: &mut Option<String>,
    ) -> Result<(), ZoneFileError> {
        let at = top.at(e.line, 1);
        let fix = "write `$GENERATE 1-20 host-$ A 192.0.2.$`";
        let range = e
            .words
            .get(1)
            .ok_or_else(|| at.error("$GENERATE needs a range", fix))?;
        let (span, step) = match range.text.split_once('/') {
            Some((s, st)) => (s, st.parse::<u64>().ok().filter(|s| *s > 0)),
            None => (range.text.as_str(), Some(1)),
        };
        let bounds = span
            .split_once('-')
            .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
        let (Some((lo, hi)), Some(step)) = (bounds, step) else {
            return Err(top.at(range.line, range.column).error(
                format!("$GENERATE range `{}` is not START-STOP[/STEP]", range.text),
                fix,
            ));
        };
        if hi < lo || (hi - lo) / step > MAX_GENERATE {
            return Err(top.at(range.line, range.column).error(
                format!(
                    "$GENERATE range `{}` is empty or larger than {MAX_GENERATE}",
                    range.text
                ),
                fix,
            ));
        }
        if e.words.len() < 5 {
            return Err(at.error("$GENERATE needs a range, an owner, a type and data", fix));
        }
        let mut i = lo;
        while i <= hi {
            let mut words: Vec<Word> = e.words[2..].to_vec();
            for w in &mut words {
                w.text = expand(&w.text, i).map_err(|m| top.at(w.line, w.column).error(m, fix))?;
            }
            let entry = Entry {
                line: e.line,
                blank_owner: false,
                words,
            };
            self.record(&entry, top, origin, last_owner)?;
            i += step;
        }
        Ok(())
    }
}

fn expand(t: &str, n: u64) -> Result<String, String> {
    let mut out = String::new();
    let mut it = t.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' if it.peek() == Some(&'$') => {
                it.next();
                out.push('$');
            }
            '$' if it.peek() == Some(&'{') => {
                it.next();
                let spec: String = it.by_ref().take_while(|c| *c != '}').collect();
                let parts: Vec<&str> = spec.split(',').collect();
                let offset: i64 = parts[0]
                    .trim()
                    .parse()
                    .map_err(|_| format!("`${{{spec}}}`: the offset is not a number"))?;
                let width: usize = parts
                    .get(1)
                    .map_or(Ok(0), |w| w.trim().parse())
                    .map_err(|_| format!("`${{{spec}}}`: the width is not a number"))?;
                let v = i64::try_from(n).unwrap_or(i64::MAX).saturating_add(offset);
                let s = match parts.get(2).map(|b| b.trim()) {
                    None | Some("d") => format!("{v:0width$}"),
                    Some("o") => format!("{v:0width$o}"),
                    Some("x") => format!("{v:0width$x}"),
                    Some("X") => format!("{v:0width$X}"),
                    Some(b) => {
                        return Err(format!("`${{{spec}}}`: base `{b}` is not d, o, x or X"));
                    }
                };
                out.push_str(&s);
            }
            '$' => out.push_str(&n.to_string()),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// An `$INCLUDE` path, relative to the including file's folder.
fn include_path(from: &Path, target: &str) -> PathBuf {
    let p = PathBuf::from(target);
    if p.is_absolute() {
        p
    } else {
        from.parent().unwrap_or(Path::new("")).join(p)
    }
}
