//! Grows a state store to KEYS keys, then commits BLOCKS blocks of 1000 updates (9 in 10 to
//! existing keys; `block=N` for N per block) the way a chain commits its blocks, printing where
//! the time goes:
//! `cargo run -p wisp-bench --release --example profile_state -- KEYS BLOCKS [RETENTION|x] [NODE_CACHE_MIB] [block=N]`.
use std::time::{Duration, Instant};
use wisp_bench::{commit_state, StateWorkload};
use wisp_state::StateDb;

fn main() {
    wisp_node::allocator::configure();
    let all: Vec<String> = std::env::args().skip(1).collect();
    let per_block = wisp_bench::block_size_arg(&all, "updates", 1000) as u64;
    let mut args = all.into_iter().filter(|a| !a.starts_with("block="));
    let keys: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let blocks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let retention: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let node_cache_mib: Option<usize> = args.next().and_then(|a| a.parse().ok());
    let dir = tempfile::tempdir().expect("temp dir");
    let db = StateDb::open(&dir.path().join("state.redb")).expect("open");
    db.set_retention(retention);
    if let Some(mib) = node_cache_mib {
        db.set_node_cache(mib << 20);
    }
    let started = Instant::now();
    let mut work = StateWorkload::load(&db, keys);
    println!(
        "loaded {keys} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (mut total, mut hashing) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..blocks {
        let changes = work.updates(per_block);
        let t = Instant::now();
        hashing += commit_state(&db, work.version, changes);
        total += t.elapsed();
        work.version += 1;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / blocks as f64;
    println!(
        "{:.0} updates/s; per block of {per_block}: {:.2} ms, of which hashing the tree {:.2} ms (on a second thread, overlapping the value writes, then on both)",
        (blocks * per_block) as f64 / total.as_secs_f64(),
        per(total),
        per(hashing)
    );
}
