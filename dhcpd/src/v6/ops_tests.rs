//! The operator's side of DHCPv6: the control requests (list, release), the listing, what
//! `dhcpd release` accepts, and the metrics.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Duration;

use hostfile::{DhcpView, HostTable};

use super::admin::{self, Admin6, AdminError, Input, Request6, Target6};
use super::lease::{Change6, IaKind, Key6, Lease6, Leases6, State6, Store6};
use super::listing::{self, Target};
use super::metrics::Stats6;

const NOW: u64 = 1_000_000;

fn a(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn view() -> DhcpView {
    let t = HostTable::from_toml(&format!(
        "{}[[subnet]]\nnetwork = \"fd00:10::/64\"\n[[subnet.pool]]\nrange = \"fd00:10::100-fd00:10::1ff\"\n\
         [[subnet.pd-pool]]\nprefix = \"fd00:100::/48\"\ndelegated-length = 56\n\
         [host.printer6]\nip = \"10.1.0.55\"\nipv6 = \"fd00:10::5\"\nduid = \"00:03:00:01:02:00:00:00:00:05\"\n",
        hostfile::checkcases::base()
    ))
    .unwrap();
    t.dhcp_view()
}

fn lease(duid: u8, kind: IaKind, addr: &str, len: u8, state: State6) -> Lease6 {
    Lease6 {
        key: Key6 {
            duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, duid],
            iaid: u32::from(duid),
            kind,
        },
        addr: a(addr),
        prefix_len: len,
        starts: NOW,
        expires: NOW + 4000,
        state,
        hostname: None,
    }
}

fn table() -> Leases6 {
    table_of([
        lease(1, IaKind::Na, "fd00:10::100", 128, State6::Bound),
        lease(2, IaKind::Pd, "fd00:100::", 56, State6::Bound),
        lease(5, IaKind::Na, "fd00:10::5", 128, State6::Bound),
        lease(9, IaKind::Na, "fd00:10::101", 128, State6::Declined),
    ])
}

fn table_of(bindings: impl IntoIterator<Item = Lease6>) -> Leases6 {
    let mut t = Leases6::new();
    for l in bindings {
        t.apply(&Change6::Put(l));
    }
    t
}

#[test]
fn release_targets_parse_for_both_families() {
    assert_eq!(
        "10.1.0.5".parse::<Target>().unwrap(),
        Target::V4("10.1.0.5".parse().unwrap())
    );
    assert_eq!(
        "fd00:10::100".parse::<Target>().unwrap(),
        Target::V6(Target6::Addr(a("fd00:10::100")))
    );
    assert_eq!(
        "fd00:100::/56".parse::<Target>().unwrap(),
        Target::V6(Target6::Prefix("fd00:100::/56".parse().unwrap()))
    );
    for bad in ["fd00:100::1/56", "printer", "10.1.0.0/24", ""] {
        let e = bad.parse::<Target>().unwrap_err().to_string();
        assert!(e.contains(&format!("`{bad}`")), "{e}");
    }
}

#[test]
fn find_takes_addresses_prefixes_and_addresses_inside_prefixes_but_not_declined() {
    let t = table();
    let key = |x: Target6| admin::find(&t, x).map(|l| l.key.iaid);
    assert_eq!(key(Target6::Addr(a("fd00:10::100"))), Some(1));
    assert_eq!(
        key(Target6::Prefix("fd00:100::/56".parse().unwrap())),
        Some(2)
    );
    assert_eq!(key(Target6::Addr(a("fd00:100:0:12::1"))), Some(2));
    assert_eq!(key(Target6::Prefix("fd00:100::/48".parse().unwrap())), None);
    assert_eq!(key(Target6::Addr(a("fd00:10::101"))), None, "declined");
    assert_eq!(key(Target6::Addr(a("fd00:10::102"))), None);
    assert_eq!(t.len(), 4);
}

#[test]
fn the_core_lists_and_releases_durably_over_its_queue() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases6.redb");
    let v = view();
    let (tx, rx) = std::sync::mpsc::sync_channel(8);
    let handle = Admin6::new(tx);
    // A stand-in for the core thread: it owns the table and the store.
    let core = {
        let path = path.clone();
        let res = v.reservations6.clone();
        std::thread::spawn(move || {
            let mut store = Store6::open(&path).unwrap();
            let mut t = table();
            let all: Vec<_> = t.iter().cloned().map(Change6::Put).collect();
            store.write(&all).unwrap();
            while let Ok(Input::Admin(r)) = rx.recv() {
                admin::answer(r, &mut t, &mut store, &res);
            }
        })
    };
    let wait = Duration::from_secs(5);
    let rows = handle.leases(wait).unwrap();
    assert_eq!(rows.len(), 4);
    let named: Vec<_> = rows.iter().filter_map(|r| r.hostname.as_deref()).collect();
    assert_eq!(named, ["printer6"], "host names come from the reservations");
    let gone = handle
        .release(Target6::Prefix("fd00:100::/56".parse().unwrap()), wait)
        .unwrap();
    assert_eq!((gone.key.kind, gone.addr), (IaKind::Pd, a("fd00:100::")));
    let e = handle
        .release(Target6::Addr(a("fd00:10::1ff")), wait)
        .unwrap_err();
    assert!(matches!(e, AdminError::NotBound(_)), "{e}");
    assert!(e.to_string().contains("fd00:10::1ff is not bound"), "{e}");
    assert_eq!(handle.leases(wait).unwrap().len(), 3);
    drop(handle);
    core.join().unwrap();
    // Durable: the file no longer has the prefix (read as `dhcpd leases` does without a daemon).
    let rows = listing::read_rows(&path, &v.reservations6).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.lease.key.kind == IaKind::Na));
    assert!(
        listing::read_rows(&dir.path().join("none.redb"), &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_stopped_core_is_an_error_not_a_hang() {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Input>(1);
    drop(rx);
    let e = Admin6::new(tx).leases(Duration::from_secs(5)).unwrap_err();
    assert!(matches!(e, AdminError::Stopping), "{e}");
    let (tx, _rx) = std::sync::mpsc::sync_channel::<Input>(1);
    let e = Admin6::new(tx)
        .leases(Duration::from_millis(10))
        .unwrap_err();
    assert!(matches!(e, AdminError::Timeout), "{e}");
    // The request itself was queued for the core.
    assert!(matches!(
        _rx.try_recv(),
        Ok(Input::Admin(Request6::List(_)))
    ));
}

#[test]
fn the_listing_shows_type_iaid_duid_host_expiry_and_state() {
    let v = view();
    let rows = admin::rows(&table(), &v.reservations6);
    let text = listing::text(&rows);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "{text}");
    for h in [
        "ADDRESS/PREFIX",
        "TYPE",
        "IAID",
        "DUID",
        "HOSTNAME",
        "EXPIRES",
        "STATE",
    ] {
        assert!(lines[0].contains(h), "{text}");
    }
    let pd = lines.iter().find(|l| l.contains("IA_PD")).unwrap();
    assert!(pd.starts_with("fd00:100::/56 "), "{pd}");
    assert!(pd.contains("00:03:00:01:02:00:00:00:00:02"), "{pd}");
    assert!(pd.contains("1970-01-12T14:53:20Z"), "{pd}");
    assert!(pd.trim_end().ends_with("bound"), "{pd}");
    let res = lines.iter().find(|l| l.contains("printer6")).unwrap();
    assert!(
        res.starts_with("fd00:10::5 ") && res.contains("IA_NA"),
        "{res}"
    );
    assert!(lines.iter().any(|l| l.trim_end().ends_with("declined")));
    let json = listing::json(&rows);
    let pd = json.iter().find(|r| r["type"] == "IA_PD").unwrap();
    assert_eq!(pd["ip"], "fd00:100::");
    assert_eq!(pd["prefix_len"], 56);
    assert_eq!(pd["family"], "ipv6");
    assert_eq!(pd["iaid"], 2);
    assert_eq!(pd["expires"], NOW + 4000);
}

#[test]
fn metrics_count_v6_messages_and_pool_use() {
    let v = view();
    let s = Arc::new(Stats6::default());
    s.received(dhcproto::v6::MessageType::Solicit);
    s.received(dhcproto::v6::MessageType::Solicit);
    s.received(dhcproto::v6::MessageType::InformationRequest);
    s.sent(dhcproto::v6::MessageType::Advertise);
    s.bad.inc();
    s.census(&table(), &v, NOW);
    let mut r = runtime::metrics::Registry::with_prefix("dhcpd");
    s.register(&mut r);
    let text = runtime::metrics::render(&r);
    for line in [
        "dhcpd_v6_requests_total{type=\"solicit\"} 2",
        "dhcpd_v6_requests_total{type=\"information-request\"} 1",
        "dhcpd_v6_replies_total{type=\"advertise\"} 1",
        "dhcpd_v6_bad_packets_total 1",
        "dhcpd_v6_pool_used_addresses{range=\"fd00:10::100-fd00:10::1ff\"} 1",
        "dhcpd_v6_pool_declined_addresses{range=\"fd00:10::100-fd00:10::1ff\"} 1",
        "dhcpd_v6_pool_free_addresses{range=\"fd00:10::100-fd00:10::1ff\"} 254",
        "dhcpd_v6_pool_size_addresses{range=\"fd00:10::100-fd00:10::1ff\"} 256",
        "dhcpd_v6_pd_pool_used_prefixes{prefix=\"fd00:100::/48\",delegated_length=\"56\"} 1",
        "dhcpd_v6_pd_pool_free_prefixes{prefix=\"fd00:100::/48\",delegated_length=\"56\"} 255",
        "dhcpd_v6_pd_pool_size_prefixes{prefix=\"fd00:100::/48\",delegated_length=\"56\"} 256",
        "dhcpd_v6_leases{type=\"IA_NA\",state=\"bound\"} 2",
        "dhcpd_v6_leases{type=\"IA_NA\",state=\"declined\"} 1",
        "dhcpd_v6_leases{type=\"IA_PD\",state=\"declined\"} 0",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    // Ended bindings no longer count.
    s.census(&table(), &v, NOW + 5000);
    let text = runtime::metrics::render(&r);
    assert!(
        text.contains("dhcpd_v6_pool_used_addresses{range=\"fd00:10::100-fd00:10::1ff\"} 0"),
        "{text}"
    );
}

/// The one-pass census finds each address's pool among several, listed out of address order
/// and in two subnets; an address between pools or outside them counts in none.
#[test]
fn the_census_counts_each_address_in_its_own_pool() {
    let t = HostTable::from_toml(&format!(
        "{}[[subnet]]\nnetwork = \"fd00:10::/64\"\n\
         [[subnet.pool]]\nrange = \"fd00:10::300-fd00:10::3ff\"\n\
         [[subnet.pool]]\nrange = \"fd00:10::100-fd00:10::1ff\"\n\
         [[subnet]]\nnetwork = \"fd00:20::/64\"\n[[subnet.pool]]\nrange = \"fd00:20::10-fd00:20::1f\"\n",
        hostfile::checkcases::base()
    ))
    .unwrap();
    let v = t.dhcp_view();
    let leases = table_of([
        lease(1, IaKind::Na, "fd00:10::100", 128, State6::Bound),
        lease(2, IaKind::Na, "fd00:10::1ff", 128, State6::Bound),
        lease(3, IaKind::Na, "fd00:10::300", 128, State6::Declined),
        lease(4, IaKind::Na, "fd00:10::250", 128, State6::Bound),
        lease(5, IaKind::Na, "fd00:20::1f", 128, State6::Bound),
        lease(6, IaKind::Na, "fd00:20::20", 128, State6::Bound),
    ]);
    let s = Stats6::default();
    s.census(&leases, &v, NOW);
    let mut r = runtime::metrics::Registry::with_prefix("dhcpd");
    s.register(&mut r);
    let text = runtime::metrics::render(&r);
    crate::testutil::assert_pool_gauges(
        &text,
        "dhcpd_v6_pool_",
        &[
            ("used", "fd00:10::100-fd00:10::1ff", 2),
            ("used", "fd00:10::300-fd00:10::3ff", 0),
            ("declined", "fd00:10::300-fd00:10::3ff", 1),
            ("free", "fd00:10::300-fd00:10::3ff", 255),
            ("used", "fd00:20::10-fd00:20::1f", 1),
        ],
    );
    assert!(
        text.contains("dhcpd_v6_leases{type=\"IA_NA\",state=\"bound\"} 5"),
        "{text}"
    );
}

/// `dhcpd leases` (text, JSON) and the page show the name kept with a binding; a binding stored
/// without one (written before names were kept) shows its reservation's, when it has one.
#[test]
fn the_listing_shows_the_name_kept_with_the_binding_else_the_reservations() {
    let v = view();
    let mut t = table();
    t.apply(&Change6::Put(Lease6 {
        hostname: Some("laptop6".into()),
        ..lease(1, IaKind::Na, "fd00:10::100", 128, State6::Bound)
    }));
    let rows = admin::rows(&t, &v.reservations6);
    let name = |iaid: u32| {
        rows.iter()
            .find(|r| r.lease.key.iaid == iaid)
            .and_then(|r| r.hostname.clone())
    };
    assert_eq!(name(1).as_deref(), Some("laptop6"));
    assert_eq!(name(5).as_deref(), Some("printer6"), "the reservation's");
    assert_eq!(name(2), None);
    let text = listing::text(&rows);
    assert!(
        text.lines()
            .any(|l| l.starts_with("fd00:10::100 ") && l.contains(" laptop6 ")),
        "{text}"
    );
    let json = listing::json(&rows);
    assert!(
        json.iter()
            .any(|r| r["ip"] == "fd00:10::100" && r["hostname"] == "laptop6"),
        "{json:?}"
    );
}
