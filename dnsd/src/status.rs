//! `dnsd status`: what the running daemon serves (zones, serials, record counts), the recent
//! dynamic updates, the forwarding cache and the counters, as one JSON document over the control
//! socket; [`text`] renders it for people.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::state::Shared;

/// The status document of the running daemon.
pub fn document(sh: &Shared) -> Value {
    let pol = sh.policy.load();
    let zones: Vec<Value> = pol
        .catalog
        .zones
        .iter()
        .map(|z| {
            json!({
                "zone": z.origin.to_ascii(),
                "serial": z.serial(),
                "records": z.nodes.values().map(Vec::len).sum::<usize>(),
                "names": z.nodes.len(),
            })
        })
        .collect();
    let s = &sh.stats;
    let t = sh.metrics.totals();
    json!({
        "pid": std::process::id(),
        "uid": nix::unistd::Uid::effective().as_raw(),
        "zones": zones,
        "updates": sh.journal(),
        "cache_entries": sh.cache_len(),
        "counters": {
            "queries": s.queries.get(),
            "malformed": s.malformed.get(),
            "notimp": s.notimp.get(),
            "refused": s.refused.get(),
            "truncated": s.truncated.get(),
            "forwarded": s.forwarded.get(),
            "cache_hits": s.cache_hits.get(),
            "cache_misses": s.cache_misses.get(),
            "updates_applied": s.updates.get(),
            "updates_unchanged": s.updates_unchanged.get(),
            "updates_refused": s.updates_refused.get(),
            "updates_failed": s.updates_failed.get(),
            "axfr_out": s.axfr_out.get(),
            "ixfr_out": s.ixfr_out.get(),
            "notify_sent": s.notify_sent.get(),
            "notify_acknowledged": s.notify_acked.get(),
            "notify_unanswered": s.notify_failed.get(),
            "tsig_failures": s.tsig_failures.get(),
            "rrl_dropped": s.rrl_dropped.get(),
            "rrl_slipped": s.rrl_slipped.get(),
        },
        "answers": t.answers.iter().map(|(q, r, n)| json!({"qtype": q, "rcode": r, "count": n})).collect::<Vec<_>>(),
    })
}

fn when(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// The document as text; an `error` member (from the daemon) is shown as is.
pub fn text(v: &Value) -> String {
    let mut out = String::new();
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        let _ = writeln!(out, "error: {e}");
        return out;
    }
    let _ = writeln!(out, "{:<32} {:>12} {:>8}", "ZONE", "SERIAL", "RECORDS");
    for z in v["zones"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{:<32} {:>12} {:>8}",
            z["zone"].as_str().unwrap_or("?"),
            z["serial"].as_u64().unwrap_or(0),
            z["records"].as_u64().unwrap_or(0)
        );
    }
    let ups = v["updates"].as_array().cloned().unwrap_or_default();
    let _ = writeln!(out, "\nrecent updates ({}):", ups.len());
    if ups.is_empty() {
        out.push_str("  none since start\n");
    }
    for u in &ups {
        let _ = writeln!(
            out,
            "  {} {} key {} serial {} -> {} ({} changes)",
            when(u["time"].as_u64().unwrap_or(0)),
            u["zone"].as_str().unwrap_or("?"),
            u["key"].as_str().unwrap_or("?"),
            u["from"],
            u["serial"],
            u["changes"]
        );
        for r in u["removed"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "    - {}", r.as_str().unwrap_or("?"));
        }
        for r in u["added"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "    + {}", r.as_str().unwrap_or("?"));
        }
    }
    let _ = writeln!(out, "\nforwarding cache: {} entries", v["cache_entries"]);
    out.push_str("counters:");
    if let Some(c) = v["counters"].as_object() {
        for (k, n) in c {
            let _ = write!(out, " {k}={n}");
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_shows_zones_updates_and_counters() {
        let v = json!({
            "zones": [{"zone": "it-ishin.com.", "serial": 42, "records": 7, "names": 5}],
            "updates": [{"time": 0, "zone": "it-ishin.com.", "key": "dhcp-update.", "from": 41,
                         "serial": 42, "changes": 2, "added": ["a.it-ishin.com. 300 A 192.0.2.1"],
                         "removed": ["a.it-ishin.com. 300 A 192.0.2.9"]}],
            "cache_entries": 3,
            "counters": {"queries": 10},
        });
        let t = text(&v);
        assert!(
            t.contains("it-ishin.com.                              42        7"),
            "{t}"
        );
        assert!(
            t.contains(
                "1970-01-01T00:00:00Z it-ishin.com. key dhcp-update. serial 41 -> 42 (2 changes)"
            ),
            "{t}"
        );
        assert!(t.contains("    + a.it-ishin.com. 300 A 192.0.2.1"), "{t}");
        assert!(t.contains("    - a.it-ishin.com. 300 A 192.0.2.9"), "{t}");
        assert!(t.contains("forwarding cache: 3 entries"), "{t}");
        assert!(t.contains("counters: queries=10"), "{t}");
        assert_eq!(text(&json!({"error": "x"})), "error: x\n");
    }
}
