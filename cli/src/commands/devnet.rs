//! `wisp devnet`: the local devnet, and its scripted demo.

/// `wisp devnet` in a build without the in-process simnet (`--no-default-features`).
#[cfg(not(feature = "devnet"))]
pub(crate) async fn run(_args: crate::DevnetArgs, _ctx: &super::Ctx) -> anyhow::Result<()> {
    anyhow::bail!("this wisp was built without the devnet (cargo feature `devnet`, which brings kaspad and RocksDB); run `wisp node` against a kaspad, or build with default features")
}

#[cfg(feature = "devnet")]
pub(crate) use with_simnet::run;

/// The devnet proper: only in builds with the in-process simnet.
#[cfg(feature = "devnet")]
mod with_simnet {
    use super::super::*;
    use crate::DevnetArgs;
    use anyhow::Result;
    use serde_json::{json, Value};
    use std::net::SocketAddr;
    use std::path::Path;
    use wisp_cli::client::{CallOptions, Client};
    use wisp_cli::keystore::{wisp_home, Keystore};
    use wisp_node::devnet::{Devnet, DevnetConfig};

    pub(crate) async fn run(args: DevnetArgs, ctx: &Ctx) -> Result<()> {
        let json_mode = ctx.json;
        let data_dir = args.data_dir.unwrap_or_else(|| wisp_home().join("devnet"));
        let rpc_addr: SocketAddr = format!("127.0.0.1:{}", args.port).parse()?;
        eprintln!("wisp devnet: starting (data in {})", data_dir.display());
        let devnet = Devnet::start(DevnetConfig {
            data_dir: data_dir.clone(),
            fresh: args.fresh,
            block_time: parse_duration(&args.block_time)?,
            rpc_addr,
            accounts: args.accounts,
            cors: args.cors.clone(),
            progress: |line| eprintln!("  {line}"),
        })
        .await?;
        // The dev accounts go into the keystore as dev0…, never over an account of the user's.
        let keystore_path = wisp_home().join("accounts.json");
        let kept = Keystore::load(&keystore_path)?.import_devnet_accounts(
            devnet
                .accounts()
                .iter()
                .map(|a| (a.name.clone(), a.secret_hex.clone())),
        )?;
        for name in kept {
            eprintln!(
                "  kept your own account `{name}` in {}; the devnet account of that name was not imported",
                keystore_path.display()
            );
        }
        let client = Client::new(&devnet.rpc_url())?;
        let info = client.chain_info().await?;
        let accounts: Vec<Value> = devnet
            .accounts()
            .iter()
            .map(|a| {
                let key = a.x_only_key().unwrap_or_default();
                json!({ "name": a.name, "address": wisp_l1::address_of(&key, wisp_l1::Prefix::Simnet).to_string(), "secretKey": a.secret_hex })
            })
            .collect();
        let explorer = format!("{}/explorer/", devnet.rpc_url());
        let summary = json!({ "rpc": devnet.rpc_url(), "ws": devnet.ws_url(), "explorer": explorer, "chain": info, "accounts": accounts, "dataDir": data_dir.display().to_string() });
        print(json_mode, &summary, |s| {
            println!();
            println!("Wisp devnet is running");
            println!(
                "  RPC        {} (WebSocket {})",
                s["rpc"].as_str().unwrap_or(""),
                s["ws"].as_str().unwrap_or("")
            );
            println!("  explorer   {}", s["explorer"].as_str().unwrap_or(""));
            println!(
                "  chain id   {}",
                s["chain"]["chainId"].as_str().unwrap_or("")
            );
            println!("  head       block {}", s["chain"]["head"]["index"]);
            println!(
                "  deposits   {}",
                s["chain"]["depositAddress"].as_str().unwrap_or("")
            );
            println!(
                "  Kaspa      simnet wRPC at {}",
                s["chain"]["l1RpcUrl"].as_str().unwrap_or("")
            );
            println!();
            println!(
                "Dev accounts — DEVNET ONLY, these keys are public; never send real funds to them:"
            );
            for a in s["accounts"].as_array().into_iter().flatten() {
                println!(
                    "  {:5} {}",
                    a["name"].as_str().unwrap_or(""),
                    a["address"].as_str().unwrap_or("")
                );
                println!(
                    "        secret key {}",
                    a["secretKey"].as_str().unwrap_or("")
                );
            }
            println!(
                "  (imported into {} as dev0…)",
                wisp_home().join("accounts.json").display()
            );
        });
        if args.demo {
            demo(&client).await?;
        }
        if !json_mode && !args.exit {
            println!();
            println!("Next steps (in another terminal; `wisp` is target/debug/wisp, or `cargo install --path cli`):");
            println!("  wisp deploy contracts/token --name token --init '[\"My Token\", \"MTK\", 18, \"1000000\"]'");
            println!("  wisp call token transfer '[\"dev1\", \"100\"]'");
            println!("  wisp view token balance_of '[\"dev1\"]'");
            println!("  wisp proof balance dev0 --verify");
            println!(
                "Press Ctrl-C to stop; `wisp devnet` again continues this chain (--fresh starts over)."
            );
        }
        if !args.exit {
            tokio::signal::ctrl_c().await?;
            eprintln!("stopping…");
        }
        devnet.stop().await;
        Ok(())
    }

    async fn demo(client: &Client) -> Result<()> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/token");
        println!();
        println!("Demo: build, deploy and use the example token");
        let code = load_code(&dir)?;
        let dev0 = signer("dev0")?;
        let dev1 = agent_text("dev1");
        let options = CallOptions {
            gas_budget: 50_000_000,
            ..Default::default()
        };
        let r = client
            .deploy(
                &dev0,
                "demo_token",
                &code,
                &json!(["Demo Token", "DMO", 18, "1000000"]),
                &options,
            )
            .await?;
        println!("$ wisp deploy contracts/token --name demo_token --init '[\"Demo Token\", \"DMO\", 18, \"1000000\"]'");
        print_receipt(&r);
        println!("$ wisp call demo_token transfer '[\"dev1\", \"250\"]'");
        let r = client
            .call(
                &dev0,
                "demo_token",
                "transfer",
                &json!([dev1, "250"]),
                &CallOptions::default(),
            )
            .await?;
        print_receipt(&r);
        println!("$ wisp view demo_token balance_of '[\"dev1\"]'");
        let v = client
            .view("demo_token", "balance_of", &json!([dev1]))
            .await?;
        println!("{}", v["value"]);
        Ok(())
    }
}
