//! A node as one member of its chain's committee: N `wisp node` processes, each with its own
//! key and data directory, order the chain's blocks with commonware's simplex consensus
//! ([`wisp_consensus`]) over commonware's authenticated, encrypted p2p network, and each
//! executes the finalized blocks into its own copy of the chain.
//!
//! A member's data directory holds, beside the chain (`node.json`, `chain/`):
//!
//! - `member.key` (0600): the member's ed25519 identity on the committee's network;
//! - `committee.json`: every member's public key and p2p address ([`CommitteeFile`]), and,
//!   once the key generation ran, the committee's two public keys;
//! - `committee/` (secrets 0600): the member's share of the committee's certificate key
//!   (BLS12-381, commonware's Feldman/Desmedt DKG) with the committee's public polynomial, and
//!   its share of the anchor key (FROST, `wisp_settlement::committee`);
//! - `consensus/`: simplex's journal (the member's votes, so it never votes twice in a view
//!   after a restart).
//!
//! The steps, each run by every operator on its own node: [`init`] (make the member key, print
//! the member's card), [`join`] (write the committee from everyone's cards), [`run_dkg`] (the
//! key generation over the network: no one ever holds either whole key), then `wisp node`,
//! which runs the member ([`start_member`]) when the data directory holds a committee.

mod anchoring;

pub use anchoring::{first_coordinator, COORDINATOR_TURN};

use crate::datadir::write_private;
use crate::{lane, Node, NodeError, Result, MAX_L1_BLOCKS_PER_PASS};
use borsh::{BorshDeserialize, BorshSerialize};
use commonware_codec::{Decode, DecodeExt, Encode};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{
    DealerPrivMsg, DealerPubMsg, PlayerAck,
};
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_cryptography::bls12381::primitives::sharing::ModeVersion;
use commonware_cryptography::bls12381::primitives::variant::MinSig;
use commonware_cryptography::ed25519::PrivateKey;
use commonware_cryptography::{Hasher, Sha256, Signer};
use commonware_p2p::authenticated::lookup;
use commonware_p2p::{Address, AddressableManager, Receiver as _, Recipients, Sender as _};
use commonware_runtime::{Clock, Quota, Runner as _, Spawner as _, Supervisor as _};
use commonware_utils::ordered::{Map, Set};
use commonware_utils::{NZUsize, NZU32};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wisp_chain::{L1Ref, OnLedgerRequest};
use wisp_consensus::dkg::{self, DealerLog, Keygen, KeygenOutput};
use wisp_consensus::{Mailbox, Member, Progress, PublicKey};
use wisp_core::hash::{from_hex, to_hex};
use wisp_core::Hash32;
use wisp_settlement::committee::{CommitteeSize, Dkg, MemberId, MemberKey};

/// Most members a committee may have (FROST's participant numbers are `u16`; the p2p layer
/// keeps one connection per member).
pub const MAX_COMMITTEE: usize = 100;

/// The member's network identity file in a data directory.
pub const MEMBER_KEY_FILE: &str = "member.key";
/// The committee file in a data directory.
pub const COMMITTEE_FILE: &str = "committee.json";
/// The member's share of the certificate key (secret).
const CERTIFICATE_SHARE_FILE: &str = "committee/certificate.share";
/// The committee's public certificate polynomial (public).
const CERTIFICATE_OUTPUT_FILE: &str = "committee/certificate.public";
/// The member's FROST share of the anchor key (secret).
const ANCHOR_SHARE_FILE: &str = "committee/anchor.share";
/// The member's signing log: the one successor it signed for each anchor UTXO.
const SIGNING_LOG_FILE: &str = "committee/signing.log";

/// p2p channels: simplex's votes, certificates and resolver; whole blocks, requests and wants
/// ([`wisp_consensus::Wire`]); the key generation's messages.
const CHANNEL_VOTES: u64 = 0;
const CHANNEL_CERTIFICATES: u64 = 1;
const CHANNEL_RESOLVER: u64 = 2;
const CHANNEL_BLOCKS: u64 = 3;
const CHANNEL_DKG: u64 = 4;
const CHANNEL_ANCHOR: u64 = 5;

/// Messages each member may send another per second on each channel (blocks, gossip and
/// votes of a busy chain stay well below it; it bounds what one member makes another check).
const CHANNEL_RATE: Quota = Quota::per_second(NZU32!(10_000));

/// Messages each member may send another per second about the keys or the anchor: a few per
/// round is all an honest member sends, and each may cost the receiver a look at its kaspad.
const CONTROL_RATE: Quota = Quota::per_second(NZU32!(100));

/// Largest p2p message: a whole block and some framing.
const MAX_MESSAGE_BYTES: u32 = (wisp_consensus::MAX_BLOCK_BYTES + 64 * 1024) as u32;

/// Most Kaspa chain blocks a member's follower holds ahead of its chain's head; while it
/// holds that many it stops reading Kaspa (proposals cannot name later blocks until the
/// committee catches up).
pub const MAX_FOLLOWED_L1_BLOCKS: usize = 100_000;

fn bad(message: impl Into<String>) -> NodeError {
    NodeError::DataDir(message.into())
}

/// One member as the others know it: its public key (ed25519, hex) and where it listens for
/// the committee's p2p connections.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberCard {
    /// The member's ed25519 public key, 64 hex digits.
    pub key: String,
    /// Its p2p listening address.
    pub address: SocketAddr,
}

impl MemberCard {
    /// The card as one word, `KEY@ADDRESS`, what `wisp committee join --member` takes.
    pub fn word(&self) -> String {
        format!("{}@{}", self.key, self.address)
    }

    /// Parses `KEY@ADDRESS`.
    ///
    /// # Errors
    /// [`NodeError::DataDir`] naming what is wrong.
    pub fn parse(word: &str) -> Result<MemberCard> {
        let (key, address) = word
            .split_once('@')
            .ok_or_else(|| bad(format!("`{word}` is not a member card (KEY@HOST:PORT)")))?;
        let card = MemberCard {
            key: key.to_string(),
            address: address
                .parse()
                .map_err(|e| bad(format!("`{address}` in `{word}` is not an address: {e}")))?,
        };
        card.public_key()?;
        Ok(card)
    }

    fn public_key(&self) -> Result<PublicKey> {
        from_hex(&self.key)
            .and_then(|bytes| PublicKey::decode(bytes).ok())
            .ok_or_else(|| {
                bad(format!(
                    "`{}` is not a member key (64 hex digits of an ed25519 public key)",
                    self.key
                ))
            })
    }
}

/// `committee.json`: the committee a member belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitteeFile {
    /// Every member, the file's owner included, ordered by key.
    pub members: Vec<MemberCard>,
    /// The committee's certificate key (the BLS12-381 group public key, hex) once the key
    /// generation ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_key: Option<String>,
    /// The committee's anchor key (the FROST group key, x-only, hex) once the key generation
    /// ran: the key a committee chain's anchor covenant names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor_key: Option<String>,
}

impl CommitteeFile {
    /// `data_dir`'s committee, `None` if it has none (a committee of one).
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if the file is damaged.
    pub fn load(data_dir: &Path) -> Result<Option<CommitteeFile>> {
        let path = data_dir.join(COMMITTEE_FILE);
        match std::fs::read_to_string(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(bad(format!("reading {}: {e}", path.display()))),
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| bad(format!("{} is damaged: {e}", path.display()))),
        }
    }

    fn save(&self, data_dir: &Path) -> Result<()> {
        let path = data_dir.join(COMMITTEE_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| bad(e.to_string()))?;
        write_private(&path, text.as_bytes())
            .map_err(|e| bad(format!("writing {}: {e}", path.display())))
    }

    /// The members' keys, in the committee's order (by key).
    fn keys(&self) -> Result<Vec<PublicKey>> {
        self.members.iter().map(MemberCard::public_key).collect()
    }

    /// Namespace of everything the committee signs: its members' keys, hashed, so two
    /// committees' messages never verify for each other.
    fn namespace(&self) -> Vec<u8> {
        let keys: Vec<&[u8]> = self.members.iter().map(|m| m.key.as_bytes()).collect();
        let mut namespace = b"wisp-committee-v1/".to_vec();
        namespace.extend_from_slice(Sha256::hash(&keys).as_ref());
        namespace
    }
}

/// This node's member key (`member.key`, made by [`init`]): its identity on the committee's
/// network.
///
/// # Errors
/// [`NodeError::DataDir`] if the file is missing (the message says to run `wisp committee
/// init`) or damaged.
pub fn member_key(data_dir: &Path) -> Result<PrivateKey> {
    let path = data_dir.join(MEMBER_KEY_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        bad(format!(
            "reading {}: {e}; make the member key first with `wisp committee init`",
            path.display()
        ))
    })?;
    from_hex(text.trim())
        .and_then(|bytes| PrivateKey::decode(bytes).ok())
        .ok_or_else(|| {
            bad(format!(
                "{} is damaged (64 hex digits expected)",
                path.display()
            ))
        })
}

/// Makes `data_dir`'s member key if it has none (kept if it has) and returns the member's card
/// for `address`, to give the other operators.
///
/// # Errors
/// [`NodeError::DataDir`] if the key cannot be read or written.
pub fn init(data_dir: &Path, address: SocketAddr) -> Result<MemberCard> {
    let path = data_dir.join(MEMBER_KEY_FILE);
    if !path.exists() {
        let secret = crate::datadir::random_secret();
        write_private(&path, to_hex(&secret).as_bytes())
            .map_err(|e| bad(format!("writing {}: {e}", path.display())))?;
    }
    let key = member_key(data_dir)?;
    Ok(MemberCard {
        key: to_hex(key.public_key().as_ref()),
        address,
    })
}

/// Writes `data_dir`'s committee from every member's card (this member's own included, as
/// [`init`] printed it). Each operator runs it with the same cards.
///
/// # Errors
/// [`NodeError::DataDir`] if a key or an address appears twice, this member is not among
/// the cards, the committee is smaller than 2 or larger than [`MAX_COMMITTEE`], or a key
/// generation already ran for another committee here.
pub fn join(data_dir: &Path, cards: Vec<MemberCard>) -> Result<CommitteeFile> {
    let me = member_key(data_dir)?.public_key();
    let mut members = cards;
    members.sort_by(|a, b| a.key.cmp(&b.key));
    if members.len() < 2 || members.len() > MAX_COMMITTEE {
        return Err(bad(format!(
            "a committee has 2 to {MAX_COMMITTEE} members (3f+1 to bear f faulty ones); {} given",
            members.len()
        )));
    }
    for pair in members.windows(2) {
        if pair[0].key == pair[1].key {
            return Err(bad(format!("member {} is given twice", pair[0].key)));
        }
    }
    let addresses: BTreeSet<SocketAddr> = members.iter().map(|m| m.address).collect();
    if addresses.len() != members.len() {
        return Err(bad("two members share one address"));
    }
    let committee = CommitteeFile {
        members,
        certificate_key: None,
        anchor_key: None,
    };
    if !committee.keys()?.contains(&me) {
        return Err(bad(format!(
            "this node's member key {} is not among the members; add its card (`wisp committee init` prints it)",
            to_hex(me.as_ref())
        )));
    }
    if let Some(old) = CommitteeFile::load(data_dir)? {
        if old.certificate_key.is_some() && old.members != committee.members {
            return Err(bad(
                "this node already holds key shares of another committee; use a new data directory",
            ));
        }
        if old.members == committee.members {
            return Ok(old);
        }
    }
    committee.save(data_dir)?;
    Ok(committee)
}

/// What `wisp committee status` shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CommitteeStatus {
    /// This member's card, if the member key exists.
    pub me: Option<String>,
    /// The committee, if joined.
    pub committee: Option<CommitteeFile>,
    /// Whether the key generation ran here (the shares are on disk).
    pub keys_ready: bool,
    /// Whether the data directory holds a chain (`node.json`).
    pub chain: bool,
    /// What the operator should do next.
    pub next: String,
    /// Once the keys exist: the arguments of `governance.rotate_committee` that move a chain
    /// to this committee (JSON, for `wisp call governance rotate_committee ARGS` by the
    /// chain's owner): the anchor key, the certificate key and the certificate namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_args: Option<String>,
}

/// The state of `data_dir` as a committee member.
///
/// # Errors
/// [`NodeError::DataDir`] if a file is damaged.
pub fn status(data_dir: &Path) -> Result<CommitteeStatus> {
    let key = member_key(data_dir).ok();
    let committee = CommitteeFile::load(data_dir)?;
    let keys_ready =
        data_dir.join(CERTIFICATE_SHARE_FILE).exists() && data_dir.join(ANCHOR_SHARE_FILE).exists();
    let chain = crate::datadir::NodeConfig::path(data_dir).exists();
    let me = match (&key, &committee) {
        (Some(key), Some(c)) => {
            let hex = to_hex(key.public_key().as_ref());
            c.members
                .iter()
                .find(|m| m.key == hex)
                .map(MemberCard::word)
        }
        (Some(key), None) => Some(to_hex(key.public_key().as_ref())),
        _ => None,
    };
    let next = match (&key, &committee, keys_ready, chain) {
        // No member key, but a committee with its certificate key and a chain: an access
        // node's data directory.
        (None, Some(c), _, true) if c.certificate_key.is_some() => {
            "an access node's directory: `wisp node --follow http://MEMBER:PORT` follows the committee (or `wisp committee init` to become a member)"
        }
        (None, ..) => "make the member key: `wisp committee init --listen HOST:PORT`",
        (_, None, ..) => "join the committee: `wisp committee join --member KEY@HOST:PORT ...` with every member's card",
        (_, _, false, _) => "generate the committee's keys with the others: `wisp committee dkg`",
        (_, _, true, false) => "copy the chain's node.json here (the chain this committee runs; to take over a running chain, also a first-committee member's committee.json as first-committee.json, then `wisp node --follow URL` and the owner's rotation)",
        (_, _, true, true) => "ready: `wisp node` runs this member",
    }
    .to_string();
    let rotation_args = committee.as_ref().and_then(|c| {
        let (anchor, certificate) = (c.anchor_key.as_ref()?, c.certificate_key.as_ref()?);
        Some(
            serde_json::json!([
                format!("0x{anchor}"),
                format!("0x{certificate}"),
                format!("0x{}", to_hex(&c.namespace())),
            ])
            .to_string(),
        )
    });
    Ok(CommitteeStatus {
        me,
        committee,
        keys_ready,
        chain,
        next,
        rotation_args,
    })
}

/// A member's p2p network: commonware's `lookup` network (members at known addresses), its
/// connections authenticated by the members' ed25519 keys and encrypted (ChaCha20-Poly1305).
type P2p = lookup::Network<
    commonware_runtime::tokio::Context,
    commonware_stream::cups::Cups<
        commonware_stream::sake::Sake<PrivateKey>,
        commonware_cryptography::ChaCha20Poly1305,
    >,
>;

/// The p2p network of `committee` for the member holding `key`, listening on its card's
/// address (all interfaces' port if `listen` is given).
fn network(
    context: &commonware_runtime::tokio::Context,
    key: &PrivateKey,
    committee: &CommitteeFile,
    listen: SocketAddr,
) -> Result<(P2p, lookup::Oracle<PublicKey>)> {
    let handshake = commonware_stream::cups::Cups::new(
        commonware_stream::sake::Sake {
            signer: key.clone(),
            synchrony_bound: Duration::from_secs(5),
            max_handshake_age: Duration::from_secs(10),
            version: commonware_stream::sake::Version::V1,
        },
        commonware_stream::cups::Version::V1,
    );
    let mut config = lookup::Config::recommended(
        handshake,
        &committee.namespace(),
        listen,
        NZUsize!(committee.members.len()),
        MAX_MESSAGE_BYTES,
        NZUsize!(1024),
    );
    // Committees run on private networks and loopback too; members find each other at once.
    config.allow_private_ips = true;
    config.dial_frequency = Duration::from_millis(500);
    config.peer_connection_cooldown = Duration::from_secs(1);
    config.allowed_handshake_rate_per_ip = Quota::per_second(NZU32!(16));
    config.ping_frequency = Duration::from_secs(5);
    let (network, mut oracle) = lookup::Network::new(context.child("p2p"), config);
    let peers: Map<PublicKey, Address> = Map::from_iter_dedup(
        committee
            .keys()?
            .into_iter()
            .zip(committee.members.iter().map(|m| Address::from(m.address))),
    );
    let _ = oracle.track(0, peers);
    Ok((network, oracle))
}

/// The commonware runtime a member's network and consensus run on (its own threads, beside the
/// node's), keeping its storage in `storage`.
fn runtime(storage: PathBuf) -> commonware_runtime::tokio::Runner {
    commonware_runtime::tokio::Runner::new(
        commonware_runtime::tokio::Config::new()
            .with_worker_threads(2)
            .with_catch_panics(true)
            .with_tcp_nodelay(Some(true))
            .with_storage_directory(storage),
    )
}

// ---------------------------------------------------------------------------------------------
// Key generation over the network.

/// A key generation message between members (channel [`CHANNEL_DKG`]); the commonware and
/// FROST parts in their own encodings.
#[derive(BorshSerialize, BorshDeserialize)]
enum DkgWire {
    /// The sender's BLS dealing: its public commitment and the recipient's private share.
    Deal { commitment: Vec<u8>, share: Vec<u8> },
    /// The recipient's signed acknowledgement of the sender's dealing.
    Ack(Vec<u8>),
    /// The sender's signed dealer log.
    Log(Vec<u8>),
    /// The sender's FROST round-1 package (the same to everyone).
    FrostRound1(Vec<u8>),
    /// The sender's FROST round-2 package for the recipient.
    FrostRound2(Vec<u8>),
    /// The sender finished; the hash of everything the keys came from, which must be the
    /// recipient's too.
    Done([u8; 32]),
}

/// What [`run_dkg`] made: the committee's two public keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkgResult {
    /// The certificate key (BLS12-381 group public key, hex).
    pub certificate_key: String,
    /// The anchor key (FROST group key, x-only, hex).
    pub anchor_key: String,
}

/// One member's key generation state.
struct KeygenRun {
    me: PublicKey,
    members: Vec<PublicKey>,
    bls: Option<Keygen>,
    commitment: DealerPubMsg<MinSig>,
    shares: BTreeMap<PublicKey, DealerPrivMsg>,
    acked_by: BTreeSet<PublicKey>,
    my_acks: BTreeMap<PublicKey, PlayerAck<PublicKey>>,
    my_log: Option<DealerLog>,
    logs: BTreeMap<PublicKey, DealerLog>,
    bls_result: Option<(KeygenOutput, Share)>,
    frost: Dkg,
    frost_round1_mine: Vec<u8>,
    frost_round1: BTreeMap<MemberId, Vec<u8>>,
    frost_round2_out: Option<BTreeMap<MemberId, Vec<u8>>>,
    frost_round2_in: BTreeMap<MemberId, Vec<u8>>,
    frost_key: Option<MemberKey>,
    transcript: Option<[u8; 32]>,
    done_peers: BTreeMap<PublicKey, [u8; 32]>,
}

impl KeygenRun {
    fn id(&self, key: &PublicKey) -> Option<MemberId> {
        self.members
            .iter()
            .position(|k| k == key)
            .and_then(|i| MemberId::try_from(i + 1).ok())
    }

    fn max_members(&self) -> NonZeroU32 {
        NonZeroU32::new(u32::try_from(self.members.len()).unwrap_or(u32::MAX)).unwrap_or(NZU32!(1))
    }

    /// Takes one message from `from`; returns what to send back to it, if anything.
    fn on_message(&mut self, from: PublicKey, bytes: &[u8]) -> Result<Option<DkgWire>> {
        let Some(from_id) = self.id(&from) else {
            return Ok(None); // not a member: the p2p layer does not let one in
        };
        let wire = DkgWire::try_from_slice(bytes).map_err(|e| {
            bad(format!(
                "member {from}: a malformed key generation message: {e}"
            ))
        })?;
        let refused = |what: &str, e: String| bad(format!("member {from}: {what}: {e}"));
        match wire {
            DkgWire::Deal { commitment, share } => {
                if let Some(ack) = self.my_acks.get(&from) {
                    return Ok(Some(DkgWire::Ack(ack.encode().to_vec())));
                }
                let commitment =
                    DealerPubMsg::<MinSig>::decode_cfg(commitment, &self.max_members())
                        .map_err(|e| refused("its dealing's commitment", e.to_string()))?;
                let share = DealerPrivMsg::decode(share)
                    .map_err(|e| refused("its dealing's share", e.to_string()))?;
                let Some(bls) = self.bls.as_mut() else {
                    return Ok(None);
                };
                match bls
                    .dealing(from.clone(), commitment, share)
                    .map_err(|e| refused("its dealing", e.to_string()))?
                {
                    Some(ack) => {
                        let bytes = ack.encode().to_vec();
                        self.my_acks.insert(from, ack);
                        Ok(Some(DkgWire::Ack(bytes)))
                    }
                    None => Ok(None),
                }
            }
            DkgWire::Ack(ack) => {
                if self.acked_by.contains(&from) || self.my_log.is_some() {
                    return Ok(None);
                }
                let ack = PlayerAck::<PublicKey>::decode(ack)
                    .map_err(|e| refused("its acknowledgement", e.to_string()))?;
                if let Some(bls) = self.bls.as_mut() {
                    bls.acknowledged(from.clone(), ack)
                        .map_err(|e| refused("its acknowledgement", e.to_string()))?;
                    self.acked_by.insert(from);
                }
                Ok(None)
            }
            DkgWire::Log(log) => {
                let log = DealerLog::decode_cfg(log, &self.max_members())
                    .map_err(|e| refused("its dealer log", e.to_string()))?;
                self.logs.entry(from).or_insert(log);
                Ok(None)
            }
            DkgWire::FrostRound1(package) => {
                match self.frost_round1.get(&from_id) {
                    Some(seen) if *seen != package => {
                        return Err(refused(
                            "FROST round 1",
                            "it sent two different packages; the key generation is void".into(),
                        ))
                    }
                    Some(_) => {}
                    None => {
                        self.frost_round1.insert(from_id, package);
                    }
                }
                Ok(None)
            }
            DkgWire::FrostRound2(package) => {
                self.frost_round2_in.entry(from_id).or_insert(package);
                Ok(None)
            }
            DkgWire::Done(transcript) => {
                if let Some(mine) = self.transcript {
                    if mine != transcript {
                        return Err(bad(format!(
                            "member {from} made its keys from other messages than this member \
                             (a member sent different messages to different members); the keys \
                             are void: run `wisp committee dkg` again on every member"
                        )));
                    }
                }
                self.done_peers.insert(from, transcript);
                Ok(None)
            }
        }
    }

    /// Moves the rounds on with what has arrived.
    fn advance(&mut self, rng: &mut commonware_runtime::tokio::Context) -> Result<()> {
        let n = self.members.len();
        if self.my_log.is_none() && self.acked_by.len() == n {
            if let Some(bls) = self.bls.as_mut() {
                if let Some(log) = bls.close() {
                    self.logs.insert(self.me.clone(), log.clone());
                    self.my_log = Some(log);
                }
            }
        }
        if self.bls_result.is_none() && self.logs.len() == n {
            if let Some(bls) = self.bls.take() {
                let result = bls
                    .finish(rng, self.logs.values().cloned())
                    .map_err(|e| bad(format!("the certificate key: {e}")))?;
                self.bls_result = Some(result);
            }
        }
        if self.frost_round2_out.is_none() && self.frost_round1.len() == n - 1 {
            let out = self
                .frost
                .round2(&self.frost_round1)
                .map_err(|e| bad(format!("the anchor key, round 2: {e}")))?;
            self.frost_round2_out = Some(out);
        }
        if self.frost_key.is_none()
            && self.frost_round2_out.is_some()
            && self.frost_round2_in.len() == n - 1
        {
            let key = self
                .frost
                .finish(&self.frost_round2_in)
                .map_err(|e| bad(format!("the anchor key: {e}")))?;
            self.frost_key = Some(key);
        }
        if self.transcript.is_none() {
            if let (Some((output, _)), Some(key)) = (&self.bls_result, &self.frost_key) {
                // Both group keys and every member's FROST round-1 package (the one message
                // each member must send everyone alike).
                let me = self.id(&self.me).unwrap_or(0);
                let mut round1 = self.frost_round1.clone();
                round1.insert(me, self.frost_round1_mine.clone());
                let mut all = output.public().public().encode().to_vec();
                all.extend_from_slice(&key.group_key());
                for (id, package) in &round1 {
                    all.extend_from_slice(&id.to_le_bytes());
                    all.extend_from_slice(Sha256::hash(&[package]).as_ref());
                }
                let transcript: [u8; 32] =
                    Sha256::hash(&[&all]).as_ref().try_into().unwrap_or([0; 32]);
                if let Some((from, theirs)) =
                    self.done_peers.iter().find(|(_, t)| **t != transcript)
                {
                    return Err(bad(format!(
                        "member {from} made its keys from other messages than this member ({}); \
                         the keys are void: run `wisp committee dkg` again on every member",
                        to_hex(theirs)
                    )));
                }
                self.transcript = Some(transcript);
            }
        }
        Ok(())
    }

    /// What to send `to` now (everything it may still need; repeated until it says it is done).
    fn outbox(&self, to: &PublicKey) -> Vec<DkgWire> {
        let mut out = Vec::new();
        if self.done_peers.contains_key(to) {
            return out;
        }
        if !self.acked_by.contains(to) {
            if let Some(share) = self.shares.get(to) {
                out.push(DkgWire::Deal {
                    commitment: self.commitment.encode().to_vec(),
                    share: share.encode().to_vec(),
                });
            }
        }
        if let Some(log) = &self.my_log {
            out.push(DkgWire::Log(log.encode().to_vec()));
        }
        out.push(DkgWire::FrostRound1(self.frost_round1_mine.clone()));
        if let (Some(round2), Some(id)) = (&self.frost_round2_out, self.id(to)) {
            if let Some(package) = round2.get(&id) {
                out.push(DkgWire::FrostRound2(package.clone()));
            }
        }
        if let Some(transcript) = self.transcript {
            out.push(DkgWire::Done(transcript));
        }
        out
    }
}

/// Runs the committee's key generation with the other members, who run it at the same time
/// (each waits up to `timeout` for all of them): the certificate key (BLS12-381 threshold,
/// commonware's Feldman/Desmedt DKG) and the anchor key (FROST), over the committee's
/// encrypted p2p network. Every member must take part. Writes this member's shares to
/// `data_dir/committee/` (0600) and the public keys into `committee.json`; `progress` is told
/// what happens.
///
/// # Errors
/// [`NodeError::DataDir`] if the committee is not set up, the keys were already made, a member
/// misbehaves (named), or not every member took part within `timeout` (run it again on every
/// member).
pub fn run_dkg(
    data_dir: &Path,
    timeout: Duration,
    progress: impl Fn(&str) + Send + 'static,
) -> Result<DkgResult> {
    let key = member_key(data_dir)?;
    let mut committee = CommitteeFile::load(data_dir)?
        .ok_or_else(|| bad("this node has joined no committee: run `wisp committee join` first"))?;
    if data_dir.join(CERTIFICATE_SHARE_FILE).exists() {
        return Err(bad(
            "this node already holds its shares of the committee's keys (`wisp committee status`)",
        ));
    }
    let members = committee.keys()?;
    let me = key.public_key();
    let my_index = members
        .iter()
        .position(|k| *k == me)
        .ok_or_else(|| bad("this node's member key is not in committee.json"))?;
    let listen = committee.members[my_index].address;
    let size = CommitteeSize::bft(u16::try_from(members.len()).unwrap_or(u16::MAX))
        .map_err(|e| bad(e.to_string()))?;
    let namespace = committee.namespace();
    let data = data_dir.to_path_buf();
    let committee_for_run = committee.clone();
    let outcome = runtime(data_dir.join("consensus")).start(move |mut context| async move {
        let (mut network, _oracle) = network(&context, &key, &committee_for_run, listen)?;
        let (mut sender, mut receiver) = network.register(CHANNEL_DKG, CONTROL_RATE);
        let _network = network.start();
        let member_set: Set<PublicKey> = Set::from_iter_dedup(members.iter().cloned());
        let (bls, commitment, shares) =
            Keygen::start(&mut context, &namespace, 0, member_set, key.clone())
                .map_err(|e| bad(e.to_string()))?;
        let my_id = MemberId::try_from(my_index + 1).unwrap_or(0);
        let (frost, frost_round1_mine) =
            Dkg::start(my_id, size, &mut secp256k1::rand::thread_rng())
                .map_err(|e| bad(e.to_string()))?;
        let mut run = KeygenRun {
            me: me.clone(),
            members: members.clone(),
            bls: Some(bls),
            commitment,
            shares: shares.into_iter().collect(),
            acked_by: BTreeSet::new(),
            my_acks: BTreeMap::new(),
            my_log: None,
            logs: BTreeMap::new(),
            bls_result: None,
            frost,
            frost_round1_mine,
            frost_round1: BTreeMap::new(),
            frost_round2_out: None,
            frost_round2_in: BTreeMap::new(),
            frost_key: None,
            transcript: None,
            done_peers: BTreeMap::new(),
        };
        // This member's own dealing, taken and acknowledged locally.
        if let Some(share) = run.shares.remove(&me) {
            let commitment = run.commitment.clone();
            if let Some(bls) = run.bls.as_mut() {
                if let Some(ack) = bls
                    .dealing(me.clone(), commitment, share)
                    .map_err(|e| bad(e.to_string()))?
                {
                    bls.acknowledged(me.clone(), ack)
                        .map_err(|e| bad(e.to_string()))?;
                    run.acked_by.insert(me.clone());
                }
            }
        }
        progress(&format!(
            "key generation: waiting for the other {} members",
            members.len() - 1
        ));
        let deadline = context.current() + timeout;
        let mut saved = false;
        let mut last_report = (usize::MAX, usize::MAX);
        loop {
            for peer in members.iter().filter(|k| **k != me) {
                for message in run.outbox(peer) {
                    let bytes = borsh::to_vec(&message).unwrap_or_default();
                    sender.send(Recipients::One(peer.clone()), bytes, false);
                }
            }
            let tick = context.sleep(Duration::from_millis(500));
            futures_select_recv(&mut receiver, tick, &mut run, &mut sender).await?;
            run.advance(&mut context)?;
            if run.transcript.is_some() && !saved {
                let (output, share) = run.bls_result.clone().ok_or_else(|| bad("no output"))?;
                let anchor = run.frost_key.as_ref().ok_or_else(|| bad("no anchor key"))?;
                save_keys(&data, &output, &share, anchor)?;
                saved = true;
                progress("key generation: keys made and saved; waiting for the others to finish");
            }
            let report = (run.logs.len(), run.done_peers.len());
            if report != last_report {
                last_report = report;
                progress(&format!(
                    "key generation: {} of {} dealer logs, {} of {} members finished",
                    report.0,
                    members.len(),
                    report.1 + usize::from(saved),
                    members.len()
                ));
            }
            if saved && run.done_peers.len() == members.len() - 1 {
                // Tell the last ones once more that this member is done, then stop.
                for peer in members.iter().filter(|k| **k != me) {
                    if let Some(t) = run.transcript {
                        let bytes = borsh::to_vec(&DkgWire::Done(t)).unwrap_or_default();
                        sender.send(Recipients::One(peer.clone()), bytes, false);
                    }
                }
                context.sleep(Duration::from_millis(500)).await;
                break;
            }
            if context.current() > deadline {
                let missing: Vec<String> = members
                    .iter()
                    .filter(|k| **k != me && !run.done_peers.contains_key(*k))
                    .map(|k| to_hex(k.as_ref()))
                    .collect();
                return Err(bad(format!(
                    "the key generation did not finish within {timeout:?}: no word from {} \
                         (every member must run `wisp committee dkg` at the same time){}",
                    missing.join(", "),
                    if saved {
                        "; this member's keys are saved, the others may not have theirs"
                    } else {
                        ""
                    }
                )));
            }
        }
        let (output, _) = run.bls_result.ok_or_else(|| bad("no output"))?;
        let anchor = run.frost_key.ok_or_else(|| bad("no anchor key"))?;
        Ok(DkgResult {
            certificate_key: to_hex(&output.public().public().encode()),
            anchor_key: to_hex(&anchor.group_key()),
        })
    });
    let result = outcome?;
    committee.certificate_key = Some(result.certificate_key.clone());
    committee.anchor_key = Some(result.anchor_key.clone());
    committee.save(data_dir)?;
    Ok(result)
}

/// Waits for DKG messages until `tick` fires, handling each (and answering its sender).
async fn futures_select_recv<S: commonware_p2p::Sender<PublicKey = PublicKey>>(
    receiver: &mut impl commonware_p2p::Receiver<PublicKey = PublicKey>,
    tick: impl std::future::Future<Output = ()>,
    run: &mut KeygenRun,
    sender: &mut S,
) -> Result<()> {
    let mut tick = std::pin::pin!(tick);
    loop {
        let message = commonware_macros::select! {
            _ = tick.as_mut() => return Ok(()),
            message = receiver.recv() => message,
        };
        let Ok((from, bytes)) = message else {
            return Err(bad("the committee network stopped"));
        };
        if let Some(answer) = run.on_message(from.clone(), bytes.as_ref())? {
            let bytes = borsh::to_vec(&answer).unwrap_or_default();
            sender.send(Recipients::One(from), bytes, false);
        }
    }
}

fn save_keys(
    data_dir: &Path,
    output: &KeygenOutput,
    share: &Share,
    anchor: &MemberKey,
) -> Result<()> {
    let write = |file: &str, bytes: &[u8]| {
        let path = data_dir.join(file);
        write_private(&path, bytes).map_err(|e| bad(format!("writing {}: {e}", path.display())))
    };
    write(CERTIFICATE_OUTPUT_FILE, &output.encode())?;
    write(
        ANCHOR_SHARE_FILE,
        &anchor.to_bytes().map_err(|e| bad(e.to_string()))?,
    )?;
    // Last: its presence says the key generation finished here.
    write(CERTIFICATE_SHARE_FILE, &share.encode())
}

/// This member's certificate signer, from the shares on disk.
fn certificate_scheme(data_dir: &Path, committee: &CommitteeFile) -> Result<dkg::CommitteeScheme> {
    let read = |file: &str| {
        let path = data_dir.join(file);
        std::fs::read(&path).map_err(|e| {
            bad(format!(
                "reading {}: {e}; run `wisp committee dkg` with the other members first",
                path.display()
            ))
        })
    };
    let max = NonZeroU32::new(u32::try_from(committee.members.len()).unwrap_or(u32::MAX))
        .unwrap_or(NZU32!(1));
    let output =
        KeygenOutput::decode_cfg(read(CERTIFICATE_OUTPUT_FILE)?, &(max, ModeVersion::v1()))
            .map_err(|e| bad(format!("{CERTIFICATE_OUTPUT_FILE} is damaged: {e}")))?;
    let share = Share::decode(read(CERTIFICATE_SHARE_FILE)?)
        .map_err(|e| bad(format!("{CERTIFICATE_SHARE_FILE} is damaged: {e}")))?;
    dkg::committee_scheme(&committee.namespace(), &output, share).map_err(|e| bad(e.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Access nodes.

/// Most bytes of committee blocks an access node holds fetched but not yet certified (it asks
/// for at most 256 blocks at a time until it reaches the certified block): 256 MiB.
pub const MAX_ACCESS_BUFFER_BYTES: usize = 256 << 20;

/// Most bytes of one answer an access node reads from its upstream (a block is at most
/// `wisp_consensus::MAX_BLOCK_BYTES`, twice that as hex).
pub const MAX_ACCESS_RESPONSE_BYTES: u32 = 32 << 20;

/// How often an access node asks its upstream for new final blocks.
pub const ACCESS_POLL: Duration = Duration::from_millis(200);

/// A running access node's follower task.
pub struct AccessHandle {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    handed_over: tokio::sync::watch::Receiver<bool>,
}

impl AccessHandle {
    /// Waits until the chain has passed to the committee `start_access` was told to stop at
    /// (forever if none): the follower has executed the outgoing committee's last block and
    /// stopped.
    pub async fn handed_over(&mut self) {
        let _ = self.handed_over.wait_for(|done| *done).await;
    }

    /// Stops following and waits for the task (a batch being executed finishes first).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The file in a next committee's member's data directory holding the chain's first
/// committee (a copy of a first-committee member's `committee.json`): what the member checks
/// the chain's blocks against while it follows them before its committee takes over.
pub const FIRST_COMMITTEE_FILE: &str = "first-committee.json";

/// The verifier of the certificates of the chain's first committee, from the certificate key
/// in `data_dir`'s `committee.json` (an access node's copy of a member's), or in
/// [`FIRST_COMMITTEE_FILE`] in a next committee's member's directory: what a follower checks
/// the blocks against (later committees' keys come from the rotations in the chain's state).
fn certificate_verifier(data_dir: &Path) -> Result<dkg::CommitteeScheme> {
    let committee = match is_member_dir(data_dir) {
        true => {
            let path = data_dir.join(FIRST_COMMITTEE_FILE);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                bad(format!(
                    "reading {}: {e}; a next committee's member follows the chain before it \
                     takes over: copy the committee.json of a member of the chain's first \
                     committee (or an access node's) to {FIRST_COMMITTEE_FILE}",
                    path.display()
                ))
            })?;
            serde_json::from_str(&text)
                .map_err(|e| bad(format!("{} is damaged: {e}", path.display())))?
        }
        false => CommitteeFile::load(data_dir)?.ok_or_else(|| {
            bad("an access node needs the committee's committee.json in its data directory (copy it from a member)")
        })?,
    };
    let key = committee.certificate_key.as_deref().ok_or_else(|| {
        bad("committee.json has no certificate key yet: copy it from a member after `wisp committee dkg`")
    })?;
    let identity = from_hex(key)
        .and_then(|bytes| {
            <MinSig as commonware_cryptography::bls12381::primitives::variant::Variant>::Public::decode(bytes)
                .ok()
        })
        .ok_or_else(|| bad("committee.json's certificate key is not a BLS12-381 public key"))?;
    Ok(dkg::CommitteeScheme::certificate_verifier(
        &committee.namespace(),
        identity,
    ))
}

/// An RPC client of an access node's upstream.
fn upstream_client(upstream: &str) -> Result<jsonrpsee::http_client::HttpClient> {
    jsonrpsee::http_client::HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .max_response_size(MAX_ACCESS_RESPONSE_BYTES)
        .build(upstream)
        .map_err(|e| bad(format!("`{upstream}` is not an RPC URL: {e}")))
}

/// What [`sync_snapshot`] restored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The block whose state the node now holds: it follows the committee from there.
    pub height: u64,
    /// State entries restored.
    pub keys: u64,
    /// Bytes of their values.
    pub value_bytes: u64,
}

/// Starts a new access node's chain from the newest state its upstream can show the committee
/// certified, instead of executing every block since the committee's first: it fetches the
/// snapshot base (`wisp_getSnapshotBase`), checks its finalization certificate against the
/// committee key in `data_dir`'s `committee.json`, the blocks linking it, and the attested
/// header ([`wisp_consensus::follow::check_snapshot_base`]), then fetches the state under that
/// header's root page by page (`wisp_getStateChunk`), each page checked against the root as
/// it arrives and the whole tree at the end ([`wisp_state::StateDb::begin_restore`]). The
/// state goes to `chain/state.redb.partial`, renamed to `chain/state.redb` once complete, so an
/// interrupted sync leaves nothing a node would open (the next one starts over). `progress`
/// hears about the work every few seconds.
///
/// Returns `None`, doing nothing, if the node already has a chain database: a snapshot only
/// starts a node, it never replaces state.
///
/// # Errors
/// [`NodeError::DataDir`] if `node.json` or `committee.json` is missing or damaged, the
/// upstream cannot be reached or refuses, or what it sends does not check (the message says
/// which); nothing is left in place of the chain database.
pub async fn sync_snapshot(
    data_dir: &Path,
    upstream: &str,
    progress: impl Fn(&str) + Send + 'static,
) -> Result<Option<Restored>> {
    let dir = data_dir.join("chain");
    let target = dir.join("state.redb");
    if target.exists() {
        return Ok(None);
    }
    let chain_id = crate::datadir::NodeConfig::load(data_dir)?
        .genesis()?
        .chain_id();
    let scheme = certificate_verifier(data_dir)?;
    let client = upstream_client(upstream)?;
    let base = wisp_api::WispApiClient::get_snapshot_base(&client)
        .await
        .map_err(|e| bad(format!("asking {upstream} for a snapshot: {e}")))?;
    let receipts: Vec<wisp_core::Receipt> = borsh::from_slice(&base.receipts.0).map_err(|e| {
        bad(format!(
            "the snapshot {upstream} offers: its receipts do not decode: {e}"
        ))
    })?;
    let blocks: Vec<Vec<u8>> = base.blocks.into_iter().map(|b| b.0).collect();
    let checked = wisp_consensus::follow::check_snapshot_base(
        &mut rand::rng(),
        &scheme,
        chain_id,
        &base.header.0,
        &blocks,
        &base.finalization.0,
    )
    .map_err(|e| {
        bad(format!(
            "the snapshot {upstream} offers does not check: {e}"
        ))
    })?;
    let height = checked.header.index;
    progress(&format!(
        "syncing the state of block {height} (certified by the committee) from {upstream}"
    ));
    std::fs::create_dir_all(&dir).map_err(|e| bad(format!("{}: {e}", dir.display())))?;
    let partial = dir.join("state.redb.partial");
    match std::fs::remove_file(&partial) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad(format!("{}: {e}", partial.display()))),
    }
    let handle = tokio::runtime::Handle::current();
    let upstream = upstream.to_string();
    let written = partial.clone();
    // The restore writes to disk between fetches and its tree is not Send: it runs on one
    // blocking thread, which waits for each page on the runtime.
    let restored = tokio::task::spawn_blocking(move || -> Result<Restored> {
        let db = wisp_state::StateDb::open(&written)
            .map_err(|e| bad(format!("{}: {e}", written.display())))?;
        let mut restore = db
            .begin_restore(&checked.header)
            .map_err(|e| bad(e.to_string()))?;
        let started = std::time::Instant::now();
        let mut told = started;
        loop {
            let after = restore.last_key().map(wisp_api::H256);
            let page = handle
                .block_on(wisp_api::WispApiClient::get_state_chunk(
                    &client, height, after, None,
                ))
                .map_err(|e| bad(format!("asking {upstream} for state: {e}")))?;
            let last = page.last;
            restore
                .add_chunk(
                    page.entries.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
                    &page.proof.0,
                )
                .map_err(|e| bad(format!("the state {upstream} sent: {e}")))?;
            if told.elapsed() >= Duration::from_secs(3) {
                told = std::time::Instant::now();
                progress(&format!(
                    "{} keys, {} MiB of values so far",
                    restore.keys(),
                    restore.value_bytes() >> 20
                ));
            }
            if last {
                break;
            }
        }
        let (keys, value_bytes) = (restore.keys(), restore.value_bytes());
        let meta = checked.meta();
        let meta: Vec<(&str, Vec<u8>)> = meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        restore
            .finish(&receipts, &meta)
            .map_err(|e| bad(format!("the state {upstream} sent: {e}")))?;
        progress(&format!(
            "restored the state of block {height}: {keys} keys, {value_bytes} bytes of values, in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        Ok(Restored {
            height,
            keys,
            value_bytes,
        })
    })
    .await
    .map_err(|e| bad(format!("the snapshot sync failed: {e}")));
    match restored {
        Ok(Ok(restored)) => {
            std::fs::rename(&partial, &target)
                .map_err(|e| bad(format!("{}: {e}", target.display())))?;
            Ok(Some(restored))
        }
        Ok(Err(e)) | Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Makes `node` an access node of its committee chain: it follows the committee's final
/// blocks from `upstream` (a member's or another access node's RPC URL), checks each batch's
/// finalization certificate against the committee key in `data_dir`'s `committee.json`, and
/// executes the blocks ([`wisp_consensus::follow::Follower`]), publishing them to its RPC
/// subscribers; requests sent to it go to `upstream`. It holds no key and never votes.
///
/// # Errors
/// [`NodeError::DataDir`] if `committee.json` is missing, has no certificate key yet or a
/// damaged one, the URL is not one, or the chain's record of its last committee block cannot
/// be read.
pub fn start_access(node: Arc<Node>, data_dir: &Path, upstream: &str) -> Result<AccessHandle> {
    start_access_until(node, data_dir, upstream, None)
}

/// [`start_access`], stopping once the chain passes to the committee whose certificate
/// namespace is `until` ([`AccessHandle::handed_over`]): how a next committee's member
/// follows the chain until it takes over.
///
/// # Errors
/// As [`start_access`].
pub fn start_access_until(
    node: Arc<Node>,
    data_dir: &Path,
    upstream: &str,
    until: Option<Vec<u8>>,
) -> Result<AccessHandle> {
    let scheme = certificate_verifier(data_dir)?;
    let client = upstream_client(upstream)?;
    node.set_upstream(client.clone());
    let published = node.clone();
    let follower = wisp_consensus::follow::Follower::new(
        node.chain_arc(),
        Box::new(L1Follower::start(node.clone())),
        scheme,
        Some(Box::new(move |output| {
            published.publish(Arc::new(output.clone()))
        })),
    )
    .map_err(|e| bad(format!("the chain's committee record: {e}")))?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let (handing_over, handed_over) = tokio::sync::watch::channel(false);
    let watched = node.clone();
    let task = tokio::spawn(async move {
        let follower = Arc::new(Mutex::new(follower));
        let mut buffer: Vec<wisp_consensus::Block> = Vec::new();
        let mut buffered = 0usize;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(ACCESS_POLL) => {}
                _ = stopped.changed() => return,
            }
            let (height, epoch) = follower
                .lock()
                .map(|f| (f.height(), f.epoch()))
                .unwrap_or((0, 0));
            if let Some(namespace) = &until {
                let named = match epoch {
                    0 => None,
                    e => watched.chain().committee_rotation(e).ok().flatten(),
                };
                if named.is_some_and(|r| r.namespace == *namespace) {
                    tracing::info!(
                        height,
                        epoch,
                        "the chain has passed to this node's committee"
                    );
                    let _ = handing_over.send(true);
                    return;
                }
            }
            let from = height + 1 + buffer.len() as u64;
            let answer = match wisp_api::WispApiClient::get_committee_blocks(
                &client,
                from,
                Some(wisp_consensus::follow::MAX_FOLLOW_BATCH as u32),
            )
            .await
            {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(error = %e, "asking the upstream for committee blocks failed; retrying");
                    continue;
                }
            };
            let decoded: std::result::Result<Vec<_>, _> = answer
                .blocks
                .iter()
                .map(|b| wisp_consensus::Block::decode(&b.0))
                .collect();
            match decoded {
                Ok(blocks) => {
                    buffered += answer.blocks.iter().map(|b| b.0.len()).sum::<usize>();
                    buffer.extend(blocks);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the upstream sent a block that does not decode");
                    buffer.clear();
                    buffered = 0;
                    continue;
                }
            }
            if buffered > MAX_ACCESS_BUFFER_BYTES {
                tracing::warn!(
                    "the upstream sent more uncertified blocks than an access node holds; starting over"
                );
                buffer.clear();
                buffered = 0;
                continue;
            }
            let Some(certificate) = answer.finalization else {
                continue;
            };
            let blocks = std::mem::take(&mut buffer);
            buffered = 0;
            let worker = follower.clone();
            let applied = tokio::task::spawn_blocking(move || {
                let mut follower = worker.lock().map_err(|_| {
                    wisp_consensus::ConsensusError::Chain("the follower's lock was poisoned".into())
                })?;
                follower.apply(&mut rand::rng(), &blocks, &certificate.0)
            })
            .await;
            match applied {
                Ok(Ok(_)) => {}
                Ok(Err(e @ wisp_consensus::ConsensusError::Diverged(_))) => {
                    tracing::error!(error = %e, "this access node stops following: its state differs from the committee's");
                    return;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "refused what the upstream sent"),
                Err(e) => tracing::error!(error = %e, "the follower failed"),
            }
        }
    });
    Ok(AccessHandle {
        stop,
        task,
        handed_over,
    })
}

// ---------------------------------------------------------------------------------------------
// Running the member.

/// A running member: its mailbox (where the node's RPC submits off-ledger requests), what it
/// has executed, and its thread.
pub struct MemberHandle {
    mailbox: Mailbox,
    progress: Progress,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

impl MemberHandle {
    /// What the member has executed.
    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// Stops the member (its network and consensus) and waits for its thread.
    ///
    /// # Errors
    /// What stopped the member, if it failed.
    pub fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(bad("the committee member's thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for MemberHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts `node` as a member of the committee in `data_dir`: its p2p network and simplex on a
/// runtime of their own, its L1 follower ([`L1Follower`]) on the node's, and its RPC's off-ledger
/// requests going to the committee's mempool. Blocks are made only by the committee from then on.
///
/// # Errors
/// [`NodeError::DataDir`] if the committee or its keys are missing or damaged.
pub fn start_member(node: Arc<Node>, data_dir: &Path) -> Result<MemberHandle> {
    let committee = CommitteeFile::load(data_dir)?
        .ok_or_else(|| bad("this data directory holds no committee (`wisp committee join`)"))?;
    let scheme = certificate_scheme(data_dir, &committee)?;
    let key = member_key(data_dir)?;
    let me = to_hex(key.public_key().as_ref());
    let listen = committee
        .members
        .iter()
        .find(|m| m.key == me)
        .map(|m| m.address)
        .ok_or_else(|| bad("this node's member key is not in committee.json"))?;
    let era = member_era(node.chain(), &committee.namespace())?;
    let follower = L1Follower::start(node.clone());
    let keys = committee.keys()?;
    let my_index = keys
        .iter()
        .position(|k| *k == key.public_key())
        .ok_or_else(|| bad("this node's member key is not in committee.json"))?;
    let anchor_key = {
        let path = data_dir.join(ANCHOR_SHARE_FILE);
        let bytes = std::fs::read(&path).map_err(|e| {
            bad(format!(
                "reading {}: {e}; run `wisp committee dkg` with the other members first",
                path.display()
            ))
        })?;
        MemberKey::from_bytes(&bytes).map_err(|e| bad(format!("{}: {e}", path.display())))?
    };
    // A committee chain's first committee holds the key the chain was created with; any other
    // runs it only once a rotation names it (else it would order a chain of its own from the
    // chain's start, which no node following the chain would take).
    if era.epoch == 0
        && node.is_committee_chain()
        && anchor_key.group_key() != node.anchor().committee_key
    {
        return Err(bad(
            "this committee's anchor key is not the one the chain was created with, and no \
             rotation in the chain's state names this committee: run the node with --follow \
             <RPC URL of a current member> to follow the chain until its owner rotates it to \
             this committee (`wisp committee status` prints the rotation's arguments)",
        ));
    }
    // A committee signs the anchor only if the chain's anchors name (or will name, after a
    // rotation) the committee's key; each step signs only anchors that name it.
    let anchoring = (anchor_key.group_key() == node.anchor().committee_key
        || node.rotation_naming(anchor_key.group_key())?.is_some())
    .then_some(());
    if anchoring.is_none() {
        tracing::warn!(
            "the chain's anchor does not name this committee's anchor key (create the chain with \
             `wisp chain create --committee-key`): the committee will not move the anchor"
        );
    }
    let (anchor_in, anchor_inbox) = tokio::sync::mpsc::channel::<(usize, Vec<u8>)>(1024);
    let (anchor_outbox, mut anchor_out) =
        tokio::sync::mpsc::unbounded_channel::<anchoring::Outgoing>();
    if anchoring.is_some() {
        let log_path = data_dir.join(SIGNING_LOG_FILE);
        let log =
            crate::signing_log::FileSigningLog::open(&log_path).map_err(|e| bad(e.to_string()))?;
        let anchorer = anchoring::Anchorer::new(
            node.clone(),
            my_index,
            keys.len(),
            anchor_key,
            log,
            anchor_inbox,
            anchor_outbox,
        );
        tokio::spawn(anchorer.run());
    }
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let storage = data_dir.join("consensus");
    let chain = node.chain_arc();
    let published = node.clone();
    let published_wants = node.clone();
    let thread = std::thread::Builder::new()
        .name("wisp-committee".into())
        .spawn(move || -> Result<()> {
            runtime(storage).start(move |context| async move {
                let (mut network, oracle) = network(&context, &key, &committee, listen)?;
                let votes = network.register(CHANNEL_VOTES, CHANNEL_RATE);
                let certificates = network.register(CHANNEL_CERTIFICATES, CHANNEL_RATE);
                let resolver = network.register(CHANNEL_RESOLVER, CHANNEL_RATE);
                let (block_sender, block_receiver) = network.register(CHANNEL_BLOCKS, CHANNEL_RATE);
                let (mut anchor_sender, mut anchor_receiver) =
                    network.register(CHANNEL_ANCHOR, CONTROL_RATE);
                let _network = network.start();
                // The anchoring messages, to and from the node's side (`Anchorer`).
                let peers = keys.clone();
                context.child("anchor_in").spawn(move |_| async move {
                    while let Ok((from, bytes)) = anchor_receiver.recv().await {
                        if let Some(i) = peers.iter().position(|k| *k == from) {
                            // Full: the member is behind; the sender repeats what matters.
                            let _ = anchor_in.try_send((i, bytes.as_ref().to_vec()));
                        }
                    }
                });
                let peers = keys.clone();
                context.child("anchor_out").spawn(move |_| async move {
                    while let Some(out) = anchor_out.recv().await {
                        match out {
                            anchoring::Outgoing::To(i, bytes) => {
                                if let Some(to) = peers.get(i) {
                                    anchor_sender.send(Recipients::One(to.clone()), bytes, false);
                                }
                            }
                            anchoring::Outgoing::All(bytes) => {
                                anchor_sender.send(Recipients::All, bytes, false);
                            }
                        }
                    }
                });
                let mut config = wisp_consensus::Config::new(chain, Box::new(follower));
                config.era = Some(era);
                config.on_executed = Some(Box::new(move |output| {
                    published.publish(Arc::new(output.clone()))
                }));
                // The anchor's committed withdrawals are paid by a successor that commits a
                // newer block: the anchoring step asks for one.
                config.wants_block = Some(Box::new(move || {
                    published_wants
                        .block_wanted
                        .swap(false, std::sync::atomic::Ordering::Relaxed)
                }));
                // Blocks carry the committee's seeds, so contracts draw randomness.
                config.seeds = Some(wisp_consensus::SeedVerifier::new(&scheme));
                let (member, mailbox, reporter, progress) =
                    Member::new::<dkg::CommitteeScheme>(config).map_err(|e| bad(e.to_string()))?;
                let genesis = member.genesis();
                let epoch = member.epoch();
                let _ = ready_tx.send((mailbox.clone(), progress));
                let _application =
                    member.start(context.child("application"), block_sender, block_receiver);
                let engine = commonware_consensus::simplex::Engine::new(
                    context.child("engine"),
                    wisp_consensus::engine_config(
                        scheme,
                        oracle,
                        mailbox,
                        reporter,
                        genesis,
                        epoch,
                        // Each committee's journal apart: a member of two committees in turn
                        // never replays the first's votes into the second's views (the first
                        // committee's keeps the name it always had).
                        match epoch {
                            0 => "simplex".into(),
                            e => format!("simplex-{e}"),
                        },
                    ),
                );
                let _engine = engine.start(votes, certificates, resolver);
                let _ = stopped.await;
                let _ = context.stop(0, Some(Duration::from_secs(5))).await;
                Ok(())
            })
        })
        .map_err(|e| bad(format!("cannot start the committee member's thread: {e}")))?;
    let (mailbox, progress) = match ready_rx.recv() {
        Ok(ready) => ready,
        Err(_) => {
            return Err(match thread.join() {
                Ok(Err(e)) => e,
                _ => bad("the committee member stopped while starting"),
            })
        }
    };
    node.set_committee(mailbox.clone());
    Ok(MemberHandle {
        mailbox,
        progress,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// The era of the committee whose certificate namespace is `namespace` on `chain`: the newest
/// rotation that names it, or the chain's first committee if none does.
///
/// # Errors
/// [`NodeError::DataDir`] if a rotation names this committee but the node has not executed its
/// handover block yet (the message says to follow the chain until then), or the chain's
/// records cannot be read.
fn member_era(chain: &wisp_chain::Chain, namespace: &[u8]) -> Result<wisp_consensus::Era> {
    match rotation_to(chain, namespace)? {
        Some(epoch) => wisp_consensus::Era::of(chain, epoch).map_err(|e| {
            bad(format!(
                "{e}: run the node with --follow <RPC URL of a current member> to follow \
                 the chain until this committee takes over"
            ))
        }),
        None => Ok(wisp_consensus::Era::first(chain)),
    }
}

/// The epoch of the newest rotation to the committee whose certificate namespace is
/// `namespace`, if any.
fn rotation_to(chain: &wisp_chain::Chain, namespace: &[u8]) -> Result<Option<u64>> {
    Ok(chain
        .newest_rotation(|r| r.namespace == namespace)
        .map_err(|e| bad(format!("the chain's committee rotations: {e}")))?
        .map(|r| r.epoch))
}

/// Whether `data_dir` holds a committee this node is a member of (its member key and its
/// shares of the committee's keys): `wisp node --follow` then follows the current committee
/// only until the chain rotates to this one, and runs as its member from there.
pub fn is_member_dir(data_dir: &Path) -> bool {
    data_dir.join(MEMBER_KEY_FILE).exists() && data_dir.join(CERTIFICATE_SHARE_FILE).exists()
}

/// Whether the chain `node` runs has passed to the committee in `data_dir`: a rotation names
/// it and the node has executed the handover block (a next committee's member that restarts
/// after taking over runs as a member at once).
///
/// # Errors
/// [`NodeError::DataDir`] if `committee.json` is missing or damaged, or the chain's records
/// cannot be read.
pub fn has_taken_over(node: &Node, data_dir: &Path) -> Result<bool> {
    let namespace = committee_namespace(data_dir)?;
    Ok(rotation_to(node.chain(), &namespace)?
        .is_some_and(|epoch| wisp_consensus::Era::of(node.chain(), epoch).is_ok()))
}

/// The certificate namespace of the committee in `data_dir` (what a rotation to it names).
///
/// # Errors
/// [`NodeError::DataDir`] if `committee.json` is missing or damaged.
pub fn committee_namespace(data_dir: &Path) -> Result<Vec<u8>> {
    Ok(CommitteeFile::load(data_dir)?
        .ok_or_else(|| bad("this data directory holds no committee (`wisp committee join`)"))?
        .namespace())
}

impl MemberHandle {
    /// Where off-ledger requests go: the member's mempool, gossiped to the others.
    pub fn mailbox(&self) -> &Mailbox {
        &self.mailbox
    }
}

// ---------------------------------------------------------------------------------------------
// Following Kaspa for the committee.

/// Confirmed Kaspa chain blocks a member has seen since its chain's head, with the chain's
/// on-ledger requests each accepted.
#[derive(Default)]
struct Followed {
    /// The chain head's Kaspa block when following started: on-ledger requests "from the start"
    /// are those after it.
    start: Option<L1Ref>,
    /// Confirmed blocks after `start`, oldest first (at most [`MAX_FOLLOWED_L1_BLOCKS`]).
    blocks: VecDeque<(L1Ref, Vec<OnLedgerRequest>)>,
}

/// The member's view of Kaspa ([`wisp_consensus::L1View`]): a task on the node's runtime follows
/// Kaspa's selected chain through the node's L1 client, keeps the blocks at least the chain's
/// `l1_confirmations` deep with the lane requests they accepted, and forgets those the chain
/// has executed past.
#[derive(Clone)]
pub struct L1Follower(Arc<Mutex<Followed>>);

impl L1Follower {
    /// Starts following Kaspa for `node`'s chain from its head's Kaspa block.
    pub fn start(node: Arc<Node>) -> L1Follower {
        let shared = L1Follower(Arc::new(Mutex::new(Followed::default())));
        let follower = shared.clone();
        tokio::spawn(async move {
            let mut unconfirmed: Vec<wisp_l1::ChainBlock> = Vec::new();
            let mut cursor: Option<[u8; 32]> = None;
            loop {
                if let Err(e) = follower.step(&node, &mut cursor, &mut unconfirmed).await {
                    tracing::warn!(error = %e, "following Kaspa failed; retrying");
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        shared
    }

    async fn step(
        &self,
        node: &Node,
        cursor: &mut Option<[u8; 32]>,
        unconfirmed: &mut Vec<wisp_l1::ChainBlock>,
    ) -> Result<()> {
        let head = node.chain().head()?;
        let from = match *cursor {
            Some(from) => from,
            None => {
                let start = if head.l1_block == Hash32::ZERO {
                    node.l1.genesis_hash().await?
                } else {
                    head.l1_block.0
                };
                let mut followed = self.lock();
                followed.start = Some(L1Ref {
                    block_hash: Hash32(start),
                    daa_score: head.l1_daa_score,
                    timestamp_ms: head.timestamp_ms,
                });
                *cursor = Some(start);
                start
            }
        };
        {
            // Forget what the chain has executed past (its head's own Kaspa block stays: the
            // next block's range starts after it).
            let mut followed = self.lock();
            while followed
                .blocks
                .front()
                .is_some_and(|(l1, _)| l1.daa_score < head.l1_daa_score)
            {
                followed.blocks.pop_front();
            }
            if followed.blocks.len() >= MAX_FOLLOWED_L1_BLOCKS {
                return Ok(());
            }
        }
        let update = node
            .l1
            .virtual_chain_since(from, &node.lane, Some(&node.deposit_script))
            .await?;
        for removed in &update.removed {
            // Not yet confirmed blocks may leave the selected chain; confirmed ones do not.
            unconfirmed.retain(|b| b.hash != *removed);
        }
        if let Some(last) = update.added.last() {
            *cursor = Some(last.hash);
            node.metrics
                .l1_seen_daa
                .fetch_max(last.daa_score, std::sync::atomic::Ordering::Relaxed);
        }
        unconfirmed.extend(update.added);
        let depth = node.chain().params()?.l1_confirmations;
        let now_confirmed = lane::confirmed(unconfirmed, depth).len();
        let confirmed: Vec<wisp_l1::ChainBlock> = unconfirmed
            .drain(..now_confirmed.min(MAX_L1_BLOCKS_PER_PASS as usize))
            .collect();
        let mut followed = self.lock();
        for block in confirmed {
            let requests = block
                .lane_txs
                .iter()
                .flat_map(|tx| node.lane_requests(tx))
                .collect();
            followed.blocks.push_back((
                L1Ref {
                    block_hash: Hash32(block.hash),
                    daa_score: block.daa_score,
                    timestamp_ms: block.timestamp_ms,
                },
                requests,
            ));
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Followed> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether `l1` is the Kaspa block following started from. The start is read from the chain's
/// head, whose timestamp is the Wisp block's (it may be later than the Kaspa block's), so the
/// start is matched by block and DAA score.
fn same_start(start: &L1Ref, l1: &L1Ref) -> bool {
    start.block_hash == l1.block_hash && start.daa_score == l1.daa_score
}

impl wisp_consensus::L1View for L1Follower {
    fn latest(&self) -> Option<L1Ref> {
        let followed = self.lock();
        followed.blocks.back().map(|(l1, _)| *l1).or(followed.start)
    }

    fn knows(&self, l1: &L1Ref) -> bool {
        let followed = self.lock();
        followed.start.as_ref().is_some_and(|s| same_start(s, l1))
            || followed.blocks.iter().any(|(b, _)| b == l1)
    }

    fn on_ledger(&self, after: Option<&L1Ref>, upto: &L1Ref) -> Vec<OnLedgerRequest> {
        let followed = self.lock();
        let from = match after {
            None => 0,
            Some(after)
                if followed
                    .start
                    .as_ref()
                    .is_some_and(|s| same_start(s, after)) =>
            {
                0
            }
            Some(after) => match followed.blocks.iter().position(|(b, _)| b == after) {
                Some(i) => i + 1,
                None => {
                    tracing::error!(after = %after.block_hash, "a Kaspa block this member no longer holds");
                    return Vec::new();
                }
            },
        };
        let mut requests = Vec::new();
        for (l1, accepted) in followed.blocks.iter().skip(from) {
            requests.extend(accepted.iter().cloned());
            if l1 == upto {
                return requests;
            }
        }
        // `upto` is not after `after`: an empty range.
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wisp_consensus::L1View;

    fn member_dir(port: u16) -> (tempfile::TempDir, MemberCard) {
        let dir = tempfile::tempdir().unwrap();
        let card = init(dir.path(), format!("127.0.0.1:{port}").parse().unwrap()).unwrap();
        (dir, card)
    }

    /// Cards parse only as KEY@HOST:PORT with a real key; a committee is refused when it is too
    /// small, names a key or an address twice, or leaves out the member writing it; the member
    /// key is kept across `init`s; joining the same committee again is a no-op.
    #[test]
    fn cards_and_committees_are_checked() {
        let (a, card_a) = member_dir(9001);
        let (_b, card_b) = member_dir(9002);
        let (_c, card_c) = member_dir(9003);
        assert_eq!(MemberCard::parse(&card_a.word()).unwrap(), card_a);
        for bad in [
            "no-at-sign",
            "zz@127.0.0.1:1",
            &format!("{}@nowhere", card_a.key),
            &format!("{}@127.0.0.1:1", &card_a.key[..62]),
        ] {
            assert!(MemberCard::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            init(a.path(), card_a.address).unwrap(),
            card_a,
            "the key is kept"
        );
        let e = join(a.path(), vec![card_a.clone()]).unwrap_err();
        assert!(e.to_string().contains("2 to"), "{e}");
        let e = join(a.path(), vec![card_a.clone(), card_a.clone()]).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let mut same_address = card_b.clone();
        same_address.address = card_a.address;
        let e = join(a.path(), vec![card_a.clone(), same_address]).unwrap_err();
        assert!(e.to_string().contains("address"), "{e}");
        let e = join(a.path(), vec![card_b.clone(), card_c.clone()]).unwrap_err();
        assert!(e.to_string().contains("not among the members"), "{e}");
        let joined = join(
            a.path(),
            vec![card_c.clone(), card_a.clone(), card_b.clone()],
        )
        .unwrap();
        let mut keys: Vec<&String> = joined.members.iter().map(|m| &m.key).collect();
        keys.sort();
        assert_eq!(
            joined.members.iter().map(|m| &m.key).collect::<Vec<_>>(),
            keys,
            "ordered by key on every member"
        );
        assert_eq!(
            join(
                a.path(),
                vec![card_a.clone(), card_b.clone(), card_c.clone()]
            )
            .unwrap(),
            joined
        );
        let status = status(a.path()).unwrap();
        assert!(!status.keys_ready);
        assert!(
            status.next.contains("wisp committee dkg"),
            "{}",
            status.next
        );
        // Without keys there is no certificate signer to run with.
        let e = certificate_scheme(a.path(), &joined).unwrap_err();
        assert!(e.to_string().contains("wisp committee dkg"), "{e}");
    }

    fn l1(n: u8, daa: u64) -> L1Ref {
        L1Ref {
            block_hash: Hash32([n; 32]),
            daa_score: daa,
            timestamp_ms: 1000 * daa,
        }
    }

    fn deposit(n: u8) -> OnLedgerRequest {
        OnLedgerRequest {
            l1_tx_id: Hash32([n; 32]),
            index: 0,
            sender: wisp_core::AgentId::Address([n; 32]),
            deposit_sompi: u64::from(n),
            body: wisp_chain::OnLedgerBody::DepositOnly,
        }
    }

    /// The follower answers for the Kaspa blocks it holds: the on-ledger requests after one
    /// block up to another, from where following started (matched without its timestamp,
    /// which the chain's head does not keep), and nothing it does not know.
    #[test]
    fn the_follower_gives_each_range_its_on_ledger_requests() {
        let start = L1Ref {
            timestamp_ms: 7,
            ..l1(1, 10)
        };
        let follower = L1Follower(Arc::new(Mutex::new(Followed {
            start: Some(start),
            blocks: [
                (l1(2, 11), vec![deposit(2)]),
                (l1(3, 12), vec![]),
                (l1(4, 13), vec![deposit(4), deposit(5)]),
            ]
            .into_iter()
            .collect(),
        })));
        assert_eq!(follower.latest(), Some(l1(4, 13)));
        assert!(
            follower.knows(&l1(1, 10)),
            "the start, whatever its timestamp"
        );
        assert!(follower.knows(&l1(3, 12)));
        assert!(!follower.knows(&l1(9, 12)));
        assert!(!follower.knows(&L1Ref {
            timestamp_ms: 1,
            ..l1(3, 12)
        }));
        let ids = |r: Vec<OnLedgerRequest>| r.iter().map(|d| d.l1_tx_id.0[0]).collect::<Vec<_>>();
        assert_eq!(ids(follower.on_ledger(None, &l1(4, 13))), vec![2, 4, 5]);
        assert_eq!(
            ids(follower.on_ledger(Some(&l1(1, 10)), &l1(3, 12))),
            vec![2]
        );
        assert_eq!(
            ids(follower.on_ledger(Some(&l1(2, 11)), &l1(4, 13))),
            vec![4, 5]
        );
        assert_eq!(
            ids(follower.on_ledger(Some(&l1(3, 12)), &l1(3, 12))),
            Vec::<u8>::new()
        );
        assert!(follower.on_ledger(Some(&l1(9, 99)), &l1(4, 13)).is_empty());
    }
}
