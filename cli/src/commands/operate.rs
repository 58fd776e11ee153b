//! `wisp chain create`, `chain status`, `node`, `mine`: running a chain on your own kaspad.

use super::*;
use crate::NodeArgs;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use wisp_api::WispApiClient;
use wisp_cli::client::Client;

/// `wisp node`: resolves the layered settings and runs the chain's node.
pub(crate) async fn node(args: NodeArgs, _ctx: &Ctx) -> Result<()> {
    let settings = wisp_cli::operator::node_settings(
        &args.data_dir,
        args.config.as_deref(),
        wisp_cli::operator::NodeFlags {
            l1: args.l1,
            port: args.port,
            block_interval: args.block_interval,
        },
    )?;
    let interval = parse_duration(&settings.block_interval)?
        .ok_or_else(|| anyhow!("block_interval must be more than 0"))?;
    wisp_cli::operator::run_node(wisp_cli::operator::RunNode {
        data_dir: args.data_dir,
        l1_url: settings.l1,
        rpc_addr: SocketAddr::from(([127, 0, 0, 1], settings.port)),
        block_interval: interval,
        exec_threads: args.exec_threads,
        state_retention: args.state_retention,
        no_index: args.no_index,
        state_cache_mib: args.state_cache_mib as usize,
        state_node_cache_mib: args.state_node_cache_mib as usize,
        cors: args.cors,
        follow: args.follow,
        snapshot: args.snapshot,
    })
    .await
}

/// `wisp chain create`'s flags.
pub(crate) struct ChainCreate {
    pub(crate) l1: String,
    pub(crate) data_dir: PathBuf,
    pub(crate) name: String,
    /// The keystore account funding the anchor.
    pub(crate) from: String,
    pub(crate) anchor_sompi: u64,
    pub(crate) coinbase_maturity: Option<u64>,
    pub(crate) committee_key: Option<String>,
}

/// `wisp chain create`: creates a chain on Kaspa in a new data directory.
pub(crate) async fn chain_create(c: ChainCreate, ctx: &Ctx) -> Result<()> {
    let data_dir = c.data_dir.clone();
    let chain_id = wisp_cli::operator::create_chain(wisp_cli::operator::CreateChain {
        l1_url: c.l1,
        data_dir: c.data_dir,
        name: c.name,
        funder: signer(&c.from)?,
        anchor_sompi: c.anchor_sompi,
        coinbase_maturity: c.coinbase_maturity,
        committee_key: c.committee_key,
    })
    .await?;
    let v =
        json!({ "chainId": format!("0x{chain_id}"), "dataDir": data_dir.display().to_string() });
    print(ctx.json, &v, |v| {
        println!(
            "chain {} created on Kaspa",
            v["chainId"].as_str().unwrap_or("")
        );
        println!(
            "run it: wisp node --data-dir {}",
            v["dataDir"].as_str().unwrap_or("")
        );
    });
    Ok(())
}

/// `wisp chain status`: head, anchored block, anchor UTXO, pending withdrawals, L1 lag.
pub(crate) async fn chain_status(ctx: &Ctx) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let info = client.chain_info().await?;
    let withdrawals = client
        .typed(
            "wisp_getWithdrawals",
            client.api().get_withdrawals(Some(0), Some(1_000)),
        )
        .await?;
    let pending = withdrawals.iter().filter(|w| w.status != "paid").count();
    // How far the chain's L1 reference is behind Kaspa's virtual DAA score.
    let lag = match wisp_l1::L1Client::connect(&info.l1_rpc_url, Duration::from_secs(5)).await {
        Ok(l1) => {
            let daa = l1.virtual_daa_score().await.ok();
            l1.disconnect().await;
            daa.map(|virt| virt.saturating_sub(info.l1_followed_daa_score.0))
        }
        Err(_) => None,
    };
    let a = &info.anchor;
    let status = json!({
        "chainId": info.chain_id,
        "headBlock": info.head.index,
        "anchoredBlock": a.anchored_block,
        "anchorOutpoint": a.outpoint,
        "anchorValueSompi": a.value_sompi,
        "anchorInFlight": a.in_flight,
        "pendingWithdrawals": pending,
        "l1LagDaa": lag,
        "depositAddress": info.deposit_address,
    });
    print(ctx.json, &status, |s| {
        println!("chain {}", s["chainId"].as_str().unwrap_or(""));
        println!("  head block      {}", s["headBlock"]);
        println!(
            "  anchored block  {}  (anchor {} holding {} sompi{})",
            s["anchoredBlock"],
            s["anchorOutpoint"].as_str().unwrap_or("?"),
            s["anchorValueSompi"].as_str().unwrap_or("?"),
            s["anchorInFlight"]
                .as_str()
                .map(|t| format!("; successor {t} in flight"))
                .unwrap_or_default()
        );
        println!("  withdrawals     {} not yet paid", s["pendingWithdrawals"]);
        match s["l1LagDaa"].as_u64() {
            Some(lag) => println!("  L1 lag          {lag} DAA score units behind Kaspa"),
            None => println!("  L1 lag          unknown (Kaspa unreachable)"),
        }
        println!(
            "  deposit address {}",
            s["depositAddress"].as_str().unwrap_or("")
        );
    });
    Ok(())
}

/// `wisp mine`: mines `blocks` simnet blocks (all at once, or one per `every`) paying `to`.
pub(crate) async fn mine(
    url: &str,
    to: &str,
    blocks: Option<u64>,
    every: Option<&str>,
) -> Result<()> {
    let every = every.map(parse_duration).transpose()?.flatten();
    let blocks = match (blocks, every) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => bail!("say how many blocks to mine, or --every INTERVAL to keep mining"),
    };
    let l1 = wisp_l1::L1Client::connect(url, Duration::from_secs(10)).await?;
    let network = l1.network_id();
    if !matches!(
        network.network_type,
        kaspa_consensus_core::network::NetworkType::Simnet
            | kaspa_consensus_core::network::NetworkType::Devnet
    ) {
        bail!("kaspad at {url} runs {network}; `wisp mine` mines only on simnet and devnet");
    }
    let text = agent_text(to);
    let address = match kaspa_addresses::Address::try_from(text.as_str()) {
        // Account names resolve to simnet addresses: the same key on this network.
        Ok(a) => kaspa_addresses::Address::new(l1.prefix(), a.version, &a.payload),
        Err(_) => {
            let key = wisp_core::AgentId::from_raw_string(&text)
                .and_then(|a| match a {
                    wisp_core::AgentId::Address(k) => Some(k),
                    wisp_core::AgentId::Contract(_) => None,
                })
                .ok_or_else(|| anyhow!("`{to}` is not an account or a Kaspa address"))?;
            wisp_l1::address_of(&key, l1.prefix())
        }
    };
    let mut mined = 0u64;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    while mined < blocks {
        // Ctrl-C stops between blocks (the handler replaces the default exit).
        tokio::select! {
            _ = &mut stop => break,
            mined_block = l1.mine_block(&address) => {
                mined_block.with_context(|| {
                    format!("mining on {url} (was kaspad started with --enable-unsynced-mining?)")
                })?;
            }
        }
        mined += 1;
        if mined.is_multiple_of(100) || mined == blocks || every.is_some() {
            eprint!("\r  mined {mined} blocks to {address}");
        }
        if let Some(interval) = every {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
    eprintln!();
    l1.disconnect().await;
    Ok(())
}
