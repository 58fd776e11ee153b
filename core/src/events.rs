//! A block's events root: the root of a binary Merkle tree with one leaf per event the block's
//! requests emitted, in receipt order, so one event can be proven to a light client that holds
//! only the block header ([`EventProof`]).
//!
//! The tree is `rs_merkle`'s (an odd node is promoted to the level above unhashed) with
//! domain-separated blake2b-256:
//! - leaf = blake2b(`"wisp/events/leaf"` ‖ request id ‖ u32 LE index of the event in its
//!   request ‖ borsh(event)), so a proven event also names the request that emitted it;
//! - node = blake2b(`"wisp/events/node"` ‖ left ‖ right).
//!
//! A block without events has the all-zero root.

use crate::block::{Event, Receipt};
use crate::hash::{blake2b_256, blake2b_256_parts, Hash32};
use crate::request::RequestId;
use alloc::vec::Vec;
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// Most sibling hashes a proof may carry: a tree of up to 2^32 leaves.
pub const MAX_PROOF_SIBLINGS: usize = 32;

#[derive(Clone)]
struct Blake2bTree;

impl rs_merkle::Hasher for Blake2bTree {
    type Hash = [u8; 32];

    fn hash(data: &[u8]) -> [u8; 32] {
        blake2b_256(data).0
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => blake2b_256_parts(&[b"wisp/events/node", left, right]).0,
            None => *left,
        }
    }
}

/// The leaf of the `index`-th event of request `request_id`.
pub fn event_leaf(request_id: &RequestId, index: u32, event: &Event) -> Hash32 {
    let encoded = borsh::to_vec(event).unwrap_or_default();
    blake2b_256_parts(&[
        b"wisp/events/leaf",
        &request_id.0,
        &index.to_le_bytes(),
        &encoded,
    ])
}

fn leaves(receipts: &[Receipt]) -> Vec<[u8; 32]> {
    receipts
        .iter()
        .flat_map(|r| {
            r.events
                .iter()
                .enumerate()
                .map(|(i, e)| event_leaf(&r.request_id, i as u32, e).0)
        })
        .collect()
}

/// The events root of a block whose receipts are `receipts`, in order.
pub fn events_root(receipts: &[Receipt]) -> Hash32 {
    let leaves = leaves(receipts);
    rs_merkle::MerkleTree::<Blake2bTree>::from_leaves(&leaves)
        .root()
        .map(Hash32)
        .unwrap_or(Hash32::ZERO)
}

/// That event `index` of request `request_id` is in a block: checked against the block
/// header's `events_root` with [`EventProof::verify`].
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventProof {
    /// The request that emitted it.
    pub request_id: RequestId,
    /// Its position among that request's events.
    pub index: u32,
    /// The event.
    pub event: Event,
    /// Its leaf's position among the block's events.
    pub leaf_index: u32,
    /// How many events the block has.
    pub leaf_count: u32,
    /// The sibling hashes from the leaf up (rs_merkle's order), at most
    /// [`MAX_PROOF_SIBLINGS`].
    pub siblings: Vec<Hash32>,
}

impl EventProof {
    /// The proof of event `index` of request `request_id` among `receipts` (a block's, in
    /// order); `None` if that request or event is not there.
    pub fn build(receipts: &[Receipt], request_id: &RequestId, index: u32) -> Option<EventProof> {
        let mut leaf_index = 0usize;
        let mut event = None;
        for receipt in receipts {
            if receipt.request_id == *request_id {
                event = receipt.events.get(index as usize).cloned();
                leaf_index += index as usize;
                break;
            }
            leaf_index += receipt.events.len();
        }
        let event = event?;
        let leaves = leaves(receipts);
        let tree = rs_merkle::MerkleTree::<Blake2bTree>::from_leaves(&leaves);
        let siblings = tree
            .proof(&[leaf_index])
            .proof_hashes()
            .iter()
            .map(|h| Hash32(*h))
            .collect();
        Some(EventProof {
            request_id: *request_id,
            index,
            event,
            leaf_index: u32::try_from(leaf_index).ok()?,
            leaf_count: u32::try_from(leaves.len()).ok()?,
            siblings,
        })
    }

    /// Whether the proof leads from its event to `events_root`.
    pub fn verify(&self, events_root: &Hash32) -> bool {
        if self.leaf_index >= self.leaf_count || self.siblings.len() > MAX_PROOF_SIBLINGS {
            return false;
        }
        let leaf = event_leaf(&self.request_id, self.index, &self.event);
        let proof =
            rs_merkle::MerkleProof::<Blake2bTree>::new(self.siblings.iter().map(|h| h.0).collect());
        proof.verify(
            events_root.0,
            &[self.leaf_index as usize],
            &[leaf.0],
            self.leaf_count as usize,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::ReceiptStatus;
    use crate::ids::{AgentId, Hname};
    use alloc::string::ToString;
    use alloc::vec;

    fn receipt(id: u8, events: usize) -> Receipt {
        Receipt {
            request_id: Hash32([id; 32]),
            block_index: 1,
            request_index: id as u32,
            sender: AgentId::Address([id; 32]),
            status: ReceiptStatus::Success,
            error: None,
            gas_used: 1,
            fee_sompi: 1,
            storage_locked_sompi: 0,
            storage_refunded_sompi: 0,
            events: (0..events)
                .map(|i| Event {
                    contract: Hname(7),
                    topic: "T".to_string(),
                    data: vec![id, i as u8],
                })
                .collect(),
            return_data: vec![],
        }
    }

    #[test]
    fn every_event_of_every_shape_proves_and_tampering_fails() {
        assert_eq!(events_root(&[]), Hash32::ZERO);
        assert_eq!(events_root(&[receipt(1, 0)]), Hash32::ZERO);
        for counts in [
            vec![1],
            vec![2, 0, 1],
            vec![3, 4],
            vec![0, 5, 2, 1],
            vec![7; 5],
        ] {
            let receipts: Vec<Receipt> = counts
                .iter()
                .enumerate()
                .map(|(i, n)| receipt(i as u8, *n))
                .collect();
            let root = events_root(&receipts);
            for (r, n) in counts.iter().enumerate() {
                let id = Hash32([r as u8; 32]);
                for i in 0..*n as u32 {
                    let proof = EventProof::build(&receipts, &id, i).unwrap();
                    assert!(proof.verify(&root), "{counts:?} {r} {i}");
                    assert_eq!(proof.event.data, vec![r as u8, i as u8]);
                    let mut other = proof.clone();
                    other.event.data.push(0);
                    assert!(!other.verify(&root));
                    let mut other = proof.clone();
                    other.request_id = Hash32([99; 32]);
                    assert!(!other.verify(&root), "the event names its request");
                    if proof.leaf_count > 1 {
                        let mut other = proof.clone();
                        other.leaf_index = (other.leaf_index + 1) % other.leaf_count;
                        assert!(!other.verify(&root));
                    }
                    let mut other = proof.clone();
                    other.leaf_index = other.leaf_count;
                    assert!(!other.verify(&root));
                    assert!(!proof.verify(&Hash32([1; 32])));
                }
                assert!(EventProof::build(&receipts, &id, *n as u32).is_none());
            }
        }
    }
}
