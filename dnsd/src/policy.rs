//! What the handler decides from: one consistent snapshot of zones, keys and access lists,
//! swapped whole on reload and update.

use std::net::IpAddr;

use hickory_proto::rr::{Name, TSigner};
use ipnet::IpNet;

use crate::fast::FastTable;
use crate::zone::Catalog;

/// A secondary as the handler needs it.
#[derive(Debug, Clone)]
pub struct SecondaryAcl {
    /// Its address.
    pub ip: IpAddr,
    /// Key name it must sign with, if any.
    pub key: Option<Name>,
}

/// Everything the handler decides from (one consistent snapshot).
pub struct Policy {
    /// The zones.
    pub catalog: std::sync::Arc<Catalog>,
    /// All TSIG keys we know (update keys and secondaries' keys).
    pub keys: Vec<TSigner>,
    /// Names of the keys allowed to update.
    pub update_keys: Vec<Name>,
    /// Clients allowed to recurse.
    pub allow_recursion: Vec<IpNet>,
    /// Forwarding configured.
    pub forwarding: bool,
    /// Transfer ACL.
    pub secondaries: Vec<SecondaryAcl>,
    /// Precomputed answers of `catalog` (see [`crate::fast`]).
    pub fast: FastTable,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| k.signer_name().to_string())
            .collect();
        f.debug_struct("Policy")
            .field("catalog", &self.catalog)
            .field("keys", &keys)
            .field("update_keys", &self.update_keys)
            .field("allow_recursion", &self.allow_recursion)
            .field("forwarding", &self.forwarding)
            .field("secondaries", &self.secondaries)
            .finish()
    }
}

impl Policy {
    /// True when `src` may use forwarding and the cache.
    pub fn may_recurse(&self, src: IpAddr) -> bool {
        self.forwarding && self.allow_recursion.iter().any(|n| n.contains(&src))
    }
}
