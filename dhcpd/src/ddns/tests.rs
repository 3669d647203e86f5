use super::*;
use crate::testutil::config;
use base64::Engine;

fn laptop(add: bool) -> Dns {
    let (name, ip) = ("laptop".to_owned(), Ipv4Addr::new(192, 168, 10, 201));
    let id = ClientId {
        kind: 0,
        data: vec![1, 2, 0, 0, 0, 0x10, 0x99],
    };
    if add {
        Dns::Add { name, ip, id }
    } else {
        Dns::Remove { name, ip, id }
    }
}

fn updater() -> Updater {
    Updater::new(config().view.ddns.as_ref().unwrap()).unwrap()
}

fn msg(action: &Dns, step: Step) -> Message {
    let m = updater().message_for(action, step).unwrap().unwrap();
    // What goes on the wire decodes to the same message (the DHCID as an opaque type 49).
    let back = Message::from_vec(&m.to_vec().unwrap()).unwrap();
    assert_eq!(back.answers, m.answers);
    assert_eq!(back.authorities, m.authorities);
    m
}

fn is_dhcid(r: &Record, owner: &str, want: &[u8]) -> bool {
    r.name.to_string() == owner
        && r.dns_class == DNSClass::IN
        && matches!(&r.data, RData::Unknown { code, rdata }
            if *code == RecordType::Unknown(49) && rdata.anything == want)
}

#[test]
fn dhcid_matches_the_rfc4701_examples() {
    use crate::lease::KeySource;
    let n = |s: &str| Name::from_ascii(s).unwrap();
    let b64 = |id: &ClientId, name: &str| {
        base64::engine::general_purpose::STANDARD.encode(dhcid_rdata(id, &n(name)))
    };
    // RFC 4701 section 3.6, the presentation forms given there.
    // Example 3: no option 61, htype 1 + chaddr 01:02:03:04:05:06, client.example.com.
    let mac = [1, 2, 3, 4, 5, 6];
    let key = [&[1][..], &mac[..]].concat();
    let id = ClientId::of(&key, &mac, KeySource::Hardware);
    assert_eq!(id.kind, 0);
    assert_eq!(
        b64(&id, "client.example.com."),
        "AAABxLmlskllE0MVjd57zHcWmEH3pCQ6VytcKD//7es/deY="
    );
    // Example 2: option 61 = 01:07:08:09:0a:0b:0c, chi.example.com (names compare without
    // regard to case).
    let cid = [1, 7, 8, 9, 10, 11, 12];
    let id = ClientId::of(&cid, &[7, 8, 9, 10, 11, 12], KeySource::ClientId);
    assert_eq!(id.kind, 1);
    assert_eq!(
        b64(&id, "Chi.EXAMPLE.com."),
        "AAEBOSD+XR3Os/0LozeXVqcNc7FwCfQdWL3b/NaiUDlW2No="
    );
    // Example 1: DUID 00:01:00:06:41:2d:f1:66:01:02:03:04:05:06, chi6.example.com; here
    // carried in an RFC 4361 client identifier (type 255, IAID 1).
    let duid = [0, 1, 0, 6, 0x41, 0x2d, 0xf1, 0x66, 1, 2, 3, 4, 5, 6];
    let rfc4361 = [&[255, 0, 0, 0, 1][..], &duid[..]].concat();
    let id = ClientId::of(&rfc4361, &mac, KeySource::ClientId);
    assert_eq!((id.kind, &id.data[..]), (2, &duid[..]));
    assert_eq!(
        b64(&id, "chi6.example.com."),
        "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA="
    );
    // Option 61 that equals htype + chaddr is still type 1 (what the client sent).
    let id = ClientId::of(&key, &mac, KeySource::ClientId);
    assert_eq!(id.kind, 1);
    assert_ne!(
        b64(&id, "client.example.com."),
        "AAABxLmlskllE0MVjd57zHcWmEH3pCQ6VytcKD//7es/deY="
    );
}

#[test]
fn add_claims_a_free_name_with_a_dhcid_else_replaces_only_its_own() {
    let add = laptop(true);
    let fqdn = Name::from_ascii("laptop.it-ishin.com.").unwrap();
    let Dns::Add { id, .. } = &add else {
        unreachable!()
    };
    let ours = dhcid_rdata(id, &fqdn);

    let m = msg(&add, Step::AddNew);
    assert_eq!(m.queries[0].name().to_string(), "it-ishin.com.");
    // prerequisite: the name is not in use (NONE ANY)
    assert_eq!(m.answers.len(), 1);
    assert_eq!(m.answers[0].dns_class, DNSClass::NONE);
    assert_eq!(m.answers[0].data, RData::Update0(RecordType::ANY));
    assert_eq!(m.authorities.len(), 2);
    assert_eq!(
        m.authorities[0].data,
        RData::A(A(Ipv4Addr::new(192, 168, 10, 201)))
    );
    assert!(is_dhcid(&m.authorities[1], "laptop.it-ishin.com.", &ours));

    let m = msg(&add, Step::Replace);
    // prerequisite: the name carries exactly our DHCID
    assert_eq!(m.answers.len(), 1);
    assert!(is_dhcid(&m.answers[0], "laptop.it-ishin.com.", &ours));
    assert_eq!(m.answers[0].ttl, 0);
    assert_eq!(m.authorities[0].dns_class, DNSClass::ANY);
    assert_eq!(m.authorities[0].data, RData::Update0(RecordType::A));

    let m = msg(&add, Step::AddPtr);
    assert_eq!(m.queries[0].name().to_string(), "10.168.192.in-addr.arpa.");
    assert!(m.answers.is_empty());
    assert!(is_dhcid(
        &m.authorities[3],
        "201.10.168.192.in-addr.arpa.",
        &ours
    ));

    // signed
    let up = updater();
    let mut m = up.message_for(&add, Step::AddNew).unwrap().unwrap();
    m.finalize(up.signer.as_ref().unwrap(), 1_700_000_000)
        .unwrap();
    let back = Message::from_vec(&m.to_vec().unwrap()).unwrap();
    assert!(back.signature.is_some());
}

#[test]
fn remove_touches_only_records_with_our_dhcid() {
    let rm = laptop(false);
    let fqdn = Name::from_ascii("laptop.it-ishin.com.").unwrap();
    let Dns::Remove { id, .. } = &rm else {
        unreachable!()
    };
    let ours = dhcid_rdata(id, &fqdn);

    let m = msg(&rm, Step::RemoveA);
    assert!(is_dhcid(&m.answers[0], "laptop.it-ishin.com.", &ours));
    let r = &m.authorities[0];
    assert_eq!(r.dns_class, DNSClass::NONE);
    assert_eq!(r.data, RData::A(A(Ipv4Addr::new(192, 168, 10, 201))));

    let m = msg(&rm, Step::RemoveDhcid);
    assert!(is_dhcid(&m.answers[0], "laptop.it-ishin.com.", &ours));
    // no A and no AAAA left at the name
    assert_eq!(m.answers[1].dns_class, DNSClass::NONE);
    assert_eq!(m.answers[1].data, RData::Update0(RecordType::A));
    assert_eq!(m.answers[2].data, RData::Update0(RecordType::AAAA));
    assert_eq!(m.authorities[0].data, RData::Update0(DHCID));
    assert_eq!(m.authorities[0].dns_class, DNSClass::ANY);

    let m = msg(&rm, Step::RemovePtr);
    // only while the PTR still names us
    assert_eq!(m.answers[0].dns_class, DNSClass::IN);
    assert_eq!(m.answers[0].data, RData::PTR(PTR(fqdn)));
}

#[test]
fn steps_follow_the_answers() {
    use ResponseCode::*;
    assert_eq!(Step::first(&laptop(true)), Step::AddNew);
    assert_eq!(Step::AddNew.next(Some(NoError)), Some(Step::AddPtr));
    assert_eq!(Step::AddNew.next(Some(YXDomain)), Some(Step::Replace));
    assert_eq!(Step::AddNew.next(Some(Refused)), None);
    assert_eq!(Step::AddNew.next(None), None);
    assert_eq!(Step::Replace.next(Some(NoError)), Some(Step::AddPtr));
    // another client's name: neither the A nor the PTR is written
    assert_eq!(Step::Replace.next(Some(NXRRSet)), None);
    assert_eq!(Step::AddPtr.next(Some(NoError)), None);

    assert_eq!(Step::first(&laptop(false)), Step::RemoveA);
    assert_eq!(Step::RemoveA.next(Some(NoError)), Some(Step::RemoveDhcid));
    // not ours any more: the forward records stay, our PTR still goes
    assert_eq!(Step::RemoveA.next(Some(NXRRSet)), Some(Step::RemovePtr));
    assert_eq!(Step::RemoveDhcid.next(Some(YXRRSet)), Some(Step::RemovePtr));
    assert_eq!(Step::RemovePtr.next(Some(NoError)), None);
}

#[test]
fn no_reverse_zone_no_ptr_step() {
    let mut up = updater();
    up.reverse.clear();
    assert!(
        up.message_for(&laptop(true), Step::AddPtr)
            .unwrap()
            .is_none()
    );
    assert!(
        up.message_for(&laptop(false), Step::RemovePtr)
            .unwrap()
            .is_none()
    );
}

#[test]
fn jobs_show_in_logs_as_the_v4_actions_do() {
    for add in [true, false] {
        let d = laptop(add);
        assert_eq!(format!("{:?}", Job::from(&d)), format!("{d:?}"));
    }
}
