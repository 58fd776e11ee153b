//! Threshold signing of the anchor: a committee's anchor key is a FROST key (RFC 9591, with the
//! BIP340 challenge and BIP341 key tweak of the `frost-secp256k1-tr` ciphersuite, from the
//! Zcash Foundation's `frost` crates). A distributed key generation ([`Dkg`]) gives each member
//! a share of a group key that no one ever holds whole; any `threshold` members sign an
//! anchor successor in two rounds ([`MemberKey::commit`], [`MemberKey::sign_anchor`],
//! [`aggregate`]), and Kaspa verifies the result as one ordinary BIP340 signature by the
//! group's x-only key ([`MemberKey::group_key`], the anchor state's `committee_key`). So an anchor
//! transaction of a committee chain is byte for byte the shape of a one-key chain's.
//!
//! Safety rule: a member signs at most one successor of each anchor UTXO. It checks that
//! against its [`SigningLog`] and records the successor there (durably) before it produces its
//! share, so a crash between the two cannot make it sign a second one.
//!
//! Messages ([`Dkg`] rounds, commitments, shares) are the `frost` crates' own encodings
//! (postcard, with a ciphersuite header); members authenticate who sent what through the
//! channel that carries them (the committee's p2p layer).

use crate::tx::UnsignedAnchorTx;
use frost_secp256k1_tr as frost;
use frost_secp256k1_tr::rand_core::{CryptoRng, RngCore};
use kaspa_consensus_core::tx::TransactionOutpoint;
use std::collections::BTreeMap;

/// A member's number in its committee, from 1 (FROST's participant identifier).
pub type MemberId = u16;

/// Most members a committee may have.
pub const MAX_MEMBERS: u16 = 255;

/// Longest message a member accepts from another (a round-1 DKG message of the largest
/// committee is about 8.5 KB: a 33-byte commitment per threshold member and a proof), so a
/// stranger's message costs bounded memory and time to decode.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024;

/// Decodes member `from`'s message `what` with `parse`, refusing one larger than
/// [`MAX_MESSAGE_BYTES`] before reading it.
fn decode<T, E: std::fmt::Display>(
    from: MemberId,
    what: &'static str,
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
) -> Result<T> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CommitteeError::Invalid {
            from,
            what,
            reason: format!("{} bytes, more than {MAX_MESSAGE_BYTES}", bytes.len()),
        });
    }
    parse(bytes).map_err(|e| CommitteeError::Invalid {
        from,
        what,
        reason: e.to_string(),
    })
}

/// [`decode`]s each member's message `what`, keyed by the member's FROST identifier.
fn decode_each<T, E: std::fmt::Display>(
    what: &'static str,
    messages: &BTreeMap<MemberId, Vec<u8>>,
    parse: impl Fn(&[u8]) -> std::result::Result<T, E>,
) -> Result<BTreeMap<frost::Identifier, T>> {
    messages
        .iter()
        .map(|(from, bytes)| {
            let decoded = decode(*from, what, bytes, &parse)?;
            Ok((identifier(*from)?, decoded))
        })
        .collect()
}

/// What can go wrong in key generation and signing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommitteeError {
    /// A committee size FROST cannot work with.
    #[error("a committee of {members} with threshold {threshold}: need 2 ≤ threshold ≤ members ≤ {MAX_MEMBERS}")]
    Size {
        /// Members asked for.
        members: u16,
        /// Threshold asked for.
        threshold: u16,
    },
    /// A member id outside `1..=members`.
    #[error("member {0} is not in this committee")]
    UnknownMember(MemberId),
    /// A message from `from` that does not decode or does not verify (a wrong proof of
    /// knowledge, a share inconsistent with its dealer's commitment, a bad signature share).
    #[error("member {from}'s {what} is invalid: {reason}")]
    Invalid {
        /// Who sent it.
        from: MemberId,
        /// Which message.
        what: &'static str,
        /// FROST's explanation.
        reason: String,
    },
    /// Messages missing or extra for the round (every other member's, exactly once).
    #[error("{what}: expected one from each of {expected:?}, got {got:?}")]
    Round {
        /// Which round.
        what: &'static str,
        /// Members expected.
        expected: Vec<MemberId>,
        /// Members received.
        got: Vec<MemberId>,
    },
    /// The DKG was driven out of order (a round repeated or skipped).
    #[error("the key generation is not at that round")]
    OutOfOrder,
    /// The member already signed another successor of this anchor UTXO.
    #[error("already signed another successor of anchor {anchor} (sighash {signed}); a member signs one successor per anchor")]
    Equivocation {
        /// The anchor UTXO.
        anchor: TransactionOutpoint,
        /// The sighash it signed, hex.
        signed: String,
    },
    /// The signing log could not record the successor (so no share was made).
    #[error("the signing log could not record the successor: {0}")]
    Log(String),
    /// The transaction asked to be signed is not a successor of an anchor.
    #[error("not an anchor successor: {0}")]
    NotAnAnchor(String),
    /// Something FROST refused that no single member is to blame for.
    #[error("FROST: {0}")]
    Frost(String),
}

type Result<T> = std::result::Result<T, CommitteeError>;

/// A committee's size: `members` take part, any `threshold` of them sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitteeSize {
    /// Members (n).
    pub members: u16,
    /// Signers needed (t); for a BFT committee of 3f+1, 2f+1.
    pub threshold: u16,
}

impl CommitteeSize {
    /// A checked size.
    ///
    /// # Errors
    /// [`CommitteeError::Size`] unless 2 ≤ threshold ≤ members ≤ [`MAX_MEMBERS`].
    pub fn new(members: u16, threshold: u16) -> Result<CommitteeSize> {
        if threshold < 2 || threshold > members || members > MAX_MEMBERS {
            return Err(CommitteeError::Size { members, threshold });
        }
        Ok(CommitteeSize { members, threshold })
    }

    /// The size of a BFT committee of `members` = 3f+1 (or more): threshold 2f+1 where
    /// f = ⌊(members − 1)/3⌋, so any quorum can sign and no f can.
    ///
    /// # Errors
    /// [`CommitteeError::Size`] for fewer than 2 or more than [`MAX_MEMBERS`] members.
    pub fn bft(members: u16) -> Result<CommitteeSize> {
        let f = members.saturating_sub(1) / 3;
        CommitteeSize::new(members, (2 * f + 1).max(2))
    }

    fn ids(&self) -> impl Iterator<Item = MemberId> {
        1..=self.members
    }
}

fn identifier(id: MemberId) -> Result<frost::Identifier> {
    frost::Identifier::try_from(id).map_err(|_| CommitteeError::UnknownMember(id))
}

fn member_of(identifier: &frost::Identifier, size: &CommitteeSize) -> Option<MemberId> {
    size.ids()
        .find(|id| frost::Identifier::try_from(*id).ok().as_ref() == Some(identifier))
}

/// Checks `messages` holds exactly one message from each member of `expected`.
fn exactly_from<T>(
    what: &'static str,
    messages: &BTreeMap<MemberId, T>,
    expected: impl Iterator<Item = MemberId>,
) -> Result<()> {
    let expected: Vec<MemberId> = expected.collect();
    let got: Vec<MemberId> = messages.keys().copied().collect();
    if got != expected {
        return Err(CommitteeError::Round {
            what,
            expected,
            got,
        });
    }
    Ok(())
}

enum DkgStage {
    Round1(frost::keys::dkg::round1::SecretPackage),
    Round2 {
        secret: frost::keys::dkg::round2::SecretPackage,
        round1: BTreeMap<frost::Identifier, frost::keys::dkg::round1::Package>,
    },
    Done,
}

/// One member's side of the distributed key generation (Pedersen's DKG with proofs of
/// knowledge, as FROST specifies): [`Dkg::start`] gives a message to broadcast to every other
/// member; [`Dkg::round2`] takes everyone's and gives one private message per member;
/// [`Dkg::finish`] takes the private messages sent to this member and gives its
/// [`MemberKey`]. Round-1 messages must reach every member identically (a consistent
/// broadcast), round-2 messages confidentially.
pub struct Dkg {
    me: MemberId,
    size: CommitteeSize,
    stage: DkgStage,
}

impl Dkg {
    /// Starts the DKG as member `me`; returns the round-1 message to broadcast.
    ///
    /// # Errors
    /// [`CommitteeError::UnknownMember`] if `me` is not in `1..=size.members`.
    pub fn start<R: RngCore + CryptoRng>(
        me: MemberId,
        size: CommitteeSize,
        rng: &mut R,
    ) -> Result<(Dkg, Vec<u8>)> {
        if me == 0 || me > size.members {
            return Err(CommitteeError::UnknownMember(me));
        }
        let (secret, package) =
            frost::keys::dkg::part1(identifier(me)?, size.members, size.threshold, rng)
                .map_err(|e| CommitteeError::Frost(e.to_string()))?;
        let message = package
            .serialize()
            .map_err(|e| CommitteeError::Frost(e.to_string()))?;
        Ok((
            Dkg {
                me,
                size,
                stage: DkgStage::Round1(secret),
            },
            message,
        ))
    }

    /// Round 2: the round-1 messages of every other member (by sender) → the private
    /// message for each other member (by recipient).
    ///
    /// # Errors
    /// [`CommitteeError::Round`] if a member's message is missing or extra;
    /// [`CommitteeError::Invalid`] naming a member whose message does not decode or whose
    /// proof of knowledge fails; [`CommitteeError::OutOfOrder`].
    pub fn round2(
        &mut self,
        round1: &BTreeMap<MemberId, Vec<u8>>,
    ) -> Result<BTreeMap<MemberId, Vec<u8>>> {
        let DkgStage::Round1(_) = &self.stage else {
            return Err(CommitteeError::OutOfOrder);
        };
        let me = self.me;
        exactly_from("round 1", round1, self.size.ids().filter(|id| *id != me))?;
        let packages = decode_each(
            "round-1 message",
            round1,
            frost::keys::dkg::round1::Package::deserialize,
        )?;
        let DkgStage::Round1(secret) = std::mem::replace(&mut self.stage, DkgStage::Done) else {
            return Err(CommitteeError::OutOfOrder);
        };
        let (secret, out) = frost::keys::dkg::part2(secret, &packages)
            .map_err(|e| self.blame(e, "round-1 message"))?;
        let mut messages = BTreeMap::new();
        for (to, package) in out {
            let to = member_of(&to, &self.size).ok_or(CommitteeError::Frost(
                "a round-2 message for someone outside the committee".into(),
            ))?;
            let bytes = package
                .serialize()
                .map_err(|e| CommitteeError::Frost(e.to_string()))?;
            messages.insert(to, bytes);
        }
        self.stage = DkgStage::Round2 {
            secret,
            round1: packages,
        };
        Ok(messages)
    }

    /// Finishes: the round-2 messages sent to this member (by sender) → its key.
    ///
    /// # Errors
    /// As [`Dkg::round2`], for round-2 messages (a share that does not match its sender's
    /// round-1 commitment names the sender).
    pub fn finish(&mut self, round2: &BTreeMap<MemberId, Vec<u8>>) -> Result<MemberKey> {
        let DkgStage::Round2 { secret, round1 } = &self.stage else {
            return Err(CommitteeError::OutOfOrder);
        };
        let me = self.me;
        exactly_from("round 2", round2, self.size.ids().filter(|id| *id != me))?;
        let packages = decode_each(
            "round-2 message",
            round2,
            frost::keys::dkg::round2::Package::deserialize,
        )?;
        let (key, public) = frost::keys::dkg::part3(secret, round1, &packages)
            .map_err(|e| self.blame(e, "round-2 message"))?;
        self.stage = DkgStage::Done;
        Ok(MemberKey {
            me,
            size: self.size,
            key,
            public,
        })
    }

    fn blame(&self, e: frost::Error, what: &'static str) -> CommitteeError {
        match e.culprits().first().and_then(|c| member_of(c, &self.size)) {
            Some(from) => CommitteeError::Invalid {
                from,
                what,
                reason: e.to_string(),
            },
            None => CommitteeError::Frost(e.to_string()),
        }
    }
}

/// Records which successor a member signed for each anchor UTXO. Implementations must make
/// [`SigningLog::record`] durable before it returns (the node keeps it in its data directory).
pub trait SigningLog {
    /// The sighash this member signed for `anchor`, if any.
    fn signed(&self, anchor: &TransactionOutpoint) -> Option<[u8; 32]>;
    /// Records, durably, that this member signs `sighash` for `anchor`.
    ///
    /// # Errors
    /// Why it could not be recorded; the member then makes no share.
    fn record(
        &mut self,
        anchor: &TransactionOutpoint,
        sighash: [u8; 32],
    ) -> std::result::Result<(), String>;
}

/// An outpoint as an ordered key: its transaction id and output index.
pub fn outpoint_key(o: &TransactionOutpoint) -> ([u8; 32], u32) {
    (o.transaction_id.as_bytes(), o.index)
}

/// A [`SigningLog`] in memory, for tests and tools (not durable).
#[derive(Clone, Debug, Default)]
pub struct MemorySigningLog(pub BTreeMap<([u8; 32], u32), [u8; 32]>);

impl SigningLog for MemorySigningLog {
    fn signed(&self, anchor: &TransactionOutpoint) -> Option<[u8; 32]> {
        self.0.get(&outpoint_key(anchor)).copied()
    }
    fn record(
        &mut self,
        anchor: &TransactionOutpoint,
        sighash: [u8; 32],
    ) -> std::result::Result<(), String> {
        self.0.insert(outpoint_key(anchor), sighash);
        Ok(())
    }
}

/// One member's long-lived key: its secret share and the committee's public key material.
/// Keep [`MemberKey::to_bytes`] secret (it holds the share).
pub struct MemberKey {
    me: MemberId,
    size: CommitteeSize,
    key: frost::keys::KeyPackage,
    public: frost::keys::PublicKeyPackage,
}

/// One signing round's secret nonces: used once by [`MemberKey::sign_anchor`] (which consumes
/// them), never stored.
pub struct Nonces(frost::round1::SigningNonces);

impl MemberKey {
    /// This member's id.
    pub fn member(&self) -> MemberId {
        self.me
    }

    /// The committee's size.
    pub fn size(&self) -> CommitteeSize {
        self.size
    }

    /// The group's x-only BIP340 key: the anchor state's `committee_key`.
    pub fn group_key(&self) -> [u8; 32] {
        group_key(&self.public)
    }

    /// The committee's public key material (the same for every member), for [`aggregate`].
    pub fn public(&self) -> CommitteePublic {
        CommitteePublic {
            size: self.size,
            public: self.public.clone(),
        }
    }

    /// Round 1 of signing: fresh nonces (kept by this member) and their commitment (sent to
    /// whoever assembles the signature).
    ///
    /// # Errors
    /// [`CommitteeError::Frost`] only if the commitment cannot be encoded.
    pub fn commit<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<(Nonces, Vec<u8>)> {
        let (nonces, commitments) = frost::round1::commit(self.key.signing_share(), rng);
        let bytes = commitments
            .serialize()
            .map_err(|e| CommitteeError::Frost(e.to_string()))?;
        Ok((Nonces(nonces), bytes))
    }

    /// Round 2: this member's signature share of the anchor successor `unsigned`, given the
    /// round-1 commitments of the signers (at least `threshold`, this member among them).
    /// The member computes the sighash itself from the transaction, and signs only if its
    /// `log` has no other successor of the same anchor UTXO, recording this one first.
    ///
    /// # Errors
    /// [`CommitteeError::Equivocation`] for a second, different successor of one anchor;
    /// [`CommitteeError::Log`] if it cannot be recorded; [`CommitteeError::Round`] for too
    /// few commitments or none of this member's; [`CommitteeError::Invalid`] for a commitment
    /// that does not decode.
    pub fn sign_anchor(
        &self,
        unsigned: &UnsignedAnchorTx,
        commitments: &BTreeMap<MemberId, Vec<u8>>,
        nonces: Nonces,
        log: &mut dyn SigningLog,
    ) -> Result<Vec<u8>> {
        let package = signing_package(&self.size, unsigned, commitments)?;
        if !commitments.contains_key(&self.me) {
            return Err(CommitteeError::Round {
                what: "signing commitments (this member's)",
                expected: vec![self.me],
                got: commitments.keys().copied().collect(),
            });
        }
        let anchor = unsigned.spends();
        let sighash = unsigned.sighash();
        match log.signed(&anchor) {
            Some(signed) if signed != sighash => {
                return Err(CommitteeError::Equivocation {
                    anchor,
                    signed: kaspa_hashes::Hash::from_bytes(signed).to_string(),
                })
            }
            Some(_) => {}
            None => log.record(&anchor, sighash).map_err(CommitteeError::Log)?,
        }
        let share = frost::round2::sign(&package, &nonces.0, &self.key)
            .map_err(|e| CommitteeError::Frost(e.to_string()))?;
        Ok(share.serialize())
    }

    /// The key as bytes, to keep in the member's data directory (secret: it holds the share).
    ///
    /// # Errors
    /// [`CommitteeError::Frost`] only if FROST cannot encode it.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let key = self
            .key
            .serialize()
            .map_err(|e| CommitteeError::Frost(e.to_string()))?;
        let public = self
            .public
            .serialize()
            .map_err(|e| CommitteeError::Frost(e.to_string()))?;
        let mut out = Vec::with_capacity(10 + key.len() + public.len());
        out.extend(self.me.to_le_bytes());
        out.extend(self.size.members.to_le_bytes());
        out.extend(self.size.threshold.to_le_bytes());
        out.extend((key.len() as u32).to_le_bytes());
        out.extend(key);
        out.extend(public);
        Ok(out)
    }

    /// Reads [`MemberKey::to_bytes`].
    ///
    /// # Errors
    /// [`CommitteeError::Frost`] if the bytes are not a key.
    pub fn from_bytes(bytes: &[u8]) -> Result<MemberKey> {
        let bad = || CommitteeError::Frost("not a committee member key".into());
        let u16_at = |at: usize| -> Result<u16> {
            Ok(u16::from_le_bytes(
                bytes
                    .get(at..at + 2)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?,
            ))
        };
        let (me, members, threshold) = (u16_at(0)?, u16_at(2)?, u16_at(4)?);
        let size = CommitteeSize::new(members, threshold)?;
        let key_len = u32::from_le_bytes(
            bytes
                .get(6..10)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        ) as usize;
        let key_end = 10usize.checked_add(key_len).ok_or_else(bad)?;
        let key = frost::keys::KeyPackage::deserialize(bytes.get(10..key_end).ok_or_else(bad)?)
            .map_err(|_| bad())?;
        let public =
            frost::keys::PublicKeyPackage::deserialize(bytes.get(key_end..).ok_or_else(bad)?)
                .map_err(|_| bad())?;
        if key.identifier() != &identifier(me)? {
            return Err(bad());
        }
        Ok(MemberKey {
            me,
            size,
            key,
            public,
        })
    }
}

/// The committee's public key material: what the signature assembler (any member, or the
/// node that submits) needs.
#[derive(Clone)]
pub struct CommitteePublic {
    size: CommitteeSize,
    public: frost::keys::PublicKeyPackage,
}

impl CommitteePublic {
    /// The group's x-only BIP340 key.
    pub fn group_key(&self) -> [u8; 32] {
        group_key(&self.public)
    }
}

fn group_key(public: &frost::keys::PublicKeyPackage) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(sec1) = public.verifying_key().serialize() {
        // SEC1 compressed: a parity byte, then x.
        if let Some(x) = sec1.get(1..33) {
            out.copy_from_slice(x);
        }
    }
    out
}

fn signing_package(
    size: &CommitteeSize,
    unsigned: &UnsignedAnchorTx,
    commitments: &BTreeMap<MemberId, Vec<u8>>,
) -> Result<frost::SigningPackage> {
    if unsigned.tx.inputs.is_empty() || unsigned.entries.len() != unsigned.tx.inputs.len() {
        return Err(CommitteeError::NotAnAnchor(
            "its inputs and their entries do not match".into(),
        ));
    }
    if commitments.len() < usize::from(size.threshold) {
        return Err(CommitteeError::Round {
            what: "signing commitments (at least the threshold)",
            expected: size.ids().collect(),
            got: commitments.keys().copied().collect(),
        });
    }
    let mut decoded = BTreeMap::new();
    for (from, bytes) in commitments {
        if *from == 0 || *from > size.members {
            return Err(CommitteeError::UnknownMember(*from));
        }
        let c = decode(
            *from,
            "signing commitment",
            bytes,
            frost::round1::SigningCommitments::deserialize,
        )?;
        decoded.insert(identifier(*from)?, c);
    }
    Ok(frost::SigningPackage::new(decoded, &unsigned.sighash()))
}

/// Assembles the committee's BIP340 signature of `unsigned` from the signers' shares (by
/// member; the same signers whose `commitments` were used), checking each share.
///
/// # Errors
/// [`CommitteeError::Invalid`] naming a member whose share is wrong; [`CommitteeError::Round`]
/// if the shares are not from exactly the committed signers.
pub fn aggregate(
    public: &CommitteePublic,
    unsigned: &UnsignedAnchorTx,
    commitments: &BTreeMap<MemberId, Vec<u8>>,
    shares: &BTreeMap<MemberId, Vec<u8>>,
) -> Result<[u8; 64]> {
    let package = signing_package(&public.size, unsigned, commitments)?;
    exactly_from("signature shares", shares, commitments.keys().copied())?;
    let decoded = decode_each(
        "signature share",
        shares,
        frost::round2::SignatureShare::deserialize,
    )?;
    let signature = frost::aggregate(&package, &decoded, &public.public).map_err(|e| {
        match e
            .culprits()
            .first()
            .and_then(|c| member_of(c, &public.size))
        {
            Some(from) => CommitteeError::Invalid {
                from,
                what: "signature share",
                reason: e.to_string(),
            },
            None => CommitteeError::Frost(e.to_string()),
        }
    })?;
    // The ciphersuite encodes signatures as BIP340 does: R's x coordinate and s, 64 bytes.
    let bytes = signature
        .serialize()
        .map_err(|e| CommitteeError::Frost(e.to_string()))?;
    let raw: &[u8] = &bytes;
    if raw.len() != 64 {
        return Err(CommitteeError::Frost(format!(
            "a signature of {} bytes",
            raw.len()
        )));
    }
    let mut out = [0u8; 64];
    out.copy_from_slice(raw);
    Ok(out)
}

/// What the coordinator sends every chosen signer in round 2: the signers' commitments (the
/// signer computes the message itself from the transaction it is sent with).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignRequest {
    /// Which attempt of the session this is (from 1): shares of another attempt are refused.
    pub attempt: u32,
    /// The chosen signers' round-1 commitments.
    pub commitments: BTreeMap<MemberId, Vec<u8>>,
}

/// The coordinator's side of signing one anchor successor: collects round-1 commitments, picks
/// the first `threshold` members that answered, collects their shares and assembles the
/// signature. FROST is not robust to a signer that drops out after committing, so a signer that
/// does not answer or sends a bad share is [`SigningSession::exclude`]d and the session starts a
/// new attempt with fresh commitments from the others (members sign the same successor again,
/// which their logs allow). It fails only when fewer than `threshold` members remain.
pub struct SigningSession {
    public: CommitteePublic,
    unsigned: UnsignedAnchorTx,
    attempt: u32,
    commitments: BTreeMap<MemberId, Vec<u8>>,
    chosen: Option<BTreeMap<MemberId, Vec<u8>>>,
    shares: BTreeMap<MemberId, Vec<u8>>,
    excluded: std::collections::BTreeSet<MemberId>,
}

impl SigningSession {
    /// A session signing `unsigned` for the committee `public`.
    pub fn new(public: CommitteePublic, unsigned: UnsignedAnchorTx) -> SigningSession {
        SigningSession {
            public,
            unsigned,
            attempt: 1,
            commitments: BTreeMap::new(),
            chosen: None,
            shares: BTreeMap::new(),
            excluded: Default::default(),
        }
    }

    /// The current attempt (from 1); commitments and shares name it.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The transaction being signed (sent to every member with the requests).
    pub fn unsigned(&self) -> &UnsignedAnchorTx {
        &self.unsigned
    }

    /// Members excluded so far.
    pub fn excluded(&self) -> Vec<MemberId> {
        self.excluded.iter().copied().collect()
    }

    /// A member's round-1 commitment for `attempt`. Once `threshold` members have committed,
    /// returns the request to send to those signers (later commitments are ignored).
    ///
    /// # Errors
    /// [`CommitteeError::UnknownMember`]; [`CommitteeError::Invalid`] for a commitment that
    /// does not decode; [`CommitteeError::Round`] for another attempt's or an excluded
    /// member's.
    pub fn add_commitment(
        &mut self,
        attempt: u32,
        from: MemberId,
        commitment: Vec<u8>,
    ) -> Result<Option<SignRequest>> {
        self.check_sender(attempt, from, "signing commitment")?;
        if self.chosen.is_some() {
            return Ok(None);
        }
        decode(
            from,
            "signing commitment",
            &commitment,
            frost::round1::SigningCommitments::deserialize,
        )?;
        self.commitments.insert(from, commitment);
        if self.commitments.len() < usize::from(self.public.size.threshold) {
            return Ok(None);
        }
        let chosen = std::mem::take(&mut self.commitments);
        self.chosen = Some(chosen.clone());
        Ok(Some(SignRequest {
            attempt: self.attempt,
            commitments: chosen,
        }))
    }

    /// A chosen signer's share for `attempt`. Returns the committee's BIP340 signature once
    /// every chosen signer's share is in and they combine.
    ///
    /// # Errors
    /// [`CommitteeError::Round`] for a share from a member not chosen or of another attempt;
    /// [`CommitteeError::Invalid`] naming a member whose share is wrong (exclude it and go on).
    pub fn add_share(
        &mut self,
        attempt: u32,
        from: MemberId,
        share: Vec<u8>,
    ) -> Result<Option<[u8; 64]>> {
        self.check_sender(attempt, from, "signature share")?;
        let Some(chosen) = &self.chosen else {
            return Err(CommitteeError::Round {
                what: "signature shares (before the signers were chosen)",
                expected: vec![],
                got: vec![from],
            });
        };
        if !chosen.contains_key(&from) {
            return Err(CommitteeError::Round {
                what: "signature shares (from the chosen signers)",
                expected: chosen.keys().copied().collect(),
                got: vec![from],
            });
        }
        self.shares.insert(from, share);
        if self.shares.len() < chosen.len() {
            return Ok(None);
        }
        aggregate(&self.public, &self.unsigned, chosen, &self.shares).map(Some)
    }

    /// Leaves `member` out (it did not answer, or its share was wrong) and starts a new
    /// attempt: every other member commits afresh.
    ///
    /// # Errors
    /// [`CommitteeError::Round`] when fewer than `threshold` members remain.
    pub fn exclude(&mut self, member: MemberId) -> Result<()> {
        self.excluded.insert(member);
        let remaining: Vec<MemberId> = self
            .public
            .size
            .ids()
            .filter(|id| !self.excluded.contains(id))
            .collect();
        if remaining.len() < usize::from(self.public.size.threshold) {
            return Err(CommitteeError::Round {
                what: "signers left after exclusions (at least the threshold)",
                expected: self.public.size.ids().collect(),
                got: remaining,
            });
        }
        self.attempt += 1;
        self.commitments.clear();
        self.chosen = None;
        self.shares.clear();
        Ok(())
    }

    fn check_sender(&self, attempt: u32, from: MemberId, what: &'static str) -> Result<()> {
        if from == 0 || from > self.public.size.members {
            return Err(CommitteeError::UnknownMember(from));
        }
        if attempt != self.attempt || self.excluded.contains(&from) {
            return Err(CommitteeError::Round {
                what,
                expected: vec![],
                got: vec![from],
            });
        }
        Ok(())
    }
}

/// Runs the whole DKG for every member in one process (for tests, and for a local committee
/// whose members are all on one machine, such as a devnet): each member's [`MemberKey`], in
/// member order. A real committee runs [`Dkg`] on each member's own node.
///
/// # Errors
/// As [`Dkg`]'s rounds (none for honest in-process members).
pub fn dkg_in_process<R: RngCore + CryptoRng>(
    size: CommitteeSize,
    rng: &mut R,
) -> Result<Vec<MemberKey>> {
    let mut members = Vec::new();
    let mut round1 = BTreeMap::new();
    for id in size.ids() {
        let (dkg, message) = Dkg::start(id, size, rng)?;
        members.push(dkg);
        round1.insert(id, message);
    }
    let mut round2: BTreeMap<MemberId, BTreeMap<MemberId, Vec<u8>>> = BTreeMap::new();
    for dkg in &mut members {
        let me = dkg.me;
        let others = round1
            .iter()
            .filter(|(from, _)| **from != me)
            .map(|(from, m)| (*from, m.clone()))
            .collect();
        for (to, message) in dkg.round2(&others)? {
            round2.entry(to).or_default().insert(me, message);
        }
    }
    members
        .iter_mut()
        .map(|dkg| {
            let mine = round2.remove(&dkg.me).unwrap_or_default();
            dkg.finish(&mine)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anchor::{AnchorRules, AnchorState};
    use crate::tx::{successor_unsigned, AnchorUtxo};
    use frost_secp256k1_tr::rand_core::SeedableRng;
    use kaspa_hashes::Hash;

    fn rng(seed: u64) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::seed_from_u64(seed)
    }

    /// A successor of an anchor at `outpoint` paying `fee` under the committee key `key`.
    fn unsigned(key: [u8; 32], outpoint: u8, fee: u64) -> (AnchorRules, UnsignedAnchorTx) {
        let rules = AnchorRules {
            max_fee_sompi: 10_000_000,
        };
        let anchor = AnchorUtxo {
            outpoint: TransactionOutpoint::new(Hash::from_bytes([outpoint; 32]), 0),
            amount_sompi: 10_000_000_000,
            state: AnchorState::genesis(key),
            covenant_id: Hash::from_bytes([9; 32]),
            block_daa_score: 5,
        };
        let new = AnchorState {
            block_index: 1,
            header_hash: [1; 32],
            outbox: crate::outbox_commitment(&[]),
            committee_key: key,
        };
        let u = successor_unsigned(&rules, &anchor, &[], &[], new, fee).unwrap();
        (rules, u)
    }

    /// Signers `who` sign `u` with fresh logs; returns the committee's signature.
    fn sign(
        keys: &[MemberKey],
        who: &[MemberId],
        u: &UnsignedAnchorTx,
        logs: &mut BTreeMap<MemberId, MemorySigningLog>,
        seed: u64,
    ) -> Result<[u8; 64]> {
        let mut r = rng(seed);
        let mut nonces = BTreeMap::new();
        let mut commitments = BTreeMap::new();
        for id in who {
            let (n, c) = keys[usize::from(*id) - 1].commit(&mut r)?;
            nonces.insert(*id, n);
            commitments.insert(*id, c);
        }
        let mut shares = BTreeMap::new();
        for (id, n) in nonces {
            let log = logs.entry(id).or_default();
            shares.insert(
                id,
                keys[usize::from(id) - 1].sign_anchor(u, &commitments, n, log)?,
            );
        }
        aggregate(&keys[0].public(), u, &commitments, &shares)
    }

    #[test]
    fn any_threshold_of_members_signs_what_kaspa_verifies_as_one_bip340_signature() {
        let size = CommitteeSize::bft(4).unwrap();
        assert_eq!(size.threshold, 3);
        let keys = dkg_in_process(size, &mut rng(1)).unwrap();
        let group = keys[0].group_key();
        assert!(keys.iter().all(|k| k.group_key() == group));
        assert_ne!(group, [0; 32]);
        let (rules, u) = unsigned(group, 1, 1_000);
        for (i, who) in [[1, 2, 3], [2, 3, 4], [1, 3, 4]].iter().enumerate() {
            let mut logs = BTreeMap::new();
            let sig = sign(&keys, who, &u, &mut logs, 10 + i as u64).unwrap();
            // `finish` verifies BIP340 against the anchor's committee key with libsecp256k1,
            // as Kaspa's OpCheckSig does.
            let signed = u.clone().finish(&rules, &sig).unwrap();
            assert!(!signed.tx.inputs[0].signature_script.is_empty());
        }
        // All four may sign too.
        let sig = sign(&keys, &[1, 2, 3, 4], &u, &mut BTreeMap::new(), 20).unwrap();
        assert!(u.clone().finish(&rules, &sig).is_ok());
        // Fewer than the threshold cannot.
        assert!(matches!(
            sign(&keys, &[1, 2], &u, &mut BTreeMap::new(), 21),
            Err(CommitteeError::Round { .. })
        ));
        // Another committee's keys make signatures this anchor refuses.
        let others = dkg_in_process(size, &mut rng(2)).unwrap();
        let foreign = sign(&others, &[1, 2, 3], &u, &mut BTreeMap::new(), 22).unwrap();
        assert!(matches!(
            u.clone().finish(&rules, &foreign),
            Err(crate::SettlementError::BadSignature)
        ));
    }

    #[test]
    fn a_member_signs_one_successor_per_anchor() {
        let size = CommitteeSize::new(3, 2).unwrap();
        let keys = dkg_in_process(size, &mut rng(3)).unwrap();
        let (_, first) = unsigned(keys[0].group_key(), 1, 1_000);
        let (_, second) = unsigned(keys[0].group_key(), 1, 2_000); // same anchor, other fee
        let (_, elsewhere) = unsigned(keys[0].group_key(), 2, 2_000); // the next anchor
        let mut logs = BTreeMap::new();
        sign(&keys, &[1, 2], &first, &mut logs, 30).unwrap();
        let err = sign(&keys, &[1, 2], &second, &mut logs, 31).unwrap_err();
        assert!(matches!(err, CommitteeError::Equivocation { .. }), "{err}");
        // Signing the same successor again is harmless (new nonces, same message).
        sign(&keys, &[1, 2], &first, &mut logs, 32).unwrap();
        sign(&keys, &[1, 2], &elsewhere, &mut logs, 33).unwrap();
        // Member 3 has signed nothing yet: it and member 1 cannot make the second either,
        // because member 1 refuses.
        assert!(sign(&keys, &[1, 3], &second, &mut logs, 34).is_err());
        // A log that cannot record stops the share.
        struct Broken;
        impl SigningLog for Broken {
            fn signed(&self, _: &TransactionOutpoint) -> Option<[u8; 32]> {
                None
            }
            fn record(
                &mut self,
                _: &TransactionOutpoint,
                _: [u8; 32],
            ) -> std::result::Result<(), String> {
                Err("disk full".into())
            }
        }
        let mut r = rng(35);
        let (n1, c1) = keys[0].commit(&mut r).unwrap();
        let (_, c2) = keys[1].commit(&mut r).unwrap();
        let commitments = BTreeMap::from([(1, c1), (2, c2)]);
        let err = keys[0]
            .sign_anchor(&elsewhere, &commitments, n1, &mut Broken)
            .unwrap_err();
        assert!(matches!(err, CommitteeError::Log(_)), "{err}");
    }

    #[test]
    fn bad_messages_are_refused_naming_their_sender() {
        let size = CommitteeSize::new(3, 2).unwrap();
        let mut r = rng(4);
        let mut dkgs = Vec::new();
        let mut round1 = BTreeMap::new();
        for id in 1..=3 {
            let (d, m) = Dkg::start(id, size, &mut r).unwrap();
            dkgs.push(d);
            round1.insert(id, m);
        }
        let for_1: BTreeMap<_, _> = round1
            .iter()
            .filter(|(k, _)| **k != 1)
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        // A missing member and a garbled message are refused.
        let mut missing = for_1.clone();
        missing.remove(&3);
        assert!(matches!(
            dkgs[0].round2(&missing),
            Err(CommitteeError::Round { .. })
        ));
        // An oversized message is refused before it is decoded.
        let mut huge = for_1.clone();
        huge.insert(3, vec![0; MAX_MESSAGE_BYTES + 1]);
        assert!(matches!(
            dkgs[0].round2(&huge),
            Err(CommitteeError::Invalid { from: 3, .. })
        ));
        let mut garbled = for_1.clone();
        garbled.insert(3, vec![1, 2, 3]);
        assert!(matches!(
            dkgs[0].round2(&garbled),
            Err(CommitteeError::Invalid { from: 3, .. })
        ));
        // Member 2's round-1 message replayed as member 3's fails its proof of knowledge,
        // which binds the sender's identifier.
        let mut replayed = for_1.clone();
        replayed.insert(3, round1[&2].clone());
        let (mut fresh, _) = Dkg::start(1, size, &mut rng(5)).unwrap();
        assert!(matches!(
            fresh.round2(&replayed),
            Err(CommitteeError::Invalid { from: 3, .. })
        ));
        assert!(Dkg::start(0, size, &mut r).is_err());
        assert!(Dkg::start(4, size, &mut r).is_err());
        // Out of order.
        let (mut early, _) = Dkg::start(1, size, &mut r).unwrap();
        assert!(matches!(
            early.finish(&BTreeMap::new()),
            Err(CommitteeError::OutOfOrder)
        ));
        // A tampered signature share names its signer.
        let keys = dkg_in_process(size, &mut rng(6)).unwrap();
        let (_, u) = unsigned(keys[0].group_key(), 1, 1_000);
        let mut r = rng(7);
        let (n1, c1) = keys[0].commit(&mut r).unwrap();
        let (n2, c2) = keys[1].commit(&mut r).unwrap();
        let commitments = BTreeMap::from([(1, c1), (2, c2)]);
        let s1 = keys[0]
            .sign_anchor(&u, &commitments, n1, &mut MemorySigningLog::default())
            .unwrap();
        let (_, other) = unsigned(keys[0].group_key(), 3, 1_000);
        let (n2b, c2b) = keys[1].commit(&mut r).unwrap();
        let wrong = keys[1]
            .sign_anchor(
                &other,
                &BTreeMap::from([(1, commitments[&1].clone()), (2, c2b)]),
                n2b,
                &mut MemorySigningLog::default(),
            )
            .unwrap();
        drop(n2);
        let err = aggregate(
            &keys[0].public(),
            &u,
            &commitments,
            &BTreeMap::from([(1, s1), (2, wrong)]),
        )
        .unwrap_err();
        assert!(
            matches!(err, CommitteeError::Invalid { from: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn keys_survive_a_round_trip_through_bytes() {
        let size = CommitteeSize::new(3, 2).unwrap();
        let keys = dkg_in_process(size, &mut rng(8)).unwrap();
        let back: Vec<MemberKey> = keys
            .iter()
            .map(|k| MemberKey::from_bytes(&k.to_bytes().unwrap()).unwrap())
            .collect();
        assert_eq!(back[1].member(), 2);
        assert_eq!(back[1].size(), size);
        let (rules, u) = unsigned(keys[0].group_key(), 1, 1_000);
        let sig = sign(&back, &[2, 3], &u, &mut BTreeMap::new(), 9).unwrap();
        assert!(u.finish(&rules, &sig).is_ok());
        assert!(MemberKey::from_bytes(&[1, 2, 3]).is_err());
        let mut wrong_member = keys[0].to_bytes().unwrap();
        wrong_member[0] = 2; // claims to be member 2 with member 1's share
        assert!(MemberKey::from_bytes(&wrong_member).is_err());
    }

    /// A member as the coordinator sees it: answers round 1 and round 2 of an attempt.
    fn answer(
        keys: &[MemberKey],
        id: MemberId,
        r: &mut rand_chacha::ChaCha20Rng,
    ) -> (Nonces, Vec<u8>) {
        keys[usize::from(id) - 1].commit(r).unwrap()
    }

    #[test]
    fn a_session_signs_around_a_member_that_drops_out_or_lies() {
        let size = CommitteeSize::bft(4).unwrap();
        let keys = dkg_in_process(size, &mut rng(40)).unwrap();
        let (rules, u) = unsigned(keys[0].group_key(), 1, 1_000);
        let mut logs: BTreeMap<MemberId, MemorySigningLog> = BTreeMap::new();
        let mut r = rng(41);
        let mut session = SigningSession::new(keys[0].public(), u.clone());

        // Attempt 1: members 2, 1, 3 commit first (4 is slow); 2 then goes silent.
        let mut nonces = BTreeMap::new();
        let mut request = None;
        for id in [2, 1, 3, 4] {
            let (n, c) = answer(&keys, id, &mut r);
            nonces.insert(id, n);
            if let Some(req) = session.add_commitment(1, id, c).unwrap() {
                request = Some(req);
            }
        }
        let request = request.unwrap();
        assert_eq!(
            request.commitments.keys().copied().collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        for id in [1, 3] {
            let n = nonces.remove(&id).unwrap();
            let share = keys[usize::from(id) - 1]
                .sign_anchor(
                    session.unsigned(),
                    &request.commitments,
                    n,
                    logs.entry(id).or_default(),
                )
                .unwrap();
            assert_eq!(session.add_share(1, id, share).unwrap(), None);
        }
        // Member 4 was not chosen; member 2 never answers.
        assert!(session.add_share(1, 4, vec![0; 32]).is_err());
        session.exclude(2).unwrap();
        assert_eq!(session.attempt(), 2);

        // Attempt 2 without member 2: member 3 sends a share for another transaction.
        let mut nonces = BTreeMap::new();
        let mut request = None;
        for id in [3, 4, 1] {
            let (n, c) = answer(&keys, id, &mut r);
            nonces.insert(id, n);
            if let Some(req) = session.add_commitment(2, id, c).unwrap() {
                request = Some(req);
            }
        }
        // Attempt 1's messages are refused now, and so is the excluded member.
        assert!(session
            .add_commitment(1, 4, answer(&keys, 4, &mut r).1)
            .is_err());
        assert!(session
            .add_commitment(2, 2, answer(&keys, 2, &mut r).1)
            .is_err());
        let request = request.unwrap();
        let (_, other) = unsigned(keys[0].group_key(), 7, 1_000);
        let mut result = Ok(None);
        for id in [1, 4, 3] {
            let n = nonces.remove(&id).unwrap();
            let tx = if id == 3 { &other } else { session.unsigned() };
            let share = keys[usize::from(id) - 1]
                .sign_anchor(tx, &request.commitments, n, logs.entry(id).or_default())
                .unwrap();
            result = session.add_share(2, id, share);
        }
        assert!(
            matches!(result, Err(CommitteeError::Invalid { from: 3, .. })),
            "{result:?}"
        );
        // Without 2 and 3 only two members remain: below the threshold.
        let mut doomed = SigningSession::new(keys[0].public(), u.clone());
        doomed.exclude(2).unwrap();
        assert!(matches!(
            doomed.exclude(3),
            Err(CommitteeError::Round { .. })
        ));

        // A fresh session over members 1, 3, 4 signs; the members sign the same successor
        // again, which their logs allow.
        let mut session = SigningSession::new(keys[0].public(), u.clone());
        session.exclude(2).unwrap();
        let mut nonces = BTreeMap::new();
        let mut request = None;
        for id in [1, 3, 4] {
            let (n, c) = answer(&keys, id, &mut r);
            nonces.insert(id, n);
            request = session
                .add_commitment(session.attempt(), id, c)
                .unwrap()
                .or(request);
        }
        let request = request.unwrap();
        let mut signature = None;
        for id in [1, 3, 4] {
            let n = nonces.remove(&id).unwrap();
            let share = keys[usize::from(id) - 1]
                .sign_anchor(&u, &request.commitments, n, logs.entry(id).or_default())
                .unwrap();
            signature = session
                .add_share(request.attempt, id, share)
                .unwrap()
                .or(signature);
        }
        assert!(u.finish(&rules, &signature.unwrap()).is_ok());
    }

    #[test]
    fn sizes() {
        assert_eq!(CommitteeSize::bft(4).unwrap().threshold, 3);
        assert_eq!(CommitteeSize::bft(7).unwrap().threshold, 5);
        assert_eq!(CommitteeSize::bft(2).unwrap().threshold, 2);
        assert!(CommitteeSize::new(3, 1).is_err());
        assert!(CommitteeSize::new(3, 4).is_err());
        assert!(CommitteeSize::new(256, 100).is_err());
    }
}
