//! The engine floor in a loop, for a profiler: the token's `transfer` on Wisp's VM with a bare
//! host (storage in a map, nothing else), as `cargo bench -p wisp-bench` measures it, to set
//! beside `profile_block` (the same transfer through the full runtime):
//! `cargo run -p wisp-bench --release --example profile_floor -- CALLS [THREADS]`. With
//! THREADS, each thread runs CALLS transfers on a VM and host of its own, all at once.
fn main() {
    wisp_node::allocator::configure();
    let arg = |n: usize, default: usize| -> usize {
        std::env::args()
            .nth(n)
            .map(|a| {
                a.parse()
                    .unwrap_or_else(|_| panic!("usage: profile_floor [CALLS] [THREADS]; got {a:?}"))
            })
            .unwrap_or(default)
    };
    let (calls, threads) = (arg(1, 20_000), arg(2, 1).max(1));
    let per_s = if threads == 1 {
        wisp_bench::floor_transfers(calls)
    } else {
        wisp_bench::floor_transfers_on(threads, calls)
    };
    println!(
        "{:.2} µs per transfer ({per_s:.0} transfers/s on {threads} thread(s))",
        1e6 / per_s
    );
}
