//! The off-ledger mempool: signed requests the node acknowledged and has not executed yet.
//!
//! Invariants:
//! - Bounded: at most [`wisp_chain::admission::NONCE_WINDOW`] requests per sender (nonces `next..next + window`),
//!   [`MEMPOOL_LIMIT`] requests and [`MEMPOOL_MAX_BYTES`] encoded bytes in all; a request older
//!   than [`MEMPOOL_MAX_AGE`] is evicted. Its clock is local and never feeds a state root.
//! - Selection takes, per sender, the run of consecutive nonces starting at the sender's next
//!   nonce, and stops at the first gap (no sentinel values: a set of senders).
//! - The node writes an entry to disk before acknowledging it and removes it once executed or
//!   evicted, so a crash loses no acknowledged request.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wisp_chain::admission::Queued;
use wisp_chain::VerifiedRequest;
use wisp_core::{AgentId, RequestId};

/// Most off-ledger requests waiting in the mempool.
pub const MEMPOOL_LIMIT: usize = 10_000;

/// Most encoded bytes of all waiting requests together.
pub const MEMPOOL_MAX_BYTES: usize = 64 * 1024 * 1024;

/// How long a request may wait before it is evicted.
pub const MEMPOOL_MAX_AGE: Duration = Duration::from_secs(600);

/// One waiting request.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub request: VerifiedRequest,
    /// Its borsh size, bytes.
    pub bytes: usize,
    /// What it may spend: gas budget × price + transfer, sompi.
    pub spend_sompi: u64,
    /// When it was admitted (local clock).
    pub admitted: Instant,
}

/// Why a request cannot be queued.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The same sender and nonce is already waiting.
    Duplicate,
    /// The mempool holds [`MEMPOOL_LIMIT`] requests or [`MEMPOOL_MAX_BYTES`].
    Full,
}

#[derive(Default)]
pub(crate) struct Mempool {
    senders: BTreeMap<AgentId, BTreeMap<u64, Entry>>,
    count: usize,
    bytes: usize,
}

impl Mempool {
    /// What `sender` has waiting.
    pub fn queued(&self, sender: &AgentId) -> Queued {
        self.senders
            .get(sender)
            .map(|q| Queued {
                count: q.len() as u64,
                spend_sompi: q
                    .values()
                    .map(|e| e.spend_sompi)
                    .fold(0u64, u64::saturating_add),
            })
            .unwrap_or_default()
    }

    /// How many of `sender`'s waiting requests have a nonce of `next` or more.
    pub fn pending_from(&self, sender: &AgentId, next: u64) -> u64 {
        self.senders
            .get(sender)
            .map_or(0, |q| q.range(next..).count() as u64)
    }

    /// Whether a request from `sender` with `nonce` is waiting.
    pub fn contains(&self, sender: &AgentId, nonce: u64) -> bool {
        self.senders
            .get(sender)
            .is_some_and(|q| q.contains_key(&nonce))
    }

    /// Whether one more request of `bytes` fits.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.count < MEMPOOL_LIMIT && self.bytes.saturating_add(bytes) <= MEMPOOL_MAX_BYTES
    }

    /// Queues an admitted request.
    pub fn insert(&mut self, entry: Entry) -> Result<(), Refusal> {
        let sender = entry.request.request().sender();
        let nonce = entry.request.request().nonce;
        if self.contains(&sender, nonce) {
            return Err(Refusal::Duplicate);
        }
        if !self.has_room(entry.bytes) {
            return Err(Refusal::Full);
        }
        self.count += 1;
        self.bytes += entry.bytes;
        self.senders.entry(sender).or_default().insert(nonce, entry);
        Ok(())
    }

    /// Number of waiting requests.
    pub fn len(&self) -> usize {
        self.count
    }

    /// For each sender, the run of consecutive nonces from its next nonce (`next_nonce`), in
    /// sender order (admission keeps each run within [`wisp_chain::admission::NONCE_WINDOW`]).
    pub fn select<E>(
        &self,
        mut next_nonce: impl FnMut(&AgentId) -> Result<u64, E>,
    ) -> Result<Vec<VerifiedRequest>, E> {
        let mut out = Vec::new();
        for (sender, queue) in &self.senders {
            let mut expected = next_nonce(sender)?;
            for (nonce, entry) in queue.range(expected..) {
                if *nonce != expected {
                    break;
                }
                out.push(entry.request.clone());
                expected = expected.saturating_add(1);
            }
        }
        Ok(out)
    }

    /// Removes requests whose nonce is below the sender's next nonce (executed or superseded)
    /// and those older than [`MEMPOOL_MAX_AGE`] at `now`; returns their ids.
    pub fn prune<E>(
        &mut self,
        mut next_nonce: impl FnMut(&AgentId) -> Result<u64, E>,
        now: Instant,
    ) -> Result<Vec<RequestId>, E> {
        let mut removed = Vec::new();
        for (sender, queue) in self.senders.iter_mut() {
            let next = next_nonce(sender)?;
            queue.retain(|nonce, e| {
                let keep = *nonce >= next && now.duration_since(e.admitted) <= MEMPOOL_MAX_AGE;
                if !keep {
                    removed.push(e.request.id());
                    self.count -= 1;
                    self.bytes -= e.bytes;
                }
                keep
            });
        }
        self.senders.retain(|_, q| !q.is_empty());
        Ok(removed)
    }

    /// Empties the mempool; returns the ids removed.
    pub fn clear(&mut self) -> Vec<RequestId> {
        let ids = self
            .senders
            .values()
            .flat_map(|q| q.values().map(|e| e.request.id()))
            .collect();
        *self = Mempool::default();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use wisp_core::{Call, ChainId, Hname, RequestBody};

    fn entry(key: &secp256k1::Keypair, nonce: u64, admitted: Instant) -> Entry {
        let body = RequestBody {
            chain: ChainId([0; 32]),
            call: Call {
                target: Hname(1),
                entry_point: Hname(2),
                args: vec![],
                transfer_sompi: 0,
            },
            gas_budget: 100_000,
            access_list: None,
            time_lock: None,
        };
        let request =
            wisp_chain::verify_signature(wisp_chain::sign_request(body, key, nonce)).unwrap();
        Entry {
            request,
            bytes: 200,
            spend_sompi: 100_000,
            admitted,
        }
    }

    fn key(seed: u8) -> secp256k1::Keypair {
        secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap()
    }

    /// Guards defect 11 of the hardening review: selection marked a blocked sender with the
    /// nonce `u64::MAX`, which collides with a real nonce and overflowed (`+ 1`) in debug
    /// builds while holding the mempool lock. Now a request with nonce `u64::MAX` is just a
    /// gap, and runs stop at gaps.
    #[test]
    fn selection_takes_consecutive_runs_and_survives_extreme_nonces() {
        let (a, b) = (key(1), key(2));
        let now = Instant::now();
        let mut pool = Mempool::default();
        for n in [0, 1, 3, u64::MAX] {
            pool.insert(entry(&a, n, now)).unwrap();
        }
        pool.insert(entry(&b, u64::MAX - 1, now)).unwrap();
        pool.insert(entry(&b, u64::MAX, now)).unwrap();
        let a_agent = AgentId::Address(a.x_only_public_key().0.serialize());
        let selected = pool
            .select(|s| Ok::<_, Infallible>(if *s == a_agent { 0 } else { u64::MAX - 1 }))
            .unwrap();
        let nonces: Vec<u64> = selected.iter().map(|r| r.request().nonce).collect();
        // b's two nonces and a's run 0, 1 (3 is behind a gap); order follows sender order.
        assert_eq!(nonces.len(), 4);
        assert!(nonces.contains(&0) && nonces.contains(&1) && !nonces.contains(&3));
        assert_eq!(pool.insert(entry(&a, 1, now)), Err(Refusal::Duplicate));
    }

    /// Guards defect 7: requests executed (nonce below next) or too old are evicted.
    #[test]
    fn prune_evicts_executed_and_old_requests() {
        let a = key(3);
        let start = Instant::now();
        let mut pool = Mempool::default();
        for n in 0..4 {
            pool.insert(entry(&a, n, start)).unwrap();
        }
        let removed = pool.prune(|_| Ok::<_, Infallible>(2), start).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(pool.len(), 2);
        let later = start + MEMPOOL_MAX_AGE + Duration::from_secs(1);
        let removed = pool.prune(|_| Ok::<_, Infallible>(2), later).unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(pool.len(), 0);
        assert_eq!(pool.queued(&AgentId::Address([0; 32])), Queued::default());
    }
}
