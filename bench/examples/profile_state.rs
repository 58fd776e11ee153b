//! Grows a state store to KEYS keys, then commits BLOCKS blocks of 1000 updates (9 in 10 to
//! existing keys), printing where the time goes:
//! `cargo run -p wisp-bench --release --example profile_state -- KEYS BLOCKS [RETENTION]`.
use std::time::{Duration, Instant};
use wisp_bench::{state_header, StateWorkload};
use wisp_state::StateDb;

fn main() {
    let mut args = std::env::args().skip(1);
    let keys: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let blocks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let retention: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let dir = tempfile::tempdir().expect("temp dir");
    let db = StateDb::open(&dir.path().join("state.redb")).expect("open");
    db.set_retention(retention);
    let started = Instant::now();
    let mut work = StateWorkload::load(&db, keys);
    println!(
        "loaded {keys} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (mut prepare, mut commit) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..blocks {
        let changes = work.updates(1000);
        let t = Instant::now();
        let p = db.prepare(work.version, changes).expect("prepare");
        let root = p.root();
        let t2 = Instant::now();
        db.commit(p, &state_header(work.version, root), &[], &[])
            .expect("commit");
        prepare += t2 - t;
        commit += t2.elapsed();
        work.version += 1;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / blocks as f64;
    println!(
        "{} updates/s; per block of 1000: prepare {:.2} ms, commit {:.2} ms",
        (blocks * 1000) as f64 / (prepare + commit).as_secs_f64(),
        per(prepare),
        per(commit)
    );
}
