//! What a block is made of: its L1 reference and the on- and off-ledger requests it executes,
//! and what executing it produced.

use crate::VerifiedRequest;
use wisp_core::{AgentId, BlockHeader, Hash32, Hname, Receipt, RequestBody, RequestId};

/// The L1 chain block a Wisp block refers to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Default, borsh::BorshSerialize, borsh::BorshDeserialize,
)]
pub struct L1Ref {
    /// Kaspa chain block hash.
    pub block_hash: Hash32,
    /// Its DAA score.
    pub daa_score: u64,
    /// Its timestamp, ms.
    pub timestamp_ms: u64,
}

/// What an on-ledger lane transaction asked for.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum OnLedgerBody {
    /// A call.
    Call(RequestBody),
    /// Only a deposit (the transaction carried no request).
    DepositOnly,
    /// The payload did not decode; deposits are still credited.
    Malformed(String),
    /// Only a deposit, credited to this agent (the payload's beneficiary).
    DepositFor(AgentId),
    /// A deposit from a transaction with no sender identity (its first input is not a version-0
    /// P2PK script) and no beneficiary: recorded as refundable under its L1 transaction id
    /// (`accounts.unclaimed`), never dropped.
    Refundable,
}

/// A request taken from a Kaspa transaction on the Wisp lane.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct OnLedgerRequest {
    /// The L1 transaction id.
    pub l1_tx_id: Hash32,
    /// Position of the request in the payload.
    pub index: u32,
    /// Owner of the transaction's first input (a version-0 P2PK script); for a deposit entry of a
    /// transaction without one, the beneficiary or the all-zero address.
    pub sender: AgentId,
    /// Sompi the transaction paid to the chain's deposit address. Credited once: with the
    /// request at index 0, or by the transaction's `DepositFor` / `Refundable` entry (index
    /// `u32::MAX`).
    pub deposit_sompi: u64,
    /// The request.
    pub body: OnLedgerBody,
}

impl OnLedgerRequest {
    /// The request id.
    pub fn id(&self) -> RequestId {
        wisp_core::request::on_ledger_request_id(&self.l1_tx_id.0, self.index)
    }
}

/// Inputs of one block, in execution order.
#[derive(Clone, Debug, Default)]
pub struct BlockInputs {
    /// The L1 chain block the block refers to.
    pub l1: L1Ref,
    /// On-ledger requests accepted up to `l1`, in L1 order.
    pub on_ledger: Vec<OnLedgerRequest>,
    /// Off-ledger requests, in the order the committee chose.
    pub off_ledger: Vec<VerifiedRequest>,
    /// The block's randomness, from which each request's `random` values are derived
    /// ([`crate::random_value`]): on a committee chain, a hash of the committee's threshold
    /// signature of a view after the block's contents were fixed; `None` on a chain without a
    /// committee, whose contracts then cannot draw randomness.
    pub randomness: Option<Hash32>,
}

/// A committed block with its receipts.
#[derive(Clone, Debug)]
pub struct BlockOutput {
    /// The header.
    pub header: BlockHeader,
    /// One receipt per executed request.
    pub receipts: Vec<Receipt>,
    /// Debug lines contracts logged.
    pub logs: Vec<(Hname, String)>,
    /// On-ledger requests that did not fit (block gas or request count), in L1 order; the
    /// next block runs them first.
    pub deferred: Vec<OnLedgerRequest>,
    /// Where the node's time went (wall clock; not part of consensus, differs between runs).
    pub timing: BlockTiming,
}

/// Wall-clock time of a block's phases, for metrics and benchmarks (never hashed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockTiming {
    /// Executing the requests, on-ledger and off-ledger (with workers when parallel).
    pub requests: std::time::Duration,
    /// The part of `requests` spent in parallel batches: from a batch's first hand-off to
    /// the workers until its members' results are back in canonical order (merged, or run
    /// again in order). The rest of `requests` only the block's own thread works in (the
    /// block's start, on-ledger requests, planning up to the first hand-off, requests that
    /// conflict, the block's sums and end), which more threads cannot shorten. Zero without
    /// workers.
    pub in_parallel: std::time::Duration,
    /// Workers the block's parallel batches started: how many, and the time they took to
    /// begin, summed (from the block's thread asking for the worker, right after handing its
    /// members over, until the worker began draining them; a worker asleep takes longer).
    pub workers_started: u32,
    /// See `workers_started`.
    pub workers_waited: std::time::Duration,
    /// Hashing the block's state changes into the tree (the new state root), on a second
    /// thread while the rest of the block is written.
    pub hashing: std::time::Duration,
    /// Committing the block durably: hashing and writing (values, receipts, then the tree's
    /// nodes and the header), end to end.
    pub committing: std::time::Duration,
}
