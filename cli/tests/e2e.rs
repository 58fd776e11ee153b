//! End to end: the real node and RPC server over a real in-process Kaspa simnet, driven like a
//! user would — two tokens and an AMM, requests on-ledger (Kaspa lane transactions) and
//! off-ledger (signed RPC), receipts, balances, events, fees, a proof verified client-side, bad
//! input answered with errors, a replay into a fresh node and a restart from the data directory.

use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use serde_json::{json, Value};
use std::time::Duration;
use wisp_cli::client::{verify_proof, CallOptions, Client};
use wisp_node::devnet::{Devnet, DevnetConfig, DEV_DEPOSIT_SOMPI};

mod common;
use common::contract_wasm;

const E18: u128 = 1_000_000_000_000_000_000;
const KAS: u64 = 100_000_000;

fn config(dir: &std::path::Path, fresh: bool) -> DevnetConfig {
    DevnetConfig {
        data_dir: dir.to_path_buf(),
        fresh,
        block_time: Some(Duration::from_millis(200)),
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        accounts: 3,
        cors: Vec::new(),
        progress: |_| {},
    }
}

fn ok(receipt: &Value) -> &Value {
    assert_eq!(receipt["status"], "success", "request failed: {receipt:#}");
    receipt
}

fn sompi(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a sompi string: {v}"))
}

/// A devnet directory whose chain has no `node.json` (made before the devnet shared `wisp
/// node`'s data directory) is refused with what to do, and nothing in it is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_devnet_directory_from_an_older_wisp_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("chain")).unwrap();
    std::fs::write(dir.path().join("devnet.json"), "{}").unwrap();
    let err = Devnet::start(config(dir.path(), false))
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("restart with --fresh"), "{err}");
    assert_eq!(
        std::fs::read(dir.path().join("devnet.json")).unwrap(),
        b"{}"
    );
    assert!(!dir.path().join("kaspad").exists(), "no simnet was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_amm_on_and_off_ledger_proofs_replay_and_restart() {
    let token_wasm = contract_wasm("token");
    let amm_wasm = contract_wasm("amm");
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("devnet");
    let devnet = Devnet::start(config(&data_dir, true)).await.unwrap();
    let client = Client::new(&devnet.rpc_url()).unwrap();
    let dev0 = devnet.accounts()[0].keypair().unwrap();
    let dev1 = devnet.accounts()[1].keypair().unwrap();
    let addr = |k: &secp256k1::Keypair| {
        wisp_l1::address_of(
            &k.x_only_public_key().0.serialize(),
            wisp_l1::Prefix::Simnet,
        )
        .to_string()
    };
    let (a0, a1) = (addr(&dev0), addr(&dev1));
    assert_eq!(
        sompi(
            &client
                .rpc("wisp_getBalance", rpc_params![a1.clone()])
                .await
                .unwrap()
        ),
        DEV_DEPOSIT_SOMPI
    );

    // The chain's coins are in Kaspa's custody, not a node key's: the chain has an anchor (a
    // covenant UTXO), and the dev deposits sit at the deposit script, which only a transaction
    // spending that anchor can spend (docs/anchor.md). Read from kaspad itself.
    let info = client.rpc("wisp_chainInfo", rpc_params![]).await.unwrap();
    // A chain run by one operator has no committee blocks for access nodes to follow.
    let none = client
        .rpc("wisp_getCommitteeBlocks", rpc_params![1])
        .await
        .unwrap_err();
    assert!(none.to_string().contains("no committee"), "{none}");
    let anchor = devnet.node().anchor().clone();
    assert_eq!(
        info["anchor"]["covenantId"],
        json!(format!("0x{}", anchor.covenant_id()))
    );
    // Born on L1: the chain id is the anchor's covenant id.
    assert_eq!(info["chainId"], info["anchor"]["covenantId"]);
    let deposit_address =
        wisp_settlement::deposit::address(&anchor.covenant_id(), wisp_l1::Prefix::Simnet).unwrap();
    assert_eq!(info["depositAddress"], json!(deposit_address.to_string()));
    assert_eq!(
        deposit_address.version,
        kaspa_addresses::Version::ScriptHash
    );
    let l1 = devnet.node().l1();
    let held: u64 = l1
        .spendable_utxos(&deposit_address, 0)
        .await
        .unwrap()
        .iter()
        .map(|(_, e)| e.amount)
        .sum();
    assert_eq!(held, DEV_DEPOSIT_SOMPI * devnet.accounts().len() as u64);
    let anchor_address = anchor
        .rules
        .address(
            &wisp_settlement::AnchorState::genesis(anchor.committee_key),
            wisp_l1::Prefix::Simnet,
        )
        .unwrap();
    let anchors = l1.spendable_utxos(&anchor_address, 0).await.unwrap();
    assert_eq!(anchors.len(), 1);
    assert_eq!(anchors[0].0, anchor.genesis.outpoint);
    assert_eq!(anchors[0].1.covenant_id, Some(anchor.covenant_id()));
    assert_eq!(
        anchors[0].1.amount,
        wisp_node::datadir::ANCHOR_GENESIS_SOMPI
    );

    // Blocks are announced over WebSocket.
    let ws = jsonrpsee::ws_client::WsClientBuilder::default()
        .build(&devnet.ws_url())
        .await
        .unwrap();
    let mut blocks = ws
        .subscribe::<Value, _>(
            "wisp_subscribeBlocks",
            rpc_params![],
            "wisp_unsubscribeBlocks",
        )
        .await
        .unwrap();
    let mut events = ws
        .subscribe::<Value, _>(
            "wisp_subscribeEvents",
            rpc_params![],
            "wisp_unsubscribeEvents",
        )
        .await
        .unwrap();

    // token_a off-ledger, token_b on-ledger (the whole module in a Kaspa lane transaction), amm off-ledger.
    let deploy = CallOptions {
        gas_budget: 50_000_000,
        ..Default::default()
    };
    let supply = (100_000 * E18).to_string();
    let r = client
        .deploy(
            &dev0,
            "token_a",
            &token_wasm,
            &json!(["Token A", "TKA", 18, supply]),
            &deploy,
        )
        .await
        .unwrap();
    ok(&r);
    let notified = tokio::time::timeout(Duration::from_secs(30), blocks.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(notified["index"].as_u64().unwrap() >= 1);
    let event = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(event["topic"], "Transfer");
    assert_eq!(event["contract"], "contract:token_a");
    assert_eq!(event["fields"]["amount"], json!(supply));
    let on_ledger_deploy = CallOptions {
        gas_budget: 50_000_000,
        on_ledger: true,
        ..Default::default()
    };
    let r = client
        .deploy(
            &dev0,
            "token_b",
            &token_wasm,
            &json!(["Token B", "TKB", 18, supply]),
            &on_ledger_deploy,
        )
        .await
        .unwrap();
    ok(&r);
    let r = client
        .deploy(
            &dev0,
            "amm",
            &amm_wasm,
            &json!(["token_a", "token_b"]),
            &deploy,
        )
        .await
        .unwrap();
    ok(&r);
    let contracts = client
        .rpc("wisp_listContracts", rpc_params![])
        .await
        .unwrap();
    let names: Vec<&str> = contracts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert!(names.ends_with(&["token_a", "token_b", "amm"]), "{names:?}");

    // Mint to dev1, approve the pair, add liquidity (off-ledger).
    let call = CallOptions::default();
    ok(&client
        .call(
            &dev0,
            "token_a",
            "mint",
            &json!([a1, (10 * E18).to_string()]),
            &call,
        )
        .await
        .unwrap());
    for token in ["token_a", "token_b"] {
        ok(&client
            .call(
                &dev0,
                token,
                "approve",
                &json!(["contract:amm", u128::MAX.to_string()]),
                &call,
            )
            .await
            .unwrap());
    }
    let r = client
        .call(
            &dev0,
            "amm",
            "add_liquidity",
            &json!([(5 * E18).to_string(), (10 * E18).to_string(), a0]),
            &call,
        )
        .await
        .unwrap();
    ok(&r);
    assert_eq!(
        r["returnValue"],
        json!("7071067811865474244"),
        "sqrt(5e18 × 10e18) − 1000"
    );
    let mint = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["topic"] == "Mint")
        .expect("Mint event");
    assert_eq!(mint["fields"]["amount0"], json!((5 * E18).to_string()));

    // dev1 approves on-ledger, paying from L1 coins and depositing 5 KAS more on chain.
    let before = sompi(
        &client
            .rpc("wisp_getBalance", rpc_params![a1.clone()])
            .await
            .unwrap(),
    );
    let on_ledger = CallOptions {
        on_ledger: true,
        deposit_sompi: 5 * 100_000_000,
        ..Default::default()
    };
    let r = client
        .call(
            &dev1,
            "token_a",
            "approve",
            &json!(["contract:amm", E18.to_string()]),
            &on_ledger,
        )
        .await
        .unwrap();
    ok(&r);
    let fee = sompi(&r["feeSompi"]);
    assert_eq!(fee, sompi(&r["gasUsed"]), "fee = gas used × gas price 1");
    // The allowance is a new entry of token_a's storage: its deposit shows in the receipt.
    let locked = sompi(&r["storageLockedSompi"]);
    assert!(locked > 0, "{r}");
    let after = sompi(
        &client
            .rpc("wisp_getBalance", rpc_params![a1.clone()])
            .await
            .unwrap(),
    );
    assert_eq!(after, before + 5 * 100_000_000 - fee - locked);

    // dev1 swaps 1e18 A into reserves (5e18, 10e18): Uniswap V2 gives 1662497915624478906 B.
    let r = client
        .call(
            &dev1,
            "amm",
            "swap_exact_in",
            &json!(["token_a", E18.to_string(), "0", a1]),
            &call,
        )
        .await
        .unwrap();
    ok(&r);
    assert_eq!(r["returnValue"], json!("1662497915624478906"));
    let topics: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["topic"].as_str())
        .collect();
    assert_eq!(topics, ["Transfer", "Transfer", "Swap"]);
    let swap_gas = sompi(&r["gasUsed"]);
    assert!(swap_gas > 100_000 && sompi(&r["feeSompi"]) == swap_gas);
    let b = client
        .view("token_b", "balance_of", &json!([a1]))
        .await
        .unwrap();
    assert_eq!(b["value"], json!("1662497915624478906"));
    let reserves = client
        .view("amm", "get_reserves", &json!([]))
        .await
        .unwrap();
    assert_eq!(
        reserves["value"],
        json!([
            (6 * E18).to_string(),
            (10 * E18 - 1_662_497_915_624_478_906).to_string()
        ])
    );
    let events = client
        .rpc(
            "wisp_getEvents",
            rpc_params![0u64, Option::<u64>::None, "amm"],
        )
        .await
        .unwrap();
    assert_eq!(
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["topic"] == "Swap")
            .count(),
        1
    );
    // By topic, from the node's event index: exactly the contract's events with that topic,
    // over a range no block-by-block query may cover.
    let swaps = client
        .rpc(
            "wisp_getEvents",
            rpc_params![0u64, 1_000_000u64, "amm", "Swap"],
        )
        .await
        .unwrap();
    let swaps = swaps.as_array().unwrap();
    assert_eq!(swaps.len(), 1);
    assert_eq!(swaps[0]["fields"]["to"], json!(a1));
    let all = events.as_array().unwrap();
    assert!(all.len() > 1 && all.iter().all(|e| e["contract"] == all[0]["contract"]));
    let err = client
        .rpc(
            "wisp_getEvents",
            rpc_params![0u64, Option::<u64>::None, Option::<String>::None, "Swap"],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a contract"), "{err}");

    // A failing call: a receipt with the contract's error name, the fee still charged.
    let r = client
        .call(
            &dev1,
            "token_b",
            "transfer",
            &json!([a0, (1000 * E18).to_string()]),
            &call,
        )
        .await
        .unwrap();
    assert_eq!(r["status"], "failed");
    assert_eq!(r["error"]["level"], "contract");
    assert_eq!(r["error"]["name"], "InsufficientBalance");
    assert!(sompi(&r["feeSompi"]) > 0);

    // Proofs, verified here: dev1's base-token balance and token_b's balance entry for dev1.
    let key = client
        .rpc("wisp_stateKey", rpc_params!["balance", a1.clone()])
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (proof, _) = client
        .verified_proof(&wisp_core::hash::from_hex(&key).unwrap(), None)
        .await
        .unwrap();
    let on_chain = sompi(
        &client
            .rpc("wisp_getBalance", rpc_params![a1.clone()])
            .await
            .unwrap(),
    );
    let value = proof.value.clone().unwrap().0;
    assert_eq!(u64::from_le_bytes(value.try_into().unwrap()), on_chain);
    let mut rel = b"balances\0".to_vec();
    rel.extend(
        borsh::to_vec(&wisp_core::AgentId::Address(
            dev1.x_only_public_key().0.serialize(),
        ))
        .unwrap(),
    );
    let key = client
        .rpc(
            "wisp_stateKey",
            rpc_params![
                "contract",
                json!(["token_b", format!("0x{}", wisp_core::hash::to_hex(&rel))])
            ],
        )
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (proof, _) = client
        .verified_proof(&wisp_core::hash::from_hex(&key).unwrap(), None)
        .await
        .unwrap();
    let value = proof.value.clone().unwrap().0;
    assert_eq!(
        u128::from_le_bytes(value.try_into().unwrap()),
        1_662_497_915_624_478_906
    );
    // A tampered proof is rejected.
    let mut forged = proof.clone();
    forged.value = Some(wisp_api::Bytes(u128::MAX.to_le_bytes().to_vec()));
    assert!(verify_proof(&forged).is_err());
    // Absence is provable too.
    let key = client
        .rpc(
            "wisp_stateKey",
            rpc_params![
                "balance",
                "addr:0000000000000000000000000000000000000000000000000000000000000001"
            ],
        )
        .await
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_string();
    let (proof, _) = client
        .verified_proof(&wisp_core::hash::from_hex(&key).unwrap(), None)
        .await
        .unwrap();
    assert!(proof.value.is_none());

    // Bad input over RPC is answered with errors, and the node keeps serving.
    let err = client
        .rpc("wisp_sendRequest", rpc_params!["0xdeadbeef"])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a signed request"), "{err}");
    let chain_id = wisp_core::ChainId(client.chain_info().await.unwrap().chain_id.0);
    let body = wisp_core::RequestBody {
        chain: chain_id,
        call: wisp_core::Call {
            target: wisp_core::Hname::of("token_a"),
            entry_point: wisp_core::Hname::of("transfer"),
            args: vec![],
            transfer_sompi: 0,
        },
        // The block's first use of the token's code pays its compilation (~1.4M gas).
        gas_budget: 5_000_000,
        access_list: None,
        time_lock: None,
    };
    let mut forged = wisp_chain::sign_request(body.clone(), &dev1, 0);
    forged.signature[0] ^= 1;
    let err = client
        .rpc(
            "wisp_sendRequest",
            rpc_params![format!(
                "0x{}",
                wisp_core::hash::to_hex(&borsh::to_vec(&forged).unwrap())
            )],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad_signature"), "{err}");
    let replay = wisp_chain::sign_request(body, &dev1, 0);
    let err = client
        .rpc(
            "wisp_sendRequest",
            rpc_params![format!(
                "0x{}",
                wisp_core::hash::to_hex(&borsh::to_vec(&replay).unwrap())
            )],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad_nonce"), "{err}");
    let err = client
        .view("nope", "x", &json!([]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no contract `nope`"), "{err}");
    let err = client
        .view("token_a", "balance_of", &json!([1, 2]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("args"), "{err}");

    // Replay: a fresh node given the same L1 history and blocks reaches the same roots.
    let head = devnet.node().chain().head().unwrap();
    let replica = wisp_chain::Chain::open(&dir.path().join("replica"), devnet.genesis()).unwrap();
    let replayed = devnet.node().replay_into(&replica).await.unwrap();
    assert!(replayed >= head.index);
    assert_eq!(
        replica.db().block(head.index).unwrap().state_root,
        head.state_root
    );

    // Hardening defect 27: `dev_*` was gated on "has a miner"; it is refused on a node that
    // is not a devnet (`NodeMode::Follower`): here the replica, following the same simnet.
    let follower_l1 = wisp_l1::L1Client::connect(devnet.node().l1().url(), Duration::from_secs(10))
        .await
        .unwrap();
    let custody = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[5; 32]).unwrap();
    let follower = wisp_node::Node::new(
        replica,
        "replica".into(),
        follower_l1,
        devnet.node().l1_params().clone(),
        devnet.node().prefix(),
        Some(wisp_l1::Wallet::new(custody, devnet.node().prefix())),
        devnet.node().anchor().clone(),
        wisp_node::NodeMode::Follower,
    )
    .unwrap();
    assert!(!follower.is_devnet());
    let (follower_rpc, follower_addr) =
        wisp_node::rpc::serve(follower, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
    let follower_client = Client::new(&format!("http://{follower_addr}")).unwrap();
    for method in ["dev_mine", "dev_snapshot"] {
        let err = follower_client
            .rpc(method, rpc_params![1])
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("only on a devnet"), "{method}: {err}");
    }
    let info = follower_client
        .rpc("wisp_chainInfo", rpc_params![])
        .await
        .unwrap();
    assert_eq!(info["devnet"], json!(false));
    let _ = follower_rpc.stop();

    // Restart from the data directory: same head, same root.
    let root_before = devnet.node().chain().head().unwrap();
    devnet.stop().await;
    let devnet = Devnet::start(config(&data_dir, false)).await.unwrap();
    let head_after = devnet.node().chain().db().block(root_before.index).unwrap();
    assert_eq!(head_after.state_root, root_before.state_root);
    assert_eq!(
        devnet.node().chain().head().unwrap().index,
        root_before.index,
        "nothing new to execute after a restart"
    );
    let client = Client::new(&devnet.rpc_url()).unwrap();
    let b = client
        .view("token_b", "balance_of", &json!([a1]))
        .await
        .unwrap();
    assert_eq!(b["value"], json!("1662497915624478906"));

    // Hardening defect 13: when an L1 reorg removed the Kaspa block a chain block referred to,
    // the chain block was undone and its off-ledger requests were lost. They go back to the
    // mempool and run again.
    let approve = client
        .call(
            &dev0,
            "token_b",
            "approve",
            &json!([a1, "12345"]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    ok(&approve);
    let id = approve["requestId"].as_str().unwrap().to_string();
    let executed = devnet.node().chain().head().unwrap();
    let reorged = devnet
        .node()
        .undo_l1_reorg(&[executed.l1_block.0])
        .unwrap()
        .expect("the head refers to the removed L1 block");
    assert_eq!(reorged.from, executed.index);
    assert!(reorged.to < executed.index);
    assert!(reorged.requeued >= 1, "{reorged:?}");
    let undone = client
        .rpc("wisp_getReceipt", rpc_params![id.clone()])
        .await
        .unwrap();
    assert_eq!(undone, Value::Null, "the undone block's receipt is gone");
    let mut again = Value::Null;
    for _ in 0..100 {
        devnet.node().mine(1).await.unwrap();
        again = client
            .rpc("wisp_getReceipt", rpc_params![id.clone()])
            .await
            .unwrap();
        if !again.is_null() {
            break;
        }
    }
    assert_eq!(again["status"], json!("success"), "re-executed: {again}");
    let allowance = client
        .view("token_b", "allowance", &json!([a0, a1]))
        .await
        .unwrap();
    assert_eq!(allowance["value"], json!("12345"));

    // Hardening defect 26: a block subscriber that fell behind the node's block feed (256
    // blocks) was dropped silently. It now gets an error notification saying so. The
    // subscriber here never reads, with room for one message, while 260 blocks are produced.
    let module = wisp_node::rpc::module(devnet.node().clone()).unwrap();
    let (subscribed, mut feed) = module
        .raw_json_request(
            r#"{"jsonrpc":"2.0","id":1,"method":"wisp_subscribeBlocks","params":[]}"#,
            1,
        )
        .await
        .unwrap();
    assert!(subscribed.get().contains("\"result\""), "{subscribed}");
    let node = devnet.node();
    let sender = wisp_core::AgentId::Address(dev0.x_only_public_key().0.serialize());
    for _ in 0..260 {
        let nonce = node.chain().nonce(&sender).unwrap();
        let request = wisp_chain::sign_request(
            wisp_core::RequestBody {
                chain: node.chain().chain_id(),
                call: wisp_core::Call {
                    target: wisp_core::Hname::of("accounts"),
                    entry_point: wisp_core::Hname::of("transfer"),
                    args: borsh::to_vec(&(sender, 1u64)).unwrap(),
                    transfer_sompi: 0,
                },
                gas_budget: 100_000,
                access_list: None,
                time_lock: None,
            },
            &dev0,
            nonce,
        );
        node.submit(request).unwrap();
        // One block per request: the devnet's own producer may take it first.
        node.produce_block().await.unwrap();
        while node.chain().nonce(&sender).unwrap() == nonce {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let mut notifications = Vec::new();
    while let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(10), feed.recv()).await {
        notifications.push(message.get().to_string());
    }
    let last = notifications.last().unwrap();
    assert!(
        last.contains("\"error\"") && last.contains("blocks behind"),
        "the subscription ends with an error: {notifications:?}"
    );
    assert!(
        notifications.len() < 10,
        "{} notifications",
        notifications.len()
    );

    // Settlement: the node advances the chain's anchor on Kaspa, committing its head and
    // sweeping the deposits into it, and pays the L1 fee the owner paid on the chain. The
    // books balance to the sompi, read from kaspad: anchor + unswept deposits = the chain's
    // total + fees paid but not yet spent + the anchor's genesis value (no account's).
    let l1 = devnet.node().l1();
    // A withdrawal (peg out) of 3 KAS from dev1 to a fresh Kaspa address.
    let payee = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[77; 32]).unwrap();
    let payee_address = wisp_l1::address_of(
        &payee.x_only_public_key().0.serialize(),
        wisp_l1::Prefix::Simnet,
    );
    let w = client
        .call(
            &dev1,
            "accounts",
            "withdraw",
            &json!([payee_address.to_string(), (3 * KAS).to_string()]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    ok(&w);
    let seq: u64 = w["returnValue"].as_str().unwrap().parse().unwrap();
    let mut confirmations = 0;
    let mut paid_by = None;
    // The books, read from kaspad: anchor + unswept deposits = the chain's total + fees paid
    // but not yet spent + withdrawals not yet paid + the anchor's genesis value (no account's).
    let books = || async {
        let s = node.anchor_status().unwrap();
        let chain = node.chain();
        let unswept: u64 = l1
            .spendable_utxos(&deposit_address, 0)
            .await
            .unwrap()
            .iter()
            .map(|(_, e)| e.amount)
            .sum();
        let unpaid: u64 = chain
            .outbox(0, 1_000)
            .unwrap()
            .iter()
            .filter(|e| node.withdrawal_paid_by(e.seq).unwrap().is_none())
            .map(|e| e.amount_sompi)
            .sum();
        (
            s.amount_sompi + unswept,
            chain.total_balance().unwrap() + chain.anchor_fees().unwrap() - s.fees_spent_sompi
                + unpaid
                + wisp_node::datadir::ANCHOR_GENESIS_SOMPI,
        )
    };
    for _ in 0..80 {
        node.mine(1).await.unwrap();
        let s = node.anchor_status().unwrap();
        if s.in_flight.is_none() {
            let (held, owed) = books().await;
            assert_eq!(
                held,
                owed,
                "after block {}",
                node.chain().head().unwrap().index
            );
        }
        paid_by = node.withdrawal_paid_by(seq).unwrap();
        if s.block_index > 0 && s.in_flight.is_none() && paid_by.is_some() {
            confirmations += 1;
            if confirmations == 3 {
                break;
            }
        }
    }
    assert!(
        paid_by.is_some(),
        "withdrawal {seq} was paid by an anchor transaction"
    );
    let received = l1.spendable_utxos(&payee_address, 0).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1.amount, 3 * KAS, "paid on L1 to the sompi");
    assert_eq!(
        Some(received[0].0.transaction_id),
        paid_by,
        "the node names the paying Kaspa transaction"
    );
    let status = node.anchor_status().unwrap();
    assert!(
        status.block_index > 0 && status.in_flight.is_none(),
        "{status:?}"
    );
    assert!(status.fees_spent_sompi > 0);
    let committed = node.chain().db().block(status.block_index).unwrap();
    let anchored_at = anchor
        .rules
        .address(
            &wisp_settlement::AnchorState {
                block_index: status.block_index,
                header_hash: committed.hash().0,
                outbox: wisp_settlement::outbox_commitment(&[]),
                committee_key: anchor.committee_key,
            },
            wisp_l1::Prefix::Simnet,
        )
        .unwrap();
    // A light client's check: the anchored header is proven by kaspad; a forged header (another
    // state root) is refused, and so is one from before the anchor whose link is broken.
    assert_eq!(
        client.anchored_on_kaspa(&committed).await.unwrap(),
        status.block_index
    );
    let forged = wisp_core::BlockHeader {
        state_root: wisp_core::Hash32([7; 32]),
        ..committed.clone()
    };
    assert!(client.anchored_on_kaspa(&forged).await.is_err());
    let earlier = node.chain().db().block(status.block_index - 1).unwrap();
    client.anchored_on_kaspa(&earlier).await.unwrap();
    let forged_earlier = wisp_core::BlockHeader {
        gas_used: earlier.gas_used + 1,
        ..earlier
    };
    assert!(client.anchored_on_kaspa(&forged_earlier).await.is_err());
    let on_l1 = l1.spendable_utxos(&anchored_at, 0).await.unwrap();
    assert_eq!(
        on_l1.len(),
        1,
        "the anchor commits block {}'s header",
        status.block_index
    );
    assert_eq!(on_l1[0].0, status.outpoint);
    assert_eq!(on_l1[0].1.covenant_id, Some(anchor.covenant_id()));
    assert_eq!(on_l1[0].1.amount, status.amount_sompi);
    let unswept: u64 = l1
        .spendable_utxos(&deposit_address, 0)
        .await
        .unwrap()
        .iter()
        .map(|(_, e)| e.amount)
        .sum();
    assert!(
        unswept < DEV_DEPOSIT_SOMPI,
        "the dev deposits were swept into the anchor ({unswept} sompi left)"
    );
    let chain = node.chain();
    assert_eq!(
        status.amount_sompi + unswept,
        chain.total_balance().unwrap() + chain.anchor_fees().unwrap() - status.fees_spent_sompi
            + wisp_node::datadir::ANCHOR_GENESIS_SOMPI
    );
    devnet.stop().await;
}

/// Runs the real `wisp` binary against `rpc` with `home` as `WISP_HOME`.
async fn wisp(home: &std::path::Path, rpc: &str, args: &[&str]) -> (i32, String, String) {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wisp"));
    command
        .env("WISP_HOME", home)
        .env("WISP_RPC", rpc)
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// One raw HTTP/1.1 request to the RPC server with an `Origin`; returns the response head.
async fn http_with_origin(rpc: &str, method: &str, origin: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = rpc.trim_start_matches("http://");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"wisp_chainInfo","params":[]}"#;
    let request = format!(
        "{method} / HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: application/json\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        if method == "POST" { body.len() } else { 0 },
        if method == "POST" { body } else { "" }
    );
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).to_string();
    text.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// `--cors http://app.example` (the devnet below): that page may call the node, with CORS
/// headers and a preflight; another web page is still refused; local pages need nothing.
async fn cors_is_opt_in(rpc: &str) {
    let allowed = http_with_origin(rpc, "POST", "http://app.example").await;
    assert!(allowed.starts_with("http/1.1 200"), "{allowed}");
    assert!(
        allowed.contains("access-control-allow-origin: http://app.example"),
        "{allowed}"
    );
    let preflight = http_with_origin(rpc, "OPTIONS", "http://app.example").await;
    assert!(preflight.starts_with("http/1.1 200"), "{preflight}");
    assert!(
        preflight.contains("access-control-allow-methods"),
        "{preflight}"
    );
    let other = http_with_origin(rpc, "POST", "http://evil.example").await;
    assert!(other.starts_with("http/1.1 403"), "{other}");
    let local = http_with_origin(rpc, "POST", "http://localhost:3000").await;
    assert!(local.starts_with("http/1.1 200"), "{local}");
    assert!(!local.contains("access-control-allow-origin"), "{local}");
}

/// One raw `GET path` with a `Host` header; returns the response head (lower case) and body.
async fn http_get(rpc: &str, path: &str, host_header: &str) -> (String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = rpc.trim_start_matches("http://");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    (head, response[(split + 4).min(response.len())..].to_vec())
}

/// The explorer is served at /explorer/ from the files in explorer/dist, behind the same Host
/// filter as the RPC (a DNS-rebinding page with another Host gets nothing).
async fn explorer_is_served(rpc: &str) {
    let host = rpc.trim_start_matches("http://");
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../explorer/dist");
    for (path, file, kind) in [
        ("/explorer/", "index.html", "text/html"),
        ("/explorer/app.js", "app.js", "text/javascript"),
        ("/explorer/app.css", "app.css", "text/css"),
    ] {
        let (head, body) = http_get(rpc, path, host).await;
        assert!(head.starts_with("http/1.1 200"), "{path}: {head}");
        assert!(
            head.contains(&format!("content-type: {kind}")),
            "{path}: {head}"
        );
        assert!(head.contains("content-security-policy"), "{path}: {head}");
        assert_eq!(body, std::fs::read(dist.join(file)).unwrap(), "{path}");
    }
    let (head, _) = http_get(rpc, "/explorer", host).await;
    assert!(
        head.starts_with("http/1.1 308") && head.contains("location: /explorer/"),
        "{head}"
    );
    let (head, _) = http_get(rpc, "/explorer/secret.txt", host).await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    let (head, body) = http_get(rpc, "/explorer/", "rebound.example:80").await;
    assert!(head.starts_with("http/1.1 403"), "{head}");
    assert!(
        !String::from_utf8_lossy(&body).contains("<html"),
        "no page to a foreign Host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wisp_command_against_a_devnet() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let devnet = Devnet::start(DevnetConfig {
        data_dir: dir.path().join("devnet"),
        fresh: true,
        block_time: Some(Duration::from_millis(200)),
        rpc_addr: "127.0.0.1:0".parse().unwrap(),
        accounts: 2,
        cors: vec!["http://app.example".into()],
        progress: |_| {},
    })
    .await
    .unwrap();
    // As `wisp devnet` does: the dev accounts go into the keystore.
    let kept = wisp_cli::keystore::Keystore::load(&home.join("accounts.json"))
        .unwrap()
        .import_devnet_accounts(
            devnet
                .accounts()
                .iter()
                .map(|a| (a.name.clone(), a.secret_hex.clone())),
        )
        .unwrap();
    assert!(kept.is_empty());
    let rpc = devnet.rpc_url();
    cors_is_opt_in(&rpc).await;
    explorer_is_served(&rpc).await;
    let token_dir = std::path::PathBuf::from(
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string()),
    )
    .join("../contracts/token");

    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "deploy",
            token_dir.to_str().unwrap(),
            "--name",
            "tok",
            "--init",
            r#"["T", "T", 0, "1000"]"#,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("deployed `tok`"), "{out}");
    // `init` stored the supply: the deployer locked a storage deposit for the token's bytes.
    assert!(out.contains("storage deposit: locked"), "{out}");
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "--json",
            "view",
            "accounts",
            "storage_deposit",
            r#"["tok"]"#,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let (bytes, locked) = (sompi(&v["value"][0]), sompi(&v["value"][1]));
    assert!(bytes > 0, "{v}");
    assert_eq!(locked, bytes * 100, "{v}");

    // Hardening defect 28: `--gas` below 50M was silently raised; it is now used as given, so a
    // budget too small for the deploy fails (exit 2, the receipt says out of gas).
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "deploy",
            token_dir.to_str().unwrap(),
            "--name",
            "tok_small",
            "--init",
            r#"["T", "T", 0, "1000"]"#,
            "--gas",
            "100000",
        ],
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.contains("out_of_gas") || out.contains("out of gas"),
        "{out}"
    );

    // Hardening defect 31: output piped into a reader that has gone (`| head`) made `wisp`
    // panic with "failed printing to stdout: Broken pipe". The reader here exits at once, so
    // `wisp` writes into a closed pipe after its RPC call; it now ends quietly, by SIGPIPE.
    let script = format!(
        "'{}' --json contracts | true; exit ${{PIPESTATUS[0]}}",
        env!("CARGO_BIN_EXE_wisp")
    );
    let piped = tokio::task::spawn_blocking({
        let home = home.clone();
        let rpc = rpc.clone();
        move || {
            std::process::Command::new("bash")
                .args(["-c", &script])
                .env("WISP_HOME", home)
                .env("WISP_RPC", rpc)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(piped.status.code(), Some(101), "{stderr}");

    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "--json",
            "call",
            "tok",
            "transfer",
            r#"["dev1", "5"]"#,
            "--estimate",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let estimate: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(estimate["status"], "success");
    assert!(sompi(&estimate["gasUsed"]) > 10_000);
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["call", "tok", "transfer", r#"["dev1", "5"]"#],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("✓ success") && out.contains("Transfer"),
        "{out}"
    );

    let (code, out, _) = wisp(
        &home,
        &rpc,
        &["--json", "view", "tok", "balance_of", r#"["dev1"]"#],
    )
    .await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["value"], json!("5"));

    // `wisp upgrade`: only the admin (the deployer, dev0) may; the storage carries over.
    let token_path = token_dir.to_str().unwrap();
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["upgrade", "tok", token_path, "--from", "dev1"],
    )
    .await;
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("unauthorized"), "{out}");
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["upgrade", "tok", token_path, "--migrate", "[1]"],
    )
    .await;
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("no `migrate`"), "{err}");
    let (code, out, err) = wisp(&home, &rpc, &["upgrade", "tok", token_path]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Upgraded") && out.contains("upgraded `tok`"),
        "{out}"
    );
    let (code, out, _) = wisp(
        &home,
        &rpc,
        &["--json", "view", "tok", "balance_of", r#"["dev1"]"#],
    )
    .await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["value"], json!("5"));

    // A 2-of-2 multisig wallet through the `wisp` command: deployed, funded, a transfer
    // proposed by dev0, approved and run by dev1.
    let multisig_dir = token_dir.join("../multisig");
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "deploy",
            multisig_dir.to_str().unwrap(),
            "--name",
            "vault",
            "--init",
            r#"[["dev0", "dev1"], 2]"#,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let vault = format!(
        "contract:{}@{}",
        wisp_core::Hname::of("vault"),
        devnet.genesis().chain_id()
    );
    let fund = format!(r#"["{vault}", "500000000"]"#);
    let (code, out, err) = wisp(&home, &rpc, &["call", "accounts", "transfer", &fund]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "call",
            "vault",
            "propose_transfer",
            r#"["dev1", "100000000"]"#,
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Proposed"), "{out}");
    let (code, out, _) = wisp(&home, &rpc, &["--json", "call", "vault", "execute", "[0]"]).await;
    assert_eq!(code, 2, "one approval of two: {out}");
    assert!(out.contains("NotEnoughApprovals"), "{out}");
    // The node itself names a contract's error, from the called contract's interface.
    let failed: Value = serde_json::from_str(&out).unwrap();
    let from_node = Client::new(&rpc)
        .unwrap()
        .rpc("wisp_getReceipt", rpc_params![failed["requestId"].clone()])
        .await
        .unwrap();
    assert_eq!(
        from_node["error"]["level"],
        json!("contract"),
        "{from_node}"
    );
    assert_eq!(
        from_node["error"]["name"],
        json!("NotEnoughApprovals"),
        "{from_node}"
    );
    for step in ["approve", "execute"] {
        let (code, out, err) = wisp(
            &home,
            &rpc,
            &["call", "vault", step, "[0]", "--from", "dev1"],
        )
        .await;
        assert_eq!(code, 0, "{step}: {out}{err}");
    }
    let balance = format!(r#"["{vault}"]"#);
    let (code, out, _) = wisp(
        &home,
        &rpc,
        &["--json", "view", "accounts", "balance", &balance],
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["value"], json!("400000000"));

    // A time-locked on-ledger call (a transfer to oneself, balances unchanged): the chain holds
    // it until its DAA score, then runs it once.
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "--json",
            "call",
            "tok",
            "transfer",
            r#"["dev1", "1"]"#,
            "--from",
            "dev1",
            "--on-ledger",
            "--not-before",
            "daa:+40",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("time-lock queue until DAA score"), "{err}");
    let receipt: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(receipt["status"], json!("success"), "{receipt}");
    let due: u64 = err
        .split("DAA score ")
        .nth(1)
        .and_then(|t| t.split(';').next())
        .and_then(|t| t.trim().parse().ok())
        .unwrap();
    let block_index = receipt["blockIndex"].as_u64().unwrap().to_string();
    let (code, out, _) = wisp(&home, &rpc, &["--json", "block", &block_index]).await;
    assert_eq!(code, 0);
    let block: Value = serde_json::from_str(&out).unwrap();
    let ran_at: u64 = block["l1DaaScore"].as_str().unwrap().parse().unwrap();
    assert!(ran_at >= due, "ran at DAA score {ran_at}, due at {due}");
    // The request as it reached the chain, decoded; and among dev1's and the token's requests.
    let api = Client::new(&rpc).unwrap();
    let request = api
        .rpc("wisp_getRequest", rpc_params![receipt["requestId"].clone()])
        .await
        .unwrap();
    assert_eq!(request["kind"], json!("onLedger"), "{request}");
    assert_eq!(request["call"]["function"], json!("transfer"), "{request}");
    assert_eq!(request["call"]["args"]["amount"], json!("1"), "{request}");
    assert_eq!(
        request["timeLock"]["notBefore"]["daaScore"],
        json!(due),
        "{request}"
    );
    assert!(request["l1TxId"].is_string(), "{request}");
    let sender = request["sender"].as_str().unwrap().to_string();
    // Receipts say how the request came and what it called; headers and receipts carry their
    // borsh, so a client checks the block hash and the receipts root itself.
    let block = api
        .rpc("wisp_getBlock", rpc_params![receipt["blockIndex"].clone()])
        .await
        .unwrap();
    let raw = |v: &Value| wisp_core::hash::from_hex(v["raw"].as_str().unwrap()).unwrap();
    assert_eq!(
        format!(
            "0x{}",
            wisp_core::hash::to_hex(&wisp_core::blake2b_256(&raw(&block)).0)
        ),
        block["hash"].as_str().unwrap()
    );
    let receipts = block["receipts"].as_array().unwrap();
    let decoded: Vec<wisp_core::Receipt> = receipts
        .iter()
        .map(|r| borsh::from_slice(&raw(r)).unwrap())
        .collect();
    let header: wisp_core::BlockHeader = borsh::from_slice(&raw(&block)).unwrap();
    assert_eq!(
        wisp_core::BlockHeader::receipts_commitment(&decoded),
        header.receipts_root
    );
    let ours = receipts
        .iter()
        .find(|r| r["requestId"] == receipt["requestId"])
        .unwrap();
    assert_eq!(ours["kind"], json!("onLedger"), "{ours}");
    assert_eq!(ours["call"]["function"], json!("transfer"), "{ours}");
    assert!(ours["l1TxId"].is_string(), "{ours}");
    let by_sender = api
        .rpc(
            "wisp_getRequests",
            rpc_params![sender.clone(), Value::Null, Value::Null, 100],
        )
        .await
        .unwrap();
    assert_eq!(
        by_sender[0]["requestId"], receipt["requestId"],
        "newest first: {by_sender}"
    );
    let by_token = api
        .rpc(
            "wisp_getRequests",
            rpc_params![Value::Null, "tok", Value::Null, 2],
        )
        .await
        .unwrap();
    let page = by_token.as_array().unwrap();
    assert_eq!(page.len(), 2);
    let older = api
        .rpc(
            "wisp_getRequests",
            rpc_params![Value::Null, "tok", page[1]["requestId"].clone(), 100],
        )
        .await
        .unwrap();
    assert!(older
        .as_array()
        .unwrap()
        .iter()
        .all(
            |r| r["blockIndex"].as_u64() <= page[1]["blockIndex"].as_u64()
                && r["requestId"] != page[1]["requestId"]
        ));
    assert!(api
        .rpc(
            "wisp_getRequests",
            rpc_params![sender, "tok", Value::Null, 5]
        )
        .await
        .is_err());
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["requests", "--sender", "dev1", "--limit", "3"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(".transfer({"), "{out}");

    // Its Transfer event, proven to the events root of its block and checked here.
    let request_id = receipt["requestId"].as_str().unwrap().to_string();
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["--json", "proof", "event", &request_id, "0", "--verify"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let proof: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(proof["verified"], json!(true), "{proof}");
    assert_eq!(proof["event"]["topic"], json!("Transfer"), "{proof}");
    assert_eq!(proof["blockIndex"].as_u64(), receipt["blockIndex"].as_u64());
    let (code, _, err) = wisp(&home, &rpc, &["proof", "event", &request_id, "9"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("has no event 9"), "{err}");

    // `Transfer.from` is indexed: the transfers dev1 sent, from the node's index.
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "--json",
            "events",
            "--contract",
            "tok",
            "--topic",
            "Transfer",
            "--where",
            "from=dev1",
            "--from-block",
            "0",
        ],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let sent: Vec<Value> = serde_json::from_str(&out).unwrap();
    let dev1_address = wisp_l1::address_of(
        &devnet.accounts()[1]
            .keypair()
            .unwrap()
            .x_only_public_key()
            .0
            .serialize(),
        wisp_l1::Prefix::Simnet,
    )
    .to_string();
    assert!(
        sent.iter()
            .any(|e| e["requestId"].as_str() == Some(request_id.as_str())),
        "{out}"
    );
    assert!(
        sent.iter()
            .all(|e| e["fields"]["from"] == json!(dev1_address)),
        "{out}"
    );
    assert!(sent.iter().all(|e| e["eventIndex"] == json!(0)), "{out}");
    let (code, _, err) = wisp(
        &home,
        &rpc,
        &[
            "events",
            "--contract",
            "tok",
            "--topic",
            "Transfer",
            "--where",
            "amount=1",
        ],
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("not an indexed field"), "{err}");

    // An off-ledger request whose window has closed is refused, saying why.
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &[
            "call",
            "tok",
            "transfer",
            r#"["dev0", "1"]"#,
            "--expires-at",
            "daa:1",
        ],
    )
    .await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("expired"), "{err}");

    // A factory's deploy from stored code, by hash: the token's code is stored already.
    let token_hash = wisp_core::blake2b_256(
        &std::fs::read(
            wisp_build::build_contract(
                &token_dir,
                &wisp_build::BuildOptions {
                    quiet: true,
                    ..Default::default()
                },
            )
            .unwrap(),
        )
        .unwrap(),
    );
    // Anyone can check deployed code against its source: the node serves it by hash.
    let api = Client::new(&rpc).unwrap();
    let stored = api
        .rpc(
            "wisp_getCode",
            rpc_params![format!("0x{}", wisp_core::hash::to_hex(&token_hash.0))],
        )
        .await
        .unwrap();
    let stored = wisp_core::hash::from_hex(stored.as_str().unwrap()).unwrap();
    assert_eq!(wisp_core::blake2b_256(&stored), token_hash);
    let missing = api
        .rpc(
            "wisp_getCode",
            rpc_params![format!("0x{}", "00".repeat(32))],
        )
        .await
        .unwrap();
    assert!(missing.is_null());
    let info = api.chain_info().await.unwrap();
    assert_eq!(info.api_version, wisp_api::API_VERSION);
    // Contract errors and events carry their doc comments in the interface.
    let interface = api.interface("tok").await.unwrap().unwrap();
    let insufficient = interface
        .errors
        .iter()
        .find(|e| e.name == "InsufficientBalance")
        .unwrap();
    assert!(!insufficient.docs.is_empty(), "{insufficient:?}");
    let init = borsh::to_vec(&("T2".to_string(), "T2".to_string(), 0u8, 77u128)).unwrap();
    let deploy_stored = format!(
        r#"["0x{}", "tok2", "0x{}"]"#,
        wisp_core::hash::to_hex(&token_hash.0),
        wisp_core::hash::to_hex(&init)
    );
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["call", "root", "deploy_stored", &deploy_stored],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = wisp(&home, &rpc, &["--json", "view", "tok2", "total_supply"]).await;
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["value"], json!("77"));

    // A failing request: exit status 2 and the contract's error by name.
    let (code, out, _) = wisp(
        &home,
        &rpc,
        &[
            "call",
            "tok",
            "transfer",
            r#"["dev1", "999999"]"#,
            "--from",
            "dev1",
        ],
    )
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("InsufficientBalance"), "{out}");

    // Verified against the node's header, and against Kaspa once an anchor commits the block
    // (which of the two depends on how far anchoring has got).
    let (code, out, err) = wisp(&home, &rpc, &["proof", "balance", "dev0", "--verify"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("✓ verified locally") || out.contains("anchored on Kaspa (kaspad holds"),
        "{out}"
    );

    let (code, out, _) = wisp(&home, &rpc, &["account", "balance", "dev1"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("sompi"), "{out}");
    let (code, out, _) = wisp(&home, &rpc, &["contracts"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("tok") && out.contains("(core)"), "{out}");
    let (code, out, _) = wisp(&home, &rpc, &["--json", "events", "--contract", "tok"]).await;
    assert_eq!(code, 0);
    assert!(
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .len()
            >= 2,
        "{out}"
    );

    // Bad input: a clear error and status 1, and the node keeps serving.
    let (code, _, err) = wisp(&home, &rpc, &["view", "nope", "x"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no contract `nope`"), "{err}");
    let (code, _, err) = wisp(&home, &rpc, &["call", "tok", "transfer", "not json"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("is not JSON"), "{err}");
    // Gas estimation simulates without committing; dev_snapshot / dev_revert undo blocks.
    let client = Client::new(&rpc).unwrap();
    let info = client.chain_info().await.unwrap();
    let chain_id = wisp_core::ChainId(info.chain_id.0);
    let dev1 = devnet.accounts()[1].keypair().unwrap();
    let a1 = wisp_l1::address_of(
        &dev1.x_only_public_key().0.serialize(),
        wisp_l1::Prefix::Simnet,
    )
    .to_string();
    let args = client
        .rpc(
            "wisp_encodeArgs",
            rpc_params!["tok", "transfer", "entry", json!([a1, "1"])],
        )
        .await
        .unwrap();
    let body = wisp_core::RequestBody {
        chain: chain_id,
        call: wisp_core::Call {
            target: wisp_core::Hname::of("tok"),
            entry_point: wisp_core::Hname::of("transfer"),
            args: wisp_core::hash::from_hex(args["args"].as_str().unwrap()).unwrap(),
            transfer_sompi: 0,
        },
        // The block's first use of the token's code pays its compilation (~1.4M gas).
        gas_budget: 5_000_000,
        access_list: None,
        time_lock: None,
    };
    let head_before = client.chain_info().await.unwrap().head.index;
    let estimate = client
        .rpc(
            "wisp_estimateGas",
            rpc_params![
                a1.clone(),
                format!(
                    "0x{}",
                    wisp_core::hash::to_hex(&borsh::to_vec(&body).unwrap())
                )
            ],
        )
        .await
        .unwrap();
    assert_eq!(estimate["status"], "success", "{estimate}");
    assert!(sompi(&estimate["gasUsed"]) > 10_000);
    // `wisp_estimateGas` is `wisp_simulateRequest` under its former name: the receipt's fields
    // inline, and the access list the transfer needs (a1 pays itself: its balance, read).
    let body_hex = format!(
        "0x{}",
        wisp_core::hash::to_hex(&borsh::to_vec(&body).unwrap())
    );
    let simulated = client
        .rpc("wisp_simulateRequest", rpc_params![a1.clone(), body_hex])
        .await
        .unwrap();
    assert_eq!(simulated, estimate);
    let list = &estimate["accessList"];
    let entries: Vec<&Value> = list["reads"]
        .as_array()
        .unwrap()
        .iter()
        .chain(list["writes"].as_array().unwrap())
        .collect();
    assert!(
        !entries.is_empty()
            && entries
                .iter()
                .all(|e| e["contract"] == wisp_core::Hname::of("tok").to_string()),
        "{estimate}"
    );
    assert_eq!(
        client.chain_info().await.unwrap().head.index,
        head_before,
        "estimation commits nothing"
    );
    let snapshot = client.rpc("dev_snapshot", rpc_params![]).await.unwrap();
    let dev0 = devnet.accounts()[0].keypair().unwrap();
    // `wisp call` declares the access list it simulated: its gas is the simulation's, which
    // counts the list's entries (without a list the base gas is lower).
    let declared = client
        .estimate(
            &dev0,
            "tok",
            "transfer",
            &json!([a1, "2"]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert!(declared["accessList"]["writes"]
        .as_array()
        .is_some_and(|w| !w.is_empty()));
    let r = client
        .call(
            &dev0,
            "tok",
            "transfer",
            &json!([a1, "2"]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    ok(&r);
    assert_eq!(r["gasUsed"], declared["gasUsed"], "{r}");
    assert_eq!(
        client
            .view("tok", "balance_of", &json!([a1]))
            .await
            .unwrap()["value"],
        json!("7")
    );
    assert_eq!(
        client
            .rpc("dev_revert", rpc_params![snapshot])
            .await
            .unwrap(),
        json!(true)
    );
    assert_eq!(
        client
            .view("tok", "balance_of", &json!([a1]))
            .await
            .unwrap()["value"],
        json!("5")
    );
    let mined = client.rpc("dev_mine", rpc_params![3]).await.unwrap();
    assert_eq!(mined["l1Blocks"], json!(3));

    let (code, out, _) = wisp(&home, &rpc, &["--json", "doctor"]).await;
    assert_eq!(code, 0);
    let doctor: Value = serde_json::from_str(&out).unwrap();
    assert!(doctor["node"]["head"].as_u64().unwrap() >= 3, "{out}");
    // Peg in from the command line: `wisp deposit`, for oneself and for someone else.
    let (code, out, err) = wisp(&home, &rpc, &["deposit", "300000000", "--from", "dev1"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("success"), "{out}");
    let fresh = wisp_l1::address_of(&[99; 32], wisp_l1::Prefix::Simnet).to_string();
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["deposit", "200000000", "--from", "dev1", "--to", &fresh],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = wisp(&home, &rpc, &["account", "balance", &fresh]).await;
    assert_eq!(code, 0);
    assert!(out.contains("200000000"), "{out}");

    // Peg out from the command line: `wisp withdraw`, then `wisp withdrawals` until an
    // anchor transaction has paid it on Kaspa.
    let payee = wisp_l1::address_of(&[88; 32], wisp_l1::Prefix::Simnet).to_string();
    let (code, out, err) = wisp(
        &home,
        &rpc,
        &["withdraw", &payee, "200000000", "--from", "dev1"],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("queued"), "{out}");
    let mut listed = String::new();
    for _ in 0..60 {
        devnet.node().mine(1).await.unwrap();
        let (code, out, err) = wisp(&home, &rpc, &["withdrawals"]).await;
        assert_eq!(code, 0, "{err}");
        listed = out;
        if listed.contains("paid by") {
            break;
        }
    }
    assert!(
        listed.contains(&format!("200000000 sompi  to {payee}  paid by")),
        "{listed}"
    );
    // A light client trusts Kaspa, not the node: `--verify` checks the proof against the
    // block header that the chain's anchor UTXO on kaspad commits to.
    let (code, out, err) = wisp(&home, &rpc, &["proof", "balance", "dev1", "--verify"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("anchored on Kaspa"), "{out}");
    let (code, out, err) = wisp(&home, &rpc, &["chain", "status"]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("anchored block") && out.contains("L1 lag"),
        "{out}"
    );
    let (code, out, _) = wisp(&home, &rpc, &["withdraw", &payee, "1000", "--from", "dev1"]).await;
    assert_eq!(code, 2, "below the minimum: {out}");
    assert!(out.contains("at least"), "{out}");

    // Hardening defect 29: `wisp doctor` exited 0 when the node was unreachable.
    let (code, _, err) = wisp(&home, "http://127.0.0.1:1", &["doctor"]).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("unreachable"), "{err}");
    devnet.stop().await;
}

/// Group commit: requests admitted while no block is being made share the next one, a request
/// whose block was made while its caller waited for its turn makes no block of its own, and
/// every request sent at once over RPC has its receipt when the calls return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_arrive_together_share_a_block() {
    use wisp_api::{Bytes, WispApiClient};
    let dir = tempfile::tempdir().unwrap();
    let devnet = Devnet::start(DevnetConfig {
        block_time: None,
        ..config(&dir.path().join("devnet"), true)
    })
    .await
    .unwrap();
    let node = devnet.node().clone();
    let keys: Vec<secp256k1::Keypair> = devnet
        .accounts()
        .iter()
        .map(|a| a.keypair().unwrap())
        .collect();
    let agent =
        |k: &secp256k1::Keypair| wisp_core::AgentId::Address(k.x_only_public_key().0.serialize());
    let transfer = |to: &secp256k1::Keypair| wisp_core::RequestBody {
        chain: devnet.genesis().chain_id(),
        call: wisp_core::Call {
            target: wisp_core::Hname::of("accounts"),
            entry_point: wisp_core::Hname::of("transfer"),
            args: borsh::to_vec(&(agent(to), 1u64)).unwrap(),
            transfer_sompi: 0,
        },
        gas_budget: 100_000,
        access_list: None,
        time_lock: None,
    };
    let nonce = |k: &secp256k1::Keypair| node.chain().nonce(&agent(k)).unwrap();

    let before = node.chain().head().unwrap().index;
    let a = wisp_chain::sign_request(transfer(&keys[2]), &keys[0], nonce(&keys[0]));
    let b = wisp_chain::sign_request(transfer(&keys[2]), &keys[1], nonce(&keys[1]));
    node.submit(a.clone()).unwrap();
    node.submit(b.clone()).unwrap();
    let block = node
        .produce_block_for(&a.sender(), a.nonce)
        .await
        .unwrap()
        .expect("a pending request makes a block");
    assert_eq!(block.receipts.len(), 2, "both admitted requests share it");
    assert!(block.receipts.iter().all(|r| r.error.is_none()));
    assert!(node
        .produce_block_for(&b.sender(), b.nonce)
        .await
        .unwrap()
        .is_none());
    assert_eq!(node.chain().head().unwrap().index, before + 1);

    // Over RPC, four requests from each of three senders at once; nothing else makes blocks.
    let http = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(devnet.rpc_url())
        .unwrap();
    let first: Vec<u64> = keys.iter().map(&nonce).collect();
    let sends = keys
        .iter()
        .zip(&first)
        .flat_map(|(k, &n)| (0..4).map(move |i| wisp_chain::sign_request(transfer(k), k, n + i)));
    let calls = sends.map(|r| {
        let http = http.clone();
        tokio::spawn(async move { http.send_request(Bytes(borsh::to_vec(&r).unwrap())).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    for (k, n) in keys.iter().zip(&first) {
        assert_eq!(
            nonce(k),
            n + 4,
            "every request has run when the calls return"
        );
    }
}
