//! Running Wisp against a Kaspa node you run yourself: `wisp chain create` gives a chain its
//! anchor on Kaspa (the chain is born on L1), and `wisp node` runs that chain's node, a
//! committee of one, against kaspad's wRPC (Borsh) endpoint.
//!
//! The data directory holds `node.json` (the chain's genesis, its anchor and the committee key,
//! written 0600) and `chain/` (the chain's state). The network, its address prefix and its
//! consensus parameters come from kaspad, never from configuration; `wisp node` refuses a
//! kaspad on another network than the chain's.

use crate::anchor::{create_anchor, keypair, progress, StoredAnchor, ANCHOR_MAX_FEE_SOMPI};
use crate::keystore::random_secret;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wisp_chain::{Chain, ChainParams, Genesis};
use wisp_core::hash::to_hex;
use wisp_core::AgentId;
use wisp_l1::{L1Client, Wallet};
use wisp_node::Node;

/// A chain's configuration as `node.json` keeps it.
#[derive(Serialize, Deserialize)]
pub struct NodeConfig {
    /// The chain's name.
    pub chain_name: String,
    /// The Kaspa network (`simnet`, `testnet-10`, `mainnet`…) the chain is anchored on.
    pub network: String,
    /// The chain owner (governance rights, receives fees), `addr:<64 hex>`.
    pub owner: String,
    /// The committee key: the only key the anchor accepts (secret, hex).
    pub committee_secret: String,
    /// Coinbase maturity the node assumes when it spends L1 coins (DAA score units).
    pub coinbase_maturity: u64,
    /// The chain's genesis anchor.
    anchor: StoredAnchor,
}

fn config_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.json")
}

/// What `wisp chain create` needs.
pub struct CreateChain {
    /// kaspad's wRPC Borsh URL (`ws://127.0.0.1:17610`).
    pub l1_url: String,
    /// The node's data directory (must not hold a chain).
    pub data_dir: PathBuf,
    /// The chain's name.
    pub name: String,
    /// The key whose L1 coins fund the anchor; it also becomes the chain owner.
    pub funder: secp256k1::Keypair,
    /// Sompi the anchor holds at genesis (it belongs to no account).
    pub anchor_sompi: u64,
    /// Coinbase maturity of the network (`None`: the network's consensus default).
    pub coinbase_maturity: Option<u64>,
}

/// `wisp chain create`: creates the chain's anchor on Kaspa and writes `node.json`; returns
/// the chain id (the anchor's covenant id).
///
/// # Errors
/// If the directory already holds a chain, kaspad cannot be reached, the funder has no coins,
/// or Kaspa does not accept the anchor in time.
pub async fn create_chain(c: CreateChain) -> Result<String> {
    let path = config_path(&c.data_dir);
    if path.exists() {
        bail!(
            "{} already holds a chain ({}); use another --data-dir",
            c.data_dir.display(),
            path.display()
        );
    }
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("creating {}", c.data_dir.display()))?;
    let l1 = L1Client::connect(&c.l1_url, Duration::from_secs(30)).await?;
    let network = l1.network_id();
    let params = kaspa_consensus_core::config::params::Params::from(network);
    let maturity = c
        .coinbase_maturity
        .unwrap_or_else(|| params.coinbase_maturity());
    let committee_secret = random_secret();
    let committee = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &committee_secret)?;
    let rules = wisp_settlement::AnchorRules {
        committee_key: committee.x_only_public_key().0.serialize(),
        max_fee_sompi: ANCHOR_MAX_FEE_SOMPI,
    };
    let funder = Wallet::new(c.funder, l1.prefix());
    let anchor = create_anchor(
        &l1,
        &funder,
        &rules,
        &params,
        maturity,
        c.anchor_sompi,
        false,
    )
    .await;
    l1.disconnect().await;
    let anchor = anchor?;
    let chain_id = to_hex(&anchor.covenant_id()?.as_bytes());
    let config = NodeConfig {
        chain_name: c.name,
        network: network.to_string(),
        owner: AgentId::Address(funder.x_only_key()).to_raw_string(),
        committee_secret: to_hex(&committee_secret),
        coinbase_maturity: maturity,
        anchor,
    };
    crate::keystore::write_private(&path, serde_json::to_string_pretty(&config)?.as_bytes())?;
    Ok(chain_id)
}

/// `wisp node`'s settings, layered: built-in defaults, then the data directory's `wisp.toml`
/// (or `--config`), then `WISP_L1` / `WISP_PORT` / `WISP_BLOCK_INTERVAL`, then flags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSettings {
    /// kaspad's wRPC Borsh URL.
    pub l1: String,
    /// RPC port on 127.0.0.1.
    pub port: u16,
    /// How often to produce a block and take an anchoring step (`1s`, `200ms`).
    pub block_interval: String,
}

impl Default for NodeSettings {
    fn default() -> Self {
        NodeSettings {
            l1: "ws://127.0.0.1:17610".into(),
            port: 8645,
            block_interval: "1s".into(),
        }
    }
}

/// Flags given on the command line (each overrides every other layer).
#[derive(Default)]
pub struct NodeFlags {
    /// `--l1`.
    pub l1: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--block-interval`.
    pub block_interval: Option<String>,
}

/// Resolves [`NodeSettings`] for `data_dir` (see its docs for the layers).
///
/// # Errors
/// An explicit `config` file that is missing, a file that does not parse or has unknown keys,
/// or a value of the wrong type; the message names the key and where it came from.
pub fn node_settings(
    data_dir: &Path,
    config: Option<&Path>,
    flags: NodeFlags,
) -> Result<NodeSettings> {
    layered_settings(data_dir, config, "WISP_", flags)
}

/// [`node_settings`] with the environment variables' prefix given (tests use one nobody sets).
fn layered_settings(
    data_dir: &Path,
    config: Option<&Path>,
    env_prefix: &str,
    flags: NodeFlags,
) -> Result<NodeSettings> {
    use figment::providers::{Env, Format, Serialized, Toml};
    let mut figment = figment::Figment::from(Serialized::defaults(NodeSettings::default()));
    match config {
        Some(path) if !path.exists() => bail!("config file {} does not exist", path.display()),
        Some(path) => figment = figment.merge(Toml::file(path)),
        None => figment = figment.merge(Toml::file(data_dir.join("wisp.toml"))),
    }
    figment = figment.merge(Env::prefixed(env_prefix).only(&["l1", "port", "block_interval"]));
    if let Some(l1) = flags.l1 {
        figment = figment.merge(Serialized::default("l1", l1));
    }
    if let Some(port) = flags.port {
        figment = figment.merge(Serialized::default("port", port));
    }
    if let Some(interval) = flags.block_interval {
        figment = figment.merge(Serialized::default("block_interval", interval));
    }
    figment
        .extract()
        .map_err(|e| anyhow::anyhow!("node configuration: {e}"))
}

/// What `wisp node` needs.
pub struct RunNode {
    /// The node's data directory (made by `wisp chain create`).
    pub data_dir: PathBuf,
    /// kaspad's wRPC Borsh URL.
    pub l1_url: String,
    /// RPC address (loopback).
    pub rpc_addr: SocketAddr,
    /// How often the node produces a block and takes an anchoring step.
    pub block_interval: Duration,
}

/// `wisp node`: runs the chain's node until Ctrl-C or SIGTERM.
///
/// # Errors
/// If `node.json` is missing or damaged, kaspad is on another network, or the RPC address is
/// taken.
pub async fn run_node(r: RunNode) -> Result<()> {
    if !r.rpc_addr.ip().is_loopback() {
        bail!("the node serves RPC on loopback only (got {})", r.rpc_addr);
    }
    let path = config_path(&r.data_dir);
    let config: NodeConfig =
        serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {}; create a chain first with `wisp chain create`",
                path.display()
            )
        })?)
        .with_context(|| format!("{} is damaged", path.display()))?;
    let l1 = L1Client::connect(&r.l1_url, Duration::from_secs(30)).await?;
    if l1.network_id().to_string() != config.network {
        bail!(
            "kaspad at {} runs {}, but this chain is anchored on {}",
            r.l1_url,
            l1.network_id(),
            config.network
        );
    }
    let mut params = kaspa_consensus_core::config::params::Params::from(l1.network_id());
    params.coinbase_maturity = config.coinbase_maturity;
    let prefix = l1.prefix();
    let committee = Wallet::new(keypair(&config.committee_secret)?, prefix);
    let owner = AgentId::from_raw_string(&config.owner)
        .with_context(|| format!("{}: bad owner", path.display()))?;
    let genesis = Genesis {
        name: config.chain_name.clone(),
        owner,
        params: ChainParams::default(),
        timestamp_ms: 0,
        protocol: wisp_chain::Protocol::default(),
        anchor: Some(config.anchor.covenant_id()?.as_bytes()),
    };
    let chain = Chain::open(&r.data_dir.join("chain"), &genesis)?;
    let anchor = wisp_node::ChainAnchor {
        rules: wisp_settlement::AnchorRules {
            committee_key: committee.x_only_key(),
            max_fee_sompi: ANCHOR_MAX_FEE_SOMPI,
        },
        genesis: config.anchor.utxo()?,
    };
    let node = Node::new(
        chain,
        config.chain_name.clone(),
        l1,
        params,
        prefix,
        committee,
        anchor,
        wisp_node::NodeMode::Follower,
    )?;
    let (rpc, addr) = wisp_node::rpc::serve(node.clone(), r.rpc_addr)
        .await
        .with_context(|| format!("cannot serve RPC on {}", r.rpc_addr))?;
    progress(&format!(
        "node of chain {} ({}) at block {}: RPC http://{addr}, following Kaspa at {}",
        config.chain_name,
        node.chain().chain_id(),
        node.chain().head()?.index,
        r.l1_url
    ));
    let mut ticker = tokio::time::interval(r.block_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = ticker.tick() => {
                if let Err(e) = node.produce_block().await {
                    tracing::warn!(error = %e, "block production failed; will retry");
                }
                if let Err(e) = node.advance_anchor().await {
                    tracing::warn!(error = %e, "anchoring failed; will retry");
                }
            }
        }
    }
    progress("stopping");
    let _ = rpc.stop();
    rpc.stopped().await;
    node.l1().disconnect().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An environment prefix no shell sets, so the developer's own `WISP_*` cannot interfere
    /// (the environment layer itself is exercised by `cli/tests/node.rs`).
    const ENV: &str = "WISP_SETTINGS_TEST_UNSET_";

    /// The file overrides the defaults, flags override the file, and a key the node does not
    /// know is an error that names it (a typo must not be ignored silently).
    #[test]
    fn settings_are_layered_and_strict() {
        let dir = tempfile::tempdir().unwrap();
        let defaults = layered_settings(dir.path(), None, ENV, NodeFlags::default()).unwrap();
        assert_eq!(defaults, NodeSettings::default());
        std::fs::write(
            dir.path().join("wisp.toml"),
            "l1 = \"ws://127.0.0.1:9\"\nblock_interval = \"200ms\"\n",
        )
        .unwrap();
        let s = layered_settings(
            dir.path(),
            None,
            ENV,
            NodeFlags {
                block_interval: Some("2s".into()),
                ..NodeFlags::default()
            },
        )
        .unwrap();
        assert_eq!(s.l1, "ws://127.0.0.1:9");
        assert_eq!(s.block_interval, "2s");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "l1 = \"x\"\nblok_interval = \"1s\"\n").unwrap();
        let e = layered_settings(dir.path(), Some(&bad), ENV, NodeFlags::default()).unwrap_err();
        assert!(e.to_string().contains("blok_interval"), "{e}");
        let e = node_settings(
            dir.path(),
            Some(&dir.path().join("none.toml")),
            NodeFlags::default(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
    }
}
