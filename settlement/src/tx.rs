//! Anchor transactions: the genesis that creates a chain's anchor, and successors that advance
//! it, sweep deposits and pay withdrawals. Built and signed here; submitted by the node.

use crate::anchor::{successor_value, AnchorRules, AnchorState, Payout};
use crate::{deposit, Result};
use kaspa_consensus_core::constants::TX_VERSION_TOCCATA;
use kaspa_consensus_core::hashing::covenant_id::covenant_id;
use kaspa_consensus_core::hashing::sighash::{
    calc_schnorr_signature_hash, SigHashReusedValuesUnsync,
};
use kaspa_consensus_core::hashing::sighash_type::SIG_HASH_ALL;
use kaspa_consensus_core::subnets::SUBNETWORK_ID_NATIVE;
use kaspa_consensus_core::tx::{
    CovenantBinding, PopulatedTransaction, ScriptPublicKey, Transaction, TransactionInput,
    TransactionOutpoint, TransactionOutput, UtxoEntry,
};
use kaspa_hashes::Hash;

/// Compute budget of the anchor input (units of 10,000 script units, 100 grams of compute
/// mass each): the largest anchor transaction (7 deposits, 8 payouts) needs 10, measured by
/// running its script in Kaspa's engine at smaller budgets; 20 leaves room.
pub const ANCHOR_COMPUTE_BUDGET: u16 = 20;

/// Compute budget of a deposit input (its script reads one covenant id and compares).
pub const DEPOSIT_COMPUTE_BUDGET: u16 = 1;

/// An anchor UTXO as the node tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorUtxo {
    /// Where it is.
    pub outpoint: TransactionOutpoint,
    /// Its value, sompi: every sompi pegged into the chain and swept.
    pub amount_sompi: u64,
    /// The state its script commits to.
    pub state: AnchorState,
    /// The chain's covenant id (its identity on L1).
    pub covenant_id: Hash,
    /// DAA score of the block that accepted it (as Kaspa's UTXO entry records it).
    pub block_daa_score: u64,
}

impl AnchorUtxo {
    /// The UTXO entry Kaspa holds for it.
    ///
    /// # Errors
    /// As [`AnchorRules::code`].
    pub fn entry(&self, rules: &AnchorRules) -> Result<UtxoEntry> {
        Ok(UtxoEntry::new(
            self.amount_sompi,
            rules.script_public_key(&self.state)?,
            self.block_daa_score,
            false,
            Some(self.covenant_id),
        ))
    }
}

/// A deposit UTXO (paid to the chain's deposit script) to sweep into the anchor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositUtxo {
    /// Where it is.
    pub outpoint: TransactionOutpoint,
    /// Its value, sompi.
    pub amount_sompi: u64,
    /// DAA score of the block that accepted it.
    pub block_daa_score: u64,
}

/// A built anchor transaction with the UTXO entries it spends (in input order) and the anchor
/// it creates.
#[derive(Clone, Debug)]
pub struct AnchorTx {
    /// The signed transaction.
    pub tx: Transaction,
    /// The entries of its inputs, in order (for mass and local verification).
    pub entries: Vec<UtxoEntry>,
    /// The new anchor: output 0.
    pub successor: AnchorUtxo,
}

/// The genesis of a chain's anchor: spends `funding` (the creator's P2PK UTXOs, signed with
/// `funder`), creates output 0 = the anchor at [`AnchorState::genesis`] of `committee_key`
/// holding `anchor_sompi` under a new covenant id (derived by Kaspa's rule from input 0's outpoint
/// and output 0), and returns the rest less `fee_sompi` to `change`. The covenant id is the
/// chain's id.
///
/// # Errors
/// [`crate::SettlementError::InsufficientAnchor`] if the funding does not cover the anchor and
/// the fee.
pub fn genesis(
    rules: &AnchorRules,
    committee_key: [u8; 32],
    funding: &[(TransactionOutpoint, UtxoEntry)],
    funder: &secp256k1::Keypair,
    anchor_sompi: u64,
    change: ScriptPublicKey,
    fee_sompi: u64,
) -> Result<AnchorTx> {
    let available = funding
        .iter()
        .fold(0u64, |a, (_, e)| a.saturating_add(e.amount));
    let needed = anchor_sompi.saturating_add(fee_sompi);
    let rest = available
        .checked_sub(needed)
        .ok_or(crate::SettlementError::InsufficientAnchor {
            available_sompi: available,
            needed_sompi: needed,
        })?;
    let state = AnchorState::genesis(committee_key);
    let anchor_out = TransactionOutput::new(anchor_sompi, rules.script_public_key(&state)?);
    let first =
        funding
            .first()
            .map(|(o, _)| *o)
            .ok_or(crate::SettlementError::InsufficientAnchor {
                available_sompi: 0,
                needed_sompi: needed,
            })?;
    let id = covenant_id(first, std::iter::once((0u32, &anchor_out)));
    let mut outputs = vec![TransactionOutput::with_covenant(
        anchor_out.value,
        anchor_out.script_public_key.clone(),
        Some(CovenantBinding::new(0, id)),
    )];
    if rest > 0 {
        outputs.push(TransactionOutput::new(rest, change));
    }
    let inputs = funding
        .iter()
        .map(|(o, _)| TransactionInput::new_with_compute_budget(*o, vec![], 0, 10))
        .collect();
    let mut tx = native_tx(inputs, outputs);
    let entries: Vec<UtxoEntry> = funding.iter().map(|(_, e)| e.clone()).collect();
    for i in 0..tx.inputs.len() {
        let sig = sign_input(&tx, &entries, i, funder);
        tx.inputs[i].signature_script = std::iter::once(65u8).chain(sig).collect();
    }
    tx.finalize();
    let successor = AnchorUtxo {
        outpoint: TransactionOutpoint::new(tx.id(), 0),
        amount_sompi: anchor_sompi,
        state,
        covenant_id: id,
        block_daa_score: 0,
    };
    Ok(AnchorTx {
        tx,
        entries,
        successor,
    })
}

/// A successor of `anchor` before the committee signs it: the transaction with an empty
/// anchor signature script, what it spends, and the anchor it creates. Signers sign
/// [`UnsignedAnchorTx::sighash`]; [`UnsignedAnchorTx::finish`] puts the signature in.
#[derive(Clone, Debug)]
pub struct UnsignedAnchorTx {
    /// The transaction; input 0 (the anchor) has no signature script yet.
    pub tx: Transaction,
    /// The entries of its inputs, in order.
    pub entries: Vec<UtxoEntry>,
    /// The new anchor: output 0.
    pub successor: AnchorUtxo,
    /// The state of the anchor it spends.
    pub old: AnchorState,
}

impl UnsignedAnchorTx {
    /// The anchor UTXO it spends (input 0).
    pub fn spends(&self) -> TransactionOutpoint {
        self.tx.inputs[0].previous_outpoint
    }

    /// The BIP340 message of the anchor input under `SIG_HASH_ALL`: what the committee key
    /// signs. It covers every input's outpoint and entry and every output, not signature
    /// scripts.
    pub fn sighash(&self) -> [u8; 32] {
        input_sighash(&self.tx, &self.entries, 0)
    }

    /// The masses the transaction will have once signed (a signature does not change its
    /// size), so the fee can be decided before anyone signs.
    ///
    /// # Errors
    /// As [`AnchorRules::signature_script`].
    pub fn mass(
        &self,
        params: &kaspa_consensus_core::config::params::Params,
        rules: &AnchorRules,
    ) -> Result<Mass> {
        let mut tx = self.tx.clone();
        tx.inputs[0].signature_script =
            rules.signature_script(&[0u8; 65], &self.successor.state, &self.old)?;
        Ok(mass_of(params, &tx, &self.entries))
    }

    /// The signed transaction, given the 64-byte BIP340 signature of
    /// [`UnsignedAnchorTx::sighash`] by the committee key of the anchor it spends (checked: a
    /// wrong signature is refused here, not by Kaspa).
    ///
    /// # Errors
    /// [`crate::SettlementError::BadSignature`] if `signature` is not that key's signature of
    /// the sighash; [`crate::SettlementError::Script`] as [`AnchorRules::signature_script`].
    pub fn finish(self, rules: &AnchorRules, signature: &[u8; 64]) -> Result<AnchorTx> {
        let key = secp256k1::XOnlyPublicKey::from_slice(&self.old.committee_key)
            .map_err(|_| crate::SettlementError::BadSignature)?;
        let message = secp256k1::Message::from_digest(self.sighash());
        let sig = secp256k1::schnorr::Signature::from_slice(signature)
            .map_err(|_| crate::SettlementError::BadSignature)?;
        secp256k1::SECP256K1
            .verify_schnorr(&sig, &message, &key)
            .map_err(|_| crate::SettlementError::BadSignature)?;
        let mut full = [0u8; 65];
        full[..64].copy_from_slice(signature);
        full[64] = SIG_HASH_ALL.to_u8();
        let mut tx = self.tx;
        tx.inputs[0].signature_script =
            rules.signature_script(&full, &self.successor.state, &self.old)?;
        tx.finalize();
        Ok(AnchorTx {
            tx,
            entries: self.entries,
            successor: self.successor,
        })
    }
}

/// A successor of `anchor`: commits `new` (a newer block, the next outbox), sweeps
/// `deposits`, pays `payouts` (which must be what `anchor.state.outbox` committed to) and
/// leaves `fee_sompi`, unsigned: a committee signs its [`UnsignedAnchorTx::sighash`] (one key
/// with [`successor`], a threshold of members with `crate::committee`).
///
/// # Errors
/// [`crate::SettlementError`] if the script would refuse it: too many inputs or payouts, a fee
/// above the cap, a block not newer, or too little value.
pub fn successor_unsigned(
    rules: &AnchorRules,
    anchor: &AnchorUtxo,
    deposits: &[DepositUtxo],
    payouts: &[Payout],
    new: AnchorState,
    fee_sompi: u64,
) -> Result<UnsignedAnchorTx> {
    let inputs_sompi: Vec<u64> = std::iter::once(anchor.amount_sompi)
        .chain(deposits.iter().map(|d| d.amount_sompi))
        .collect();
    let value = successor_value(
        rules,
        &inputs_sompi,
        payouts,
        fee_sompi,
        &anchor.state,
        &new,
    )?;
    let mut outputs = vec![TransactionOutput::with_covenant(
        value,
        rules.script_public_key(&new)?,
        Some(CovenantBinding::new(0, anchor.covenant_id)),
    )];
    outputs.extend(
        payouts
            .iter()
            .map(|p| TransactionOutput::new(p.amount_sompi, p.script_public_key.clone())),
    );
    let deposit_spk = deposit::script_public_key(&anchor.covenant_id)?;
    let deposit_sig = deposit::signature_script(&anchor.covenant_id)?;
    let mut inputs = vec![TransactionInput::new_with_compute_budget(
        anchor.outpoint,
        vec![],
        0,
        ANCHOR_COMPUTE_BUDGET,
    )];
    let mut entries = vec![anchor.entry(rules)?];
    for d in deposits {
        inputs.push(TransactionInput::new_with_compute_budget(
            d.outpoint,
            deposit_sig.clone(),
            0,
            DEPOSIT_COMPUTE_BUDGET,
        ));
        entries.push(UtxoEntry::new(
            d.amount_sompi,
            deposit_spk.clone(),
            d.block_daa_score,
            false,
            None,
        ));
    }
    let mut tx = native_tx(inputs, outputs);
    tx.finalize();
    let successor = AnchorUtxo {
        outpoint: TransactionOutpoint::new(tx.id(), 0),
        amount_sompi: value,
        state: new,
        covenant_id: anchor.covenant_id,
        block_daa_score: 0,
    };
    Ok(UnsignedAnchorTx {
        tx,
        entries,
        successor,
        old: anchor.state,
    })
}

/// [`successor_unsigned`] signed by the committee key `committee` (a committee of one).
///
/// # Errors
/// As [`successor_unsigned`]; [`crate::SettlementError::BadSignature`] if `committee` is not
/// the key `anchor`'s state names.
pub fn successor(
    rules: &AnchorRules,
    anchor: &AnchorUtxo,
    deposits: &[DepositUtxo],
    payouts: &[Payout],
    new: AnchorState,
    fee_sompi: u64,
    committee: &secp256k1::Keypair,
) -> Result<AnchorTx> {
    let unsigned = successor_unsigned(rules, anchor, deposits, payouts, new, fee_sompi)?;
    let message = secp256k1::Message::from_digest(unsigned.sighash());
    let signature = committee.sign_schnorr(message).serialize();
    unsigned.finish(rules, &signature)
}

/// A version-1 (Toccata) transaction on the native subnetwork with no lock time, gas or
/// payload: the shape of every anchor transaction.
fn native_tx(inputs: Vec<TransactionInput>, outputs: Vec<TransactionOutput>) -> Transaction {
    Transaction::new(
        TX_VERSION_TOCCATA,
        inputs,
        outputs,
        0,
        SUBNETWORK_ID_NATIVE,
        0,
        vec![],
    )
}

/// The BIP340 message of input `index` under `SIG_HASH_ALL`.
fn input_sighash(tx: &Transaction, entries: &[UtxoEntry], index: usize) -> [u8; 32] {
    let populated = PopulatedTransaction::new(tx, entries.to_vec());
    let reused = SigHashReusedValuesUnsync::new();
    calc_schnorr_signature_hash(&populated, index, SIG_HASH_ALL, &reused).as_bytes()
}

/// The BIP340 signature of input `index` under `SIG_HASH_ALL` (64 bytes and the sighash type
/// byte). The signature hash does not cover signature scripts, so they may be filled after.
pub fn sign_input(
    tx: &Transaction,
    entries: &[UtxoEntry],
    index: usize,
    key: &secp256k1::Keypair,
) -> Vec<u8> {
    let message = secp256k1::Message::from_digest(input_sighash(tx, entries, index));
    let signature = key.sign_schnorr(message);
    let mut out = signature.as_ref().to_vec();
    out.push(SIG_HASH_ALL.to_u8());
    out
}

/// The masses Kaspa charges for a transaction (grams) and the one that sets its fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mass {
    /// Compute mass: size, script public keys, compute budgets.
    pub compute: u64,
    /// Transient storage mass, normalised by the block's cofactor.
    pub transient: u64,
    /// Persistent storage mass (KIP-9), from input and output values.
    pub storage: u64,
}

impl Mass {
    /// The mass the fee pays for: the largest of the three.
    pub fn fee_mass(&self) -> u64 {
        self.compute.max(self.transient).max(self.storage)
    }
}

/// Mempool fee rate this crate pays, sompi per gram of [`Mass::fee_mass`] (kaspad's minimum
/// relay rate, 100, plus 10%).
pub const FEE_SOMPI_PER_GRAM: u64 = 110;

/// The masses of `t` under `params` (the network's consensus parameters).
pub fn mass(params: &kaspa_consensus_core::config::params::Params, t: &AnchorTx) -> Mass {
    mass_of(params, &t.tx, &t.entries)
}

fn mass_of(
    params: &kaspa_consensus_core::config::params::Params,
    tx: &Transaction,
    entries: &[UtxoEntry],
) -> Mass {
    let calculator = kaspa_consensus_core::mass::MassCalculator::new_with_consensus_params(params);
    let masses = calculator.calc_non_contextual_masses(tx);
    let populated = PopulatedTransaction::new(tx, entries.to_vec());
    let storage = calculator
        .calc_contextual_masses(&populated)
        .map(|m| m.storage_mass)
        .unwrap_or(u64::MAX);
    Mass {
        compute: masses.compute_mass,
        transient: masses.normalized_transient(&params.block_mass_cofactors()),
        storage,
    }
}
