//! Blocks, receipts and events: what executing an ordered batch of requests produces.

use crate::errors::ErrorLevel;
use crate::hash::{blake2b_256, blake2b_256_parts, Hash32};
use crate::ids::{AgentId, ChainId, Hname};
use crate::request::RequestId;
use alloc::string::String;
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// An event a contract emitted while a request ran. Events of a failed request are discarded.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Event {
    /// The emitting contract.
    pub contract: Hname,
    /// The event's name as declared in the contract interface (e.g. `Transfer`).
    pub topic: String,
    /// borsh-encoded event fields, in declaration order.
    pub data: Vec<u8>,
}

/// Whether a request's effects were committed.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptStatus {
    /// All writes, events and transfers of the request were applied.
    Success,
    /// None were; only the fee was charged (and, for on-ledger requests, deposits credited).
    Failed,
}

/// Why a request failed: the level that failed, its stable code and a human message.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReceiptError {
    /// Runtime, VM or contract.
    pub level: ErrorLevel,
    /// Stable code within the level (`RequestErrorCode`, `VmErrorCode`, or the contract's own).
    pub code: u32,
    /// What went wrong, for people; not part of any contract between tools.
    pub message: String,
}

impl ReceiptError {
    /// The stable snake_case name of its code at its level (`out_of_gas`, `bad_nonce`...); empty
    /// for contract-level codes, which only the contract's interface names.
    pub fn code_name(&self) -> &'static str {
        match self.level {
            ErrorLevel::Request => {
                crate::errors::RequestErrorCode::from_code(self.code).map_or("", |c| c.name())
            }
            ErrorLevel::Vm => {
                crate::errors::VmErrorCode::from_code(self.code).map_or("", |c| c.name())
            }
            ErrorLevel::Contract => "",
        }
    }
}

/// `<level> error <code> (<name>): <message>`, the one human rendering of a failure (receipts
/// in the CLI and logs, the harness's messages).
impl core::fmt::Display for ReceiptError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let level = match self.level {
            ErrorLevel::Request => "request",
            ErrorLevel::Vm => "vm",
            ErrorLevel::Contract => "contract",
        };
        match self.code_name() {
            "" => write!(f, "{level} error {}: {}", self.code, self.message),
            name => write!(f, "{level} error {} ({name}): {}", self.code, self.message),
        }
    }
}

/// The outcome of one request (docs/design.md §2).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    /// The request's id.
    pub request_id: RequestId,
    /// The block that executed it.
    pub block_index: u64,
    /// Its position in that block.
    pub request_index: u32,
    /// Who sent it.
    pub sender: AgentId,
    /// Committed or not.
    pub status: ReceiptStatus,
    /// Present exactly when `status` is `Failed`.
    pub error: Option<ReceiptError>,
    /// Gas consumed (instructions plus host calls), ≤ the request's gas budget.
    pub gas_used: u64,
    /// Fee charged to the sender's on-chain account, in sompi: `gas_used × gas_price_sompi`
    /// (capped at what the sender holds).
    pub fee_sompi: u64,
    /// Sompi taken from the sender as storage deposit for the bytes the request added to
    /// contracts' state (`storage_deposit_sompi_per_byte` each; returned when they are freed).
    pub storage_locked_sompi: u64,
    /// Sompi of storage deposit returned to the sender for the bytes the request freed.
    pub storage_refunded_sompi: u64,
    /// Events emitted, in order (empty when failed).
    pub events: Vec<Event>,
    /// borsh-encoded return value of the entry point (empty when failed or for unit).
    pub return_data: Vec<u8>,
}

impl Receipt {
    /// blake2b-256 of the borsh encoding.
    pub fn hash(&self) -> Hash32 {
        blake2b_256(&borsh::to_vec(self).unwrap_or_default())
    }
}

/// A Wisp block header: the result of executing one ordered batch of requests.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain.
    pub chain: ChainId,
    /// 0 for genesis, then +1.
    pub index: u64,
    /// Hash of the previous block header (zero for genesis).
    pub prev_hash: Hash32,
    /// The Kaspa chain block up to which on-ledger requests were taken (zero before any).
    pub l1_block: Hash32,
    /// DAA score of `l1_block`.
    pub l1_daa_score: u64,
    /// Block time in milliseconds since the Unix epoch, taken from `l1_block`'s header (never a
    /// local clock); never decreases.
    pub timestamp_ms: u64,
    /// Root of the authenticated state after this block.
    pub state_root: Hash32,
    /// Commitment to the receipts: blake2b-256 over their hashes in order.
    pub receipts_root: Hash32,
    /// Root of the binary Merkle tree over the block's events in receipt order
    /// ([`crate::events`]); zero for a block without events.
    pub events_root: Hash32,
    /// Number of requests executed.
    pub request_count: u32,
    /// Gas used by all of them.
    pub gas_used: u64,
    /// The protocol version the block was executed under (VM limits and gas schedule); it
    /// changes only at the block a governance upgrade names.
    pub protocol_version: u32,
}

impl BlockHeader {
    /// The block hash: blake2b-256 of the borsh-encoded header.
    pub fn hash(&self) -> Hash32 {
        blake2b_256(&borsh::to_vec(self).unwrap_or_default())
    }

    /// Commitment to an ordered list of receipts: blake2b-256 of their hashes
    /// ([`Receipt::hash`]) concatenated.
    pub fn receipts_commitment(receipts: &[Receipt]) -> Hash32 {
        let hashes: Vec<Hash32> = receipts.iter().map(Receipt::hash).collect();
        Self::receipts_commitment_of(&hashes)
    }

    /// [`BlockHeader::receipts_commitment`] from the receipts' hashes, in order: for a
    /// caller that already hashed them.
    pub fn receipts_commitment_of(hashes: &[Hash32]) -> Hash32 {
        let parts: Vec<&[u8]> = hashes.iter().map(|h| h.0.as_slice()).collect();
        blake2b_256_parts(&parts)
    }

    /// The events root of a block with `receipts`: a Merkle root over its events in receipt
    /// order ([`crate::events`]), so one event can be proven.
    #[cfg(feature = "std")]
    pub fn events_commitment(receipts: &[Receipt]) -> Hash32 {
        crate::events::events_root(receipts)
    }
}
