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
    let per_s = wisp_bench::floor_transfers(calls);
    println!("{:.2} µs per transfer", 1e6 / per_s);
}
