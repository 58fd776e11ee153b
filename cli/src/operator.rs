//! Running Wisp against a Kaspa node you run yourself: `wisp chain create` gives a chain its
//! anchor on Kaspa (the chain is born on L1), and `wisp node` runs that chain's node, a
//! committee of one, against kaspad's wRPC (Borsh) endpoint.
//!
//! The data directory (`wisp_node::datadir`, shared with the devnet) holds `node.json` (the
//! chain's genesis, its anchor and the committee key, written 0600) and `chain/` (the chain's
//! state). The network, its address prefix and its consensus parameters come from kaspad,
//! never from configuration; `wisp node` refuses a kaspad on another network than the
//! chain's.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wisp_core::hash::to_hex;
use wisp_l1::L1Client;
use wisp_node::datadir;

/// Progress lines for people (stderr), so stdout stays clean for `--json`.
pub(crate) fn progress(message: &str) {
    eprintln!("  {message}");
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
    /// A committee's anchor key (x-only, hex, as `wisp committee dkg` prints it): the chain
    /// runs on that committee. `None`: a fresh key the node holds.
    pub committee_key: Option<String>,
}

/// `wisp chain create`: creates the chain's anchor on Kaspa and writes `node.json`
/// ([`datadir::create_chain`]); returns the chain id (the anchor's covenant id) as hex.
///
/// # Errors
/// If the directory already holds a chain, kaspad cannot be reached, the funder has no coins,
/// or Kaspa does not accept the anchor in time.
pub async fn create_chain(c: CreateChain) -> Result<String> {
    std::fs::create_dir_all(&c.data_dir)
        .with_context(|| format!("creating {}", c.data_dir.display()))?;
    let committee_key = c
        .committee_key
        .as_deref()
        .map(datadir::x_only)
        .transpose()?;
    let l1 = L1Client::connect(&c.l1_url, Duration::from_secs(30)).await?;
    let created = datadir::create_chain(datadir::CreateChain {
        l1: &l1,
        data_dir: &c.data_dir,
        name: c.name,
        funder: c.funder,
        owner: None,
        anchor_sompi: c.anchor_sompi,
        coinbase_maturity: c.coinbase_maturity,
        committee_key,
        mine: false,
        progress: &progress,
    })
    .await;
    l1.disconnect().await;
    Ok(to_hex(&created?.0))
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
    /// Threads that execute a block (`0`: one per core; `1`: sequential).
    pub exec_threads: usize,
    /// Blocks whose state stays provable (`None`: every block, an archive node).
    pub state_retention: Option<u64>,
    /// Keep no event or request index from now on (`--no-index`, permanent).
    pub no_index: bool,
    /// The state database's page cache, MiB.
    pub state_cache_mib: usize,
    /// The latest state tree's nodes kept in memory, MiB (`--state-node-cache-mib`).
    pub state_node_cache_mib: usize,
    /// Web origins whose pages may call the RPC (`--cors`).
    pub cors: Vec<String>,
    /// An access node: the RPC URL of the committee member (or access node) it follows
    /// (`--follow`).
    pub follow: Option<String>,
    /// Start an access node without a chain database from its upstream's certified state
    /// (`--snapshot`).
    pub snapshot: bool,
}

/// `wisp node`: runs the chain's node until Ctrl-C or SIGTERM ([`datadir::open`], RPC,
/// [`datadir::spawn_ticker`]).
///
/// # Errors
/// If `node.json` is missing or damaged, kaspad is on another network, or the RPC address is
/// taken.
pub async fn run_node(r: RunNode) -> Result<()> {
    if !r.rpc_addr.ip().is_loopback() {
        bail!("the node serves RPC on loopback only (got {})", r.rpc_addr);
    }
    let l1 = L1Client::connect(&r.l1_url, Duration::from_secs(30)).await?;
    if let (true, Some(upstream)) = (r.snapshot, &r.follow) {
        match wisp_node::committee::sync_snapshot(&r.data_dir, upstream, progress).await? {
            Some(_) => {}
            None => progress(
                "--snapshot: this node has a chain database already; following from its own head",
            ),
        }
    }
    let node = datadir::open_with(
        &r.data_dir,
        l1,
        wisp_node::NodeMode::Follower,
        &datadir::OpenOptions {
            exec_threads: r.exec_threads,
            state_cache_bytes: r.state_cache_mib.saturating_mul(1024 * 1024),
        },
    )?;
    node.chain().db().set_retention(r.state_retention);
    node.chain()
        .db()
        .set_node_cache(r.state_node_cache_mib.saturating_mul(1024 * 1024));
    let db = node.chain().db();
    db.set_indexing(!r.no_index).or_else(|e| match e {
        // Started without the flag on a directory that stopped indexing: it stays stopped.
        wisp_state::StateError::Unindexed { from } => {
            progress(&format!(
                "this data directory keeps no event or request index from block {from} on (it ran with --no-index); those queries answer with an error"
            ));
            Ok(())
        }
        e => Err(e),
    })?;
    let (rpc, addr) = wisp_node::rpc::serve_with_cors(node.clone(), r.rpc_addr, &r.cors)
        .await
        .with_context(|| format!("cannot serve RPC on {}", r.rpc_addr))?;
    progress(&format!(
        "node of chain {} ({}) at block {}: RPC http://{addr} (explorer http://{addr}/explorer/), following Kaspa at {}",
        node.chain_name(),
        node.chain().chain_id(),
        node.chain().head()?.index,
        r.l1_url
    ));
    // An access node follows a committee's blocks; a member of a committee votes on them. In
    // both the committee makes the blocks (no ticker, and no anchoring by this node alone).
    // A next committee's member (its own committee's keys here, and --follow) follows the
    // current committee until the chain passes to its own, then runs as its member.
    let successor = r.follow.is_some() && wisp_node::committee::is_member_dir(&r.data_dir);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut access = match &r.follow {
        Some(upstream) if successor => {
            if wisp_node::committee::has_taken_over(&node, &r.data_dir)? {
                None
            } else {
                let namespace = wisp_node::committee::committee_namespace(&r.data_dir)?;
                let mut access = wisp_node::committee::start_access_until(
                    node.clone(),
                    &r.data_dir,
                    upstream,
                    Some(namespace),
                )?;
                progress(&format!(
                    "next committee's member: following the current committee's final blocks from {upstream} until the chain passes to this committee"
                ));
                let stop = tokio::select! {
                    _ = access.handed_over() => false,
                    _ = tokio::signal::ctrl_c() => true,
                    _ = terminate.recv() => true,
                };
                access.stop().await;
                if stop {
                    progress("stopping");
                    let _ = rpc.stop();
                    rpc.stopped().await;
                    node.l1().disconnect().await;
                    return Ok(());
                }
                progress("the chain has passed to this committee: starting as its member");
                None
            }
        }
        Some(upstream) => {
            let access = wisp_node::committee::start_access(node.clone(), &r.data_dir, upstream)?;
            progress(&format!(
                "access node: following the committee's final blocks from {upstream}"
            ));
            Some(access)
        }
        None => None,
    };
    let member = match wisp_node::committee::CommitteeFile::load(&r.data_dir)? {
        Some(_) if access.is_some() => None,
        Some(committee) => {
            let member = wisp_node::committee::start_member(node.clone(), &r.data_dir)?;
            progress(&format!(
                "committee member: {} members, p2p on {}",
                committee.members.len(),
                committee
                    .members
                    .iter()
                    .map(|m| m.address.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            Some(member)
        }
        None => None,
    };
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let ticker = match (&member, &access) {
        (None, None) => Some(datadir::spawn_ticker(
            node.clone(),
            r.block_interval,
            stopped,
        )),
        _ => None,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    progress("stopping");
    let _ = stop.send(true);
    if let Some(ticker) = ticker {
        let _ = ticker.await;
    }
    if let Some(access) = access.take() {
        access.stop().await;
    }
    if let Some(member) = member {
        tokio::task::spawn_blocking(move || member.stop())
            .await
            .map_err(|e| anyhow::anyhow!("stopping the committee member: {e}"))??;
    }
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
