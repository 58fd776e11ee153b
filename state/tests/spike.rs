//! The state-store spike (state/README.md): updates per second and proof size as the store grows,
//! on Wisp's workload — blocks of 1000 writes of 40-byte keys and 32-byte values, each block one
//! durable commit. Ignored by default; run it in release:
//!
//! `WISP_SPIKE_KEYS=1000000 cargo test -p wisp-state --release --test spike -- --ignored --nocapture`

use std::collections::BTreeMap;
use std::time::Instant;
use wisp_core::{blake2b_256, BlockHeader, ChainId, Hash32};
use wisp_state::{verify_proof, StateDb};

#[test]
#[ignore = "a measurement, not a check: run by hand in release"]
fn spike() {
    let total: u64 = std::env::var("WISP_SPIKE_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let per_block = 1000u64;
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(&dir.path().join("spike.redb")).unwrap();
    let key = |i: u64| -> Vec<u8> {
        [
            b"\x01\x02\x03\x04balances\x00".as_slice(),
            &blake2b_256(&i.to_le_bytes()).0[..28],
        ]
        .concat()
    };
    let started = Instant::now();
    let mut window = Instant::now();
    for block in 0..total / per_block {
        let changes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (0..per_block)
            .map(|j| {
                (
                    key(block * per_block + j),
                    Some(blake2b_256(&j.to_le_bytes()).0.to_vec()),
                )
            })
            .collect();
        let pending = db.prepare(block, changes).unwrap();
        let root = pending.root();
        let header = BlockHeader {
            chain: ChainId([0; 32]),
            index: block,
            prev_hash: Hash32::ZERO,
            l1_block: Hash32::ZERO,
            l1_daa_score: 0,
            timestamp_ms: 0,
            state_root: root,
            receipts_root: Hash32::ZERO,
            events_root: Hash32::ZERO,
            request_count: 0,
            gas_used: 0,
            protocol_version: 1,
        };
        db.commit(pending, &header, &[], &[]).unwrap();
        if (block + 1).is_multiple_of(100) {
            let rate = 100.0 * per_block as f64 / window.elapsed().as_secs_f64();
            println!(
                "{:>8} keys: {:>9.0} updates/s over the last 100 blocks",
                (block + 1) * per_block,
                rate
            );
            window = Instant::now();
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "total: {total} keys in {elapsed:.1} s = {:.0} updates/s (1000 per block, fsync per block)",
        total as f64 / elapsed
    );
    // Proof sizes: present and absent keys at the head.
    let head = db.latest_version().unwrap().unwrap();
    let root = db.block(head).unwrap().state_root;
    let mut sizes = Vec::new();
    for i in (0..total).step_by((total / 100).max(1) as usize) {
        let (value, proof) = db.prove(&key(i), head).unwrap();
        verify_proof(root, &key(i), value.as_deref(), &proof).unwrap();
        sizes.push(proof.0.len());
    }
    let (absent_value, absent) = db.prove(b"absent-key", head).unwrap();
    verify_proof(root, b"absent-key", absent_value.as_deref(), &absent).unwrap();
    sizes.sort();
    println!(
        "proof size at {total} keys: median {} bytes, max {} bytes; exclusion proof {} bytes",
        sizes[sizes.len() / 2],
        sizes[sizes.len() - 1],
        absent.0.len()
    );
    let file = std::fs::metadata(dir.path().join("spike.redb"))
        .unwrap()
        .len();
    println!("database file: {:.1} MiB", file as f64 / 1048576.0);
}
