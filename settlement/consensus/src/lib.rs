//! Committee consensus for Wisp chains.
//!
//! A committee chain runs on N members. commonware's simplex consensus (`commonware-consensus`,
//! pinned) orders the chain's blocks among them: in each view a leader proposes a [`Block`]
//! (the off-ledger requests it orders, on top of a parent block), the members vote on the
//! block's digest, and a finalization certificate makes it, and every ancestor, final. Each
//! member then executes the finalized blocks in height order into its own
//! [`wisp_chain::Chain`]; execution is deterministic, so every member reaches the same state
//! root at every height.
//!
//! This crate is the application side of simplex ([`Member`]): it builds proposals from the
//! member's mempool (which members gossip to each other), relays whole blocks to the other
//! members over an authenticated p2p channel (consensus itself carries only digests), checks a
//! proposal before the member votes for it, and executes what is finalized. [`dkg`] makes the
//! committee's certificate key. Simplex, its votes, certificates, journal and timers
//! are commonware's; the network is any `commonware_p2p` sender and receiver (the tests use its
//! simulated network on the deterministic runtime).
//!
//! What a member checks before voting for a proposal: it names the parent simplex gives, its
//! height is the parent's plus one and its view the proposal's, it holds at most
//! [`MAX_BLOCK_REQUESTS`] requests of this chain, each correctly signed, and its encoding is at
//! most [`MAX_BLOCK_BYTES`]; and its [`Attestation`] — the Wisp header (state root, receipts
//! root) the proposer reached at an earlier height — is the header the member reached there
//! itself. A block's requests execute once it is final, so a block cannot attest its own
//! state; it attests the newest its proposer has executed, and a member that has not executed
//! that far yet waits before it answers. A member whose execution diverges therefore cannot
//! get its state into the chain, and every finalization certifies, through the block digest,
//! the state of an earlier block.

pub mod dkg;
pub mod era;
pub mod follow;
pub mod seed;

use borsh::{BorshDeserialize, BorshSerialize};
use commonware_actor::Feedback;
use commonware_consensus::simplex::types::{Activity, Context};
use commonware_consensus::simplex::Plan;
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::sha256::Sha256;
use commonware_cryptography::Hasher;
use commonware_p2p::Recipients;
use commonware_runtime::{Handle, Spawner};
use commonware_utils::channel::{mpsc, oneshot};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use wisp_chain::{BlockInputs, Chain, L1Ref, VerifiedRequest};
use wisp_core::{AgentId, BlockHeader, ChainId, OffLedgerRequest, RequestId};

pub use era::Era;
pub use seed::{SeedScheme, SeedVerifier, ViewSeed};

/// The digest simplex agrees on: SHA-256 of a block's encoding ([`Block::digest`]).
pub use commonware_cryptography::sha256::Digest;

/// A member's identity on the network and in the committee: an ed25519 public key.
pub type PublicKey = commonware_cryptography::ed25519::PublicKey;

/// Most off-ledger requests in one block (the chain's own per-block cap).
pub const MAX_BLOCK_REQUESTS: usize = wisp_chain::MAX_BLOCK_REQUESTS;

/// Most bytes of one encoded block; a member drops a larger message unread, and a proposer
/// fills a block only up to it. 2000 requests of up to 1 KiB of arguments each fit.
pub const MAX_BLOCK_BYTES: usize = 4 << 20;

/// Most blocks a member holds that are not yet final. A block beyond it is dropped: simplex
/// finalizes within a few views, so only a misbehaving member sends more.
pub const MAX_PENDING_BLOCKS: usize = 1024;

/// Finalized blocks a member keeps to answer others' [`Wire::Want`] (by height, the newest).
pub const SERVED_BLOCKS: u64 = 256;

/// Most messages from the network waiting for a member; while it is full, the member reads
/// no more from its channel (whose own buffer then drops arrivals).
pub const NETWORK_QUEUE: usize = 1024;

/// Kaspa DAA scores after which a leader proposes a block even with nothing else to carry,
/// so the chain's clock (time locks, `env` time) follows Kaspa's while the chain is idle:
/// 600 is about a minute at 10 blocks per second. Otherwise an idle leader proposes nothing
/// and its view times out.
pub const IDLE_L1_DAA: u64 = 600;

/// How often a member looks again at what waits for its view of Kaspa (proposals it has not
/// answered, finalized blocks it has not executed, a view it leads with nothing to propose)
/// when no message wakes it.
pub const RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Most off-ledger requests a member's mempool holds; further submissions are refused.
pub const MAX_MEMPOOL: usize = 100_000;

const BLOCK_DOMAIN: &[u8] = b"wisp-consensus-block-v1";
const GENESIS_DOMAIN: &[u8] = b"wisp-consensus-genesis-v1";

/// What went wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum ConsensusError {
    /// A block from the network did not decode or broke a size limit.
    #[error("malformed block: {0}")]
    Malformed(String),
    /// The member's mempool is full; submit again later.
    #[error("the mempool holds {MAX_MEMPOOL} requests already")]
    MempoolFull,
    /// The member's committee is handing the chain over to the next committee after this
    /// committee height, and its remaining blocks cannot carry more than its mempool holds
    /// (or it has made its last block): requests go to the next committee's nodes.
    #[error("this committee hands the chain over to the next committee after its block {0}: send requests to the next committee's nodes")]
    HandedOver(u64),
    /// The member stopped (its task ended).
    #[error("the member has stopped")]
    Stopped,
    /// The member's chain could not be read.
    #[error("the chain: {0}")]
    Chain(String),
    /// The chain refuses the request as it stands (its chain, gas budget, nonce window or the
    /// sender's funds): the chain's own error (its code and message) says which.
    #[error("the request is refused: {}", .0.message)]
    Refused(wisp_core::ReceiptError),
    /// What a follower was given is not the committee's (a certificate, a seed, or blocks
    /// that do not link to the certified one); what it ran, if anything, is what came before
    /// (`follow::Follower::apply` says which).
    #[error("not the committee's: {0}")]
    Forged(String),
    /// A block attests a state at this height that this node did not reach: its execution
    /// differs from the committee's, and it stops following.
    #[error("this node's state at committee height {0} differs from the committee's")]
    Diverged(u64),
}

/// A proposer's statement of the state it reached: the hash of the Wisp block header
/// (`BlockHeader::hash`, which covers the state and receipts roots) it got executing the
/// committee block at `height`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Attestation {
    /// The committee block height executed.
    pub height: u64,
    /// The hash of the Wisp header that execution produced.
    pub header: [u8; 32],
}

/// A Wisp block as the committee orders it: the requests it runs, on top of its parent.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    /// The parent block's digest ([`genesis`] for the first block).
    pub parent: [u8; 32],
    /// The parent's height plus one (the first block is 1). Equals the Wisp block index the
    /// block executes as, counted from where the committee took over.
    pub height: u64,
    /// The simplex view the block was proposed in: two proposals never share a digest.
    pub view: u64,
    /// Off-ledger requests, in the order they run.
    pub requests: Vec<OffLedgerRequest>,
    /// The newest state the proposer had reached (below `height`; never lower than the
    /// parent's), or `None` while nothing has executed.
    pub attests: Option<Attestation>,
    /// The confirmed Kaspa chain block the block follows: it runs the chain's on-ledger
    /// requests accepted after its parent's Kaspa block up to this one, in L1 order, before
    /// its off-ledger requests. The parent's, or a later one (a higher DAA score).
    pub l1: L1Ref,
    /// The seed of the parent's view (the committee's threshold signature of it), which the
    /// proposer holds from the parent's notarization: how a member that missed that
    /// certificate learns the randomness of the parent's parent ([`seed`]). `None` on the
    /// first block, and on a committee without seeds.
    pub parent_seed: Option<ViewSeed>,
}

/// What a member knows of Kaspa: the confirmed chain blocks its L1 follower has seen, and the
/// chain's on-ledger requests each accepted. Confirmed means deep enough that it is not
/// reorganised away; every honest member's view of the same confirmed blocks is the same, so
/// members agree on what a block's L1 range holds.
pub trait L1View: Send + 'static {
    /// The newest confirmed Kaspa chain block this member has seen, if any.
    fn latest(&self) -> Option<L1Ref>;
    /// Whether `l1` is a confirmed Kaspa chain block this member has seen.
    fn knows(&self, l1: &L1Ref) -> bool;
    /// The chain's on-ledger requests accepted by the chain blocks after `after` (from the
    /// start with `None`) up to and including `upto`, in L1 order. Called only when
    /// [`L1View::knows`] `upto`.
    fn on_ledger(&self, after: Option<&L1Ref>, upto: &L1Ref) -> Vec<wisp_chain::OnLedgerRequest>;
}

/// A view of Kaspa that never moves: every block refers to one Kaspa block and carries no
/// on-ledger requests (a chain whose committee does not follow Kaspa yet, and tests).
pub struct FixedL1(pub L1Ref);

impl L1View for FixedL1 {
    fn latest(&self) -> Option<L1Ref> {
        Some(self.0)
    }
    fn knows(&self, l1: &L1Ref) -> bool {
        *l1 == self.0
    }
    fn on_ledger(&self, _: Option<&L1Ref>, _: &L1Ref) -> Vec<wisp_chain::OnLedgerRequest> {
        Vec::new()
    }
}

impl Block {
    /// The digest simplex votes on: SHA-256 of a domain tag and the block's borsh encoding.
    pub fn digest(&self) -> Digest {
        Sha256::hash(&[BLOCK_DOMAIN, &borsh::to_vec(self).unwrap_or_default()])
    }

    /// The block's wire form (borsh).
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// Decodes a block from the network, refusing more than [`MAX_BLOCK_BYTES`] bytes or
    /// [`MAX_BLOCK_REQUESTS`] requests before allocating for them.
    ///
    /// # Errors
    /// [`ConsensusError::Malformed`] naming what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<Block, ConsensusError> {
        if bytes.len() > MAX_BLOCK_BYTES {
            return Err(ConsensusError::Malformed(format!(
                "{} bytes, over the {MAX_BLOCK_BYTES}-byte limit",
                bytes.len()
            )));
        }
        // parent (32) + height (8) + view (8), then the request count.
        let count = bytes
            .get(48..52)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(|| ConsensusError::Malformed("truncated header".into()))?;
        if count as usize > MAX_BLOCK_REQUESTS {
            return Err(ConsensusError::Malformed(format!(
                "{count} requests, over the {MAX_BLOCK_REQUESTS}-request limit"
            )));
        }
        borsh::from_slice(bytes).map_err(|e| ConsensusError::Malformed(e.to_string()))
    }
}

/// What members send each other on the blocks channel.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Wire {
    /// A whole block: a proposal as it goes out, or an answer to [`Wire::Want`].
    Block(Block),
    /// A request for the block with this digest: a member that saw it finalized lacks it
    /// (its proposal was lost on the way).
    Want([u8; 32]),
    /// An off-ledger request a member took into its mempool, for the others' mempools: a
    /// request given to any member reaches whichever member leads next.
    Request(OffLedgerRequest),
}

impl Wire {
    /// The message's wire form (borsh).
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    /// Decodes a message from the network with [`Block::decode`]'s limits.
    ///
    /// # Errors
    /// [`ConsensusError::Malformed`] naming what was wrong.
    pub fn decode(bytes: &[u8]) -> Result<Wire, ConsensusError> {
        match bytes.split_first() {
            Some((0, block)) => Block::decode(block).map(Wire::Block),
            Some((1, digest)) => <[u8; 32]>::try_from(digest)
                .map(Wire::Want)
                .map_err(|_| ConsensusError::Malformed("a want of other than 32 bytes".into())),
            Some((2, request)) => borsh::from_slice(request)
                .map(Wire::Request)
                .map_err(|e| ConsensusError::Malformed(format!("a request: {e}"))),
            Some((tag, _)) => Err(ConsensusError::Malformed(format!(
                "unknown message tag {tag}"
            ))),
            None => Err(ConsensusError::Malformed("an empty message".into())),
        }
    }
}

/// The digest of the committee's starting point for chain `chain` (simplex's genesis payload):
/// the first block's parent.
pub fn genesis(chain: ChainId) -> Digest {
    Sha256::hash(&[GENESIS_DOMAIN, &chain.0])
}

/// simplex's settings for a committee member: the member's `scheme` (its certificate key
/// share), `blocker` (the p2p layer's, to stop talking to a member caught misbehaving), the
/// member's `mailbox` and `reporter` ([`Member::new`]), the committee's `genesis` digest
/// ([`Member::genesis`]) and `epoch` ([`Member::epoch`]), and `partition`, where simplex keeps its journal in the runtime's
/// storage (a restarted member must find it there: it records the member's votes, so the
/// member never votes twice in a view).
///
/// Timing: a leader has 1 s to propose and a notarized block 2 s to be certified before the
/// members vote to skip the view (no earlier skips: an idle leader proposes nothing on
/// purpose); missing certificates are fetched after 1 s.
#[allow(clippy::type_complexity)]
pub fn engine_config<S, B>(
    scheme: S,
    blocker: B,
    mailbox: Mailbox,
    reporter: Finalizations<S>,
    genesis: Digest,
    epoch: u64,
    partition: String,
) -> commonware_consensus::simplex::Config<
    S,
    commonware_consensus::simplex::elector::RoundRobin<Sha256>,
    B,
    Digest,
    Mailbox,
    Mailbox,
    Finalizations<S>,
    commonware_parallel::Sequential,
>
where
    S: SeedScheme<PublicKey = PublicKey>,
    B: commonware_p2p::Blocker<PublicKey = PublicKey>,
{
    use commonware_consensus::simplex::{Floor, ForwardPolicy, SkipPolicy};
    use commonware_consensus::types::{Epoch, ViewDelta};
    use commonware_utils::{NZDuration, NZUsize, NZU16};
    use std::time::Duration;
    commonware_consensus::simplex::Config {
        scheme,
        elector: commonware_consensus::simplex::elector::RoundRobin::<Sha256>::default(),
        blocker,
        automaton: mailbox.clone(),
        relay: mailbox,
        reporter,
        strategy: commonware_parallel::Sequential,
        partition,
        mailbox_size: NZUsize!(1024),
        epoch: Epoch::new(epoch),
        floor: Floor::Genesis(genesis),
        leader_timeout: Duration::from_secs(1),
        certification_timeout: Duration::from_secs(2),
        timeout_retry: Duration::from_secs(5),
        fetch_timeout: NZDuration!(Duration::from_secs(1)),
        fetch_retry_delay: Duration::from_millis(100),
        view_retention: ViewDelta::new(10),
        // No early skips of a leader that has not proposed lately: an idle leader proposes
        // nothing on purpose (see `IDLE_L1_DAA`), and skipping its views would keep it from
        // proposing the request that ends the idle spell (measured: finality went from about
        // 0.1 s to 2-4 s after idle spells). A crashed leader's view times out instead.
        skip: SkipPolicy::Disabled,
        replay_buffer: NZUsize!(1024 * 1024),
        write_buffer: NZUsize!(1024 * 1024),
        page_cache: commonware_runtime::buffer::paged::CacheRef::new(NZU16!(1024), NZUsize!(10)),
        forward: ForwardPolicy::Disabled,
        track_historical_votes: false,
    }
}

/// One finalized block as a member executed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// The committee block's height.
    pub height: u64,
    /// Its digest.
    pub digest: Digest,
    /// The Wisp block header it produced (state root, receipts root, ...).
    pub header: BlockHeader,
    /// What the block attested of an earlier height.
    pub attests: Option<Attestation>,
    /// The requests that got a receipt.
    pub receipts: Vec<RequestId>,
    /// The randomness the block's requests drew from (`None` for a block that ran none, or
    /// on a committee without seeds).
    pub randomness: Option<wisp_core::Hash32>,
}

/// What a member has executed so far, shared with whoever watches it (the node, tests).
#[derive(Clone, Default)]
pub struct Progress(Arc<Mutex<Watched>>);

#[derive(Default)]
struct Watched {
    /// The last [`PROGRESS_KEPT`] executed blocks.
    executed: std::collections::VecDeque<Executed>,
    refused: u64,
    certificate_bytes: Option<usize>,
}

impl Progress {
    /// The blocks executed so far (the last [`PROGRESS_KEPT`]), in height order.
    pub fn executed(&self) -> Vec<Executed> {
        self.lock().executed.iter().cloned().collect()
    }

    /// The encoded size, in bytes, of the last finalization certificate simplex reported to
    /// this member (the proposal it finalizes and the committee's threshold signatures): what
    /// a light client or another chain must check to trust a block.
    pub fn certificate_bytes(&self) -> Option<usize> {
        self.lock().certificate_bytes
    }

    /// How many proposals this member voted against (each is logged with the reason). Among
    /// honest members that see the same Kaspa, it stays 0: what one has not seen yet it waits
    /// for instead.
    pub fn refused(&self) -> u64 {
        self.lock().refused
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watched> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Most executed blocks [`Progress::executed`] keeps (the newest): a member runs for as long as
/// its node does, so what it reports is bounded.
pub const PROGRESS_KEPT: usize = 10_000;

/// The chain metadata record (`StateDb::meta`) where a member keeps the committee block it
/// executed last, written with each block: borsh of (digest, height, Kaspa block followed).
pub const TIP_META: &str = "wisp-consensus/tip";

/// Told of each block a member executes, once committed ([`Config::on_executed`]).
pub type OnExecuted = Box<dyn FnMut(&wisp_chain::BlockOutput) + Send>;

/// What a member needs to start.
pub struct Config {
    /// The member's copy of the chain: at the state the committee starts from, or, after a
    /// restart, where the member left it (the last executed committee block is read from
    /// [`TIP_META`]).
    pub chain: Arc<Chain>,
    /// What the member knows of Kaspa (its L1 follower).
    pub l1: Box<dyn L1View>,
    /// Called with each block the member executes, once committed (a node publishes it to
    /// its RPC subscribers and metrics). `None`: nobody is told.
    pub on_executed: Option<OnExecuted>,
    /// Asked when this member leads a view with nothing else worth a block: `true` makes it
    /// propose one anyway (a node whose anchor waits for a newer block to pay withdrawals).
    /// `None`: never.
    pub wants_block: Option<WantsBlock>,
    /// The committee key's seed verifier: with it, blocks carry seeds and contracts draw
    /// randomness (`wisp::random`) from them ([`seed`]); every member of a committee must be
    /// configured alike. `None`: no randomness (a committee without threshold seeds).
    pub seeds: Option<SeedVerifier>,
    /// Which committee this member belongs to and where its blocks start ([`era`]). `None`:
    /// the chain's first committee ([`Era::first`]).
    pub era: Option<Era>,
}

/// See [`Config::wants_block`].
pub type WantsBlock = Box<dyn Fn() -> bool + Send>;

impl Config {
    /// A member of `chain` following Kaspa through `l1`, telling nobody what it executes.
    pub fn new(chain: Arc<Chain>, l1: Box<dyn L1View>) -> Config {
        Config {
            chain,
            l1,
            on_executed: None,
            wants_block: None,
            seeds: None,
            era: None,
        }
    }
}

enum Message {
    Propose {
        context: Context<Digest, PublicKey>,
        response: oneshot::Sender<Digest>,
    },
    Verify {
        context: Context<Digest, PublicKey>,
        payload: Digest,
        response: oneshot::Sender<bool>,
    },
    Broadcast {
        payload: Digest,
        to: Recipients<PublicKey>,
    },
    Finalized {
        payload: Digest,
        /// The simplex view it finalizes: later finalized blocks have higher views.
        view: u64,
        /// The finalization, encoded (commonware's codec).
        certificate: Vec<u8>,
        seed: Option<ViewSeed>,
    },
    /// A notarization's seed.
    Seed(ViewSeed),
    /// How many of a sender's requests from a nonce on the mempool holds.
    Pending {
        sender: AgentId,
        from: u64,
        response: oneshot::Sender<u64>,
    },
    Submit {
        request: Box<VerifiedRequest>,
        response: oneshot::Sender<Result<bool, ConsensusError>>,
    },
}

/// A member's handle: simplex's automaton, relay and reporter, and where requests are
/// submitted. Cheap to clone; every clone talks to the same member.
#[derive(Clone)]
pub struct Mailbox {
    sender: mpsc::UnboundedSender<Message>,
}

impl Mailbox {
    fn send(&self, message: Message) -> bool {
        self.sender.send(message).is_ok()
    }

    /// How many requests of `sender` with a nonce of `from` or more the member's mempool
    /// holds (what `wisp_getNonce` reports as pending).
    ///
    /// # Errors
    /// [`ConsensusError::Stopped`] if the member has stopped.
    pub async fn pending_from(&self, sender: AgentId, from: u64) -> Result<u64, ConsensusError> {
        let (response, answer) = oneshot::channel();
        if !self.send(Message::Pending {
            sender,
            from,
            response,
        }) {
            return Err(ConsensusError::Stopped);
        }
        answer.await.map_err(|_| ConsensusError::Stopped)
    }

    /// Adds a signed, verified request to the member's mempool and sends it to the other
    /// members' mempools; whichever member leads a view proposes it, and each forgets it once
    /// a finalized block ran it. The member writes it to its chain's store before answering,
    /// so a member that crashes still holds it when it restarts. Returns `false` if the member
    /// already held it (the same sender and nonce) or its sender's nonce on the chain has
    /// passed it.
    ///
    /// # Errors
    /// [`ConsensusError::Refused`] if the chain would not admit it (`Chain::admit`: chain, gas
    /// budget, nonce window, funds), [`ConsensusError::MempoolFull`],
    /// [`ConsensusError::Chain`] if the chain cannot be read, or [`ConsensusError::Stopped`].
    pub async fn submit(&self, request: VerifiedRequest) -> Result<bool, ConsensusError> {
        let (response, answer) = oneshot::channel();
        if !self.send(Message::Submit {
            request: Box::new(request),
            response,
        }) {
            return Err(ConsensusError::Stopped);
        }
        answer.await.map_err(|_| ConsensusError::Stopped)?
    }
}

impl Automaton for Mailbox {
    type Context = Context<Digest, PublicKey>;
    type Digest = Digest;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (response, receiver) = oneshot::channel();
        // A stopped member drops the sender: consensus then sees no proposal.
        self.send(Message::Propose { context, response });
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (response, receiver) = oneshot::channel();
        self.send(Message::Verify {
            context,
            payload,
            response,
        });
        receiver
    }
}

// Certification is simplex's default (a notarized block is certified): a member has checked
// the block before its notarize vote.
impl CertifiableAutomaton for Mailbox {}

impl Relay for Mailbox {
    type Digest = Digest;
    type PublicKey = PublicKey;
    type Plan = Plan<PublicKey>;

    fn broadcast(&mut self, payload: Digest, plan: Plan<PublicKey>) -> Feedback {
        let to = match plan {
            Plan::Propose { .. } => Recipients::All,
            Plan::Forward { recipients, .. } => recipients,
            // Members never stage a term-start candidate (simplex's default handoff waits).
            Plan::Prepare { .. } => return Feedback::Ok,
        };
        match self.send(Message::Broadcast { payload, to }) {
            true => Feedback::Ok,
            false => Feedback::Closed,
        }
    }
}

/// Simplex reports its activity here; a member acts on finalizations.
#[derive(Clone)]
pub struct Finalizations<S: SeedScheme> {
    mailbox: Mailbox,
    _scheme: std::marker::PhantomData<fn() -> S>,
}

impl<S: SeedScheme> Reporter for Finalizations<S> {
    type Activity = Activity<S, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        let message = match activity {
            Activity::Finalization(finalization) => Message::Finalized {
                payload: finalization.proposal.payload,
                view: finalization.proposal.round.view().get(),
                certificate: commonware_codec::Encode::encode(&finalization).to_vec(),
                seed: S::finalization_seed(&finalization),
            },
            Activity::Notarization(notarization) => match S::notarization_seed(&notarization) {
                Some(seed) => Message::Seed(seed),
                None => return Feedback::Ok,
            },
            _ => return Feedback::Ok,
        };
        match self.mailbox.send(message) {
            true => Feedback::Ok,
            false => Feedback::Closed,
        }
    }
}

/// What a leader's member makes of its view.
enum Proposal {
    /// This block.
    Block(Digest),
    /// Nothing worth a block yet: the view stays parked until a request arrives, or times out.
    Idle,
    /// The parent has not arrived (or nothing is known of Kaspa): parked until it has.
    Unknown,
}

#[cfg(test)]
impl Proposal {
    fn block(self) -> Option<Digest> {
        match self {
            Proposal::Block(digest) => Some(digest),
            _ => None,
        }
    }
}

/// A member's answer about a proposal.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Valid,
    Invalid(String),
    /// It attests a state this member has not reached yet: answered once it has.
    Wait,
}

/// What wakes a member: its own mailbox or the network.
enum Input {
    Local(Message),
    Network((PublicKey, Vec<u8>)),
    /// [`RECHECK`] passed without a message.
    Recheck,
}

/// One committee member's application: proposes, relays, checks and executes blocks.
pub struct Member {
    chain: Arc<Chain>,
    l1: Box<dyn L1View>,
    on_executed: Option<OnExecuted>,
    wants_block: Option<WantsBlock>,
    /// simplex's genesis payload: the chain's committee genesis, or the digest of the
    /// previous committee's last block ([`Era::floor`]).
    genesis: Digest,
    /// The committee height of `genesis` ([`Era::floor_height`]).
    floor_height: u64,
    /// This member's committee epoch ([`Era::epoch`]).
    epoch: u64,
    /// The committee height of this committee's last block, once a rotation to the next
    /// epoch is in the state this member executed ([`era::next_handover`]).
    handover: Option<u64>,
    mailbox: mpsc::UnboundedReceiver<Message>,
    /// Messages from the network (bounded, [`NETWORK_QUEUE`]), and the sending end the
    /// member's receiving task takes at [`Member::start`].
    network: mpsc::Receiver<(PublicKey, Vec<u8>)>,
    network_in: Option<mpsc::Sender<(PublicKey, Vec<u8>)>>,
    /// Blocks not yet final, and the last final one, by digest.
    blocks: BTreeMap<Digest, Block>,
    /// The requests of blocks this member proposed or voted for, signatures verified: what
    /// executing them takes, so no signature is verified twice. Pruned with `blocks`.
    verified: BTreeMap<Digest, Vec<VerifiedRequest>>,
    /// Verifications waiting for their block (or its parent) to arrive.
    waiting: Vec<(Context<Digest, PublicKey>, Digest, oneshot::Sender<bool>)>,
    /// The last executed block: digest and height (genesis, 0, at start).
    tip: (Digest, u64),
    /// The Kaspa block the last executed block followed (`None` before the first).
    tip_l1: Option<L1Ref>,
    /// The last [`SERVED_BLOCKS`] executed blocks, by height, with the hash of the header
    /// each produced: served to members that lack them, and checked against attestations.
    served: BTreeMap<u64, (Digest, Block, [u8; 32])>,
    /// The newest finalized digest not yet executed (its blocks have not all arrived).
    finalizing: Option<Digest>,
    /// The view of the newest finalization taken as a target, or of the executed tip's
    /// block (0 before any): finalizations of views up to it are old news.
    finalized_view: u64,
    /// The first block `finalizing` needs that has not arrived: asked for when it becomes the
    /// one missing, and again at every verification simplex requests and after every
    /// [`RECHECK`] without a message, so a lost request or answer cannot stall the member.
    missing: Option<Digest>,
    /// Requests to propose, by sender and nonce (a sender's requests in nonce order).
    mempool: BTreeMap<(AgentId, u64), VerifiedRequest>,
    /// The newest height this member executed that ran requests: its state is worth a block
    /// that attests it, an empty block's is not.
    last_busy: u64,
    /// The view this member leads while it has nothing to propose: answered as soon as a
    /// request arrives, dropped when the next view starts.
    parked: Option<(Context<Digest, PublicKey>, oneshot::Sender<Digest>)>,
    /// Checks seeds against the committee key; `None`: blocks carry no seeds and draw no
    /// randomness.
    seed_verifier: Option<SeedVerifier>,
    /// Seeds of recent views, by view: from this member's certificates, or checked.
    seeds: BTreeMap<u64, ViewSeed>,
    /// A finalized block that runs requests waits for the seed of its finalized child's view
    /// (its height): a block is worth proposing until it has one.
    awaiting_seed: Option<u64>,
    /// The newest finalization (its block's digest, the certificate encoded), written with
    /// its block when that executes.
    certificate: Option<(Digest, Vec<u8>)>,
    progress: Progress,
}

impl Member {
    /// A member for `config.chain`, its handle (automaton, relay, submissions), the reporter to
    /// give simplex, and its progress. A chain a member executed before continues from the
    /// committee block recorded in [`TIP_META`], with the requests its mempool held on disk.
    ///
    /// # Errors
    /// [`ConsensusError::Chain`] if the record or the mempool cannot be read, or the record
    /// does not decode.
    pub fn new<S: SeedScheme>(
        config: Config,
    ) -> Result<(Member, Mailbox, Finalizations<S>, Progress), ConsensusError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mailbox = Mailbox { sender };
        let (network_in, network) = mpsc::channel(NETWORK_QUEUE);
        let era = config.era.unwrap_or_else(|| Era::first(&config.chain));
        let genesis = era.floor;
        let (tip, tip_l1) = read_tip(&config.chain)?;
        // Views are the era's own: the floor block's view was another committee's.
        let finalized_view = match tip.0 == genesis {
            true => 0,
            false => follow::stored_block(&config.chain, tip.1)?.map_or(0, |block| block.view),
        };
        let handover = era::next_handover(&config.chain, era.epoch)?;
        let progress = Progress::default();
        let member = Member {
            chain: config.chain,
            l1: config.l1,
            on_executed: config.on_executed,
            wants_block: config.wants_block,
            genesis,
            floor_height: era.floor_height,
            epoch: era.epoch,
            handover,
            mailbox: receiver,
            network,
            network_in: Some(network_in),
            blocks: BTreeMap::new(),
            verified: BTreeMap::new(),
            waiting: Vec::new(),
            tip,
            tip_l1,
            served: BTreeMap::new(),
            finalizing: None,
            finalized_view,
            missing: None,
            mempool: BTreeMap::new(),
            last_busy: 0,
            parked: None,
            seed_verifier: config.seeds.map(|v| v.in_epoch(era.epoch)),
            seeds: BTreeMap::new(),
            awaiting_seed: None,
            certificate: None,
            progress: progress.clone(),
        };
        let mut member = member;
        member.restore_mempool()?;
        let reporter = Finalizations {
            mailbox: mailbox.clone(),
            _scheme: std::marker::PhantomData,
        };
        Ok((member, mailbox, reporter, progress))
    }

    /// The digest simplex must start from (its genesis payload) for this member's chain.
    pub fn genesis(&self) -> Digest {
        self.genesis
    }

    /// This member's committee epoch: simplex's epoch ([`engine_config`]).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Runs the member on `context`: blocks, requests and wants go out on `sender` and come in
    /// on `receiver` (one p2p channel beside simplex's own).
    pub fn start<E, S, R>(mut self, context: E, sender: S, receiver: R) -> Handle<()>
    where
        E: Spawner + commonware_runtime::Clock,
        S: commonware_p2p::Sender<PublicKey = PublicKey>,
        R: commonware_p2p::Receiver<PublicKey = PublicKey>,
    {
        let network_in = self.network_in.take();
        context.spawn(move |context| async move {
            // A child of the member's task: stopping the member stops it too.
            if let Some(network_in) = network_in {
                context.child("network").spawn(move |_| async move {
                    let mut receiver = receiver;
                    while let Ok((from, bytes)) = receiver.recv().await {
                        if network_in
                            .send((from, bytes.as_ref().to_vec()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
            }
            self.run(context, sender).await
        })
    }

    async fn run<E, S>(mut self, context: E, mut sender: S)
    where
        E: commonware_runtime::Clock,
        S: commonware_p2p::Sender<PublicKey = PublicKey>,
    {
        loop {
            let input = commonware_macros::select! {
                message = self.mailbox.recv() => message.map(Input::Local),
                wire = self.network.recv() => wire.map(Input::Network),
                _ = context.sleep(RECHECK) => Some(Input::Recheck),
            };
            let message = match input {
                // Every handle dropped, or the network gone: the member stops.
                None => break,
                Some(Input::Recheck) => {
                    // What waits for this member's view of Kaspa (a proposal to verify, a
                    // finalized block to execute) is looked at again: the follower moves on
                    // without telling the member.
                    if !self.waiting.is_empty() {
                        self.settle_waiting();
                    }
                    if self.finalizing.is_some() {
                        self.execute_finalized(&mut sender);
                        // A request or its answer may have been lost.
                        if let Some(missing) = self.missing {
                            sender.send(Recipients::All, Wire::Want(missing.0).encode(), false);
                        }
                    }
                    self.propose_parked();
                    continue;
                }
                Some(Input::Network((from, bytes))) => {
                    self.on_network(from, &bytes, &mut sender);
                    self.propose_parked();
                    continue;
                }
                Some(Input::Local(message)) => message,
            };
            match message {
                Message::Propose { context, response } => {
                    self.parked = None;
                    match self.propose(&context) {
                        Proposal::Block(digest) => {
                            let _ = response.send(digest);
                        }
                        // Parked: proposed as soon as there is something to propose, or
                        // the parent arrives; simplex moves on if the view times out first.
                        waits @ (Proposal::Idle | Proposal::Unknown) => {
                            tracing::debug!(
                                view = context.round.view().get(),
                                idle = matches!(waits, Proposal::Idle),
                                mempool = self.mempool.len(),
                                "nothing to propose yet: the view waits"
                            );
                            self.parked = Some((context, response))
                        }
                    }
                }
                Message::Verify {
                    context,
                    payload,
                    response,
                } => {
                    self.waiting.push((context, payload, response));
                    self.settle_waiting();
                    // A finalized block may wait for this member's view of Kaspa.
                    self.execute_finalized(&mut sender);
                    if let Some(missing) = self.missing {
                        sender.send(Recipients::All, Wire::Want(missing.0).encode(), false);
                    }
                }
                Message::Broadcast { payload, to } => {
                    if let Some(block) = self.blocks.get(&payload) {
                        sender.send(to, Wire::Block(block.clone()).encode(), false);
                    }
                }
                Message::Pending {
                    sender,
                    from,
                    response,
                } => {
                    let _ = response.send(self.held_from(&sender, from));
                }
                Message::Seed(seed) => {
                    self.keep_seed(seed);
                    self.execute_finalized(&mut sender);
                    self.propose_parked();
                }
                Message::Finalized {
                    payload,
                    view,
                    certificate,
                    seed,
                } => {
                    if let Some(seed) = seed {
                        self.keep_seed(seed);
                    }
                    self.progress.lock().certificate_bytes = Some(certificate.len());
                    // Only a finalization of a later view than any before is a new target:
                    // simplex replays its journal at a restart and fetches certificates of
                    // views this member missed, and a block it executed long ago, taken as
                    // the target, would be asked for forever (defect seen on restarts: the
                    // member never caught up).
                    let newer = view > self.finalized_view;
                    if newer {
                        self.finalized_view = view;
                    }
                    if payload != self.tip.0 && newer {
                        self.finalizing = Some(payload);
                        // Written with its block, for access nodes to check what they follow.
                        self.certificate = Some((payload, certificate));
                    }
                    self.execute_finalized(&mut sender);
                    self.propose_parked();
                }
                Message::Submit { request, response } => {
                    let gossip = request.request().clone();
                    let result = self.submit(*request, true);
                    if matches!(result, Ok(true)) {
                        sender.send(Recipients::All, Wire::Request(gossip).encode(), false);
                    }
                    let _ = response.send(result);
                    self.propose_parked();
                }
            }
        }
    }

    /// Handles one message from another member.
    fn on_network<S: commonware_p2p::Sender<PublicKey = PublicKey>>(
        &mut self,
        from: PublicKey,
        bytes: &[u8],
        sender: &mut S,
    ) {
        match Wire::decode(bytes) {
            Ok(Wire::Block(block)) => {
                self.insert(block);
                self.settle_waiting();
                self.execute_finalized(sender);
            }
            Ok(Wire::Want(digest)) => {
                let digest = Digest(digest);
                let block = self.blocks.get(&digest).or_else(|| {
                    self.served
                        .values()
                        .find(|(d, ..)| *d == digest)
                        .map(|(_, b, _)| b)
                });
                if let Some(block) = block {
                    let block = Wire::Block(block.clone()).encode();
                    sender.send(Recipients::One(from), block, false);
                }
            }
            Ok(Wire::Request(request)) => {
                // Checked as a submission is; taken, never passed on (its first holder sent
                // it to every member).
                if request.body.chain == self.chain.chain_id() {
                    if let Ok(verified) = wisp_chain::verify_signature(request) {
                        // Not written to disk here: the member that took it from its sender
                        // has it there (one write per request, not one per member).
                        let _ = self.submit(verified, false);
                    }
                }
            }
            Err(e) => tracing::debug!(error = %e, "dropped a message from the network"),
        }
    }

    /// Adds `request` to the mempool unless it holds one with the same sender and nonce
    /// already or the sender's nonce on the chain has passed it. Returns whether it was added.
    /// A new request is admitted as a single node admits one (`Chain::admit`): this chain, a
    /// valid gas budget, a nonce within the window, and funds for it on top of what the
    /// sender's requests already held may spend, so no one fills blocks with requests nobody
    /// pays for.
    fn submit(&mut self, request: VerifiedRequest, durable: bool) -> Result<bool, ConsensusError> {
        if let Some(handover) = self.handover {
            // Only what the committee's remaining blocks can still run (its last block runs
            // nothing): a request taken here is executed, not left behind at the handover.
            let room = handover
                .saturating_sub(self.tip.1 + 1)
                .saturating_mul(MAX_BLOCK_REQUESTS as u64);
            if self.mempool.len() as u64 >= room {
                return Err(ConsensusError::HandedOver(handover));
            }
        }
        let sender = request.request().sender();
        let key = (sender, request.request().nonce);
        if self.mempool.contains_key(&key) {
            return Ok(false);
        }
        if self.mempool.len() >= MAX_MEMPOOL {
            return Err(ConsensusError::MempoolFull);
        }
        let next = self
            .chain
            .nonce(&sender)
            .map_err(|e| ConsensusError::Chain(e.to_string()))?;
        if key.1 < next {
            return Ok(false);
        }
        let params = self
            .chain
            .params()
            .map_err(|e| ConsensusError::Chain(e.to_string()))?;
        let mut queued = wisp_chain::admission::Queued::default();
        for held in self
            .mempool
            .range((sender, 0)..=(sender, u64::MAX))
            .map(|(_, r)| r)
        {
            queued.count += 1;
            queued.spend_sompi =
                queued
                    .spend_sompi
                    .saturating_add(wisp_chain::admission::max_spend(
                        &params,
                        &held.request().body,
                    ));
        }
        self.chain
            .admit(&request, queued)
            .map_err(ConsensusError::Refused)?;
        // `durable` (taken from its sender): on disk before it is acknowledged or gossiped on,
        // so a member that crashes keeps what it acknowledged. The block that runs it removes
        // it in the same commit. Gossiped requests are not written: one write per request, by
        // the member its sender trusted, not one per member.
        if durable {
            let bytes = borsh::to_vec(request.request())
                .map_err(|e| ConsensusError::Chain(e.to_string()))?;
            self.chain
                .db()
                .put_pending(&request.id().0, &bytes)
                .map_err(|e| ConsensusError::Chain(e.to_string()))?;
        }
        self.mempool.insert(key, request);
        Ok(true)
    }

    /// How many requests of `sender` with a nonce of `from` or more the mempool holds.
    fn held_from(&self, sender: &AgentId, from: u64) -> u64 {
        self.mempool
            .range((*sender, from)..=(*sender, u64::MAX))
            .count() as u64
    }

    /// Takes back the requests this member held on disk when it stopped: each checked again
    /// (signature, and admission against the chain as it is now); those that no longer pass
    /// leave the disk too.
    fn restore_mempool(&mut self) -> Result<(), ConsensusError> {
        let stored = self
            .chain
            .db()
            .pending()
            .map_err(|e| ConsensusError::Chain(e.to_string()))?;
        let mut stale: Vec<Vec<u8>> = Vec::new();
        let mut decoded = Vec::new();
        let mut ids = Vec::new();
        for (id, bytes) in stored {
            match borsh::from_slice::<OffLedgerRequest>(&bytes) {
                Ok(request) if ids.len() < MAX_MEMPOOL => {
                    ids.push(id);
                    decoded.push(request);
                }
                _ => stale.push(id),
            }
        }
        for (id, verified) in ids.into_iter().zip(wisp_chain::verify_signatures(decoded)) {
            let kept = match verified {
                Ok(request) => {
                    let key = (request.request().sender(), request.request().nonce);
                    match self.submit(request, false) {
                        Ok(true) => true,
                        // Held already under its key, or its nonce passed.
                        Ok(false) => self.mempool.contains_key(&key),
                        Err(_) => false,
                    }
                }
                Err(_) => false,
            };
            if !kept {
                stale.push(id);
            }
        }
        let stale: Vec<&[u8]> = stale.iter().map(Vec::as_slice).collect();
        self.chain
            .db()
            .remove_pending(&stale)
            .map_err(|e| ConsensusError::Chain(e.to_string()))
    }

    fn height_of(&self, digest: &Digest) -> Option<u64> {
        if *digest == self.genesis {
            Some(self.floor_height)
        } else if *digest == self.tip.0 {
            Some(self.tip.1)
        } else {
            self.blocks.get(digest).map(|b| b.height)
        }
    }

    /// The Kaspa block the block `digest` (known: see `height_of`) follows; `None` for the
    /// committee's genesis.
    fn l1_of(&self, digest: &Digest) -> Option<L1Ref> {
        if *digest == self.tip.0 {
            self.tip_l1
        } else {
            self.blocks.get(digest).map(|b| b.l1)
        }
    }

    /// Proposes for the parked view if there is now something worth a block (and its parent
    /// has arrived).
    fn propose_parked(&mut self) {
        let Some((context, response)) = self.parked.take() else {
            return;
        };
        if response.is_closed() {
            return; // the view is over
        }
        match self.propose(&context) {
            Proposal::Block(digest) => {
                let _ = response.send(digest);
            }
            Proposal::Idle | Proposal::Unknown => self.parked = Some((context, response)),
        }
    }

    /// Builds the block for `context` from the mempool, leaving out requests an unfinalized
    /// ancestor already holds. [`Proposal::Idle`] if the block would carry nothing worth one
    /// (see [`IDLE_L1_DAA`]); [`Proposal::Unknown`] if the parent has not arrived.
    fn propose(&mut self, context: &Context<Digest, PublicKey>) -> Proposal {
        let parent = context.parent.1;
        let Some(height) = self.height_of(&parent).map(|h| h + 1) else {
            return Proposal::Unknown;
        };
        // This committee's blocks end at its handover; until this member knows whether one
        // is coming, it proposes no further ahead of its state than a rotation's delay.
        let last = match self.handover {
            Some(handover) if height > handover => return Proposal::Idle,
            Some(handover) => height == handover,
            None if height > self.tip.1 + wisp_chain::HANDOVER_DELAY => return Proposal::Unknown,
            None => false,
        };
        let mut included = std::collections::BTreeSet::new();
        let mut at = parent;
        while at != self.tip.0 {
            let Some(block) = self.blocks.get(&at) else {
                break;
            };
            included.extend(block.requests.iter().map(OffLedgerRequest::id));
            at = Digest(block.parent);
        }
        // Within both limits a receiver checks: the request count and the encoded size (with
        // room for the block's own fields).
        let mut bytes = 1024usize;
        let verified: Vec<VerifiedRequest> = self
            .mempool
            .values()
            .filter(|r| !last && !included.contains(&r.id()))
            .take(MAX_BLOCK_REQUESTS)
            .take_while(|r| {
                bytes += borsh::object_length(r.request()).unwrap_or(MAX_BLOCK_BYTES);
                bytes <= MAX_BLOCK_BYTES
            })
            .cloned()
            .collect();
        let requests = verified.iter().map(|r| r.request().clone()).collect();
        // Our newest state, or the parent's attestation if that is newer than what we have
        // executed (a lagging proposer may not go back).
        let own = self
            .served
            .get(&self.tip.1)
            .map(|(_, _, header)| Attestation {
                height: self.tip.1,
                header: *header,
            });
        let inherited = self.blocks.get(&parent).and_then(|p| p.attests);
        let attests = match (own, inherited) {
            (Some(o), Some(i)) if i.height > o.height => Some(i),
            (None, i) => i,
            (o, _) => o,
        };
        // The newest Kaspa block this member has seen, unless the parent follows a later one.
        let parent_l1 = self.l1_of(&parent);
        let l1 = match (self.l1.latest(), parent_l1) {
            // The handover block follows its parent's Kaspa block: it runs nothing.
            (_, Some(p)) if last => p,
            (Some(latest), Some(p)) if latest.daa_score > p.daa_score => latest,
            (_, Some(p)) => p,
            (Some(latest), None) => latest,
            (None, None) => return Proposal::Unknown,
        };
        // A block only when it carries something: requests, Kaspa's on-ledger requests, a
        // state not yet attested, the first block, or Kaspa far enough ahead that the chain's
        // clock should move. An idle committee then makes no blocks (each idle view times out).
        // A state worth attesting is one a block with requests made (attesting an empty
        // block's state would make another empty block, without end).
        let inherited_height = inherited.map_or(0, |a| a.height);
        let worth = !verified.is_empty()
            || (attests.map_or(0, |a| a.height) >= self.last_busy
                && inherited_height < self.last_busy)
            || match parent_l1 {
                None => true,
                Some(p) => {
                    l1.daa_score >= p.daa_score.saturating_add(IDLE_L1_DAA)
                        || (l1 != p && !self.l1.on_ledger(Some(&p), &l1).is_empty())
                }
            };
        // A block whose requests wait for randomness needs a child: its parent, or a final
        // block this member has not executed for want of a seed.
        // A rotation is under way: the committee makes its remaining blocks at once, so the
        // next committee takes over without waiting for traffic.
        let worth = worth
            || self.handover.is_some()
            || self.awaiting_seed.is_some()
            || (self.seed_verifier.is_some()
                && self
                    .blocks
                    .get(&parent)
                    .is_some_and(|p| !p.requests.is_empty()));
        if !worth && !self.wants_block.as_ref().is_some_and(|wanted| wanted()) {
            return Proposal::Idle;
        }
        // The parent's view's seed, from its notarization: parked until this member has it.
        let parent_seed = match (&self.seed_verifier, parent == self.genesis) {
            (Some(_), false) => match self.seeds.get(&context.parent.0.get()) {
                Some(seed) => Some(*seed),
                None => return Proposal::Unknown,
            },
            _ => None,
        };
        let block = Block {
            parent: parent.0,
            height,
            view: context.round.view().get(),
            requests,
            attests,
            l1,
            parent_seed,
        };
        let digest = block.digest();
        self.blocks.insert(digest, block);
        self.verified.insert(digest, verified);
        Proposal::Block(digest)
    }

    /// Keeps a block from the network if there is room and it is above the executed tip.
    fn insert(&mut self, block: Block) {
        if block.height <= self.tip.1 || self.blocks.len() >= MAX_PENDING_BLOCKS {
            return;
        }
        self.blocks.insert(block.digest(), block);
    }

    /// Answers every waiting verification whose block and parent have arrived.
    fn settle_waiting(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for (context, payload, response) in waiting {
            if response.is_closed() {
                continue;
            }
            let Some(block) = self.blocks.get(&payload) else {
                self.waiting.push((context, payload, response));
                continue;
            };
            let Some(parent_height) = self.height_of(&context.parent.1) else {
                self.waiting.push((context, payload, response));
                continue;
            };
            let (verdict, verified) = self.checked(block, &context, parent_height);
            let valid = match verdict {
                Verdict::Wait => {
                    tracing::debug!(
                        view = block.view,
                        height = block.height,
                        "a proposal waits for this member's state or view of Kaspa"
                    );
                    self.waiting.push((context, payload, response));
                    continue;
                }
                Verdict::Valid => {
                    if let Some(verified) = verified {
                        self.verified.insert(payload, verified);
                    }
                    true
                }
                Verdict::Invalid(why) => {
                    tracing::warn!(%why, view = block.view, "refused a proposal");
                    self.progress.lock().refused += 1;
                    false
                }
            };
            let _ = response.send(valid);
        }
    }

    /// Whether `block` is a valid proposal for `context` on a parent at `parent_height`, or
    /// cannot be told yet (it attests a height, or follows a Kaspa block, this member has not
    /// reached): [`Member::checked`]'s verdict alone.
    #[cfg(test)]
    fn check(
        &self,
        block: &Block,
        context: &Context<Digest, PublicKey>,
        parent_height: u64,
    ) -> Verdict {
        self.checked(block, context, parent_height).0
    }

    /// [`Member::check`], and on `Valid` the block's requests with their signatures verified.
    /// The parent's seed and the signatures are checked last, once every cheaper rule holds,
    /// so a proposal that waits is not verified again at each look.
    fn checked(
        &self,
        block: &Block,
        context: &Context<Digest, PublicKey>,
        parent_height: u64,
    ) -> (Verdict, Option<Vec<VerifiedRequest>>) {
        if let Err(why) = self.check_contents(block, context, parent_height) {
            return (Verdict::Invalid(why), None);
        }
        match self.check_handover(block, &context.parent.1) {
            Verdict::Valid => {}
            other => return (other, None),
        }
        match (
            self.check_l1(block, &context.parent.1),
            self.check_attestation(block, &context.parent.1),
        ) {
            (Verdict::Invalid(why), _) | (_, Verdict::Invalid(why)) => {
                return (Verdict::Invalid(why), None)
            }
            (Verdict::Wait, _) | (_, Verdict::Wait) => return (Verdict::Wait, None),
            (Verdict::Valid, Verdict::Valid) => {}
        }
        // A pairing check, unless the member holds the seed already: after the rules a
        // proposal may wait on, so one that waits is not checked again at each look.
        if let Err(why) = self.check_parent_seed(block, context) {
            return (Verdict::Invalid(why), None);
        }
        let verified = block
            .requests
            .iter()
            .map(|request| {
                wisp_chain::verify_signature(request.clone())
                    .map_err(|e| format!("request {}: {}", request.id(), e.message))
            })
            .collect::<Result<Vec<_>, _>>();
        match verified {
            Ok(verified) => (Verdict::Valid, Some(verified)),
            Err(why) => (Verdict::Invalid(why), None),
        }
    }

    /// The rotation rule: no block past this committee's last; the last one runs nothing (it
    /// carries no requests and follows its parent's Kaspa block); a block further ahead of
    /// this member's state than a rotation's delay waits until the member knows whether a
    /// rotation ends its committee before it.
    fn check_handover(&self, block: &Block, parent: &Digest) -> Verdict {
        match self.handover {
            Some(handover) if block.height > handover => Verdict::Invalid(format!(
                "this committee's last block is {handover} (the chain moved to the next committee)"
            )),
            Some(handover)
                if block.height == handover
                    && (!block.requests.is_empty() || self.l1_of(parent) != Some(block.l1)) =>
            {
                Verdict::Invalid(
                    "the committee's last block must carry no requests and follow its parent's Kaspa block"
                        .into(),
                )
            }
            None if block.height > self.tip.1 + wisp_chain::HANDOVER_DELAY => Verdict::Wait,
            _ => Verdict::Valid,
        }
    }

    /// The Kaspa rule: the parent's Kaspa block, or a later one this member has seen
    /// confirmed; one it has not seen yet is waited for, never refused (it may be on its way).
    fn check_l1(&self, block: &Block, parent: &Digest) -> Verdict {
        match self.l1_of(parent) {
            Some(p) if block.l1 == p => Verdict::Valid,
            Some(p) if block.l1.daa_score <= p.daa_score => Verdict::Invalid(format!(
                "it follows Kaspa DAA score {} after its parent's {}",
                block.l1.daa_score, p.daa_score
            )),
            _ if self.l1.knows(&block.l1) => Verdict::Valid,
            _ => Verdict::Wait,
        }
    }

    /// The attestation rules: below the block, not below the parent's, and equal to this
    /// member's own header at that height once it has executed that far.
    fn check_attestation(&self, block: &Block, parent: &Digest) -> Verdict {
        let floor = self.blocks.get(parent).and_then(|p| p.attests);
        let Some(a) = block.attests else {
            return match floor {
                None => Verdict::Valid,
                Some(_) => Verdict::Invalid("it drops its parent's attestation".into()),
            };
        };
        if a.height == 0 || a.height >= block.height {
            return Verdict::Invalid(format!(
                "it attests height {} from height {}",
                a.height, block.height
            ));
        }
        if floor.is_some_and(|f| a.height < f.height) {
            return Verdict::Invalid("it attests an older height than its parent".into());
        }
        if a.height > self.tip.1 {
            return Verdict::Wait;
        }
        match self.served.get(&a.height) {
            Some((.., header)) if *header == a.header => Verdict::Valid,
            Some(_) => Verdict::Invalid(format!(
                "its state at height {} differs from this member's",
                a.height
            )),
            None => Verdict::Invalid(format!(
                "it attests height {}, too old to check (executed through {})",
                a.height, self.tip.1
            )),
        }
    }

    /// The checks that need nothing executed and no signature: parent, height, view, the
    /// requests' chain.
    fn check_contents(
        &self,
        block: &Block,
        context: &Context<Digest, PublicKey>,
        parent_height: u64,
    ) -> Result<(), String> {
        if block.parent != context.parent.1 .0 {
            return Err("its parent is not the one simplex names".into());
        }
        if block.height != parent_height + 1 {
            return Err(format!(
                "height {} on a parent at {parent_height}",
                block.height
            ));
        }
        if block.view != context.round.view().get() {
            return Err(format!(
                "proposed for view {} in view {}",
                block.view,
                context.round.view().get()
            ));
        }
        let chain = self.chain.chain_id();
        for request in &block.requests {
            if request.body.chain != chain {
                return Err(format!("request {} is for another chain", request.id()));
            }
        }
        Ok(())
    }

    /// The seed rule: with seeds, every block but the first carries its parent's view's seed,
    /// signed by the committee; without, none does.
    fn check_parent_seed(
        &self,
        block: &Block,
        context: &Context<Digest, PublicKey>,
    ) -> Result<(), String> {
        let first = context.parent.1 == self.genesis;
        match (&self.seed_verifier, &block.parent_seed) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err("it carries a seed on a committee without seeds".into()),
            (Some(_), None) if first => Ok(()),
            (Some(_), Some(_)) if first => Err("the first block carries a seed".into()),
            (Some(_), None) => Err("it lacks its parent's seed".into()),
            (Some(verifier), Some(seed)) => {
                let parent_view = context.parent.0.get();
                if seed.view != parent_view {
                    return Err(format!(
                        "it carries the seed of view {} for a parent of view {parent_view}",
                        seed.view
                    ));
                }
                if self.seeds.get(&seed.view) == Some(seed) || verifier.verify(seed) {
                    Ok(())
                } else {
                    Err(format!(
                        "its seed of view {} is not the committee's",
                        seed.view
                    ))
                }
            }
        }
    }

    /// Keeps the seed of a view (from a certificate, or checked), dropping the oldest beyond
    /// [`MAX_PENDING_BLOCKS`] views.
    fn keep_seed(&mut self, seed: ViewSeed) {
        self.seeds.insert(seed.view, seed);
        while self.seeds.len() > MAX_PENDING_BLOCKS {
            self.seeds.pop_first();
        }
    }

    /// The randomness of the final block `path[at]`, drawn from the seed of its final child
    /// `path[at + 1]`'s view: from this member's certificates, or from the grandchild, which
    /// carries it (checked here). `None` until both are known.
    fn randomness_for(&mut self, path: &[Digest], at: usize) -> Option<wisp_core::Hash32> {
        let child = self.blocks.get(path.get(at + 1)?)?;
        let view = child.view;
        if let Some(seed) = self.seeds.get(&view) {
            return Some(seed.randomness());
        }
        let carried = self.blocks.get(path.get(at + 2)?)?.parent_seed?;
        let verifier = self.seed_verifier.as_ref()?;
        if carried.view != view || !verifier.verify(&carried) {
            tracing::error!(
                view,
                "a final block carries a seed that is not its parent's"
            );
            return None;
        }
        self.keep_seed(carried);
        Some(carried.randomness())
    }

    /// Executes, in height order, the finalized blocks above the tip, once all have arrived;
    /// asks the other members for the first one missing (each later finalization asks again).
    fn execute_finalized<S: commonware_p2p::Sender<PublicKey = PublicKey>>(
        &mut self,
        sender: &mut S,
    ) {
        let Some(target) = self.finalizing else {
            return;
        };
        let mut path = Vec::new();
        let mut at = target;
        let asked = self.missing.take();
        while at != self.tip.0 {
            let Some(block) = self.blocks.get(&at) else {
                self.missing = Some(at);
                // Asked once here; again only after a verification or a quiet spell
                // (`RECHECK`), not at every block that arrives: each answer comes from every
                // member, and asking again at each would multiply the requests at each step
                // of a catch-up.
                if asked != Some(at) {
                    tracing::debug!(
                        digest = %at,
                        tip = self.tip.1,
                        "asking the other members for a finalized block this member lacks"
                    );
                    sender.send(Recipients::All, Wire::Want(at.0).encode(), false);
                }
                return;
            };
            if block.height <= self.tip.1 {
                tracing::error!(
                    height = block.height,
                    "a finalized block does not descend from the executed tip"
                );
                self.finalizing = None;
                return;
            }
            path.push(at);
            at = Digest(block.parent);
        }
        path.reverse();
        for at in 0..path.len() {
            let digest = path[at];
            let Some(block) = self.blocks.get(&digest).cloned() else {
                return;
            };
            let height = block.height;
            // Verified when this member proposed or voted for it; otherwise (it arrived
            // finalized, through a `Want`) when it runs.
            let verified = self.verified.remove(&digest);
            let Some(prepared) = prepare_final_block(
                &self.chain,
                self.l1.as_ref(),
                self.tip_l1.as_ref(),
                &block,
                verified,
                // The handover block has no later block of its committee to seed it.
                self.seed_verifier.is_some() && self.handover != Some(height),
            ) else {
                tracing::debug!(
                    height,
                    l1_daa_score = block.l1.daa_score,
                    "a finalized block waits for this member's view of Kaspa"
                );
                return;
            };
            let randomness = match prepared.needs_seed {
                false => None,
                true => match self.randomness_for(&path, at) {
                    Some(randomness) => Some(randomness),
                    None => {
                        tracing::debug!(height, "a finalized block waits for its randomness");
                        // Kept for the next look: verified once.
                        self.verified.insert(digest, prepared.inputs.off_ledger);
                        self.awaiting_seed = Some(height);
                        return;
                    }
                },
            };
            let finalization = self
                .certificate
                .as_ref()
                .filter(|(d, _)| *d == digest)
                .map(|(_, c)| c.as_slice());
            let output = match commit_final_block(
                &self.chain,
                prepared,
                randomness,
                (&block, digest),
                finalization,
                (self.handover == Some(height)).then_some(self.epoch + 1),
            ) {
                Ok(output) => output,
                Err(e) => {
                    // Nothing was committed; retried at the next finalization or block.
                    tracing::error!(error = %e, height, "executing a finalized block failed");
                    return;
                }
            };
            if self.awaiting_seed.is_some_and(|waiting| waiting <= height) {
                self.awaiting_seed = None;
            }
            let receipts: Vec<RequestId> = output.receipts.iter().map(|r| r.request_id).collect();
            if !receipts.is_empty() {
                self.last_busy = height;
            }
            // The block's senders' requests whose nonces have passed: run here, or never to run.
            let senders: std::collections::BTreeSet<AgentId> = block
                .requests
                .iter()
                .map(OffLedgerRequest::sender)
                .collect();
            for sender in senders {
                let next = self.chain.nonce(&sender).unwrap_or(0);
                let passed: Vec<(AgentId, u64)> = self
                    .mempool
                    .range((sender, 0)..(sender, next))
                    .map(|(key, _)| *key)
                    .collect();
                let mut gone = Vec::new();
                for key in passed {
                    if let Some(request) = self.mempool.remove(&key) {
                        gone.push(request.id());
                    }
                }
                // Those the block ran left the disk with it; the others (a nonce another
                // request took) go now.
                let gone: Vec<&[u8]> = gone.iter().map(|id| id.0.as_slice()).collect();
                if let Err(e) = self.chain.db().remove_pending(&gone) {
                    tracing::warn!(error = %e, "could not remove passed requests from disk");
                }
            }
            let header_hash = output.header.hash().0;
            if let Some(on_executed) = self.on_executed.as_mut() {
                on_executed(&output);
            }
            {
                let mut progress = self.progress.lock();
                if progress.executed.len() >= PROGRESS_KEPT {
                    progress.executed.pop_front();
                }
                progress.executed.push_back(Executed {
                    height,
                    digest,
                    header: output.header,
                    attests: block.attests,
                    receipts,
                    randomness,
                });
            }
            self.tip = (digest, height);
            self.tip_l1 = Some(block.l1);
            self.served.insert(height, (digest, block, header_hash));
            if self.handover.is_none() {
                match era::next_handover(&self.chain, self.epoch) {
                    Ok(handover) => self.handover = handover,
                    Err(e) => {
                        tracing::error!(error = %e, "reading the chain's committee rotation failed")
                    }
                }
                if let Some(handover) = self.handover {
                    tracing::info!(handover, "the chain rotates to a new committee after this committee's block {handover}");
                }
            } else if self.handover == Some(height) {
                tracing::info!(height, "this committee has made its last block: the next committee continues the chain");
            }
            if let Some(old) = height.checked_sub(SERVED_BLOCKS) {
                self.served.remove(&old);
            }
        }
        self.finalizing = None;
        let tip = self.tip;
        self.blocks
            .retain(|digest, block| block.height > tip.1 || *digest == tip.0);
        let blocks = &self.blocks;
        self.verified
            .retain(|digest, _| blocks.contains_key(digest));
        // Proposals waiting for this member to reach the state they attest.
        self.settle_waiting();
    }
}

/// The committee block `chain` executed last (digest, height) and the Kaspa block it
/// followed, from [`TIP_META`]: the committee's genesis before any.
pub(crate) fn read_tip(chain: &Chain) -> Result<((Digest, u64), Option<L1Ref>), ConsensusError> {
    match chain
        .db()
        .meta(TIP_META)
        .map_err(|e| ConsensusError::Chain(e.to_string()))?
    {
        None => Ok(((genesis(chain.chain_id()), 0), None)),
        Some(bytes) => {
            let (digest, height, l1): ([u8; 32], u64, L1Ref) = borsh::from_slice(&bytes)
                .map_err(|e| ConsensusError::Chain(format!("{TIP_META}: {e}")))?;
            Ok(((Digest(digest), height), Some(l1)))
        }
    }
}

/// A final committee block's inputs, gathered by [`prepare_final_block`].
pub(crate) struct Prepared {
    /// What the block runs (no randomness yet).
    pub(crate) inputs: BlockInputs,
    /// It runs requests on a committee with seeds: it waits for its randomness (the seed of
    /// its final child's view) before [`commit_final_block`].
    pub(crate) needs_seed: bool,
}

/// Gathers what final committee block `block` runs on `chain` after the block that followed
/// Kaspa block `tip_l1`: its on-ledger requests from `l1` (Kaspa blocks after `tip_l1` up to
/// the block's), then its off-ledger ones (`verified` if their signatures were checked, else
/// checked here; a request whose signature fails was refused before any vote, so it is
/// dropped). `None` while `l1` has not seen the block's Kaspa block. With `seeded`, a block that
/// runs any request needs its randomness first; every node decides alike.
pub(crate) fn prepare_final_block(
    chain: &Chain,
    l1: &dyn L1View,
    tip_l1: Option<&L1Ref>,
    block: &Block,
    verified: Option<Vec<VerifiedRequest>>,
    seeded: bool,
) -> Option<Prepared> {
    // Final, so confirmed on Kaspa for a quorum: this node's follower catches up.
    let follows_new_l1 = Some(&block.l1) != tip_l1;
    if follows_new_l1 && !l1.knows(&block.l1) {
        return None;
    }
    let on_ledger = match follows_new_l1 {
        true => l1.on_ledger(tip_l1, &block.l1),
        false => Vec::new(),
    };
    let off_ledger = verified.unwrap_or_else(|| {
        block
            .requests
            .iter()
            .filter_map(|r| wisp_chain::verify_signature(r.clone()).ok())
            .collect()
    });
    let inputs = BlockInputs {
        randomness: None,
        l1: block.l1,
        on_ledger,
        off_ledger,
    };
    // A block that runs requests draws from its final child's view's seed; one that runs none
    // executes at once.
    let needs_seed = seeded
        && (!inputs.off_ledger.is_empty()
            || !inputs.on_ledger.is_empty()
            || chain.runs_requests(&inputs).unwrap_or(true));
    Some(Prepared { inputs, needs_seed })
}

/// Executes and commits final committee block `block` (with its `digest`) from its
/// `prepared` inputs and `randomness`, writing with it the executed tip ([`TIP_META`]), the
/// block ([`block_meta`]) and, if `finalization` is this block's certificate, that
/// certificate ([`FINALIZATION_META`]), also kept for good ([`era::handover_meta`]) if the
/// block is the last of the committee before epoch `handover_to`.
///
/// # Errors
/// What executing failed of; nothing was committed.
pub(crate) fn commit_final_block(
    chain: &Chain,
    prepared: Prepared,
    randomness: Option<wisp_core::Hash32>,
    (block, digest): (&Block, Digest),
    finalization: Option<&[u8]>,
    handover_to: Option<u64>,
) -> Result<wisp_chain::BlockOutput, String> {
    let block_key = block_meta(block.height);
    let handover_key = handover_to.map(era::handover_meta);
    let mut meta = vec![
        (TIP_META, tip_record(block, digest)),
        (block_key.as_str(), block.encode()),
    ];
    if let Some(certificate) = finalization {
        let stored = follow::StoredFinalization {
            height: block.height,
            digest: digest.0,
            certificate: certificate.to_vec(),
        };
        let stored = borsh::to_vec(&stored).unwrap_or_default();
        if let Some(key) = &handover_key {
            meta.push((key.as_str(), stored.clone()));
        }
        meta.push((FINALIZATION_META, stored));
    }
    let inputs = BlockInputs {
        randomness,
        ..prepared.inputs
    };
    chain
        .execute_block_with_meta(inputs, &meta)
        .map_err(|e| e.to_string())
}

/// The [`TIP_META`] record of `block` (whose digest is `digest`) as the executed tip: digest,
/// height and Kaspa block, borsh ([`read_tip`] reads it).
pub(crate) fn tip_record(block: &Block, digest: Digest) -> Vec<u8> {
    borsh::to_vec(&(digest.0, block.height, block.l1)).unwrap_or_default()
}

/// The chain metadata record holding the committee block executed at `height` (its borsh
/// encoding), written with it: what members and access nodes serve to access nodes.
pub fn block_meta(height: u64) -> String {
    format!("wisp-consensus/block/{height}")
}

/// The chain metadata record holding the newest finalization certificate whose block this node
/// executed ([`follow::StoredFinalization`], borsh).
pub const FINALIZATION_META: &str = "wisp-consensus/finalization";

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_consensus::types::{Epoch, Round, View};
    use commonware_cryptography::Signer;
    use wisp_core::{Call, Hname, RequestBody};

    fn chain() -> Chain {
        let chain = Chain::in_memory(&wisp_chain::Genesis {
            name: "unit".into(),
            owner: AgentId::Address([1; 32]),
            params: wisp_chain::ChainParams::default(),
            timestamp_ms: 0,
            protocol: wisp_chain::Protocol::default(),
            anchor: None,
        })
        .expect("chain");
        // The tests' signer holds coins, so the chain admits its requests.
        let signer =
            secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[3; 32]).expect("key");
        chain
            .execute_block(BlockInputs {
                randomness: None,
                l1: L1Ref::default(),
                on_ledger: vec![wisp_chain::OnLedgerRequest {
                    l1_tx_id: wisp_core::Hash32([1; 32]),
                    index: 0,
                    sender: AgentId::Address(signer.x_only_public_key().0.serialize()),
                    deposit_sompi: 100 * 100_000_000,
                    body: wisp_chain::OnLedgerBody::DepositOnly,
                }],
                off_ledger: vec![],
            })
            .expect("funding block");
        chain
    }

    fn member() -> Member {
        let (member, ..) = Member::new::<commonware_consensus::simplex::scheme::ed25519::Scheme>(
            Config::new(Arc::new(chain()), Box::new(FixedL1(L1Ref::default()))),
        )
        .expect("member");
        member
    }

    fn request(chain: ChainId, nonce: u64) -> OffLedgerRequest {
        let key =
            secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[3; 32]).expect("key");
        let body = RequestBody {
            chain,
            call: Call {
                target: Hname::of("accounts"),
                entry_point: Hname::of("transfer"),
                args: vec![],
                transfer_sompi: 0,
            },
            gas_budget: 100_000,
            access_list: None,
            time_lock: None,
        };
        wisp_chain::sign_request(body, &key, nonce)
    }

    fn context(view: u64, parent: Digest) -> Context<Digest, PublicKey> {
        Context {
            round: Round::new(Epoch::new(0), View::new(view)),
            leader: commonware_cryptography::ed25519::PrivateKey::from_seed(0).public_key(),
            parent: (View::new(view - 1), parent),
        }
    }

    #[test]
    fn blocks_round_trip_and_bound_what_they_decode() {
        let block = Block {
            parent: [7; 32],
            height: 3,
            view: 9,
            requests: vec![request(ChainId([1; 32]), 0)],
            attests: Some(Attestation {
                height: 2,
                header: [6; 32],
            }),
            l1: L1Ref {
                daa_score: 9,
                ..L1Ref::default()
            },
            parent_seed: Some(ViewSeed {
                view: 8,
                signature: [4; seed::SEED_SIGNATURE_BYTES],
            }),
        };
        assert_eq!(Block::decode(&block.encode()).expect("decodes"), block);
        let wire = Wire::Block(block.clone());
        assert_eq!(Wire::decode(&wire.encode()).expect("decodes"), wire);
        assert_eq!(
            Wire::decode(&Wire::Want([5; 32]).encode()).expect("decodes"),
            Wire::Want([5; 32])
        );
        let gossip = Wire::Request(request(ChainId([1; 32]), 4));
        assert_eq!(Wire::decode(&gossip.encode()).expect("decodes"), gossip);
        assert!(Wire::decode(&[2, 1, 2, 3]).is_err(), "a truncated request");
        // The view is part of the digest: one parent, two views, two proposals.
        let other = Block {
            view: 10,
            ..block.clone()
        };
        assert_ne!(block.digest(), other.digest());

        let huge = vec![0u8; MAX_BLOCK_BYTES + 1];
        assert!(
            matches!(Block::decode(&huge), Err(ConsensusError::Malformed(m)) if m.contains("limit"))
        );
        // A count far above the cap is refused before anything is allocated for it.
        let mut counted = Block {
            requests: vec![],
            attests: None,
            l1: L1Ref::default(),
            ..block.clone()
        }
        .encode();
        counted[48..52].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            matches!(Block::decode(&counted), Err(ConsensusError::Malformed(m)) if m.contains("request limit"))
        );
        assert!(Block::decode(&[0u8; 20]).is_err(), "truncated");
        assert!(Wire::decode(&[]).is_err());
        assert!(Wire::decode(&[3, 0]).is_err(), "unknown tag");
        assert!(Wire::decode(&[1, 0, 0]).is_err(), "short want");
    }

    #[test]
    fn a_member_votes_only_for_a_well_formed_proposal() {
        let m = member();
        let chain = m.chain.chain_id();
        let genesis = m.genesis;
        let good = Block {
            parent: genesis.0,
            height: 1,
            view: 1,
            requests: vec![request(chain, 0)],
            attests: None,
            l1: L1Ref::default(),
            parent_seed: None,
        };
        assert_eq!(m.check(&good, &context(1, genesis), 0), Verdict::Valid);
        let refused = |b: &Block, c: &Context<Digest, PublicKey>| match m.check(b, c, 0) {
            Verdict::Invalid(why) => why,
            other => panic!("not refused: {other:?}"),
        };
        assert!(refused(&good, &context(1, Digest([9; 32]))).contains("parent"));
        assert!(refused(
            &Block {
                height: 2,
                ..good.clone()
            },
            &context(1, genesis)
        )
        .contains("height"));
        assert!(refused(&good, &context(2, genesis)).contains("view"));
        let foreign = Block {
            requests: vec![request(ChainId([8; 32]), 0)],
            ..good.clone()
        };
        assert!(refused(&foreign, &context(1, genesis)).contains("another chain"));
        let mut forged = request(chain, 0);
        forged.nonce = 1; // signed for nonce 0
        let forged = Block {
            requests: vec![forged],
            ..good.clone()
        };
        assert!(refused(&forged, &context(1, genesis)).contains("signature"));
        // This committee has no seeds: a block that carries one is refused.
        let seeded = Block {
            parent_seed: Some(ViewSeed {
                view: 0,
                signature: [1; seed::SEED_SIGNATURE_BYTES],
            }),
            ..good.clone()
        };
        assert!(refused(&seeded, &context(1, genesis)).contains("seed"));
    }

    /// A member restarted on its chain holds again the requests it had taken (from disk,
    /// checked again); the one a block ran is gone from disk with that block.
    #[test]
    fn a_restarted_member_keeps_its_mempool() {
        let chain = Arc::new(chain());
        let start = |chain: &Arc<Chain>| {
            let (member, ..) =
                Member::new::<commonware_consensus::simplex::scheme::ed25519::Scheme>(Config::new(
                    chain.clone(),
                    Box::new(FixedL1(L1Ref::default())),
                ))
                .expect("member");
            member
        };
        let request = |nonce| {
            wisp_chain::verify_signature(request(chain.chain_id(), nonce)).expect("verifies")
        };
        let mut m = start(&chain);
        assert!(m.submit(request(0), true).expect("admitted"));
        assert!(m.submit(request(1), true).expect("admitted"));
        drop(m);
        let again = start(&chain);
        assert_eq!(again.mempool.len(), 2, "both back after the restart");
        drop(again);
        // Nonce 0 runs in a block (as a finalized block would run it); only nonce 1 is left.
        chain
            .execute_block(BlockInputs {
                randomness: None,
                l1: L1Ref::default(),
                on_ledger: vec![],
                off_ledger: vec![request(0)],
            })
            .expect("block");
        assert_eq!(chain.db().pending().expect("pending").len(), 1);
        let after = start(&chain);
        assert_eq!(
            after.mempool.keys().map(|(_, n)| *n).collect::<Vec<_>>(),
            vec![1]
        );
    }

    #[test]
    fn the_mempool_and_unfinalized_blocks_are_bounded() {
        let mut m = member();
        let chain = m.chain.chain_id();
        let verified = wisp_chain::verify_signature(request(chain, 0)).expect("verifies");
        let sender = verified.request().sender();
        for nonce in 0..MAX_MEMPOOL as u64 {
            m.mempool.insert((sender, nonce + 1), verified.clone());
        }
        assert!(matches!(
            m.submit(verified.clone(), true),
            Err(ConsensusError::MempoolFull)
        ));
        // A request already held is not taken again, even when full.
        m.mempool.remove(&(sender, 1));
        m.mempool.insert((sender, 0), verified.clone());
        assert!(!m.submit(verified.clone(), true).expect("held"));
        m.mempool.clear();
        assert!(m.submit(verified.clone(), true).expect("new"));
        assert!(!m.submit(verified, true).expect("held"), "taken twice");

        for i in 0..MAX_PENDING_BLOCKS as u64 + 10 {
            m.insert(Block {
                parent: [0; 32],
                height: 1,
                view: i,
                requests: vec![],
                attests: None,
                l1: L1Ref::default(),
                parent_seed: None,
            });
        }
        assert_eq!(m.blocks.len(), MAX_PENDING_BLOCKS);
        // Nothing at or below the executed tip is kept.
        m.blocks.clear();
        m.tip = (Digest([4; 32]), 5);
        m.insert(Block {
            parent: [0; 32],
            height: 5,
            view: 1,
            requests: vec![],
            attests: None,
            l1: L1Ref::default(),
            parent_seed: None,
        });
        assert!(m.blocks.is_empty());
    }

    #[test]
    fn a_member_votes_only_for_the_state_it_reached() {
        let mut m = member();
        let genesis = m.genesis;
        let at = |height: u64, header: u8| {
            Some(Attestation {
                height,
                header: [header; 32],
            })
        };
        let block = |height: u64, attests: Option<Attestation>| Block {
            parent: genesis.0,
            height,
            view: height,
            requests: vec![],
            attests,
            l1: L1Ref::default(),
            parent_seed: None,
        };
        // Nothing executed yet: a block attesting height 1 waits.
        assert_eq!(
            m.check_attestation(&block(2, at(1, 7)), &genesis),
            Verdict::Wait
        );
        // Once height 1 has executed to header 7: 7 is valid, anything else is refused.
        let executed = block(1, None);
        m.served
            .insert(1, (executed.digest(), executed.clone(), [7; 32]));
        m.tip = (executed.digest(), 1);
        assert_eq!(
            m.check_attestation(&block(2, at(1, 7)), &genesis),
            Verdict::Valid
        );
        assert!(matches!(
            m.check_attestation(&block(2, at(1, 8)), &genesis),
            Verdict::Invalid(why) if why.contains("differs")
        ));
        // A block cannot attest its own height or a later one.
        assert!(matches!(
            m.check_attestation(&block(1, at(1, 7)), &genesis),
            Verdict::Invalid(why) if why.contains("attests height 1 from height 1")
        ));
        // It may not drop or go below its parent's attestation.
        let parent = block(3, at(1, 7));
        let parent_digest = parent.digest();
        m.blocks.insert(parent_digest, parent);
        assert!(matches!(
            m.check_attestation(&block(4, None), &parent_digest),
            Verdict::Invalid(why) if why.contains("drops")
        ));
        m.blocks.insert(parent_digest, block(3, at(2, 7)));
        assert!(matches!(
            m.check_attestation(&block(4, at(1, 7)), &parent_digest),
            Verdict::Invalid(why) if why.contains("older")
        ));
        // Too old to check once it has left the served window.
        m.served.clear();
        m.tip = (executed.digest(), 300);
        assert!(matches!(
            m.check_attestation(&block(301, at(1, 7)), &genesis),
            Verdict::Invalid(why) if why.contains("too old")
        ));
    }

    #[test]
    fn a_proposal_stays_within_what_members_accept() {
        let mut m = member();
        let chain = m.chain.chain_id();
        let key =
            secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[5; 32]).expect("key");
        for nonce in 0..70u64 {
            let body = RequestBody {
                chain,
                call: Call {
                    target: Hname::of("accounts"),
                    entry_point: Hname::of("transfer"),
                    args: vec![7; 64 * 1024],
                    transfer_sompi: 0,
                },
                gas_budget: 100_000,
                access_list: None,
                time_lock: None,
            };
            let verified =
                wisp_chain::verify_signature(wisp_chain::sign_request(body, &key, nonce))
                    .expect("verifies");
            m.mempool
                .insert((verified.request().sender(), nonce), verified);
        }
        let genesis = m.genesis;
        let digest = m.propose(&context(1, genesis)).block().expect("a proposal");
        let block = m.blocks.get(&digest).expect("kept").clone();
        let bytes = block.encode();
        assert!(bytes.len() <= MAX_BLOCK_BYTES, "{} bytes", bytes.len());
        assert!(block.requests.len() < 70 && !block.requests.is_empty());
        assert_eq!(Block::decode(&bytes).expect("accepted"), block);
    }

    /// An idle leader proposes nothing (its view times out) rather than an empty block, until
    /// a request arrives; the committee's first block is always proposed.
    #[test]
    fn an_idle_leader_waits_for_something_to_propose() {
        let mut m = member();
        let genesis = m.genesis;
        let first = m
            .propose(&context(1, genesis))
            .block()
            .expect("the first block");
        assert!(m.blocks[&first].requests.is_empty());
        assert!(matches!(m.propose(&context(2, first)), Proposal::Idle));
        let request =
            wisp_chain::verify_signature(request(m.chain.chain_id(), 0)).expect("verifies");
        assert!(m.submit(request, true).expect("admitted"));
        let second = m.propose(&context(2, first)).block().expect("a block now");
        assert_eq!(m.blocks[&second].requests.len(), 1);
    }

    /// A rotation ends this committee at its last block: the last block runs nothing (no
    /// requests, its parent's Kaspa block), nothing past it is proposed or voted for, and
    /// requests are refused once it has run; before a member knows of a rotation it votes no
    /// further ahead of its state than a rotation's delay.
    #[test]
    fn a_committee_stops_at_its_last_block() {
        let mut m = member();
        let chain = m.chain.chain_id();
        let genesis = m.genesis;
        let request = wisp_chain::verify_signature(request(chain, 0)).expect("verifies");
        // Unknown rotation: a block more than the delay ahead of the executed tip waits.
        let far = Block {
            parent: genesis.0,
            height: wisp_chain::HANDOVER_DELAY + 1,
            view: 1,
            requests: Vec::new(),
            attests: None,
            l1: L1Ref::default(),
            parent_seed: None,
        };
        assert_eq!(
            m.check(&far, &context(1, genesis), wisp_chain::HANDOVER_DELAY),
            Verdict::Wait
        );
        // A rotation ends this committee at height 2.
        m.handover = Some(2);
        let first = m
            .propose(&context(1, genesis))
            .block()
            .expect("the first block");
        assert!(m.submit(request.clone(), false).expect("admitted"));
        let last = m
            .propose(&context(2, first))
            .block()
            .expect("the last block");
        let block = m.blocks[&last].clone();
        assert!(block.requests.is_empty(), "the last block runs nothing");
        assert_eq!(block.l1, m.blocks[&first].l1);
        assert!(matches!(m.propose(&context(3, last)), Proposal::Idle));
        let refused = |m: &Member, b: &Block, c: &Context<Digest, PublicKey>, h: u64| match m
            .check(b, c, h)
        {
            Verdict::Invalid(why) => why,
            other => panic!("not refused: {other:?}"),
        };
        let busy_last = Block {
            view: 2,
            requests: vec![request.request().clone()],
            ..block.clone()
        };
        assert!(refused(&m, &busy_last, &context(2, first), 1).contains("no requests"));
        let past = Block {
            parent: last.0,
            height: 3,
            view: 3,
            ..block.clone()
        };
        assert!(refused(&m, &past, &context(3, last), 2).contains("last block is 2"));
        // Once the last block has run, nothing would run a request here.
        m.tip = (last, 2);
        assert!(matches!(
            m.submit(request, false),
            Err(ConsensusError::HandedOver(2))
        ));
    }

    #[test]
    fn the_mempool_takes_only_what_the_chain_would_admit() {
        let mut m = member();
        let chain = m.chain.chain_id();
        // A sender with no coins on the chain could never pay for its request.
        let broke =
            secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[4; 32]).expect("key");
        let mut body = request(chain, 0).body;
        let unpaid =
            wisp_chain::verify_signature(wisp_chain::sign_request(body.clone(), &broke, 0))
                .expect("verifies");
        assert!(
            matches!(m.submit(unpaid, true), Err(ConsensusError::Refused(why)) if why.message.contains("sompi"))
        );
        // Nor a gas budget the chain refuses.
        body.gas_budget = 0;
        let signer =
            secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[3; 32]).expect("key");
        let no_gas = wisp_chain::verify_signature(wisp_chain::sign_request(body, &signer, 0))
            .expect("verifies");
        assert!(matches!(
            m.submit(no_gas, true),
            Err(ConsensusError::Refused(_))
        ));
        assert!(m.mempool.is_empty());
        // What it does take counts as pending, from a nonce on (`wisp_getNonce`).
        for nonce in 0..3 {
            let r = wisp_chain::verify_signature(request(chain, nonce)).expect("verifies");
            assert!(m.submit(r, false).expect("taken"));
        }
        let sender = request(chain, 0).sender();
        assert_eq!(m.held_from(&sender, 0), 3);
        assert_eq!(m.held_from(&sender, 2), 1);
        assert_eq!(m.held_from(&AgentId::Address([9; 32]), 0), 0);
    }
}
