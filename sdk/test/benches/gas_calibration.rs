//! Gas calibration: **nanoseconds per gas unit** of every cost class (host functions, wasm
//! instruction classes, instantiation, compilation), to spot operations whose gas is off by an
//! order of magnitude from the time they take.
//!
//! Method. Every class is a pair of WAT modules deployed on a [`TestChain`] (the real chain
//! runtime, in memory): the *op* module's `ep:run` runs a loop N times whose body exercises the
//! class (unrolled where one operation is tiny), and the *baseline* module is the same module with
//! the same loop minus the operation. Both read N (and a per-call salt) from their arguments.
//! Each call is one harness `call` (one signed request in one block, the node's code path); its
//! wall time is measured around the call and its gas is the receipt's `gas_used`. After a probe
//! that picks N (about [`TARGET_GAS`] gas or [`TARGET_TIME`] per call, whichever is smaller, and
//! never above the class's cap) and one warm-up call of each module, the two modules are called
//! alternately [`REPS`] times (4× as many when the cap keeps the calls short); a class's
//! **marginal** time and gas are the median of the op calls minus the median of the baseline
//! calls. Everything common to both (request decoding, signature check, instantiation, block
//! commit, the loop itself) cancels, so `marginal ns / marginal gas` is what one unit of the
//! operation's own gas buys in time. For instruction classes N counts operations (loop
//! iterations × unroll), and an operation's gas includes the `local.get`/`local.set` around it.
//!
//! Instantiation rows call (cross-contract, N ≤ 60 times: a request may create 64 instances) into
//! a module of a given shape, against a baseline calling a minimal module the same number of
//! times: the marginal gas is the difference of `wisp_vm::gas::instantiate_gas`. Compilation rows
//! deploy a fresh (never cached) module of the given size against deploying a minimal module.
//!
//! How to read it: the `ns/gas` column should be roughly constant if the schedule is consistent.
//! The median over all classes is the machine's gas rate; `ratio` is each class's ns/gas over the
//! median. A row flagged `UNDER` (ratio > 3) takes more than three times the time its gas pays
//! for — underpriced, a denial-of-service risk; `over` (ratio < 1/3) is overcharged. `± ns` is the
//! median absolute deviation of the op calls plus that of the baseline calls: a marginal time not
//! well above it is noise. Gas is deterministic; time depends on the machine and its load.
//!
//! Caveats: the harness's state store is in memory (a node's on-disk store makes reads and
//! commits slower, so storage rows are lower bounds); `storage_set overwrite` rewrites one key
//! within a request, which only touches the request's overlay (the new-key row is the one that
//! pays the state commit per write).
//!
//! Run: `CARGO_TARGET_DIR=$HOME/.cache/wisp/target nice cargo bench -p wisp-test --bench
//! gas_calibration` (prints the table and writes `docs/gas-calibration.md`). Arguments that do
//! not start with `--` filter classes by substring; a filtered run does not write the doc.

use std::fmt::Write as _;
use std::time::{Duration, Instant};
use wisp_core::abi::HOST_FUNCTIONS;
use wisp_test::{Account, CallOptions, Hname, TestChain};

/// Gas budget of every call (the default `max_request_gas`).
const GAS_BUDGET: u64 = 50_000_000;
/// Gas an op call aims for.
const TARGET_GAS: u64 = 20_000_000;
/// Wall time an op call aims for (keeps slow classes short).
const TARGET_TIME: Duration = Duration::from_millis(40);
/// Timed calls of each module per class (after one warm-up call each); four times as many for
/// a class whose cap keeps its calls short.
const REPS: usize = 15;
/// Timed deploys of each module per compilation class.
const DEPLOY_REPS: usize = 7;
/// The command that produces `docs/gas-calibration.md`.
const COMMAND: &str =
    "CARGO_TARGET_DIR=$HOME/.cache/wisp/target nice cargo bench -p wisp-test --bench gas_calibration";

// Linear memory layout of the generated modules (2 pages).
/// Arguments: `n: u32`, `salt: u32`, padding.
const ARGS: u32 = 0;
/// An 8-byte state key: the call's salt, then the loop index.
const KEY: u32 = 8192;
/// One-byte keys: `a` (32-byte value), `b` (4 KiB value), `m` (never written).
const KEY_A: u32 = 8448;
const KEY_B: u32 = 8449;
const KEY_MISS: u32 = 8450;
/// The borsh-encoded `AgentId` of the calling account.
const AGENT: u32 = 8704;
/// Event topic `t`.
const TOPIC: u32 = 8960;
/// Valid signatures ([`signatures`]): Schnorr (message, signature, key), then ECDSA, then
/// Ed25519 over 32 bytes, then Ed25519 over the 4 KiB of zeros at [`VAL`].
const SIGS: u32 = 9216;
/// Offsets within [`SIGS`].
const SCHNORR: u32 = SIGS;
const ECDSA: u32 = SIGS + 128;
const ED25519: u32 = SIGS + 257;
const ED25519_4K: u32 = SIGS + 385;
/// A 4 KiB source buffer (values, event data, hash input).
const VAL: u32 = 16384;
/// A destination buffer (register reads, hashes, chain id).
const OUT: u32 = 32768;
/// Scratch for bulk memory operations (second page).
const SCRATCH: u32 = 65536;

/// Wasm type of an ABI type name.
fn wasm_ty(rust: &str) -> &'static str {
    match rust.trim() {
        "u64" | "i64" => "i64",
        _ => "i32",
    }
}

/// Imports of every host function of the ABI table, as `$name`.
fn imports() -> String {
    let mut out = String::new();
    for f in HOST_FUNCTIONS {
        let params: Vec<&str> = f
            .params
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| wasm_ty(p.split(':').nth(1).unwrap_or("u32")))
            .collect();
        let params = if params.is_empty() {
            String::new()
        } else {
            format!(" (param {})", params.join(" "))
        };
        let result = if f.returns.is_empty() {
            String::new()
        } else {
            format!(" (result {})", wasm_ty(f.returns))
        };
        let _ = writeln!(
            out,
            "  (import \"wisp\" \"{0}\" (func ${0}{params}{result}))",
            f.name
        );
    }
    out
}

/// `bytes` as a WAT string literal.
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// One cost class measured by an op/baseline module pair.
#[derive(Clone)]
struct Class {
    name: String,
    /// Host function it measures, if any (for the coverage check).
    host: Option<&'static str>,
    /// Loop body of the op module.
    op: String,
    /// Loop body of the baseline module.
    base: String,
    /// Operations per loop iteration.
    unroll: u64,
    /// Module items both modules have (functions, tables, globals, `ep:setup`).
    items: String,
    /// Argument bytes of each call (≥ 8).
    args_len: usize,
    /// Most loop iterations per call.
    cap: u64,
    /// Attach N sompi to each call (the contract spends them).
    fund: bool,
    /// Call `ep:setup` with the same arguments (untimed) before each call.
    setup: bool,
}

impl Class {
    fn new(name: &str, op: impl Into<String>) -> Class {
        Class {
            name: name.to_string(),
            host: None,
            op: op.into(),
            base: String::new(),
            unroll: 1,
            items: String::new(),
            args_len: 8,
            cap: 1_000_000,
            fund: false,
            setup: false,
        }
    }
    fn host(name: &str, host: &'static str, op: impl Into<String>) -> Class {
        Class {
            host: Some(host),
            ..Class::new(name, op)
        }
    }
    /// `copies` copies of `snippet` per iteration.
    fn unrolled(name: &str, snippet: &str, copies: u64) -> Class {
        Class {
            unroll: copies,
            ..Class::new(name, snippet.repeat(copies as usize))
        }
    }
    fn base(mut self, base: impl Into<String>) -> Class {
        self.base = base.into();
        self
    }
    fn items(mut self, items: impl Into<String>) -> Class {
        self.items = items.into();
        self
    }
    fn args_len(mut self, len: usize) -> Class {
        self.args_len = len.max(8);
        self
    }
    fn cap(mut self, cap: u64) -> Class {
        self.cap = cap;
        self
    }
}

/// A contract whose `ep:run` runs `body` N times (N and a salt read from its arguments).
fn loop_module(body: &str, items: &str, agent: &[u8]) -> String {
    format!(
        r#"(module
{imports}  (memory (export "memory") 2)
  (data (i32.const {KEY_A}) "abm")
  (data (i32.const {AGENT}) "{agent}")
  (data (i32.const {TOPIC}) "t")
  (data (i32.const {SIGS}) "{sigs}")
  (func (export "ep:init")
    (call $storage_set (i32.const {KEY_A}) (i32.const 1) (i32.const {VAL}) (i32.const 32))
    (call $storage_set (i32.const {KEY_B}) (i32.const 1) (i32.const {VAL}) (i32.const 4096)))
  (func (export "ep:run")
    (local $n i32) (local $salt i32) (local $i i32)
    (local $x i32) (local $y i32) (local $b i32) (local $j i32) (local $p i32) (local $zero i32)
    (local $X i64) (local $Y i64) (local $B i64)
    (drop (call $input))
    (call $register_read (i32.const {ARGS}))
    (local.set $n (i32.load (i32.const {ARGS})))
    (local.set $salt (i32.load (i32.const 4)))
    (i32.store (i32.const {KEY}) (local.get $salt))
    (local.set $x (i32.add (local.get $salt) (i32.const 0x12345679)))
    (local.set $b (i32.const 7))
    (local.set $p (i32.const {VAL}))
    (local.set $X (i64.add (i64.extend_i32_u (local.get $salt)) (i64.const 0x123456789abcdef)))
    (local.set $B (i64.const 13))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $l
{body}
        (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))))
{items})"#,
        imports = imports(),
        agent = wat_bytes(agent),
        sigs = wat_bytes(&signatures()),
    )
}

/// The [`SIGS`] region: valid signatures, so the verify classes time the whole check.
fn signatures() -> Vec<u8> {
    use secp256k1::{Keypair, Message, SecretKey, SECP256K1};
    let secret = SecretKey::from_slice(&[3u8; 32]).expect("a valid secret key");
    let msg = [5u8; 32];
    let mut out = Vec::new();
    // Schnorr: message, signature, x-only key (128 bytes).
    let keypair = Keypair::from_secret_key(SECP256K1, &secret);
    out.extend(msg);
    out.extend(
        SECP256K1
            .sign_schnorr_with_aux_rand(&Message::from_digest(msg), &keypair, &[0; 32])
            .serialize(),
    );
    out.extend(keypair.x_only_public_key().0.serialize());
    // ECDSA: message hash, compact signature, compressed key (129 bytes).
    out.extend(msg);
    out.extend(
        SECP256K1
            .sign_ecdsa(&Message::from_digest(msg), &secret)
            .serialize_compact(),
    );
    out.extend(secp256k1::PublicKey::from_secret_key(SECP256K1, &secret).serialize());
    // Ed25519 over the 32-byte message: message, signature, key (128 bytes); then signature
    // and key over 4 KiB of zeros (96 bytes).
    use ed25519_dalek::Signer as _;
    let ed = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    out.extend(msg);
    out.extend(ed.sign(&msg).to_bytes());
    out.extend(ed.verifying_key().to_bytes());
    out.extend(ed.sign(&[0u8; 4096]).to_bytes());
    out.extend(ed.verifying_key().to_bytes());
    out
}

/// `ep:setup` for `storage_remove`: writes the keys `(salt, i)`, `i < n`, that `ep:run` removes.
fn setup_items() -> String {
    format!(
        r#"  (func (export "ep:setup") (local $n i32) (local $i i32)
    (drop (call $input))
    (call $register_read (i32.const {ARGS}))
    (local.set $n (i32.load (i32.const {ARGS})))
    (i32.store (i32.const {KEY}) (i32.load (i32.const 4)))
    (block $done
      (br_if $done (i32.eqz (local.get $n)))
      (loop $l
        (i32.store (i32.const {key_i}) (local.get $i))
        (call $storage_set (i32.const {KEY}) (i32.const 8) (i32.const {VAL}) (i32.const 32))
        (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))))
"#,
        key_i = KEY + 4
    )
}

/// A minimal callee contract of a given shape: `ep:noop` does nothing.
fn target_module(memory_pages: u32, functions: usize, data_bytes: usize) -> String {
    let mut items = String::new();
    for _ in 0..functions {
        items.push_str("  (func)\n");
    }
    const SEGMENT: usize = 4096;
    let mut offset = 0;
    while offset < data_bytes {
        let len = SEGMENT.min(data_bytes - offset);
        let _ = writeln!(
            items,
            "  (data (i32.const {offset}) \"{}\")",
            "x".repeat(len)
        );
        offset += len;
    }
    format!(
        r#"(module
  (memory (export "memory") {memory_pages})
  (func (export "ep:init"))
  (func (export "ep:noop"))
{items})"#
    )
}

/// A module of about `target_bytes` of code: functions of straight-line arithmetic, branches,
/// loads and stores (never called; deploy compiles them all).
fn code_module(target_bytes: usize) -> Vec<u8> {
    fn with_functions(count: usize) -> Vec<u8> {
        let mut wat = String::from(
            "(module\n  (memory (export \"memory\") 1)\n  (func (export \"ep:init\"))\n",
        );
        for f in 0..count {
            wat.push_str("  (func (param i32 i32) (result i32) (local i32 i32)\n");
            for s in 0..12 {
                let k = (f * 31 + s * 7) % 4000;
                let _ = writeln!(
                    wat,
                    "    (local.set 2 (i32.add (local.get 0) (i32.const {k})))\n\
                     \x20   (local.set 3 (i32.mul (local.get 2) (local.get 1)))\n\
                     \x20   (if (i32.lt_u (local.get 3) (i32.const {k2}))\n\
                     \x20     (then (local.set 0 (i32.xor (local.get 0) (local.get 3))))\n\
                     \x20     (else (local.set 1 (i32.rotl (local.get 1) (local.get 2)))))\n\
                     \x20   (i32.store offset={k} (i32.and (local.get 2) (i32.const 0xff0)) (local.get 3))\n\
                     \x20   (local.set 2 (i32.load offset={k} (i32.and (local.get 3) (i32.const 0xff0))))\n\
                     \x20   (block (br_if 0 (i32.eqz (local.get 2))) (local.set 0 (i32.shr_u (local.get 0) (i32.const 3))))",
                    k2 = k * 977 + 13
                );
            }
            wat.push_str("    (local.get 2))\n");
        }
        wat.push(')');
        wat::parse_str(&wat).expect("generated code module is valid WAT")
    }
    let one = with_functions(1).len();
    let per_function = (with_functions(11).len() - one) / 10;
    let count = target_bytes.saturating_sub(one) / per_function.max(1) + 1;
    with_functions(count)
}

/// `wasm` with a custom section holding `nonce`: a new code hash, so a deploy compiles it again.
fn with_nonce(wasm: &[u8], nonce: u64) -> Vec<u8> {
    let mut out = wasm.to_vec();
    let name = b"nonce";
    out.push(0); // custom section
    out.push((1 + name.len() + 8) as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&nonce.to_le_bytes());
    out
}

/// A measured class.
struct Row {
    name: String,
    n: u64,
    gas: f64,
    ns: f64,
    noise_ns: f64,
}

impl Row {
    fn ns_per_gas(&self) -> f64 {
        if self.gas > 0.0 {
            self.ns / self.gas
        } else {
            f64::NAN
        }
    }
}

fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Median absolute deviation.
fn mad(values: &[f64]) -> f64 {
    let m = median(values);
    let deviations: Vec<f64> = values.iter().map(|v| (v - m).abs()).collect();
    median(&deviations)
}

struct Bench {
    chain: TestChain,
    alice: Account,
    agent_bytes: Vec<u8>,
    salt: u32,
    deployed: u32,
}

impl Bench {
    fn new() -> Bench {
        let mut chain = TestChain::new();
        let alice = chain.new_account(1_000_000_000_000_000);
        let agent_bytes = borsh::to_vec(&alice.agent()).expect("an AgentId encodes");
        Bench {
            chain,
            alice,
            agent_bytes,
            salt: 0,
            deployed: 0,
        }
    }

    fn fresh_name(&mut self) -> String {
        self.deployed += 1;
        format!("calib-{}", self.deployed)
    }

    fn deploy_wat(&mut self, wat: &str) -> Hname {
        let wasm = wat::parse_str(wat).expect("generated module is valid WAT");
        let name = self.fresh_name();
        self.chain
            .deploy(&self.alice, &name, &wasm, &())
            .unwrap_or_else(|f| panic!("deploying {name} failed: {:?}", f.error))
    }

    /// Deploys `wasm` under a fresh name; returns (ns, gas).
    fn timed_deploy(&mut self, wasm: &[u8]) -> (f64, u64) {
        let name = self.fresh_name();
        let init = borsh::to_vec(&()).expect("unit encodes");
        let args = borsh::to_vec(&(name.clone(), wasm.to_vec(), init)).expect("args encode");
        let options = CallOptions {
            gas_budget: GAS_BUDGET,
            ..Default::default()
        };
        let start = Instant::now();
        let result = self
            .chain
            .call_raw(&self.alice, Hname::of("root"), "deploy", args, &options);
        let elapsed = start.elapsed();
        let receipt = result.unwrap_or_else(|f| panic!("deploying {name} failed: {:?}", f.error));
        (elapsed.as_nanos() as f64, receipt.gas_used)
    }

    /// Calls `ep:run` of `contract` with N = `n`; returns (ns, gas).
    fn run(&mut self, class: &Class, contract: Hname, n: u64) -> (f64, u64) {
        self.salt += 1;
        let mut args = Vec::with_capacity(class.args_len);
        args.extend_from_slice(&(n as u32).to_le_bytes());
        args.extend_from_slice(&self.salt.to_le_bytes());
        args.resize(class.args_len, 0);
        let options = CallOptions {
            gas_budget: GAS_BUDGET,
            transfer_sompi: if class.fund { n } else { 0 },
            ..Default::default()
        };
        if class.setup {
            let setup = self
                .chain
                .call_raw(&self.alice, contract, "setup", args.clone(), &options);
            if let Err(f) = setup {
                panic!("{}: setup failed: {:?}", class.name, f.error);
            }
        }
        let start = Instant::now();
        let result = self
            .chain
            .call_raw(&self.alice, contract, "run", args, &options);
        let elapsed = start.elapsed();
        let receipt =
            result.unwrap_or_else(|f| panic!("{}: run failed: {:?}", class.name, f.error));
        (elapsed.as_nanos() as f64, receipt.gas_used)
    }

    fn measure(&mut self, class: &Class) -> Row {
        let op = self.deploy_wat(&loop_module(&class.op, &class.items, &self.agent_bytes));
        let base = self.deploy_wat(&loop_module(&class.base, &class.items, &self.agent_bytes));
        // Pick N: gas per iteration is exact; time per iteration is a rough probe.
        let (_, gas0) = self.run(class, op, 0);
        let probe = class.cap.min(16);
        let (_, gas1) = self.run(class, op, probe);
        let gas_per_iter = (gas1.saturating_sub(gas0) / probe).max(1);
        let mut n = (TARGET_GAS / gas_per_iter).clamp(1, class.cap);
        let probe = (n / 8).max(1);
        let (t0, _) = self.run(class, op, 0);
        let (t1, _) = self.run(class, op, probe);
        let ns_per_iter = (t1 - t0) / probe as f64;
        if ns_per_iter > 0.0 && ns_per_iter * n as f64 > TARGET_TIME.as_nanos() as f64 {
            n = ((TARGET_TIME.as_nanos() as f64 / ns_per_iter) as u64).clamp(1, class.cap);
        }
        self.run(class, base, n);
        self.run(class, op, n);
        let (mut base_t, mut base_g, mut op_t, mut op_g) = (vec![], vec![], vec![], vec![]);
        // A class held below its time target by its cap runs short calls: more of them.
        let reps = if n == class.cap { REPS * 4 } else { REPS };
        for _ in 0..reps {
            let (t, g) = self.run(class, base, n);
            base_t.push(t);
            base_g.push(g as f64);
            let (t, g) = self.run(class, op, n);
            op_t.push(t);
            op_g.push(g as f64);
        }
        Row {
            name: class.name.clone(),
            n: n * class.unroll,
            gas: median(&op_g) - median(&base_g),
            ns: median(&op_t) - median(&base_t),
            noise_ns: mad(&op_t) + mad(&base_t),
        }
    }

    /// Deploys of a fresh `wasm` against deploys of a fresh minimal module.
    fn measure_deploy(&mut self, name: &str, wasm: &[u8], small: &[u8]) -> Row {
        let mut nonce = u64::from(self.deployed) << 20;
        let mut next = |w: &[u8]| {
            nonce += 1;
            with_nonce(w, nonce)
        };
        let (small_w, big_w) = (next(small), next(wasm));
        self.timed_deploy(&small_w);
        self.timed_deploy(&big_w);
        let (mut base_t, mut base_g, mut op_t, mut op_g) = (vec![], vec![], vec![], vec![]);
        for _ in 0..DEPLOY_REPS {
            let (small_w, big_w) = (next(small), next(wasm));
            let (t, g) = self.timed_deploy(&small_w);
            base_t.push(t);
            base_g.push(g as f64);
            let (t, g) = self.timed_deploy(&big_w);
            op_t.push(t);
            op_g.push(g as f64);
        }
        Row {
            name: name.to_string(),
            n: 1,
            gas: median(&op_g) - median(&base_g),
            ns: median(&op_t) - median(&base_t),
            noise_ns: mad(&op_t) + mad(&base_t),
        }
    }
}

/// The host-function classes.
fn host_classes() -> Vec<Class> {
    let key_i = KEY + 4;
    let store_key = format!("(i32.store (i32.const {key_i}) (local.get $i))");
    let mut classes = vec![
        Class::host("input (8 B args)", "input", "(drop (call $input))"),
        Class::host("input (4 KiB args)", "input", "(drop (call $input))").args_len(4096),
        Class::host(
            "register_len",
            "register_len",
            "(drop (call $register_len))",
        ),
        Class::host(
            "register_read (32 B)",
            "register_read",
            format!("(call $register_read (i32.const {OUT}))"),
        )
        .args_len(32),
        Class::host(
            "register_read (4 KiB)",
            "register_read",
            format!("(call $register_read (i32.const {OUT}))"),
        )
        .args_len(4096),
    ];
    for (label, len) in [("32 B", 32), ("4 KiB", 4096)] {
        classes.push(Class::host(
            &format!("set_return ({label})"),
            "set_return",
            format!("(call $set_return (i32.const {VAL}) (i32.const {len}))"),
        ));
    }
    classes.extend([
        Class::host(
            "storage_get hit (32 B value)",
            "storage_get",
            format!("(drop (call $storage_get (i32.const {KEY_A}) (i32.const 1)))"),
        ),
        Class::host(
            "storage_get hit (4 KiB value)",
            "storage_get",
            format!("(drop (call $storage_get (i32.const {KEY_B}) (i32.const 1)))"),
        ),
        Class::host(
            "storage_get miss",
            "storage_get",
            format!("(drop (call $storage_get (i32.const {KEY_MISS}) (i32.const 1)))"),
        ),
    ]);
    for (label, len) in [("32 B", 32), ("4 KiB", 4096)] {
        classes.push(
            Class::host(
                &format!("storage_set new key ({label})"),
                "storage_set",
                format!(
                    "{store_key} (call $storage_set (i32.const {KEY}) (i32.const 8) (i32.const {VAL}) (i32.const {len}))"
                ),
            )
            .base(store_key.clone()),
        );
    }
    for (label, key, len) in [("32 B", KEY_A, 32), ("4 KiB", KEY_B, 4096)] {
        classes.push(Class::host(
            &format!("storage_set overwrite ({label})"),
            "storage_set",
            format!(
                "(call $storage_set (i32.const {key}) (i32.const 1) (i32.const {VAL}) (i32.const {len}))"
            ),
        ));
    }
    let mut remove = Class::host(
        "storage_remove (existing key)",
        "storage_remove",
        format!("{store_key} (call $storage_remove (i32.const {KEY}) (i32.const 8))"),
    )
    .base(store_key)
    .items(setup_items())
    .cap(6_000);
    remove.setup = true;
    classes.push(remove);
    classes.extend([
        Class::host("caller", "caller", "(drop (call $caller))"),
        Class::host("self_hname", "self_hname", "(drop (call $self_hname))"),
        Class::host(
            "chain_id",
            "chain_id",
            format!("(call $chain_id (i32.const {OUT}))"),
        ),
        Class::host("block_index", "block_index", "(drop (call $block_index))"),
        Class::host(
            "block_timestamp_ms",
            "block_timestamp_ms",
            "(drop (call $block_timestamp_ms))",
        ),
        Class::host(
            "transferred_sompi",
            "transferred_sompi",
            "(drop (call $transferred_sompi))",
        ),
        Class::host(
            "balance_sompi",
            "balance_sompi",
            format!("(drop (call $balance_sompi (i32.const {AGENT}) (i32.const 33)))"),
        ),
    ]);
    let mut transfer = Class::host(
        "transfer_sompi (to an address)",
        "transfer_sompi",
        format!("(call $transfer_sompi (i32.const {AGENT}) (i32.const 33) (i64.const 1))"),
    );
    transfer.fund = true;
    classes.push(transfer);
    // Caps keep the receipts and the harness's log buffer (kept for the whole run) small.
    for (label, len, cap) in [("32 B", 32, 50_000), ("4 KiB", 4096, 2_000)] {
        classes.push(Class::host(
            &format!("emit_event ({label} data)"),
            "emit_event",
            format!(
                "(call $emit_event (i32.const {TOPIC}) (i32.const 1) (i32.const {VAL}) (i32.const {len}))"
            ),
        ).cap(cap));
    }
    for (label, len, cap) in [("32 B", 32, 50_000), ("4 KiB", 4096, 2_000)] {
        classes.push(
            Class::host(
                &format!("log ({label})"),
                "log",
                format!("(call $log (i32.const {VAL}) (i32.const {len}))"),
            )
            .cap(cap),
        );
    }
    for (label, len) in [("32 B", 32), ("4 KiB", 4096)] {
        classes.push(Class::host(
            &format!("blake2b_256 ({label})"),
            "blake2b_256",
            format!("(call $blake2b_256 (i32.const {VAL}) (i32.const {len}) (i32.const {OUT}))"),
        ));
    }
    classes.push(Class::host(
        "gas_left",
        "gas_left",
        "(drop (call $gas_left))",
    ));
    // Each verification must succeed (1): a failed check would time a different path.
    let checked = |call: String| format!("(if (i32.eqz {call}) (then unreachable))");
    classes.push(
        Class::host(
            "verify_schnorr",
            "verify_schnorr",
            checked(format!(
                "(call $verify_schnorr (i32.const {SCHNORR}) (i32.const {}) (i32.const {}))",
                SCHNORR + 32,
                SCHNORR + 96
            )),
        )
        .cap(400),
    );
    classes.push(
        Class::host(
            "verify_ecdsa",
            "verify_ecdsa",
            checked(format!(
                "(call $verify_ecdsa (i32.const {ECDSA}) (i32.const {}) (i32.const {}))",
                ECDSA + 32,
                ECDSA + 96
            )),
        )
        .cap(400),
    );
    classes.push(
        Class::host(
            "verify_ed25519 (32 B)",
            "verify_ed25519",
            checked(format!(
                "(call $verify_ed25519 (i32.const {ED25519}) (i32.const 32) (i32.const {}) (i32.const {}))",
                ED25519 + 32,
                ED25519 + 96
            )),
        )
        .cap(400),
    );
    classes.push(
        Class::host(
            "verify_ed25519 (4 KiB)",
            "verify_ed25519",
            checked(format!(
                "(call $verify_ed25519 (i32.const {VAL}) (i32.const 4096) (i32.const {ED25519_4K}) (i32.const {}))",
                ED25519_4K + 64
            )),
        )
        .cap(400),
    );
    classes
}

/// Cross-contract calls: `call` itself, then instantiation by module shape.
fn call_classes(targets: &[(String, Hname)]) -> Vec<Class> {
    let noop = Hname::of("noop").0 as i32;
    let call_to = |target: Hname| {
        format!(
            "(drop (call $call (i32.const 0) (i32.const {}) (i32.const {noop}) (i32.const 0) (i32.const 0) (i64.const 0)))",
            target.0 as i32
        )
    };
    let mut classes = Vec::new();
    let Some((_, small)) = targets.first() else {
        return classes;
    };
    classes.push(Class::host("call (trivial callee)", "call", call_to(*small)).cap(60));
    for (name, target) in &targets[1..] {
        classes.push(
            Class::new(
                &format!("instantiate: {name} (vs minimal)"),
                call_to(*target),
            )
            .base(call_to(*small))
            .cap(60),
        );
    }
    classes
}

/// The wasm instruction classes.
fn instruction_classes() -> Vec<Class> {
    const U: u64 = 16;
    let binop = |ty: &str, ops: &[&str], chain: bool| -> String {
        let (x, y, b) = if ty == "i32" {
            ("$x", "$y", "$b")
        } else {
            ("$X", "$Y", "$B")
        };
        let dst = if chain { x } else { y };
        ops.iter()
            .cycle()
            .take(U as usize)
            .map(|op| format!("(local.set {dst} ({ty}.{op} (local.get {x}) (local.get {b})))\n"))
            .collect()
    };
    let unrolled = |name: &str, body: String| Class {
        unroll: U,
        ..Class::new(name, body)
    };
    let offsets = |f: &dyn Fn(u32) -> String| -> String { (0..U as u32).map(f).collect() };
    let br_table = {
        let mut s = "(block ".repeat(1000);
        s.push_str("(br_table");
        for t in 0..1000 {
            let _ = write!(s, " {t}");
        }
        s.push_str(" (i32.and (local.get $i) (i32.const 1023)))");
        s.push_str(&")".repeat(1000));
        s
    };
    let locals_cap = "(local i64) "
        .repeat(wisp_vm::ValidationLimits::default().max_locals_per_function as usize);
    vec![
        unrolled("i32.add", binop("i32", &["add"], true)),
        unrolled("i64.add", binop("i64", &["add"], true)),
        unrolled("i32.mul", binop("i32", &["mul"], true)),
        unrolled("i64.mul", binop("i64", &["mul"], true)),
        unrolled("i32.div_u/rem_u", binop("i32", &["div_u", "rem_u"], false)),
        unrolled("i64.div_s/rem_s", binop("i64", &["div_s", "rem_s"], false)),
        unrolled("i32.shl/rotl", binop("i32", &["shl", "rotl"], true)),
        unrolled("i64.shr_u/rotr", binop("i64", &["shr_u", "rotr"], true)),
        Class::unrolled("local.get/set", "(local.set $y (local.get $x))\n", U),
        Class::unrolled("global.get/set", "(global.set $g (global.get $h))\n", U)
        .items("  (global $g (mut i32) (i32.const 1))\n  (global $h (mut i32) (i32.const 2))\n"),
        unrolled(
            "i32.load",
            offsets(&|k| format!("(local.set $y (i32.load offset={} (local.get $p)))\n", k * 4)),
        ),
        unrolled(
            "i64.load",
            offsets(&|k| format!("(local.set $Y (i64.load offset={} (local.get $p)))\n", k * 8)),
        ),
        unrolled(
            "i32.store",
            offsets(&|k| format!("(i32.store offset={} (local.get $p) (local.get $x))\n", k * 4)),
        ),
        unrolled(
            "i64.store",
            offsets(&|k| format!("(i64.store offset={} (local.get $p) (local.get $X))\n", k * 8)),
        ),
        Class::new(
            "memory.fill (4 KiB)",
            format!("(memory.fill (i32.const {SCRATCH}) (local.get $x) (i32.const 4096))"),
        ),
        Class::new(
            "memory.copy (4 KiB)",
            format!("(memory.copy (i32.const {SCRATCH}) (i32.const {VAL}) (i32.const 4096))"),
        ),
        // 2 initial pages + 200 stay under the 16 MiB (256 pages) instance limit.
        Class::new("memory.grow (1 page)", "(drop (memory.grow (i32.const 1)))").cap(200),
        unrolled(
            "loop + br_if (per iteration)",
            "(local.set $j (i32.const 16)) (loop $k (br_if $k (local.tee $j (i32.sub (local.get $j) (i32.const 1)))))".to_string(),
        )
        .base("(local.set $j (i32.const 16))"),
        Class::unrolled("call (0 locals)", "(call $f0)\n", U).items("  (func $f0)\n"),
        Class::unrolled("call (locals at the cap, 128)", "(call $fcap)\n", U)
            .items(format!("  (func $fcap {locals_cap})\n")),
        Class::unrolled(
            "call_indirect",
            "(call_indirect (type $t0) (local.get $zero))\n",
            U,
        )
        .items("  (type $t0 (func))\n  (table 1 funcref)\n  (elem (i32.const 0) $f0)\n  (func $f0 (type $t0))\n"),
        Class::new("br_table (1000 targets)", br_table),
        Class::unrolled(
            "select",
            "(local.set $x (select (local.get $x) (local.get $b) (local.get $i)))\n",
            U,
        ),
    ]
}

fn machine() -> (String, String) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    (cores, cpu)
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Ratio to the median and the flag of a row.
fn judge(row: &Row, median_ns_per_gas: f64) -> (f64, &'static str) {
    let ratio = row.ns_per_gas() / median_ns_per_gas;
    let flag = if ratio.is_nan() {
        "?"
    } else if ratio > 3.0 {
        "UNDER"
    } else if ratio < 1.0 / 3.0 {
        "over"
    } else {
        ""
    };
    (ratio, flag)
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let started = Instant::now();
    let mut bench = Bench::new();

    // Callee contracts for `call` and the instantiation rows: (label, wat).
    let shapes = [
        ("minimal".to_string(), target_module(1, 0, 0)),
        ("2000 functions".to_string(), target_module(1, 2000, 0)),
        ("16 initial pages".to_string(), target_module(16, 0, 0)),
        (
            "64 KiB data segments".to_string(),
            target_module(1, 0, 64 * 1024),
        ),
    ];
    let mut targets = Vec::new();
    let mut shape_notes = String::new();
    for (label, wat) in &shapes {
        let wasm = wat::parse_str(wat).expect("generated target module is valid WAT");
        let validated = wisp_vm::validate(&wasm, &wisp_vm::ValidationLimits::default())
            .expect("generated target module passes validation");
        let _ = writeln!(
            shape_notes,
            "- {label}: {} bytes, instantiate_gas = {}",
            wasm.len(),
            wisp_vm::gas::instantiate_gas(&validated.shape())
        );
        targets.push((label.clone(), bench.deploy_wat(wat)));
    }

    let mut classes = host_classes();
    classes.extend(call_classes(&targets));
    classes.extend(instruction_classes());

    let covered: Vec<&str> = classes.iter().filter_map(|c| c.host).collect();
    let uncovered: Vec<&str> = HOST_FUNCTIONS
        .iter()
        .map(|f| f.name)
        .filter(|n| *n != "abort" && !covered.contains(n))
        .collect();
    if !uncovered.is_empty() {
        eprintln!("warning: host functions with no class: {uncovered:?}");
    }

    let mut rows = Vec::new();
    for class in classes.iter().filter(|c| wanted(&c.name)) {
        let row = bench.measure(class);
        eprintln!(
            "  {:<36} N={:<9} gas={:<12.0} ns={:<12.0} ({:.1}s)",
            row.name,
            row.n,
            row.gas,
            row.ns,
            started.elapsed().as_secs_f64()
        );
        rows.push(row);
    }

    let small = wat::parse_str(target_module(1, 0, 0)).expect("minimal module is valid WAT");
    for (label, kib) in [("10 KiB", 10), ("100 KiB", 100), ("400 KiB", 400)] {
        let name = format!("deploy: {label} of code (vs minimal)");
        if !wanted(&name) {
            continue;
        }
        let wasm = code_module(kib * 1024);
        let row = bench.measure_deploy(&name, &wasm, &small);
        eprintln!(
            "  {:<36} N={:<9} gas={:<12.0} ns={:<12.0} ({:.1}s)",
            row.name,
            row.n,
            row.gas,
            row.ns,
            started.elapsed().as_secs_f64()
        );
        rows.push(row);
    }

    let ratios: Vec<f64> = rows.iter().map(Row::ns_per_gas).collect();
    let med = median(&ratios);
    let header = format!(
        "{:<38} {:>10} {:>14} {:>14} {:>10} {:>9} {:>7}  flag",
        "class", "N", "marginal gas", "marginal ns", "± ns", "ns/gas", "ratio"
    );
    println!("\n{header}\n{}", "-".repeat(header.len() + 2));
    let mut md = String::from(
        "| class | N | marginal gas | marginal ns | ± ns | ns/gas | ratio to median | flag |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut outliers = Vec::new();
    for row in &rows {
        let (ratio, flag) = judge(row, med);
        println!(
            "{:<38} {:>10} {:>14.0} {:>14.0} {:>10.0} {:>9.4} {:>7.2}  {flag}",
            row.name,
            row.n,
            row.gas,
            row.ns,
            row.noise_ns,
            row.ns_per_gas(),
            ratio
        );
        let _ = writeln!(
            md,
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.4} | {:.2} | {} |",
            row.name,
            row.n,
            row.gas,
            row.ns,
            row.noise_ns,
            row.ns_per_gas(),
            ratio,
            flag
        );
        if !flag.is_empty() {
            outliers.push(format!("{} ({flag}, ×{ratio:.2})", row.name));
        }
    }
    println!(
        "\nmedian ns/gas over {} classes: {med:.4} (≈ {:.1} Mgas/s); flagged outside [median/3, median×3]: {}",
        rows.len(),
        1_000.0 / med,
        outliers.len()
    );
    for o in &outliers {
        println!("  {o}");
    }
    println!("\ncallee shapes:\n{shape_notes}");
    println!(
        "engine generations: {}; total time {:.1}s",
        TestChain::engine_generations(),
        started.elapsed().as_secs_f64()
    );

    if !filters.is_empty() {
        return;
    }
    let (cores, cpu) = machine();
    let doc = format!(
        "# Gas calibration\n\n\
         Nanoseconds per gas unit of each cost class, measured by\n\
         `sdk/test/benches/gas_calibration.rs`. Generated; rerun to refresh.\n\n\
         - Machine: {cores} cores, {cpu}\n\
         - Commit: `{commit}`\n\
         - Command: `{COMMAND}`\n\n\
         Method: each class is a pair of WAT contracts deployed on the in-process test chain (the \
         real chain runtime): the op contract's `ep:run` runs a loop N times exercising the class \
         (instruction classes are unrolled; N counts operations), the baseline contract runs the \
         same loop without the operation. Each harness `call` is one signed request in one block; \
         its wall time and its receipt's `gas_used` are taken over {REPS} alternating calls of \
         each contract after a warm-up ({reps4} when the class's cap on N keeps calls short), and the class's marginal time and gas are the median of \
         the op calls minus the median of the baseline calls, so request handling, instantiation, \
         block commit and loop overhead cancel. Instantiation rows make N cross-contract calls \
         into a callee of the given shape against a minimal callee; deploy rows deploy a fresh, \
         never-cached module of the given code size against a minimal module ({DEPLOY_REPS} \
         repetitions). `± ns` is the median absolute deviation of op plus baseline times. \
         `ratio` is a class's ns/gas over the median of all classes: `UNDER` (> 3) means the \
         operation takes more than three times the time its gas pays for (underpriced), `over` \
         (< 1/3) that it is overcharged.\n\n\
         Median: **{med:.4} ns/gas** (≈ {mgas:.1} Mgas/s).\n\n{md}\n\
         Callee shapes of the instantiation rows:\n\n{shape_notes}",
        commit = git_commit(),
        mgas = 1_000.0 / med,
        reps4 = REPS * 4,
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/gas-calibration.md");
    match std::fs::write(path, doc) {
        Ok(()) => println!("wrote docs/gas-calibration.md"),
        Err(e) => eprintln!("could not write {path}: {e}"),
    }
}
