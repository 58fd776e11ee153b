//! Making a committee's certificate key by distributed key generation: no member, and no
//! dealer, ever holds the whole BLS12-381 key whose threshold signatures are simplex's
//! certificates.
//!
//! This is one operator's side of commonware's Feldman/Desmedt DKG
//! (`commonware_cryptography::bls12381::dkg::feldman_desmedt`, joint-Feldman after GJKR99),
//! with every member both a dealer and a player:
//!
//! 1. [`Keygen::start`]: the member deals — a public commitment for everyone and a private
//!    share for each member (sent over an encrypted, authenticated channel).
//! 2. [`Keygen::dealing`]: for each dealing it receives, the member checks its share against
//!    the commitment and answers with a signed acknowledgement.
//! 3. [`Keygen::acknowledged`] then [`Keygen::close`]: the member collects acknowledgements for
//!    its own dealing and publishes its signed log (the shares of members that did not
//!    acknowledge are revealed in it).
//! 4. [`Keygen::finish`]: from the logs of at least a quorum of dealers, every member computes
//!    its share and the committee's public polynomial; [`committee_scheme`] makes the simplex
//!    signer from them. Anyone can compute the public output from the same logs
//!    ([`observe`]).
//!
//! The protocol relies on synchrony only to bound how many shares are revealed (commonware's
//! documentation has the argument); the messages' transport is the caller's.

use crate::PublicKey;
use commonware_consensus::simplex::scheme::bls12381_threshold::vrf as threshold;
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{
    self as fd, Dealer, DealerPrivMsg, DealerPubMsg, Info, Logs, Output, Player, PlayerAck, Reveal,
    SignedDealerLog,
};
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_cryptography::bls12381::primitives::sharing::Mode;
use commonware_cryptography::bls12381::primitives::variant::MinSig;
use commonware_cryptography::ed25519::PrivateKey;
use commonware_parallel::Sequential;
use commonware_utils::ordered::Set;
use commonware_utils::N3f1;
use rand_core::CryptoRng;

/// The signing scheme of a committee's certificates: BLS12-381 threshold signatures with
/// signatures in G1 (`MinSig`: 48-byte certificates), whose threshold signatures also seed
/// unpredictable per-view randomness (VRF).
pub type CommitteeScheme = threshold::Scheme<PublicKey, MinSig>;

/// The public result of a committee key generation: the committee's public polynomial (its
/// constant term is the committee's public key) and the members holding shares.
pub type KeygenOutput = Output<MinSig, PublicKey>;

/// A dealer's signed transcript: what every member needs from at least a quorum of dealers to
/// finish ([`Keygen::finish`]).
pub type DealerLog = SignedDealerLog<MinSig, PublicKey>;

/// What went wrong in a key generation.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// The round could not be set up (no members, or this member is not one).
    #[error("the key generation round cannot start: {0}")]
    Setup(String),
    /// A dealing or an acknowledgement was refused: it is not from a member of the round, or
    /// does not match its commitment. The sender is not blamed: the message may have been
    /// corrupted on the way.
    #[error("refused a message from {from}: {why}")]
    Refused {
        /// Who the message claims to be from.
        from: String,
        /// Why it was refused.
        why: String,
    },
    /// Too few valid dealer logs, or this member's dealings do not match them: the round
    /// failed and a new one (with the next round number) is needed.
    #[error("the key generation round failed: {0}")]
    Failed(String),
}

/// One member's side of a committee key generation round.
pub struct Keygen {
    info: Info<MinSig, PublicKey>,
    /// This member's dealing, until [`Keygen::close`] turns it into its log.
    dealer: Option<Dealer<MinSig, PrivateKey>>,
    player: Player<MinSig, PrivateKey>,
}

impl Keygen {
    /// Starts round `round` (count up from 0, failed rounds included) of the key generation
    /// among `members` (every member deals and receives a share), as the member holding `me`.
    /// Returns the member's state, the commitment to send to every member, and each member's
    /// private share of this member's dealing (its own included).
    ///
    /// # Errors
    /// [`KeygenError::Setup`] if `members` is empty or does not hold `me`'s public key.
    #[allow(clippy::type_complexity)]
    pub fn start(
        rng: impl CryptoRng,
        namespace: &[u8],
        round: u64,
        members: Set<PublicKey>,
        me: PrivateKey,
    ) -> Result<
        (
            Keygen,
            DealerPubMsg<MinSig>,
            Vec<(PublicKey, DealerPrivMsg)>,
        ),
        KeygenError,
    > {
        let setup = |e: fd::Error| KeygenError::Setup(e.to_string());
        let info = round_info(namespace, round, members)?;
        let player = Player::new(info.clone(), me.clone()).map_err(setup)?;
        let (dealer, commitment, shares) =
            Dealer::start::<N3f1>(rng, info.clone(), me, None).map_err(setup)?;
        Ok((
            Keygen {
                info,
                dealer: Some(dealer),
                player,
            },
            commitment,
            shares,
        ))
    }

    /// Takes `dealer`'s dealing (its commitment and this member's share) and returns the
    /// acknowledgement to send back to it; `None` if this dealer's dealing was already taken.
    ///
    /// # Errors
    /// [`KeygenError::Refused`] if `dealer` is not a member or the share does not match the
    /// commitment.
    pub fn dealing(
        &mut self,
        dealer: PublicKey,
        commitment: DealerPubMsg<MinSig>,
        share: DealerPrivMsg,
    ) -> Result<Option<PlayerAck<PublicKey>>, KeygenError> {
        let from = dealer.to_string();
        self.player
            .dealer_message::<N3f1>(dealer, commitment, share)
            .map_err(|e| KeygenError::Refused {
                from,
                why: e.to_string(),
            })
    }

    /// Records `player`'s acknowledgement of this member's dealing.
    ///
    /// # Errors
    /// [`KeygenError::Refused`] if `player` is not a member or did not sign this dealing, or
    /// the dealing was already closed.
    pub fn acknowledged(
        &mut self,
        player: PublicKey,
        ack: PlayerAck<PublicKey>,
    ) -> Result<(), KeygenError> {
        let from = player.to_string();
        let Some(dealer) = self.dealer.as_mut() else {
            return Err(KeygenError::Refused {
                from,
                why: "this member's dealing is closed".into(),
            });
        };
        dealer
            .receive_player_ack(player, ack)
            .map_err(|e| KeygenError::Refused {
                from,
                why: e.to_string(),
            })
    }

    /// Ends this member's dealing (when every member acknowledged, or at the round's
    /// deadline): its signed log, to publish to every member; `None` if already closed. The
    /// state is kept to [`Keygen::finish`].
    pub fn close(&mut self) -> Option<DealerLog> {
        self.dealer.take().map(|d| d.finalize::<N3f1>())
    }

    /// Computes this member's share and the committee's public output from the dealers'
    /// `logs` (at least a quorum of them; others' logs that do not check are left out).
    ///
    /// # Errors
    /// [`KeygenError::Failed`] if fewer than a quorum of logs check or this member's recorded
    /// dealings do not match them.
    pub fn finish(
        self,
        rng: &mut impl CryptoRng,
        logs: impl IntoIterator<Item = DealerLog>,
    ) -> Result<(KeygenOutput, Share), KeygenError> {
        let checked = check_logs(&self.info, logs);
        self.player
            .finalize::<N3f1>(rng, checked, &Sequential)
            .map_err(|e| KeygenError::Failed(format!("{e:?}")))
    }
}

/// Round `round` of a key generation in which `members` both deal and receive shares.
fn round_info(
    namespace: &[u8],
    round: u64,
    members: Set<PublicKey>,
) -> Result<Info<MinSig, PublicKey>, KeygenError> {
    Info::new::<N3f1>(
        namespace,
        round,
        None,
        Mode::NonZeroCounter,
        Reveal::V1,
        members.clone(),
        members,
    )
    .map_err(|e| KeygenError::Setup(e.to_string()))
}

fn check_logs(
    info: &Info<MinSig, PublicKey>,
    logs: impl IntoIterator<Item = DealerLog>,
) -> Logs<MinSig, PublicKey, N3f1> {
    let mut checked = Logs::new(info.clone());
    for log in logs {
        if let Some((dealer, log)) = log.check(info) {
            checked.record(dealer, log);
        }
    }
    checked
}

/// The committee's public output computed by anyone from the round's dealer `logs`, without a
/// share: what a light client or an access node checks certificates with.
///
/// # Errors
/// [`KeygenError::Setup`] for an impossible round, [`KeygenError::Failed`] if fewer than a
/// quorum of logs check.
pub fn observe(
    rng: &mut impl CryptoRng,
    namespace: &[u8],
    round: u64,
    members: Set<PublicKey>,
    logs: impl IntoIterator<Item = DealerLog>,
) -> Result<KeygenOutput, KeygenError> {
    let info = round_info(namespace, round, members)?;
    fd::observe::<MinSig, PublicKey, N3f1>(rng, check_logs(&info, logs), &Sequential)
        .map_err(|e| KeygenError::Failed(format!("{e:?}")))
}

/// The simplex signer of the member holding `share`, for the committee `output` describes.
/// `namespace` must be the one every member's simplex uses.
///
/// # Errors
/// [`KeygenError::Setup`] if the share is not one of `output`'s.
pub fn committee_scheme(
    namespace: &[u8],
    output: &KeygenOutput,
    share: Share,
) -> Result<CommitteeScheme, KeygenError> {
    CommitteeScheme::signer(
        namespace,
        output.players().clone(),
        output.public().clone(),
        share,
    )
    .ok_or_else(|| KeygenError::Setup("the share is not one of the committee's".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;
    use commonware_utils::TryCollect;
    use rand::SeedableRng;

    const NAMESPACE: &[u8] = b"wisp-keygen-test";

    fn keys(n: u64) -> Vec<PrivateKey> {
        (0..n).map(PrivateKey::from_seed).collect()
    }

    fn members(keys: &[PrivateKey]) -> Set<PublicKey> {
        keys.iter()
            .map(|k| k.public_key())
            .try_collect()
            .expect("distinct keys")
    }

    /// Runs a round among `keys` in which only the first `dealing` members deal; returns each
    /// member's state and the logs.
    fn round(keys: &[PrivateKey], dealing: usize) -> (Vec<Keygen>, Vec<DealerLog>) {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let set = members(keys);
        let mut started: Vec<_> = keys
            .iter()
            .map(|k| Keygen::start(&mut rng, NAMESPACE, 0, set.clone(), k.clone()).expect("start"))
            .collect();
        for d in 0..dealing {
            let (commitment, shares) = (started[d].1.clone(), started[d].2.clone());
            for (player, share) in shares {
                let p = keys
                    .iter()
                    .position(|k| k.public_key() == player)
                    .expect("member");
                let ack = started[p]
                    .0
                    .dealing(keys[d].public_key(), commitment.clone(), share)
                    .expect("valid dealing")
                    .expect("first time");
                started[d].0.acknowledged(player, ack).expect("valid ack");
            }
        }
        let logs = started[..dealing]
            .iter_mut()
            .map(|(k, ..)| k.close().expect("open"))
            .collect();
        (started.into_iter().map(|(k, ..)| k).collect(), logs)
    }

    #[test]
    fn every_member_gets_a_share_of_one_committee_key() {
        let keys = keys(4);
        let (keygens, logs) = round(&keys, 4);
        let mut rng = rand::rngs::StdRng::seed_from_u64(8);
        let finished: Vec<_> = keygens
            .into_iter()
            .map(|k| k.finish(&mut rng, logs.clone()).expect("finishes"))
            .collect();
        let output = &finished[0].0;
        for (o, share) in &finished {
            assert_eq!(o, output, "members disagree on the committee's public key");
            committee_scheme(NAMESPACE, o, share.clone()).expect("a signer");
        }
        let indices: std::collections::BTreeSet<_> =
            finished.iter().map(|(_, s)| s.index).collect();
        assert_eq!(indices.len(), 4, "two members got the same share");
        let observed = observe(&mut rng, NAMESPACE, 0, members(&keys), logs).expect("observes");
        assert_eq!(&observed, output);
    }

    #[test]
    fn a_quorum_of_dealers_is_enough_and_fewer_is_not() {
        let keys = keys(4);
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        // One member never deals: 3 of 4 is a quorum.
        let (keygens, logs) = round(&keys, 3);
        for k in keygens {
            k.finish(&mut rng, logs.clone())
                .expect("a quorum of dealers");
        }
        let (keygens, logs) = round(&keys, 2);
        let k = keygens.into_iter().next().expect("member");
        assert!(matches!(
            k.finish(&mut rng, logs),
            Err(KeygenError::Failed(_))
        ));
    }

    #[test]
    fn a_share_that_does_not_match_its_commitment_is_refused() {
        let keys = keys(4);
        let mut rng = rand::rngs::StdRng::seed_from_u64(10);
        let set = members(&keys);
        let (_, commitment, shares) =
            Keygen::start(&mut rng, NAMESPACE, 0, set.clone(), keys[0].clone()).expect("start");
        let (mut player, ..) =
            Keygen::start(&mut rng, NAMESPACE, 0, set.clone(), keys[1].clone()).expect("start");
        // Member 1 is sent the share meant for another member.
        let wrong = shares
            .iter()
            .find(|(p, _)| *p != keys[1].public_key())
            .map(|(_, s)| s.clone())
            .expect("another share");
        assert!(matches!(
            player.dealing(keys[0].public_key(), commitment.clone(), wrong),
            Err(KeygenError::Refused { .. })
        ));
        // A dealer outside the committee is refused too.
        let outsider = PrivateKey::from_seed(99).public_key();
        let own = shares
            .iter()
            .find(|(p, _)| *p == keys[1].public_key())
            .map(|(_, s)| s.clone())
            .expect("own share");
        assert!(matches!(
            player.dealing(outsider, commitment, own),
            Err(KeygenError::Refused { .. })
        ));
        // And a member not in the round cannot start.
        assert!(matches!(
            Keygen::start(&mut rng, NAMESPACE, 0, set, PrivateKey::from_seed(99)),
            Err(KeygenError::Setup(_))
        ));
    }
}
