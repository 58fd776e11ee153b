//! The Wisp chain runtime: turns ordered requests into blocks (docs/design.md §5).
//!
//! A block takes the on-ledger requests accepted by L1 up to its L1 reference, in L1 order, then
//! off-ledger requests; each request is atomic (all its writes, events and transfers, or none),
//! and its fee is always charged. Core contracts are native; everything else runs in the VM.
//!
//! Invariants:
//! - Same genesis + same block inputs ⇒ same state roots, receipts and block hashes, on every
//!   node and every run (no clock, randomness, float or hash-map iteration feeds a result).
//! - A request is processed at most once: its id is recorded in `blocklog`.
//! - Sum of all on-chain balances + refundable (unclaimed) deposits = sompi deposited (fees
//!   move to the chain owner, not away).

pub mod admission;
pub mod committee;
mod engines;
mod exec;
mod execute;
mod inputs;
pub mod keys;
pub mod native;
pub mod protocol;
mod signing;
pub mod timelock;

pub use committee::{CommitteeRotation, HANDOVER_DELAY};
use engines::Engines;
pub use engines::{ENGINE_COMPILATIONS, MODULE_CACHE_ENTRIES};
pub use exec::{random_value, ContractRecord};

use exec::{request_error, Exec};
pub use execute::{RequestRecord, MAX_BLOCK_REQUESTS, PARALLEL_MIN_BATCH, PLANNING_PAUSE};
pub use inputs::{BlockInputs, BlockOutput, BlockTiming, L1Ref, OnLedgerBody, OnLedgerRequest};
pub use native::WITHDRAWAL_EVENT;
pub use protocol::{Protocol, Upgrade, SUPPORTED_PROTOCOL_VERSION};
pub use signing::{sign_request, verify_signature, verify_signatures, VerifiedRequest};
use std::path::Path;
use std::sync::Arc;
use wisp_core::hash::blake2b_256_parts;
use wisp_core::interface::ContractInterface;
use wisp_core::{
    AgentId, BlockHeader, CallKind, ChainId, ErrorLevel, Event, Hash32, Hname, Receipt,
    ReceiptError, RequestBody, RequestErrorCode, RequestId,
};
use wisp_state::{StateDb, StateProof};
use wisp_vm::{BlockContext, Invocation, VmConfig};

/// What [`Chain::simulate_request`] found.
#[derive(Clone, Debug)]
pub struct Simulation {
    /// The receipt the request would get now (with the access list, when there is one).
    pub receipt: Receipt,
    /// The accesses it makes, as an access list to attach before signing; `None` if they do
    /// not fit one (see [`wisp_core::AccessList::MAX_ENTRIES`]). After a failed call: the
    /// accesses it made before failing.
    pub access_list: Option<wisp_core::AccessList>,
}

/// Errors that stop a block or a query (request failures are receipts, not errors).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The state store failed.
    #[error(transparent)]
    State(#[from] wisp_state::StateError),
    /// A stored record does not decode: the store is damaged (or from an incompatible
    /// version); the message names the record.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// The chain runs a protocol version this software does not implement.
    #[error("block {block} runs protocol version {version}, but this node implements versions up to {supported}; upgrade the node software")]
    UnsupportedProtocol {
        /// The block.
        block: u64,
        /// Its protocol version.
        version: u32,
        /// The newest version this software implements.
        supported: u32,
    },
    /// The data directory belongs to another chain.
    #[error(
        "the data directory holds chain {found}, not {expected}; use another directory or --fresh"
    )]
    WrongChain {
        /// The chain in the directory.
        found: ChainId,
        /// The chain asked for.
        expected: ChainId,
    },
}

/// Result alias of this crate.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;

/// Governance parameters (the `governance` core contract's state).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    borsh::BorshSerialize,
    borsh::BorshDeserialize,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct ChainParams {
    /// Fee per unit of gas, sompi.
    pub gas_price_sompi: u64,
    /// Largest gas budget of one request.
    pub max_request_gas: u64,
    /// Most gas one block spends on off-ledger requests; the rest wait for the next block.
    pub max_block_gas: u64,
    /// L1 chain blocks that must follow a chain block before the node executes the lane
    /// requests it accepted (a reorg shallower than this undoes nothing). 0 follows the tip,
    /// as the devnet does.
    pub l1_confirmations: u64,
    /// Every this many blocks the chain owner pays [`ChainParams::anchor_fee_sompi`] towards
    /// the next anchor transaction on Kaspa (0: never). See `docs/anchor.md`.
    pub anchor_interval_blocks: u64,
    /// Sompi the owner pays per anchoring interval, out of the gas fees it earns: burned from
    /// its balance and the chain's total, and spent by the node as the anchor transaction's L1
    /// fee. Skipped when the owner holds less.
    pub anchor_fee_sompi: u64,
    /// Storage deposit per byte a request adds to contracts' state, sompi: taken from the
    /// request's sender and held for the contract ([`keys::storage_deposit`]); a freed byte
    /// returns to the sender of the request that frees it the smaller of this price and the
    /// record's sompi per byte before the block (NEAR's storage staking). An entry counts its
    /// key, its value and [`STORAGE_ENTRY_OVERHEAD_BYTES`]. 0 turns deposits off.
    pub storage_deposit_sompi_per_byte: u64,
}

/// Bytes an entry of contract storage counts beyond its key and value, for the storage
/// deposit: what keeping it in the authenticated store costs besides its bytes (NEAR counts
/// 40 per record too).
pub const STORAGE_ENTRY_OVERHEAD_BYTES: u64 = 40;

/// Most a storage deposit per byte may be set to, sompi (`governance.set_storage_price`).
pub const MAX_STORAGE_DEPOSIT_SOMPI_PER_BYTE: u64 = 1_000_000;

impl Default for ChainParams {
    fn default() -> Self {
        ChainParams {
            gas_price_sompi: 1,
            max_request_gas: 50_000_000,
            max_block_gas: 1_000_000_000,
            l1_confirmations: 0,
            anchor_interval_blocks: 10,
            anchor_fee_sompi: 2_000_000,
            // 10 KB of contract state locks 0.01 KAS.
            storage_deposit_sompi_per_byte: 100,
        }
    }
}

pub use wisp_core::{MIN_WITHDRAWAL_SOMPI, WITHDRAWAL_FEE_SOMPI};

/// A withdrawal (peg out) waiting in the chain's outbox: the node pays it as an output of an
/// anchor transaction on Kaspa, in `seq` order (`docs/anchor.md`).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct OutboxEntry {
    /// Position in the outbox, from 0.
    pub seq: u64,
    /// Who withdrew (debited on the chain).
    pub from: AgentId,
    /// The x-only key of the Kaspa pay-to-public-key address paid.
    pub to: [u8; 32],
    /// Sompi paid on L1.
    pub amount_sompi: u64,
    /// The block that took the withdrawal.
    pub block_index: u64,
}

/// Gas limit of a view (`wisp_callView`, `TestChain::view`), free to the caller and bounded by
/// this: enough to compile the largest module a request can carry (a view is always its code's
/// first use) and run it.
pub const VIEW_GAS_LIMIT: u64 = 50_000_000;

/// The randomness a simulation (`wisp_simulateRequest`) draws from: the block a request will
/// run in has not got its own yet, so a simulation shows one possible outcome.
pub const SIMULATION_RANDOMNESS: [u8; 32] = [0x5a; 32];

/// What defines a chain. Its [`ChainId`] is the covenant id of its anchor on Kaspa when it has
/// one ([`Genesis::anchor`]), otherwise a hash of the genesis ([`Genesis::chain_id`]).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct Genesis {
    /// A human name.
    pub name: String,
    /// The chain owner (governance rights, receives fees).
    pub owner: AgentId,
    /// Initial governance parameters.
    pub params: ChainParams,
    /// Timestamp of block 0, ms (from L1 at creation).
    pub timestamp_ms: u64,
    /// The protocol (version and VM limits) the chain starts with.
    pub protocol: Protocol,
    /// The covenant id of the chain's anchor on Kaspa (`docs/anchor.md`), when the chain was
    /// born on L1: then it is the chain id, the chain's one identity on L1 and off it.
    pub anchor: Option<[u8; 32]>,
}

impl Genesis {
    /// The anchor's covenant id if the chain has one; otherwise (chains not anchored on
    /// Kaspa: the test harness) blake2b-256("wisp/chain/v1" ‖ borsh(genesis)).
    pub fn chain_id(&self) -> ChainId {
        if let Some(covenant) = self.anchor {
            return ChainId(covenant);
        }
        let bytes = borsh::to_vec(self).unwrap_or_default();
        ChainId(blake2b_256_parts(&[b"wisp/chain/v1", &bytes]).0)
    }
}

/// A VM and its compiled-module cache, shareable between chains of one process (compiled
/// code depends only on the module bytes, never on a chain's state).
#[derive(Clone)]
pub struct SharedRuntime(Arc<Engines>);

impl Default for SharedRuntime {
    fn default() -> Self {
        Self::new()
    }
}

impl SharedRuntime {
    /// A runtime with no compiled code yet; each chain's protocol gives its VM limits.
    pub fn new() -> SharedRuntime {
        SharedRuntime(Arc::new(Engines::new()))
    }

    /// How many wasmi engines this runtime has started: a fresh one replaces the current one
    /// after [`ENGINE_COMPILATIONS`] compilations, freeing the old one's compiled code.
    pub fn engine_generations(&self) -> usize {
        self.0.generations()
    }
}

/// A chain on disk.
pub struct Chain {
    engines: Arc<Engines>,
    db: Arc<StateDb>,
    chain_id: ChainId,
    /// Runs batches of off-ledger requests whose access lists do not conflict at once
    /// (`None`: one at a time). Either way the block is the same, bit for bit.
    workers: Option<Arc<wisp_scheduler::Workers>>,
    /// Smallest batch run on the workers; smaller ones run one request after the other.
    parallel_min_batch: usize,
    /// Requests run without planning after two small batches in a row.
    planning_pause: usize,
    /// Requests executed as members of a batch of more than one, since the chain was opened.
    parallel_requests: std::sync::atomic::AtomicU64,
    /// Parallel batches run again in order because a planned first use of code did not
    /// happen (`Chain::first_use_reruns`).
    first_use_reruns: std::sync::atomic::AtomicU64,
    /// The planner's batch tables, kept from one block to the next so that a block's planning
    /// does not grow them from nothing again (only speed depends on it).
    batch: std::sync::Mutex<wisp_scheduler::Batch>,
    /// The values the last committed block read, as it left them, for the next block's
    /// snapshot (`wisp_state::WarmValues`): keys read block after block are then found in
    /// memory. Taken by the block that executes next; put back when it commits.
    warm: std::sync::Mutex<Option<wisp_state::WarmValues>>,
}

#[derive(Clone)]
pub(crate) struct Request<'a> {
    id: RequestId,
    sender: AgentId,
    body: &'a RequestBody,
    nonce: Option<u64>,
}

impl<'a> Request<'a> {
    /// A signed off-ledger request as the chain executes it.
    fn off_ledger(off: &'a signing::VerifiedRequest) -> Request<'a> {
        Request {
            id: off.id(),
            sender: off.request().sender(),
            body: &off.request().body,
            nonce: Some(off.request().nonce),
        }
    }
}

impl Chain {
    /// Opens the chain stored in `dir`, creating it with `genesis` (block 0) if empty.
    ///
    /// # Errors
    /// [`ChainError::WrongChain`] if `dir` holds another chain; [`ChainError::State`] on I/O.
    pub fn open(dir: &Path, genesis: &Genesis) -> Result<Chain> {
        Self::open_with_cache(dir, genesis, wisp_state::DEFAULT_CACHE_BYTES)
    }

    /// [`Chain::open`] with a state page cache of at most `cache_bytes` bytes
    /// ([`StateDb::open_with_cache`]).
    ///
    /// # Errors
    /// As [`Chain::open`].
    pub fn open_with_cache(dir: &Path, genesis: &Genesis, cache_bytes: usize) -> Result<Chain> {
        std::fs::create_dir_all(dir)
            .map_err(|e| wisp_state::StateError::Db(format!("{}: {e}", dir.display())))?;
        Self::with_db(
            StateDb::open_with_cache(&dir.join("state.redb"), cache_bytes)?,
            genesis,
        )
    }

    /// A chain kept in memory (the contract test harness).
    ///
    /// # Errors
    /// [`ChainError::State`] if the in-memory store cannot be set up.
    pub fn in_memory(genesis: &Genesis) -> Result<Chain> {
        Self::with_db(StateDb::in_memory()?, genesis)
    }

    /// A chain kept in memory that shares `runtime` (engine and compiled modules) with other
    /// chains of the process: the test harness compiles each contract once, not once per test.
    ///
    /// # Errors
    /// [`ChainError::State`] if the in-memory store cannot be set up.
    pub fn in_memory_shared(genesis: &Genesis, runtime: &SharedRuntime) -> Result<Chain> {
        Self::with_runtime(StateDb::in_memory()?, genesis, runtime.0.clone())
    }

    /// Runs blocks with `threads` execution threads (0: one per core; 1: one request at a
    /// time). Off-ledger requests whose declared access lists do not conflict run at once;
    /// blocks, receipts and state roots are the same whatever the number.
    ///
    /// # Errors
    /// [`ChainError::Corrupt`] never; [`ChainError::State`] if the threads cannot be started.
    pub fn set_exec_threads(&mut self, threads: usize) -> Result<()> {
        self.workers = if threads == 1 {
            None
        } else {
            let workers = wisp_scheduler::Workers::new(threads)
                .map_err(|e| wisp_state::StateError::Db(e.to_string()))?;
            (workers.threads() > 1).then(|| Arc::new(workers))
        };
        Ok(())
    }

    /// Runs batches of at least `requests` requests on the workers (default
    /// [`PARALLEL_MIN_BATCH`]; at least 2); smaller batches run one request after the other,
    /// where forking, waking workers and merging would cost more than they overlap. Blocks are
    /// the same either way: tests lower it to drive the parallel path with small blocks.
    pub fn set_parallel_min_batch(&mut self, requests: usize) {
        self.parallel_min_batch = requests.max(2);
    }

    /// After two planned batches in a row came out smaller than the parallel minimum (their
    /// requests conflict), the next `requests` requests of the block run one after the other
    /// without planning (default [`PLANNING_PAUSE`]; 0 plans every request). Blocks are the
    /// same either way; tests set 0 to keep the parallel path busy in small, conflicting blocks.
    pub fn set_planning_pause(&mut self, requests: usize) {
        self.planning_pause = requests;
    }

    /// Turns the VM's instance reuse on (the default) or off: off, every call instantiates its
    /// module afresh. Blocks, receipts and gas are the same either way (tests compare); it
    /// applies to every chain sharing this chain's runtime.
    pub fn set_instance_reuse(&self, on: bool) {
        self.engines.set_instance_reuse(on);
    }

    /// How many state values the next block starts with, read by the last block and carried
    /// past it (`wisp_state::Snapshot::carry`); 0 when that block read more than half of a
    /// snapshot's memo bounds or none was carried. What a block finds there costs no lookup
    /// in the store.
    pub fn carried_values(&self) -> usize {
        execute::lock(&self.warm)
            .as_ref()
            .map_or(0, wisp_state::WarmValues::len)
    }

    /// Requests this chain has executed together with others (members of a batch of more than
    /// one) since it was opened: how much of its work ran in parallel.
    pub fn parallel_requests(&self) -> u64 {
        self.parallel_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Parallel batches this chain ran again in order, since it was opened, because a member
    /// planned as the first user of some code did not load it (it was refused before its
    /// call, say), so the members after it had been charged as if it had: the results are
    /// then those of running the batch in order, at the cost of running it twice.
    pub fn first_use_reruns(&self) -> u64 {
        self.first_use_reruns
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Execution threads blocks run with.
    pub fn exec_threads(&self) -> usize {
        self.workers.as_ref().map_or(1, |w| w.threads())
    }

    fn with_db(db: StateDb, genesis: &Genesis) -> Result<Chain> {
        Self::with_runtime(db, genesis, Arc::new(Engines::new()))
    }

    fn with_runtime(db: StateDb, genesis: &Genesis, engines: Arc<Engines>) -> Result<Chain> {
        let db = Arc::new(db);
        let chain = Chain {
            engines,
            db,
            chain_id: genesis.chain_id(),
            workers: None,
            parallel_min_batch: execute::PARALLEL_MIN_BATCH,
            planning_pause: execute::PLANNING_PAUSE,
            parallel_requests: std::sync::atomic::AtomicU64::new(0),
            first_use_reruns: std::sync::atomic::AtomicU64::new(0),
            batch: std::sync::Mutex::new(wisp_scheduler::Batch::new()),
            warm: std::sync::Mutex::new(None),
        };
        match chain.db.latest_version()? {
            // The head's header, not block 0's: a store restored from a snapshot starts at
            // the snapshot's block.
            Some(head) => {
                let found = chain.db.block(head)?.chain;
                if found != chain.chain_id {
                    return Err(ChainError::WrongChain {
                        found,
                        expected: chain.chain_id,
                    });
                }
            }
            None => chain.write_genesis(genesis)?,
        }
        Ok(chain)
    }

    fn write_genesis(&self, genesis: &Genesis) -> Result<()> {
        if let Err(why) = protocol::check_vm_bounds(&genesis.protocol.vm) {
            return Err(ChainError::Corrupt(format!("the genesis VM limits: {why}")));
        }
        let mut exec = self.exec_with(
            BlockContext {
                index: 0,
                timestamp_ms: genesis.timestamp_ms,
                random_seed: None,
            },
            &genesis.protocol.vm,
        );
        exec.begin_request(None);
        exec.write_borsh(keys::chain_owner(), &genesis.owner);
        exec.write_borsh(keys::params(), &genesis.params);
        exec.write_borsh(keys::protocol(), &genesis.protocol);
        exec.commit_request();
        let changes = exec.into_changes();
        let pending = self.db.prepare(0, changes)?;
        let header = BlockHeader {
            chain: self.chain_id,
            index: 0,
            prev_hash: Hash32::ZERO,
            l1_block: Hash32::ZERO,
            l1_daa_score: 0,
            timestamp_ms: genesis.timestamp_ms,
            state_root: pending.root(),
            receipts_root: BlockHeader::receipts_commitment(&[]),
            events_root: BlockHeader::events_commitment(&[]),
            request_count: 0,
            gas_used: 0,
            protocol_version: genesis.protocol.version,
        };
        self.db.commit(pending, &header, &[], &[])?;
        Ok(())
    }

    /// Execution over the head state under the protocol in force at the head (views,
    /// simulations, interfaces).
    fn exec(&self, block: BlockContext) -> Result<Exec> {
        let protocol = self.protocol()?;
        Ok(self.exec_with(block, &protocol.vm))
    }

    fn exec_with(&self, block: BlockContext, vm: &VmConfig) -> Exec {
        exec::ExecState::new(
            self.engines.current(vm),
            self.db.clone(),
            self.chain_id,
            block,
        )
    }

    /// [`Chain::exec_with`] for the next block: its snapshot starts with the values the
    /// previous block read ([`Chain::warm`]).
    fn exec_for_block(&self, block: BlockContext, vm: &VmConfig) -> Exec {
        let warm = execute::lock(&self.warm).take();
        exec::ExecState::over(
            self.engines.current(vm),
            self.db.clone(),
            self.chain_id,
            block,
            self.db.block_snapshot(warm),
        )
    }

    /// A committed borsh record that must exist and decode.
    fn stored<T: borsh::BorshDeserialize>(&self, key: &[u8], what: &str) -> Result<T> {
        let bytes = self
            .db
            .get(key)?
            .ok_or_else(|| ChainError::Corrupt(format!("the {what} record is missing")))?;
        borsh::from_slice(&bytes)
            .map_err(|e| ChainError::Corrupt(format!("the {what} record: {e}")))
    }

    /// The protocol in force at the head.
    ///
    /// # Errors
    /// [`ChainError::Corrupt`] if the record is missing or does not decode; state I/O.
    pub fn protocol(&self) -> Result<Protocol> {
        self.stored(&keys::protocol(), "protocol")
    }

    /// The scheduled protocol upgrade, if any.
    ///
    /// # Errors
    /// [`ChainError::Corrupt`] if the record does not decode; state I/O.
    pub fn scheduled_upgrade(&self) -> Result<Option<Upgrade>> {
        match self.db.get(&keys::protocol_upgrade())? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ChainError::Corrupt(format!("the upgrade record: {e}"))),
        }
    }

    /// The protocol block `index` (the next block) runs under, and whether it activates there.
    fn protocol_for_block(&self, index: u64) -> Result<(Protocol, bool)> {
        let current = self.protocol()?;
        let (protocol, activates) = match self.scheduled_upgrade()? {
            Some(u) if u.activation_block <= index => (u.protocol, true),
            _ => (current, false),
        };
        if protocol.version > SUPPORTED_PROTOCOL_VERSION {
            return Err(ChainError::UnsupportedProtocol {
                block: index,
                version: protocol.version,
                supported: SUPPORTED_PROTOCOL_VERSION,
            });
        }
        Ok((protocol, activates))
    }

    /// The newest committee epoch at the head: 0 until the chain's first rotation
    /// ([`committee`]).
    ///
    /// # Errors
    /// [`ChainError::State`] on I/O.
    pub fn committee_epoch(&self) -> Result<u64> {
        self.committed_u64(&keys::committee_epoch())
    }

    /// The rotation to committee epoch `epoch` (1 and later), if the chain has had it.
    ///
    /// # Errors
    /// [`ChainError::Corrupt`] if the record does not decode; state I/O.
    pub fn committee_rotation(&self, epoch: u64) -> Result<Option<CommitteeRotation>> {
        match self.db.get(&keys::committee_rotation(epoch))? {
            None => Ok(None),
            Some(bytes) => borsh::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ChainError::Corrupt(format!("the rotation record {epoch}: {e}"))),
        }
    }

    /// The rotation whose committee made block `index`: the newest with `last_block` below
    /// it; `None` for a block of the chain's first committee (epoch 0).
    ///
    /// # Errors
    /// As [`Chain::committee_rotation`].
    pub fn committee_for_block(&self, index: u64) -> Result<Option<CommitteeRotation>> {
        self.newest_rotation(|rotation| rotation.covers(index))
    }

    /// The newest rotation (highest epoch) for which `matches` holds, if any.
    ///
    /// # Errors
    /// As [`Chain::committee_rotation`].
    pub fn newest_rotation(
        &self,
        matches: impl Fn(&CommitteeRotation) -> bool,
    ) -> Result<Option<CommitteeRotation>> {
        let mut epoch = self.committee_epoch()?;
        while epoch > 0 {
            match self.committee_rotation(epoch)? {
                Some(rotation) if matches(&rotation) => return Ok(Some(rotation)),
                _ => epoch -= 1,
            }
        }
        Ok(None)
    }

    /// The chain's id.
    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The state store (for proofs, metadata and the archive).
    pub fn db(&self) -> &StateDb {
        &self.db
    }

    /// The latest committed block.
    ///
    /// # Errors
    /// [`ChainError::State`] on I/O.
    pub fn head(&self) -> Result<BlockHeader> {
        let latest = self.db.latest_version()?.unwrap_or(0);
        Ok(self.db.block(latest)?)
    }

    /// Current governance parameters.
    ///
    /// # Errors
    /// [`ChainError::Corrupt`] if the record is missing or does not decode; state I/O.
    pub fn params(&self) -> Result<ChainParams> {
        self.stored(&keys::params(), "governance parameters")
    }

    /// Base-token balance of `agent` at the head, sompi.
    pub fn balance(&self, agent: &AgentId) -> Result<u64> {
        self.committed_u64(&keys::balance(agent))
    }

    /// Sompi the chain owner has paid towards anchor transactions' L1 fees, in all, at the
    /// head ([`ChainParams::anchor_fee_sompi`]).
    pub fn anchor_fees(&self) -> Result<u64> {
        self.committed_u64(&keys::anchor_fees())
    }

    /// Withdrawals `from_seq..` of the outbox at the head, at most `limit`, in order.
    ///
    /// # Errors
    /// [`ChainError::State`] if storage fails or an entry does not decode.
    pub fn outbox(&self, from_seq: u64, limit: usize) -> Result<Vec<OutboxEntry>> {
        let next = self.committed_u64(&keys::outbox_next())?;
        let mut out = Vec::new();
        for seq in from_seq..next {
            if out.len() >= limit {
                break;
            }
            let bytes = self
                .db
                .get(&keys::outbox(seq))?
                .ok_or_else(|| ChainError::Corrupt(format!("outbox entry {seq} is missing")))?;
            out.push(
                borsh::from_slice(&bytes)
                    .map_err(|e| ChainError::Corrupt(format!("outbox entry {seq}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Sum of all on-chain base-token balances at the head, sompi.
    pub fn total_balance(&self) -> Result<u64> {
        self.committed_u64(&keys::total_balance())
    }

    /// Next off-ledger nonce of `agent` at the head.
    pub fn nonce(&self, agent: &AgentId) -> Result<u64> {
        self.committed_u64(&keys::nonce(agent))
    }

    /// A committed u64 (little-endian) counter; absent means 0.
    fn committed_u64(&self, key: &[u8]) -> Result<u64> {
        Ok(self
            .db
            .get(key)?
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
            .unwrap_or(0))
    }

    /// Whether request `id` has been processed.
    pub fn is_processed(&self, id: &RequestId) -> Result<bool> {
        Ok(self.db.get(&keys::request(id))?.is_some())
    }

    /// Deployed contracts, core first, then in deploy order.
    pub fn contracts(&self) -> Result<Vec<(Hname, String, Option<ContractRecord>)>> {
        let mut out: Vec<(Hname, String, Option<ContractRecord>)> = native::CORE_CONTRACTS
            .iter()
            .map(|n| (Hname::of(n), (*n).to_string(), None))
            .collect();
        let list: Vec<Hname> = self
            .db
            .get(&keys::contract_list())?
            .and_then(|b| borsh::from_slice(&b).ok())
            .unwrap_or_default();
        for h in list {
            let record: Option<ContractRecord> = self
                .db
                .get(&keys::contract_record(h))?
                .and_then(|b| borsh::from_slice(&b).ok());
            if let Some(r) = record {
                out.push((h, r.name.clone(), Some(r)));
            }
        }
        Ok(out)
    }

    /// Finds a contract by hex hname (`0x` + 8 hex digits, tried first) or by name. Deploy
    /// refuses names of that form, so the two can never be confused.
    pub fn resolve_contract(&self, name_or_hname: &str) -> Result<Option<Hname>> {
        let contracts = self.contracts()?;
        if let Some(h) = Hname::from_hex(name_or_hname) {
            return Ok(contracts
                .iter()
                .find(|(c, _, _)| *c == h)
                .map(|(c, _, _)| *c));
        }
        Ok(contracts
            .into_iter()
            .find(|(_, n, _)| n == name_or_hname)
            .map(|(h, _, _)| h))
    }

    /// The interface of a contract (core contracts' are built in), read without compiling it.
    pub fn interface(&self, contract: Hname) -> Result<Option<ContractInterface>> {
        if let Some(i) = native::interface(contract) {
            return Ok(Some(i));
        }
        let mut exec = self.exec(BlockContext::default())?;
        exec.simulation = true;
        Ok(exec.interface_of(contract))
    }

    /// Checks an off-ledger request against the head state before the node queues it: chain,
    /// gas budget, a nonce within [`admission::NONCE_WINDOW`] of the sender's next, and funds
    /// for it on top of what the sender has `queued`. Block execution runs the same checks
    /// ([`admission`]) against the block's state.
    ///
    /// Returns what the request may spend ([`admission::max_spend`], sompi), which the node
    /// counts against the sender's later requests.
    ///
    /// # Errors
    /// The request-level [`ReceiptError`] the request is refused with; `storage_failure` if the state
    /// store fails (the message says so).
    pub fn admit(
        &self,
        request: &VerifiedRequest,
        queued: admission::Queued,
    ) -> std::result::Result<u64, ReceiptError> {
        let storage = |e: ChainError| {
            request_error(
                RequestErrorCode::StorageFailure,
                format!("node storage failed: {e}"),
            )
        };
        let params = self.params().map_err(storage)?;
        let body = &request.request().body;
        admission::check_body(self.chain_id, &params, body)?;
        if body.time_lock.is_some() {
            // Judged against the head's L1 reference; the block that takes it judges again.
            let head = self.head().map_err(storage)?;
            timelock::check(
                body.time_lock.as_ref(),
                head.l1_daa_score,
                head.timestamp_ms,
            )?;
        }
        if self.is_processed(&request.id()).map_err(storage)? {
            return Err(request_error(
                RequestErrorCode::BadNonce,
                "this exact request was already processed (replay)",
            ));
        }
        let sender = request.request().sender();
        let next = self.nonce(&sender).map_err(storage)?;
        admission::check_queue_nonce(request.request().nonce, next)?;
        if queued.count >= admission::NONCE_WINDOW {
            return Err(request_error(
                RequestErrorCode::BadNonce,
                format!(
                    "the sender already has {} requests queued, the most allowed",
                    queued.count
                ),
            ));
        }
        let balance = self.balance(&sender).map_err(storage)?;
        let spend = admission::max_spend(&params, body);
        admission::check_funds(balance, queued.spend_sompi, spend)?;
        Ok(spend)
    }

    /// Runs a view against the head state. Views never change state.
    ///
    /// # Errors
    /// A [`ReceiptError`] as a failed request would get (unknown contract, trap, out of gas...).
    pub fn view(
        &self,
        caller: AgentId,
        contract: Hname,
        function: Hname,
        args: Vec<u8>,
        gas_limit: u64,
    ) -> std::result::Result<(Vec<u8>, u64), ReceiptError> {
        let head = self
            .head()
            .map_err(|e| request_error(RequestErrorCode::StorageFailure, e.to_string()))?;
        let mut exec = self
            .exec(BlockContext {
                index: head.index,
                timestamp_ms: head.timestamp_ms,
                // A view reads state; it draws no randomness (`random` fails in it).
                random_seed: None,
            })
            .map_err(|e| request_error(RequestErrorCode::StorageFailure, e.to_string()))?;
        exec.simulation = true;
        exec.begin_request(None);
        let (_, result, gas) = self.run_call(
            exec,
            caller,
            contract,
            CallKind::View,
            function,
            args,
            0,
            gas_limit,
        );
        result.map(|r| (r, gas))
    }

    /// Executes `request` on top of the head state without committing anything: the receipt it
    /// would get now (for gas estimation). Nonce and signature are not checked.
    pub fn simulate(&self, sender: AgentId, body: &RequestBody) -> Result<Receipt> {
        Ok(self.simulate_with(sender, body, false)?.0)
    }

    /// Simulates `body` as `sender` against the head state, committing nothing, and returns the
    /// access list it needs (recording mode, as Soroban's simulation returns a footprint):
    /// the body runs once without its access list while every state access is recorded, then
    /// once with the recorded list, whose receipt (and exact gas, which counts the list) is
    /// returned. A request that fails without a list returns that receipt and the accesses
    /// made before the failure. The sender's balance and nonce are implicit and never listed.
    /// Beyond 64 entries (or 256-byte keys) a contract's keys collapse into its whole storage.
    ///
    /// # Errors
    /// [`ChainError::State`] if the head state cannot be read.
    pub fn simulate_request(&self, sender: AgentId, body: &RequestBody) -> Result<Simulation> {
        let mut open = body.clone();
        open.access_list = None;
        let (recorded, observed) = self.simulate_with(sender, &open, true)?;
        let access_list = observed.and_then(exec::Observed::into_access_list);
        let declared = match (&access_list, &recorded.error) {
            (Some(list), None) => {
                let mut with_list = body.clone();
                with_list.access_list = Some(list.clone());
                Some(self.simulate_with(sender, &with_list, false)?.0)
            }
            _ => None,
        };
        Ok(match declared {
            Some(receipt) if receipt.error.is_none() => Simulation {
                receipt,
                access_list,
            },
            // Cannot happen if recording saw every access; never hand out a list that fails.
            Some(_) => Simulation {
                receipt: recorded,
                access_list: None,
            },
            None => Simulation {
                receipt: recorded,
                access_list,
            },
        })
    }

    fn simulate_with(
        &self,
        sender: AgentId,
        body: &RequestBody,
        record: bool,
    ) -> Result<(Receipt, Option<exec::Observed>)> {
        let head = self.head()?;
        let mut exec = self.exec(BlockContext {
            index: head.index + 1,
            timestamp_ms: head.timestamp_ms,
            // The next block's randomness is unknown: a simulation draws from a stand-in, so
            // it estimates gas and records the access list of one possible outcome.
            random_seed: Some(SIMULATION_RANDOMNESS),
        })?;
        exec.simulation = true;
        if record {
            exec.observed = Some(exec::Observed::default());
        }
        let params = self.params()?;
        let request = Request {
            id: Hash32::ZERO,
            sender,
            body,
            nonce: None,
        };
        let (_, receipt) = self.execute_request(&mut exec, &params, &request, head.index + 1, 0, 0);
        Ok((receipt, exec.observed.take()))
    }

    #[allow(clippy::too_many_arguments)]
    fn run_call(
        &self,
        exec: Exec,
        caller: AgentId,
        contract: Hname,
        kind: CallKind,
        function: Hname,
        args: Vec<u8>,
        transferred: u64,
        gas_limit: u64,
    ) -> (Exec, std::result::Result<Vec<u8>, ReceiptError>, u64) {
        if native::is_core(contract) {
            let (exec, out) =
                native::call(exec, caller, contract, kind, function, &args, gas_limit);
            return (exec, out.result, out.gas_used);
        }
        let mut exec = exec;
        let (module, first_load) = match exec.module_of(contract, gas_limit) {
            Ok(m) => m,
            Err(e) => {
                let out_of_gas =
                    e.level == ErrorLevel::Vm && e.code == wisp_core::VmErrorCode::OutOfGas.code();
                return (exec, Err(e), if out_of_gas { gas_limit } else { 0 });
            }
        };
        let invocation = Invocation {
            contract,
            module,
            caller,
            kind,
            function,
            args,
            transferred_sompi: transferred,
            first_load,
        };
        let runtime = exec.runtime.clone();
        let (exec, outcome) = runtime.vm.invoke(exec, invocation, gas_limit);
        (exec, outcome.result, outcome.gas_used)
    }

    /// Removes blocks after `index` (devnet revert, L1 reorg).
    ///
    /// # Errors
    /// [`ChainError::State`] on I/O.
    pub fn rollback_to(&self, index: u64) -> Result<()> {
        Ok(self.db.rollback_to(Some(index))?)
    }

    /// Undoes the blocks whose L1 reference a reorg removed (`removed`: chain block hashes that
    /// left Kaspa's selected chain): walks back from the head to the newest block whose L1
    /// reference survives and rolls back to it. Returns `(from, to)` block indexes if anything
    /// was undone. Their requests are executed again when the follower sees them accepted anew.
    ///
    /// # Errors
    /// [`ChainError::State`] on I/O.
    pub fn rollback_l1(&self, removed: &[Hash32]) -> Result<Option<(u64, u64)>> {
        let mut head = self.head()?;
        let from = head.index;
        while head.index > 0 && removed.contains(&head.l1_block) {
            head = self.db.block(head.index - 1)?;
        }
        if head.index == from {
            return Ok(None);
        }
        self.rollback_to(head.index)?;
        Ok(Some((from, head.index)))
    }

    /// `key`'s value at block `index` with a proof against that block's state root.
    ///
    /// # Errors
    /// [`ChainError::State`] if the block is unknown.
    pub fn prove(
        &self,
        key: &[u8],
        index: u64,
    ) -> Result<(Option<Vec<u8>>, StateProof, BlockHeader)> {
        let header = self.db.block(index)?;
        let (value, proof) = self.db.prove(key, index)?;
        Ok((value, proof, header))
    }
}

/// A failed receipt's one-line description (its [`std::fmt::Display`]).
pub fn describe_error(e: &ReceiptError) -> String {
    e.to_string()
}

/// Events of `receipts` (helper for archives and RPC).
pub fn events_of(receipts: &[Receipt]) -> impl Iterator<Item = (&Receipt, &Event)> {
    receipts
        .iter()
        .flat_map(|r| r.events.iter().map(move |e| (r, e)))
}
