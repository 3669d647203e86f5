//! Forwarded queries on the runtime: the cache first, then the upstream resolvers
//! ([`crate::forward`]); the answer goes back through RRL.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::Message;

use crate::clock::unix_now;
use crate::handler::Transport;
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
            if let Some(mut b) = sh.forward(req, Transport::Udp).await {
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

    /// The answer to a forwarded `req`, sized for the client's transport.
    pub(crate) async fn forward(&self, req: Message, transport: Transport) -> Option<Vec<u8>> {
        let ups = self.view.load().upstream.clone();
        let own = self.policy.load().catalog.clone();
        crate::forward::answer(&self.cache, &ups, &own, &req, transport, &self.stats).await
    }
}
