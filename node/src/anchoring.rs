//! Advancing the chain's anchor on Kaspa: after blocks, the node spends the anchor into a
//! successor that commits the chain's head, sweeps the deposits waiting at the deposit script,
//! pays the withdrawals the current anchor committed to, and commits the next batch of the
//! chain's outbox; it pays the L1 fee the chain has collected for it (the owner's
//! `ChainParams::anchor_fee_sompi` and each withdrawal's fee).
//!
//! Invariants:
//! - The transaction is written to disk before it is submitted, and while it can still be
//!   accepted the node re-submits that same transaction (after a restart too) instead of
//!   building another. Only when Kaspa can no longer accept it (a deposit it sweeps vanished in
//!   a reorg) does the node build another successor of the same anchor; it keeps watching the
//!   old one, so whichever Kaspa accepts becomes the anchor (both spend the same UTXO, so at
//!   most one can be).
//! - Kaspa decides what the anchor is: when a reorg undoes accepted anchor transactions, the
//!   node goes back to the newest anchor of its history that is unspent again, forgets the
//!   payments the undone transactions made, and offers the undone transaction again.
//! - The node spends on L1 fees at most what the owner has paid on the chain
//!   (`accounts.anchor_fees`), so `anchor value + deposits not yet swept = accounts.total +
//!   fees paid but not yet spent`, exactly (the end-to-end test checks it against kaspad).
//! - A successor commits only a block the chain has committed, and a newer one than the
//!   anchor's (the anchor script refuses anything else anyway).

use crate::{Node, Result};
use borsh::{BorshDeserialize, BorshSerialize};
use kaspa_consensus_core::tx::{Transaction, TransactionOutpoint};
use wisp_settlement::tx::{AnchorUtxo, DepositUtxo, FEE_SOMPI_PER_GRAM};
use wisp_settlement::{outbox_commitment, AnchorState, Payout};

/// Name of the node-local record (`StateDb::local`) that tracks the anchor.
const TRACK: &str = "anchor";

/// Most deposits one anchor transaction sweeps (the anchor script sums at most 8 inputs).
const MAX_SWEEP: usize = wisp_settlement::anchor::MAX_INPUTS - 1;

/// Estimated storage mass (grams) one anchor transaction's withdrawals may add: Kaspa's
/// KIP-9 storage mass of an output is about 10^12 / its value, and a standard transaction's
/// mass is at most 100,000.
const PAYOUT_MASS_BUDGET: u64 = 60_000;

/// Decodes the anchor record, also in its first layout (without history and watched
/// transactions), which a node written by an older Wisp left.
fn decode_track(bytes: &[u8]) -> std::io::Result<Track> {
    Track::try_from_slice(bytes).or_else(|e| {
        TrackV1::try_from_slice(bytes)
            .map(|v1| Track {
                current: v1.current,
                fees_spent_sompi: v1.fees_spent_sompi,
                in_flight: v1.in_flight,
                next_seq: v1.next_seq,
                history: Vec::new(),
                watched: Vec::new(),
            })
            .map_err(|_| e)
    })
}

/// The anchor an anchor transaction spends (its input 0).
fn spends(flight: &InFlight) -> TransactionOutpoint {
    flight
        .tx
        .inputs
        .first()
        .map(|i| i.previous_outpoint)
        .unwrap_or_default()
}

fn paid_record(seq: u64) -> String {
    format!("withdrawal-paid/{seq}")
}

/// A withdrawal committed by an anchor's outbox.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct StoredPayout {
    seq: u64,
    to: [u8; 32],
    amount_sompi: u64,
}

impl StoredPayout {
    fn payout(&self) -> Payout {
        Payout::to_key(&self.to, self.amount_sompi)
    }
}

/// An anchor UTXO as stored, with the withdrawals its outbox commits to.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct StoredAnchor {
    pub(crate) outpoint: TransactionOutpoint,
    amount_sompi: u64,
    pub(crate) block_index: u64,
    header_hash: [u8; 32],
    outbox: [u8; 32],
    committed: Vec<StoredPayout>,
}

impl StoredAnchor {
    /// Its state, under the committee key `committee_key` the chain's anchors name.
    fn state(&self, committee_key: [u8; 32]) -> AnchorState {
        AnchorState {
            block_index: self.block_index,
            header_hash: self.header_hash,
            outbox: self.outbox,
            committee_key,
        }
    }

    fn of(utxo: &AnchorUtxo, committed: Vec<StoredPayout>) -> StoredAnchor {
        StoredAnchor {
            outpoint: utxo.outpoint,
            amount_sompi: utxo.amount_sompi,
            block_index: utxo.state.block_index,
            header_hash: utxo.state.header_hash,
            outbox: utxo.state.outbox,
            committed,
        }
    }
}

/// A submitted anchor transaction not yet seen accepted.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct InFlight {
    tx: Transaction,
    successor: StoredAnchor,
    fee_sompi: u64,
    /// The outbox position after the successor's batch.
    next_seq: u64,
}

/// An anchor the node has moved past, with what the node knew then and the transaction that
/// spent it (to go back to if a reorg undoes that transaction).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Checkpoint {
    anchor: StoredAnchor,
    fees_spent_sompi: u64,
    next_seq: u64,
    spent_by: InFlight,
}

/// How many anchors back the node can go after a reorg (far deeper than a Kaspa reorg that
/// survives the chain's confirmation depth).
const MAX_HISTORY: usize = 64;

/// How many other anchor transactions the node keeps watching (see [`Track::watched`]).
const MAX_WATCHED: usize = MAX_HISTORY + 8;

/// What the node knows of its anchor, kept on disk.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub(crate) struct Track {
    pub(crate) current: StoredAnchor,
    fees_spent_sompi: u64,
    pub(crate) in_flight: Option<InFlight>,
    /// The first outbox entry no anchor has committed to yet.
    next_seq: u64,
    /// Earlier anchors, oldest first (at most [`MAX_HISTORY`]).
    history: Vec<Checkpoint>,
    /// Anchor transactions besides the one in flight that Kaspa may still accept: successors
    /// the node replaced because Kaspa could no longer accept them, and those a reorg undid
    /// (each spends `current` or an anchor one of the others makes).
    watched: Vec<InFlight>,
}

/// The record's layout before the history and superseded successors were kept.
#[derive(BorshDeserialize)]
struct TrackV1 {
    current: StoredAnchor,
    fees_spent_sompi: u64,
    in_flight: Option<InFlight>,
    next_seq: u64,
}

/// The anchor as the node sees it (`wisp_chainInfo`, tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorStatus {
    /// The confirmed anchor UTXO.
    pub outpoint: TransactionOutpoint,
    /// Its value, sompi.
    pub amount_sompi: u64,
    /// The chain block it commits to (0: the genesis anchor, none yet).
    pub block_index: u64,
    /// That block's header hash (zero for the genesis anchor).
    pub header_hash: [u8; 32],
    /// The outbox commitment of its state (the withdrawals its successor pays).
    pub outbox: [u8; 32],
    /// L1 fees spent by confirmed anchor transactions, sompi.
    pub fees_spent_sompi: u64,
    /// A submitted successor not yet seen accepted: its transaction id.
    pub in_flight: Option<kaspa_hashes::Hash>,
    /// Withdrawals the anchor's outbox commits to (paid by its successor), by sequence number.
    pub committed_withdrawals: Vec<u64>,
    /// The first withdrawal no anchor has committed to yet.
    pub next_withdrawal: u64,
}

/// What one call of [`Node::advance_anchor`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorProgress {
    /// Nothing to do: no newer block, or no fee paid for one yet.
    Idle,
    /// A successor was built, written down and submitted.
    Submitted(kaspa_hashes::Hash),
    /// The successor in flight is not accepted yet; it was submitted again.
    Waiting(kaspa_hashes::Hash),
    /// The successor in flight is accepted: it is now the anchor.
    Confirmed(kaspa_hashes::Hash),
    /// A reorg undid accepted anchor transactions: the anchor is back at the one committing
    /// this block, and the undone transaction is offered again.
    RolledBack(u64),
    /// Kaspa holds none of the anchors the node knows (a reorg deeper than its history, or a
    /// moment between two views of kaspad); nothing was done.
    Lost,
}

impl Node {
    fn track(&self) -> Result<Track> {
        let db = self.chain.db();
        match db.local(TRACK).map_err(wisp_chain::ChainError::from)? {
            Some(bytes) => decode_track(&bytes).map_err(|e| {
                wisp_chain::ChainError::from(wisp_state::StateError::Corrupt(format!(
                    "the node's anchor record: {e}"
                )))
                .into()
            }),
            None => Ok(Track {
                current: StoredAnchor::of(&self.anchor.genesis, Vec::new()),
                fees_spent_sompi: 0,
                in_flight: None,
                next_seq: 0,
                history: Vec::new(),
                watched: Vec::new(),
            }),
        }
    }

    fn save_track(&self, track: &Track) -> Result<()> {
        self.save_track_with(track, &[])
    }

    /// Saves `track` and writes or deletes the withdrawal payment records `paid` (`seq`, the
    /// paying transaction or `None`) in the same durable transaction.
    fn save_track_with(
        &self,
        track: &Track,
        paid: &[(u64, Option<kaspa_hashes::Hash>)],
    ) -> Result<()> {
        let bytes = borsh::to_vec(track)
            .map_err(|e| wisp_chain::ChainError::from(wisp_state::StateError::Db(e.to_string())))?;
        let names: Vec<String> = paid.iter().map(|(seq, _)| paid_record(*seq)).collect();
        let ids: Vec<Option<[u8; 32]>> = paid
            .iter()
            .map(|(_, id)| id.map(|h| h.as_bytes()))
            .collect();
        let mut changes: Vec<(&str, Option<&[u8]>)> = names
            .iter()
            .zip(&ids)
            .map(|(name, id)| (name.as_str(), id.as_ref().map(|b| b.as_slice())))
            .collect();
        changes.push((TRACK, Some(&bytes)));
        self.chain
            .db()
            .write_local(&changes)
            .map_err(wisp_chain::ChainError::from)?;
        Ok(())
    }

    /// Whether Kaspa holds `anchor` unspent now.
    async fn unspent(&self, anchor: &StoredAnchor) -> Result<bool> {
        let address = self.anchor.rules.address(
            &anchor.state(self.anchor_key_after(anchor.block_index)?),
            self.prefix,
        )?;
        Ok(self
            .l1
            .spendable_utxos(&address, 0)
            .await?
            .iter()
            .any(|(o, _)| *o == anchor.outpoint))
    }

    /// Makes `flight`'s successor the anchor: the withdrawals the current anchor committed are
    /// recorded as paid by it, and the current anchor goes into the history. Watched
    /// transactions that spent the old anchor are dropped.
    fn confirm(&self, track: &mut Track, flight: InFlight) -> Result<kaspa_hashes::Hash> {
        let id = flight.tx.id();
        let paid: Vec<(u64, Option<kaspa_hashes::Hash>)> = track
            .current
            .committed
            .iter()
            .map(|p| (p.seq, Some(id)))
            .collect();
        let fee = flight.fee_sompi;
        let next_seq = flight.next_seq;
        let successor = flight.successor.clone();
        let old = track.current.outpoint;
        track.history.push(Checkpoint {
            anchor: std::mem::replace(&mut track.current, successor),
            fees_spent_sompi: track.fees_spent_sompi,
            next_seq: track.next_seq,
            spent_by: flight,
        });
        if track.history.len() > MAX_HISTORY {
            track.history.remove(0);
        }
        track.fees_spent_sompi = track.fees_spent_sompi.saturating_add(fee);
        track.next_seq = next_seq;
        track.in_flight = None;
        track.watched.retain(|w| spends(w) != old);
        self.save_track_with(track, &paid)?;
        tracing::info!(tx = %id, block = track.current.block_index, "anchor advanced on Kaspa");
        Ok(id)
    }

    /// The anchor transactions Kaspa has accepted since `current`, in order: a chain of known
    /// transactions (the one in flight and the watched ones), each spending the anchor the
    /// previous one made, whose last successor is unspent on Kaspa. Empty if there is none.
    async fn accepted_since(&self, track: &Track) -> Result<Vec<InFlight>> {
        let known: Vec<&InFlight> = track.in_flight.iter().chain(&track.watched).collect();
        // Depth-first over chains from `current`; `known` is small and each is used once.
        let mut stack: Vec<Vec<&InFlight>> = known
            .iter()
            .filter(|f| spends(f) == track.current.outpoint)
            .map(|f| vec![*f])
            .collect();
        while let Some(path) = stack.pop() {
            let Some(last) = path.last() else {
                continue;
            };
            if self.unspent(&last.successor).await? {
                return Ok(path.into_iter().cloned().collect());
            }
            for next in known.iter().filter(|f| {
                spends(f) == last.successor.outpoint && !path.iter().any(|p| std::ptr::eq(*p, **f))
            }) {
                let mut longer = path.clone();
                longer.push(next);
                stack.push(longer);
            }
        }
        Ok(Vec::new())
    }

    /// After a reorg undid accepted anchor transactions: goes back to the newest anchor of the
    /// history Kaspa holds unspent again; the payments of the undone transactions are
    /// forgotten and the first of them is in flight again. Returns the block that anchor
    /// commits, or `None` if Kaspa holds none of them.
    async fn roll_back(&self, track: &mut Track) -> Result<Option<u64>> {
        let mut found = None;
        for (i, checkpoint) in track.history.iter().enumerate().rev() {
            if self.unspent(&checkpoint.anchor).await? {
                found = Some(i);
                break;
            }
        }
        let Some(i) = found else {
            return Ok(None);
        };
        let undone = track.history.split_off(i);
        let unpaid: Vec<(u64, Option<kaspa_hashes::Hash>)> = undone
            .iter()
            .flat_map(|c| c.anchor.committed.iter().map(|p| (p.seq, None)))
            .collect();
        let mut undone = undone.into_iter();
        let Some(back) = undone.next() else {
            return Ok(None);
        };
        // Kaspa may accept the undone transactions again (in order), or the ones that were in
        // flight: keep watching all of them.
        let mut watched: Vec<InFlight> = undone.map(|c| c.spent_by).collect();
        watched.extend(track.in_flight.take());
        watched.append(&mut track.watched);
        watched.truncate(MAX_WATCHED);
        track.current = back.anchor;
        track.fees_spent_sompi = back.fees_spent_sompi;
        track.next_seq = back.next_seq;
        track.in_flight = Some(back.spent_by);
        track.watched = watched;
        self.save_track_with(track, &unpaid)?;
        tracing::warn!(
            block = track.current.block_index,
            undone = unpaid.len(),
            "a Kaspa reorg undid anchor transactions: back to an earlier anchor"
        );
        Ok(Some(track.current.block_index))
    }

    /// Whether every deposit `flight` sweeps is still unspent on Kaspa (its anchor input is
    /// checked by the caller): if one vanished in a reorg, Kaspa cannot accept `flight`.
    async fn deposits_exist(&self, flight: &InFlight) -> Result<bool> {
        let swept: Vec<TransactionOutpoint> = flight
            .tx
            .inputs
            .iter()
            .skip(1)
            .map(|i| i.previous_outpoint)
            .collect();
        if swept.is_empty() {
            return Ok(true);
        }
        let waiting = self.l1.spendable_utxos(&self.deposit_address, 0).await?;
        Ok(swept.iter().all(|o| waiting.iter().any(|(w, _)| w == o)))
    }

    /// The anchor as this node knows it.
    ///
    /// # Errors
    /// [`crate::NodeError::Chain`] if its record cannot be read.
    pub fn anchor_status(&self) -> Result<AnchorStatus> {
        let track = self.track()?;
        Ok(AnchorStatus {
            outpoint: track.current.outpoint,
            amount_sompi: track.current.amount_sompi,
            block_index: track.current.block_index,
            header_hash: track.current.header_hash,
            outbox: track.current.outbox,
            fees_spent_sompi: track.fees_spent_sompi,
            in_flight: track.in_flight.map(|f| f.tx.id()),
            committed_withdrawals: track.current.committed.iter().map(|p| p.seq).collect(),
            next_withdrawal: track.next_seq,
        })
    }

    /// The Kaspa transaction that paid withdrawal `seq`, once its anchor transaction is
    /// accepted.
    ///
    /// # Errors
    /// [`crate::NodeError::Chain`] if the record cannot be read.
    pub fn withdrawal_paid_by(&self, seq: u64) -> Result<Option<kaspa_hashes::Hash>> {
        let record = self
            .chain
            .db()
            .local(&paid_record(seq))
            .map_err(wisp_chain::ChainError::from)?;
        Ok(record
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .map(kaspa_hashes::Hash::from_bytes))
    }

    fn utxo(&self, stored: &StoredAnchor) -> Result<AnchorUtxo> {
        Ok(AnchorUtxo {
            outpoint: stored.outpoint,
            amount_sompi: stored.amount_sompi,
            state: stored.state(self.anchor_key_after(stored.block_index)?),
            covenant_id: self.anchor.covenant_id(),
            block_daa_score: 0,
        })
    }

    /// The anchor key an anchor committing chain block `block_index` names: the key of the
    /// committee that makes the next block (after a rotation's handover block, the new
    /// committee's; `wisp_chain::committee`). A chain run by one node keeps its key.
    ///
    /// # Errors
    /// [`crate::NodeError::Chain`] if the chain's rotation records cannot be read.
    pub fn anchor_key_after(&self, block_index: u64) -> Result<[u8; 32]> {
        if !self.is_committee_chain() {
            return Ok(self.anchor.committee_key);
        }
        Ok(self
            .chain
            .committee_for_block(block_index + 1)?
            .map_or(self.anchor.committee_key, |rotation| rotation.anchor_key.0))
    }

    /// The epoch of the newest rotation that names anchor key `key`, if any.
    ///
    /// # Errors
    /// [`crate::NodeError::Chain`] if the chain's rotation records cannot be read.
    pub fn rotation_naming(&self, key: [u8; 32]) -> Result<Option<u64>> {
        Ok(self
            .chain
            .newest_rotation(|r| r.anchor_key.0 == key)?
            .map(|r| r.epoch))
    }

    /// One step of anchoring (see the module docs): confirms or re-submits the successor in
    /// flight, or, if the chain has a newer block and the owner has paid for a fee, builds,
    /// records and submits the next successor, signed with the node's own committee key.
    ///
    /// # Errors
    /// [`crate::NodeError`] if Kaspa or storage fails. A refused submission is not an error
    /// (it is retried on the next step) but is logged.
    pub async fn advance_anchor(&self) -> Result<AnchorProgress> {
        let _one_at_a_time = self.anchor_lock.lock().await;
        let mut track = self.track()?;
        if let Some(progress) = self.follow_anchor(&mut track).await? {
            return Ok(progress);
        }
        let Some(committee) = &self.committee else {
            return Ok(AnchorProgress::Idle); // a committee's chain: its members sign
        };
        let Some(plan) = self.plan_successor(&track).await? else {
            return Ok(AnchorProgress::Idle);
        };
        let built = self.rebuild(&track, &plan)?;
        let message = secp256k1::Message::from_digest(built.unsigned.sighash());
        let signature = committee.keypair().sign_schnorr(message).serialize();
        self.submit_successor(&mut track, built, &signature).await
    }

    /// Steps 1-3 of anchoring: confirms successors Kaspa accepted, rolls back after a reorg,
    /// and offers the successor in flight again. `Some` if one of them applied (the step is
    /// done); `None` if the next successor may be built.
    pub(crate) async fn follow_anchor(&self, track: &mut Track) -> Result<Option<AnchorProgress>> {
        // 1. Has Kaspa accepted successors (the one in flight, or watched ones)?
        let accepted = self.accepted_since(track).await?;
        if let Some(last) = accepted.last().map(|f| f.tx.id()) {
            for flight in accepted {
                self.confirm(track, flight)?;
            }
            return Ok(Some(AnchorProgress::Confirmed(last)));
        }
        // 2. Is the anchor still there? If not, a reorg undid the transaction that made it.
        if !self.unspent(&track.current).await? {
            return Ok(Some(match self.roll_back(track).await? {
                Some(block) => AnchorProgress::RolledBack(block),
                None => {
                    tracing::warn!(
                        outpoint = %track.current.outpoint,
                        "Kaspa holds none of the anchors this node knows; waiting"
                    );
                    AnchorProgress::Lost
                }
            }));
        }
        // 3. Offer the successor in flight again, unless Kaspa can no longer accept it.
        if let Some(flight) = track.in_flight.clone() {
            let id = flight.tx.id();
            if self.deposits_exist(&flight).await? {
                if let Err(e) = self.l1.submit_transaction(&flight.tx).await {
                    tracing::debug!(tx = %id, error = %e, "anchor transaction re-submitted");
                }
                return Ok(Some(AnchorProgress::Waiting(id)));
            }
            tracing::warn!(
                tx = %id,
                "a deposit this anchor transaction sweeps vanished in a reorg; building another"
            );
            track.watched.push(flight);
            if track.watched.len() > MAX_WATCHED {
                track.watched.remove(0);
            }
            track.in_flight = None;
            self.save_track(track)?;
        }
        Ok(None)
    }

    /// Step 4: what the next successor of `track`'s anchor should be, from this node's head,
    /// its paid fees and the deposits Kaspa holds at the confirmation depth; `None` if there is
    /// no newer block or no fee paid for one yet.
    pub(crate) async fn plan_successor(&self, track: &Track) -> Result<Option<AnchorPlan>> {
        let head = self.chain.head()?;
        if head.index <= track.current.block_index {
            if !track.current.committed.is_empty() {
                // Committed withdrawals are paid by the next successor, which must commit a
                // newer block: have the next production step make one even if it is empty.
                self.block_wanted
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(None);
        }
        let fee = self.fee_budget(track)?;
        if fee == 0 {
            return Ok(None);
        }
        let mut deposits = self.confirmed_deposits().await?;
        deposits.truncate(MAX_SWEEP);
        let mut plan = AnchorPlan {
            anchor: track.current.outpoint,
            block_index: head.index,
            header_hash: head.hash().0,
            deposits: Vec::new(),
            fee_sompi: fee,
        };
        // Sweep as many deposits as the paid fee covers, deciding on unsigned transactions
        // (a signature does not change the mass); the committee signs once, the one chosen.
        loop {
            plan.deposits = deposits.iter().map(PlannedDeposit::of).collect();
            plan.fee_sompi = fee;
            let candidate = self.rebuild(track, &plan)?;
            let needed = self.fee_needed(&candidate.unsigned)?;
            if needed <= fee {
                // Pay what Kaspa asks, not the whole amount available.
                plan.fee_sompi = needed;
                let exact = self.rebuild(track, &plan)?;
                if self.fee_needed(&exact.unsigned)? > needed {
                    plan.fee_sompi = fee;
                }
                return Ok(Some(plan));
            }
            if deposits.pop().is_none() {
                tracing::warn!(
                    fee,
                    needed,
                    "the anchor fee paid so far does not cover an anchor transaction yet"
                );
                return Ok(None);
            }
        }
    }

    /// Sompi of L1 fee the owner has paid and no anchor transaction has spent yet, capped at
    /// what one anchor transaction may pay.
    fn fee_budget(&self, track: &Track) -> Result<u64> {
        let paid = self.chain.anchor_fees()?;
        Ok(paid
            .saturating_sub(track.fees_spent_sompi)
            .min(self.anchor.rules.max_fee_sompi))
    }

    fn fee_needed(&self, unsigned: &wisp_settlement::tx::UnsignedAnchorTx) -> Result<u64> {
        Ok(unsigned
            .mass(&self.l1_params, &self.anchor.rules)?
            .fee_mass()
            .saturating_mul(FEE_SOMPI_PER_GRAM))
    }

    /// The deposits waiting at the chain's deposit script, at the confirmation depth.
    pub(crate) async fn confirmed_deposits(&self) -> Result<Vec<DepositUtxo>> {
        let depth = self.chain.params()?.l1_confirmations;
        let daa = self.l1.virtual_daa_score().await?;
        Ok(self
            .l1
            .spendable_utxos(&self.deposit_address, 0)
            .await?
            .into_iter()
            .filter(|(_, e)| e.block_daa_score.saturating_add(depth) <= daa)
            .map(|(outpoint, e)| DepositUtxo {
                outpoint,
                amount_sompi: e.amount,
                block_daa_score: e.block_daa_score,
            })
            .collect())
    }

    /// The unsigned successor `plan` describes, built from this node's own records: its
    /// anchor, its chain's block `plan.block_index` (whose header must be `plan.header_hash`),
    /// the withdrawals the anchor committed, and the next batch of its chain's outbox. Every
    /// member of a committee rebuilds the successor it is asked to sign this way, so it signs
    /// only what its own chain and Kaspa view agree with.
    ///
    /// # Errors
    /// [`crate::NodeError::DataDir`] naming what in `plan` this node does not agree with;
    /// [`crate::NodeError`] if its records cannot be read.
    pub(crate) fn rebuild(&self, track: &Track, plan: &AnchorPlan) -> Result<Built> {
        let refuse = |why: String| crate::NodeError::DataDir(format!("anchor plan: {why}"));
        if plan.anchor != track.current.outpoint {
            return Err(refuse(format!(
                "it spends {}, but the anchor is {}",
                plan.anchor, track.current.outpoint
            )));
        }
        if plan.block_index <= track.current.block_index {
            return Err(refuse(format!(
                "block {} is not newer than the anchor's {}",
                plan.block_index, track.current.block_index
            )));
        }
        let header = match self.chain.db().block(plan.block_index) {
            Ok(header) => header,
            Err(wisp_state::StateError::UnknownBlock(_)) => {
                return Err(refuse(format!(
                    "this node has not reached block {} yet",
                    plan.block_index
                )))
            }
            Err(e) => return Err(wisp_chain::ChainError::from(e).into()),
        };
        if header.hash().0 != plan.header_hash {
            return Err(refuse(format!(
                "block {} has another header here",
                plan.block_index
            )));
        }
        if plan.fee_sompi > self.fee_budget(track)? {
            return Err(refuse(format!(
                "a fee of {} sompi is more than the owner has paid for",
                plan.fee_sompi
            )));
        }
        if plan.deposits.len() > MAX_SWEEP {
            return Err(refuse(format!("{} deposits to sweep", plan.deposits.len())));
        }
        // The next batch of the outbox: entries in order, from blocks at the confirmation
        // depth below the committed block, within the count and storage-mass budgets of one
        // anchor transaction.
        let depth = self.chain.params()?.l1_confirmations;
        let mut batch: Vec<StoredPayout> = Vec::new();
        let mut mass = 0u64;
        for e in self
            .chain
            .outbox(track.next_seq, wisp_settlement::anchor::MAX_PAYOUTS)?
        {
            let entry_mass = 1_000_000_000_000u64 / e.amount_sompi.max(1);
            if e.block_index.saturating_add(depth) > plan.block_index
                || mass.saturating_add(entry_mass) > PAYOUT_MASS_BUDGET
            {
                break;
            }
            mass += entry_mass;
            batch.push(StoredPayout {
                seq: e.seq,
                to: e.to,
                amount_sompi: e.amount_sompi,
            });
        }
        let next_seq = batch.last().map_or(track.next_seq, |p| p.seq + 1);
        let new_payouts: Vec<Payout> = batch.iter().map(StoredPayout::payout).collect();
        let new = AnchorState {
            block_index: plan.block_index,
            header_hash: plan.header_hash,
            outbox: outbox_commitment(&new_payouts),
            // The next block's committee's key: after a rotation's handover block, the new
            // committee's, and from then on the old committee's key moves nothing.
            committee_key: self.anchor_key_after(plan.block_index)?,
        };
        let payouts: Vec<Payout> = track
            .current
            .committed
            .iter()
            .map(StoredPayout::payout)
            .collect();
        let deposits: Vec<DepositUtxo> = plan.deposits.iter().map(PlannedDeposit::utxo).collect();
        let unsigned = wisp_settlement::tx::successor_unsigned(
            &self.anchor.rules,
            &self.utxo(&track.current)?,
            &deposits,
            &payouts,
            new,
            plan.fee_sompi,
        )?;
        Ok(Built {
            unsigned,
            batch,
            next_seq,
            fee_sompi: plan.fee_sompi,
        })
    }

    /// Finishes `built` with the committee's `signature`, records it as in flight (before it
    /// leaves the node: a restart re-submits this one, never another) and submits it.
    ///
    /// # Errors
    /// [`crate::NodeError`] if the signature does not verify or storage fails.
    pub(crate) async fn submit_successor(
        &self,
        track: &mut Track,
        built: Built,
        signature: &[u8; 64],
    ) -> Result<AnchorProgress> {
        self.record_successor(track, built, signature, true).await
    }

    /// [`Node::submit_successor`], submitting only if `submit` (a committee member recording
    /// the successor its coordinator submitted leaves the submission to it, and re-submits
    /// only if it stays unaccepted: step 3).
    pub(crate) async fn record_successor(
        &self,
        track: &mut Track,
        built: Built,
        signature: &[u8; 64],
        submit: bool,
    ) -> Result<AnchorProgress> {
        let finished = built.unsigned.finish(&self.anchor.rules, signature)?;
        let id = finished.tx.id();
        track.in_flight = Some(InFlight {
            tx: finished.tx.clone(),
            successor: StoredAnchor::of(&finished.successor, built.batch),
            fee_sompi: built.fee_sompi,
            next_seq: built.next_seq,
        });
        self.save_track(track)?;
        if submit {
            if let Err(e) = self.l1.submit_transaction(&finished.tx).await {
                tracing::warn!(tx = %id, error = %e, "anchor transaction refused; will retry");
            }
        }
        Ok(AnchorProgress::Submitted(id))
    }

    /// A committee member whose anchor Kaspa no longer holds, with a committee-signed successor
    /// of it in flight: that successor is what spent it (a quorum signs one successor per
    /// anchor UTXO, so no other can exist), so it becomes the anchor without waiting to see it
    /// unspent (it may be spent by a later one already). Returns whether it did.
    ///
    /// # Errors
    /// [`crate::NodeError`] if Kaspa or storage fails.
    pub(crate) async fn adopt_in_flight(&self, track: &mut Track) -> Result<bool> {
        let Some(flight) = track.in_flight.clone() else {
            return Ok(false);
        };
        if spends(&flight) != track.current.outpoint || self.unspent(&track.current).await? {
            return Ok(false);
        }
        self.confirm(track, flight)?;
        Ok(true)
    }

    /// The anchor record, for the committee's anchoring.
    pub(crate) fn anchor_track(&self) -> Result<Track> {
        self.track()
    }

    /// Takes the anchor `upstream` reports (`wisp_chainInfo`) as this node's current anchor,
    /// if this node's own records lost it (a next committee's member, which never saw the old
    /// committee's anchor transactions) and the report checks out against this node's own
    /// chain and Kaspa: the block it commits and that block's header hash, the withdrawals it
    /// commits (from this node's outbox) against its outbox commitment, and Kaspa holding the
    /// UTXO unspent at the address its state gives, naming the key this node's chain says.
    /// The L1 fees the old committee spent are taken as reported (they only bound the next
    /// successors' fees, which every member checks again). Returns whether it adopted it.
    ///
    /// # Errors
    /// If the upstream, the chain or kaspad cannot be read.
    pub(crate) async fn adopt_upstream_anchor(
        &self,
        track: &mut Track,
        upstream: &jsonrpsee::http_client::HttpClient,
    ) -> Result<bool> {
        let info = wisp_api::WispApiClient::chain_info(upstream)
            .await
            .map_err(|e| {
                crate::NodeError::DataDir(format!("asking the upstream for its anchor: {e}"))
            })?
            .anchor;
        let (
            Some(outpoint),
            Some(block_index),
            Some(header_hash),
            Some(outbox),
            Some(fees),
            Some(next_seq),
        ) = (
            info.outpoint,
            info.anchored_block,
            info.anchored_header_hash,
            info.outbox,
            info.fees_spent_sompi,
            info.next_withdrawal,
        )
        else {
            return Ok(false);
        };
        if block_index <= track.current.block_index {
            return Ok(false);
        }
        let Ok(own) = self.chain.db().block(block_index) else {
            return Ok(false); // this node has not executed that block yet
        };
        if own.hash().0 != header_hash.0 {
            tracing::warn!(
                block_index,
                "the upstream's anchor commits a header this node does not have"
            );
            return Ok(false);
        }
        // An anchor commits at most one transaction's payouts.
        if info.committed_withdrawals.len() > wisp_settlement::anchor::MAX_PAYOUTS {
            return Ok(false);
        }
        let mut committed = Vec::new();
        for seq in &info.committed_withdrawals {
            let Some(entry) = self.chain.outbox(*seq, 1)?.into_iter().next() else {
                return Ok(false);
            };
            committed.push(StoredPayout {
                seq: entry.seq,
                to: entry.to,
                amount_sompi: entry.amount_sompi,
            });
        }
        let payouts: Vec<Payout> = committed.iter().map(StoredPayout::payout).collect();
        if outbox_commitment(&payouts) != outbox.0 {
            tracing::warn!(
                block_index,
                "the upstream's anchor commits withdrawals this node's outbox does not hold"
            );
            return Ok(false);
        }
        let state = AnchorState {
            block_index,
            header_hash: header_hash.0,
            outbox: outbox.0,
            committee_key: self.anchor_key_after(block_index)?,
        };
        let address = self.anchor.rules.address(&state, self.prefix)?;
        let Some((outpoint, amount_sompi)) = self
            .l1
            .spendable_utxos(&address, 0)
            .await?
            .into_iter()
            .find(|(o, _)| format!("{}:{}", o.transaction_id, o.index) == outpoint)
            .map(|(o, entry)| (o, entry.amount))
        else {
            return Ok(false);
        };
        *track = Track {
            current: StoredAnchor {
                outpoint,
                amount_sompi,
                block_index,
                header_hash: header_hash.0,
                outbox: outbox.0,
                committed,
            },
            fees_spent_sompi: fees.0,
            in_flight: None,
            next_seq,
            history: Vec::new(),
            watched: Vec::new(),
        };
        self.save_track(track)?;
        tracing::info!(block = block_index, %outpoint, "took the chain's anchor from the upstream");
        Ok(true)
    }
}

/// A successor to build: which anchor it spends, the chain block it commits, the deposits it
/// sweeps and its fee. Everything else (the withdrawals paid, the outbox batch committed, the
/// outputs) follows from the chain, so every member of a committee builds the same
/// transaction from the same plan ([`Node::rebuild`]).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AnchorPlan {
    /// The anchor UTXO spent.
    pub anchor: TransactionOutpoint,
    /// The chain block committed.
    pub block_index: u64,
    /// Its header hash.
    pub header_hash: [u8; 32],
    /// Deposit UTXOs swept (at most [`MAX_SWEEP`]).
    pub deposits: Vec<PlannedDeposit>,
    /// The L1 fee, sompi.
    pub fee_sompi: u64,
}

/// A deposit UTXO a plan sweeps.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PlannedDeposit {
    /// Its outpoint.
    pub outpoint: TransactionOutpoint,
    /// Its value, sompi.
    pub amount_sompi: u64,
    /// The DAA score of the block that holds it.
    pub block_daa_score: u64,
}

impl PlannedDeposit {
    fn of(d: &DepositUtxo) -> PlannedDeposit {
        PlannedDeposit {
            outpoint: d.outpoint,
            amount_sompi: d.amount_sompi,
            block_daa_score: d.block_daa_score,
        }
    }

    fn utxo(&self) -> DepositUtxo {
        DepositUtxo {
            outpoint: self.outpoint,
            amount_sompi: self.amount_sompi,
            block_daa_score: self.block_daa_score,
        }
    }
}

/// A successor built from a plan, not yet signed.
pub(crate) struct Built {
    pub(crate) unsigned: wisp_settlement::tx::UnsignedAnchorTx,
    batch: Vec<StoredPayout>,
    next_seq: u64,
    fee_sompi: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record written before the history was kept still opens, with an empty history; and
    /// bytes that are neither layout are refused.
    #[test]
    fn the_first_record_layout_still_decodes() {
        let current = StoredAnchor {
            outpoint: TransactionOutpoint::new(kaspa_hashes::Hash::from_bytes([3; 32]), 0),
            amount_sompi: 5,
            block_index: 7,
            header_hash: [1; 32],
            outbox: [2; 32],
            committed: vec![StoredPayout {
                seq: 4,
                to: [9; 32],
                amount_sompi: 100_000_000,
            }],
        };
        let v1 = borsh::to_vec(&(current.clone(), 11u64, None::<InFlight>, 5u64)).unwrap();
        let track = decode_track(&v1).unwrap();
        assert_eq!(track.current, current);
        assert_eq!((track.fees_spent_sompi, track.next_seq), (11, 5));
        assert!(track.history.is_empty() && track.watched.is_empty());
        let now = borsh::to_vec(&track).unwrap();
        assert_eq!(decode_track(&now).unwrap(), track);
        assert!(decode_track(&v1[..v1.len() - 1]).is_err());
    }
}
