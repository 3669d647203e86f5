//! [`settle`] against a model of the shared table's rules (one row per address or prefix, one
//! per IA, a bind admitted only on a free, ended or own row): refusals are learned and decided
//! again, and two cores that never see each other's tables still never hand out one address
//! twice. The SQL itself is exercised against PostgreSQL by `tests/pg6.rs`.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv6Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dhcproto::v6::{DhcpOption, DhcpOptions, IANA, Message, MessageType, Status};
use hostfile::{Dhcp6Subnet, Ipv6Range, Pool6};

use super::*;
use crate::v6::decide::{Ctx, decide};
use crate::v6::lease::{IaKind, Key6, State6};

const NOW: u64 = 1_000_000;

type Rows = BTreeMap<(IaKind, Ipv6Addr, u8), Lease6>;

/// The shared table's rules in memory; `refuse_all` refuses every bind.
#[derive(Debug, Default, Clone)]
struct Model {
    rows: Arc<Mutex<Rows>>,
    refuse_all: bool,
}

impl Model {
    fn rows(&self) -> Vec<Lease6> {
        self.rows.lock().unwrap().values().cloned().collect()
    }
}

impl BindingStore for Model {
    fn load(&mut self) -> Result<Vec<Lease6>, Store6Error> {
        Ok(self.rows())
    }
    fn commit(
        &mut self,
        changes: &[Change6],
        known: &Leases6,
        now: u64,
    ) -> Result<Commit6, Store6Error> {
        let mut rows = self.rows.lock().unwrap();
        let mut next = rows.clone();
        for c in changes {
            match c {
                Change6::Put(l) => {
                    let at = (l.key.kind, l.addr, l.prefix_len);
                    next.retain(|k, r| r.key != l.key || *k == at);
                    let held = next
                        .get(&at)
                        .filter(|r| r.key != l.key && r.expires > now)
                        .cloned();
                    if l.state == State6::Bound && (self.refuse_all || held.is_some()) {
                        return Ok(Commit6::Refused(held.into_iter().collect()));
                    }
                    next.insert(at, l.clone());
                }
                Change6::Delete(k) => match known.get(k).filter(|l| l.expires > now) {
                    Some(l) => {
                        let at = (k.kind, l.addr, l.prefix_len);
                        if next.get(&at).is_some_and(|r| r.key == *k) {
                            next.remove(&at);
                        }
                    }
                    None => next.retain(|_, r| r.key != *k || r.expires > now),
                },
            }
        }
        *rows = next;
        Ok(Commit6::Done)
    }
    fn changed(&mut self) -> Result<Vec<Lease6>, Store6Error> {
        Ok(self.rows())
    }
}

fn subnet() -> Vec<Dhcp6Subnet> {
    let a = |s: &str| s.parse::<Ipv6Addr>().unwrap();
    vec![Dhcp6Subnet {
        name: "lan6".into(),
        network: "fd00:10::/64".parse().unwrap(),
        interface: None,
        dns: Vec::new(),
        domain: "lan".into(),
        search: Vec::new(),
        ntp: Vec::new(),
        mtu: None,
        preferred: Duration::from_secs(3000),
        valid: Duration::from_secs(4000),
        t1: Duration::from_secs(1500),
        t2: Duration::from_secs(2400),
        pools: vec![Pool6 {
            range: Ipv6Range {
                start: a("fd00:10::100"),
                end: a("fd00:10::13f"),
            },
        }],
        pd_pools: Vec::new(),
        ra: false,
        slaac: false,
        rapid_commit: false,
    }]
}

fn client(i: u8) -> Vec<u8> {
    vec![0, 3, 0, 1, 2, 0, 0, 0, 0, i]
}

fn server(i: u8) -> Vec<u8> {
    vec![0, 4, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i]
}

fn message(t: MessageType, duid: &[u8], server: &[u8], held: Option<Ipv6Addr>) -> Message {
    let mut m = Message::new_with_id(t, [1, 2, 3]);
    let o = m.opts_mut();
    o.insert(DhcpOption::ClientId(duid.to_vec()));
    o.insert(DhcpOption::ServerId(server.to_vec()));
    let mut ia = DhcpOptions::new();
    if let Some(addr) = held {
        ia.insert(DhcpOption::IAAddr(dhcproto::v6::IAAddr {
            addr,
            preferred_life: 0,
            valid_life: 0,
            opts: DhcpOptions::new(),
        }));
    }
    o.insert(DhcpOption::IANA(IANA {
        id: 1,
        t1: 0,
        t2: 0,
        opts: ia,
    }));
    m
}

/// One core: its table and its DUID, deciding through [`settle`].
struct Core {
    leases: Leases6,
    duid: Vec<u8>,
}

impl Core {
    fn send(
        &mut self,
        store: &mut dyn BindingStore,
        subnets: &[Dhcp6Subnet],
        m: &Message,
    ) -> Result<Outcome, Settle6Error> {
        let ctx = Ctx {
            subnets,
            reservations: &[],
            server_duid: &self.duid,
            decline_probation: 3600,
            client_mac: None,
        };
        settle(store, &mut self.leases, NOW, |l| {
            decide(&ctx, Some(0), l, m, NOW)
        })
    }
}

/// The address of the reply's IA_NA with a non-zero lifetime, or its status.
fn reply_addr(o: &Outcome) -> Result<Ipv6Addr, Status> {
    let reply = o.reply.as_ref().expect("a reply");
    let Some(DhcpOption::IANA(ia)) = reply.opts().get(dhcproto::v6::OptionCode::IANA) else {
        panic!("no IA_NA in {reply:?}");
    };
    for opt in ia.opts.iter() {
        match opt {
            DhcpOption::IAAddr(a) if a.valid_life > 0 => return Ok(a.addr),
            DhcpOption::StatusCode(s) => return Err(s.status),
            _ => {}
        }
    }
    panic!("nothing in {ia:?}")
}

fn row(duid: Vec<u8>, addr: Ipv6Addr) -> Lease6 {
    Lease6 {
        key: Key6 {
            duid,
            iaid: 1,
            kind: IaKind::Na,
        },
        addr,
        prefix_len: 128,
        starts: NOW - 10,
        expires: NOW + 4000,
        state: State6::Bound,
        hostname: None,
    }
}

#[test]
fn a_refused_address_is_learned_and_the_reply_carries_another() {
    let subnets = subnet();
    let mut db = Model::default();
    let first: Ipv6Addr = "fd00:10::100".parse().unwrap();
    // Another server's client holds the pool's first address; this core has never heard of it.
    db.commit(&[Change6::Put(row(client(9), first))], &Leases6::new(), NOW)
        .unwrap();
    let mut core = Core {
        leases: Leases6::new(),
        duid: server(1),
    };
    let m = message(MessageType::Request, &client(1), &server(1), None);
    let out = core.send(&mut db, &subnets, &m).unwrap();
    let got = reply_addr(&out).unwrap();
    assert_ne!(got, first);
    assert_eq!(core.leases.holder(first, 128).unwrap().key.duid, client(9));
    assert_eq!(core.leases.holder(got, 128).unwrap().key.duid, client(1));
    assert!(
        db.rows()
            .iter()
            .any(|r| r.addr == got && r.key.duid == client(1))
    );
}

#[test]
fn two_cores_on_one_database_never_hand_out_one_address_twice() {
    let subnets = subnet();
    let db = Model::default();
    let mut cores = [1, 2].map(|i| Core {
        leases: Leases6::new(),
        duid: server(i),
    });
    let mut given: HashMap<Ipv6Addr, u8> = HashMap::new();
    // 60 clients for 64 addresses, alternating servers that never refresh from each other.
    for i in 0..60u8 {
        let core = &mut cores[usize::from(i % 2)];
        let m = message(MessageType::Request, &client(i), &core.duid, None);
        let out = core.send(&mut db.clone(), &subnets, &m).unwrap();
        let a = reply_addr(&out).unwrap_or_else(|s| panic!("client {i}: {s:?}"));
        if let Some(j) = given.insert(a, i) {
            panic!("{a} handed to clients {j} and {i}");
        }
    }
    let rows = db.rows();
    assert_eq!(rows.len(), 60);
    for (a, i) in &given {
        assert!(
            rows.iter()
                .any(|r| r.addr == *a && r.key.duid == client(*i))
        );
    }
}

#[test]
fn a_renewal_of_an_address_another_server_gave_away_gets_no_binding() {
    let subnets = subnet();
    let mut db = Model::default();
    let addr: Ipv6Addr = "fd00:10::100".parse().unwrap();
    db.commit(&[Change6::Put(row(client(9), addr))], &Leases6::new(), NOW)
        .unwrap();
    // This core's table still says client 1 holds it.
    let mut core = Core {
        leases: Leases6::new(),
        duid: server(1),
    };
    core.leases.apply(&Change6::Put(row(client(1), addr)));
    let m = message(MessageType::Renew, &client(1), &server(1), Some(addr));
    let out = core.send(&mut db, &subnets, &m).unwrap();
    assert_eq!(reply_addr(&out), Err(Status::NoBinding));
    assert!(out.changes.is_empty());
    assert_eq!(db.rows(), vec![row(client(9), addr)]);
}

#[test]
fn a_database_that_keeps_refusing_leaves_the_message_unanswered() {
    let subnets = subnet();
    let mut db = Model {
        refuse_all: true,
        ..Model::default()
    };
    let mut core = Core {
        leases: Leases6::new(),
        duid: server(1),
    };
    let m = message(MessageType::Request, &client(1), &server(1), None);
    let r = core.send(&mut db, &subnets, &m);
    assert!(matches!(r, Err(Settle6Error::Contended)), "{r:?}");
    assert!(core.leases.is_empty());
    assert!(db.rows().is_empty());
}

#[test]
fn loading_drops_ended_bindings_from_the_table_and_the_store() {
    let mut db = Model::default();
    let live = row(client(1), "fd00:10::100".parse().unwrap());
    let ended = Lease6 {
        expires: NOW,
        ..row(client(2), "fd00:10::101".parse().unwrap())
    };
    db.commit(
        &[Change6::Put(live.clone()), Change6::Put(ended)],
        &Leases6::new(),
        NOW - 100,
    )
    .unwrap();
    let (t, dropped) = load_live(&mut db, NOW).unwrap();
    assert_eq!((t.len(), dropped), (1, 1));
    assert_eq!(db.rows(), vec![live]);
}

#[test]
fn a_binding_another_server_renewed_is_not_swept() {
    let a = Lease6 {
        expires: NOW,
        ..row(client(1), "fd00:10::100".parse().unwrap())
    };
    let b = Lease6 {
        expires: NOW,
        ..row(client(2), "fd00:10::101".parse().unwrap())
    };
    let mut t = Leases6::new();
    t.apply(&Change6::Put(a.clone()));
    t.apply(&Change6::Put(b.clone()));
    let ended = t.expired(NOW);
    assert_eq!(ended.len(), 2);
    // The other server of the pair renewed a; the table learns it after the sweep's commit.
    learn(
        &mut t,
        vec![Lease6 {
            expires: NOW + 3600,
            ..a.clone()
        }],
    );
    let left = still_ended(ended, &t, NOW);
    assert_eq!(left, vec![Change6::Delete(b.key.clone())]);
}
