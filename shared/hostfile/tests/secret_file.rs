//! `[key.NAME] secret-file`: the secret read from a file beside the host file, its errors, and the
//! warning for the example secret published with lansuite (issue 19, item 12).

use std::path::{Path, PathBuf};

use hostfile::HostTable;

const EXAMPLE_SECRET: &str = "bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw==";
/// 32 bytes 0x00..0x1f, base64.
const OTHER_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `dir/hosts.toml` with one key (given as the lines of its table, from line 4) used by ddns.
fn host_file(dir: &Path, key_lines: &str) -> PathBuf {
    let text = format!(
        "domain = \"lan.test\"\n[key.upd]\nalgorithm = \"hmac-sha256\"\n{key_lines}\n\
         [dhcp]\nddns = {{ server = \"127.0.0.1\", key = \"upd\" }}\n"
    );
    let p = dir.join("hosts.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn only_problem(path: &Path) -> (hostfile::Problem, String) {
    let err = HostTable::load(path).expect_err("must be rejected");
    let p = err.problems();
    assert_eq!(p.len(), 1, "{err}");
    (p[0].clone(), err.to_string())
}

#[test]
fn secret_file_relative_to_the_host_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsig.key"), format!("{OTHER_SECRET}\n")).unwrap();
    let p = host_file(dir.path(), "secret-file = \"tsig.key\"");
    let t = HostTable::load(&p).unwrap();
    let key = t.dhcp_view().ddns.unwrap().key.unwrap();
    assert_eq!(key.secret, (0u8..32).collect::<Vec<u8>>());
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
}

#[test]
fn secret_file_is_read_again_on_every_load() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("tsig.key");
    std::fs::write(&key, OTHER_SECRET).unwrap();
    let p = host_file(dir.path(), &format!("secret-file = \"{}\"", key.display()));
    let first = HostTable::load(&p).unwrap().dns_view();
    std::fs::write(&key, "c2Vjb25kLXNlY3JldC1vZi10aGUtaG9zdC1maWxl").unwrap();
    let second = HostTable::load(&p).unwrap().dhcp_view();
    assert_eq!(first.domain, "lan.test.");
    assert_eq!(
        second.ddns.unwrap().key.unwrap().secret,
        b"second-secret-of-the-host-file"
    );
}

#[test]
fn missing_secret_file_names_its_place_the_path_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let p = host_file(dir.path(), "secret-file = \"nope.key\"");
    let (problem, shown) = only_problem(&p);
    assert_eq!((problem.line, problem.column), (4, 15), "{shown}");
    let full = dir.path().join("nope.key");
    assert_eq!(
        problem.message,
        format!(
            "secret-file `nope.key` ({}) cannot be read: No such file or directory (os error 2)",
            full.display()
        )
    );
    assert!(
        problem
            .fix
            .contains(&format!("openssl rand -base64 32 > {}", full.display())),
        "{shown}"
    );
    assert!(
        shown.starts_with(&format!("{}:4:15: secret-file `nope.key`", p.display())),
        "{shown}"
    );
}

#[test]
fn secret_and_secret_file_together_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsig.key"), OTHER_SECRET).unwrap();
    let p = host_file(
        dir.path(),
        &format!("secret = \"{OTHER_SECRET}\"\nsecret-file = \"tsig.key\""),
    );
    let (problem, shown) = only_problem(&p);
    assert_eq!((problem.line, problem.column), (5, 15), "{shown}");
    assert_eq!(problem.message, "key `upd` has both secret and secret-file");
    assert!(problem.fix.starts_with("keep one:"), "{shown}");
}

#[test]
fn a_key_without_any_secret_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let p = host_file(dir.path(), "");
    let (problem, shown) = only_problem(&p);
    assert_eq!((problem.line, problem.column), (2, 6), "{shown}");
    assert_eq!(problem.message, "key `upd` has no secret");
    assert!(problem.fix.contains("secret-file"), "{shown}");
}

#[test]
fn secret_file_that_is_not_base64_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsig.key"), "not base64 at all!\n").unwrap();
    let p = host_file(dir.path(), "secret-file = \"tsig.key\"");
    let (problem, shown) = only_problem(&p);
    assert_eq!((problem.line, problem.column), (4, 15), "{shown}");
    assert_eq!(
        problem.message,
        format!(
            "secret-file `tsig.key` ({}) does not hold a base64 secret",
            dir.path().join("tsig.key").display()
        )
    );
    assert!(problem.fix.contains("openssl rand -base64 32"), "{shown}");
}

#[test]
fn secret_file_with_a_short_or_huge_secret_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsig.key"), "c2hvcnQ=").unwrap();
    let p = host_file(dir.path(), "secret-file = \"tsig.key\"");
    let (problem, _) = only_problem(&p);
    assert!(
        problem
            .message
            .ends_with("holds a secret shorter than 16 bytes"),
        "{}",
        problem.message
    );
    let p = host_file(dir.path(), "secret-file = \"/dev/zero\"");
    let (problem, _) = only_problem(&p);
    assert_eq!(
        problem.message,
        "secret-file `/dev/zero` is longer than 4096 bytes"
    );
}

#[test]
fn the_example_file_warns_of_its_published_secret() {
    let example = repo().join("etc/hosts.toml");
    let t = HostTable::load(&example).unwrap();
    let w = t.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    let text = std::fs::read_to_string(&example).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with(&format!("secret = \"{EXAMPLE_SECRET}\"")))
        .expect("the example holds the published secret")
        + 1;
    assert!(
        w[0].starts_with(&format!(
            "{}:{line}:10: WARNING: key `dhcp-update` holds the example secret published with lansuite",
            example.display()
        )),
        "{}",
        w[0]
    );
    assert!(
        w[0].contains("\n    fix: make a secret of your own"),
        "{}",
        w[0]
    );
}

#[test]
fn the_example_secret_warns_from_a_secret_file_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tsig.key"), EXAMPLE_SECRET).unwrap();
    let p = host_file(dir.path(), "secret-file = \"tsig.key\"");
    let t = HostTable::load(&p).unwrap();
    assert_eq!(t.warnings().len(), 1, "{:?}", t.warnings());
    assert!(t.warnings()[0].contains(":4:15: WARNING: key `upd`"));
}

/// The .deb ships `scripts/deb/hosts.toml`: the example, but with the key's secret read from
/// `tsig.key` beside it (which postinst makes). Any other difference is drift.
#[test]
fn the_packaged_host_file_is_the_example_with_a_secret_file() {
    let example = std::fs::read_to_string(repo().join("etc/hosts.toml")).unwrap();
    let packaged = std::fs::read_to_string(repo().join("scripts/deb/hosts.toml")).unwrap();
    let diff: Vec<(&str, &str)> = example
        .lines()
        .zip(packaged.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(example.lines().count(), packaged.lines().count());
    assert_eq!(diff.len(), 1, "{diff:?}");
    assert!(diff[0].0.starts_with("secret = "), "{diff:?}");
    assert!(
        diff[0].1.starts_with("secret-file = \"tsig.key\""),
        "{diff:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hosts.toml"), &packaged).unwrap();
    let err = HostTable::load(&dir.path().join("hosts.toml")).unwrap_err();
    assert!(err.to_string().contains("tsig.key"), "{err}");
    std::fs::write(dir.path().join("tsig.key"), format!("{OTHER_SECRET}\n")).unwrap();
    let t = HostTable::load(&dir.path().join("hosts.toml")).unwrap();
    assert!(t.warnings().is_empty(), "{:?}", t.warnings());
}
