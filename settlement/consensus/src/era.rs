//! Committee eras: which committee runs which committee blocks of a chain.
//!
//! A chain starts with the committee it was created with (epoch 0, from [`crate::genesis`]).
//! A rotation (`governance.rotate_committee`, recorded in state as a
//! [`wisp_chain::CommitteeRotation`]) fixes the outgoing committee's last block; the incoming
//! committee's simplex starts from that block's digest (its *floor*) with the next epoch, and
//! its blocks continue the heights. The handover block itself carries no requests and draws no
//! randomness (no later block of its committee exists to seed it), so every node executes it
//! as soon as it is final.

use crate::dkg::CommitteeScheme;
use crate::{ConsensusError, Digest};
use commonware_codec::DecodeExt;
use commonware_cryptography::bls12381::primitives::variant::{MinSig, Variant};
use wisp_chain::{Chain, CommitteeRotation};

/// Where a committee's part of the chain starts: its epoch (simplex's, and the rotation's
/// number), the digest its first block's parent has, and that parent's height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Era {
    /// 0 for the committee the chain was created with; the rotation's epoch after.
    pub epoch: u64,
    /// simplex's genesis payload: [`crate::genesis`] for epoch 0, else the digest of the
    /// outgoing committee's last block.
    pub floor: Digest,
    /// The committee height of `floor` (0 for epoch 0).
    pub floor_height: u64,
}

impl Era {
    /// The era of the committee chain `chain` was created with.
    pub fn first(chain: &Chain) -> Era {
        Era {
            epoch: 0,
            floor: crate::genesis(chain.chain_id()),
            floor_height: 0,
        }
    }

    /// The era of the committee of rotation `epoch` (0: [`Era::first`]), once this node has
    /// executed the outgoing committee's last block.
    ///
    /// # Errors
    /// [`ConsensusError::Chain`] if the chain has no such rotation, has not executed its
    /// handover block yet (the message says which block), or its records cannot be read.
    pub fn of(chain: &Chain, epoch: u64) -> Result<Era, ConsensusError> {
        if epoch == 0 {
            return Ok(Era::first(chain));
        }
        let failed = |e: wisp_chain::ChainError| ConsensusError::Chain(e.to_string());
        let rotation = chain
            .committee_rotation(epoch)
            .map_err(failed)?
            .ok_or_else(|| ConsensusError::Chain(format!("the chain has no rotation {epoch}")))?;
        let Some(height) = handover_height(chain, &rotation)? else {
            return Err(ConsensusError::Chain(format!(
                "committee {epoch} takes over after block {}, which this node has not executed",
                rotation.last_block
            )));
        };
        let block = crate::follow::stored_block(chain, height)?.ok_or_else(|| {
            ConsensusError::Chain(format!(
                "the handover block (committee height {height}) is not stored"
            ))
        })?;
        Ok(Era {
            epoch,
            floor: block.digest(),
            floor_height: height,
        })
    }
}

/// How many Wisp blocks precede the committee's first (the chain's blocks before a committee
/// took over), and the executed committee tip's height: every committee block executes as one
/// Wisp block, so committee height + offset = Wisp index. A block committed between the two
/// reads makes the offset wrong by one; callers that need certainty check what they find.
///
/// # Errors
/// [`ConsensusError::Chain`] if the records cannot be read.
pub(crate) fn height_offset(chain: &Chain) -> Result<(u64, u64), ConsensusError> {
    let ((_, tip), _) = crate::read_tip(chain)?;
    let head = chain
        .head()
        .map_err(|e| ConsensusError::Chain(e.to_string()))?
        .index;
    Ok((head.saturating_sub(tip), tip))
}

/// The committee height of `rotation`'s handover block (its outgoing committee's last), once
/// this node has executed it ([`height_offset`]).
///
/// # Errors
/// [`ConsensusError::Chain`] if the records cannot be read.
pub fn handover_height(
    chain: &Chain,
    rotation: &CommitteeRotation,
) -> Result<Option<u64>, ConsensusError> {
    let (offset, tip) = height_offset(chain)?;
    Ok(rotation
        .last_block
        .checked_sub(offset)
        .filter(|height| *height <= tip))
}

/// The committee height at which the committee of `epoch` hands over to the next, if the
/// chain's state at its head has a rotation to `epoch + 1`: the rotation's last Wisp block
/// as a committee height. Known from the block that runs the rotation on, [`HANDOVER_DELAY`]
/// blocks ahead of the handover.
///
/// [`HANDOVER_DELAY`]: wisp_chain::HANDOVER_DELAY
///
/// # Errors
/// [`ConsensusError::Chain`] if the records cannot be read.
pub fn next_handover(chain: &Chain, epoch: u64) -> Result<Option<u64>, ConsensusError> {
    let Some(rotation) = chain
        .committee_rotation(epoch + 1)
        .map_err(|e| ConsensusError::Chain(e.to_string()))?
    else {
        return Ok(None);
    };
    let (offset, _) = height_offset(chain)?;
    Ok(rotation.last_block.checked_sub(offset))
}

/// The verifier of certificates of the committee `rotation` names (its certificate key and
/// namespace): what a follower checks that committee's blocks with.
///
/// # Errors
/// [`ConsensusError::Malformed`] if the recorded key is not a BLS12-381 public key.
pub fn verifier(rotation: &CommitteeRotation) -> Result<CommitteeScheme, ConsensusError> {
    let identity =
        <MinSig as Variant>::Public::decode(rotation.certificate_key.clone()).map_err(|e| {
            ConsensusError::Malformed(format!(
                "rotation {}'s certificate key: {e}",
                rotation.epoch
            ))
        })?;
    Ok(CommitteeScheme::certificate_verifier(
        &rotation.namespace,
        identity,
    ))
}

/// The chain metadata record holding the finalization certificate of the last block of the
/// committee before `epoch` ([`crate::follow::StoredFinalization`], borsh): kept for good, so
/// access nodes can cross the handover from any node.
pub fn handover_meta(epoch: u64) -> String {
    format!("wisp-consensus/handover/{epoch}")
}
