//! `wisp account new | list | balance`: local keys and on-chain balances.

use super::*;
use crate::AccountCommand;
use anyhow::Result;
use serde_json::{json, Value};
use wisp_api::WispApiClient;
use wisp_cli::client::Client;

/// `wisp account new | list | balance`.
pub(crate) async fn run(cmd: AccountCommand, ctx: &Ctx) -> Result<()> {
    let (rpc, json_mode) = (ctx.rpc.as_str(), ctx.json);
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
