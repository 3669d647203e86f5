//! The command runners: bounded in time, no shell, environment passed, results reported.

use std::time::{Duration, Instant};

use super::*;

fn argv(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn a_command_past_its_timeout_is_killed_and_fails() {
    let t0 = Instant::now();
    let e = run_bounded(&argv(&["/bin/sleep", "5"]), Duration::from_millis(200), &[])
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn exit_status_and_environment() {
    let check = argv(&["/bin/sh", "-c", "test \"$LBD_STATE\" = MASTER"]);
    let ok = run_bounded(&check, Duration::from_secs(5), &[("LBD_STATE", "MASTER")])
        .await
        .unwrap();
    assert!(ok.success());
    let no = run_bounded(&check, Duration::from_secs(5), &[("LBD_STATE", "BACKUP")])
        .await
        .unwrap();
    assert!(!no.success());
}

#[tokio::test]
async fn no_shell_and_no_path_lookup() {
    // The words are arguments, not shell syntax; a bare name is not looked up as a shell would.
    let r = run_bounded(
        &argv(&["/bin/echo", "a;", "exit", "1"]),
        Duration::from_secs(5),
        &[],
    )
    .await
    .unwrap();
    assert!(r.success());
    assert!(
        run_bounded(&argv(&["/nonexistent/prog"]), Duration::from_secs(5), &[])
            .await
            .is_err()
    );
    assert!(run_bounded(&[], Duration::from_secs(5), &[]).await.is_err());
}

#[tokio::test]
async fn a_script_runner_reports_every_run_until_stopped() {
    let s = TrackScript {
        name: "chk".into(),
        argv: argv(&["/bin/false"]),
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(100),
        weight: 0,
        rise: 1,
        fall: 1,
    };
    let (tx, mut rx) = mpsc::channel(8);
    let stop = CancellationToken::new();
    let t = tokio::spawn(script_runner(s, tx, stop.clone()));
    for _ in 0..2 {
        let r = tokio::time::timeout(Duration::from_secs(2), rx.recv())
            .await
            .unwrap();
        assert_eq!(r, Some(("chk".to_owned(), false)));
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(2), t)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn notify_commands_run_in_transition_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("log");
    let line = format!("echo \"$LBD_INSTANCE $LBD_STATE\" >> {}", out.display());
    let cmd = Some(argv(&["/bin/sh", "-c", &line]));
    let n = Notify {
        master: cmd.clone(),
        backup: cmd.clone(),
        fault: cmd,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let t = tokio::spawn(notifier("gateway".into(), n, rx));
    for s in [State::Master, State::Fault, State::Backup, State::Master] {
        tx.send(s).unwrap();
    }
    drop(tx);
    tokio::time::timeout(Duration::from_secs(10), t)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "gateway MASTER\ngateway FAULT\ngateway BACKUP\ngateway MASTER\n"
    );
}
