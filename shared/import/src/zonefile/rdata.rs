//! Record data: the types whose data holds names or that dnsd serves for Active Directory are
//! read here (names made absolute); any other type is kept as written.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::lex::Word;
use super::{Pos, ZoneFileError, name, parse_ttl, quote};

/// The data of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    /// A.
    A(Ipv4Addr),
    /// AAAA.
    Aaaa(Ipv6Addr),
    /// NS, CNAME, DNAME or PTR: one name.
    Name(String),
    /// MX.
    Mx {
        /// Lower is preferred.
        preference: u16,
        /// The mail exchanger.
        exchange: String,
    },
    /// SRV.
    Srv {
        /// Lower is tried first.
        priority: u16,
        /// Share among equal priorities.
        weight: u16,
        /// The service's port.
        port: u16,
        /// The host offering it (`.` for none).
        target: String,
    },
    /// SOA.
    Soa {
        /// The primary name server.
        mname: String,
        /// The mailbox, as a name (`hostmaster.example.com.`).
        rname: String,
        /// Serial.
        serial: u32,
        /// Refresh, seconds.
        refresh: u32,
        /// Retry, seconds.
        retry: u32,
        /// Expire, seconds.
        expire: u32,
        /// Negative-caching TTL, seconds.
        minimum: u32,
    },
    /// TXT or SPF: the character strings, escapes decoded.
    Txt(Vec<Vec<u8>>),
    /// Any other type: the words as written (see [`super::Record::words`]).
    Other,
}

pub(crate) fn parse(
    rtype: &str,
    owner: &str,
    words: &[Word],
    origin: Option<&str>,
    at: &Pos,
) -> Result<Rdata, ZoneFileError> {
    let missing = |n: usize, what: &str| {
        let last = words.last().map_or((at.line, at.column), |w| {
            (w.line, w.column + w.text.chars().count())
        });
        at.at(last.0, last.1).error(
            format!(
                "{rtype} record for `{owner}` is missing its data: it needs {n} field(s), found {}",
                words.len()
            ),
            format!("write {what}"),
        )
    };
    let need = |n: usize, what: &str| {
        if words.len() < n {
            Err(missing(n, what))
        } else {
            Ok(())
        }
    };
    let bad = |w: &Word, what: &str, fix: &str| {
        at.at(w.line, w.column).error(
            format!("{rtype} record for `{owner}`: `{}` is not {what}", quote(w)),
            fix,
        )
    };
    let num16 = |w: &Word, what: &str| -> Result<u16, ZoneFileError> {
        w.text
            .parse::<u16>()
            .map_err(|_| bad(w, what, "write a whole number from 0 to 65535"))
    };
    let n = |w: &Word| name(w, origin, at);
    Ok(match rtype {
        "A" => {
            need(1, "an IPv4 address (`192.0.2.1`)")?;
            Rdata::A(words[0].text.parse().map_err(|_| {
                bad(
                    &words[0],
                    "an IPv4 address",
                    "write four numbers 0-255 separated by dots",
                )
            })?)
        }
        "AAAA" => {
            need(1, "an IPv6 address (`2001:db8::1`)")?;
            Rdata::Aaaa(words[0].text.parse().map_err(|_| {
                bad(
                    &words[0],
                    "an IPv6 address",
                    "write an IPv6 address such as 2001:db8::1",
                )
            })?)
        }
        "NS" | "CNAME" | "DNAME" | "PTR" => {
            need(1, "a name (`host`, `host.example.com.` or `@`)")?;
            Rdata::Name(n(&words[0])?)
        }
        "MX" => {
            need(2, "a preference and a mail server (`10 mail`)")?;
            Rdata::Mx {
                preference: num16(&words[0], "a preference")?,
                exchange: n(&words[1])?,
            }
        }
        "SRV" => {
            need(4, "priority, weight, port and target (`0 100 389 dc1`)")?;
            Rdata::Srv {
                priority: num16(&words[0], "a priority")?,
                weight: num16(&words[1], "a weight")?,
                port: num16(&words[2], "a port")?,
                target: n(&words[3])?,
            }
        }
        "SOA" => {
            if words.len() < 7 {
                return Err(missing(
                    7,
                    "SOA record needs 7 fields (mname rname serial refresh retry expire minimum)",
                )
                .retitle(format!(
                    "SOA record for `{owner}` needs 7 fields (mname rname serial refresh retry expire minimum), found {}",
                    words.len()
                )));
            }
            let mut nums = [0u32; 5];
            for (i, v) in nums.iter_mut().enumerate() {
                let w = &words[2 + i];
                *v = parse_ttl(&w.text).ok_or_else(|| {
                    bad(
                        w,
                        "a number",
                        "write a whole number, or a time such as 1h or 2w",
                    )
                })?;
            }
            Rdata::Soa {
                mname: n(&words[0])?,
                rname: n(&words[1])?,
                serial: nums[0],
                refresh: nums[1],
                retry: nums[2],
                expire: nums[3],
                minimum: nums[4],
            }
        }
        "TXT" | "SPF" => {
            need(1, "one or more strings in quotes")?;
            Rdata::Txt(words.iter().map(|w| unescape(&w.text)).collect())
        }
        _ => Rdata::Other,
    })
}

impl ZoneFileError {
    fn retitle(self, m: String) -> ZoneFileError {
        match self {
            ZoneFileError::Syntax {
                file,
                line,
                column,
                fix,
                ..
            } => ZoneFileError::Syntax {
                file,
                line,
                column,
                message: m,
                fix,
            },
            e => e,
        }
    }
}

/// A character string's bytes: `\X` is X, `\DDD` the byte of that decimal value.
pub(crate) fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let d = &b[i + 1..(i + 4).min(b.len())];
            if d.len() == 3 && d.iter().all(u8::is_ascii_digit) {
                let v = u32::from(d[0] - b'0') * 100
                    + u32::from(d[1] - b'0') * 10
                    + u32::from(d[2] - b'0');
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}
