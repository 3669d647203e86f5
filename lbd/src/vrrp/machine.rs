//! The RFC 5798 state machine (section 6.4), clock injected (pure).

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::codec::Advert;

/// The state of the virtual router.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Listening for a master.
    Backup,
    /// Holding the addresses.
    Master,
    /// A tracked script or interface says this node must not hold the addresses: no adverts
    /// sent, none heard, no takeover (keepalived's FAULT).
    Fault,
}

/// What the I/O layer must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Send an advertisement with this priority.
    Send(u8),
    /// Take the addresses (and announce them).
    BecomeMaster,
    /// Give the addresses up.
    BecomeBackup,
    /// Give the addresses up and stay out until the fault clears.
    BecomeFault,
}

/// Configuration of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// Virtual router id.
    pub vrid: u8,
    /// Our priority (255 = address owner).
    pub priority: u8,
    /// Take over from a lower-priority master.
    pub preempt: bool,
    /// Our advertisement interval, centiseconds.
    pub interval_cs: u16,
    /// Our primary address (tie-break between equal priorities; IPv6: the link-local one).
    pub local: IpAddr,
    /// The addresses we protect: an advert must list the same (in any order), as keepalived
    /// requires by default; anything else is not our virtual router.
    pub addrs: Vec<IpAddr>,
    /// The only senders heard when not empty (`peers` in [lb.vrrp]).
    pub peers: Vec<IpAddr>,
}

/// The longest advertisement interval a backup learns, as a multiple of its own: a master
/// slower than that is followed at this bound, so one forged advert with a long interval
/// silences this node for at most about 3 x this x its own interval.
pub const MAX_LEARNED_FACTOR: u16 = 4;

/// Why an advert was not heard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Ignored {
    /// Another virtual router.
    #[error("virtual router {0}, not ours")]
    Vrid(u8),
    /// Our own advert (looped back).
    #[error("our own advert")]
    Own,
    /// `peers` is set and the sender is not one of them.
    #[error("sender is not one of the configured peers")]
    NotPeer,
    /// The address list differs from ours.
    #[error("address list {theirs:?} differs from ours {ours:?}")]
    Addresses {
        /// What the advert lists.
        theirs: Vec<IpAddr>,
        /// What we protect.
        ours: Vec<IpAddr>,
    },
}

/// How often a machine in FAULT wakes up (it does nothing until the fault clears).
const FAULT_NAP: Duration = Duration::from_secs(3600);

fn cs(c: u16) -> Duration {
    Duration::from_millis(u64::from(c) * 10)
}

/// The RFC 5798 state machine (section 6.4), clock injected.
#[derive(Debug, Clone)]
pub struct Machine {
    p: Params,
    state: State,
    master_adver_cs: u16,
    deadline: Instant,
}

impl Machine {
    /// Initialize (6.4.1): an address owner becomes master at once, anyone else backup with
    /// the Master_Down_Timer running.
    pub fn start(p: Params, now: Instant) -> (Machine, Vec<Action>) {
        let mut m = Machine {
            master_adver_cs: p.interval_cs,
            state: State::Backup,
            deadline: now,
            p,
        };
        if m.p.priority == 255 {
            let a = m.become_master(now);
            (m, a)
        } else {
            m.deadline = now + m.master_down();
            (m, Vec::new())
        }
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When [`Machine::on_timer`] is due.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Master_Adver_Interval: the interval the current master advertises (learned from its
    /// adverts, RFC 5798 6.4.2; our own interval until one is heard).
    pub fn master_adver_interval(&self) -> Duration {
        cs(self.master_adver_cs)
    }

    /// Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
    pub fn skew(&self) -> Duration {
        cs(self.master_adver_cs) * (256 - u32::from(self.p.priority)) / 256
    }

    /// Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down(&self) -> Duration {
        cs(self.master_adver_cs) * 3 + self.skew()
    }

    fn become_master(&mut self, now: Instant) -> Vec<Action> {
        self.state = State::Master;
        self.deadline = now + cs(self.p.interval_cs);
        vec![Action::Send(self.p.priority), Action::BecomeMaster]
    }

    /// The timer fired (call when `now >= deadline()`).
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        if now < self.deadline {
            return Vec::new();
        }
        match self.state {
            State::Backup => self.become_master(now),
            State::Master => {
                self.deadline = now + cs(self.p.interval_cs);
                vec![Action::Send(self.p.priority)]
            }
            State::Fault => {
                self.deadline = now + FAULT_NAP;
                Vec::new()
            }
        }
    }

    /// Whether an advert from `src` is heard at all: our VRID, not our own, from a configured
    /// peer (when `peers` is set), with our address list (pure).
    pub fn screen(&self, a: &Advert, src: impl Into<IpAddr>) -> Result<(), Ignored> {
        let src = src.into();
        if a.vrid != self.p.vrid {
            return Err(Ignored::Vrid(a.vrid));
        }
        if src == self.p.local {
            return Err(Ignored::Own);
        }
        if !self.p.peers.is_empty() && !self.p.peers.contains(&src) {
            return Err(Ignored::NotPeer);
        }
        let (mut theirs, mut ours) = (a.addrs.clone(), self.p.addrs.clone());
        theirs.sort_unstable();
        theirs.dedup();
        ours.sort_unstable();
        ours.dedup();
        if theirs != ours {
            return Err(Ignored::Addresses { theirs, ours });
        }
        Ok(())
    }

    /// The longest interval learned from a master (see [`MAX_LEARNED_FACTOR`]).
    pub fn max_learned_cs(&self) -> u16 {
        self.p
            .interval_cs
            .saturating_mul(MAX_LEARNED_FACTOR)
            .clamp(1, 4095)
    }

    /// An advertisement for our VRID arrived from `src`; ignored unless [`Machine::screen`]
    /// lets it through.
    pub fn on_advert(&mut self, a: &Advert, src: impl Into<IpAddr>, now: Instant) -> Vec<Action> {
        let src = src.into();
        if self.screen(a, src).is_err() {
            return Vec::new();
        }
        let learned = a.interval_cs.clamp(1, self.max_learned_cs());
        match self.state {
            State::Fault => Vec::new(),
            State::Backup => {
                if a.priority == 0 {
                    self.deadline = now + self.skew();
                } else if !self.p.preempt || a.priority >= self.p.priority {
                    self.master_adver_cs = learned;
                    self.deadline = now + self.master_down();
                }
                Vec::new()
            }
            State::Master => {
                if a.priority == 0 {
                    self.deadline = now + cs(self.p.interval_cs);
                    vec![Action::Send(self.p.priority)]
                } else if a.priority > self.p.priority
                    || (a.priority == self.p.priority && src > self.p.local)
                {
                    self.state = State::Backup;
                    self.master_adver_cs = learned;
                    self.deadline = now + self.master_down();
                    vec![Action::BecomeBackup]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Shutdown (6.4.3): a master sends priority 0 so a backup takes over after Skew_Time.
    pub fn shutdown(&mut self) -> Vec<Action> {
        let was = self.state;
        self.state = State::Backup;
        if was == State::Master {
            vec![Action::Send(0), Action::BecomeBackup]
        } else {
            Vec::new()
        }
    }

    /// The priority now in force (tracking moves it; see `float::decide`).
    pub fn priority(&self) -> u8 {
        self.p.priority
    }

    /// Tracking changed the priority: later adverts carry it, and as backup it decides
    /// preemption (a master whose priority falls below a preempting backup's loses at that
    /// backup's next Master_Down_Interval, as in keepalived).
    pub fn set_priority(&mut self, priority: u8, now: Instant) -> Vec<Action> {
        if priority == self.p.priority || priority == 0 {
            return Vec::new();
        }
        self.p.priority = priority;
        if self.state == State::Master {
            // Tell the backups at once.
            self.deadline = now + cs(self.p.interval_cs);
            return vec![Action::Send(priority)];
        }
        Vec::new()
    }

    /// Tracking says FAULT (`true`) or that the fault cleared: entering it a master leaves
    /// with priority 0 (a backup takes over after Skew_Time); leaving it the node waits as
    /// backup for Master_Down_Interval, as at start.
    pub fn set_fault(&mut self, fault: bool, now: Instant) -> Vec<Action> {
        match (fault, self.state) {
            (true, State::Fault) | (false, State::Backup | State::Master) => Vec::new(),
            (true, was) => {
                self.state = State::Fault;
                self.deadline = now + FAULT_NAP;
                if was == State::Master {
                    vec![Action::Send(0), Action::BecomeFault]
                } else {
                    vec![Action::BecomeFault]
                }
            }
            (false, State::Fault) => {
                self.state = State::Backup;
                self.master_adver_cs = self.p.interval_cs;
                self.deadline = now + self.master_down();
                vec![Action::BecomeBackup]
            }
        }
    }

    /// Another instance of this one's sync group left MASTER: this one follows (keepalived's
    /// `vrrp_sync_group`). A master sends priority 0 so the other node takes over after
    /// Skew_Time, then waits as backup for a full Master_Down_Interval.
    pub fn force_backup(&mut self, now: Instant) -> Vec<Action> {
        if self.state != State::Master {
            return Vec::new();
        }
        self.state = State::Backup;
        self.deadline = now + self.master_down();
        vec![Action::Send(0), Action::BecomeBackup]
    }
}
