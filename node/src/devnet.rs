//! `wisp devnet`: a local Wisp chain on a real in-process Kaspa simnet, like Foundry's anvil.
//!
//! - kaspad runs in this process on simnet (PoW skipped); blocks are mined every `block_time` and
//!   on demand (`dev_mine`).
//! - A few dev accounts get L1 coins from mining and an on-chain deposit (their keys are
//!   devnet-only; `wisp devnet` prints them and imports them into the keystore as `dev0`…).
//! - One Wisp node hosts one chain whose committee is itself; RPC on 127.0.0.1.
//! - Everything lives in the data directory; a restart continues where it stopped.
//!
//! The chain is created, opened and run by the same code as `wisp chain create` and `wisp
//! node` (`wisp_node::datadir`): the data directory is a node's (`node.json`, `chain/`) plus
//! `kaspad/` and `devnet.json` (the miner's and the dev accounts' keys).

use crate::datadir::{self, random_secret, NodeConfig, ANCHOR_GENESIS_SOMPI};
use crate::{Node, NodeError, Result};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wisp_chain::Genesis;
use wisp_core::hash::to_hex;
use wisp_core::AgentId;
use wisp_l1::{L1Client, Prefix, SimnetConfig, SimnetNode, Wallet};

fn bad(message: impl Into<String>) -> NodeError {
    NodeError::DataDir(message.into())
}

/// A dev account: a devnet-only key, funded on L1 and on the chain at first start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevAccount {
    /// `dev0`, `dev1`…
    pub name: String,
    /// The 32-byte secret key, hex (public on purpose: devnet only).
    pub secret_hex: String,
}

impl DevAccount {
    /// The key pair.
    ///
    /// # Errors
    /// [`NodeError::DataDir`] if `devnet.json` holds a bad key.
    pub fn keypair(&self) -> Result<secp256k1::Keypair> {
        datadir::keypair(&self.secret_hex)
    }

    /// The x-only public key (the Wisp agent and Kaspa P2PK payload).
    ///
    /// # Errors
    /// As [`DevAccount::keypair`].
    pub fn x_only_key(&self) -> Result<[u8; 32]> {
        Ok(self.keypair()?.x_only_public_key().0.serialize())
    }
}

/// Coinbase maturity of the devnet's simnet (DAA score units), so mined coins spend in seconds.
pub const DEVNET_COINBASE_MATURITY: u64 = 10;

/// Sompi each dev account deposits into the chain at first start (100 KAS).
pub const DEV_DEPOSIT_SOMPI: u64 = 100 * 100_000_000;

/// How to run a devnet.
#[derive(Clone, Debug)]
pub struct DevnetConfig {
    /// Where kaspad's and the chain's data live.
    pub data_dir: PathBuf,
    /// Delete the data directory first.
    pub fresh: bool,
    /// Interval between mined L1 blocks (`None`: mine only on demand).
    pub block_time: Option<Duration>,
    /// RPC address (loopback); port 0 picks a free port.
    pub rpc_addr: SocketAddr,
    /// Number of dev accounts.
    pub accounts: usize,
    /// Web origins whose pages may call the RPC, with CORS headers (`--cors`; see
    /// [`crate::rpc::serve_with_cors`]).
    pub cors: Vec<String>,
    /// Where progress lines for people go (the devnet's first start takes seconds).
    pub progress: fn(&str),
}

/// `devnet.json`: the keys only the devnet has (the chain's own are in `node.json`).
#[derive(Serialize, Deserialize)]
struct DevnetKeys {
    /// Mines the simnet's blocks and funds the chain's anchor.
    miner_secret: String,
    /// The dev accounts, `dev0`… (dev0 owns the chain).
    accounts: Vec<String>,
}

/// A running devnet.
pub struct Devnet {
    node: Arc<Node>,
    simnet: Option<SimnetNode>,
    rpc: Option<jsonrpsee::server::ServerHandle>,
    rpc_addr: SocketAddr,
    accounts: Vec<DevAccount>,
    ticker: Option<tokio::task::JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
    genesis: Genesis,
}

impl Devnet {
    /// Starts the devnet (see the module docs); on a new data directory it also funds the dev
    /// accounts, which takes a few seconds.
    ///
    /// # Errors
    /// If the data directory is unusable, kaspad does not come up, or funding fails.
    pub async fn start(config: DevnetConfig) -> Result<Devnet> {
        let progress = config.progress;
        if !config.rpc_addr.ip().is_loopback() {
            return Err(bad(format!(
                "the devnet serves RPC on loopback only (got {})",
                config.rpc_addr
            )));
        }
        if config.fresh && config.data_dir.exists() {
            std::fs::remove_dir_all(&config.data_dir)
                .map_err(|e| bad(format!("removing {}: {e}", config.data_dir.display())))?;
        }
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| bad(format!("creating {}: {e}", config.data_dir.display())))?;
        let new_chain = !NodeConfig::path(&config.data_dir).exists();
        if new_chain && config.data_dir.join("chain").exists() {
            return Err(bad(format!(
                "{} has a chain but no node.json (made by an older Wisp); restart with --fresh",
                config.data_dir.display()
            )));
        }
        let keys_path = config.data_dir.join("devnet.json");
        let first_start = !keys_path.exists();
        let keys: DevnetKeys = if first_start {
            let keys = DevnetKeys {
                miner_secret: to_hex(&random_secret()),
                accounts: (0..config.accounts.max(1))
                    .map(|_| to_hex(&random_secret()))
                    .collect(),
            };
            let json = serde_json::to_string_pretty(&keys).map_err(|e| bad(e.to_string()))?;
            datadir::write_private(&keys_path, json.as_bytes())
                .map_err(|e| bad(format!("writing {}: {e}", keys_path.display())))?;
            keys
        } else {
            std::fs::read_to_string(&keys_path)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .ok_or_else(|| {
                    bad(format!(
                        "{} is damaged; restart with --fresh",
                        keys_path.display()
                    ))
                })?
        };
        progress(&format!(
            "starting Kaspa simnet node in {}",
            config.data_dir.join("kaspad").display()
        ));
        let simnet = SimnetNode::start(&SimnetConfig::local(
            config.data_dir.join("kaspad"),
            DEVNET_COINBASE_MATURITY,
        ))?;
        let l1 = L1Client::connect(&simnet.rpc_url(), Duration::from_secs(30)).await?;
        let accounts: Vec<DevAccount> = keys
            .accounts
            .iter()
            .enumerate()
            .map(|(i, s)| DevAccount {
                name: format!("dev{i}"),
                secret_hex: s.clone(),
            })
            .collect();
        let miner = datadir::keypair(&keys.miner_secret)?;
        // The chain is born on L1, as `wisp chain create` makes it: its anchor comes first, and
        // the anchor's covenant id is the chain id. dev0 owns it.
        if new_chain {
            datadir::create_chain(datadir::CreateChain {
                l1: &l1,
                data_dir: &config.data_dir,
                name: "devnet".into(),
                funder: miner,
                owner: Some(AgentId::Address(accounts[0].x_only_key()?)),
                anchor_sompi: ANCHOR_GENESIS_SOMPI,
                coinbase_maturity: Some(DEVNET_COINBASE_MATURITY),
                committee_key: None,
                mine: true,
                progress: &|line| progress(line),
            })
            .await?;
        }
        let genesis = NodeConfig::load(&config.data_dir)?.genesis()?;
        let node = datadir::open(
            &config.data_dir,
            l1,
            crate::NodeMode::Devnet {
                miner: Wallet::new(miner, Prefix::Simnet),
            },
        )?;
        let head = node.chain().head()?;
        if head.index == 0 {
            fund(&node, &accounts, node.l1_params(), progress).await?;
        } else {
            progress(&format!(
                "resuming chain at block {} (state root {})",
                head.index, head.state_root
            ));
            node.produce_block().await?;
        }
        let (rpc, rpc_addr) =
            crate::rpc::serve_with_cors(node.clone(), config.rpc_addr, &config.cors)
                .await
                .map_err(|e| bad(format!("cannot serve RPC on {}: {e}", config.rpc_addr)))?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let ticker = config
            .block_time
            .map(|interval| datadir::spawn_ticker(node.clone(), interval, stopped));
        Ok(Devnet {
            node,
            simnet: Some(simnet),
            rpc: Some(rpc),
            rpc_addr,
            accounts,
            ticker,
            stop,
            genesis,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn rpc_url(&self) -> String {
        format!("http://{}", self.rpc_addr)
    }

    /// `ws://127.0.0.1:<port>` (subscriptions).
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.rpc_addr)
    }

    /// The dev accounts (devnet-only keys).
    pub fn accounts(&self) -> &[DevAccount] {
        &self.accounts
    }

    /// The chain's genesis (to open a fresh replica for replay).
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The node.
    pub fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Stops mining, the RPC server and kaspad; returns when all have stopped.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(m) = self.ticker.take() {
            let _ = m.await;
        }
        if let Some(rpc) = self.rpc.take() {
            let _ = rpc.stop();
            rpc.stopped().await;
        }
        self.node.l1().disconnect().await;
        if let Some(simnet) = self.simnet.take() {
            let _ = tokio::task::spawn_blocking(move || simnet.shutdown()).await;
        }
    }
}

/// Mines coinbases to every dev account, waits for maturity, and deposits
/// [`DEV_DEPOSIT_SOMPI`] of each into the chain.
async fn fund(
    node: &Arc<Node>,
    accounts: &[DevAccount],
    params: &kaspa_consensus_core::config::params::Params,
    progress: fn(&str),
) -> Result<()> {
    progress(&format!(
        "funding {} dev accounts on L1 (mining simnet blocks)",
        accounts.len()
    ));
    let wallets: Vec<Wallet> = accounts
        .iter()
        .map(|a| Ok(Wallet::new(a.keypair()?, Prefix::Simnet)))
        .collect::<Result<_>>()?;
    let rounds = 6 * wallets.len() as u64 + DEVNET_COINBASE_MATURITY + 5;
    for i in 0..rounds {
        node.l1()
            .mine_block(&wallets[(i as usize) % wallets.len()].address())
            .await?;
    }
    // Give the youngest coinbases time to mature.
    for _ in 0..DEVNET_COINBASE_MATURITY + 2 {
        node.l1().mine_block(&wallets[0].address()).await?;
    }
    progress(&format!(
        "depositing {} KAS per dev account into the chain",
        DEV_DEPOSIT_SOMPI / 100_000_000
    ));
    let lane = kaspa_consensus_core::subnets::SubnetworkId::from(wisp_core::LANE_ID);
    let deposit_script = kaspa_txscript::pay_to_address_script(&node.deposit_address());
    let payload = wisp_core::LanePayload {
        requests: vec![],
        beneficiary: None,
    }
    .encode();
    for wallet in &wallets {
        wallet
            .send(
                node.l1(),
                params,
                lane,
                payload.clone(),
                &[(deposit_script.clone(), DEV_DEPOSIT_SOMPI)],
            )
            .await?;
    }
    for _ in 0..100 {
        node.mine(1).await?;
        let funded = accounts
            .iter()
            .filter(|a| {
                a.x_only_key()
                    .ok()
                    .and_then(|k| node.chain().balance(&AgentId::Address(k)).ok())
                    .unwrap_or(0)
                    >= DEV_DEPOSIT_SOMPI
            })
            .count();
        if funded == accounts.len() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(bad(
        "the dev deposits were not accepted after 100 blocks; see the log",
    ))
}
