//! Wisp's benchmark report: `cargo bench -p wisp-bench` measures each row beside its baseline in
//! the same run and writes `docs/benchmarks.md` (machine, commit, command, tables).
//!
//! `WISP_BENCH_STATE_KEYS` (default `10000,100000,1000000`) sets the state sizes measured,
//! `WISP_BENCH_DEVNET_SECS` (default 60) the devnet load's window, and
//! `WISP_BENCH_ONLY=runtime,devnet,state` runs only those sections, printing them without
//! writing the file.

use std::fmt::Write as _;
use std::time::{Duration, Instant};
use wisp_bench::devnet::{offledger_load, onledger_batches, BenchDevnet};
use wisp_bench::{
    commit_state as commit, median_secs, state_key, Conflict, StateWorkload, TransferChain,
};
use wisp_state::{verify_proof, StateDb};

/// Blocks of this many updates in the state benchmark (one durable commit each).
const UPDATES_PER_BLOCK: u64 = 1000;
/// Versions the pruned store keeps.
const RETENTION: u64 = 100;
/// State keys a token transfer changes: the two token balances, the sender's balance (the
/// fee), its nonce and the request's record.
const KEYS_PER_TRANSFER: u64 = 5;
/// Updates in a full block of transfers: as many requests as a block holds
/// (`wisp_chain::MAX_BLOCK_REQUESTS`), each changing [`KEYS_PER_TRANSFER`] keys.
const FULL_BLOCK_UPDATES: u64 = wisp_chain::MAX_BLOCK_REQUESTS as u64 * KEYS_PER_TRANSFER;
/// Full blocks the archive store commits after its blocks of [`UPDATES_PER_BLOCK`].
const FULL_BLOCKS: u64 = 20;

/// Disk bytes actually allocated to the files under `dir`.
fn disk_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.blocks() * 512)
                .sum()
        })
        .unwrap_or(0)
}

struct StateRow {
    keys: u64,
    archive_rate: f64,
    /// The archive store committing full blocks ([`FULL_BLOCK_UPDATES`]).
    full_block_rate: f64,
    pruned_rate: f64,
    archive_bytes_per_key: f64,
    pruned_bytes_per_key: f64,
    /// The pruned store's bytes per key after it is closed and opened again (which compacts a
    /// file that is mostly free pages).
    reopened_bytes_per_key: f64,
    proofs_per_s: f64,
    verifies_per_s: f64,
    proof_median: usize,
    proof_max: usize,
}

/// Commits `blocks` blocks of `updates` updates of `work` to `db`, one durable commit each, and
/// returns the distinct keys written per second (a block's random picks of existing keys can
/// repeat one; at 10^4 keys, ~4% of a block of 1000).
fn commit_blocks(db: &StateDb, work: &mut StateWorkload, blocks: u64, updates: u64) -> f64 {
    let mut written = 0;
    let start = Instant::now();
    for _ in 0..blocks {
        let changes = work.updates(updates);
        written += changes.len();
        commit(db, work.version, changes);
        work.version += 1;
    }
    written as f64 / start.elapsed().as_secs_f64()
}

/// Grows a store to `keys` keys in blocks of 10,000 inserts, then times blocks of 1000 updates
/// (900 existing keys, 100 new) with one durable commit each; the archive store then also
/// full blocks ([`FULL_BLOCK_UPDATES`]).
fn state_row(keys: u64, progress: &dyn Fn(&str)) -> StateRow {
    let mut rates = [0.0f64; 2];
    let mut bytes = [0.0f64; 2];
    let mut proofs = (0.0, 0.0, 0, 0);
    let mut reopened = 0.0;
    let mut full_block_rate = 0.0;
    for (slot, retention) in [(0usize, None), (1, Some(RETENTION))] {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = StateDb::open(&dir.path().join("state.redb")).expect("open");
        db.set_retention(retention);
        let mut work = StateWorkload::load(&db, keys);
        progress(&format!(
            "state: {keys} keys loaded ({})",
            if retention.is_some() {
                "pruned"
            } else {
                "archive"
            }
        ));
        // Measured: 2 × retention blocks of updates, so the pruned store is in steady state.
        rates[slot] = commit_blocks(&db, &mut work, 2 * RETENTION, UPDATES_PER_BLOCK);
        let live = db.stats().expect("stats").live_keys;
        bytes[slot] = disk_bytes(dir.path()) as f64 / live as f64;
        if slot == 0 {
            full_block_rate = commit_blocks(&db, &mut work, FULL_BLOCKS, FULL_BLOCK_UPDATES);
        }
        if slot == 1 {
            let head = work.version - 1;
            let root = db.block(head).expect("head").state_root;
            let sample: Vec<Vec<u8>> = (0..1000)
                .map(|i| state_key(i * (keys / 1000).max(1)))
                .collect();
            let start = Instant::now();
            let made: Vec<_> = sample
                .iter()
                .map(|k| db.prove(k, head).expect("prove"))
                .collect();
            let prove_s = start.elapsed().as_secs_f64();
            let start = Instant::now();
            for (k, (v, p)) in sample.iter().zip(&made) {
                verify_proof(root, k, v.as_deref(), p).expect("verifies");
            }
            let verify_s = start.elapsed().as_secs_f64();
            let mut sizes: Vec<usize> = made.iter().map(|(_, p)| p.0.len()).collect();
            sizes.sort_unstable();
            proofs = (
                sample.len() as f64 / prove_s,
                sample.len() as f64 / verify_s,
                sizes[sizes.len() / 2],
                sizes[sizes.len() - 1],
            );
            drop(db);
            let db = StateDb::open(&dir.path().join("state.redb")).expect("reopen");
            reopened = disk_bytes(dir.path()) as f64 / db.stats().expect("stats").live_keys as f64;
        }
    }
    progress(&format!("state: {keys} keys measured"));
    StateRow {
        keys,
        archive_rate: rates[0],
        full_block_rate,
        pruned_rate: rates[1],
        archive_bytes_per_key: bytes[0],
        pruned_bytes_per_key: bytes[1],
        reopened_bytes_per_key: reopened,
        proofs_per_s: proofs.0,
        verifies_per_s: proofs.1,
        proof_median: proofs.2,
        proof_max: proofs.3,
    }
}

/// blake2b-256 of 64-byte inputs per second: the tree's hash at full speed.
fn hash_rate() -> f64 {
    let input = [7u8; 64];
    let n = 1_000_000u64;
    let secs = median_secs(3, || {
        let mut acc = 0u8;
        for i in 0..n {
            let mut data = input;
            data[0] = i as u8;
            acc ^= wisp_core::blake2b_256(&data).0[0];
        }
        std::hint::black_box(acc);
    });
    n as f64 / secs
}

/// One configuration's transfer throughput.
struct TransferRun {
    /// Transfers per second, whole blocks (execution, hashing, writing).
    per_s: f64,
    /// Transfers per second of the execution phase alone (`BlockTiming::requests`).
    executed_per_s: f64,
    /// Requests that ran in a parallel batch.
    parallel: u64,
    /// Requests measured.
    measured: usize,
    /// Seconds per block of the execution phase outside parallel batches: the block's own
    /// thread alone (`BlockTiming::requests` less `in_parallel`).
    alone_per_block_s: f64,
    /// Mean µs a started worker took to begin (`BlockTiming::workers_waited`).
    worker_wait_us: f64,
}

/// Rounds of each parallel-table row: one-thread and two-thread runs alternating.
const PARALLEL_ROUNDS: usize = 5;

/// Transfers each engine-floor run of the parallel table's ceiling makes (~0.1 s).
const FLOOR_CALLS: usize = 40_000;

/// Rounds of the revm comparison: revm, the engine floor and the execution phase back to back.
const ERC20_ROUNDS: usize = 5;

/// The median of `values` (the upper one of an even count).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Per-round ratios `a[i] / b[i]`: their median, lowest and highest.
struct Spread {
    median: f64,
    lowest: f64,
    highest: f64,
}

impl Spread {
    fn of_ratios(a: &[f64], b: &[f64]) -> Spread {
        let ratios: Vec<f64> = a.iter().zip(b).map(|(a, b)| a / b).collect();
        Spread {
            median: median(&ratios),
            lowest: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            highest: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

impl std::fmt::Display for Spread {
    /// As percentages: `48% (41–52%)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0}% ({:.0}–{:.0}%)",
            100.0 * self.median,
            100.0 * self.lowest,
            100.0 * self.highest
        )
    }
}

/// The run with the median whole-block rate (and its execution-phase rate: the same run's,
/// so both columns describe one measurement).
fn median_run(mut runs: Vec<TransferRun>) -> TransferRun {
    runs.sort_by(|a, b| a.per_s.total_cmp(&b.per_s));
    let mid = runs.len() / 2;
    runs.swap_remove(mid)
}

/// Blocks run before a transfer run's measured blocks.
const WARM_UP_BLOCKS: usize = 10;

/// Requests a transfer run measures, about: a block of 100 executes in ~0.5 ms, so runs of 50
/// blocks (this report until 2026-12-03) timed 25 ms of execution each, and their two-thread
/// speedups spread over 0.92–1.91×.
const MEASURED_REQUESTS: usize = 20_000;

/// Blocks a transfer run measures: [`MEASURED_REQUESTS`] in blocks of `per_block`, at least 50.
fn measured_blocks(per_block: usize) -> usize {
    (MEASURED_REQUESTS / per_block.max(1)).max(50)
}

/// Transfers through the full runtime with `threads` threads (blocks of `per_block`
/// transfers, in-memory or durable state).
fn transfers(threads: usize, conflict: Conflict, durable: bool, per_block: usize) -> TransferRun {
    transfers_indexed(threads, conflict, durable, true, per_block)
}

/// [`transfers`], with or without the node's event and request indexes (`wisp node
/// --no-index`).
fn transfers_indexed(
    threads: usize,
    conflict: Conflict,
    durable: bool,
    indexes: bool,
    per_block: usize,
) -> TransferRun {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut chain = TransferChain::new(durable.then_some(dir.path()), threads, per_block);
    chain
        .chain
        .db()
        .set_indexing(indexes)
        .unwrap_or_else(|e| panic!("indexing: {e}"));
    let blocks: Vec<_> = (0..WARM_UP_BLOCKS + measured_blocks(per_block))
        .map(|_| chain.transfer_block(conflict))
        .collect();
    let mut blocks = blocks.into_iter();
    for block in blocks.by_ref().take(WARM_UP_BLOCKS) {
        chain.run(vec![], block);
    }
    let before = chain.chain.parallel_requests();
    let start = Instant::now();
    let (mut n, mut count) = (0, 0);
    let (mut executing, mut alone, mut waited, mut started) = (0.0, 0.0, 0.0, 0u64);
    for block in blocks {
        n += block.len();
        count += 1;
        let t = chain.run(vec![], block).timing;
        executing += t.requests.as_secs_f64();
        alone += t.requests.saturating_sub(t.in_parallel).as_secs_f64();
        waited += t.workers_waited.as_secs_f64();
        started += u64::from(t.workers_started);
    }
    TransferRun {
        per_s: n as f64 / start.elapsed().as_secs_f64(),
        executed_per_s: n as f64 / executing,
        parallel: chain.chain.parallel_requests() - before,
        measured: n,
        alone_per_block_s: alone / f64::from(count.max(1)),
        worker_wait_us: waited * 1e6 / started.max(1) as f64,
    }
}

/// ERC-20 `transfer(address,uint256)` on revm, in memory: transfers per second on one thread,
/// from the standalone `bench/evm` package (kept out of the workspace, see its Cargo.toml), in
/// its `workload`: `mix` (100 senders each paying its own recipient, nonces checked, fees
/// paid: the mix of this report's Wisp runs) or `hot` (one sender, no nonce check, no fees).
fn evm_transfers(workload: &str) -> f64 {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("evm/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["run", "--release", "--quiet", "--locked", "--manifest-path"])
        .arg(&manifest)
        .args(["--", workload])
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "the EVM baseline failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the EVM baseline prints transfers per second")
}

/// Wisp's VM with [`wisp_bench::MapHost`] (storage in a map, nothing else): `token.transfer` per second,
/// and µs per instantiate + call of the `decimals` view, with instance reuse on or off.
fn vm_bare(reuse: bool) -> (f64, f64) {
    let (vm, module, host) = wisp_bench::floor();
    vm.set_instance_reuse(reuse);
    let sender = wisp_bench::FLOOR_SENDER;
    let mut host = Some(host);
    let mut call = |kind: wisp_core::CallKind, function: &str, args: Vec<u8>| {
        let invocation = wisp_vm::Invocation {
            contract: wisp_core::Hname::of("token"),
            module: module.clone(),
            caller: sender,
            kind,
            function: wisp_core::Hname::of(function),
            args,
            transferred_sompi: 0,
            first_load: false,
        };
        let (back, outcome) = vm.invoke(host.take().expect("host"), invocation, 10_000_000);
        host = Some(back);
        outcome.result.expect("the call succeeds")
    };
    let args: Vec<Vec<u8>> = (0..100)
        .map(|i| borsh::to_vec(&(wisp_bench::recipient(i), 1u128)).expect("args"))
        .collect();
    let n = 20_000;
    let transfer_s = median_secs(3, || {
        for i in 0..n {
            call(
                wisp_core::CallKind::Entry,
                "transfer",
                args[i % 100].clone(),
            );
        }
    });
    let view_s = median_secs(3, || {
        for _ in 0..n {
            call(wisp_core::CallKind::View, "decimals", vec![]);
        }
    });
    (n as f64 / transfer_s, view_s * 1e6 / n as f64)
}

/// Schnorr (BIP340) verifications per second on one core and on every core (rayon).
fn signatures() -> (f64, f64, usize) {
    use secp256k1::{Keypair, Message, SECP256K1};
    let n = 2000usize;
    let items: Vec<_> = (0..n)
        .map(|i| {
            let mut secret = [3u8; 32];
            secret[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            let key = Keypair::from_seckey_slice(SECP256K1, &secret).expect("key");
            let msg = wisp_core::blake2b_256(&secret).0;
            let sig = SECP256K1.sign_schnorr_no_aux_rand(&Message::from_digest(msg), &key);
            (key.x_only_public_key().0, msg, sig)
        })
        .collect();
    let verify = |(pk, msg, sig): &(
        secp256k1::XOnlyPublicKey,
        [u8; 32],
        secp256k1::schnorr::Signature,
    )| {
        SECP256K1
            .verify_schnorr(sig, &Message::from_digest(*msg), pk)
            .is_ok()
    };
    let single = median_secs(3, || assert!(items.iter().all(verify)));
    let parallel = median_secs(3, || {
        use rayon::prelude::*;
        assert!(items.par_iter().all(verify));
    });
    (
        n as f64 / single,
        n as f64 / parallel,
        rayon::current_num_threads(),
    )
}

/// Chain blocks (and L1 blocks) per second on the benchmark devnet.
const DEVNET_BLOCK_MS: u64 = 200;

/// End to end on a devnet: sustained off-ledger requests/s through JSON-RPC with receipts,
/// and lane transactions' bytes and mass per on-ledger request.
fn devnet_section(out: &mut String, progress: &dyn Fn(&str)) {
    let window: u64 = std::env::var("WISP_BENCH_DEVNET_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let senders = 8;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(out, "## End to end on the devnet\n\nNot run: {e}\n");
            return;
        }
    };
    let measured = runtime.block_on(async {
        progress("starting a devnet (kaspad simnet in-process)");
        let net = BenchDevnet::start(senders + 1, Duration::from_millis(DEVNET_BLOCK_MS)).await?;
        progress(&format!("off-ledger load: 5 s warm-up, then {window} s"));
        let load = offledger_load(&net, Duration::from_secs(5), Duration::from_secs(window)).await;
        progress("on-ledger lane transactions");
        let lanes = match &load {
            Ok(_) => onledger_batches(&net, &[1, 8, 64]).await,
            Err(_) => Ok(Vec::new()),
        };
        net.stop().await;
        Ok::<_, String>((load?, lanes?))
    });
    let (load, lanes) = match measured {
        Ok(m) => m,
        Err(e) => {
            let _ = writeln!(out, "## End to end on the devnet\n\nFailed: {e}\n");
            return;
        }
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let _ = writeln!(
        out,
        "## End to end on the devnet\n\nA devnet as `wisp devnet` runs it, in this process: \
         kaspad on simnet and one Wisp node (one execution thread, the default), an L1 block \
         mined and a chain block produced every {DEVNET_BLOCK_MS} ms. {senders} dev accounts \
         send signed `accounts.transfer` requests to the node's JSON-RPC server on loopback, \
         one request in flight per account, signed beforehand; 5 s of warm-up, then the \
         window. *Executed* counts receipts committed in blocks during the window. Memory is \
         the resident memory of the whole process (kaspad, the node and the load).\n"
    );
    let _ = writeln!(
        out,
        "| window | executed | requests/s | blocks | admitted, whole run | receipts (succeeded) | \"mempool full\" answers | memory at start → end |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let _ = writeln!(
        out,
        "| {:.1} s | {} | {:.0} | {} | {} | {} ({}) | {} | {:.0} MiB → {:.0} MiB |\n",
        load.window_secs,
        load.executed_in_window,
        load.executed_in_window as f64 / load.window_secs,
        load.blocks_in_window,
        load.admitted,
        load.receipts,
        load.succeeded,
        load.mempool_full,
        mib(load.rss_start),
        mib(load.rss_end),
    );
    let _ = writeln!(
        out,
        "On-ledger: one Kaspa lane transaction (one input, change back) carrying *n* \
         `accounts.transfer` requests, sent from a dev account and executed by the chain. \
         Requests per L1 block: how many such requests fit in the block mass limit \
         ({} grams); at Kaspa's 10 blocks per second, ten times that per second.\n",
        kaspa_consensus_core::config::params::SIMNET_PARAMS
            .block_mass_limits
            .reference()
    );
    let _ = writeln!(
        out,
        "| requests per transaction | transaction bytes | bytes per request | mass (grams) | fee (sompi) | requests per L1 block | executed |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    for l in &lanes {
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} of {} |",
            l.requests,
            l.tx_bytes,
            l.tx_bytes as f64 / l.requests as f64,
            l.mass,
            l.fee_sompi,
            l.per_l1_block,
            l.succeeded,
            l.requests
        );
    }
    let _ = writeln!(out);
}

fn main() {
    wisp_node::allocator::configure();
    // `cargo bench` passes `--bench`; any other argument is a filter we do not support.
    let progress = |what: &str| eprintln!("[wisp-bench] {what}");
    let state_sizes: Vec<u64> = std::env::var("WISP_BENCH_STATE_KEYS")
        .unwrap_or_else(|_| "10000,100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    // WISP_BENCH_ONLY=runtime,state,devnet runs only those sections and prints the result
    // without writing docs/benchmarks.md (a partial report).
    let only = std::env::var("WISP_BENCH_ONLY").ok();
    let wants = |section: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|s| s.trim() == section))
    };
    let mut out = String::new();
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A gauge of the machine's speed at the start and the end of the run: shared virtual
    // cores drift, and the rows are only comparable within one run.
    let gauge_start = hash_rate();
    let _ = writeln!(out, "# Wisp benchmarks\n");
    let _ =
        writeln!(
        out,
        "Written by `cargo bench -p wisp-bench` at commit `{}`{} on {cores} cores ({cpu}), Wisp and \
         the revm baseline both built with the release profile (whole-program optimisation: fat \
         LTO, one codegen unit). Every ratio compares rows measured in the same run on the same \
         workload.\n",
        commit.trim(),
        if dirty { " with uncommitted changes" } else { "" },
    );

    // The devnet runs first, though reported after the runtime: its rows give the process's
    // resident memory, which the runtime section's many signed blocks would leave inflated
    // (the allocator keeps what it freed).
    let mut devnet = String::new();
    if wants("devnet") {
        progress("end to end on the devnet");
        devnet_section(&mut devnet, &progress);
    }

    if wants("runtime") {
        // Measured first: the ERC-20 table above it reuses its one-thread independent rows.
        progress("token transfers");
        let mut transfer_table = String::new();
        let mut independent_one = Vec::new();
        // The median two-thread run of independent transfers in blocks of 100 in memory, with
        // the one-thread run's execution phase per block (seconds).
        let mut serial_part: Option<(TransferRun, f64)> = None;
        let _ = writeln!(
            transfer_table,
            "## Token transfers through the full runtime\n\nBlocks of 100 `token.transfer` requests \
             (500 in the last row) with exact access lists and signatures verified beforehand (as \
             the mempool does), each block executed, hashed into the state tree and committed. \
             {measured_100} blocks of 100 ({measured_500} of 500) after {WARM_UP_BLOCKS} warm-up \
             blocks; the median of five runs, one- and two-thread runs \
             alternating; the execution-phase speedup is the median of the five rounds' own \
             (each round's two-thread run against its one-thread run), the lowest and highest \
             in brackets. The chain is young (a few thousand keys): one that has run longer pays \
             more per block as its tree and tables grow (`cargo run -p wisp-bench --release \
             --example profile_block -- 1 300 independent DIR` prints the cost of each 50 blocks; \
             `block=500` sets the block size). In blocks of 500 the requests' gas budgets (3M each, \
             ~1M used) pass the block's 10^9 gas, so a parallel batch ends at ~333 members and the \
             block's gas decides the rest after them.\n",
            measured_100 = measured_blocks(100),
            measured_500 = measured_blocks(500),
        );
        let _ = writeln!(
            transfer_table,
            "| block | state | whole blocks, 1 thread | 2 threads | speedup | execution phase, 1 thread | 2 threads | speedup | ran in parallel |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
        );
        let blocks_of_100 = [
            ("independent", Conflict::Independent),
            ("half to one account", Conflict::Half),
            ("all to one account", Conflict::All),
        ]
        .into_iter()
        .flat_map(|(name, conflict)| {
            [false, true].map(|durable| (name.to_string(), conflict, durable, 100))
        });
        // Bigger blocks spread the block's fixed work (before its first request and after its
        // last) over more requests.
        let blocks_of_500 = [(
            "independent, 500 per block".to_string(),
            Conflict::Independent,
            false,
            500,
        )];
        for (name, conflict, durable, per_block) in blocks_of_100.chain(blocks_of_500) {
            progress(&format!(
                "transfers: {name}, {}",
                if durable { "on disk" } else { "in memory" }
            ));
            // This machine's two cores are virtual and noisy: five rounds, one thread and two
            // alternating, and the median of each; the rounds' own speedups show the spread.
            let mut ones = Vec::new();
            let mut twos = Vec::new();
            for _ in 0..PARALLEL_ROUNDS {
                ones.push(transfers(1, conflict, durable, per_block));
                twos.push(transfers(cores.max(2), conflict, durable, per_block));
            }
            let rate = |runs: &[TransferRun]| -> Vec<f64> {
                runs.iter().map(|r| r.executed_per_s).collect()
            };
            let Spread {
                median,
                lowest,
                highest,
            } = Spread::of_ratios(&rate(&twos), &rate(&ones));
            let one = median_run(ones);
            let two = median_run(twos);
            let _ = writeln!(
                transfer_table,
                "| {name} | {} | {:.0}/s | {:.0}/s | {:.2}× | {:.0}/s | {:.0}/s | {median:.2}× ({lowest:.2}–{highest:.2}) | {} of {} |",
                if durable { "on disk" } else { "in memory" },
                one.per_s,
                two.per_s,
                two.per_s / one.per_s,
                one.executed_per_s,
                two.executed_per_s,
                two.parallel,
                two.measured
            );
            if conflict == Conflict::Independent && per_block == 100 && !durable {
                serial_part = Some((two, per_block as f64 / one.executed_per_s));
            }
            if conflict == Conflict::Independent && per_block == 100 {
                independent_one.push(one);
            }
        }
        // What the machine gives two threads that share nothing: the engine floor on each,
        // against one, alternating.
        progress("the engine floor on one thread and two");
        let mut floor_one = Vec::new();
        let mut floor_two = Vec::new();
        for _ in 0..PARALLEL_ROUNDS {
            floor_one.push(wisp_bench::floor_transfers(FLOOR_CALLS));
            floor_two.push(wisp_bench::floor_transfers_on(2, FLOOR_CALLS));
        }
        let ceiling = Spread::of_ratios(&floor_two, &floor_one);
        let _ = writeln!(
            transfer_table,
            "\nWhat two threads give work that shares nothing on this machine: the engine floor \
             (the token's `transfer` on the VM with a bare host, see the ERC-20 table) run on two \
             threads at once, each with its own instance and host, both starting once both are \
             set up, against one thread, {PARALLEL_ROUNDS} rounds alternating: {:.2}× \
             ({:.2}–{:.2}) the transfers per second of the wall clock.",
            ceiling.median, ceiling.lowest, ceiling.highest
        );
        if let Some((two, one_block_s)) = serial_part {
            // Amdahl's law: what only one thread can do stays whole, the rest divides at most
            // by the ceiling.
            let alone = two.alone_per_block_s;
            let bound = one_block_s / (alone + (one_block_s - alone).max(0.0) / ceiling.median);
            let _ = writeln!(
                transfer_table,
                "\nIn the median two-thread run of independent transfers in memory (blocks of \
                 100), the block's own thread worked alone for {:.0} µs of each block's execution \
                 phase (`BlockTiming::in_parallel` is the rest): the block's start, planning up to \
                 the first hand-off to the worker, merging the forks and the block's end. The \
                 worker began {:.0} µs after it was asked for, on average. Against the \
                 one-thread run's {:.0} µs a block and the ceiling above, Amdahl's law bounds the \
                 speedup of such blocks at {bound:.2}× (one-thread time / (alone + the rest / \
                 ceiling)).",
                alone * 1e6,
                two.worker_wait_us,
                one_block_s * 1e6,
            );
        }
        let _ = writeln!(
            transfer_table,
            "\nThe execution phase is what the scheduler parallelises (admission, footprints, the \
             batch on the workers, merging); committing the block (its tree hashed on a second \
             thread while the rest is written) follows it and takes most of a block's time (see \
             the state store below).\n"
        );

        progress("whole blocks on disk without the node's indexes");
        // Alternating with the indexed run again, so the two rows compare like with like.
        let mut indexed = Vec::new();
        let mut unindexed = Vec::new();
        for _ in 0..3 {
            indexed.push(transfers_indexed(1, Conflict::Independent, true, true, 100));
            unindexed.push(transfers_indexed(
                1,
                Conflict::Independent,
                true,
                false,
                100,
            ));
        }
        let (indexed, unindexed) = (median_run(indexed), median_run(unindexed));

        // The machine's speed drifts by a fifth and more within a run: revm, the engine floor
        // and the execution phase are measured back to back in each round, and each ratio is
        // the median of the rounds' own.
        let mut evms = Vec::new();
        let mut hot_evms = Vec::new();
        let mut bares = Vec::new();
        let mut views = Vec::new();
        let mut phases = Vec::new();
        for round in 1..=ERC20_ROUNDS {
            progress(&format!(
                "ERC-20 transfers: revm, Wisp (round {round} of {ERC20_ROUNDS})"
            ));
            evms.push(evm_transfers("mix"));
            hot_evms.push(evm_transfers("hot"));
            let (bare, view_us) = vm_bare(true);
            bares.push(bare);
            views.push(view_us);
            phases.push(transfers(1, Conflict::Independent, false, 100).executed_per_s);
        }
        let evm = median(&evms);
        let hot_evm = median(&hot_evms);
        let hot_ratio = Spread::of_ratios(&hot_evms, &evms);
        let phase_hot_ratio = Spread::of_ratios(&phases, &hot_evms);
        let (bare, view_us) = (median(&bares), median(&views));
        let bare_ratio = Spread::of_ratios(&bares, &evms);
        let phase_ratio = Spread::of_ratios(&phases, &evms);
        let phase = median(&phases);
        let (fresh, fresh_view_us) = vm_bare(false);
        // The one-thread independent rows of the transfer table: in memory, then on disk.
        let (memory, disk) = (&independent_one[0], &independent_one[1]);
        let _ = writeln!(
            out,
            "## ERC-20 transfer, one thread\n\nThe same transfer — checks, two balance updates, a \
             Transfer event — as a Solidity ERC-20 (`bench/evm/Erc20.sol`, solc 0.8.37, optimizer \
             on) on revm 43, and as the example token (`contracts/token`) on Wisp. Both run the same \
             mix: 100 senders, each with its own tokens and coins for fees, each paying 1 token \
             to a recipient of its own in turn; nonces are checked and every transfer pays its \
             fee (on revm a base fee and a tip per gas, the tips to the block's beneficiary; on \
             Wisp the gas fee, summed for the chain owner at block end). Signatures are verified \
             beforehand; Wisp's rows also write the receipt record. revm (in both workloads), \
             the engine floor and the execution phase are measured in {ERC20_ROUNDS} rounds, \
             each running them back to back; their rates are the \
             medians and their ratios the median of the rounds' own, the lowest and highest in \
             brackets. The other rows come from the transfer table below and compare with the \
             median revm rate.\n"
        );
        let _ = writeln!(out, "| | transfers/s | vs revm |\n|---|---:|---:|");
        let _ = writeln!(
            out,
            "| revm, in memory (`CacheDB`, no state root) | {evm:.0} | 100% |"
        );
        let _ = writeln!(
            out,
            "| revm, one sender paying 100 recipients, no nonce check, no fees (this report's \
             baseline until 2026-12-03) | {hot_evm:.0} | {hot_ratio} |"
        );
        let _ = writeln!(
            out,
            "| Wisp VM with a bare host (storage in a map): the engine floor | {bare:.0} | {bare_ratio} |"
        );
        let _ = writeln!(
            out,
            "| Wisp runtime, execution phase of blocks of 100 | {phase:.0} | {phase_ratio} |"
        );
        let rows = [
            (
                "the engine floor, each call instantiating the token afresh (instance reuse off)",
                fresh,
            ),
            (
                "Wisp runtime, execution phase, the transfer table's one-thread run",
                memory.executed_per_s,
            ),
            (
                "Wisp runtime, whole blocks in memory (state root, receipts)",
                memory.per_s,
            ),
            (
                "Wisp runtime, whole blocks on disk (fsync per block)",
                disk.per_s,
            ),
            (
                "the same, measured again alternating with the next row",
                indexed.per_s,
            ),
            (
                "the same without the node's event and request indexes (`--no-index`)",
                unindexed.per_s,
            ),
        ];
        for (name, rate) in rows {
            let _ = writeln!(out, "| {name} | {rate:.0} | {:.0}% |", 100.0 * rate / evm);
        }
        let _ = writeln!(
            out,
            "\nInstantiate + call of the token's `decimals` view on Wisp's VM with the bare host: \
             {view_us:.2} µs reusing instances (reset to their fresh state after each call), \
             {fresh_view_us:.2} µs instantiating afresh.\n"
        );
        let _ = writeln!(
            out,
            "Against the hot-sender revm workload the execution phase of blocks of 100 runs at \
             {phase_hot_ratio} (median of the rounds' ratios).\n"
        );

        progress("signatures");
        let (single, parallel, threads) = signatures();
        let _ = writeln!(
            out,
            "## Signature verification (Schnorr, BIP340, libsecp256k1)\n"
        );
        let _ = writeln!(out, "| | verifications/s | µs each |\n|---|---:|---:|");
        let _ = writeln!(out, "| one core | {single:.0} | {:.1} |", 1e6 / single);
        let _ = writeln!(
            out,
            "| {threads} threads (rayon) | {parallel:.0} | {:.1} |\n",
            1e6 / parallel
        );
        let _ = writeln!(
            out,
            "libsecp256k1 0.10 (the `secp256k1` crate) offers no batch verification for BIP340.\n"
        );

        out.push_str(&transfer_table);
    }

    out.push_str(&devnet);

    if wants("state") {
        progress("state store");
        let hashes = hash_rate();
        let _ = writeln!(
            out,
            "## State store (jmt 0.12 over redb 4.6)\n\nA store grown to the given number of keys, \
             then {} blocks of {UPDATES_PER_BLOCK} updates (9 in 10 to existing keys, 1 in 10 new; \
             rates count the distinct keys written), \
             one durable commit (fsync) per block, committed as a chain commits its blocks \
             (`StateDb::commit_block`: the tree is hashed on a second thread while the values are \
             written, subtree by subtree, the writing thread taking the subtrees left once its \
             writes are done). *Archive* keeps every version; *pruned* keeps the \
             last {RETENTION} versions. Bytes on disk per live key after the run, and for the pruned \
             store once more after closing and opening it again (opening compacts a file of at \
             least 64 MiB that is at least 25% free pages). Proofs: 1000 keys \
             at the head of the pruned store. *Full blocks*: the archive store then commits \
             {FULL_BLOCKS} blocks of {FULL_BLOCK_UPDATES} updates, the \
             size of a full block of token transfers: a block holds at most {} requests and a \
             transfer changes {KEYS_PER_TRANSFER} keys (the two token balances, the sender's \
             balance for the fee, its nonce, the request's record); a block's fixed costs (its \
             commit, the tree's top levels) are then shared by {} times the updates. \
             blake2b-256 on 64-byte inputs runs at {:.2} M hashes/s on this machine.\n",
            2 * RETENTION,
            wisp_chain::MAX_BLOCK_REQUESTS,
            FULL_BLOCK_UPDATES / UPDATES_PER_BLOCK,
            hashes / 1e6
        );
        let _ = writeln!(
            out,
            "| keys | archive updates/s | archive, full blocks | pruned updates/s | archive bytes/key | pruned bytes/key | pruned, reopened | proofs/s | verifications/s | proof bytes (median / max) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for keys in state_sizes {
            let r = state_row(keys, &progress);
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} / {} |",
                r.keys,
                r.archive_rate,
                r.full_block_rate,
                r.pruned_rate,
                r.archive_bytes_per_key,
                r.pruned_bytes_per_key,
                r.reopened_bytes_per_key,
                r.proofs_per_s,
                r.verifies_per_s,
                r.proof_median,
                r.proof_max
            );
        }
    }

    let gauge_end = hash_rate();
    let _ = writeln!(
        out,
        "\n## The machine during the run\n\nblake2b-256 of 64-byte inputs, as a gauge of the \
         cores' speed: {:.2} M hashes/s at the start, {:.2} M at the end. On the shared virtual \
         cores this report was made on, the same configuration varies by up to ±20% between \
         runs: compare rows within one report, not across reports.",
        gauge_start / 1e6,
        gauge_end / 1e6
    );
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/benchmarks.md");
    if only.is_some() {
        progress("a partial report (WISP_BENCH_ONLY): docs/benchmarks.md left as it was");
    } else {
        match std::fs::write(&path, &out) {
            Ok(()) => progress(&format!("wrote {}", path.display())),
            Err(e) => eprintln!("[wisp-bench] could not write {}: {e}", path.display()),
        }
    }
    println!("{out}");
}
