//! The tracking decision, pure: from what the tracked scripts and interfaces say now to each
//! instance's priority and fault, with sync groups moving as one (keepalived's `vrrp_script`,
//! `track_interface` and `vrrp_sync_group` rules).

use std::collections::BTreeMap;

use hostfile::{SyncGroup, Tracking};

use crate::vrrp::State;

/// What the tracked things say now: scripts and interfaces (link up) by name. One not known
/// yet counts as up (keepalived's default: a script starts as passing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracked {
    /// Script name -> up.
    pub scripts: BTreeMap<String, bool>,
    /// Interface name -> link up.
    pub links: BTreeMap<String, bool>,
}

/// What tracking makes of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// The priority to advertise.
    pub priority: u8,
    /// FAULT: hold nothing, advertise nothing.
    pub fault: bool,
}

/// One instance as the decision sees it.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its configured priority.
    pub priority: u8,
    /// What it tracks.
    pub tracking: &'a Tracking,
}

/// One instance's own change of priority and fault: a weight > 0 is added while its item is
/// up, a weight < 0 added (so subtracted) while it is down, a weight of 0 faults while down.
pub fn own(t: &Tracking, now: &Tracked) -> (i32, bool) {
    let mut delta = 0;
    let mut fault = false;
    let items = t
        .scripts
        .iter()
        .map(|s| (s, now.scripts.get(&s.name).copied().unwrap_or(true)))
        .chain(
            t.interfaces
                .iter()
                .map(|i| (i, now.links.get(&i.name).copied().unwrap_or(true))),
        );
    for (track, up) in items {
        match (track.weight, up) {
            (0, false) => fault = true,
            (w, true) if w > 0 => delta += w,
            (w, false) if w < 0 => delta += w,
            _ => {}
        }
    }
    (delta, fault)
}

/// The sync group `name` is in, if any.
pub fn group_of<'a>(name: &str, groups: &'a [SyncGroup]) -> Option<&'a SyncGroup> {
    groups
        .iter()
        .find(|g| g.instances.iter().any(|i| i == name))
}

/// Every instance's priority and fault. In a sync group the members' changes add up and a
/// fault of one is a fault of all, so the members of a group rank the same against the other
/// node and move together (keepalived's `sync_group_tracking_weight`). An address owner
/// (priority 255) keeps 255 unless it faults; others stay within 1-254.
pub fn effective(
    members: &[Member<'_>],
    groups: &[SyncGroup],
    now: &Tracked,
) -> BTreeMap<String, Effective> {
    let own: BTreeMap<&str, (i32, bool)> = members
        .iter()
        .map(|m| (m.name, own(m.tracking, now)))
        .collect();
    members
        .iter()
        .map(|m| {
            let (delta, fault) = match group_of(m.name, groups) {
                Some(g) => g
                    .instances
                    .iter()
                    .filter_map(|i| own.get(i.as_str()))
                    .fold((0, false), |(d, f), (od, of)| (d + od, f || *of)),
                None => own[m.name],
            };
            let priority = if m.priority == 255 {
                255
            } else {
                (i32::from(m.priority) + delta).clamp(1, 254) as u8
            };
            (m.name.to_owned(), Effective { priority, fault })
        })
        .collect()
}

/// The members of `name`'s sync group that must follow it out of MASTER: `name` went from
/// MASTER to BACKUP or FAULT, and these are MASTER still.
pub fn followers(
    name: &str,
    from: State,
    to: State,
    groups: &[SyncGroup],
    states: &BTreeMap<String, State>,
) -> Vec<String> {
    if from != State::Master || to == State::Master {
        return Vec::new();
    }
    let Some(g) = group_of(name, groups) else {
        return Vec::new();
    };
    g.instances
        .iter()
        .filter(|i| i.as_str() != name && states.get(i.as_str()) == Some(&State::Master))
        .cloned()
        .collect()
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
