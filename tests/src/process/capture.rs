//! A child's output: two reader threads append to files and to memory and wake waiters.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use super::running::LogCursor;

/// Cap on output kept in memory per stream (the files keep everything).
const MEM_CAP: usize = 16 << 20;

/// Output of a child: two reader threads append to files and to memory and wake
/// waiters on every chunk.
#[derive(Debug)]
pub(super) struct Capture {
    state: Mutex<CaptureState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
pub(super) struct CaptureState {
    pub(super) bufs: [Vec<u8>; 2],
    pub(super) closed: usize,
}

impl Capture {
    pub(super) fn start(child: &mut Child, out: &Path, err: &Path) -> Arc<Self> {
        let cap = Arc::new(Capture {
            state: Mutex::new(CaptureState::default()),
            changed: Condvar::new(),
        });
        let readers: [Option<Box<dyn Read + Send>>; 2] = [
            child
                .stdout
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|r| Box::new(r) as Box<dyn Read + Send>),
        ];
        for (i, (reader, path)) in readers.into_iter().zip([out, err]).enumerate() {
            let mut file =
                File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
            let cap = Arc::clone(&cap);
            // Detached: a grandchild holding the pipe must not block the test; the
            // namespace teardown ends such grandchildren and so these threads.
            thread::spawn(move || {
                if let Some(mut r) = reader {
                    let mut chunk = [0u8; 8192];
                    while let Ok(n @ 1..) = r.read(&mut chunk) {
                        let _ = file.write_all(&chunk[..n]);
                        let mut s = cap.lock();
                        if s.bufs[i].len() < MEM_CAP {
                            s.bufs[i].extend_from_slice(&chunk[..n]);
                        }
                        cap.changed.notify_all();
                    }
                }
                cap.lock().closed += 1;
                cap.changed.notify_all();
            });
        }
        cap
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn text(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.lock().bufs[i]).into_owned()
    }

    /// The first complete or partial line after `cursor` containing `needle`.
    pub(super) fn find(&self, cursor: LogCursor, needle: &str) -> Option<String> {
        let s = self.lock();
        [(0, cursor.stdout), (1, cursor.stderr)]
            .into_iter()
            .find_map(|(i, from)| {
                let text = String::from_utf8_lossy(s.bufs[i].get(from..).unwrap_or_default());
                text.lines().find(|l| l.contains(needle)).map(str::to_owned)
            })
    }

    /// Block until new output arrives or `wait` passes.
    pub(super) fn wait_change(&self, wait: Duration) {
        let s = self.lock();
        let _ = self.changed.wait_timeout(s, wait);
    }

    /// Block (bounded) until both pipes are closed.
    pub(super) fn wait_closed(&self, wait: Duration) {
        let s = self.lock();
        let _ = self.changed.wait_timeout_while(s, wait, |s| s.closed < 2);
    }
}
