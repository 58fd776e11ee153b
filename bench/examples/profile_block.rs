//! Executes blocks of token transfers (100 unless `block=N`) in a loop, for a profiler:
//! `cargo run -p wisp-bench --release --example profile_block -- THREADS BLOCKS [independent|half|all] [DIR] [no-index] [block=N]`
//! (`no-index`: without the node's event and request indexes, as `wisp node --no-index`;
//! `block=N`: N transfers per block, 100 unless given).
use std::time::Instant;
use wisp_bench::{Conflict, TransferChain};

fn main() {
    wisp_node::allocator::configure();
    let mut args = std::env::args().skip(1);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let blocks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let conflict = match args.next().as_deref() {
        Some("half") => Conflict::Half,
        Some("all") => Conflict::All,
        _ => Conflict::Independent,
    };
    let rest: Vec<String> = args.collect();
    let indexes = !rest.iter().any(|a| a == "no-index");
    let per_block = wisp_bench::block_size_arg(&rest, "transfers", 100);
    let dir = rest
        .iter()
        .find(|a| *a != "no-index" && !a.starts_with("block="))
        .map(std::path::PathBuf::from);
    let mut chain = TransferChain::new(dir.as_deref(), threads, per_block);
    if let Err(e) = chain.chain.db().set_indexing(indexes) {
        panic!("indexing: {e}");
    }
    let inputs: Vec<_> = (0..blocks)
        .map(|_| chain.transfer_block(conflict))
        .collect();
    let start = Instant::now();
    let mut window = Instant::now();
    let mut phases = [0f64; 3];
    let mut window_phases = [0f64; 3];
    let mut last = None;
    // The execution phase's time in parallel batches, workers started and their waits.
    let (mut in_parallel, mut started, mut waited) = (0f64, 0u64, 0f64);
    for (n, block) in inputs.into_iter().enumerate() {
        let out = chain.run(vec![], block);
        let t = out.timing;
        last = Some(out.header);
        let times = [t.requests, t.hashing, t.committing].map(|d| d.as_secs_f64());
        in_parallel += t.in_parallel.as_secs_f64();
        started += u64::from(t.workers_started);
        waited += t.workers_waited.as_secs_f64();
        for i in 0..3 {
            phases[i] += times[i];
            window_phases[i] += times[i];
        }
        if (n + 1) % 50 == 0 {
            println!(
                "blocks {}..{}: {:.2} ms/block (requests {:.2}, hashing {:.2}, committing {:.2})",
                n - 49,
                n + 1,
                window.elapsed().as_secs_f64() * 1e3 / 50.0,
                window_phases[0] * 1e3 / 50.0,
                window_phases[1] * 1e3 / 50.0,
                window_phases[2] * 1e3 / 50.0,
            );
            window = Instant::now();
            window_phases = [0.0; 3];
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{threads} threads: {:.2} ms/block, {:.0} transfers/s, {} run in parallel",
        secs * 1e3 / blocks as f64,
        (blocks * per_block) as f64 / secs,
        chain.chain.parallel_requests()
    );
    println!(
        "per block: requests {:.2} ms, hashing {:.2} ms (overlapped), committing {:.2} ms",
        phases[0] * 1e3 / blocks as f64,
        phases[1] * 1e3 / blocks as f64,
        phases[2] * 1e3 / blocks as f64
    );
    if started > 0 {
        println!(
            "requests per block: {:.3} ms in parallel batches, {:.3} ms on the block's thread alone; \
             {:.1} workers started a block, each beginning {:.0} µs after it was asked for",
            in_parallel * 1e3 / blocks as f64,
            (phases[0] - in_parallel) * 1e3 / blocks as f64,
            started as f64 / blocks as f64,
            waited * 1e6 / started as f64,
        );
    }
    // What the blocks computed, to compare two builds by: an optimisation must not change it.
    if let Some(h) = last {
        println!(
            "last block {}: state root {}, receipts root {}, events root {}",
            h.index, h.state_root, h.receipts_root, h.events_root
        );
    }
}
