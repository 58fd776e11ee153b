//! The reference fuel counter against wasmi: on generated modules and on every example
//! contract, the instrumented module's own count equals the fuel wasmi charges the original.

use std::collections::BTreeMap;
use wasmi::{Caller, Config, Engine, Extern, Linker, Module, Store};
use wisp_vm::fuel_reference::{instrument, COUNTER_EXPORT};

#[derive(Clone, Default, PartialEq, Debug)]
struct Host {
    storage: BTreeMap<Vec<u8>, Vec<u8>>,
    register: Vec<u8>,
    input: Vec<u8>,
    caller: Vec<u8>,
    ret: Vec<u8>,
    events: usize,
}

fn engine(fuel: bool) -> Engine {
    let mut c = Config::default();
    c.consume_fuel(fuel)
        .compilation_mode(wasmi::CompilationMode::Eager);
    if fuel {
        c.operator_cost(wisp_vm::gas::instruction_costs())
            .fuel_cost(wisp_vm::gas::dynamic_costs());
    }
    Engine::new(&c)
}

fn mem(c: &Caller<'_, Host>) -> wasmi::Memory {
    c.get_export("memory")
        .and_then(Extern::into_memory)
        .expect("memory export")
}

fn read(c: &Caller<'_, Host>, ptr: u32, len: u32) -> Vec<u8> {
    let mut buf = vec![0; len as usize];
    mem(c).read(c, ptr as usize, &mut buf).expect("in bounds");
    buf
}

fn linker(engine: &Engine) -> Linker<Host> {
    let mut l = Linker::<Host>::new(engine);
    let m = "wisp";
    l.func_wrap(m, "input", |mut c: Caller<'_, Host>| -> u32 {
        let i = c.data().input.clone();
        c.data_mut().register = i;
        c.data().register.len() as u32
    })
    .unwrap();
    l.func_wrap(m, "register_len", |c: Caller<'_, Host>| -> u32 {
        c.data().register.len() as u32
    })
    .unwrap();
    l.func_wrap(m, "register_read", |mut c: Caller<'_, Host>, ptr: u32| {
        let r = c.data().register.clone();
        let memory = mem(&c);
        memory.write(&mut c, ptr as usize, &r).expect("in bounds");
    })
    .unwrap();
    l.func_wrap(
        m,
        "set_return",
        |mut c: Caller<'_, Host>, p: u32, n: u32| {
            let v = read(&c, p, n);
            c.data_mut().ret = v;
        },
    )
    .unwrap();
    l.func_wrap(
        m,
        "storage_get",
        |mut c: Caller<'_, Host>, p: u32, n: u32| -> i64 {
            let k = read(&c, p, n);
            match c.data().storage.get(&k).cloned() {
                Some(v) => {
                    let len = v.len() as i64;
                    c.data_mut().register = v;
                    len
                }
                None => -1,
            }
        },
    )
    .unwrap();
    l.func_wrap(
        m,
        "storage_set",
        |mut c: Caller<'_, Host>, kp: u32, kl: u32, vp: u32, vl: u32| {
            let (k, v) = (read(&c, kp, kl), read(&c, vp, vl));
            c.data_mut().storage.insert(k, v);
        },
    )
    .unwrap();
    l.func_wrap(
        m,
        "storage_remove",
        |mut c: Caller<'_, Host>, kp: u32, kl: u32| {
            let k = read(&c, kp, kl);
            c.data_mut().storage.remove(&k);
        },
    )
    .unwrap();
    l.func_wrap(m, "caller", |mut c: Caller<'_, Host>| -> u32 {
        let a = c.data().caller.clone();
        c.data_mut().register = a;
        c.data().register.len() as u32
    })
    .unwrap();
    l.func_wrap(m, "self_hname", |_: Caller<'_, Host>| -> u32 {
        0x1234_5678
    })
    .unwrap();
    l.func_wrap(m, "chain_id", |mut c: Caller<'_, Host>, out: u32| {
        let memory = mem(&c);
        memory
            .write(&mut c, out as usize, &[3u8; 32])
            .expect("in bounds");
    })
    .unwrap();
    l.func_wrap(m, "block_index", |_: Caller<'_, Host>| -> u64 { 7 })
        .unwrap();
    l.func_wrap(m, "block_timestamp_ms", |_: Caller<'_, Host>| -> u64 {
        1_700_000_000_000
    })
    .unwrap();
    l.func_wrap(m, "transferred_sompi", |_: Caller<'_, Host>| -> u64 { 500 })
        .unwrap();
    l.func_wrap(
        m,
        "balance_sompi",
        |_: Caller<'_, Host>, _p: u32, _n: u32| -> u64 { 1_000 },
    )
    .unwrap();
    l.func_wrap(
        m,
        "transfer_sompi",
        |_: Caller<'_, Host>, _p: u32, _n: u32, _a: u64| {},
    )
    .unwrap();
    l.func_wrap(
        m,
        "withdraw_to_l1",
        |_: Caller<'_, Host>, _key: u32, _amount: u64| -> u64 { 0 },
    )
    .unwrap();
    l.func_wrap(
        m,
        "emit_event",
        |mut c: Caller<'_, Host>, _a: u32, _b: u32, _d: u32, _e: u32| {
            c.data_mut().events += 1;
        },
    )
    .unwrap();
    // Cross-contract calls fail (register = a borsh ReceiptError), exercising error paths.
    l.func_wrap(
        m,
        "call",
        |mut c: Caller<'_, Host>, _k: u32, _t: u32, _e: u32, _ap: u32, _al: u32, _tr: u64| -> u32 {
            let err = wisp_core::ReceiptError {
                level: wisp_core::ErrorLevel::Contract,
                code: 1,
                message: "no".into(),
            };
            c.data_mut().register = borsh::to_vec(&err).unwrap();
            1
        },
    )
    .unwrap();
    l.func_wrap(
        m,
        "abort",
        |_: Caller<'_, Host>, code: u32, _p: u32, _n: u32| -> Result<(), wasmi::Error> {
            Err(wasmi::Error::new(format!("abort {code}")))
        },
    )
    .unwrap();
    l.func_wrap(m, "log", |_: Caller<'_, Host>, _p: u32, _n: u32| {})
        .unwrap();
    l.func_wrap(
        m,
        "blake2b_256",
        |mut c: Caller<'_, Host>, p: u32, n: u32, out: u32| {
            let h = wisp_core::blake2b_256(&read(&c, p, n));
            let memory = mem(&c);
            memory.write(&mut c, out as usize, &h.0).expect("in bounds");
        },
    )
    .unwrap();
    l.func_wrap(m, "gas_left", |_: Caller<'_, Host>| -> u64 { 1_000_000 })
        .unwrap();
    l
}

/// Runs `export` of the original with wasmi fuel and of the instrumented module without;
/// returns (fuel charged, counter) and checks both left the host in the same state.
fn compare(
    original: &[u8],
    instrumented: &[u8],
    export: &str,
    host: &mut Host,
    params: &[wasmi::Val],
) -> (u64, u64) {
    const FUEL: u64 = 1 << 40;
    let metered = engine(true);
    let module = Module::new(&metered, original).unwrap();
    let mut store = Store::new(&metered, host.clone());
    store.set_fuel(FUEL).unwrap();
    let instance = linker(&metered)
        .instantiate_and_start(&mut store, &module)
        .unwrap();
    let func = instance.get_func(&store, export).unwrap();
    let mut results = vec![wasmi::Val::I32(0); func.ty(&store).results().len()];
    let first = func.call(&mut store, params, &mut results);
    let fuel = FUEL - store.get_fuel().unwrap();

    let plain = engine(false);
    let module = Module::new(&plain, instrumented).unwrap();
    let mut store2 = Store::new(&plain, host.clone());
    let instance2 = linker(&plain)
        .instantiate_and_start(&mut store2, &module)
        .unwrap();
    let func2 = instance2.get_func(&store2, export).unwrap();
    let mut results2 = results.clone();
    let second = func2.call(&mut store2, params, &mut results2);
    let counter = match instance2
        .get_global(&store2, COUNTER_EXPORT)
        .unwrap()
        .get(&store2)
    {
        wasmi::Val::I64(v) => v as u64,
        other => panic!("counter is {other:?}"),
    };
    assert_eq!(
        first.is_ok(),
        second.is_ok(),
        "{export}: outcomes differ: {first:?} vs {second:?}"
    );
    assert_eq!(store.data(), store2.data(), "{export}: host state differs");
    *host = store.into_data();
    (fuel, counter)
}

const GENERATED: &[(&str, &str)] = &[
    (
        "loop and branches",
        r#"(module (memory (export "memory") 1)
        (func (export "run") (param $n i32) (result i32) (local $i i32) (local $acc i32)
          (block $done (loop $l
            (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
            (if (i32.and (local.get $i) (i32.const 1))
              (then (local.set $acc (i32.add (local.get $acc) (local.get $i))))
              (else (local.set $acc (i32.sub (local.get $acc) (i32.const 1)))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $l)))
          (local.get $acc)))"#,
    ),
    (
        "br_table and dead code",
        r#"(module (memory (export "memory") 1)
        (func (export "run") (param $n i32) (result i32)
          (block $c (block $b (block $a
            (br_table $a $b $c (i32.rem_u (local.get $n) (i32.const 3))))
            (return (i32.const 10)) (drop (i32.const 99)) (loop (br 0)))
            (return (i32.const 20)))
          (i32.const 30)))"#,
    ),
    (
        "recursion and calls",
        r#"(module (memory (export "memory") 1)
        (func $fib (param $n i32) (result i32)
          (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
            (then (local.get $n))
            (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                           (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
        (func (export "run") (param $n i32) (result i32) (call $fib (local.get $n))))"#,
    ),
    (
        "bulk memory and growth",
        r#"(module (memory (export "memory") 1)
        (func (export "run") (param $n i32) (result i32)
          (memory.fill (i32.const 0) (i32.const 7) (i32.mul (local.get $n) (i32.const 100)))
          (memory.copy (i32.const 30000) (i32.const 0) (i32.mul (local.get $n) (i32.const 50)))
          (drop (memory.grow (i32.const 2)))
          (drop (memory.grow (i32.const 100000)))
          (if (i32.const 1) (then (nop)) (else (unreachable)))
          (if (i32.const 0) (then (loop (br 0))) (else (drop (i32.const 5))))
          (if (i32.const 0) (then (unreachable)))
          (i32.load8_u (i32.const 30001))))"#,
    ),
    (
        "nested loops",
        r#"(module (memory (export "memory") 1)
        (func (export "run") (param $n i32) (result i32) (local $i i32) (local $j i32) (local $s i32)
          (loop $outer
            (local.set $j (i32.const 0))
            (loop $inner
              (local.set $s (i32.add (local.get $s) (i32.mul (local.get $i) (local.get $j))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br_if $inner (i32.lt_u (local.get $j) (local.get $i))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $outer (i32.lt_u (local.get $i) (local.get $n))))
          (local.get $s)))"#,
    ),
];

#[test]
fn reference_counter_matches_wasmi_on_generated_modules() {
    for (name, text) in GENERATED {
        let wasm = wat::parse_str(text).unwrap();
        let instrumented = instrument(&wasm).unwrap();
        for n in [0, 1, 2, 7, 20] {
            let (fuel, counter) = compare(
                &wasm,
                &instrumented,
                "run",
                &mut Host::default(),
                &[wasmi::Val::I32(n)],
            );
            assert_eq!(fuel, counter, "{name} with n = {n}");
            assert!(fuel > 0);
        }
    }
}

fn contract(name: &str) -> Vec<u8> {
    let dir = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("../contracts")
    .join(name);
    let options = wisp_build::BuildOptions {
        quiet: true,
        ..Default::default()
    };
    std::fs::read(wisp_build::build_contract(&dir, &options).unwrap()).unwrap()
}

fn call(
    wasm: &[u8],
    instrumented: &[u8],
    host: &mut Host,
    caller: u8,
    export: &str,
    args: Vec<u8>,
) -> u64 {
    host.caller = borsh::to_vec(&wisp_core::AgentId::Address([caller; 32])).unwrap();
    host.input = args;
    let (fuel, counter) = compare(wasm, instrumented, export, host, &[]);
    assert_eq!(fuel, counter, "{export}");
    fuel
}

#[test]
fn reference_counter_matches_wasmi_on_every_example_contract() {
    use wisp_core::AgentId;
    let a = AgentId::Address([1; 32]);
    let b = AgentId::Address([2; 32]);

    let token = contract("token");
    let t = instrument(&token).unwrap();
    let mut host = Host::default();
    let args = |v: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        v(&mut out);
        out
    };
    call(
        &token,
        &t,
        &mut host,
        1,
        "ep:init",
        borsh::to_vec(&("Tok".to_string(), "TOK".to_string(), 18u8, 1_000_000u128)).unwrap(),
    );
    let transfer = call(
        &token,
        &t,
        &mut host,
        1,
        "ep:transfer",
        borsh::to_vec(&(b, 10u128)).unwrap(),
    );
    assert!(transfer > 1000);
    call(
        &token,
        &t,
        &mut host,
        1,
        "ep:approve",
        borsh::to_vec(&(b, 100u128)).unwrap(),
    );
    call(
        &token,
        &t,
        &mut host,
        2,
        "ep:transfer_from",
        borsh::to_vec(&(a, b, 50u128)).unwrap(),
    );
    call(
        &token,
        &t,
        &mut host,
        2,
        "ep:transfer",
        borsh::to_vec(&(a, 1_000_000_000u128)).unwrap(),
    ); // aborts
    call(
        &token,
        &t,
        &mut host,
        1,
        "ep:mint",
        borsh::to_vec(&(b, 5u128)).unwrap(),
    );
    call(
        &token,
        &t,
        &mut host,
        1,
        "view:balance_of",
        borsh::to_vec(&(b,)).unwrap(),
    );
    call(
        &token,
        &t,
        &mut host,
        1,
        "ep:transfer",
        args(&|o| o.extend([1, 2, 3])),
    ); // bad arguments

    let amm = contract("amm");
    let m = instrument(&amm).unwrap();
    let mut host = Host::default();
    call(
        &amm,
        &m,
        &mut host,
        1,
        "ep:init",
        borsh::to_vec(&(wisp_core::Hname(5), wisp_core::Hname(6))).unwrap(),
    );
    let e18 = 1_000_000_000_000_000_000u128;
    call(
        &amm,
        &m,
        &mut host,
        1,
        "view:get_amount_out",
        borsh::to_vec(&(e18, 5 * e18, 10 * e18)).unwrap(),
    );
    call(
        &amm,
        &m,
        &mut host,
        1,
        "ep:add_liquidity",
        borsh::to_vec(&(e18, e18, a)).unwrap(),
    ); // token call fails
    call(&amm, &m, &mut host, 1, "view:get_reserves", vec![]);

    let escrow = contract("escrow");
    let e = instrument(&escrow).unwrap();
    let mut host = Host::default();
    call(&escrow, &e, &mut host, 1, "ep:init", vec![]);
    call(
        &escrow,
        &e,
        &mut host,
        1,
        "ep:open",
        borsh::to_vec(&(b, 100u64)).unwrap(),
    );
    call(
        &escrow,
        &e,
        &mut host,
        1,
        "ep:release",
        borsh::to_vec(&(0u64,)).unwrap(),
    );
    call(
        &escrow,
        &e,
        &mut host,
        1,
        "view:deal",
        borsh::to_vec(&(0u64,)).unwrap(),
    );
}
