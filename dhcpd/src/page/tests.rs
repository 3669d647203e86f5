use std::net::Ipv4Addr;

use super::*;
use crate::lease::{Change, Lease};
use crate::metrics::{RecentEvent, RecentKind};
use crate::store::{LeaseStore as _, RedbStore};

/// A page over a redb database holding `n` bound leases (one with a hostile host name).
fn source(dir: &std::path::Path, n: u32) -> PageSource {
    let db = dir.join("leases.redb");
    let mut s = RedbStore::open(&db).unwrap();
    let now = unix_now();
    let changes: Vec<Change> = (0..n)
        .map(|i| {
            let mac = vec![2, 0, 0, (i >> 16) as u8, (i >> 8) as u8, i as u8];
            Change::Put(Lease {
                ip: Ipv4Addr::from(0x0a00_0000 + i),
                client: [&[1u8][..], &mac].concat(),
                key_source: Default::default(),
                hwaddr: mac,
                hostname: Some(if i == 7 {
                    "<script>x</script>".to_owned()
                } else {
                    format!("host{i}")
                }),
                starts: now,
                expires: now + 3600,
                state: LeaseState::Bound,
            })
        })
        .collect();
    s.commit(&changes).unwrap();
    drop(s);
    let view = crate::testutil::config().view.clone();
    let (_tx, rx) = watch::channel(view);
    PageSource {
        view: rx,
        stats: Arc::new(Stats::default()),
        db,
        url: None,
        addrs: [("dhcpd", None), ("dnsd", None), ("lbd", None)],
        admin6: None,
    }
}

fn get(src: &PageSource, query: &str) -> String {
    let history = Mutex::new(History::new(16));
    let req = PageRequest {
        path: "/".into(),
        query: query.into(),
        host: None,
        ..PageRequest::default()
    };
    render(src, &history, &req)
}

fn rows(html: &str) -> usize {
    let Some(start) = html.find("id=\"lease-table\"") else {
        return 0;
    };
    let t = &html[start..];
    t[..t.find("</table>").unwrap()].matches("<tr>").count() - 1
}

#[test]
fn a_large_table_is_paged_with_previous_and_next_links() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), 250);
    let p1 = get(&src, "");
    assert_eq!(rows(&p1), PER_PAGE);
    assert!(p1.contains("rel=\"next\" href=\"?page=2\""), "{p1}");
    assert!(!p1.contains("rel=\"prev\""));
    let p3 = get(&src, "page=3");
    assert_eq!(rows(&p3), 50);
    assert!(!p3.contains("rel=\"next\""));
    assert!(p3.contains("rel=\"prev\" href=\"?page=2\""), "{p3}");
    // The search is kept in the links.
    let s = get(&src, "q=host1&page=1");
    assert!(
        s.contains("rel=\"next\" href=\"?q=host1&amp;page=2\""),
        "{s}"
    );
}

#[test]
fn host_names_and_queries_are_text() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), 10);
    let html = get(&src, "q=%3Cscript%3E");
    assert_eq!(rows(&html), 1);
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
    assert!(html.contains("value=\"&lt;script&gt;\""), "{html}");
    assert_eq!(html.matches("<script").count(), 1, "{html}");
}

#[test]
fn recent_declines_are_listed_and_the_store_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), 1);
    src.stats.remember(RecentEvent {
        at: 1_700_000_000,
        kind: RecentKind::Decline,
        ip: Ipv4Addr::new(10, 0, 0, 9),
        mac: Some("02:00:00:00:00:09".into()),
    });
    let html = get(&src, "");
    let recent = &html[html.find("id=\"recent\"").unwrap()..];
    // Labelled cells: on a phone each row is a card, each cell after its column's name.
    assert!(
        recent.contains("<td data-label=\"Address\">10.0.0.9</td>"),
        "{recent}"
    );
    assert!(recent.contains("decline"), "{recent}");
    assert!(html.contains("redb at"), "{html}");
}

#[test]
fn a_postgresql_store_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let mut src = source(dir.path(), 1);
    // Nothing listens on port 1: the table says why it is missing, the password shows nowhere.
    src.url = Some("postgresql://dhcpd:s3cret-pw@127.0.0.1:1/leases".into());
    let html = get(&src, "");
    assert!(html.contains("PostgreSQL (shared)"), "{html}");
    assert!(html.contains("Cannot read the lease database"), "{html}");
    assert!(!html.contains("s3cret-pw"), "{html}");
    // The peer: unknown while the database cannot be reached.
    assert!(html.contains("data-state=\"unknown\""), "{html}");
}

#[test]
fn the_peer_as_the_database_reports_it() {
    let none = super::store::peer_list(Ok(Vec::new())).into_string();
    assert!(none.contains("data-state=\"none\""), "{none}");
    assert!(none.contains("No other dhcpd is connected"), "{none}");
    let one = super::store::peer_list(Ok(vec![super::store::Peer {
        addr: "10.20.0.3".into(),
        name: Some("<b>dhcp2</b>".into()),
        since: 1_700_000_000,
        active: 1_700_000_060,
        conns: 1,
    }]))
    .into_string();
    assert!(one.contains("data-state=\"connected\""), "{one}");
    assert!(one.contains("<tr data-peer=\"10.20.0.3\">"), "{one}");
    assert!(one.contains("&lt;b&gt;dhcp2&lt;/b&gt;"), "{one}");
    assert!(one.contains("2023-11-14T22:14:20Z"), "{one}");
}

#[test]
fn release_buttons_only_for_a_logged_in_admin() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path(), 3);
    let history = Mutex::new(History::new(16));
    let with = |admin| {
        let req = PageRequest {
            path: "/".into(),
            admin,
            ..PageRequest::default()
        };
        render(&src, &history, &req)
    };
    let ro = with(page::AdminState::Off);
    assert!(!ro.contains("method=\"post\""), "{ro}");
    let out = with(page::AdminState::LoggedOut);
    assert!(out.contains("action=\"login\""), "{out}");
    assert!(!out.contains("data-action"), "{out}");
    let admin = with(page::AdminState::LoggedIn { csrf: "tok".into() });
    assert_eq!(
        admin.matches("data-action=\"release\"").count(),
        3,
        "{admin}"
    );
    assert!(admin.contains("data-arg=\"10.0.0.1\""), "{admin}");
    assert!(admin.contains("<th>Action</th>"), "{admin}");
}

mod v6 {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::page::v6::count;
    use crate::v6::admin::{Admin6, Input, Request6};
    use crate::v6::lease::{Change6, IaKind, Key6, Lease6, Leases6, State6};

    /// A view with one IPv6 subnet: a /64 address pool (2^64 addresses) and a /48 split in /56s.
    fn view6() -> DhcpView {
        let t = hostfile::HostTable::from_toml(&format!(
            "{}[[subnet]]\nname = \"lan6\"\nnetwork = \"fd00:10::/64\"\n\
             [[subnet.pool]]\nrange = \"fd00:10::-fd00:10::ffff:ffff:ffff:ffff\"\n\
             [[subnet.pd-pool]]\nprefix = \"fd00:100::/48\"\ndelegated-length = 56\n",
            hostfile::checkcases::base()
        ))
        .unwrap();
        t.dhcp_view()
    }

    fn binding(i: u32, kind: IaKind, addr: Ipv6Addr, len: u8, now: u64) -> Lease6 {
        Lease6 {
            key: Key6 {
                duid: vec![
                    0,
                    3,
                    0,
                    1,
                    2,
                    0,
                    (i >> 16) as u8,
                    (i >> 8) as u8,
                    i as u8,
                    0xab,
                ],
                iaid: i,
                kind,
            },
            addr,
            prefix_len: len,
            starts: now,
            expires: now + 4000,
            state: State6::Bound,
            hostname: None,
        }
    }

    /// `n` address bindings named `v6hostN` as their clients' Client FQDN names them (number 7
    /// `<script>...`) and one delegated prefix, listed by a stand-in for the v6 core thread that
    /// answers with the core's own rows (`admin::rows`); the census has run.
    fn source6(dir: &std::path::Path, n: u32) -> PageSource {
        let now = unix_now();
        let view = view6();
        let mut t = Leases6::new();
        for i in 0..n {
            let a = Ipv6Addr::from(
                u128::from(Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 0x100)) + u128::from(i),
            );
            let name = if i == 7 {
                "<script>alert(6)</script>".to_owned()
            } else {
                format!("v6host{i}")
            };
            t.apply(&Change6::Put(Lease6 {
                hostname: Some(name),
                ..binding(i, IaKind::Na, a, 128, now)
            }));
        }
        t.apply(&Change6::Put(binding(
            9999,
            IaKind::Pd,
            "fd00:100:0:200::".parse().unwrap(),
            56,
            now,
        )));
        let mut src = source(dir, 0);
        src.stats.v6.census(&t, &view, now);
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let reservations = view.reservations6.clone();
        std::thread::spawn(move || {
            while let Ok(Input::Admin(Request6::List(reply))) = rx.recv() {
                let _ = reply.send(crate::v6::admin::rows(&t, &reservations));
            }
        });
        src.admin6 = Some(Admin6::new(tx));
        let (_keep, rx) = watch::channel(Arc::new(view));
        src.view = rx;
        src
    }

    fn rows6(html: &str) -> usize {
        html.matches("data-binding=").count()
    }

    #[test]
    fn counts_stay_readable_however_large() {
        assert_eq!(count(0), "0");
        assert_eq!(count(256), "256");
        assert_eq!(count(9_999_999), "9999999");
        assert_eq!(count(1 << 32), "2^32");
        assert_eq!(count(1 << 64), "2^64");
        assert_eq!(count((1 << 64) - 3), "2^64 − 3");
        assert_eq!(count(3 * 10u128.pow(20)), "3.00×10^20");
        assert!(
            count(u128::MAX).starts_with("3.40×10^38"),
            "{}",
            count(u128::MAX)
        );
    }

    #[test]
    fn pools_show_huge_sizes_and_the_used_sliver() {
        let dir = tempfile::tempdir().unwrap();
        let src = source6(dir.path(), 3);
        let html = get(&src, "");
        assert!(html.contains("id=\"pools6\""), "{html}");
        assert!(html.contains("data-used=\"3\""), "{html}");
        assert!(
            html.contains("3</b> used, 2^64 − 3 free, 0 declined of 2^64"),
            "{html}"
        );
        assert!(
            html.contains("aria-label=\"used 3, declined 0, free 2^64 − 3\""),
            "{html}"
        );
        // The one used address is visible: at least half a percent of the bar.
        assert!(
            html.contains("class=\"ok\" x=\"0.00\" width=\"0.50\""),
            "{html}"
        );
        assert!(html.contains("1</b> delegated, 255 free of 256"), "{html}");
        assert!(html.contains("DHCPv6 messages"), "{html}");
    }

    #[test]
    fn bindings_are_listed_searched_paged_and_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let src = source6(dir.path(), 250);
        let html = get(&src, "");
        assert_eq!(rows6(&html), PER_PAGE);
        assert!(html.contains("page6=2"), "a link to the next page");
        assert_eq!(
            rows6(&get(&src, "page6=3")),
            51,
            "250 addresses and a prefix"
        );
        // Search by host name, DUID (with or without colons), address, prefix.
        let named = get(&src, "q=V6Host42");
        assert_eq!(rows6(&named), 1, "any case");
        assert!(named.contains(">v6host42<"), "{named}");
        assert_eq!(rows6(&get(&src, "q=v6host4")), 11, "a part: 4 and 40-49");
        assert_eq!(
            rows6(&get(&src, "q=00%3A03%3A00%3A01%3A02%3A00%3A00%3A00%3A2a")),
            1
        );
        assert_eq!(
            rows6(&get(&src, "q=0003000102000000")),
            PER_PAGE,
            "all match, paged"
        );
        assert_eq!(rows6(&get(&src, "q=fd00%3A10%3A%3A1f9")), 1);
        let pd = get(&src, "q=fd00%3A100");
        assert_eq!(rows6(&pd), 1);
        assert!(
            pd.contains("fd00:100:0:200::/56") && pd.contains("IA_PD"),
            "{pd}"
        );
        assert_eq!(rows6(&get(&src, "q=nothing-here")), 0);
        assert_eq!(rows6(&get(&src, "state=declined")), 0);
        // A network-supplied host name is text.
        let s = get(&src, "q=script");
        assert_eq!(rows6(&s), 1);
        assert!(!s.contains("<script>alert(6)"), "{s}");
        assert!(s.contains("&lt;script&gt;alert(6)&lt;/script&gt;"), "{s}");
    }

    #[test]
    fn without_v6_nothing_v6_is_shown() {
        let dir = tempfile::tempdir().unwrap();
        let html = get(&source(dir.path(), 1), "");
        assert!(!html.contains("pools6") && !html.contains("leases6"));
        assert!(!html.contains("DHCPv6 messages"));
    }
}
