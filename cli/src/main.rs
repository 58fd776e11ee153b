//! `wisp`: run a local devnet, build and deploy contracts, call them, read receipts, blocks,
//! events, balances and proofs. Human output by default, `--json` for scripts.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wisp_api::WispApiClient;
use wisp_cli::client::{CallOptions, Client, DEFAULT_GAS_BUDGET};
#[cfg(feature = "devnet")]
use wisp_cli::devnet::{Devnet, DevnetConfig};
use wisp_cli::keystore::{wisp_home, Keystore};

/// Gas budget of a deploy when `--gas` is not given (validation, compilation and `init`).
const DEPLOY_GAS_BUDGET: u64 = 50_000_000;

#[derive(Parser)]
#[command(name = "wisp", version, about = "Wisp: smart contracts on Kaspa — local devnet, build, deploy, call, proofs", long_about = None)]
struct Cli {
    /// JSON-RPC endpoint of a Wisp node.
    #[arg(
        long,
        global = true,
        env = "WISP_RPC",
        default_value = "http://127.0.0.1:8645"
    )]
    rpc: String,
    /// Print machine-readable JSON instead of human output.
    #[arg(long, global = true)]
    json: bool,
    /// Log format of the node's logs (stderr).
    #[arg(long, global = true, value_parser = ["human", "json"], default_value = "human")]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local devnet: an in-process Kaspa simnet, funded dev accounts, one Wisp chain, RPC.
    Devnet(DevnetArgs),
    /// Compile a contract crate to an optimised .wasm module.
    Build {
        /// The contract crate's directory.
        crate_dir: PathBuf,
        /// Copy the module here (default: print where cargo left it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Deploy a contract (a .wasm file, or a crate directory that is built first).
    Deploy {
        /// A .wasm file or a contract crate directory.
        code: PathBuf,
        /// The name to deploy under (its hname addresses the contract).
        #[arg(long)]
        name: String,
        /// Arguments of `init` as JSON (array in order, or object by name).
        #[arg(long, default_value = "[]")]
        init: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Call an entry point (off-ledger by default; --on-ledger sends a Kaspa transaction).
    Call {
        /// Contract name or hname.
        contract: String,
        /// Entry point name.
        function: String,
        /// Arguments as JSON (array in order, or object by name).
        #[arg(default_value = "[]")]
        args: String,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// Call a view (read-only, free, not recorded).
    View {
        /// Contract name or hname.
        contract: String,
        /// View name.
        function: String,
        /// Arguments as JSON.
        #[arg(default_value = "[]")]
        args: String,
    },
    /// Show a request's receipt.
    Receipt {
        /// The request id (0x…).
        request_id: String,
    },
    /// Show a block (default: the latest).
    Block {
        /// Block index.
        index: Option<u64>,
    },
    /// List events.
    Events {
        /// Only this contract's events.
        #[arg(long)]
        contract: Option<String>,
        /// First block (default: the last 100 blocks).
        #[arg(long)]
        from_block: Option<u64>,
        /// Last block (default: the head).
        #[arg(long)]
        to_block: Option<u64>,
    },
    /// List deployed contracts.
    Contracts,
    /// Manage local accounts (keys in $WISP_HOME/accounts.json).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Prove a state value (or its absence) at a block; --verify checks it locally.
    Proof {
        /// What to prove: `balance <agent>`, `nonce <agent>`, or `contract <contract> <0x-key>`.
        kind: String,
        /// The agent (account name, Kaspa address, contract:<name>) or contract.
        subject: String,
        /// For `contract`: the contract-relative key, 0x-hex.
        key: Option<String>,
        /// Block index (default: the head).
        #[arg(long)]
        block: Option<u64>,
        /// Verify the proof on this machine against the block's state root.
        #[arg(long)]
        verify: bool,
    },
    /// Deposit L1 coins into the chain (peg in): a Kaspa lane transaction from the account's L1
    /// coins to the chain's deposit address; waits until the chain has credited it.
    Deposit {
        /// Sompi to deposit (1 KAS = 100000000).
        amount_sompi: u64,
        /// Account whose L1 coins pay.
        #[arg(long, default_value = "dev0")]
        from: String,
        /// Credit someone else (account name, Kaspa address or contract:<name>).
        #[arg(long)]
        to: Option<String>,
    },
    /// Withdraw base tokens to a Kaspa address (peg out): the amount plus a 1,500,000-sompi L1
    /// fee leave your on-chain balance now, and the chain's next anchor transactions pay the
    /// amount on Kaspa (see `wisp withdrawals`).
    Withdraw {
        /// The Kaspa address paid (or an account name: its own address).
        to: String,
        /// Sompi to withdraw (1 KAS = 100000000; at least 1 KAS).
        amount_sompi: u64,
        #[command(flatten)]
        tx: TxArgs,
    },
    /// List withdrawals and whether they are queued, committed by the anchor, or paid on Kaspa
    /// (with the paying transaction).
    Withdrawals {
        /// First withdrawal (sequence number).
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Most to list.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Run a chain's node against a Kaspa node you run (kaspad with --utxoindex and
    /// --rpclisten-borsh): follows Kaspa, produces blocks, advances the anchor, serves RPC on
    /// 127.0.0.1. Create the chain first with `wisp chain create`.
    Node(NodeArgs),
    /// The chain on Kaspa: `wisp chain create` makes a chain's anchor; `wisp chain status`
    /// shows the head, the anchored block, the anchor UTXO, withdrawals waiting and the L1 lag.
    Chain {
        #[command(subcommand)]
        cmd: ChainCommand,
    },
    /// Mine blocks on a simnet kaspad you run (started with --enable-unsynced-mining): the L1
    /// coins a local chain needs (simnet coins mature after 1,000 blocks) and the blocks that
    /// move it forward. Testnets and mainnet have their own miners.
    Mine {
        /// Blocks to mine (with --every and no count: until Ctrl-C).
        blocks: Option<u64>,
        /// kaspad's wRPC Borsh URL.
        #[arg(long, env = "WISP_L1", default_value = "ws://127.0.0.1:17610")]
        l1: String,
        /// Account (or Kaspa address) paid the coinbases.
        #[arg(long, default_value = "op")]
        to: String,
        /// Mine one block per interval (e.g. `1s`, `200ms`) instead of all at once.
        #[arg(long)]
        every: Option<String>,
    },
    /// Check the set-up: versions, paths, toolchain, node and Kaspa reachability.
    Doctor,
}

#[derive(Subcommand)]
enum ChainCommand {
    /// Head, anchored block, anchor UTXO, pending withdrawals and L1 lag.
    Status,
    /// Create a chain on Kaspa: its anchor (a covenant UTXO, funded from an account's L1 coins)
    /// and the node's data directory; then run it with `wisp node`.
    Create {
        /// kaspad's wRPC Borsh URL (kaspad --rpclisten-borsh).
        #[arg(long, env = "WISP_L1", default_value = "ws://127.0.0.1:17610")]
        l1: String,
        /// The node's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// The chain's name.
        #[arg(long, default_value = "wisp")]
        name: String,
        /// Account whose L1 coins fund the anchor; it becomes the chain owner.
        #[arg(long, default_value = "dev0")]
        from: String,
        /// Sompi the anchor holds at genesis.
        #[arg(long, default_value_t = 100_000_000)]
        anchor_sompi: u64,
        /// Coinbase maturity of the network, if kaspad overrides it (simnet test setups).
        #[arg(long)]
        coinbase_maturity: Option<u64>,
    },
}

#[derive(Args)]
struct NodeArgs {
    /// The node's data directory (made by `wisp chain create`).
    #[arg(long, env = "WISP_DATA_DIR")]
    data_dir: PathBuf,
    /// Settings file [default: <data-dir>/wisp.toml if it exists]: `l1`, `port`,
    /// `block_interval`. Layers: defaults, this file, WISP_L1 / WISP_PORT /
    /// WISP_BLOCK_INTERVAL, then these flags.
    #[arg(long)]
    config: Option<PathBuf>,
    /// kaspad's wRPC Borsh URL (kaspad --rpclisten-borsh) [default: ws://127.0.0.1:17610].
    #[arg(long)]
    l1: Option<String>,
    /// RPC port on 127.0.0.1 [default: 8645].
    #[arg(long)]
    port: Option<u16>,
    /// How often to produce a block and advance the anchor (e.g. 1s, 200ms) [default: 1s].
    #[arg(long)]
    block_interval: Option<String>,
}

#[derive(Args)]
struct DevnetArgs {
    /// Data directory (kaspad and chain data, dev keys).
    #[arg(long, env = "WISP_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Delete the data directory and start a new chain.
    #[arg(long)]
    fresh: bool,
    /// Mine an L1 block this often (e.g. 1s, 500ms); 0 mines only on demand (dev_mine).
    #[arg(long, default_value = "1s")]
    block_time: String,
    /// RPC port on 127.0.0.1.
    #[arg(long, default_value_t = 8645)]
    port: u16,
    /// Number of funded dev accounts.
    #[arg(long, default_value_t = 4)]
    accounts: usize,
    /// After start-up, build and deploy the example token and make a few calls.
    #[arg(long)]
    demo: bool,
    /// Stop after start-up (and the demo) instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

#[derive(Args)]
struct TxArgs {
    /// Account that signs and pays (see `wisp account list`).
    #[arg(long, default_value = "dev0")]
    from: String,
    /// Base tokens to attach, in sompi (1 KAS = 100000000).
    #[arg(long, default_value_t = 0)]
    transfer: u64,
    /// Gas budget [default: 10000000 for calls, 50000000 for deploys].
    #[arg(long)]
    gas: Option<u64>,
    /// Send in a Kaspa lane transaction paid from the account's L1 coins.
    #[arg(long)]
    on_ledger: bool,
    /// With --on-ledger: sompi to deposit into the account's on-chain balance.
    #[arg(long, default_value_t = 0)]
    deposit: u64,
    /// Only simulate against the current state and print the receipt it would get (gas used,
    /// return value, events); nothing is signed or sent.
    #[arg(long)]
    estimate: bool,
}

#[derive(Subcommand)]
enum AccountCommand {
    /// Create a new random account.
    New {
        /// Its name (default: accountN).
        name: Option<String>,
    },
    /// List accounts with their addresses.
    List,
    /// On-chain base-token balance of an account, address or contract:<name>.
    Balance {
        /// Account name, Kaspa address or contract:<name> (default dev0).
        #[arg(default_value = "dev0")]
        who: String,
    },
}

fn parse_duration(text: &str) -> Result<Option<Duration>> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "ms"),
    };
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration like 1s or 500ms"))?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        other => bail!("unknown duration unit `{other}`; use ms or s"),
    };
    Ok((!d.is_zero()).then_some(d))
}

fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).with_context(|| {
        format!("`{text}` is not JSON (quote strings: '[\"kaspasim:…\", \"100\"]')")
    })
}

fn print(json_mode: bool, value: &Value, human: impl FnOnce(&Value)) {
    if json_mode {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        human(value);
    }
}

fn print_receipt(r: &Value) {
    let ok = r["status"] == "success";
    println!(
        "{} request {}",
        if ok { "✓ success" } else { "✗ failed " },
        r["requestId"].as_str().unwrap_or("?")
    );
    println!(
        "  block {}  gas used {}  fee {} sompi",
        r["blockIndex"],
        r["gasUsed"].as_str().unwrap_or("?"),
        r["feeSompi"].as_str().unwrap_or("?")
    );
    if let Some(e) = r.get("error").filter(|e| !e.is_null()) {
        let name = e["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        println!(
            "  error: {} error {}{name}: {}",
            e["level"].as_str().unwrap_or("?"),
            e["code"],
            e["message"].as_str().unwrap_or("")
        );
    }
    if let Some(v) = r.get("returnValue").filter(|v| !v.is_null()) {
        println!("  returned: {v}");
    }
    if let Some(events) = r["events"].as_array() {
        for e in events {
            println!(
                "  event {} {}: {}",
                e["contract"].as_str().unwrap_or("?"),
                e["topic"].as_str().unwrap_or("?"),
                if e["fields"].is_null() {
                    e["data"].clone()
                } else {
                    e["fields"].clone()
                }
            );
        }
    }
}

fn keystore() -> Result<Keystore> {
    Keystore::default_store()
}

fn signer(name: &str) -> Result<secp256k1::Keypair> {
    keystore()?.get(name)?.keypair()
}

/// An account name becomes its address; anything else is passed through.
fn agent_text(who: &str) -> String {
    if let Ok(store) = keystore() {
        if let Ok(a) = store.get(who) {
            if let Ok(k) = a.x_only_key() {
                return wisp_l1::address_of(&k, wisp_l1::Prefix::Simnet).to_string();
            }
        }
    }
    who.to_string()
}

fn load_code(path: &Path) -> Result<Vec<u8>> {
    let wasm = if path.is_dir() {
        eprintln!("building {}…", path.display());
        wisp_build::build_contract(path, &wisp_build::BuildOptions::default())?
    } else {
        path.to_path_buf()
    };
    std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))
}

fn init_logs(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("WISP_LOG").unwrap_or_else(|_| {
        EnvFilter::new("info,kaspa=warn,kaspad_lib=warn,kaspa_core=warn,jsonrpsee=warn")
    });
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

#[tokio::main]
async fn main() {
    // Die quietly when the reader of stdout goes away (`wisp events | head`), as Unix tools
    // do, instead of panicking with "failed printing to stdout: Broken pipe".
    // SAFETY: restoring the default disposition of SIGPIPE before any thread writes.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let json_mode = cli.json;
    match cli.command {
        Command::Devnet(args) => {
            init_logs(&cli.log_format);
            devnet(args, json_mode).await
        }
        Command::Build { crate_dir, out } => {
            let path =
                wisp_build::build_contract(&crate_dir, &wisp_build::BuildOptions::default())?;
            let path = match out {
                Some(out) => {
                    std::fs::copy(&path, &out)
                        .with_context(|| format!("copying to {}", out.display()))?;
                    out
                }
                None => path,
            };
            let bytes = std::fs::read(&path)?;
            let validated = wisp_vm::validate(&bytes, &wisp_vm::ValidationLimits::default())
                .map_err(|e| anyhow!("the built module is not deployable: {e}"))?;
            let v = json!({
                "path": path.display().to_string(),
                "sizeBytes": bytes.len(),
                "codeHash": format!("0x{}", validated.code_hash()),
                "interface": validated.interface(),
            });
            print(json_mode, &v, |v| {
                println!(
                    "built {} ({} bytes, code hash {})",
                    v["path"].as_str().unwrap_or(""),
                    v["sizeBytes"],
                    v["codeHash"].as_str().unwrap_or("")
                );
                if let Some(functions) = v["interface"]["functions"].as_array() {
                    for f in functions {
                        println!(
                            "  {} {}",
                            f["kind"].as_str().unwrap_or(""),
                            f["name"].as_str().unwrap_or("")
                        );
                    }
                }
            });
            Ok(())
        }
        Command::Deploy {
            code,
            name,
            init,
            tx,
        } => {
            let client = Client::new(&cli.rpc)?;
            let bytes = load_code(&code)?;
            let options = CallOptions {
                transfer_sompi: tx.transfer,
                gas_budget: tx.gas.unwrap_or(DEPLOY_GAS_BUDGET),
                on_ledger: tx.on_ledger,
                deposit_sompi: tx.deposit,
            };
            let receipt = client
                .deploy(
                    &signer(&tx.from)?,
                    &name,
                    &bytes,
                    &parse_json(&init)?,
                    &options,
                )
                .await?;
            print(json_mode, &receipt, |r| {
                print_receipt(r);
                if r["status"] == "success" {
                    println!("deployed `{name}` (hname {})", wisp_core::Hname::of(&name));
                }
            });
            if receipt["status"] != "success" {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Call {
            contract,
            function,
            args,
            tx,
        } => {
            let client = Client::new(&cli.rpc)?;
            let options = CallOptions {
                transfer_sompi: tx.transfer,
                gas_budget: tx.gas.unwrap_or(DEFAULT_GAS_BUDGET),
                on_ledger: tx.on_ledger,
                deposit_sompi: tx.deposit,
            };
            let args = resolve_names(parse_json(&args)?);
            let receipt = if tx.estimate {
                client
                    .estimate(&signer(&tx.from)?, &contract, &function, &args, &options)
                    .await?
            } else {
                client
                    .call(&signer(&tx.from)?, &contract, &function, &args, &options)
                    .await?
            };
            print(json_mode, &receipt, print_receipt);
            if receipt["status"] != "success" {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::View {
            contract,
            function,
            args,
        } => {
            let client = Client::new(&cli.rpc)?;
            let v = client
                .view(&contract, &function, &resolve_names(parse_json(&args)?))
                .await?;
            print(json_mode, &v, |v| {
                println!(
                    "{}",
                    if v["value"].is_null() {
                        v["data"].clone()
                    } else {
                        v["value"].clone()
                    }
                )
            });
            Ok(())
        }
        Command::Receipt { request_id } => {
            let client = Client::new(&cli.rpc)?;
            let id = wisp_core::Hash32::from_hex(&request_id)
                .ok_or_else(|| anyhow!("`{request_id}` is not a request id (32 bytes of hex)"))?;
            let receipt = client
                .typed("wisp_getReceipt", client.api().get_receipt(id.into()))
                .await?
                .ok_or_else(|| {
                    anyhow!("no receipt for {request_id} (not executed yet, or unknown)")
                })?;
            print(json_mode, &serde_json::to_value(receipt)?, print_receipt);
            Ok(())
        }
        Command::Block { index } => {
            let client = Client::new(&cli.rpc)?;
            let block = client
                .typed(
                    "wisp_getBlock",
                    client
                        .api()
                        .get_block(index.map(|i| wisp_api::BlockId::Index(i.into()))),
                )
                .await?
                .ok_or_else(|| {
                    anyhow!(
                        "no block {}",
                        index.map(|i| i.to_string()).unwrap_or_default()
                    )
                })?;
            print(json_mode, &serde_json::to_value(block)?, |b| {
                println!(
                    "block {}  hash {}",
                    b["index"],
                    b["hash"].as_str().unwrap_or("")
                );
                println!("  state root {}", b["stateRoot"].as_str().unwrap_or(""));
                println!(
                    "  L1 block {} (DAA score {})  time {} ms",
                    b["l1Block"].as_str().unwrap_or(""),
                    b["l1DaaScore"].as_str().unwrap_or(""),
                    b["timestampMs"].as_str().unwrap_or("")
                );
                println!(
                    "  {} requests, {} gas",
                    b["requestCount"],
                    b["gasUsed"].as_str().unwrap_or("")
                );
                for r in b["receipts"].as_array().into_iter().flatten() {
                    print_receipt(r);
                }
            });
            Ok(())
        }
        Command::Events {
            contract,
            from_block,
            to_block,
        } => {
            let client = Client::new(&cli.rpc)?;
            let events = client
                .typed(
                    "wisp_getEvents",
                    client.api().get_events(from_block, to_block, contract),
                )
                .await?;
            print(json_mode, &serde_json::to_value(events)?, |v| {
                for e in v.as_array().into_iter().flatten() {
                    println!(
                        "block {} {} {}: {}",
                        e["blockIndex"],
                        e["contract"].as_str().unwrap_or(""),
                        e["topic"].as_str().unwrap_or(""),
                        if e["fields"].is_null() {
                            e["data"].clone()
                        } else {
                            e["fields"].clone()
                        }
                    );
                }
            });
            Ok(())
        }
        Command::Deposit {
            amount_sompi,
            from,
            to,
        } => {
            let client = Client::new(&cli.rpc)?;
            let beneficiary = match to {
                Some(to) => {
                    let text = agent_text(&to);
                    let agents = wisp_cli::client::LocalAgents {
                        prefix: client.prefix().await?,
                    };
                    Some(
                        wisp_core::json::AgentFormat::parse(&agents, &text).ok_or_else(|| {
                            anyhow!("`{to}` is not an account, address or contract")
                        })?,
                    )
                }
                None => None,
            };
            let receipt = client
                .deposit(&signer(&from)?, amount_sompi, beneficiary)
                .await?;
            print(json_mode, &receipt, print_receipt);
            if receipt["status"] != "success" {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Withdraw {
            to,
            amount_sompi,
            tx,
        } => {
            let client = Client::new(&cli.rpc)?;
            let options = CallOptions {
                transfer_sompi: 0,
                gas_budget: tx.gas.unwrap_or(DEFAULT_GAS_BUDGET),
                on_ledger: tx.on_ledger,
                deposit_sompi: tx.deposit,
            };
            let args = json!([agent_text(&to), amount_sompi.to_string()]);
            let receipt = client
                .call(&signer(&tx.from)?, "accounts", "withdraw", &args, &options)
                .await?;
            print(json_mode, &receipt, print_receipt);
            if receipt["status"] != "success" {
                std::process::exit(2);
            }
            if !json_mode {
                println!(
                    "queued; `wisp withdrawals` shows when an anchor transaction pays it on Kaspa"
                );
            }
            Ok(())
        }
        Command::Mine {
            blocks,
            l1,
            to,
            every,
        } => mine(&l1, &to, blocks, every.as_deref()).await,
        Command::Withdrawals { from, limit } => {
            let client = Client::new(&cli.rpc)?;
            let withdrawals = client
                .typed(
                    "wisp_getWithdrawals",
                    client.api().get_withdrawals(Some(from), Some(limit)),
                )
                .await?;
            print(json_mode, &serde_json::to_value(withdrawals)?, |v| {
                for w in v.as_array().into_iter().flatten() {
                    println!(
                        "#{}  {} sompi  to {}  {}{}",
                        w["seq"],
                        w["amountSompi"].as_str().unwrap_or(""),
                        w["to"].as_str().unwrap_or(""),
                        w["status"].as_str().unwrap_or(""),
                        w["paidBy"]
                            .as_str()
                            .map(|t| format!(" by {t}"))
                            .unwrap_or_default()
                    );
                }
            });
            Ok(())
        }
        Command::Contracts => {
            let client = Client::new(&cli.rpc)?;
            let contracts = client
                .typed("wisp_listContracts", client.api().list_contracts())
                .await?;
            print(json_mode, &serde_json::to_value(contracts)?, |v| {
                for c in v.as_array().into_iter().flatten() {
                    println!(
                        "{}  {}{}",
                        c["hname"].as_str().unwrap_or(""),
                        c["name"].as_str().unwrap_or(""),
                        if c["core"] == true { "  (core)" } else { "" }
                    );
                }
            });
            Ok(())
        }
        Command::Account(cmd) => account(cmd, &cli.rpc, json_mode).await,
        Command::Proof {
            kind,
            subject,
            key,
            block,
            verify,
        } => {
            let client = Client::new(&cli.rpc)?;
            let subject_value = match kind.as_str() {
                "balance" | "nonce" => json!(agent_text(&subject)),
                "contract" => json!([
                    subject,
                    key.clone()
                        .ok_or_else(|| anyhow!("`proof contract` needs a 0x-hex key"))?
                ]),
                other => bail!("unknown proof kind `{other}`: use balance, nonce or contract"),
            };
            let key = client
                .typed(
                    "wisp_stateKey",
                    client.api().state_key(kind.clone(), subject_value),
                )
                .await?
                .key;
            // Verified proofs default to the block anchored on Kaspa, which the check trusts;
            // a block not anchored yet can only be checked against the node's header.
            let anchored_now = if verify {
                client
                    .chain_info()
                    .await?
                    .anchor
                    .anchored_block
                    .filter(|b| *b > 0)
            } else {
                None
            };
            let block = match (verify, block) {
                (true, None) => anchored_now,
                (_, b) => b,
            };
            let mut anchored = None;
            let proof = if verify {
                let (proof, header) = client.verified_proof(&key.0, block).await?;
                if anchored_now.is_some_and(|a| header.index <= a) {
                    anchored = Some(client.anchored_on_kaspa(&header).await?);
                }
                proof
            } else {
                client
                    .typed("wisp_getProof", client.api().get_proof(key, block))
                    .await?
            };
            let mut out = serde_json::to_value(proof)?;
            out["verified"] = json!(verify);
            out["anchoredBlock"] = json!(anchored);
            print(json_mode, &out, |p| {
                println!(
                    "key {} at block {}",
                    p["key"].as_str().unwrap_or(""),
                    p["blockIndex"]
                );
                println!(
                    "  value {}",
                    if p["value"].is_null() {
                        "absent".to_string()
                    } else {
                        p["value"].as_str().unwrap_or("").to_string()
                    }
                );
                println!("  state root {}", p["stateRoot"].as_str().unwrap_or(""));
                println!(
                    "  proof {} bytes",
                    p["proof"]
                        .as_str()
                        .map(|s| s.len().saturating_sub(2) / 2)
                        .unwrap_or(0)
                );
                match anchored {
                    Some(anchored) => println!("✓ verified: the proof leads to the block's state root, and the block is anchored on Kaspa (kaspad holds this chain's anchor committing block {anchored})"),
                    None if verify => println!("✓ verified locally against the node's header only: the block is not anchored on Kaspa yet"),
                    None => {}
                }
            });
            Ok(())
        }
        Command::Node(args) => {
            init_logs(&cli.log_format);
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
            })
            .await
        }
        Command::Chain {
            cmd:
                ChainCommand::Create {
                    l1,
                    data_dir,
                    name,
                    from,
                    anchor_sompi,
                    coinbase_maturity,
                },
        } => {
            let chain_id = wisp_cli::operator::create_chain(wisp_cli::operator::CreateChain {
                l1_url: l1,
                data_dir: data_dir.clone(),
                name,
                funder: signer(&from)?,
                anchor_sompi,
                coinbase_maturity,
            })
            .await?;
            let v = json!({ "chainId": format!("0x{chain_id}"), "dataDir": data_dir.display().to_string() });
            print(json_mode, &v, |v| {
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
        Command::Chain {
            cmd: ChainCommand::Status,
        } => {
            let client = Client::new(&cli.rpc)?;
            let info = client.chain_info().await?;
            let withdrawals = client
                .typed(
                    "wisp_getWithdrawals",
                    client.api().get_withdrawals(Some(0), Some(1_000)),
                )
                .await?;
            let pending = withdrawals.iter().filter(|w| w.status != "paid").count();
            // How far the chain's L1 reference is behind Kaspa's virtual DAA score.
            let lag =
                match wisp_l1::L1Client::connect(&info.l1_rpc_url, Duration::from_secs(5)).await {
                    Ok(l1) => {
                        let daa = l1.virtual_daa_score().await.ok();
                        l1.disconnect().await;
                        daa.map(|virt| virt.saturating_sub(info.head.l1_daa_score.0))
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
            print(json_mode, &status, |s| {
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
        Command::Doctor => doctor(&cli.rpc, json_mode).await,
    }
}

/// Replaces account names (`dev1`) in argument strings by their addresses.
fn resolve_names(v: Value) -> Value {
    match v {
        Value::String(s) => {
            let resolved = agent_text(&s);
            Value::String(resolved)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(resolve_names).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, resolve_names(v)))
                .collect(),
        ),
        other => other,
    }
}

async fn account(cmd: AccountCommand, rpc: &str, json_mode: bool) -> Result<()> {
    let mut store = keystore()?;
    match cmd {
        AccountCommand::New { name } => {
            let name = name.unwrap_or_else(|| format!("account{}", store.accounts.len()));
            let key = store.create(&name)?.x_only_key()?;
            store.save()?;
            let address = wisp_l1::address_of(&key, wisp_l1::Prefix::Simnet).to_string();
            print(
                json_mode,
                &json!({ "name": name, "address": address, "keystore": store.path().display().to_string() }),
                |v| {
                    println!(
                        "created `{}`: {}",
                        v["name"].as_str().unwrap_or(""),
                        v["address"].as_str().unwrap_or("")
                    );
                    println!("  key stored in {}", v["keystore"].as_str().unwrap_or(""));
                },
            );
        }
        AccountCommand::List => {
            let list: Vec<Value> = store
                .accounts
                .iter()
                .map(|a| json!({ "name": a.name, "address": a.x_only_key().map(|k| wisp_l1::address_of(&k, wisp_l1::Prefix::Simnet).to_string()).unwrap_or_default(), "devnetOnly": a.devnet_only }))
                .collect();
            print(json_mode, &Value::Array(list), |v| {
                for a in v.as_array().into_iter().flatten() {
                    println!(
                        "{:10} {}{}",
                        a["name"].as_str().unwrap_or(""),
                        a["address"].as_str().unwrap_or(""),
                        if a["devnetOnly"] == true {
                            "  (devnet only)"
                        } else {
                            ""
                        }
                    );
                }
            });
        }
        AccountCommand::Balance { who } => {
            let client = Client::new(rpc)?;
            let agent = agent_text(&who);
            let sompi = client
                .typed("wisp_getBalance", client.api().get_balance(agent.clone()))
                .await?
                .0;
            print(
                json_mode,
                &json!({ "agent": agent, "balanceSompi": sompi.to_string() }),
                |_| {
                    println!(
                        "{agent}: {sompi} sompi ({}.{:08} KAS) on chain",
                        sompi / 100_000_000,
                        sompi % 100_000_000
                    );
                },
            );
        }
    }
    Ok(())
}

/// `wisp mine`: mines `blocks` simnet blocks (all at once, or one per `every`) paying `to`.
async fn mine(url: &str, to: &str, blocks: Option<u64>, every: Option<&str>) -> Result<()> {
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

async fn doctor(rpc: &str, json_mode: bool) -> Result<()> {
    let wasm_target = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-unknown-unknown")
        })
        .unwrap_or(false);
    let cargo = std::process::Command::new("cargo")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let client = Client::new(rpc)?;
    let node = client.chain_info().await;
    let l1 = match &node {
        Ok(info) => Some(
            wisp_l1::L1Client::connect(&info.l1_rpc_url, Duration::from_secs(3))
                .await
                .map(|_| info.l1_rpc_url.clone())
                .map_err(|e| e.to_string()),
        ),
        Err(_) => None,
    };
    let report = json!({
        "wispVersion": env!("CARGO_PKG_VERSION"),
        "kaspaCrates": "2.1.0",
        "wasmi": "2.0.0",
        "wispHome": wisp_home().display().to_string(),
        "keystore": wisp_home().join("accounts.json").display().to_string(),
        "defaultDevnetDataDir": wisp_home().join("devnet").display().to_string(),
        "cargo": cargo,
        "wasm32Target": wasm_target,
        "rpc": rpc,
        "node": node.as_ref().map(|i| json!({"chainId": i.chain_id, "head": i.head.index, "devnet": i.devnet})).map_err(|e| e.to_string()).unwrap_or_else(|e| json!({"error": e})),
        "kaspa": l1.clone().map(|r| r.map(|u| json!({"url": u, "reachable": true})).unwrap_or_else(|e| json!({"reachable": false, "error": e}))),
    });
    print(json_mode, &report, |r| {
        println!(
            "wisp {} (kaspa crates {}, wasmi {})",
            r["wispVersion"].as_str().unwrap_or(""),
            r["kaspaCrates"].as_str().unwrap_or(""),
            r["wasmi"].as_str().unwrap_or("")
        );
        println!("  home      {}", r["wispHome"].as_str().unwrap_or(""));
        println!("  keystore  {}", r["keystore"].as_str().unwrap_or(""));
        println!(
            "  cargo     {}",
            r["cargo"]
                .as_str()
                .unwrap_or("not found (needed by `wisp build`)")
        );
        println!(
            "  wasm32    {}",
            if r["wasm32Target"] == true {
                "installed"
            } else {
                "missing: rustup target add wasm32-unknown-unknown"
            }
        );
        match r["node"].get("error") {
            Some(e) => println!(
                "  node      {} unreachable: {}",
                r["rpc"].as_str().unwrap_or(""),
                e.as_str().unwrap_or("")
            ),
            None => println!(
                "  node      {} chain {} at block {}",
                r["rpc"].as_str().unwrap_or(""),
                r["node"]["chainId"].as_str().unwrap_or(""),
                r["node"]["head"]
            ),
        }
        if !r["kaspa"].is_null() {
            println!(
                "  kaspa     {}",
                if r["kaspa"]["reachable"] == true {
                    format!("{} reachable", r["kaspa"]["url"].as_str().unwrap_or(""))
                } else {
                    format!(
                        "unreachable: {}",
                        r["kaspa"]["error"].as_str().unwrap_or("")
                    )
                }
            );
        }
    });
    if let Err(e) = &node {
        bail!("the node at {rpc} is unreachable: {e}");
    }
    if let Some(Err(e)) = &l1 {
        bail!("the node's Kaspa node is unreachable: {e}");
    }
    Ok(())
}

/// `wisp devnet` in a build without the in-process simnet (`--no-default-features`).
#[cfg(not(feature = "devnet"))]
async fn devnet(_args: DevnetArgs, _json_mode: bool) -> Result<()> {
    bail!("this wisp was built without the devnet (cargo feature `devnet`, which brings kaspad and RocksDB); run `wisp node` against a kaspad, or build with default features")
}

#[cfg(feature = "devnet")]
async fn devnet(args: DevnetArgs, json_mode: bool) -> Result<()> {
    let data_dir = args.data_dir.unwrap_or_else(|| wisp_home().join("devnet"));
    let rpc_addr: SocketAddr = format!("127.0.0.1:{}", args.port).parse()?;
    eprintln!("wisp devnet: starting (data in {})", data_dir.display());
    let devnet = Devnet::start(DevnetConfig {
        data_dir: data_dir.clone(),
        fresh: args.fresh,
        block_time: parse_duration(&args.block_time)?,
        rpc_addr,
        accounts: args.accounts,
        keystore: Some(wisp_home().join("accounts.json")),
    })
    .await?;
    let client = Client::new(&devnet.rpc_url())?;
    let info = client.chain_info().await?;
    let accounts: Vec<Value> = devnet
        .accounts()
        .iter()
        .map(|a| {
            let key = a.x_only_key().unwrap_or_default();
            json!({ "name": a.name, "address": wisp_l1::address_of(&key, wisp_l1::Prefix::Simnet).to_string(), "secretKey": a.secret_hex })
        })
        .collect();
    let summary = json!({ "rpc": devnet.rpc_url(), "ws": devnet.ws_url(), "chain": info, "accounts": accounts, "dataDir": data_dir.display().to_string() });
    print(json_mode, &summary, |s| {
        println!();
        println!("Wisp devnet is running");
        println!(
            "  RPC        {} (WebSocket {})",
            s["rpc"].as_str().unwrap_or(""),
            s["ws"].as_str().unwrap_or("")
        );
        println!(
            "  chain id   {}",
            s["chain"]["chainId"].as_str().unwrap_or("")
        );
        println!("  head       block {}", s["chain"]["head"]["index"]);
        println!(
            "  deposits   {}",
            s["chain"]["depositAddress"].as_str().unwrap_or("")
        );
        println!(
            "  Kaspa      simnet wRPC at {}",
            s["chain"]["l1RpcUrl"].as_str().unwrap_or("")
        );
        println!();
        println!(
            "Dev accounts — DEVNET ONLY, these keys are public; never send real funds to them:"
        );
        for a in s["accounts"].as_array().into_iter().flatten() {
            println!(
                "  {:5} {}",
                a["name"].as_str().unwrap_or(""),
                a["address"].as_str().unwrap_or("")
            );
            println!(
                "        secret key {}",
                a["secretKey"].as_str().unwrap_or("")
            );
        }
        println!(
            "  (imported into {} as dev0…)",
            wisp_home().join("accounts.json").display()
        );
    });
    if args.demo {
        demo(&client).await?;
    }
    if !json_mode && !args.exit {
        println!();
        println!("Next steps (in another terminal; `wisp` is target/debug/wisp, or `cargo install --path cli`):");
        println!("  wisp deploy contracts/token --name token --init '[\"My Token\", \"MTK\", 18, \"1000000\"]'");
        println!("  wisp call token transfer '[\"dev1\", \"100\"]'");
        println!("  wisp view token balance_of '[\"dev1\"]'");
        println!("  wisp proof balance dev0 --verify");
        println!(
            "Press Ctrl-C to stop; `wisp devnet` again continues this chain (--fresh starts over)."
        );
    }
    if !args.exit {
        tokio::signal::ctrl_c().await?;
        eprintln!("stopping…");
    }
    devnet.stop().await;
    Ok(())
}

#[cfg(feature = "devnet")]
async fn demo(client: &Client) -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/token");
    println!();
    println!("Demo: build, deploy and use the example token");
    let code = load_code(&dir)?;
    let dev0 = signer("dev0")?;
    let dev1 = agent_text("dev1");
    let options = CallOptions {
        gas_budget: 50_000_000,
        ..Default::default()
    };
    let r = client
        .deploy(
            &dev0,
            "demo_token",
            &code,
            &json!(["Demo Token", "DMO", 18, "1000000"]),
            &options,
        )
        .await?;
    println!("$ wisp deploy contracts/token --name demo_token --init '[\"Demo Token\", \"DMO\", 18, \"1000000\"]'");
    print_receipt(&r);
    println!("$ wisp call demo_token transfer '[\"dev1\", \"250\"]'");
    let r = client
        .call(
            &dev0,
            "demo_token",
            "transfer",
            &json!([dev1, "250"]),
            &CallOptions::default(),
        )
        .await?;
    print_receipt(&r);
    println!("$ wisp view demo_token balance_of '[\"dev1\"]'");
    let v = client
        .view("demo_token", "balance_of", &json!([dev1]))
        .await?;
    println!("{}", v["value"]);
    Ok(())
}
