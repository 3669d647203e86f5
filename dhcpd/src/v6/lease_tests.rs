//! The v6 binding record: version 2 (with the host name) round trips, and records written
//! before host names were kept (version 1, 34 octets) still read, from bytes and from a file.

use super::*;

fn key(iaid: u32, kind: IaKind) -> Key6 {
    Key6 {
        duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0x42, 1],
        iaid,
        kind,
    }
}

fn binding(iaid: u32, hostname: Option<&str>) -> Lease6 {
    Lease6 {
        key: key(iaid, IaKind::Na),
        addr: Ipv6Addr::from(0xfd00_0042_0000_0000_0000_0000_0000_1000u128 + u128::from(iaid)),
        prefix_len: 128,
        starts: 1_700_000_000,
        expires: 1_700_004_000,
        state: State6::Bound,
        hostname: hostname.map(str::to_owned),
    }
}

/// The value a dhcpd without host names wrote (the version 1 encoder, spelt out octet by octet:
/// address, prefix length, starts, expires, state), for the binding `l`.
fn v1_value(l: &Lease6) -> Vec<u8> {
    let mut v = l.addr.octets().to_vec();
    v.push(l.prefix_len);
    v.extend_from_slice(&l.starts.to_be_bytes());
    v.extend_from_slice(&l.expires.to_be_bytes());
    v.push(u8::from(l.state == State6::Declined));
    assert_eq!(v.len(), 34);
    v
}

#[test]
fn a_record_with_a_host_name_round_trips() {
    for l in [
        binding(1, Some("laptop6")),
        binding(2, None),
        Lease6 {
            key: key(3, IaKind::Pd),
            addr: "fd00:1000:0:300::".parse().unwrap(),
            prefix_len: 56,
            state: State6::Declined,
            ..binding(3, Some("router-7"))
        },
    ] {
        let v = value_bytes(&l);
        assert_eq!(v[34], V2, "{v:?}");
        assert_eq!(decode(&key_bytes(&l.key), &v), Some(l));
    }
    // A name longer than a length octet holds is cut, never written past it.
    let long = "a".repeat(300);
    let l = binding(4, Some(&long));
    let back = decode(&key_bytes(&l.key), &value_bytes(&l)).unwrap();
    assert_eq!(back.hostname.as_deref(), Some(&long[..255]));
}

#[test]
fn a_record_written_before_host_names_were_kept_reads_without_one() {
    let old = binding(7, None);
    let v = v1_value(&old);
    assert_eq!(decode(&key_bytes(&old.key), &v), Some(old.clone()));
    let declined = Lease6 {
        state: State6::Declined,
        ..binding(8, None)
    };
    assert_eq!(
        decode(&key_bytes(&declined.key), &v1_value(&declined)),
        Some(declined)
    );
}

#[test]
fn malformed_tails_are_refused_not_misread() {
    let l = binding(1, Some("laptop6"));
    let k = key_bytes(&l.key);
    let good = value_bytes(&l);
    let mut bad = Vec::new();
    // Truncated inside the version-1 part, inside the name, a name length past the end, an
    // unknown version, a version octet without a length.
    bad.push(good[..33].to_vec());
    bad.push(good[..good.len() - 1].to_vec());
    let mut longer = good.clone();
    longer.push(b'x');
    bad.push(longer);
    let mut v3 = good.clone();
    v3[34] = 3;
    bad.push(v3);
    bad.push(good[..35].to_vec());
    for b in bad {
        assert_eq!(decode(&k, &b), None, "{b:?}");
    }
}

/// A lease file holding a version-1 record (written raw, as the earlier dhcpd left it) opens,
/// loads it without a name, takes version-2 records beside it, and reads both read-only.
#[test]
fn a_file_with_old_records_loads_and_takes_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("leases6.redb");
    let old = binding(1, None);
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(TABLE).unwrap();
            t.insert(key_bytes(&old.key).as_slice(), v1_value(&old).as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store6::open(&path).unwrap();
    assert_eq!(store.load().unwrap(), vec![old.clone()]);
    let named = binding(2, Some("desk"));
    store.write(&[Change6::Put(named.clone())]).unwrap();
    // The old binding renewed with a name is rewritten in the new form.
    let renamed = Lease6 {
        hostname: Some("laptop6".into()),
        ..old.clone()
    };
    store.write(&[Change6::Put(renamed.clone())]).unwrap();
    drop(store);
    let mut all = read_only(&path).unwrap();
    all.sort_by_key(|l| l.key.iaid);
    assert_eq!(all, vec![renamed, named]);
}

#[test]
fn a_sweep_finds_every_ended_binding_and_walks_nothing_before_the_first_is_due() {
    let mut t = Leases6::new();
    let put = |t: &mut Leases6, iaid: u32, expires: u64| {
        let mut l = binding(iaid, None);
        l.addr = Ipv6Addr::from(0xfd00_0000_0000_0000_0000_0000_0000_0100u128 + u128::from(iaid));
        l.expires = expires;
        t.apply(&Change6::Put(l));
    };
    put(&mut t, 1, 100);
    put(&mut t, 2, 200);
    put(&mut t, 3, 300);
    let ended = |t: &mut Leases6, now| {
        let e = t.expired(now);
        e.iter().for_each(|c| t.apply(c));
        e.len()
    };
    assert_eq!(ended(&mut t, 50), 0);
    assert_eq!(ended(&mut t, 150), 1);
    // The next sweep walks once more (the ended one counted in the bound) and finds the bound
    // is now 200: nothing due before it.
    assert_eq!(ended(&mut t, 155), 0);
    assert_eq!(t.earliest, 200);
    assert_eq!(ended(&mut t, 199), 0);
    // A binding ending sooner than the bound lowers it.
    put(&mut t, 4, 160);
    assert_eq!(ended(&mut t, 170), 1);
    assert_eq!(ended(&mut t, 400), 2);
    assert_eq!(t.len(), 0);
    assert_eq!(ended(&mut t, 500), 0);
}
