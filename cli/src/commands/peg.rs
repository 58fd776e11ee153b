//! `wisp deposit`, `withdraw`, `withdrawals`: moving KAS into and out of a chain.

use super::*;
use crate::TxArgs;
use anyhow::{anyhow, Result};
use serde_json::json;
use wisp_api::WispApiClient;
use wisp_cli::client::{CallOptions, Client, DEFAULT_GAS_BUDGET};

/// `wisp deposit`: pegs L1 coins into the chain and waits for the receipt.
pub(crate) async fn deposit(
    amount_sompi: u64,
    from: String,
    to: Option<String>,
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let beneficiary = match to {
        Some(to) => {
            let text = agent_text(&to);
            let agents = wisp_cli::client::LocalAgents {
                prefix: client.prefix().await?,
            };
            Some(
                wisp_core::json::AgentFormat::parse(&agents, &text)
                    .ok_or_else(|| anyhow!("`{to}` is not an account, address or contract"))?,
            )
        }
        None => None,
    };
    let receipt = client
        .deposit(&signer(&from)?, amount_sompi, beneficiary)
        .await?;
    print(ctx.json, &receipt, print_receipt);
    exit_if_failed(&receipt);
    Ok(())
}

/// `wisp withdraw`: pegs out to a Kaspa address through the outbox.
pub(crate) async fn withdraw(to: String, amount_sompi: u64, tx: TxArgs, ctx: &Ctx) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    // A withdrawal attaches nothing to the call: the amount is its argument.
    let options = CallOptions {
        transfer_sompi: 0,
        ..tx.options(DEFAULT_GAS_BUDGET)
    };
    let args = json!([agent_text(&to), amount_sompi.to_string()]);
    let receipt = client
        .call(&signer(&tx.from)?, "accounts", "withdraw", &args, &options)
        .await?;
    print(ctx.json, &receipt, print_receipt);
    exit_if_failed(&receipt);
    if !ctx.json {
        println!("queued; `wisp withdrawals` shows when an anchor transaction pays it on Kaspa");
    }
    Ok(())
}

/// `wisp withdrawals`: the outbox, with each entry's status and paying transaction.
pub(crate) async fn withdrawals(from: u64, limit: u32, ctx: &Ctx) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let withdrawals = client
        .typed(
            "wisp_getWithdrawals",
            client.api().get_withdrawals(Some(from), Some(limit)),
        )
        .await?;
    print(ctx.json, &serde_json::to_value(withdrawals)?, |v| {
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
