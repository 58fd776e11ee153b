//! Wisp core: the ids, hashes, wire types and host ABI table that every other layer and every
//! contract shares. `no_std` + `alloc`, so the guest SDK uses the very same definitions.
//!
//! Everything here that is hashed or stored is encoded with borsh (docs/design.md §4); JSON
//! appears only in [`interface`] (contract metadata read by tools) and in the `std`-only
//! [`json`] codec.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod abi;
pub mod block;
pub mod errors;
#[cfg(feature = "std")]
pub mod events;
pub mod hash;
pub mod ids;
pub mod interface;
#[cfg(feature = "std")]
pub mod json;
pub mod request;

pub use block::{BlockHeader, Event, Receipt, ReceiptError, ReceiptStatus};
pub use errors::{
    ErrorLevel, RequestErrorCode, VmErrorCode, CONTRACT_BAD_ARGUMENTS_CODE, CONTRACT_PANIC_CODE,
};
pub use hash::{blake2b_256, Hash32};
pub use ids::{AgentId, ChainId, ContractId, Hname, HnameError};
pub use request::{
    Access, AccessList, Call, CallKind, L1Time, LanePayload, OffLedgerRequest, RequestBody,
    RequestId, TimeLock, LANE_ID, LANE_PAYLOAD_MAGIC,
};

/// Smallest withdrawal, sompi (1 KAS): Kaspa's storage mass (KIP-9) of an output grows as its
/// value shrinks, and an anchor transaction must stay payable.
pub const MIN_WITHDRAWAL_SOMPI: u64 = 100_000_000;

/// L1 fee a withdrawal pays on top of its amount, sompi: about what its output adds to the
/// anchor transaction's fee at the minimum amount (10,000 grams × 110 sompi), with room. It
/// joins the anchor fees the node may spend (`accounts.anchor_fees`). Contracts paying out
/// with `withdraw_to_l1` pay it too.
pub const WITHDRAWAL_FEE_SOMPI: u64 = 1_500_000;
