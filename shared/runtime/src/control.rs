//! The local control socket: `dhcpd leases`, `dnsd status`, `lbd status` ask the running daemon
//! rather than reading its files. One request line (a command and its arguments) in, one JSON
//! document out, then the connection closes. The socket is mode 0660: root and the daemon's group.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio_util::sync::CancellationToken;

const MAX_LINE: usize = 4096;
const TIMEOUT: Duration = Duration::from_secs(5);

/// Answers a command (`args[0]`) with a JSON document. Runs on the blocking pool: it may block.
pub type Handler = Arc<dyn Fn(&[&str]) -> serde_json::Value + Send + Sync>;

/// Binds `path` (replacing a stale socket) and answers requests with `handler` until `shutdown`,
/// then removes the socket file.
pub fn serve(path: &Path, handler: Handler, shutdown: CancellationToken) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    let path: PathBuf = path.to_owned();
    tracing::info!(socket = %path.display(), "control socket listening");
    tokio::spawn(async move {
        loop {
            let (sock, _) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
            };
            let h = handler.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(TIMEOUT, async move {
                    let (r, mut w) = sock.into_split();
                    let mut line = String::new();
                    let mut r = tokio::io::BufReader::new(r).take(MAX_LINE as u64);
                    r.read_line(&mut line).await.ok()?;
                    let args: Vec<&str> = line.split_whitespace().collect();
                    let reply = if args.is_empty() {
                        serde_json::json!({"error": "empty request"})
                    } else {
                        // Handlers may block (a database read): off the async threads.
                        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
                        tokio::task::spawn_blocking(move || {
                            h(&args.iter().map(String::as_str).collect::<Vec<_>>())
                        })
                        .await
                        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
                    };
                    let mut out = serde_json::to_vec(&reply).ok()?;
                    out.push(b'\n');
                    w.write_all(&out).await.ok()
                })
                .await;
            });
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

/// Sends `command` to the daemon at `path` and returns its JSON answer (blocking; for CLIs).
pub fn request(path: &Path, command: &str) -> std::io::Result<serde_json::Value> {
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{}: {e} (is the daemon running? see --runtime-dir)",
                path.display()
            ),
        )
    })?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(command.as_bytes())?;
    s.write_all(b"\n")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_reaches_the_handler_and_the_socket_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let stop = CancellationToken::new();
        let h: Handler = Arc::new(|args| serde_json::json!({ "cmd": args[0], "n": args.len() }));
        serve(&path, h, stop.clone()).unwrap();
        let p = path.clone();
        let v = tokio::task::spawn_blocking(move || request(&p, "status --json"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, serde_json::json!({"cmd": "status", "n": 2}));
        stop.cancel();
        for _ in 0..100 {
            if !path.exists() {
                return;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("socket file not removed");
    }

    /// A handler that blocks (a database read) runs off the runtime's thread: a task on the same
    /// single-threaded runtime still runs meanwhile (here: the one that unblocks the handler).
    #[tokio::test]
    async fn a_blocking_handler_leaves_the_runtime_running() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let stop = CancellationToken::new();
        let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let go_rx = std::sync::Mutex::new(go_rx);
        let h: Handler = Arc::new(move |_| {
            let _ = started_tx.send(());
            let unblocked = go_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(3))
                .is_ok();
            serde_json::json!({ "unblocked": unblocked })
        });
        serve(&path, h, stop.clone()).unwrap();
        tokio::spawn(async move {
            if started_rx.recv().await.is_some() {
                let _ = go_tx.send(());
            }
        });
        let p = path.clone();
        let v = tokio::task::spawn_blocking(move || request(&p, "leases"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(v, serde_json::json!({"unblocked": true}));
        stop.cancel();
    }
}
