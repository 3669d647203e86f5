use super::*;
use dhcproto::Encodable;
use dhcproto::v4::{DhcpOption, Message, MessageType};
use std::time::Instant;

fn discover(xid: u32) -> Vec<u8> {
    let mut m = Message::default();
    m.set_chaddr(&[2, 0, 0, 0, 0, 1]).set_xid(xid);
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Discover));
    m.to_vec().unwrap()
}

/// Junk to port 67 (1,000 four-byte datagrams) is counted as bad and never as a new exchange:
/// the DISCOVERs after it are all admitted under a limit of 10.
#[test]
fn junk_does_not_use_up_the_discover_allowance() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (tx, _rx) = mpsc::channel(16);
        let (new_tx, mut new_rx) = mpsc::channel(64);
        let stats = Arc::new(Stats::default());
        let mut r = Receiver {
            socks: vec![(sock, "lo".into())],
            tx,
            new_tx,
            stats: stats.clone(),
            log: RateLog::default(),
            admission: Admission::new(Instant::now()),
            admit_limit: Arc::new(AtomicU32::new(10)),
        };
        let src = "127.0.0.1:68".parse().unwrap();
        for _ in 0..1000 {
            r.datagram(0, &[1, 2, 3, 4], src);
        }
        for xid in 0..5 {
            r.datagram(0, &discover(xid), src);
        }
        let mut queued = 0;
        while new_rx.try_recv().is_ok() {
            queued += 1;
        }
        assert_eq!(queued, 5, "DISCOVERs queued after the junk");
        assert_eq!(stats.bad.get(), 1000);
        assert_eq!(stats.overload.get(), 0);
        // The allowance itself still holds for parsed DISCOVERs.
        for xid in 5..100 {
            r.datagram(0, &discover(xid), src);
        }
        let mut more = 0;
        while new_rx.try_recv().is_ok() {
            more += 1;
        }
        assert_eq!(more, 5, "the limit of 10 counts parsed DISCOVERs");
    });
}
