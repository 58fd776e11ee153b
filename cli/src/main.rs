//! `wisp`: run a local devnet, build and deploy contracts, call them, read receipts, blocks,
//! events, balances and proofs. Human output by default, `--json` for scripts.

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

mod commands;

/// mimalloc instead of the system allocator ([`wisp_node::allocator`] says why).
#[global_allocator]
static ALLOCATOR: wisp_node::allocator::Allocator = wisp_node::allocator::ALLOCATOR;

use commands::Ctx;

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
    /// Start a contract crate (anywhere on disk) with a test on the in-process harness.
    New {
        /// Crate and contract name: lowercase letters, digits, `_` and `-`.
        name: String,
        /// Where to create it [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The Wisp SDK directory (`<wisp checkout>/sdk`) [default: the one this wisp was
        /// built from].
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Compile a contract crate to an optimised .wasm module.
    Build {
        /// The contract crate's directory.
        crate_dir: PathBuf,
        /// Copy the module here (default: print where cargo left it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Bytes of the contract's shadow stack: a multiple of 16 from 4096 to 1048576. The
        /// default, 32768, keeps a small contract's memory to one 64 KiB page, which every
        /// call pays for; a contract whose calls go deeper traps with an out-of-bounds memory
        /// access and needs more (`wisp deploy` and `wisp upgrade` of a crate directory build
        /// with the default: build with this flag and deploy the .wasm instead).
        #[arg(long, value_name = "BYTES")]
        stack_size: Option<u32>,
    },
    /// Generate client code for a contract from its interface.
    #[command(subcommand)]
    Bindings(BindingsCommand),
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
    /// Replace a contract's code (its admin only: the deployer, until `root.set_admin` hands
    /// the right over or renounces it). The new code's `#[migrate]` entry point runs with
    /// --migrate in the same request, so a failed migration leaves the old code in place.
    Upgrade {
        /// Contract name or hname.
        contract: String,
        /// The new code: a .wasm file or a contract crate directory.
        code: PathBuf,
        /// Arguments of the new code's `migrate` as JSON (array in order, or object by name).
        #[arg(long, default_value = "[]")]
        migrate: String,
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
    /// List events (with --contract from the node's event index, over any range).
    Events {
        /// Only this contract's events.
        #[arg(long)]
        contract: Option<String>,
        /// Only events with this topic (the event's type name); needs --contract.
        #[arg(long, requires = "contract")]
        topic: Option<String>,
        /// Only events whose `#[indexed]` field FIELD has VALUE (an account name, an address,
        /// or JSON as in call arguments), from the node's index; needs --topic.
        #[arg(long = "where", value_name = "FIELD=VALUE", requires = "topic")]
        indexed: Option<String>,
        /// First block (default: the last 100 blocks).
        #[arg(long)]
        from_block: Option<u64>,
        /// Last block (default: the head).
        #[arg(long)]
        to_block: Option<u64>,
    },
    /// Processed requests of one sender or to one contract, newest first, with their calls
    /// decoded.
    Requests {
        /// Sent by this account name, Kaspa address or contract:<name>.
        #[arg(
            long,
            conflicts_with = "contract",
            required_unless_present = "contract"
        )]
        sender: Option<String>,
        /// Calling this contract.
        #[arg(long)]
        contract: Option<String>,
        /// Only requests before this one (its id): the next page.
        #[arg(long)]
        before: Option<String>,
        /// At most this many (up to 100).
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// List deployed contracts.
    Contracts,
    /// Manage local accounts (keys in $WISP_HOME/accounts.json).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Prove a state value (or its absence) at a block, or an event in its block; --verify
    /// checks it locally.
    Proof {
        /// What to prove: `balance <agent>`, `nonce <agent>`, `contract <contract> <0x-key>`, or
        /// `event <request-id> <index>` (the request's index-th event, from 0).
        kind: String,
        /// The agent (account name, Kaspa address, contract:<name>), contract, or request id.
        subject: String,
        /// For `contract`: the contract-relative key, 0x-hex; for `event`: the event's index.
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
    /// Run a chain on a committee of nodes: each operator, on its own node, makes a member key
    /// (`init`), writes the committee from every member's card (`join`), generates the
    /// committee's keys with the others (`dkg`: no one ever holds a whole key), copies the
    /// chain's node.json in, and runs `wisp node`.
    Committee {
        #[command(subcommand)]
        cmd: CommitteeCommand,
    },
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
        /// Run the chain on a committee: its anchor key (64 hex digits, as `wisp committee
        /// dkg` prints it). The anchor then accepts only the committee's threshold signature.
        #[arg(long)]
        committee_key: Option<String>,
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
    /// Threads that execute a block: requests with access lists that do not conflict run at
    /// once, with the same results as one at a time. 0: one per core. The default, 1, runs
    /// requests one at a time: on a 2-core machine parallel execution does not pay yet
    /// (docs/benchmarks.md).
    #[arg(long, default_value_t = 1)]
    exec_threads: usize,
    /// Keep the state of only the last BLOCKS blocks provable and delete what older blocks
    /// replaced, so the database grows with the live state instead of every update. Older
    /// blocks' headers and receipts stay; proofs and rollbacks before the window fail with a
    /// clear error. Without it the node keeps every block's state (an archive node).
    #[arg(long, value_name = "BLOCKS")]
    state_retention: Option<u64>,
    /// Keep no event or request index for the blocks committed from now on: each block
    /// commits about a third faster on disk (docs/benchmarks.md), and `wisp_getEvents` with a
    /// contract, `wisp_getRequests` and `wisp_getRequest` answer with an error for those
    /// blocks. For nodes that serve no wallet or explorer (committee members, anchoring
    /// nodes). State, receipts and proofs are unchanged. Recorded in the data directory and
    /// permanent: to index again, start on a new data directory.
    #[arg(long)]
    no_index: bool,
    /// Memory for the state database's page cache, MiB. More keeps more of a large state's
    /// tree in memory; the node's memory grows to about this much under load.
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(16..=1_048_576))]
    state_cache_mib: u64,
    /// Memory for the latest state tree's nodes, MiB: hashing a block reads the nodes its
    /// changes pass through from here rather than from the database. The tree of a million
    /// keys takes about 234 MiB; a larger state keeps part of its tree here. 0 keeps none.
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    state_node_cache_mib: u64,
    /// Let web pages of this origin call the RPC from a browser (scheme://host[:port], e.g.
    /// http://localhost:5173; repeat for more): CORS headers and preflights for it. Without it
    /// only local pages and non-browser clients are answered.
    #[arg(long, value_name = "ORIGIN")]
    cors: Vec<String>,
    /// Run as an access node of a committee chain: follow the committee's final blocks from
    /// this member's (or access node's) RPC URL, check their finalization certificates against
    /// the committee key, execute them and serve RPC, without voting. The data directory needs
    /// the chain's node.json and the committee's committee.json, copied from a member after its
    /// key generation. Requests sent here are passed on to that URL.
    #[arg(long, value_name = "URL")]
    follow: Option<String>,
    /// With --follow, on a node that has no chain database yet: start from the newest state
    /// the committee certified, fetched from the --follow URL and checked against the
    /// certificate and the state root page by page, instead of executing every block since the
    /// committee's first. Older blocks and receipts are then not on this node. Ignored once
    /// the node has a chain database.
    #[arg(long, requires = "follow")]
    snapshot: bool,
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
    /// Let web pages of this origin call the RPC from a browser (scheme://host[:port], e.g.
    /// http://localhost:5173; repeat for more): CORS headers and preflights for it. Without it
    /// only local pages and non-browser clients are answered.
    #[arg(long, value_name = "ORIGIN")]
    cors: Vec<String>,
    /// After start-up, build and deploy the example token and make a few calls.
    #[arg(long)]
    demo: bool,
    /// Stop after start-up (and the demo) instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

#[derive(Subcommand)]
enum CommitteeCommand {
    /// Make this node's member key (kept if it exists) and print its card, KEY@HOST:PORT, to
    /// give the other operators.
    Init {
        /// The member's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Where this member listens for the other members (its p2p address, as they reach it).
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// Write the committee this node belongs to from every member's card, its own included.
    Join {
        /// The member's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// A member's card, KEY@HOST:PORT (`wisp committee init` prints it); once per member.
        #[arg(long = "member", required = true)]
        members: Vec<String>,
    },
    /// Generate the committee's certificate key (BLS12-381 threshold) and anchor key (FROST)
    /// with the other members over the committee's p2p network. Every member runs it at the
    /// same time; it waits for all of them.
    Dkg {
        /// The member's data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// How long to wait for every member.
        #[arg(long, default_value = "120s")]
        timeout: String,
    },
    /// Show this member's card, the committee, whether its keys exist, and what to do next.
    Status {
        /// The member's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum BindingsCommand {
    /// TypeScript types of a contract's views, entry points, events and errors for
    /// @wisp/client's `getContract` (e.g. `wisp bindings ts contracts/token --out token.ts`,
    /// then `tokenContract({ publicClient, walletClient }).read.balance_of([owner])`).
    Ts {
        /// A .wasm file or a contract crate directory (built first); or use --contract.
        source: Option<PathBuf>,
        /// Read the interface of this deployed contract from the node (--rpc) instead.
        #[arg(long, conflicts_with = "source")]
        contract: Option<String>,
        /// The name the contract is deployed under [default: --contract, or the module's name].
        #[arg(long)]
        name: Option<String>,
        /// Write here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where the generated code imports the client from.
        #[arg(long, default_value = "@wisp/client")]
        import: String,
    },
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
    /// return value, events) and the access list it needs; nothing is signed or sent.
    #[arg(long)]
    estimate: bool,
    /// Send without an access list. By default an off-ledger call is simulated first and
    /// declares the storage it reads and writes, so the chain can run it in parallel with
    /// other requests; without one it runs alone.
    #[arg(long)]
    no_access_list: bool,
    /// Time lock: the request may not run before this moment (daa:<score>, daa:+<scores>,
    /// time:<unix ms>, time:+<duration> such as 30s or 5m). With --on-ledger the chain holds
    /// it until then and runs it once; off-ledger it is refused if sent early.
    #[arg(long, value_name = "WHEN")]
    not_before: Option<wisp_cli::client::When>,
    /// Time lock: the request may no longer run from this moment (same forms, same clock as
    /// --not-before); it then gets an `expired` receipt.
    #[arg(long, value_name = "WHEN")]
    expires_at: Option<wisp_cli::client::When>,
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

fn main() {
    // Before the runtime's threads start: mimalloc's options are not thread safe.
    wisp_node::allocator::configure();
    run_main();
}

#[tokio::main]
async fn run_main() {
    let cli = Cli::parse();
    // Die quietly when the reader of stdout goes away (`wisp events | head`), as Unix tools
    // do, instead of panicking with "failed printing to stdout: Broken pipe". Not in the
    // commands that run a node or its peer-to-peer network: there a write to a connection the
    // other side has reset (a vectored write, which carries no MSG_NOSIGNAL) would kill the
    // process without a word; ignored, it is an error the network handles. (The likely cause
    // of key generation processes that exited without a message.)
    #[cfg(unix)]
    if !cli.command.runs_a_network() {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread writes.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

impl Command {
    /// Whether the command runs a node, a devnet or a committee's network (long-lived sockets
    /// to peers and clients), rather than printing what it asked a node.
    fn runs_a_network(&self) -> bool {
        matches!(
            self,
            Command::Node(_)
                | Command::Devnet(_)
                | Command::Committee { .. }
                | Command::Chain { .. }
                | Command::Mine { .. }
        )
    }
}

/// Dispatches a parsed command line to its command.
async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        rpc: cli.rpc.clone(),
        json: cli.json,
    };
    match cli.command {
        Command::Devnet(args) => {
            init_logs(&cli.log_format);
            commands::devnet::run(args, &ctx).await
        }
        Command::New { name, dir, sdk } => commands::new::run(name, dir, sdk),
        Command::Build {
            crate_dir,
            out,
            stack_size,
        } => commands::contract::build(crate_dir, out, stack_size, &ctx).await,
        Command::Bindings(BindingsCommand::Ts {
            source,
            contract,
            name,
            out,
            import,
        }) => commands::contract::bindings_ts(source, contract, name, out, import, &ctx).await,
        Command::Deploy {
            code,
            name,
            init,
            tx,
        } => commands::contract::deploy(code, name, init, tx, &ctx).await,
        Command::Upgrade {
            contract,
            code,
            migrate,
            tx,
        } => commands::contract::upgrade(contract, code, migrate, tx, &ctx).await,
        Command::Call {
            contract,
            function,
            args,
            tx,
        } => commands::contract::call(contract, function, args, tx, &ctx).await,
        Command::View {
            contract,
            function,
            args,
        } => commands::contract::view(contract, function, args, &ctx).await,
        Command::Receipt { request_id } => commands::inspect::receipt(request_id, &ctx).await,
        Command::Block { index } => commands::inspect::block(index, &ctx).await,
        Command::Events {
            contract,
            topic,
            indexed,
            from_block,
            to_block,
        } => {
            commands::inspect::events(contract, topic, indexed, (from_block, to_block), &ctx).await
        }
        Command::Deposit {
            amount_sompi,
            from,
            to,
        } => commands::peg::deposit(amount_sompi, from, to, &ctx).await,
        Command::Withdraw {
            to,
            amount_sompi,
            tx,
        } => commands::peg::withdraw(to, amount_sompi, tx, &ctx).await,
        Command::Mine {
            blocks,
            l1,
            to,
            every,
        } => commands::operate::mine(&l1, &to, blocks, every.as_deref()).await,
        Command::Withdrawals { from, limit } => commands::peg::withdrawals(from, limit, &ctx).await,
        Command::Contracts => commands::inspect::contracts(&ctx).await,
        Command::Requests {
            sender,
            contract,
            before,
            limit,
        } => commands::inspect::requests(sender, contract, before, limit, &ctx).await,
        Command::Account(cmd) => commands::account::run(cmd, &ctx).await,
        Command::Proof {
            kind,
            subject,
            key,
            block,
            verify,
        } => commands::inspect::proof(kind, subject, key, block, verify, &ctx).await,
        Command::Node(args) => {
            init_logs(&cli.log_format);
            commands::operate::node(args, &ctx).await
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
                    committee_key,
                },
        } => {
            commands::operate::chain_create(
                commands::operate::ChainCreate {
                    l1,
                    data_dir,
                    name,
                    from,
                    anchor_sompi,
                    coinbase_maturity,
                    committee_key,
                },
                &ctx,
            )
            .await
        }
        Command::Chain {
            cmd: ChainCommand::Status,
        } => commands::operate::chain_status(&ctx).await,
        Command::Committee { cmd } => match cmd {
            CommitteeCommand::Init { data_dir, listen } => {
                commands::committee::init(data_dir, listen, &ctx)
            }
            CommitteeCommand::Join { data_dir, members } => {
                commands::committee::join(data_dir, members, &ctx)
            }
            CommitteeCommand::Dkg { data_dir, timeout } => {
                commands::committee::dkg(data_dir, &timeout, &ctx).await
            }
            CommitteeCommand::Status { data_dir } => commands::committee::status(data_dir, &ctx),
        },
        Command::Doctor => commands::doctor::run(&ctx).await,
    }
}
