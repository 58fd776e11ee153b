//! Admission: the checks a request passes before it runs, written once and used by the node's
//! mempool ([`crate::Chain::admit`]) and by block execution, so both refuse the same requests
//! with the same codes and messages.
//!
//! Invariants:
//! - A request that passes admission in a block can pay its whole fee: `gas_budget ×
//!   gas_price_sompi` is reserved from the sender before any code runs (defect 9 of the
//!   hardening review: the fee used to be capped at what was left after the call).
//! - The node admits an off-ledger request only if the sender can pay it on top of everything
//!   it already has queued, and only within a window of nonces ahead of its next nonce.

use crate::exec::request_error;
use crate::ChainParams;
use wisp_core::{ChainId, ReceiptError, RequestBody, RequestErrorCode};
use wisp_vm::gas::REQUEST_BASE_GAS;

/// How far ahead of a sender's next nonce the node queues off-ledger requests: nonces
/// `next..next + NONCE_WINDOW`. It also caps one sender's queued requests.
pub const NONCE_WINDOW: u64 = 64;

/// Largest borsh-encoded off-ledger request the node accepts, bytes (the largest module plus
/// arguments and signature fit; anything bigger is refused before its signature is checked).
pub const MAX_REQUEST_BYTES: usize = 600 * 1024;

/// Gas per declared access-list entry, charged with the request's base gas (every access is
/// checked against the list).
pub const ACCESS_ENTRY_GAS: u64 = 200;

/// The gas a request pays before any code runs: the base plus its access list.
pub fn base_gas(body: &RequestBody) -> u64 {
    let list = body.access_list.as_ref();
    REQUEST_BASE_GAS
        .saturating_add(ACCESS_ENTRY_GAS.saturating_mul(list.map_or(0, |l| l.entries() as u64)))
        .saturating_add(list.map_or(0, |l| l.prefix_bytes() as u64))
}

/// What a sender already has queued in the node's mempool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Queued {
    /// Requests queued.
    pub count: u64,
    /// Sompi they may spend in all: Σ (gas budget × price + transfer).
    pub spend_sompi: u64,
}

/// The most a request may spend, sompi: its whole gas budget at the current price plus the
/// sompi it transfers (saturating).
pub fn max_spend(params: &ChainParams, body: &RequestBody) -> u64 {
    body.gas_budget
        .saturating_mul(params.gas_price_sompi)
        .saturating_add(body.call.transfer_sompi)
}

/// Stateless checks: the chain, the gas budget range.
///
/// # Errors
/// `wrong_chain` or `gas_budget_out_of_range` (request level).
pub fn check_body(
    chain: ChainId,
    params: &ChainParams,
    body: &RequestBody,
) -> Result<(), ReceiptError> {
    if body.chain != chain {
        return Err(request_error(
            RequestErrorCode::WrongChain,
            format!("the request is for chain {}, this is {chain}", body.chain),
        ));
    }
    if let Some(list) = &body.access_list {
        if !list.within_limits() {
            return Err(request_error(
                RequestErrorCode::TooLarge,
                format!(
                    "the access list declares {} entries (at most {}) or a key prefix over {} bytes",
                    list.entries(),
                    wisp_core::AccessList::MAX_ENTRIES,
                    wisp_core::AccessList::MAX_PREFIX_BYTES
                ),
            ));
        }
    }
    let base = base_gas(body);
    if body.gas_budget < base || body.gas_budget > params.max_request_gas {
        return Err(request_error(
            RequestErrorCode::GasBudgetOutOfRange,
            format!(
                "gas budget {} is outside {base}..={} (the low end is the request's base gas)",
                body.gas_budget, params.max_request_gas
            ),
        ));
    }
    Ok(())
}

/// The sender can pay `needed_sompi` out of `balance_sompi`, of which `queued_sompi` is
/// already promised to queued requests.
///
/// # Errors
/// `insufficient_funds` (request level), saying what is held and what is needed.
pub fn check_funds(
    balance_sompi: u64,
    queued_sompi: u64,
    needed_sompi: u64,
) -> Result<(), ReceiptError> {
    // An overflow is more than anyone holds.
    let total = needed_sompi.checked_add(queued_sompi);
    if total.is_none_or(|t| balance_sompi < t) {
        let queued = if queued_sompi > 0 {
            format!(" plus {queued_sompi} promised to requests already queued")
        } else {
            String::new()
        };
        return Err(request_error(
            RequestErrorCode::InsufficientFunds,
            format!("the sender holds {balance_sompi} sompi on chain; gas budget × price + transfer = {needed_sompi}{queued}; deposit first (an on-ledger request with a deposit)"),
        ));
    }
    Ok(())
}

/// The nonce of an off-ledger request the node may queue: not used yet, within
/// [`NONCE_WINDOW`] of `next`.
///
/// # Errors
/// `bad_nonce` (request level).
pub fn check_queue_nonce(nonce: u64, next: u64) -> Result<(), ReceiptError> {
    if nonce < next {
        return Err(request_error(
            RequestErrorCode::BadNonce,
            format!("nonce {nonce} was already used; the sender's next nonce is {next}"),
        ));
    }
    if nonce - next >= NONCE_WINDOW {
        return Err(request_error(
            RequestErrorCode::BadNonce,
            format!("nonce {nonce} is too far ahead of the sender's next nonce {next} (at most {NONCE_WINDOW} may be queued)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_nonces_are_windowed() {
        assert!(check_queue_nonce(5, 5).is_ok());
        assert!(check_queue_nonce(5 + NONCE_WINDOW - 1, 5).is_ok());
        assert!(check_queue_nonce(4, 5).is_err());
        assert!(check_queue_nonce(5 + NONCE_WINDOW, 5).is_err());
        assert!(check_queue_nonce(u64::MAX, 0).is_err());
    }

    #[test]
    fn funds_count_what_is_queued() {
        assert!(check_funds(100, 0, 100).is_ok());
        assert!(check_funds(100, 1, 100).is_err());
        assert!(check_funds(u64::MAX, u64::MAX, 1).is_err());
    }
}
