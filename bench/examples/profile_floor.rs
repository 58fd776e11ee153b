//! temporary: N token transfers on the VM with a bare host.
use wisp_bench::MapHost;
fn main() {
    wisp_node::allocator::configure();
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let vm: wisp_vm::Vm<MapHost> = wisp_vm::Vm::new(wisp_vm::VmConfig::default());
    let module = vm
        .prepare_bytes(&wisp_test::contract_wasm("contracts/token"))
        .expect("compiles");
    let sender = wisp_core::AgentId::Address([5; 32]);
    let mut state = std::collections::BTreeMap::new();
    state.insert(
        wisp_bench::token_balance_key(&sender),
        borsh::to_vec(&u128::MAX).unwrap(),
    );
    let mut host = Some(MapHost(state));
    let args: Vec<Vec<u8>> = (0..100)
        .map(|i| borsh::to_vec(&(wisp_bench::recipient(i), 1u128)).unwrap())
        .collect();
    let t = std::time::Instant::now();
    for i in 0..n {
        let invocation = wisp_vm::Invocation {
            contract: wisp_core::Hname::of("token"),
            module: module.clone(),
            caller: sender,
            kind: wisp_core::CallKind::Entry,
            function: wisp_core::Hname::of("transfer"),
            args: args[i % 100].clone(),
            transferred_sompi: 0,
            first_load: false,
        };
        let (back, outcome) = vm.invoke(host.take().unwrap(), invocation, 10_000_000);
        host = Some(back);
        outcome.result.unwrap();
    }
    println!(
        "{:.2} us per transfer",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
