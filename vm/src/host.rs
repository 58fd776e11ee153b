//! What the VM needs from the chain: state, balances, events, code of other contracts, and
//! checkpoints for atomic nested calls.

use crate::runtime::{Invocation, PreparedModule};
use wisp_core::{AgentId, CallKind, ChainId, Event, Hname, ReceiptError};

/// Block facts visible to contracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlockContext {
    /// Index of the block being built.
    pub index: u64,
    /// Its timestamp, ms since the Unix epoch, from L1.
    pub timestamp_ms: u64,
    /// The block's randomness (32 bytes), from which the host derives what `random` returns;
    /// `None` where the chain has none (no committee) or in a view.
    pub random_seed: Option<[u8; 32]>,
}

/// Which special entry point a [`CoreCall::Run`] enters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecialEntry {
    /// A new contract's `init` (deploy).
    Init,
    /// An upgraded contract's `migrate` (upgrade).
    Migrate,
}

/// What the host did with a contract's call of one of its core (native) contracts.
#[derive(Debug)]
pub enum CoreCall {
    /// Finished: the result and the gas it used.
    Done {
        /// Return data or the error.
        result: Result<Vec<u8>, ReceiptError>,
        /// Gas used by the core contract.
        gas_used: u64,
    },
    /// The native part (a deploy or an upgrade) is done and used `gas_used`; the VM then runs
    /// `invocation` (the new code's `init` or `migrate`) in the calling request, and the call
    /// returns `ret` if that succeeds.
    Run {
        /// Gas used by the native part.
        gas_used: u64,
        /// What to run.
        invocation: Invocation,
        /// Which door it enters by.
        entry: SpecialEntry,
        /// The core call's return data once it has run.
        ret: Vec<u8>,
    },
}

/// A point in the host's journal to roll back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint(pub usize);

/// The chain runtime's side of execution. Every method is deterministic in the host's state.
/// An `Err` fails the current call with that error (level and code as given).
pub trait Host: 'static {
    /// The chain's id.
    fn chain_id(&self) -> ChainId;
    /// The block being built.
    fn block(&self) -> BlockContext;
    /// Reads `key` of `contract`'s state into `value`, replacing what it held (its capacity is
    /// reused: the VM passes the same buffer call after call), and returns whether the key
    /// exists; if it does not, `value` is left as it was.
    ///
    /// # Errors
    /// E.g. an access outside the request's declared access list.
    fn storage_get(
        &mut self,
        contract: Hname,
        key: &[u8],
        value: &mut Vec<u8>,
    ) -> Result<bool, ReceiptError>;
    /// Writes (`Some`) or deletes (`None`) `key` of `contract`'s state; the value is the
    /// host's to keep.
    ///
    /// # Errors
    /// E.g. an access outside the request's declared access list.
    fn storage_set(
        &mut self,
        contract: Hname,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Result<(), ReceiptError>;
    /// Base-token balance of `agent`, sompi.
    ///
    /// # Errors
    /// E.g. the balance is outside the request's declared access list.
    fn balance(&mut self, agent: &AgentId) -> Result<u64, ReceiptError>;
    /// Moves sompi between accounts.
    ///
    /// # Errors
    /// `insufficient_balance` (VM level) if `from` holds less than `amount_sompi`.
    fn transfer(
        &mut self,
        from: &AgentId,
        to: &AgentId,
        amount_sompi: u64,
    ) -> Result<(), ReceiptError>;
    /// Withdraws `amount_sompi` from `from` to the Kaspa pay-to-public-key address of x-only
    /// `to_key` (peg out): debits the amount and the withdrawal fee and queues an outbox entry;
    /// returns its sequence number.
    ///
    /// # Errors
    /// `insufficient_balance` (VM level) if `from` holds less than amount + fee;
    /// `bad_arguments` below the minimum withdrawal.
    fn withdraw(
        &mut self,
        from: &AgentId,
        to_key: [u8; 32],
        amount_sompi: u64,
    ) -> Result<u64, ReceiptError>;
    /// Records an event of the current request.
    fn emit(&mut self, event: Event);
    /// The prepared code of `contract`, for a cross-contract call, and whether this is the
    /// block's first use of that code (the caller then charges [`crate::gas::compile_gas`]).
    /// A host that would have to compile the code first checks `gas_left` against that charge
    /// before doing the work.
    ///
    /// # Errors
    /// `unknown_contract`, an access-list violation, or `out_of_gas` if `gas_left` cannot pay
    /// the first use.
    fn load(
        &mut self,
        contract: Hname,
        gas_left: u64,
    ) -> Result<(PreparedModule, bool), ReceiptError>;
    /// A contract's call of core contract `contract` (function `function` of `kind`, borsh
    /// `args`, `transfer_sompi` attached) by `caller`, with `gas_left` to spend; `None` if
    /// `contract` is not a core contract (the VM then loads its WASM code). The default: no
    /// core contracts.
    #[allow(clippy::too_many_arguments)]
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
        let _ = (
            caller,
            contract,
            kind,
            function,
            args,
            transfer_sompi,
            gas_left,
        );
        None
    }
    /// The next 32 bytes of the running request's randomness (`wisp::random`): each call
    /// returns a new value, the same on every node.
    ///
    /// # Errors
    /// `randomness_unavailable` (VM level) where the block has no randomness. The default:
    /// never available.
    fn random(&mut self) -> Result<[u8; 32], ReceiptError> {
        Err(ReceiptError {
            level: wisp_core::ErrorLevel::Vm,
            code: wisp_core::VmErrorCode::RandomnessUnavailable.code(),
            message: "this host has no randomness".into(),
        })
    }
    /// Marks the journal (state writes, transfers, events) so a failed nested call can be undone.
    fn checkpoint(&mut self) -> Checkpoint;
    /// Undoes everything recorded after `checkpoint`.
    fn rollback(&mut self, checkpoint: Checkpoint);
    /// A contract's debug line.
    fn log(&mut self, contract: Hname, message: &str);
}
