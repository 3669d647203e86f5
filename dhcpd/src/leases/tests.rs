use super::*;

fn row(i: u32, state: LeaseState, name: Option<&str>) -> Lease {
    let ip = Ipv4Addr::from(0x0a00_0000 + i);
    let mac = vec![2, 0, 0, 0, (i >> 8) as u8, i as u8];
    Lease {
        ip,
        client: [&[1u8][..], &mac].concat(),
        key_source: Default::default(),
        hwaddr: mac,
        hostname: name.map(str::to_owned),
        starts: 1,
        expires: 1000,
        state,
    }
}

fn table(n: u32) -> Vec<Lease> {
    (0..n)
        .map(|i| {
            let state = if i % 10 == 9 {
                LeaseState::Released
            } else {
                LeaseState::Bound
            };
            row(i, state, Some(&format!("host{i}")))
        })
        .collect()
}

#[test]
fn pages_hold_at_most_the_page_size_and_say_whether_more_follow() {
    let f = Filter::default();
    let p1 = page_of(table(100_000), &f, 1, 100);
    assert_eq!(p1.rows.len(), 100);
    assert!(p1.more);
    // 90,000 current rows: page 900 is the last full one.
    let last = page_of(table(100_000), &f, 900, 100);
    assert_eq!(last.rows.len(), 100);
    assert!(!last.more);
    assert!(last.rows.iter().all(is_current));
    let past = page_of(table(100_000), &f, 901, 100);
    assert!(past.rows.is_empty() && !past.more);
}

#[test]
fn search_by_address_mac_client_id_and_name() {
    let rows = table(300);
    let find = |q: &str| {
        let f = Filter {
            q: q.to_owned(),
            state: Some(None),
        };
        page_of(rows.clone(), &f, 1, 100)
            .rows
            .iter()
            .map(|l| l.ip.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(find("10.0.0.12"), ["10.0.0.12"]);
    assert_eq!(find("02-00-00-00-01-2b"), ["10.0.1.43"]);
    assert_eq!(find("01:02:00:00:00:01:2b"), ["10.0.1.43"]);
    assert_eq!(find("HOST299"), ["10.0.1.43"]);
    assert!(find("nobody").is_empty());
}

#[test]
fn state_filter() {
    let f = Filter {
        q: String::new(),
        state: Some(Some(LeaseState::Released)),
    };
    let p = page_of(table(100), &f, 1, 100);
    assert_eq!(p.rows.len(), 10);
    assert!(p.rows.iter().all(|l| l.state == LeaseState::Released));
}
