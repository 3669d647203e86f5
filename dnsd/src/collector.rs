//! The Prometheus collector over the shared state: at each scrape, what is summed or read at
//! that time (answers, latency, outcomes, zone serials and sizes, the cache size).

use std::sync::Arc;

use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::state::Shared;

/// (metric name, help, label name, (label value, count)...).
type Outcomes<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, u64)>);

/// Encodes, at each scrape, what is summed or read at that time: answers by type and rcode, the
/// latency histogram, update/transfer/NOTIFY outcomes, zone serials and sizes, the cache size.
#[derive(Debug)]
pub struct Collector(pub Arc<Shared>);

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let sh = &self.0;
        let t = sh.metrics.totals();
        let mut m = enc.encode_descriptor(
            "dnsd_answers",
            "Answers sent or dropped by RRL, by question type and response code",
            None,
            MetricType::Counter,
        )?;
        for (q, r, n) in &t.answers {
            counter(&mut m, &[("qtype", *q), ("rcode", *r)], *n)?;
        }
        let mut m = enc.encode_descriptor(
            "dnsd_request_duration_seconds",
            "Time from receiving a request to sending its answer (UDP: per receive batch)",
            None,
            MetricType::Histogram,
        )?;
        m.encode_histogram::<NoLabelSet>(t.sum_seconds, t.count, &t.buckets, None)?;
        let s = &sh.stats;
        let labelled: [Outcomes<'_>; 3] = [
            (
                "dnsd_updates",
                "Dynamic updates by outcome",
                "result",
                vec![
                    ("applied", s.updates.get()),
                    ("unchanged", s.updates_unchanged.get()),
                    ("refused", s.updates_refused.get()),
                    ("failed", s.updates_failed.get()),
                ],
            ),
            (
                "dnsd_transfers",
                "Zone transfers sent, by kind (an IXFR the journal cannot serve is sent as a full zone)",
                "kind",
                vec![("axfr", s.axfr_out.get()), ("ixfr", s.ixfr_out.get())],
            ),
            (
                "dnsd_notifies",
                "NOTIFY rounds (one zone change to one secondary) by outcome",
                "result",
                vec![
                    ("acknowledged", s.notify_acked.get()),
                    ("unanswered", s.notify_failed.get()),
                ],
            ),
        ];
        for (name, help, label, values) in labelled {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (v, n) in &values {
                counter(&mut m, &[(label, *v)], *n)?;
            }
        }
        let pol = sh.policy.load();
        let mut m = enc.encode_descriptor(
            "dnsd_zone_serial",
            "SOA serial of each zone",
            None,
            MetricType::Gauge,
        )?;
        for z in pol.catalog.zones.iter() {
            let zone = z.origin.to_ascii();
            m.encode_family(&[("zone", zone.as_str())])?
                .encode_gauge(&i64::from(z.serial()))?;
        }
        let mut m = enc.encode_descriptor(
            "dnsd_zone_records",
            "Records in each zone (SOA included)",
            None,
            MetricType::Gauge,
        )?;
        for z in pol.catalog.zones.iter() {
            let zone = z.origin.to_ascii();
            let n = z.nodes.values().map(Vec::len).sum::<usize>();
            m.encode_family(&[("zone", zone.as_str())])?
                .encode_gauge(&(n as i64))?;
        }
        let m = enc.encode_descriptor(
            "dnsd_cache_entries",
            "Entries in the forwarding cache",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(sh.cache_len() as i64).encode(m)?;
        Ok(())
    }
}

fn counter<S: EncodeLabelSet>(m: &mut MetricEncoder<'_>, labels: &S, n: u64) -> std::fmt::Result {
    m.encode_family(labels)?
        .encode_counter::<NoLabelSet, _, u64>(&n, None)
}
