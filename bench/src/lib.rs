//! Workloads shared by Wisp's benchmark report (`cargo bench -p wisp-bench`) and the profiling
//! examples: chains set up with funded signing keys, and blocks of token transfers; and the
//! end-to-end load on a devnet ([`devnet`]).

pub mod devnet;

/// The allocator the `wisp` binary runs on ([`wisp_node::allocator`]), so that every benchmark
/// and profiling example measures what a node does; each of their `main`s calls
/// [`wisp_node::allocator::configure`] first, as the binary's does.
#[global_allocator]
static ALLOCATOR: wisp_node::allocator::Allocator = wisp_node::allocator::ALLOCATOR;

use wisp_chain::{sign_request, verify_signature, BlockInputs, Chain, L1Ref, VerifiedRequest};
use wisp_core::{Access, AccessList, AgentId, Call, Hash32, Hname, RequestBody};

/// The share of a block's transfers that go to one hot account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conflict {
    /// Every sender pays an account of its own: no two transfers touch the same balance.
    Independent,
    /// Every other transfer pays the hot account.
    Half,
    /// Every transfer pays the hot account.
    All,
}

/// The agent id of a Schnorr signing key.
pub fn agent(key: &secp256k1::Keypair) -> AgentId {
    AgentId::Address(key.x_only_public_key().0.serialize())
}

/// The state key of `who`'s balance in the token contract (`balances\0` ‖ borsh(AgentId)).
pub fn token_balance_key(who: &AgentId) -> Vec<u8> {
    let mut k = b"balances\0".to_vec();
    k.extend(borsh::to_vec(who).unwrap_or_default());
    k
}

/// The sender of the engine floor's transfers ([`floor`]).
pub const FLOOR_SENDER: AgentId = AgentId::Address([5; 32]);

/// The engine floor: Wisp's VM with a [`MapHost`], the example token prepared on it, and a
/// host whose map gives [`FLOOR_SENDER`] all the tokens there are (and `decimals` = 18), as
/// the report and `examples/profile_floor.rs` run it.
///
/// # Panics
/// If the example token does not compile (a broken build, not an input).
pub fn floor() -> (wisp_vm::Vm<MapHost>, wisp_vm::PreparedModule, MapHost) {
    let vm: wisp_vm::Vm<MapHost> = wisp_vm::Vm::new(wisp_vm::VmConfig::default());
    let module = vm
        .prepare_bytes(&wisp_test::contract_wasm("contracts/token"))
        .expect("the token compiles");
    let mut state = std::collections::BTreeMap::new();
    state.insert(
        token_balance_key(&FLOOR_SENDER),
        borsh::to_vec(&u128::MAX).unwrap_or_default(),
    );
    state.insert(b"decimals".to_vec(), vec![18u8]);
    (vm, module, MapHost(state))
}

/// The engine floor ([`floor`]) on the calling thread: `calls` transfers of 1 token from
/// [`FLOOR_SENDER`] to 100 recipients in turn; returns transfers per second (the set-up not
/// timed).
///
/// # Panics
/// If a transfer fails (a broken build, not an input).
pub fn floor_transfers(calls: usize) -> f64 {
    calls as f64 / floor_run(calls, || ()).as_secs_f64()
}

/// The engine floor on `threads` threads at once, each with a VM and host of its own:
/// `calls` transfers each, all threads starting together once every one is set up; returns
/// the transfers of all threads per second of the wall clock. Against [`floor_transfers`], it
/// shows what the machine gives work that shares nothing.
///
/// # Panics
/// If a transfer fails, or a thread does.
pub fn floor_transfers_on(threads: usize, calls: usize) -> f64 {
    let ready = std::sync::Barrier::new(threads);
    let longest = std::thread::scope(|s| {
        let runs: Vec<_> = (0..threads)
            .map(|_| s.spawn(|| floor_run(calls, || _ = ready.wait())))
            .collect();
        runs.into_iter()
            .map(|r| r.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .max()
            .unwrap_or_default()
    });
    (threads * calls) as f64 / longest.as_secs_f64()
}

/// The time of `calls` floor transfers, timed from after the set-up and `ready`.
fn floor_run(calls: usize, ready: impl FnOnce()) -> std::time::Duration {
    let (vm, module, host) = floor();
    let mut host = Some(host);
    let args: Vec<Vec<u8>> = (0..100)
        .map(|i| borsh::to_vec(&(recipient(i), 1u128)).unwrap_or_default())
        .collect();
    ready();
    let start = std::time::Instant::now();
    for i in 0..calls {
        let invocation = wisp_vm::Invocation {
            contract: Hname::of("token"),
            module: module.clone(),
            caller: FLOOR_SENDER,
            kind: wisp_core::CallKind::Entry,
            function: Hname::of("transfer"),
            args: args[i % 100].clone(),
            transferred_sompi: 0,
            first_load: false,
        };
        let Some(h) = host.take() else { break };
        let (back, outcome) = vm.invoke(h, invocation, 10_000_000);
        host = Some(back);
        if let Err(e) = outcome.result {
            panic!("the floor's transfer {i} failed: {e:?}");
        }
    }
    start.elapsed()
}

/// A chain with the example token deployed and `senders` signing keys that each hold tokens
/// and 1,000 KAS for fees, ready to execute blocks of transfers.
pub struct TransferChain {
    /// The chain (in memory or on disk).
    pub chain: Chain,
    /// The token contract.
    pub token: Hname,
    /// The senders' keys.
    pub keys: Vec<secp256k1::Keypair>,
    nonces: Vec<u64>,
    daa: u64,
}

/// The account only sender `i` pays in blocks without conflicts.
pub fn recipient(i: usize) -> AgentId {
    let mut id = [0xacu8; 32];
    id[..8].copy_from_slice(&(i as u64).to_le_bytes());
    AgentId::Address(id)
}

/// The hot account every conflicting transfer pays.
pub const HOT: AgentId = AgentId::Address([77; 32]);

impl TransferChain {
    /// Sets up the chain in `dir` (or in memory with `None`), executing with `threads` threads.
    ///
    /// # Panics
    /// If the token does not build or a set-up block fails: a broken benchmark, not a result.
    pub fn new(dir: Option<&std::path::Path>, threads: usize, senders: usize) -> TransferChain {
        let key = |i: usize| {
            let mut secret = [9u8; 32];
            secret[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &secret)
                .unwrap_or_else(|e| panic!("key {i}: {e}"))
        };
        let keys: Vec<_> = (0..senders).map(key).collect();
        let genesis = wisp_chain::Genesis {
            name: "bench".into(),
            owner: agent(&key(1_000_000)),
            params: wisp_chain::ChainParams::default(),
            timestamp_ms: 0,
            protocol: wisp_chain::Protocol::default(),
            anchor: None,
        };
        let chain = match dir {
            Some(d) => Chain::open(d, &genesis),
            None => Chain::in_memory(&genesis),
        }
        .unwrap_or_else(|e| panic!("chain: {e}"));
        let mut this = TransferChain {
            chain,
            token: Hname::of("token"),
            keys,
            nonces: vec![0; senders],
            daa: 0,
        };
        let deposits = this
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| wisp_chain::OnLedgerRequest {
                l1_tx_id: Hash32(*blake_index(i)),
                index: 0,
                sender: agent(k),
                deposit_sompi: 1_000 * 100_000_000,
                body: wisp_chain::OnLedgerBody::DepositOnly,
            })
            .collect();
        this.run(deposits, vec![]);
        let code = wisp_test::contract_wasm("contracts/token");
        let init = borsh::to_vec(&("T".to_string(), "T".to_string(), 0u8, u128::MAX / 2))
            .unwrap_or_default();
        let deploy = this.request(
            0,
            Hname::of("root"),
            "deploy",
            borsh::to_vec(&("token".to_string(), code, init)).unwrap_or_default(),
            None,
        );
        this.run(vec![], vec![deploy]);
        for chunk in (1..senders).collect::<Vec<_>>().chunks(1000) {
            let handout = chunk
                .iter()
                .map(|&n| {
                    let to = agent(&this.keys[n]);
                    this.request(
                        0,
                        this.token,
                        "transfer",
                        borsh::to_vec(&(to, u128::MAX / (4 * senders as u128))).unwrap_or_default(),
                        None,
                    )
                })
                .collect();
            this.run(vec![], handout);
        }
        this.chain
            .set_exec_threads(threads)
            .unwrap_or_else(|e| panic!("threads: {e}"));
        this
    }

    /// A signed, verified request from sender `i` with its next nonce and a gas budget of
    /// 50,000,000 (enough to deploy).
    pub fn request(
        &mut self,
        i: usize,
        target: Hname,
        entry: &str,
        args: Vec<u8>,
        access_list: Option<AccessList>,
    ) -> VerifiedRequest {
        self.request_with_budget(i, target, entry, args, access_list, 50_000_000)
    }

    /// [`TransferChain::request`] with the gas budget `gas_budget`.
    pub fn request_with_budget(
        &mut self,
        i: usize,
        target: Hname,
        entry: &str,
        args: Vec<u8>,
        access_list: Option<AccessList>,
        gas_budget: u64,
    ) -> VerifiedRequest {
        let body = RequestBody {
            chain: self.chain.chain_id(),
            call: Call {
                target,
                entry_point: Hname::of(entry),
                args,
                transfer_sompi: 0,
            },
            gas_budget,
            access_list,
            time_lock: None,
        };
        self.nonces[i] += 1;
        verify_signature(sign_request(body, &self.keys[i], self.nonces[i] - 1))
            .unwrap_or_else(|e| panic!("signature: {e:?}"))
    }

    /// One token transfer of 1 unit from every sender, with exact access lists; `conflict`
    /// says how many go to [`HOT`].
    pub fn transfer_block(&mut self, conflict: Conflict) -> Vec<VerifiedRequest> {
        (0..self.keys.len())
            .map(|i| {
                let from = agent(&self.keys[i]);
                let to = match conflict {
                    Conflict::All => HOT,
                    Conflict::Half if i % 2 == 0 => HOT,
                    _ => recipient(i),
                };
                let writes = [from, to]
                    .iter()
                    .map(|who| Access {
                        contract: self.token,
                        key_prefix: Some(token_balance_key(who)),
                    })
                    .collect();
                let token = self.token;
                // A wallet's budget: the simulated gas with a margin (a transfer uses ~1M).
                self.request_with_budget(
                    i,
                    token,
                    "transfer",
                    borsh::to_vec(&(to, 1u128)).unwrap_or_default(),
                    Some(AccessList {
                        reads: vec![],
                        writes,
                    }),
                    3_000_000,
                )
            })
            .collect()
    }

    /// Executes one block of `off_ledger` requests (and `on_ledger` ones) and checks that every
    /// request succeeded.
    ///
    /// # Panics
    /// If the block fails or a request in it does.
    pub fn run(
        &mut self,
        on_ledger: Vec<wisp_chain::OnLedgerRequest>,
        off_ledger: Vec<VerifiedRequest>,
    ) -> wisp_chain::BlockOutput {
        self.daa += 1;
        let count = on_ledger.len() + off_ledger.len();
        let out = self
            .chain
            .execute_block(BlockInputs {
                randomness: None,
                l1: L1Ref {
                    block_hash: Hash32([(self.daa % 251) as u8; 32]),
                    daa_score: self.daa,
                    timestamp_ms: self.daa,
                },
                on_ledger,
                off_ledger,
            })
            .unwrap_or_else(|e| panic!("block: {e}"));
        assert_eq!(out.receipts.len(), count, "every request in the block");
        if let Some(bad) = out.receipts.iter().find(|r| r.error.is_some()) {
            panic!("request failed: {:?}", bad.error);
        }
        out
    }
}

fn blake_index(i: usize) -> Box<[u8; 32]> {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    b[31] = 0xbe;
    Box::new(b)
}

/// Times `run` `reps` times after one warm-up run and returns the median in seconds.
pub fn median_secs(reps: usize, mut run: impl FnMut()) -> f64 {
    run();
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let start = std::time::Instant::now();
            run();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// A state key like the token's balances: 4-byte hname, `balances\0`, 28 bytes of hash.
pub fn state_key(i: u64) -> Vec<u8> {
    [
        b"\x01\x02\x03\x04balances\x00".as_slice(),
        &wisp_core::blake2b_256(&i.to_le_bytes()).0[..28],
    ]
    .concat()
}

/// The smallest host: contract storage in a map, no journal, no balances, no calls between
/// contracts. Enough to time Wisp's VM (engine, gas, host ABI) without the chain runtime.
pub struct MapHost(pub std::collections::BTreeMap<Vec<u8>, Vec<u8>>);

impl wisp_vm::Host for MapHost {
    fn chain_id(&self) -> wisp_core::ChainId {
        wisp_core::ChainId([0; 32])
    }
    fn block(&self) -> wisp_vm::BlockContext {
        wisp_vm::BlockContext::default()
    }
    fn storage_get(
        &mut self,
        _: wisp_core::Hname,
        key: &[u8],
        value: &mut Vec<u8>,
    ) -> Result<bool, wisp_core::ReceiptError> {
        Ok(match self.0.get(key) {
            Some(v) => {
                value.clear();
                value.extend_from_slice(v);
                true
            }
            None => false,
        })
    }
    fn storage_set(
        &mut self,
        _: wisp_core::Hname,
        key: &[u8],
        value: Option<Vec<u8>>,
    ) -> Result<(), wisp_core::ReceiptError> {
        match value {
            Some(v) => self.0.insert(key.to_vec(), v),
            None => self.0.remove(key),
        };
        Ok(())
    }
    fn balance(&mut self, _: &wisp_core::AgentId) -> Result<u64, wisp_core::ReceiptError> {
        Ok(0)
    }
    fn withdraw(
        &mut self,
        _: &wisp_core::AgentId,
        _: [u8; 32],
        _: u64,
    ) -> Result<u64, wisp_core::ReceiptError> {
        Ok(0)
    }
    fn transfer(
        &mut self,
        _: &wisp_core::AgentId,
        _: &wisp_core::AgentId,
        _: u64,
    ) -> Result<(), wisp_core::ReceiptError> {
        Ok(())
    }
    fn emit(&mut self, _: wisp_core::Event) {}
    fn load(
        &mut self,
        _: wisp_core::Hname,
        _: u64,
    ) -> Result<(wisp_vm::PreparedModule, bool), wisp_core::ReceiptError> {
        Err(wisp_core::ReceiptError {
            level: wisp_core::ErrorLevel::Request,
            code: 5,
            message: "no calls in this bench".into(),
        })
    }
    fn checkpoint(&mut self) -> wisp_vm::Checkpoint {
        wisp_vm::Checkpoint(0)
    }
    fn rollback(&mut self, _: wisp_vm::Checkpoint) {}
    fn log(&mut self, _: wisp_core::Hname, _: &str) {}
}

/// A header for state block `version` with state root `root` and nothing else.
pub fn state_header(version: u64, root: Hash32) -> wisp_core::BlockHeader {
    wisp_core::BlockHeader {
        chain: wisp_core::ChainId([0; 32]),
        index: version,
        prev_hash: Hash32::ZERO,
        l1_block: Hash32::ZERO,
        l1_daa_score: 0,
        timestamp_ms: 0,
        state_root: root,
        receipts_root: Hash32::ZERO,
        events_root: Hash32::ZERO,
        request_count: 0,
        gas_used: 0,
        protocol_version: 1,
    }
}

/// The `block=N` argument of the profiling examples among `args` (`what` names the unit in
/// the error): N, or `default` without one.
///
/// # Panics
/// Never; exits the process with status 2 and a message if N is not a positive number.
pub fn block_size_arg(args: &[String], what: &str, default: usize) -> usize {
    match args.iter().find_map(|a| a.strip_prefix("block=")) {
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("block={n}: give the number of {what} per block, e.g. block=500");
                std::process::exit(2);
            }
        },
        None => default,
    }
}

/// Commits `changes` as block `version` of `db` ([`state_header`], no receipts, no
/// metadata): the state benchmarks' unit of work. It goes through `StateDb::commit_block`,
/// the path a chain's blocks take, which hashes the tree on a second thread while the values
/// are written (and on both threads after); returns how long the hashing took.
///
/// # Panics
/// If the store refuses the block: a broken benchmark, not a result.
pub fn commit_state(
    db: &wisp_state::StateDb,
    version: u64,
    changes: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>,
) -> std::time::Duration {
    let (_, hashing) = db
        .commit_block(
            version,
            changes,
            (&[], wisp_state::BlockIndexes::default()),
            &[],
            |root| state_header(version, root),
        )
        .unwrap_or_else(|e| panic!("commit: {e}"));
    hashing
}

/// The state benchmarks' workload on one store: grown to `keys` keys, then blocks of updates,
/// 9 in 10 to existing keys (a xorshift sequence, the same on every run) and 1 in 10 new.
pub struct StateWorkload {
    keys: u64,
    /// The next new key's index.
    next: u64,
    /// The next block's index.
    pub version: u64,
    seed: u64,
}

impl StateWorkload {
    /// Grows `db` (empty) to `keys` keys in blocks of 10,000 inserts, one durable commit each.
    ///
    /// # Panics
    /// If the store refuses a block.
    pub fn load(db: &wisp_state::StateDb, keys: u64) -> StateWorkload {
        let mut w = StateWorkload {
            keys,
            next: 0,
            version: 0,
            seed: 0x9e37_79b9_7f4a_7c15,
        };
        while w.next < keys {
            let n = (keys - w.next).min(10_000);
            let changes = (w.next..w.next + n)
                .map(|i| (state_key(i), Some(i.to_le_bytes().repeat(4))))
                .collect();
            commit_state(db, w.version, changes);
            w.version += 1;
            w.next += n;
        }
        w
    }

    /// The changes of the next block of `updates` updates (its index is [`StateWorkload::version`];
    /// the caller commits it and bumps the version).
    pub fn updates(
        &mut self,
        updates: u64,
    ) -> std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        let block = self.version;
        (0..updates)
            .map(|j| {
                self.seed ^= self.seed << 13;
                self.seed ^= self.seed >> 7;
                self.seed ^= self.seed << 17;
                let k = if j % 10 == 0 {
                    self.next += 1;
                    self.next - 1
                } else {
                    self.seed % self.keys
                };
                (state_key(k), Some((block * 7 + j).to_le_bytes().repeat(4)))
            })
            .collect()
    }
}
