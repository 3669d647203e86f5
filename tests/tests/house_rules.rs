//! The house rules of ARCHITECTURE.md, checked on every crate of the workspace:
//!
//! - no non-test source file over 600 lines (an inline `#[cfg(test)]` module at the end of a file
//!   does not count; a large one belongs in a sibling `tests.rs`);
//! - no import circle between the top-level modules of a crate (`crate::a` used in `b` and
//!   `crate::b` used in `a`, directly or through others);
//! - no module reaches back into its crate root for an item defined there (`lib.rs` is the entry
//!   point: it uses its modules, they do not use it).
//!
//! This reads the source as text (paths after `crate::` and `super::`), which is what a reader
//! follows too; macros that build paths are not seen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 600;

/// The library crates of the workspace, by their `src` folder.
const CRATES: &[&str] = &[
    "shared/hostfile/src",
    "shared/runtime/src",
    "shared/import/src",
    "dhcpd/src",
    "dnsd/src",
    "lbd/src",
    "tests/src",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// A test-only file: `tests.rs`, or anything in a `tests` folder.
fn is_test_file(rel: &Path) -> bool {
    rel.file_name().is_some_and(|n| n == "tests.rs")
        || rel.components().any(|c| c.as_os_str() == "tests")
}

/// The file's lines up to its top-level `#[cfg(test)] mod`, comments removed.
fn code_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("#[cfg(test)]")
            && lines.peek().is_some_and(|next| next.starts_with("mod "))
        {
            break;
        }
        let code = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        out.push(code.to_string());
    }
    out
}

/// The first identifier of `s` (after optional whitespace).
fn ident(s: &str) -> Option<&str> {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The first segments of the paths after `prefix` (`crate::a::b`, `crate::{a, b::c}`).
fn roots_after(code: &str, prefix: &str, out: &mut BTreeSet<String>) {
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        // `foo_crate::` is not `crate::`.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let t = rest.trim_start();
        if let Some(inner) = t.strip_prefix('{') {
            let mut depth = 1;
            let mut item_start = true;
            for (j, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => item_start = true,
                    c if item_start && depth == 1 && !c.is_whitespace() => {
                        item_start = false;
                        if let Some(id) = ident(&inner[j..]) {
                            out.insert(id.to_string());
                        }
                    }
                    _ => {}
                }
            }
        } else if let Some(id) = ident(t) {
            out.insert(id.to_string());
        }
    }
}

/// Items a crate root defines itself (not its `mod` declarations or re-exports).
fn root_items(text: &str) -> BTreeSet<String> {
    let mut items = BTreeSet::new();
    for line in code_lines(text) {
        let mut l = line.as_str();
        if l.starts_with(char::is_whitespace) {
            continue;
        }
        for vis in ["pub(crate) ", "pub(super) ", "pub "] {
            l = l.strip_prefix(vis).unwrap_or(l);
        }
        for kw in [
            "fn ",
            "async fn ",
            "struct ",
            "enum ",
            "const ",
            "static ",
            "type ",
            "trait ",
        ] {
            if let Some(id) = l.strip_prefix(kw).and_then(ident) {
                items.insert(id.to_string());
            }
        }
    }
    items
}

#[derive(Default)]
struct Findings {
    long: Vec<String>,
    circles: Vec<String>,
    reach_back: Vec<String>,
}

fn check_crate(src_rel: &str, f: &mut Findings) {
    let src = root().join(src_rel);
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let lib_text = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let lib_items = root_items(&lib_text);
    // top-level module -> the top-level modules it names
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &files {
        let rel = path.strip_prefix(&src).unwrap();
        let shown = Path::new(src_rel).join(rel).display().to_string();
        let text = std::fs::read_to_string(path).unwrap();
        let code = code_lines(&text);
        if !is_test_file(rel) && code.len() > MAX_LINES {
            f.long.push(format!("{shown}: {} lines", code.len()));
        }
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" || top == "bin" || is_test_file(rel) {
            continue;
        }
        let joined = code.join("\n");
        let mut named = BTreeSet::new();
        roots_after(&joined, "crate::", &mut named);
        // `super::` from a top-level module (or enough `super::`s from deeper) is the root.
        let depth = rel.components().count();
        let supers = "super::".repeat(depth);
        roots_after(&joined, &supers, &mut named);
        for n in named {
            if lib_items.contains(&n) {
                f.reach_back
                    .push(format!("{shown}: uses `{n}`, defined in the crate root"));
            } else if n != top {
                graph.entry(top.clone()).or_default().insert(n);
            }
        }
    }
    for cycle in cycles(&graph) {
        f.circles.push(format!("{src_rel}: {}", cycle.join(" -> ")));
    }
}

/// Strongly connected components with more than one module (Tarjan), each as a path.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.next);
        t.low.insert(v, t.next);
        t.next += 1;
        t.stack.push(v);
        t.on.insert(v);
        if let Some(ws) = t.g.get(v) {
            for w in ws {
                let w = w.as_str();
                if !t.g.contains_key(w) {
                    continue; // a leaf module: names nothing, so in no circle
                }
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(lw));
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low[v];
                    t.low.insert(v, lv.min(iw));
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.reverse();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn the_checker_sees_circles_and_reach_backs() {
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert(
        "c".to_string(),
        BTreeSet::from(["a".to_string(), "d".to_string()]),
    );
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    let mut named = BTreeSet::new();
    roots_after(
        "use crate::{x::Y, z, w::{A, B}};\nlet v = crate::q::f(); my_crate::no;",
        "crate::",
        &mut named,
    );
    assert_eq!(
        named.into_iter().collect::<Vec<_>>(),
        vec!["q", "w", "x", "z"]
    );
    let items = root_items("pub mod a;\npub fn run() {}\npub struct Cli {\n    x: u8,\n}\n");
    assert_eq!(items.into_iter().collect::<Vec<_>>(), vec!["Cli", "run"]);
}

#[test]
fn house_rules_hold_in_every_crate() {
    let mut f = Findings::default();
    for c in CRATES {
        check_crate(c, &mut f);
    }
    let mut report = String::new();
    for (what, list) in [
        (
            "files over 600 lines (split them along their seams)",
            &f.long,
        ),
        ("import circles between modules", &f.circles),
        ("modules reaching back into the crate root", &f.reach_back),
    ] {
        if !list.is_empty() {
            report.push_str(&format!("{what}:\n  {}\n", list.join("\n  ")));
        }
    }
    assert!(report.is_empty(), "house rules broken:\n{report}");
}
