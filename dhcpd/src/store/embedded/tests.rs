use super::*;
use crate::lease::{KeySource, LeaseState};
use crate::store::Spool;
use crate::store::codec;
use std::path::Path;

fn lease(last: u8) -> Lease {
    Lease {
        ip: Ipv4Addr::new(10, 0, 0, last),
        client: vec![1, last],
        key_source: KeySource::ClientId,
        hwaddr: vec![last; 6],
        hostname: Some(format!("h{last}")),
        starts: 1,
        expires: 100,
        state: LeaseState::Bound,
    }
}

#[test]
fn committed_leases_survive_reopen_and_deletes_stick() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sub/leases.redb");
    {
        let mut s = RedbStore::open(&p).unwrap();
        s.commit(&[Change::Put(lease(5)), Change::Put(lease(6))])
            .unwrap();
        s.commit(&[Change::Del(Ipv4Addr::new(10, 0, 0, 5))])
            .unwrap();
    }
    let mut s = RedbStore::open(&p).unwrap();
    assert_eq!(s.load().unwrap(), vec![lease(6)]);
}

#[test]
fn journal_folds_into_the_table_and_every_change_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leases.redb");
    let mut want = std::collections::BTreeMap::new();
    {
        let mut s = RedbStore::open(&p).unwrap();
        // enough commits to fold more than once, with deletes crossing the folds
        for i in 0..(FOLD as u32 * 2 + 100) / 50 {
            let mut group = Vec::new();
            for j in 0..50u32 {
                let n = (i * 50 + j) % 3000;
                let mut l = lease(0);
                l.ip = Ipv4Addr::from(0x0a00_0000 + n);
                l.expires = u64::from(i);
                l.hostname = (j % 2 == 0).then(|| format!("h{n}"));
                if j == 49 {
                    group.push(Change::Del(l.ip));
                    want.remove(&l.ip);
                } else {
                    want.insert(l.ip, l.clone());
                    group.push(Change::Put(l));
                }
            }
            s.commit_groups(&[&group[..10], &group[10..]], 0).unwrap();
        }
        assert!(s.journaled < FOLD);
        assert_eq!(
            s.load().unwrap(),
            want.values().cloned().collect::<Vec<_>>()
        );
    }
    let mut s = RedbStore::open(&p).unwrap();
    assert_eq!(
        s.load().unwrap(),
        want.values().cloned().collect::<Vec<_>>()
    );
    assert_eq!(
        read_only(&p).unwrap(),
        want.values().cloned().collect::<Vec<_>>()
    );
}

fn journal_rows(p: &Path) -> usize {
    let db = redb::Builder::new()
        .set_concurrency_mode(ConcurrencyMode::SingleWriter)
        .open_read_only(p)
        .unwrap();
    let tx = db.begin_read().unwrap();
    let j = tx.open_table(JOURNAL).unwrap();
    j.iter().unwrap().count()
}

/// Commits of Puts and Dels over 300 addresses with a fold every 64 changes, 8 addresses a
/// slice: after every commit - what a restart after `kill -9` at that point would load - the
/// database reads as exactly what was committed, also when the store is reopened in the
/// middle of a fold.
#[test]
fn a_fold_in_slices_keeps_every_commit_readable_at_every_point() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leases.redb");
    let mut want = std::collections::BTreeMap::new();
    let mut s = RedbStore::with_fold_limits(&p, 64, 8).unwrap();
    let (mut folds, mut reopened, mut mid_fold_commits) = (0, 0, 0);
    let mut x: u32 = 12345;
    for i in 0..600u32 {
        let mut group = Vec::new();
        for _ in 0..(i % 20 + 1) {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let n = (x >> 8) % 300;
            let mut l = lease(0);
            l.ip = Ipv4Addr::from(0x0a00_0000 + n);
            l.expires = u64::from(i);
            if x.is_multiple_of(7) {
                group.push(Change::Del(l.ip));
                want.remove(&l.ip);
            } else {
                want.insert(l.ip, l.clone());
                group.push(Change::Put(l));
            }
        }
        if s.folding() {
            mid_fold_commits += 1;
        }
        let before = s.folds();
        s.commit(&group).unwrap();
        folds += s.folds() - before;
        let all: Vec<Lease> = want.values().cloned().collect();
        assert_eq!(read_only(&p).unwrap(), all, "after commit {i}");
        if s.folding() && i.is_multiple_of(50) {
            // Stopped in the middle of a fold (between two transactions).
            drop(s);
            s = RedbStore::with_fold_limits(&p, 64, 8).unwrap();
            reopened += 1;
            assert_eq!(s.load().unwrap(), all, "reopened after commit {i}");
        }
    }
    assert!(folds > 20, "{folds} folds");
    assert!(mid_fold_commits > 100, "{mid_fold_commits}");
    assert!(reopened > 0);
    // Folds keep the journal short.
    drop(s);
    assert!(journal_rows(&p) < 100, "{} journal rows", journal_rows(&p));
}

#[test]
fn fold_limits_parse() {
    assert_eq!(parse_fold_limits("256/8"), Some((256, 8)));
    assert_eq!(parse_fold_limits(" 1 / 1 "), Some((1, 1)));
    for bad in ["", "256", "0/8", "8/0", "a/b", "-1/2", "1/2/3"] {
        assert_eq!(parse_fold_limits(bad), None, "{bad}");
    }
}

#[test]
fn json_records_of_earlier_versions_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leases.redb");
    {
        let db = redb::Database::create(&p).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(LEASES).unwrap();
            // Those records have no key source.
            let mut v = serde_json::to_value(lease(9)).unwrap();
            v.as_object_mut().unwrap().remove("key_source").unwrap();
            let v = serde_json::to_vec(&v).unwrap();
            t.insert(u32::from(lease(9).ip), v.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let old = Lease {
        key_source: KeySource::Legacy,
        ..lease(9)
    };
    assert_eq!(read_only(&p).unwrap(), vec![old.clone()]);
    let mut s = RedbStore::open(&p).unwrap();
    s.commit(&[Change::Put(lease(10))]).unwrap();
    assert_eq!(s.load().unwrap(), vec![old, lease(10)]);
}

/// A lease record as dhcpd wrote it before the key source was kept (version 1).
fn v1_record(l: &Lease) -> Vec<u8> {
    let mut v = vec![1];
    v.extend_from_slice(&l.ip.octets());
    v.push(1); // bound
    v.extend_from_slice(&l.starts.to_be_bytes());
    v.extend_from_slice(&l.expires.to_be_bytes());
    for b in [&l.client, &l.hwaddr] {
        v.extend_from_slice(&(b.len() as u16).to_be_bytes());
        v.extend_from_slice(b);
    }
    let h = l.hostname.as_deref().unwrap().as_bytes();
    v.extend_from_slice(&(h.len() as u16).to_be_bytes());
    v.extend_from_slice(h);
    v
}

#[test]
fn version_1_records_in_table_and_journal_load_as_legacy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leases.redb");
    let legacy = |last| Lease {
        key_source: KeySource::Legacy,
        ..lease(last)
    };
    // Byte for byte what the previous version wrote: one lease folded into the table, one
    // in the journal (a `P` change), one JSON record of the version before.
    let (a, b) = (legacy(1), legacy(2));
    assert_eq!(
        v1_record(&a),
        [
            &[1, 10, 0, 0, 1, 1][..],
            &1u64.to_be_bytes(),
            &100u64.to_be_bytes(),
            &[0, 2, 1, 1, 0, 6, 1, 1, 1, 1, 1, 1, 0, 2, b'h', b'1'],
        ]
        .concat()
    );
    {
        let db = redb::Database::create(&p).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(LEASES).unwrap();
            t.insert(u32::from(a.ip), v1_record(&a).as_slice()).unwrap();
            let mut j = tx.open_table(JOURNAL).unwrap();
            let rec = [&b"P"[..], &v1_record(&b)].concat();
            j.insert(0, rec.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    assert_eq!(read_only(&p).unwrap(), vec![a.clone(), b.clone()]);
    let mut s = RedbStore::open(&p).unwrap();
    assert_eq!(s.journaled, 1);
    // New records carry their source; old ones keep reading as legacy after a write.
    s.commit(&[Change::Put(lease(3))]).unwrap();
    assert_eq!(s.load().unwrap(), vec![a, b, lease(3)]);
}

#[test]
fn key_source_round_trips() {
    for k in [KeySource::Legacy, KeySource::Hardware, KeySource::ClientId] {
        let l = Lease {
            key_source: k,
            hostname: None,
            ..lease(4)
        };
        let mut v = Vec::new();
        codec::put_lease(&mut v, &l);
        assert_eq!(codec::Reader(&v).lease().unwrap(), l);
    }
}

#[test]
fn a_damaged_record_is_an_error_not_a_panic() {
    let mut whole = Vec::new();
    codec::put_changes(&mut whole, &mut [Change::Put(lease(3))].iter());
    assert_eq!(codec::changes(&whole).unwrap(), vec![Change::Put(lease(3))]);
    for cut in 1..whole.len() {
        assert!(codec::changes(&whole[..cut]).is_err(), "cut at {cut}");
    }
    assert!(codec::changes(b"X").is_err());
}

#[test]
fn read_only_sees_commits_of_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("leases.redb");
    let mut s = RedbStore::open(&p).unwrap();
    s.commit(&[Change::Put(lease(7))]).unwrap();
    assert_eq!(read_only(&p).unwrap(), vec![lease(7)]);
}

#[test]
fn spool_keeps_groups_in_order_across_reopen_until_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pending.redb");
    let a = vec![Change::Put(lease(1))];
    let b = vec![
        Change::Put(lease(2)),
        Change::Del(Ipv4Addr::new(10, 0, 0, 3)),
    ];
    {
        let mut s = Spool::open(&p).unwrap();
        s.push(std::slice::from_ref(&a)).unwrap();
        s.push(std::slice::from_ref(&b)).unwrap();
    }
    let mut s = Spool::open(&p).unwrap();
    assert_eq!(s.groups().unwrap(), vec![a.clone(), b]);
    // replayed into a store: written, then gone from the spool
    let mut db = RedbStore::open(&dir.path().join("leases.redb")).unwrap();
    assert_eq!(s.replay(&mut db, 0).unwrap(), 2);
    assert!(s.groups().unwrap().is_empty());
    let mut got = db.load().unwrap();
    got.sort_by_key(|l| l.ip);
    assert_eq!(got, vec![lease(1), lease(2)]);
}
