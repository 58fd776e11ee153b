//! End to end on the devnet: a real in-process Kaspa simnet and Wisp node
//! (`wisp_node::devnet`), requests sent to its JSON-RPC server on loopback.
//!
//! - [`offledger_load`]: signed off-ledger `accounts.transfer` requests sent as fast as the node
//!   admits them for a fixed window, counted when their receipts are committed in blocks.
//! - [`onledger_batches`]: Kaspa lane transactions carrying 1…64 requests each, with their
//!   bytes, mass and fee, executed on the chain; how many requests one L1 block can carry
//!   follows from the block mass limit.

use crate::agent;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wisp_api::{Bytes, WispApiClient};
use wisp_core::{Call, Hname, LanePayload, OffLedgerRequest, ReceiptStatus, RequestBody};
use wisp_node::devnet::{Devnet, DevnetConfig};

/// Gas budget of each benchmark request (`accounts.transfer` uses about 30,000).
const GAS_BUDGET: u64 = 100_000;

/// Errors are strings here: the benchmark prints them and stops.
pub type Result<T> = std::result::Result<T, String>;

/// A devnet for the benchmark, in a temporary directory.
pub struct BenchDevnet {
    devnet: Devnet,
    _dir: tempfile::TempDir,
    keys: Vec<secp256k1::Keypair>,
    http: HttpClient,
}

impl BenchDevnet {
    /// Starts a fresh devnet with `accounts` funded dev accounts, mining an L1 block (and
    /// producing a chain block) every `block_time`.
    ///
    /// # Errors
    /// If kaspad or the node do not come up.
    pub async fn start(accounts: usize, block_time: Duration) -> Result<BenchDevnet> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let devnet = Devnet::start(DevnetConfig {
            data_dir: dir.path().join("devnet"),
            fresh: true,
            block_time: Some(block_time),
            rpc_addr: "127.0.0.1:0".parse().map_err(|e| format!("{e}"))?,
            accounts,
            cors: Vec::new(),
            progress: |_| {},
        })
        .await
        .map_err(|e| format!("devnet: {e}"))?;
        let keys = devnet
            .accounts()
            .iter()
            .map(|a| a.keypair().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>>>()?;
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(60))
            .build(devnet.rpc_url())
            .map_err(|e| e.to_string())?;
        Ok(BenchDevnet {
            devnet,
            _dir: dir,
            keys,
            http,
        })
    }

    /// Stops kaspad and the node.
    pub async fn stop(self) {
        self.devnet.stop().await;
    }

    fn body(&self, to: usize, amount_sompi: u64) -> RequestBody {
        RequestBody {
            chain: self.devnet.genesis().chain_id(),
            call: Call {
                target: Hname::of("accounts"),
                entry_point: Hname::of("transfer"),
                args: borsh::to_vec(&(agent(&self.keys[to]), amount_sompi)).unwrap_or_default(),
                transfer_sompi: 0,
            },
            gas_budget: GAS_BUDGET,
            access_list: None,
            time_lock: None,
        }
    }
}

/// Resident memory of this process (kaspad, the node and the load generator together), bytes.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// What [`offledger_load`] measured.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// Length of the measured window, seconds.
    pub window_secs: f64,
    /// Requests whose receipts were committed in blocks produced during the window.
    pub executed_in_window: u64,
    /// Requests admitted by the node over the whole run (warm-up and drain included).
    pub admitted: u64,
    /// Receipts committed over the whole run.
    pub receipts: u64,
    /// Successful receipts over the whole run.
    pub succeeded: u64,
    /// Chain blocks committed during the window.
    pub blocks_in_window: u64,
    /// Times the node answered "mempool full" (the sender then waited and retried).
    pub mempool_full: u64,
    /// Resident memory of the process before the load and after it, bytes.
    pub rss_start: u64,
    /// See `rss_start`.
    pub rss_end: u64,
}

/// Sends signed off-ledger `accounts.transfer` requests from every dev account but the first
/// (each to the next account, one request in flight per sender, in nonce order) for `warmup`
/// plus `window`, then waits until the mempool drains and every admitted request has a
/// receipt. Requests for the window are signed beforehand (from the rate seen in the warm-up),
/// so the window measures the node, not the signer.
///
/// # Errors
/// If the node refuses a request for anything but a full mempool, or does not drain in 120 s.
pub async fn offledger_load(
    net: &BenchDevnet,
    warmup: Duration,
    window: Duration,
) -> Result<LoadReport> {
    if net.keys.len() < 2 {
        return Err("the load needs at least two dev accounts".into());
    }
    let full = Arc::new(AtomicU64::new(0));
    // Receipts as blocks commit: (when, requests, successes).
    let mut blocks = net.devnet.node().subscribe();
    let (stop_tally, mut stopped) = tokio::sync::watch::channel(false);
    let tally = tokio::spawn(async move {
        let mut seen: Vec<(Instant, u64, u64)> = Vec::new();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                block = blocks.recv() => match block {
                    Ok(block) => {
                        let ok = block
                            .receipts
                            .iter()
                            .filter(|r| r.status == ReceiptStatus::Success)
                            .count() as u64;
                        seen.push((Instant::now(), block.receipts.len() as u64, ok));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
            }
        }
        seen
    });
    let mut senders = Vec::new();
    for i in 1..net.keys.len() {
        let who = agent(&net.keys[i]).to_raw_string();
        let nonce = net
            .http
            .get_nonce(who)
            .await
            .map_err(|e| format!("wisp_getNonce: {e}"))?;
        senders.push(Sender {
            key: net.keys[i],
            body: net.body(i % (net.keys.len() - 1) + 1, 1),
            next: nonce.next.0 + nonce.pending,
            signed: Default::default(),
        });
    }
    let rss_start = rss_bytes();
    // Warm-up: signed as they go, to learn the rate.
    let (senders, warm) = run_senders(&net.http, senders, warmup, &full).await?;
    let rate = warm as f64 / warmup.as_secs_f64();
    let per_sender =
        ((rate * 1.5 * window.as_secs_f64()) as u64 / senders.len() as u64).clamp(100, 200_000);
    let senders: Vec<Sender> = senders
        .into_iter()
        .map(|mut s| {
            s.signed = (0..per_sender)
                .map(|k| wisp_chain::sign_request(s.body.clone(), &s.key, s.next + k))
                .collect();
            s
        })
        .collect();
    let start = Instant::now();
    let (_, measured) = run_senders(&net.http, senders, window, &full).await?;
    let end = Instant::now();
    let rss_end = rss_bytes();
    let admitted = warm + measured;
    // Drain: every admitted request gets its receipt.
    let deadline = Instant::now() + Duration::from_secs(120);
    while net.devnet.node().mempool_len() > 0 {
        if Instant::now() > deadline {
            return Err("the mempool did not drain in 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The block that emptied the mempool reaches the tally right after.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = stop_tally.send(true);
    let seen = tally.await.map_err(|e| e.to_string())?;
    let in_window = seen.iter().filter(|(t, _, _)| *t > start && *t <= end);
    Ok(LoadReport {
        window_secs: (end - start).as_secs_f64(),
        executed_in_window: in_window.clone().map(|(_, n, _)| n).sum(),
        blocks_in_window: in_window.count() as u64,
        admitted,
        receipts: seen.iter().map(|(_, n, _)| n).sum(),
        succeeded: seen.iter().map(|(_, _, ok)| ok).sum(),
        mempool_full: full.load(Ordering::Relaxed),
        rss_start,
        rss_end,
    })
}

/// One sending account of the load.
struct Sender {
    key: secp256k1::Keypair,
    body: RequestBody,
    /// Its next nonce.
    next: u64,
    /// Requests signed ahead, from nonce `next` on.
    signed: std::collections::VecDeque<OffLedgerRequest>,
}

/// Runs one task per sender for `duration`, each sending its next request (signed ahead, or
/// signed on the spot) and waiting for the node's answer; a full mempool is waited out and the
/// request sent again. Returns the senders (nonces advanced) and how many were admitted.
async fn run_senders(
    http: &HttpClient,
    senders: Vec<Sender>,
    duration: Duration,
    full: &Arc<AtomicU64>,
) -> Result<(Vec<Sender>, u64)> {
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = senders
        .into_iter()
        .map(|mut s| {
            let http = http.clone();
            let full = full.clone();
            tokio::spawn(async move {
                let mut admitted = 0u64;
                while Instant::now() < deadline {
                    let request = match s.signed.pop_front() {
                        Some(r) if r.nonce == s.next => r,
                        _ => wisp_chain::sign_request(s.body.clone(), &s.key, s.next),
                    };
                    let bytes = borsh::to_vec(&request).map_err(|e| e.to_string())?;
                    loop {
                        match http.send_request(Bytes(bytes.clone())).await {
                            Ok(_) => break,
                            Err(e) if e.to_string().contains("mempool is full") => {
                                full.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            Err(e) => return Err(format!("wisp_sendRequest: {e}")),
                        }
                    }
                    s.next += 1;
                    admitted += 1;
                }
                Ok::<_, String>((s, admitted))
            })
        })
        .collect();
    let mut senders = Vec::new();
    let mut admitted = 0;
    for task in tasks {
        let (s, n) = task.await.map_err(|e| e.to_string())??;
        senders.push(s);
        admitted += n;
    }
    Ok((senders, admitted))
}

/// One lane transaction carrying `requests` requests: its size and mass, and whether the
/// chain executed them all.
#[derive(Clone, Debug)]
pub struct LaneBatch {
    /// Requests in the transaction.
    pub requests: usize,
    /// Serialized size of the transaction, bytes.
    pub tx_bytes: u64,
    /// Normalised mass (what the block mass limit counts), grams.
    pub mass: u64,
    /// Fee paid, sompi.
    pub fee_sompi: u64,
    /// Requests one L1 block can carry in transactions like this one, by the block mass limit.
    pub per_l1_block: u64,
    /// Successful receipts the chain committed for the transaction's requests.
    pub succeeded: usize,
}

/// For each size in `sizes` (at most [`LanePayload::MAX_REQUESTS`]), sends one lane
/// transaction carrying that many `accounts.transfer` requests from dev account 1 and waits
/// for their receipts.
///
/// # Errors
/// If a transaction is refused or its receipts do not arrive in 60 s.
pub async fn onledger_batches(net: &BenchDevnet, sizes: &[usize]) -> Result<Vec<LaneBatch>> {
    let node = net.devnet.node();
    let l1 = node.l1();
    let params = node.l1_params();
    let wallet = wisp_l1::Wallet::new(net.keys[1], node.prefix());
    let lane = kaspa_consensus_core::subnets::SubnetworkId::from(wisp_core::LANE_ID);
    let reference = params.block_mass_limits.reference();
    let mut out = Vec::new();
    for &n in sizes {
        let n = n.clamp(1, LanePayload::MAX_REQUESTS);
        let mut blocks = node.subscribe();
        let payload = LanePayload {
            requests: (0..n).map(|_| net.body(2 % net.keys.len(), 1)).collect(),
            beneficiary: None,
        }
        .encode();
        let prepared = wallet
            .prepare(l1, params, lane, payload, &[])
            .await
            .map_err(|e| format!("lane transaction: {e}"))?;
        let tx_bytes =
            kaspa_consensus_core::mass::transaction_estimated_serialized_size(&prepared.tx);
        let tx_id = l1
            .submit_transaction(&prepared.tx)
            .await
            .map_err(|e| format!("submitting the lane transaction: {e}"))?;
        let ids: std::collections::BTreeSet<_> = (0..n as u32)
            .map(|i| wisp_core::request::on_ledger_request_id(&tx_id, i))
            .collect();
        let mut succeeded = 0;
        let mut found = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while found < n {
            let block = tokio::time::timeout_at(deadline, blocks.recv())
                .await
                .map_err(|_| format!("no receipts for the {n}-request lane transaction in 60 s"))?
                .map_err(|e| e.to_string())?;
            for r in block
                .receipts
                .iter()
                .filter(|r| ids.contains(&r.request_id))
            {
                found += 1;
                succeeded += usize::from(r.status == ReceiptStatus::Success);
            }
        }
        out.push(LaneBatch {
            requests: n,
            tx_bytes,
            mass: prepared.mass,
            fee_sompi: prepared.fee_sompi,
            per_l1_block: reference / prepared.mass.max(1) * n as u64,
            succeeded,
        });
    }
    Ok(out)
}
