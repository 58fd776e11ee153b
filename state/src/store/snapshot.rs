//! State snapshots: a block's whole state served in key-hash order, page by page, each page
//! with a range proof against the block's state root, and restored into an empty store.
//!
//! This is how a node joins a chain without executing it from genesis (Diem's state sync,
//! whose restore `jmt` keeps as `jmt::restore`): the new node learns a state root it trusts
//! (for a committee chain, from a finalization certificate), then asks any node for the state
//! under it. Each page is checked as it arrives — the leaves so far together with the proof's
//! right siblings must hash to the root — so a lying server is caught at its first wrong page,
//! not after the node has stored gigabytes; and the finished tree's root is compared with the
//! trusted one, so a server cannot leave keys out at the end either.
//!
//! What a restored store holds: the tree and values of the snapshot's block (so its state can
//! be proven and the next block executed on it) and that block's header. Blocks before it,
//! their receipts and the node's indexes of them are not there:
//! [`StateDb::oldest_retained`] is the snapshot's block.

use super::*;
use jmt::restore::{JellyfishMerkleRestore, StateSnapshotReceiver};
use jmt::storage::{NodeBatch, TreeWriter};
use jmt::{JellyfishMerkleIterator, RootHash};
use std::sync::Arc;

/// Most entries in one [`StateChunk`] a node serves.
pub const MAX_CHUNK_ENTRIES: usize = 4096;

/// Bytes of values after which a node ends a [`StateChunk`] (a chunk always holds at least one
/// entry, so one larger value still goes out: 4 MiB).
pub const MAX_CHUNK_BYTES: usize = 4 << 20;

/// One page of a block's state ([`StateDb::state_chunk`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateChunk {
    /// Key hashes (blake2b-256 of the state key) and values, in increasing key-hash order.
    pub entries: Vec<([u8; 32], Vec<u8>)>,
    /// jmt's `SparseMerkleRangeProof<Blake2bHasher>`, borsh-encoded: the right siblings of the
    /// path to the last entry, which with every entry up to it hash to the block's root.
    pub proof: Vec<u8>,
    /// No key follows the last entry: the snapshot is complete.
    pub last: bool,
}

impl StateDb {
    /// The state of block `version` after key hash `after` (from the first key with `None`):
    /// at most `max_entries` entries (1 to [`MAX_CHUNK_ENTRIES`]) and about `max_bytes` of
    /// values (at most [`MAX_CHUNK_BYTES`]; at least one entry), with their range proof. Pages
    /// taken one after the other from `None` give every key of the block exactly once, whatever
    /// blocks are committed meanwhile, as long as the block stays retained.
    ///
    /// # Errors
    /// [`StateError::UnknownBlock`] if the block is not committed; [`StateError::Pruned`] if it
    /// is older than the retention window; [`StateError::Tree`] on a tree inconsistency.
    pub fn state_chunk(
        &self,
        version: u64,
        after: Option<[u8; 32]>,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<StateChunk> {
        if self.latest_version()?.is_none_or(|latest| version > latest) {
            return Err(StateError::UnknownBlock(version));
        }
        let oldest = self.oldest_retained()?;
        if version < oldest {
            return Err(StateError::Pruned { version, oldest });
        }
        let max_entries = max_entries.clamp(1, MAX_CHUNK_ENTRIES);
        let max_bytes = max_bytes.min(MAX_CHUNK_BYTES);
        let tree_err = |e: anyhow::Error| StateError::Tree(e.to_string());
        let (txn, snapshot, unwritten) = self.snapshot_with_txn()?;
        // jmt's iterator takes its reader in an `Arc`; it never leaves this thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let reader = Arc::new(Reader::new(self, (&txn, unwritten), Some(&snapshot)));
        let mut leaves = JellyfishMerkleIterator::new(
            reader.clone(),
            version,
            KeyHash(after.unwrap_or_default()),
        )
        .map_err(tree_err)?
        .peekable();
        let mut entries = Vec::new();
        let mut bytes = 0usize;
        while entries.len() < max_entries && (entries.is_empty() || bytes < max_bytes) {
            let Some(leaf) = leaves.next() else { break };
            let (key, value) = leaf.map_err(tree_err)?;
            // The iterator starts at `after` itself, which the previous page ended with.
            if Some(key.0) == after {
                continue;
            }
            bytes += value.len();
            entries.push((key.0, value));
        }
        let last = match leaves.peek() {
            None => true,
            Some(Ok(_)) => false,
            Some(Err(e)) => return Err(StateError::Tree(e.to_string())),
        };
        let proof = match entries.last() {
            Some((key, _)) => {
                let tree = JellyfishMerkleTree::<_, Blake2bHasher>::new(reader.as_ref());
                let proof = tree
                    .get_range_proof(KeyHash(*key), version)
                    .map_err(tree_err)?;
                borsh::to_vec(&proof).map_err(db_err)?
            }
            None => Vec::new(),
        };
        Ok(StateChunk {
            entries,
            proof,
            last,
        })
    }

    /// Starts restoring the state of the block `header` describes into this store, which must
    /// be empty: [`Restore::add_chunk`] takes the pages of [`StateDb::state_chunk`] in order,
    /// each checked against `header.state_root`, and [`Restore::finish`] checks the whole tree
    /// and commits the header. Pages go to disk as they come (not durably until the finish).
    ///
    /// # Errors
    /// [`StateError::Snapshot`] if the store already holds blocks or tree nodes (restore into a
    /// new database file, and move it into place once finished).
    pub fn begin_restore(&self, header: &BlockHeader) -> Result<Restore<'_>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let blocks = txn
            .open_table(BLOCKS)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?;
        let nodes = txn
            .open_table(NODES)
            .map_err(db_err)?
            .len()
            .map_err(db_err)?;
        if blocks > 0 || nodes > 0 {
            return Err(StateError::Snapshot(
                "a snapshot is restored into an empty store only".into(),
            ));
        }
        let collected = Arc::new(Collected::default());
        let restore = JellyfishMerkleRestore::new_overwrite(
            collected.clone(),
            header.index,
            RootHash(header.state_root.0),
        )
        .map_err(|e| StateError::Snapshot(e.to_string()))?;
        Ok(Restore {
            db: self,
            header: header.clone(),
            restore: Some(restore),
            collected,
            keys: 0,
            value_bytes: 0,
            last_key: None,
        })
    }
}

/// The tree nodes and values jmt's restore hands over, until [`Restore`] writes them.
#[derive(Default)]
struct Collected(Mutex<Vec<NodeBatch>>);

impl Collected {
    fn take(&self) -> Vec<NodeBatch> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }
}

impl TreeWriter for Collected {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(batch.clone());
        Ok(())
    }
}

/// A restore in progress ([`StateDb::begin_restore`]).
pub struct Restore<'a> {
    db: &'a StateDb,
    header: BlockHeader,
    /// `None` once a page was refused: the restore cannot go on.
    restore: Option<JellyfishMerkleRestore<Blake2bHasher>>,
    collected: Arc<Collected>,
    keys: u64,
    value_bytes: u64,
    last_key: Option<[u8; 32]>,
}

impl Restore<'_> {
    /// The block whose state is being restored.
    pub fn version(&self) -> u64 {
        self.header.index
    }

    /// Keys restored so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Bytes of values restored so far.
    pub fn value_bytes(&self) -> u64 {
        self.value_bytes
    }

    /// The last key hash restored: where the next page starts after.
    pub fn last_key(&self) -> Option<[u8; 32]> {
        self.last_key
    }

    /// Checks the next page (`entries` in increasing key-hash order after the last page's,
    /// `proof` as [`StateChunk::proof`]) against the block's state root and writes it.
    ///
    /// # Errors
    /// [`StateError::Snapshot`] if the page is empty, out of order, or does not hash to the
    /// root with its proof (nothing of it is kept, and the restore cannot go on: start again
    /// into a new file); [`StateError::Db`] if writing fails.
    pub fn add_chunk(&mut self, entries: Vec<([u8; 32], Vec<u8>)>, proof: &[u8]) -> Result<()> {
        let refused = |why: String| StateError::Snapshot(why);
        let Some(restore) = self.restore.as_mut() else {
            return Err(refused("an earlier page was refused".into()));
        };
        if entries.is_empty() {
            return Err(refused("an empty page".into()));
        }
        if entries
            .first()
            .zip(self.last_key.as_ref())
            .is_some_and(|((first, _), last)| first <= last)
        {
            return Err(refused(
                "a page that does not follow the previous one".into(),
            ));
        }
        let proof: jmt::proof::SparseMerkleRangeProof<Blake2bHasher> = borsh::from_slice(proof)
            .map_err(|e| refused(format!("the range proof does not decode: {e}")))?;
        let last = entries.last().map(|(k, _)| *k);
        let count = entries.len() as u64;
        let bytes: u64 = entries.iter().map(|(_, v)| v.len() as u64).sum();
        let chunk: Vec<(KeyHash, OwnedValue)> =
            entries.into_iter().map(|(k, v)| (KeyHash(k), v)).collect();
        // jmt's restore asserts its own invariants; a page a stranger crafted must not bring the
        // node down with them.
        let added = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            restore.add_chunk(chunk, proof)
        }));
        match added {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.restore = None;
                return Err(refused(format!(
                    "the page after {} keys does not check against the state root of block {}: {e}",
                    self.keys, self.header.index
                )));
            }
            Err(_) => {
                self.restore = None;
                return Err(refused(format!(
                    "the page after {} keys broke the tree restore",
                    self.keys
                )));
            }
        }
        self.write(self.collected.take(), redb::Durability::None)?;
        self.keys += count;
        self.value_bytes += bytes;
        self.last_key = last;
        Ok(())
    }

    /// Ends the restore: writes the tree's last nodes, checks that the whole tree hashes to the
    /// block's state root (no key was left out), and commits the header, the block's
    /// `receipts` (checked against its receipts root) and `meta` (as [`StateDb::commit`]'s) in
    /// one durable transaction. Afterwards the store is at the block, as if it had committed
    /// it, without the blocks before.
    ///
    /// # Errors
    /// [`StateError::Snapshot`] if no page was added, the tree does not hash to the root (a
    /// server left keys out) or the receipts are not the block's; [`StateError::Db`] if
    /// writing fails.
    pub fn finish(mut self, receipts: &[Receipt], meta: &[(&str, Vec<u8>)]) -> Result<()> {
        let version = self.header.index;
        let Some(restore) = self.restore.take() else {
            return Err(StateError::Snapshot("an earlier page was refused".into()));
        };
        if self.keys == 0 {
            return Err(StateError::Snapshot("no page was restored".into()));
        }
        if BlockHeader::receipts_commitment(receipts) != self.header.receipts_root {
            return Err(StateError::Snapshot(format!(
                "the {} receipts given are not those of block {version}",
                receipts.len()
            )));
        }
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| restore.finish()));
        match finished {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(StateError::Snapshot(e.to_string())),
            Err(_) => return Err(StateError::Snapshot("the tree restore broke".into())),
        }
        self.write(self.collected.take(), redb::Durability::None)?;
        let root = {
            let (txn, unwritten) = self.db.begin_read_tip()?;
            let reader = Reader::new(self.db, (&txn, unwritten), None);
            JellyfishMerkleTree::<_, Blake2bHasher>::new(&reader)
                .get_root_hash(version)
                .map_err(|e| StateError::Snapshot(e.to_string()))?
        };
        if root.0 != self.header.state_root.0 {
            return Err(StateError::Snapshot(format!(
                "the restored state of block {version} hashes to {}, not to its header's state root {}: keys are missing",
                Hash32(root.0),
                self.header.state_root
            )));
        }
        let mut memory = self.db.memory();
        let txn = self.db.db.begin_write().map_err(db_err)?;
        {
            let header = borsh::to_vec(&self.header).map_err(db_err)?;
            txn.open_table(BLOCKS)
                .map_err(db_err)?
                .insert(version, header.as_slice())
                .map_err(db_err)?;
            let mut store = txn.open_table(STORE).map_err(db_err)?;
            store.insert("flushed_through", version).map_err(db_err)?;
            if let Some(before) = version.checked_sub(1) {
                store.insert("pruned_through", before).map_err(db_err)?;
            }
            let mut table = txn.open_table(META).map_err(db_err)?;
            for (name, bytes) in meta {
                table.insert(*name, bytes.as_slice()).map_err(db_err)?;
            }
            let mut table = txn.open_table(RECEIPTS).map_err(db_err)?;
            for r in receipts {
                let bytes = borsh::to_vec(r).map_err(db_err)?;
                table
                    .insert(r.request_id.0.as_slice(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            let ids: Vec<RequestId> = receipts.iter().map(|r| r.request_id).collect();
            let ids = borsh::to_vec(&ids).map_err(db_err)?;
            txn.open_table(BLOCK_REQUESTS)
                .map_err(db_err)?
                .insert(version, ids.as_slice())
                .map_err(db_err)?;
        }
        index_events(&txn, version, receipts, false)?;
        txn.commit().map_err(db_err)?;
        memory.recent = Recent::new();
        memory.recent_bytes = 0;
        memory.flushed_through = Some(version);
        Ok(())
    }

    /// Writes what jmt's restore froze: tree nodes, and the values as the block's history and
    /// latest values.
    fn write(&self, batches: Vec<NodeBatch>, durability: redb::Durability) -> Result<()> {
        let mut txn = self.db.db.begin_write().map_err(db_err)?;
        txn.set_durability(durability).map_err(db_err)?;
        {
            let mut nodes = txn.open_table(NODES).map_err(db_err)?;
            let mut history = txn.open_table(HISTORY).map_err(db_err)?;
            let mut latest = txn.open_table(LATEST).map_err(db_err)?;
            for batch in &batches {
                for (key, node) in batch.nodes() {
                    let v = borsh::to_vec(node).map_err(db_err)?;
                    nodes
                        .insert(node_key_bytes(key)?.as_slice(), v.as_slice())
                        .map_err(db_err)?;
                }
                for ((version, key), value) in batch.values() {
                    let entry = HistoryEntry {
                        prev: None,
                        value: value.clone(),
                    };
                    let bytes = borsh::to_vec(&entry).map_err(db_err)?;
                    history
                        .insert(history_key(*version, &key.0).as_slice(), bytes.as_slice())
                        .map_err(db_err)?;
                    let record = Latest {
                        version: *version,
                        value: value.clone(),
                    };
                    latest
                        .insert(key.0.as_slice(), record.encode().as_slice())
                        .map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::header;

    /// Commits block `version` with `changes` (`None` deletes); returns its root.
    fn commit(db: &StateDb, version: u64, changes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Hash32 {
        let pending = db.prepare(version, changes).unwrap();
        let root = pending.root();
        db.commit(pending, &header(version, root), &[], &[])
            .unwrap();
        root
    }

    fn key(i: u32) -> Vec<u8> {
        format!("key-{i}").into_bytes()
    }

    /// A source store at block 2: 300 keys at block 0, then overwrites, deletions and new
    /// keys at blocks 1 and 2. Returns it and its headers.
    fn source(dir: &Path) -> (StateDb, Vec<BlockHeader>) {
        let db = StateDb::open(&dir.join("source.redb")).unwrap();
        let roots = [
            commit(
                &db,
                0,
                (0..300)
                    .map(|i| (key(i), Some(vec![i as u8; 1 + i as usize % 50])))
                    .collect(),
            ),
            commit(
                &db,
                1,
                (0..100)
                    .map(|i| (key(i), Some(b"one".to_vec())))
                    .chain((100..150).map(|i| (key(i), None)))
                    .chain((300..320).map(|i| (key(i), Some(b"new".to_vec()))))
                    .collect(),
            ),
            commit(
                &db,
                2,
                (0..40).map(|i| (key(i), Some(b"two".to_vec()))).collect(),
            ),
        ];
        let headers = roots
            .into_iter()
            .enumerate()
            .map(|(i, root)| header(i as u64, root))
            .collect();
        (db, headers)
    }

    /// Every page of block `version` of `db`, `max_entries` at a time.
    fn pages(db: &StateDb, version: u64, max_entries: usize) -> Vec<StateChunk> {
        let mut pages: Vec<StateChunk> = Vec::new();
        loop {
            let after = pages.last().and_then(|p| p.entries.last()).map(|(k, _)| *k);
            let page = db
                .state_chunk(version, after, max_entries, MAX_CHUNK_BYTES)
                .unwrap();
            let last = page.last;
            pages.push(page);
            if last {
                return pages;
            }
        }
    }

    /// A store restored from an older block's pages (served while the source went on) holds
    /// that block's values, proves them, refuses older blocks, and commits the next blocks
    /// to the same roots as the source, before and after reopening.
    #[test]
    fn a_restored_store_holds_the_blocks_state_and_goes_on_like_the_source() {
        let dir = tempfile::tempdir().unwrap();
        let (src, headers) = source(dir.path());
        let pages = pages(&src, 1, 7);
        let keys: usize = pages.iter().map(|p| p.entries.len()).sum();
        // 300 + 20 new - 50 deleted, and the block marker.
        assert_eq!(keys, 271);
        assert!(pages.len() > 30, "{} pages", pages.len());
        let path = dir.path().join("restored.redb");
        {
            let db = StateDb::open(&path).unwrap();
            let mut restore = db.begin_restore(&headers[1]).unwrap();
            for page in &pages {
                restore
                    .add_chunk(page.entries.clone(), &page.proof)
                    .unwrap();
            }
            assert_eq!(restore.keys(), 271);
            restore
                .finish(&[], &[("who", b"restored".to_vec())])
                .unwrap();
            assert_eq!(db.latest_version().unwrap(), Some(1));
            assert_eq!(db.oldest_retained().unwrap(), 1);
            assert_eq!(db.meta("who").unwrap(), Some(b"restored".to_vec()));
            for i in [0, 99, 100, 149, 150, 299, 300, 319] {
                let (at_source, _) = src.prove(&key(i), 1).unwrap();
                assert_eq!(db.get(&key(i)).unwrap(), at_source, "key {i}");
                let (value, proof) = db.prove(&key(i), 1).unwrap();
                assert_eq!(value, at_source);
                crate::verify_proof(headers[1].state_root, &key(i), value.as_deref(), &proof)
                    .unwrap();
            }
            assert!(matches!(
                db.prove(&key(0), 0),
                Err(StateError::Pruned {
                    version: 0,
                    oldest: 1
                })
            ));
            let next = (0..40).map(|i| (key(i), Some(b"two".to_vec()))).collect();
            assert_eq!(commit(&db, 2, next), headers[2].state_root);
        }
        let db = StateDb::open(&path).unwrap();
        assert_eq!(db.get(&key(5)).unwrap(), Some(b"two".to_vec()));
        assert_eq!(db.get(&key(60)).unwrap(), Some(b"one".to_vec()));
        assert_eq!(db.get(&key(120)).unwrap(), None);
        let changes = vec![(key(7), None), (key(400), Some(b"x".to_vec()))];
        assert_eq!(commit(&db, 3, changes.clone()), commit(&src, 3, changes));
        // The restored store serves the same pages as the source.
        assert_eq!(pages_of(&db, 3), pages_of(&src, 3));
    }

    fn pages_of(db: &StateDb, version: u64) -> Vec<([u8; 32], Vec<u8>)> {
        pages(db, version, 50)
            .into_iter()
            .flat_map(|p| p.entries)
            .collect()
    }

    /// A page with a changed value, a missing key, a key out of order, a proof that does not
    /// decode, or a missing last page is refused; so is a store that is not empty.
    #[test]
    fn pages_that_do_not_prove_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (src, headers) = source(dir.path());
        let pages = pages(&src, 2, 25);
        let restore_with = |name: &str, edit: &dyn Fn(&mut Vec<StateChunk>)| {
            let mut pages = pages.clone();
            edit(&mut pages);
            let db = StateDb::open(&dir.path().join(name)).unwrap();
            let mut restore = db.begin_restore(&headers[2]).unwrap();
            for page in &pages {
                restore.add_chunk(page.entries.clone(), &page.proof)?;
            }
            restore.finish(&[], &[])?;
            Ok::<_, StateError>(())
        };
        let refused = |r: Result<()>, what: &str| match r {
            Err(StateError::Snapshot(why)) => assert!(why.contains(what), "{why}"),
            other => panic!("expected a refusal naming {what:?}, got {other:?}"),
        };
        refused(
            restore_with("changed.redb", &|p| p[3].entries[4].1.push(0)),
            "Root hashes do not match",
        );
        refused(
            restore_with("missing.redb", &|p| {
                p[3].entries.remove(4);
            }),
            "Root hashes do not match",
        );
        refused(
            restore_with("again.redb", &|p| p.insert(3, p[2].clone())),
            "does not follow",
        );
        refused(
            restore_with("order.redb", &|p| p[2].entries.swap(0, 1)),
            "increasing order",
        );
        refused(
            restore_with("proof.redb", &|p| p[1].proof = vec![7; 5]),
            "does not decode",
        );
        refused(
            restore_with("end.redb", &|p| {
                p.pop();
            }),
            "keys are missing",
        );
        restore_with("whole.redb", &|_| {}).unwrap();
        // Receipts that are not the block's.
        let db = StateDb::open(&dir.path().join("receipts.redb")).unwrap();
        let mut claimed = headers[2].clone();
        claimed.receipts_root = Hash32([5; 32]);
        let mut restore = db.begin_restore(&claimed).unwrap();
        for page in &pages {
            restore
                .add_chunk(page.entries.clone(), &page.proof)
                .unwrap();
        }
        refused(restore.finish(&[], &[]), "receipts given");
        assert_eq!(db.latest_version().unwrap(), None);
        // Another block's root: the first page already fails.
        let db = StateDb::open(&dir.path().join("other.redb")).unwrap();
        let mut restore = db.begin_restore(&headers[1]).unwrap();
        refused(
            restore.add_chunk(pages[0].entries.clone(), &pages[0].proof),
            "does not check",
        );
        refused(
            restore.add_chunk(pages[1].entries.clone(), &pages[1].proof),
            "refused",
        );
        match src.begin_restore(&headers[2]) {
            Err(StateError::Snapshot(why)) => assert!(why.contains("empty store"), "{why}"),
            other => panic!("a full store took a restore: {:?}", other.is_ok()),
        }
    }

    /// Pages are bounded: at most the asked entries, at most about the asked bytes but at least
    /// one entry, and a block that is not committed is an error.
    #[test]
    fn pages_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let (src, _) = source(dir.path());
        let page = src
            .state_chunk(2, None, 1_000_000, MAX_CHUNK_BYTES)
            .unwrap();
        assert_eq!(page.entries.len(), 271);
        assert!(page.last);
        let page = src.state_chunk(2, None, 10, 1).unwrap();
        assert_eq!(page.entries.len(), 1);
        assert!(!page.last);
        let page = src.state_chunk(2, None, 10, 60).unwrap();
        let bytes: usize = page.entries.iter().map(|(_, v)| v.len()).sum();
        assert!(
            page.entries.len() > 1 && (60..60 + 50).contains(&bytes),
            "{bytes}"
        );
        assert!(matches!(
            src.state_chunk(3, None, 10, 100),
            Err(StateError::UnknownBlock(3))
        ));
    }
}
