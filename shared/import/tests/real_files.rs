//! Issue 15, item 4: configurations in the form the real tools write, each with a construct the
//! importers used to refuse or lose. The rule: a file is refused only for a real syntax error;
//! what the host file cannot express is listed with its file and line; a security property
//! (signed updates, a health check that can pass) is never weakened silently.

use std::path::PathBuf;

use hostfile::HostTable;
use import::{Format, Imported, Unsupported};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/import-samples")
        .join(name)
}

fn file(format: Format, name: &str) -> Imported {
    import::import_file(format, &sample(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn valid(i: &Imported) -> HostTable {
    i.check()
        .unwrap_or_else(|e| panic!("does not validate:\n{e}\n---\n{}", i.to_toml()))
}

/// The entries listed at `name:line`.
fn at<'a>(i: &'a Imported, name: &str, line: usize) -> Vec<&'a Unsupported> {
    i.unsupported
        .iter()
        .filter(|u| u.file.file_name().is_some_and(|f| f == name) && u.line == line)
        .collect()
}

// ------------------------------------------------------------------ 1. bytes that are not UTF-8

#[test]
fn dhcpd_conf_with_latin1_shift_jis_or_euc_jp_comments_imports() {
    for (name, net, host) in [
        ("dhcpd-latin1.conf", "192.168.50.0/24", "drucker"),
        ("dhcpd-sjis.conf", "192.168.60.0/24", "fukugouki"),
        ("dhcpd-eucjp.conf", "192.168.60.0/24", "fukugouki"),
    ] {
        assert!(
            std::str::from_utf8(&std::fs::read(sample(name)).unwrap()).is_err(),
            "{name} must hold bytes that are not UTF-8"
        );
        let i = file(Format::IscDhcpd, name);
        let t = valid(&i);
        let v = t.dhcp_view();
        assert_eq!(v.subnets.len(), 1, "{name}");
        assert_eq!(v.subnets[0].network.to_string(), net);
        assert_eq!(v.subnets[0].pools.len(), 1, "{name}");
        assert!(
            v.reservations.iter().any(|r| r.hostname == host),
            "{name}: {:?}",
            v.reservations
        );
        // Bytes inside comments are harmless: nothing is said about them.
        let comments: Vec<_> = i
            .unsupported
            .iter()
            .filter(|u| u.reason.contains("not UTF-8") && u.line <= 3)
            .collect();
        assert!(comments.is_empty(), "{name}: {comments:#?}");
    }
}

#[test]
fn a_byte_that_is_not_utf8_outside_a_comment_is_named_with_its_line() {
    let i = file(Format::IscDhcpd, "dhcpd-latin1.conf");
    valid(&i);
    let l = at(&i, "dhcpd-latin1.conf", 26);
    assert!(
        l.iter()
            .any(|u| u.reason.contains("not UTF-8") && u.construct.contains("host-name")),
        "{:#?}",
        i.unsupported
    );
    // Only that line: the Latin-1 comments (lines 1, 2, 12, 18) are not listed.
    let n = i
        .unsupported
        .iter()
        .filter(|u| u.reason.contains("not UTF-8"))
        .count();
    assert_eq!(n, 1, "{:#?}", i.unsupported);
}

#[test]
fn the_import_command_takes_a_latin1_dhcpd_conf() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hosts.toml");
    let args = import::command::ImportArgs {
        files: vec![sample("dhcpd-latin1.conf")],
        origin: None,
        format: None,
        output: Some(out.clone()),
    };
    assert_eq!(import::command::run(&args, Format::IscDhcpd), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    HostTable::from_toml(&text).unwrap();
    assert!(text.contains("\"192.168.50.0/24\""), "{text}");
}
