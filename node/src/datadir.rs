//! A node's data directory and the steps around it, one code path for `wisp chain create` /
//! `wisp node` and for the devnet:
//!
//! - `node.json` ([`NodeConfig`], written 0600): the chain's name, Kaspa network, owner,
//!   committee key and genesis anchor; `chain/`: the chain's state.
//! - [`create_chain`]: a chain is born on Kaspa — the anchor's genesis transaction (a covenant
//!   UTXO whose covenant id is the chain id), then `node.json`.
//! - [`open`]: the node of the chain in a data directory, against a kaspad of the chain's
//!   network.
//! - [`spawn_ticker`]: the run loop, one block and one anchoring step per interval.

use crate::{Node, NodeError, NodeMode, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wisp_chain::{Chain, ChainParams, Genesis};
use wisp_core::hash::{from_hex, to_hex};
use wisp_core::{AgentId, ChainId};
use wisp_l1::{L1Client, Wallet};
use wisp_settlement::tx::AnchorUtxo;

/// Sompi a chain's anchor holds at genesis unless told otherwise (1 KAS; deposits are swept
/// into it later). It belongs to no account.
pub const ANCHOR_GENESIS_SOMPI: u64 = 100_000_000;

/// Most sompi one anchor transaction may leave as fee (0.1 KAS), written into the anchor's
/// rules.
pub const ANCHOR_MAX_FEE_SOMPI: u64 = 10_000_000;

fn bad(message: impl Into<String>) -> NodeError {
    NodeError::DataDir(message.into())
}

/// The genesis anchor UTXO, as `node.json` keeps it (hashes as hex).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAnchor {
    covenant_id: String,
    tx_id: String,
    index: u32,
    amount_sompi: u64,
}

fn hash_of(hex: &str) -> Result<kaspa_hashes::Hash> {
    let bytes: [u8; 32] = from_hex(hex)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            bad("the data directory's settings hold a bad anchor hash (64 hex digits expected)")
        })?;
    Ok(kaspa_hashes::Hash::from_bytes(bytes))
}

impl StoredAnchor {
    /// The record of a genesis anchor UTXO.
    pub fn of(utxo: &AnchorUtxo) -> StoredAnchor {
        StoredAnchor {
            covenant_id: to_hex(&utxo.covenant_id.as_bytes()),
            tx_id: to_hex(&utxo.outpoint.transaction_id.as_bytes()),
            index: utxo.outpoint.index,
            amount_sompi: utxo.amount_sompi,
        }
    }

    /// The chain's covenant id (its chain id).
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if the record is damaged.
    pub fn covenant_id(&self) -> Result<kaspa_hashes::Hash> {
        hash_of(&self.covenant_id)
    }

    /// The genesis anchor UTXO.
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if the record is damaged.
    pub fn utxo(&self, committee_key: [u8; 32]) -> Result<AnchorUtxo> {
        Ok(AnchorUtxo {
            outpoint: kaspa_consensus_core::tx::TransactionOutpoint::new(
                hash_of(&self.tx_id)?,
                self.index,
            ),
            amount_sompi: self.amount_sompi,
            state: wisp_settlement::AnchorState::genesis(committee_key),
            covenant_id: self.covenant_id()?,
            block_daa_score: 0,
        })
    }
}

/// A chain's configuration as `node.json` keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeConfig {
    /// The chain's name.
    pub chain_name: String,
    /// The Kaspa network (`simnet`, `testnet-10`, `mainnet`…) the chain is anchored on.
    pub network: String,
    /// The chain owner (governance rights, receives fees), `addr:<64 hex>`.
    pub owner: String,
    /// The committee key, when this node holds it whole (a committee of one): the only key the
    /// anchor accepts (secret, hex). Empty for a committee chain.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub committee_secret: String,
    /// A committee chain's anchor key (x-only, hex): the committee's FROST group key, which
    /// no one holds whole (`wisp committee dkg`). Absent for a committee of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committee_key: Option<String>,
    /// Coinbase maturity the node assumes when it spends L1 coins (DAA score units).
    pub coinbase_maturity: u64,
    /// The chain's genesis anchor.
    pub anchor: StoredAnchor,
    /// The version of the anchor script the chain's anchors use ([`ANCHOR_SCRIPT_VERSION`]
    /// for chains this Wisp creates; absent, 1, in files of earlier versions).
    #[serde(default = "first_anchor_script")]
    pub anchor_script: u32,
}

/// The anchor script version this Wisp creates and runs: 2 carries the committee key in the
/// anchor's state (1 held it in the script's code).
pub const ANCHOR_SCRIPT_VERSION: u32 = 2;

fn first_anchor_script() -> u32 {
    1
}

impl NodeConfig {
    /// Where `node.json` lives in `data_dir`.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("node.json")
    }

    /// Reads `data_dir`'s `node.json`.
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if it is missing (the message says to create the chain first)
    /// or damaged.
    pub fn load(data_dir: &Path) -> Result<NodeConfig> {
        let path = Self::path(data_dir);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            bad(format!(
                "reading {}: {e}; create a chain first with `wisp chain create`",
                path.display()
            ))
        })?;
        let config: NodeConfig = serde_json::from_str(&text)
            .map_err(|e| bad(format!("{} is damaged: {e}", path.display())))?;
        if config.anchor_script != ANCHOR_SCRIPT_VERSION {
            return Err(bad(format!(
                "{} is a chain whose anchor uses script version {} (made by another Wisp); this \
                 Wisp runs anchors of version {ANCHOR_SCRIPT_VERSION}: create the chain again \
                 (`wisp chain create`, or `wisp devnet --fresh`)",
                path.display(),
                config.anchor_script
            )));
        }
        Ok(config)
    }

    /// The chain's genesis: its id is the anchor's covenant id.
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if the owner or the anchor record is damaged.
    pub fn genesis(&self) -> Result<Genesis> {
        Ok(Genesis {
            name: self.chain_name.clone(),
            owner: AgentId::from_raw_string(&self.owner)
                .ok_or_else(|| bad(format!("node.json: bad owner `{}`", self.owner)))?,
            params: ChainParams::default(),
            timestamp_ms: 0,
            protocol: wisp_chain::Protocol::default(),
            anchor: Some(self.anchor.covenant_id()?.as_bytes()),
        })
    }

    /// The committee key pair, if this node holds it (`None` for a committee chain).
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if the secret is damaged, or neither a secret nor a committee
    /// key is given.
    pub fn committee(&self) -> Result<Option<secp256k1::Keypair>> {
        match (&self.committee_secret, &self.committee_key) {
            (secret, _) if !secret.is_empty() => keypair(secret).map(Some),
            (_, Some(_)) => Ok(None),
            _ => Err(bad("node.json names no committee key")),
        }
    }

    /// The x-only key the chain's anchor accepts.
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if the key is damaged or missing.
    pub fn committee_x_only(&self) -> Result<[u8; 32]> {
        match (self.committee()?, &self.committee_key) {
            (Some(pair), _) => Ok(pair.x_only_public_key().0.serialize()),
            (None, Some(hex)) => x_only(hex),
            (None, None) => Err(bad("node.json names no committee key")),
        }
    }
}

/// A secp256k1 key pair from 64 hex digits.
///
/// # Errors
/// [`NodeError::DataDir`] if `hex` is not a valid secret key.
pub fn keypair(hex: &str) -> Result<secp256k1::Keypair> {
    from_hex(hex)
        .and_then(|bytes| secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &bytes).ok())
        .ok_or_else(|| bad("the data directory's settings hold a bad key (64 hex digits expected)"))
}

/// An x-only public key (BIP340) from 64 hex digits.
///
/// # Errors
/// [`NodeError::DataDir`] if `hex` is not one.
pub fn x_only(hex: &str) -> Result<[u8; 32]> {
    from_hex(hex)
        .and_then(|bytes| secp256k1::XOnlyPublicKey::from_slice(&bytes).ok())
        .map(|k| k.serialize())
        .ok_or_else(|| {
            bad(format!(
                "`{hex}` is not an x-only public key (64 hex digits)"
            ))
        })
}

/// A fresh random secret key.
pub fn random_secret() -> [u8; 32] {
    secp256k1::SecretKey::new(&mut secp256k1::rand::thread_rng()).secret_bytes()
}

/// Writes `bytes` to `path` readable by the owner only (0600 on Unix), atomically: a
/// temporary file in the same directory, synced, then renamed over `path`, so a crash leaves
/// the old file or the new one and nobody else ever reads a secret (keys, `node.json`).
///
/// # Errors
/// The I/O error if the directory or the file cannot be written.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "keys".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = (|| -> std::io::Result<()> {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// What [`create_chain`] needs.
pub struct CreateChain<'a> {
    /// A client of a kaspad on the chain's network.
    pub l1: &'a L1Client,
    /// The node's data directory (must not hold a chain).
    pub data_dir: &'a Path,
    /// The chain's name.
    pub name: String,
    /// The key whose L1 coins fund the anchor.
    pub funder: secp256k1::Keypair,
    /// The chain owner (default: the funder's key).
    pub owner: Option<AgentId>,
    /// Sompi the anchor holds at genesis.
    pub anchor_sompi: u64,
    /// Coinbase maturity of the network (`None`: the network's consensus default).
    pub coinbase_maturity: Option<u64>,
    /// A committee's anchor key (x-only; `wisp committee dkg` makes it): the chain runs on that
    /// committee. `None`: a fresh key this node holds (a committee of one).
    pub committee_key: Option<[u8; 32]>,
    /// Mine the funder's coins and the accepting blocks (simnet only); otherwise wait up to
    /// two minutes for the network's blocks.
    pub mine: bool,
    /// Where progress lines for people go.
    pub progress: &'a (dyn Fn(&str) + Sync),
}

/// Creates a chain on Kaspa: submits the anchor's genesis transaction (a covenant UTXO under a
/// fresh committee key holding `anchor_sompi`, paid from the funder's L1 coins), waits until
/// Kaspa has accepted it, and writes `node.json`. Returns the chain id (the anchor's covenant
/// id).
///
/// # Errors
/// [`NodeError::DataDir`] if the directory already holds a chain, the funder has no coins, or
/// Kaspa does not accept the anchor in time; [`NodeError::L1`] if kaspad fails.
pub async fn create_chain(c: CreateChain<'_>) -> Result<ChainId> {
    let path = NodeConfig::path(c.data_dir);
    if path.exists() {
        return Err(bad(format!(
            "{} already holds a chain ({}); use another --data-dir",
            c.data_dir.display(),
            path.display()
        )));
    }
    let network = c.l1.network_id();
    let mut params = kaspa_consensus_core::config::params::Params::from(network);
    let maturity = c
        .coinbase_maturity
        .unwrap_or_else(|| params.coinbase_maturity());
    params.coinbase_maturity = maturity;
    let (committee_secret, committee_key) = match c.committee_key {
        Some(key) => (String::new(), key),
        None => {
            let secret = random_secret();
            let pair = keypair(&to_hex(&secret))?;
            (to_hex(&secret), pair.x_only_public_key().0.serialize())
        }
    };
    let rules = wisp_settlement::AnchorRules {
        max_fee_sompi: ANCHOR_MAX_FEE_SOMPI,
    };
    let funder = Wallet::new(c.funder, c.l1.prefix());
    let anchor = create_anchor(&c, &funder, &rules, committee_key, &params).await?;
    let config = NodeConfig {
        chain_name: c.name,
        network: network.to_string(),
        owner: c
            .owner
            .unwrap_or(AgentId::Address(funder.x_only_key()))
            .to_raw_string(),
        committee_key: c.committee_key.map(|k| to_hex(&k)),
        committee_secret,
        coinbase_maturity: maturity,
        anchor: StoredAnchor::of(&anchor),
        anchor_script: ANCHOR_SCRIPT_VERSION,
    };
    let json = serde_json::to_string_pretty(&config).map_err(|e| bad(e.to_string()))?;
    write_private(&path, json.as_bytes())
        .map_err(|e| bad(format!("writing {}: {e}", path.display())))?;
    Ok(ChainId(anchor.covenant_id.as_bytes()))
}

/// Submits the anchor's genesis transaction and waits for Kaspa to accept it; returns the
/// genesis anchor UTXO.
async fn create_anchor(
    c: &CreateChain<'_>,
    funder: &Wallet,
    rules: &wisp_settlement::AnchorRules,
    committee_key: [u8; 32],
    params: &kaspa_consensus_core::config::params::Params,
) -> Result<AnchorUtxo> {
    (c.progress)("creating the chain's anchor on Kaspa (a covenant UTXO)");
    let maturity = params.coinbase_maturity();
    if c.mine {
        for _ in 0..maturity + 3 {
            c.l1.mine_block(&funder.address()).await?;
        }
    }
    let funding = c.l1.spendable_utxos(&funder.address(), maturity).await?;
    let funding = funding.get(..1).ok_or_else(|| {
        bad(format!(
            "{} has no spendable coins on Kaspa to fund the anchor; send it at least {} sompi",
            funder.address(),
            c.anchor_sompi
        ))
    })?;
    let change = kaspa_txscript::pay_to_address_script(&funder.address());
    let build = |fee| {
        wisp_settlement::tx::genesis(
            rules,
            committee_key,
            funding,
            funder.keypair(),
            c.anchor_sompi,
            change.clone(),
            fee,
        )
    };
    let probe = build(0)?;
    let fee = wisp_settlement::tx::mass(params, &probe).fee_mass()
        * wisp_settlement::tx::FEE_SOMPI_PER_GRAM;
    let genesis = build(fee)?;
    c.l1.submit_transaction(&genesis.tx).await?;
    let address = rules.address(
        &wisp_settlement::AnchorState::genesis(committee_key),
        c.l1.prefix(),
    )?;
    for _ in 0..600 {
        if c.mine {
            c.l1.mine_block(&funder.address()).await?;
        } else {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let utxos = c.l1.spendable_utxos(&address, 0).await?;
        if utxos
            .iter()
            .any(|(outpoint, _)| *outpoint == genesis.successor.outpoint)
        {
            return Ok(genesis.successor);
        }
    }
    Err(bad(format!(
        "Kaspa did not accept the anchor's genesis transaction {} in time; see kaspad's log",
        genesis.tx.id()
    )))
}

/// Opens the node of the chain in `data_dir` against `l1`, which must run the chain's
/// network; its parameters (address prefix, masses) come from kaspad.
///
/// # Errors
/// [`NodeError::DataDir`] if `node.json` is missing or damaged or kaspad runs another
/// network; [`NodeError::Chain`] if the chain's state cannot be opened.
pub fn open(data_dir: &Path, l1: L1Client, mode: NodeMode) -> Result<Arc<Node>> {
    open_with(data_dir, l1, mode, &OpenOptions::default())
}

/// How [`open_with`] runs the chain; [`open`] takes the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Threads that execute a block: `0` one per core, `1` (the default) one request at a
    /// time; requests that declare access lists and do not conflict run at once
    /// (`Chain::set_exec_threads`). Every thread count gives the same blocks.
    pub exec_threads: usize,
    /// The state database's page cache, bytes (default [`wisp_state::DEFAULT_CACHE_BYTES`]).
    pub state_cache_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            exec_threads: 1,
            state_cache_bytes: wisp_state::DEFAULT_CACHE_BYTES,
        }
    }
}

/// [`open`] with `options`.
///
/// # Errors
/// As [`open`]; [`NodeError::Chain`] if the threads cannot be started.
pub fn open_with(
    data_dir: &Path,
    l1: L1Client,
    mode: NodeMode,
    options: &OpenOptions,
) -> Result<Arc<Node>> {
    let config = NodeConfig::load(data_dir)?;
    if l1.network_id().to_string() != config.network {
        return Err(bad(format!(
            "kaspad at {} runs {}, but this chain is anchored on {}",
            l1.url(),
            l1.network_id(),
            config.network
        )));
    }
    let mut params = kaspa_consensus_core::config::params::Params::from(l1.network_id());
    params.coinbase_maturity = config.coinbase_maturity;
    let prefix = l1.prefix();
    let committee = config.committee()?.map(|pair| Wallet::new(pair, prefix));
    let mut chain = Chain::open_with_cache(
        &data_dir.join("chain"),
        &config.genesis()?,
        options.state_cache_bytes,
    )?;
    if let Some((before, after)) = chain.db().compacted() {
        tracing::info!(
            before_bytes = before,
            after_bytes = after,
            "compacted the state store while opening it (free pages given back to the disk)"
        );
    }
    chain.set_exec_threads(options.exec_threads)?;
    let committee_key = config.committee_x_only()?;
    let anchor = crate::ChainAnchor {
        rules: wisp_settlement::AnchorRules {
            max_fee_sompi: ANCHOR_MAX_FEE_SOMPI,
        },
        committee_key,
        genesis: config.anchor.utxo(committee_key)?,
    };
    Node::new(
        chain,
        config.chain_name,
        l1,
        params,
        prefix,
        committee,
        anchor,
        mode,
    )
}

/// The run loop: every `interval`, [`Node::mine`] one step (on a devnet it first mines a Kaspa
/// block; then a chain block and an anchoring step). Failures are logged and retried on the
/// next tick. Stops when `stop` changes or its sender is dropped.
pub fn spawn_ticker(
    node: Arc<Node>,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticker.tick() => {
                    if let Err(e) = node.mine(1).await {
                        tracing::warn!(error = %e, "block production failed; will retry");
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `node.json` of a chain whose anchor uses the old script is refused, saying what to do.
    #[test]
    fn a_chain_of_an_older_anchor_script_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = serde_json::json!({
            "chain_name": "old",
            "network": "simnet",
            "owner": format!("addr:{}", "11".repeat(32)),
            "committee_secret": "22".repeat(32),
            "coinbase_maturity": 10,
            "anchor": {
                "covenant_id": "33".repeat(32),
                "tx_id": "44".repeat(32),
                "index": 0,
                "amount_sompi": 100_000_000u64,
            },
        });
        std::fs::write(NodeConfig::path(dir.path()), config.to_string()).unwrap();
        let err = NodeConfig::load(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("script version 1") && err.contains("create the chain again"),
            "{err}"
        );
        // The same file from this Wisp loads.
        config["anchor_script"] = ANCHOR_SCRIPT_VERSION.into();
        std::fs::write(NodeConfig::path(dir.path()), config.to_string()).unwrap();
        let loaded = NodeConfig::load(dir.path()).unwrap();
        assert_eq!(loaded.anchor_script, ANCHOR_SCRIPT_VERSION);
    }
}
