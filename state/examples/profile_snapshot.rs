//! State sync from a snapshot against building the same state by committing blocks: grows a
//! store to KEYS keys (32-byte values) in blocks of 10,000 inserts, one durable commit each
//! (the baseline), then serves the whole state page by page (`StateDb::state_chunk`) and
//! restores it into a new store (`StateDb::begin_restore`), each page checked against the
//! root, and prints the rates and bytes on disk of both stores:
//! `cargo run -p wisp-state --release --example profile_snapshot -- KEYS`.
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use wisp_core::{BlockHeader, ChainId, Hash32};
use wisp_state::{StateDb, MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES};

fn header(index: u64, root: Hash32) -> BlockHeader {
    BlockHeader {
        chain: ChainId([1; 32]),
        index,
        prev_hash: Hash32::ZERO,
        l1_block: Hash32::ZERO,
        l1_daa_score: 0,
        timestamp_ms: 0,
        state_root: root,
        receipts_root: BlockHeader::receipts_commitment(&[]),
        events_root: Hash32::ZERO,
        request_count: 0,
        gas_used: 0,
        protocol_version: 1,
    }
}

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let source_path = dir.path().join("source.redb");
    let source = StateDb::open(&source_path).expect("open");
    let started = Instant::now();
    let mut version = 0;
    let mut next = 0;
    let mut last = None;
    while next < keys {
        let n = (keys - next).min(10_000);
        let changes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (next..next + n)
            .map(|i| {
                (
                    format!("contract-key-{i}").into_bytes(),
                    Some(i.to_le_bytes().repeat(4)),
                )
            })
            .collect();
        let pending = source.prepare(version, changes).expect("prepare");
        let h = header(version, pending.root());
        source.commit(pending, &h, &[], &[]).expect("commit");
        last = Some(h);
        version += 1;
        next += n;
    }
    let built = started.elapsed();
    let header = last.expect("at least one block");
    let restored_path = dir.path().join("restored.redb");
    let restored = StateDb::open(&restored_path).expect("open");
    let mut restore = restored.begin_restore(&header).expect("empty");
    let (mut serving, mut restoring) = (Duration::ZERO, Duration::ZERO);
    let (mut pages, mut proof_bytes) = (0u64, 0usize);
    loop {
        let t = Instant::now();
        let page = source
            .state_chunk(
                header.index,
                restore.last_key(),
                MAX_CHUNK_ENTRIES,
                MAX_CHUNK_BYTES,
            )
            .expect("page");
        serving += t.elapsed();
        pages += 1;
        proof_bytes += page.proof.len();
        let t = Instant::now();
        restore
            .add_chunk(page.entries, &page.proof)
            .expect("checks");
        restoring += t.elapsed();
        if page.last {
            break;
        }
    }
    let count = restore.keys();
    let t = Instant::now();
    restore.finish(&[], &[]).expect("finished");
    restoring += t.elapsed();
    drop((source, restored));
    let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let rate = |d: Duration| count as f64 / d.as_secs_f64();
    println!(
        "{count} keys (with the block marker), {pages} pages, {proof_bytes} bytes of range proofs"
    );
    println!(
        "baseline, committing blocks of 10,000 inserts: {:.2} s, {:.0} keys/s, {:.0} bytes on disk per key",
        built.as_secs_f64(),
        rate(built),
        size(&source_path) as f64 / keys as f64
    );
    println!(
        "serving the snapshot: {:.2} s, {:.0} keys/s",
        serving.as_secs_f64(),
        rate(serving)
    );
    println!(
        "restoring it, each page checked: {:.2} s, {:.0} keys/s, {:.0} bytes on disk per key",
        restoring.as_secs_f64(),
        rate(restoring),
        size(&restored_path) as f64 / keys as f64
    );
}
