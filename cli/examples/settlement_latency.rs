//! End-to-end latencies on a devnet at a given L1 block time: an on-ledger request (a Kaspa lane
//! transaction) from submission to its receipt, and a withdrawal from the request to the
//! acceptance on Kaspa of the anchor transaction that pays it.
//!
//! `cargo run -p wisp-cli --example settlement_latency -- 1000 5` (block time in ms, samples).

use serde_json::json;
use std::time::{Duration, Instant};
use wisp_cli::client::{CallOptions, Client};
use wisp_node::devnet::{Devnet, DevnetConfig};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let block_ms: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let samples: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let dir = tempfile::tempdir()?;
    let devnet = Devnet::start(DevnetConfig {
        data_dir: dir.path().join("devnet"),
        fresh: true,
        block_time: Some(Duration::from_millis(block_ms)),
        rpc_addr: "127.0.0.1:0".parse()?,
        accounts: 2,
        cors: Vec::new(),
        progress: |_| {},
    })
    .await?;
    let client = Client::new(&devnet.rpc_url())?;
    let dev0 = devnet.accounts()[0].keypair()?;
    let dev1 = wisp_l1::address_of(&devnet.accounts()[1].x_only_key()?, wisp_l1::Prefix::Simnet);
    let mut on_ledger = Vec::new();
    for _ in 0..samples {
        let start = Instant::now();
        let r = client
            .call(
                &dev0,
                "accounts",
                "transfer",
                &json!([dev1.to_string(), "1"]),
                &CallOptions {
                    on_ledger: true,
                    ..CallOptions::default()
                },
            )
            .await?;
        anyhow::ensure!(r["status"] == "success", "{r}");
        on_ledger.push(start.elapsed());
    }
    let mut withdrawals = Vec::new();
    for i in 0..samples {
        let payee = wisp_l1::address_of(&[40 + i as u8; 32], wisp_l1::Prefix::Simnet);
        let start = Instant::now();
        let r = client
            .call(
                &dev0,
                "accounts",
                "withdraw",
                &json!([payee.to_string(), "100000000"]),
                &CallOptions::default(),
            )
            .await?;
        anyhow::ensure!(r["status"] == "success", "{r}");
        let seq: u64 = r["returnValue"].as_str().unwrap_or("0").parse()?;
        loop {
            if devnet.node().withdrawal_paid_by(seq)?.is_some() {
                break;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(300),
                "withdrawal {seq} not paid"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        withdrawals.push(start.elapsed());
    }
    println!(
        "block time {block_ms} ms, {samples} samples: on-ledger request → receipt median {:?} (min {:?}, max {:?}); withdrawal → paying anchor transaction accepted median {:?} (min {:?}, max {:?})",
        median(on_ledger.clone()),
        on_ledger.iter().min().copied().unwrap_or_default(),
        on_ledger.iter().max().copied().unwrap_or_default(),
        median(withdrawals.clone()),
        withdrawals.iter().min().copied().unwrap_or_default(),
        withdrawals.iter().max().copied().unwrap_or_default(),
    );
    devnet.stop().await;
    Ok(())
}
