//! Wisp's authenticated state and block archive.
//!
//! - State is a key/value map committed by a Jellyfish Merkle tree (`jmt`, Penumbra's, pinned)
//!   whose nodes live in redb (pinned); one tree version per Wisp block, so every block has a
//!   state root, and any key's value or absence at any block can be proven against it.
//! - A flat copy of the latest values serves execution reads without walking the tree.
//! - A block is committed in one redb write transaction: tree nodes, value history, the flat
//!   copy, the header, the receipts and the caller's metadata. redb commits are durable and
//!   atomic, so a crash at any moment leaves the last committed block intact (tested).
//!
//! Why jmt + redb and not commonware QMDB: see `state/README.md`.

mod proof;
mod store;

pub use proof::{
    verify_proof, Blake2bHasher, CompactProof, ProofError, StateProof, MAX_PROOF_BYTES,
    MAX_SIBLINGS,
};
pub use store::{
    BlockIndexes, IndexedValue, PendingCommit, RequestEntry, RequestFilter, Restore, Snapshot,
    StateChunk, StateDb, StoreStats, WarmValues, BLOCK_MARKER_KEY, COMPACT_FREE_PERCENT,
    COMPACT_MIN_BYTES, DEFAULT_CACHE_BYTES, FLUSH_ENTRIES, MAX_CHUNK_BYTES, MAX_CHUNK_ENTRIES,
    MEMO_BYTES, MEMO_ENTRIES,
};

/// Errors of the state layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The database could not be opened, read or written.
    #[error("state database error: {0}")]
    Db(String),
    /// The Merkle tree reported an inconsistency.
    #[error("state tree error: {0}")]
    Tree(String),
    /// A stored record did not decode (the data directory is damaged or from another version).
    #[error("corrupt record in the state database: {0}")]
    Corrupt(String),
    /// A block was committed out of order.
    #[error("block {got} committed after block {latest:?}; blocks must be committed in order")]
    OutOfOrder {
        /// The last committed version.
        latest: Option<u64>,
        /// The version offered.
        got: u64,
    },
    /// The database was written in another on-disk format.
    #[error("the state database is in format {found}, this Wisp reads format {supported}: it was written by another version of Wisp; move the data directory aside and let the node sync again")]
    Format {
        /// The format found.
        found: u64,
        /// The format this build reads and writes.
        supported: u64,
    },
    /// A state snapshot page or the restored whole did not check against the trusted state
    /// root, or the store was not empty (see `StateDb::begin_restore`).
    #[error("state snapshot refused: {0}")]
    Snapshot(String),
    /// The requested block is not in the archive.
    #[error("block {0} is not committed")]
    UnknownBlock(u64),
    /// An index query reached a block committed with the node's indexes turned off (see
    /// `StateDb::set_indexing`), or indexing was asked for again on such a store.
    #[error("this node keeps no event or request index from block {from} on: it committed blocks with indexing turned off (`wisp node --no-index`), and indexes with a gap would answer wrongly; ask a node that indexes, or start this one on a new data directory to index again")]
    Unindexed {
        /// The first block committed without the indexes.
        from: u64,
    },
    /// The block's state is older than the retention window: it can no longer be proven or
    /// rolled back to (see `StateDb::set_retention`).
    #[error("the state of block {version} was pruned; the oldest block kept is {oldest} (set a longer retention window, or run an archive node, to keep older state)")]
    Pruned {
        /// The block asked for.
        version: u64,
        /// The oldest block whose state is kept.
        oldest: u64,
    },
}

/// Result alias of this crate.
pub type Result<T, E = StateError> = std::result::Result<T, E>;
