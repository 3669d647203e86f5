//! The decision alone, then two simulated nodes with two instances each (an outer VIP and an
//! inner gateway in one sync group), the real [`Machine`]s exchanging adverts on a virtual
//! clock: kill of the master, a tracked script failing (fault and weight), sync following and
//! nopreempt.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use hostfile::{SyncGroup, Track, Tracking};
use tokio::time::Instant;

use super::*;
use crate::vrrp::{Action, Advert, Machine, Params};

fn track(scripts: &[(&str, i32)], links: &[(&str, i32)]) -> Tracking {
    let t = |l: &[(&str, i32)]| {
        l.iter()
            .map(|(n, w)| Track {
                name: (*n).to_owned(),
                weight: *w,
            })
            .collect()
    };
    Tracking {
        scripts: t(scripts),
        interfaces: t(links),
    }
}

fn now_of(scripts: &[(&str, bool)], links: &[(&str, bool)]) -> Tracked {
    Tracked {
        scripts: scripts.iter().map(|(n, u)| ((*n).to_owned(), *u)).collect(),
        links: links.iter().map(|(n, u)| ((*n).to_owned(), *u)).collect(),
    }
}

fn group(members: &[&str]) -> Vec<SyncGroup> {
    vec![SyncGroup {
        name: "nat".into(),
        instances: members.iter().map(|m| (*m).to_owned()).collect(),
    }]
}

#[test]
fn weights_add_while_up_subtract_while_down_and_zero_faults() {
    let t = track(&[("up_bonus", 10), ("haproxy", -60)], &[("eth1", 0)]);
    assert_eq!(
        own(&t, &Tracked::default()),
        (10, false),
        "unknown counts as up"
    );
    assert_eq!(own(&t, &now_of(&[("haproxy", false)], &[])), (-50, false));
    assert_eq!(
        own(&t, &now_of(&[("up_bonus", false), ("haproxy", false)], &[])),
        (-60, false)
    );
    assert_eq!(own(&t, &now_of(&[], &[("eth1", false)])), (10, true));
}

#[test]
fn a_group_adds_its_members_changes_and_shares_a_fault() {
    let outer = track(&[("haproxy", -60)], &[]);
    let inner = track(&[], &[("eth1", 0)]);
    let alone = Tracking::default();
    let members = [
        Member {
            name: "vrrp",
            priority: 150,
            tracking: &outer,
        },
        Member {
            name: "gateway",
            priority: 150,
            tracking: &inner,
        },
        Member {
            name: "other",
            priority: 100,
            tracking: &alone,
        },
    ];
    let g = group(&["vrrp", "gateway"]);
    let e = effective(&members, &g, &now_of(&[("haproxy", false)], &[]));
    assert_eq!(
        e["vrrp"],
        Effective {
            priority: 90,
            fault: false
        }
    );
    assert_eq!(
        e["gateway"],
        Effective {
            priority: 90,
            fault: false
        }
    );
    assert_eq!(
        e["other"],
        Effective {
            priority: 100,
            fault: false
        }
    );
    let e = effective(&members, &g, &now_of(&[], &[("eth1", false)]));
    assert!(e["vrrp"].fault && e["gateway"].fault && !e["other"].fault);
    // Without the group each keeps its own.
    let e = effective(
        &members,
        &[],
        &now_of(&[("haproxy", false)], &[("eth1", false)]),
    );
    assert_eq!(
        e["vrrp"],
        Effective {
            priority: 90,
            fault: false
        }
    );
    assert_eq!(
        e["gateway"],
        Effective {
            priority: 150,
            fault: true
        }
    );
}

#[test]
fn priority_stays_in_bounds_and_an_owner_keeps_255() {
    let big = track(&[("a", 200)], &[]);
    let low = track(&[("a", -200)], &[]);
    let m = |name, priority, tracking| Member {
        name,
        priority,
        tracking,
    };
    let e = effective(
        &[m("x", 150, &big), m("y", 100, &low), m("z", 255, &low)],
        &[],
        &now_of(&[("a", false)], &[]),
    );
    assert_eq!(e["y"].priority, 1);
    assert_eq!(e["z"].priority, 255);
    let e = effective(&[m("x", 150, &big)], &[], &Tracked::default());
    assert_eq!(e["x"].priority, 254);
}

#[test]
fn followers_are_the_other_masters_of_the_group() {
    let g = group(&["vrrp", "gateway", "dmz"]);
    let st: BTreeMap<String, State> = [
        ("vrrp", State::Backup),
        ("gateway", State::Master),
        ("dmz", State::Backup),
        ("alone", State::Master),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_owned(), s))
    .collect();
    assert_eq!(
        followers("vrrp", State::Master, State::Backup, &g, &st),
        ["gateway"]
    );
    assert_eq!(
        followers("vrrp", State::Master, State::Fault, &g, &st),
        ["gateway"]
    );
    assert!(followers("vrrp", State::Backup, State::Master, &g, &st).is_empty());
    assert!(followers("vrrp", State::Fault, State::Backup, &g, &st).is_empty());
    assert!(followers("alone", State::Master, State::Backup, &g, &st).is_empty());
}

// ---- Two nodes, two instances each, on a virtual clock ----

const NAMES: [&str; 2] = ["vrrp", "gateway"];
const VRIDS: [u8; 2] = [51, 52];

fn addrs(i: usize) -> Vec<IpAddr> {
    [
        vec![IpAddr::from([192, 168, 1, 120])],
        vec![IpAddr::from([192, 168, 10, 1])],
    ][i]
        .clone()
}

struct Node {
    local: Ipv4Addr,
    base: u8,
    m: Vec<Machine>,
    states: BTreeMap<String, State>,
    tracking: [Tracking; 2],
    tracked: Tracked,
    alive: bool,
}

struct Sim {
    nodes: Vec<Node>,
    now: Instant,
    groups: Vec<SyncGroup>,
}

impl Sim {
    /// Node 0 (priority `p0`) and node 1 (`p1`), 100 ms adverts; node 0's `vrrp` instance
    /// tracks `chk` with `weight`.
    fn new(p0: u8, p1: u8, preempt: [bool; 2], weight: i32, grouped: bool) -> Sim {
        let now = Instant::now();
        let mk = |k: usize, base: u8| {
            let local = Ipv4Addr::new(192, 168, 1, 2 + k as u8);
            let m = (0..2)
                .map(|i| {
                    Machine::start(
                        Params {
                            vrid: VRIDS[i],
                            priority: base,
                            preempt: preempt[k],
                            interval_cs: 10,
                            local: local.into(),
                            addrs: addrs(i),
                            peers: Vec::new(),
                        },
                        now,
                    )
                    .0
                })
                .collect();
            Node {
                local,
                base,
                m,
                states: NAMES
                    .iter()
                    .map(|n| ((*n).to_owned(), State::Backup))
                    .collect(),
                tracking: [track(&[("chk", weight)], &[]), Tracking::default()],
                tracked: Tracked::default(),
                alive: true,
            }
        };
        Sim {
            nodes: vec![mk(0, p0), mk(1, p1)],
            now,
            groups: if grouped { group(&NAMES) } else { Vec::new() },
        }
    }

    fn route(&mut self, k: usize, i: usize, acts: Vec<Action>) {
        for a in acts {
            if let Action::Send(p) = a {
                let o = 1 - k;
                if !self.nodes[o].alive {
                    continue;
                }
                let adv = Advert {
                    vrid: VRIDS[i],
                    priority: p,
                    interval_cs: 10,
                    addrs: addrs(i),
                };
                let src = self.nodes[k].local;
                let back = self.nodes[o].m[i].on_advert(&adv, src, self.now);
                self.route(o, i, back);
            }
        }
        let n = &mut self.nodes[k];
        let (was, is) = (n.states[NAMES[i]], n.m[i].state());
        if was != is {
            n.states.insert(NAMES[i].to_owned(), is);
            for f in followers(NAMES[i], was, is, &self.groups, &n.states.clone()) {
                let j = NAMES.iter().position(|x| *x == f).unwrap();
                let acts = self.nodes[k].m[j].force_backup(self.now);
                self.route(k, j, acts);
            }
        }
    }

    fn retrack(&mut self, k: usize) {
        let n = &self.nodes[k];
        let members: Vec<Member<'_>> = (0..2)
            .map(|i| Member {
                name: NAMES[i],
                priority: n.base,
                tracking: &n.tracking[i],
            })
            .collect();
        let e = effective(&members, &self.groups, &n.tracked);
        for (i, name) in NAMES.iter().enumerate() {
            let now = self.now;
            let acts = self.nodes[k].m[i].set_fault(e[*name].fault, now);
            self.route(k, i, acts);
            let acts = self.nodes[k].m[i].set_priority(e[*name].priority, now);
            self.route(k, i, acts);
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..100_000 {
            let next = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .flat_map(|n| n.m.iter().map(Machine::deadline))
                .min()
                .unwrap();
            if next > end {
                break;
            }
            self.now = next.max(self.now);
            for k in 0..2 {
                for i in 0..2 {
                    if self.nodes[k].alive && self.nodes[k].m[i].deadline() <= self.now {
                        let acts = self.nodes[k].m[i].on_timer(self.now);
                        self.route(k, i, acts);
                    }
                }
            }
        }
        self.now = end;
    }

    fn states(&self, k: usize) -> [State; 2] {
        [self.nodes[k].m[0].state(), self.nodes[k].m[1].state()]
    }
}

const M: State = State::Master;
const B: State = State::Backup;
const F: State = State::Fault;

#[test]
fn both_instances_move_when_the_master_dies() {
    let mut s = Sim::new(150, 100, [true, true], 0, true);
    s.run_for(Duration::from_secs(1));
    assert_eq!((s.states(0), s.states(1)), ([M, M], [B, B]));
    s.nodes[0].alive = false;
    // Master_Down_Interval at 100 ms for priority 100: 300 ms + 60.9 ms.
    s.run_for(Duration::from_millis(370));
    assert_eq!(s.states(1), [M, M]);
}

#[test]
fn a_failing_script_with_weight_0_faults_the_whole_group_and_both_addresses_move() {
    let mut s = Sim::new(150, 100, [true, true], 0, true);
    s.run_for(Duration::from_secs(1));
    s.nodes[0].tracked.scripts.insert("chk".into(), false);
    s.retrack(0);
    assert_eq!(
        s.states(0),
        [F, F],
        "the gateway follows the tracked instance"
    );
    // Priority 0 sent: the other node takes both after Skew_Time (~61 ms).
    s.run_for(Duration::from_millis(100));
    assert_eq!(s.states(1), [M, M]);
    // Fault cleared: node 0 waits as backup, then preempts both back.
    s.nodes[0].tracked.scripts.insert("chk".into(), true);
    s.retrack(0);
    assert_eq!(s.states(0), [B, B]);
    s.run_for(Duration::from_secs(1));
    assert_eq!((s.states(0), s.states(1)), ([M, M], [B, B]));
}

#[test]
fn a_weight_moves_both_instances_of_a_group_below_the_backup() {
    let mut s = Sim::new(150, 100, [true, true], -60, true);
    s.run_for(Duration::from_secs(1));
    s.nodes[0].tracked.scripts.insert("chk".into(), false);
    s.retrack(0);
    assert_eq!(
        s.nodes[0].m[1].priority(),
        90,
        "the group shares the weight"
    );
    // The backup (100 > 90, preempting) takes over at its next Master_Down_Interval.
    s.run_for(Duration::from_secs(1));
    assert_eq!((s.states(0), s.states(1)), ([B, B], [M, M]));
}

#[test]
fn without_a_group_only_the_tracked_instance_moves() {
    let mut s = Sim::new(150, 100, [true, true], 0, false);
    s.run_for(Duration::from_secs(1));
    s.nodes[0].tracked.scripts.insert("chk".into(), false);
    s.retrack(0);
    s.run_for(Duration::from_millis(200));
    assert_eq!((s.states(0), s.states(1)), ([F, M], [M, B]));
}

#[test]
fn a_member_losing_master_takes_its_group_along() {
    let mut s = Sim::new(150, 100, [true, true], 0, true);
    s.run_for(Duration::from_secs(1));
    // A higher-priority advert for the outer instance only (say the other node's priority was
    // raised): node 0's outer goes backup and the gateway follows with priority 0.
    let adv = Advert {
        vrid: 51,
        priority: 200,
        interval_cs: 10,
        addrs: addrs(0),
    };
    let acts = s.nodes[0].m[0].on_advert(&adv, Ipv4Addr::new(192, 168, 1, 9), s.now);
    assert_eq!(acts, [Action::BecomeBackup]);
    s.route(0, 0, acts);
    assert_eq!(s.states(0), [B, B]);
    s.run_for(Duration::from_millis(100));
    assert_eq!(
        s.states(1)[1],
        M,
        "the other node took the gateway after Skew_Time"
    );
}

#[test]
fn nopreempt_keeps_the_current_master() {
    // Node 0 (150) does not preempt: started after node 1 took both, it stays backup.
    let mut s = Sim::new(150, 100, [false, true], 0, true);
    s.nodes[0].alive = false;
    s.run_for(Duration::from_secs(1));
    assert_eq!(s.states(1), [M, M]);
    let now = s.now;
    s.nodes[0].alive = true;
    for (i, vrid) in VRIDS.into_iter().enumerate() {
        s.nodes[0].m[i] = Machine::start(
            Params {
                vrid,
                priority: 150,
                preempt: false,
                interval_cs: 10,
                local: s.nodes[0].local.into(),
                addrs: addrs(i),
                peers: Vec::new(),
            },
            now,
        )
        .0;
    }
    s.run_for(Duration::from_secs(2));
    assert_eq!((s.states(0), s.states(1)), ([B, B], [M, M]));
    // Node 1 dies: node 0 takes both.
    s.nodes[1].alive = false;
    s.run_for(Duration::from_millis(500));
    assert_eq!(s.states(0), [M, M]);
}
