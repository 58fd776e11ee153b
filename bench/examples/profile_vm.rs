//! Instantiate + call of the token's `decimals` view on Wisp's VM with a bare host, in a loop,
//! for a profiler: `cargo run -p wisp-bench --release --example profile_vm -- CALLS`.
use std::time::Instant;
use wisp_bench::MapHost;

fn main() {
    wisp_node::allocator::configure();
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let vm: wisp_vm::Vm<MapHost> = wisp_vm::Vm::new(wisp_vm::VmConfig::default());
    let module = vm
        .prepare_bytes(&wisp_test::contract_wasm("contracts/token"))
        .expect("the token compiles");
    let mut host = Some(MapHost(
        [(b"decimals".to_vec(), vec![18u8])].into_iter().collect(),
    ));
    let start = Instant::now();
    for _ in 0..calls {
        let invocation = wisp_vm::Invocation {
            contract: wisp_core::Hname::of("token"),
            module: module.clone(),
            caller: wisp_core::AgentId::Address([1; 32]),
            kind: wisp_core::CallKind::View,
            function: wisp_core::Hname::of("decimals"),
            args: vec![],
            transferred_sompi: 0,
            first_load: false,
        };
        let (back, outcome) = vm.invoke(host.take().expect("host"), invocation, 1_000_000);
        host = Some(back);
        assert!(outcome.result.is_ok());
    }
    println!(
        "{:.2} µs per instantiate + call",
        start.elapsed().as_secs_f64() * 1e6 / calls as f64
    );
}
