//! The engine floor in a loop, for a profiler: the token's `transfer` on Wisp's VM with a bare
//! host (storage in a map, nothing else), as `cargo bench -p wisp-bench` measures it, to set
//! beside `profile_block` (the same transfer through the full runtime):
//! `cargo run -p wisp-bench --release --example profile_floor -- CALLS`.
fn main() {
    wisp_node::allocator::configure();
    let calls: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let (vm, module, host) = wisp_bench::floor();
    let sender = wisp_bench::FLOOR_SENDER;
    let mut host = Some(host);
    let args: Vec<Vec<u8>> = (0..100)
        .map(|i| borsh::to_vec(&(wisp_bench::recipient(i), 1u128)).expect("args"))
        .collect();
    let start = std::time::Instant::now();
    for i in 0..calls {
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
        let (back, outcome) = vm.invoke(host.take().expect("host"), invocation, 10_000_000);
        host = Some(back);
        outcome.result.expect("the transfer succeeds");
    }
    println!(
        "{:.2} µs per transfer",
        start.elapsed().as_secs_f64() * 1e6 / calls as f64
    );
}
