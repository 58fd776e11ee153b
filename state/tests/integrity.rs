//! Hardening defect 22: the store trusted its caller's version at commit and read a missing
//! undo record as "nothing to undo". Undo now reads the value history, whose entries a block
//! always has (at least the block marker's).

use redb::{ReadableDatabase, ReadableTable};
use std::collections::BTreeMap;
use wisp_core::{BlockHeader, ChainId, Hash32};
use wisp_state::{StateDb, StateError};

fn header(index: u64, root: Hash32) -> BlockHeader {
    BlockHeader {
        chain: ChainId([1; 32]),
        index,
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
    }
}

fn changes(key: &[u8], value: &[u8]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    BTreeMap::from([(key.to_vec(), Some(value.to_vec()))])
}

#[test]
fn a_commit_must_be_the_next_block_and_match_its_header() {
    let db = StateDb::in_memory().unwrap();
    let first = db.prepare(0, changes(b"\x01\x00\x00\x00a", b"1")).unwrap();
    let root = first.root();
    db.commit(first, &header(0, root), &[], &[]).unwrap();

    // Two blocks prepared on the same parent: only the first to commit may.
    let a = db.prepare(1, changes(b"\x01\x00\x00\x00a", b"2")).unwrap();
    let b = db.prepare(1, changes(b"\x01\x00\x00\x00a", b"3")).unwrap();
    let (ra, rb) = (a.root(), b.root());
    db.commit(a, &header(1, ra), &[], &[]).unwrap();
    assert!(matches!(
        db.commit(b, &header(1, rb), &[], &[]),
        Err(StateError::OutOfOrder { .. })
    ));
    assert_eq!(db.get(b"\x01\x00\x00\x00a").unwrap(), Some(b"2".to_vec()));

    // A header that is not the prepared block's.
    let c = db.prepare(2, changes(b"\x01\x00\x00\x00a", b"4")).unwrap();
    let rc = c.root();
    assert!(matches!(
        db.commit(c, &header(7, rc), &[], &[]),
        Err(StateError::OutOfOrder { .. })
    ));
    assert_eq!(db.latest_version().unwrap(), Some(1));
}

/// Defect 22: a block without its undo record was rolled back as if it had changed nothing,
/// leaving its writes in the latest state. A block whose value history is missing, or whose
/// previous values are, is now a `Corrupt` error, and nothing changes.
#[test]
fn a_missing_value_history_is_an_error_not_an_empty_undo() {
    for damaged_block in [1u64, 0] {
        missing_history_is_refused(damaged_block);
    }
}

fn missing_history_is_refused(damaged_block: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let db = StateDb::open(&path).unwrap();
        for (v, value) in [(0u64, b"1"), (1, b"2")] {
            let p = db.prepare(v, changes(b"\x01\x00\x00\x00a", value)).unwrap();
            let root = p.root();
            db.commit(p, &header(v, root), &[], &[]).unwrap();
        }
    }
    {
        // Damage the store the way a bug or a bad disk would: drop a block's value history
        // (keys: block index big-endian ‖ key hash).
        const HISTORY: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("history");
        let raw = redb::Database::open(&path).unwrap();
        let txn = raw.begin_write().unwrap();
        {
            let mut table = txn.open_table(HISTORY).unwrap();
            let lo = damaged_block.to_be_bytes();
            let hi = (damaged_block + 1).to_be_bytes();
            let keys: Vec<Vec<u8>> = table
                .range(lo.as_slice()..hi.as_slice())
                .unwrap()
                .map(|e| e.unwrap().0.value().to_vec())
                .collect();
            assert!(!keys.is_empty());
            for k in keys {
                table.remove(k.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let db = StateDb::open(&path).unwrap();
    let before = db.get(b"\x01\x00\x00\x00a").unwrap();
    assert!(matches!(
        db.rollback_to(Some(0)),
        Err(StateError::Corrupt(_))
    ));
    assert_eq!(db.latest_version().unwrap(), Some(1));
    assert_eq!(db.get(b"\x01\x00\x00\x00a").unwrap(), before);
    drop(db);
    // Nothing was written: the same answer after another reopen.
    let db = StateDb::open(&path).unwrap();
    assert_eq!(db.get(b"\x01\x00\x00\x00a").unwrap(), before);
}

/// A data directory written by an older Wisp (format 1: `jmt_nodes`, `jmt_values`, `undo`) is
/// refused with an error that says so, and left as it was.
#[test]
fn a_database_of_format_1_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        const OLD_NODES: redb::TableDefinition<&[u8], &[u8]> =
            redb::TableDefinition::new("jmt_nodes");
        let raw = redb::Database::create(&path).unwrap();
        let txn = raw.begin_write().unwrap();
        txn.open_table(OLD_NODES)
            .unwrap()
            .insert(b"k".as_slice(), b"v".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = StateDb::open(&path).err().expect("refused");
    assert!(
        matches!(
            err,
            StateError::Format {
                found: 1,
                supported: 4
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("another version of Wisp"), "{err}");
    // Still there for the user to move aside or inspect.
    const OLD_NODES: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("jmt_nodes");
    let raw = redb::Database::open(&path).unwrap();
    let txn = raw.begin_read().unwrap();
    assert!(txn
        .open_table(OLD_NODES)
        .unwrap()
        .get(b"k".as_slice())
        .unwrap()
        .is_some());
}

/// A data directory of format 2 (before requests carried a time lock: its records no longer
/// decode) is refused the same way.
#[test]
fn a_database_of_format_2_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        const STORE: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("store");
        let raw = redb::Database::create(&path).unwrap();
        let txn = raw.begin_write().unwrap();
        txn.open_table(STORE).unwrap().insert("format", 2).unwrap();
        txn.commit().unwrap();
    }
    let err = StateDb::open(&path).err().expect("refused");
    assert!(
        matches!(
            err,
            StateError::Format {
                found: 2,
                supported: 4
            }
        ),
        "{err}"
    );
}

/// A data directory of format 3 (every block's tree nodes written with the block) has what
/// format 4 reads, and opens as format 4.
#[test]
fn a_database_of_format_3_opens_as_format_4() {
    const STORE: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("store");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let raw = redb::Database::create(&path).unwrap();
        let txn = raw.begin_write().unwrap();
        txn.open_table(STORE).unwrap().insert("format", 3).unwrap();
        txn.commit().unwrap();
    }
    let db = StateDb::open(&path).unwrap();
    let p = db.prepare(0, changes(b"\x01\x00\x00\x00a", b"1")).unwrap();
    let root = p.root();
    db.commit(p, &header(0, root), &[], &[]).unwrap();
    drop(db);
    let raw = redb::Database::open(&path).unwrap();
    let txn = raw.begin_read().unwrap();
    let format = txn
        .open_table(STORE)
        .unwrap()
        .get("format")
        .unwrap()
        .map(|v| v.value());
    assert_eq!(format, Some(4));
}
