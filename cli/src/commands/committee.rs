//! `wisp committee init | join | dkg | status`: setting up a node as a member of a chain's
//! committee (`wisp_node::committee`).

use super::*;
use anyhow::{anyhow, Result};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use wisp_node::committee::{self, MemberCard};

/// `wisp committee init`.
pub(crate) fn init(data_dir: PathBuf, listen: SocketAddr, ctx: &Ctx) -> Result<()> {
    std::fs::create_dir_all(&data_dir)?;
    let card = committee::init(&data_dir, listen)?;
    let v = json!({ "card": card.word(), "key": card.key, "address": card.address.to_string() });
    print(ctx.json, &v, |v| {
        println!("member card: {}", v["card"].as_str().unwrap_or_default());
        println!(
            "give it to the other operators; then run `wisp committee join --data-dir {} --member CARD ...` with every member's card",
            data_dir.display()
        );
    });
    Ok(())
}

/// `wisp committee join`.
pub(crate) fn join(data_dir: PathBuf, members: Vec<String>, ctx: &Ctx) -> Result<()> {
    let cards = members
        .iter()
        .map(|word| MemberCard::parse(word))
        .collect::<Result<Vec<_>, _>>()?;
    let file = committee::join(&data_dir, cards)?;
    let v = serde_json::to_value(&file)?;
    print(ctx.json, &v, |_| {
        println!(
            "joined a committee of {} members; next, with every member at the same time: `wisp committee dkg --data-dir {}`",
            file.members.len(),
            data_dir.display()
        );
    });
    Ok(())
}

/// `wisp committee dkg`.
pub(crate) async fn dkg(data_dir: PathBuf, timeout: &str, ctx: &Ctx) -> Result<()> {
    let timeout =
        parse_duration(timeout)?.ok_or_else(|| anyhow!("--timeout must be more than 0"))?;
    let result = tokio::task::spawn_blocking(move || {
        committee::run_dkg(&data_dir, timeout, |m| eprintln!("  {m}"))
    })
    .await??;
    let v = serde_json::to_value(&result)?;
    print(ctx.json, &v, |_| {
        println!("certificate key: {}", result.certificate_key);
        println!("anchor key:      {}", result.anchor_key);
    });
    Ok(())
}

/// `wisp committee status`.
pub(crate) fn status(data_dir: PathBuf, ctx: &Ctx) -> Result<()> {
    let status = committee::status(&data_dir)?;
    let v = serde_json::to_value(&status)?;
    print(ctx.json, &v, |_| {
        println!(
            "member:   {}",
            status.me.as_deref().unwrap_or("(no member key)")
        );
        match &status.committee {
            Some(c) => {
                println!("committee: {} members", c.members.len());
                for m in &c.members {
                    println!("  {}", m.word());
                }
                if let (Some(cert), Some(anchor)) = (&c.certificate_key, &c.anchor_key) {
                    println!("certificate key: {cert}");
                    println!("anchor key:      {anchor}");
                }
            }
            None => println!("committee: (none joined)"),
        }
        println!(
            "keys:     {}",
            if status.keys_ready {
                "made"
            } else {
                "not made"
            }
        );
        println!(
            "chain:    {}",
            if status.chain {
                "node.json present"
            } else {
                "none"
            }
        );
        println!("next:     {}", status.next);
        if let Some(args) = &status.rotation_args {
            println!(
                "rotation: the owner of a chain moves it to this committee with\n  wisp call governance rotate_committee '{args}'"
            );
        }
    });
    Ok(())
}
