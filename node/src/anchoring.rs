//! Advancing the chain's anchor on Kaspa: after blocks, the node spends the anchor into a
//! successor that commits the chain's head, sweeps the deposits waiting at the deposit script,
//! pays the withdrawals the current anchor committed to, and commits the next batch of the
//! chain's outbox; it pays the L1 fee the chain has collected for it (the owner's
//! `ChainParams::anchor_fee_sompi` and each withdrawal's fee).
//!
//! Invariants:
//! - Never two different successors of one anchor: the transaction is written to disk before
//!   it is submitted, and while it is unconfirmed the node re-submits that same transaction
//!   (after a restart too) instead of building another.
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

fn paid_record(seq: u64) -> String {
    format!("withdrawal-paid/{seq}")
}

/// A withdrawal committed by an anchor's outbox.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct StoredPayout {
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
struct StoredAnchor {
    outpoint: TransactionOutpoint,
    amount_sompi: u64,
    block_index: u64,
    header_hash: [u8; 32],
    outbox: [u8; 32],
    committed: Vec<StoredPayout>,
}

impl StoredAnchor {
    fn state(&self) -> AnchorState {
        AnchorState {
            block_index: self.block_index,
            header_hash: self.header_hash,
            outbox: self.outbox,
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
struct InFlight {
    tx: Transaction,
    successor: StoredAnchor,
    fee_sompi: u64,
    /// The outbox position after the successor's batch.
    next_seq: u64,
}

/// What the node knows of its anchor, kept on disk.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Track {
    current: StoredAnchor,
    fees_spent_sompi: u64,
    in_flight: Option<InFlight>,
    /// The first outbox entry no anchor has committed to yet.
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
}

impl Node {
    fn track(&self) -> Result<Track> {
        let db = self.chain.db();
        match db.local(TRACK).map_err(wisp_chain::ChainError::from)? {
            Some(bytes) => Track::try_from_slice(&bytes).map_err(|e| {
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
            }),
        }
    }

    fn save_track(&self, track: &Track) -> Result<()> {
        let bytes = borsh::to_vec(track)
            .map_err(|e| wisp_chain::ChainError::from(wisp_state::StateError::Db(e.to_string())))?;
        self.chain
            .db()
            .put_local(TRACK, &bytes)
            .map_err(wisp_chain::ChainError::from)?;
        Ok(())
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

    fn utxo(&self, stored: &StoredAnchor) -> AnchorUtxo {
        AnchorUtxo {
            outpoint: stored.outpoint,
            amount_sompi: stored.amount_sompi,
            state: stored.state(),
            covenant_id: self.anchor.covenant_id(),
            block_daa_score: 0,
        }
    }

    /// One step of anchoring (see the module docs): confirms or re-submits the successor in
    /// flight, or, if the chain has a newer block and the owner has paid for a fee, builds,
    /// records and submits the next successor.
    ///
    /// # Errors
    /// [`crate::NodeError`] if Kaspa or storage fails. A refused submission is not an error
    /// (it is retried on the next step) but is logged.
    pub async fn advance_anchor(&self) -> Result<AnchorProgress> {
        let _one_at_a_time = self.anchor_lock.lock().await;
        let mut track = self.track()?;
        if let Some(flight) = track.in_flight.clone() {
            let id = flight.tx.id();
            let address = self
                .anchor
                .rules
                .address(&flight.successor.state(), self.prefix)?;
            let accepted = self
                .l1
                .spendable_utxos(&address, 0)
                .await?
                .iter()
                .any(|(o, _)| *o == flight.successor.outpoint);
            if accepted {
                for paid in &track.current.committed {
                    self.chain
                        .db()
                        .put_local(&paid_record(paid.seq), &id.as_bytes())
                        .map_err(wisp_chain::ChainError::from)?;
                }
                track.current = flight.successor;
                track.fees_spent_sompi = track.fees_spent_sompi.saturating_add(flight.fee_sompi);
                track.next_seq = flight.next_seq;
                track.in_flight = None;
                self.save_track(&track)?;
                tracing::info!(tx = %id, block = track.current.block_index, "anchor advanced on Kaspa");
                return Ok(AnchorProgress::Confirmed(id));
            }
            if let Err(e) = self.l1.submit_transaction(&flight.tx).await {
                tracing::debug!(tx = %id, error = %e, "anchor transaction re-submitted");
            }
            return Ok(AnchorProgress::Waiting(id));
        }
        let head = self.chain.head()?;
        if head.index <= track.current.block_index {
            if !track.current.committed.is_empty() {
                // Committed withdrawals are paid by the next successor, which must commit a
                // newer block: have the next production step make one even if it is empty.
                self.block_wanted
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return Ok(AnchorProgress::Idle);
        }
        let paid = self.chain.anchor_fees()?;
        let fee = paid
            .saturating_sub(track.fees_spent_sompi)
            .min(self.anchor.rules.max_fee_sompi);
        if fee == 0 {
            return Ok(AnchorProgress::Idle);
        }
        let depth = self.chain.params()?.l1_confirmations;
        let daa = self.l1.virtual_daa_score().await?;
        let mut deposits: Vec<DepositUtxo> = self
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
            .collect();
        deposits.truncate(MAX_SWEEP);
        // The next batch of the outbox: entries in order, from blocks at the confirmation
        // depth, within the count and storage-mass budgets of one anchor transaction.
        let mut batch: Vec<StoredPayout> = Vec::new();
        let mut mass = 0u64;
        for e in self
            .chain
            .outbox(track.next_seq, wisp_settlement::anchor::MAX_PAYOUTS)?
        {
            let entry_mass = 1_000_000_000_000u64 / e.amount_sompi.max(1);
            if e.block_index.saturating_add(depth) > head.index
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
            block_index: head.index,
            header_hash: head.hash().0,
            outbox: outbox_commitment(&new_payouts),
        };
        let payouts: Vec<Payout> = track
            .current
            .committed
            .iter()
            .map(StoredPayout::payout)
            .collect();
        let current = self.utxo(&track.current);
        // Sweep as many deposits as the paid fee covers.
        let (built, fee) = loop {
            let t = wisp_settlement::tx::successor(
                &self.anchor.rules,
                &current,
                &deposits,
                &payouts,
                new,
                fee,
                self.committee.keypair(),
            )?;
            let needed = wisp_settlement::tx::mass(&self.l1_params, &t)
                .fee_mass()
                .saturating_mul(FEE_SOMPI_PER_GRAM);
            if needed <= fee {
                // Pay what Kaspa asks, not the whole amount available.
                let exact = wisp_settlement::tx::successor(
                    &self.anchor.rules,
                    &current,
                    &deposits,
                    &payouts,
                    new,
                    needed,
                    self.committee.keypair(),
                )?;
                let again = wisp_settlement::tx::mass(&self.l1_params, &exact)
                    .fee_mass()
                    .saturating_mul(FEE_SOMPI_PER_GRAM);
                break if again <= needed {
                    (exact, needed)
                } else {
                    (t, fee)
                };
            }
            if deposits.pop().is_none() {
                tracing::warn!(
                    fee,
                    needed,
                    "the anchor fee paid so far does not cover an anchor transaction yet"
                );
                return Ok(AnchorProgress::Idle);
            }
        };
        let id = built.tx.id();
        track.in_flight = Some(InFlight {
            tx: built.tx.clone(),
            successor: StoredAnchor::of(&built.successor, batch),
            fee_sompi: fee,
            next_seq,
        });
        // Written down before it leaves the node: a restart re-submits this one, never another.
        self.save_track(&track)?;
        if let Err(e) = self.l1.submit_transaction(&built.tx).await {
            tracing::warn!(tx = %id, error = %e, "anchor transaction refused; will retry");
        }
        Ok(AnchorProgress::Submitted(id))
    }
}
