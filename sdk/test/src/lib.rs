//! The contract-author test harness (IOTA Solo is the model, minus its Docker): contracts run on
//! the same VM and chain runtime as a node, in memory; the one thing simulated is L1 (deposits
//! and block references). Every call is a real block: receipts, events, gas and fees are the
//! node's. Errors stay typed ([`ReceiptError`]: level + stable code), never strings.
//!
//! ```ignore
//! let mut chain = TestChain::new();
//! let alice = chain.new_account(10_000_000_000);
//! let token = chain.deploy(&alice, "token", &wisp_test::contract_wasm("contracts/token"), &("Tok".to_string(), "TOK".to_string(), 18u8, 1_000u128)).unwrap();
//! chain.call(&alice, token, "transfer", &(bob.agent(), 10u128)).unwrap();
//! let balance: u128 = chain.view(token, "balance_of", &(bob.agent(),)).unwrap();
//! ```

use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
pub use wisp_chain::random_value;
use wisp_chain::{
    native, sign_request, verify_signature, BlockInputs, Chain, ChainParams, Genesis, L1Ref,
    OnLedgerBody, OnLedgerRequest,
};
use wisp_core::{blake2b_256, Call, RequestBody, RequestId};
pub use wisp_core::{
    AccessList, AgentId, ChainId, ContractId, ErrorLevel, Event, Hash32, Hname, L1Time, Receipt,
    ReceiptError, ReceiptStatus, RequestErrorCode, TimeLock, VmErrorCode,
    CONTRACT_BAD_ARGUMENTS_CODE, CONTRACT_PANIC_CODE,
};
pub use wisp_sdk::client::ClientError;

/// Default gas budget of harness calls.
pub const DEFAULT_GAS_BUDGET: u64 = 10_000_000;

/// A test account: a secp256k1 key and its agent id.
#[derive(Clone)]
pub struct Account {
    keypair: secp256k1::Keypair,
}

impl Account {
    /// The account's agent id.
    pub fn agent(&self) -> AgentId {
        AgentId::Address(self.keypair.x_only_public_key().0.serialize())
    }

    /// The account's x-only public key (what its `AgentId::Address` holds).
    pub fn x_only_key(&self) -> [u8; 32] {
        self.keypair.x_only_public_key().0.serialize()
    }

    /// A BIP-340 Schnorr signature of the 32-byte `msg` by this account (32 zero bytes of
    /// auxiliary randomness, as Wisp's request signer): what a contract checks with
    /// `env::verify_schnorr`, for tests of approvals collected off-chain.
    pub fn sign_schnorr(&self, msg: &[u8; 32]) -> [u8; 64] {
        secp256k1::SECP256K1
            .sign_schnorr_with_aux_rand(
                &secp256k1::Message::from_digest(*msg),
                &self.keypair,
                &[0u8; 32],
            )
            .serialize()
    }
}

/// A failed call: the typed error and the full receipt (gas, fee).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Level, code and message.
    pub error: ReceiptError,
    /// The receipt of the failed request (boxed: receipts are large).
    pub receipt: Box<Receipt>,
}

impl Failure {
    /// Whether the contract aborted with `code`.
    pub fn is_contract(&self, code: u32) -> bool {
        self.error.level == ErrorLevel::Contract && self.error.code == code
    }
    /// Whether the VM failed with `code`.
    pub fn is_vm(&self, code: VmErrorCode) -> bool {
        self.error.level == ErrorLevel::Vm && self.error.code == code.code()
    }
    /// Whether the runtime rejected the request with `code`.
    pub fn is_request(&self, code: RequestErrorCode) -> bool {
        self.error.level == ErrorLevel::Request && self.error.code == code.code()
    }
}

/// Options of [`TestChain::call_with`].
#[derive(Clone, Debug)]
pub struct CallOptions {
    /// Sompi moved from the caller to the contract with the call.
    pub transfer_sompi: u64,
    /// Gas budget.
    pub gas_budget: u64,
    /// Declared access list.
    pub access_list: Option<AccessList>,
    /// When the request may run (`None`: now). An off-ledger call outside its window is
    /// refused; [`TestChain::call_on_ledger`] makes one that waits.
    pub time_lock: Option<TimeLock>,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            transfer_sompi: 0,
            gas_budget: DEFAULT_GAS_BUDGET,
            access_list: None,
            time_lock: None,
        }
    }
}

/// A saved chain height to [`TestChain::revert`] to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    block: u64,
    daa_score: u64,
}

/// A chain in memory with a simulated L1.
pub struct TestChain {
    chain: Chain,
    owner: Account,
    nonces: BTreeMap<AgentId, u64>,
    daa_score: u64,
    next_key: u64,
    deposit_counter: u64,
    logs: Vec<(Hname, String)>,
    /// What the simulated committee's randomness derives from (`None`: a chain without one).
    random_seed: Option<[u8; 32]>,
}

/// The runtime (engine and compiled modules) every harness chain of the process shares.
fn shared_runtime() -> &'static wisp_chain::SharedRuntime {
    static RUNTIME: OnceLock<wisp_chain::SharedRuntime> = OnceLock::new();
    RUNTIME.get_or_init(wisp_chain::SharedRuntime::new)
}

impl Default for TestChain {
    fn default() -> Self {
        Self::new()
    }
}

fn keypair(seed: u64) -> secp256k1::Keypair {
    let secret = blake2b_256(&[b"wisp-test/key/".as_slice(), &seed.to_le_bytes()].concat());
    // A blake2b output is a valid secret key except with negligible probability.
    #[allow(clippy::expect_used)]
    secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &secret.0)
        .expect("valid secret key")
}

impl TestChain {
    /// A fresh chain whose owner is a deterministic test account, with default parameters
    /// except that it never pays towards anchoring (the harness has no L1 anchor; use
    /// [`TestChain::with_params`] to test the anchor fee).
    pub fn new() -> TestChain {
        Self::with_params(ChainParams {
            anchor_interval_blocks: 0,
            ..ChainParams::default()
        })
    }

    /// A fresh chain with the given governance parameters.
    ///
    /// # Panics
    /// If the in-memory store cannot be created (out of memory).
    pub fn with_params(params: ChainParams) -> TestChain {
        let owner = Account {
            keypair: keypair(0),
        };
        let genesis = Genesis {
            name: "test".into(),
            owner: owner.agent(),
            params,
            timestamp_ms: 1_700_000_000_000,
            protocol: wisp_chain::Protocol::default(),
            anchor: None,
        };
        #[allow(clippy::expect_used)]
        let chain = Chain::in_memory_shared(&genesis, shared_runtime()).expect("in-memory chain");
        TestChain {
            chain,
            owner,
            nonces: BTreeMap::new(),
            daa_score: 0,
            next_key: 1,
            deposit_counter: 0,
            logs: Vec::new(),
            random_seed: Some(blake2b_256(b"wisp-test/random").0),
        }
    }

    /// How many wasmi engines the harness's shared runtime has started so far (a fresh engine
    /// replaces the current one after `wisp_chain::ENGINE_COMPILATIONS` compilations).
    pub fn engine_generations() -> usize {
        shared_runtime().engine_generations()
    }

    /// The underlying runtime (for proofs, blocks, receipts).
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The chain id.
    pub fn chain_id(&self) -> ChainId {
        self.chain.chain_id()
    }

    /// The chain owner's account (receives fees).
    pub fn owner(&self) -> &Account {
        &self.owner
    }

    /// A new account holding `deposit_sompi` on chain (a simulated on-ledger deposit).
    pub fn new_account(&mut self, deposit_sompi: u64) -> Account {
        let account = Account {
            keypair: keypair(self.next_key),
        };
        self.next_key += 1;
        if deposit_sompi > 0 {
            self.deposit(&account, deposit_sompi);
        }
        account
    }

    fn l1(&mut self) -> L1Ref {
        self.daa_score += 1;
        L1Ref {
            block_hash: blake2b_256(&self.daa_score.to_le_bytes()),
            daa_score: self.daa_score,
            timestamp_ms: 1_700_000_000_000 + self.daa_score * 1000,
        }
    }

    /// Sets what the harness's block randomness derives from, as a committee's threshold
    /// signatures would give it: each block's randomness is blake2b-256 of `seed` and the block
    /// index, so a test that picks a seed sees the same `env::random()` values on every run.
    /// `None` makes the chain one without a committee: `env::random()` then fails with
    /// `randomness_unavailable`, as it does on a chain run by one operator. The default is a
    /// fixed seed.
    pub fn set_random_seed(&mut self, seed: Option<[u8; 32]>) {
        self.random_seed = seed;
    }

    /// The randomness block `index` gets under the harness's seed, if any (see
    /// [`TestChain::set_random_seed`]); the `draw`-th `env::random()` of request `id` in that
    /// block returns `wisp_chain::random_value(&randomness, &id, draw)`.
    pub fn block_randomness(&self, index: u64) -> Option<Hash32> {
        self.random_seed
            .map(|seed| blake2b_256(&[seed.as_slice(), &index.to_le_bytes()].concat()))
    }

    fn run_block(&mut self, mut inputs: BlockInputs) -> Vec<Receipt> {
        let next = self.chain.head().map_or(0, |h| h.index + 1);
        inputs.randomness = self.block_randomness(next);
        #[allow(clippy::expect_used)]
        let out = self
            .chain
            .execute_block(inputs)
            .expect("the in-memory store does not fail");
        self.logs.extend(out.logs);
        out.receipts
    }

    /// Credits `amount_sompi` to `account` as an L1 deposit would.
    pub fn deposit(&mut self, account: &Account, amount_sompi: u64) {
        self.deposit_counter += 1;
        let l1 = self.l1();
        let request = OnLedgerRequest {
            l1_tx_id: blake2b_256(
                &[b"deposit".as_slice(), &self.deposit_counter.to_le_bytes()].concat(),
            ),
            index: 0,
            sender: account.agent(),
            deposit_sompi: amount_sompi,
            body: OnLedgerBody::DepositOnly,
        };
        self.run_block(BlockInputs {
            randomness: None,
            l1,
            on_ledger: vec![request],
            off_ledger: vec![],
        });
    }

    /// Mines `n` blocks with no new requests (each advances the block index, the L1 DAA score
    /// by 1 and L1 time by 1 s); returns the receipts they produced (time-locked requests that
    /// came due).
    pub fn advance_blocks(&mut self, n: u64) -> Vec<Receipt> {
        let mut receipts = Vec::new();
        for _ in 0..n {
            let l1 = self.l1();
            receipts.extend(self.run_block(BlockInputs {
                l1,
                ..Default::default()
            }));
        }
        receipts
    }

    /// Moves the simulated L1 clock `daa` DAA scores (and `daa` seconds) ahead without a Wisp
    /// block: the next block's L1 reference jumps, as after a pause in block production.
    pub fn skip_l1(&mut self, daa: u64) {
        self.daa_score += daa;
    }

    /// The L1 DAA score and timestamp (ms) the latest block referred to; each block adds 1 and
    /// 1,000.
    pub fn l1_now(&self) -> (u64, u64) {
        (self.daa_score, 1_700_000_000_000 + self.daa_score * 1000)
    }

    /// Calls entry point `function` of `contract` as an on-ledger request from `from` (as a
    /// Kaspa lane transaction would carry it, crediting `deposit_sompi` first), in a block of its
    /// own; returns the request's id and that block's receipts. A call whose
    /// `options.time_lock` has not come due produces none: it waits in the chain's time-lock
    /// queue and runs in the first block at or after its `not_before`
    /// ([`TestChain::advance_blocks`] returns its receipt).
    pub fn call_on_ledger<A: BorshSerialize>(
        &mut self,
        from: &Account,
        contract: Hname,
        function: &str,
        args: &A,
        deposit_sompi: u64,
        options: &CallOptions,
    ) -> (RequestId, Vec<Receipt>) {
        self.deposit_counter += 1;
        let l1 = self.l1();
        let request = OnLedgerRequest {
            l1_tx_id: blake2b_256(
                &[b"lane tx".as_slice(), &self.deposit_counter.to_le_bytes()].concat(),
            ),
            index: 0,
            sender: from.agent(),
            deposit_sompi,
            body: OnLedgerBody::Call(RequestBody {
                chain: self.chain.chain_id(),
                call: Call {
                    target: contract,
                    entry_point: Hname::of(function),
                    args: borsh::to_vec(args).unwrap_or_default(),
                    transfer_sompi: options.transfer_sompi,
                },
                gas_budget: options.gas_budget,
                access_list: options.access_list.clone(),
                time_lock: options.time_lock,
            }),
        };
        let id = request.id();
        let receipts = self.run_block(BlockInputs {
            randomness: None,
            l1,
            on_ledger: vec![request],
            off_ledger: vec![],
        });
        (id, receipts)
    }

    /// Saves the current height.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            block: self.chain.head().map(|h| h.index).unwrap_or(0),
            daa_score: self.daa_score,
        }
    }

    /// Returns the chain to `snapshot`, dropping later blocks.
    ///
    /// # Panics
    /// If the in-memory store fails.
    pub fn revert(&mut self, snapshot: Snapshot) {
        #[allow(clippy::expect_used)]
        self.chain
            .rollback_to(snapshot.block)
            .expect("in-memory rollback");
        self.daa_score = snapshot.daa_score;
        self.nonces.clear();
    }

    /// Resolves a contract name to its hname (core contracts included).
    pub fn hname(&self, name: &str) -> Hname {
        Hname::of(name)
    }

    /// Deploys `wasm` under `name`, running `init` with `init_args`.
    ///
    /// # Errors
    /// [`Failure`] with the receipt if validation or `init` fails.
    pub fn deploy<A: BorshSerialize>(
        &mut self,
        from: &Account,
        name: &str,
        wasm: &[u8],
        init_args: &A,
    ) -> Result<Hname, Failure> {
        let init = borsh::to_vec(init_args).unwrap_or_default();
        let args = borsh::to_vec(&(name.to_string(), wasm.to_vec(), init)).unwrap_or_default();
        let options = CallOptions {
            gas_budget: 50_000_000,
            ..Default::default()
        };
        let receipt = self.call_raw(from, native_hname("root"), "deploy", args, &options)?;
        Hname::try_from_slice(&receipt.return_data).map_err(|_| Failure {
            error: ReceiptError {
                level: ErrorLevel::Request,
                code: RequestErrorCode::Malformed.code(),
                message: "deploy returned no hname".into(),
            },
            receipt: Box::new(receipt),
        })
    }

    /// Calls entry point `function` of `contract` as `from` (off-ledger, signed, one block).
    ///
    /// # Errors
    /// [`Failure`] with the typed error and receipt.
    pub fn call<A: BorshSerialize>(
        &mut self,
        from: &Account,
        contract: Hname,
        function: &str,
        args: &A,
    ) -> Result<Receipt, Failure> {
        self.call_with(from, contract, function, args, &CallOptions::default())
    }

    /// [`TestChain::call`] with a transfer, gas budget or access list.
    ///
    /// # Errors
    /// [`Failure`] with the typed error and receipt.
    pub fn call_with<A: BorshSerialize>(
        &mut self,
        from: &Account,
        contract: Hname,
        function: &str,
        args: &A,
        options: &CallOptions,
    ) -> Result<Receipt, Failure> {
        let args = borsh::to_vec(args).unwrap_or_default();
        self.call_raw(from, contract, function, args, options)
    }

    /// Calls with pre-encoded argument bytes (to test malformed input).
    ///
    /// # Errors
    /// [`Failure`] with the typed error and receipt.
    pub fn call_raw(
        &mut self,
        from: &Account,
        contract: Hname,
        function: &str,
        args: Vec<u8>,
        options: &CallOptions,
    ) -> Result<Receipt, Failure> {
        let body = RequestBody {
            chain: self.chain.chain_id(),
            call: Call {
                target: contract,
                entry_point: Hname::of(function),
                args,
                transfer_sompi: options.transfer_sompi,
            },
            gas_budget: options.gas_budget,
            access_list: options.access_list.clone(),
            time_lock: options.time_lock,
        };
        let nonce = self.next_nonce(&from.agent());
        let request = sign_request(body, &from.keypair, nonce);
        #[allow(clippy::expect_used)]
        let verified = verify_signature(request).expect("the harness signs correctly");
        let l1 = self.l1();
        let receipts = self.run_block(BlockInputs {
            randomness: None,
            l1,
            on_ledger: vec![],
            off_ledger: vec![verified],
        });
        let Some(receipt) = receipts.into_iter().next() else {
            return Err(Failure {
                error: ReceiptError {
                    level: ErrorLevel::Request,
                    code: RequestErrorCode::BlockGasExhausted.code(),
                    message: "the request did not fit in a block".into(),
                },
                receipt: Box::new(empty_receipt()),
            });
        };
        self.nonces.insert(from.agent(), nonce + 1);
        match receipt.error.clone() {
            None => Ok(receipt),
            Some(error) => Err(Failure {
                error,
                receipt: Box::new(receipt),
            }),
        }
    }

    fn next_nonce(&mut self, agent: &AgentId) -> u64 {
        match self.nonces.get(agent) {
            Some(n) => *n,
            None => self.chain.nonce(agent).unwrap_or(0),
        }
    }

    /// Calls view `function` of `contract` and decodes the result, under the node's view gas
    /// limit ([`wisp_chain::VIEW_GAS_LIMIT`]).
    ///
    /// # Errors
    /// The typed [`ReceiptError`] of a failed view (or `bad_arguments` if the result does not
    /// decode as `R`).
    pub fn view<A: BorshSerialize, R: BorshDeserialize>(
        &self,
        contract: Hname,
        function: &str,
        args: &A,
    ) -> Result<R, ReceiptError> {
        let data = self.view_raw(contract, function, borsh::to_vec(args).unwrap_or_default())?;
        R::try_from_slice(&data).map_err(|e| ReceiptError {
            level: ErrorLevel::Request,
            code: RequestErrorCode::BadArguments.code(),
            message: format!("view result does not decode as the expected type: {e}"),
        })
    }

    /// Calls view `function` of `contract` with argument bytes `args` as given and returns the
    /// result bytes undecoded; otherwise as [`TestChain::view`].
    ///
    /// # Errors
    /// The typed [`ReceiptError`] of a failed view.
    pub fn view_raw(
        &self,
        contract: Hname,
        function: &str,
        args: Vec<u8>,
    ) -> Result<Vec<u8>, ReceiptError> {
        let (data, _gas) = self.chain.view(
            self.owner.agent(),
            contract,
            Hname::of(function),
            args,
            wisp_chain::VIEW_GAS_LIMIT,
        )?;
        Ok(data)
    }

    /// A backend for generated typed clients that calls as `from`, one block per call:
    /// `TokenClient::with_backend(chain.caller(&alice), token).transfer(&to, 250)`.
    pub fn caller<'a>(&'a mut self, from: &Account) -> Caller<'a> {
        Caller {
            chain: self,
            from: from.clone(),
            gas_budget: DEFAULT_GAS_BUDGET,
            last_receipt: None,
        }
    }

    /// On-chain base-token balance of `agent`, sompi.
    pub fn balance(&self, agent: &AgentId) -> u64 {
        self.chain.balance(agent).unwrap_or(0)
    }

    /// Debug lines logged by contracts so far.
    pub fn logs(&self) -> &[(Hname, String)] {
        &self.logs
    }
}

/// Calls of generated typed clients made as one account on a [`TestChain`]
/// ([`TestChain::caller`]); a failure is a [`Failure`] with the receipt.
pub struct Caller<'a> {
    chain: &'a mut TestChain,
    from: Account,
    gas_budget: u64,
    last_receipt: Option<Receipt>,
}

impl Caller<'_> {
    /// Gas budget of each following call (default [`DEFAULT_GAS_BUDGET`]).
    pub fn with_gas_budget(mut self, gas: u64) -> Self {
        self.gas_budget = gas;
        self
    }

    /// The receipt of the last entry-point call, successful or not.
    pub fn last_receipt(&self) -> Option<&Receipt> {
        self.last_receipt.as_ref()
    }

    /// The chain the calls go to.
    pub fn chain(&mut self) -> &mut TestChain {
        self.chain
    }
}

impl wisp_sdk::client::Backend for Caller<'_> {
    type Failure = Failure;

    fn call(
        &mut self,
        contract: Hname,
        function: &str,
        args: &[u8],
        transfer_sompi: u64,
    ) -> Result<Vec<u8>, Failure> {
        let options = CallOptions {
            transfer_sompi,
            gas_budget: self.gas_budget,
            ..Default::default()
        };
        let from = self.from.clone();
        let answer = self
            .chain
            .call_raw(&from, contract, function, args.to_vec(), &options);
        let receipt = match &answer {
            Ok(receipt) => receipt.clone(),
            Err(failure) => (*failure.receipt).clone(),
        };
        let data = receipt.return_data.clone();
        self.last_receipt = Some(receipt);
        answer.map(|_| data)
    }

    fn view(&self, contract: Hname, function: &str, args: &[u8]) -> Result<Vec<u8>, Failure> {
        self.chain
            .view_raw(contract, function, args.to_vec())
            .map_err(|error| Failure {
                error,
                receipt: Box::new(empty_receipt()),
            })
    }

    fn contract_code(failure: &Failure) -> Option<u32> {
        (failure.error.level == ErrorLevel::Contract).then_some(failure.error.code)
    }
}

fn native_hname(name: &str) -> Hname {
    debug_assert!(native::is_core(Hname::of(name)));
    Hname::of(name)
}

fn empty_receipt() -> Receipt {
    Receipt {
        request_id: Hash32::ZERO,
        block_index: 0,
        request_index: 0,
        sender: AgentId::Address([0; 32]),
        status: ReceiptStatus::Failed,
        error: None,
        gas_used: 0,
        fee_sompi: 0,
        storage_locked_sompi: 0,
        storage_refunded_sompi: 0,
        events: vec![],
        return_data: vec![],
    }
}

/// Decodes the events of `receipt` with `topic` as `E`.
pub fn events<E: BorshDeserialize>(receipt: &Receipt, topic: &str) -> Vec<E> {
    receipt
        .events
        .iter()
        .filter(|e| e.topic == topic)
        .filter_map(|e| E::try_from_slice(&e.data).ok())
        .collect()
}

/// Builds the contract crate at `crate_dir` (relative paths are taken from the workspace root)
/// and returns its module bytes; built once per test process.
///
/// # Panics
/// If the build fails: the message says why (missing target, compile errors).
pub fn contract_wasm(crate_dir: &str) -> Vec<u8> {
    static CACHE: OnceLock<Mutex<BTreeMap<String, Vec<u8>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(BTreeMap::new()));
    #[allow(clippy::expect_used)]
    let mut cache = cache.lock().expect("no test panicked while building");
    if let Some(bytes) = cache.get(crate_dir) {
        return bytes.clone();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join(crate_dir);
    let options = wisp_build::BuildOptions {
        quiet: true,
        ..Default::default()
    };
    let path = match wisp_build::build_contract(&dir, &options) {
        Ok(p) => p,
        Err(e) => panic!("building {crate_dir} failed: {e}"),
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => panic!("reading {}: {e}", path.display()),
    };
    cache.insert(crate_dir.to_string(), bytes.clone());
    bytes
}
