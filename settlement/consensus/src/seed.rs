//! Per-block randomness from the committee's threshold signatures.
//!
//! commonware's threshold simplex has every vote carry the member's share of a BLS signature
//! over the view alone; any quorum of shares recovers one signature per view, the view's seed.
//! It is unique (no member can choose it) and unknown until a quorum has voted in that view.
//!
//! A block does not use its own view's seed: commonware documents that a leader with `f`
//! colluders can learn it while the view is still open and pick which of several proposals to
//! drive to a certificate, so it would choose which requests run against a known value.
//! Instead block `h` draws from the seed of the view of its finalized child `h+1`: honest
//! members vote in that view only after `h` was notarized, so `h`'s requests were fixed
//! before anyone could know the value. What an adversary keeps: the leader of `h+1`'s view,
//! with `f` colluders, may learn that seed early and let the view fail, so `h` draws from a
//! later view's seed instead (a re-draw, never a value of its choosing); and any quorum of
//! members can compute a seed as soon as it votes. `docs/randomness.md` states this for
//! contract authors.
//!
//! A member learns a view's seed from the notarization or finalization it sees, or, if it
//! missed them (it was down, or caught up through later blocks), from the block after the
//! child: each block carries its parent's view's seed ([`crate::Block::parent_seed`]), checked
//! against the committee key before anyone votes for it.

use crate::dkg::CommitteeScheme;
use crate::{Digest, PublicKey};
use borsh::{BorshDeserialize, BorshSerialize};
use commonware_codec::{DecodeExt, Encode};
use commonware_consensus::simplex::scheme::bls12381_threshold::vrf as threshold;
use commonware_consensus::simplex::types::{Finalization, Notarization};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::bls12381::primitives::variant::{MinSig, Variant};
use wisp_core::Hash32;

/// Bytes of a seed signature: a BLS12-381 G1 point, compressed (`MinSig`).
pub const SEED_SIGNATURE_BYTES: usize = 48;

const RANDOMNESS_DOMAIN: &[u8] = b"wisp-committee-randomness-v1";

/// The committee's threshold signature of one simplex view (in epoch 0): that view's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ViewSeed {
    /// The view signed.
    pub view: u64,
    /// The signature, compressed.
    pub signature: [u8; SEED_SIGNATURE_BYTES],
}

impl ViewSeed {
    /// The randomness a block drawing from this seed gets (`wisp_chain::BlockInputs::randomness`):
    /// blake2b-256 of a domain tag, the view and the signature.
    pub fn randomness(&self) -> Hash32 {
        wisp_core::hash::blake2b_256_parts(&[
            RANDOMNESS_DOMAIN,
            &self.view.to_le_bytes(),
            &self.signature,
        ])
    }

    fn from_commonware(seed: &threshold::Seed<MinSig>) -> Option<ViewSeed> {
        let signature = seed.signature.encode();
        Some(ViewSeed {
            view: seed.round.view().get(),
            signature: <[u8; SEED_SIGNATURE_BYTES]>::try_from(signature.as_ref()).ok()?,
        })
    }
}

/// What a member reads from its certificate scheme: the seed a notarization or finalization
/// carries, if the scheme has seeds. Implemented for the committee's threshold scheme and, with
/// no seeds, for ed25519 (tests of the ordering alone).
pub trait SeedScheme: commonware_cryptography::certificate::Scheme {
    /// The seed of a verified notarization's view.
    fn notarization_seed(notarization: &Notarization<Self, Digest>) -> Option<ViewSeed>;
    /// The seed of a verified finalization's view.
    fn finalization_seed(finalization: &Finalization<Self, Digest>) -> Option<ViewSeed>;
}

impl SeedScheme for CommitteeScheme {
    fn notarization_seed(notarization: &Notarization<Self, Digest>) -> Option<ViewSeed> {
        let cert = notarization.certificate.get()?;
        ViewSeed::from_commonware(&threshold::Seed::new(
            notarization.proposal.round,
            cert.seed_signature,
        ))
    }

    fn finalization_seed(finalization: &Finalization<Self, Digest>) -> Option<ViewSeed> {
        let cert = finalization.certificate.get()?;
        ViewSeed::from_commonware(&threshold::Seed::new(
            finalization.proposal.round,
            cert.seed_signature,
        ))
    }
}

impl SeedScheme for commonware_consensus::simplex::scheme::ed25519::Scheme {
    fn notarization_seed(_: &Notarization<Self, Digest>) -> Option<ViewSeed> {
        None
    }

    fn finalization_seed(_: &Finalization<Self, Digest>) -> Option<ViewSeed> {
        None
    }
}

/// Checks seeds against the committee's public key: a member with one gives its blocks
/// randomness ([`crate::Config::seeds`]).
#[derive(Clone)]
pub struct SeedVerifier(CommitteeScheme, u64);

impl SeedVerifier {
    /// A verifier for the committee `scheme` signs with (any member's scheme: only its public
    /// parts are used), in epoch 0 (the chain's first committee).
    pub fn new(scheme: &CommitteeScheme) -> SeedVerifier {
        SeedVerifier(scheme.clone(), 0)
    }

    /// This verifier for seeds of committee epoch `epoch` ([`crate::era`]): a seed signs its
    /// round, epoch and view.
    pub fn in_epoch(self, epoch: u64) -> SeedVerifier {
        SeedVerifier(self.0, epoch)
    }

    /// Whether `seed` is the committee's signature of its view (a BLS pairing check).
    pub fn verify(&self, seed: &ViewSeed) -> bool {
        let Ok(signature) = <MinSig as Variant>::Signature::decode(seed.signature.to_vec()) else {
            return false;
        };
        let round = Round::new(Epoch::new(self.1), View::new(seed.view));
        threshold::Seed::<MinSig>::new(round, signature).verify::<PublicKey>(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_consensus::simplex::scheme::bls12381_threshold::vrf::fixture;
    use rand::SeedableRng;

    /// Bytes that are not a signature never verify.
    #[test]
    fn bytes_that_are_no_signature_do_not_verify() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let committee = fixture::<MinSig, _>(&mut rng, b"wisp-seed-test", 4);
        let verifier = SeedVerifier::new(&committee.schemes[0]);
        // Not a point of the curve.
        let garbage = ViewSeed {
            view: 1,
            signature: [0xff; SEED_SIGNATURE_BYTES],
        };
        assert!(!verifier.verify(&garbage));
    }
}
