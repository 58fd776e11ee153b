//! The execution context of one block: a write overlay over committed state (a request's own
//! writes, dropped whole if it fails) with a journal for rolling back nested calls, and the
//! [`Host`] implementation the VM calls.
//!
//! Invariants:
//! - Reads see, in order: the current request's writes, earlier requests of this block, then
//!   committed state. Nothing reaches disk until the whole block commits.
//! - Rolling back to a checkpoint restores exactly the state, events and balances before it.
//! - Iteration order never feeds a result: overlays are `BTreeMap`s, the module cache is only
//!   looked up.

use crate::engines::Runtime;
use crate::keys;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use wisp_core::interface::ContractInterface;
use wisp_core::{
    Access, AccessList, AgentId, CallKind, ChainId, ErrorLevel, Event, Hash32, Hname, ReceiptError,
    RequestErrorCode, VmErrorCode,
};
use wisp_state::{Snapshot, StateDb};
use wisp_vm::{BlockContext, Checkpoint, CoreCall, Host, PreparedModule};

/// A record of the registry: what is deployed under an hname.
#[derive(
    Clone,
    Debug,
    PartialEq,
    Eq,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ContractRecord {
    /// The name it was deployed under.
    pub name: String,
    /// Its code.
    pub code_hash: Hash32,
    /// Who deployed it.
    pub deployer: AgentId,
    /// The block it was deployed in.
    pub deployed_at_block: u64,
}

/// The `code_hash` of a borsh-encoded [`ContractRecord`], checking that the bytes decode
/// whole as one (the name valid UTF-8, nothing after the last field) without building it.
///
/// # Errors
/// `InvalidData` (or `UnexpectedEof`) where `borsh::from_slice::<ContractRecord>` fails.
fn record_code_hash(bytes: &[u8]) -> std::io::Result<Hash32> {
    use borsh::BorshDeserialize;
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let mut rest = bytes;
    let name_len = u32::deserialize_reader(&mut rest)? as usize;
    if rest.len() < name_len {
        return Err(invalid("the name runs past the record"));
    }
    let (name, tail) = rest.split_at(name_len);
    std::str::from_utf8(name).map_err(|_| invalid("the name is not UTF-8"))?;
    rest = tail;
    let code_hash = Hash32::deserialize_reader(&mut rest)?;
    AgentId::deserialize_reader(&mut rest)?;
    u64::deserialize_reader(&mut rest)?;
    if !rest.is_empty() {
        return Err(invalid("bytes after the record"));
    }
    Ok(code_hash)
}

/// Makes `held` a copy of `from`, refilling the key prefixes it already has.
fn copy_accesses(held: &mut Vec<Access>, from: &[Access]) {
    held.truncate(from.len());
    for (h, f) in held.iter_mut().zip(from) {
        h.contract = f.contract;
        h.key_prefix.clone_from(&f.key_prefix);
    }
    let kept = held.len();
    held.extend(from[kept..].iter().cloned());
}

/// The error of a call to `contract` where no contract is deployed.
fn unknown_contract(contract: Hname) -> ReceiptError {
    request_error(
        RequestErrorCode::UnknownContract,
        format!("no contract with hname {contract} is deployed on this chain"),
    )
}

pub(crate) fn request_error(code: RequestErrorCode, message: impl Into<String>) -> ReceiptError {
    ReceiptError {
        level: ErrorLevel::Request,
        code: code.code(),
        message: message.into(),
    }
}

pub(crate) fn vm_error(code: VmErrorCode, message: impl Into<String>) -> ReceiptError {
    ReceiptError {
        level: ErrorLevel::Vm,
        code: code.code(),
        message: message.into(),
    }
}

/// One undo record: a key and what the request overlay held for it before (`None`: nothing).
type JournalEntry = (StateKey, Option<Option<Vec<u8>>>);

/// A full state key as the block's and the request's writes hold it: inline up to
/// [`INLINE_KEY_BYTES`] (every key of the runtime and of the example contracts), else on the
/// heap. A block's keys live until the state commit hashes them; allocated one by one, each
/// was an allocation on the request path that the allocator served from a block out of the
/// core's cache (4 of a transfer's 29 allocations, by callgrind's call counts
/// of `profile_block -- 1 {30,60} independent no-index`, 2026-12-03), and each lookup compared
/// against a key in memory of its own.
pub(crate) type StateKey = smallvec::SmallVec<[u8; INLINE_KEY_BYTES]>;

/// Bytes of a [`StateKey`] held inline: a 4-byte hname and 60 more (an account key takes at
/// most 42 bytes, a request record 37, the example token's balance key at most 50).
pub(crate) const INLINE_KEY_BYTES: usize = 64;

/// Chain-wide sums a block accumulates instead of writing them per request, so that requests
/// do not all write the same keys (the chain owner's balance, the total): they are credited
/// once, at block end ([`Exec::settle_sums`]). Within a block, state shows the values from
/// before the block for these keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct BlockSums {
    /// Gas fees paid, sompi: credited to the chain owner.
    pub fees: u64,
    /// Sompi pegged in (deposits): added to the chain's total.
    pub minted: u64,
    /// Sompi that left the chain (withdrawals and their fees): taken from the total.
    pub burned: u64,
    /// Withdrawal fees: added to `keys::anchor_fees`.
    pub anchor_fees: u64,
}

impl BlockSums {
    fn add(&mut self, other: &BlockSums) {
        self.fees = self.fees.saturating_add(other.fees);
        self.minted = self.minted.saturating_add(other.minted);
        self.burned = self.burned.saturating_add(other.burned);
        self.anchor_fees = self.anchor_fees.saturating_add(other.anchor_fees);
    }
}

/// How a block changed one WASM contract's storage deposit record ([`keys::storage_deposit`]):
/// summed over its requests and applied once, at block end ([`Exec::settle_sums`]), so that
/// requests storing into one contract do not all write its record (which would make every
/// call that may store into a contract conflict with every other). Within a block, the record
/// shows its value from before the block.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct StorageChange {
    /// Bytes added (an entry counts its key, value and `STORAGE_ENTRY_OVERHEAD_BYTES`).
    pub added_bytes: u64,
    /// Sompi locked for them.
    pub locked_sompi: u64,
    /// Bytes freed.
    pub freed_bytes: u64,
    /// Sompi refunded for them.
    pub refunded_sompi: u64,
}

impl StorageChange {
    fn add(&mut self, other: &StorageChange) {
        self.added_bytes = self.added_bytes.saturating_add(other.added_bytes);
        self.locked_sompi = self.locked_sompi.saturating_add(other.locked_sompi);
        self.freed_bytes = self.freed_bytes.saturating_add(other.freed_bytes);
        self.refunded_sompi = self.refunded_sompi.saturating_add(other.refunded_sompi);
    }
}

/// Storage deposit changes by contract (ordered: applied in hname order).
type StorageChanges = BTreeMap<Hname, StorageChange>;

fn add_storage_changes(into: &mut StorageChanges, from: StorageChanges) {
    for (contract, change) in from {
        into.entry(contract).or_default().add(&change);
    }
}

/// A block's writes by full state key (`None`: deleted). A hash map (foldhash, randomly
/// seeded: keys are chosen by strangers), not a B-tree: every read of a block looks here
/// first. Unordered: the state store orders a block's changes by key hash when it commits
/// them. Shared by reference count: the forks of a parallel batch read their parent's writes
/// through a clone of the `Arc` (the parent writes nothing while they run), and once they
/// have let go ([`Exec::release_base`]) the parent changes the map in place again. It was a
/// persistent hash trie (imbl), whose inserts allocated and whose reads walked several levels
/// (inserting a request's writes was 7% of the execution phase's perf samples, `profile_block
/// -- 1 150 independent`); as a hash map, the same instructions ran and whole blocks measured
/// 1–3% faster in five interleaved pairs.
pub(crate) type Overlay = Arc<Writes>;

/// Most keys [`Exec::reserve_writes`] makes room for at once (a table of about 0.8 MiB).
pub(crate) const MAX_RESERVED_WRITES: usize = 10_000;

/// The map behind an [`Overlay`].
pub(crate) type Writes =
    std::collections::HashMap<StateKey, Option<Vec<u8>>, foldhash::fast::RandomState>;

/// Where a deployed contract's interface was found ([`Exec::interface_source`]).
pub enum InterfaceSource {
    /// The cached module, which holds it.
    Module(PreparedModule),
    /// Read from the contract's code (`None`: no interface, or no such contract).
    Read(Option<ContractInterface>),
}

impl InterfaceSource {
    /// The interface, if there is one.
    pub fn interface(&self) -> Option<&ContractInterface> {
        match self {
            InterfaceSource::Module(module) => module.interface(),
            InterfaceSource::Read(interface) => interface.as_ref(),
        }
    }
}

/// A block's execution ([`ExecState`]), boxed: it is handed to the VM and back at every call
/// (and swapped with a placeholder around it), and moving the 680-byte state each time showed
/// as ~3% of the execution phase in copies (perf of `profile_block -- 1 400 independent
/// no-index`, 2026-12-03); a box moves as a pointer.
pub(crate) type Exec = Box<ExecState>;

pub(crate) struct ExecState {
    pub runtime: Arc<Runtime>,
    pub db: Arc<StateDb>,
    snapshot: Option<Arc<Snapshot>>,
    /// The block's writes before the parallel batch this execution belongs to (a fork's
    /// view of its parent's `block_overlay`), read after `block_overlay`.
    base: Option<Overlay>,
    pub chain_id: ChainId,
    pub block: BlockContext,
    block_overlay: Overlay,
    overlay: BTreeMap<StateKey, Option<Vec<u8>>>,
    journal: Vec<JournalEntry>,
    checkpoints: Vec<(usize, usize, BlockSums)>,
    /// The block's sums of the requests committed so far.
    sums: BlockSums,
    /// The running request's sums (kept with its writes, dropped with them).
    request_sums: BlockSums,
    /// The block's storage deposit changes of the requests committed so far.
    storage: StorageChanges,
    /// The running request's (made after its call, so no checkpoint of a nested call holds
    /// them; dropped with the request's writes).
    request_storage: StorageChanges,
    pub events: Vec<Event>,
    pub access: Option<AccessList>,
    pub logs: Vec<(Hname, String)>,
    /// A failed disk read; the block cannot be executed deterministically and is abandoned.
    pub db_error: Option<String>,
    /// A view or simulation: modules it compiles are not kept in the cache.
    pub simulation: bool,
    /// DAA score of the L1 chain block the block refers to (time locks are judged by it and
    /// `block.timestamp_ms`).
    pub l1_daa_score: u64,
    /// The sender of the running call: its balance and nonce are implicitly declared.
    pub sender: Option<AgentId>,
    /// The running request's id: with the block's randomness, what `random` derives from.
    pub request_id: Option<wisp_core::RequestId>,
    /// Values `random` has returned in the running request (each call draws the next).
    random_draws: u32,
    /// Native core-contract code is running: its raw state accesses are checked against the
    /// access list, and the first violation is kept in `violation`.
    pub native: bool,
    /// The first access-list violation of native code, failing its call.
    pub violation: Option<ReceiptError>,
    /// Code hashes this block has instantiated or deployed (its first use of each pays the
    /// compilation): block history, never the node's cache, decides.
    loaded: std::collections::BTreeSet<Hash32>,
    /// The code this execution used first in the block and paid the compilation of
    /// (`module_of`), since [`Exec::take_first_loads`].
    first_loads: Vec<Hash32>,
    /// Simulation in recording mode: every access the access list would have to allow.
    pub observed: Option<Observed>,
    /// The stand-in that holds this execution's place while the VM owns it
    /// ([`ExecState::take_out`]), made at the first call and kept for the next ones.
    stand_in: Option<Exec>,
    /// The buffers of the last access list `access` held, refilled by the next request's
    /// ([`ExecState::begin_request`]) instead of allocating a copy of each.
    spare_access: Option<AccessList>,
}

/// The accesses a simulated request made, in the terms of an access list: contract storage
/// keys (contract-relative) read and written, and contracts called.
#[derive(Default, Debug)]
pub(crate) struct Observed {
    reads: BTreeSet<(Hname, Vec<u8>)>,
    writes: BTreeSet<(Hname, Vec<u8>)>,
    called: BTreeSet<Hname>,
    /// The request drew randomness: which keys it reaches may differ when it runs.
    drew: bool,
}

impl Observed {
    fn note(&mut self, contract: Hname, key: Option<&[u8]>, write: bool) {
        match (key, write) {
            (None, _) => {
                self.called.insert(contract);
            }
            (Some(k), true) => {
                self.writes.insert((contract, k.to_vec()));
            }
            (Some(k), false) => {
                self.reads.insert((contract, k.to_vec()));
            }
        }
    }

    /// The narrowest access list that allows what was observed: exact keys, a write declared
    /// once (writes grant reads), a called contract without key accesses as a whole-contract
    /// read. Beyond [`AccessList::MAX_ENTRIES`] entries or [`AccessList::MAX_PREFIX_BYTES`]
    /// bytes per key, a contract's keys collapse into its whole partition (a whole-contract
    /// write if any key was written); `None` if even that does not fit. A request that drew
    /// randomness gets whole partitions at once: its draw when it runs is not the simulation's
    /// stand-in, so it may reach other keys of the contracts it touched.
    pub fn into_access_list(self) -> Option<AccessList> {
        let exact = |keys: &BTreeSet<(Hname, Vec<u8>)>, skip: &BTreeSet<(Hname, Vec<u8>)>| {
            keys.iter()
                .filter(|k| !skip.contains(k))
                .map(|(contract, key)| Access {
                    contract: *contract,
                    key_prefix: Some(key.clone()),
                })
                .collect::<Vec<_>>()
        };
        let none = BTreeSet::new();
        let writes = exact(&self.writes, &none);
        let mut reads = exact(&self.reads, &self.writes);
        let touched: BTreeSet<Hname> = self
            .reads
            .iter()
            .chain(&self.writes)
            .map(|(c, _)| *c)
            .collect();
        reads.extend(
            self.called
                .iter()
                .filter(|c| !touched.contains(c))
                .map(|c| Access {
                    contract: *c,
                    key_prefix: None,
                }),
        );
        let list = AccessList { reads, writes };
        let fits = |l: &AccessList| {
            l.entries() <= AccessList::MAX_ENTRIES
                && l.reads.iter().chain(&l.writes).all(|a| {
                    a.key_prefix
                        .as_ref()
                        .is_none_or(|p| p.len() <= AccessList::MAX_PREFIX_BYTES)
                })
        };
        if fits(&list) && !self.drew {
            return Some(list);
        }
        // Whole partitions: one entry per contract.
        let written: BTreeSet<Hname> = self.writes.iter().map(|(c, _)| *c).collect();
        let all: BTreeSet<Hname> = touched.iter().chain(&self.called).copied().collect();
        let whole = |c: &Hname| Access {
            contract: *c,
            key_prefix: None,
        };
        let list = AccessList {
            reads: all
                .iter()
                .filter(|c| !written.contains(c))
                .map(whole)
                .collect(),
            writes: written.iter().map(whole).collect(),
        };
        fits(&list).then_some(list)
    }
}

impl ExecState {
    /// Execution of one block over a snapshot of the committed state taken now.
    pub fn new(
        runtime: Arc<Runtime>,
        db: Arc<StateDb>,
        chain_id: ChainId,
        block: BlockContext,
    ) -> Exec {
        let snapshot = db.snapshot();
        ExecState::over(runtime, db, chain_id, block, snapshot)
    }

    /// Execution of one block over `snapshot` (an error taking it is reported as a state
    /// error of the block, [`Exec::db_error`]).
    pub fn over(
        runtime: Arc<Runtime>,
        db: Arc<StateDb>,
        chain_id: ChainId,
        block: BlockContext,
        snapshot: wisp_state::Result<Snapshot>,
    ) -> Exec {
        let mut exec = ExecState::without_snapshot(runtime, db, chain_id, block);
        match snapshot {
            Ok(s) => exec.snapshot = Some(Arc::new(s)),
            Err(e) => exec.db_error = Some(e.to_string()),
        }
        exec
    }

    /// The block's writes (`None`: deleted), with the values its snapshot read carried to
    /// the next block's ([`wisp_state::Snapshot::carry`]).
    pub fn into_changes_carrying(mut self) -> (Writes, Option<wisp_state::WarmValues>) {
        // The block's forks are merged and gone by now: this execution holds the only
        // reference (were it not so, the next block would only start without the values).
        let warm = self.snapshot.as_mut().and_then(Arc::get_mut).and_then(|s| {
            s.carry(
                self.block_overlay
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_deref())),
            )
        });
        (self.into_changes(), warm)
    }

    /// An execution of one request of a parallel batch: it reads what this execution reads
    /// (its snapshot, and `base`, this execution's block writes so far) and writes only to its
    /// own overlay; [`Exec::merge`] brings its writes back, in the batch's canonical order.
    pub fn fork(&self, base: &Overlay) -> Exec {
        let mut exec = self.placeholder();
        exec.snapshot = self.snapshot.clone();
        exec.base = Some(base.clone());
        exec.loaded = self.loaded.clone();
        exec
    }

    /// Whether the block's writes so far include a key starting with `prefix` (written or
    /// deleted). Scans them: for the end of a block.
    pub fn block_wrote_under(&self, prefix: &[u8]) -> bool {
        self.block_overlay.keys().any(|k| k.starts_with(prefix))
    }

    /// This execution's block writes so far, shared with the forks of a parallel batch (only
    /// the block's own execution forks, so it has no `base` of its own).
    pub fn shared_writes(&self) -> Overlay {
        self.block_overlay.clone()
    }

    /// Lets go of the parent's block writes a fork read (its `base`), once it has run: while
    /// any fork holds them, the parent's first write copies the whole map instead of changing
    /// it in place.
    pub fn release_base(&mut self) {
        self.base = None;
    }

    /// Takes back the committed writes, sums, code first used and logs of a parallel batch's
    /// forks (call after [`Exec::release_base`] on each). They may come in any order: their
    /// members' writes are disjoint, sums add up alike in any order, and logs that must keep
    /// the canonical order are taken from a fork per request.
    ///
    /// The block's writes come out as inserting each fork's into them would leave them (a
    /// fork's write wins over the block's earlier one), but built from the largest map, with
    /// room made once, by inserting the others into it: merging the two forks of a batch of
    /// 100 transfers took a median 21.7 µs inserting both into the block's writes and 15.5 µs
    /// this way, less in each of eight interleaved rounds (`profile_block -- 2 300 independent
    /// no-index`, 2026-12-03).
    pub fn merge(&mut self, forks: Vec<Exec>) {
        let mut maps = Vec::with_capacity(forks.len());
        for fork in forks {
            maps.push(Arc::unwrap_or_clone(fork.block_overlay));
            self.sums.add(&fork.sums);
            add_storage_changes(&mut self.storage, fork.storage);
            self.loaded.extend(fork.loaded);
            self.logs.extend(fork.logs);
            if self.db_error.is_none() {
                self.db_error = fork.db_error;
            }
        }
        let ours = self.writes();
        let total = ours.len() + maps.iter().map(Writes::len).sum::<usize>();
        match maps.iter().enumerate().max_by_key(|(_, m)| m.len()) {
            Some((largest, map)) if map.len() > ours.len() => {
                let mut merged = maps.swap_remove(largest);
                merged.reserve(total - merged.len());
                // The forks' writes are disjoint: which of them goes first changes nothing.
                for map in maps {
                    merged.extend(map);
                }
                // The block's earlier writes lose to any fork's.
                for (key, value) in std::mem::take(ours) {
                    merged.entry(key).or_insert(value);
                }
                *ours = merged;
            }
            _ => {
                ours.reserve(total - ours.len());
                for map in maps {
                    ours.extend(map);
                }
            }
        }
    }

    /// Whether code with this hash was already used in this block (its first use pays the
    /// compilation).
    pub fn code_loaded(&self, code_hash: &Hash32) -> bool {
        self.loaded.contains(code_hash)
    }

    /// Counts `codes` as used in this block before the next request runs: in a parallel
    /// batch, the code whose first use in the batch belongs to an earlier member (which a
    /// fork running this member may not have run); checked when the batch ends.
    pub fn presume_loaded(&mut self, codes: &[Hash32]) {
        self.loaded.extend(codes.iter().copied());
    }

    /// The code used first in the block (and paid for) since the last call.
    pub fn take_first_loads(&mut self) -> Vec<Hash32> {
        std::mem::take(&mut self.first_loads)
    }

    /// Takes the execution in `slot` out for the VM, leaving its stand-in there (one made at
    /// its first call and kept, rather than two allocations and their frees at every call);
    /// [`ExecState::put_back`] returns it. The stand-in is never read.
    pub fn take_out(slot: &mut Exec) -> Exec {
        let stand_in = match slot.stand_in.take() {
            Some(stand_in) => stand_in,
            None => slot.placeholder(),
        };
        std::mem::replace(slot, stand_in)
    }

    /// Puts an execution taken out by [`ExecState::take_out`] back in `slot`, keeping the
    /// stand-in it finds there for the next call.
    pub fn put_back(slot: &mut Exec, exec: Exec) {
        let stand_in = std::mem::replace(slot, exec);
        slot.stand_in = Some(stand_in);
    }

    /// A stand-in with no snapshot, to hold `exec`'s place while the VM owns it.
    pub fn placeholder(&self) -> Exec {
        let mut exec = ExecState::without_snapshot(
            self.runtime.clone(),
            self.db.clone(),
            self.chain_id,
            self.block,
        );
        exec.simulation = self.simulation;
        exec.l1_daa_score = self.l1_daa_score;
        exec
    }

    fn without_snapshot(
        runtime: Arc<Runtime>,
        db: Arc<StateDb>,
        chain_id: ChainId,
        block: BlockContext,
    ) -> Exec {
        Box::new(ExecState {
            runtime,
            db,
            snapshot: None,
            base: None,
            chain_id,
            block,
            block_overlay: Overlay::default(),
            overlay: BTreeMap::new(),
            journal: Vec::new(),
            checkpoints: Vec::new(),
            sums: BlockSums::default(),
            request_sums: BlockSums::default(),
            storage: StorageChanges::new(),
            request_storage: StorageChanges::new(),
            events: Vec::new(),
            access: None,
            logs: Vec::new(),
            db_error: None,
            simulation: false,
            l1_daa_score: 0,
            sender: None,
            request_id: None,
            random_draws: 0,
            native: false,
            violation: None,
            loaded: std::collections::BTreeSet::new(),
            first_loads: Vec::new(),
            observed: None,
            stand_in: None,
            spare_access: None,
        })
    }

    /// Reads a full state key.
    pub fn read(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        self.read_with(key, |v| v.map(<[u8]>::to_vec))
    }

    /// `f` of the value of a full state key, read as [`Exec::read`] reads it but lent rather
    /// than copied (`f` may run while the snapshot's memo is locked: it must not read state).
    pub fn read_with<R>(&mut self, key: &[u8], mut f: impl FnMut(Option<&[u8]>) -> R) -> R {
        if self.native {
            self.note_violation(key, false);
        }
        match self.overlay.get(key) {
            Some(v) => f(v.as_deref()),
            None => self.before_request_with(key, f),
        }
    }

    /// `f` of the value of `key` before the running request — what the block wrote, else the
    /// snapshot — lent (see [`Exec::read_with`]).
    fn before_request_with<R>(&mut self, key: &[u8], mut f: impl FnMut(Option<&[u8]>) -> R) -> R {
        if let Some(v) = self.block_overlay.get(key) {
            return f(v.as_deref());
        }
        if let Some(v) = self.base.as_ref().and_then(|b| b.get(key)) {
            return f(v.as_deref());
        }
        match self.snapshot.as_ref().map(|s| s.get_with(key, &mut f)) {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                self.db_error.get_or_insert(e.to_string());
                f(None)
            }
            None => f(None),
        }
    }

    /// Bytes the running request added to (positive) or freed from (negative) each WASM
    /// contract's storage so far, by contract: each entry counts its contract-relative key, its
    /// value and [`crate::STORAGE_ENTRY_OVERHEAD_BYTES`]. Writes undone by a failed nested call
    /// are not in the request's overlay, so they count nothing.
    pub fn storage_deltas(&mut self) -> BTreeMap<Hname, i64> {
        let size = |key: &[u8], value_len: Option<usize>| -> i64 {
            value_len.map_or(0, |v| {
                (key.len() - 4) as i64 + v as i64 + crate::STORAGE_ENTRY_OVERHEAD_BYTES as i64
            })
        };
        // The overlay is set aside while the values before it are read (those reads never
        // look at it), so neither its keys nor any value is copied.
        let overlay = std::mem::take(&mut self.overlay);
        let mut deltas = BTreeMap::new();
        for (key, value) in overlay.iter().filter(|(k, _)| k.len() >= 4) {
            let mut owner = [0u8; 4];
            owner.copy_from_slice(&key[..4]);
            let contract = Hname(u32::from_le_bytes(owner));
            if crate::native::is_core(contract) {
                continue;
            }
            let before = self.before_request_with(key, |v| v.map(<[u8]>::len));
            let delta = size(key, value.as_ref().map(Vec::len)) - size(key, before);
            if delta != 0 {
                *deltas.entry(contract).or_insert(0) += delta;
            }
        }
        self.overlay = overlay;
        deltas.retain(|_, d| *d != 0);
        deltas
    }

    /// Writes (`Some`) or deletes (`None`) a full state key, journaled while a checkpoint is
    /// open: before the first there is nothing to roll back to (a refused or failed request
    /// drops its whole overlay), so the key is not copied into the journal.
    pub fn write(&mut self, key: impl AsRef<[u8]>, value: Option<Vec<u8>>) {
        let key = key.as_ref();
        if self.native {
            self.note_violation(key, true);
        }
        let key = StateKey::from_slice(key);
        if self.checkpoints.is_empty() {
            self.overlay.insert(key, value);
        } else {
            let previous = self.overlay.insert(key.clone(), value);
            self.journal.push((key, previous));
        }
    }

    /// Reads a little-endian `u64` (0 if absent). A value of another length is corruption:
    /// recorded in [`Exec::db_error`], which abandons the block, never read as 0.
    pub fn read_u64(&mut self, key: &[u8]) -> u64 {
        let read = self.read_with(key, |v| match v {
            None => Ok(0),
            Some(v) => <[u8; 8]>::try_from(v)
                .map(u64::from_le_bytes)
                .map_err(|_| v.len()),
        });
        read.unwrap_or_else(|len| {
            self.corrupt(key, &format!("{len} bytes where a u64 belongs"));
            0
        })
    }

    /// Records that the value at `key` is not what the runtime wrote there: the node's state
    /// is corrupt, and the block is abandoned rather than built on a wrong reading.
    fn corrupt(&mut self, key: &[u8], what: &str) {
        self.db_error.get_or_insert(format!(
            "corrupt state: the value at key {} is {what}; restore the data directory from a backup or resync",
            wisp_core::hash::to_hex(key)
        ));
    }

    pub fn write_u64(&mut self, key: impl AsRef<[u8]>, value: u64) {
        self.write(
            key,
            if value == 0 {
                None
            } else {
                Some(value.to_le_bytes().to_vec())
            },
        );
    }

    /// Reads a borsh value the runtime wrote (`None` if absent). A value that does not decode is
    /// corruption: recorded in [`Exec::db_error`], which abandons the block, never read as
    /// absent (a registry read as empty would then be overwritten).
    pub fn read_borsh<T: borsh::BorshDeserialize>(&mut self, key: &[u8]) -> Option<T> {
        let read = self.read_with(key, |v| v.map(borsh::from_slice::<T>));
        match read? {
            Ok(value) => Some(value),
            Err(e) => {
                self.corrupt(key, &format!("not the expected borsh value ({e})"));
                None
            }
        }
    }

    pub fn write_borsh<T: borsh::BorshSerialize>(&mut self, key: impl AsRef<[u8]>, value: &T) {
        let bytes = borsh::to_vec(value).unwrap_or_default();
        self.write(key, Some(bytes));
    }

    pub fn balance_of(&mut self, agent: &AgentId) -> u64 {
        self.read_u64(&keys::balance_key(agent))
    }

    /// Adds newly pegged-in coins (an L1 deposit) to `agent`; the chain's total grows at
    /// block end.
    pub fn mint_deposit(&mut self, agent: &AgentId, amount: u64) {
        let balance = self.balance_of(agent).saturating_add(amount);
        self.write_u64(keys::balance_key(agent), balance);
        self.request_sums.minted = self.request_sums.minted.saturating_add(amount);
    }

    /// Takes `fee_sompi` from `payer` for the chain owner, who is credited at block end (no
    /// owner: nothing is taken). Returns the fee taken: what `payer` holds if less.
    pub fn take_fee(&mut self, payer: &AgentId, fee_sompi: u64) -> u64 {
        if !self.chain_has_owner() {
            return 0;
        }
        self.credit_and_charge(payer, 0, fee_sompi)
    }

    /// Returns `refund_sompi` (the unused part of a fee reservation) to `payer` and takes
    /// `fee_sompi` from it for the chain owner, as [`Exec::take_fee`] does, with one read and
    /// one write of the balance (written even when no fee is taken, for the refund). Returns
    /// the fee taken.
    pub fn refund_and_take_fee(
        &mut self,
        payer: &AgentId,
        refund_sompi: u64,
        fee_sompi: u64,
    ) -> u64 {
        let fee_sompi = if self.chain_has_owner() { fee_sompi } else { 0 };
        self.credit_and_charge(payer, refund_sompi, fee_sompi)
    }

    /// Whether the chain has an owner to collect fees.
    fn chain_has_owner(&mut self) -> bool {
        self.read_with(&keys::chain_owner_key(), |v| v.is_some())
    }

    /// Adds `credit_sompi` to `payer`'s balance, then takes `fee_sompi` (at most what it then
    /// holds) into the block's fees; one read and one write of the balance. Returns the fee
    /// taken.
    fn credit_and_charge(&mut self, payer: &AgentId, credit_sompi: u64, fee_sompi: u64) -> u64 {
        let balance = self.balance_of(payer).saturating_add(credit_sompi);
        let fee = fee_sompi.min(balance);
        self.write_u64(keys::balance_key(payer), balance - fee);
        self.request_sums.fees = self.request_sums.fees.saturating_add(fee);
        fee
    }

    /// Records a storage deposit change of the running request for `contract`'s record,
    /// applied at block end with the request's other writes (dropped if the request is).
    pub fn change_storage_deposit(&mut self, contract: Hname, change: StorageChange) {
        self.request_storage
            .entry(contract)
            .or_default()
            .add(&change);
    }

    /// Block end: credits the chain owner with the block's fees and applies the block's
    /// changes to the chain's total, the anchor fees and each contract's storage deposit
    /// record, in one write each.
    pub fn settle_sums(&mut self) {
        let sums = std::mem::take(&mut self.sums);
        let storage = std::mem::take(&mut self.storage);
        if sums == BlockSums::default() && storage.is_empty() {
            return;
        }
        self.begin_request(None);
        for (contract, change) in storage {
            let key = keys::storage_deposit(contract);
            let (bytes, sompi): (u64, u64) = self.read_borsh(&key).unwrap_or_default();
            // Refunds never exceed what the record and the block's locks hold (see
            // `Chain::settle_storage`), so the saturation only guards the arithmetic.
            let record = (
                bytes
                    .saturating_add(change.added_bytes)
                    .saturating_sub(change.freed_bytes),
                sompi
                    .saturating_add(change.locked_sompi)
                    .saturating_sub(change.refunded_sompi),
            );
            if record == (0, 0) {
                self.write(key, None);
            } else {
                self.write_borsh(key, &record);
            }
        }
        if sums.fees > 0 {
            if let Some(owner) = self.read_borsh::<AgentId>(&keys::chain_owner()) {
                let balance = self.balance_of(&owner).saturating_add(sums.fees);
                self.write_u64(keys::balance_key(&owner), balance);
            }
        }
        if sums.minted > 0 || sums.burned > 0 {
            let total = self
                .read_u64(&keys::total_balance())
                .saturating_add(sums.minted)
                .saturating_sub(sums.burned);
            self.write_u64(keys::total_balance(), total);
        }
        if sums.anchor_fees > 0 {
            let paid = self
                .read_u64(&keys::anchor_fees())
                .saturating_add(sums.anchor_fees);
            self.write_u64(keys::anchor_fees(), paid);
        }
        self.commit_request();
    }

    /// Whether the access list allows touching full state `key` (`write`: writing it). No list,
    /// or the running call's sender's own balance or nonce: allowed.
    pub fn check_state_key(&mut self, key: &[u8], write: bool) -> Result<(), ReceiptError> {
        if self.access.is_none() && self.observed.is_none() {
            return Ok(());
        }
        if let Some(sender) = &self.sender {
            if key == &*keys::balance_key(sender) || key == &*keys::nonce_key(sender) {
                return Ok(());
            }
        }
        let Some((owner, relative)) = key.split_first_chunk::<4>() else {
            return Ok(());
        };
        let contract = Hname(u32::from_le_bytes(*owner));
        if let Some(o) = &mut self.observed {
            o.note(contract, Some(relative), write);
        }
        let Some(list) = &self.access else {
            return Ok(());
        };
        let allowed = if write {
            list.allows_write(contract, relative)
        } else {
            list.allows_read(contract, Some(relative))
        };
        if allowed {
            return Ok(());
        }
        Err(request_error(
            RequestErrorCode::AccessListViolation,
            format!(
                "{} of key 0x{} of contract {contract} is not in the declared access list",
                if write { "write" } else { "read" },
                wisp_core::hash::to_hex(relative)
            ),
        ))
    }

    /// Whether `to` can hold and spend base tokens here: an address, or a deployed WASM
    /// contract of this chain. Core contracts, other chains' agents and hnames with no contract
    /// would lock the coins forever (defect 23 of the hardening review).
    pub fn check_recipient(&mut self, to: &AgentId) -> Result<(), ReceiptError> {
        let AgentId::Contract(id) = to else {
            return Ok(());
        };
        let why = if id.chain != self.chain_id {
            "belongs to another chain"
        } else if crate::native::is_core(id.hname) {
            "is a core contract, which cannot spend base tokens"
        } else if self.code_hash_of(id.hname).is_none() {
            "is not a deployed contract"
        } else {
            return Ok(());
        };
        Err(request_error(
            RequestErrorCode::Unauthorized,
            format!("cannot move base tokens to {to}: it {why}, so they would be locked"),
        ))
    }

    /// Records the first violation of native code (whose reads cannot fail) for its call.
    fn note_violation(&mut self, key: &[u8], write: bool) {
        if self.violation.is_none() {
            if let Err(e) = self.check_state_key(key, write) {
                self.violation = Some(e);
            }
        }
    }

    /// Moves sompi between accounts. Under an access list both balances must be declared
    /// writable (the sender's own is implicit).
    pub fn move_balance(
        &mut self,
        from: &AgentId,
        to: &AgentId,
        amount: u64,
    ) -> Result<(), ReceiptError> {
        if amount == 0 || from == to {
            return Ok(());
        }
        self.check_state_key(&keys::balance_key(from), true)?;
        self.check_state_key(&keys::balance_key(to), true)?;
        self.check_recipient(to)?;
        let from_balance = self.balance_of(from);
        if from_balance < amount {
            return Err(vm_error(
                VmErrorCode::InsufficientBalance,
                format!("{from} holds {from_balance} sompi, less than the {amount} sompi to move"),
            ));
        }
        self.write_u64(keys::balance_key(from), from_balance - amount);
        let to_balance = self.balance_of(to).saturating_add(amount);
        self.write_u64(keys::balance_key(to), to_balance);
        Ok(())
    }

    /// Withdraws `amount` sompi from `from` to the Kaspa pay-to-public-key address of x-only
    /// `key` (peg out): debits amount + [`crate::WITHDRAWAL_FEE_SOMPI`], takes both out of the
    /// chain's total, adds the fee to the anchor fees and appends an outbox entry; returns its
    /// sequence number (`accounts.withdraw`, `withdraw_to_l1`).
    ///
    /// # Errors
    /// `bad_arguments` below [`crate::MIN_WITHDRAWAL_SOMPI`]; `insufficient_balance` (VM
    /// level) if `from` holds less than amount + fee; an access-list violation (under an
    /// access list, `from`'s balance and the outbox, `accounts` keys `o…`, must be writable).
    pub fn withdraw(
        &mut self,
        from: &AgentId,
        key: [u8; 32],
        amount: u64,
    ) -> Result<u64, ReceiptError> {
        if amount < crate::MIN_WITHDRAWAL_SOMPI {
            return Err(request_error(
                RequestErrorCode::BadArguments,
                format!(
                    "a withdrawal is at least {} sompi (1 KAS): smaller outputs cost Kaspa too much storage mass",
                    crate::MIN_WITHDRAWAL_SOMPI
                ),
            ));
        }
        let cost = amount.saturating_add(crate::WITHDRAWAL_FEE_SOMPI);
        let sender = *from;
        self.check_state_key(&keys::balance_key(&sender), true)?;
        // The outbox is shared by every withdrawal: a request that withdraws declares it.
        self.check_state_key(&keys::outbox_next(), true)?;
        let balance = self.balance_of(&sender);
        if balance < cost {
            return Err(vm_error(
                wisp_core::VmErrorCode::InsufficientBalance,
                format!("{sender} holds {balance} sompi, less than the {cost} sompi the withdrawal costs (amount + fee)"),
            ));
        }
        self.write_u64(keys::balance_key(&sender), balance - cost);
        // The total and the anchor fees change at block end (`BlockSums`).
        self.request_sums.burned = self.request_sums.burned.saturating_add(cost);
        self.request_sums.anchor_fees = self
            .request_sums
            .anchor_fees
            .saturating_add(crate::WITHDRAWAL_FEE_SOMPI);
        let seq = self.read_u64(&keys::outbox_next());
        let entry = crate::OutboxEntry {
            seq,
            from: sender,
            to: key,
            amount_sompi: amount,
            block_index: self.block.index,
        };
        self.write_borsh(keys::outbox(seq), &entry);
        self.write_u64(keys::outbox_next(), seq + 1);
        // `accounts.Withdrawal`: the receipt names the outbox entry, so a client can follow it
        // to the Kaspa transaction that pays it.
        self.events.push(Event {
            contract: keys::hnames::accounts(),
            topic: crate::native::WITHDRAWAL_EVENT.into(),
            data: borsh::to_vec(&(seq, AgentId::Address(key), amount)).unwrap_or_default(),
        });
        Ok(seq)
    }

    /// Starts a request: a clean journal and no events; `access` is its declared access list,
    /// copied into the buffers of the last one.
    pub fn begin_request(&mut self, access: Option<&AccessList>) {
        self.overlay.clear();
        self.journal.clear();
        self.checkpoints.clear();
        self.request_sums = BlockSums::default();
        self.request_storage.clear();
        self.events.clear();
        self.set_access(access);
        self.sender = None;
        self.request_id = None;
        self.random_draws = 0;
        self.native = false;
        self.violation = None;
    }

    /// Makes `access` the running request's access list, reusing the buffers of the last one
    /// (a transfer's list is three allocations a copy); `None` keeps them for the next.
    fn set_access(&mut self, access: Option<&AccessList>) {
        let held = self.access.take().or_else(|| self.spare_access.take());
        match access {
            None => self.spare_access = held,
            Some(list) => {
                let mut copy = held.unwrap_or_default();
                copy_accesses(&mut copy.reads, &list.reads);
                copy_accesses(&mut copy.writes, &list.writes);
                self.access = Some(copy);
            }
        }
    }

    /// Keeps the current request's writes for the block; returns its events.
    pub fn commit_request(&mut self) -> Vec<Event> {
        let overlay = std::mem::take(&mut self.overlay);
        self.writes().extend(overlay);
        let request_sums = std::mem::take(&mut self.request_sums);
        self.sums.add(&request_sums);
        let request_storage = std::mem::take(&mut self.request_storage);
        add_storage_changes(&mut self.storage, request_storage);
        self.end_call()
    }

    /// Ends the running request's call, keeping its writes and sums in the request for the
    /// runtime's own writes after it (the fee) and a later [`Exec::commit_request`]: no
    /// journal, access list or sender from here on. Returns the call's events.
    pub fn end_call(&mut self) -> Vec<Event> {
        self.journal.clear();
        self.checkpoints.clear();
        self.set_access(None);
        self.sender = None;
        self.native = false;
        self.violation = None;
        std::mem::take(&mut self.events)
    }

    /// Drops the current request's writes and events.
    pub fn abort_request(&mut self) {
        self.overlay.clear();
        self.request_sums = BlockSums::default();
        self.request_storage.clear();
        self.end_call();
    }

    /// Makes room in the block's writes for `keys` more keys, at most
    /// [`MAX_RESERVED_WRITES`]: a block sized ahead is not rehashed as it grows.
    pub fn reserve_writes(&mut self, keys: usize) {
        self.writes().reserve(keys.min(MAX_RESERVED_WRITES));
    }

    /// Everything this block wrote, for the state commit, in no particular order (each key
    /// once): the store orders the changes by key hash as it takes them, so neither sorting
    /// them nor copying them into a list here is work the block needs.
    pub fn into_changes(self) -> Writes {
        Arc::unwrap_or_clone(self.block_overlay)
    }

    /// The block's writes, to change: in place, since no fork holds them between batches
    /// (a copy otherwise, which only costs time).
    fn writes(&mut self) -> &mut Writes {
        Arc::make_mut(&mut self.block_overlay)
    }

    fn check_read(&mut self, contract: Hname, key: Option<&[u8]>) -> Result<(), ReceiptError> {
        if let Some(o) = &mut self.observed {
            o.note(contract, key, false);
        }
        match &self.access {
            Some(list) if !list.allows_read(contract, key) => Err(request_error(
                RequestErrorCode::AccessListViolation,
                match key {
                    Some(k) => format!("read of key 0x{} of contract {contract} is not in the declared access list", wisp_core::hash::to_hex(k)),
                    None => format!("call of contract {contract} is not in the declared access list"),
                },
            )),
            _ => Ok(()),
        }
    }

    fn check_write(&mut self, contract: Hname, key: &[u8]) -> Result<(), ReceiptError> {
        if let Some(o) = &mut self.observed {
            o.note(contract, Some(key), true);
        }
        match &self.access {
            Some(list) if !list.allows_write(contract, key) => Err(request_error(
                RequestErrorCode::AccessListViolation,
                format!(
                    "write of key 0x{} of contract {contract} is not in the declared write set",
                    wisp_core::hash::to_hex(key)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The registry record of `contract`.
    pub fn contract_record(&mut self, contract: Hname) -> Option<ContractRecord> {
        self.read_borsh(&keys::contract_record_key(contract))
    }

    /// The code hash in a deployed contract's registry record ([`Exec::contract_record`]'s
    /// `code_hash`), without building the record: every call looks it up. The record is checked
    /// whole as decoding it would, so a record that does not decode is corruption here too.
    pub fn code_hash_of(&mut self, contract: Hname) -> Option<Hash32> {
        let key = keys::contract_record_key(contract);
        let read = self.read_with(&key, |v| v.map(record_code_hash));
        match read? {
            Ok(code_hash) => Some(code_hash),
            Err(e) => {
                self.corrupt(&key, &format!("not the expected borsh value ({e})"));
                None
            }
        }
    }

    /// Marks `code_hash` as used in this block (a deploy compiled and paid for it).
    pub fn mark_loaded(&mut self, code_hash: Hash32) {
        self.loaded.insert(code_hash);
    }

    /// The prepared code of a deployed WASM contract, and whether this is the block's first use
    /// of that code (the VM then charges `gas::compile_gas` of its size). A first use that
    /// `gas_left` cannot pay fails with `out_of_gas` before the node compiles anything.
    pub fn module_of(
        &mut self,
        contract: Hname,
        gas_left: u64,
    ) -> Result<(PreparedModule, bool), ReceiptError> {
        let code_hash = self.deployed_code_hash(contract)?;
        let first = !self.loaded.contains(&code_hash);
        // A cached module knows its size: the code is read from state only to compile it.
        if let Some(module) = self.runtime.cached(&code_hash) {
            self.charge_first_use(contract, first, module.shape().code_bytes, gas_left)?;
            self.note_loaded(code_hash, first);
            return Ok((module, first));
        }
        let code = self.code(contract, &code_hash)?;
        self.charge_first_use(contract, first, code.len() as u64, gas_left)?;
        self.note_loaded(code_hash, first);
        let validated = wisp_vm::validate(&code, &self.runtime.vm.config().validation)
            .map_err(|e| request_error(RequestErrorCode::InvalidModule, e.to_string()))?;
        let module = self
            .runtime
            .compile(&validated)
            .map_err(|e| request_error(RequestErrorCode::InvalidModule, e.to_string()))?;
        if !self.simulation {
            self.runtime.insert(module.clone());
        }
        Ok((module, first))
    }

    fn note_loaded(&mut self, code_hash: Hash32, first: bool) {
        self.loaded.insert(code_hash);
        if first {
            self.first_loads.push(code_hash);
        }
    }

    /// The interface embedded in a deployed contract's module, read without compiling it (a
    /// cached module's, or the validated custom section): tools ask for it on every receipt and
    /// event they decode.
    pub fn interface_of(&mut self, contract: Hname) -> Option<ContractInterface> {
        self.interface_source(contract).interface().cloned()
    }

    /// Where a deployed contract's interface is ([`Exec::interface_of`] without the copy: a
    /// cached module is shared, not cloned).
    pub fn interface_source(&mut self, contract: Hname) -> InterfaceSource {
        let Some(code_hash) = self.code_hash_of(contract) else {
            return InterfaceSource::Read(None);
        };
        if let Some(module) = self.runtime.cached(&code_hash) {
            return InterfaceSource::Module(module);
        }
        let read = self.code(contract, &code_hash).ok().and_then(|code| {
            wisp_vm::validate(&code, &self.runtime.vm.config().validation)
                .ok()?
                .interface()
                .cloned()
        });
        InterfaceSource::Read(read)
    }

    /// [`Exec::code_hash_of`], or the error a call of a contract that is not deployed gets.
    fn deployed_code_hash(&mut self, contract: Hname) -> Result<Hash32, ReceiptError> {
        self.code_hash_of(contract)
            .ok_or_else(|| unknown_contract(contract))
    }

    fn code(&mut self, contract: Hname, code_hash: &Hash32) -> Result<Vec<u8>, ReceiptError> {
        self.read(&keys::blob(code_hash)).ok_or_else(|| {
            request_error(
                RequestErrorCode::UnknownContract,
                format!("code {code_hash} of contract {contract} is missing"),
            )
        })
    }

    /// A first use in this block must be payable from `gas_left` before anything is compiled.
    fn charge_first_use(
        &self,
        contract: Hname,
        first: bool,
        code_bytes: u64,
        gas_left: u64,
    ) -> Result<(), ReceiptError> {
        let cost = wisp_vm::gas::compile_gas(code_bytes);
        if first && gas_left < cost {
            return Err(vm_error(
                VmErrorCode::OutOfGas,
                format!("out of gas: the first use of contract {contract}'s code in this block costs {cost} gas"),
            ));
        }
        Ok(())
    }
}

impl Host for Exec {
    fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    fn block(&self) -> BlockContext {
        self.block
    }

    fn random(&mut self) -> Result<[u8; 32], ReceiptError> {
        let unavailable = |why: &str| {
            vm_error(
                wisp_core::VmErrorCode::RandomnessUnavailable,
                format!("no randomness {why}"),
            )
        };
        let id = self
            .request_id
            .ok_or_else(|| unavailable("in a view: only requests draw randomness"))?;
        let seed = self.block.random_seed.ok_or_else(|| {
            unavailable(
                "on this chain: only a committee chain has an unpredictable source \
                 (docs/randomness.md)",
            )
        })?;
        if let Some(observed) = &mut self.observed {
            observed.drew = true;
        }
        let draw = self.random_draws;
        self.random_draws = draw.saturating_add(1);
        Ok(random_value(&seed, &id, draw))
    }

    fn storage_get(
        &mut self,
        contract: Hname,
        key: &[u8],
        value: &mut Vec<u8>,
    ) -> Result<bool, ReceiptError> {
        self.check_read(contract, Some(key))?;
        Ok(keys::with_contract_key(contract, key, |full| {
            self.read_with(full, |v| match v {
                Some(v) => {
                    value.clear();
                    value.extend_from_slice(v);
                    true
                }
                None => false,
            })
        }))
    }

    fn storage_set(
        &mut self,
        contract: Hname,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Result<(), ReceiptError> {
        self.check_write(contract, key)?;
        keys::with_contract_key(contract, key, |full| self.write(full, value));
        Ok(())
    }

    fn balance(&mut self, agent: &AgentId) -> Result<u64, ReceiptError> {
        self.check_state_key(&keys::balance_key(agent), false)?;
        Ok(self.balance_of(agent))
    }

    fn transfer(
        &mut self,
        from: &AgentId,
        to: &AgentId,
        amount_sompi: u64,
    ) -> Result<(), ReceiptError> {
        self.move_balance(from, to, amount_sompi)
    }

    fn withdraw(
        &mut self,
        from: &AgentId,
        to_key: [u8; 32],
        amount_sompi: u64,
    ) -> Result<u64, ReceiptError> {
        ExecState::withdraw(self, from, to_key, amount_sompi)
    }

    fn emit(&mut self, event: Event) {
        self.events.push(event);
    }

    fn load(
        &mut self,
        contract: Hname,
        gas_left: u64,
    ) -> Result<(PreparedModule, bool), ReceiptError> {
        self.check_read(contract, None)?;
        self.module_of(contract, gas_left)
    }

    fn call_core(
        &mut self,
        caller: &AgentId,
        contract: Hname,
        kind: CallKind,
        function: Hname,
        args: &[u8],
        transfer_sompi: u64,
        gas_left: u64,
    ) -> Option<CoreCall> {
        if !crate::native::is_core(contract) {
            return None;
        }
        if transfer_sompi > 0 {
            return Some(CoreCall::Done {
                result: Err(request_error(
                    RequestErrorCode::Unauthorized,
                    format!(
                        "core contract {contract} cannot hold base tokens; call it with no transfer"
                    ),
                )),
                gas_used: 0,
            });
        }
        // The native code runs as its own step of the calling request: what it sets aside for
        // its own checks is restored for the contract that called it.
        let (native, violation) = (self.native, self.violation.take());
        let step =
            crate::native::call_step(self, *caller, contract, kind, function, args, gas_left);
        self.native = native;
        self.violation = violation;
        Some(match step {
            crate::native::NativeStep::Done(outcome) => CoreCall::Done {
                result: outcome.result,
                gas_used: outcome.gas_used,
            },
            crate::native::NativeStep::Run {
                gas_used,
                invocation,
                entry,
                ret,
            } => CoreCall::Run {
                gas_used,
                invocation,
                entry,
                ret,
            },
        })
    }

    fn checkpoint(&mut self) -> Checkpoint {
        self.checkpoints
            .push((self.journal.len(), self.events.len(), self.request_sums));
        Checkpoint(self.checkpoints.len() - 1)
    }

    fn rollback(&mut self, checkpoint: Checkpoint) {
        let Some(&(journal_len, events_len, sums)) = self.checkpoints.get(checkpoint.0) else {
            return;
        };
        self.request_sums = sums;
        while self.journal.len() > journal_len {
            if let Some((key, previous)) = self.journal.pop() {
                match previous {
                    Some(p) => {
                        self.overlay.insert(key, p);
                    }
                    None => {
                        self.overlay.remove(&key);
                    }
                }
            }
        }
        self.events.truncate(events_len);
        self.checkpoints.truncate(checkpoint.0);
    }

    fn log(&mut self, contract: Hname, message: &str) {
        tracing::debug!(target: "wisp::contract", %contract, "{message}");
        self.logs.push((contract, message.to_string()));
    }
}

/// Domain of [`random_value`].
const RANDOM_DOMAIN: &[u8] = b"wisp-random-v1";

/// The `draw`-th value (from 0) that `random` returns to request `request` in a block whose
/// randomness is `seed`: blake2b-256 of a domain tag, the seed, the request id and the draw
/// number. Distinct requests, and distinct draws of one request, get independent values; a
/// request that runs in parallel gets the values it would get sequentially.
pub fn random_value(seed: &[u8; 32], request: &wisp_core::RequestId, draw: u32) -> [u8; 32] {
    wisp_core::hash::blake2b_256_parts(&[RANDOM_DOMAIN, seed, &request.0, &draw.to_le_bytes()]).0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The execution of the first block of a new in-memory chain owned by `owner`.
    fn block_exec(owner: AgentId) -> Exec {
        let genesis = crate::Genesis {
            name: "t".into(),
            owner,
            params: crate::ChainParams::default(),
            timestamp_ms: 0,
            protocol: crate::Protocol::default(),
            anchor: None,
        };
        let chain = crate::Chain::in_memory(&genesis).unwrap();
        chain.exec(BlockContext::default()).unwrap()
    }

    /// The code hash read straight from a record's bytes is the decoded record's, and every
    /// byte string the full decode refuses (cut short anywhere, a byte too many, a name that is
    /// not UTF-8) is refused too: a corrupt record is corruption on the call path as well.
    #[test]
    fn a_records_code_hash_is_read_as_decoding_it_would() {
        let records = [
            ContractRecord {
                name: "token".into(),
                code_hash: Hash32([7; 32]),
                deployer: AgentId::Address([1; 32]),
                deployed_at_block: 12,
            },
            ContractRecord {
                name: String::new(),
                code_hash: Hash32([9; 32]),
                deployer: AgentId::Contract(wisp_core::ContractId {
                    chain: ChainId([2; 32]),
                    hname: Hname(5),
                }),
                deployed_at_block: u64::MAX,
            },
        ];
        for record in &records {
            let bytes = borsh::to_vec(record).unwrap();
            assert_eq!(record_code_hash(&bytes).unwrap(), record.code_hash);
            for cut in 0..bytes.len() {
                assert!(borsh::from_slice::<ContractRecord>(&bytes[..cut]).is_err());
                assert!(record_code_hash(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(borsh::from_slice::<ContractRecord>(&longer).is_err());
            assert!(record_code_hash(&longer).is_err());
        }
        let mut bad_name = borsh::to_vec(&records[0]).unwrap();
        bad_name[4] = 0xff;
        assert!(borsh::from_slice::<ContractRecord>(&bad_name).is_err());
        assert!(record_code_hash(&bad_name).is_err());
        // A name length past the end of the bytes, as large as a u32 goes.
        let mut huge = borsh::to_vec(&records[0]).unwrap();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(borsh::from_slice::<ContractRecord>(&huge).is_err());
        assert!(record_code_hash(&huge).is_err());
    }

    /// A request's access list is copied into the buffers of the one before, whatever the
    /// two look like: each request sees exactly its own list, and none after `None`.
    #[test]
    fn each_request_sees_exactly_its_own_access_list() {
        let mut exec = block_exec(AgentId::Address([1; 32]));
        let access = |c: u32, prefix: Option<&[u8]>| Access {
            contract: Hname(c),
            key_prefix: prefix.map(<[u8]>::to_vec),
        };
        let lists = [
            AccessList {
                reads: vec![access(1, Some(b"long prefix")), access(2, None)],
                writes: vec![
                    access(3, Some(b"abc")),
                    access(4, Some(b"")),
                    access(5, None),
                ],
            },
            AccessList {
                reads: vec![access(6, None)],
                writes: vec![access(7, Some(b"x"))],
            },
            AccessList::default(),
            AccessList {
                reads: vec![
                    access(8, Some(b"r")),
                    access(9, Some(b"s")),
                    access(10, None),
                ],
                writes: vec![access(11, None), access(12, Some(b"a much longer prefix"))],
            },
        ];
        for list in &lists {
            exec.begin_request(Some(list));
            assert_eq!(exec.access.as_ref(), Some(list));
            exec.end_call();
            assert_eq!(exec.access, None);
            exec.begin_request(None);
            assert_eq!(exec.access, None);
        }
        for list in lists.iter().rev() {
            exec.begin_request(Some(list));
            assert_eq!(exec.access.as_ref(), Some(list));
        }
    }

    /// A block sizes its write map from its request count, which its inputs set: the room
    /// made is capped, so a huge count cannot make the node allocate a huge table.
    #[test]
    fn room_made_for_a_blocks_writes_is_capped() {
        let mut exec = block_exec(AgentId::Address([1; 32]));
        exec.reserve_writes(100);
        assert!(exec.block_overlay.capacity() >= 100);
        exec.reserve_writes(usize::MAX);
        let room = exec.block_overlay.capacity();
        assert!(
            (MAX_RESERVED_WRITES..2 * MAX_RESERVED_WRITES).contains(&room),
            "{room}"
        );
    }

    /// Merging forks leaves the block's writes as inserting each fork's writes into them in
    /// turn would (a fork's write, a deletion included, wins over the block's earlier one),
    /// whether a fork's writes or the block's own are the larger map.
    #[test]
    fn merged_forks_win_over_the_blocks_earlier_writes_whichever_map_is_larger() {
        let kv =
            |k: &str, v: Option<&str>| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec()));
        for ours_extra in [0usize, 8] {
            let mut exec = block_exec(AgentId::Address([1; 32]));
            let mut ours: Vec<_> = vec![kv("a", Some("1")), kv("b", Some("1")), kv("e", Some("1"))];
            ours.extend((0..ours_extra).map(|i| kv(&format!("ours{i}"), Some("0"))));
            let theirs = [
                vec![
                    kv("a", Some("2")),
                    kv("e", None),
                    kv("x1", Some("x")),
                    kv("x2", Some("x")),
                ],
                vec![kv("c", Some("3"))],
            ];
            let inline = |writes: &[(Vec<u8>, Option<Vec<u8>>)]| {
                writes
                    .iter()
                    .map(|(k, v)| (StateKey::from_slice(k), v.clone()))
                    .collect::<Vec<_>>()
            };
            exec.writes().extend(inline(&ours));
            let base = exec.shared_writes();
            let forks: Vec<Exec> = theirs
                .iter()
                .map(|writes| {
                    let mut fork = exec.fork(&base);
                    fork.writes().extend(inline(writes));
                    fork.release_base();
                    fork
                })
                .collect();
            drop(base);
            let mut expected: std::collections::BTreeMap<_, _> = ours.into_iter().collect();
            expected.extend(theirs.into_iter().flatten());
            exec.merge(forks);
            let merged: std::collections::BTreeMap<_, _> = exec
                .block_overlay
                .iter()
                .map(|(k, v)| (k.to_vec(), v.clone()))
                .collect();
            assert_eq!(
                merged, expected,
                "{ours_extra} extra writes of the block's own"
            );
        }
    }

    /// Recorded accesses become exact keys while they fit an access list, whole contracts
    /// beyond, and no list when not even one entry per contract fits.
    #[test]
    fn observed_accesses_collapse_to_what_fits_an_access_list() {
        let (a, b) = (Hname::of("a"), Hname::of("b"));
        let mut few = Observed::default();
        few.note(a, Some(b"x"), true);
        few.note(a, Some(b"x"), false);
        few.note(a, Some(b"y"), false);
        few.note(b, None, false);
        let list = few.into_access_list().unwrap();
        let exact = |c: Hname, k: &[u8]| Access {
            contract: c,
            key_prefix: Some(k.to_vec()),
        };
        assert_eq!(list.writes, vec![exact(a, b"x")]);
        assert_eq!(
            list.reads,
            vec![
                exact(a, b"y"),
                Access {
                    contract: b,
                    key_prefix: None
                }
            ]
        );

        let mut many = Observed::default();
        for i in 0..70u32 {
            many.note(a, Some(&i.to_le_bytes()), i % 2 == 0);
            many.note(b, Some(&i.to_le_bytes()), false);
        }
        let whole = many.into_access_list().unwrap();
        let all = |c: Hname| Access {
            contract: c,
            key_prefix: None,
        };
        assert_eq!(whole.writes, vec![all(a)]);
        assert_eq!(whole.reads, vec![all(b)]);

        let mut long_key = Observed::default();
        long_key.note(a, Some(&[7; AccessList::MAX_PREFIX_BYTES + 1]), false);
        assert_eq!(long_key.into_access_list().unwrap().reads, vec![all(a)]);

        let mut contracts = Observed::default();
        for i in 0..=AccessList::MAX_ENTRIES as u32 {
            contracts.note(Hname(i + 1), None, false);
        }
        assert_eq!(contracts.into_access_list(), None);
    }

    /// A registry value the runtime cannot decode is corruption that abandons the block, never
    /// read as absent: read as an empty list, `root.deploy` would have overwritten the list of
    /// every deployed contract with one entry (hardening review: defaults on decode failure).
    #[test]
    fn undecodable_state_is_corruption_not_absence() {
        let mut exec = block_exec(AgentId::Address([1; 32]));
        exec.write(keys::contract_list(), Some(vec![0xff; 3]));
        assert!(exec
            .read_borsh::<Vec<Hname>>(&keys::contract_list())
            .is_none());
        let error = exec.db_error.take().expect("recorded as corruption");
        assert!(error.starts_with("corrupt state"), "{error}");

        exec.write(keys::total_balance(), Some(vec![1, 2, 3]));
        assert_eq!(exec.read_u64(&keys::total_balance()), 0);
        assert!(exec.db_error.is_some());

        // Absent values are simply absent.
        let mut exec = block_exec(AgentId::Address([1; 32]));
        assert!(exec.read_borsh::<Vec<Hname>>(&[9, 9]).is_none());
        assert_eq!(exec.read_u64(&[9, 9]), 0);
        assert!(exec.db_error.is_none());
    }

    /// Requests do not write the chain-wide keys every request would otherwise share (the
    /// owner's balance, the total, the anchor fees): fees, deposits and withdrawals are
    /// summed per block and credited once by `settle_sums`; a request that fails, or a nested
    /// call that is rolled back, leaves nothing in the sums.
    #[test]
    fn chain_wide_sums_are_written_once_at_block_end() {
        let owner = AgentId::Address([1; 32]);
        let mut exec = block_exec(owner);
        let (a, b) = (AgentId::Address([2; 32]), AgentId::Address([3; 32]));
        let shared = [
            keys::balance(&owner),
            keys::total_balance(),
            keys::anchor_fees(),
        ];
        let touched = |exec: &Exec| {
            shared
                .iter()
                .filter(|k| exec.block_overlay.contains_key(k.as_slice()))
                .count()
        };
        for (who, fee) in [(a, 300), (b, 200)] {
            exec.begin_request(None);
            exec.mint_deposit(&who, 10 * crate::MIN_WITHDRAWAL_SOMPI);
            assert_eq!(exec.take_fee(&who, fee), fee);
            exec.commit_request();
        }
        // A withdrawal in a nested call that is rolled back, and one in a failed request.
        exec.begin_request(None);
        let checkpoint = Host::checkpoint(&mut exec);
        exec.withdraw(&a, [7; 32], crate::MIN_WITHDRAWAL_SOMPI)
            .unwrap();
        Host::rollback(&mut exec, checkpoint);
        exec.commit_request();
        exec.begin_request(None);
        exec.withdraw(&b, [7; 32], crate::MIN_WITHDRAWAL_SOMPI)
            .unwrap();
        exec.abort_request();
        // One that stands.
        exec.begin_request(None);
        exec.withdraw(&a, [7; 32], crate::MIN_WITHDRAWAL_SOMPI)
            .unwrap();
        exec.commit_request();
        assert_eq!(touched(&exec), 0, "no request wrote a chain-wide key");

        exec.settle_sums();
        let minted = 20 * crate::MIN_WITHDRAWAL_SOMPI;
        let burned = crate::MIN_WITHDRAWAL_SOMPI + crate::WITHDRAWAL_FEE_SOMPI;
        assert_eq!(exec.balance_of(&owner), 500);
        assert_eq!(exec.read_u64(&keys::total_balance()), minted - burned);
        assert_eq!(
            exec.read_u64(&keys::anchor_fees()),
            crate::WITHDRAWAL_FEE_SOMPI
        );
        assert_eq!(
            exec.balance_of(&a) + exec.balance_of(&b) + exec.balance_of(&owner),
            minted - burned,
            "every sompi is accounted for"
        );
    }

    /// Writes before a request's first checkpoint are not journaled: rolling back to a
    /// checkpoint restores exactly what was there when it was taken, including a key written
    /// before it and overwritten after, and aborting the request drops everything.
    #[test]
    fn rollback_restores_the_state_at_the_checkpoint_and_abort_drops_the_rest() {
        let mut exec = block_exec(AgentId::Address([1; 32]));
        let (k1, k2, k3) = (b"k1".to_vec(), b"k2".to_vec(), b"k3".to_vec());
        exec.begin_request(None);
        exec.write(k1.clone(), Some(b"before".to_vec()));
        exec.write(k2.clone(), Some(b"kept".to_vec()));
        let outer = Host::checkpoint(&mut exec);
        exec.write(k1.clone(), Some(b"after".to_vec()));
        exec.write(k2.clone(), None);
        let inner = Host::checkpoint(&mut exec);
        exec.write(k3.clone(), Some(b"inner".to_vec()));
        Host::rollback(&mut exec, inner);
        assert_eq!(exec.read(&k3), None);
        assert_eq!(exec.read(&k1).as_deref(), Some(&b"after"[..]));
        Host::rollback(&mut exec, outer);
        assert_eq!(exec.read(&k1).as_deref(), Some(&b"before"[..]));
        assert_eq!(exec.read(&k2).as_deref(), Some(&b"kept"[..]));
        assert!(exec.journal.is_empty(), "nothing left to roll back");
        // No checkpoint open again: writes are not journaled, and an abort drops them all.
        exec.write(k3.clone(), Some(b"late".to_vec()));
        assert!(exec.journal.is_empty());
        exec.abort_request();
        for k in [&k1, &k2, &k3] {
            assert_eq!(exec.read(k), None);
        }
    }

    /// Keys up to the inline size and beyond it (held on the heap) are written, journaled,
    /// rolled back, committed and read alike, and each is told from its neighbours one byte
    /// longer or shorter.
    #[test]
    fn keys_inline_or_on_the_heap_behave_alike() {
        let mut exec = block_exec(AgentId::Address([1; 32]));
        let lengths = [
            1,
            INLINE_KEY_BYTES - 1,
            INLINE_KEY_BYTES,
            INLINE_KEY_BYTES + 1,
            300,
        ];
        let key = |len: usize| vec![0x5a; len];
        let value = |len: usize| Some(len.to_le_bytes().to_vec());
        exec.begin_request(None);
        for &len in &lengths {
            exec.write(key(len), value(len));
        }
        let checkpoint = Host::checkpoint(&mut exec);
        for &len in &lengths {
            exec.write(key(len), None);
            assert_eq!(exec.read(&key(len)), None);
        }
        Host::rollback(&mut exec, checkpoint);
        exec.commit_request();
        exec.begin_request(None);
        for &len in &lengths {
            assert_eq!(exec.read(&key(len)), value(len), "a key of {len} bytes");
        }
        let changes = exec.into_changes();
        for &len in &lengths {
            assert_eq!(changes.get(key(len).as_slice()), Some(&value(len)));
        }
        assert_eq!(changes.len(), lengths.len());
    }
}
