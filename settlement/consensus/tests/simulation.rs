//! Committees on commonware's deterministic runtime and simulated network: four members order
//! Wisp blocks with simplex (BLS12-381 threshold certificates), each executes the finalized
//! blocks into its own chain, and all reach the same headers. Every run is reproducible from
//! its seed; each scenario runs over several seeds.

use commonware_consensus::simplex::elector::RoundRobin;
use commonware_consensus::simplex::scheme::bls12381_threshold::vrf as threshold;
use commonware_consensus::simplex::{self, Engine};
use commonware_consensus::types::Epoch;
use commonware_cryptography::bls12381::primitives::variant::MinSig;
use commonware_cryptography::ed25519::PrivateKey;
use commonware_cryptography::Sha256;
use commonware_p2p::simulated::{Config as NetworkConfig, Link, Network, Oracle};
use commonware_runtime::{deterministic, Clock, Handle, Quota, Runner, Supervisor};
use commonware_utils::{NZUsize, NZU32};
use rand::SeedableRng;
use std::sync::Arc;
use std::time::Duration;
use wisp_chain::{Chain, Genesis, L1Ref, OnLedgerBody, OnLedgerRequest};
use wisp_consensus::{
    dkg, follow, Block, Config, ConsensusError, FixedL1, L1View, Member, Progress, PublicKey,
    MAX_BLOCK_BYTES,
};
use wisp_core::{AgentId, Call, Hash32, Hname, RequestBody};

const SENDERS: usize = 6;

/// Seeds each scenario runs over: `WISP_SIM_SEEDS` (default 10).
fn seeds() -> u64 {
    std::env::var("WISP_SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}
/// The deterministic runtime of one simulation run: seeded with `seed`, failing the test if
/// its simulated time passes `timeout_secs`.
fn runner(seed: u64, timeout_secs: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(timeout_secs))),
    )
}

const REQUESTS_EACH: u64 = 5;

fn key(i: usize) -> secp256k1::Keypair {
    let mut secret = [7u8; 32];
    secret[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &secret).expect("key")
}

fn agent(k: &secp256k1::Keypair) -> AgentId {
    AgentId::Address(k.x_only_public_key().0.serialize())
}

/// A member's chain: the same genesis and the same funding block on every member, as when a
/// committee takes over an existing chain.
fn chain() -> Chain {
    chain_with_extra(0)
}

/// [`chain`] with `extra` sompi more deposited for the first sender: a member whose state
/// differs from the others' from the start.
fn chain_with_extra(extra: u64) -> Chain {
    let chain = Chain::in_memory(&genesis()).expect("chain");
    fund(&chain, extra);
    chain
}

/// The chain's genesis ([`chain`]'s).
fn genesis() -> Genesis {
    Genesis {
        name: "committee".into(),
        owner: agent(&key(1000)),
        params: wisp_chain::ChainParams::default(),
        timestamp_ms: 0,
        protocol: wisp_chain::Protocol::default(),
        anchor: None,
    }
}

/// The block before the committee takes over: deposits for every sender (`extra` more for
/// the first).
fn fund(chain: &Chain, extra: u64) {
    let deposits = (0..SENDERS)
        .map(|i| OnLedgerRequest {
            l1_tx_id: Hash32([i as u8 + 1; 32]),
            index: 0,
            sender: agent(&key(i)),
            deposit_sompi: 100 * 100_000_000 + if i == 0 { extra } else { 0 },
            body: OnLedgerBody::DepositOnly,
        })
        .collect();
    chain
        .execute_block(wisp_chain::BlockInputs {
            randomness: None,
            l1: L1Ref::default(),
            on_ledger: deposits,
            off_ledger: vec![],
        })
        .expect("funding block");
}

/// Every sender's transfers to the next sender, nonces 0.., signed and verified.
fn requests(chain: &Chain) -> Vec<wisp_chain::VerifiedRequest> {
    let mut out = Vec::new();
    for i in 0..SENDERS {
        for nonce in 0..REQUESTS_EACH {
            let body = RequestBody {
                chain: chain.chain_id(),
                call: Call {
                    target: Hname::of("accounts"),
                    entry_point: Hname::of("transfer"),
                    args: borsh::to_vec(&(agent(&key((i + 1) % SENDERS)), 1_000u64)).expect("args"),
                    transfer_sompi: 0,
                },
                gas_budget: 1_000_000,
                access_list: None,
                time_lock: None,
            };
            let signed = wisp_chain::sign_request(body, &key(i), nonce);
            out.push(wisp_chain::verify_signature(signed).expect("signature"));
        }
    }
    out
}

/// What a scenario changes: members that never start, the links' delivery, and a partition
/// of members {0, 1} from {2, 3} (neither side a quorum) that heals after the given time.
struct Scenario {
    crashed: usize,
    link: Link,
    partition: Option<Duration>,
    /// Member 0 is Byzantine: when it leads, it signs two different proposals and sends one
    /// to a single member and the other to the rest (commonware's equivocator).
    equivocator: bool,
    /// Member 3's chain holds one sompi more than everyone else's from the start, so its
    /// headers differ from the others' at every height.
    diverging: bool,
    /// The committee's certificate key comes from a distributed key generation among the
    /// members (`wisp_consensus::dkg`) instead of commonware's trusted-dealer test fixture.
    keygen: bool,
    /// Requests are given to one member only (the last), whose consensus engine is down: the
    /// others learn of them only from its gossip.
    one_door: bool,
    /// Blocks follow this simulated Kaspa, on which deposits arrive; each member sees a new
    /// Kaspa block 300 ms after the previous member.
    kaspa: Option<Kaspa>,
}

/// A committee of `n` whose certificate key the members make by distributed key generation,
/// every message delivered: the members' identities (in the committee's order) and signers.
fn keygen_committee(
    rng: &mut impl rand_core::CryptoRng,
    namespace: &[u8],
    n: u64,
) -> (Vec<PublicKey>, Vec<Threshold>) {
    use commonware_cryptography::Signer as _;
    use commonware_utils::TryCollect as _;
    let mut keys: Vec<PrivateKey> = (0..n).map(|i| PrivateKey::from_seed(1000 + i)).collect();
    keys.sort_by_key(|k| k.public_key());
    let members: commonware_utils::ordered::Set<PublicKey> = keys
        .iter()
        .map(|k| k.public_key())
        .try_collect()
        .expect("distinct keys");
    let mut started: Vec<_> = keys
        .iter()
        .map(|k| {
            dkg::Keygen::start(&mut *rng, namespace, 0, members.clone(), k.clone()).expect("start")
        })
        .collect();
    for d in 0..keys.len() {
        let (commitment, shares) = (started[d].1.clone(), started[d].2.clone());
        for (player, share) in shares {
            let p = keys
                .iter()
                .position(|k| k.public_key() == player)
                .expect("member");
            let ack = started[p]
                .0
                .dealing(keys[d].public_key(), commitment.clone(), share)
                .expect("dealing")
                .expect("first time");
            started[d].0.acknowledged(player, ack).expect("ack");
        }
    }
    let logs: Vec<_> = started
        .iter_mut()
        .map(|(k, ..)| k.close().expect("open"))
        .collect();
    let schemes = started
        .into_iter()
        .map(|(k, ..)| {
            let (output, share) = k.finish(&mut *rng, logs.clone()).expect("finish");
            dkg::committee_scheme(namespace, &output, share).expect("signer")
        })
        .collect();
    (members.into_iter().collect(), schemes)
}

impl Default for Scenario {
    /// All four members running honestly, 50 ms links that lose nothing, a fixed Kaspa block.
    fn default() -> Scenario {
        Scenario {
            crashed: 0,
            link: link(50, 1.0),
            partition: None,
            equivocator: false,
            diverging: false,
            keygen: false,
            one_door: false,
            kaspa: None,
        }
    }
}

fn link(latency_ms: u64, delivered: f64) -> Link {
    Link {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(latency_ms / 2),
        success_rate: commonware_utils::Probability::from_f64(delivered).expect("probability"),
    }
}

/// A simulated Kaspa: confirmed chain blocks, each with the chain's on-ledger requests, which
/// each member's follower sees at its own time.
#[derive(Clone, Default)]
struct Kaspa(Arc<std::sync::Mutex<KaspaState>>);

#[derive(Default)]
struct KaspaState {
    blocks: Vec<(L1Ref, Vec<OnLedgerRequest>)>,
    /// How many blocks each member has seen.
    seen: [usize; 4],
}

impl Kaspa {
    fn state(&self) -> std::sync::MutexGuard<'_, KaspaState> {
        self.0.lock().expect("kaspa")
    }

    /// A new confirmed block accepting `on_ledger`, seen by no member yet.
    fn add(&self, on_ledger: Vec<OnLedgerRequest>) {
        let mut state = self.state();
        let n = state.blocks.len() as u64 + 1;
        let l1 = L1Ref {
            block_hash: Hash32([n as u8; 32]),
            daa_score: 100 * n,
            timestamp_ms: 1_000 * n,
        };
        state.blocks.push((l1, on_ledger));
    }

    /// Member `member`'s follower catches up with every block.
    fn reveal(&self, member: usize) {
        let mut state = self.state();
        state.seen[member] = state.blocks.len();
    }

    fn requests(&self) -> usize {
        self.state().blocks.iter().map(|(_, r)| r.len()).sum()
    }

    fn view(&self, member: usize) -> KaspaView {
        KaspaView {
            kaspa: self.clone(),
            member,
        }
    }
}

struct KaspaView {
    kaspa: Kaspa,
    member: usize,
}

impl L1View for KaspaView {
    fn latest(&self) -> Option<L1Ref> {
        let state = self.kaspa.state();
        state.blocks[..state.seen[self.member]]
            .last()
            .map(|(l1, _)| *l1)
    }
    fn knows(&self, l1: &L1Ref) -> bool {
        let state = self.kaspa.state();
        state.blocks[..state.seen[self.member]]
            .iter()
            .any(|(b, _)| b == l1)
    }
    fn on_ledger(&self, after: Option<&L1Ref>, upto: &L1Ref) -> Vec<OnLedgerRequest> {
        let state = self.kaspa.state();
        let seen = &state.blocks[..state.seen[self.member]];
        let from = after.map_or(0, |a| {
            seen.iter().position(|(b, _)| b == a).map_or(0, |i| i + 1)
        });
        let to = seen
            .iter()
            .position(|(b, _)| b == upto)
            .expect("a known block");
        seen[from..=to]
            .iter()
            .flat_map(|(_, r)| r.clone())
            .collect()
    }
}

/// Starts a simulated network for `participants`, linking every pair `(i, j)` that `linked`
/// allows with `link`.
async fn network(
    context: &deterministic::Context,
    participants: &[PublicKey],
    link: &Link,
    linked: impl Fn(usize, usize) -> bool,
) -> Oracle<PublicKey, deterministic::Context> {
    let (network, oracle) = Network::new_with_peers(
        context.child("network"),
        NetworkConfig {
            max_size: (MAX_BLOCK_BYTES + 64 * 1024) as u32,
            max_peers_per_set: NZUsize!(participants.len()),
            disconnect_on_block: true,
            tracked_peer_sets: NZUsize!(1),
        },
        participants.to_vec(),
    )
    .await;
    network.start();
    for (i, a) in participants.iter().enumerate() {
        for (j, b) in participants.iter().enumerate() {
            if i != j && linked(i, j) {
                oracle
                    .add_link(a.clone(), b.clone(), link.clone())
                    .await
                    .expect("link");
            }
        }
    }
    oracle
}

/// Whether members `a` and `b` are on opposite sides of the partition.
fn split(a: usize, b: usize) -> bool {
    (a < 2) != (b < 2)
}

const QUOTA: Quota = Quota::per_second(NZU32!(10_000));

type Threshold = threshold::Scheme<PublicKey, MinSig>;

/// Starts member `index` (`me`, signing with `scheme`) on `chain`: its application and its
/// simplex engine, on freshly registered channels (0-2 simplex's, 3 whole blocks). Returns its
/// progress, its mailbox, and the tasks to abort to crash it. The engine's journal lives in the
/// runtime's storage under the member's partition, so a restarted member recovers it.
#[allow(clippy::too_many_arguments)]
async fn start_member(
    context: &deterministic::Context,
    oracle: &Oracle<PublicKey, deterministic::Context>,
    scheme: Threshold,
    me: PublicKey,
    index: usize,
    chain: Arc<Chain>,
    l1: Box<dyn L1View>,
) -> Running {
    start_member_of(context, oracle, (scheme, me, index), chain, l1, None).await
}

/// [`start_member`] for the committee of `era` (`None`: the chain's first), on channels
/// `10 * epoch + 0..=3`, so two committees on one simulated network keep apart.
async fn start_member_of(
    context: &deterministic::Context,
    oracle: &Oracle<PublicKey, deterministic::Context>,
    (scheme, me, index): (Threshold, PublicKey, usize),
    chain: Arc<Chain>,
    l1: Box<dyn L1View>,
    era: Option<wisp_consensus::Era>,
) -> Running {
    let base = 10 * era.map_or(0, |e| e.epoch);
    let control = oracle.control(me.clone());
    let votes = control.register(base, QUOTA).await.expect("channel");
    let certificates = control.register(base + 1, QUOTA).await.expect("channel");
    let resolver = control.register(base + 2, QUOTA).await.expect("channel");
    let (block_sender, block_receiver) = control.register(base + 3, QUOTA).await.expect("channel");
    let member_context = context.child("member").with_attribute("index", index);
    let mut config = Config::new(chain, l1);
    config.seeds = Some(wisp_consensus::SeedVerifier::new(&scheme));
    config.era = era;
    let (member, mailbox, reporter, watched) = Member::new::<Threshold>(config).expect("member");
    let genesis = member.genesis();
    let epoch = member.epoch();
    let application = member.start(
        member_context.child("application"),
        block_sender,
        block_receiver,
    );
    let engine = Engine::new(
        member_context.child("engine"),
        wisp_consensus::engine_config(
            scheme,
            oracle.control(me),
            mailbox.clone(),
            reporter,
            genesis,
            epoch,
            format!("member-{epoch}-{index}"),
        ),
    );
    let engine = engine.start(votes, certificates, resolver);
    (watched, mailbox, vec![application, engine])
}

/// Runs four members with `scenario` from `seed` until every running member has executed all
/// requests; returns each running member's executed blocks.
fn run(seed: u64, scenario: Scenario) -> Vec<Progress> {
    let n = 4u32;
    runner(seed, 300).start(|mut context| async move {
        let namespace = b"wisp-consensus-test";
        let (participants, schemes) = match scenario.keygen {
            true => keygen_committee(&mut context, namespace, u64::from(n)),
            false => {
                let fixture = threshold::fixture::<MinSig, _>(&mut context, namespace, n);
                (fixture.participants, fixture.schemes)
            }
        };
        let partitioned = scenario.partition.is_some();
        let oracle = network(&context, &participants, &scenario.link, |i, j| {
            !(partitioned && split(i, j))
        })
        .await;
        let mut progress: Vec<Progress> = Vec::new();
        let mut submitters = Vec::new();
        let mut tasks = Vec::new();
        let mut door = None;
        for (i, me) in participants.iter().enumerate() {
            if i < scenario.crashed {
                continue; // a crashed member: on the network, never running
            }
            if i == 0 && scenario.equivocator {
                let control = oracle.control(me.clone());
                let votes = control.register(0, QUOTA).await.expect("channel");
                let certificates = control.register(1, QUOTA).await.expect("channel");
                let relay = std::sync::Arc::new(simplex::mocks::relay::Relay::<
                    wisp_consensus::Digest,
                    wisp_consensus::PublicKey,
                >::new());
                simplex::mocks::equivocator::Equivocator::<_, _, _, Sha256>::new(
                    context.child("equivocator"),
                    simplex::mocks::equivocator::Config {
                        scheme: schemes[i].clone(),
                        elector: RoundRobin::<Sha256>::default(),
                        epoch: Epoch::new(0),
                        relay,
                    },
                )
                .start(votes, certificates);
                continue;
            }
            let chain = Arc::new(match scenario.diverging && i == 3 {
                true => chain_with_extra(1),
                false => chain(),
            });
            let (watched, mailbox, handles) = start_member(
                &context,
                &oracle,
                schemes[i].clone(),
                me.clone(),
                i,
                chain,
                match &scenario.kaspa {
                    Some(kaspa) => Box::new(kaspa.view(i)) as Box<dyn L1View>,
                    None => Box::new(FixedL1(L1Ref::default())),
                },
            )
            .await;
            if scenario.one_door && i == participants.len() - 1 {
                // The door: its application runs (it takes requests and gossips them), its
                // consensus engine never does, so it never proposes.
                let [_, engine] = handles.as_slice() else {
                    panic!("an application and an engine");
                };
                engine.abort();
                door = Some(mailbox);
                continue;
            }
            progress.push(watched);
            submitters.push(mailbox);
            tasks.push(handles);
        }
        // Every running member is given every request, or only one is and gossips them.
        let all = requests(&chain());
        let doors = match &door {
            Some(door) => std::slice::from_ref(door),
            None => &submitters[..],
        };
        for mailbox in doors {
            for r in &all {
                mailbox.submit(r.clone()).await.expect("submitted");
            }
        }
        let mut wanted = all.len();
        if let Some(kaspa) = &scenario.kaspa {
            // Deposits for new accounts arrive on Kaspa in three blocks, which the members'
            // followers see one after the other.
            for b in 0..3u8 {
                let deposits = (0..3u8)
                    .map(|j| OnLedgerRequest {
                        l1_tx_id: Hash32([0xa0 + 3 * b + j; 32]),
                        index: 0,
                        sender: agent(&key(100 + usize::from(3 * b + j))),
                        deposit_sompi: 5 * 100_000_000,
                        body: OnLedgerBody::DepositOnly,
                    })
                    .collect();
                kaspa.add(deposits);
                for member in 0..4 {
                    context.sleep(Duration::from_millis(300)).await;
                    kaspa.reveal(member);
                }
            }
            wanted += kaspa.requests();
        }
        if let Some(healing) = scenario.partition {
            context.sleep(healing).await;
            // Neither side is a quorum: nothing was finalized.
            for p in &progress {
                assert!(
                    p.executed().is_empty(),
                    "a block was finalized without a quorum"
                );
            }
            for (i, a) in participants.iter().enumerate() {
                for (j, b) in participants.iter().enumerate() {
                    if split(i, j) {
                        oracle
                            .add_link(a.clone(), b.clone(), scenario.link.clone())
                            .await
                            .expect("link");
                    }
                }
            }
        }
        loop {
            context.sleep(Duration::from_millis(500)).await;
            // Every request ran, and a finalized block attests a state: an idle committee still
            // makes the block that certifies its last state.
            let done = progress.iter().all(|p| {
                let executed = p.executed();
                executed.iter().map(|e| e.receipts.len()).sum::<usize>() >= wanted
                    && executed.iter().any(|e| e.attests.is_some())
            });
            if done {
                break;
            }
        }
        // A request that ran is not taken again, by any member.
        for mailbox in &submitters {
            for r in &all {
                assert!(
                    !mailbox.submit(r.clone()).await.expect("submitted"),
                    "taken again"
                );
            }
        }
        progress
    })
}

/// Every running member executed the same blocks to the same headers, and together they ran
/// every request exactly once.
fn check_agreement(members: &[Progress]) {
    check_agreement_with(members, SENDERS * REQUESTS_EACH as usize)
}

/// No honest member voted against an honest member's proposal: what it had not seen yet (a
/// block, a state, a Kaspa block) it waited for.
fn assert_none_refused(members: &[Progress]) {
    for m in members {
        assert_eq!(m.refused(), 0, "an honest proposal was refused");
    }
}

/// [`check_agreement`] when `wanted` requests (on- and off-ledger) were sent.
fn check_agreement_with(members: &[Progress], wanted: usize) {
    let members: Vec<_> = members.iter().map(Progress::executed).collect();
    let shortest = members.iter().map(Vec::len).min().expect("members");
    assert!(shortest > 0, "no member executed anything");
    for m in &members {
        for (a, b) in m.iter().zip(&members[0]) {
            assert_eq!(a.height, b.height);
            assert_eq!(
                a.digest, b.digest,
                "members finalized different blocks at {}",
                a.height
            );
            assert_eq!(
                a.header, b.header,
                "members' headers differ at {}",
                a.height
            );
            assert_eq!(
                a.randomness, b.randomness,
                "members drew different randomness at {}",
                a.height
            );
        }
        // A block that ran requests drew from a seed; no two blocks drew the same.
        for e in m {
            assert!(
                e.receipts.is_empty() || e.randomness.is_some(),
                "block {} ran requests without randomness",
                e.height
            );
        }
        let drawn: Vec<_> = m.iter().filter_map(|e| e.randomness).collect();
        let distinct: std::collections::BTreeSet<_> = drawn.iter().collect();
        assert_eq!(
            drawn.len(),
            distinct.len(),
            "two blocks drew the same randomness"
        );
        // What each block attests is the state the members reached at that height.
        let longest = members.iter().max_by_key(|m| m.len()).expect("members");
        for e in m {
            if let Some(a) = e.attests {
                let at = &longest[a.height as usize - 1];
                assert_eq!(at.height, a.height);
                assert_eq!(
                    a.header,
                    at.header.hash().0,
                    "block {} attests another state",
                    e.height
                );
            }
        }
        let ran: Vec<_> = m.iter().flat_map(|e| e.receipts.clone()).collect();
        let unique: std::collections::BTreeSet<_> = ran.iter().collect();
        assert_eq!(ran.len(), unique.len(), "a request ran twice");
        assert_eq!(ran.len(), wanted, "not every request ran");
    }
}

#[test]
fn four_members_agree_on_every_block() {
    for seed in 0..seeds() {
        let members = run(seed, Scenario::default());
        assert_eq!(members.len(), 4);
        check_agreement(&members);
        assert_none_refused(&members);
        for m in &members {
            // A finalization: the proposal (round, parent view, digest) and two 48-byte BLS
            // threshold signatures (the vote and the VRF seed).
            let bytes = m.certificate_bytes().expect("a finalization");
            assert!((96..=160).contains(&bytes), "a {bytes}-byte certificate");
            if seed == 0 {
                eprintln!("finalization certificate: {bytes} bytes");
            }
        }
    }
}

#[test]
fn one_crashed_member_of_four_does_not_stop_the_chain() {
    for seed in 0..seeds() {
        let members = run(
            seed,
            Scenario {
                crashed: 1,
                ..Scenario::default()
            },
        );
        assert_eq!(members.len(), 3);
        check_agreement(&members);
        assert_none_refused(&members);
    }
}

#[test]
fn a_quarter_of_messages_lost_still_agrees() {
    for seed in 0..seeds() {
        let members = run(
            seed,
            Scenario {
                link: link(100, 0.75),
                ..Scenario::default()
            },
        );
        check_agreement(&members);
        assert_none_refused(&members);
    }
}

#[test]
fn a_partition_without_quorum_halts_then_heals() {
    for seed in 0..seeds() {
        let members = run(
            seed,
            Scenario {
                partition: Some(Duration::from_secs(30)),
                ..Scenario::default()
            },
        );
        check_agreement(&members);
        assert_none_refused(&members);
    }
}

#[test]
fn an_equivocating_member_cannot_fork_the_chain() {
    for seed in 0..seeds() {
        let members = run(
            seed,
            Scenario {
                equivocator: true,
                ..Scenario::default()
            },
        );
        assert_eq!(members.len(), 3);
        check_agreement(&members);
    }
}

#[test]
fn a_member_whose_state_diverges_cannot_get_it_into_the_chain() {
    for seed in 0..seeds() {
        let members = run(
            seed,
            Scenario {
                diverging: true,
                ..Scenario::default()
            },
        );
        assert_eq!(members.len(), 4);
        let (honest, diverging) = members.split_at(3);
        check_agreement(honest);
        let diverging = diverging[0].executed();
        let honest = honest[0].executed();
        assert_ne!(
            diverging[0].header, honest[0].header,
            "the sabotage took no effect"
        );
        // Finalized blocks attested states, and only the honest members' (checked above).
        assert!(honest.iter().any(|e| e.attests.is_some()));
    }
}

/// Starts the four members of `fixture`'s committee, member `i` on `chains[i]`, all at one fixed
/// Kaspa block.
/// Submits `requests` to member 0 of `members` and waits until it has run `total` requests
/// in all.
async fn run_on_member_0(
    context: &deterministic::Context,
    members: &[Running],
    requests: &[wisp_chain::VerifiedRequest],
    total: usize,
) {
    for r in requests {
        members[0].1.submit(r.clone()).await.expect("submitted");
    }
    let ran = |p: &Progress| p.executed().iter().map(|e| e.receipts.len()).sum::<usize>();
    while ran(&members[0].0) < total {
        context.sleep(Duration::from_millis(500)).await;
    }
}

/// A running member: its progress, its mailbox, and the tasks to abort to crash it.
type Running = (Progress, wisp_consensus::Mailbox, Vec<Handle<()>>);

/// Four members keyed by commonware's test fixture, on 50 ms links that lose nothing, each on
/// its own [`chain`]: the fixture, the network's oracle, the chains and the running members.
async fn four_members(
    context: &mut deterministic::Context,
) -> (
    commonware_cryptography::certificate::mocks::Fixture<Threshold>,
    Oracle<PublicKey, deterministic::Context>,
    Vec<Arc<Chain>>,
    Vec<Running>,
) {
    let fixture = threshold::fixture::<MinSig, _>(context, b"wisp-consensus-test", 4);
    let participants = fixture.participants.clone();
    let oracle = network(context, &participants, &link(50, 1.0), |_, _| true).await;
    let chains: Vec<Arc<Chain>> = (0..4).map(|_| Arc::new(chain())).collect();
    let members = start_all(context, &oracle, &fixture, &chains).await;
    (fixture, oracle, chains, members)
}

async fn start_all(
    context: &deterministic::Context,
    oracle: &Oracle<PublicKey, deterministic::Context>,
    fixture: &commonware_cryptography::certificate::mocks::Fixture<Threshold>,
    chains: &[Arc<Chain>],
) -> Vec<Running> {
    let mut members = Vec::new();
    for (i, me) in fixture.participants.iter().enumerate() {
        members.push(
            start_member(
                context,
                oracle,
                fixture.schemes[i].clone(),
                me.clone(),
                i,
                chains[i].clone(),
                Box::new(FixedL1(L1Ref::default())),
            )
            .await,
        );
    }
    members
}

#[test]
fn a_member_restarted_after_a_crash_catches_up() {
    for seed in 0..seeds() {
        runner(seed, 300).start(|mut context| async move {
            // Each member's chain is its durable store: it survives the member's crash.
            let (fixture, oracle, chains, mut members) = four_members(&mut context).await;
            let all = requests(&chains[0]);
            let (first, second) = all.split_at(all.len() / 2);
            let ran = |p: &Progress| p.executed().iter().map(|e| e.receipts.len()).sum::<usize>();
            for (_, mailbox, _) in &members {
                for r in first {
                    mailbox.submit(r.clone()).await.expect("submitted");
                }
            }
            while members.iter().any(|(p, ..)| ran(p) < first.len()) {
                context.sleep(Duration::from_millis(500)).await;
            }
            // Member 3 crashes; the others run the second half without it.
            for task in members[3].2.drain(..) {
                task.abort();
            }
            for (_, mailbox, _) in &members[..3] {
                for r in second {
                    mailbox.submit(r.clone()).await.expect("submitted");
                }
            }
            while members[..3].iter().any(|(p, ..)| ran(p) < all.len()) {
                context.sleep(Duration::from_millis(500)).await;
            }
            let head = chains[0].head().expect("head").index;
            assert!(
                chains[3].head().expect("head").index < head,
                "member 3 kept running"
            );
            // It restarts on its chain and catches up from the others.
            let restarted = start_member(
                &context,
                &oracle,
                fixture.schemes[3].clone(),
                fixture.participants[3].clone(),
                3,
                chains[3].clone(),
                Box::new(FixedL1(L1Ref::default())),
            )
            .await;
            while chains[3].head().expect("head").index < head {
                context.sleep(Duration::from_millis(500)).await;
            }
            for index in 1..=head {
                assert_eq!(
                    chains[3].db().block(index).expect("block"),
                    chains[0].db().block(index).expect("block"),
                    "block {index} differs after the restart"
                );
            }
            for r in &all {
                assert!(
                    chains[3].db().receipt(&r.id()).expect("receipt").is_some(),
                    "member 3 never ran {}",
                    r.id()
                );
            }
            assert!(!restarted.0.executed().is_empty());
        });
    }
}

#[test]
fn a_committee_keyed_by_distributed_key_generation_agrees() {
    for seed in 0..seeds() {
        let members = run(
            seed,
            Scenario {
                keygen: true,
                ..Scenario::default()
            },
        );
        assert_eq!(members.len(), 4);
        check_agreement(&members);
        assert_none_refused(&members);
    }
}

#[test]
fn a_request_given_to_one_member_reaches_the_leaders() {
    for seed in 0..seeds() {
        let members = run(
            seed,
            Scenario {
                one_door: true,
                ..Scenario::default()
            },
        );
        check_agreement(&members);
        assert_none_refused(&members);
    }
}

#[test]
fn blocks_follow_kaspa_and_members_wait_for_what_they_have_not_seen() {
    for seed in 0..seeds() {
        let kaspa = Kaspa::default();
        let members = run(
            seed,
            Scenario {
                kaspa: Some(kaspa.clone()),
                ..Scenario::default()
            },
        );
        check_agreement_with(
            &members,
            SENDERS * REQUESTS_EACH as usize + kaspa.requests(),
        );
        for m in &members {
            assert_eq!(
                m.refused(),
                0,
                "a member refused a proposal instead of waiting"
            );
            let executed = m.executed();
            let last = executed.last().expect("blocks");
            assert_eq!(
                last.header.l1_daa_score, 300,
                "the last Kaspa block was not reached"
            );
        }
    }
}

/// A node restored from a member's snapshot — the state under a header a certified block
/// attests, fetched page by page and checked against its root — follows the committee from
/// there to the members' headers; a base whose header, blocks or certificate are not the
/// committee's is refused before any state is fetched.
#[test]
fn a_node_restored_from_a_certified_snapshot_follows_the_committee() {
    runner(12, 300).start(|mut context| async move {
        let (fixture, _oracle, chains, members) = four_members(&mut context).await;
        let all = requests(&chains[0]);
        let (early, late) = all.split_at(all.len() / 2);
        run_on_member_0(&context, &members, early, early.len()).await;
        // The snapshot base member 0 serves (as `wisp_getSnapshotBase` does).
        let source = &chains[0];
        let certified = follow::stored_finalization(source)
            .expect("readable")
            .expect("a finalization is stored");
        let attested = follow::stored_block(source, certified.height)
            .expect("readable")
            .expect("stored")
            .attests
            .expect("the certified block attests a state");
        let header = follow::attested_header(source, &attested)
            .expect("readable")
            .expect("member 0 has the attested header");
        assert_eq!(
            header.index,
            attested.height + 1,
            "one block before the committee"
        );
        let blocks: Vec<Vec<u8>> = (attested.height..=certified.height)
            .map(|h| {
                follow::stored_block_bytes(source, h)
                    .expect("readable")
                    .expect("stored")
            })
            .collect();
        let header_bytes = borsh::to_vec(&header).expect("encodes");
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let scheme = &fixture.schemes[0];
        let check = |rng: &mut rand::rngs::StdRng,
                     scheme: &Threshold,
                     header: &[u8],
                     blocks: &[Vec<u8>],
                     certificate: &[u8]| {
            follow::check_snapshot_base(rng, scheme, source.chain_id(), header, blocks, certificate)
        };
        // Refused: another state root, a block left out, another committee's key, a
        // certificate with one byte changed.
        let mut forged = header.clone();
        forged.state_root = Hash32([9; 32]);
        let forged = borsh::to_vec(&forged).expect("encodes");
        assert!(matches!(
            check(&mut rng, scheme, &forged, &blocks, &certified.certificate),
            Err(ConsensusError::Forged(why)) if why.contains("attests")
        ));
        if blocks.len() > 2 {
            let mut skipped = blocks.clone();
            skipped.remove(1);
            assert!(matches!(
                check(
                    &mut rng,
                    scheme,
                    &header_bytes,
                    &skipped,
                    &certified.certificate
                ),
                Err(ConsensusError::Forged(_))
            ));
        }
        let other = threshold::fixture::<MinSig, _>(&mut context, b"wisp-consensus-test", 4);
        assert!(matches!(
            check(
                &mut rng,
                &other.schemes[0],
                &header_bytes,
                &blocks,
                &certified.certificate
            ),
            Err(ConsensusError::Forged(_))
        ));
        let mut bad_certificate = certified.certificate.clone();
        let last = bad_certificate.len() - 1;
        bad_certificate[last] ^= 1;
        assert!(check(&mut rng, scheme, &header_bytes, &blocks, &bad_certificate).is_err());
        let base = check(
            &mut rng,
            scheme,
            &header_bytes,
            &blocks,
            &certified.certificate,
        )
        .expect("member 0's base checks");

        // The state under the header, page by page, into a new database; then a chain on it.
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = wisp_state::StateDb::open(&dir.path().join("state.redb")).expect("opens");
            let mut restore = db.begin_restore(&base.header).expect("empty store");
            loop {
                let page = source
                    .db()
                    .state_chunk(header.index, restore.last_key(), 16, 1 << 20)
                    .expect("served");
                restore
                    .add_chunk(page.entries, &page.proof)
                    .expect("page checks");
                if page.last {
                    break;
                }
            }
            let meta = base.meta();
            let meta: Vec<(&str, Vec<u8>)> =
                meta.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
            let receipts = source.db().block_receipts(header.index).expect("stored");
            restore.finish(&receipts, &meta).expect("restored");
        }
        let restored = Arc::new(Chain::open(dir.path(), &genesis()).expect("opens restored"));
        assert_eq!(restored.head().expect("head"), header);
        let mut follower = follow::Follower::new(
            restored.clone(),
            Box::new(FixedL1(L1Ref::default())),
            scheme.clone(),
            None,
        )
        .expect("follower");
        assert_eq!(follower.height(), attested.height);

        // More requests run; the restored node follows every final block after its base.
        run_on_member_0(&context, &members, late, all.len()).await;
        let newest = follow::stored_finalization(source)
            .expect("readable")
            .expect("stored");
        let batch = stored_blocks(source, attested.height + 1, newest.height);
        let done = follower
            .apply(&mut rng, &batch, &newest.certificate)
            .expect("applied");
        assert!(done + 1 >= batch.len(), "ran {done} of {}", batch.len());
        let head = restored.head().expect("head").index;
        assert!(head >= header.index + batch.len() as u64 - 1);
        for index in header.index..=head {
            assert_eq!(
                restored.db().block(index).expect("block"),
                source.db().block(index).expect("block"),
                "block {index} differs on the restored node"
            );
        }
        assert!(matches!(
            restored.db().block(1),
            Err(wisp_state::StateError::UnknownBlock(1))
        ));
    });
}

/// An access node's follower, fed what a member stores (its blocks and newest finalization),
/// reaches the member's headers; a batch whose certificate, blocks or committee are not the
/// committee's runs nothing.
#[test]
fn a_follower_checks_and_executes_what_members_finalized() {
    runner(11, 300).start(|mut context| async move {
        let (fixture, _oracle, chains, members) = four_members(&mut context).await;
        let all = requests(&chains[0]);
        run_on_member_0(&context, &members, &all, all.len()).await;
        // What member 0 serves to access nodes.
        let follow::StoredFinalization {
            height: certified,
            certificate,
            ..
        } = follow::stored_finalization(&chains[0])
            .expect("readable")
            .expect("a finalization is stored");
        let blocks = stored_blocks(&chains[0], 1, certified);
        let follower = |scheme: &Threshold| follower_of(chain(), scheme);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);

        // A certificate with one byte changed, blocks that skip one, a request swapped out,
        // and a certificate checked against another committee's key: nothing runs.
        let (fresh, mut f) = follower(&fixture.schemes[0]);
        let start = fresh.head().expect("head").index;
        let mut bad_certificate = certificate.clone();
        let last = bad_certificate.len() - 1;
        bad_certificate[last] ^= 1;
        assert!(f.apply(&mut rng, &blocks, &bad_certificate).is_err());
        let skipped: Vec<Block> = blocks.iter().skip(1).cloned().collect();
        assert!(matches!(
            f.apply(&mut rng, &skipped, &certificate),
            Err(ConsensusError::Forged(_))
        ));
        let mut swapped = blocks.clone();
        let busy = swapped
            .iter()
            .position(|b| !b.requests.is_empty())
            .expect("a block with requests");
        swapped[busy].requests.pop();
        assert!(matches!(
            f.apply(&mut rng, &swapped, &certificate),
            Err(ConsensusError::Forged(_))
        ));
        let other = threshold::fixture::<MinSig, _>(&mut context, b"wisp-consensus-test", 4);
        let (_, mut stranger) = follower(&other.schemes[0]);
        assert!(matches!(
            stranger.apply(&mut rng, &blocks, &certificate),
            Err(ConsensusError::Forged(_))
        ));
        assert_eq!(f.height(), 0);
        assert_eq!(fresh.head().expect("head").index, start, "nothing ran");

        // A node whose state differs from the committee's (here: one block more before it
        // follows) stops at the first block that attests a state it did not reach.
        let (drifted, mut d) = follower(&fixture.schemes[0]);
        drifted
            .execute_block(wisp_chain::BlockInputs::default())
            .expect("an extra block");
        assert!(matches!(
            d.apply(&mut rng, &blocks, &certificate),
            Err(ConsensusError::Diverged(_))
        ));

        // The real batch runs, to member 0's headers (all but the certified block, if it
        // waits for its child's seed).
        let done = f.apply(&mut rng, &blocks, &certificate).expect("applied");
        // Blocks past the certified one are not taken (their parent's seed is not certified).
        // Here the certified block runs no request; a busy certified block followed by more
        // blocks (which must wait for the next batch) is not reached by this run.
        let (_, mut g) = follower(&fixture.schemes[0]);
        let mut extra = blocks.clone();
        let last = extra.last().expect("blocks").clone();
        extra.push(Block {
            parent: last.digest().0,
            height: last.height + 1,
            view: last.view + 1,
            ..last
        });
        assert_eq!(
            g.apply(&mut rng, &extra, &certificate).expect("applied"),
            done
        );
        assert!(done + 1 >= blocks.len(), "ran {done} of {}", blocks.len());
        let head = fresh.head().expect("head").index;
        assert!(head > start);
        for index in 1..=head {
            assert_eq!(
                fresh.db().block(index).expect("block"),
                chains[0].db().block(index).expect("block"),
                "block {index} differs on the follower"
            );
        }
    });
}

/// The chain owner's key (the genesis's owner).
fn owner() -> secp256k1::Keypair {
    key(1000)
}

/// [`chain`] with a deposit for the chain owner on top (what it pays a rotation's gas with),
/// as on every node before the committee starts.
fn owned_chain() -> Chain {
    let chain = chain();
    chain
        .execute_block(wisp_chain::BlockInputs {
            randomness: None,
            l1: L1Ref::default(),
            on_ledger: vec![OnLedgerRequest {
                l1_tx_id: Hash32([0xee; 32]),
                index: 0,
                sender: agent(&owner()),
                deposit_sompi: 100 * 100_000_000,
                body: OnLedgerBody::DepositOnly,
            }],
            off_ledger: vec![],
        })
        .expect("the owner's deposit");
    chain
}

/// A follower of `chain` checking the chain's first committee's certificates with `scheme`,
/// on a fixed Kaspa block.
fn follower_of(chain: Chain, scheme: &Threshold) -> (Arc<Chain>, follow::Follower) {
    let chain = Arc::new(chain);
    let follower = follow::Follower::new(
        chain.clone(),
        Box::new(FixedL1(L1Ref::default())),
        scheme.clone(),
        None,
    )
    .expect("follower");
    (chain, follower)
}

/// Blocks `from..=to` as `chain` stores them.
fn stored_blocks(chain: &Chain, from: u64, to: u64) -> Vec<Block> {
    (from..=to)
        .map(|h| {
            follow::stored_block(chain, h)
                .expect("readable")
                .expect("stored")
        })
        .collect()
}

/// A rotation end to end on the deterministic runtime: the owner's `rotate_committee` names a
/// second committee; the first makes its blocks up to the handover and no more; the second,
/// whose members followed the first's certified blocks without voting, starts simplex from the
/// handover block and runs the requests sent afterwards; an access node crosses the handover,
/// checking each committee's blocks against that committee's key.
#[test]
fn a_chain_rotates_to_a_committee_that_followed_it() {
    for seed in 0..seeds().min(3) {
        runner(seed, 600).start(|mut context| async move {
            let next_namespace = b"wisp-consensus-next";
            let old = threshold::fixture::<MinSig, _>(&mut context, b"wisp-consensus-test", 4);
            let new = threshold::fixture::<MinSig, _>(&mut context, next_namespace, 4);
            let everyone: Vec<PublicKey> = old
                .participants
                .iter()
                .chain(&new.participants)
                .cloned()
                .collect();
            let oracle = network(&context, &everyone, &link(50, 1.0), |_, _| true).await;
            let old_chains: Vec<Arc<Chain>> = (0..4).map(|_| Arc::new(owned_chain())).collect();
            let olds = start_all(&context, &oracle, &old, &old_chains).await;

            // The owner names the new committee (its certificate key and namespace; any
            // valid anchor key).
            use commonware_codec::Encode as _;
            let body = RequestBody {
                chain: old_chains[0].chain_id(),
                call: Call {
                    target: Hname::of("governance"),
                    entry_point: Hname::of("rotate_committee"),
                    args: borsh::to_vec(&(
                        Hash32(key(2000).x_only_public_key().0.serialize()),
                        new.schemes[0].identity().encode().to_vec(),
                        next_namespace.to_vec(),
                    ))
                    .expect("args"),
                    transfer_sompi: 0,
                },
                gas_budget: 1_000_000,
                access_list: None,
                time_lock: None,
            };
            let rotate = wisp_chain::verify_signature(wisp_chain::sign_request(body, &owner(), 0))
                .expect("signature");
            run_on_member_0(&context, &olds, &[rotate], 1).await;
            let rotation = old_chains[0]
                .committee_rotation(1)
                .expect("readable")
                .expect("the rotation ran");
            let handover = wisp_consensus::era::next_handover(&old_chains[0], 0)
                .expect("readable")
                .expect("a handover height");
            // The old committee makes its last blocks without traffic, then stops.
            let top = |p: &Progress| p.executed().last().map_or(0, |e| e.height);
            while olds.iter().any(|m| top(&m.0) < handover) {
                context.sleep(Duration::from_millis(500)).await;
            }
            context.sleep(Duration::from_secs(10)).await;
            for m in &olds {
                assert_eq!(top(&m.0), handover, "an old member went past the handover");
            }
            let last = old_chains[0].head().expect("head");
            assert_eq!(last.index, rotation.last_block);
            let certified = follow::stored_handover(&old_chains[0], 1)
                .expect("readable")
                .expect("the handover certificate is kept");
            assert_eq!(certified.height, handover);
            let old_blocks = stored_blocks(&old_chains[0], 1, handover);
            assert!(old_blocks.last().expect("blocks").requests.is_empty());

            // The new members followed the old committee to the handover block, then start
            // from it.
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut news = Vec::new();
            let mut new_chains = Vec::new();
            for (i, me) in new.participants.iter().enumerate() {
                let (chain, mut follower) = follower_of(owned_chain(), &old.schemes[0]);
                assert_eq!(
                    follower
                        .apply(&mut rng, &old_blocks, &certified.certificate)
                        .expect("applied"),
                    old_blocks.len()
                );
                assert_eq!((follower.epoch(), follower.height()), (1, handover));
                assert_eq!(chain.head().expect("head"), last);
                let era = wisp_consensus::Era::of(&chain, 1).expect("era");
                assert_eq!(era.floor_height, handover);
                news.push(
                    start_member_of(
                        &context,
                        &oracle,
                        (new.schemes[i].clone(), me.clone(), i),
                        chain.clone(),
                        Box::new(FixedL1(L1Ref::default())),
                        Some(era),
                    )
                    .await,
                );
                new_chains.push(chain);
            }
            let all = requests(&new_chains[0]);
            run_on_member_0(&context, &news, &all, all.len()).await;
            let ran = |p: &Progress| p.executed().iter().map(|e| e.receipts.len()).sum::<usize>();
            while news.iter().any(|m| ran(&m.0) < all.len()) {
                context.sleep(Duration::from_millis(500)).await;
            }
            // The new committee agrees, continues the heights, and ran every request once.
            let executed: Vec<_> = news.iter().map(|m| m.0.executed()).collect();
            for m in &executed {
                assert_eq!(m.first().expect("blocks").height, handover + 1);
                for (a, b) in m.iter().zip(&executed[0]) {
                    assert_eq!(
                        (a.height, a.digest, &a.header),
                        (b.height, b.digest, &b.header)
                    );
                }
                assert!(m
                    .iter()
                    .all(|e| e.receipts.is_empty() || e.randomness.is_some()));
            }
            for m in &olds {
                assert_eq!(
                    top(&m.0),
                    handover,
                    "an old member took the new committee's blocks"
                );
            }

            // An access node crosses the handover: the old committee's blocks with its
            // certificate, then the new one's with the new key the rotation recorded.
            let (fresh, mut access) = follower_of(owned_chain(), &old.schemes[0]);
            access
                .apply(&mut rng, &old_blocks, &certified.certificate)
                .expect("the old committee's blocks");
            assert_eq!(access.epoch(), 1);
            // The old committee's certificate no longer speaks for the chain.
            let top_new = follow::stored_finalization(&new_chains[0])
                .expect("readable")
                .expect("a new finalization");
            let new_blocks = stored_blocks(&new_chains[0], handover + 1, top_new.height);
            assert!(matches!(
                access.apply(&mut rng, &new_blocks, &certified.certificate),
                Err(ConsensusError::Forged(_))
            ));
            let done = access
                .apply(&mut rng, &new_blocks, &top_new.certificate)
                .expect("the new committee's blocks");
            assert!(done + 1 >= new_blocks.len());
            let head = fresh.head().expect("head");
            assert_eq!(head, new_chains[0].db().block(head.index).expect("block"));
            assert!(head.index > rotation.last_block);
        });
    }
}
