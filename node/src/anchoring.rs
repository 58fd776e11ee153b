//! Advancing the chain's anchor on Kaspa: after blocks, the node spends the anchor into a
//! successor that commits the chain's head and sweeps the deposits waiting at the deposit
//! script, paying the L1 fee the chain owner has paid for (`ChainParams::anchor_fee_sompi`).
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
use wisp_settlement::{outbox_commitment, AnchorState};

/// Name of the node-local record (`StateDb::local`) that tracks the anchor.
const TRACK: &str = "anchor";

/// Most deposits one anchor transaction sweeps (the anchor script sums at most 8 inputs).
const MAX_SWEEP: usize = wisp_settlement::anchor::MAX_INPUTS - 1;

/// An anchor UTXO as stored.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct StoredAnchor {
    outpoint: TransactionOutpoint,
    amount_sompi: u64,
    block_index: u64,
    header_hash: [u8; 32],
    outbox: [u8; 32],
}

impl StoredAnchor {
    fn state(&self) -> AnchorState {
        AnchorState {
            block_index: self.block_index,
            header_hash: self.header_hash,
            outbox: self.outbox,
        }
    }

    fn of(utxo: &AnchorUtxo) -> StoredAnchor {
        StoredAnchor {
            outpoint: utxo.outpoint,
            amount_sompi: utxo.amount_sompi,
            block_index: utxo.state.block_index,
            header_hash: utxo.state.header_hash,
            outbox: utxo.state.outbox,
        }
    }
}

/// A submitted anchor transaction not yet seen accepted.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct InFlight {
    tx: Transaction,
    successor: StoredAnchor,
    fee_sompi: u64,
}

/// What the node knows of its anchor, kept on disk.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
struct Track {
    current: StoredAnchor,
    fees_spent_sompi: u64,
    in_flight: Option<InFlight>,
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
    /// L1 fees spent by confirmed anchor transactions, sompi.
    pub fees_spent_sompi: u64,
    /// A submitted successor not yet seen accepted: its transaction id.
    pub in_flight: Option<kaspa_hashes::Hash>,
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
                current: StoredAnchor::of(&self.anchor.genesis),
                fees_spent_sompi: 0,
                in_flight: None,
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
            fees_spent_sompi: track.fees_spent_sompi,
            in_flight: track.in_flight.map(|f| f.tx.id()),
        })
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
                track.current = flight.successor;
                track.fees_spent_sompi = track.fees_spent_sompi.saturating_add(flight.fee_sompi);
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
        let new = AnchorState {
            block_index: head.index,
            header_hash: head.hash().0,
            outbox: outbox_commitment(&[]),
        };
        let current = self.utxo(&track.current);
        // Sweep as many deposits as the paid fee covers.
        let (built, fee) = loop {
            let t = wisp_settlement::tx::successor(
                &self.anchor.rules,
                &current,
                &deposits,
                &[],
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
                    &[],
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
            successor: StoredAnchor::of(&built.successor),
            fee_sompi: fee,
        });
        // Written down before it leaves the node: a restart re-submits this one, never another.
        self.save_track(&track)?;
        if let Err(e) = self.l1.submit_transaction(&built.tx).await {
            tracing::warn!(tx = %id, error = %e, "anchor transaction refused; will retry");
        }
        Ok(AnchorProgress::Submitted(id))
    }
}
