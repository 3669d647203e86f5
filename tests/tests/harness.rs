//! The harness's own guarantees: readiness, failure reporting, timeouts, cleanup.

use std::path::Path;
use std::time::Duration;

use e2e::{Lab, Proto, Ready, RunError};

#[test]
fn log_line_readiness_and_cleanup_of_strays() {
    e2e::require_netns!("sh", "sleep");
    let lab = Lab::new("proc");
    let prefix = format!("{}-", lab.name());
    let host = lab.host("a");
    let stray_file = lab.dir().join("stray.pid");
    // The stray `sleep` escapes the guard (its parent does not wait for it): only
    // the namespace teardown can find it.
    let script = format!(
        "sleep 300 & echo $! > {}; echo starting; echo 'listening on 127.0.0.1:5300' >&2; exec sleep 300",
        stray_file.display()
    );
    let mut p = host
        .process("sh")
        .args(["-c", &script])
        .ready(Ready::Log("listening on".into()))
        .timeout(Duration::from_secs(10))
        .spawn();
    assert!(p.is_running());
    assert!(p.stderr().contains("listening on"));
    // stdout is a separate pipe with its own reader: no ordering across streams.
    p.wait_for_log("starting", Duration::from_secs(10)).unwrap();
    assert!(p.stdout().contains("starting"));
    assert!(
        std::fs::read_to_string(p.stdout_path())
            .unwrap()
            .contains("starting")
    );
    let pid = p.pid();
    let stray: u32 = std::fs::read_to_string(&stray_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(!e2e::procstatus::is_gone(stray));

    drop(p);
    assert!(
        e2e::procstatus::is_gone(pid),
        "guard did not stop pid {pid}"
    );
    assert!(
        !e2e::procstatus::is_gone(stray),
        "stray should live until the lab goes"
    );
    drop(host);
    drop(lab);
    assert!(
        e2e::procstatus::is_gone(stray),
        "teardown left stray pid {stray}"
    );
    assert_eq!(e2e::netns_with_prefix(&prefix), Vec::<String>::new());
}

#[test]
fn notify_readiness() {
    e2e::require_netns!("python3");
    let lab = Lab::new("notify");
    let host = lab.host("a");
    let script = r#"
import os, socket, time
print("configuring", flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=loading\nREADY=1", os.environ["NOTIFY_SOCKET"])
time.sleep(300)
"#;
    let mut p = host.spawn_daemon(
        "python3",
        &["-c", script],
        Ready::Notify,
        Duration::from_secs(10),
    );
    assert!(p.is_running());
    let msgs = p.notify_messages();
    assert!(msgs.iter().any(|m| m.contains("READY=1")), "{msgs:?}");
    assert_eq!(p.wait_notify(0, "STATUS=loading", Duration::ZERO), Ok(0));
    let st = p.stop();
    assert!(!st.success());
}

#[test]
fn port_readiness_is_per_namespace() {
    e2e::require_netns!("python3");
    let lab = Lab::new("port");
    let a = lab.host("a");
    let b = lab.host("b");
    let script = "import socket, time\n\
                  u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('0.0.0.0', 5300))\n\
                  t = socket.socket(); t.bind(('127.0.0.1', 5301)); t.listen()\n\
                  time.sleep(300)\n";
    let mut p = a
        .process("python3")
        .args(["-c", script])
        .ready(Ready::Udp(5300))
        .spawn();
    assert!(a.port_bound(Proto::Udp, 5300));
    // The TCP listener comes after the UDP bind: wait for it too.
    p.wait_port(Proto::Tcp, 5301, Duration::from_secs(10))
        .unwrap();
    assert!(!b.port_bound(Proto::Udp, 5300), "namespaces are separate");
    assert!(!a.port_bound(Proto::Tcp, 5300));
}

#[test]
fn exit_before_ready_reports_output() {
    e2e::require_netns!("sh");
    let lab = Lab::new("early");
    let host = lab.host("a");
    let err = host
        .process("sh")
        .args(["-c", "echo 'config error: bad key' >&2; exit 64"])
        .ready(Ready::Notify)
        .timeout(Duration::from_secs(10))
        .try_spawn()
        .unwrap_err();
    assert_eq!(err.status.and_then(|s| s.code()), Some(64), "{err}");
    assert!(err.stderr.contains("config error: bad key"), "{err}");
    assert!(err.to_string().contains("before notifying"), "{err}");

    let err = host
        .process("sleep")
        .arg("300")
        .ready(Ready::Log("never".into()))
        .timeout(Duration::from_millis(300))
        .try_spawn()
        .unwrap_err();
    assert!(err.reason.contains("within"), "{err}");
    assert!(err.status.is_some(), "the process must be stopped");
}

#[test]
fn run_checked_unchecked_and_timeout() {
    e2e::require_netns!("sh", "sleep", "cat");
    let lab = Lab::new("run");
    let host = lab.host("a");
    let out = host.run(&["sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    let out = host.run_unchecked(&["sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(matches!(
        host.try_run(&["sh", "-c", "exit 3"]),
        Err(RunError::Failed { .. })
    ));
    let out = host.run_stdin(&["cat"], b"update add x\nsend\n");
    assert_eq!(out.stdout, b"update add x\nsend\n");
    let started = std::time::Instant::now();
    let res = host.run_timeout(&["sleep", "30"], None, Duration::from_millis(200));
    assert!(matches!(res, Err(RunError::Timeout { .. })), "{res:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Commands run inside the namespace: only `lo` exists there.
    let out = host.run(&["ip", "-o", "link"]);
    let links = String::from_utf8_lossy(&out.stdout);
    assert_eq!(links.lines().count(), 1, "{links}");
}

#[test]
fn labs_have_unique_names() {
    e2e::require_netns!();
    let a = Lab::new("uniq");
    let b = Lab::new("uniq");
    assert_ne!(a.name(), b.name());
    assert!(a.name().contains(&std::process::id().to_string()));
    let ha = a.host("main");
    let hb = b.host("main");
    assert_ne!(ha.netns(), hb.netns());
    assert!(Path::new(&format!("/run/netns/{}", ha.netns())).exists());
}

#[test]
fn bin_path_honours_explicit_dir() {
    // E2E_BIN_DIR is read, never set here (no process-global mutation); check
    // the fallback: a name that is not built is an error naming the fix.
    if std::env::var_os("E2E_BIN_DIR").is_none() {
        let err = e2e::try_bin_path("no-such-daemon").unwrap_err();
        assert!(err.contains("cargo build"), "{err}");
    }
}
