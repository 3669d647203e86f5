use super::*;
use crate::answer::tests::catalog;
use hickory_proto::op::{MessageType, OpCode};
use hickory_proto::rr::rdata::{A, CNAME, NS, SOA};

fn n(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
    Record::from_rdata(n(owner), ttl, RData::A(A::new(ip[0], ip[1], ip[2], ip[3])))
}

fn cname(owner: &str, ttl: u32, to: &str) -> Record {
    Record::from_rdata(n(owner), ttl, RData::CNAME(CNAME(n(to))))
}

fn ns(owner: &str, to: &str) -> Record {
    Record::from_rdata(n(owner), 3600, RData::NS(NS(n(to))))
}

fn soa(owner: &str, ttl: u32) -> Record {
    let s = SOA::new(n("ns.example."), n("h.example."), 1, 1, 1, 1, 300);
    Record::from_rdata(n(owner), ttl, RData::SOA(s))
}

fn msg(rcode: ResponseCode, ans: Vec<Record>, auth: Vec<Record>, add: Vec<Record>) -> Message {
    let mut m = Message::new(1, MessageType::Response, OpCode::Query);
    m.metadata.response_code = rcode;
    m.answers = ans;
    m.authorities = auth;
    m.additionals = add;
    m
}

fn q(name: &str, t: RecordType) -> Query {
    Query::query(n(name), t)
}

fn show(rs: &[Record]) -> Vec<String> {
    rs.iter()
        .map(|r| format!("{} {} {}", r.name, r.ttl, r.data))
        .collect()
}

#[test]
fn poison_into_our_zone_is_answered_locally() {
    let cat = catalog();
    let q = q("poison.example.", RecordType::A);
    let mut m = msg(
        ResponseCode::NXDomain,
        vec![
            cname("poison.example.", 2_147_483_647, "main.it-ishin.com."),
            a("main.it-ishin.com.", 300, [6, 6, 6, 6]),
            a("victim.example.", 300, [6, 6, 6, 7]),
        ],
        vec![
            ns("it-ishin.com.", "evil.example."),
            ns("victim.example.", "evil.example."),
        ],
        vec![a("evil.example.", 300, [6, 6, 6, 8])],
    );
    scrub(&q, &mut m, &cat);
    assert_eq!(
        show(&m.answers),
        ["poison.example. 86400 main.it-ishin.com."]
    );
    assert_eq!(m.response_code, ResponseCode::NoError);
    assert!(m.authorities.is_empty() && m.additionals.is_empty());
    complete(&q, &mut m, &cat);
    let mut got = show(&m.answers);
    got.sort();
    assert_eq!(
        got,
        [
            "main.it-ishin.com. 3600 192.168.1.2",
            "main.it-ishin.com. 3600 192.168.10.1",
            "poison.example. 86400 main.it-ishin.com.",
        ]
    );
    assert_eq!(m.response_code, ResponseCode::NoError);
}

#[test]
fn chain_into_a_missing_or_delegated_name_of_ours() {
    let cat = catalog();
    // A name we do not have: NXDOMAIN from our zone (RFC 6604), our SOA, not the upstream's A.
    let q1 = q("p.example.", RecordType::A);
    let mut m = msg(
        ResponseCode::NoError,
        vec![
            cname("p.example.", 60, "nothere.it-ishin.com."),
            a("nothere.it-ishin.com.", 60, [6, 6, 6, 6]),
        ],
        vec![],
        vec![],
    );
    scrub(&q1, &mut m, &cat);
    complete(&q1, &mut m, &cat);
    assert_eq!(show(&m.answers), ["p.example. 60 nothere.it-ishin.com."]);
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    assert_eq!(m.authorities[0].name, n("it-ishin.com."));
    // Delegated from our zone: the chain is cut at the CNAME.
    let q2 = q("d.example.", RecordType::A);
    let mut m = msg(
        ResponseCode::NoError,
        vec![
            cname("d.example.", 60, "x.child.it-ishin.com."),
            a("x.child.it-ishin.com.", 60, [6, 6, 6, 6]),
        ],
        vec![ns("child.it-ishin.com.", "evil.example.")],
        vec![],
    );
    scrub(&q2, &mut m, &cat);
    complete(&q2, &mut m, &cat);
    assert_eq!(show(&m.answers), ["d.example. 60 x.child.it-ishin.com."]);
    assert!(m.authorities.is_empty());
}

#[test]
fn only_the_chain_and_in_bailiwick_authority_with_ttls_capped() {
    let cat = catalog();
    let q = q("a.example.org.", RecordType::A);
    let mut m = msg(
        ResponseCode::NoError,
        vec![
            a("unrelated.example.", 300, [6, 6, 6, 6]),
            cname("a.example.org.", 300, "b.example.net."),
            cname("b.example.net.", 2_147_483_647, "c.example.net."),
            a("c.example.net.", 2_147_483_647, [192, 0, 2, 1]),
            a("b.example.net.", 300, [6, 6, 6, 6]), // beside a CNAME: the CNAME is followed
            cname("side.example.net.", 300, "c.example.net."),
        ],
        vec![
            ns("example.net.", "ns.example.net."),
            ns("example.org.", "ns.example.org."), // not above the chain's last name
            ns("it-ishin.com.", "evil.example."),
            a("example.net.", 300, [6, 6, 6, 6]),
        ],
        vec![a("ns.example.net.", 300, [192, 0, 2, 53])],
    );
    scrub(&q, &mut m, &cat);
    complete(&q, &mut m, &cat);
    assert_eq!(
        show(&m.answers),
        [
            "a.example.org. 300 b.example.net.",
            "b.example.net. 86400 c.example.net.",
            "c.example.net. 86400 192.0.2.1",
        ]
    );
    assert_eq!(show(&m.authorities), ["example.net. 3600 ns.example.net."]);
    assert!(m.additionals.is_empty());
}

#[test]
fn negative_answers_keep_their_soa_and_loops_stop() {
    let cat = catalog();
    let q1 = q("nx.example.org.", RecordType::A);
    let mut m = msg(
        ResponseCode::NXDomain,
        vec![],
        vec![soa("example.org.", 2_147_483_647), soa("it-ishin.com.", 60)],
        vec![],
    );
    scrub(&q1, &mut m, &cat);
    assert_eq!(m.response_code, ResponseCode::NXDomain);
    assert_eq!(m.authorities.len(), 1);
    assert_eq!(m.authorities[0].name, n("example.org."));
    assert_eq!(m.authorities[0].ttl, TTL_CAP);

    let q2 = q("x.example.", RecordType::A);
    let mut m = msg(
        ResponseCode::NoError,
        vec![
            cname("x.example.", 60, "y.example."),
            cname("y.example.", 60, "x.example."),
        ],
        vec![],
        vec![],
    );
    scrub(&q2, &mut m, &cat);
    assert_eq!(show(&m.answers), ["x.example. 60 y.example."]);
    // A chain longer than MAX_CHAIN is cut there.
    let long: Vec<Record> = (0..20)
        .map(|i| {
            cname(
                &format!("c{i}.example."),
                60,
                &format!("c{}.example.", i + 1),
            )
        })
        .collect();
    let q3 = q("c0.example.", RecordType::A);
    let mut m = msg(ResponseCode::NoError, long, vec![], vec![]);
    scrub(&q3, &mut m, &cat);
    assert_eq!(m.answers.len(), MAX_CHAIN);
    // Asking for the CNAME itself: just it.
    let q4 = q("x.example.", RecordType::CNAME);
    let mut m = msg(
        ResponseCode::NoError,
        vec![
            cname("x.example.", 60, "main.it-ishin.com."),
            a("main.it-ishin.com.", 60, [6, 6, 6, 6]),
        ],
        vec![],
        vec![],
    );
    scrub(&q4, &mut m, &cat);
    complete(&q4, &mut m, &cat);
    assert_eq!(show(&m.answers), ["x.example. 60 main.it-ishin.com."]);
}
