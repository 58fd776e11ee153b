//! The VM's instance pool stays bounded whatever contracts do: a store whose instances grew
//! their memory is retired once it has allocated `POOL_STORE_BYTES`, one that instantiated a
//! module that cannot be reused (every call a new instance) once it has made
//! `POOL_STORE_INSTANCES`; a reusable module keeps running on one instance.

use wisp_bench::MapHost;
use wisp_core::{AgentId, CallKind, Hname};
use wisp_vm::{Invocation, PreparedModule, Vm, VmConfig, POOL_STORE_BYTES, POOL_STORE_INSTANCES};

fn call(vm: &Vm<MapHost>, module: &PreparedModule, function: &str) {
    let invocation = Invocation {
        contract: Hname::of("t"),
        module: module.clone(),
        caller: AgentId::Address([1; 32]),
        kind: CallKind::View,
        function: Hname::of(function),
        args: vec![],
        transferred_sompi: 0,
        first_load: false,
    };
    let (_, outcome) = vm.invoke(MapHost(Default::default()), invocation, 50_000_000);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
}

fn module(vm: &Vm<MapHost>, body: &str) -> PreparedModule {
    let wat = format!(r#"(module (memory (export "memory") 1) (func (export "ep:init")) {body})"#);
    vm.prepare_bytes(&wat::parse_str(wat).unwrap()).unwrap()
}

#[test]
fn a_reusable_module_runs_on_one_instance() {
    let vm: Vm<MapHost> = Vm::new(VmConfig::default());
    let m = module(&vm, r#"(func (export "view:f"))"#);
    assert!(m.reusable());
    for _ in 0..100 {
        call(&vm, &m, "f");
    }
    let stats = vm.pool_stats();
    assert_eq!(
        (stats.stores, stats.made, stats.free),
        (1, 1, 1),
        "{stats:?}"
    );
    assert_eq!(stats.allocated_bytes, 64 * 1024);
}

#[test]
fn growing_memory_retires_a_store_at_its_byte_budget() {
    let vm: Vm<MapHost> = Vm::new(VmConfig::default());
    // 1 MiB more per call: the instance cannot be reset and is dropped, its memory stays.
    let m = module(
        &vm,
        r#"(func (export "view:grow") (drop (memory.grow (i32.const 16))))"#,
    );
    assert!(m.reusable());
    let mut retired = false;
    let mut last = 0;
    for _ in 0..2 * POOL_STORE_BYTES / (1024 * 1024) {
        call(&vm, &m, "grow");
        let stats = vm.pool_stats();
        assert!(stats.allocated_bytes <= POOL_STORE_BYTES, "{stats:?}");
        assert_eq!(stats.free, 0, "a grown instance is never reused");
        retired |= stats.allocated_bytes < last;
        last = stats.allocated_bytes;
    }
    assert!(retired, "the store was retired and a fresh one started");
}

#[test]
fn a_module_that_cannot_be_reused_retires_a_store_at_its_instance_budget() {
    let vm: Vm<MapHost> = Vm::new(VmConfig::default());
    // `table.set` could change the instance for the next call: never reused.
    let m = module(
        &vm,
        r#"(table 1 funcref) (func $g) (elem declare func $g)
           (func (export "view:f") (table.set (i32.const 0) (ref.func $g)))"#,
    );
    assert!(!m.reusable());
    let mut retired = false;
    let mut last = 0;
    for _ in 0..2 * POOL_STORE_INSTANCES {
        call(&vm, &m, "f");
        let stats = vm.pool_stats();
        assert!(stats.made <= POOL_STORE_INSTANCES, "{stats:?}");
        retired |= stats.made < last;
        last = stats.made;
    }
    assert!(retired, "the store was retired and a fresh one started");
}

/// A failed instantiation (a data segment past the memory's end) leaves its memory in the
/// store; it counts toward the store's instance budget, so a pooled store is retired before
/// wasmi's store-wide counts could refuse a later instantiation that a fresh store makes (the
/// `module` fuzz target found the same call failing on one store and running on another).
#[test]
fn failed_instantiations_count_toward_a_stores_budget() {
    let vm: Vm<MapHost> = Vm::new(VmConfig::default());
    let broken = module(&vm, r#"(data (i32.const 65530) "0123456789")"#);
    let fine = module(
        &vm,
        r#"(table 1 funcref) (func $g) (elem declare func $g)
           (func (export "view:f") (table.set (i32.const 0) (ref.func $g)))"#,
    );
    for _ in 0..2 * POOL_STORE_INSTANCES {
        let invocation = Invocation {
            contract: Hname::of("t"),
            module: broken.clone(),
            caller: AgentId::Address([1; 32]),
            kind: CallKind::Entry,
            function: Hname::of("init"),
            args: vec![],
            transferred_sompi: 0,
            first_load: false,
        };
        let (_, outcome) = vm.invoke_init(MapHost(Default::default()), invocation, 50_000_000);
        let error = outcome.result.expect_err("the segment does not fit");
        assert!(error.message.contains("out of bounds"), "{error:?}");
        // A module instantiated afresh at every call still runs on whatever store comes.
        call(&vm, &fine, "f");
    }
    assert!(
        vm.pool_stats().made <= POOL_STORE_INSTANCES + 2,
        "{:?}",
        vm.pool_stats()
    );
}
