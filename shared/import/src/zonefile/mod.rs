//! The one zone-file reader, for `dnsd import` and for dnsd's `[[dns.zone-file]]`.
//!
//! It reads RFC 1035 master files as BIND's `named-checkzone` accepts them in practice:
//! `$ORIGIN`, `$TTL` with units (`1h`, `1d2h`, `2W`), `$INCLUDE file [origin]`, `$GENERATE`,
//! `@` and relative names wherever a name may stand (the owner, and in the data of SOA, NS, MX,
//! CNAME, DNAME, PTR and SRV), an omitted owner meaning the previous one, TTL and class in either
//! order, `( ... )` across lines, `;` comments, quoted strings with `\` escapes. Names come out
//! absolute and in lower case. Errors give file:line:column and a fix.
//!
//! ```
//! use std::path::Path;
//! let z = import::zonefile::read_str(
//!     "$TTL 1h\n@ IN SOA @ hostmaster ( 1 900 600 86400 3600 )\n  NS @\n_ldap._tcp SRV 0 100 389 dc1\n",
//!     Path::new("db.example.com"),
//!     Some("example.com"),
//! )?;
//! assert_eq!(z.records[2].data, import::zonefile::Rdata::Srv {
//!     priority: 0, weight: 100, port: 389, target: "dc1.example.com.".into() });
//! # Ok::<(), import::zonefile::ZoneFileError>(())
//! ```

mod lex;
mod rdata;
mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use lex::Word;
pub use rdata::Rdata;
pub use records::{read, read_str};

/// Where something is in a zone file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file (an included file when the record is there).
    pub file: Arc<Path>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl Pos {
    pub(crate) fn at(&self, line: usize, column: usize) -> Pos {
        Pos {
            file: self.file.clone(),
            line,
            column,
        }
    }
    pub(crate) fn error(
        &self,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> ZoneFileError {
        ZoneFileError::Syntax {
            file: self.file.to_path_buf(),
            line: self.line,
            column: self.column,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Why a zone file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ZoneFileError {
    /// The file is malformed here.
    #[error("{}:{line}:{column}: {message}\n    fix: {fix}", file.display())]
    Syntax {
        /// The file (an included file when the problem is there).
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, quoting the text.
        message: String,
        /// What would make it right.
        fix: String,
    },
    /// The file or one it includes could not be read.
    #[error("{}:{line}: cannot read `{}`: {source}", file.display(), path.display())]
    Read {
        /// The file holding the `$INCLUDE` (or the file itself, line 0).
        file: PathBuf,
        /// The line of the `$INCLUDE` (0 for the file itself).
        line: usize,
        /// The path that could not be read.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ZoneFileError {
    /// The line the error is about.
    pub fn line(&self) -> usize {
        match self {
            ZoneFileError::Syntax { line, .. } | ZoneFileError::Read { line, .. } => *line,
        }
    }
    /// The file the error is about.
    pub fn file(&self) -> &Path {
        match self {
            ZoneFileError::Syntax { file, .. } | ZoneFileError::Read { file, .. } => file,
        }
    }
}

/// One resource record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The owner, absolute, lower case (`www.example.com.`).
    pub owner: String,
    /// The TTL in force: the record's own, else `$TTL`, else the previous record's, else the
    /// SOA's minimum.
    pub ttl: u32,
    /// The TTL written on the record itself.
    pub explicit_ttl: Option<u32>,
    /// The `$TTL` in force where the record stands.
    pub dollar_ttl: Option<u32>,
    /// The class, upper case (`IN` when none is written).
    pub class: String,
    /// The type, upper case (`SRV`, `TYPE65534`).
    pub rtype: String,
    /// The data, names made absolute.
    pub data: Rdata,
    /// The data as written (for messages, and for types read as [`Rdata::Other`]).
    pub words: Vec<Word>,
    /// Where the record starts (its owner, or the first word of a record without one).
    pub pos: Pos,
}

impl Record {
    /// `owner TYPE data` as written (quoted strings quoted), for messages.
    pub fn text(&self) -> String {
        let data: Vec<String> = self.words.iter().map(quote).collect();
        format!("{} {} {}", self.owner, self.rtype, data.join(" "))
            .trim_end()
            .to_owned()
    }
}

/// A word as written (quoted again when it was quoted).
pub fn quote(w: &Word) -> String {
    if w.quoted {
        format!("\"{}\"", w.text)
    } else {
        w.text.clone()
    }
}

/// A `$TTL` directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlDirective {
    /// Its value in seconds.
    pub ttl: u32,
    /// Where it stands.
    pub pos: Pos,
}

/// A whole zone file, its includes spliced in.
#[derive(Debug, Clone, Default)]
pub struct ZoneFile {
    /// The records in file order (an included file's where its `$INCLUDE` stands).
    pub records: Vec<Record>,
    /// Every `$TTL`, in file order.
    pub ttls: Vec<TtlDirective>,
}

/// BIND TTL syntax: `3600`, `1h`, `1h30m`, `1d2h`, `2W` (weeks, days, hours, minutes, seconds).
pub fn parse_ttl(s: &str) -> Option<u32> {
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

/// `example.com` or `example.com.` -> `example.com.` (lower case).
pub fn absolute(origin: &str) -> String {
    let o = origin.trim().to_ascii_lowercase();
    if o.ends_with('.') { o } else { format!("{o}.") }
}

/// A name as written, made absolute against `origin`: `@` is the origin, a name without a final
/// (unescaped) dot is relative to it.
pub(crate) fn name(w: &Word, origin: Option<&str>, at: &Pos) -> Result<String, ZoneFileError> {
    let n = w.text.to_ascii_lowercase();
    let pos = at.at(w.line, w.column);
    if w.quoted || n.is_empty() {
        return Err(pos.error(
            format!("`{}` is not a domain name", quote(w)),
            "write a name without quotes (`host`, `host.example.com.` or `@`)",
        ));
    }
    if n == "@" {
        return origin.map(str::to_owned).ok_or_else(|| {
            pos.error(
                "`@` used but the zone's origin is unknown",
                "add $ORIGIN or give the zone name",
            )
        });
    }
    let escaped_dot = n.ends_with("\\.") && !n.ends_with("\\\\.");
    if n.ends_with('.') && !escaped_dot {
        return Ok(n);
    }
    match origin {
        Some(".") => Ok(format!("{n}.")),
        Some(o) => Ok(format!("{n}.{o}")),
        None => Err(pos.error(
            format!("relative name `{n}` but the zone's origin is unknown"),
            "add $ORIGIN or give the zone name",
        )),
    }
}

#[cfg(test)]
mod tests;
