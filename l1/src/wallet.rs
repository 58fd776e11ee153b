//! A single-key Kaspa wallet (BIP-340 Schnorr, pay-to-public-key): builds, prices and signs
//! version-1 transactions, including Wisp lane transactions that carry request payloads and pay
//! deposits into a chain.

use crate::client::L1Client;
use crate::{L1Error, Result};
use kaspa_addresses::{Address, Prefix, Version};
use kaspa_consensus_core::config::params::Params;
use kaspa_consensus_core::constants::TX_VERSION_TOCCATA;
use kaspa_consensus_core::mass::MassCalculator;
use kaspa_consensus_core::sign::sign;
use kaspa_consensus_core::subnets::SubnetworkId;
use kaspa_consensus_core::tx::{
    ScriptPublicKey, SignableTransaction, Transaction, TransactionInput, TransactionOutput,
};
use kaspa_txscript::pay_to_address_script;

/// The P2PK address of an x-only public key.
pub fn address_of(x_only_key: &[u8; 32], prefix: Prefix) -> Address {
    Address::new(prefix, Version::PubKey, x_only_key)
}

/// The x-only key of a P2PK script (`OP_DATA_32 <key> OP_CHECKSIG`), if it is one.
pub fn p2pk_key_of_script(script: &[u8]) -> Option<[u8; 32]> {
    if script.len() == 34 && script[0] == 0x20 && script[33] == 0xac {
        script[1..33].try_into().ok()
    } else {
        None
    }
}

/// A key and the coins of its address.
#[derive(Clone)]
pub struct Wallet {
    keypair: secp256k1::Keypair,
    prefix: Prefix,
}

impl Wallet {
    /// A wallet for `keypair` on the network with `prefix`.
    pub fn new(keypair: secp256k1::Keypair, prefix: Prefix) -> Wallet {
        Wallet { keypair, prefix }
    }

    /// The key pair.
    pub fn keypair(&self) -> &secp256k1::Keypair {
        &self.keypair
    }

    /// The x-only public key (the payload of the address, and the Wisp `AgentId`).
    pub fn x_only_key(&self) -> [u8; 32] {
        self.keypair.x_only_public_key().0.serialize()
    }

    /// The P2PK address.
    pub fn address(&self) -> Address {
        address_of(&self.x_only_key(), self.prefix)
    }

    /// Builds, prices, signs and submits a transaction on `lane` with `payload`, paying
    /// `outputs` (address, sompi) and the change back to this wallet; returns the tx id.
    ///
    /// The fee is the mempool minimum, max(compute mass, storage mass, transient mass × 0.5) ×
    /// 100 sompi per gram (docs/kaspa.md), plus 10% headroom.
    ///
    /// # Errors
    /// [`L1Error::InsufficientFunds`] if mature coins do not cover outputs and fee;
    /// [`L1Error::Rejected`] if kaspad refuses the transaction.
    pub async fn send(
        &self,
        client: &L1Client,
        params: &Params,
        lane: SubnetworkId,
        payload: Vec<u8>,
        outputs: &[(ScriptPublicKey, u64)],
    ) -> Result<[u8; 32]> {
        let prepared = self.prepare(client, params, lane, payload, outputs).await?;
        client.submit_transaction(&prepared.tx).await
    }

    /// Builds, prices and signs what [`Wallet::send`] submits, without submitting it: for
    /// callers that want its size, mass and fee first (the benchmarks report them).
    ///
    /// # Errors
    /// [`L1Error::InsufficientFunds`] if mature coins do not cover outputs and fee; Kaspa RPC
    /// errors from listing the wallet's coins.
    pub async fn prepare(
        &self,
        client: &L1Client,
        params: &Params,
        lane: SubnetworkId,
        payload: Vec<u8>,
        outputs: &[(ScriptPublicKey, u64)],
    ) -> Result<PreparedTx> {
        let utxos = client
            .spendable_utxos(&self.address(), params.coinbase_maturity())
            .await?;
        let wanted: u64 = outputs.iter().map(|(_, v)| *v).sum();
        let change_script = pay_to_address_script(&self.address());
        let calculator = MassCalculator::new_with_consensus_params(params);
        // Take coins largest first until outputs plus a generous fee estimate are covered.
        let mut chosen = Vec::new();
        let mut total = 0u64;
        let fee_guess = 5_000_000 + payload.len() as u64 * 300;
        for utxo in utxos {
            if total >= wanted + fee_guess {
                break;
            }
            total += utxo.1.amount;
            chosen.push(utxo);
        }
        let build = |fee: u64| -> Option<SignableTransaction> {
            let change = total.checked_sub(wanted + fee)?;
            let inputs = chosen
                .iter()
                .map(|(op, _)| TransactionInput::new_with_compute_budget(*op, vec![], 0, 10))
                .collect();
            let mut outs: Vec<TransactionOutput> = outputs
                .iter()
                .map(|(spk, v)| TransactionOutput::new(*v, spk.clone()))
                .collect();
            if change > 0 {
                outs.push(TransactionOutput::new(change, change_script.clone()));
            }
            let tx = Transaction::new(
                TX_VERSION_TOCCATA,
                inputs,
                outs,
                0,
                lane,
                0,
                payload.clone(),
            );
            Some(sign(
                SignableTransaction::with_entries(
                    tx,
                    chosen.iter().map(|(_, u)| u.clone()).collect(),
                ),
                self.keypair,
            ))
        };
        let insufficient = |needed: u64| L1Error::InsufficientFunds {
            address: self.address().to_string(),
            available_sompi: total,
            needed_sompi: needed,
        };
        let probe = build(0).ok_or_else(|| insufficient(wanted))?;
        let masses = calculator.calc_non_contextual_masses(&probe.tx);
        let storage = calculator
            .calc_contextual_masses(&probe.as_verifiable())
            .map(|m| m.storage_mass)
            .unwrap_or(0);
        let mass = masses
            .compute_mass
            .max(masses.normalized_transient(&params.block_mass_cofactors()))
            .max(storage);
        let fee = mass * 100 * 11 / 10;
        let signed = build(fee).ok_or_else(|| insufficient(wanted + fee))?;
        Ok(PreparedTx {
            tx: signed.tx,
            mass,
            fee_sompi: fee,
        })
    }
}

/// A signed transaction ready to submit ([`Wallet::prepare`]).
#[derive(Clone, Debug)]
pub struct PreparedTx {
    /// The transaction.
    pub tx: Transaction,
    /// Its mass in grams, normalised as a block counts it: the largest of compute mass,
    /// transient mass × the block's transient cofactor, and storage mass (of the fee-less probe,
    /// which the fee's change output barely moves).
    pub mass: u64,
    /// The fee it pays, sompi (mass × 100 sompi per gram, plus 10%).
    pub fee_sompi: u64,
}
