//! The on-disk store: jmt nodes and value history, the flat latest-value table, and the block
//! archive, all in one redb database file.
//!
//! Tables (keys → values):
//! - `jmt_nodes`: borsh(NodeKey) → borsh(Node)
//! - `jmt_values`: key hash ‖ version (u64 BE) → 0 (deleted) or 1 ‖ value
//! - `latest`: state key → value (only live keys)
//! - `blocks`: block index → borsh(BlockHeader)
//! - `receipts`: request id → borsh(Receipt)
//! - `block_requests`: block index → borsh(Vec<RequestId>)
//! - `meta`: name → bytes (the caller's metadata, committed with the block)
//! - `undo`: block index → borsh(Vec<(key, previous value)>), for [`StateDb::rollback_to`]
//! - `pending`: request id → bytes: requests a node acknowledged but has not executed yet (its
//!   mempool), written durably before the acknowledgement
//! - `local`: name → bytes: the node's own durable records outside consensus (its anchor
//!   transactions on L1), untouched by rollbacks
//! - `stale`: block index → borsh(StaleRecords): the tree nodes and value versions that block
//!   replaced, deleted once the block falls out of the retention window
//! - `pruned`: `"through"` → the last block index whose replaced records were deleted: no
//!   version at or before it can be proven or rolled back to

use crate::proof::{Blake2bHasher, StateProof};
use crate::{Result, StateError};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use std::collections::BTreeMap;
use std::path::Path;
use wisp_core::{BlockHeader, Hash32, Receipt, RequestId};

const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");
const VALUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_values");
const LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("latest");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const RECEIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("receipts");
const BLOCK_REQUESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("block_requests");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const UNDO: TableDefinition<u64, &[u8]> = TableDefinition::new("undo");
const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending");
const LOCAL: TableDefinition<&str, &[u8]> = TableDefinition::new("local");
const STALE: TableDefinition<u64, &[u8]> = TableDefinition::new("stale");
const PRUNED: TableDefinition<&str, u64> = TableDefinition::new("pruned");

/// Reserved state key holding the index of the last block (hname prefix 0 is never a contract).
pub const BLOCK_MARKER_KEY: &[u8] = b"\x00\x00\x00\x00block";

fn db_err(e: impl std::fmt::Display) -> StateError {
    StateError::Db(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt(e.to_string())
}

fn value_key(key_hash: &KeyHash, version: Version) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&key_hash.0);
    k[32..].copy_from_slice(&version.to_be_bytes());
    k
}

/// The authenticated state of one chain plus its block archive.
pub struct StateDb {
    db: Database,
    /// How many versions before the head stay provable; `u64::MAX` keeps every version.
    retain: std::sync::atomic::AtomicU64,
}

/// What a [`StateDb`] holds (entries, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// Keys with a value at the head.
    pub live_keys: u64,
    /// Tree nodes stored, of every retained version.
    pub tree_nodes: u64,
    /// Values stored, of every retained version (deletion markers included).
    pub value_versions: u64,
}

/// What a block made unreachable from its own and every later root: deleted once the block is
/// older than the retention window (see [`StateDb::set_retention`]).
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Default)]
struct StaleRecords {
    /// borsh(NodeKey) of tree nodes the block replaced.
    nodes: Vec<Vec<u8>>,
    /// `jmt_values` keys (key hash ‖ version) of values the block overwrote or deleted, and of
    /// its own deletion markers.
    values: Vec<[u8; 40]>,
}

/// A block's state changes hashed into the tree but not yet written: its root goes into the
/// block header, then [`StateDb::commit`] writes both.
pub struct PendingCommit {
    version: Version,
    root: Hash32,
    batch: TreeUpdateBatch,
    changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl PendingCommit {
    /// The state root after the block.
    pub fn root(&self) -> Hash32 {
        self.root
    }
    /// The block index (tree version).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// A consistent read-only view of the latest committed values, taken at one moment (one redb
/// read transaction): what a block's execution reads through.
pub struct Snapshot {
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl Snapshot {
    /// The value of `key` in this snapshot.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .table
            .get(key)
            .map_err(db_err)?
            .map(|v| v.value().to_vec()))
    }
}

/// jmt's view of committed state through one read transaction.
struct Reader<'a> {
    txn: &'a ReadTransaction,
}

impl TreeReader for Reader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let table = match self.txn.open_table(NODES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(anyhow::anyhow!(e.to_string())),
        };
        let key = borsh::to_vec(node_key)?;
        match table.get(key.as_slice())? {
            Some(bytes) => Ok(Some(borsh::from_slice(bytes.value())?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let table = match self.txn.open_table(VALUES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(anyhow::anyhow!(e.to_string())),
        };
        let lo = value_key(&key_hash, 0);
        let hi = value_key(&key_hash, max_version);
        let mut range = table.range(lo.as_slice()..=hi.as_slice())?;
        match range.next_back() {
            Some(entry) => {
                let (_, v) = entry?;
                let v = v.value();
                Ok(if v.first() == Some(&1) {
                    Some(v[1..].to_vec())
                } else {
                    None
                })
            }
            None => Ok(None),
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used by jmt's state restore, which Wisp does not use.
        Ok(None)
    }
}

impl StateDb {
    /// Opens (or creates) the database file at `path`.
    ///
    /// # Errors
    /// [`StateError::Db`] if the file cannot be opened or is not a redb database (or is locked by
    /// another process).
    pub fn open(path: &Path) -> Result<StateDb> {
        let db = Database::create(path)
            .map_err(|e| StateError::Db(format!("{}: {e}", path.display())))?;
        Self::init(db)
    }

    /// A database in memory, for the contract test harness: same behaviour, nothing on disk.
    ///
    /// # Errors
    /// [`StateError::Db`] if redb cannot set up its tables.
    pub fn in_memory() -> Result<StateDb> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_err)?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<StateDb> {
        let txn = db.begin_write().map_err(db_err)?;
        for table in [NODES, VALUES, LATEST, RECEIPTS] {
            txn.open_table(table).map_err(db_err)?;
        }
        txn.open_table(BLOCKS).map_err(db_err)?;
        txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
        txn.open_table(META).map_err(db_err)?;
        txn.open_table(UNDO).map_err(db_err)?;
        txn.open_table(PENDING).map_err(db_err)?;
        txn.open_table(LOCAL).map_err(db_err)?;
        txn.open_table(STALE).map_err(db_err)?;
        txn.open_table(PRUNED).map_err(db_err)?;
        txn.commit().map_err(db_err)?;
        Ok(StateDb {
            db,
            retain: std::sync::atomic::AtomicU64::new(u64::MAX),
        })
    }

    /// Keeps the tree nodes and value history of only the last `blocks` blocks, the head
    /// included (at least 1; `None`, the default, keeps every version: an archive). Each commit
    /// then deletes what the block `blocks` before it replaced, so the database grows with the live state rather
    /// than with every update. Older versions can no longer be proven
    /// ([`StateError::Pruned`]) nor rolled back to; headers and receipts are always kept.
    /// A larger window later does not bring pruned versions back.
    pub fn set_retention(&self, blocks: Option<u64>) {
        self.retain.store(
            blocks.map_or(u64::MAX, |b| b.max(1)),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The retention window set by [`StateDb::set_retention`] (`None`: every version is kept).
    pub fn retention(&self) -> Option<u64> {
        match self.retain.load(std::sync::atomic::Ordering::Relaxed) {
            u64::MAX => None,
            n => Some(n),
        }
    }

    /// The oldest block whose state can still be proven and rolled back to (`0` on an archive).
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn oldest_retained(&self) -> Result<u64> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(PRUNED).map_err(db_err)?;
        Ok(table
            .get("through")
            .map_err(db_err)?
            .map_or(0, |v| v.value() + 1))
    }

    /// Index of the last committed block, if any.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn latest_version(&self) -> Result<Option<u64>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(BLOCKS).map_err(db_err)?;
        let last = table.last().map_err(db_err)?;
        Ok(last.map(|(k, _)| k.value()))
    }

    /// A snapshot of the latest committed values (later commits do not show in it).
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn snapshot(&self) -> Result<Snapshot> {
        let txn = self.db.begin_read().map_err(db_err)?;
        Ok(Snapshot {
            table: txn.open_table(LATEST).map_err(db_err)?,
        })
    }

    /// The latest committed value of `key`.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(LATEST).map_err(db_err)?;
        Ok(table.get(key).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Hashes `changes` (`None` deletes) into tree version `version` on top of the latest
    /// committed version, without writing.
    ///
    /// # Errors
    /// [`StateError::OutOfOrder`] unless `version` is the next block index;
    /// [`StateError::Tree`] if the tree is inconsistent.
    pub fn prepare(
        &self,
        version: u64,
        changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> Result<PendingCommit> {
        let latest = self.latest_version()?;
        let expected = latest.map_or(0, |v| v + 1);
        if version != expected {
            return Err(StateError::OutOfOrder {
                latest,
                got: version,
            });
        }
        let txn = self.db.begin_read().map_err(db_err)?;
        let reader = Reader { txn: &txn };
        let tree = JellyfishMerkleTree::<_, Blake2bHasher>::new(&reader);
        // Every block writes its index under a reserved key (no contract hname is 0), so the
        // tree gets a new root even for a block without state changes.
        let mut changes = changes;
        changes.insert(
            BLOCK_MARKER_KEY.to_vec(),
            Some(version.to_le_bytes().to_vec()),
        );
        let tree_err = |e: anyhow::Error| StateError::Tree(e.to_string());
        // jmt's batch insertion builds each touched internal node once (the key-by-key path
        // rebuilds and rehashes the path to the root for every key) but cannot delete.
        let (root, batch) = if changes.values().all(Option::is_some) {
            let value_set: Vec<(KeyHash, OwnedValue)> = changes
                .iter()
                .filter_map(|(k, v)| Some((KeyHash::with::<Blake2bHasher>(k), v.clone()?)))
                .collect();
            let (roots, batch) = tree
                .batch_put_value_sets(vec![value_set], None, version)
                .map_err(tree_err)?;
            let root = roots
                .first()
                .copied()
                .ok_or_else(|| StateError::Tree("jmt returned no root".into()))?;
            (root, batch)
        } else {
            let value_set: Vec<(KeyHash, Option<OwnedValue>)> = changes
                .iter()
                .map(|(k, v)| (KeyHash::with::<Blake2bHasher>(k), v.clone()))
                .collect();
            tree.put_value_set(value_set, version).map_err(tree_err)?
        };
        Ok(PendingCommit {
            version,
            root: Hash32(root.0),
            batch,
            changes,
        })
    }

    /// Writes a prepared block: tree nodes and values, the flat latest values, the header, its
    /// receipts and `meta`, in one durable transaction.
    ///
    /// # Errors
    /// [`StateError::OutOfOrder`] if the header's index is not the prepared version, or another
    /// block was committed since [`StateDb::prepare`]; [`StateError::Db`] if the write fails.
    /// Nothing is written on error.
    pub fn commit(
        &self,
        pending: PendingCommit,
        header: &BlockHeader,
        receipts: &[Receipt],
        meta: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        if header.index != pending.version {
            return Err(StateError::OutOfOrder {
                latest: Some(pending.version),
                got: header.index,
            });
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            // The version must still be the next one: another commit since `prepare` would make
            // this block's tree nodes and undo record wrong (defect 22).
            let latest = txn
                .open_table(BLOCKS)
                .map_err(db_err)?
                .last()
                .map_err(db_err)?
                .map(|(k, _)| k.value());
            if pending.version != latest.map_or(0, |v| v + 1) {
                return Err(StateError::OutOfOrder {
                    latest,
                    got: pending.version,
                });
            }
            let mut nodes = txn.open_table(NODES).map_err(db_err)?;
            for (key, node) in pending.batch.node_batch.nodes() {
                let k = borsh::to_vec(key).map_err(db_err)?;
                let v = borsh::to_vec(node).map_err(db_err)?;
                nodes.insert(k.as_slice(), v.as_slice()).map_err(db_err)?;
            }
            let mut stale = StaleRecords {
                nodes: Vec::with_capacity(pending.batch.stale_node_index_batch.len()),
                values: Vec::new(),
            };
            for index in &pending.batch.stale_node_index_batch {
                stale
                    .nodes
                    .push(borsh::to_vec(&index.node_key).map_err(db_err)?);
            }
            let mut values = txn.open_table(VALUES).map_err(db_err)?;
            for ((version, key_hash), value) in pending.batch.node_batch.values() {
                // The value this one replaces is unreachable from this version on; a deletion
                // marker is itself only needed while older values exist.
                let lo = value_key(key_hash, 0);
                let hi = value_key(key_hash, version.saturating_sub(1));
                if *version > 0 {
                    if let Some(entry) = values
                        .range(lo.as_slice()..=hi.as_slice())
                        .map_err(db_err)?
                        .next_back()
                    {
                        let (k, _) = entry.map_err(db_err)?;
                        let mut key = [0u8; 40];
                        if k.value().len() == 40 {
                            key.copy_from_slice(k.value());
                            stale.values.push(key);
                        }
                    }
                }
                if value.is_none() {
                    stale.values.push(value_key(key_hash, *version));
                }
                let mut v = Vec::with_capacity(1 + value.as_ref().map_or(0, Vec::len));
                match value {
                    Some(bytes) => {
                        v.push(1);
                        v.extend_from_slice(bytes);
                    }
                    None => v.push(0),
                }
                values
                    .insert(value_key(key_hash, *version).as_slice(), v.as_slice())
                    .map_err(db_err)?;
            }
            let mut latest = txn.open_table(LATEST).map_err(db_err)?;
            let mut undo: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                Vec::with_capacity(pending.changes.len());
            for (key, value) in &pending.changes {
                undo.push((
                    key.clone(),
                    latest
                        .get(key.as_slice())
                        .map_err(db_err)?
                        .map(|v| v.value().to_vec()),
                ));
                match value {
                    Some(v) => latest
                        .insert(key.as_slice(), v.as_slice())
                        .map_err(db_err)?,
                    None => latest.remove(key.as_slice()).map_err(db_err)?,
                };
            }
            let undo_bytes = borsh::to_vec(&undo).map_err(db_err)?;
            txn.open_table(UNDO)
                .map_err(db_err)?
                .insert(pending.version, undo_bytes.as_slice())
                .map_err(db_err)?;
            let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
            let header_bytes = borsh::to_vec(header).map_err(db_err)?;
            blocks
                .insert(pending.version, header_bytes.as_slice())
                .map_err(db_err)?;
            let mut receipts_table = txn.open_table(RECEIPTS).map_err(db_err)?;
            let mut ids = Vec::with_capacity(receipts.len());
            for r in receipts {
                let bytes = borsh::to_vec(r).map_err(db_err)?;
                receipts_table
                    .insert(r.request_id.0.as_slice(), bytes.as_slice())
                    .map_err(db_err)?;
                ids.push(r.request_id);
            }
            let mut block_requests = txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
            let ids_bytes = borsh::to_vec(&ids).map_err(db_err)?;
            block_requests
                .insert(pending.version, ids_bytes.as_slice())
                .map_err(db_err)?;
            let mut meta_table = txn.open_table(META).map_err(db_err)?;
            for (name, bytes) in meta {
                meta_table.insert(*name, bytes.as_slice()).map_err(db_err)?;
            }
            let stale_bytes = borsh::to_vec(&stale).map_err(db_err)?;
            txn.open_table(STALE)
                .map_err(db_err)?
                .insert(pending.version, stale_bytes.as_slice())
                .map_err(db_err)?;
        }
        let retain = self.retain.load(std::sync::atomic::Ordering::Relaxed);
        if let Some(through) = pending.version.checked_sub(retain) {
            Self::prune_through(&txn, through)?;
        }
        txn.commit().map_err(db_err)
    }

    /// Deletes the records replaced by blocks up to `through` and their undo records: roots
    /// from `through` on stay complete (a node replaced at block `s` is in no root at or after
    /// `s`).
    fn prune_through(txn: &redb::WriteTransaction, through: u64) -> Result<()> {
        let mut stale_table = txn.open_table(STALE).map_err(db_err)?;
        let mut nodes = txn.open_table(NODES).map_err(db_err)?;
        let mut values = txn.open_table(VALUES).map_err(db_err)?;
        let mut undo = txn.open_table(UNDO).map_err(db_err)?;
        let due: Vec<u64> = stale_table
            .range(..=through)
            .map_err(db_err)?
            .map(|entry| entry.map(|(k, _)| k.value()))
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)?;
        for version in due {
            let Some(bytes) = stale_table.remove(version).map_err(db_err)? else {
                continue;
            };
            let records: StaleRecords = borsh::from_slice(bytes.value()).map_err(corrupt)?;
            drop(bytes);
            for key in &records.nodes {
                nodes.remove(key.as_slice()).map_err(db_err)?;
            }
            for key in &records.values {
                values.remove(key.as_slice()).map_err(db_err)?;
            }
            undo.remove(version).map_err(db_err)?;
        }
        txn.open_table(PRUNED)
            .map_err(db_err)?
            .insert("through", through)
            .map_err(db_err)?;
        Ok(())
    }

    /// Removes every block after `version` (all of them if `None`) in one durable transaction:
    /// state, value history, headers, receipts. Used by the devnet's `dev_revert` and to undo
    /// blocks whose L1 reference a reorg removed. Metadata records are kept; the caller rewrites
    /// what it needs. Orphaned tree nodes stay on disk, unreachable from any kept root.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure (then nothing changed).
    pub fn rollback_to(&self, version: Option<u64>) -> Result<()> {
        let Some(latest) = self.latest_version()? else {
            return Ok(());
        };
        let first_removed = version.map_or(0, |v| v + 1);
        if first_removed > latest {
            return Ok(());
        }
        let oldest = self.oldest_retained()?;
        if version.is_none_or(|v| v < oldest) && oldest > 0 {
            return Err(StateError::Pruned {
                version: version.unwrap_or(0),
                oldest,
            });
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut stale_table = txn.open_table(STALE).map_err(db_err)?;
            let mut undo_table = txn.open_table(UNDO).map_err(db_err)?;
            let mut latest_table = txn.open_table(LATEST).map_err(db_err)?;
            let mut values = txn.open_table(VALUES).map_err(db_err)?;
            let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
            let mut block_requests = txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
            let mut receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
            for v in (first_removed..=latest).rev() {
                let undo: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                    match undo_table.remove(v).map_err(db_err)? {
                        Some(bytes) => borsh::from_slice(bytes.value()).map_err(corrupt)?,
                        // Every committed block has one; rolling back without it would keep
                        // that block's writes (defect 22 of the hardening review).
                        None => {
                            return Err(corrupt(format!("the undo record of block {v} is missing")))
                        }
                    };
                for (key, previous) in undo {
                    match previous {
                        Some(p) => latest_table
                            .insert(key.as_slice(), p.as_slice())
                            .map_err(db_err)?,
                        None => latest_table.remove(key.as_slice()).map_err(db_err)?,
                    };
                    let kh = KeyHash::with::<Blake2bHasher>(&key);
                    values
                        .remove(value_key(&kh, v).as_slice())
                        .map_err(db_err)?;
                }
                if let Some(ids) = block_requests.remove(v).map_err(db_err)? {
                    let ids: Vec<RequestId> = borsh::from_slice(ids.value()).map_err(corrupt)?;
                    for id in ids {
                        receipts.remove(id.0.as_slice()).map_err(db_err)?;
                    }
                }
                blocks.remove(v).map_err(db_err)?;
                // What the removed block replaced is live again.
                stale_table.remove(v).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)
    }

    /// The header of block `index`.
    ///
    /// # Errors
    /// [`StateError::UnknownBlock`] if not committed.
    pub fn block(&self, index: u64) -> Result<BlockHeader> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(BLOCKS).map_err(db_err)?;
        let bytes = table
            .get(index)
            .map_err(db_err)?
            .ok_or(StateError::UnknownBlock(index))?;
        borsh::from_slice(bytes.value()).map_err(corrupt)
    }

    /// The receipts of block `index`, in execution order.
    ///
    /// # Errors
    /// [`StateError::UnknownBlock`] if not committed.
    pub fn block_receipts(&self, index: u64) -> Result<Vec<Receipt>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
        let bytes = table
            .get(index)
            .map_err(db_err)?
            .ok_or(StateError::UnknownBlock(index))?;
        let ids: Vec<RequestId> = borsh::from_slice(bytes.value()).map_err(corrupt)?;
        let receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
        ids.iter()
            .map(|id| {
                let r = receipts
                    .get(id.0.as_slice())
                    .map_err(db_err)?
                    .ok_or_else(|| corrupt("receipt listed but missing"))?;
                borsh::from_slice(r.value()).map_err(corrupt)
            })
            .collect()
    }

    /// The receipt of request `id`, if it was executed.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn receipt(&self, id: &RequestId) -> Result<Option<Receipt>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(RECEIPTS).map_err(db_err)?;
        match table.get(id.0.as_slice()).map_err(db_err)? {
            Some(bytes) => Ok(Some(borsh::from_slice(bytes.value()).map_err(corrupt)?)),
            None => Ok(None),
        }
    }

    /// Durably records a request the node acknowledged (its mempool), under `id`; it survives a
    /// crash until [`StateDb::remove_pending`].
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; then nothing was recorded.
    pub fn put_pending(&self, id: &[u8], bytes: &[u8]) -> Result<()> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(PENDING)
            .map_err(db_err)?
            .insert(id, bytes)
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Forgets pending requests (executed, expired or evicted); unknown ids are ignored.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn remove_pending(&self, ids: &[&[u8]]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(PENDING).map_err(db_err)?;
            for id in ids {
                table.remove(*id).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)
    }

    /// Durably writes the node-local record `name` (outside consensus and the state root;
    /// rollbacks leave it alone).
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; then nothing was written.
    pub fn put_local(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let txn = self.db.begin_write().map_err(db_err)?;
        txn.open_table(LOCAL)
            .map_err(db_err)?
            .insert(name, bytes)
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Writes and deletes node-local records in one durable transaction: each `(name, Some(bytes))`
    /// is written, each `(name, None)` deleted; all or nothing.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; then nothing changed.
    pub fn write_local(&self, changes: &[(&str, Option<&[u8]>)]) -> Result<()> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(LOCAL).map_err(db_err)?;
            for (name, bytes) in changes {
                match bytes {
                    Some(bytes) => {
                        table.insert(*name, *bytes).map_err(db_err)?;
                    }
                    None => {
                        table.remove(*name).map_err(db_err)?;
                    }
                }
            }
        }
        txn.commit().map_err(db_err)
    }

    /// The node-local record `name`, if written.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn local(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(LOCAL).map_err(db_err)?;
        Ok(table.get(name).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Every pending request, by id order.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn pending(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(PENDING).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// A metadata record committed with a block.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(META).map_err(db_err)?;
        Ok(table.get(name).map_err(db_err)?.map(|v| v.value().to_vec()))
    }

    /// Counts of what the store holds, to watch its growth (and pruning) and for benchmarks.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn stats(&self) -> Result<StoreStats> {
        let txn = self.db.begin_read().map_err(db_err)?;
        Ok(StoreStats {
            live_keys: txn
                .open_table(LATEST)
                .map_err(db_err)?
                .len()
                .map_err(db_err)?,
            tree_nodes: txn
                .open_table(NODES)
                .map_err(db_err)?
                .len()
                .map_err(db_err)?,
            value_versions: txn
                .open_table(VALUES)
                .map_err(db_err)?
                .len()
                .map_err(db_err)?,
        })
    }

    /// `key`'s value (or absence) at block `version`, with a proof against that block's root.
    ///
    /// # Errors
    /// [`StateError::UnknownBlock`] if the block is not committed; [`StateError::Tree`] on a
    /// tree inconsistency.
    pub fn prove(&self, key: &[u8], version: u64) -> Result<(Option<Vec<u8>>, StateProof)> {
        if self.latest_version()?.is_none_or(|latest| version > latest) {
            return Err(StateError::UnknownBlock(version));
        }
        let oldest = self.oldest_retained()?;
        if version < oldest {
            return Err(StateError::Pruned { version, oldest });
        }
        let txn = self.db.begin_read().map_err(db_err)?;
        let reader = Reader { txn: &txn };
        let tree = JellyfishMerkleTree::<_, Blake2bHasher>::new(&reader);
        let (value, proof) = tree
            .get_with_proof(KeyHash::with::<Blake2bHasher>(key), version)
            .map_err(|e| StateError::Tree(e.to_string()))?;
        let bytes = borsh::to_vec(&proof).map_err(db_err)?;
        Ok((value, StateProof(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify_proof;
    use wisp_core::ChainId;

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

    fn commit(db: &StateDb, version: u64, changes: &[(&[u8], Option<&[u8]>)]) -> Hash32 {
        let changes = changes
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect();
        let pending = db.prepare(version, changes).unwrap();
        let root = pending.root();
        db.commit(pending, &header(version, root), &[], &[])
            .unwrap();
        root
    }

    #[test]
    fn roots_proofs_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let (r0, r1);
        {
            let db = StateDb::open(&path).unwrap();
            r0 = commit(&db, 0, &[(b"a", Some(b"1")), (b"b", Some(b"2"))]);
            r1 = commit(&db, 1, &[(b"a", None), (b"c", Some(b"3"))]);
            assert_ne!(r0, r1);
            assert_eq!(db.get(b"a").unwrap(), None);
            assert_eq!(db.get(b"c").unwrap(), Some(b"3".to_vec()));
            // Inclusion at block 0, exclusion at block 1, each against its own root.
            let (v, p) = db.prove(b"a", 0).unwrap();
            assert_eq!(v.as_deref(), Some(&b"1"[..]));
            verify_proof(r0, b"a", Some(b"1"), &p).unwrap();
            assert!(verify_proof(r0, b"a", Some(b"2"), &p).is_err());
            assert!(verify_proof(r1, b"a", Some(b"1"), &p).is_err());
            let (v, p) = db.prove(b"a", 1).unwrap();
            assert_eq!(v, None);
            verify_proof(r1, b"a", None, &p).unwrap();
            assert!(verify_proof(r1, b"a", Some(b"1"), &p).is_err());
            assert!(matches!(
                db.prove(b"a", 7),
                Err(StateError::UnknownBlock(7))
            ));
            assert!(matches!(
                db.prepare(5, BTreeMap::new()),
                Err(StateError::OutOfOrder { .. })
            ));
        }
        let db = StateDb::open(&path).unwrap();
        assert_eq!(db.latest_version().unwrap(), Some(1));
        assert_eq!(db.block(1).unwrap().state_root, r1);
        assert_eq!(db.get(b"b").unwrap(), Some(b"2".to_vec()));
    }

    /// With a retention window, the database stops growing with updates, every version in the
    /// window is provable and can be rolled back to, roots equal an archive's, and older
    /// versions answer [`StateError::Pruned`].
    #[test]
    fn pruning_keeps_the_window_and_bounds_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let archive = StateDb::open(&dir.path().join("archive.redb")).unwrap();
        let pruned = StateDb::open(&dir.path().join("pruned.redb")).unwrap();
        pruned.set_retention(Some(3));
        assert_eq!(pruned.retention(), Some(3));
        let keys: Vec<Vec<u8>> = (0..60u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let block = |v: u64| -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
            keys.iter()
                .enumerate()
                // Every block rewrites a third of the keys, deletes a few and re-creates them.
                .filter(|(i, _)| (*i as u64 + v).is_multiple_of(3))
                .map(|(i, k)| {
                    let value = !(i as u64 * 7 + v).is_multiple_of(11);
                    (
                        k.clone(),
                        value.then(|| (v * 100 + i as u64).to_le_bytes().to_vec()),
                    )
                })
                .collect()
        };
        let mut roots = Vec::new();
        let mut sizes = Vec::new();
        for v in 0..40u64 {
            let changes = block(v);
            let borrowed: Vec<(&[u8], Option<&[u8]>)> = changes
                .iter()
                .map(|(k, val)| (k.as_slice(), val.as_deref()))
                .collect();
            let root = commit(&archive, v, &borrowed);
            assert_eq!(commit(&pruned, v, &borrowed), root, "block {v}");
            roots.push(root);
            sizes.push(pruned.stats().unwrap());
        }
        // Bounded: the pruned store holds as much at block 39 as at block 10, the archive more.
        let (early, late) = (sizes[10], sizes[39]);
        assert!(
            late.tree_nodes <= early.tree_nodes + early.tree_nodes / 5,
            "{early:?} {late:?}"
        );
        assert!(late.value_versions <= early.value_versions + early.value_versions / 5);
        assert!(archive.stats().unwrap().tree_nodes > 3 * late.tree_nodes);
        assert_eq!(archive.stats().unwrap().live_keys, late.live_keys);
        // The window [37, 39] is provable, for present and deleted keys alike.
        assert_eq!(pruned.oldest_retained().unwrap(), 37);
        for v in 37..40u64 {
            for k in &keys {
                let (value, proof) = pruned.prove(k, v).unwrap();
                assert_eq!(value, archive.prove(k, v).unwrap().0);
                verify_proof(roots[v as usize], k, value.as_deref(), &proof).unwrap();
            }
        }
        assert!(matches!(
            pruned.prove(&keys[0], 36),
            Err(StateError::Pruned {
                version: 36,
                oldest: 37
            })
        ));
        assert!(matches!(
            pruned.rollback_to(Some(36)),
            Err(StateError::Pruned { .. })
        ));
        // Rolling back to the window's start and re-executing gives the same roots, and the
        // records the undone blocks replaced are live again.
        pruned.rollback_to(Some(37)).unwrap();
        for v in 38..45u64 {
            let changes = block(v);
            let borrowed: Vec<(&[u8], Option<&[u8]>)> = changes
                .iter()
                .map(|(k, val)| (k.as_slice(), val.as_deref()))
                .collect();
            let expected = if v < 40 {
                roots[v as usize]
            } else {
                commit(&archive, v, &borrowed)
            };
            assert_eq!(commit(&pruned, v, &borrowed), expected, "block {v}");
        }
        for k in &keys {
            let (value, proof) = pruned.prove(k, 44).unwrap();
            assert_eq!(value, archive.get(k).unwrap());
            verify_proof(
                archive.block(44).unwrap().state_root,
                k,
                value.as_deref(),
                &proof,
            )
            .unwrap();
        }
    }

    /// Blocks without deletions use jmt's batch insertion, others its key-by-key path: both
    /// must give the tree the same root (an absent key's deletion changes no root).
    #[test]
    fn batch_and_key_by_key_insertion_agree() {
        let a = StateDb::in_memory().unwrap();
        let b = StateDb::in_memory().unwrap();
        for v in 0..12u64 {
            let keys: Vec<Vec<u8>> = (0..200u64)
                .map(|i| (i * (v + 1) % 257).to_le_bytes().to_vec())
                .collect();
            let value = v.to_le_bytes();
            let mut changes: Vec<(&[u8], Option<&[u8]>)> = keys
                .iter()
                .map(|k| (k.as_slice(), Some(value.as_slice())))
                .collect();
            let batch_root = commit(&a, v, &changes);
            changes.push((b"never written", None));
            assert_eq!(commit(&b, v, &changes), batch_root, "block {v}");
        }
    }

    #[test]
    fn rollback_restores_state_roots_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        let r0 = commit(&db, 0, &[(b"a", Some(b"1"))]);
        let r1 = commit(&db, 1, &[(b"a", Some(b"2")), (b"b", Some(b"x"))]);
        commit(&db, 2, &[(b"a", None)]);
        db.rollback_to(Some(0)).unwrap();
        assert_eq!(db.latest_version().unwrap(), Some(0));
        assert_eq!(db.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(db.get(b"b").unwrap(), None);
        let (v, p) = db.prove(b"a", 0).unwrap();
        assert_eq!(v, Some(b"1".to_vec()));
        verify_proof(r0, b"a", Some(b"1"), &p).unwrap();
        // Re-executing the same block 1 gives the same root as before.
        assert_eq!(
            commit(&db, 1, &[(b"a", Some(b"2")), (b"b", Some(b"x"))]),
            r1
        );
        let (v, _) = db.prove(b"a", 1).unwrap();
        assert_eq!(v, Some(b"2".to_vec()));
    }

    #[test]
    fn same_changes_give_same_root_in_any_insertion_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateDb::open(&dir.path().join("a.redb")).unwrap();
        let b = StateDb::open(&dir.path().join("b.redb")).unwrap();
        let ra = commit(&a, 0, &[(b"x", Some(b"1")), (b"y", Some(b"2"))]);
        let rb = commit(&b, 0, &[(b"y", Some(b"2")), (b"x", Some(b"1"))]);
        assert_eq!(ra, rb);
    }

    #[test]
    fn an_uncommitted_prepare_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        let r0 = commit(&db, 0, &[(b"k", Some(b"v"))]);
        let _dropped = db
            .prepare(1, [(b"k".to_vec(), Some(b"w".to_vec()))].into())
            .unwrap();
        assert_eq!(db.latest_version().unwrap(), Some(0));
        assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
        let r1 = commit(&db, 1, &[]);
        // An empty block keeps every key; its root differs only by the version marker.
        assert_ne!(r0, r1);
        assert_eq!(db.get(b"k").unwrap(), Some(b"v".to_vec()));
    }

    /// Node-local records: written and deleted together, kept across a reopen.
    #[test]
    fn local_records_change_together_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let db = StateDb::open(&path).unwrap();
            db.put_local("a", b"1").unwrap();
            db.write_local(&[("a", None), ("b", Some(b"2")), ("c", Some(b"3"))])
                .unwrap();
        }
        let db = StateDb::open(&path).unwrap();
        assert_eq!(db.local("a").unwrap(), None);
        assert_eq!(db.local("b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(db.local("c").unwrap(), Some(b"3".to_vec()));
    }
}
