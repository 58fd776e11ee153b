//! The node's Prometheus metrics, served as text at `GET /metrics` on the RPC port (same
//! loopback-only guards as the RPC): blocks, requests and gas produced, the chain head, mempool
//! size, how far the chain's L1 reference is behind the newest Kaspa chain block the node has
//! seen, and the anchor (anchored block, its age in blocks, L1 fees paid but not yet spent).
//! Encoded with the Prometheus project's `prometheus-client` crate.

use crate::Node;
use jsonrpsee::server::{HttpBody, HttpResponse};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

/// The node's metrics (counters updated as blocks commit; gauges read at scrape time).
pub(crate) struct Metrics {
    registry: Registry,
    pub blocks: Counter,
    pub requests: Counter,
    pub gas: Counter,
    head: Gauge,
    mempool: Gauge,
    l1_lag: Gauge,
    anchored_block: Gauge,
    anchor_age: Gauge,
    anchor_fees_unspent: Gauge,
    /// DAA score of the newest Kaspa chain block the follower has seen.
    pub l1_seen_daa: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("wisp");
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            c
        };
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        Metrics {
            blocks: counter(&mut registry, "blocks", "Blocks this node produced since it started"),
            requests: counter(&mut registry, "requests", "Requests executed in those blocks"),
            gas: counter(&mut registry, "gas", "Gas used by those blocks"),
            head: gauge(&mut registry, "head_block", "Index of the chain's head block"),
            mempool: gauge(&mut registry, "mempool_requests", "Off-ledger requests waiting"),
            l1_lag: gauge(
                &mut registry,
                "l1_lag_daa",
                "DAA score units between the newest Kaspa chain block seen and the newest one followed (confirmation depth included)",
            ),
            anchored_block: gauge(
                &mut registry,
                "anchored_block",
                "Index of the block the anchor on Kaspa commits to",
            ),
            anchor_age: gauge(
                &mut registry,
                "anchor_age_blocks",
                "Blocks produced since the anchored block",
            ),
            anchor_fees_unspent: gauge(
                &mut registry,
                "anchor_fees_unspent_sompi",
                "Sompi paid on the chain for anchor fees and not yet spent on Kaspa",
            ),
            l1_seen_daa: AtomicU64::new(0),
            registry,
        }
    }
}

fn as_gauge(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Node {
    /// The metrics in Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let m = &self.metrics;
        if let Ok(head) = self.chain.head() {
            m.head.set(as_gauge(head.index));
            let seen = m.l1_seen_daa.load(Ordering::Relaxed);
            let followed = self.l1_followed_daa_score().unwrap_or(head.l1_daa_score);
            m.l1_lag.set(as_gauge(seen.saturating_sub(followed)));
            if let Ok(anchor) = self.anchor_status() {
                m.anchored_block.set(as_gauge(anchor.block_index));
                m.anchor_age
                    .set(as_gauge(head.index.saturating_sub(anchor.block_index)));
                let paid = self.chain.anchor_fees().unwrap_or(0);
                m.anchor_fees_unspent
                    .set(as_gauge(paid.saturating_sub(anchor.fees_spent_sompi)));
            }
        }
        m.mempool.set(as_gauge(self.mempool_len() as u64));
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Answers `GET /metrics` with [`Node::metrics_text`].
#[derive(Clone)]
pub struct MetricsAnswer(pub Weak<Node>);

impl crate::answer::Answer for MetricsAnswer {
    fn answer(
        &self,
        method: &http::Method,
        path: &str,
        _headers: &http::HeaderMap,
    ) -> Option<Result<HttpResponse, http::Error>> {
        if method != http::Method::GET || path != "/metrics" {
            return None;
        }
        let text = self
            .0
            .upgrade()
            .map(|n: Arc<Node>| n.metrics_text())
            .unwrap_or_default();
        Some(
            HttpResponse::builder()
                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                .body(HttpBody::from(text)),
        )
    }
}
