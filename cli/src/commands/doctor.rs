//! `wisp doctor`: versions, paths, toolchain, node and Kaspa reachability.

use super::*;
use anyhow::{bail, Result};
use serde_json::json;
use std::time::Duration;
use wisp_cli::client::Client;
use wisp_cli::keystore::wisp_home;

/// `wisp doctor`: what is installed and reachable.
pub(crate) async fn run(ctx: &Ctx) -> Result<()> {
    let (rpc, json_mode) = (ctx.rpc.as_str(), ctx.json);
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
