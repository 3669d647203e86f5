use super::*;
use crate::ddns::{DHCID, Step, dhcid_rdata};
use base64::Engine;
use hickory_proto::op::Message;
use hickory_proto::rr::rdata::{AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

/// A host file with one IPv4 and one IPv6 subnet and dynamic DNS for example.com.
const HOSTS: &str = r#"domain = "example.com"
[[subnet]]
network = "192.168.10.0/24"
[[subnet]]
name = "lan6"
network = "fd00:10::/64"
[[subnet.pool]]
range = "fd00:10::1000-fd00:10::10ff"
[key.dhcp-update]
algorithm = "hmac-sha256"
secret = "bGFuc3VpdGUtZXhhbXBsZS1rZXktY2hhbmdlLW1lLW5vdw=="
[dhcp]
ddns = { server = "127.0.0.1", key = "dhcp-update" }
"#;

/// RFC 4701 section 3.6, example 1: a DUID and the name chi6.example.com.
const CHI6_DUID: [u8; 14] = [0, 1, 0, 6, 0x41, 0x2d, 0xf1, 0x66, 1, 2, 3, 4, 5, 6];
const CHI6_DHCID: &str = "AAIBY2/AuCccgoJbsaxcQc9TUapptP69lOjxfNuVAA2kjEA=";

fn updater() -> Updater {
    let t = hostfile::HostTable::from_toml(HOSTS).expect("host file");
    Updater::new(t.dhcp_view().ddns.as_ref().expect("ddns")).expect("updater")
}

fn addr() -> Ipv6Addr {
    "fd00:10::1001".parse().unwrap()
}

fn chi6(add: bool) -> Job {
    job(
        add,
        &CHI6_DUID,
        &Published {
            addr: addr(),
            name: "chi6".into(),
        },
    )
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn dhcid_in(section: &[hickory_proto::rr::Record]) -> Vec<u8> {
    section
        .iter()
        .find_map(|r| match &r.data {
            RData::Unknown { code, rdata } if *code == DHCID => Some(rdata.anything.clone()),
            _ => None,
        })
        .expect("a DHCID record")
}

#[test]
fn dhcid_type_2_from_the_duid_matches_rfc4701_example_1() {
    let name = Name::from_ascii("chi6.example.com.").unwrap();
    let rdata = dhcid_rdata(&client_id(&CHI6_DUID), &name);
    assert_eq!(b64(&rdata), CHI6_DHCID);
    // The formula of RFC 4701 section 3.3/3.5 written out: identifier type 0x0002, digest type
    // 1, SHA-256 over the DUID followed by the name in canonical wire form.
    let mut input = CHI6_DUID.to_vec();
    input.extend_from_slice(b"\x04chi6\x07example\x03com\x00");
    let digest = ring::digest::digest(&ring::digest::SHA256, &input);
    let mut want = vec![0, 2, 1];
    want.extend_from_slice(digest.as_ref());
    assert_eq!(rdata, want);
    // And what the updater puts in its messages for a DHCPv6 client named chi6.
    let m = updater()
        .job_message(&chi6(true), Step::AddNew)
        .unwrap()
        .unwrap();
    assert_eq!(b64(&dhcid_in(&m.authorities)), CHI6_DHCID);
}

#[test]
fn the_ip6_arpa_zone_of_an_ipv6_subnet_is_the_one_dnsd_serves() {
    let t = hostfile::HostTable::from_toml(HOSTS).expect("host file");
    let dd = t.dhcp_view().ddns.unwrap();
    let zone6 = "0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa";
    assert!(dd.reverse_zones.contains(&zone6.to_owned()), "{dd:?}");
    assert!(
        dd.reverse_zones
            .contains(&"10.168.192.in-addr.arpa".to_owned())
    );
    let served: Vec<String> = t
        .dns_view()
        .zones
        .iter()
        .map(|z| z.origin.clone())
        .collect();
    assert!(served.contains(&format!("{zone6}.")), "{served:?}");
}

#[test]
fn a_binding_gets_aaaa_ptr_and_dhcid_and_replaces_only_aaaa() {
    let up = updater();
    let add = chi6(true);
    let fqdn = Name::from_ascii("chi6.example.com.").unwrap();
    let m = up.job_message(&add, Step::AddNew).unwrap().unwrap();
    assert_eq!(m.queries[0].name().to_string(), "example.com.");
    assert_eq!(m.answers[0].dns_class, DNSClass::NONE);
    assert_eq!(m.answers[0].data, RData::Update0(RecordType::ANY));
    assert_eq!(m.authorities[0].name, fqdn);
    assert_eq!(m.authorities[0].data, RData::AAAA(AAAA(addr())));

    // The name holds our DHCID: only the AAAA RRset is replaced (an A of the same client stays).
    let m = up.job_message(&add, Step::Replace).unwrap().unwrap();
    assert_eq!(b64(&dhcid_in(&m.answers)), CHI6_DHCID);
    assert_eq!(m.authorities[0].dns_class, DNSClass::ANY);
    assert_eq!(m.authorities[0].data, RData::Update0(RecordType::AAAA));
    assert_eq!(m.authorities[1].data, RData::AAAA(AAAA(addr())));

    let m = up.job_message(&add, Step::AddPtr).unwrap().unwrap();
    assert_eq!(
        m.queries[0].name().to_string(),
        "0.0.0.0.0.0.0.0.0.1.0.0.0.0.d.f.ip6.arpa."
    );
    let rev = hostfile::ptr_name6(addr());
    assert_eq!(m.authorities[2].name.to_string(), rev);
    assert_eq!(m.authorities[2].data, RData::PTR(PTR(fqdn.clone())));
    assert_eq!(b64(&dhcid_in(&m.authorities)), CHI6_DHCID);

    // Removal: our AAAA only while the name is ours, then the DHCID once no address is left.
    let rm = chi6(false);
    let m = up.job_message(&rm, Step::RemoveA).unwrap().unwrap();
    assert_eq!(b64(&dhcid_in(&m.answers)), CHI6_DHCID);
    assert_eq!(m.authorities[0].dns_class, DNSClass::NONE);
    assert_eq!(m.authorities[0].data, RData::AAAA(AAAA(addr())));
    let m = up.job_message(&rm, Step::RemovePtr).unwrap().unwrap();
    assert_eq!(m.answers[0].name.to_string(), rev);
    assert_eq!(m.answers[0].data, RData::PTR(PTR(fqdn)));
    // The wire form decodes to the same records.
    let back = Message::from_vec(&m.to_vec().unwrap()).unwrap();
    assert_eq!(back.answers, m.answers);
}

#[test]
fn an_address_outside_every_reverse_zone_gets_no_ptr() {
    let mut j = chi6(true);
    j.ip = "2001:db8::1".parse().unwrap();
    assert!(updater().job_message(&j, Step::AddPtr).unwrap().is_none());
}

fn bound(iaid: u32, a: &str, name: Option<&str>) -> Event6 {
    Event6::Bound {
        duid: CHI6_DUID.to_vec(),
        iaid,
        addr: a.parse().unwrap(),
        name: name.map(Into::into),
    }
}

fn published(a: &str, name: &str) -> Published {
    Published {
        addr: a.parse().unwrap(),
        name: name.into(),
    }
}

#[test]
fn plans_publish_once_move_keep_and_withdraw_names() {
    let mut table = BTreeMap::new();
    let p = published("fd00:10::1001", "chi6");
    // New: remembered first, then added.
    assert_eq!(
        plan(&table, &bound(1, "fd00:10::1001", Some("chi6"))),
        vec![
            Act::Remember(CHI6_DUID.to_vec(), 1, p.clone()),
            Act::Add(job(true, &CHI6_DUID, &p)),
        ]
    );
    // No name, nothing published: nothing to do.
    assert!(plan(&table, &bound(1, "fd00:10::1001", None)).is_empty());
    table.insert((CHI6_DUID.to_vec(), 1), p.clone());
    // A renewal with the same name, or with none, adds nothing.
    assert!(plan(&table, &bound(1, "fd00:10::1001", Some("chi6"))).is_empty());
    assert!(plan(&table, &bound(1, "fd00:10::1001", None)).is_empty());
    // Another address keeps the name: the old records go first.
    let q = published("fd00:10::1002", "chi6");
    assert_eq!(
        plan(&table, &bound(1, "fd00:10::1002", None)),
        vec![
            Act::Remove(job(false, &CHI6_DUID, &p)),
            Act::Remember(CHI6_DUID.to_vec(), 1, q.clone()),
            Act::Add(job(true, &CHI6_DUID, &q)),
        ]
    );
    // A new name: likewise.
    let r = published("fd00:10::1001", "other");
    assert_eq!(
        plan(&table, &bound(1, "fd00:10::1001", Some("other")))[1..],
        [
            Act::Remember(CHI6_DUID.to_vec(), 1, r.clone()),
            Act::Add(job(true, &CHI6_DUID, &r)),
        ]
    );
    // The end of the binding: removed, then forgotten; another IA of the client is not it.
    let unbound = |iaid| Event6::Unbound {
        duid: CHI6_DUID.to_vec(),
        iaid,
    };
    assert_eq!(
        plan(&table, &unbound(1)),
        vec![
            Act::Remove(job(false, &CHI6_DUID, &p)),
            Act::Forget(CHI6_DUID.to_vec(), 1),
        ]
    );
    assert!(plan(&table, &unbound(2)).is_empty());
    // After a start: names of bindings that are no longer live go.
    assert!(plan(&table, &Event6::Live(vec![(CHI6_DUID.to_vec(), 1)])).is_empty());
    assert_eq!(plan(&table, &Event6::Live(Vec::new())).len(), 2);
}

#[tokio::test]
async fn the_names_table_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ddns6.redb");
    let p = published("fd00:10::1001", "chi6");
    {
        let mut n = Names6::open(&path).unwrap();
        n.remember(&CHI6_DUID, 1, p.clone()).await;
        n.remember(&CHI6_DUID, 2, published("fd00:10::1002", "chi6"))
            .await;
        n.forget(&CHI6_DUID, 2).await;
    }
    let n = Names6::open(&path).unwrap();
    let want: BTreeMap<Key, Published> = [((CHI6_DUID.to_vec(), 1), p)].into();
    assert_eq!(n.published(), &want);
}
