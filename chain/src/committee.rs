//! Committee rotation as chain state: `governance.rotate_committee` records that the chain
//! moves to a new committee, and from which block.
//!
//! A committee chain's blocks are made by one committee at a time, its *epoch*: the committee
//! the chain was created with runs epoch 0. A rotation, requested by the chain owner in block
//! R, names the next committee (its anchor key, its certificate key and the namespace its
//! certificates are signed under) and fixes the outgoing committee's last block, H = R +
//! [`HANDOVER_DELAY`]: the outgoing committee makes blocks up to H and no further, the new
//! one makes H + 1 onwards, and the anchor successor that commits a block at or after H names
//! the new committee's anchor key. Records are never removed, so every node can tell which
//! committee made (and certified) any block from its state at the head.

use wisp_core::Hash32;

/// Blocks from the block that runs a rotation to the outgoing committee's last block.
/// A committee member votes for a block only once it has executed to within this many blocks
/// of it (or knows the handover height), so every member agrees where its committee stops
/// without waiting for execution in the common case.
pub const HANDOVER_DELAY: u64 = 32;

/// Most bytes of a committee's certificate key in a rotation (a BLS12-381 G2 public key is
/// 96 bytes).
pub const MAX_CERTIFICATE_KEY_BYTES: usize = 192;

/// Most bytes of a committee's signing namespace in a rotation.
pub const MAX_NAMESPACE_BYTES: usize = 128;

/// One rotation: the committee that makes the chain's blocks from `last_block + 1` on.
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct CommitteeRotation {
    /// The new committee's epoch: 1 for the first rotation, one more for each after it.
    pub epoch: u64,
    /// The outgoing committee's last block (the Wisp block index, which equals the committee
    /// block height).
    pub last_block: u64,
    /// The new committee's anchor key: the x-only secp256k1 key (FROST group key) the anchor
    /// successor committing `last_block` or later names.
    pub anchor_key: Hash32,
    /// The new committee's certificate key as the consensus layer encodes it (for Wisp's
    /// committees, a BLS12-381 group public key, 96 bytes).
    pub certificate_key: Vec<u8>,
    /// The namespace the new committee's certificates are signed under.
    pub namespace: Vec<u8>,
}

impl CommitteeRotation {
    /// Whether this rotation's committee made block `index` (it makes the blocks after
    /// `last_block`).
    pub fn covers(&self, index: u64) -> bool {
        index > self.last_block
    }
}
