//! Runtime benchmarks, each beside its baseline in the same run:
//! - `metering`: a compute kernel in wasmi with fuel metering on vs off (the overhead of gas);
//! - `instantiate_call`: instantiate + call a token view through the runtime vs a call on an
//!   already-instantiated module (plain wasmi, no metering) — what instantiation costs;
//! - `token_transfer`: `token.transfer` through the full runtime (signature check, block, fee,
//!   state commit in memory), one request per block vs 100 per block.
//!
//!
//! Parallel speedup, the state store, signatures, the VM with a bare host and the EVM
//! baseline are in `cargo bench -p wisp-bench`.
//!
//! Run: `cargo bench -p wisp-test --bench runtime`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use wisp_chain::{sign_request, verify_signature, BlockInputs, L1Ref};
use wisp_core::{Call, Hash32, Hname, RequestBody};
use wisp_test::TestChain;

const KERNEL: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "run") (param $n i32) (result i32)
    (local $i i32) (local $acc i32) (local $x i32)
    (local.set $x (i32.const 12345))
    (loop $l
      ;; xorshift32
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
      (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
      ;; a "balance" update in memory
      (i32.store (i32.and (i32.shl (local.get $x) (i32.const 2)) (i32.const 4092))
        (i32.add (i32.load (i32.and (i32.shl (local.get $x) (i32.const 2)) (i32.const 4092))) (local.get $i)))
      (local.set $acc (i32.add (local.get $acc) (local.get $x)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $acc)))"#;

fn metering(c: &mut Criterion) {
    let wasm = wat::parse_str(KERNEL).unwrap();
    let mut group = c.benchmark_group("metering");
    group.throughput(Throughput::Elements(100_000));
    for fuel in [false, true] {
        let mut config = wasmi::Config::default();
        config
            .consume_fuel(fuel)
            .compilation_mode(wasmi::CompilationMode::Eager);
        let engine = wasmi::Engine::new(&config);
        let module = wasmi::Module::new(&engine, &wasm).unwrap();
        let mut store = wasmi::Store::new(&engine, ());
        let instance = wasmi::Linker::new(&engine)
            .instantiate_and_start(&mut store, &module)
            .unwrap();
        let run = instance.get_typed_func::<i32, i32>(&store, "run").unwrap();
        group.bench_function(if fuel { "fuel_on" } else { "fuel_off_baseline" }, |b| {
            b.iter(|| {
                if fuel {
                    store.set_fuel(u64::MAX / 2).unwrap();
                }
                run.call(&mut store, 100_000).unwrap()
            })
        });
    }
    group.finish();
}

fn instantiate_call(c: &mut Criterion) {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100_000_000_000);
    let token = chain
        .deploy(
            &alice,
            "token",
            &wisp_test::contract_wasm("contracts/token"),
            &("T".to_string(), "T".to_string(), 18u8, 1_000u128),
        )
        .unwrap();
    let mut group = c.benchmark_group("instantiate_call");
    group.bench_function("runtime_view_token_decimals", |b| {
        b.iter(|| {
            chain
                .chain()
                .view(
                    alice.agent(),
                    token,
                    Hname::of("decimals"),
                    vec![],
                    1_000_000,
                )
                .unwrap()
        })
    });
    // Baseline: a call on an already-instantiated module, no metering, no host.
    let engine = wasmi::Engine::default();
    let module = wasmi::Module::new(
        &engine,
        wat::parse_str(r#"(module (func (export "f") (result i32) (i32.const 18)))"#).unwrap(),
    )
    .unwrap();
    let mut store = wasmi::Store::new(&engine, ());
    let instance = wasmi::Linker::new(&engine)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    let f = instance.get_typed_func::<(), i32>(&store, "f").unwrap();
    group.bench_function("baseline_call_instantiated_wasmi", |b| {
        b.iter(|| f.call(&mut store, ()).unwrap())
    });
    group.finish();
}

fn token_transfer(c: &mut Criterion) {
    let mut group = c.benchmark_group("token_transfer");
    group.sample_size(20);
    for per_block in [1usize, 100] {
        let mut chain = TestChain::new();
        let alice = chain.new_account(10_000 * 100_000_000);
        let bob = chain.new_account(0);
        let token = chain
            .deploy(
                &alice,
                "token",
                &wisp_test::contract_wasm("contracts/token"),
                &("T".to_string(), "T".to_string(), 18u8, u128::MAX / 2),
            )
            .unwrap();
        let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[42; 32]).unwrap();
        let sender = wisp_core::AgentId::Address(key.x_only_public_key().0.serialize());
        // Give the signing key tokens and base tokens for fees.
        chain
            .call(&alice, token, "transfer", &(sender, u128::MAX / 4))
            .unwrap();
        chain
            .call(
                &alice,
                Hname::of("accounts"),
                "transfer",
                &(sender, 5_000 * 100_000_000u64),
            )
            .unwrap();
        let mut nonce = 0u64;
        let mut daa = 1_000_000u64;
        let chain_id = chain.chain_id();
        group.throughput(Throughput::Elements(per_block as u64));
        group.bench_function(format!("{per_block}_per_block"), |b| {
            b.iter_batched(
                || {
                    let requests: Vec<_> = (0..per_block)
                        .map(|_| {
                            let body = RequestBody {
                                chain: chain_id,
                                call: Call {
                                    target: token,
                                    entry_point: Hname::of("transfer"),
                                    args: borsh::to_vec(&(bob.agent(), 1u128)).unwrap(),
                                    transfer_sompi: 0,
                                },
                                gas_budget: 1_000_000,
                                access_list: None,
                                time_lock: None,
                            };
                            nonce += 1;
                            sign_request(body, &key, nonce - 1)
                        })
                        .collect();
                    daa += 1;
                    (requests, daa)
                },
                |(requests, daa)| {
                    let off_ledger = requests
                        .into_iter()
                        .map(|r| verify_signature(r).unwrap())
                        .collect();
                    let l1 = L1Ref {
                        block_hash: Hash32([(daa % 251) as u8; 32]),
                        daa_score: daa,
                        timestamp_ms: 1_800_000_000_000 + daa,
                    };
                    let out = chain
                        .chain()
                        .execute_block(BlockInputs {
                            randomness: None,
                            l1,
                            on_ledger: vec![],
                            off_ledger,
                        })
                        .unwrap();
                    assert!(out.receipts.iter().all(|r| r.error.is_none()));
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A typical contract test on the harness: new chain, funded account, deploy, call, view.
fn harness_test(c: &mut Criterion) {
    let wasm = wisp_test::contract_wasm("contracts/token");
    let mut group = c.benchmark_group("harness");
    group.bench_function("token_test_deploy_transfer_view", |b| {
        b.iter(|| {
            let mut chain = TestChain::new();
            let alice = chain.new_account(100_000_000_000);
            let bob = chain.new_account(0);
            let token = chain
                .deploy(
                    &alice,
                    "token",
                    &wasm,
                    &("T".to_string(), "T".to_string(), 18u8, 1_000u128),
                )
                .unwrap();
            chain
                .call(&alice, token, "transfer", &(bob.agent(), 10u128))
                .unwrap();
            assert_eq!(
                chain
                    .view::<_, u128>(token, "balance_of", &(bob.agent(),))
                    .unwrap(),
                10
            );
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    metering,
    instantiate_call,
    token_transfer,
    harness_test
);
criterion_main!(benches);
