//! Time-locked on-ledger requests (IOTA ISC's time lock and expiration): a request whose
//! [`wisp_core::TimeLock`] has not come due when it arrives waits in the chain's time-lock
//! queue, which is state (it survives restarts, is rolled back with its block, and is in the
//! state root), and runs once, first thing in the first block whose L1 reference reaches its
//! `not_before`; one that arrives or comes due at or after its `expires_at` gets an `expired`
//! receipt instead.
//!
//! Invariants:
//! - A waiting request has a record under [`keys::time_locked`] and one queue entry, and no
//!   receipt; it gets exactly one receipt, when it runs or expires, and the record and entry
//!   go in the same block.
//! - Its deposit is credited when it arrives and its waiting fee is paid then; the receipt
//!   reports the waiting gas and fee with the call's.
//! - The queue holds at most [`MAX_TIME_LOCKED`] requests and none further ahead than
//!   [`MAX_TIME_LOCK_DAA`] / [`MAX_TIME_LOCK_MS`], so what it costs every block to look at it
//!   is bounded, and each waiting byte is paid for.

use crate::exec::{request_error, Exec};
use crate::{keys, OnLedgerRequest};
use borsh::{BorshDeserialize, BorshSerialize};
use wisp_core::{L1Time, ReceiptError, RequestErrorCode, RequestId, TimeLock};
use wisp_vm::gas::REQUEST_BASE_GAS;

/// Most requests waiting in one chain's time-lock queue; a request arriving when it is full is
/// refused with `time_lock_queue_full` (its deposit is still credited).
pub const MAX_TIME_LOCKED: usize = 1_024;

/// How far ahead of the block's L1 DAA score a `not_before` DAA score may be: 30 days at
/// Kaspa's 10 blocks per second.
pub const MAX_TIME_LOCK_DAA: u64 = 30 * 24 * 3_600 * 10;

/// How far ahead of the block's timestamp a `not_before` timestamp may be: 30 days, ms.
pub const MAX_TIME_LOCK_MS: u64 = 30 * 24 * 3_600 * 1_000;

/// Gas per byte a waiting request keeps in state (its record and queue entry), on top of
/// [`REQUEST_BASE_GAS`]: as a contract's storage write (`storage_set`, 10 per byte).
pub const TIME_LOCK_GAS_PER_BYTE: u64 = 10;

/// One entry of the time-lock queue.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct QueuedTimeLock {
    /// The waiting request.
    pub id: RequestId,
    /// When it comes due (its `not_before`).
    pub due: L1Time,
}

/// A waiting request's record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TimeLocked {
    /// The request as it arrived (its deposit already credited).
    pub request: OnLedgerRequest,
    /// The block it arrived in.
    pub arrived_in_block: u64,
    /// Gas charged for waiting, reported in its receipt.
    pub waiting_gas: u64,
    /// Sompi paid for waiting, reported in its receipt.
    pub waiting_fee_sompi: u64,
}

/// The queue, in arrival order.
pub(crate) fn queue(exec: &mut Exec) -> Vec<QueuedTimeLock> {
    exec.read_borsh(&keys::time_lock_queue())
        .unwrap_or_default()
}

/// Writes the queue back (deleting the record when it is empty).
pub(crate) fn set_queue(exec: &mut Exec, queue: &[QueuedTimeLock]) {
    if queue.is_empty() {
        exec.write(keys::time_lock_queue(), None);
    } else {
        exec.write_borsh(keys::time_lock_queue(), &queue.to_vec());
    }
}

/// Whether `lock` keeps a request arriving now waiting: valid, due later, not yet expired.
pub(crate) fn must_wait(lock: &TimeLock, daa_score: u64, timestamp_ms: u64) -> bool {
    lock.validate().is_ok()
        && !lock.is_expired(daa_score, timestamp_ms)
        && !lock.is_due(daa_score, timestamp_ms)
}

/// Checks a request may run now as far as its time lock goes.
///
/// # Errors
/// `malformed` for an unusable lock, `expired` past `expires_at`, `not_yet_due` before
/// `not_before`.
pub fn check(
    lock: Option<&TimeLock>,
    daa_score: u64,
    timestamp_ms: u64,
) -> Result<(), ReceiptError> {
    let Some(lock) = lock else { return Ok(()) };
    lock.validate()
        .map_err(|why| request_error(RequestErrorCode::Malformed, why))?;
    if lock.is_expired(daa_score, timestamp_ms) {
        return Err(request_error(
            RequestErrorCode::Expired,
            format!(
                "the request expired at {} (the block refers to DAA score {daa_score}, time {timestamp_ms} ms)",
                lock.expires_at.map(|t| t.to_string()).unwrap_or_default()
            ),
        ));
    }
    if !lock.is_due(daa_score, timestamp_ms) {
        return Err(request_error(
            RequestErrorCode::NotYetDue,
            format!(
                "the request may not run before {} (the block refers to DAA score {daa_score}, time {timestamp_ms} ms); send it then, or on-ledger to have the chain hold it",
                lock.not_before.map(|t| t.to_string()).unwrap_or_default()
            ),
        ));
    }
    Ok(())
}

/// Checks a waiting request may join the queue: not too far ahead, room left.
///
/// # Errors
/// `malformed` beyond the horizon, `time_lock_queue_full` when full.
pub(crate) fn check_wait(
    due: L1Time,
    queued: usize,
    daa_score: u64,
    timestamp_ms: u64,
) -> Result<(), ReceiptError> {
    let too_far = match due {
        L1Time::DaaScore(s) => s.saturating_sub(daa_score) > MAX_TIME_LOCK_DAA,
        L1Time::TimestampMs(t) => t.saturating_sub(timestamp_ms) > MAX_TIME_LOCK_MS,
    };
    if too_far {
        return Err(request_error(
            RequestErrorCode::Malformed,
            format!("not_before ({due}) is more than 30 days ahead (at most {MAX_TIME_LOCK_DAA} DAA scores or {MAX_TIME_LOCK_MS} ms)"),
        ));
    }
    if queued >= MAX_TIME_LOCKED {
        return Err(request_error(
            RequestErrorCode::TimeLockQueueFull,
            format!("the chain's time-lock queue holds {MAX_TIME_LOCKED} requests, the most allowed; send the request when it is due"),
        ));
    }
    Ok(())
}

/// Gas of keeping `record` waiting with its queue entry.
pub(crate) fn waiting_gas(record_bytes: usize) -> u64 {
    let entry_bytes = 32 + 9;
    REQUEST_BASE_GAS
        .saturating_add(TIME_LOCK_GAS_PER_BYTE.saturating_mul((record_bytes + entry_bytes) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_say_why_a_request_cannot_run() {
        let lock = TimeLock {
            not_before: Some(L1Time::DaaScore(100)),
            expires_at: Some(L1Time::DaaScore(200)),
        };
        let code = |r: Result<(), ReceiptError>| r.err().map(|e| e.code);
        assert_eq!(
            code(check(Some(&lock), 99, 0)),
            Some(RequestErrorCode::NotYetDue.code())
        );
        assert_eq!(code(check(Some(&lock), 100, 0)), None);
        assert_eq!(code(check(Some(&lock), 199, 0)), None);
        assert_eq!(
            code(check(Some(&lock), 200, 0)),
            Some(RequestErrorCode::Expired.code())
        );
        assert!(must_wait(&lock, 99, 0));
        assert!(!must_wait(&lock, 100, 0));
        // Mixed clocks, inverted windows and empty locks are malformed, and never wait.
        for bad in [
            TimeLock {
                not_before: Some(L1Time::DaaScore(100)),
                expires_at: Some(L1Time::TimestampMs(200)),
            },
            TimeLock {
                not_before: Some(L1Time::TimestampMs(200)),
                expires_at: Some(L1Time::TimestampMs(200)),
            },
            TimeLock {
                not_before: None,
                expires_at: None,
            },
        ] {
            assert_eq!(
                code(check(Some(&bad), 0, 0)),
                Some(RequestErrorCode::Malformed.code())
            );
            assert!(!must_wait(&bad, 0, 0));
        }
        // The horizon and the queue's size bound the wait.
        assert!(check_wait(L1Time::DaaScore(MAX_TIME_LOCK_DAA + 5), 0, 5, 0).is_ok());
        assert_eq!(
            code(check_wait(L1Time::DaaScore(MAX_TIME_LOCK_DAA + 6), 0, 5, 0)),
            Some(RequestErrorCode::Malformed.code())
        );
        assert_eq!(
            code(check_wait(L1Time::TimestampMs(10), MAX_TIME_LOCKED, 0, 0)),
            Some(RequestErrorCode::TimeLockQueueFull.code())
        );
    }
}
