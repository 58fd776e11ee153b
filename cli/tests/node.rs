//! `wisp chain create` and `wisp node` against a Kaspa node that Wisp does not run: a simnet
//! kaspad (in this test process, reached only over its wRPC endpoint) and the real `wisp`
//! binary as a separate process. The node is then killed with SIGKILL at 20 random moments
//! while requests and a withdrawal are in flight and restarted each time: no committed block is
//! lost, the withdrawal is paid exactly once, and the books balance against kaspad at the end.

use jsonrpsee::rpc_params;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wisp_cli::client::{CallOptions, Client};
use wisp_cli::keystore::Keystore;
use wisp_l1::{L1Client, Prefix, SimnetConfig, SimnetNode, Wallet};

const KAS: u64 = 100_000_000;
const MATURITY: u64 = 10;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `wisp node`: kaspad's URL and the block interval come from `<data>/wisp.toml`
/// (written by the test), the port from the flag, which overrides `WISP_PORT` and the file.
fn start_node(home: &std::path::Path, data: &std::path::Path, _l1: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .env("WISP_HOME", home)
        .env("WISP_PORT", "2")
        .env_remove("WISP_L1")
        .env_remove("WISP_BLOCK_INTERVAL")
        .args([
            "node",
            "--data-dir",
            data.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn ready(client: &Client) -> Value {
    for _ in 0..300 {
        if let Ok(info) = client.rpc("wisp_chainInfo", rpc_params![]).await {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the node did not come up");
}

/// A small deterministic random source (the kill moments), seeded so a failure reproduces.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_an_external_kaspad_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let data = dir.path().join("node");
    let kaspad = SimnetNode::start(&SimnetConfig {
        app_dir: dir.path().join("kaspad"),
        rpc_port: 0,
        p2p_port: 0,
        coinbase_maturity: MATURITY,
    })
    .unwrap();
    let l1_url = kaspad.rpc_url();
    let l1 = L1Client::connect(&l1_url, Duration::from_secs(20))
        .await
        .unwrap();

    // An operator account with mined L1 coins.
    std::fs::create_dir_all(&home).unwrap();
    let mut store = Keystore::load(&home.join("accounts.json")).unwrap();
    let op = store.create("op").unwrap().keypair().unwrap();
    store.save().unwrap();
    let operator = Wallet::new(op, Prefix::Simnet);
    for _ in 0..MATURITY + 10 {
        l1.mine_block(&operator.address()).await.unwrap();
    }
    // Kaspa keeps making blocks, as a network does.
    let miner_url = l1_url.clone();
    let miner_address = operator.address();
    let (stop_mining, mut stopped) = tokio::sync::watch::channel(false);
    let miner = tokio::spawn(async move {
        let l1 = L1Client::connect(&miner_url, Duration::from_secs(20))
            .await
            .unwrap();
        loop {
            tokio::select! {
                _ = stopped.changed() => break,
                _ = tokio::time::sleep(Duration::from_millis(40)) => {
                    let _ = l1.mine_block(&miner_address).await;
                }
            }
        }
        l1.disconnect().await;
    });

    // `wisp chain create`: the chain is born on Kaspa.
    let out = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .env("WISP_HOME", &home)
        .args([
            "--json",
            "chain",
            "create",
            "--l1",
            &l1_url,
            "--data-dir",
            data.to_str().unwrap(),
            "--name",
            "ops",
            "--from",
            "op",
            "--coinbase-maturity",
            &MATURITY.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    // A second create into the same directory is refused.
    let again = Command::new(env!("CARGO_BIN_EXE_wisp"))
        .env("WISP_HOME", &home)
        .args([
            "chain",
            "create",
            "--l1",
            &l1_url,
            "--data-dir",
            data.to_str().unwrap(),
            "--from",
            "op",
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a chain"));

    // Layered settings: the file gives kaspad's URL, the interval and a port that the
    // environment (WISP_PORT) and then the flag override.
    std::fs::write(
        data.join("wisp.toml"),
        format!("l1 = \"{l1_url}\"\nport = 1\nblock_interval = \"50ms\"\n"),
    )
    .unwrap();
    let port = free_port();
    let rpc = format!("http://127.0.0.1:{port}");
    let client = Client::new(&rpc).unwrap();
    let mut node = start_node(&home, &data, &l1_url, port);
    let info = ready(&client).await;
    assert_eq!(info["chainId"], created["chainId"]);
    assert_eq!(info["devnet"], json!(false));

    // Deposit 50 KAS on the lane to the chain's deposit address.
    let deposit_address =
        kaspa_addresses::Address::try_from(info["depositAddress"].as_str().unwrap()).unwrap();
    let params = wisp_l1::simnet_params(MATURITY);
    let payload = wisp_core::LanePayload {
        requests: vec![],
        beneficiary: None,
    }
    .encode();
    operator
        .send(
            &l1,
            &params,
            kaspa_consensus_core::subnets::SubnetworkId::from(wisp_core::LANE_ID),
            payload,
            &[(
                kaspa_txscript::pay_to_address_script(&deposit_address),
                50 * KAS,
            )],
        )
        .await
        .unwrap();
    let op_agent = operator.address().to_string();
    for _ in 0..200 {
        let b = client
            .rpc("wisp_getBalance", rpc_params![op_agent.clone()])
            .await
            .unwrap();
        if b.as_str().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A withdrawal, then 20 SIGKILLs at random moments while requests keep coming.
    let payee = wisp_l1::address_of(&[66; 32], Prefix::Simnet);
    let w = client
        .call(
            &op,
            "accounts",
            "withdraw",
            &json!([payee.to_string(), (2 * KAS).to_string()]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(w["status"], json!("success"), "{w}");
    let mut rng = Lcg(0x5eed);
    let mut kept: Vec<(u64, String)> = Vec::new();
    for round in 0..20 {
        let _ = client
            .call(
                &op,
                "accounts",
                "transfer",
                &json!([payee.to_string(), "1"]),
                &CallOptions::default(),
            )
            .await;
        let head = client
            .rpc("wisp_getBlock", rpc_params!["latest"])
            .await
            .unwrap();
        kept.push((
            head["index"].as_u64().unwrap(),
            head["stateRoot"].as_str().unwrap().to_string(),
        ));
        tokio::time::sleep(Duration::from_millis(rng.below(200))).await;
        node.kill().unwrap();
        node.wait().unwrap();
        node = start_node(&home, &data, &l1_url, port);
        ready(&client).await;
        // Nothing committed before the kill is lost or changed.
        for (index, root) in &kept {
            let b = client
                .rpc("wisp_getBlock", rpc_params![*index])
                .await
                .unwrap();
            assert_eq!(
                b["stateRoot"].as_str().unwrap(),
                root,
                "round {round}, block {index}"
            );
        }
    }

    // Let anchoring settle: the withdrawal is paid exactly once, and the books balance.
    let mut settled = Value::Null;
    for _ in 0..400 {
        let ws = client
            .rpc("wisp_getWithdrawals", rpc_params![0u64, 10u32])
            .await
            .unwrap();
        let info = client.rpc("wisp_chainInfo", rpc_params![]).await.unwrap();
        if ws[0]["status"] == "paid" && info["anchor"]["inFlight"].is_null() {
            settled = info;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !settled.is_null(),
        "the withdrawal was paid and the anchor settled"
    );
    let paid = l1.spendable_utxos(&payee, 0).await.unwrap();
    assert_eq!(paid.len(), 1, "paid exactly once");
    assert_eq!(paid[0].1.amount, 2 * KAS);

    // The books, at one moment (Kaspa stops making blocks, so nothing more is accepted):
    // anchor + unswept deposits (kaspad) = the chain's total + fees paid but not yet spent +
    // the anchor's genesis value (1 KAS).
    let _ = stop_mining.send(true);
    miner.await.unwrap();
    let info = client.rpc("wisp_chainInfo", rpc_params![]).await.unwrap();
    let anchor = &info["anchor"];
    let sompi = |v: &Value| -> u64 {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not sompi: {v}"))
    };
    let value = sompi(&anchor["valueSompi"]);
    let spent = sompi(&anchor["feesSpentSompi"]);
    let anchor_utxos = l1.spendable_utxos(&deposit_address, 0).await.unwrap();
    let unswept: u64 = anchor_utxos.iter().map(|(_, e)| e.amount).sum();
    let view = |name: &'static str| {
        let client = &client;
        async move {
            sompi(
                &client
                    .rpc("wisp_callView", rpc_params!["accounts", name, json!([])])
                    .await
                    .unwrap()["value"],
            )
        }
    };
    // The anchor value the node reports is the value of the anchor UTXO kaspad holds.
    let hex32 =
        |v: &Value| -> [u8; 32] { wisp_core::Hash32::from_hex(v.as_str().unwrap()).unwrap().0 };
    let rules = wisp_settlement::AnchorRules {
        committee_key: hex32(&anchor["committeeKey"]),
        max_fee_sompi: sompi(&anchor["maxFeeSompi"]),
    };
    let state = wisp_settlement::AnchorState {
        block_index: anchor["anchoredBlock"].as_u64().unwrap(),
        header_hash: hex32(&anchor["anchoredHeaderHash"]),
        outbox: hex32(&anchor["outbox"]),
    };
    let on_l1 = l1
        .spendable_utxos(&rules.address(&state, Prefix::Simnet).unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(on_l1.len(), 1);
    assert_eq!(on_l1[0].1.amount, value);
    assert!(state.block_index > 0);
    let total = view("total").await;
    let fees = view("anchor_fees").await;
    assert_eq!(
        value + unswept,
        total + fees - spent + KAS,
        "anchor + unswept = owed"
    );

    // Prometheus metrics on the RPC port, behind the same loopback guards.
    let get = |origin: Option<&str>| {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{origin}Connection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    let metrics = get(None);
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    let anchored = anchor["anchoredBlock"].as_u64().unwrap();
    assert!(
        metrics.contains(&format!("wisp_anchored_block {anchored}")),
        "{metrics}"
    );
    for name in [
        "wisp_head_block",
        "wisp_blocks_total",
        "wisp_requests_total",
        "wisp_gas_total",
        "wisp_mempool_requests",
        "wisp_l1_lag_daa",
        "wisp_anchor_age_blocks",
        "wisp_anchor_fees_unspent_sompi",
    ] {
        assert!(metrics.contains(name), "{name} in {metrics}");
    }
    assert!(get(Some("https://evil.example")).starts_with("HTTP/1.1 403"));
    node.kill().unwrap();
    node.wait().unwrap();
    l1.disconnect().await;
    tokio::task::spawn_blocking(move || kaspad.shutdown())
        .await
        .unwrap();
}
