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
    assert!(recent.contains("<td>10.0.0.9</td>"), "{recent}");
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
