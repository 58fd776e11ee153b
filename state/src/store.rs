//! The on-disk store: jmt nodes and value history, the latest values, and the block archive, all
//! in one redb database file (format 4).
//!
//! Every per-block write except the latest values is an append (keys start with the block
//! index, big-endian), so a commit dirties few pages however large the state grows. The latest
//! values change at random keys: they are kept in memory (a persistent map shared with
//! snapshots) and written to their table in one go every [`FLUSH_ENTRIES`] changed keys; after
//! a crash they are rebuilt from the value history, which every commit writes durably.
//!
//! Tables (keys → values):
//! - `nodes`: block index (BE) ‖ borsh(nibble path) → borsh(Node): the tree nodes each block
//!   created
//! - `history`: block index (BE) ‖ key hash → borsh(HistoryEntry): each value a block wrote
//!   (or its deletion) with the block that wrote the key's previous value
//! - `latest`: key hash → block index (BE) ‖ 1 ‖ value, or ‖ 0 for a deleted key: the latest
//!   values as of the last flush
//! - `blocks`: block index → borsh(BlockHeader)
//! - `receipts`: request id → borsh(Receipt)
//! - `block_requests`: block index → borsh(Vec<RequestId>)
//! - `meta`: name → bytes (the caller's metadata, committed with the block)
//! - `pending`: request id → bytes: requests a node acknowledged but has not executed yet (its
//!   mempool), written durably before the acknowledgement
//! - `local`: name → bytes: the node's own durable records outside consensus (its anchor
//!   transactions on L1), untouched by rollbacks
//! - `stale`: block index → borsh(StaleRecords): the tree nodes and value versions that block
//!   replaced, deleted once the block falls out of the retention window
//! - `store`: `"format"` (4), `"pruned_through"` (the last block whose replaced records were
//!   deleted: nothing at or before it can be proven or rolled back to), `"flushed_through"` (the
//!   block the `latest` table is complete up to), `"nodes_pending"` (the latest block, whose tree
//!   nodes the next block's transaction writes: see [`BlockNodes`])

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
use std::sync::Mutex;
use wisp_core::{BlockHeader, Hash32, Receipt, RequestId};

mod node_cache;
mod snapshot;
mod subtrees;

use node_cache::{CachedNode, NodeCache};

/// A block's new tree nodes, sorted by `nodes` key, held in memory until the next block's
/// transaction writes them.
///
/// A block's nodes are known only once its tree is hashed, so writing them with the block
/// itself put ~3,900 B-tree insertions (~7 ms at 10^6 keys) on the commit's critical path,
/// after the hashing. The next block's transaction writes them instead, while that block's
/// tree is hashed on the other thread. Nothing is lost to a crash: the block's changes are in
/// its value history, written with it, and opening the store hashes them again and writes the
/// nodes, checking the root against the block's header (`StateDb::write_pending_nodes`).
/// Readers take the blocks whose nodes are not in the table together with their read
/// transaction ([`StateDb::begin_read_tip`]).
struct BlockNodes {
    version: u64,
    nodes: Vec<CachedNode>,
}

impl BlockNodes {
    /// The new nodes of `batch`, block `version`'s, encoded as the `nodes` table stores them.
    fn of(version: u64, batch: &TreeUpdateBatch) -> Result<BlockNodes> {
        let mut nodes = encode_nodes(batch.node_batch.nodes())?;
        nodes.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        Ok(BlockNodes { version, nodes })
    }

    /// Inserts the nodes of `blocks` into `txn`'s `nodes` table.
    fn write<'b>(
        txn: &redb::WriteTransaction,
        blocks: impl IntoIterator<Item = &'b BlockNodes>,
    ) -> Result<()> {
        let mut table = txn.open_table(NODES).map_err(db_err)?;
        for block in blocks {
            for node in &block.nodes {
                table.insert(node.key(), node.node()).map_err(db_err)?;
            }
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.nodes
            .binary_search_by(|n| n.key().cmp(key))
            .ok()
            .map(|i| self.nodes[i].node())
    }
}

/// `nodes` encoded as the `nodes` table stores them (in their order).
fn encode_nodes<'n>(
    nodes: impl IntoIterator<Item = (&'n NodeKey, &'n Node)>,
) -> Result<Vec<CachedNode>> {
    let nodes = nodes.into_iter();
    let mut encoded_nodes = Vec::with_capacity(nodes.size_hint().0);
    let mut encoded = Vec::new();
    for (key, node) in nodes {
        encoded.clear();
        borsh::to_writer(&mut encoded, node).map_err(db_err)?;
        encoded_nodes.push(CachedNode::new(&node_key_bytes(key)?, &encoded));
    }
    Ok(encoded_nodes)
}

/// What hashing a block makes for its commit: its new tree nodes, encoded, and the nodes they
/// replace.
struct NewTree {
    nodes: BlockNodes,
    stale: jmt::storage::StaleNodeIndexBatch,
}

impl NewTree {
    /// From jmt's batch for block `version`.
    fn of(version: u64, batch: TreeUpdateBatch) -> Result<NewTree> {
        Ok(NewTree {
            nodes: BlockNodes::of(version, &batch)?,
            stale: batch.stale_node_index_batch,
        })
    }
}

/// The blocks whose tree nodes are not in the `nodes` table yet, oldest first: the latest
/// block's, and while a commit makes the next block durable, that block's too.
type Unwritten = Vec<std::sync::Arc<BlockNodes>>;
pub use snapshot::{Restore, StateChunk, MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES};

const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");
const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("history");
const LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new("latest_by_hash");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const RECEIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("receipts");
const BLOCK_REQUESTS: TableDefinition<u64, &[u8]> = TableDefinition::new("block_requests");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const PENDING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("pending");
const LOCAL: TableDefinition<&str, &[u8]> = TableDefinition::new("local");
const STALE: TableDefinition<u64, &[u8]> = TableDefinition::new("stale");
const STORE: TableDefinition<&str, u64> = TableDefinition::new("store");
/// Events by emitting contract: contract hname (4 bytes BE) ‖ block (8 BE) ‖ request index
/// (4 BE) ‖ event index within the receipt (4 BE) → nothing. A node-local index of receipts.
const EVENTS_BY_CONTRACT: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("events_by_contract");
/// Events by contract and topic: contract (4) ‖ topic tag (4: blake2b of the topic) ‖ block ‖
/// request index ‖ event index → nothing. A tag can be shared by two topics: readers compare
/// the topic itself.
const EVENTS_BY_TOPIC: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events_by_topic");
/// Events by the value of an indexed field: contract (4) ‖ topic tag (4) ‖ field (1) ‖ value
/// tag (8: blake2b of the field's borsh bytes) ‖ block ‖ request index ‖ event index →
/// nothing. Tags can be shared: readers compare the value itself.
const EVENTS_BY_VALUE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("events_by_value");
/// The [`EVENTS_BY_VALUE`] keys each block added: block → borsh(Vec<Vec<u8>>), removed with the
/// block.
const EVENT_VALUE_KEYS: TableDefinition<u64, &[u8]> = TableDefinition::new("event_value_keys");

/// Requests as they arrived: request id → borsh(RequestEntry). Node-local, for clients and
/// explorers (`wisp_getRequest`); removed with rolled-back blocks.
const REQUESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests");
/// Requests by sender: agent length (1) ‖ borsh(AgentId) ‖ block (8 BE) ‖ request index (4 BE)
/// → request id.
const REQUESTS_BY_SENDER: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("requests_by_sender");
/// Requests by target contract: hname (4 BE) ‖ block ‖ request index → request id.
const REQUESTS_BY_CONTRACT: TableDefinition<&[u8], &[u8]> =
    TableDefinition::new("requests_by_contract");

/// One of a block's requests as the node keeps it for clients: who sent it, which contract
/// it called, and the chain's own record of it (opaque here).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct RequestEntry {
    /// The request id.
    pub id: RequestId,
    /// Its position in the block.
    pub request_index: u32,
    /// borsh of the sender's `AgentId`.
    pub sender: Vec<u8>,
    /// The contract it called, if it was a call.
    pub contract: Option<wisp_core::Hname>,
    /// The chain's record of the request (its body, kind, nonce or L1 transaction).
    pub record: Vec<u8>,
}

/// Which requests [`StateDb::requests_by`] lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestFilter {
    /// Sent by this agent (borsh of its `AgentId`).
    Sender(Vec<u8>),
    /// Calling this contract.
    Contract(wisp_core::Hname),
}

fn request_index_keys(block: u64, entry: &RequestEntry) -> (Vec<u8>, Option<Vec<u8>>) {
    let position = [
        block.to_be_bytes().as_slice(),
        &entry.request_index.to_be_bytes(),
    ]
    .concat();
    let by_sender = [
        [entry.sender.len() as u8].as_slice(),
        &entry.sender,
        &position,
    ]
    .concat();
    let by_contract = entry
        .contract
        .map(|c| [c.0.to_be_bytes().as_slice(), &position].concat());
    (by_sender, by_contract)
}

/// Writes (or, with `remove`, deletes) block `block`'s request entries and their index keys.
fn index_requests(
    txn: &redb::WriteTransaction,
    block: u64,
    entries: &[RequestEntry],
    remove: bool,
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut records = txn.open_table(REQUESTS).map_err(db_err)?;
    let mut by_sender = txn.open_table(REQUESTS_BY_SENDER).map_err(db_err)?;
    let mut by_contract = txn.open_table(REQUESTS_BY_CONTRACT).map_err(db_err)?;
    for entry in entries {
        let (sender_key, contract_key) = request_index_keys(block, entry);
        if remove {
            records.remove(entry.id.0.as_slice()).map_err(db_err)?;
            by_sender.remove(sender_key.as_slice()).map_err(db_err)?;
            if let Some(k) = contract_key {
                by_contract.remove(k.as_slice()).map_err(db_err)?;
            }
        } else {
            let bytes = borsh::to_vec(entry).map_err(db_err)?;
            records
                .insert(entry.id.0.as_slice(), bytes.as_slice())
                .map_err(db_err)?;
            by_sender
                .insert(sender_key.as_slice(), entry.id.0.as_slice())
                .map_err(db_err)?;
            if let Some(k) = contract_key {
                by_contract
                    .insert(k.as_slice(), entry.id.0.as_slice())
                    .map_err(db_err)?;
            }
        }
    }
    Ok(())
}

/// What a block adds to the node's indexes besides its receipts: the values of its events'
/// indexed fields and its requests as they arrived.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockIndexes<'a> {
    /// Indexed event field values.
    pub values: &'a [IndexedValue],
    /// The block's requests.
    pub requests: &'a [RequestEntry],
}

/// The value of an indexed field of one of a block's events (`#[indexed]`), for the node's
/// event index: the chain finds them with the emitting contract's interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedValue {
    /// The position of the request in the block.
    pub request: u32,
    /// The position of the event among the request's events.
    pub event: u32,
    /// Which field (0 = the first).
    pub field: u8,
    /// The field's borsh bytes.
    pub value: Vec<u8>,
}

/// The prefix of [`EVENTS_BY_VALUE`] keys of field `field` with value `value`.
fn value_prefix(contract: wisp_core::Hname, topic: &str, field: u8, value: &[u8]) -> Vec<u8> {
    let tag = wisp_core::blake2b_256(value).0;
    [
        contract.0.to_be_bytes().as_slice(),
        &topic_tag(topic),
        &[field],
        &tag[..8],
    ]
    .concat()
}

/// Indexes `values` of block `block`'s events (`receipts`), and records their keys for a
/// rollback.
fn index_values(
    txn: &redb::WriteTransaction,
    block: u64,
    receipts: &[Receipt],
    values: &[IndexedValue],
) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    let mut table = txn.open_table(EVENTS_BY_VALUE).map_err(db_err)?;
    let mut keys = Vec::with_capacity(values.len());
    for v in values {
        let Some(event) = receipts
            .get(v.request as usize)
            .and_then(|r| r.events.get(v.event as usize))
        else {
            return Err(corrupt(
                "an indexed value names an event the block does not have",
            ));
        };
        let key = [
            value_prefix(event.contract, &event.topic, v.field, &v.value).as_slice(),
            &block.to_be_bytes(),
            &v.request.to_be_bytes(),
            &v.event.to_be_bytes(),
        ]
        .concat();
        table
            .insert(key.as_slice(), [].as_slice())
            .map_err(db_err)?;
        keys.push(key);
    }
    let keys = borsh::to_vec(&keys).map_err(db_err)?;
    txn.open_table(EVENT_VALUE_KEYS)
        .map_err(db_err)?
        .insert(block, keys.as_slice())
        .map_err(db_err)?;
    Ok(())
}

/// The receipts of requests `ids`, in order, from the receipts table.
fn receipts_of(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    ids: &[RequestId],
) -> Result<Vec<Receipt>> {
    ids.iter()
        .map(|id| {
            let r = table
                .get(id.0.as_slice())
                .map_err(db_err)?
                .ok_or_else(|| corrupt("receipt listed but missing"))?;
            borsh::from_slice(r.value()).map_err(corrupt)
        })
        .collect()
}

/// The 4-byte tag of an event topic in [`EVENTS_BY_TOPIC`].
fn topic_tag(topic: &str) -> [u8; 4] {
    let h = wisp_core::blake2b_256(topic.as_bytes()).0;
    [h[0], h[1], h[2], h[3]]
}

/// The two index keys of event `event` (its position in the block: request, event).
fn event_keys(block: u64, request: u32, event: u32, e: &wisp_core::Event) -> [Vec<u8>; 2] {
    let position = [
        block.to_be_bytes().as_slice(),
        &request.to_be_bytes(),
        &event.to_be_bytes(),
    ]
    .concat();
    let contract = e.contract.0.to_be_bytes();
    [
        [contract.as_slice(), &position].concat(),
        [contract.as_slice(), &topic_tag(&e.topic), &position].concat(),
    ]
}

/// Adds (or, with `remove`, deletes) the index entries of `receipts`, block `block`'s.
fn index_events(
    txn: &redb::WriteTransaction,
    block: u64,
    receipts: &[Receipt],
    remove: bool,
) -> Result<()> {
    let mut by_contract = txn.open_table(EVENTS_BY_CONTRACT).map_err(db_err)?;
    let mut by_topic = txn.open_table(EVENTS_BY_TOPIC).map_err(db_err)?;
    for (r, receipt) in receipts.iter().enumerate() {
        for (i, e) in receipt.events.iter().enumerate() {
            let [a, b] = event_keys(block, r as u32, i as u32, e);
            if remove {
                by_contract.remove(a.as_slice()).map_err(db_err)?;
                by_topic.remove(b.as_slice()).map_err(db_err)?;
            } else {
                by_contract
                    .insert(a.as_slice(), [].as_slice())
                    .map_err(db_err)?;
                by_topic
                    .insert(b.as_slice(), [].as_slice())
                    .map_err(db_err)?;
            }
        }
    }
    Ok(())
}
/// Tables of format 1 (before 0.2): a database holding them is refused with a clear error.
const FORMAT_1_NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("jmt_nodes");

/// The on-disk format this code reads and writes. 3: the tables of format 2, holding records
/// of the chain whose encoding changed (requests gained a time lock), so a format-2 directory
/// cannot be replayed and is refused like any other version's. 4: format 3 whose latest
/// block's tree nodes may be written with the next block (`"nodes_pending"`, [`BlockNodes`]),
/// which code for format 3 would not know to look for; a format-3 store opens as format 4 (it
/// has every block's nodes).
const FORMAT: u64 = 4;

/// Changed keys kept in memory before the `latest` table is rewritten (one flush per this many,
/// in the commit of the block that reaches it). Bounds the history replayed at start-up.
pub const FLUSH_ENTRIES: usize = 200_000;

/// Default size of the database's page cache, bytes: what [`StateDb::open`] gives redb
/// (`wisp node --state-cache-mib` sets another). Pages beyond it are read from disk again.
pub const DEFAULT_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Bytes of changed values (plus 40 a key) kept in memory before the `latest` table is
/// rewritten, whatever their count: values are up to the VM's `max_value_bytes` (64 KiB by
/// default), so the count alone would let large writes hold gigabytes.
pub const FLUSH_BYTES: usize = 256 << 20;

/// What a latest value costs [`FLUSH_BYTES`]: its bytes and its key hash and version.
fn held_bytes(value: &Option<Vec<u8>>) -> usize {
    40 + value.as_ref().map_or(0, Vec::len)
}

/// Default bytes of tree nodes a [`StateDb`] keeps in memory ([`StateDb::set_node_cache`],
/// `wisp node --state-node-cache-mib`): the whole latest tree of a state of about a million
/// keys, whose 1.36 million nodes count 245 MB (`profile_state -- 1000000`).
pub const DEFAULT_NODE_CACHE_BYTES: usize = 256 << 20;

/// Reserved state key holding the index of the last block (hname prefix 0 is never a contract).
pub const BLOCK_MARKER_KEY: &[u8] = b"\x00\x00\x00\x00block";

fn db_err(e: impl std::fmt::Display) -> StateError {
    StateError::Db(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StateError {
    StateError::Corrupt(e.to_string())
}

/// The `nodes` key of a tree node: its block index big-endian, then its nibble path.
fn node_key_bytes(key: &NodeKey) -> Result<Vec<u8>> {
    // borsh(NodeKey) is the version (u64 LE) followed by borsh(nibble path).
    let mut bytes = borsh::to_vec(key).map_err(db_err)?;
    if bytes.len() < 8 {
        return Err(corrupt("a tree node key shorter than its version"));
    }
    bytes[..8].copy_from_slice(&key.version().to_be_bytes());
    Ok(bytes)
}

/// The `history` key of the value `key_hash` got at block `version`.
fn history_key(version: Version, key_hash: &[u8; 32]) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..8].copy_from_slice(&version.to_be_bytes());
    k[8..].copy_from_slice(key_hash);
    k
}

fn key_hash(key: &[u8]) -> [u8; 32] {
    KeyHash::with::<Blake2bHasher>(key).0
}

/// A value a block wrote (`None`: deleted) and the block that wrote the key's previous value.
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize)]
struct HistoryEntry {
    prev: Option<u64>,
    value: Option<Vec<u8>>,
}

/// A key's latest value (`None`: deleted) and the block that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Latest {
    version: u64,
    value: Option<Vec<u8>>,
}

impl Latest {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(9 + self.value.as_ref().map_or(0, Vec::len));
        v.extend_from_slice(&self.version.to_be_bytes());
        match &self.value {
            Some(bytes) => {
                v.push(1);
                v.extend_from_slice(bytes);
            }
            None => v.push(0),
        }
        v
    }

    fn decode(bytes: &[u8]) -> Result<Latest> {
        let (version, rest) = bytes
            .split_first_chunk::<8>()
            .ok_or_else(|| corrupt("a latest-value record shorter than 9 bytes"))?;
        let value = match rest.split_first() {
            Some((1, value)) => Some(value.to_vec()),
            Some((0, [])) => None,
            _ => return Err(corrupt("a latest-value record with a bad tag")),
        };
        Ok(Latest {
            version: u64::from_be_bytes(*version),
            value,
        })
    }
}

/// Latest values changed since the last flush, by key hash. Cloning is O(1): a snapshot keeps
/// the map as it was while commits go on. A hash trie, not a B-tree: a block's reads look keys
/// up here first, and comparing 32-byte keys down a B-tree of 10^5 entries was a tenth of a
/// transfer's execution (perf of `profile_block -- 1 300 independent`). Unordered: whoever
/// writes its entries to a table sorts them first ([`sorted`]).
type Recent =
    imbl::GenericHashMap<[u8; 32], Latest, KeyHashWord, imbl::shared_ptr::DefaultSharedPtr>;

/// Hashes a `[u8; 32]` key hash for [`Recent`] by its first eight bytes, mixed with a per-process
/// random key: the bytes are already uniform (blake2b), so no further hashing is needed, and the
/// random multiplier keeps a stranger who grinds keys from choosing which ones share a bucket
/// (short of a full 64-bit collision, which only makes a bucket of two).
///
/// Only for `[u8; 32]` keys: it ignores the slice length that `Hash` writes first.
#[derive(Clone, Copy)]
struct KeyHashWord {
    mix: u64,
}

impl KeyHashWord {
    fn new() -> KeyHashWord {
        use std::hash::BuildHasher as _;
        static MIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        let mix =
            *MIX.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0u64));
        KeyHashWord { mix: mix | 1 }
    }
}

impl Default for KeyHashWord {
    fn default() -> KeyHashWord {
        KeyHashWord::new()
    }
}

impl std::hash::BuildHasher for KeyHashWord {
    type Hasher = KeyHashWordHasher;
    fn build_hasher(&self) -> KeyHashWordHasher {
        KeyHashWordHasher {
            mix: self.mix,
            word: 0,
        }
    }
}

/// The [`std::hash::Hasher`] of [`KeyHashWord`].
struct KeyHashWordHasher {
    mix: u64,
    word: u64,
}

impl std::hash::Hasher for KeyHashWordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let n = bytes.len().min(8);
        word[..n].copy_from_slice(&bytes[..n]);
        self.word ^= u64::from_le_bytes(word);
    }
    /// The slice length `Hash` writes before the bytes: the same for every key, so skipped.
    fn write_usize(&mut self, _len: usize) {}
    fn finish(&self) -> u64 {
        // imbl uses the hash's low 32 bits for the trie and its top bits as a tag: the high
        // half of the product depends on every bit of the word.
        let product = u128::from(self.word) * u128::from(self.mix);
        ((product >> 64) as u64) ^ (product as u64)
    }
}

/// `recent`'s entries in key order, as they are written to a table (a B-tree takes sorted
/// inserts fastest).
fn sorted(recent: &Recent) -> Vec<(&[u8; 32], &Latest)> {
    let mut entries: Vec<_> = recent.iter().collect();
    entries.sort_unstable_by_key(|(k, _)| *k);
    entries
}

/// The in-memory half of the latest values.
struct Memory {
    recent: Recent,
    /// [`held_bytes`] of the values put in `recent` (overwritten ones still count: the flush
    /// comes early, never late).
    recent_bytes: usize,
    /// The block the `latest` table is complete up to (`None`: nothing flushed yet).
    flushed_through: Option<u64>,
}

/// Share of a store's file, percent, that free pages must make up for opening it to compact it
/// ([`StateDb::open_with_cache`]).
pub const COMPACT_FREE_PERCENT: u64 = 25;

/// Smallest store file, bytes, that opening it may compact: below it the space is not worth
/// the start-up time.
pub const COMPACT_MIN_BYTES: u64 = 64 << 20;

/// Compacts `db` (the file at `path`) when the file takes at least `min_bytes` on disk and at
/// least [`COMPACT_FREE_PERCENT`]% of that is free pages; returns its bytes on disk before and
/// after if it did.
fn compact_if_sparse(db: &mut Database, path: &Path, min_bytes: u64) -> Result<Option<(u64, u64)>> {
    let before = disk_bytes(path)?;
    let used = {
        let txn = db.begin_write().map_err(db_err)?;
        let stats = txn.stats().map_err(db_err)?;
        txn.abort().map_err(db_err)?;
        stats.allocated_pages() * stats.page_size() as u64
    };
    if before == 0
        || before < min_bytes
        || before.saturating_sub(used) * 100 < before * COMPACT_FREE_PERCENT
    {
        return Ok(None);
    }
    // Each pass moves what it can; redb says when nothing more moves. Bounded all the same.
    for _ in 0..8 {
        if !db.compact().map_err(db_err)? {
            break;
        }
    }
    Ok(Some((before, disk_bytes(path)?)))
}

/// Bytes the file at `path` takes on disk: its allocated blocks where the platform says
/// (redb extends its file sparsely, so the length overstates it), else its length.
fn disk_bytes(path: &Path) -> Result<u64> {
    let meta =
        std::fs::metadata(path).map_err(|e| StateError::Db(format!("{}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Ok(meta.blocks() * 512)
    }
    #[cfg(not(unix))]
    {
        Ok(meta.len())
    }
}

/// The authenticated state of one chain plus its block archive.
pub struct StateDb {
    db: Database,
    /// The file's bytes on disk before and after opening compacted it ([`StateDb::compacted`]).
    compacted: Option<(u64, u64)>,
    /// How many versions before the head stay provable; `u64::MAX` keeps every version.
    retain: std::sync::atomic::AtomicU64,
    /// Changed keys kept in memory before a flush ([`FLUSH_ENTRIES`] unless set).
    flush_entries: std::sync::atomic::AtomicUsize,
    /// Bytes of changed values kept in memory before a flush ([`FLUSH_BYTES`] unless set).
    flush_bytes: std::sync::atomic::AtomicUsize,
    /// Held from the start of a commit to its end, and while a snapshot is taken, so a snapshot
    /// never pairs a block's tables with another block's recent values.
    memory: Mutex<Memory>,
    /// The first block committed without the node's indexes ([`StateDb::set_indexing`];
    /// `u64::MAX`: every block is indexed). Kept in the store; it is never unset, and only a
    /// rollback below it moves it, down to the first block removed.
    unindexed_from: std::sync::atomic::AtomicU64,
    /// The latest tree's nodes ([`NodeCache`]).
    node_cache: std::sync::RwLock<NodeCache>,
    /// Tree nodes not yet written ([`BlockNodes`]). Changed only under the memory lock (by
    /// commits, rollbacks and closing), and read with a read transaction begun under this one.
    unwritten: Mutex<Unwritten>,
}

/// What a [`StateDb`] holds (entries, not bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// Keys with a value at the head.
    pub live_keys: u64,
    /// Tree nodes stored, of every retained version.
    pub tree_nodes: u64,
    /// Values stored, of every retained version (deletions included).
    pub value_versions: u64,
}

/// What a block made unreachable from its own and every later root: deleted once the block is
/// older than the retention window (see [`StateDb::set_retention`]).
#[derive(borsh::BorshSerialize, borsh::BorshDeserialize, Default)]
struct StaleRecords {
    /// `nodes` keys of tree nodes the block replaced.
    nodes: Vec<Vec<u8>>,
    /// `history` keys of values the block overwrote or deleted.
    values: Vec<[u8; 40]>,
}

/// A block's write transaction while it is being filled.
struct BlockWrite<'m> {
    txn: redb::WriteTransaction,
    version: u64,
    /// The latest values as they will be after the block.
    recent: RecentWrite<'m>,
    stale: StaleRecords,
}

/// The in-memory latest values while a block is written: taken out of [`Memory`] and changed
/// in place, each change's replaced entry kept, so that dropping it before
/// [`RecentWrite::install`] (an error, or a panic) puts the map back as it was. The commit
/// holds the memory's lock throughout, so no reader sees the map while it is out.
///
/// It was a clone of the map, changed and swapped in at the end: each change then copied its
/// path of the shared trie (every entry of the node it lands in, each value an allocation)
/// and the swap freed the copies' originals, on the commit's critical path. With no snapshot
/// holding the map, changes now land in place.
struct RecentWrite<'m> {
    memory: &'m mut Memory,
    map: Recent,
    /// Each key changed, with the entry it replaced, in order.
    undo: Vec<([u8; 32], Option<Latest>)>,
    /// The map as it was when a flush emptied it (the block's changes in it).
    flushed: Option<Recent>,
    bytes: usize,
    flushed_through: Option<u64>,
    installed: bool,
}

impl<'m> RecentWrite<'m> {
    fn new(memory: &'m mut Memory) -> RecentWrite<'m> {
        RecentWrite {
            map: std::mem::take(&mut memory.recent),
            bytes: memory.recent_bytes,
            flushed_through: memory.flushed_through,
            memory,
            undo: Vec::new(),
            flushed: None,
            installed: false,
        }
    }

    fn insert(&mut self, hash: [u8; 32], latest: Latest) {
        self.bytes += held_bytes(&latest.value);
        let replaced = self.map.insert(hash, latest);
        self.undo.push((hash, replaced));
    }

    /// Empties the map once its entries are in the `latest` table, through block `version`.
    fn flushed(&mut self, version: u64) {
        self.flushed = Some(std::mem::take(&mut self.map));
        self.bytes = 0;
        self.flushed_through = Some(version);
    }

    /// Makes the map the memory's: the block is committed.
    fn install(mut self) {
        self.memory.recent = std::mem::take(&mut self.map);
        self.memory.recent_bytes = self.bytes;
        self.memory.flushed_through = self.flushed_through;
        self.installed = true;
    }
}

impl Drop for RecentWrite<'_> {
    fn drop(&mut self) {
        if self.installed {
            return;
        }
        let mut map = match self.flushed.take() {
            Some(before) => before,
            None => std::mem::take(&mut self.map),
        };
        for (hash, replaced) in self.undo.drain(..).rev() {
            match replaced {
                Some(latest) => {
                    map.insert(hash, latest);
                }
                None => {
                    map.remove(&hash);
                }
            }
        }
        self.memory.recent = map;
    }
}

/// A block's state changes hashed into the tree but not yet written: its root goes into the
/// block header, then [`StateDb::commit`] writes both.
pub struct PendingCommit {
    version: Version,
    root: Hash32,
    batch: TreeUpdateBatch,
    /// The block's changes by key hash.
    changes: BTreeMap<[u8; 32], Option<Vec<u8>>>,
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

/// A consistent read-only view of the latest committed values, taken at one moment: what a
/// block's execution reads through.
pub struct Snapshot {
    recent: Recent,
    table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    /// The values carried from the previous block ([`StateDb::block_snapshot`]), read without
    /// a lock: they are fixed for the snapshot's life, so the threads executing a block share
    /// them read-only and do not pass a lock's cache line back and forth at every read.
    warm: Memo,
    /// Values read since, by key (never a key of `warm`): a block reads many keys more than
    /// once (a sender's nonce and balance when it is admitted and again when it runs, a
    /// contract's record at every call), and each read by key costs a blake2b of the key.
    /// With `warm`, bounded by [`MEMO_ENTRIES`] and [`MEMO_BYTES`]; past either, reads go to
    /// the store uncached.
    memo: Mutex<Memo>,
}

/// Most keys a [`Snapshot`] remembers the values of.
pub const MEMO_ENTRIES: usize = 65_536;
/// Most bytes of keys and values a [`Snapshot`] remembers.
pub const MEMO_BYTES: usize = 16 << 20;

/// A [`Snapshot`]'s remembered values. foldhash, randomly seeded per map: keys are chosen by
/// strangers, so the hash must not let them pick collisions; SipHash cost more than the
/// blake2b it saved.
struct Memo {
    values: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>, foldhash::fast::RandomState>,
    bytes: usize,
}

impl Memo {
    /// Empty until the first read: a snapshot taken for a few reads must not pay for a table
    /// (with 1,024 slots allocated up front, perf of `profile_block -- 2 200 independent`
    /// counted 57 of the execution phase's ~800 samples in taking the snapshots
    /// `StateDb::get` uses for a block's parameters; 3 without).
    fn new() -> Memo {
        Memo {
            values: std::collections::HashMap::with_hasher(foldhash::fast::RandomState::default()),
            bytes: 0,
        }
    }
}

/// The values one block's execution read, as that block left them, carried to the next
/// block's snapshot ([`Snapshot::carry`], [`StateDb::block_snapshot`]): a key read block
/// after block (a busy sender's nonce and balance, a contract's record) then costs a look-up
/// in memory instead of a blake2b of the key and a read of the store. They hold for one state
/// only, the block they are tagged with ([`WarmValues::committed`]): a snapshot of any other
/// (after a rollback, or another block at that height) starts without them. Bounded as a
/// snapshot's memo is ([`MEMO_ENTRIES`], [`MEMO_BYTES`]). They change no value read: only how
/// fast it is found.
pub struct WarmValues {
    /// The block (index, state root) the values are of; `None` until it is committed.
    at: Option<(u64, Hash32)>,
    values: Memo,
}

impl WarmValues {
    /// Tags the values with the block whose writes [`Snapshot::carry`] applied, once that
    /// block is committed.
    pub fn committed(self, header: &BlockHeader) -> WarmValues {
        WarmValues {
            at: Some((header.index, header.state_root)),
            ..self
        }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.values.values.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.values.values.is_empty()
    }
}

impl Snapshot {
    fn new(recent: Recent, table: redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Snapshot {
        Snapshot {
            recent,
            table,
            warm: Memo::new(),
            memo: Mutex::new(Memo::new()),
        }
    }

    /// The value of `key` in this snapshot.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; [`StateError::Corrupt`] on a damaged record.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.get_with(key, |v| v.map(<[u8]>::to_vec))
    }

    /// `f` of the value of `key` in this snapshot, lent from the memo instead of copied out
    /// of it (`f` may run while the memo is locked: it must not read this snapshot).
    ///
    /// # Errors
    /// As [`Snapshot::get`]; then `f` was not called.
    pub fn get_with<R>(&self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> R) -> Result<R> {
        if let Some(v) = self.warm.values.get(key) {
            return Ok(f(v.as_deref()));
        }
        if let Some(v) = self.memo().values.get(key) {
            return Ok(f(v.as_deref()));
        }
        let value = self.get_uncached(key)?;
        let mut memo = self.memo();
        let bytes = key.len() + value.as_ref().map_or(0, Vec::len);
        let fits = self.warm.values.len() + memo.values.len() < MEMO_ENTRIES
            && self.warm.bytes + memo.bytes + bytes <= MEMO_BYTES;
        let memo = &mut *memo;
        match memo.values.entry(key.to_vec()) {
            // Another thread read it while the memo was unlocked: counted once, by that read.
            std::collections::hash_map::Entry::Occupied(kept) => Ok(f(kept.get().as_deref())),
            std::collections::hash_map::Entry::Vacant(slot) if fits => {
                memo.bytes += bytes;
                Ok(f(slot.insert(value).as_deref()))
            }
            std::collections::hash_map::Entry::Vacant(_) => Ok(f(value.as_deref())),
        }
    }

    /// Takes the values this snapshot read, with `writes` (a block's changes, `None` deleting)
    /// applied to those among them, for the snapshot of the next block: tag them with the
    /// block once it is committed ([`WarmValues::committed`]) and give them to
    /// [`StateDb::block_snapshot`]. The snapshot remembers nothing after this. `None` if they
    /// fill more than half of [`MEMO_ENTRIES`] or [`MEMO_BYTES`]: the next block then starts
    /// afresh, so keys no longer read do not stay for good.
    pub fn carry<'a>(
        &mut self,
        writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    ) -> Option<WarmValues> {
        let warm = std::mem::replace(&mut self.warm, Memo::new());
        let read = std::mem::replace(
            self.memo
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
            Memo::new(),
        );
        // Into the larger map: their keys are disjoint (a read looks in `warm` first).
        let (mut memo, rest) = match warm.values.len() >= read.values.len() {
            true => (warm, read),
            false => (read, warm),
        };
        memo.values.reserve(rest.values.len());
        memo.values.extend(rest.values);
        memo.bytes += rest.bytes;
        for (key, value) in writes {
            if let Some(slot) = memo.values.get_mut(key) {
                let before = slot.as_ref().map_or(0, Vec::len);
                match (slot.as_mut(), value) {
                    // The value's buffer kept: a block rewrites most values it read (balances,
                    // nonces) with ones of the same size.
                    (Some(held), Some(value)) => {
                        held.clear();
                        held.extend_from_slice(value);
                    }
                    _ => *slot = value.map(<[u8]>::to_vec),
                }
                memo.bytes = (memo.bytes - before) + value.map_or(0, <[u8]>::len);
            }
        }
        (memo.values.len() <= MEMO_ENTRIES / 2 && memo.bytes <= MEMO_BYTES / 2).then_some(
            WarmValues {
                at: None,
                values: memo,
            },
        )
    }

    /// [`Snapshot::get`] without the memo: for a snapshot taken for one read.
    fn get_uncached(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.latest(&key_hash(key))?.and_then(|l| l.value))
    }

    /// How many keys the snapshot remembers, carried or read since.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.warm.values.len() + self.memo().values.len()
    }

    fn memo(&self) -> std::sync::MutexGuard<'_, Memo> {
        // A panic while the lock was held left at worst a value not yet inserted.
        self.memo
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn latest(&self, key_hash: &[u8; 32]) -> Result<Option<Latest>> {
        if let Some(l) = self.recent.get(key_hash) {
            return Ok(Some(l.clone()));
        }
        match self.table.get(key_hash.as_slice()).map_err(db_err)? {
            Some(bytes) => Ok(Some(Latest::decode(bytes.value())?)),
            None => Ok(None),
        }
    }
}

/// jmt's view of committed state through one read transaction and the recent values that go
/// with it.
struct Reader<'a> {
    txn: &'a ReadTransaction,
    snapshot: Option<&'a Snapshot>,
    /// The node table, opened at the first node read (`None`: there is none yet); opening
    /// it for every read cost a quarter of a node read.
    nodes: std::cell::OnceCell<Option<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>>,
    cache: &'a std::sync::RwLock<NodeCache>,
    /// Nodes of recent blocks that `txn` does not have yet.
    unwritten: Unwritten,
    /// The cache's generation when `txn` began, if nodes read from disk go into the cache
    /// (only for hashing the next block: they are the latest tree's).
    fills: Option<u64>,
}

impl<'a> Reader<'a> {
    /// Reads through `txn`, the nodes `unwritten` to it ([`StateDb::begin_read_tip`]) and the
    /// node cache of `db`.
    fn new(
        db: &'a StateDb,
        (txn, unwritten): (&'a ReadTransaction, Unwritten),
        snapshot: Option<&'a Snapshot>,
    ) -> Reader<'a> {
        Reader {
            txn,
            snapshot,
            nodes: std::cell::OnceCell::new(),
            cache: &db.node_cache,
            unwritten,
            fills: None,
        }
    }

    /// For looking nodes up: the threads hashing a block's subtrees read at once.
    fn cache(&self) -> std::sync::RwLockReadGuard<'_, NodeCache> {
        self.cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn cache_mut(&self) -> std::sync::RwLockWriteGuard<'_, NodeCache> {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl TreeReader for Reader<'_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let key = node_key_bytes(node_key)?;
        if let Some(block) = self
            .unwritten
            .iter()
            .find(|b| b.version == node_key.version())
        {
            return match block.get(&key) {
                Some(bytes) => Ok(Some(borsh::from_slice(bytes)?)),
                None => Ok(None),
            };
        }
        if let Some(bytes) = self.cache().get(&key) {
            return Ok(Some(borsh::from_slice(bytes)?));
        }
        let table = match self.nodes.get() {
            Some(t) => t,
            None => {
                let opened = match self.txn.open_table(NODES) {
                    Ok(t) => Some(t),
                    Err(redb::TableError::TableDoesNotExist(_)) => None,
                    Err(e) => return Err(anyhow::anyhow!(e.to_string())),
                };
                self.nodes.get_or_init(|| opened)
            }
        };
        let Some(table) = table else {
            return Ok(None);
        };
        let Some(bytes) = table.get(key.as_slice())? else {
            return Ok(None);
        };
        let node = borsh::from_slice(bytes.value())?;
        if let Some(generation) = self.fills {
            let mut cache = self.cache_mut();
            if cache.generation == generation {
                cache.put(CachedNode::new(&key, bytes.value()));
            }
        }
        Ok(Some(node))
    }

    /// The latest value at or before `max_version`: the key's latest value, or back along its
    /// history.
    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let Some(snapshot) = self.snapshot else {
            return Err(anyhow::anyhow!("values are read through a snapshot"));
        };
        let Some(latest) = snapshot.latest(&key_hash.0)? else {
            return Ok(None);
        };
        if latest.version <= max_version {
            return Ok(latest.value);
        }
        let history = self.txn.open_table(HISTORY)?;
        let mut version = latest.version;
        loop {
            let entry: HistoryEntry =
                match history.get(history_key(version, &key_hash.0).as_slice())? {
                    Some(bytes) => borsh::from_slice(bytes.value())?,
                    None => {
                        return Err(anyhow::anyhow!(
                            "the value history of a key at block {version} is missing"
                        ))
                    }
                };
            let Some(prev) = entry.prev else {
                return Ok(None);
            };
            if prev <= max_version {
                let entry: HistoryEntry =
                    match history.get(history_key(prev, &key_hash.0).as_slice())? {
                        Some(bytes) => borsh::from_slice(bytes.value())?,
                        None => {
                            return Err(anyhow::anyhow!(
                                "the value history of a key at block {prev} is missing"
                            ))
                        }
                    };
                return Ok(entry.value);
            }
            version = prev;
        }
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used by jmt's state restore, which Wisp does not use.
        Ok(None)
    }
}

impl Drop for StateDb {
    fn drop(&mut self) {
        // A failure leaves the nodes to be made again at the next opening.
        let _ = self.write_held_nodes();
    }
}

impl StateDb {
    /// Opens (or creates) the database file at `path`.
    ///
    /// # Errors
    /// [`StateError::Db`] if the file cannot be opened or is not a redb database (or is locked by
    /// another process); [`StateError::Format`] if an older Wisp wrote it.
    pub fn open(path: &Path) -> Result<StateDb> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`StateDb::open`] with a page cache of at most `cache_bytes` bytes (redb's own default
    /// is 1 GiB, which a node under load fills within a minute).
    ///
    /// A file of at least [`COMPACT_MIN_BYTES`] that is at least [`COMPACT_FREE_PERCENT`]% free
    /// pages is compacted first (redb
    /// reuses the pages that pruning and copy-on-write free, but never gives them back to the
    /// file system): at 10^6 keys with the last 100 blocks kept, 1.28 GB became 0.77 GB in
    /// 4.1 s. [`StateDb::compacted`] reports it.
    ///
    /// # Errors
    /// As [`StateDb::open`].
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<StateDb> {
        Self::open_compacting(path, cache_bytes, COMPACT_MIN_BYTES)
    }

    /// [`StateDb::open_with_cache`], compacting files from `min_bytes` up.
    pub(crate) fn open_compacting(
        path: &Path,
        cache_bytes: usize,
        min_bytes: u64,
    ) -> Result<StateDb> {
        let mut db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(|e| StateError::Db(format!("{}: {e}", path.display())))?;
        let compacted = compact_if_sparse(&mut db, path, min_bytes)?;
        let mut state = Self::init(db)?;
        state.compacted = compacted;
        Ok(state)
    }

    /// What opening the store compacted: the file's bytes on disk before and after (`None`:
    /// it was not sparse enough to compact, or it is in memory).
    pub fn compacted(&self) -> Option<(u64, u64)> {
        self.compacted
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
        {
            let old = match txn.open_table(FORMAT_1_NODES) {
                Ok(t) => t.len().map_err(db_err)? > 0,
                Err(e) => return Err(db_err(e)),
            };
            let mut store = txn.open_table(STORE).map_err(db_err)?;
            let format = store.get("format").map_err(db_err)?.map(|v| v.value());
            match format {
                _ if old => {
                    return Err(StateError::Format {
                        found: 1,
                        supported: FORMAT,
                    })
                }
                Some(3) => {
                    store.insert("format", FORMAT).map_err(db_err)?;
                }
                Some(f) if f != FORMAT => {
                    return Err(StateError::Format {
                        found: f,
                        supported: FORMAT,
                    })
                }
                Some(_) => {}
                None => {
                    store.insert("format", FORMAT).map_err(db_err)?;
                }
            }
        }
        txn.delete_table(FORMAT_1_NODES).map_err(db_err)?;
        for table in [NODES, HISTORY, LATEST, RECEIPTS, PENDING] {
            txn.open_table(table).map_err(db_err)?;
        }
        txn.open_table(BLOCKS).map_err(db_err)?;
        txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
        txn.open_table(META).map_err(db_err)?;
        txn.open_table(LOCAL).map_err(db_err)?;
        txn.open_table(STALE).map_err(db_err)?;
        txn.open_table(EVENTS_BY_VALUE).map_err(db_err)?;
        txn.open_table(EVENT_VALUE_KEYS).map_err(db_err)?;
        for table in [REQUESTS, REQUESTS_BY_SENDER, REQUESTS_BY_CONTRACT] {
            txn.open_table(table).map_err(db_err)?;
        }
        // The event index, built once over the blocks of a store made before it existed.
        let indexed = txn
            .open_table(STORE)
            .map_err(db_err)?
            .get("events_indexed")
            .map_err(db_err)?
            .is_some();
        if !indexed {
            // Block by block: memory holds one block's receipts at a time.
            let block_requests = txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
            let receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
            for entry in block_requests.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                let ids: Vec<RequestId> = borsh::from_slice(v.value()).map_err(corrupt)?;
                index_events(&txn, k.value(), &receipts_of(&receipts, &ids)?, false)?;
            }
            drop((block_requests, receipts));
            txn.open_table(STORE)
                .map_err(db_err)?
                .insert("events_indexed", 1)
                .map_err(db_err)?;
        }
        txn.commit().map_err(db_err)?;
        // The latest values written since the last flush, from the value history.
        let rtxn = db.begin_read().map_err(db_err)?;
        let store = rtxn.open_table(STORE).map_err(db_err)?;
        let flushed_through = store
            .get("flushed_through")
            .map_err(db_err)?
            .map(|v| v.value());
        let history = rtxn.open_table(HISTORY).map_err(db_err)?;
        let from = flushed_through.map_or(0, |v| v + 1);
        let mut recent = Recent::new();
        let mut recent_bytes = 0;
        for entry in history
            .range(history_key(from, &[0; 32]).as_slice()..)
            .map_err(db_err)?
        {
            let (k, v) = entry.map_err(db_err)?;
            let (version, hash) = split_history_key(k.value())?;
            let e: HistoryEntry = borsh::from_slice(v.value()).map_err(corrupt)?;
            recent_bytes += held_bytes(&e.value);
            recent.insert(
                hash,
                Latest {
                    version,
                    value: e.value,
                },
            );
        }
        let unindexed_from = store
            .get("unindexed_from")
            .map_err(db_err)?
            .map_or(u64::MAX, |v| v.value());
        drop((history, store, rtxn));
        let db = StateDb {
            db,
            compacted: None,
            retain: std::sync::atomic::AtomicU64::new(u64::MAX),
            flush_entries: std::sync::atomic::AtomicUsize::new(FLUSH_ENTRIES),
            flush_bytes: std::sync::atomic::AtomicUsize::new(FLUSH_BYTES),
            memory: Mutex::new(Memory {
                recent,
                recent_bytes,
                flushed_through,
            }),
            unindexed_from: std::sync::atomic::AtomicU64::new(unindexed_from),
            node_cache: std::sync::RwLock::new(NodeCache::new(DEFAULT_NODE_CACHE_BYTES)),
            unwritten: Mutex::new(Vec::new()),
        };
        db.write_pending_nodes()?;
        Ok(db)
    }

    fn unwritten(&self) -> std::sync::MutexGuard<'_, Unwritten> {
        // Each change (a push, a retain, a clear) leaves a whole list.
        self.unwritten
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A read transaction and the tree nodes not in it yet: taken together, so that every
    /// node of every block the transaction knows is in one or the other.
    fn begin_read_tip(&self) -> Result<(ReadTransaction, Unwritten)> {
        let unwritten = self.unwritten();
        let txn = self.db.begin_read().map_err(db_err)?;
        Ok((txn, unwritten.clone()))
    }

    /// Keeps at most `bytes` of the latest tree's nodes in memory (default
    /// [`DEFAULT_NODE_CACHE_BYTES`]; 0 keeps none): hashing a block then reads the nodes its
    /// changes pass through from memory rather than through the page cache or disk. Each node
    /// counts its key, its encoding and 56 bytes of bookkeeping: ~245 bytes a key for a tree
    /// of 10^6 keys. Once full, the cache takes a node only where the nodes blocks replace
    /// have left room. A limit below what it holds empties it.
    pub fn set_node_cache(&self, bytes: usize) {
        let mut cache = self.node_cache();
        if bytes < cache.bytes() {
            cache.reset();
        }
        cache.limit = bytes;
    }

    fn node_cache(&self) -> std::sync::RwLockWriteGuard<'_, NodeCache> {
        // Every change to the cache leaves it consistent before the next can panic.
        self.node_cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The node cache's generation now (read under the shared lock: readers filling the
    /// cache and threads hashing go on meanwhile).
    fn node_cache_generation(&self) -> u64 {
        self.node_cache
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .generation
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        // A panic while holding the lock leaves the map as it was before the commit: the
        // commit either happened (and so did the insertions) or not.
        self.memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps the tree nodes and value history of the last `blocks` blocks, the head included
    /// (at least 1; `None`, the default, keeps every version: an archive), and deletes what
    /// older blocks replaced, so the database grows with the live state rather than with every
    /// update. Deletion runs every `blocks / 4` blocks (1 to 256), so up to that many more
    /// blocks stay provable in between; [`StateDb::oldest_retained`] tells exactly. Older versions can no longer be proven
    /// ([`StateError::Pruned`]) nor rolled back to; headers and receipts are always kept.
    /// A larger window later does not bring pruned versions back.
    pub fn set_retention(&self, blocks: Option<u64>) {
        self.retain.store(
            blocks.map_or(u64::MAX, |b| b.max(1)),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Turns the node's own indexes off for every block committed from now on (`on = false`):
    /// events by contract, topic and indexed value, and requests by id, sender and contract
    /// ([`StateDb::event_positions`], [`StateDb::requests_by`], [`StateDb::request_entry`]).
    /// They are outside the state root, so the chain's state, receipts and proofs are the same
    /// either way; a node that answers no such queries (a committee member, an anchoring
    /// node) saves their writes, about a third of a block's commit (state/README.md). The
    /// choice is recorded in the store and cannot be undone: indexes with a gap would answer
    /// wrongly, so queries reaching the first unindexed block fail with
    /// [`StateError::Unindexed`] from then on (a rollback below that block moves it down to
    /// the first block removed). `on = true` on a store that never stopped indexing changes
    /// nothing.
    ///
    /// # Errors
    /// [`StateError::Unindexed`] for `on = true` on a store that stopped indexing;
    /// [`StateError::Db`] if recording the choice fails (then nothing changed).
    pub fn set_indexing(&self, on: bool) -> Result<()> {
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        match (on, self.unindexed_from()) {
            (true, None) | (false, Some(_)) => Ok(()),
            (true, Some(from)) => Err(StateError::Unindexed { from }),
            (false, None) => {
                // Held so that no block commits between reading the head and the record.
                let _memory = self.memory();
                let next = self.latest_version()?.map_or(0, |v| v + 1);
                let txn = self.db.begin_write().map_err(db_err)?;
                txn.open_table(STORE)
                    .map_err(db_err)?
                    .insert("unindexed_from", next)
                    .map_err(db_err)?;
                txn.commit().map_err(db_err)?;
                self.unindexed_from.store(next, relaxed);
                Ok(())
            }
        }
    }

    /// The first block committed without the node's indexes, if indexing was turned off
    /// ([`StateDb::set_indexing`]).
    pub fn unindexed_from(&self) -> Option<u64> {
        match self
            .unindexed_from
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            u64::MAX => None,
            from => Some(from),
        }
    }

    /// Fails with [`StateError::Unindexed`] if an index query reaching block `to` would meet a
    /// block committed without the indexes.
    fn indexed_through(&self, to: u64) -> Result<()> {
        match self.unindexed_from() {
            Some(from) if to >= from => Err(StateError::Unindexed { from }),
            _ => Ok(()),
        }
    }

    /// Writes the latest values to their table once `entries` changed keys have gathered in
    /// memory (default [`FLUSH_ENTRIES`]; at least 1). Lower means less memory and a shorter
    /// replay at start-up, but more random writes per block.
    pub fn set_flush_threshold(&self, entries: usize) {
        self.flush_entries
            .store(entries.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Writes the latest values to their table once the changed values held in memory reach
    /// `bytes` (default [`FLUSH_BYTES`]), however few keys they are.
    pub fn set_flush_bytes(&self, bytes: usize) {
        self.flush_bytes
            .store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
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
        let table = txn.open_table(STORE).map_err(db_err)?;
        Ok(table
            .get("pruned_through")
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
        Ok(self.snapshot_with_txn()?.1)
    }

    fn snapshot_with_txn(&self) -> Result<(ReadTransaction, Snapshot, Unwritten)> {
        let memory = self.memory();
        let (txn, unwritten) = self.begin_read_tip()?;
        let snapshot = Snapshot::new(
            memory.recent.clone(),
            txn.open_table(LATEST).map_err(db_err)?,
        );
        Ok((txn, snapshot, unwritten))
    }

    /// A snapshot of the latest committed values, as [`StateDb::snapshot`], for executing the
    /// next block: it starts with `warm` (the values the previous block read,
    /// [`Snapshot::carry`]) if they are of the latest committed block, and empty otherwise.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; [`StateError::Corrupt`] if the latest header does
    /// not decode.
    pub fn block_snapshot(&self, warm: Option<WarmValues>) -> Result<Snapshot> {
        let (txn, snapshot, _) = self.snapshot_with_txn()?;
        let Some(warm) = warm else {
            return Ok(snapshot);
        };
        let latest = txn
            .open_table(BLOCKS)
            .map_err(db_err)?
            .last()
            .map_err(db_err)?
            .map(|(_, bytes)| borsh::from_slice::<BlockHeader>(bytes.value()).map_err(corrupt))
            .transpose()?;
        let mut snapshot = snapshot;
        if latest.is_some_and(|h| warm.at == Some((h.index, h.state_root))) {
            snapshot.warm = warm.values;
        }
        Ok(snapshot)
    }

    /// The latest committed value of `key`.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        // A snapshot of its own, dropped after this read: nothing to remember.
        self.snapshot()?.get_uncached(key)
    }

    /// Hashes `changes` (`None` deletes) into tree version `version` on top of the latest
    /// committed version, without writing. `changes` may come in any order (they are sorted by
    /// key hash here); a key given twice keeps its last value.
    ///
    /// # Errors
    /// [`StateError::OutOfOrder`] unless `version` is the next block index;
    /// [`StateError::Tree`] if the tree is inconsistent.
    pub fn prepare<K: AsRef<[u8]>>(
        &self,
        version: u64,
        changes: impl IntoIterator<Item = (K, Option<Vec<u8>>)>,
    ) -> Result<PendingCommit> {
        self.check_next(version)?;
        let changes = Self::by_hash(version, changes);
        let (root, batch) = self.hash_tree(version, &changes)?;
        Ok(PendingCommit {
            version,
            root,
            batch,
            changes,
        })
    }

    fn check_next(&self, version: u64) -> Result<()> {
        let latest = self.latest_version()?;
        if version != latest.map_or(0, |v| v + 1) {
            return Err(StateError::OutOfOrder {
                latest,
                got: version,
            });
        }
        Ok(())
    }

    /// The block's changes by key hash, with the block marker: every block writes its index
    /// under a reserved key (no contract hname is 0), so the tree gets a new root even for a
    /// block without state changes.
    fn by_hash<K: AsRef<[u8]>>(
        version: u64,
        changes: impl IntoIterator<Item = (K, Option<Vec<u8>>)>,
    ) -> BTreeMap<[u8; 32], Option<Vec<u8>>> {
        let mut changes: BTreeMap<[u8; 32], Option<Vec<u8>>> = changes
            .into_iter()
            .map(|(k, v)| (key_hash(k.as_ref()), v))
            .collect();
        changes.insert(
            key_hash(BLOCK_MARKER_KEY),
            Some(version.to_le_bytes().to_vec()),
        );
        changes
    }

    /// The tree's new root and nodes for `changes` on top of the committed tree.
    fn hash_tree(
        &self,
        version: u64,
        changes: &BTreeMap<[u8; 32], Option<Vec<u8>>>,
    ) -> Result<(Hash32, TreeUpdateBatch)> {
        // Taken before the transaction begins: a rollback committed after it starts a newer
        // generation (see `NodeCache`).
        let generation = self.node_cache_generation();
        let (txn, unwritten) = self.begin_read_tip()?;
        let reader = Reader {
            fills: Some(generation),
            ..Reader::new(self, (&txn, unwritten), None)
        };
        let tree = JellyfishMerkleTree::<_, Blake2bHasher>::new(&reader);
        let tree_err = |e: anyhow::Error| StateError::Tree(e.to_string());
        // jmt's batch insertion builds each touched internal node once (the key-by-key path
        // rebuilds and rehashes the path to the root for every key) but cannot delete.
        let (root, batch) = if changes.values().all(Option::is_some) {
            let value_set: Vec<(KeyHash, OwnedValue)> = changes
                .iter()
                .filter_map(|(k, v)| Some((KeyHash(*k), v.clone()?)))
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
                .map(|(k, v)| (KeyHash(*k), v.clone()))
                .collect();
            tree.put_value_set(value_set, version).map_err(tree_err)?
        };
        Ok((Hash32(root.0), batch))
    }

    /// Writes a prepared block: tree nodes and values, the header, its receipts and `meta`, in
    /// one durable transaction (and the latest values, once as many changed keys as the flush
    /// threshold have gathered: [`StateDb::set_flush_threshold`]).
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
        let mut memory = self.memory();
        let mut writing = self.begin_block(&mut memory, pending.version)?;
        self.write_values(
            &mut writing,
            &pending.changes,
            receipts,
            BlockIndexes::default(),
            meta,
        )?;
        self.finish_block(
            writing,
            NewTree::of(pending.version, pending.batch)?,
            header,
        )
    }

    /// Hashes `changes` (in any order, as for [`StateDb::prepare`]) into the tree and writes the
    /// block in one durable transaction, the two
    /// at once on two threads: the tree's new nodes are the only writes that wait for the
    /// hashing. A block of at least 256 changes and no deletion is hashed subtree by subtree
    /// (the root's 16 children), and the writing thread, once its writes are done, hashes the
    /// subtrees the hashing thread has not begun; the root and nodes are those of one
    /// insertion. The block's receipts go in with it, `indexes` (its events' indexed values, its
    /// requests as they arrived) into the node's indexes, and its requests leave the node's
    /// pending records ([`StateDb::put_pending`]). `header_of` makes the header from
    /// the new state root. Returns the header and how long the hashing took (it overlaps the
    /// writing): from its start until the hashing thread was done, or, hashed by subtree, until
    /// the last subtree was (by either thread) and the root was put together.
    ///
    /// # Errors
    /// As [`StateDb::prepare`] and [`StateDb::commit`], and [`StateError::Corrupt`] for an
    /// indexed value naming an event the receipts do not have; nothing is written on error.
    pub fn commit_block<K: AsRef<[u8]>>(
        &self,
        version: u64,
        changes: impl IntoIterator<Item = (K, Option<Vec<u8>>)>,
        (receipts, indexes): (&[Receipt], BlockIndexes<'_>),
        meta: &[(&str, Vec<u8>)],
        header_of: impl FnOnce(Hash32) -> BlockHeader,
    ) -> Result<(BlockHeader, std::time::Duration)> {
        self.check_next(version)?;
        let changes = Self::by_hash(version, changes);
        let subtrees = subtrees::SubtreeHashing::new(version, &changes);
        std::thread::scope(|scope| {
            let started = std::time::Instant::now();
            let shared = &subtrees;
            let hashing = scope.spawn(move || (shared.run(self), started.elapsed()));
            let mut memory = self.memory();
            let written = self.begin_block(&mut memory, version).and_then(|mut w| {
                self.write_values(&mut w, &changes, receipts, indexes, meta)
                    .map(|()| w)
            });
            // Subtrees not yet taken are hashed here too (not if the block cannot be written).
            let helped = (written.is_ok() && subtrees.help(self)).then(|| started.elapsed());
            let (hashed, hashing_ended) = hashing
                .join()
                .map_err(|_| StateError::Tree("the hashing thread panicked".into()))?;
            // The hashing's time: until the last subtree was hashed, and putting them together.
            let finishing = std::time::Instant::now();
            let (root, tree, took) = match hashed? {
                subtrees::Hashing::Whole(root, batch) => {
                    (root, NewTree::of(version, batch)?, hashing_ended)
                }
                subtrees::Hashing::BySubtree => {
                    let (root, tree) = subtrees.finish()?;
                    let hashed = helped.map_or(hashing_ended, |h| h.max(hashing_ended));
                    (root, tree, hashed + finishing.elapsed())
                }
            };
            let header = header_of(root);
            if header.index != version {
                return Err(StateError::OutOfOrder {
                    latest: Some(version),
                    got: header.index,
                });
            }
            self.finish_block(written?, tree, &header)?;
            Ok((header, took))
        })
    }

    /// Opens the block's write transaction after checking it is the next block.
    fn begin_block<'m>(&self, memory: &'m mut Memory, version: u64) -> Result<BlockWrite<'m>> {
        let txn = self.db.begin_write().map_err(db_err)?;
        // The version must still be the next one: another commit since `prepare` would make
        // this block's tree nodes wrong (defect 22).
        let latest = txn
            .open_table(BLOCKS)
            .map_err(db_err)?
            .last()
            .map_err(db_err)?
            .map(|(k, _)| k.value());
        if version != latest.map_or(0, |v| v + 1) {
            return Err(StateError::OutOfOrder {
                latest,
                got: version,
            });
        }
        Ok(BlockWrite {
            txn,
            version,
            recent: RecentWrite::new(memory),
            stale: StaleRecords::default(),
        })
    }

    /// The writes that do not need the tree: values and their history, the latest values
    /// (flushed when enough have gathered), receipts, metadata.
    fn write_values(
        &self,
        w: &mut BlockWrite,
        changes: &BTreeMap<[u8; 32], Option<Vec<u8>>>,
        receipts: &[Receipt],
        indexes: BlockIndexes<'_>,
        meta: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        self.write_unwritten(w)?;
        let version = w.version;
        let txn = &w.txn;
        let mut history = txn.open_table(HISTORY).map_err(db_err)?;
        let mut latest_table = txn.open_table(LATEST).map_err(db_err)?;
        w.stale.values.reserve(changes.len());
        for (hash, value) in changes {
            let prev = match w.recent.map.get(hash) {
                Some(l) => Some(l.version),
                None => match latest_table.get(hash.as_slice()).map_err(db_err)? {
                    Some(bytes) => Some(Latest::decode(bytes.value())?.version),
                    None => None,
                },
            };
            // The value this one replaces is in no root from this block on.
            if let Some(p) = prev {
                w.stale.values.push(history_key(p, hash));
            }
            // borsh of the tuple is borsh of `HistoryEntry { prev, value }`, without a copy.
            let bytes = borsh::to_vec(&(prev, value)).map_err(db_err)?;
            history
                .insert(history_key(version, hash).as_slice(), bytes.as_slice())
                .map_err(db_err)?;
            w.recent.insert(
                *hash,
                Latest {
                    version,
                    value: value.clone(),
                },
            );
        }
        let relaxed = std::sync::atomic::Ordering::Relaxed;
        if w.recent.map.len() >= self.flush_entries.load(relaxed)
            || w.recent.bytes >= self.flush_bytes.load(relaxed)
        {
            for (hash, latest) in sorted(&w.recent.map) {
                latest_table
                    .insert(hash.as_slice(), latest.encode().as_slice())
                    .map_err(db_err)?;
            }
            w.recent.flushed(version);
            txn.open_table(STORE)
                .map_err(db_err)?
                .insert("flushed_through", version)
                .map_err(db_err)?;
        }
        let mut receipts_table = txn.open_table(RECEIPTS).map_err(db_err)?;
        let mut ids = Vec::with_capacity(receipts.len());
        for r in receipts {
            let bytes = borsh::to_vec(r).map_err(db_err)?;
            receipts_table
                .insert(r.request_id.0.as_slice(), bytes.as_slice())
                .map_err(db_err)?;
            ids.push(r.request_id);
        }
        drop(receipts_table);
        // The block's requests leave the node's on-disk mempool with the block that ran them:
        // no crash can leave an executed request pending, and no second transaction is needed.
        let mut pending = txn.open_table(PENDING).map_err(db_err)?;
        for r in receipts {
            pending.remove(r.request_id.0.as_slice()).map_err(db_err)?;
        }
        drop(pending);
        if self.unindexed_from().is_none() {
            index_events(txn, version, receipts, false)?;
            index_values(txn, version, receipts, indexes.values)?;
            index_requests(txn, version, indexes.requests, false)?;
        }
        let ids_bytes = borsh::to_vec(&ids).map_err(db_err)?;
        txn.open_table(BLOCK_REQUESTS)
            .map_err(db_err)?
            .insert(version, ids_bytes.as_slice())
            .map_err(db_err)?;
        let mut meta_table = txn.open_table(META).map_err(db_err)?;
        for (name, bytes) in meta {
            meta_table.insert(*name, bytes.as_slice()).map_err(db_err)?;
        }
        Ok(())
    }

    /// The tree's nodes, the header and what the block replaced; pruning; the durable commit;
    /// then the in-memory latest values.
    fn finish_block(
        &self,
        mut w: BlockWrite<'_>,
        tree: NewTree,
        header: &BlockHeader,
    ) -> Result<()> {
        let version = w.version;
        {
            let txn = &w.txn;
            w.stale.nodes.reserve(tree.stale.len());
            for index in &tree.stale {
                w.stale.nodes.push(node_key_bytes(&index.node_key)?);
            }
            let header_bytes = borsh::to_vec(header).map_err(db_err)?;
            txn.open_table(BLOCKS)
                .map_err(db_err)?
                .insert(version, header_bytes.as_slice())
                .map_err(db_err)?;
            let stale_bytes = borsh::to_vec(&w.stale).map_err(db_err)?;
            txn.open_table(STALE)
                .map_err(db_err)?
                .insert(version, stale_bytes.as_slice())
                .map_err(db_err)?;
            // The block's nodes are written by the next block's transaction (`BlockNodes`).
            txn.open_table(STORE)
                .map_err(db_err)?
                .insert("nodes_pending", version)
                .map_err(db_err)?;
        }
        let block = std::sync::Arc::new(tree.nodes);
        if block.version != version {
            return Err(StateError::Tree(format!(
                "block {version} was given the tree nodes of block {}",
                block.version
            )));
        }
        // Readers from here on find the block's nodes whether or not their transaction
        // begins after the commit. Nodes held for this block index already are an earlier
        // attempt's that did not commit (one that panicked): only this one's may be found.
        {
            let mut unwritten = self.unwritten();
            unwritten.retain(|b| b.version < version);
            unwritten.push(block.clone());
        }
        // The node cache changes while the transaction is pruned and made durable. Early is
        // safe: a node removed is read from the table again, and one put for a block whose
        // commit then fails is under a key only a block of the same index can reach, whose
        // own node at that key replaces it (`NodeCache::put`).
        let stale_nodes = std::mem::take(&mut w.stale.nodes);
        let committed = std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut cache = self.node_cache();
                for key in &stale_nodes {
                    cache.remove(key);
                }
                for node in &block.nodes {
                    cache.put(node.clone());
                }
            });
            let retain = self.retain.load(std::sync::atomic::Ordering::Relaxed);
            if let Some(through) = version.checked_sub(retain) {
                // Replaced records are scattered over the tables: deleting many blocks' worth in
                // one transaction writes each touched page once, not once per block.
                let every = (retain / 4).clamp(1, 256);
                let pruned = w
                    .txn
                    .open_table(STORE)
                    .map_err(db_err)?
                    .get("pruned_through")
                    .map_err(db_err)?
                    .map(|v| v.value());
                if pruned.is_none_or(|p| through >= p + every) {
                    Self::prune_through(&w.txn, through)?;
                }
            }
            w.txn.commit().map_err(db_err)
        });
        let mut unwritten = self.unwritten();
        match committed {
            // The previous block's nodes went in with this block.
            Ok(()) => unwritten.retain(|b| b.version == version),
            Err(e) => {
                unwritten.retain(|b| b.version != version);
                return Err(e);
            }
        }
        drop(unwritten);
        w.recent.install();
        Ok(())
    }

    /// Writes the tree nodes of the blocks before `w`'s that are held in memory
    /// ([`BlockNodes`]) into `w`'s transaction.
    fn write_unwritten(&self, w: &BlockWrite<'_>) -> Result<()> {
        let unwritten = self.unwritten().clone();
        BlockNodes::write(
            &w.txn,
            unwritten
                .iter()
                .map(|b| &**b)
                .filter(|b| b.version < w.version),
        )
    }

    /// Writes the tree nodes held in memory ([`BlockNodes`]) in a transaction of their own:
    /// what closing the store does, so that a store closed cleanly has every block's nodes.
    fn write_held_nodes(&self) -> Result<()> {
        let _memory = self.memory();
        let held = self.unwritten().clone();
        if held.is_empty() {
            return Ok(());
        }
        Self::write_nodes_pending(&self.db, held.iter().map(|b| &**b))?;
        self.unwritten().clear();
        Ok(())
    }

    /// After a crash between a block's commit and the next's, hashes the latest block's
    /// changes again (from its value history) and writes the tree nodes they make, once
    /// their root is the one its header holds ([`BlockNodes`]).
    fn write_pending_nodes(&self) -> Result<()> {
        let pending = {
            let txn = self.db.begin_read().map_err(db_err)?;
            let store = txn.open_table(STORE).map_err(db_err)?;
            let pending = store
                .get("nodes_pending")
                .map_err(db_err)?
                .map(|v| v.value());
            pending
        };
        let Some(version) = pending else {
            return Ok(());
        };
        let header = self.block(version)?;
        if self.latest_version()? != Some(version) {
            return Err(corrupt(format!(
                "the tree nodes of block {version} are missing, and it is not the latest block"
            )));
        }
        let changes: BTreeMap<[u8; 32], Option<Vec<u8>>> = {
            let txn = self.db.begin_read().map_err(db_err)?;
            let history = txn.open_table(HISTORY).map_err(db_err)?;
            let lo = history_key(version, &[0; 32]);
            let hi = history_key(version, &[0xff; 32]);
            let entries = history
                .range(lo.as_slice()..=hi.as_slice())
                .map_err(db_err)?
                .map(|entry| {
                    let (k, e) = entry.map_err(db_err)?;
                    let (_, hash) = split_history_key(k.value())?;
                    let e: HistoryEntry = borsh::from_slice(e.value()).map_err(corrupt)?;
                    Ok((hash, e.value))
                })
                .collect::<Result<_>>()?;
            entries
        };
        // Every block writes at least its marker key (defect 22).
        if changes.is_empty() {
            return Err(corrupt(format!(
                "the value history of block {version} is missing"
            )));
        }
        let (root, batch) = self.hash_tree(version, &changes)?;
        if root != header.state_root {
            return Err(corrupt(format!(
                "block {version}'s changes hash to {root}, not to its header's state root {}",
                header.state_root
            )));
        }
        Self::write_nodes_pending(&self.db, [&BlockNodes::of(version, &batch)?])
    }

    /// Writes the pending nodes `blocks` in a durable transaction of their own, which then
    /// leaves none pending.
    fn write_nodes_pending<'b>(
        db: &Database,
        blocks: impl IntoIterator<Item = &'b BlockNodes>,
    ) -> Result<()> {
        let txn = db.begin_write().map_err(db_err)?;
        BlockNodes::write(&txn, blocks)?;
        txn.open_table(STORE)
            .map_err(db_err)?
            .remove("nodes_pending")
            .map_err(db_err)?;
        txn.commit().map_err(db_err)
    }

    /// Deletes the records replaced by blocks up to `through`: roots from `through` on stay
    /// complete (a node or value replaced at block `s` is in no root at or after `s`).
    fn prune_through(txn: &redb::WriteTransaction, through: u64) -> Result<()> {
        let mut stale_table = txn.open_table(STALE).map_err(db_err)?;
        let mut nodes = txn.open_table(NODES).map_err(db_err)?;
        let mut history = txn.open_table(HISTORY).map_err(db_err)?;
        let due: Vec<u64> = stale_table
            .range(..=through)
            .map_err(db_err)?
            .map(|entry| entry.map(|(k, _)| k.value()))
            .collect::<std::result::Result<_, _>>()
            .map_err(db_err)?;
        // Deleted in key order, not block by block: a block's replaced records lie all over
        // the tables (each was written by whichever block last changed it), so in the order
        // recorded each delete searched another part of the tree, while in key order the next
        // one can find its page just written. Measured with `profile_state` at 10^6 keys, 100
        // blocks kept: 17.2-17.3k against 14.4-14.9k durable updates/s.
        let (mut node_keys, mut value_keys) = (Vec::new(), Vec::new());
        for version in due {
            let Some(bytes) = stale_table.remove(version).map_err(db_err)? else {
                continue;
            };
            let records: StaleRecords = borsh::from_slice(bytes.value()).map_err(corrupt)?;
            drop(bytes);
            node_keys.extend(records.nodes);
            value_keys.extend(records.values);
        }
        node_keys.sort_unstable();
        value_keys.sort_unstable();
        for key in &node_keys {
            nodes.remove(key.as_slice()).map_err(db_err)?;
        }
        for key in &value_keys {
            history.remove(key.as_slice()).map_err(db_err)?;
        }
        txn.open_table(STORE)
            .map_err(db_err)?
            .insert("pruned_through", through)
            .map_err(db_err)?;
        Ok(())
    }

    /// Removes every block after `version` (all of them if `None`) in one durable transaction:
    /// state, tree nodes, value history, headers, receipts. Used by the devnet's `dev_revert`
    /// and to undo blocks whose L1 reference a reorg removed. Metadata records are kept; the
    /// caller rewrites what it needs.
    ///
    /// # Errors
    /// [`StateError::Pruned`] if `version` is older than the retention window;
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
        if oldest > 0 && version.is_none_or(|v| v < oldest) {
            return Err(StateError::Pruned {
                version: version.unwrap_or(0),
                oldest,
            });
        }
        // Blocks committed again after this rollback are not indexed either: the first
        // unindexed block moves down to the first block removed.
        let lower_unindexed = self
            .unindexed_from()
            .is_some_and(|from| from > first_removed);
        let mut memory = self.memory();
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut latest_table = txn.open_table(LATEST).map_err(db_err)?;
            // The latest values complete through the head first, then walked back.
            for (hash, l) in sorted(&memory.recent) {
                latest_table
                    .insert(hash.as_slice(), l.encode().as_slice())
                    .map_err(db_err)?;
            }
            let mut history = txn.open_table(HISTORY).map_err(db_err)?;
            let mut nodes = txn.open_table(NODES).map_err(db_err)?;
            let mut stale_table = txn.open_table(STALE).map_err(db_err)?;
            let mut blocks = txn.open_table(BLOCKS).map_err(db_err)?;
            let mut block_requests = txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
            let mut receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
            for v in (first_removed..=latest).rev() {
                let lo = history_key(v, &[0; 32]);
                let hi = history_key(v, &[0xff; 32]);
                let written: Vec<([u8; 32], HistoryEntry)> = history
                    .range(lo.as_slice()..=hi.as_slice())
                    .map_err(db_err)?
                    .map(|entry| {
                        let (k, e) = entry.map_err(db_err)?;
                        let (_, hash) = split_history_key(k.value())?;
                        Ok((hash, borsh::from_slice(e.value()).map_err(corrupt)?))
                    })
                    .collect::<Result<_>>()?;
                // Every block writes at least its marker key: no history means a damaged store,
                // not a block that changed nothing (defect 22).
                if written.is_empty() {
                    return Err(corrupt(format!(
                        "the value history of block {v} is missing"
                    )));
                }
                for (hash, entry) in written {
                    match entry.prev {
                        Some(p) => {
                            let value = match history
                                .get(history_key(p, &hash).as_slice())
                                .map_err(db_err)?
                            {
                                Some(bytes) => {
                                    borsh::from_slice::<HistoryEntry>(bytes.value())
                                        .map_err(corrupt)?
                                        .value
                                }
                                None => {
                                    return Err(corrupt(format!(
                                        "the value history of block {p} is missing"
                                    )))
                                }
                            };
                            let l = Latest { version: p, value };
                            latest_table
                                .insert(hash.as_slice(), l.encode().as_slice())
                                .map_err(db_err)?;
                        }
                        None => {
                            latest_table.remove(hash.as_slice()).map_err(db_err)?;
                        }
                    }
                    history
                        .remove(history_key(v, &hash).as_slice())
                        .map_err(db_err)?;
                }
                // The block's tree nodes: their keys start with its index.
                let lo = v.to_be_bytes();
                let hi = (v + 1).to_be_bytes();
                let created: Vec<Vec<u8>> = nodes
                    .range(lo.as_slice()..hi.as_slice())
                    .map_err(db_err)?
                    .map(|entry| entry.map(|(k, _)| k.value().to_vec()))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(db_err)?;
                for key in created {
                    nodes.remove(key.as_slice()).map_err(db_err)?;
                }
                if let Some(ids) = block_requests.remove(v).map_err(db_err)? {
                    let ids: Vec<RequestId> = borsh::from_slice(ids.value()).map_err(corrupt)?;
                    let mut removed = Vec::with_capacity(ids.len());
                    for id in ids {
                        if let Some(r) = receipts.remove(id.0.as_slice()).map_err(db_err)? {
                            removed.push(borsh::from_slice::<Receipt>(r.value()).map_err(corrupt)?);
                        }
                    }
                    index_events(&txn, v, &removed, true)?;
                    let entries: Vec<RequestEntry> = {
                        let records = txn.open_table(REQUESTS).map_err(db_err)?;
                        removed
                            .iter()
                            .filter_map(|r| records.get(r.request_id.0.as_slice()).transpose())
                            .map(|bytes| {
                                bytes
                                    .map_err(db_err)
                                    .and_then(|b| borsh::from_slice(b.value()).map_err(corrupt))
                            })
                            .collect::<Result<_>>()?
                    };
                    index_requests(&txn, v, &entries, true)?;
                }
                let value_keys = txn
                    .open_table(EVENT_VALUE_KEYS)
                    .map_err(db_err)?
                    .remove(v)
                    .map_err(db_err)?
                    .map(|k| k.value().to_vec());
                if let Some(keys) = value_keys {
                    let keys: Vec<Vec<u8>> = borsh::from_slice(&keys).map_err(corrupt)?;
                    let mut table = txn.open_table(EVENTS_BY_VALUE).map_err(db_err)?;
                    for key in keys {
                        table.remove(key.as_slice()).map_err(db_err)?;
                    }
                }
                blocks.remove(v).map_err(db_err)?;
                // What the removed block replaced is live again.
                stale_table.remove(v).map_err(db_err)?;
            }
            let mut store = txn.open_table(STORE).map_err(db_err)?;
            match version {
                Some(v) => store.insert("flushed_through", v).map_err(db_err)?,
                None => store.remove("flushed_through").map_err(db_err)?,
            };
            // Only the latest block's nodes are ever pending, and it is among those removed;
            // every earlier block's were written with the block after it.
            store.remove("nodes_pending").map_err(db_err)?;
            if lower_unindexed {
                store
                    .insert("unindexed_from", first_removed)
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        self.unwritten().clear();
        // The removed blocks' node keys will be taken again by the blocks that replace them.
        self.node_cache().reset();
        if lower_unindexed {
            self.unindexed_from
                .store(first_removed, std::sync::atomic::Ordering::Relaxed);
        }
        memory.recent = Recent::new();
        memory.recent_bytes = 0;
        memory.flushed_through = version;
        Ok(())
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

    /// The ids of block `index`'s requests, in execution order: cheaper than
    /// [`StateDb::block_receipts`] when a few receipts are wanted ([`StateDb::receipt`]).
    ///
    /// # Errors
    /// [`StateError::UnknownBlock`] if not committed.
    pub fn block_request_ids(&self, index: u64) -> Result<Vec<RequestId>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(BLOCK_REQUESTS).map_err(db_err)?;
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
        let ids = self.block_request_ids(index)?;
        let txn = self.db.begin_read().map_err(db_err)?;
        receipts_of(&txn.open_table(RECEIPTS).map_err(db_err)?, &ids)
    }

    /// Positions `(block, request index, event index)` of the events `contract` emitted in
    /// blocks `from..=to`, with topic `topic` if given, in order; at most `limit` (then the
    /// last is where to go on from). From the node's event index, so the cost follows the
    /// number of matching events, not of blocks.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; [`StateError::Unindexed`] if the range reaches a
    /// block committed with the indexes off ([`StateDb::set_indexing`]).
    pub fn event_positions(
        &self,
        contract: wisp_core::Hname,
        topic: Option<&str>,
        (from, to): (u64, u64),
        limit: usize,
    ) -> Result<Vec<(u64, u32, u32)>> {
        self.event_positions_where(contract, topic, None, (from, to), limit)
    }

    /// [`StateDb::event_positions`] of events with topic `topic` whose indexed field `field`
    /// has borsh bytes `value` (`indexed = Some((field, value))`, which needs a topic). A tag
    /// may match another value: the caller compares the events' own values.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; [`StateError::Unindexed`] if the range reaches a
    /// block committed with the indexes off ([`StateDb::set_indexing`]).
    pub fn event_positions_where(
        &self,
        contract: wisp_core::Hname,
        topic: Option<&str>,
        indexed: Option<(u8, &[u8])>,
        (from, to): (u64, u64),
        limit: usize,
    ) -> Result<Vec<(u64, u32, u32)>> {
        self.indexed_through(to)?;
        let txn = self.db.begin_read().map_err(db_err)?;
        let hname = contract;
        let contract = contract.0.to_be_bytes();
        let (table, prefix) = match (topic, indexed) {
            (Some(t), Some((field, value))) => (
                txn.open_table(EVENTS_BY_VALUE).map_err(db_err)?,
                value_prefix(hname, t, field, value),
            ),
            (Some(t), None) => (
                txn.open_table(EVENTS_BY_TOPIC).map_err(db_err)?,
                [contract.as_slice(), &topic_tag(t)].concat(),
            ),
            (None, _) => (
                txn.open_table(EVENTS_BY_CONTRACT).map_err(db_err)?,
                contract.to_vec(),
            ),
        };
        let lo = [prefix.as_slice(), &from.to_be_bytes()].concat();
        let hi = [prefix.as_slice(), &to.to_be_bytes(), &[0xff; 8]].concat();
        let mut out = Vec::new();
        for entry in table.range(lo.as_slice()..=hi.as_slice()).map_err(db_err)? {
            if out.len() >= limit {
                break;
            }
            let (k, _) = entry.map_err(db_err)?;
            let key = k.value();
            let p = &key[prefix.len()..];
            let field = |range: std::ops::Range<usize>| -> Result<Vec<u8>> {
                p.get(range)
                    .map(<[u8]>::to_vec)
                    .ok_or_else(|| corrupt("short event index key"))
            };
            let block = u64::from_be_bytes(field(0..8)?.try_into().map_err(|_| corrupt("key"))?);
            let request = u32::from_be_bytes(field(8..12)?.try_into().map_err(|_| corrupt("key"))?);
            let event = u32::from_be_bytes(field(12..16)?.try_into().map_err(|_| corrupt("key"))?);
            out.push((block, request, event));
        }
        Ok(out)
    }

    /// Request `id` as the node keeps it for clients, if a block holds it.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; [`StateError::Corrupt`] for a bad record;
    /// [`StateError::Unindexed`] for a request executed in a block committed with the indexes
    /// off ([`StateDb::set_indexing`]).
    pub fn request_entry(&self, id: &RequestId) -> Result<Option<RequestEntry>> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(REQUESTS).map_err(db_err)?;
        match table.get(id.0.as_slice()).map_err(db_err)? {
            Some(bytes) => Ok(Some(borsh::from_slice(bytes.value()).map_err(corrupt)?)),
            None => match self.unindexed_from() {
                // Executed, but in a block committed without the indexes.
                Some(from) if self.receipt(id)?.is_some_and(|r| r.block_index >= from) => {
                    Err(StateError::Unindexed { from })
                }
                _ => Ok(None),
            },
        }
    }

    /// The ids of the requests `filter` selects, newest first, from before position `before`
    /// (`(block, request index)`, exclusive; `None`: the newest), at most `limit`, each with
    /// its block and position. From the node's request index.
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure; [`StateError::Unindexed`] if the range reaches a
    /// block committed with the indexes off ([`StateDb::set_indexing`]).
    pub fn requests_by(
        &self,
        filter: &RequestFilter,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<(u64, u32, RequestId)>> {
        // `before` is exclusive: up to (from, 0) every position listed is indexed.
        if let Some(from) = self.unindexed_from() {
            if before.is_none_or(|b| b > (from, 0)) {
                return Err(StateError::Unindexed { from });
            }
        }
        let txn = self.db.begin_read().map_err(db_err)?;
        let (table, prefix) = match filter {
            RequestFilter::Sender(agent) => (
                txn.open_table(REQUESTS_BY_SENDER).map_err(db_err)?,
                [[agent.len() as u8].as_slice(), agent].concat(),
            ),
            RequestFilter::Contract(c) => (
                txn.open_table(REQUESTS_BY_CONTRACT).map_err(db_err)?,
                c.0.to_be_bytes().to_vec(),
            ),
        };
        let lo = prefix.clone();
        let hi = match before {
            Some((block, index)) => [
                prefix.as_slice(),
                &block.to_be_bytes(),
                &index.to_be_bytes(),
            ]
            .concat(),
            None => [prefix.as_slice(), &[0xff; 12]].concat(),
        };
        let mut out = Vec::new();
        for entry in table
            .range(lo.as_slice()..hi.as_slice())
            .map_err(db_err)?
            .rev()
        {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(db_err)?;
            let key = k.value();
            let position = key
                .get(prefix.len()..prefix.len() + 12)
                .ok_or_else(|| corrupt("short request index key"))?;
            let block = u64::from_be_bytes(position[..8].try_into().map_err(|_| corrupt("key"))?);
            let index = u32::from_be_bytes(position[8..].try_into().map_err(|_| corrupt("key"))?);
            let id: [u8; 32] = v
                .value()
                .try_into()
                .map_err(|_| corrupt("request index value"))?;
            out.push((block, index, Hash32(id)));
        }
        Ok(out)
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
    /// crash until a committed block runs it or [`StateDb::remove_pending`] forgets it.
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

    /// Forgets pending requests (expired or evicted; a committed block already removed the
    /// requests it ran); unknown ids are ignored, and no ids writes nothing.
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
    /// Reads every latest value: O(keys).
    ///
    /// # Errors
    /// [`StateError::Db`] on I/O failure.
    pub fn stats(&self) -> Result<StoreStats> {
        let (txn, snapshot, unwritten) = self.snapshot_with_txn()?;
        let mut live_keys = snapshot
            .recent
            .values()
            .filter(|l| l.value.is_some())
            .count() as u64;
        for entry in snapshot.table.iter().map_err(db_err)? {
            let (k, v) = entry.map_err(db_err)?;
            let in_recent = <[u8; 32]>::try_from(k.value())
                .is_ok_and(|hash| snapshot.recent.contains_key(&hash));
            if !in_recent && Latest::decode(v.value())?.value.is_some() {
                live_keys += 1;
            }
        }
        Ok(StoreStats {
            live_keys,
            tree_nodes: txn
                .open_table(NODES)
                .map_err(db_err)?
                .len()
                .map_err(db_err)?
                + unwritten.iter().map(|b| b.nodes.len() as u64).sum::<u64>(),
            value_versions: txn
                .open_table(HISTORY)
                .map_err(db_err)?
                .len()
                .map_err(db_err)?,
        })
    }

    /// `key`'s value (or absence) at block `version`, with a proof against that block's root.
    ///
    /// # Errors
    /// [`StateError::UnknownBlock`] if the block is not committed; [`StateError::Pruned`] if it
    /// is older than the retention window; [`StateError::Tree`] on a tree inconsistency.
    pub fn prove(&self, key: &[u8], version: u64) -> Result<(Option<Vec<u8>>, StateProof)> {
        let (value, jmt_proof) = self.prove_jmt(key, version)?;
        let proof = StateProof::from_jmt(&jmt_proof)
            .map_err(|e| StateError::Tree(format!("jmt's proof does not re-encode: {e}")))?;
        Ok((value, proof))
    }

    /// [`StateDb::prove`] with the proof in jmt's encoding (the borsh of its
    /// `SparseMerkleProof`), for comparing verifiers.
    pub(crate) fn prove_jmt(&self, key: &[u8], version: u64) -> Result<(Option<Vec<u8>>, Vec<u8>)> {
        if self.latest_version()?.is_none_or(|latest| version > latest) {
            return Err(StateError::UnknownBlock(version));
        }
        let oldest = self.oldest_retained()?;
        if version < oldest {
            return Err(StateError::Pruned { version, oldest });
        }
        let (txn, snapshot, unwritten) = self.snapshot_with_txn()?;
        let reader = Reader::new(self, (&txn, unwritten), Some(&snapshot));
        let tree = JellyfishMerkleTree::<_, Blake2bHasher>::new(&reader);
        let (value, proof) = tree
            .get_with_proof(KeyHash::with::<Blake2bHasher>(key), version)
            .map_err(|e| StateError::Tree(e.to_string()))?;
        let bytes = borsh::to_vec(&proof).map_err(db_err)?;
        Ok((value, bytes))
    }
}

/// Splits a `history` key into its block index and key hash.
fn split_history_key(key: &[u8]) -> Result<(u64, [u8; 32])> {
    let (version, hash) = key
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("a value-history key shorter than 40 bytes"))?;
    let hash: [u8; 32] = hash
        .try_into()
        .map_err(|_| corrupt("a value-history key of the wrong length"))?;
    Ok((u64::from_be_bytes(*version), hash))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::verify_proof;
    use wisp_core::ChainId;

    /// Keys a stranger ground to share the hashed word still find their own values, and the
    /// entries come out of `sorted` in key order whatever order they went in.
    #[test]
    fn recent_keys_sharing_their_hashed_word_stay_apart() {
        let mut recent = Recent::new();
        let key = |tail: u8| {
            let mut k = [0xab; 32];
            k[31] = tail;
            k
        };
        for tail in [9u8, 3, 200, 0, 77] {
            recent.insert(
                key(tail),
                Latest {
                    version: u64::from(tail),
                    value: Some(vec![tail]),
                },
            );
        }
        for tail in [9u8, 3, 200, 0, 77] {
            let l = recent.get(&key(tail)).expect("present");
            assert_eq!(
                (l.version, l.value.as_deref()),
                (u64::from(tail), Some(&[tail][..]))
            );
        }
        assert!(recent.get(&key(1)).is_none());
        let order: Vec<u8> = sorted(&recent).iter().map(|(k, _)| k[31]).collect();
        assert_eq!(order, [0, 3, 9, 77, 200]);
    }

    /// A header of block `index` with state root `root` (the snapshot tests use it too).
    pub(crate) fn header(index: u64, root: Hash32) -> BlockHeader {
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

    fn commit(db: &StateDb, version: u64, changes: &[(&[u8], Option<&[u8]>)]) -> Hash32 {
        let changes = changes
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect::<Vec<_>>();
        let pending = db.prepare(version, changes).unwrap();
        let root = pending.root();
        db.commit(pending, &header(version, root), &[], &[])
            .unwrap();
        root
    }

    /// A receipt of request `id` at `index` in block `block`, with events `(contract, topic)`.
    fn receipt_with(block: u64, index: u32, id: u8, events: &[(u32, &str)]) -> Receipt {
        Receipt {
            request_id: Hash32([id; 32]),
            block_index: block,
            request_index: index,
            sender: wisp_core::AgentId::Address([9; 32]),
            status: wisp_core::ReceiptStatus::Success,
            error: None,
            gas_used: 1,
            fee_sompi: 1,
            storage_locked_sompi: 0,
            storage_refunded_sompi: 0,
            events: events
                .iter()
                .map(|(c, t)| wisp_core::Event {
                    contract: wisp_core::Hname(*c),
                    topic: (*t).to_string(),
                    data: vec![],
                })
                .collect(),
            return_data: vec![],
        }
    }

    fn commit_receipts(db: &StateDb, version: u64, receipts: &[Receipt]) {
        let pending = db
            .prepare(
                version,
                [(b"k".to_vec(), Some(version.to_le_bytes().to_vec()))],
            )
            .unwrap();
        let root = pending.root();
        db.commit(pending, &header(version, root), receipts, &[])
            .unwrap();
    }

    /// The node's event index answers by contract and by contract and topic within a block
    /// range, forgets rolled-back blocks, and is built over the blocks of a store that had none.
    #[test]
    fn events_are_found_by_contract_and_topic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let all = (0, u64::MAX);
        {
            let db = StateDb::open(&path).unwrap();
            commit_receipts(
                &db,
                0,
                &[receipt_with(0, 0, 1, &[(7, "Transfer"), (8, "Swap")])],
            );
            commit_receipts(
                &db,
                1,
                &[
                    receipt_with(1, 0, 2, &[(7, "Approval")]),
                    receipt_with(1, 1, 3, &[(7, "Transfer"), (7, "Transfer")]),
                ],
            );
            commit_receipts(&db, 2, &[receipt_with(2, 0, 4, &[(7, "Transfer")])]);
            let seven = wisp_core::Hname(7);
            assert_eq!(
                db.event_positions(seven, Some("Transfer"), all, 100)
                    .unwrap(),
                vec![(0, 0, 0), (1, 1, 0), (1, 1, 1), (2, 0, 0)]
            );
            assert_eq!(
                db.event_positions(seven, None, (1, 1), 100).unwrap(),
                vec![(1, 0, 0), (1, 1, 0), (1, 1, 1)]
            );
            assert_eq!(
                db.event_positions(seven, Some("Transfer"), all, 2).unwrap(),
                vec![(0, 0, 0), (1, 1, 0)],
                "the limit"
            );
            assert!(db
                .event_positions(wisp_core::Hname(9), None, all, 100)
                .unwrap()
                .is_empty());
            db.rollback_to(Some(0)).unwrap();
            assert_eq!(
                db.event_positions(seven, None, all, 100).unwrap(),
                vec![(0, 0, 0)],
                "rolled-back blocks are forgotten"
            );
            commit_receipts(&db, 1, &[receipt_with(1, 0, 5, &[(8, "Swap")])]);
        }
        // A store from before the index: the index is dropped and rebuilt at open.
        {
            let db = StateDb::open(&path).unwrap();
            let txn = db.db.begin_write().unwrap();
            txn.delete_table(EVENTS_BY_CONTRACT).unwrap();
            txn.delete_table(EVENTS_BY_TOPIC).unwrap();
            txn.open_table(STORE)
                .unwrap()
                .remove("events_indexed")
                .unwrap();
            txn.commit().unwrap();
        }
        let db = StateDb::open(&path).unwrap();
        assert_eq!(
            db.event_positions(wisp_core::Hname(8), Some("Swap"), all, 100)
                .unwrap(),
            vec![(0, 0, 1), (1, 0, 0)]
        );
    }

    /// Events are found by the value of an indexed field, and a rolled-back block's values go
    /// with it.
    #[test]
    fn events_are_found_by_indexed_value() {
        let db = StateDb::in_memory().unwrap();
        let all = (0, u64::MAX);
        let seven = wisp_core::Hname(7);
        let value = |request, event, field, v: &[u8]| IndexedValue {
            request,
            event,
            field,
            value: v.to_vec(),
        };
        let block = |version: u64, receipts: &[Receipt], values: &[IndexedValue]| {
            db.commit_block(
                version,
                BTreeMap::from([(b"k".to_vec(), Some(version.to_le_bytes().to_vec()))]),
                (
                    receipts,
                    BlockIndexes {
                        values,
                        requests: &[],
                    },
                ),
                &[],
                |root| header(version, root),
            )
            .unwrap();
        };
        block(
            0,
            &[receipt_with(0, 0, 1, &[(7, "Transfer"), (7, "Transfer")])],
            &[value(0, 0, 1, b"bob"), value(0, 1, 1, b"carol")],
        );
        block(
            1,
            &[receipt_with(1, 0, 2, &[(7, "Transfer")])],
            &[value(0, 0, 1, b"bob"), value(0, 0, 0, b"bob")],
        );
        let to_bob = |db: &StateDb| {
            db.event_positions_where(seven, Some("Transfer"), Some((1, b"bob")), all, 100)
                .unwrap()
        };
        assert_eq!(to_bob(&db), vec![(0, 0, 0), (1, 0, 0)]);
        assert_eq!(
            db.event_positions_where(seven, Some("Transfer"), Some((1, b"carol")), all, 100)
                .unwrap(),
            vec![(0, 0, 1)]
        );
        assert_eq!(
            db.event_positions_where(seven, Some("Transfer"), Some((0, b"bob")), all, 100)
                .unwrap(),
            vec![(1, 0, 0)],
            "each field has its own entries"
        );
        assert!(db
            .event_positions_where(seven, Some("Approval"), Some((1, b"bob")), all, 100)
            .unwrap()
            .is_empty());
        db.rollback_to(Some(0)).unwrap();
        assert_eq!(to_bob(&db), vec![(0, 0, 0)], "rolled back with its block");
        // A value naming an event the block does not have is refused, nothing written.
        let err = db.commit_block(
            1,
            BTreeMap::<Vec<u8>, _>::new(),
            (
                &[],
                BlockIndexes {
                    values: &[value(0, 0, 1, b"bob")],
                    requests: &[],
                },
            ),
            &[],
            |root| header(1, root),
        );
        assert!(err.is_err());
    }

    /// Requests are kept as they arrived and listed by sender and by contract, newest first,
    /// paged from a position; a rolled-back block's go with it.
    #[test]
    fn requests_are_listed_by_sender_and_contract() {
        let db = StateDb::in_memory().unwrap();
        let entry = |id: u8, index: u32, sender: u8, contract: Option<u32>| RequestEntry {
            id: Hash32([id; 32]),
            request_index: index,
            sender: vec![sender; 33],
            contract: contract.map(wisp_core::Hname),
            record: vec![id],
        };
        let block = |version: u64, entries: &[RequestEntry]| {
            let receipts: Vec<Receipt> = entries
                .iter()
                .map(|e| receipt_with(version, e.request_index, e.id.0[0], &[]))
                .collect();
            db.commit_block(
                version,
                BTreeMap::from([(b"k".to_vec(), Some(version.to_le_bytes().to_vec()))]),
                (
                    &receipts,
                    BlockIndexes {
                        values: &[],
                        requests: entries,
                    },
                ),
                &[],
                |root| header(version, root),
            )
            .unwrap();
        };
        block(0, &[entry(1, 0, 7, Some(5)), entry(2, 1, 8, Some(5))]);
        block(1, &[entry(3, 0, 7, None), entry(4, 1, 7, Some(6))]);
        let ids = |found: Vec<(u64, u32, RequestId)>| -> Vec<u8> {
            found.into_iter().map(|(_, _, id)| id.0[0]).collect()
        };
        let alice = RequestFilter::Sender(vec![7; 33]);
        assert_eq!(
            ids(db.requests_by(&alice, None, 10).unwrap()),
            vec![4, 3, 1]
        );
        assert_eq!(ids(db.requests_by(&alice, None, 2).unwrap()), vec![4, 3]);
        assert_eq!(
            ids(db.requests_by(&alice, Some((1, 0)), 10).unwrap()),
            vec![1]
        );
        let five = RequestFilter::Contract(wisp_core::Hname(5));
        assert_eq!(ids(db.requests_by(&five, None, 10).unwrap()), vec![2, 1]);
        assert_eq!(
            db.request_entry(&Hash32([3; 32]))
                .unwrap()
                .map(|e| e.record),
            Some(vec![3])
        );
        db.rollback_to(Some(0)).unwrap();
        assert_eq!(ids(db.requests_by(&alice, None, 10).unwrap()), vec![1]);
        assert_eq!(db.request_entry(&Hash32([3; 32])).unwrap(), None);
    }

    /// With indexing turned off, blocks commit the same state roots and receipts but add
    /// nothing to the node's indexes; queries reaching those blocks fail with `Unindexed`
    /// instead of answering with a gap, before them they answer as before, and the choice
    /// survives a reopen and cannot be undone.
    #[test]
    fn indexing_turned_off_is_recorded_and_queries_past_it_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let (db, unchanged) = (StateDb::open(&path).unwrap(), StateDb::in_memory().unwrap());
        let entry = |id: u8, index: u32| RequestEntry {
            id: Hash32([id; 32]),
            request_index: index,
            sender: vec![7; 33],
            contract: Some(wisp_core::Hname(5)),
            record: vec![id],
        };
        let block = |db: &StateDb, version: u64, id: u8| {
            let receipts = [receipt_with(version, 0, id, &[(5, "T")])];
            db.commit_block(
                version,
                BTreeMap::from([(vec![id], Some(version.to_le_bytes().to_vec()))]),
                (
                    &receipts,
                    BlockIndexes {
                        values: &[],
                        requests: &[entry(id, 0)],
                    },
                ),
                &[],
                |root| header(version, root),
            )
            .unwrap()
            .0
        };
        assert_eq!(db.unindexed_from(), None);
        db.set_indexing(true).unwrap();
        for (version, id) in [(0, 1), (1, 2)] {
            assert_eq!(block(&db, version, id), block(&unchanged, version, id));
        }
        db.set_indexing(false).unwrap();
        assert_eq!(db.unindexed_from(), Some(2));
        for (version, id) in [(2, 3), (3, 4)] {
            // Same state roots and receipts as with the indexes.
            assert_eq!(block(&db, version, id), block(&unchanged, version, id));
            assert_eq!(
                db.receipt(&Hash32([id; 32])).unwrap(),
                unchanged.receipt(&Hash32([id; 32])).unwrap()
            );
        }
        let five = wisp_core::Hname(5);
        let positions = |db: &StateDb, to: u64| db.event_positions(five, Some("T"), (0, to), 10);
        assert_eq!(positions(&db, 1).unwrap(), vec![(0, 0, 0), (1, 0, 0)]);
        assert!(matches!(
            positions(&db, 2),
            Err(StateError::Unindexed { from: 2 })
        ));
        assert_eq!(positions(&unchanged, 3).unwrap().len(), 4);
        let sender = RequestFilter::Sender(vec![7; 33]);
        assert!(matches!(
            db.requests_by(&sender, None, 10),
            Err(StateError::Unindexed { from: 2 })
        ));
        assert_eq!(db.requests_by(&sender, Some((2, 0)), 10).unwrap().len(), 2);
        assert_eq!(
            db.request_entry(&Hash32([2; 32]))
                .unwrap()
                .map(|e| e.record),
            Some(vec![2])
        );
        assert!(matches!(
            db.request_entry(&Hash32([4; 32])),
            Err(StateError::Unindexed { from: 2 })
        ));
        assert_eq!(db.request_entry(&Hash32([9; 32])).unwrap(), None);
        // Turning it off again moves nothing; on again is refused, also after a reopen.
        db.set_indexing(false).unwrap();
        assert_eq!(db.unindexed_from(), Some(2));
        drop(db);
        let db = StateDb::open(&path).unwrap();
        assert_eq!(db.unindexed_from(), Some(2));
        let refused = db.set_indexing(true).unwrap_err();
        assert!(matches!(refused, StateError::Unindexed { from: 2 }));
        assert!(refused.to_string().contains("--no-index"), "{refused}");
        // A rollback below the first unindexed block moves it down: the blocks committed
        // again are not indexed either.
        db.rollback_to(Some(0)).unwrap();
        assert_eq!(db.unindexed_from(), Some(1));
        block(&db, 1, 2);
        assert!(matches!(
            positions(&db, 1),
            Err(StateError::Unindexed { from: 1 })
        ));
        assert_eq!(positions(&db, 0).unwrap(), vec![(0, 0, 0)]);
        drop(db);
        assert_eq!(StateDb::open(&path).unwrap().unindexed_from(), Some(1));
    }

    #[test]
    fn a_snapshot_remembers_reads_within_its_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.redb")).unwrap();
        let big = vec![7u8; 60_000];
        let keys: Vec<Vec<u8>> = (0..300u32).map(|i| i.to_le_bytes().to_vec()).collect();
        let changes: Vec<(&[u8], Option<&[u8]>)> = keys
            .iter()
            .map(|k| (k.as_slice(), Some(big.as_slice())))
            .collect();
        commit(&db, 0, &changes);
        let snapshot = db.snapshot().unwrap();
        // A commit after the snapshot changes nothing it returns, remembered or not.
        commit(&db, 1, &[(&keys[0], Some(b"new")), (&keys[299], None)]);
        for _ in 0..2 {
            assert_eq!(snapshot.get(&keys[0]).unwrap().as_deref(), Some(&big[..]));
            assert_eq!(snapshot.get(&keys[299]).unwrap().as_deref(), Some(&big[..]));
        }
        // Values: 300 × 60 KB would be 18 MB; the memo stops at MEMO_BYTES.
        for k in &keys {
            assert_eq!(snapshot.get(k).unwrap().map(|v| v.len()), Some(big.len()));
        }
        let (entries, bytes) = {
            let memo = snapshot.memo();
            (memo.values.len(), memo.bytes)
        };
        assert!(
            bytes <= MEMO_BYTES && bytes > MEMO_BYTES - 60_004,
            "{bytes}"
        );
        assert_eq!(entries, MEMO_BYTES / 60_004);
        assert_eq!(
            snapshot.get(&keys[5]).unwrap().map(|v| v.len()),
            Some(big.len())
        );
        // Keys: absent keys are remembered too, up to MEMO_ENTRIES.
        let snapshot = db.snapshot().unwrap();
        for i in 0..MEMO_ENTRIES as u64 + 1000 {
            assert_eq!(snapshot.get(&i.to_be_bytes()).unwrap(), None);
        }
        assert_eq!(snapshot.memo().values.len(), MEMO_ENTRIES);
        assert_eq!(
            snapshot.get(&keys[0]).unwrap().as_deref(),
            Some(&b"new"[..])
        );
        assert_eq!(snapshot.get(&keys[299]).unwrap(), None);
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
                db.prepare(5, BTreeMap::<Vec<u8>, _>::new()),
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
    /// The keys [`churn`] changes.
    fn churn_keys() -> Vec<Vec<u8>> {
        (0..60u32).map(|i| i.to_le_bytes().to_vec()).collect()
    }

    /// Block `v`'s changes: it rewrites a third of `keys`, deletes a few and re-creates them.
    fn churn(keys: &[Vec<u8>], v: u64) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        keys.iter()
            .enumerate()
            .filter(|(i, _)| (*i as u64 + v).is_multiple_of(3))
            .map(|(i, k)| {
                let value = !(i as u64 * 7 + v).is_multiple_of(11);
                (
                    k.clone(),
                    value.then(|| (v * 100 + i as u64).to_le_bytes().to_vec()),
                )
            })
            .collect()
    }

    /// Commits block `v` of [`churn`] to each of `dbs`; they must agree on its root, returned.
    fn commit_churn(dbs: &[&StateDb], keys: &[Vec<u8>], v: u64) -> Hash32 {
        let changes = churn(keys, v);
        let borrowed: Vec<(&[u8], Option<&[u8]>)> = changes
            .iter()
            .map(|(k, val)| (k.as_slice(), val.as_deref()))
            .collect();
        let roots: Vec<Hash32> = dbs.iter().map(|db| commit(db, v, &borrowed)).collect();
        assert!(
            roots.windows(2).all(|w| w[0] == w[1]),
            "block {v}: {roots:?}"
        );
        roots[0]
    }

    /// Every key of `keys` at every block of `window` is provable in `pruned`, with the value
    /// `archive` has there, against that block's root in `roots`.
    fn assert_provable(
        pruned: &StateDb,
        archive: &StateDb,
        roots: &[Hash32],
        keys: &[Vec<u8>],
        window: std::ops::Range<u64>,
    ) {
        for v in window {
            for k in keys {
                let (value, proof) = pruned.prove(k, v).unwrap();
                assert_eq!(value, archive.prove(k, v).unwrap().0, "{k:?} at {v}");
                verify_proof(roots[v as usize], k, value.as_deref(), &proof).unwrap();
            }
        }
    }

    /// The pruned store holds about as much `late` as `early`; the archive far more.
    fn assert_bounded(early: StoreStats, late: StoreStats, archive: &StateDb) {
        assert!(
            late.tree_nodes <= early.tree_nodes + early.tree_nodes / 5,
            "{early:?} {late:?}"
        );
        assert!(late.value_versions <= early.value_versions + early.value_versions / 5);
        assert!(archive.stats().unwrap().tree_nodes > 3 * late.tree_nodes);
    }

    /// A pruned store's file, reopened, is compacted (it was mostly free pages) and still proves
    /// every retained block value for value as an archive does; reopened again, it is left
    /// alone.
    #[test]
    fn opening_a_sparse_store_compacts_it_and_keeps_every_retained_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pruned.redb");
        let archive = StateDb::open(&dir.path().join("archive.redb")).unwrap();
        let keys = churn_keys();
        let mut roots = Vec::new();
        let oldest;
        {
            let pruned = StateDb::open(&path).unwrap();
            pruned.set_retention(Some(8));
            for v in 0..120u64 {
                // The first blocks write 64 KB values, the later ones 16 bytes: once pruning
                // drops the big ones, most of the file's written pages are free.
                let size = if v < 10 { 65_536 } else { 16 };
                let big: Vec<(Vec<u8>, Vec<u8>)> = keys
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| v < 10 || (*i as u64 + v).is_multiple_of(3))
                    .map(|(i, k)| (k.clone(), vec![(v as u8) ^ (i as u8); size]))
                    .collect();
                let changes: Vec<(&[u8], Option<&[u8]>)> = big
                    .iter()
                    .map(|(k, val)| (k.as_slice(), Some(val.as_slice())))
                    .collect();
                let root = commit(&pruned, v, &changes);
                assert_eq!(commit(&archive, v, &changes), root);
                roots.push(root);
            }
            oldest = pruned.oldest_retained().unwrap();
            assert_eq!(pruned.compacted(), None);
        }
        let pruned = StateDb::open_compacting(&path, DEFAULT_CACHE_BYTES, 0).unwrap();
        let (before, after) = pruned.compacted().expect("compacted");
        // At least the free share that made it compact (25%) is given back, and stays given
        // back after the store writes again (redb extends the file sparsely).
        assert!(after * 4 <= before * 3, "{before} -> {after}");
        assert!(disk_bytes(&path).unwrap() * 4 <= before * 3);
        assert_eq!(pruned.oldest_retained().unwrap(), oldest);
        assert_provable(&pruned, &archive, &roots, &keys, oldest..120);
        // The next block commits on the compacted store as on the archive.
        let next: Vec<(&[u8], Option<&[u8]>)> = vec![(&keys[0], Some(b"next"))];
        assert_eq!(commit(&pruned, 120, &next), commit(&archive, 120, &next));
        drop(pruned);
        let again = StateDb::open_compacting(&path, DEFAULT_CACHE_BYTES, 0).unwrap();
        assert_eq!(again.compacted(), None);
    }

    /// With a longer window, each prune deletes several blocks' replaced records at once (in
    /// key order, mixing blocks): the window stays provable, value for value as in an archive,
    /// the block before it is refused, and the database stays bounded.
    #[test]
    fn pruning_several_blocks_at_once_keeps_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let archive = StateDb::open(&dir.path().join("archive.redb")).unwrap();
        let pruned = StateDb::open(&dir.path().join("pruned.redb")).unwrap();
        // 12 blocks kept: a prune every 3 blocks, of 3 blocks' records.
        pruned.set_retention(Some(12));
        let keys = churn_keys();
        let (mut roots, mut sizes) = (Vec::new(), Vec::new());
        let mut prunes = std::collections::BTreeSet::new();
        for v in 0..80u64 {
            roots.push(commit_churn(&[&archive, &pruned], &keys, v));
            sizes.push(pruned.stats().unwrap());
            prunes.insert(pruned.oldest_retained().unwrap());
        }
        // Pruning went forward several blocks at a time (after its first step, from nothing).
        prunes.remove(&0);
        let steps: Vec<u64> = prunes
            .iter()
            .zip(prunes.iter().skip(1))
            .map(|(a, b)| b - a)
            .collect();
        assert!(steps.iter().all(|s| *s == 3), "{prunes:?}");
        let oldest = pruned.oldest_retained().unwrap();
        assert!((80 - 12 - 3..=80 - 12).contains(&oldest), "oldest {oldest}");
        assert_provable(&pruned, &archive, &roots, &keys, oldest..80);
        assert!(matches!(
            pruned.prove(&keys[0], oldest - 1),
            Err(StateError::Pruned { .. })
        ));
        assert_bounded(sizes[20], sizes[79], &archive);
    }

    #[test]
    fn pruning_keeps_the_window_and_bounds_the_database() {
        // Latest values flushed every block, every few blocks, and never.
        for flush in [1, 45, FLUSH_ENTRIES] {
            pruning_with_flushes_every(flush);
        }
    }

    fn pruning_with_flushes_every(flush: usize) {
        let dir = tempfile::tempdir().unwrap();
        let archive = StateDb::open(&dir.path().join("archive.redb")).unwrap();
        let pruned = StateDb::open(&dir.path().join("pruned.redb")).unwrap();
        pruned.set_flush_threshold(flush);
        pruned.set_retention(Some(3));
        assert_eq!(pruned.retention(), Some(3));
        let keys = churn_keys();
        let mut roots = Vec::new();
        let mut sizes = Vec::new();
        for v in 0..40u64 {
            roots.push(commit_churn(&[&archive, &pruned], &keys, v));
            sizes.push(pruned.stats().unwrap());
        }
        // Bounded: the pruned store holds as much at block 39 as at block 10, the archive more.
        assert_bounded(sizes[10], sizes[39], &archive);
        assert_eq!(archive.stats().unwrap().live_keys, sizes[39].live_keys);
        // The window [37, 39] is provable, for present and deleted keys alike.
        assert_eq!(pruned.oldest_retained().unwrap(), 37);
        assert_provable(&pruned, &archive, &roots, &keys, 37..40);
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
            if v < 40 {
                assert_eq!(
                    commit_churn(&[&pruned], &keys, v),
                    roots[v as usize],
                    "block {v}"
                );
            } else {
                commit_churn(&[&archive, &pruned], &keys, v);
            }
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

    /// A committed block takes the requests it ran out of the node's pending records in its
    /// own transaction; other pending requests stay.
    #[test]
    fn a_block_removes_the_requests_it_ran_from_the_pending_records() {
        let db = StateDb::in_memory().unwrap();
        db.put_pending(&[1; 32], b"one").unwrap();
        db.put_pending(&[2; 32], b"two").unwrap();
        commit_receipts(&db, 0, &[receipt_with(0, 0, 1, &[])]);
        assert_eq!(db.pending().unwrap(), vec![(vec![2; 32], b"two".to_vec())]);
        let (_, _) = db
            .commit_block(
                1,
                BTreeMap::<Vec<u8>, _>::new(),
                (&[receipt_with(1, 0, 2, &[])], BlockIndexes::default()),
                &[],
                |r| header(1, r),
            )
            .unwrap();
        assert!(db.pending().unwrap().is_empty());
    }

    /// Commits `changes` as block `v` to `a` through `prepare` and `commit` and to `b` through
    /// `commit_block`, and checks both got the same state root.
    fn commit_both(a: &StateDb, b: &StateDb, v: u64, changes: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        let pending = a.prepare(v, changes.clone()).unwrap();
        let root = pending.root();
        a.commit(pending, &header(v, root), &[], &[]).unwrap();
        let (h, _) = b
            .commit_block(v, changes, (&[], BlockIndexes::default()), &[], |r| {
                header(v, r)
            })
            .unwrap();
        assert_eq!(h.state_root, root, "block {v}");
    }

    /// `commit_block` (hashing beside the writing) stores exactly what `prepare` + `commit`
    /// store, and refuses a header for another block without writing anything.
    #[test]
    fn commit_block_equals_prepare_then_commit() {
        let (a, b) = (StateDb::in_memory().unwrap(), StateDb::in_memory().unwrap());
        a.set_flush_threshold(5);
        b.set_flush_threshold(5);
        for v in 0..20u64 {
            let changes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = (0..7u64)
                .map(|i| {
                    let key = ((v * 3 + i) % 11).to_le_bytes().to_vec();
                    (key, (i != v % 7).then(|| (v * i).to_le_bytes().to_vec()))
                })
                .collect();
            commit_both(&a, &b, v, changes);
            assert_eq!(b.block(v).unwrap(), a.block(v).unwrap());
        }
        for k in 0..11u64 {
            let key = k.to_le_bytes();
            assert_eq!(b.get(&key).unwrap(), a.get(&key).unwrap());
            let (value, proof) = b.prove(&key, 12).unwrap();
            assert_eq!(value, a.prove(&key, 12).unwrap().0);
            verify_proof(
                a.block(12).unwrap().state_root,
                &key,
                value.as_deref(),
                &proof,
            )
            .unwrap();
        }
        let wrong = b.commit_block(
            20,
            BTreeMap::<Vec<u8>, _>::new(),
            (&[], BlockIndexes::default()),
            &[],
            |r| header(21, r),
        );
        assert!(matches!(wrong, Err(StateError::OutOfOrder { .. })));
        assert_eq!(b.latest_version().unwrap(), Some(19));
        assert_eq!(b.stats().unwrap(), a.stats().unwrap());
    }

    /// Large values flush the latest values by their bytes, however few keys they are: held
    /// memory is bounded by [`StateDb::set_flush_bytes`], not only by the count of keys.
    #[test]
    fn large_values_flush_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let db = StateDb::open(&path).unwrap();
        db.set_flush_bytes(100_000);
        let big = vec![7u8; 30_000];
        for v in 0..3u64 {
            commit(&db, v, &[(&v.to_le_bytes(), Some(&big))]);
        }
        // 3 × 30 KB stay under 100 KB: nothing flushed yet.
        assert_eq!(db.memory().flushed_through, None);
        commit(&db, 3, &[(&3u64.to_le_bytes(), Some(&big))]);
        // The fourth crosses it, with only 5 keys in memory (4 values and the block marker).
        let memory = db.memory();
        assert_eq!(memory.flushed_through, Some(3));
        assert!(memory.recent.is_empty());
        assert_eq!(memory.recent_bytes, 0);
        drop(memory);
        drop(db);
        let db = StateDb::open(&path).unwrap();
        for v in 0..4u64 {
            assert_eq!(db.get(&v.to_le_bytes()).unwrap().as_deref(), Some(&big[..]));
        }
    }

    /// Values carried from one block to the next are the next block's only if it follows
    /// that very block: the same height reached again after a rollback, with other values,
    /// reads them from the store.
    #[test]
    fn carried_values_hold_only_for_the_block_they_were_carried_past() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        commit(&db, 0, &[(b"a", Some(b"1")), (b"b", Some(b"x"))]);
        // Block 1 reads a and b, writes a (and c, which it did not read).
        let mut snapshot = db.block_snapshot(None).unwrap();
        assert_eq!(snapshot.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(snapshot.get(b"b").unwrap(), Some(b"x".to_vec()));
        let writes: [(&[u8], Option<&[u8]>); 2] = [(b"a", Some(b"2")), (b"c", Some(b"y"))];
        let warm = snapshot.carry(writes).expect("a few keys are carried");
        assert_eq!(warm.len(), 2, "the keys read, not the keys only written");
        assert!(snapshot.get(b"a").unwrap() == Some(b"1".to_vec()));
        let root = commit(&db, 1, &writes);
        let warm = warm.committed(&header(1, root));
        // The carried values, as block 1 left them.
        let mut next = db.block_snapshot(Some(warm)).unwrap();
        assert_eq!(next.remembered(), 2, "block 2 starts with them");
        assert_eq!(next.get(b"a").unwrap(), Some(b"2".to_vec()));
        assert_eq!(next.get(b"b").unwrap(), Some(b"x".to_vec()));
        assert_eq!(next.get(b"c").unwrap(), Some(b"y".to_vec()));
        let warm = next
            .carry([(b"b".as_slice(), None)])
            .unwrap()
            .committed(&header(2, commit(&db, 2, &[(b"b", None)])));
        // Back to block 1 and another block 2: what was carried past the first is not used.
        db.rollback_to(Some(1)).unwrap();
        let other = commit(&db, 2, &[(b"a", Some(b"3"))]);
        let mut after = db.block_snapshot(Some(warm)).unwrap();
        assert_eq!(after.remembered(), 0, "block 2 is another block");
        assert_eq!(after.get(b"a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(after.get(b"b").unwrap(), Some(b"x".to_vec()));
        // Values tagged with the block at the head but carried before it committed (no tag)
        // are not used either.
        let untagged = after.carry([]).unwrap();
        assert_eq!(db.block_snapshot(Some(untagged)).unwrap().remembered(), 0);
        // Values tagged with the block at the head are.
        let mut head = db.block_snapshot(None).unwrap();
        head.get(b"a").unwrap();
        let warm = head.carry([]).unwrap().committed(&header(2, other));
        assert!(!warm.is_empty());
        assert_eq!(db.block_snapshot(Some(warm)).unwrap().remembered(), 1);
    }

    /// Values carried into a snapshot are read from it without taking them into the memo of
    /// new reads, count towards the memo's bounds with them, and are carried on with them.
    #[test]
    fn carried_values_and_new_reads_share_the_bounds_and_are_carried_together() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        let root = commit(&db, 0, &[(b"a", Some(b"1")), (b"b", Some(b"2"))]);
        let mut first = db.block_snapshot(None).unwrap();
        assert_eq!(first.get(b"a").unwrap(), Some(b"1".to_vec()));
        let warm = first.carry([]).unwrap().committed(&header(0, root));
        let mut next = db.block_snapshot(Some(warm)).unwrap();
        assert_eq!((next.warm.values.len(), next.memo().values.len()), (1, 0));
        // A carried key is not read again into the memo; a new one is.
        assert_eq!(next.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(next.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(next.get(b"c").unwrap(), None);
        assert_eq!((next.warm.values.len(), next.memo().values.len()), (1, 2));
        // Carried on: both kinds, with the block's writes applied to those read.
        let writes: [(&[u8], Option<&[u8]>); 2] = [(b"a", None), (b"b", Some(b"3"))];
        let carried = next.carry(writes).unwrap();
        assert_eq!(carried.len(), 3);
        assert_eq!(carried.values.values.get(b"a".as_slice()), Some(&None));
        assert_eq!(
            carried.values.values.get(b"b".as_slice()),
            Some(&Some(b"3".to_vec()))
        );
        assert_eq!(next.remembered(), 0, "the snapshot remembers nothing after");
        // The bounds count carried values: a snapshot whose carried values fill the memo's
        // entries remembers no new read (and still returns it).
        let mut full = db.block_snapshot(None).unwrap();
        full.warm = Memo::new();
        for i in 0..MEMO_ENTRIES as u64 {
            full.warm.values.insert(i.to_be_bytes().to_vec(), None);
        }
        assert_eq!(full.get(b"b").unwrap(), Some(b"2".to_vec()));
        assert_eq!(full.memo().values.len(), 0);
    }

    /// A block's writes replace the values it carries whatever their sizes (longer, shorter,
    /// deleted, a key read as absent then written; the carry rewrites a held value in its own
    /// buffer), and the carried bytes change by exactly the values' change.
    #[test]
    fn a_blocks_writes_replace_the_values_it_carries() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        commit(
            &db,
            0,
            &[
                (b"a", Some(b"12345")),
                (b"b", Some(b"1")),
                (b"c", Some(b"xyz")),
            ],
        );
        let mut snapshot = db.block_snapshot(None).unwrap();
        for key in [b"a", b"b", b"c", b"d"] {
            snapshot.get(key).unwrap();
        }
        let before = snapshot.memo().bytes;
        let writes: [(&[u8], Option<&[u8]>); 5] = [
            (b"a", Some(b"1")),
            (b"b", Some(b"123456789")),
            (b"c", None),
            (b"d", Some(b"new")),
            (b"e", Some(b"never read")),
        ];
        let carried = snapshot.carry(writes).unwrap();
        let value = |k: &[u8]| carried.values.values.get(k).cloned();
        assert_eq!(value(b"a"), Some(Some(b"1".to_vec())));
        assert_eq!(value(b"b"), Some(Some(b"123456789".to_vec())));
        assert_eq!(value(b"c"), Some(None));
        assert_eq!(value(b"d"), Some(Some(b"new".to_vec())));
        assert_eq!(
            value(b"e"),
            None,
            "a key the block only wrote is not carried"
        );
        assert_eq!(carried.values.bytes, before - 4 + 8 - 3 + 3);
    }

    /// Past half of the memo's bounds, values are not carried: the next block starts afresh.
    #[test]
    fn values_past_half_the_memo_are_not_carried() {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        let big = vec![7u8; MEMO_BYTES / 4];
        commit(&db, 0, &[(b"big", Some(&big)), (b"small", Some(b"1"))]);
        let mut snapshot = db.block_snapshot(None).unwrap();
        snapshot.get(b"small").unwrap();
        assert!(snapshot.carry([]).is_some());
        snapshot.get(b"small").unwrap();
        snapshot.get(b"big").unwrap();
        assert!(snapshot.carry([]).is_some(), "a quarter of the bytes");
        snapshot.get(b"big").unwrap();
        let bigger = vec![7u8; MEMO_BYTES / 2];
        assert!(
            snapshot
                .carry([(b"big".as_slice(), Some(bigger.as_slice()))])
                .is_none(),
            "a write that takes the values past half of the bytes"
        );
    }

    #[test]
    fn rollback_restores_state_roots_and_values() {
        for flush in [1, 2, FLUSH_ENTRIES] {
            rollback_with_flushes_every(flush);
        }
    }

    fn rollback_with_flushes_every(flush: usize) {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        db.set_flush_threshold(flush);
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

    /// The nodes `db` stores and no block replaced: the latest tree's (in an archive).
    fn live_nodes(db: &StateDb) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let txn = db.db.begin_read().unwrap();
        let mut live: BTreeMap<Vec<u8>, Vec<u8>> = txn
            .open_table(NODES)
            .unwrap()
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect();
        for block in db.unwritten().iter() {
            for n in &block.nodes {
                live.insert(n.key().to_vec(), n.node().to_vec());
            }
        }
        for e in txn.open_table(STALE).unwrap().iter().unwrap() {
            let records: StaleRecords = borsh::from_slice(e.unwrap().1.value()).unwrap();
            for k in records.nodes {
                live.remove(&k);
            }
        }
        live
    }

    /// The latest block's tree nodes are written with the next block: a store closed (or
    /// crashed) before that hashes the block again when opened, and then proves and commits
    /// as a store that never closed, whether the block updated, deleted or added keys,
    /// whether it went through `commit_block` or `prepare` and `commit`, with or without the
    /// node cache.
    #[test]
    fn the_latest_blocks_nodes_are_written_again_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let steady = StateDb::open(&dir.path().join("steady.redb")).unwrap();
        let path = dir.path().join("crashing.redb");
        let keys = churn_keys();
        let mut roots = Vec::new();
        for v in 0..10 {
            let crashing = StateDb::open(&path).unwrap();
            // Without the node cache too, which holds the block's nodes as well.
            if v % 3 == 0 {
                crashing.set_node_cache(0);
            }
            let pending = |db: &StateDb| -> Option<u64> {
                let txn = db.db.begin_read().unwrap();
                let store = txn.open_table(STORE).unwrap();
                let pending = store.get("nodes_pending").unwrap().map(|g| g.value());
                pending
            };
            // Opening wrote the last block's nodes.
            assert_eq!(pending(&crashing), None, "block {v}");
            assert!(crashing.unwritten().is_empty());
            let changes = churn(&keys, v);
            let root = if v % 2 == 0 {
                let borrowed: Vec<(&[u8], Option<&[u8]>)> = changes
                    .iter()
                    .map(|(k, val)| (k.as_slice(), val.as_deref()))
                    .collect();
                commit(&crashing, v, &borrowed)
            } else {
                let (header, _) = crashing
                    .commit_block(
                        v,
                        changes.clone(),
                        (&[], BlockIndexes::default()),
                        &[],
                        |root| header(v, root),
                    )
                    .unwrap();
                header.state_root
            };
            assert_eq!(pending(&crashing), Some(v));
            let steady_root = commit_churn(&[&steady], &keys, v);
            assert_eq!(root, steady_root, "block {v}");
            roots.push(root);
            // Provable before the nodes are written: they are read from memory.
            for k in &keys {
                let (value, proof) = crashing.prove(k, v).unwrap();
                verify_proof(root, k, value.as_deref(), &proof).unwrap();
            }
            assert_eq!(crashing.stats().unwrap(), steady.stats().unwrap());
            // Dropped without writing them: what a crash leaves.
            crashing.unwritten().clear();
        }
        let reopened = StateDb::open(&path).unwrap();
        assert_eq!(reopened.stats().unwrap(), steady.stats().unwrap());
        for (v, root) in roots.iter().enumerate() {
            for k in &keys {
                let (value, proof) = reopened.prove(k, v as u64).unwrap();
                assert_eq!(value, steady.prove(k, v as u64).unwrap().0);
                verify_proof(*root, k, value.as_deref(), &proof).unwrap();
            }
        }
        // Closed cleanly, a store writes them itself.
        commit_churn(&[&reopened, &steady], &keys, 10);
        drop(reopened);
        let raw = redb::Database::open(&path).unwrap();
        let txn = raw.begin_read().unwrap();
        let store = txn.open_table(STORE).unwrap();
        assert!(store.get("nodes_pending").unwrap().is_none());
    }

    /// Nodes held for a block index by an attempt that never committed (as a panic during the
    /// commit would leave them) are not what the block's committed attempt is read with.
    #[test]
    fn an_uncommitted_attempts_held_nodes_are_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let steady = StateDb::open(&dir.path().join("steady.redb")).unwrap();
        let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
        db.set_node_cache(0);
        let keys = churn_keys();
        for v in 0..3 {
            commit_churn(&[&db, &steady], &keys, v);
        }
        // Block 3's nodes from other changes, held as a failed attempt would leave them.
        let other = db.prepare(3, churn(&keys, 40)).unwrap();
        let held = BlockNodes::of(3, &other.batch).unwrap();
        db.unwritten().push(std::sync::Arc::new(held));
        // Every root equal to the steady store's (`commit_churn` checks), and provable.
        let mut root = Hash32::ZERO;
        for v in 3..6 {
            root = commit_churn(&[&db, &steady], &keys, v);
        }
        for k in &keys {
            let (value, proof) = db.prove(k, 5).unwrap();
            verify_proof(root, k, value.as_deref(), &proof).unwrap();
        }
    }

    /// A store whose pending block does not hash to its header's root is refused at opening.
    #[test]
    fn a_pending_block_that_does_not_hash_to_its_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        {
            let db = StateDb::open(&path).unwrap();
            commit(&db, 0, &[(b"a", Some(b"1"))]);
            commit(&db, 1, &[(b"a", Some(b"2"))]);
            // Crashed before block 1's nodes were written, with block 1's change damaged.
            db.unwritten().clear();
            let txn = db.db.begin_write().unwrap();
            {
                let mut history = txn.open_table(HISTORY).unwrap();
                let entry = borsh::to_vec(&(Some(0u64), Some(b"3".to_vec()))).unwrap();
                history
                    .insert(history_key(1, &key_hash(b"a")).as_slice(), entry.as_slice())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        match StateDb::open(&path) {
            Err(StateError::Corrupt(why)) => assert!(why.contains("block 1"), "{why}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    fn cached_nodes(db: &StateDb) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let cache = db.node_cache();
        cache
            .entries()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }

    /// Each of `cached` is a live node of `db`, as stored.
    fn assert_cached_are_live(cached: &BTreeMap<Vec<u8>, Vec<u8>>, db: &StateDb) {
        let live = live_nodes(db);
        for (k, v) in cached {
            assert_eq!(live.get(k), Some(v), "cached node {k:?}");
        }
    }

    /// The node cache holds exactly the latest tree's nodes after blocks that update, delete
    /// and re-create keys; after a rollback (which empties it) and different blocks in place
    /// of those undone, only live nodes; and stores caching the whole tree, part of it or none
    /// of it agree on every root.
    #[test]
    fn the_node_cache_holds_the_latest_tree_and_changes_no_root() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str, limit: usize| {
            let db = StateDb::open(&dir.path().join(name)).unwrap();
            db.set_node_cache(limit);
            db
        };
        let whole = open("whole.redb", DEFAULT_NODE_CACHE_BYTES);
        let part = open("part.redb", 4096);
        let none = open("none.redb", 0);
        let dbs = [&whole, &part, &none];
        let keys = churn_keys();
        for v in 0..12 {
            commit_churn(&dbs, &keys, v);
        }
        let cached = cached_nodes(&whole);
        assert_eq!(cached, live_nodes(&whole));
        assert!(cached.len() > 60, "{} nodes", cached.len());
        let partly = cached_nodes(&part);
        assert!(!partly.is_empty() && part.node_cache().bytes() <= 4096);
        assert_cached_are_live(&partly, &part);
        assert!(cached_nodes(&none).is_empty());
        for db in dbs {
            db.rollback_to(Some(7)).unwrap();
        }
        assert!(cached_nodes(&whole).is_empty());
        // Blocks 8.. again, with other changes than the undone ones: the same node keys
        // with other nodes under some of them.
        for v in 8..20 {
            let changes = churn(&keys, v + 5);
            let borrowed: Vec<(&[u8], Option<&[u8]>)> = changes
                .iter()
                .map(|(k, val)| (k.as_slice(), val.as_deref()))
                .collect();
            let roots: Vec<Hash32> = dbs.iter().map(|db| commit(db, v, &borrowed)).collect();
            assert!(roots.windows(2).all(|w| w[0] == w[1]), "block {v}");
        }
        for db in [&whole, &part] {
            let cached = cached_nodes(db);
            assert!(!cached.is_empty());
            assert_cached_are_live(&cached, db);
        }
    }

    /// A commit that fails after its values were written (here: the header names another
    /// block) leaves the latest values as they were, whether or not the block flushed them,
    /// and the next commit goes on from the last committed block.
    #[test]
    fn a_failed_commit_leaves_the_latest_values_as_they_were() {
        for flush in [1, 2, FLUSH_ENTRIES] {
            let dir = tempfile::tempdir().unwrap();
            let db = StateDb::open(&dir.path().join("s.redb")).unwrap();
            db.set_flush_threshold(flush);
            let r0 = commit(&db, 0, &[(b"a", Some(b"1")), (b"b", Some(b"2"))]);
            let changes = vec![
                (b"a".to_vec(), Some(b"9".to_vec())),
                (b"b".to_vec(), None),
                (b"c".to_vec(), Some(b"3".to_vec())),
            ];
            let failed = db.commit_block(1, changes, (&[], BlockIndexes::default()), &[], |root| {
                header(2, root)
            });
            assert!(
                matches!(failed, Err(StateError::OutOfOrder { .. })),
                "{failed:?}"
            );
            let seen = |db: &StateDb| {
                let snapshot = db.snapshot().unwrap();
                [b"a", b"b", b"c"].map(|k| {
                    let direct = db.get(k).unwrap();
                    assert_eq!(snapshot.get(k).unwrap(), direct, "flush every {flush}");
                    direct
                })
            };
            assert_eq!(
                seen(&db),
                [Some(b"1".to_vec()), Some(b"2".to_vec()), None],
                "flush every {flush}"
            );
            assert_eq!(db.latest_version().unwrap(), Some(0));
            let (v, p) = db.prove(b"a", 0).unwrap();
            verify_proof(r0, b"a", v.as_deref(), &p).unwrap();
            commit(&db, 1, &[(b"a", Some(b"9")), (b"c", Some(b"3"))]);
            assert_eq!(
                seen(&db),
                [
                    Some(b"9".to_vec()),
                    Some(b"2".to_vec()),
                    Some(b"3".to_vec())
                ],
                "flush every {flush}"
            );
        }
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
            .prepare(1, [(b"k".to_vec(), Some(b"w".to_vec()))])
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

    /// Block `v`'s values for keys `state/{from}` to `state/{from + count - 1}`.
    fn subtree_block(v: u64, from: u64, count: u64) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        (from..from + count)
            .map(|i| {
                let key = format!("state/{i}").into_bytes();
                (key, Some(format!("{v}:{i}").into_bytes()))
            })
            .collect()
    }

    /// What hashing `changes` as block `v` on `db` gives, subtree by subtree where that applies
    /// and in one insertion: (whether it was split, the two roots, the two trees' encoded
    /// nodes, the two stale sets). Writes nothing.
    #[allow(clippy::type_complexity)]
    fn hash_both_ways(
        db: &StateDb,
        v: u64,
        changes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    ) -> (
        bool,
        [Hash32; 2],
        [Vec<(Vec<u8>, Vec<u8>)>; 2],
        [jmt::storage::StaleNodeIndexBatch; 2],
    ) {
        let by_hash = StateDb::by_hash(v, changes.clone());
        let (root, batch) = db.hash_tree(v, &by_hash).unwrap();
        let whole = NewTree::of(v, batch).unwrap();
        let split = subtrees::SubtreeHashing::new(v, &by_hash);
        let (was_split, (s_root, s_tree)) = match split.run(db).unwrap() {
            subtrees::Hashing::BySubtree => (true, split.finish().unwrap()),
            subtrees::Hashing::Whole(r, batch) => (false, (r, NewTree::of(v, batch).unwrap())),
        };
        assert_eq!(s_tree.nodes.version, v);
        let encoded = |t: &NewTree| -> Vec<(Vec<u8>, Vec<u8>)> {
            t.nodes
                .nodes
                .iter()
                .map(|n| (n.key().to_vec(), n.node().to_vec()))
                .collect()
        };
        (
            was_split,
            [s_root, root],
            [encoded(&s_tree), encoded(&whole)],
            [s_tree.stale, whole.stale],
        )
    }

    /// Hashing a block subtree by subtree gives the root, nodes, values and stale nodes of one
    /// jmt insertion, block after block (new keys and changed ones; one insertion when a block
    /// deletes or is small), and the store it commits proves what the other store proves.
    #[test]
    fn subtree_hashing_equals_one_insertion() {
        let (a, b) = (StateDb::in_memory().unwrap(), StateDb::in_memory().unwrap());
        for v in 0..8u64 {
            // Block 0 grows the tree so that every root child is an internal node; later
            // blocks change 300 existing keys and add 100 (block 5 also deletes one, block 6
            // is too small to be split).
            let mut changes = match v {
                0 => subtree_block(v, 0, 2000),
                6 => subtree_block(v, 10, 20),
                _ => {
                    let mut c = subtree_block(v, (v * 37) % 1500, 300);
                    c.extend(subtree_block(v, 2000 + (v - 1) * 100, 100));
                    c
                }
            };
            if v == 5 {
                changes.insert(b"state/7".to_vec(), None);
            }
            if v > 0 {
                let (split, [s_root, root], [s_nodes, nodes], [s_stale, stale]) =
                    hash_both_ways(&b, v, &changes);
                assert_eq!(split, v != 5 && v != 6, "block {v}");
                assert_eq!(s_root, root, "block {v}");
                assert_eq!(s_nodes, nodes, "block {v}");
                assert_eq!(s_stale, stale, "block {v}");
            }
            // `a`, committing through `prepare` and `commit`, hashes in one insertion.
            commit_both(&a, &b, v, changes);
        }
        for i in [0u64, 7, 999, 2100, 2650] {
            let key = format!("state/{i}").into_bytes();
            let (value, proof) = b.prove(&key, 7).unwrap();
            assert_eq!(value, a.prove(&key, 7).unwrap().0, "state/{i}");
            verify_proof(
                b.block(7).unwrap().state_root,
                &key,
                value.as_deref(),
                &proof,
            )
            .unwrap();
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// Random blocks (a few keys to 700, new and changed keys, some deleting) on a tree
        /// that starts small: hashed subtree by subtree wherever that applies, each gives the
        /// root, encoded nodes and stale nodes of one insertion, and commits.
        #[test]
        fn subtree_hashing_equals_one_insertion_on_random_blocks(
            blocks in proptest::collection::vec(
                (proptest::collection::vec((0u16..3000, 0u8..40), 1..700), 0u16..3000),
                1..8,
            ),
        ) {
            let db = StateDb::in_memory().unwrap();
            for (v, (writes, first)) in blocks.iter().enumerate() {
                let v = v as u64;
                // In one block in three, one key in 40 written is deleted (never in the first).
                let deletes = v > 0 && first % 3 == 0;
                let changes: BTreeMap<Vec<u8>, Option<Vec<u8>>> = writes
                    .iter()
                    .map(|(k, d)| {
                        let key = format!("key/{}", (k + first) % 3000).into_bytes();
                        (key, (*d != 0 || !deletes).then(|| format!("{v}/{k}").into_bytes()))
                    })
                    .collect();
                if v > 0 {
                    let (_, [s_root, root], [s_nodes, nodes], [s_stale, stale]) =
                        hash_both_ways(&db, v, &changes);
                    proptest::prop_assert_eq!(s_root, root);
                    proptest::prop_assert_eq!(s_nodes, nodes);
                    proptest::prop_assert_eq!(s_stale, stale);
                }
                db.commit_block(v, changes, (&[], BlockIndexes::default()), &[], |r| header(v, r))
                    .unwrap();
            }
        }
    }

    /// A tree whose touched root child is a single leaf is hashed in one insertion.
    #[test]
    fn subtree_hashing_leaves_a_leaf_child_to_one_insertion() {
        let db = StateDb::in_memory().unwrap();
        // Two keys: the root's children are leaves.
        db.commit_block(
            0,
            subtree_block(0, 0, 2),
            (&[], BlockIndexes::default()),
            &[],
            |r| header(0, r),
        )
        .unwrap();
        let (split, [s_root, root], ..) = hash_both_ways(&db, 1, &subtree_block(1, 0, 300));
        assert!(!split, "a leaf child was split");
        assert_eq!(s_root, root);
    }
}
