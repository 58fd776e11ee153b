//! `wisp build`, `deploy`, `call`, `view`: contracts.

use super::*;
use crate::{TxArgs, DEPLOY_GAS_BUDGET};
use anyhow::{anyhow, Context, Result};
use serde_json::json;
use std::path::PathBuf;
use wisp_cli::client::{Client, DEFAULT_GAS_BUDGET};

/// `wisp build`: compiles a contract crate and checks the module is deployable.
pub(crate) async fn build(
    crate_dir: PathBuf,
    out: Option<PathBuf>,
    stack_bytes: Option<u32>,
    ctx: &Ctx,
) -> Result<()> {
    let options = wisp_build::BuildOptions {
        stack_bytes,
        ..wisp_build::BuildOptions::default()
    };
    let path = wisp_build::build_contract(&crate_dir, &options)?;
    let path = match out {
        Some(out) => {
            std::fs::copy(&path, &out).with_context(|| format!("copying to {}", out.display()))?;
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
    print(ctx.json, &v, |v| {
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

/// `wisp bindings ts`: TypeScript bindings of a contract's interface, from a module (or a
/// crate, built first) or from a deployed contract on the node.
pub(crate) async fn bindings_ts(
    source: Option<PathBuf>,
    contract: Option<String>,
    name: Option<String>,
    out: Option<PathBuf>,
    import: String,
    ctx: &Ctx,
) -> Result<()> {
    let (interface, default_name) = match (source, contract) {
        (Some(path), None) => {
            let bytes = load_code(&path)?;
            let validated = wisp_vm::validate(&bytes, &wisp_vm::ValidationLimits::default())
                .map_err(|e| anyhow!("{} is not a deployable module: {e}", path.display()))?;
            let interface = validated.interface().cloned().ok_or_else(|| {
                anyhow!(
                    "{} has no embedded interface (build it with the Wisp SDK's #[contract])",
                    path.display()
                )
            })?;
            let name = interface.name.clone();
            (interface, name)
        }
        (None, Some(contract)) => {
            let interface = Client::new(&ctx.rpc)?
                .interface(&contract)
                .await?
                .ok_or_else(|| anyhow!("contract `{contract}` has no interface on the node"))?;
            (interface, contract)
        }
        _ => bail!("name a module or crate directory, or a deployed contract with --contract"),
    };
    let name = name.unwrap_or(default_name);
    let ts = wisp_cli::bindings::typescript(&interface, &name, &import);
    match out {
        Some(out) => {
            std::fs::write(&out, &ts).with_context(|| format!("writing {}", out.display()))?;
            let v =
                json!({ "path": out.display().to_string(), "contract": name, "bytes": ts.len() });
            print(ctx.json, &v, |_| {
                eprintln!(
                    "wrote {} (bindings of `{}` deployed as `{name}`)",
                    out.display(),
                    interface.name
                )
            });
        }
        None => print!("{ts}"),
    }
    Ok(())
}

/// `wisp deploy`: deploys a module (or a crate, built first) and runs its `init`.
pub(crate) async fn deploy(
    code: PathBuf,
    name: String,
    init: String,
    tx: TxArgs,
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let bytes = load_code(&code)?;
    let options = tx.options(DEPLOY_GAS_BUDGET);
    let receipt = client
        .deploy(
            &signer(&tx.from)?,
            &name,
            &bytes,
            &resolve_names(parse_json(&init)?),
            &options,
        )
        .await?;
    print(ctx.json, &receipt, |r| {
        print_receipt(r);
        if r["status"] == "success" {
            println!("deployed `{name}` (hname {})", wisp_core::Hname::of(&name));
        }
    });
    exit_if_failed(&receipt);
    Ok(())
}

/// `wisp upgrade`: replaces a contract's code and runs its migration; prints the receipt.
pub(crate) async fn upgrade(
    contract: String,
    code: PathBuf,
    migrate: String,
    tx: TxArgs,
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let bytes = load_code(&code)?;
    let options = tx.options(DEPLOY_GAS_BUDGET);
    let receipt = client
        .upgrade(
            &signer(&tx.from)?,
            &contract,
            &bytes,
            &resolve_names(parse_json(&migrate)?),
            &options,
        )
        .await?;
    print(ctx.json, &receipt, |r| {
        print_receipt(r);
        if r["status"] == "success" {
            println!(
                "upgraded `{contract}` to code {}",
                wisp_core::hash::to_hex(&wisp_core::blake2b_256(&bytes).0)
            );
        }
    });
    exit_if_failed(&receipt);
    Ok(())
}

/// `wisp call`: signs and sends a call (or `--estimate`s it); prints the receipt.
pub(crate) async fn call(
    contract: String,
    function: String,
    args: String,
    tx: TxArgs,
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let options = tx.options(DEFAULT_GAS_BUDGET);
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
    print(ctx.json, &receipt, print_receipt);
    exit_if_failed(&receipt);
    Ok(())
}

/// `wisp view`: calls a read-only view.
pub(crate) async fn view(
    contract: String,
    function: String,
    args: String,
    ctx: &Ctx,
) -> Result<()> {
    let client = Client::new(&ctx.rpc)?;
    let v = client
        .view(&contract, &function, &resolve_names(parse_json(&args)?))
        .await?;
    print(ctx.json, &v, |v| {
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
