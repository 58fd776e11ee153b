//! The settlement flow end to end, with nothing in this test's process but the test: kaspad
//! runs as a separate process (`wisp-kaspad`, the pinned kaspad crate's daemon) on simnet,
//! `wisp chain create` and `wisp node` are the real `wisp` binary talking to it over wRPC.
//!
//! Two L1 accounts deposit (a Schnorr key, and an ECDSA key whose deposit names its
//! beneficiary in the payload), funds move through the escrow contract, an account withdraws
//! and the contract pays out to L1, all while the node is killed with SIGKILL at 20 random
//! moments and restarted. At the end: no committed block was lost, every withdrawal was paid
//! exactly once with the exact amount, kaspad's anchor UTXO commits the node's block header, and
//! kaspad's balances equal the chain's books to the sompi.

use jsonrpsee::rpc_params;
use kaspa_addresses::{Address, Version};
use kaspa_consensus_core::constants::TX_VERSION_TOCCATA;
use kaspa_consensus_core::hashing::sighash::{
    calc_ecdsa_signature_hash, SigHashReusedValuesUnsync,
};
use kaspa_consensus_core::hashing::sighash_type::SIG_HASH_ALL;
use kaspa_consensus_core::tx::{
    SignableTransaction, Transaction, TransactionInput, TransactionOutput,
};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use wisp_cli::client::{CallOptions, Client};
use wisp_cli::keystore::Keystore;
use wisp_l1::{L1Client, Prefix, Wallet};

mod common;
use common::*;

const KAS: u64 = 100_000_000;

fn sompi(v: &Value) -> u64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not sompi: {v}"))
}

/// Starts `wisp node`: kaspad's URL and the block interval come from `<data>/wisp.toml`
/// (written by the test), the port from the flag, which overrides `WISP_PORT` and the file.
/// Two execution threads, with the access lists `wisp call` declares: blocks go through the
/// scheduler (footprints, batches) across the kills; a retention window of 16 blocks, so
/// the node prunes as it goes; and no event or request index, as a settlement-only node runs.
fn start_node(home: &Path, data: &Path, port: u16) -> Child {
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
            "--exec-threads",
            "2",
            "--state-retention",
            "16",
            "--no-index",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
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

/// Pays `amount` from an ECDSA pay-to-public-key address to `to` in a lane transaction whose
/// payload credits `beneficiary`: a sender Wisp cannot identify by a Schnorr key.
async fn ecdsa_deposit(
    l1: &L1Client,
    secret: &secp256k1::SecretKey,
    to: &Address,
    amount: u64,
    beneficiary: wisp_core::AgentId,
) -> [u8; 32] {
    let public = secret.public_key(secp256k1::SECP256K1).serialize();
    let own = Address::new(Prefix::Simnet, Version::PubKeyECDSA, &public);
    let coins = l1.spendable_utxos(&own, MATURITY).await.unwrap();
    let (outpoint, entry) = coins
        .into_iter()
        .max_by_key(|(_, e)| e.amount)
        .expect("the ECDSA address has mature coins");
    let fee = KAS / 100;
    let payload = wisp_core::LanePayload {
        requests: vec![],
        beneficiary: Some(beneficiary),
    }
    .encode();
    let tx = Transaction::new(
        TX_VERSION_TOCCATA,
        vec![TransactionInput::new_with_compute_budget(
            outpoint,
            vec![],
            0,
            10,
        )],
        vec![
            TransactionOutput::new(amount, kaspa_txscript::pay_to_address_script(to)),
            TransactionOutput::new(
                entry.amount - amount - fee,
                kaspa_txscript::pay_to_address_script(&own),
            ),
        ],
        0,
        kaspa_consensus_core::subnets::SubnetworkId::from(wisp_core::LANE_ID),
        0,
        payload,
    );
    let mut signable = SignableTransaction::with_entries(tx, vec![entry]);
    let hash = calc_ecdsa_signature_hash(
        &signable.as_verifiable(),
        0,
        SIG_HASH_ALL,
        &SigHashReusedValuesUnsync::new(),
    );
    let message = secp256k1::Message::from_digest_slice(&hash.as_bytes()).unwrap();
    let mut signature = secp256k1::SECP256K1
        .sign_ecdsa(&message, secret)
        .serialize_compact()
        .to_vec();
    signature.push(SIG_HASH_ALL.to_u8());
    signable.tx.inputs[0].signature_script = kaspa_txscript::script_builder::ScriptBuilder::new()
        .add_data(&signature)
        .unwrap()
        .drain();
    l1.submit_transaction(&signable.tx).await.unwrap()
}

/// Sompi `address` can spend on kaspad now.
async fn spendable_sompi(l1: &L1Client, address: &Address) -> u64 {
    l1.spendable_utxos(address, 0)
        .await
        .unwrap()
        .iter()
        .map(|(_, e)| e.amount)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlement_end_to_end_on_a_separate_kaspad_through_20_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let data = dir.path().join("node");
    let mut kaspad = Kaspad::start(&dir.path().join("kaspad"));
    let l1 = kaspad.connect().await;
    let l1_url = kaspad.url.clone();

    // L1 accounts: the operator (Schnorr, in the keystore), an ECDSA key, and Carol, who has
    // no L1 coins and is credited by the ECDSA deposit.
    std::fs::create_dir_all(&home).unwrap();
    let mut store = Keystore::load(&home.join("accounts.json")).unwrap();
    let op = store.create("op").unwrap().keypair().unwrap();
    let carol = store.create("carol").unwrap().keypair().unwrap();
    store.save().unwrap();
    let operator = Wallet::new(op, Prefix::Simnet);
    let ecdsa = secp256k1::SecretKey::from_slice(&[0x42; 32]).unwrap();
    let ecdsa_address = Address::new(
        Prefix::Simnet,
        Version::PubKeyECDSA,
        &ecdsa.public_key(secp256k1::SECP256K1).serialize(),
    );
    // `wisp mine` gives the operator coins; the ECDSA key gets a few blocks' too.
    for _ in 0..5 {
        l1.mine_block(&ecdsa_address).await.unwrap();
    }
    wisp(
        &home,
        &[
            "mine",
            &(MATURITY + 5).to_string(),
            "--l1",
            &l1_url,
            "--to",
            "op",
        ],
    );
    let no_count = wisp_output(&home, &["mine", "--l1", &l1_url]);
    assert_eq!(no_count.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&no_count.stderr).contains("how many blocks"));
    // Kaspa keeps making blocks, as a network does.
    let miner = Miner::start(&l1_url, operator.address(), Duration::from_millis(40));

    // `wisp chain create`: the chain is born on Kaspa.
    let created: Value = serde_json::from_str(&wisp(
        &home,
        &[
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
        ],
    ))
    .unwrap();
    // A second create into the same directory is refused.
    let again = wisp_output(
        &home,
        &[
            "chain",
            "create",
            "--l1",
            &l1_url,
            "--data-dir",
            data.to_str().unwrap(),
            "--from",
            "op",
        ],
    );
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
    let mut node = start_node(&home, &data, port);
    let info = ready(&client).await;
    assert_eq!(info["chainId"], created["chainId"]);
    assert_eq!(info["devnet"], json!(false));
    let deposit_address = Address::try_from(info["depositAddress"].as_str().unwrap()).unwrap();
    let balance = |who: String| {
        let client = &client;
        async move {
            sompi(
                &client
                    .rpc("wisp_getBalance", rpc_params![who])
                    .await
                    .unwrap(),
            )
        }
    };

    // Deposits: 50 KAS from the operator with `wisp deposit`; 30 KAS from the ECDSA key for
    // Carol, named in the payload.
    let receipt: Value = serde_json::from_str(&wisp(
        &home,
        &[
            "--json",
            "--rpc",
            &rpc,
            "deposit",
            "5000000000",
            "--from",
            "op",
        ],
    ))
    .unwrap();
    assert_eq!(receipt["status"], "success", "{receipt}");
    let op_agent = operator.address().to_string();
    assert_eq!(balance(op_agent.clone()).await, 50 * KAS);
    let carol_agent = wisp_core::AgentId::Address(carol.x_only_public_key().0.serialize());
    let carol_address =
        wisp_l1::address_of(&carol.x_only_public_key().0.serialize(), Prefix::Simnet);
    let ecdsa_before = spendable_sompi(&l1, &ecdsa_address).await;
    ecdsa_deposit(&l1, &ecdsa, &deposit_address, 30 * KAS, carol_agent).await;
    eventually("Carol's deposit", || {
        let b = balance(carol_address.to_string());
        async move { (b.await == 30 * KAS).then_some(()) }
    })
    .await;
    let ecdsa_after = spendable_sompi(&l1, &ecdsa_address).await;
    assert_eq!(
        ecdsa_before - ecdsa_after,
        30 * KAS + KAS / 100,
        "deposit + fee left the ECDSA key"
    );

    // Through a contract: the operator deploys the escrow, Carol locks 10 KAS for the payee
    // (a third L1 address, never seen on the chain), and releases it to Kaspa from the
    // contract's account; Carol also withdraws 2 KAS of her own to the payee.
    let escrow = wisp_build::build_contract(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../contracts/escrow"),
        &wisp_build::BuildOptions {
            quiet: true,
            ..Default::default()
        },
    )
    .unwrap();
    let deployed = client
        .deploy(
            &op,
            "escrow",
            &std::fs::read(escrow).unwrap(),
            &json!([]),
            &CallOptions {
                gas_budget: 50_000_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(deployed["status"], "success", "{deployed}");
    let payee = wisp_l1::address_of(&[66; 32], Prefix::Simnet);
    let opened = client
        .call(
            &carol,
            "escrow",
            "open",
            &json!([payee.to_string(), 1_000_000]),
            &CallOptions {
                transfer_sompi: 10 * KAS,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(opened["status"], "success", "{opened}");
    let released = client
        .call(
            &carol,
            "escrow",
            "release_to_l1",
            &json!([opened["returnValue"].clone()]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(released["status"], "success", "{released}");
    let contract_payout = 10 * KAS - wisp_chain::WITHDRAWAL_FEE_SOMPI;
    let w = client
        .call(
            &carol,
            "accounts",
            "withdraw",
            &json!([payee.to_string(), (2 * KAS).to_string()]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(w["status"], json!("success"), "{w}");

    // 20 SIGKILLs at random moments while requests keep coming.
    let mut rng = Lcg(0x5eed);
    let mut kept: Vec<(u64, String)> = Vec::new();
    for round in 0..20 {
        let _ = client
            .call(
                &op,
                "accounts",
                "transfer",
                &json!([carol_address.to_string(), "1"]),
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
        node = start_node(&home, &data, port);
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

    // Let anchoring settle: both withdrawals are paid exactly once, with their amounts.
    eventually(
        "the withdrawals to be paid and the anchor to settle",
        || {
            let client = &client;
            async move {
                let ws = client
                    .rpc("wisp_getWithdrawals", rpc_params![0u64, 10u32])
                    .await
                    .ok()?;
                let info = client.rpc("wisp_chainInfo", rpc_params![]).await.ok()?;
                let all_paid = ws.as_array()?.len() == 2
                    && ws.as_array()?.iter().all(|w| w["status"] == "paid");
                (all_paid && info["anchor"]["inFlight"].is_null()).then_some(())
            }
        },
    )
    .await;
    let mut paid: Vec<u64> = l1
        .spendable_utxos(&payee, 0)
        .await
        .unwrap()
        .iter()
        .map(|(_, e)| e.amount)
        .collect();
    paid.sort();
    assert_eq!(
        paid,
        vec![2 * KAS, contract_payout],
        "each paid once, exactly"
    );
    // Each receipt names the withdrawal it queued and the Kaspa transaction that paid it: the
    // account's own, and the contract's payout.
    let listed = client
        .rpc("wisp_getWithdrawals", rpc_params![0u64, 10u32])
        .await
        .unwrap();
    for (receipt, from, amount) in [
        (&w, carol_address.to_string(), 2 * KAS),
        (&released, "contract:escrow".to_string(), contract_payout),
    ] {
        let receipt = client
            .rpc("wisp_getReceipt", rpc_params![receipt["requestId"].clone()])
            .await
            .unwrap();
        let queued = &receipt["withdrawals"][0];
        assert_eq!(queued["from"], json!(from), "{receipt}");
        assert_eq!(sompi(&queued["amountSompi"]), amount);
        assert_eq!(queued["status"], "paid");
        let seq = queued["seq"].as_u64().unwrap() as usize;
        assert_eq!(queued["paidBy"], listed[seq]["paidBy"]);
        assert!(queued["paidBy"].is_string());
    }
    // Malformed parameters are refused, not read as defaults.
    let refused = client
        .rpc("wisp_getWithdrawals", rpc_params!["first", 10u32])
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("-32602"), "{refused}");
    // Without indexes (`--no-index`), the receipts above still had everything; the request
    // index answers with an error that says why, not with an empty list.
    let unindexed = client
        .rpc(
            "wisp_getRequests",
            rpc_params![carol_address.to_string(), Value::Null, Value::Null, 10u32],
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unindexed.contains("-32602") && unindexed.contains("--no-index"),
        "{unindexed}"
    );
    // A quiet chain keeps following Kaspa: with no requests the node makes no blocks, but the
    // Kaspa block it has followed keeps moving, so `wisp chain status` measures the lag from
    // that block (it has moved 20+ DAA past the head's reference), not from the head's.
    let followed = |info: &Value| sompi(&info["l1FollowedDaaScore"]);
    let quiet = client.rpc("wisp_chainInfo", rpc_params![]).await.unwrap();
    eventually("the follower to move on a quiet chain", || {
        let client = &client;
        let start = followed(&quiet);
        async move {
            let now = client.rpc("wisp_chainInfo", rpc_params![]).await.ok()?;
            (followed(&now) > start + 20).then_some(())
        }
    })
    .await;
    let status: Value =
        serde_json::from_str(&wisp(&home, &["--json", "--rpc", &rpc, "chain", "status"])).unwrap();
    let lag = status["l1LagDaa"].as_u64().unwrap();
    let head_ref = sompi(&quiet["head"]["l1DaaScore"]);
    assert!(
        lag + 20 < l1.virtual_daa_score().await.unwrap() - head_ref,
        "the lag ({lag}) is measured from the followed block, not the head's reference ({head_ref})"
    );

    // The books, at one moment (Kaspa stops making blocks, so nothing more is accepted):
    // anchor + unswept deposits (kaspad) = the chain's total + fees paid but not yet spent +
    // the anchor's genesis value (1 KAS).
    miner.stop().await;
    let info = client.rpc("wisp_chainInfo", rpc_params![]).await.unwrap();
    let anchor = &info["anchor"];
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
    // kaspad's anchor UTXO: its value is the one the node reports, and the header it commits
    // is the node's header of that block.
    let hex32 =
        |v: &Value| -> [u8; 32] { wisp_core::Hash32::from_hex(v.as_str().unwrap()).unwrap().0 };
    let rules = wisp_settlement::AnchorRules {
        max_fee_sompi: sompi(&anchor["maxFeeSompi"]),
    };
    let state = wisp_settlement::AnchorState {
        block_index: anchor["anchoredBlock"].as_u64().unwrap(),
        header_hash: hex32(&anchor["anchoredHeaderHash"]),
        outbox: hex32(&anchor["outbox"]),
        committee_key: hex32(&anchor["committeeKey"]),
    };
    let on_l1 = l1
        .spendable_utxos(&rules.address(&state, Prefix::Simnet).unwrap(), 0)
        .await
        .unwrap();
    assert_eq!(on_l1.len(), 1);
    assert_eq!(on_l1[0].1.amount, value);
    assert!(state.block_index > 0);
    let anchored = client
        .rpc("wisp_getBlock", rpc_params![state.block_index])
        .await
        .unwrap();
    assert_eq!(
        hex32(&anchored["hash"]),
        state.header_hash,
        "kaspad commits the node's header"
    );
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
    drop(kaspad);
}
