//! `dnsd::serve` driven without a command line: on loopback with ephemeral ports it answers a
//! query, and returns once its shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_then_stops_when_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let table = hostfile::HostTable::load(&hostfile::checkcases::example_path()).unwrap();
    let view = Arc::new(dnsd::view(&table));
    let store = dnsd::store::Store::open(&dir.path().join("dnsd.redb")).unwrap();
    let (state, changed) = dnsd::state::Shared::new(view.clone(), store).unwrap();
    let sockets = dnsd::sockets::bind(&["127.0.0.1:0".parse().unwrap()], 1).unwrap();
    let udp = sockets[0].0[0].local_addr().unwrap();
    let (_tx, views) = tokio::sync::watch::channel(view);
    let shutdown = CancellationToken::new();
    let setup = dnsd::Setup {
        state: state.clone(),
        sockets,
        changed,
    };
    let served = tokio::spawn(dnsd::serve(setup, views, shutdown.clone()));

    let mut q = Message::query();
    q.metadata.id = 0x5150;
    q.add_query(Query::query(
        Name::from_ascii("main.it-ishin.com.").unwrap(),
        RecordType::A,
    ));
    let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.send_to(&q.to_vec().unwrap(), udp).await.unwrap();
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
        .await
        .expect("an answer within 5 s")
        .unwrap();
    let r = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(r.id, 0x5150);
    assert_eq!(r.response_code, ResponseCode::NoError);
    assert!(r.authoritative);
    assert!(!r.answers.is_empty(), "main.it-ishin.com has A records");
    assert_eq!(state.stats.queries.get(), 1);

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), served)
        .await
        .expect("serve returns within 10 s of the cancel")
        .unwrap()
        .unwrap();
}
