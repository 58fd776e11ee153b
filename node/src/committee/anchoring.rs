//! A committee moving its chain's anchor on Kaspa: the members sign each anchor successor with
//! their FROST shares of the anchor key (two rounds, `wisp_settlement::committee`), and Kaspa
//! sees one ordinary BIP340 signature.
//!
//! For each anchor UTXO one member coordinates: the member at position `hash(anchor) + k`
//! (mod N) in the committee, where `k` counts [`COORDINATOR_TURN`]s since this member first saw
//! the anchor, so a silent coordinator is replaced. The coordinator plans the successor
//! ([`AnchorPlan`]: the chain block it commits, the deposits it sweeps, its fee) from its own
//! chain and Kaspa view and sends the plan to every member. Each member rebuilds the
//! transaction from the plan with its own records (`Node::rebuild`: its own header at that
//! block, its own outbox, the withdrawals its anchor committed, the fee budget its chain has
//! paid) and commits to sign only if that works; the coordinator takes the first `threshold`
//! commitments (`SigningSession`), collects their shares, and submits the signed transaction.
//! It then sends it to every member, which records it as its anchor's successor in flight, so
//! each member follows the anchor on Kaspa from then on.
//!
//! Safety does not rest on the coordinator: a member signs at most one successor of each
//! anchor UTXO (its `FileSigningLog`, written before the share), so no two successors can both
//! gather a quorum. A member asked to sign another successor of an anchor it already signed
//! refuses and says which plan it signed; the coordinator then proposes that plan instead.

use super::bad;
use crate::anchoring::{AnchorPlan, Built};
use crate::{Node, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use kaspa_consensus_core::tx::TransactionOutpoint;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wisp_settlement::committee::{outpoint_key, MemberId, MemberKey, Nonces, SigningSession};

/// How long a coordinator has to get a successor signed before the next member takes over.
pub const COORDINATOR_TURN: Duration = Duration::from_secs(15);

/// How often a member looks at its anchor (confirms, re-submits, coordinates).
const STEP: Duration = Duration::from_millis(500);

/// Most signing rounds a member keeps nonces for at once (each coordinator's attempt is one).
const MAX_ROUNDS: usize = 16;

/// Signed successors a member remembers, to tell members that missed them.
const KNOWN_SUCCESSORS: usize = 64;

/// Most plans of one coordinator a member looks at per [`PROPOSE_WINDOW`]: checking a plan asks
/// the member's kaspad for the deposits waiting. An honest coordinator proposes once per round
/// (every 5 s at most), and once more when it adopts a plan members signed already.
const PROPOSALS_PER_WINDOW: usize = 4;

/// See [`PROPOSALS_PER_WINDOW`].
const PROPOSE_WINDOW: Duration = Duration::from_secs(2);

/// How often a member that lost track of its anchor asks the others.
const ASK_EVERY: Duration = Duration::from_secs(2);

/// Messages between members about the anchor (the committee's anchoring p2p channel).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub(crate) enum AnchorWire {
    /// Coordinator → all: sign the successor this plan describes (round `round`).
    Propose { round: u64, plan: AnchorPlan },
    /// Member → coordinator: its FROST commitment for `round`.
    Commit {
        round: u64,
        attempt: u32,
        commitment: Vec<u8>,
    },
    /// Member → coordinator: it will not sign `round`'s plan, and why; `signed` is the plan it
    /// signed for this anchor already, if that is why.
    Refuse {
        round: u64,
        reason: String,
        signed: Option<AnchorPlan>,
    },
    /// Coordinator → the chosen signers: the commitments of `attempt` of `round`.
    Sign {
        round: u64,
        attempt: u32,
        commitments: BTreeMap<MemberId, Vec<u8>>,
    },
    /// Member → coordinator: its signature share.
    Share {
        round: u64,
        attempt: u32,
        share: Vec<u8>,
    },
    /// Coordinator → all: the successor is signed (the plan and the committee's signature).
    /// Also the answer to [`AnchorWire::Which`].
    Signed {
        plan: AnchorPlan,
        signature: Vec<u8>,
    },
    /// A member whose anchor Kaspa no longer holds (it missed the successor while down) →
    /// all: which signed successor spent this anchor?
    Which { anchor: TransactionOutpoint },
}

/// A message to send: to one member (by position) or to every other member.
pub(crate) enum Outgoing {
    To(usize, Vec<u8>),
    All(Vec<u8>),
}

/// The coordinator's state for one round.
struct Coordinating {
    round: u64,
    plan: AnchorPlan,
    built: Built,
    session: SigningSession,
    started: Instant,
}

/// One member's anchoring: runs on the node's runtime; the member's p2p task carries its
/// messages (`inbox`, `outbox`).
pub(crate) struct Anchorer {
    node: Arc<Node>,
    /// This member's position in the committee (its FROST identifier is `me + 1`).
    me: usize,
    members: usize,
    key: MemberKey,
    log: crate::signing_log::FileSigningLog,
    inbox: tokio::sync::mpsc::Receiver<(usize, Vec<u8>)>,
    outbox: tokio::sync::mpsc::UnboundedSender<Outgoing>,
    /// Messages to this member itself (it is its own coordinator's signer too).
    local: VecDeque<AnchorWire>,
    /// The anchor this member last saw as current, and since when.
    seen: Option<(TransactionOutpoint, Instant)>,
    coordinating: Option<Coordinating>,
    /// Nonces of rounds this member committed to: (round, attempt) → the coordinator that
    /// proposed it, the plan and the nonces.
    nonces: BTreeMap<(u64, u32), (usize, AnchorPlan, Nonces)>,
    /// When each member last had plans of its looked at (at most [`PROPOSALS_PER_WINDOW`]
    /// per [`PROPOSE_WINDOW`]).
    proposed: BTreeMap<usize, VecDeque<Instant>>,
    /// The plan this member signed, by anchor (to tell a later coordinator).
    signed: BTreeMap<([u8; 32], u32), AnchorPlan>,
    /// A signed successor this member could not record yet (its chain had not reached the
    /// block): retried at each step.
    pending: Option<(AnchorPlan, [u8; 64])>,
    /// Signed successors this member has seen (newest last), for members that missed them.
    known: VecDeque<(AnchorPlan, [u8; 64])>,
    /// When this member last asked the others about its anchor.
    asked: Option<Instant>,
    next_round: u64,
}

impl Anchorer {
    pub(crate) fn new(
        node: Arc<Node>,
        me: usize,
        members: usize,
        key: MemberKey,
        log: crate::signing_log::FileSigningLog,
        inbox: tokio::sync::mpsc::Receiver<(usize, Vec<u8>)>,
        outbox: tokio::sync::mpsc::UnboundedSender<Outgoing>,
    ) -> Anchorer {
        Anchorer {
            node,
            me,
            members,
            key,
            log,
            inbox,
            outbox,
            local: VecDeque::new(),
            seen: None,
            coordinating: None,
            nonces: BTreeMap::new(),
            proposed: BTreeMap::new(),
            signed: BTreeMap::new(),
            pending: None,
            known: VecDeque::new(),
            asked: None,
            // Rounds of different runs and members never collide.
            next_round: secp256k1::rand::random::<u64>() >> 1,
        }
    }

    /// Runs until the member's network goes away.
    pub(crate) async fn run(mut self) {
        let mut ticker = tokio::time::interval(STEP);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = self.inbox.recv() => {
                    let Some((from, bytes)) = message else { break };
                    match AnchorWire::try_from_slice(&bytes) {
                        Ok(wire) => self.handle(from, wire).await,
                        Err(e) => tracing::warn!(from, error = %e, "a malformed anchoring message"),
                    }
                }
                _ = ticker.tick() => {
                    if let Err(e) = self.step().await {
                        tracing::warn!(error = %e, "committee anchoring step failed; will retry");
                    }
                }
            }
            while let Some(wire) = self.local.pop_front() {
                self.handle(self.me, wire).await;
            }
        }
    }

    fn send(&mut self, to: usize, wire: AnchorWire) {
        if to == self.me {
            self.local.push_back(wire);
        } else if let Ok(bytes) = borsh::to_vec(&wire) {
            let _ = self.outbox.send(Outgoing::To(to, bytes));
        }
    }

    fn broadcast(&mut self, wire: AnchorWire) {
        if let Ok(bytes) = borsh::to_vec(&wire) {
            let _ = self.outbox.send(Outgoing::All(bytes));
        }
        self.local.push_back(wire);
    }

    /// The member coordinating `anchor` now.
    fn coordinator(&self, anchor: &TransactionOutpoint, since: Instant) -> usize {
        let turn = (since.elapsed().as_secs() / COORDINATOR_TURN.as_secs().max(1)) as usize;
        (first_coordinator(anchor, self.members) + turn) % self.members
    }

    async fn step(&mut self) -> Result<()> {
        let node = self.node.clone();
        let _one_at_a_time = node.anchor_lock.lock().await;
        let mut track = self.node.anchor_track()?;
        if let Some((plan, signature)) = self.pending.take() {
            if plan.anchor == track.current.outpoint && track.in_flight.is_none() {
                match self.node.rebuild(&track, &plan) {
                    Ok(built) => {
                        self.node
                            .record_successor(&mut track, built, &signature, false)
                            .await?;
                    }
                    Err(_) => self.pending = Some((plan, signature)),
                }
            }
        }
        if let Some(progress) = self.node.follow_anchor(&mut track).await? {
            tracing::debug!(?progress, "committee anchor");
            if progress == crate::AnchorProgress::Lost {
                // Kaspa spent the anchor by a successor this member has not recorded (it was
                // down when it was signed): adopt the one in flight, or ask the others.
                if self.node.adopt_in_flight(&mut track).await? {
                    tracing::info!(
                        block = track.current.block_index,
                        "caught up with the committee's anchor"
                    );
                } else if self.asked.is_none_or(|at| at.elapsed() >= ASK_EVERY) {
                    self.asked = Some(Instant::now());
                    // A next committee's member learns the anchor from the node it followed
                    // (checked against its own chain and Kaspa).
                    if let Some(upstream) = self.node.upstream() {
                        if self
                            .node
                            .adopt_upstream_anchor(&mut track, upstream)
                            .await?
                        {
                            return Ok(());
                        }
                    }
                    let anchor = track.current.outpoint;
                    if let Ok(bytes) = borsh::to_vec(&AnchorWire::Which { anchor }) {
                        let _ = self.outbox.send(Outgoing::All(bytes));
                    }
                }
            }
            return Ok(());
        }
        // Only the committee the anchor names signs it: before a rotation's successor is
        // confirmed the old committee, after it the new one.
        if !self.names_this_committee(&track)? {
            self.coordinating = None;
            return Ok(());
        }
        let anchor = track.current.outpoint;
        let since = match self.seen {
            Some((seen, since)) if seen == anchor => since,
            _ => {
                let now = Instant::now();
                self.seen = Some((anchor, now));
                self.coordinating = None;
                self.nonces.clear();
                now
            }
        };
        if self.coordinator(&anchor, since) != self.me {
            self.coordinating = None;
            return Ok(());
        }
        if let Some(c) = &self.coordinating {
            if c.plan.anchor == anchor && c.started.elapsed() < COORDINATOR_TURN / 3 {
                return Ok(()); // this round is under way
            }
        }
        // A plan this member signed already for this anchor is the only one it may sign.
        let plan = match self.signed.get(&outpoint_key(&anchor)) {
            Some(plan) => Some(plan.clone()),
            None => self.node.plan_successor(&track).await?,
        };
        let Some(plan) = plan else {
            return Ok(());
        };
        self.start_round(&track, plan)
    }

    /// Whether `track`'s current anchor names this committee's anchor key.
    fn names_this_committee(&self, track: &crate::anchoring::Track) -> Result<bool> {
        Ok(self.node.anchor_key_after(track.current.block_index)? == self.key.group_key())
    }

    fn start_round(&mut self, track: &crate::anchoring::Track, plan: AnchorPlan) -> Result<()> {
        let built = self.node.rebuild(track, &plan)?;
        let round = self.next_round;
        self.next_round = self.next_round.wrapping_add(1);
        tracing::info!(
            round,
            block = plan.block_index,
            deposits = plan.deposits.len(),
            "coordinating the committee's signature of an anchor successor"
        );
        self.coordinating = Some(Coordinating {
            round,
            plan: plan.clone(),
            session: SigningSession::new(self.key.public(), built.unsigned.clone()),
            built,
            started: Instant::now(),
        });
        self.broadcast(AnchorWire::Propose { round, plan });
        Ok(())
    }

    async fn handle(&mut self, from: usize, wire: AnchorWire) {
        let result = match wire {
            AnchorWire::Propose { round, plan } => self.on_propose(from, round, plan).await,
            AnchorWire::Commit {
                round,
                attempt,
                commitment,
            } => self.on_commit(from, round, attempt, commitment),
            AnchorWire::Refuse {
                round,
                reason,
                signed,
            } => self.on_refuse(from, round, reason, signed),
            AnchorWire::Sign {
                round,
                attempt,
                commitments,
            } => self.on_sign(from, round, attempt, commitments),
            AnchorWire::Share {
                round,
                attempt,
                share,
            } => self.on_share(from, round, attempt, share).await,
            AnchorWire::Signed { plan, signature } => self.on_signed(plan, signature).await,
            AnchorWire::Which { anchor } => {
                let known = self
                    .known
                    .iter()
                    .find(|(plan, _)| plan.anchor == anchor)
                    .cloned();
                if let Some((plan, signature)) = known {
                    self.send(
                        from,
                        AnchorWire::Signed {
                            plan,
                            signature: signature.to_vec(),
                        },
                    );
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::warn!(from, error = %e, "committee anchoring");
        }
    }

    /// A coordinator's plan: commit to sign it if this member's own records agree.
    async fn on_propose(&mut self, from: usize, round: u64, plan: AnchorPlan) -> Result<()> {
        let refuse = |this: &mut Anchorer, reason: String, signed: Option<AnchorPlan>| {
            this.send(
                from,
                AnchorWire::Refuse {
                    round,
                    reason,
                    signed,
                },
            );
            Ok(())
        };
        // Another member's plans are looked at a few times per window at most (each costs a
        // look at kaspad), and only from the member whose turn it is, or the one before or
        // after it (members' clocks of the turn differ by up to a step).
        if from != self.me {
            let recent = self.proposed.entry(from).or_default();
            while recent
                .front()
                .is_some_and(|at| at.elapsed() >= PROPOSE_WINDOW)
            {
                recent.pop_front();
            }
            if recent.len() >= PROPOSALS_PER_WINDOW {
                return Ok(());
            }
            recent.push_back(Instant::now());
        }
        if let Some((seen, since)) = self.seen.filter(|_| from != self.me) {
            if seen == plan.anchor {
                let now = self.coordinator(&plan.anchor, since);
                let near = [
                    now,
                    (now + 1) % self.members,
                    (now + self.members - 1) % self.members,
                ];
                if !near.contains(&from) {
                    return refuse(
                        self,
                        "it is not this member's turn to coordinate".into(),
                        None,
                    );
                }
            }
        }
        if let Some(signed) = self.signed.get(&outpoint_key(&plan.anchor)) {
            if *signed != plan {
                let signed = signed.clone();
                return refuse(
                    self,
                    "this member signed another successor of this anchor".into(),
                    Some(signed),
                );
            }
        }
        let track = self.node.anchor_track()?;
        if !self.names_this_committee(&track)? {
            return refuse(
                self,
                "this member's anchor does not name its committee's key (the chain rotated)".into(),
                None,
            );
        }
        let built = match self.node.rebuild(&track, &plan) {
            Ok(built) => built,
            Err(e) => return refuse(self, e.to_string(), None),
        };
        // Every deposit swept must be one this member's Kaspa holds at the confirmation depth,
        // with that value: a successor Kaspa cannot accept would hold the anchor's one
        // signature for nothing.
        let waiting = self.node.confirmed_deposits().await?;
        if let Some(unknown) = plan.deposits.iter().find(|d| {
            !waiting.iter().any(|w| {
                w.outpoint == d.outpoint
                    && w.amount_sompi == d.amount_sompi
                    && w.block_daa_score == d.block_daa_score
            })
        }) {
            return refuse(
                self,
                format!(
                    "deposit {} is not confirmed on this member's Kaspa",
                    unknown.outpoint
                ),
                None,
            );
        }
        use wisp_settlement::committee::SigningLog;
        if let Some(logged) = self.log.signed(&plan.anchor) {
            if logged != built.unsigned.sighash() {
                return refuse(
                    self,
                    "this member's signing log holds another successor of this anchor".into(),
                    None,
                );
            }
        }
        let (nonces, commitment) = self
            .key
            .commit(&mut secp256k1::rand::thread_rng())
            .map_err(|e| bad(e.to_string()))?;
        // A new coordinator's session starts at attempt 1; a retried attempt re-proposes.
        if self.nonces.len() >= MAX_ROUNDS {
            if let Some(oldest) = self.nonces.keys().next().copied() {
                self.nonces.remove(&oldest);
            }
        }
        self.nonces.insert((round, 1), (from, plan, nonces));
        self.send(
            from,
            AnchorWire::Commit {
                round,
                attempt: 1,
                commitment,
            },
        );
        Ok(())
    }

    fn on_commit(
        &mut self,
        from: usize,
        round: u64,
        attempt: u32,
        commitment: Vec<u8>,
    ) -> Result<()> {
        let Some(c) = self.coordinating.as_mut().filter(|c| c.round == round) else {
            return Ok(());
        };
        let request = c
            .session
            .add_commitment(attempt, member_id(from), commitment)
            .map_err(|e| bad(e.to_string()))?;
        if let Some(request) = request {
            let chosen: Vec<usize> = request
                .commitments
                .keys()
                .map(|id| usize::from(*id) - 1)
                .collect();
            for to in chosen {
                self.send(
                    to,
                    AnchorWire::Sign {
                        round,
                        attempt: request.attempt,
                        commitments: request.commitments.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    fn on_refuse(
        &mut self,
        from: usize,
        round: u64,
        reason: String,
        signed: Option<AnchorPlan>,
    ) -> Result<()> {
        let Some(c) = self.coordinating.as_ref().filter(|c| c.round == round) else {
            return Ok(());
        };
        tracing::info!(from, reason, "a member will not sign this anchor successor");
        if let Some(signed) = signed.filter(|s| *s != c.plan && s.anchor == c.plan.anchor) {
            // Another coordinator's plan gathered this member's share: propose that one.
            let track = self.node.anchor_track()?;
            self.start_round(&track, signed)?;
        }
        Ok(())
    }

    /// The coordinator chose this member: sign, if its log allows (recorded first).
    fn on_sign(
        &mut self,
        from: usize,
        round: u64,
        attempt: u32,
        commitments: BTreeMap<MemberId, Vec<u8>>,
    ) -> Result<()> {
        // Only the coordinator that proposed the round picks its signers.
        if self
            .nonces
            .get(&(round, attempt))
            .is_none_or(|(proposer, ..)| *proposer != from)
        {
            return Ok(());
        }
        let Some((_, plan, nonces)) = self.nonces.remove(&(round, attempt)) else {
            return Ok(());
        };
        let track = self.node.anchor_track()?;
        let built = self.node.rebuild(&track, &plan)?;
        let share = self
            .key
            .sign_anchor(&built.unsigned, &commitments, nonces, &mut self.log)
            .map_err(|e| bad(e.to_string()))?;
        self.signed.insert(outpoint_key(&plan.anchor), plan);
        self.send(
            from,
            AnchorWire::Share {
                round,
                attempt,
                share,
            },
        );
        Ok(())
    }

    async fn on_share(
        &mut self,
        from: usize,
        round: u64,
        attempt: u32,
        share: Vec<u8>,
    ) -> Result<()> {
        let Some(c) = self.coordinating.as_mut().filter(|c| c.round == round) else {
            return Ok(());
        };
        let signature = match c.session.add_share(attempt, member_id(from), share) {
            Ok(Some(signature)) => signature,
            Ok(None) => return Ok(()),
            Err(e) => {
                // A bad share: this round is void; the next step starts another.
                self.coordinating = None;
                return Err(bad(format!("member {from}: {e}")));
            }
        };
        let Some(c) = self.coordinating.take() else {
            return Ok(());
        };
        {
            let _one_at_a_time = self.node.anchor_lock.lock().await;
            let mut track = self.node.anchor_track()?;
            if track.current.outpoint == c.plan.anchor && track.in_flight.is_none() {
                let progress = self
                    .node
                    .submit_successor(&mut track, c.built, &signature)
                    .await?;
                tracing::info!(?progress, "the committee signed an anchor successor");
            }
        }
        self.broadcast_signed(c.plan, signature);
        Ok(())
    }

    fn remember(&mut self, plan: &AnchorPlan, signature: [u8; 64]) {
        if self.known.iter().any(|(p, _)| p.anchor == plan.anchor) {
            return;
        }
        if self.known.len() >= KNOWN_SUCCESSORS {
            self.known.pop_front();
        }
        self.known.push_back((plan.clone(), signature));
    }

    fn broadcast_signed(&mut self, plan: AnchorPlan, signature: [u8; 64]) {
        self.remember(&plan, signature);
        let wire = AnchorWire::Signed {
            plan,
            signature: signature.to_vec(),
        };
        if let Ok(bytes) = borsh::to_vec(&wire) {
            let _ = self.outbox.send(Outgoing::All(bytes));
        }
    }

    /// Another member's signed successor: record it as in flight (the signature is checked
    /// when the transaction is finished, and must be the committee key's), and remember it
    /// for members that missed it. If Kaspa has spent this member's anchor already (it is
    /// catching up), the successor becomes its anchor at once.
    async fn on_signed(&mut self, plan: AnchorPlan, signature: Vec<u8>) -> Result<()> {
        let signature: [u8; 64] = signature
            .try_into()
            .map_err(|_| bad("an anchor signature that is not 64 bytes"))?;
        let node = self.node.clone();
        let _one_at_a_time = node.anchor_lock.lock().await;
        let mut track = node.anchor_track()?;
        if track.current.outpoint != plan.anchor || track.in_flight.is_some() {
            return Ok(());
        }
        match node.rebuild(&track, &plan) {
            Ok(built) => {
                node.record_successor(&mut track, built, &signature, false)
                    .await?;
                self.remember(&plan, signature);
                if node.adopt_in_flight(&mut track).await? {
                    tracing::info!(
                        block = track.current.block_index,
                        "caught up with the committee's anchor"
                    );
                    // Catching up: ask at once for the successor of the anchor just adopted.
                    self.asked = Some(Instant::now());
                    let anchor = track.current.outpoint;
                    if let Ok(bytes) = borsh::to_vec(&AnchorWire::Which { anchor }) {
                        let _ = self.outbox.send(Outgoing::All(bytes));
                    }
                }
            }
            // Its chain has not reached the block yet: again at the next step.
            Err(_) => self.pending = Some((plan, signature)),
        }
        Ok(())
    }
}

/// The position (in the committee's order, by key) of the member that coordinates the
/// successor of `anchor` first, among `members`; each [`COORDINATOR_TURN`] without a signed
/// successor passes the turn to the next position.
pub fn first_coordinator(anchor: &TransactionOutpoint, members: usize) -> usize {
    let mut start = [0u8; 8];
    start.copy_from_slice(&anchor.transaction_id.as_bytes()[..8]);
    let start = u64::from_le_bytes(start) ^ u64::from(anchor.index);
    (start % members.max(1) as u64) as usize
}

fn member_id(position: usize) -> MemberId {
    MemberId::try_from(position + 1).unwrap_or(MemberId::MAX)
}
