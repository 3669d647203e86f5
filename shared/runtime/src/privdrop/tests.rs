//! The plan, the masks, `/proc` parsing, and the real drop in child processes.

use super::*;

fn users(name: &str) -> Option<(u32, u32)> {
    match name {
        "lansuite" => Some((998, 997)),
        "toor" => Some((0, 0)),
        _ => None,
    }
}

#[test]
fn not_root_skips_whatever_the_user() {
    assert_eq!(
        plan(1000, "lansuite", users).unwrap(),
        Plan::Skip(Dropped::NotRoot)
    );
    assert_eq!(
        plan(1000, "missing", users).unwrap(),
        Plan::Skip(Dropped::NotRoot)
    );
}

#[test]
fn root_drops_to_an_existing_user() {
    assert_eq!(
        plan(0, "lansuite", users).unwrap(),
        Plan::Drop {
            user: "lansuite".into(),
            uid: 998,
            gid: 997
        }
    );
}

#[test]
fn root_stays_root_only_when_asked_to() {
    assert_eq!(
        plan(0, "root", users).unwrap(),
        Plan::Skip(Dropped::StayedRoot)
    );
    // A user whose uid is 0 is root under another name: no drop to claim.
    assert_eq!(
        plan(0, "toor", users).unwrap(),
        Plan::Skip(Dropped::StayedRoot)
    );
}

#[test]
fn root_refuses_to_start_when_the_user_is_missing() {
    let e = plan(0, "missing", users).unwrap_err();
    assert!(
        matches!(&e, Error::NoSuchUser { user } if user == "missing"),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains("refusing to run as root"), "{text}");
    assert!(text.contains("adduser --system --group missing"), "{text}");
    assert!(text.contains("--user root"), "{text}");
    assert!(matches!(plan(0, "", users), Err(Error::NoUser)));
}

#[test]
fn a_missing_user_fails_the_real_drop_as_root() {
    if !Uid::effective().is_root() {
        return; // not root: nothing to refuse
    }
    // Refused before anything changes: still root afterwards, in this test process.
    let e = drop_privileges("no-such-lansuite-user", &[]).unwrap_err();
    assert!(matches!(e, Error::NoSuchUser { .. }), "{e}");
    let e = prepare("no-such-lansuite-user", &[], &[]).unwrap_err();
    assert!(matches!(e, Error::NoSuchUser { .. }), "{e}");
    assert!(Uid::effective().is_root());
}

#[test]
fn masks_match_the_kernel_numbers() {
    assert_eq!(mask(&[]), 0);
    assert_eq!(mask(&[Capability::NetBindService]), 0x400);
    assert_eq!(
        mask(&[Capability::NetAdmin, Capability::NetRaw]),
        0x3000,
        "CAP_NET_ADMIN=12, CAP_NET_RAW=13"
    );
}

#[test]
fn status_lines_parse() {
    let text = "Name:\tdnsd\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n\
                CapInh:\t0000000000000000\nCapPrm:\t0000000000001000\nCapEff:\t0000000000001000\n\
                CapBnd:\t0000000000001000\nCapAmb:\t0000000000001000\n";
    assert_eq!(
        parse_status(text),
        Some(([65534; 4], [0x1000, 0x1000, 0x1000]))
    );
    assert_eq!(parse_status("Name:\tx\n"), None);
}

#[test]
fn own_status_parses() {
    let text = std::fs::read_to_string("/proc/self/status").unwrap();
    let (ids, _) = parse_status(&text).expect("this kernel's status format");
    assert_eq!(ids[1], Uid::effective().as_raw());
}

/// Run by [`the_real_drop_in_a_child_process`] in a child process of its own (the drop cannot
/// be undone, so never in the test runner itself).
#[test]
fn child_drop() {
    if std::env::var_os("PRIVDROP_CHILD").is_none() {
        return; // only meaningful in the child
    }
    let d = drop_privileges("nobody", &[]).unwrap();
    let nobody = User::from_name("nobody").unwrap().unwrap();
    assert!(matches!(d, Dropped::Dropped { uid, caps: 0, .. } if uid == nobody.uid.as_raw()));
    let (ids, caps) = parse_status(&std::fs::read_to_string("/proc/self/status").unwrap()).unwrap();
    assert_eq!(ids, [nobody.uid.as_raw(); 4]);
    assert_eq!(caps, [0, 0, 0]);
    // A second call is a no-op: no longer root.
    assert_eq!(drop_privileges("nobody", &[]).unwrap(), Dropped::NotRoot);
}

/// Run in a child process like [`child_drop`]: keeping a capability needs a single thread.
#[test]
fn child_keep() {
    if std::env::var_os("PRIVDROP_CHILD").is_none() {
        return;
    }
    // libtest runs this on a thread of its own: keeping capabilities is refused, nothing
    // changes.
    assert!(thread_count() > 1);
    let e = drop_privileges("nobody", &[Capability::NetBindService]).unwrap_err();
    assert!(e.to_string().contains("threads exist"), "{e}");
    assert!(Uid::effective().is_root());
    // A forked child has one thread: the drop keeps CAP_NET_BIND_SERVICE, for itself and
    // (ambient) for the programs it runs.
    // SAFETY: the child only runs the drop, reads /proc, binds, spawns and exits.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            let ok = std::panic::catch_unwind(keep_in_one_thread).is_ok();
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let st = nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(st, nix::sys::wait::WaitStatus::Exited(child, 0));
        }
    }
}

fn keep_in_one_thread() {
    let nobody = User::from_name("nobody").unwrap().unwrap().uid.as_raw();
    let d = drop_privileges("nobody", &[Capability::NetBindService]).unwrap();
    assert!(matches!(d, Dropped::Dropped { uid, caps: 0x400, .. } if uid == nobody));
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_eq!(parse_status(&status), Some(([nobody; 4], [0x400; 3])));
    assert!(status.contains("CapBnd:\t0000000000000400"), "{status}");
    // The kept capability works: a port below 1024 binds (the first free one).
    let bound = (1..1024u16).find_map(|p| match std::net::TcpListener::bind(("127.0.0.1", p)) {
        Ok(l) => Some(l),
        Err(e) => {
            assert_ne!(e.kind(), std::io::ErrorKind::PermissionDenied, "port {p}");
            None
        }
    });
    assert!(bound.is_some());
    // A program it runs (lbd runs nft) inherits it.
    let out = std::process::Command::new("grep")
        .args(["^CapEff", "/proc/self/status"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("0000000000000400"), "{text}");
}

fn run_child(test: &str) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture"])
        .env("PRIVDROP_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("1 passed"), "{text}");
}

#[test]
fn the_real_drop_in_a_child_process() {
    if !Uid::effective().is_root() {
        assert_eq!(
            drop_privileges("nobody", &[Capability::NetAdmin]).unwrap(),
            Dropped::NotRoot
        );
        return;
    }
    run_child("privdrop::tests::child_drop");
    run_child("privdrop::tests::child_keep");
}
