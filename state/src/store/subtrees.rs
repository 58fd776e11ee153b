//! A block's tree hashed subtree by subtree, on the hashing thread and on the committing
//! thread once its writes are done.
//!
//! The root of the tree is an internal node with up to 16 children, one per first nibble of
//! the key hash, and jmt's batch insertion changes each child's subtree from the changes under
//! it alone. So each touched subtree is hashed on its own: jmt inserts its changes into a tree
//! whose root (the block before's, as this job's reader shows it) holds that child alone, and
//! the block's root is then rebuilt from the old root's children with the new ones in their
//! places. Every node jmt makes below the root has the key and bytes it has when the whole
//! block goes in at once (a node's key is its version and nibble path; it depends on nothing
//! outside its subtree), so the block's nodes, stale nodes and root are those of one
//! insertion (tested against it, `subtree_hashing_equals_one_insertion`).
//!
//! Used only where that holds without exception: a block of at least
//! [`SUBTREE_HASHING_MIN_CHANGES`] changes, none a deletion (a deletion may collapse a
//! subtree into its parent), on a tree whose root is an internal node in which every touched
//! child is an internal node (a subtree that is a single leaf, or absent, is restructured at
//! the root). Otherwise the block is hashed in one insertion, as before.

use super::{db_err, encode_nodes, BlockNodes, NewTree, Reader, StateDb};
use crate::proof::Blake2bHasher;
use crate::{Result, StateError};
use jmt::storage::{Node, NodeKey, StaleNodeIndexBatch, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Fewest changes for a block's tree to be hashed by subtree: below it, the jobs' fixed costs
/// (a reader, a jmt tree cache and a batch each, and the merge) are not worth the second
/// thread's help.
pub(super) const SUBTREE_HASHING_MIN_CHANGES: usize = 256;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A job pushes its result whole: a panic elsewhere leaves the list usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The key of the root node at `version`.
fn root_key(version: Version) -> NodeKey {
    NodeKey::new(version, std::iter::empty().collect())
}

/// The first nibble of a key hash: which child of the root its leaf is under.
fn first_nibble(key_hash: &[u8; 32]) -> u8 {
    key_hash[0] >> 4
}

/// jmt's internal node with `children` ((nibble, child), nibbles ascending) and `leaf_count`
/// leaves under it. jmt 0.12 does not export the internal node's type, so it is decoded from
/// its borsh encoding, the one the `nodes` table stores: the variant (1), the 16 optional
/// children, the number of children and the leaf count (u64 little-endian each).
fn internal_node<'c, C: borsh::BorshSerialize + 'c>(
    children: impl IntoIterator<Item = (u8, &'c C)>,
    leaf_count: usize,
) -> Result<Node> {
    let mut slots: [Option<&C>; 16] = [None; 16];
    for (nibble, child) in children {
        if let Some(slot) = slots.get_mut(usize::from(nibble)) {
            *slot = Some(child);
        }
    }
    let mut bytes = vec![1u8];
    let mut count = 0u64;
    for slot in slots {
        match slot {
            None => bytes.push(0),
            Some(child) => {
                bytes.push(1);
                borsh::to_writer(&mut bytes, child).map_err(db_err)?;
                count += 1;
            }
        }
    }
    bytes.extend_from_slice(&count.to_le_bytes());
    bytes.extend_from_slice(&(leaf_count as u64).to_le_bytes());
    borsh::from_slice(&bytes).map_err(db_err)
}

/// A reader that shows the block before's root as holding one child alone.
struct OneChildReader<'r, 'a> {
    inner: &'r Reader<'a>,
    key: NodeKey,
    root: Node,
}

impl TreeReader for OneChildReader<'_, '_> {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        if *node_key == self.key {
            return Ok(Some(self.root.clone()));
        }
        self.inner.get_node_option(node_key)
    }
    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        self.inner.get_value_option(max_version, key_hash)
    }
    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, jmt::storage::LeafNode)>> {
        self.inner.get_rightmost_leaf()
    }
}

/// What the jobs share once the hashing thread has read the block before's root.
pub(super) struct Base {
    txn: redb::ReadTransaction,
    unwritten: super::Unwritten,
    /// The node cache's generation when `txn` began (nodes read from disk go in).
    generation: u64,
    /// The block before's root: an internal node.
    root: Node,
    /// The first nibbles the block's changes are under, ascending: one job each.
    nibbles: Vec<u8>,
}

/// One subtree hashed: its first nibble, the new root jmt made for it (holding that child
/// alone), its new nodes but that root, encoded and sorted, and the nodes they replace but the
/// block before's root.
type Hashed = (u8, Node, Vec<super::CachedNode>, StaleNodeIndexBatch);

/// A block's tree being hashed by subtree: set up by the hashing thread, taken from by it and by
/// the committing thread.
pub(super) struct SubtreeHashing<'c> {
    version: Version,
    changes: &'c BTreeMap<[u8; 32], Option<Vec<u8>>>,
    /// `Some` once the hashing thread found the block can be hashed by subtree; `None` once it
    /// found it cannot.
    base: OnceLock<Option<Base>>,
    /// The next of `base.nibbles` to take.
    next: AtomicUsize,
    done: Mutex<Vec<Result<Hashed>>>,
}

/// How the hashing thread hashed a block.
pub(super) enum Hashing {
    /// In one insertion: its root and batch.
    Whole(wisp_core::Hash32, TreeUpdateBatch),
    /// By subtree: [`SubtreeHashing::finish`] puts the jobs' results together.
    BySubtree,
}

impl<'c> SubtreeHashing<'c> {
    pub(super) fn new(
        version: Version,
        changes: &'c BTreeMap<[u8; 32], Option<Vec<u8>>>,
    ) -> SubtreeHashing<'c> {
        SubtreeHashing {
            version,
            changes,
            base: OnceLock::new(),
            next: AtomicUsize::new(0),
            done: Mutex::new(Vec::new()),
        }
    }

    /// The hashing thread's part: reads the block before's root, decides, then takes jobs
    /// until none is left (or hashes the block in one insertion).
    pub(super) fn run(&self, db: &StateDb) -> Result<Hashing> {
        match self.begin(db) {
            Ok(Some(base)) => {
                let base = self.base.get_or_init(|| Some(base));
                if let Some(base) = base {
                    let _ = self.take_jobs(db, base);
                }
                Ok(Hashing::BySubtree)
            }
            Ok(None) => {
                self.base.get_or_init(|| None);
                let (root, batch) = db.hash_tree(self.version, self.changes)?;
                Ok(Hashing::Whole(root, batch))
            }
            Err(e) => {
                self.base.get_or_init(|| None);
                Err(e)
            }
        }
    }

    /// The committing thread's part, once its writes are done: takes jobs left, if the block is
    /// hashed by subtree and the hashing thread has begun. Returns whether it hashed any.
    pub(super) fn help(&self, db: &StateDb) -> bool {
        match self.base.get() {
            Some(Some(base)) => self.take_jobs(db, base),
            _ => false,
        }
    }

    /// The block's root and its new tree (the new nodes encoded and sorted, the nodes they
    /// replace) from the jobs' results, once every job has been taken and both threads are
    /// done (after the hashing thread is joined).
    pub(super) fn finish(&self) -> Result<(wisp_core::Hash32, NewTree)> {
        let Some(Some(base)) = self.base.get() else {
            return Err(StateError::Tree(
                "the block was not hashed by subtree".into(),
            ));
        };
        let mut done = std::mem::take(&mut *lock(&self.done))
            .into_iter()
            .collect::<Result<Vec<Hashed>>>()?;
        if done.len() != base.nibbles.len() {
            return Err(StateError::Tree(format!(
                "{} of the block's {} subtrees were hashed",
                done.len(),
                base.nibbles.len()
            )));
        }
        done.sort_unstable_by_key(|(nibble, ..)| *nibble);
        let Node::Internal(old) = &base.root else {
            return Err(StateError::Tree("the root is not an internal node".into()));
        };
        // Each job's root holds its new child alone: in the old root's children, it replaces
        // the old one.
        let mut new_children = Vec::with_capacity(done.len());
        for (nibble, root, ..) in &done {
            let Node::Internal(one) = root else {
                return Err(StateError::Tree(format!(
                    "subtree {nibble:x} left a root that is not an internal node"
                )));
            };
            let child = one.child((*nibble).into()).ok_or_else(|| {
                StateError::Tree(format!("subtree {nibble:x} left a root without it"))
            })?;
            new_children.push((*nibble, child));
        }
        let mut leaf_count = 0usize;
        let mut children = Vec::with_capacity(16);
        for (nibble, child) in old.children_sorted() {
            let nibble = u8::from(nibble);
            let child = match new_children.iter().find(|(n, _)| *n == nibble) {
                Some((_, new)) => *new,
                None => child,
            };
            leaf_count += child.leaf_count();
            children.push((nibble, child));
        }
        let root = internal_node(children, leaf_count)?;
        let hash = match &root {
            Node::Internal(node) => node.hash::<Blake2bHasher>(),
            _ => {
                return Err(StateError::Tree(
                    "the new root is not an internal node".into(),
                ))
            }
        };
        let new_root_key = root_key(self.version);
        let mut nodes = encode_nodes([(&new_root_key, &root)])?;
        nodes.reserve(done.iter().map(|(_, _, n, _)| n.len()).sum());
        let mut stale = StaleNodeIndexBatch::new();
        stale.insert(jmt::storage::StaleNodeIndex {
            stale_since_version: self.version,
            node_key: root_key(self.version.saturating_sub(1)),
        });
        for (.., part_nodes, part_stale) in done {
            nodes.extend(part_nodes);
            stale.extend(part_stale);
        }
        // Each part is sorted: this merges runs.
        nodes.sort_by(|a, b| a.key().cmp(b.key()));
        let nodes = BlockNodes {
            version: self.version,
            nodes,
        };
        Ok((wisp_core::Hash32(hash), NewTree { nodes, stale }))
    }

    /// Reads the block before's root and decides whether the block can be hashed by subtree
    /// (see the module's documentation): `None` if not.
    fn begin(&self, db: &StateDb) -> Result<Option<Base>> {
        if self.changes.len() < SUBTREE_HASHING_MIN_CHANGES
            || self.changes.values().any(Option::is_none)
        {
            return Ok(None);
        }
        let Some(before) = self.version.checked_sub(1) else {
            return Ok(None);
        };
        // Taken before the transaction begins, as for one insertion (`StateDb::hash_tree`).
        let generation = db.node_cache_generation();
        let (txn, unwritten) = db.begin_read_tip()?;
        let root = {
            let reader = Reader {
                fills: Some(generation),
                ..Reader::new(db, (&txn, unwritten.clone()), None)
            };
            reader
                .get_node_option(&root_key(before))
                .map_err(|e| StateError::Tree(e.to_string()))?
        };
        let Some(root) = root else {
            return Ok(None);
        };
        let Node::Internal(old) = &root else {
            return Ok(None);
        };
        let mut nibbles: Vec<u8> = self.changes.keys().map(first_nibble).collect();
        nibbles.dedup();
        let all_internal = nibbles
            .iter()
            .all(|n| old.child((*n).into()).is_some_and(|child| !child.is_leaf()));
        if !all_internal {
            return Ok(None);
        }
        Ok(Some(Base {
            txn,
            unwritten,
            generation,
            root,
            nibbles,
        }))
    }

    /// Hashes subtrees until none is left to take; returns whether it hashed any.
    fn take_jobs(&self, db: &StateDb, base: &Base) -> bool {
        let mut took = false;
        loop {
            let k = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&nibble) = base.nibbles.get(k) else {
                return took;
            };
            took = true;
            let hashed = self.hash_subtree(db, base, nibble);
            lock(&self.done).push(hashed.map(|(root, nodes, stale)| (nibble, root, nodes, stale)));
        }
    }

    /// Inserts the block's changes under `nibble` into a tree whose root holds that child alone.
    fn hash_subtree(
        &self,
        db: &StateDb,
        base: &Base,
        nibble: u8,
    ) -> Result<(Node, Vec<super::CachedNode>, StaleNodeIndexBatch)> {
        let tree_err = |e: anyhow::Error| StateError::Tree(e.to_string());
        let Node::Internal(old) = &base.root else {
            return Err(StateError::Tree("the root is not an internal node".into()));
        };
        let child = old
            .child(nibble.into())
            .ok_or_else(|| StateError::Tree(format!("the root has no subtree {nibble:x}")))?;
        let reader = Reader {
            fills: Some(base.generation),
            ..Reader::new(db, (&base.txn, base.unwritten.clone()), None)
        };
        let old_root = root_key(self.version.saturating_sub(1));
        let one = OneChildReader {
            inner: &reader,
            key: old_root.clone(),
            root: internal_node([(nibble, child)], child.leaf_count())?,
        };
        let mut lo = [0u8; 32];
        lo[0] = nibble << 4;
        let mut hi = [0xffu8; 32];
        hi[0] = (nibble << 4) | 0x0f;
        let value_set: Vec<(KeyHash, OwnedValue)> = self
            .changes
            .range(lo..=hi)
            .filter_map(|(k, v)| Some((KeyHash(*k), v.clone()?)))
            .collect();
        let tree = JellyfishMerkleTree::<_, Blake2bHasher>::new(&one);
        let (_, batch) = tree
            .batch_put_value_sets(vec![value_set], None, self.version)
            .map_err(tree_err)?;
        let new_root = root_key(self.version);
        let root = batch
            .node_batch
            .get_node(&new_root)
            .cloned()
            .ok_or_else(|| StateError::Tree(format!("subtree {nibble:x} made no root")))?;
        // Encoded here, on whichever thread hashed it, rather than after the hashing.
        let mut nodes = encode_nodes(
            batch
                .node_batch
                .nodes()
                .iter()
                .filter(|(key, _)| **key != new_root),
        )?;
        nodes.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        let mut stale = batch.stale_node_index_batch;
        stale.retain(|s| s.node_key != old_root);
        Ok((root, nodes, stale))
    }
}
