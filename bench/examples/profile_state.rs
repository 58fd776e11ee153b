//! Grows a state store to KEYS keys, then commits BLOCKS blocks of 1000 updates (9 in 10 to
//! existing keys), printing where the time goes:
//! `cargo run -p wisp-bench --release --example profile_state -- KEYS BLOCKS [RETENTION]`.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wisp_bench::{commit_state, state_header, state_key};
use wisp_state::StateDb;

fn main() {
    let mut args = std::env::args().skip(1);
    let keys: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let blocks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let retention: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let dir = tempfile::tempdir().expect("temp dir");
    let db = StateDb::open(&dir.path().join("state.redb")).expect("open");
    db.set_retention(retention);
    let mut version = 0;
    let mut next = 0;
    let started = Instant::now();
    while next < keys {
        let n = (keys - next).min(10_000);
        let changes = (next..next + n)
            .map(|i| (state_key(i), Some(i.to_le_bytes().repeat(4))))
            .collect();
        commit_state(&db, version, changes);
        version += 1;
        next += n;
    }
    println!(
        "loaded {keys} keys in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (mut prepare, mut commit) = (Duration::ZERO, Duration::ZERO);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for b in 0..blocks {
        let mut changes = BTreeMap::new();
        for j in 0..1000u64 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let k = if j % 10 == 0 {
                next += 1;
                next - 1
            } else {
                seed % keys
            };
            changes.insert(state_key(k), Some((b * 7 + j).to_le_bytes().repeat(4)));
        }
        let t = Instant::now();
        let p = db.prepare(version, changes).expect("prepare");
        let root = p.root();
        let t2 = Instant::now();
        db.commit(p, &state_header(version, root), &[], &[])
            .expect("commit");
        prepare += t2 - t;
        commit += t2.elapsed();
        version += 1;
    }
    let per = |d: Duration| d.as_secs_f64() * 1e3 / blocks as f64;
    println!(
        "{} updates/s; per block of 1000: prepare {:.2} ms, commit {:.2} ms",
        (blocks * 1000) as f64 / (prepare + commit).as_secs_f64(),
        per(prepare),
        per(commit)
    );
}
