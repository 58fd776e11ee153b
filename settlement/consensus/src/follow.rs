//! Following a committee chain without voting: what an access node does.
//!
//! An access node holds no share of the committee's keys and takes no part in consensus. It
//! fetches the committee's final blocks from a member (or from another access node) together
//! with the newest finalization certificate, checks that the certificate is the committee's
//! and that the blocks link by digest from its own tip up to the certified block, and executes
//! them exactly as members do: the same on-ledger requests from its own view of Kaspa, the same
//! randomness (checked against the committee key), the same state. Each block's attestation
//! of an earlier state is compared with the state the node reached there, so an access node
//! whose execution diverges from the committee's stops instead of serving a wrong state.

use crate::dkg::CommitteeScheme;
use crate::seed::{SeedScheme, SeedVerifier};
use crate::{
    commit_final_block, prepare_final_block, Block, ConsensusError, Digest, L1View, OnExecuted,
    SERVED_BLOCKS,
};
use commonware_codec::DecodeExt;
use commonware_consensus::simplex::types::Finalization;
use std::collections::BTreeMap;
use std::sync::Arc;
use wisp_chain::{Chain, L1Ref};

/// Most blocks a follower takes in one batch (what it asks a member for at once).
pub const MAX_FOLLOW_BATCH: usize = 256;

/// An access node's executor of a committee chain.
pub struct Follower {
    chain: Arc<Chain>,
    l1: Box<dyn L1View>,
    scheme: CommitteeScheme,
    seeds: SeedVerifier,
    /// The epoch of the committee whose blocks come next ([`crate::era`]).
    epoch: u64,
    /// That committee's last block (committee height), once the state names its successor:
    /// blocks past it are refused, and after it the next committee's key is taken.
    handover: Option<u64>,
    on_executed: Option<OnExecuted>,
    /// The last executed committee block: digest and height (genesis, 0, at first).
    tip: (Digest, u64),
    /// The Kaspa block it followed.
    tip_l1: Option<L1Ref>,
    /// Header hashes of the last [`SERVED_BLOCKS`] executed heights, for attestations.
    headers: BTreeMap<u64, [u8; 32]>,
}

impl Follower {
    /// A follower of `chain`'s committee, whose first committee's certificates `scheme`
    /// verifies (a verifier built from that committee's public key:
    /// `CommitteeScheme::certificate_verifier`), seeing Kaspa through `l1` and telling
    /// `on_executed` of each block it executes. It continues from the committee block recorded
    /// in [`crate::TIP_META`], with the committee the chain's state names for the next block
    /// (after a rotation, the key recorded in the rotation: [`crate::era::verifier`]).
    ///
    /// # Errors
    /// [`ConsensusError::Chain`] if the record cannot be read or does not decode;
    /// [`ConsensusError::Malformed`] if a recorded rotation's key does not decode.
    pub fn new(
        chain: Arc<Chain>,
        l1: Box<dyn L1View>,
        scheme: CommitteeScheme,
        on_executed: Option<OnExecuted>,
    ) -> Result<Follower, ConsensusError> {
        let (tip, tip_l1) = crate::read_tip(&chain)?;
        let failed = |e: wisp_chain::ChainError| ConsensusError::Chain(e.to_string());
        let head = chain.head().map_err(failed)?.index;
        let (epoch, scheme) = match chain.committee_for_block(head + 1).map_err(failed)? {
            Some(rotation) => (rotation.epoch, crate::era::verifier(&rotation)?),
            None => (0, scheme),
        };
        let handover = crate::era::next_handover(&chain, epoch)?;
        let seeds = SeedVerifier::new(&scheme).in_epoch(epoch);
        Ok(Follower {
            chain,
            l1,
            scheme,
            seeds,
            epoch,
            handover,
            on_executed,
            tip,
            tip_l1,
            headers: BTreeMap::new(),
        })
    }

    /// The height of the last committee block executed.
    pub fn height(&self) -> u64 {
        self.tip.1
    }

    /// The epoch of the committee whose blocks this follower takes next (0: the chain's first
    /// committee).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Checks `blocks` (the committee's blocks from this node's height plus one, in height
    /// order, up to and including the block `finalization` certifies) and executes them.
    /// Returns how many ran: the last, certified block waits for the next batch if it runs
    /// requests (its randomness comes from its child), and blocks whose Kaspa block this
    /// node's follower has not seen wait too. `rng` randomizes the certificate's batch
    /// verification.
    ///
    /// # Errors
    /// - [`ConsensusError::Malformed`]: the certificate does not decode;
    /// - [`ConsensusError::Forged`]: the certificate is not the committee's or the blocks do
    ///   not link from this node's tip to the certified block (nothing ran), or a block's
    ///   randomness has no committee seed: the grandchild carries none, or one that is not the
    ///   committee's (the blocks before it ran: they are certified);
    /// - [`ConsensusError::Diverged`]: a block attests a state this node did not reach (this
    ///   node's execution differs from the committee's); the blocks before it ran;
    /// - [`ConsensusError::Chain`]: executing failed; nothing of that block was committed.
    pub fn apply<R: rand_core::CryptoRng>(
        &mut self,
        rng: &mut R,
        blocks: &[Block],
        finalization: &[u8],
    ) -> Result<usize, ConsensusError> {
        let encoded = finalization;
        let finalization = verify_finalization(rng, &self.scheme, self.epoch, encoded)?;
        let certified = finalization.proposal.payload;
        let certified_seed = CommitteeScheme::finalization_seed(&finalization);
        // The blocks link from this node's tip to the certified one.
        let start = self.tip.0;
        let mut digests = Vec::with_capacity(blocks.len());
        let mut parent = start;
        for (i, block) in blocks.iter().enumerate() {
            if block.parent != parent.0 || block.height != self.tip.1 + 1 + i as u64 {
                return Err(ConsensusError::Forged(format!(
                    "block {} does not follow height {}",
                    block.height,
                    self.tip.1 + i as u64
                )));
            }
            parent = block.digest();
            digests.push(parent);
        }
        let Some(end) = digests.iter().position(|d| *d == certified) else {
            return Err(ConsensusError::Forged(
                "the blocks do not reach the certified block".into(),
            ));
        };
        let mut ran = 0;
        for at in 0..=end {
            let (block, digest) = (&blocks[at], digests[at]);
            if self.handover.is_some_and(|h| block.height > h) {
                return Err(ConsensusError::Forged(format!(
                    "committee {} certified block {} past its last block",
                    self.epoch, block.height
                )));
            }
            let last = self.handover == Some(block.height);
            let Some(prepared) = prepare_final_block(
                &self.chain,
                self.l1.as_ref(),
                self.tip_l1.as_ref(),
                block,
                None,
                !last,
            ) else {
                return Ok(ran);
            };
            let randomness = match prepared.needs_seed {
                false => None,
                // The certified block's child is not final yet (blocks past the certified one
                // are not taken): it waits for the next batch.
                true if at == end => return Ok(ran),
                true => {
                    // The seed of the child's view: the certificate's, if the child is the
                    // certified block; else carried by the grandchild.
                    let child = &blocks[at + 1];
                    let seed = match at + 1 == end {
                        true => certified_seed,
                        false => blocks
                            .get(at + 2)
                            .and_then(|grandchild| grandchild.parent_seed)
                            .filter(|s| s.view == child.view && self.seeds.verify(s)),
                    };
                    let Some(seed) = seed else {
                        return Err(ConsensusError::Forged(format!(
                            "no committee seed for the randomness of block {}",
                            block.height
                        )));
                    };
                    Some(seed.randomness())
                }
            };
            let output = commit_final_block(
                &self.chain,
                prepared,
                randomness,
                (block, digest),
                (at == end).then_some(encoded),
                last.then_some(self.epoch + 1),
            )
            .map_err(ConsensusError::Chain)?;
            if let Some(a) = block.attests {
                if let Some(own) = self.headers.get(&a.height) {
                    if *own != a.header {
                        return Err(ConsensusError::Diverged(a.height));
                    }
                }
            }
            self.headers.insert(block.height, output.header.hash().0);
            if let Some(old) = block.height.checked_sub(SERVED_BLOCKS) {
                self.headers.remove(&old);
            }
            self.tip = (digest, block.height);
            self.tip_l1 = Some(block.l1);
            if let Some(on_executed) = self.on_executed.as_mut() {
                on_executed(&output);
            }
            ran += 1;
            if last {
                // The next committee's blocks come with its certificates.
                self.enter_next_era()?;
                return Ok(ran);
            }
            if self.handover.is_none() {
                self.handover = crate::era::next_handover(&self.chain, self.epoch)?;
            }
        }
        Ok(ran)
    }

    /// Takes the next committee's key (from the rotation in state) after its predecessor's
    /// last block.
    fn enter_next_era(&mut self) -> Result<(), ConsensusError> {
        let next = self.epoch + 1;
        let rotation = self
            .chain
            .committee_rotation(next)
            .map_err(|e| ConsensusError::Chain(e.to_string()))?
            .ok_or_else(|| ConsensusError::Chain(format!("rotation {next} is not in state")))?;
        self.scheme = crate::era::verifier(&rotation)?;
        self.seeds = SeedVerifier::new(&self.scheme).in_epoch(next);
        self.epoch = next;
        self.handover = crate::era::next_handover(&self.chain, next)?;
        Ok(())
    }
}

/// The committee block `height` as this node executed it (members and access nodes keep
/// every one), if it has.
///
/// # Errors
/// [`ConsensusError::Chain`] if the record cannot be read, [`ConsensusError::Malformed`] if it
/// does not decode.
pub fn stored_block(chain: &Chain, height: u64) -> Result<Option<Block>, ConsensusError> {
    stored_block_bytes(chain, height)?
        .map(|bytes| Block::decode(&bytes))
        .transpose()
}

/// [`stored_block`] as stored: the block's encoding ([`Block::encode`]), to serve as is.
///
/// # Errors
/// [`ConsensusError::Chain`] if the record cannot be read.
pub fn stored_block_bytes(chain: &Chain, height: u64) -> Result<Option<Vec<u8>>, ConsensusError> {
    chain
        .db()
        .meta(&crate::block_meta(height))
        .map_err(|e| ConsensusError::Chain(e.to_string()))
}

/// The newest finalization certificate whose block a node executed ([`stored_finalization`]).
#[derive(Clone, Debug, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub struct StoredFinalization {
    /// The certified block's committee height.
    pub height: u64,
    /// Its digest.
    pub digest: [u8; 32],
    /// The finalization, in commonware's encoding.
    pub certificate: Vec<u8>,
}

/// The finalization certificate of the last block of the committee before `epoch` (the
/// handover block), if this node executed it.
///
/// # Errors
/// [`ConsensusError::Chain`] if the record cannot be read or does not decode.
pub fn stored_handover(
    chain: &Chain,
    epoch: u64,
) -> Result<Option<StoredFinalization>, ConsensusError> {
    let key = crate::era::handover_meta(epoch);
    chain
        .db()
        .meta(&key)
        .map_err(|e| ConsensusError::Chain(e.to_string()))?
        .map(|bytes| {
            borsh::from_slice(&bytes).map_err(|e| ConsensusError::Chain(format!("{key}: {e}")))
        })
        .transpose()
}

/// The newest finalization whose block this node executed, if any.
///
/// # Errors
/// [`ConsensusError::Chain`] if the record cannot be read or does not decode.
pub fn stored_finalization(chain: &Chain) -> Result<Option<StoredFinalization>, ConsensusError> {
    chain
        .db()
        .meta(crate::FINALIZATION_META)
        .map_err(|e| ConsensusError::Chain(e.to_string()))?
        .map(|bytes| {
            borsh::from_slice(&bytes)
                .map_err(|e| ConsensusError::Chain(format!("{}: {e}", crate::FINALIZATION_META)))
        })
        .transpose()
}

/// A committee chain's state a new node can start from instead of executing every block: the
/// Wisp header of a height the committee certified, and the committee block at that height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotBase {
    /// The committee block at the snapshot's height (its digest and Kaspa block are where the
    /// node continues from).
    pub block: Block,
    /// The Wisp header executing it produced; its state root is what the snapshot's pages
    /// are checked against.
    pub header: wisp_core::BlockHeader,
}

impl SnapshotBase {
    /// The chain metadata a node restored from this base starts with (to pass to
    /// `wisp_state::Restore::finish`): the committee tip ([`crate::TIP_META`]) and the block
    /// ([`crate::block_meta`]), as if it had executed the block itself.
    pub fn meta(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (
                crate::TIP_META.to_string(),
                crate::tip_record(&self.block, self.block.digest()),
            ),
            (crate::block_meta(self.block.height), self.block.encode()),
        ]
    }
}

/// Checks what a node offers as a snapshot base of `chain`'s committee chain: `finalization`
/// verifies against the committee key (`scheme`), `blocks` link by digest from the first to
/// the certified one, and a block after the first attests `header` (its hash, at the first
/// block's committee height; the Wisp block index is that height plus the blocks the chain
/// had before its committee took over). What was certified is then the header and so its
/// state root: a node may restore the state under it from anyone.
///
/// # Errors
/// [`ConsensusError::Malformed`] if the certificate or a block does not decode;
/// [`ConsensusError::Forged`] if the certificate is not the committee's, the blocks do not
/// link to it, no block attests the header, or the header is of another chain.
pub fn check_snapshot_base<R: rand_core::CryptoRng>(
    rng: &mut R,
    scheme: &CommitteeScheme,
    chain: wisp_core::ChainId,
    header: &[u8],
    blocks: &[Vec<u8>],
    finalization: &[u8],
) -> Result<SnapshotBase, ConsensusError> {
    let header: wisp_core::BlockHeader = borsh::from_slice(header)
        .map_err(|e| ConsensusError::Malformed(format!("the snapshot's header: {e}")))?;
    if header.chain != chain {
        return Err(ConsensusError::Forged(format!(
            "the snapshot's header is of chain {}, not {chain}",
            header.chain
        )));
    }
    let blocks = blocks
        .iter()
        .map(|b| Block::decode(b))
        .collect::<Result<Vec<_>, _>>()?;
    let finalization = verify_finalization(rng, scheme, 0, finalization)?;
    let Some(first) = blocks.first() else {
        return Err(ConsensusError::Forged(
            "the snapshot base has no blocks".into(),
        ));
    };
    let mut digest = first.digest();
    for pair in blocks.windows(2) {
        if pair[1].parent != digest.0 || Some(pair[1].height) != pair[0].height.checked_add(1) {
            return Err(ConsensusError::Forged(format!(
                "block {} does not follow block {}",
                pair[1].height, pair[0].height
            )));
        }
        digest = pair[1].digest();
    }
    if digest != finalization.proposal.payload {
        return Err(ConsensusError::Forged(
            "the blocks do not reach the certified block".into(),
        ));
    }
    let attested = crate::Attestation {
        height: first.height,
        header: header.hash().0,
    };
    if !blocks[1..].iter().any(|b| b.attests == Some(attested)) {
        return Err(ConsensusError::Forged(format!(
            "no certified block attests the snapshot's header at height {}",
            header.index
        )));
    }
    Ok(SnapshotBase {
        block: first.clone(),
        header,
    })
}

/// Decodes a finalization certificate and checks that it is the committee's (`scheme`, with
/// `rng`'s random batch coefficients) and of epoch `epoch`.
///
/// # Errors
/// [`ConsensusError::Malformed`] if it does not decode; [`ConsensusError::Forged`] if it does
/// not verify.
fn verify_finalization<R: rand_core::CryptoRng>(
    rng: &mut R,
    scheme: &CommitteeScheme,
    epoch: u64,
    encoded: &[u8],
) -> Result<Finalization<CommitteeScheme, Digest>, ConsensusError> {
    let finalization = Finalization::<CommitteeScheme, Digest>::decode(encoded.to_vec())
        .map_err(|e| ConsensusError::Malformed(format!("the finalization: {e}")))?;
    if finalization.proposal.round.epoch().get() != epoch
        || !finalization.verify(rng, scheme, &commonware_parallel::Sequential)
    {
        return Err(ConsensusError::Forged(
            "the finalization certificate is not the committee's".into(),
        ));
    }
    Ok(finalization)
}

/// The Wisp header this node produced executing the committee block an attestation names, if
/// it has it and its hash is the attested one.
///
/// # Errors
/// [`ConsensusError::Chain`] if the records cannot be read.
pub fn attested_header(
    chain: &Chain,
    attestation: &crate::Attestation,
) -> Result<Option<wisp_core::BlockHeader>, ConsensusError> {
    // A wrong guess of the offset (a block committed between its reads) is caught by the hash
    // check; the height is a stranger's, so the sum is checked.
    let (offset, _) = crate::era::height_offset(chain)?;
    let Some(index) = attestation.height.checked_add(offset) else {
        return Ok(None);
    };
    match chain.db().block(index) {
        Ok(header) if header.hash().0 == attestation.header => Ok(Some(header)),
        Ok(_) | Err(wisp_state::StateError::UnknownBlock(_)) => Ok(None),
        Err(e) => Err(ConsensusError::Chain(e.to_string())),
    }
}
