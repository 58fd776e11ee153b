//! A chain's birth on Kaspa, shared by `wisp devnet` and `wisp chain create`: the anchor's
//! genesis transaction, and the genesis anchor UTXO as the data directory records it.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use wisp_core::hash::{from_hex, to_hex};
use wisp_l1::{L1Client, Wallet};

/// Sompi a chain's anchor holds at genesis unless told otherwise (1 KAS; deposits are swept
/// into it later).
pub const ANCHOR_GENESIS_SOMPI: u64 = 100_000_000;

/// Most sompi one anchor transaction may leave as fee (0.1 KAS), written into the anchor's rules.
pub const ANCHOR_MAX_FEE_SOMPI: u64 = 10_000_000;

/// The genesis anchor UTXO, as `devnet.json` and `node.json` keep it.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct StoredAnchor {
    covenant_id: String,
    tx_id: String,
    index: u32,
    amount_sompi: u64,
}

impl StoredAnchor {
    /// The chain's covenant id (its chain id).
    pub(crate) fn covenant_id(&self) -> Result<kaspa_hashes::Hash> {
        hash_of(&self.covenant_id)
    }

    /// The genesis anchor UTXO.
    pub(crate) fn utxo(&self) -> Result<wisp_settlement::tx::AnchorUtxo> {
        Ok(wisp_settlement::tx::AnchorUtxo {
            outpoint: kaspa_consensus_core::tx::TransactionOutpoint::new(
                hash_of(&self.tx_id)?,
                self.index,
            ),
            amount_sompi: self.amount_sompi,
            state: wisp_settlement::AnchorState::genesis(),
            covenant_id: self.covenant_id()?,
            block_daa_score: 0,
        })
    }
}

pub(crate) fn keypair(hex: &str) -> Result<secp256k1::Keypair> {
    let bytes = from_hex(hex)
        .context("the data directory's settings hold a bad key (64 hex digits expected)")?;
    Ok(secp256k1::Keypair::from_seckey_slice(
        secp256k1::SECP256K1,
        &bytes,
    )?)
}

/// Progress lines for people (stderr), so stdout stays clean for `--json`.
pub(crate) fn progress(message: &str) {
    eprintln!("  {message}");
}

pub(crate) fn hash_of(hex: &str) -> Result<kaspa_hashes::Hash> {
    let bytes: [u8; 32] = from_hex(hex)
        .and_then(|b| b.try_into().ok())
        .context("the data directory's settings hold a bad anchor hash (64 hex digits expected)")?;
    Ok(kaspa_hashes::Hash::from_bytes(bytes))
}

/// Creates a chain's anchor on Kaspa: submits the anchor's genesis transaction (a covenant UTXO
/// under `rules` holding `anchor_sompi`, paid from `funder`'s L1 coins of at least
/// `coinbase_maturity`) and waits until Kaspa has accepted it. On a devnet (`mine`) it mines
/// the coins and the blocks itself; otherwise it waits up to two minutes for the network's
/// blocks.
pub(crate) async fn create_anchor(
    l1: &L1Client,
    funder: &Wallet,
    rules: &wisp_settlement::AnchorRules,
    params: &kaspa_consensus_core::config::params::Params,
    coinbase_maturity: u64,
    anchor_sompi: u64,
    mine: bool,
) -> Result<StoredAnchor> {
    progress("creating the chain's anchor on Kaspa (a covenant UTXO)");
    if mine {
        for _ in 0..coinbase_maturity + 3 {
            l1.mine_block(&funder.address()).await?;
        }
    }
    let funding = l1
        .spendable_utxos(&funder.address(), coinbase_maturity)
        .await?;
    let funding = funding.get(..1).with_context(|| {
        format!(
            "{} has no spendable coins on Kaspa to fund the anchor; send it at least {} sompi",
            funder.address(),
            anchor_sompi
        )
    })?;
    let change = kaspa_txscript::pay_to_address_script(&funder.address());
    let build = |fee| {
        wisp_settlement::tx::genesis(
            rules,
            funding,
            funder.keypair(),
            anchor_sompi,
            change.clone(),
            fee,
        )
    };
    let probe = build(0)?;
    let fee = wisp_settlement::tx::mass(params, &probe).fee_mass()
        * wisp_settlement::tx::FEE_SOMPI_PER_GRAM;
    let genesis = build(fee)?;
    l1.submit_transaction(&genesis.tx).await?;
    let address = rules.address(&wisp_settlement::AnchorState::genesis(), l1.prefix())?;
    for _ in 0..600 {
        if mine {
            l1.mine_block(&funder.address()).await?;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let utxos = l1.spendable_utxos(&address, 0).await?;
        if utxos
            .iter()
            .any(|(outpoint, _)| *outpoint == genesis.successor.outpoint)
        {
            return Ok(StoredAnchor {
                covenant_id: to_hex(&genesis.successor.covenant_id.as_bytes()),
                tx_id: to_hex(&genesis.successor.outpoint.transaction_id.as_bytes()),
                index: genesis.successor.outpoint.index,
                amount_sompi: genesis.successor.amount_sompi,
            });
        }
    }
    bail!(
        "Kaspa did not accept the anchor's genesis transaction {} in time; see kaspad's log",
        genesis.tx.id()
    )
}
