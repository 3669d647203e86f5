//!
//! The binary record forms: a lease is version byte 2, address, state, key source, start,
//! expiry, then client key, hardware address and host name each with a 16-bit length (0xffff: no
//! host name); version 1 (written before the key source was kept) has no key source byte and
//! reads as [`KeySource::Legacy`]. A journal record is a sequence of changes, each `P` + lease or
//! `D` + address.

use std::net::Ipv4Addr;

use crate::lease::{Change, KeySource, Lease, LeaseState};

use super::lease_store::StoreError;

const V1: u8 = 1;
const V2: u8 = 2;
const NONE: u16 = u16::MAX;

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Client keys, hardware addresses and names are far below 64 KiB (one DHCP option).
    let n = b.len().min(usize::from(NONE - 1));
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.extend_from_slice(&b[..n]);
}

pub(super) fn put_lease(out: &mut Vec<u8>, l: &Lease) {
    out.push(V2);
    out.extend_from_slice(&l.ip.octets());
    out.push(match l.state {
        LeaseState::Offered => 0,
        LeaseState::Bound => 1,
        LeaseState::Released => 2,
        LeaseState::Expired => 3,
        LeaseState::Declined => 4,
    });
    out.push(match l.key_source {
        KeySource::Legacy => 0,
        KeySource::Hardware => 1,
        KeySource::ClientId => 2,
    });
    out.extend_from_slice(&l.starts.to_be_bytes());
    out.extend_from_slice(&l.expires.to_be_bytes());
    put_bytes(out, &l.client);
    put_bytes(out, &l.hwaddr);
    match &l.hostname {
        Some(h) => put_bytes(out, h.as_bytes()),
        None => out.extend_from_slice(&NONE.to_be_bytes()),
    }
}

/// Appends the stored changes of `changes`; returns how many.
pub(super) fn put_changes(out: &mut Vec<u8>, changes: &mut dyn Iterator<Item = &Change>) -> usize {
    let mut n = 0;
    for c in changes {
        match c {
            Change::Put(l) => {
                out.push(b'P');
                put_lease(out, l);
            }
            Change::Del(ip) => {
                out.push(b'D');
                out.extend_from_slice(&ip.octets());
            }
            Change::Withdraw { .. } => continue,
        }
        n += 1;
    }
    n
}

pub(super) fn changes(b: &[u8]) -> Result<Vec<Change>, StoreError> {
    let mut r = Reader(b);
    let mut out = Vec::new();
    while !r.0.is_empty() {
        match r.take(1)?[0] {
            b'P' => out.push(Change::Put(r.lease()?)),
            b'D' => out.push(Change::Del(r.ip()?)),
            x => return Err(bad(format!("unknown journal change {x:#04x}"))),
        }
    }
    Ok(out)
}

fn bad(msg: String) -> StoreError {
    StoreError::Io(format!("bad record: {msg}"))
}

pub(super) struct Reader<'a>(pub &'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], StoreError> {
        if self.0.len() < n {
            return Err(bad("truncated".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self) -> Result<u16, StoreError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u64(&mut self) -> Result<u64, StoreError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn ip(&mut self) -> Result<Ipv4Addr, StoreError> {
        let b = self.take(4)?;
        Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
    fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        let n = self.u16()?;
        Ok(self.take(usize::from(n))?.to_vec())
    }
    pub(super) fn lease(&mut self) -> Result<Lease, StoreError> {
        let v = self.take(1)?[0];
        if v != V1 && v != V2 {
            return Err(bad(format!("unknown record version {v}")));
        }
        let ip = self.ip()?;
        let state = match self.take(1)?[0] {
            0 => LeaseState::Offered,
            1 => LeaseState::Bound,
            2 => LeaseState::Released,
            3 => LeaseState::Expired,
            4 => LeaseState::Declined,
            x => return Err(bad(format!("unknown lease state {x}"))),
        };
        let key_source = if v == V1 {
            KeySource::Legacy
        } else {
            match self.take(1)?[0] {
                0 => KeySource::Legacy,
                1 => KeySource::Hardware,
                2 => KeySource::ClientId,
                x => return Err(bad(format!("unknown key source {x}"))),
            }
        };
        let starts = self.u64()?;
        let expires = self.u64()?;
        let client = self.bytes()?;
        let hwaddr = self.bytes()?;
        let hostname = if self.0.get(..2) == Some(&NONE.to_be_bytes()[..]) {
            self.take(2)?;
            None
        } else {
            let b = self.bytes()?;
            Some(String::from_utf8(b).map_err(|_| bad("host name is not UTF-8".into()))?)
        };
        Ok(Lease {
            ip,
            client,
            key_source,
            hwaddr,
            hostname,
            starts,
            expires,
            state,
        })
    }
}
