//! Request and block execution: admission against the block's state, the fee reserved up front
//! and settled after the call, per-block caps with on-ledger carry-over, and the block commit.
//!
//! Invariants:
//! - On-ledger requests run in L1 order; those that do not fit in a block (gas or count) are
//!   carried over, in order, to the next block, persisted with the block that deferred them.
//! - An off-ledger request whose nonce is not its sender's next nonce is not executed and not
//!   recorded (it can never block later nonces); after a sender's request is skipped for block
//!   gas, the sender's later requests in the block are skipped too.
//! - Sum of on-chain balances is unchanged by a request, except by its deposit.

use crate::admission::{self, max_spend};
use crate::exec::{request_error, Exec, InterfaceSource, StorageChange};
use crate::timelock;
use crate::{
    keys, BlockInputs, BlockOutput, Chain, ChainParams, OnLedgerBody, OnLedgerRequest, Request,
    Result,
};
use std::collections::{BTreeMap, BTreeSet};
use wisp_core::{
    AgentId, BlockHeader, CallKind, Receipt, ReceiptError, ReceiptStatus, RequestErrorCode,
};
use wisp_vm::gas::REQUEST_BASE_GAS;
use wisp_vm::BlockContext;

/// Most requests (on- and off-ledger) in one block; the rest wait for the next block.
pub const MAX_BLOCK_REQUESTS: usize = 2_000;

/// The state a request may touch, for the scheduler: its declared access list as regions of
/// full state keys, plus what every request touches without declaring it — its sender's
/// balance and nonce and its receipt record (written), the contract records and the chain
/// owner (read: loading code, checking recipients, taking the fee; so a deploy or an owner
/// change meets every other request). With it, the code of the declared contracts that this
/// block has not used yet: the first member of a batch to use such code pays its compilation
/// (`Exec::module_of`), and the members after it run as if it had (`Exec::presume_loaded`;
/// checked when the batch ends, [`first_uses_hold`]). `None` without an access list: the
/// request runs alone.
///
/// Computed on the block's own thread as each request is planned. (Computing the
/// request-only part for the whole block on all the workers first was tried: it cost
/// 0.09-0.19 ms of a 1.1 ms execution phase for 100 transfers on 2 threads, waking the workers
/// before there was anything to run, and without it the phase measured 0.98-1.02 ms against
/// 1.08-1.44, `profile_block -- 2 200`, three interleaved pairs.)
fn footprint(
    exec: &mut Exec,
    request: &Request<'_>,
    code_of: &mut BTreeMap<wisp_core::Hname, Option<wisp_core::Hash32>>,
) -> Option<Planned> {
    let list = request.body.access_list.as_ref()?;
    let region = |a: &wisp_core::Access| {
        keys::contract_key(a.contract, a.key_prefix.as_deref().unwrap_or_default())
    };
    let mut reads: Vec<Vec<u8>> = Vec::with_capacity(list.reads.len() + list.writes.len() + 2);
    let mut writes: Vec<Vec<u8>> = Vec::with_capacity(list.writes.len() + 4);
    reads.extend(list.reads.iter().map(region));
    writes.extend(list.writes.iter().map(region));
    writes.push(keys::balance(&request.sender));
    writes.push(keys::nonce(&request.sender));
    // The storage deposit record of each contract the request may store into (once each):
    // read for refunds, written only at block end.
    let mut stores_into: Vec<wisp_core::Hname> = list.writes.iter().map(|a| a.contract).collect();
    stores_into.sort_unstable();
    stores_into.dedup();
    reads.extend(stores_into.into_iter().map(keys::storage_deposit));
    writes.push(keys::request(&request.id));
    reads.push(keys::contract_records());
    reads.push(keys::chain_owner());
    let mut contracts: Vec<wisp_core::Hname> = list
        .reads
        .iter()
        .chain(&list.writes)
        .map(|a| a.contract)
        .chain([request.body.call.target])
        .collect();
    contracts.sort_unstable();
    contracts.dedup();
    let mut unloaded = Vec::new();
    for contract in contracts {
        let code = *code_of
            .entry(contract)
            .or_insert_with(|| exec.code_hash_of(contract));
        if let Some(code_hash) = code {
            if !exec.code_loaded(&code_hash) && !unloaded.contains(&code_hash) {
                unloaded.push(code_hash);
            }
        }
    }
    Some(Planned {
        footprint: wisp_scheduler::Footprint { reads, writes },
        unloaded,
    })
}

/// A request's [`footprint`] and the code it may use that the block had not used when the
/// footprint was made.
struct Planned {
    footprint: wisp_scheduler::Footprint,
    unloaded: Vec<wisp_core::Hash32>,
}

/// The first uses of code in a parallel batch, as planned: which member uses each code first
/// (in canonical order), and for each member how many of those first uses come before it.
#[derive(Default)]
struct FirstUses {
    /// The code the block had not used that members declare, in the order of their first
    /// users.
    owners: Vec<FirstUse>,
    /// For each member, the number of `owners` entries before it.
    before: Vec<usize>,
}

/// One code's first use in a parallel batch ([`FirstUses`]).
struct FirstUse {
    code: wisp_core::Hash32,
    /// The position in the batch of the first member declaring it.
    owner: usize,
    /// Whether a later member declares it too (and so runs as if `owner` had loaded it).
    shared: bool,
}

impl FirstUses {
    /// The planned first use of `code`, if a member so far declares it.
    fn of(&mut self, code: &wisp_core::Hash32) -> Option<&mut FirstUse> {
        self.owners.iter_mut().find(|u| u.code == *code)
    }
}

/// Whether a parallel batch's members used code first as planned ([`FirstUses`]): each first
/// user of code a later member also declares paid for it, and no member paid for code that
/// was not its to pay for. Then every member was charged as one after the other would have
/// charged it; if not (a first user refused before it loaded its code, so the next user pays
/// in its place), the batch runs again in order. A first user that did not load code nobody
/// else declares changes no one's charge. `paid`: (position in the batch, code it paid the
/// first use of), for the members that paid any.
fn first_uses_hold(first: &FirstUses, paid: &[(usize, &[wisp_core::Hash32])]) -> bool {
    let owned = |k: usize, code: &wisp_core::Hash32| {
        first.owners.iter().any(|u| u.owner == k && u.code == *code)
    };
    let shared_paid = first.owners.iter().filter(|u| u.shared).all(|u| {
        paid.iter()
            .any(|(k, codes)| *k == u.owner && codes.contains(&u.code))
    });
    shared_paid
        && paid
            .iter()
            .all(|(k, codes)| codes.iter().all(|c| owned(*k, c)))
}

/// Default smallest batch run on the workers (`Chain::set_parallel_min_batch`): once a batch
/// being planned has this many members they go to the workers, and each later member as it is
/// admitted; a batch that stays smaller runs on the block's own execution, as forking, waking
/// workers and merging cost more than the few requests it would overlap (measured with `cargo run -p wisp-bench --release
/// --example profile_block`). The results are the same either way.
pub const PARALLEL_MIN_BATCH: usize = 8;

/// Longest a worker woken ahead of a batch (`wisp_scheduler::Workers::warm_up`: at the start of
/// a block's execution, and of each batch's planning) spins waiting for its first member. The
/// block's serial start takes well under it, and planning the smallest
/// batch worth the workers ~20 µs; a batch that stays smaller lets the worker go when it ends.
const WARM_UP: std::time::Duration = std::time::Duration::from_micros(500);

/// Default number of requests run without planning after two consecutive planned batches
/// ended, by a conflict, smaller than the smallest batch worth the workers
/// (`Chain::set_planning_pause`). Planning costs a few µs per request on the block's own
/// thread (the code regions, the conflict checks, reading the sender's nonce); a block whose
/// requests keep conflicting gains nothing from it (measured with
/// `cargo run -p wisp-bench --release --example profile_block -- 2 300 all`).
pub const PLANNING_PAUSE: usize = 32;

/// Planning state carried from one batch of a block's off-ledger requests to the next.
#[derive(Default)]
struct Planner {
    /// Senders whose run stopped (a request that could not go in this block).
    stopped: BTreeSet<AgentId>,
    /// Contracts' code hashes, kept until a request that may change a contract record has
    /// run (it writes the records, or declared nothing).
    code_of: BTreeMap<wisp_core::Hname, Option<wisp_core::Hash32>>,
    /// The footprint of the request that ended the last batch, computed while that batch
    /// formed: still exact, or larger (code the batch then loaded), which can only cost
    /// parallelism; dropped with `code_of`.
    carried: Option<(usize, Option<Planned>)>,
    /// Requests left to run one after the other without planning: set after consecutive
    /// batches too small for the workers, since footprints cost a few µs each and a block whose
    /// requests keep conflicting gains nothing from them. Only speed depends on it.
    unplanned: usize,
    /// Whether a parallel batch of this block ran again in order (a planned first use of code
    /// did not happen): the rest of the block plans no member to run as if another had used
    /// code first.
    reran: bool,
    /// Consecutive planned batches smaller than the parallel minimum.
    small_batches: usize,
    /// The batch being planned (emptied for each, its tables kept).
    batch: wisp_scheduler::Batch,
}

/// Where the next batch starts: the block's off-ledger requests, the first not yet taken, and
/// the block's receipts and gas so far.
#[derive(Clone, Copy)]
struct PlanFrom<'a> {
    offs: &'a [crate::VerifiedRequest],
    next: usize,
    receipts: usize,
    block_gas: u64,
}

/// A batch member: the request as it arrived and its index in the block.
type Member<'a> = (&'a crate::VerifiedRequest, u32);

/// The log lines of a request, in the order it wrote them: (contract, message).
type Logs = Vec<(wisp_core::Hname, String)>;

/// A batch's members handed to drainers and not yet taken ([`Chain::drain`]).
#[derive(Default)]
struct Drain<'a> {
    /// Position in the batch, request, index in the block, and how many of `first_users`
    /// come before it ([`FirstUses::before`]).
    jobs: std::collections::VecDeque<(usize, &'a crate::VerifiedRequest, u32, usize)>,
    /// The code of the batch's first uses so far, in the order of their first users
    /// ([`FirstUses::owners`]).
    first_users: Vec<wisp_core::Hash32>,
    /// Drainers started by the planner and still running.
    running: usize,
}

/// What a drainer ran: each member's position in the batch, gas, receipt and its hash, logs,
/// index entries and the code it paid the first use of.
type Drained = (
    usize,
    u64,
    (Receipt, wisp_core::Hash32),
    Logs,
    Indexed,
    Vec<wisp_core::Hash32>,
);

/// A request that ran: its gas, receipt and the receipt's hash, logs, and (run in a
/// parallel batch) its index entries.
type Ran = (u64, (Receipt, wisp_core::Hash32), Logs, Option<Indexed>);

/// An off-ledger request's entries in the node's indexes (outside consensus), made by the
/// drainer that ran it in a parallel batch: its request entry (`None` if it does not encode)
/// and its events' indexed values.
type Indexed = (
    Option<wisp_state::RequestEntry>,
    Vec<wisp_state::IndexedValue>,
);

/// The interfaces of the contracts whose events one thread indexed, by hname: kept for a
/// parallel batch (no member can change a contract record, which every member reads), or
/// for the rest of the block at its end.
type Interfaces = BTreeMap<wisp_core::Hname, InterfaceSource>;

/// Locks `m`; a panic elsewhere while it was held left the data as usable as before.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A planned batch: its members, and where planning stopped.
struct PlannedBatch<'a> {
    members: Vec<Member<'a>>,
    /// Which member uses which code first, for the workers.
    first: FirstUses,
    end: usize,
}

/// A block executed and not yet committed (`Chain::execute_requests`).
struct Executed {
    started: std::time::Instant,
    executed: std::time::Instant,
    /// The block's time in parallel batches, and its workers' starts ([`crate::BlockTiming`]).
    in_parallel: std::time::Duration,
    workers: (u32, std::time::Duration),
    parent: BlockHeader,
    index: u64,
    timestamp_ms: u64,
    l1: crate::L1Ref,
    protocol_version: u32,
    /// The block's writes by key (`None`: deleted), consumed by the state commit.
    changes: crate::exec::Writes,
    receipts: Vec<Receipt>,
    /// The hash of each of `receipts` ([`Receipt::hash`]), taken when it was recorded: the
    /// receipts root is built from them without hashing every receipt again.
    receipt_hashes: Vec<wisp_core::Hash32>,
    logs: Logs,
    deferred: Vec<OnLedgerRequest>,
    /// The values of the block's events' indexed fields, for the node's event index.
    values: Vec<wisp_state::IndexedValue>,
    /// The block's requests as they arrived, for the node's request index.
    requests: Vec<wisp_state::RequestEntry>,
    /// The values the block read, as it left them, for the next block once this one is
    /// committed (`Chain::warm`).
    warm: Option<wisp_state::WarmValues>,
}

/// How a request reached the chain, as the node keeps it for clients and explorers
/// (`StateDb::request_entry`, `wisp_getRequest`); outside consensus.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum RequestRecord {
    /// Carried by a Kaspa lane transaction.
    OnLedger(OnLedgerRequest),
    /// Signed and sent to a node.
    OffLedger(wisp_core::OffLedgerRequest),
}

/// A [`RequestRecord`] by reference, encoded exactly as the record it stands for: the
/// node's request index encodes every request of a block, and copying each (its arguments,
/// its access list) only to encode it was work for nothing.
#[derive(borsh::BorshSerialize)]
enum RequestRecordRef<'a> {
    // Never built outside tests: it keeps the variants in `RequestRecord`'s order, which their
    // encoding follows.
    #[allow(dead_code)]
    OnLedger(&'a OnLedgerRequest),
    OffLedger(&'a wisp_core::OffLedgerRequest),
}

impl RequestRecord {
    /// The call it asked for, if any.
    pub fn body(&self) -> Option<&wisp_core::RequestBody> {
        match self {
            RequestRecord::OnLedger(on) => match &on.body {
                OnLedgerBody::Call(body) => Some(body),
                _ => None,
            },
            RequestRecord::OffLedger(off) => Some(&off.body),
        }
    }
}

/// The node's request entries of the block's on-ledger requests (`receipts` that are in
/// `on_ledger`); off-ledger ones are made where each ran ([`off_ledger_entry`]).
fn on_ledger_entries(
    receipts: &[Receipt],
    on_ledger: &BTreeMap<wisp_core::RequestId, RequestRecord>,
) -> Vec<wisp_state::RequestEntry> {
    receipts
        .iter()
        .filter_map(|r| {
            let record = on_ledger.get(&r.request_id)?;
            request_entry(r, record.body().map(|b| b.call.target), record)
        })
        .collect()
}

/// The node's request entry of an off-ledger request that got `receipt`.
fn off_ledger_entry(
    off: &crate::VerifiedRequest,
    receipt: &Receipt,
) -> Option<wisp_state::RequestEntry> {
    let request = off.request();
    request_entry(
        receipt,
        Some(request.body.call.target),
        &RequestRecordRef::OffLedger(request),
    )
}

/// The node's request entry of the request that got `receipt`, calling `contract`, with the
/// chain's `record` of it; `None` if it does not encode (it always does: borsh of owned data).
fn request_entry(
    receipt: &Receipt,
    contract: Option<wisp_core::Hname>,
    record: &impl borsh::BorshSerialize,
) -> Option<wisp_state::RequestEntry> {
    Some(wisp_state::RequestEntry {
        id: receipt.request_id,
        request_index: receipt.request_index,
        sender: borsh::to_vec(&receipt.sender).ok()?,
        contract,
        record: borsh::to_vec(record).ok()?,
    })
}

/// Appends to `values` the values of the `#[indexed]` fields of `receipt`'s events, found
/// with each emitting contract's interface as `exec` has it when first asked (kept in
/// `interfaces`): for the node's event index only, outside consensus. An event whose data does
/// not decode as its declared fields is left out.
fn indexed_values(
    exec: &mut Exec,
    interfaces: &mut Interfaces,
    receipt: &Receipt,
    values: &mut Vec<wisp_state::IndexedValue>,
) {
    let r = receipt.request_index;
    for (i, event) in receipt.events.iter().enumerate() {
        let known =
            interfaces.entry(event.contract).or_insert_with(|| {
                match crate::native::is_core(event.contract) {
                    true => InterfaceSource::Read(None),
                    false => exec.interface_source(event.contract),
                }
            });
        let Some(def) = known
            .interface()
            .and_then(|i| i.event(&event.topic))
            .filter(|d| d.indexed > 0)
        else {
            continue;
        };
        let Some(fields) = def.indexed_values(&event.data) else {
            continue;
        };
        values.extend(fields.into_iter().enumerate().map(|(field, value)| {
            wisp_state::IndexedValue {
                request: r,
                event: i as u32,
                field: field as u8,
                value: value.to_vec(),
            }
        }));
    }
}

/// Meta record of block `index`: the on-ledger requests it deferred to the next block.
fn backlog_meta(index: u64) -> String {
    format!("onledger-backlog/{index}")
}

fn empty_receipt(id: wisp_core::RequestId, sender: AgentId, block: u64, at: u32) -> Receipt {
    Receipt {
        request_id: id,
        block_index: block,
        request_index: at,
        sender,
        status: ReceiptStatus::Failed,
        error: None,
        gas_used: 0,
        fee_sompi: 0,
        storage_locked_sompi: 0,
        storage_refunded_sompi: 0,
        events: Vec::new(),
        return_data: Vec::new(),
    }
}

/// Keys a request typically writes, for sizing a block's write map ahead: the sender's nonce
/// and balance, its record, and two keys of the contract it calls (a token transfer's two
/// balances). Only a hint: a block that writes more grows the map.
const WRITES_PER_REQUEST: usize = 5;

impl Chain {
    /// Settlement: every `anchor_interval_blocks` blocks the owner pays `anchor_fee_sompi`
    /// towards the next anchor transaction's L1 fee, out of the gas fees it earned. The sompi
    /// leave its balance and the chain's total and are counted in [`keys::anchor_fees`], so
    /// the anchor's value plus unswept deposits always equals the chain's total plus the fees
    /// paid but not yet spent on L1. An owner holding less pays nothing this interval.
    fn pay_anchor_fee(exec: &mut Exec, params: &crate::ChainParams, index: u64) {
        let fee = params.anchor_fee_sompi;
        if params.anchor_interval_blocks == 0
            || fee == 0
            || !index.is_multiple_of(params.anchor_interval_blocks)
        {
            return;
        }
        exec.begin_request(None);
        if let Some(owner) = exec.read_borsh::<AgentId>(&keys::chain_owner()) {
            let balance = exec.balance_of(&owner);
            if balance >= fee {
                exec.write_u64(keys::balance_key(&owner), balance - fee);
                let total = exec.read_u64(&keys::total_balance()).saturating_sub(fee);
                exec.write_u64(keys::total_balance(), total);
                let paid = exec.read_u64(&keys::anchor_fees()).saturating_add(fee);
                exec.write_u64(keys::anchor_fees(), paid);
            }
        }
        exec.commit_request();
    }

    /// Takes `fee_sompi` from `payer` for the chain owner, credited at block end (no owner:
    /// the fee stays with the payer). Returns the fee taken.
    fn pay_fee(exec: &mut Exec, payer: &AgentId, fee_sompi: u64) -> u64 {
        exec.take_fee(payer, fee_sompi)
    }

    /// Takes the storage deposit for the bytes the running request added to WASM contracts'
    /// state from `sender`, and returns to it the deposit of the bytes it freed. Returns
    /// (sompi locked, sompi refunded).
    ///
    /// Each contract's record changes at block end (`Exec::settle_sums`), so requests storing
    /// into one contract run in parallel; here it reads as it was before the block,
    /// (`bytes0`, `sompi0`). A byte locks the block's price `p`. A freed byte returns
    /// `min(sompi0 / bytes0, p)` (`p` if the record held no bytes), rounded down per request:
    /// with the price fixed for the block, the block's refunds are at most
    /// `bytes0 × sompi0 / bytes0 + added × p`, what the record and the block's locks hold, so
    /// a price change never pays out more than was locked.
    ///
    /// # Errors
    /// `insufficient_funds` if the sender cannot pay the deposit (the caller undoes the call).
    fn settle_storage(
        exec: &mut Exec,
        params: &ChainParams,
        sender: &AgentId,
    ) -> std::result::Result<(u64, u64), ReceiptError> {
        let deltas = exec.storage_deltas();
        let price = params.storage_deposit_sompi_per_byte;
        let (mut locked, mut refunded) = (0u64, 0u64);
        for (contract, delta) in deltas {
            let change = if delta > 0 {
                let added = delta as u64;
                let deposit = added.saturating_mul(price);
                let balance = exec.balance_of(sender);
                if balance < deposit {
                    return Err(request_error(
                        RequestErrorCode::InsufficientFunds,
                        format!("the call stores {added} more bytes in contract {contract}, which locks a storage deposit of {deposit} sompi ({price} per byte); the sender holds {balance} sompi after the fee reservation"),
                    ));
                }
                exec.write_u64(keys::balance_key(sender), balance - deposit);
                locked = locked.saturating_add(deposit);
                StorageChange {
                    added_bytes: added,
                    locked_sompi: deposit,
                    ..StorageChange::default()
                }
            } else {
                let freed = delta.unsigned_abs();
                let (bytes0, sompi0): (u64, u64) = exec
                    .read_borsh(&keys::storage_deposit(contract))
                    .unwrap_or_default();
                let at_price = u128::from(freed) * u128::from(price);
                let refund = match bytes0 {
                    0 => at_price,
                    _ => at_price.min(u128::from(freed) * u128::from(sompi0) / u128::from(bytes0)),
                };
                let refund = u64::try_from(refund).unwrap_or(u64::MAX);
                let balance = exec.balance_of(sender).saturating_add(refund);
                exec.write_u64(keys::balance_key(sender), balance);
                refunded = refunded.saturating_add(refund);
                StorageChange {
                    freed_bytes: freed,
                    refunded_sompi: refund,
                    ..StorageChange::default()
                }
            };
            exec.change_storage_deposit(contract, change);
        }
        Ok((locked, refunded))
    }

    /// Refuses the request of `receipt` with `error`: it still cost the node its base work
    /// (defect 8), so its sender pays the base fee, or what it holds if less. Closes the open
    /// request scope; returns the gas and the receipt.
    fn refuse(
        exec: &mut Exec,
        params: &ChainParams,
        mut receipt: Receipt,
        error: ReceiptError,
    ) -> (u64, Receipt) {
        let balance = exec.balance_of(&receipt.sender);
        let fee = Self::pay_fee(
            exec,
            &receipt.sender,
            REQUEST_BASE_GAS
                .saturating_mul(params.gas_price_sompi)
                .min(balance),
        );
        exec.commit_request();
        receipt.error = Some(error);
        receipt.gas_used = REQUEST_BASE_GAS;
        receipt.fee_sompi = fee;
        (REQUEST_BASE_GAS, receipt)
    }

    /// Puts on-ledger request `on`, calling with `body` whose time lock has not come due, in the
    /// time-lock queue: credits its deposit and charges for waiting. Returns the gas charged,
    /// and a receipt if it was refused instead (too far ahead, queue full, cannot pay).
    #[allow(clippy::too_many_arguments)]
    fn park(
        &self,
        exec: &mut Exec,
        params: &ChainParams,
        on: &OnLedgerRequest,
        body: &wisp_core::RequestBody,
        deposit: u64,
        index: u64,
        at: u32,
    ) -> (u64, Option<Receipt>) {
        let id = on.id();
        exec.begin_request(None);
        if deposit > 0 {
            exec.mint_deposit(&on.sender, deposit);
        }
        let mut queue = timelock::queue(exec);
        let due = body.time_lock.and_then(|l| l.not_before);
        let mut record = timelock::TimeLocked {
            request: OnLedgerRequest {
                deposit_sompi: 0, // credited now
                ..on.clone()
            },
            arrived_in_block: index,
            waiting_gas: 0,
            waiting_fee_sompi: 0,
        };
        let record_bytes = borsh::to_vec(&record)
            .map(|b| b.len())
            .unwrap_or(usize::MAX);
        let gas = timelock::waiting_gas(record_bytes);
        let fee = gas.saturating_mul(params.gas_price_sompi);
        let balance = exec.balance_of(&on.sender);
        let admitted = match due {
            None => Err(request_error(
                RequestErrorCode::Malformed,
                "a waiting request needs not_before",
            )),
            Some(due) => timelock::check_wait(
                due,
                queue.len(),
                exec.l1_daa_score,
                exec.block.timestamp_ms,
            )
            .map(|()| due),
        }
        .and_then(|due| {
            if balance < fee {
                Err(request_error(
                    RequestErrorCode::InsufficientFunds,
                    format!("waiting for the time lock costs {gas} gas ({fee} sompi); the sender holds {balance} sompi on the chain"),
                ))
            } else {
                Ok(due)
            }
        });
        let due = match admitted {
            Ok(due) => due,
            Err(e) => {
                let receipt = empty_receipt(id, on.sender, index, at);
                let (gas, receipt) = Self::refuse(exec, params, receipt, e);
                return (gas, Some(receipt));
            }
        };
        record.waiting_gas = gas;
        record.waiting_fee_sompi = Self::pay_fee(exec, &on.sender, fee);
        exec.write_borsh(keys::time_locked(&id), &record);
        queue.push(timelock::QueuedTimeLock { id, due });
        timelock::set_queue(exec, &queue);
        exec.commit_request();
        (gas, None)
    }

    /// Runs the time-locked requests that have come due, in arrival order, while they fit the
    /// block; the rest keep waiting. Each receipt adds the gas and fee of its wait.
    fn run_due_time_locks(
        &self,
        exec: &mut Exec,
        params: &ChainParams,
        index: u64,
        (receipts, hashes, arrived): (
            &mut Vec<Receipt>,
            &mut Vec<wisp_core::Hash32>,
            &mut BTreeMap<wisp_core::RequestId, RequestRecord>,
        ),
        block_gas: &mut u64,
    ) {
        let queue = timelock::queue(exec);
        if queue.is_empty() {
            return;
        }
        let (daa_score, timestamp_ms) = (exec.l1_daa_score, exec.block.timestamp_ms);
        let mut waiting = Vec::with_capacity(queue.len());
        for entry in queue {
            if !entry.due.reached(daa_score, timestamp_ms) {
                waiting.push(entry);
                continue;
            }
            // Absent or not a call only if the state was edited by hand: the entry is dropped.
            let record: Option<timelock::TimeLocked> =
                exec.read_borsh(&keys::time_locked(&entry.id));
            let Some(record) = record else { continue };
            let OnLedgerBody::Call(body) = &record.request.body else {
                continue;
            };
            let full = receipts.len() >= MAX_BLOCK_REQUESTS
                || block_gas.saturating_add(body.gas_budget) > params.max_block_gas;
            if full && !receipts.is_empty() {
                waiting.push(entry);
                continue;
            }
            exec.begin_request(None);
            exec.write(keys::time_locked(&entry.id), None);
            exec.commit_request();
            let request = Request {
                id: entry.id,
                sender: record.request.sender,
                body,
                nonce: None,
            };
            let at = receipts.len() as u32;
            let (gas, mut receipt) = self.execute_request(exec, params, &request, index, at, 0);
            *block_gas = block_gas.saturating_add(gas);
            receipt.gas_used = receipt.gas_used.saturating_add(record.waiting_gas);
            receipt.fee_sompi = receipt.fee_sompi.saturating_add(record.waiting_fee_sompi);
            hashes.push(self.record(exec, &receipt));
            receipts.push(receipt);
            arrived.insert(entry.id, RequestRecord::OnLedger(record.request.clone()));
        }
        exec.begin_request(None);
        timelock::set_queue(exec, &waiting);
        exec.commit_request();
    }

    /// Executes one request into `exec`; returns the gas it used and its receipt. The caller
    /// has checked an off-ledger request's nonce.
    ///
    /// The request's last writes (the call's, its fee) are left uncommitted in `exec`: the
    /// caller records the request ([`Chain::record`]), which commits them with the record (a
    /// simulation, which records nothing, drops them with its `Exec`).
    pub(crate) fn execute_request(
        &self,
        exec: &mut Exec,
        params: &ChainParams,
        request: &Request<'_>,
        block_index: u64,
        request_index: u32,
        deposit: u64,
    ) -> (u64, Receipt) {
        let mut receipt = empty_receipt(request.id, request.sender, block_index, request_index);
        let body = request.body;
        // Deposits, the nonce and the fee reservation stand whatever the call does.
        exec.begin_request(None);
        if deposit > 0 {
            exec.mint_deposit(&request.sender, deposit);
        }
        if let Some(nonce) = request.nonce {
            exec.write_u64(keys::nonce_key(&request.sender), nonce.saturating_add(1));
        }
        let balance = exec.balance_of(&request.sender);
        let reserved = body.gas_budget.saturating_mul(params.gas_price_sompi);
        let admitted = admission::check_body(self.chain_id, params, body)
            .and_then(|()| match exec.simulation {
                // A simulation estimates the call whenever it will run.
                true => Ok(()),
                false => timelock::check(
                    body.time_lock.as_ref(),
                    exec.l1_daa_score,
                    exec.block.timestamp_ms,
                ),
            })
            .and_then(|()| admission::check_funds(balance, 0, max_spend(params, body)));
        if let Err(e) = admitted {
            return Self::refuse(exec, params, receipt, e);
        }
        // Reserve the whole fee before any code runs, so the call cannot spend it (defect 9).
        exec.write_u64(keys::balance_key(&request.sender), balance - reserved);
        exec.commit_request();

        // The call itself: atomic.
        exec.begin_request(body.access_list.as_ref());
        exec.sender = Some(request.sender);
        exec.request_id = Some(request.id);
        let target_agent = AgentId::Contract(wisp_core::ContractId {
            chain: self.chain_id,
            hname: body.call.target,
        });
        let base = admission::base_gas(body);
        let mut gas_used = base;
        let target_declared = match &body.access_list {
            Some(list) if !list.allows_read(body.call.target, None) => Err(request_error(
                RequestErrorCode::AccessListViolation,
                format!(
                    "the target contract {} is not in the declared access list",
                    body.call.target
                ),
            )),
            _ => Ok(()),
        };
        let transfer = target_declared.and_then(|()| {
            exec.move_balance(&request.sender, &target_agent, body.call.transfer_sompi)
        });
        let result: std::result::Result<Vec<u8>, ReceiptError> = match transfer {
            Err(e) => Err(e),
            Ok(()) => {
                let taken = crate::exec::ExecState::take_out(exec);
                let (back, result, gas) = self.run_call(
                    taken,
                    request.sender,
                    body.call.target,
                    CallKind::Entry,
                    body.call.entry_point,
                    body.call.args.clone(),
                    body.call.transfer_sompi,
                    body.gas_budget - base,
                );
                crate::exec::ExecState::put_back(exec, back);
                gas_used = gas_used.saturating_add(gas).min(body.gas_budget);
                result
            }
        };
        // The storage deposit for what the call stored: part of the call, so a sender that
        // cannot pay it undoes the call.
        let result = result.and_then(|data| {
            Self::settle_storage(exec, params, &request.sender).map(|deposit| (data, deposit))
        });
        match result {
            Ok((data, (locked, refunded))) => {
                receipt.events = exec.end_call();
                receipt.status = ReceiptStatus::Success;
                receipt.return_data = data;
                receipt.storage_locked_sompi = locked;
                receipt.storage_refunded_sompi = refunded;
            }
            Err(e) => {
                exec.abort_request();
                receipt.error = Some(e);
            }
        }
        // Settle, in the call's writes (or none, if it failed): the fee for the gas used goes
        // to the owner, the rest of the reservation back. Left open for `record` to commit
        // with the request's record: one commit for the call, the fee and the record.
        let fee = gas_used
            .saturating_mul(params.gas_price_sompi)
            .min(reserved);
        let fee = exec.refund_and_take_fee(&request.sender, reserved, fee);
        receipt.gas_used = gas_used;
        receipt.fee_sompi = fee;
        (gas_used, receipt)
    }

    /// Whether a block referring to L1 DAA score `daa_score` at `timestamp_ms` would run a
    /// time-locked request (one has come due): the node makes a block for it even when
    /// nothing else arrived.
    ///
    /// # Errors
    /// [`crate::ChainError::State`] on I/O or a queue that does not decode.
    pub fn time_lock_due(&self, daa_score: u64, timestamp_ms: u64) -> Result<bool> {
        let Some(bytes) = self.db.get(&keys::time_lock_queue())? else {
            return Ok(false);
        };
        let queue: Vec<timelock::QueuedTimeLock> = borsh::from_slice(&bytes)
            .map_err(|e| wisp_state::StateError::Corrupt(format!("the time-lock queue: {e}")))?;
        Ok(queue
            .iter()
            .any(|entry| entry.due.reached(daa_score, timestamp_ms)))
    }

    /// The on-ledger requests block `index` deferred to the next block, in L1 order.
    ///
    /// # Errors
    /// [`crate::ChainError::State`] on I/O or a record that does not decode.
    pub fn backlog(&self, index: u64) -> Result<Vec<OnLedgerRequest>> {
        match self.db.meta(&backlog_meta(index))? {
            None => Ok(Vec::new()),
            Some(bytes) => borsh::from_slice(&bytes).map_err(|e| {
                wisp_state::StateError::Corrupt(format!("on-ledger backlog of block {index}: {e}"))
                    .into()
            }),
        }
    }

    /// Whether the next block, made of `inputs`, would run any request: one of its own, an
    /// on-ledger request the previous block deferred, or a time-locked request come due. A
    /// block that runs none draws no randomness, so a committee member executes it without
    /// waiting for its randomness.
    ///
    /// # Errors
    /// [`crate::ChainError::State`] on I/O or a record that does not decode.
    pub fn runs_requests(&self, inputs: &BlockInputs) -> Result<bool> {
        if !inputs.on_ledger.is_empty() || !inputs.off_ledger.is_empty() {
            return Ok(true);
        }
        let parent = self.head()?;
        let timestamp_ms = inputs.l1.timestamp_ms.max(parent.timestamp_ms);
        Ok(!self.backlog(parent.index)?.is_empty()
            || self.time_lock_due(inputs.l1.daa_score, timestamp_ms)?)
    }

    /// Executes and commits the next block.
    ///
    /// # Errors
    /// [`crate::ChainError::State`] if reading or writing state fails; then nothing was
    /// committed.
    pub fn execute_block(&self, inputs: BlockInputs) -> Result<BlockOutput> {
        self.execute_block_with_meta(inputs, &[])
    }

    /// [`Chain::execute_block`], also committing `meta` records atomically with the block (the
    /// node keeps each block's off-ledger requests there for replay).
    ///
    /// The block first runs the time-locked requests that came due ([`crate::timelock`]), then
    /// the on-ledger requests the previous block deferred, then `inputs.on_ledger`, in order,
    /// while they fit the block's gas and request caps; the rest is deferred to the next block
    /// ([`BlockOutput::deferred`]). Off-ledger requests follow in the remaining room.
    ///
    /// # Errors
    /// [`crate::ChainError::State`] if reading or writing state fails; then nothing was
    /// committed.
    pub fn execute_block_with_meta(
        &self,
        inputs: BlockInputs,
        meta: &[(&str, Vec<u8>)],
    ) -> Result<BlockOutput> {
        match &self.workers {
            // The whole block runs on a worker, the calling thread asleep: a batch's other
            // members are then stolen by workers the kernel wakes on idle cores. (Run from
            // outside, each batch woke workers while the caller still held its core, and they
            // queued on the other one: measured, two workers took turns on one core.)
            // Committing too: run on the calling thread after the pool's, it measured 10-20%
            // slower (`profile_block -- 2 300 all`).
            Some(workers) => workers.install(|| {
                let executed = self.execute_requests(inputs)?;
                self.commit_executed(executed, meta)
            }),
            None => {
                let executed = self.execute_requests(inputs)?;
                self.commit_executed(executed, meta)
            }
        }
    }

    /// Executes a block's requests into its state changes and receipts, committing nothing.
    fn execute_requests(&self, inputs: BlockInputs) -> Result<Executed> {
        let started = std::time::Instant::now();
        let parent = self.head()?;
        let index = parent.index + 1;
        let timestamp_ms = inputs.l1.timestamp_ms.max(parent.timestamp_ms);
        let params = self.params()?;
        let (protocol, activates) = self.protocol_for_block(index)?;
        let mut on_ledger = self.backlog(parent.index)?;
        on_ledger.extend(inputs.on_ledger);
        // The on-ledger requests that got a receipt, as they arrived (off-ledger ones are found
        // in `inputs` at the end): for the node's request index.
        let mut arrived: BTreeMap<wisp_core::RequestId, RequestRecord> = BTreeMap::new();
        // Workers asleep take ~0.1 ms to start (`WARM_UP`): woken now, they are ready when
        // the first batch is handed out after the block's first requests.
        let warm_block = match &self.workers {
            Some(w) if inputs.off_ledger.len() >= self.parallel_min_batch => {
                Some(w.warm_up(WARM_UP))
            }
            _ => None,
        };
        let mut exec = self.exec_for_block(
            BlockContext {
                index,
                timestamp_ms,
                random_seed: inputs.randomness.map(|r| r.0),
            },
            &protocol.vm,
        );
        exec.l1_daa_score = inputs.l1.daa_score;
        // Room for what the block's requests will write, made once: grown from nothing, the
        // block's write map was rehashed about seven times a block of 100 transfers (860
        // instructions a request, callgrind of `profile_block -- 1 60 independent no-index`).
        let requests = on_ledger.len() + inputs.off_ledger.len();
        exec.reserve_writes(requests.saturating_mul(WRITES_PER_REQUEST));
        exec.begin_request(None);
        exec.write_borsh(keys::block_hash(parent.index), &parent.hash());
        if activates {
            // A scheduled upgrade takes effect at its block, on every node alike.
            exec.write_borsh(keys::protocol(), &protocol);
            exec.write(keys::protocol_upgrade(), None);
        }
        exec.commit_request();
        let mut receipts: Vec<Receipt> = Vec::with_capacity(requests.min(MAX_BLOCK_REQUESTS));
        let mut receipt_hashes: Vec<wisp_core::Hash32> =
            Vec::with_capacity(requests.min(MAX_BLOCK_REQUESTS));
        let mut block_gas = 0u64;
        let mut deferred = Vec::new();
        // Time-locked requests that came due run first: they arrived before anything else.
        self.run_due_time_locks(
            &mut exec,
            &params,
            index,
            (&mut receipts, &mut receipt_hashes, &mut arrived),
            &mut block_gas,
        );
        let mut pending = on_ledger.into_iter();
        for on in pending.by_ref() {
            let id = on.id();
            if exec.read_with(&keys::request_key(&id), |v| v.is_some())
                || exec.read(&keys::time_locked(&id)).is_some()
            {
                continue;
            }
            // A transaction's deposit is credited once: with its first request, or with the
            // entry the node made for it alone.
            let deposit = match on.body {
                OnLedgerBody::DepositFor(_) | OnLedgerBody::Refundable => on.deposit_sompi,
                _ if on.index == 0 => on.deposit_sompi,
                _ => 0,
            };
            // Another chain's request on the shared lane: not ours unless it paid us.
            if let OnLedgerBody::Call(body) = &on.body {
                if body.chain != self.chain_id && deposit == 0 {
                    continue;
                }
            }
            let budget = match &on.body {
                OnLedgerBody::Call(body) if body.chain == self.chain_id => body.gas_budget,
                _ => REQUEST_BASE_GAS,
            };
            let full = receipts.len() >= MAX_BLOCK_REQUESTS
                || block_gas.saturating_add(budget) > params.max_block_gas;
            if full && !receipts.is_empty() {
                deferred.push(on);
                break;
            }
            let at = receipts.len() as u32;
            // A deposit nobody can be credited with: no sender identity and no beneficiary, or
            // a beneficiary that could never spend it.
            let refundable = match &on.body {
                OnLedgerBody::Refundable => true,
                OnLedgerBody::DepositFor(b) => exec.check_recipient(b).is_err(),
                _ => false,
            };
            let receipt = match &on.body {
                OnLedgerBody::Call(body)
                    if body.chain == self.chain_id
                        && body.time_lock.is_some_and(|lock| {
                            timelock::must_wait(&lock, exec.l1_daa_score, exec.block.timestamp_ms)
                        }) =>
                {
                    let (gas, refused) =
                        self.park(&mut exec, &params, &on, body, deposit, index, at);
                    block_gas = block_gas.saturating_add(gas);
                    match refused {
                        Some(receipt) => receipt,
                        // Waiting: its receipt comes when it runs or expires.
                        None => continue,
                    }
                }
                OnLedgerBody::Call(body) => {
                    let request = Request {
                        id,
                        sender: on.sender,
                        body,
                        nonce: None,
                    };
                    let (gas, receipt) =
                        self.execute_request(&mut exec, &params, &request, index, at, deposit);
                    block_gas = block_gas.saturating_add(gas);
                    receipt
                }
                _ if refundable => {
                    exec.begin_request(None);
                    let key = keys::unclaimed(&on.l1_tx_id);
                    let held = exec.read_u64(&key).saturating_add(deposit);
                    exec.write_u64(key, held);
                    exec.commit_request();
                    let mut receipt = empty_receipt(id, on.sender, index, at);
                    receipt.error = Some(request_error(
                        RequestErrorCode::Malformed,
                        format!("{deposit} sompi came from a transaction with no sender identity (its first input is not a version-0 pay-to-public-key script) and no beneficiary in its payload: recorded as refundable (accounts.unclaimed {})", on.l1_tx_id),
                    ));
                    receipt
                }
                OnLedgerBody::DepositOnly
                | OnLedgerBody::Malformed(_)
                | OnLedgerBody::DepositFor(_)
                | OnLedgerBody::Refundable => {
                    let to = match &on.body {
                        OnLedgerBody::DepositFor(beneficiary) => *beneficiary,
                        _ => on.sender,
                    };
                    exec.begin_request(None);
                    exec.mint_deposit(&to, deposit);
                    exec.commit_request();
                    let mut receipt = empty_receipt(id, on.sender, index, at);
                    match &on.body {
                        OnLedgerBody::Malformed(why) => {
                            receipt.error =
                                Some(request_error(RequestErrorCode::Malformed, why.clone()))
                        }
                        _ => receipt.status = ReceiptStatus::Success,
                    }
                    receipt
                }
            };
            receipt_hashes.push(self.record(&mut exec, &receipt));
            receipts.push(receipt);
            arrived.insert(id, RequestRecord::OnLedger(on));
        }
        deferred.extend(pending);
        // Off-ledger: a sender's run stops at its first request that cannot go in this block.
        // Consecutive requests whose access lists do not conflict form a batch and run at once
        // (with workers); each is admitted exactly as it would be one after the other.
        let offs = &inputs.off_ledger;
        // Entries for the node's own indexes, unless it keeps none (`wisp node --no-index`),
        // once turned off for good (`StateDb::set_indexing`): those of a parallel batch's
        // members are made by the drainers that ran them, the rest at the end of the block.
        let indexing = self.db.unindexed_from().is_none();
        let (mut drained_entries, mut drained_values) = (Vec::new(), Vec::new());
        let mut ran_in_order: Vec<Member<'_>> = Vec::new();
        // Timing only (`BlockTiming`): nothing computed depends on it.
        let mut in_parallel = std::time::Duration::ZERO;
        let started_workers = std::sync::Mutex::new((0u32, std::time::Duration::ZERO));
        // The batch tables of the last block, emptied (`plan_batch`) but with their room.
        let mut planner = Planner {
            batch: std::mem::take(&mut *lock(&self.batch)),
            ..Planner::default()
        };
        let mut next = 0;
        while next < offs.len() {
            let from = PlanFrom {
                offs,
                next,
                receipts: receipts.len(),
                block_gas,
            };
            let results: Vec<Ran> = match &self.workers {
                // While planning pauses, each request is a batch of its own: no workers.
                Some(workers) if planner.unplanned == 0 => {
                    // Once the batch has `parallel_min_batch` members, they go to a queue that
                    // drainers take from: one per idle worker, each running the members it takes
                    // one after the other on one fork of the block's execution, so forking and
                    // merging cost once per drainer rather than once per request. Planning
                    // the rest of the batch overlaps with running it, and once it is planned
                    // the block's own thread drains what is left. Members touch disjoint state
                    // where it matters, so which fork ran which member changes nothing:
                    // receipts, gas and logs are put back in canonical order, and the forks'
                    // writes, sums and code used are unions. The first member to use code the
                    // block has not used pays its compilation and the members after it run as
                    // if it had; that is checked before the forks are merged.
                    let base = exec.shared_writes();
                    // Not after a batch too small for the workers: one that keeps conflicting
                    // would only wake them for nothing (the block's early warm-up covers its
                    // first batch).
                    let warm_batch = (planner.small_batches == 0).then(|| workers.warm_up(WARM_UP));
                    let queue = std::sync::Mutex::new(Drain::default());
                    let drained = std::sync::Mutex::new(Vec::new());
                    let min = self.parallel_min_batch;
                    let others = workers.threads().saturating_sub(1);
                    let mut first_handed: Option<std::time::Instant> = None;
                    let (planned, handed) = workers.in_place_scope(|scope| {
                        let mut handed = 0usize;
                        let (queue, drained, params) = (&queue, &drained, &params);
                        let started_workers = &started_workers;
                        let planned = self.plan_batch(
                            &mut exec,
                            params,
                            &from,
                            &mut planner,
                            &mut |exec, members, first| {
                                if members.len() < min {
                                    return;
                                }
                                let start =
                                    {
                                        let mut q = lock(queue);
                                        let known = q.first_users.len();
                                        q.first_users
                                            .extend(first.owners[known..].iter().map(|u| u.code));
                                        q.jobs.extend(
                                            members.iter().enumerate().skip(handed).map(
                                                |(k, (off, at))| (k, *off, *at, first.before[k]),
                                            ),
                                        );
                                        // Counted under the lock a drainer leaves under: a member
                                        // is never left with no drainer running, but for the
                                        // block's own thread at the end.
                                        let start = q.running < others;
                                        q.running += usize::from(start);
                                        start
                                    };
                                handed = members.len();
                                first_handed.get_or_insert_with(std::time::Instant::now);
                                if start {
                                    for warm in [&warm_block, &warm_batch].into_iter().flatten() {
                                        warm.stop();
                                    }
                                    let fork = exec.fork(&base);
                                    let asked = std::time::Instant::now();
                                    scope.spawn(move |_| {
                                        {
                                            let mut s = lock(started_workers);
                                            s.0 += 1;
                                            s.1 += asked.elapsed();
                                        }
                                        let done = self.drain(
                                            fork,
                                            params,
                                            queue,
                                            (index, indexing),
                                            true,
                                        );
                                        lock(drained).push(done);
                                    });
                                }
                            },
                        );
                        if handed > 0 && !lock(queue).jobs.is_empty() {
                            let done = self.drain(
                                exec.fork(&base),
                                params,
                                queue,
                                (index, indexing),
                                false,
                            );
                            lock(drained).push(done);
                        }
                        (planned, handed)
                    });
                    drop((base, warm_batch));
                    next = planned.end;
                    let drained = drained
                        .into_inner()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let paid: Vec<(usize, &[wisp_core::Hash32])> = drained
                        .iter()
                        .flat_map(|(_, ran)| ran.iter().map(|r| (r.0, r.5.as_slice())))
                        .filter(|(_, codes)| !codes.is_empty())
                        .collect();
                    let results = if handed > 0 && first_uses_hold(&planned.first, &paid) {
                        // Every member went to the queue: from the `min`-th admission on,
                        // each admission hands over all members not yet handed over, and a
                        // barrier (no footprint) only ever forms a batch of its own.
                        self.parallel_requests
                            .fetch_add(handed as u64, std::sync::atomic::Ordering::Relaxed);
                        let mut ran = Vec::with_capacity(handed);
                        let mut forks = Vec::with_capacity(drained.len());
                        for (fork, members) in drained {
                            forks.push(fork);
                            ran.extend(members);
                        }
                        exec.merge(forks);
                        ran.sort_unstable_by_key(|(k, ..)| *k);
                        ran.into_iter()
                            .map(|(_, gas, receipt, logs, indexed, _)| {
                                (gas, receipt, logs, Some(indexed))
                            })
                            .collect()
                    } else {
                        // Not handed to the workers, or a first use that did not happen as
                        // planned: the forks' work is dropped and the batch runs in order.
                        if handed > 0 {
                            self.first_use_reruns
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            planner.reran = true;
                        }
                        // A batch too small for the workers: the block's early warm-up has
                        // nothing to hand them, so the worker stops spinning instead of burning
                        // a core for up to `WARM_UP` through a block whose requests keep
                        // conflicting. (Its effect on such blocks was within this machine's
                        // noise: all to one account, two threads against one 0.92x before and
                        // 0.95x after, `cargo bench -p wisp-bench`, 2026-12-03.) A later batch
                        // large enough for the workers wakes them when it hands them members,
                        // and warms them ahead only after a large batch (`warm_batch`).
                        if let Some(warm) = &warm_block {
                            warm.stop();
                        }
                        ran_in_order.extend_from_slice(&planned.members);
                        self.run_in_order(&mut exec, &params, planned.members, index)
                    };
                    if let Some(at) = first_handed {
                        in_parallel += at.elapsed();
                    }
                    results
                }
                _ => {
                    let planned =
                        self.plan_batch(&mut exec, &params, &from, &mut planner, &mut |_, _, _| {});
                    next = planned.end;
                    ran_in_order.extend_from_slice(&planned.members);
                    self.run_in_order(&mut exec, &params, planned.members, index)
                }
            };
            // In canonical order.
            for (gas, (receipt, hash), logs, indexed) in results {
                exec.logs.extend(logs);
                block_gas = block_gas.saturating_add(gas);
                receipts.push(receipt);
                receipt_hashes.push(hash);
                if let Some((entry, values)) = indexed {
                    drained_entries.extend(entry);
                    drained_values.extend(values);
                }
            }
        }
        drop(warm_block);
        *lock(&self.batch) = std::mem::take(&mut planner.batch);
        // Fees, pegged-in and withdrawn sompi were summed over the block; credited now, before
        // the owner pays the anchor fee out of them.
        exec.settle_sums();
        Self::pay_anchor_fee(&mut exec, &params, index);
        if let Some(e) = exec.db_error.take() {
            return Err(wisp_state::StateError::Db(e).into());
        }
        let logs = std::mem::take(&mut exec.logs);
        // The index entries of the requests not drained in a parallel batch, with interfaces
        // as of the end of the block; all in the order of the block's receipts, events and
        // fields. Drainers found each contract's interface when they first met it: in a block
        // that also wrote a contract record (a deploy, an upgrade), one may have changed
        // after, so their requests' events are indexed here again, as one thread does.
        let (values, requests) = match indexing {
            true => {
                let mut interfaces = Interfaces::new();
                let mut values = Vec::new();
                let mut requests = on_ledger_entries(&receipts, &arrived);
                let reindex =
                    !drained_values.is_empty() && exec.block_wrote_under(&keys::contract_records());
                let in_order = ran_in_order
                    .iter()
                    .filter_map(|&(off, at)| Some((off, receipts.get(at as usize)?)));
                if reindex {
                    for receipt in &receipts {
                        indexed_values(&mut exec, &mut interfaces, receipt, &mut values);
                    }
                } else {
                    let on_ledger = receipts
                        .iter()
                        .filter(|r| arrived.contains_key(&r.request_id));
                    for receipt in on_ledger.chain(in_order.clone().map(|(_, r)| r)) {
                        indexed_values(&mut exec, &mut interfaces, receipt, &mut values);
                    }
                    values.extend(drained_values);
                }
                requests.extend(in_order.filter_map(|(off, r)| off_ledger_entry(off, r)));
                values.sort_by_key(|v| (v.request, v.event, v.field));
                requests.extend(drained_entries);
                requests.sort_by_key(|e| e.request_index);
                (values, requests)
            }
            false => (Vec::new(), Vec::new()),
        };
        let (changes, warm) = exec.into_changes_carrying();
        Ok(Executed {
            started,
            executed: std::time::Instant::now(),
            in_parallel,
            workers: started_workers
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            parent,
            index,
            timestamp_ms,
            l1: inputs.l1,
            protocol_version: protocol.version,
            changes,
            receipts,
            receipt_hashes,
            logs,
            deferred,
            values,
            requests,
            warm,
        })
    }

    /// Executes `members` one after the other on `exec`, in order (their logs stay in
    /// `exec.logs`); their index entries are made at the end of the block.
    fn run_in_order(
        &self,
        exec: &mut Exec,
        params: &ChainParams,
        members: Vec<Member<'_>>,
        index: u64,
    ) -> Vec<Ran> {
        members
            .into_iter()
            .map(|(off, at)| {
                let (gas, receipt) = self.execute_off_ledger(exec, params, off, index, at);
                (gas, receipt, Logs::new(), None)
            })
            .collect()
    }

    /// Runs members from `queue` on `fork` until the queue is empty; returns the fork (its
    /// base released, for [`Exec::merge`]) and, for each member it ran, its position in the
    /// batch, gas, receipt, logs and (if `indexing`) index entries. A drainer the planner started (`counted`) leaves the
    /// running count under the same lock in which it finds the queue empty.
    fn drain<'a>(
        &self,
        mut fork: Exec,
        params: &ChainParams,
        queue: &std::sync::Mutex<Drain<'a>>,
        (index, indexing): (u64, bool),
        counted: bool,
    ) -> (Exec, Vec<Drained>) {
        let mut ran = Vec::new();
        let mut interfaces = Interfaces::new();
        // How many of the batch's first uses this fork counts as done.
        let mut presumed = 0;
        loop {
            let (job, first_users) = {
                let mut q = lock(queue);
                let job = q.jobs.pop_front();
                if job.is_none() && counted {
                    q.running -= 1;
                }
                let first_users = match job {
                    Some((.., before)) if before > presumed => {
                        q.first_users[presumed..before].to_vec()
                    }
                    _ => Vec::new(),
                };
                (job, first_users)
            };
            let Some((k, off, at, before)) = job else {
                break;
            };
            // The code earlier members use first counts as loaded, whichever fork ran them.
            if before > presumed {
                fork.presume_loaded(&first_users);
                presumed = before;
            }
            let (gas, (receipt, hash)) = self.execute_off_ledger(&mut fork, params, off, index, at);
            let paid = fork.take_first_loads();
            // Its index entries, here rather than at the end of the block: on the workers.
            let mut values = Vec::new();
            let entry = match indexing {
                true => {
                    indexed_values(&mut fork, &mut interfaces, &receipt, &mut values);
                    off_ledger_entry(off, &receipt)
                }
                false => None,
            };
            let indexed = (entry, values);
            ran.push((
                k,
                gas,
                (receipt, hash),
                std::mem::take(&mut fork.logs),
                indexed,
                paid,
            ));
        }
        // Merging must find the block's writes held by no fork.
        fork.release_base();
        (fork, ran)
    }

    /// Executes an off-ledger request and records it under its id ([`Chain::record`]): on the
    /// fork that ran it in a parallel batch (the record's key is in its footprint), so the
    /// receipts of a batch are hashed on the workers rather than while merging. Returns the
    /// gas used, and the receipt with its hash.
    fn execute_off_ledger(
        &self,
        exec: &mut Exec,
        params: &ChainParams,
        off: &crate::VerifiedRequest,
        index: u64,
        at: u32,
    ) -> (u64, (Receipt, wisp_core::Hash32)) {
        let request = Request::off_ledger(off);
        let (gas, receipt) = self.execute_request(exec, params, &request, index, at, 0);
        let hash = self.record(exec, &receipt);
        (gas, (receipt, hash))
    }

    /// Plans the next batch of off-ledger requests from `from`: requests join while their
    /// footprints conflict with no member's (with workers; without, each request is a batch of
    /// its own), each admitted exactly as it would be one after the other. `admitted` sees the
    /// members after each admission (to hand them to workers early).
    fn plan_batch<'a>(
        &self,
        exec: &mut Exec,
        params: &ChainParams,
        from: &PlanFrom<'a>,
        planner: &mut Planner,
        admitted: &mut dyn FnMut(&mut Exec, &[Member<'a>], &FirstUses),
    ) -> PlannedBatch<'a> {
        let PlanFrom {
            offs,
            next,
            receipts,
            block_gas,
        } = *from;
        let batch = &mut planner.batch;
        batch.clear();
        let mut records_may_change = false;
        let mut members: Vec<Member<'a>> = Vec::new();
        let mut first = FirstUses::default();
        let mut budgets = 0u64;
        let records = keys::contract_records();
        let mut j = next;
        while j < offs.len() {
            let off = &offs[j];
            let sender = off.request().sender();
            if planner.stopped.contains(&sender) {
                j += 1;
                continue;
            }
            let request = Request::off_ledger(off);
            let body = request.body;
            let footprint = match (&self.workers, planner.carried.take()) {
                (Some(_), _) if planner.unplanned > 0 => {
                    planner.unplanned -= 1;
                    None
                }
                (Some(_), Some((at, f))) if at == j => f,
                (Some(_), _) => footprint(exec, &request, &mut planner.code_of),
                (None, _) => None,
            };
            // A request that conflicts with the batch, or declared nothing, waits for the
            // batch before it to finish.
            // After a batch of this block ran twice (`first_uses_hold`), a member no longer
            // runs as if an earlier one had used code first: the batch ends at the second user
            // of code the block has not used, so a stranger's requests refused before their
            // call cannot make every batch run twice.
            let joins = match &footprint {
                Some(f) => {
                    batch.admits(&f.footprint)
                        && !(planner.reran
                            && f.unloaded
                                .iter()
                                .any(|code| !exec.code_loaded(code) && first.of(code).is_some()))
                }
                None => members.is_empty(),
            };
            if !joins {
                planner.carried = Some((j, footprint));
                break;
            }
            // No member touches this sender's keys: its admission reads what it would read
            // one request after the other.
            let expected = exec.read_u64(&keys::nonce_key(&sender));
            // A request that already ran is skipped. Every off-ledger request that ran moved
            // its sender's nonce past its own (the nonce is written first, whatever the call
            // does, and nothing else writes nonces), so one carrying the expected nonce has
            // not run, and the look-up of its record (a key that is absent, the costliest
            // read) is not needed — unless the nonce is `u64::MAX`, where it cannot move.
            let may_have_run = request.nonce != Some(expected) || expected == u64::MAX;
            if may_have_run && exec.read_with(&keys::request_key(&request.id), |v| v.is_some()) {
                j += 1;
                continue;
            }
            let at = receipts + members.len();
            let gas_full = block_gas
                .saturating_add(budgets)
                .saturating_add(body.gas_budget)
                > params.max_block_gas;
            if gas_full && !members.is_empty() {
                // Members may use less than their budgets: decide after them.
                break;
            }
            if request.nonce != Some(expected) || at >= MAX_BLOCK_REQUESTS || gas_full {
                planner.stopped.insert(sender);
                j += 1;
                continue;
            }
            budgets = budgets.saturating_add(body.gas_budget);
            first.before.push(first.owners.len());
            match &footprint {
                Some(f) => {
                    batch.add(&f.footprint);
                    records_may_change |= f
                        .footprint
                        .writes
                        .iter()
                        .any(|w| wisp_scheduler::overlap(w, &records));
                    // Code the block has not used (a footprint carried from the last batch
                    // may name code that batch used since): this member's first use, or a
                    // later use of an earlier member's.
                    for code in f.unloaded.iter().filter(|c| !exec.code_loaded(c)) {
                        match first.of(code) {
                            Some(earlier) => earlier.shared = true,
                            None => first.owners.push(FirstUse {
                                code: *code,
                                owner: members.len(),
                                shared: false,
                            }),
                        }
                    }
                }
                None => records_may_change = true,
            }
            members.push((off, at as u32));
            j += 1;
            if footprint.is_none() {
                break;
            }
            admitted(exec, &members, &first);
        }
        if records_may_change {
            planner.code_of.clear();
            planner.carried = None;
        }
        if planner.carried.is_some() {
            if members.len() >= self.parallel_min_batch {
                planner.small_batches = 0;
            } else {
                planner.small_batches += 1;
                if planner.small_batches >= 2 {
                    planner.carried = None;
                    planner.unplanned = self.planning_pause;
                }
            }
        }
        PlannedBatch {
            members,
            first,
            end: j,
        }
    }

    /// Commits an executed block: its tree hashed on a second thread while values, receipts
    /// and `meta` are written; the header waits for the root.
    fn commit_executed(&self, e: Executed, meta: &[(&str, Vec<u8>)]) -> Result<BlockOutput> {
        let Executed {
            started,
            executed,
            in_parallel,
            workers,
            parent,
            index,
            timestamp_ms,
            l1,
            protocol_version,
            changes,
            receipts,
            receipt_hashes,
            logs,
            deferred,
            values,
            requests,
            warm,
        } = e;
        let receipts_root = BlockHeader::receipts_commitment_of(&receipt_hashes);
        debug_assert_eq!(
            receipts_root,
            BlockHeader::receipts_commitment(&receipts),
            "a receipt changed after it was recorded"
        );
        let events_root = BlockHeader::events_commitment(&receipts);
        let gas_used = receipts.iter().map(|r| r.gas_used).sum();
        let backlog_key = backlog_meta(index);
        let mut all_meta: Vec<(&str, Vec<u8>)> = meta.to_vec();
        all_meta.push((
            &backlog_key,
            borsh::to_vec(&deferred).map_err(|e| wisp_state::StateError::Db(e.to_string()))?,
        ));
        let (header, hashing) = self.db.commit_block(
            index,
            changes,
            (
                &receipts,
                wisp_state::BlockIndexes {
                    values: &values,
                    requests: &requests,
                },
            ),
            &all_meta,
            |state_root| BlockHeader {
                chain: self.chain_id,
                index,
                prev_hash: parent.hash(),
                l1_block: l1.block_hash,
                l1_daa_score: l1.daa_score,
                timestamp_ms,
                state_root,
                receipts_root,
                events_root,
                request_count: receipts.len() as u32,
                gas_used,
                protocol_version,
            },
        )?;
        *lock(&self.warm) = warm.map(|w| w.committed(&header));
        Ok(BlockOutput {
            header,
            receipts,
            logs,
            deferred,
            timing: crate::BlockTiming {
                requests: executed - started,
                in_parallel,
                workers_started: workers.0,
                workers_waited: workers.1,
                hashing,
                committing: executed.elapsed(),
            },
        })
    }

    /// Records a request as processed: its block, position and receipt hash under its id
    /// (what replay protection and `blocklog.request` look up).
    ///
    /// Commits with it the writes of the request [`Chain::execute_request`] left open (none
    /// after any other request kind, which commits its own). Returns the receipt's hash, which
    /// the block's receipts root is built from.
    fn record(&self, exec: &mut Exec, receipt: &Receipt) -> wisp_core::Hash32 {
        let hash = receipt.hash();
        exec.write_borsh(
            keys::request_key(&receipt.request_id),
            &(receipt.block_index, receipt.request_index, hash),
        );
        exec.commit_request();
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_by_reference_encodes_as_the_record() {
        let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[3; 32]).unwrap();
        let body = wisp_core::RequestBody {
            chain: wisp_core::ChainId([2; 32]),
            call: wisp_core::Call {
                target: wisp_core::Hname::of("token"),
                entry_point: wisp_core::Hname::of("transfer"),
                args: vec![1, 2, 3],
                transfer_sompi: 5,
            },
            gas_budget: 1_000_000,
            access_list: Some(wisp_core::AccessList {
                reads: vec![],
                writes: vec![wisp_core::Access {
                    contract: wisp_core::Hname::of("token"),
                    key_prefix: Some(vec![9, 9]),
                }],
            }),
            time_lock: None,
        };
        let off = crate::signing::sign_request(body.clone(), &key, 7);
        assert_eq!(
            borsh::to_vec(&RequestRecordRef::OffLedger(&off)).unwrap(),
            borsh::to_vec(&RequestRecord::OffLedger(off.clone())).unwrap()
        );
        let on = OnLedgerRequest {
            l1_tx_id: wisp_core::Hash32([4; 32]),
            index: 1,
            sender: off.sender(),
            deposit_sompi: 10,
            body: OnLedgerBody::Call(body),
        };
        assert_eq!(
            borsh::to_vec(&RequestRecordRef::OnLedger(&on)).unwrap(),
            borsh::to_vec(&RequestRecord::OnLedger(on.clone())).unwrap()
        );
    }
}
