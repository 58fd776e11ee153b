//! Stable error levels and codes that appear in receipts and RPC errors.
//!
//! Invariants:
//! - A code, once published, never changes meaning; new codes are appended.
//! - Three levels, each with its own numbering (CosmWasm's lesson):
//!   [`ErrorLevel::Request`] — the runtime refused or could not run the request;
//!   [`ErrorLevel::Vm`] — the WebAssembly execution trapped or broke a limit;
//!   [`ErrorLevel::Contract`] — the contract itself aborted with its own code.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Which layer a failed request failed in.
#[derive(
    Clone, Copy, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum ErrorLevel {
    /// The chain runtime rejected the request (signature, nonce, funds, unknown target...).
    Request = 0,
    /// The VM stopped execution (out of gas, trap, stack or memory limit, host ABI misuse).
    Vm = 1,
    /// The contract aborted with an error code of its own (see its interface for meanings).
    Contract = 2,
}

/// The contract-level code a Rust panic inside a contract is reported with (the SDK's panic
/// handler aborts with it); contracts number their own errors from 1.
pub const CONTRACT_PANIC_CODE: u32 = 0;

/// The contract-level code the SDK aborts with when a call's arguments do not decode as the
/// entry point's parameters (named `bad_arguments` in RPC errors and the CLI). It stays at the
/// contract level: it is the contract's own claim, and no contract can raise a request-level
/// error.
pub const CONTRACT_BAD_ARGUMENTS_CODE: u32 = u32::MAX;

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:literal => $msg:literal,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
        #[non_exhaustive]
        #[repr(u32)]
        pub enum $name {
            $($(#[$vm])* $variant = $code,)*
        }
        impl $name {
            /// Every code, in numeric order (for docs and tests).
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// The stable numeric code.
            pub fn code(self) -> u32 { self as u32 }
            /// The code for a number, if it is one of ours.
            pub fn from_code(code: u32) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }
            /// A short snake_case name, stable like the code.
            pub fn name(self) -> &'static str { $(if self == $name::$variant { return $msg; })* "" }
        }
    };
}

codes! {
    /// Codes at [`ErrorLevel::Request`].
    RequestErrorCode {
        /// The payload or request bytes do not decode, or a field is out of range.
        Malformed = 1 => "malformed",
        /// The off-ledger signature does not verify against the sender's key.
        BadSignature = 2 => "bad_signature",
        /// The off-ledger nonce is not the sender's next nonce (replay or gap).
        BadNonce = 3 => "bad_nonce",
        /// The sender's on-chain balance cannot pay the fee for the gas budget (or the transfer).
        InsufficientFunds = 4 => "insufficient_funds",
        /// No contract with the target hname is deployed on this chain.
        UnknownContract = 5 => "unknown_contract",
        /// The contract has no entry point (or view) with that hname.
        UnknownEntryPoint = 6 => "unknown_entry_point",
        /// The request names another chain.
        WrongChain = 7 => "wrong_chain",
        /// The gas budget is zero or above the chain's per-request limit.
        GasBudgetOutOfRange = 8 => "gas_budget_out_of_range",
        /// Arguments, return data, events or a value exceed a size limit.
        TooLarge = 9 => "too_large",
        /// A storage access or call fell outside the request's declared access list.
        AccessListViolation = 10 => "access_list_violation",
        /// The deployed module failed validation (floats, SIMD, imports, limits, size...).
        InvalidModule = 11 => "invalid_module",
        /// A contract with that name already exists.
        ContractExists = 12 => "contract_exists",
        /// The sender may not do this (e.g. governance by a non-owner).
        Unauthorized = 13 => "unauthorized",
        /// The block has no gas left for this request's budget; it is retried in the next block.
        BlockGasExhausted = 14 => "block_gas_exhausted",
        /// Arguments do not decode as the entry point's declared types.
        BadArguments = 15 => "bad_arguments",
        /// The node's mempool is full; retry later.
        MempoolFull = 16 => "mempool_full",
        /// The node's storage failed; nothing was accepted (an operator problem, not the
        /// request's).
        StorageFailure = 17 => "storage_failure",
        /// The request's time lock has not come due (`not_before` is after the block's L1
        /// reference); an off-ledger request must be sent again later.
        NotYetDue = 18 => "not_yet_due",
        /// The request's time lock expired (`expires_at` is at or before the block's L1
        /// reference) before it could run.
        Expired = 19 => "expired",
        /// The chain's time-lock queue is full; the request did not run (its deposit was
        /// credited).
        TimeLockQueueFull = 20 => "time_lock_queue_full",
    }
}

codes! {
    /// Codes at [`ErrorLevel::Vm`].
    VmErrorCode {
        /// The gas budget ran out.
        OutOfGas = 1 => "out_of_gas",
        /// Call depth or value stack exceeded (unbounded recursion).
        StackOverflow = 2 => "stack_overflow",
        /// Linear memory would exceed the chain's limit (a memory bomb).
        MemoryLimit = 3 => "memory_limit",
        /// The module executed `unreachable` or another wasm trap (bad cast, table index...).
        Trap = 4 => "trap",
        /// A load or store outside linear memory.
        MemoryOutOfBounds = 5 => "memory_out_of_bounds",
        /// Integer division by zero or overflow.
        IntegerArithmetic = 6 => "integer_arithmetic",
        /// A host function was called with bad pointers, lengths or encodings.
        HostAbiMisuse = 7 => "host_abi_misuse",
        /// Cross-contract calls nested deeper than the chain allows.
        CallDepthExceeded = 8 => "call_depth_exceeded",
        /// A view (read-only call) tried to write state, emit an event or move tokens.
        WriteInView = 9 => "write_in_view",
        /// The contract moved more base tokens than its account holds.
        InsufficientBalance = 10 => "insufficient_balance",
        /// `random` was called where the block has no randomness: on a chain without a
        /// committee (no unpredictable source), or in a view.
        RandomnessUnavailable = 11 => "randomness_unavailable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        for c in RequestErrorCode::ALL {
            assert_eq!(RequestErrorCode::from_code(c.code()), Some(*c));
            assert!(!c.name().is_empty());
        }
        for c in VmErrorCode::ALL {
            assert_eq!(VmErrorCode::from_code(c.code()), Some(*c));
        }
        assert_eq!(RequestErrorCode::from_code(0), None);
        assert_eq!(VmErrorCode::OutOfGas.code(), 1);
    }
}
