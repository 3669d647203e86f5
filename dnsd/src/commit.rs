//! Dynamic updates on the runtime: apply the handler's verified update to the zone, store it
//! (dynamic records, serial, journal, update log) and publish the new policy and NOTIFY.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::Name;

use crate::clock::unix_now;
use crate::compile::with_catalog;
use crate::journal::UpdateEntry;
use crate::message::{encode, response_to};
use crate::policy::Policy;
use crate::state::{Shared, Writer};
use crate::store::StoreError;
use crate::tsig::TsigCtx;
use crate::update::Outcome;
use crate::zone::{Catalog, ZoneData, build, digest, next_serial};

/// Why an applied update could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The zone has no source (it vanished in a reload).
    #[error("zone source missing")]
    NoSource,
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The update log entry could not be encoded.
    #[error("update log entry: {0}")]
    Entry(#[from] serde_json::Error),
}

impl Shared {
    /// Applies a verified update and returns the signed answer.
    pub(crate) async fn update(self: &Arc<Self>, req: Message, tsig: TsigCtx) -> Option<Vec<u8>> {
        let mut w = self.writer.lock().await;
        let pol = self.policy.load_full();
        let zname = req.queries[0].name().to_lowercase();
        let Some(zone) = pol.catalog.get(&zname).cloned() else {
            self.stats.updates_refused.inc();
            return encode(
                response_to(&req, ResponseCode::NotAuth),
                Some(&tsig),
                65535,
                &self.stats,
            );
        };
        let rcode = match crate::update::apply(&zone, &req) {
            Outcome::Rejected(rc) => {
                self.stats.updates_refused.inc();
                rc
            }
            Outcome::Unchanged => {
                self.stats.updates_unchanged.inc();
                ResponseCode::NoError
            }
            Outcome::Changed(dynamic) => {
                match self.commit_zone(&mut w, &pol, &zone, dynamic, tsig.signer.signer_name()) {
                    Ok(entry) => {
                        let serial = entry.serial;
                        self.stats.updates.inc();
                        self.record_update(entry);
                        tracing::info!(zone = %zname, serial, key = %tsig.signer.signer_name(), "dynamic update applied");
                        self.notify_all(std::slice::from_ref(&zname));
                        ResponseCode::NoError
                    }
                    Err(e) => {
                        self.stats.updates_failed.inc();
                        tracing::error!(zone = %zname, "update not stored: {e:#}");
                        ResponseCode::ServFail
                    }
                }
            }
        };
        encode(response_to(&req, rcode), Some(&tsig), 65535, &self.stats)
    }

    fn commit_zone(
        &self,
        w: &mut Writer,
        pol: &Policy,
        zone: &ZoneData,
        dynamic: Vec<hickory_proto::rr::Record>,
        key_name: &Name,
    ) -> Result<UpdateEntry, CommitError> {
        let src = w
            .sources
            .iter()
            .find(|s| s.origin == zone.origin)
            .ok_or(CommitError::NoSource)?;
        let key = zone.origin.to_ascii();
        let d = digest(src, &dynamic);
        let stored = w.store.serial(&key)?.or(Some((0, zone.serial())));
        let serial = next_serial(stored, d, unix_now());
        let newz = Arc::new(build(src, dynamic.clone(), serial));
        let dl = crate::zone::delta(zone, &newz);
        let entry = UpdateEntry::new(unix_now(), &zone.origin, key_name, &dl);
        let json = serde_json::to_vec(&entry)?;
        w.store.commit_with_journal(
            Some((&key, &dynamic)),
            &[(key.clone(), d, serial)],
            &[(key.clone(), dl)],
            Some(&json),
        )?;
        let zones = pol
            .catalog
            .zones
            .iter()
            .map(|z| {
                if z.origin == zone.origin {
                    newz.clone()
                } else {
                    z.clone()
                }
            })
            .collect();
        self.policy
            .store(Arc::new(with_catalog(pol, Catalog { zones })));
        Ok(entry)
    }

    /// Applies an update on the runtime and answers `src` on `sock`.
    pub fn spawn_update(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        sock: Arc<std::net::UdpSocket>,
        req: Message,
        tsig: TsigCtx,
        src: SocketAddr,
    ) {
        let sh = self.clone();
        let t0 = Instant::now();
        rt.spawn(async move {
            if let Some(b) = sh.update(req, tsig).await {
                sh.metrics.tasks.answer(&b);
                sh.metrics.tasks.latency(t0.elapsed(), 1);
                let _ = sock.send_to(&b, src);
            }
        });
    }
}
