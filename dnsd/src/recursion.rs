//! Forwarded queries on the runtime: the cache first, then the upstream resolvers
//! ([`crate::forward`]); the answer goes back through RRL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Message, Query, ResponseCode};

use crate::clock::unix_now;
use crate::message::{encode, response_to};
use crate::rrl::Verdict;
use crate::state::Shared;

impl Shared {
    /// Resolves `req` on the runtime and answers `src` on `sock`.
    pub fn spawn_forward(
        self: &Arc<Self>,
        rt: &tokio::runtime::Handle,
        sock: Arc<std::net::UdpSocket>,
        req: Message,
        src: SocketAddr,
    ) {
        let Ok(permit) = self.forward_slots.clone().try_acquire_owned() else {
            return; // overloaded: the client retries
        };
        let sh = self.clone();
        let t0 = Instant::now();
        rt.spawn(async move {
            if let Some(mut b) = sh.forward(req).await {
                sh.metrics.tasks.answer(&b);
                sh.metrics.tasks.latency(t0.elapsed(), 1);
                let ok = sh.rrl_off()
                    || match sh.rrl_check(src.ip(), unix_now()) {
                        Verdict::Send => true,
                        Verdict::Drop => false,
                        Verdict::Slip => {
                            crate::message::slip(&mut b);
                            true
                        }
                    };
                if ok {
                    let _ = sock.send_to(&b, src);
                }
            }
            drop(permit);
        });
    }

    pub(crate) async fn forward(&self, req: Message) -> Option<Vec<u8>> {
        let q: Query = req.queries[0].clone();
        let mut resp = response_to(&req, ResponseCode::NoError);
        resp.metadata.recursion_available = true;
        let now = Instant::now();
        let hit = self.cache.get(q.name(), q.query_type(), now);
        let got = match hit {
            Some(c) => {
                self.stats.cache_hits.inc();
                Some(c)
            }
            None => {
                self.stats.cache_misses.inc();
                let ups = self.view.load().upstream.clone();
                match crate::forward::resolve(&ups, &q).await {
                    Some(m) => {
                        self.cache.put(q.name(), q.query_type(), &m, now);
                        resp.metadata.response_code = m.response_code;
                        resp.answers = m.answers;
                        resp.authorities = m.authorities;
                        None
                    }
                    None => {
                        resp.metadata.response_code = ResponseCode::ServFail;
                        None
                    }
                }
            }
        };
        if let Some(c) = got {
            resp.metadata.response_code = c.rcode;
            resp.answers = c.answers;
            resp.authorities = c.authorities;
        }
        Some(resp).and_then(|r| {
            let limit = crate::message::udp_limit(&req);
            encode(r, None, limit, &self.stats)
        })
    }
}
