//! `wisp receipt`, `block`, `events`, `contracts`, `proof`: reading the chain.

use super::*;
use anyhow::{anyhow, bail, Result};
use serde_json::json;
use wisp_api::WispApiClient;
use wisp_cli::client::Client;

/// `wisp receipt`: a request's receipt.
pub(crate) async fn receipt(request_id: String, ctx: &Ctx) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let id = wisp_core::Hash32::from_hex(&request_id)
        .ok_or_else(|| anyhow!("`{request_id}` is not a request id (32 bytes of hex)"))?;
    let Some(receipt) = client
        .typed("wisp_getReceipt", client.api().get_receipt(id.into()))
        .await?
    else {
        if let Some(due) = client.time_locked(&id).await? {
            bail!("no receipt for {request_id} yet: it waits in the chain's time-lock queue until {due}");
        }
        bail!("no receipt for {request_id} (not executed yet, or unknown)");
    };
    print(ctx.json, &serde_json::to_value(receipt)?, print_receipt);
    Ok(())
}

/// `wisp block`: a block with its receipts (default: the head).
pub(crate) async fn block(index: Option<u64>, ctx: &Ctx) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
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
    print(ctx.json, &serde_json::to_value(block)?, |b| {
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

/// `wisp events`: events of a block range, optionally of one contract and topic.
pub(crate) async fn events(
    contract: Option<String>,
    topic: Option<String>,
    indexed: Option<String>,
    (from_block, to_block): (Option<u64>, Option<u64>),
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let indexed = match indexed {
        None => None,
        Some(text) => {
            let (field, value) = text
                .split_once('=')
                .ok_or_else(|| anyhow!("--where takes FIELD=VALUE, e.g. to=dev1"))?;
            // An account name becomes its address; otherwise JSON, else the text itself.
            let named = agent_text(value);
            let value = if named != value {
                json!(named)
            } else {
                serde_json::from_str(value).unwrap_or_else(|_| json!(value))
            };
            Some((field.to_string(), value))
        }
    };
    let events = client
        .typed(
            "wisp_getEvents",
            client
                .api()
                .get_events(from_block, to_block, contract, topic, indexed),
        )
        .await?;
    print(ctx.json, &serde_json::to_value(events)?, |v| {
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

/// `wisp contracts`: the chain's contracts.
pub(crate) async fn contracts(ctx: &Ctx) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let contracts = client
        .typed("wisp_listContracts", client.api().list_contracts())
        .await?;
    print(ctx.json, &serde_json::to_value(contracts)?, |v| {
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

/// `wisp proof`: a value (or its absence) with its Merkle proof; `--verify` checks it locally
/// and against the anchor on Kaspa.
pub(crate) async fn proof(
    kind: String,
    subject: String,
    key: Option<String>,
    block: Option<u64>,
    verify: bool,
    ctx: &Ctx,
) -> Result<()> {
    if kind == "event" {
        return event_proof(subject, key, verify, ctx).await;
    }
    let client = Client::new(&ctx.rpc)?;
    let subject_value = match kind.as_str() {
        "balance" | "nonce" => json!(agent_text(&subject)),
        "contract" => json!([
            subject,
            key.clone()
                .ok_or_else(|| anyhow!("`proof contract` needs a 0x-hex key"))?
        ]),
        other => bail!("unknown proof kind `{other}`: use balance, nonce, contract or event"),
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
    print(ctx.json, &out, |p| {
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

/// `wisp proof event <request-id> <index> [--verify]`: an event with a Merkle proof to its
/// block's events root.
async fn event_proof(
    request_id: String,
    index: Option<String>,
    verify: bool,
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let id = wisp_core::Hash32::from_hex(&request_id)
        .ok_or_else(|| anyhow!("`{request_id}` is not a request id (32 bytes of hex)"))?;
    let index: u32 = index
        .as_deref()
        .unwrap_or("0")
        .parse()
        .map_err(|_| anyhow!("the event index is a number from 0"))?;
    let answer = client
        .typed(
            "wisp_getEventProof",
            client.api().get_event_proof(id.into(), index),
        )
        .await?
        .ok_or_else(|| {
            anyhow!("request {request_id} has no event {index} (not executed yet, failed, or fewer events; `wisp receipt {request_id}` shows them)")
        })?;
    let mut anchored = None;
    if verify {
        let (_, header) = wisp_cli::client::verify_event_proof(&answer)?;
        let anchored_now = client
            .chain_info()
            .await?
            .anchor
            .anchored_block
            .filter(|b| *b > 0);
        if anchored_now.is_some_and(|a| header.index <= a) {
            anchored = Some(client.anchored_on_kaspa(&header).await?);
        }
    }
    let mut out = serde_json::to_value(&answer)?;
    out["verified"] = json!(verify);
    out["anchoredBlock"] = json!(anchored);
    print(ctx.json, &out, |p| {
        println!(
            "event {index} of request {request_id}: {} {} in block {}",
            p["event"]["contract"].as_str().unwrap_or(""),
            p["event"]["topic"].as_str().unwrap_or(""),
            p["blockIndex"]
        );
        if !p["event"]["fields"].is_null() {
            println!("  fields {}", p["event"]["fields"]);
        }
        println!("  events root {}", p["eventsRoot"].as_str().unwrap_or(""));
        match anchored {
            Some(anchored) => println!("✓ verified: the proof leads to the block's events root, and the block is anchored on Kaspa (kaspad holds this chain's anchor committing block {anchored})"),
            None if verify => println!("✓ verified locally against the node's header only: the block is not anchored on Kaspa yet"),
            None => {}
        }
    });
    Ok(())
}

/// `wisp requests --sender A | --contract C [--before ID] [--limit N]`.
pub(crate) async fn requests(
    sender: Option<String>,
    contract: Option<String>,
    before: Option<String>,
    limit: u32,
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let before = before
        .map(|b| {
            wisp_core::Hash32::from_hex(&b)
                .map(Into::into)
                .ok_or_else(|| anyhow!("`{b}` is not a request id (32 bytes of hex)"))
        })
        .transpose()?;
    let found = client
        .typed(
            "wisp_getRequests",
            client.api().get_requests(
                sender.as_deref().map(agent_text),
                contract,
                before,
                Some(limit),
            ),
        )
        .await?;
    print(ctx.json, &serde_json::to_value(found)?, |v| {
        for r in v.as_array().into_iter().flatten() {
            let call = &r["call"];
            let what = if call.is_null() {
                "deposit".to_string()
            } else {
                format!(
                    "{}.{}({})",
                    call["contract"].as_str().unwrap_or("?"),
                    call["function"].as_str().unwrap_or("?"),
                    if call["args"].is_null() {
                        call["argsRaw"].to_string()
                    } else {
                        call["args"].to_string()
                    }
                )
            };
            println!(
                "block {} #{} {} {} from {}: {what}",
                r["blockIndex"],
                r["requestIndex"],
                r["requestId"].as_str().unwrap_or(""),
                r["kind"].as_str().unwrap_or(""),
                r["sender"].as_str().unwrap_or("")
            );
        }
    });
    Ok(())
}
