//! Crash safety: a process committing blocks is killed (SIGKILL) at an arbitrary moment; the
//! store reopens at the last committed block with exactly the root an uninterrupted run has there.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use wisp_core::{BlockHeader, ChainId, Hash32};
use wisp_state::StateDb;

/// The changes of block `v` (deterministic, a few hundred bytes each, some deletes).
fn changes(v: u64) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    (0..20u64)
        .map(|i| {
            let k = (v * 7 + i * 13) % 500;
            let value = if (v + i).is_multiple_of(9) {
                None
            } else {
                Some(vec![(v % 251) as u8; 64 + (i as usize)])
            };
            (format!("key-{k}").into_bytes(), value)
        })
        .collect()
}

fn header(v: u64, root: Hash32) -> BlockHeader {
    BlockHeader {
        chain: ChainId([7; 32]),
        index: v,
        prev_hash: Hash32::ZERO,
        l1_block: Hash32::ZERO,
        l1_daa_score: v,
        timestamp_ms: v,
        state_root: root,
        receipts_root: Hash32::ZERO,
        events_root: Hash32::ZERO,
        request_count: 0,
        gas_used: 0,
        protocol_version: 1,
    }
}

fn commit(db: &StateDb, v: u64) -> Hash32 {
    let pending = db.prepare(v, changes(v)).unwrap();
    let root = pending.root();
    db.commit(pending, &header(v, root), &[], &[]).unwrap();
    root
}

/// The child: commits blocks forever, reporting each after it is durable.
#[test]
#[ignore = "run by `killed_mid_commit_reopens_at_the_last_committed_block` as a child process"]
fn crash_child() {
    let Some(path) = std::env::var_os("WISP_CRASH_DB") else {
        return;
    };
    let db = StateDb::open(std::path::Path::new(&path)).unwrap();
    // Flushes of the latest values and pruning happen every few blocks, so kills land in them.
    db.set_flush_threshold(37);
    db.set_retention(Some(50));
    let mut v = db.latest_version().unwrap().map_or(0, |l| l + 1);
    loop {
        let root = commit(&db, v);
        println!("committed {v} {root}");
        v += 1;
    }
}

#[test]
fn killed_mid_commit_reopens_at_the_last_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let exe = std::env::current_exe().unwrap();
    let mut reported: Vec<(u64, String)> = Vec::new();
    // Kill at different points: after 3, 17, 40 and 25 reported commits (past block 50, the
    // child prunes as it commits).
    for kill_after in [3usize, 17, 40, 25] {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("WISP_CRASH_DB", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("committed ") {
                let (v, root) = rest.split_once(' ').unwrap();
                reported.push((v.parse().unwrap(), root.to_string()));
                seen += 1;
                if seen == kill_after {
                    child.kill().unwrap(); // SIGKILL, possibly in the middle of the next commit
                    break;
                }
            }
        }
        let _ = child.wait();
        let db = StateDb::open(&path).unwrap();
        let latest = db.latest_version().unwrap().unwrap();
        let last_reported = reported.last().unwrap().0;
        assert!(
            latest == last_reported || latest == last_reported + 1,
            "latest {latest}, last reported {last_reported}"
        );
        for (v, root) in &reported {
            assert_eq!(&db.block(*v).unwrap().state_root.to_string(), root);
        }
    }
    // An uninterrupted run reaches the same roots.
    let reference = StateDb::in_memory().unwrap();
    let db = StateDb::open(&path).unwrap();
    let latest = db.latest_version().unwrap().unwrap();
    for v in 0..=latest {
        assert_eq!(
            commit(&reference, v),
            db.block(v).unwrap().state_root,
            "block {v}"
        );
    }
    // And the same latest values, rebuilt after each kill from the value history.
    for k in 0..500u64 {
        let key = format!("key-{k}").into_bytes();
        assert_eq!(
            db.get(&key).unwrap(),
            reference.get(&key).unwrap(),
            "key-{k}"
        );
        let (value, proof) = db.prove(&key, latest).unwrap();
        assert_eq!(value, reference.get(&key).unwrap());
        wisp_state::verify_proof(
            db.block(latest).unwrap().state_root,
            &key,
            value.as_deref(),
            &proof,
        )
        .unwrap();
    }
}
