//! Planning cost per request, for a profiler or a quick check: batches of 100 footprints
//! shaped like token transfers (5 writes and 4 reads each, the chain-wide reads shared),
//! planned with [`Batch`] and, as a baseline in the same run, by comparing each footprint
//! with every member ([`conflict`]).
//! `cargo run -p wisp-scheduler --release --example plan_speed`
use std::time::Instant;
use wisp_scheduler::{conflict, Batch, Footprint};

fn key(tag: &[u8], i: u64) -> Vec<u8> {
    let mut k = vec![1, 2, 3, 4];
    k.extend_from_slice(tag);
    k.extend_from_slice(&[0u8; 24]);
    k.extend_from_slice(&i.to_le_bytes());
    k
}

fn main() {
    let footprints: Vec<Footprint> = (0..100u64)
        .map(|i| Footprint {
            reads: vec![
                key(b"t", 1000 + i),
                vec![9, 9, 9, 9, b'd', 7, 7, 7, 7],
                vec![0, 0, 0, 0, b'c'],
                vec![0, 0, 0, 0, b'o', b'w', b'n', b'e', b'r'],
            ],
            writes: vec![
                key(b"tb", i),
                key(b"tb", 500 + i),
                key(b"b", i),
                key(b"n", i),
                key(b"rr", i * 7919),
            ],
        })
        .collect();
    let rounds = 2000;
    let per_footprint =
        |start: Instant| start.elapsed().as_secs_f64() * 1e6 / (rounds * 100) as f64;
    for _ in 0..3 {
        let start = Instant::now();
        let mut admitted = 0;
        for _ in 0..rounds {
            let mut batch = Batch::new();
            for f in &footprints {
                if batch.admits(f) {
                    batch.add(f);
                }
            }
            admitted += batch.len();
        }
        let batch = per_footprint(start);
        let start = Instant::now();
        let mut pairwise = 0;
        for _ in 0..rounds {
            let mut members: Vec<&Footprint> = Vec::new();
            for f in &footprints {
                if !members.iter().any(|m| conflict(m, f)) {
                    members.push(f);
                }
            }
            pairwise += members.len();
        }
        assert_eq!(admitted, pairwise);
        println!(
            "µs per footprint: Batch {batch:.2}, pairwise {:.2}",
            per_footprint(start)
        );
    }
}
