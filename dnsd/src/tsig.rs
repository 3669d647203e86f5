//! TSIG (RFC 8945) on our side: keys from the host file, the verified request's context, and
//! signing answers (single messages and the later messages of a transfer).

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{Name, TSigResponseContext, TSigner};

/// TSIG fudge we accept (seconds), like BIND.
pub const FUDGE: u16 = 300;

/// A verified TSIG request: what is needed to sign the response.
#[derive(Clone)]
pub struct TsigCtx {
    /// The key.
    pub signer: TSigner,
    /// The request's MAC.
    pub request_mac: Vec<u8>,
    /// Time to put in the response.
    pub now: u64,
}

impl std::fmt::Debug for TsigCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigCtx")
            .field("key", &self.signer.signer_name())
            .field("now", &self.now)
            .finish()
    }
}

/// Encodes `m`, signed with `tsig` when given (the response to a verified request).
pub fn sign_encode(m: &mut Message, tsig: Option<&TsigCtx>) -> Option<Vec<u8>> {
    m.signature = None;
    let bytes = m.to_vec().ok()?;
    let Some(t) = tsig else { return Some(bytes) };
    let ctx = TSigResponseContext::new(m.id, t.now, t.signer.clone(), t.request_mac.clone(), None);
    let rec = ctx.sign(&bytes).ok()?;
    m.set_signature(rec);
    m.to_vec().ok()
}

/// Builds a signer from a configured key.
pub fn signer(k: &hostfile::TsigKey) -> Option<TSigner> {
    let alg = TsigAlgorithm::from_name(Name::from_ascii(&k.algorithm).ok()?);
    let name = crate::zone::name(&k.name).ok()?;
    TSigner::new(k.secret.clone(), alg, name, FUDGE).ok()
}

/// Signs a later message of a transfer: chained on the previous message's MAC with the timers
/// only (RFC 8945 5.3.1).
pub fn chained(m: &mut Message, t: &TsigCtx, prev_mac: &[u8]) -> Option<Vec<u8>> {
    use hickory_proto::rr::rdata::tsig::{TSIG, make_tsig_record};
    m.signature = None;
    let bytes = m.to_vec().ok()?;
    let mut data = Vec::with_capacity(bytes.len() + prev_mac.len() + 10);
    data.extend_from_slice(&(prev_mac.len() as u16).to_be_bytes());
    data.extend_from_slice(prev_mac);
    data.extend_from_slice(&bytes);
    data.extend_from_slice(&t.now.to_be_bytes()[2..]);
    data.extend_from_slice(&t.signer.fudge().to_be_bytes());
    let mac = t.signer.algorithm().mac_data(t.signer.key(), &data).ok()?;
    let rd = TSIG::new(
        t.signer.algorithm().clone(),
        t.now,
        t.signer.fudge(),
        mac,
        m.id,
        None,
        Vec::new(),
    );
    m.set_signature(Box::new(make_tsig_record(
        t.signer.signer_name().clone(),
        rd,
    )));
    m.to_vec().ok()
}
