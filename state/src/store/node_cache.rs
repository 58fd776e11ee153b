//! The latest tree's nodes in memory: what hashing a block reads instead of the `nodes` table.
//!
//! At 10^6 keys a block of 1000 updates reads ~3,700 tree nodes, most of them leaves and low
//! internal nodes written many blocks ago, on pages redb's page cache no longer holds: each a
//! B-tree look-up and a page read, 11 of the 25 ms it took to hash such a block (see
//! state/README.md). An earlier cache of only the internal nodes down to depth 4 made hashing no
//! faster: the leaves and the nodes just above them are the reads that miss.

use std::collections::HashMap;

/// What a [`NodeCache`] entry costs beyond its bytes: the allocation's header, its reference
/// counts and the map's slot (a hash and a pointer, at the map's load factor).
const ENTRY_OVERHEAD: usize = 56;

/// A tree node as the `nodes` table stores it, with its key, in one shared allocation (the
/// block's unwritten nodes and the cache hold the same one): key length (1 byte), key, borsh
/// of the node.
#[derive(Clone)]
pub(super) struct CachedNode(std::sync::Arc<[u8]>);

impl CachedNode {
    /// `key` (a `nodes` key, at most 8 + 12 + 32 bytes) and `node` (the node's borsh).
    pub(super) fn new(key: &[u8], node: &[u8]) -> CachedNode {
        let len = u8::try_from(key.len()).unwrap_or(u8::MAX);
        let key = &key[..usize::from(len)];
        let mut bytes = Vec::with_capacity(1 + key.len() + node.len());
        bytes.push(len);
        bytes.extend_from_slice(key);
        bytes.extend_from_slice(node);
        CachedNode(bytes.into())
    }

    /// The node's `nodes` key.
    pub(super) fn key(&self) -> &[u8] {
        let len = usize::from(self.0[0]);
        &self.0[1..1 + len]
    }

    /// The node's borsh.
    pub(super) fn node(&self) -> &[u8] {
        &self.0[1 + usize::from(self.0[0])..]
    }
}

/// Tree nodes by `nodes` key, up to a byte limit.
///
/// Entries are found by a 64-bit keyed hash of the key (foldhash, seeded per process: node
/// keys follow key hashes, which whoever writes state can grind, so the hash must not be
/// theirs to aim) and hold the key itself, compared on every look-up: two keys with one hash
/// share a slot, the later one evicting the earlier, and a look-up never answers with another
/// key's node. One allocation per node, and the map's slots are 16 bytes: keeping the cache
/// current costs a block ~7,600 insertions and removals in a map of a million entries.
///
/// Nodes never change once written under a key, except that a rollback deletes blocks whose
/// indexes (and so node keys) later blocks take again: [`NodeCache::reset`] then empties the
/// cache and starts a new generation, and whoever began reading before may not fill it.
pub(super) struct NodeCache {
    /// By the keyed hash of the key, itself the map's hash (`nohash-hasher`).
    nodes: HashMap<u64, CachedNode, nohash_hasher::BuildNoHashHasher<u64>>,
    keys: foldhash::fast::RandomState,
    /// Bytes held: each entry's bytes and [`ENTRY_OVERHEAD`].
    bytes: usize,
    /// Most bytes held.
    pub(super) limit: usize,
    /// Bumped by each [`NodeCache::reset`].
    pub(super) generation: u64,
}

impl NodeCache {
    /// An empty cache holding at most `limit` bytes.
    pub(super) fn new(limit: usize) -> NodeCache {
        NodeCache {
            nodes: HashMap::default(),
            keys: foldhash::fast::RandomState::default(),
            bytes: 0,
            limit,
            generation: 0,
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        std::hash::BuildHasher::hash_one(&self.keys, key)
    }

    /// The borsh of the node under `key`, if kept.
    pub(super) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.nodes
            .get(&self.hash(key))
            .filter(|n| n.key() == key)
            .map(CachedNode::node)
    }

    /// Keeps `node` if it fits. Whatever was kept under its key is gone either way: the cache
    /// never answers for a key with anything but the last node put under it.
    pub(super) fn put(&mut self, node: CachedNode) {
        let hash = self.hash(node.key());
        let cost = node.0.len() + ENTRY_OVERHEAD;
        if let Some(old) = self.nodes.remove(&hash) {
            self.bytes -= old.0.len() + ENTRY_OVERHEAD;
        }
        if self.bytes + cost <= self.limit {
            self.bytes += cost;
            self.nodes.insert(hash, node);
        }
    }

    /// Forgets the node under `key`.
    pub(super) fn remove(&mut self, key: &[u8]) {
        let hash = self.hash(key);
        if self.nodes.get(&hash).is_some_and(|n| n.key() == key) {
            if let Some(old) = self.nodes.remove(&hash) {
                self.bytes -= old.0.len() + ENTRY_OVERHEAD;
            }
        }
    }

    /// Bytes held, as counted against the limit.
    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Nodes held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Every node held, as (key, borsh).
    #[cfg(test)]
    pub(super) fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.nodes.values().map(|n| (n.key(), n.node()))
    }

    /// Empties the cache and starts a new generation.
    pub(super) fn reset(&mut self) {
        self.nodes = HashMap::default();
        self.bytes = 0;
        self.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_node_put_under_a_key_within_its_limit() {
        let mut cache = NodeCache::new(3 * (1 + 9 + 4 + ENTRY_OVERHEAD));
        let key = |i: u8| [0, 0, 0, 0, 0, 0, 0, i, 7];
        for i in 0..3 {
            cache.put(CachedNode::new(&key(i), &[i; 4]));
        }
        assert_eq!(cache.get(&key(1)), Some(&[1u8; 4][..]));
        assert_eq!(cache.len(), 3);
        // Full: a fourth is not kept, and a node put again under a kept key replaces it.
        cache.put(CachedNode::new(&key(3), &[3; 4]));
        assert_eq!(cache.get(&key(3)), None);
        cache.put(CachedNode::new(&key(1), &[9; 4]));
        assert_eq!(cache.get(&key(1)), Some(&[9u8; 4][..]));
        // One that does not fit evicts what was under its key rather than leave it behind.
        cache.put(CachedNode::new(&key(2), &[5; 400]));
        assert_eq!(cache.get(&key(2)), None);
        assert_eq!(cache.len(), 2);
        cache.remove(&key(0));
        assert_eq!(cache.get(&key(0)), None);
        assert_eq!(cache.bytes(), 1 + 9 + 4 + ENTRY_OVERHEAD);
        // A key that only shares a prefix is another key.
        assert_eq!(cache.get(&key(1)[..8]), None);
        let generation = cache.generation;
        cache.reset();
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
        assert_eq!(cache.generation, generation + 1);
    }
}
