//! The yardstick must be a correct relay, or its figures mean nothing: bytes both ways, a
//! half-close passed on, the other direction still open after it, backends taken in turn.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command};
use std::time::Duration;

struct Relay(Child);
impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (bound, then released for the relay to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects to the relay, retrying (bounded) until its listeners are up.
fn connect(port: u16) -> TcpStream {
    for _ in 0..200 {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the relay did not listen on port {port} within 2 s");
}

#[test]
fn carries_bytes_both_ways_passes_half_closes_and_takes_backends_in_turn() {
    let backends: Vec<TcpListener> = (0..2)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let port = free_port();
    let mut args = vec![format!("127.0.0.1:{port}")];
    args.extend(backends.iter().map(|b| b.local_addr().unwrap().to_string()));
    let _relay = Relay(
        Command::new(env!("CARGO_BIN_EXE_lb-ceiling"))
            .env("LB_CEILING_THREADS", "1")
            .args(&args)
            .spawn()
            .unwrap(),
    );
    let mut seen = Vec::new();
    for round in 0..2 {
        let mut c = connect(port);
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The relay connects to its backend as it accepts: one of the two has a connection.
        let big = vec![round as u8; 100_000];
        c.write_all(&big).unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        let (which, mut b) = (0..1000)
            .find_map(|_| {
                let got = backends.iter().enumerate().find_map(|(i, l)| {
                    l.set_nonblocking(true).unwrap();
                    l.accept().ok().map(|(s, _)| (i, s))
                });
                if got.is_none() {
                    std::thread::sleep(Duration::from_millis(5));
                }
                got
            })
            .expect("the relay connected to no backend within 5 s");
        b.set_nonblocking(false).unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap(); // ends only if the client's half-close was passed on
        assert_eq!(got, big);
        b.write_all(b"answer after the half-close").unwrap();
        drop(b);
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        assert_eq!(back, b"answer after the half-close");
        seen.push(which);
    }
    seen.sort();
    assert_eq!(seen, vec![0, 1], "one connection to each backend");
}
