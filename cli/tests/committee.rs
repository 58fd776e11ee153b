//! A committee chain end to end, every part a separate process: kaspad (`wisp-kaspad`) on
//! simnet, and four `wisp node` members of one committee, set up with the operator commands
//! (`wisp committee init | join | dkg`) and ordering the chain's blocks with simplex over
//! commonware's authenticated p2p on loopback.
//!
//! Checked: the key generation gives every member the same two committee keys; the chain is
//! created under the committee's anchor key; a deposit on Kaspa and off-ledger transfers sent
//! to any member run on all four; every member has the same block hashes and state roots; a
//! withdrawal is paid on Kaspa by anchor transactions the members sign together (FROST); with
//! one member killed (the one coordinating the next anchor successor) the other three go on
//! and a second withdrawal is paid once the coordinator's turn passes; the killed member,
//! restarted, catches up to the same state and to the anchor. Measured (printed): finality
//! latency (a request sent to a member until that member has its receipt) and off-ledger
//! requests per second.

mod common;
use common::*;

use jsonrpsee::rpc_params;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use wisp_api::{Bytes, WispApiClient};
use wisp_cli::client::{CallOptions, Client};
use wisp_cli::keystore::Keystore;
use wisp_core::{AgentId, ChainId};

const KAS: u64 = 100_000_000;
const MEMBERS: usize = 4;

/// A member's `wisp node`, its stderr in `<data>/node.log`.
fn start_member(home: &Path, data: &Path, port: u16) -> Process {
    start_node(home, data, port, &[])
}

/// `wisp node` on `data` with RPC on `port` and `extra` flags, its log in `data/node.log`.
fn start_node(home: &Path, data: &Path, port: u16, extra: &[&str]) -> Process {
    let log = std::fs::File::create(data.join("node.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .env("WISP_HOME", home)
        .env(
            "RUST_LOG",
            std::env::var("WISP_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .args([
            "node",
            "--data-dir",
            data.to_str().unwrap(),
            "--port",
            &port.to_string(),
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map(Process)
        .unwrap()
}

/// A new access node's data directory at `dir`: the chain's `node.json`, the committee's
/// `committee.json` and the settings, copied from member directory `member`; no keys.
fn access_dir_from(member: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for file in ["node.json", "committee.json", "wisp.toml"] {
        std::fs::copy(member.join(file), dir.join(file)).unwrap();
    }
    dir.to_path_buf()
}

/// `wisp node --follow` on data directory `dir`, following the node whose RPC is on
/// `upstream` (more flags in `extra`); returns the process, a client of it once it answers,
/// and its RPC port.
async fn start_following(
    home: &Path,
    dir: &Path,
    upstream: u16,
    extra: &[&str],
) -> (Process, Client, u16) {
    let port = free_port();
    let url = format!("http://127.0.0.1:{upstream}");
    let mut args = vec!["--follow", url.as_str()];
    args.extend(extra);
    let process = start_node(home, dir, port, &args);
    let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
    ready(&client).await;
    (process, client, port)
}

/// Once Kaspa holds exactly the payments `wanted` (sompi, in any order) to `payee`: the
/// withdrawals paid so far.
/// `Some` once the node behind `client` lists exactly `n` withdrawals, every one paid.
async fn all_paid(client: &Client, n: usize) -> Option<()> {
    let ws = client
        .rpc("wisp_getWithdrawals", rpc_params![0u64, 10u32])
        .await
        .ok()?;
    let ws = ws.as_array()?;
    (ws.len() == n && ws.iter().all(|w| w["status"] == "paid")).then_some(())
}

async fn paid_exactly(
    l1: &wisp_l1::L1Client,
    payee: &kaspa_addresses::Address,
    wanted: &[u64],
) -> Option<()> {
    let mut paid: Vec<u64> = l1
        .spendable_utxos(payee, 0)
        .await
        .ok()?
        .iter()
        .map(|(_, e)| e.amount)
        .collect();
    paid.sort();
    (paid == wanted).then_some(())
}

fn agent(k: &secp256k1::Keypair) -> AgentId {
    AgentId::Address(k.x_only_public_key().0.serialize())
}

/// `wisp committee dkg` on member data directory `data`, as its own process, stdout and stderr
/// piped.
fn spawn_dkg(home: &Path, data: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_wisp"))
        .env("WISP_HOME", home)
        .args([
            "--json",
            "committee",
            "dkg",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A committee of `MEMBERS` operators in `root/<prefix>0..`: each makes its member key
/// (`wisp committee init`), then joins with everyone's cards. Returns the data directories
/// and the cards.
fn join_committee(home: &Path, root: &Path, prefix: &str) -> (Vec<PathBuf>, Vec<String>) {
    let data: Vec<PathBuf> = (0..MEMBERS)
        .map(|i| root.join(format!("{prefix}{i}")))
        .collect();
    let cards: Vec<String> = data
        .iter()
        .map(|d| {
            let out: Value = serde_json::from_str(&wisp(
                home,
                &[
                    "--json",
                    "committee",
                    "init",
                    "--data-dir",
                    d.to_str().unwrap(),
                    "--listen",
                    &format!("127.0.0.1:{}", free_port()),
                ],
            ))
            .unwrap();
            out["card"].as_str().unwrap().to_string()
        })
        .collect();
    for d in &data {
        let mut args = vec!["committee", "join", "--data-dir", d.to_str().unwrap()];
        for card in &cards {
            args.extend(["--member", card]);
        }
        wisp(home, &args);
    }
    (data, cards)
}

/// The key generation of the committee in `data`, all members at once, each its own process;
/// returns its output, which must be the same on every member.
fn dkg_all(home: &Path, data: &[PathBuf]) -> Value {
    let dkg: Vec<Child> = data
        .iter()
        .map(|d| spawn_dkg(home, d, &["--timeout", "120s"]))
        .collect();
    let keys: Vec<Value> = dkg
        .into_iter()
        .map(|p| {
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "dkg ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
    keys[0].clone()
}

/// `op` withdraws `sompi` to Kaspa address `to` through `client`; the receipt must be a success.
async fn withdraw(client: &Client, op: &secp256k1::Keypair, to: &str, sompi: u64) {
    let w = client
        .call(
            op,
            "accounts",
            "withdraw",
            &serde_json::json!([to, sompi.to_string()]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(w["status"], "success", "{w}");
}

/// `by` calls `function` (`contract.function`) with `args` through `client`, default options;
/// the receipt, whatever its status.
async fn call_as(
    client: &Client,
    by: &secp256k1::Keypair,
    function: &str,
    args: &Value,
) -> anyhow::Result<Value> {
    let (contract, function) = function.split_once('.').unwrap();
    client
        .call(by, contract, function, args, &CallOptions::default())
        .await
}

/// The request id of a receipt (its `requestId`).
/// `from` sends `to` 1 sompi through `client` (`wisp call accounts.transfer`); returns the
/// receipt, which must say success.
async fn send_one_sompi(
    client: &Client,
    from: &secp256k1::Keypair,
    to: &secp256k1::Keypair,
) -> Value {
    let r = client
        .call(
            from,
            "accounts",
            "transfer",
            &serde_json::json!([agent(to).to_raw_string(), "1"]),
            &CallOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r["status"], "success", "{r}");
    r
}

fn request_id(receipt: &Value) -> wisp_core::Hash32 {
    wisp_core::hash::from_hex(
        receipt["requestId"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
    )
    .and_then(|b| <[u8; 32]>::try_from(b).ok())
    .map(wisp_core::Hash32)
    .unwrap()
}

/// `to` gets `amount` sompi from the signer: the chain's built-in transfer.
fn transfer(chain: ChainId, to: &AgentId, amount: u64) -> wisp_core::RequestBody {
    wisp_core::RequestBody {
        chain,
        call: wisp_core::Call {
            target: wisp_core::Hname::of("accounts"),
            entry_point: wisp_core::Hname::of("transfer"),
            args: borsh::to_vec(&(to, amount)).unwrap(),
            transfer_sompi: 0,
        },
        gas_budget: 100_000,
        access_list: None,
        time_lock: None,
    }
}

async fn head(client: &Client) -> (u64, String, String) {
    let b = client
        .rpc("wisp_getBlock", rpc_params!["latest"])
        .await
        .unwrap();
    (
        b["index"].as_u64().unwrap(),
        b["hash"].as_str().unwrap().to_string(),
        b["stateRoot"].as_str().unwrap().to_string(),
    )
}

async fn block(client: &Client, index: u64) -> Option<(String, String)> {
    let b = client.rpc("wisp_getBlock", rpc_params![index]).await.ok()?;
    Some((
        b["hash"].as_str()?.to_string(),
        b["stateRoot"].as_str()?.to_string(),
    ))
}

/// Waits until every member in `members` has executed block `index`; checks they all have the
/// same block there.
async fn agree_at(clients: &[&Client], index: u64) {
    let mut seen: Vec<(String, String)> = Vec::new();
    for client in clients {
        let at = eventually_for(&format!("block {index} on every member"), 60, || async {
            block(client, index).await
        })
        .await;
        seen.push(at);
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "members differ at block {index}: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committee_of_four_nodes_runs_one_chain() {
    // WISP_TEST_KEEP=1 keeps the directories (the members' node.log) for a look afterwards.
    let temp = tempfile::tempdir().unwrap();
    let (_temp, root) = match std::env::var_os("WISP_TEST_KEEP") {
        Some(_) => {
            let kept = temp.keep();
            eprintln!("keeping {}", kept.display());
            (None, kept)
        }
        None => {
            let root = temp.path().to_path_buf();
            (Some(temp), root)
        }
    };
    let home = root.as_path().join("home");
    let mut kaspad = Kaspad::start(&root.as_path().join("kaspad"));
    let l1 = kaspad.connect().await;
    let l1_url = kaspad.url.clone();
    std::fs::create_dir_all(&home).unwrap();
    let mut store = Keystore::load(&home.join("accounts.json")).unwrap();
    let op = store.create("op").unwrap().keypair().unwrap();
    let users: Vec<secp256k1::Keypair> = (0..8)
        .map(|i| store.create(&format!("u{i}")).unwrap().keypair().unwrap())
        .collect();
    store.save().unwrap();
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
    // Kaspa keeps making blocks, as a network does.
    let miner = Miner::start(
        &l1_url,
        wisp_l1::Wallet::new(op, wisp_l1::Prefix::Simnet).address(),
        Duration::from_millis(100),
    );
    // Each operator: a member key and card; then the committee from all four cards.
    let (data, cards) = join_committee(&home, &root, "member");
    let before_keys = wisp_output(
        &home,
        &[
            "node",
            "--data-dir",
            data[0].to_str().unwrap(),
            "--l1",
            &l1_url,
        ],
    );
    assert!(
        !before_keys.status.success(),
        "no node without a chain and keys"
    );

    // A key generation that one member misses fails on the others, naming the missing one,
    // and leaves no keys behind.
    let partial: Vec<Child> = data[..3]
        .iter()
        .map(|d| spawn_dkg(&home, d, &["--timeout", "3s"]))
        .collect();
    let absent = cards[3].split('@').next().unwrap().to_string();
    for p in partial {
        let out = p.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("did not finish") && stderr.contains(&absent),
            "{stderr}"
        );
    }
    let status = wisp(
        &home,
        &[
            "--json",
            "committee",
            "status",
            "--data-dir",
            data[0].to_str().unwrap(),
        ],
    );
    assert!(status.contains("\"keys_ready\": false"), "{status}");

    // The key generation, all four at once, each its own process.
    let started = Instant::now();
    let key = dkg_all(&home, &data);
    eprintln!("key generation of 4 members: {:?}", started.elapsed());
    assert_eq!(key["anchor_key"].as_str().unwrap().len(), 64);
    assert_eq!(key["certificate_key"].as_str().unwrap().len(), 192);
    // A second run is refused: the shares exist.
    let again = wisp_output(
        &home,
        &["committee", "dkg", "--data-dir", data[0].to_str().unwrap()],
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds its shares"));

    // The chain is born on Kaspa under the committee's anchor key.
    let chain_dir = root.as_path().join("chain");
    let created: Value = serde_json::from_str(&wisp(
        &home,
        &[
            "--json",
            "chain",
            "create",
            "--l1",
            &l1_url,
            "--data-dir",
            chain_dir.to_str().unwrap(),
            "--name",
            "committee",
            "--from",
            "op",
            "--coinbase-maturity",
            &MATURITY.to_string(),
            "--committee-key",
            key["anchor_key"].as_str().unwrap(),
        ],
    ))
    .unwrap();

    // The chain: every member gets its node.json, and runs.
    let ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let mut nodes: Vec<Process> = Vec::new();
    for (d, port) in data.iter().zip(&ports) {
        std::fs::copy(chain_dir.join("node.json"), d.join("node.json")).unwrap();
        std::fs::write(d.join("wisp.toml"), format!("l1 = \"{l1_url}\"\n")).unwrap();
        let status = wisp(
            &home,
            &[
                "--json",
                "committee",
                "status",
                "--data-dir",
                d.to_str().unwrap(),
            ],
        );
        assert!(status.contains("ready"), "{status}");
        nodes.push(start_member(&home, d, *port));
    }
    let clients: Vec<Client> = ports
        .iter()
        .map(|p| Client::new(&format!("http://127.0.0.1:{p}")).unwrap())
        .collect();
    for client in &clients {
        let info = ready(client).await;
        assert_eq!(info["chainId"], created["chainId"]);
    }
    let chain = ChainId(
        wisp_core::hash::from_hex(
            created["chainId"]
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
        )
        .unwrap()
        .try_into()
        .unwrap(),
    );

    // A deposit on Kaspa, through member 0's RPC: the committee follows Kaspa, so every
    // member credits it.
    let receipt = clients[0].deposit(&op, 500 * KAS, None).await.unwrap();
    assert_eq!(receipt["status"], "success", "{receipt}");
    for client in &clients {
        eventually_for("the deposit on every member", 60, || async {
            let b: Value = client
                .rpc("wisp_getBalance", rpc_params![agent(&op).to_raw_string()])
                .await
                .ok()?;
            (b.as_str()? == (500 * KAS).to_string()).then_some(())
        })
        .await;
    }

    // Finality latency: transfers one at a time, each sent to the next member, timed from
    // sending to the receipt on that member.
    let mut latencies = Vec::new();
    let mut last_funding = None;
    for (i, user) in users.iter().enumerate() {
        let client = &clients[i % MEMBERS];
        let started = Instant::now();
        let r = client
            .call(
                &op,
                "accounts",
                "transfer",
                &serde_json::json!([agent(user).to_raw_string(), (10 * KAS).to_string()]),
                &CallOptions::default(),
            )
            .await
            .unwrap();
        latencies.push(started.elapsed());
        if std::env::var_os("WISP_TEST_KEEP").is_some() {
            eprintln!(
                "transfer {i} on member {}: {:?}",
                i % MEMBERS,
                started.elapsed()
            );
        }
        assert_eq!(r["status"], "success", "{r}");
        // The next member reads the sender's nonce from its own chain: wait until it has
        // executed this one too.
        let id = request_id(&r);
        clients[(i + 1) % MEMBERS]
            .wait_receipt(&id, Duration::from_secs(30))
            .await
            .unwrap();
        last_funding = Some(id);
    }
    latencies.sort();
    eprintln!(
        "finality latency, 4 members on loopback: median {:?}, max {:?} ({} transfers)",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies.len()
    );

    // Every member has funded every sender (the last transfer runs after the others): each
    // admits requests only from senders that hold coins on its own chain.
    let last_funding = last_funding.expect("transfers sent");
    for client in &clients {
        client
            .wait_receipt(&last_funding, Duration::from_secs(30))
            .await
            .unwrap();
    }

    // Throughput: 8 senders, 50 transfers each, signed ahead and sent at once across the
    // members; timed until every receipt is on member 0.
    let http: Vec<_> = ports
        .iter()
        .map(|p| {
            jsonrpsee::http_client::HttpClientBuilder::default()
                .build(format!("http://127.0.0.1:{p}"))
                .unwrap()
        })
        .collect();
    const EACH: u64 = 50;
    let signed: Vec<wisp_core::OffLedgerRequest> = users
        .iter()
        .flat_map(|u| {
            (0..EACH).map(move |n| wisp_chain::sign_request(transfer(chain, &agent(&op), 1), u, n))
        })
        .collect();
    let started = Instant::now();
    let sends: Vec<_> = signed
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let http = http[i % MEMBERS].clone();
            let bytes = borsh::to_vec(r).unwrap();
            tokio::spawn(async move { http.send_request(Bytes(bytes)).await })
        })
        .collect();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    for r in &signed {
        let id = r.id();
        let receipt = clients[0]
            .wait_receipt(&id, Duration::from_secs(120))
            .await
            .unwrap();
        assert_eq!(receipt["status"], "success", "{receipt}");
    }
    let elapsed = started.elapsed();
    eprintln!(
        "throughput, 4 members on loopback: {} transfers in {elapsed:?}: {:.0} requests/s",
        signed.len(),
        signed.len() as f64 / elapsed.as_secs_f64()
    );

    // Every member has the same blocks.
    let (height, ..) = head(&clients[0]).await;
    let all: Vec<&Client> = clients.iter().collect();
    agree_at(&all, height).await;
    agree_at(&all, height / 2).await;
    // The size of a finalization certificate, as access nodes fetch it.
    let newest = clients[0]
        .rpc("wisp_getCommitteeBlocks", rpc_params![1u64, 1u32])
        .await
        .unwrap();
    let certified = newest["certifiedHeight"].as_u64().unwrap();
    let at = clients[0]
        .rpc("wisp_getCommitteeBlocks", rpc_params![certified, 1u32])
        .await
        .unwrap();
    let certificate = at["finalization"]
        .as_str()
        .unwrap()
        .trim_start_matches("0x");
    eprintln!(
        "finalization certificate (threshold BLS12-381, commonware's encoding): {} bytes",
        certificate.len() / 2
    );

    // A contract that draws randomness (`env::random`): the raffle, deployed through one
    // member; three tickets bought through the others; once the round has closed, the draw
    // picks a ticket from the committee's seed, and every member pays the same winner.
    let deploy = CallOptions {
        gas_budget: 50_000_000,
        ..Default::default()
    };
    let price = KAS / 10;
    let r = clients[1]
        .deploy(
            &op,
            "raffle",
            &contract_wasm("raffle"),
            &serde_json::json!([price.to_string(), "20"]),
            &deploy,
        )
        .await
        .unwrap();
    assert_eq!(r["status"], "success", "{r}");
    let ticket = CallOptions {
        transfer_sompi: price,
        ..Default::default()
    };
    let mut buyers = Vec::new();
    for (i, user) in users.iter().take(3).enumerate() {
        let client = &clients[(i + 2) % MEMBERS];
        eventually_for("the raffle on the member", 30, || async {
            client
                .view("raffle", "sold", &serde_json::json!([]))
                .await
                .ok()
        })
        .await;
        let r = client
            .call(user, "raffle", "buy", &serde_json::json!([]), &ticket)
            .await
            .unwrap();
        assert_eq!(r["status"], "success", "{r}");
        buyers.push(r["sender"].clone());
        // The next buyer's member simulates `buy` on its own state (`wisp call` declares the
        // keys it saw): wait until that member has this ticket, or it would declare the same
        // slot.
        clients[(i + 3) % MEMBERS]
            .wait_receipt(&request_id(&r), Duration::from_secs(30))
            .await
            .unwrap();
    }
    // Each failed draw (the round still open) is a request too, so blocks move on.
    let mut drawn = None;
    for _ in 0..60 {
        let r = clients[0]
            .call(
                &op,
                "raffle",
                "draw",
                &serde_json::json!([]),
                &CallOptions::default(),
            )
            .await
            .unwrap();
        if r["status"] == "success" {
            drawn = Some(r);
            break;
        }
        assert!(r.to_string().contains("still open"), "{r}");
    }
    let drawn = drawn.expect("the round closed within 60 draws");
    let id = request_id(&drawn);
    let mut receipts = Vec::new();
    for client in &clients {
        receipts.push(
            client
                .wait_receipt(&id, Duration::from_secs(30))
                .await
                .unwrap(),
        );
    }
    for receipt in &receipts {
        assert_eq!(receipt, &receipts[0], "every member drew the same ticket");
    }
    let winner = &receipts[0]["events"][0]["fields"]["winner"];
    assert!(
        buyers.contains(winner),
        "the winner {winner} is one of the buyers {buyers:?}"
    );

    // An access node: the chain's node.json and the committee's committee.json, no keys. It
    // follows member 1's final blocks, checks their certificates, executes them to the same
    // headers, serves reads, and passes requests on to the committee.
    let access_dir = access_dir_from(&data[1], &root.join("access"));
    let status = wisp(
        &home,
        &[
            "committee",
            "status",
            "--data-dir",
            access_dir.to_str().unwrap(),
        ],
    );
    assert!(status.contains("--follow"), "{status}");
    let access_started = Instant::now();
    let (access_node, access, access_port) =
        start_following(&home, &access_dir, ports[1], &[]).await;
    let (height, ..) = head(&clients[1]).await;
    eventually_for("the access node to catch up", 120, || async {
        (head(&access).await.0 >= height).then_some(())
    })
    .await;
    eprintln!(
        "access node caught up with {height} blocks in {:?}",
        access_started.elapsed()
    );
    agree_at(&[&access, &clients[1]], height).await;
    // An access node serves what it follows: a second one follows the first.
    let second_dir = access_dir_from(&data[1], &root.join("access2"));
    let (second_node, second, _) = start_following(&home, &second_dir, access_port, &[]).await;
    eventually_for("the second access node to catch up", 120, || async {
        (head(&second).await.0 >= height).then_some(())
    })
    .await;
    agree_at(&[&second, &clients[1]], height).await;
    drop(second_node);
    // A third starts from a snapshot the first access node serves: the state under a header
    // a certified block attests, checked page by page against its root, then the blocks after
    // it. It holds no block from before the snapshot; restarted, it goes on from its own head.
    let third_dir = access_dir_from(&data[1], &root.join("access3"));
    let third_started = Instant::now();
    let (third_node, third, third_port) =
        start_following(&home, &third_dir, access_port, &["--snapshot"]).await;
    let (height, ..) = head(&access).await;
    eventually_for("the snapshot node to catch up", 120, || async {
        (head(&third).await.0 >= height).then_some(())
    })
    .await;
    eprintln!(
        "snapshot node caught up to block {height} in {:?}",
        third_started.elapsed()
    );
    agree_at(&[&third, &clients[1]], height).await;
    let log = std::fs::read_to_string(third_dir.join("node.log")).unwrap();
    let restored = log
        .lines()
        .find(|l| l.contains("restored the state of block"))
        .unwrap_or_else(|| panic!("no restore in the log:\n{log}"));
    eprintln!("{}", restored.trim());
    let missing = third.rpc("wisp_getBlock", rpc_params![1]).await.unwrap();
    assert!(
        missing.is_null(),
        "block 1 is from before the snapshot: {missing}"
    );
    drop(third_node);
    let third_args = [
        "--follow",
        &format!("http://127.0.0.1:{access_port}"),
        "--snapshot",
    ];
    let third_node = start_node(&home, &third_dir, third_port, &third_args);
    ready(&third).await;
    let log = std::fs::read_to_string(third_dir.join("node.log")).unwrap();
    assert!(log.contains("has a chain database already"), "{log}");
    let (height, ..) = head(&access).await;
    eventually_for("the restarted snapshot node to catch up", 120, || async {
        (head(&third).await.0 >= height).then_some(())
    })
    .await;
    agree_at(&[&third, &clients[1]], height).await;
    drop(third_node);
    // A transfer sent to the access node runs on the committee and reaches the access node.
    let r = send_one_sompi(&access, &op, &users[0]).await;
    for client in [&clients[3], &access] {
        client
            .wait_receipt(&request_id(&r), Duration::from_secs(30))
            .await
            .unwrap();
    }
    // The same balance once both have executed the same blocks (later blocks move the owner's
    // fees and the anchor budget, so a read on each at one instant may straddle a block).
    let who = agent(&op).to_raw_string();
    eventually_for(
        "the same balance on the access node and a member",
        60,
        || async {
            let (a_height, ..) = head(&access).await;
            let (m_height, ..) = head(&clients[3]).await;
            let on_access: Value = access
                .rpc("wisp_getBalance", rpc_params![who.clone()])
                .await
                .ok()?;
            let on_member: Value = clients[3]
                .rpc("wisp_getBalance", rpc_params![who.clone()])
                .await
                .ok()?;
            (a_height == m_height && on_access == on_member).then_some(())
        },
    )
    .await;
    drop(access_node);

    // A withdrawal: the committee commits it in one anchor successor and pays it in the next,
    // each signed by a quorum of members with their FROST shares; Kaspa sees one BIP340
    // signature by the committee's key.
    let payee_key =
        secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[0x77; 32]).unwrap();
    let payee = wisp_l1::address_of(
        &payee_key.x_only_public_key().0.serialize(),
        wisp_l1::Prefix::Simnet,
    );
    let started = Instant::now();
    withdraw(&clients[2], &op, &payee.to_string(), 2 * KAS).await;
    eventually_for("the withdrawal paid on Kaspa", 180, || {
        paid_exactly(&l1, &payee, &[2 * KAS])
    })
    .await;
    eprintln!(
        "withdrawal sent to paid on Kaspa by the committee: {:?}",
        started.elapsed()
    );
    for client in &clients {
        eventually_for("every member to see the withdrawal paid", 60, || {
            all_paid(client, 1)
        })
        .await;
    }

    // One of four killed, and the one that coordinates the next anchor successor at that: the
    // other three go on making blocks, and a withdrawal sent meanwhile is paid once the turn
    // passes to the next member (failover), by a quorum of the three.
    let (anchor, idle_at) = eventually_for("the anchor to be idle", 60, || async {
        let info = clients[0].rpc("wisp_chainInfo", rpc_params![]).await.ok()?;
        let anchor = &info["anchor"];
        let (index, ..) = head(&clients[0]).await;
        (anchor["inFlight"].is_null() && anchor["anchoredBlock"].as_u64() == Some(index))
            .then(|| (anchor["outpoint"].as_str().unwrap().to_string(), index))
    })
    .await;
    let (txid, output) = anchor.split_once(':').unwrap();
    let outpoint = kaspa_consensus_core::tx::TransactionOutpoint::new(
        txid.parse().unwrap(),
        output.parse().unwrap(),
    );
    let down = wisp_node::committee::first_coordinator(&outpoint, MEMBERS);
    let up: Vec<usize> = (0..MEMBERS).filter(|i| *i != down).collect();
    eprintln!("killing member {down}, which coordinates the successor of anchor {anchor} (block {idle_at})");
    nodes[down].kill().unwrap();
    nodes[down].wait().unwrap();
    for user in &users[..3] {
        send_one_sompi(&clients[up[0]], &op, user).await;
    }
    let (moved, ..) = head(&clients[up[0]]).await;
    assert!(moved > height, "three of four make blocks");
    let started = Instant::now();
    withdraw(&clients[up[1]], &op, &payee.to_string(), 3 * KAS).await;
    eventually_for("the second withdrawal paid on Kaspa", 180, || {
        paid_exactly(&l1, &payee, &[2 * KAS, 3 * KAS])
    })
    .await;
    eprintln!(
        "withdrawal paid with the first coordinator down: {:?} (a coordinator's turn is {:?})",
        started.elapsed(),
        wisp_node::committee::COORDINATOR_TURN
    );

    // Restarted, the killed member catches up: the blocks from the others, and the anchor
    // successors signed while it was down (it asks the others), so it sees both withdrawals
    // paid too.
    nodes[down] = start_member(&home, &data[down], ports[down]);
    ready(&clients[down]).await;
    // It catches up with what was finalized while it was down, and with a block made after
    // it came back. (Until the member ignored finalizations of views before its tip, the
    // ones simplex replays from its journal sent it asking for a block it had run, forever:
    // this step failed in 7 of 9 runs on a new machine.)
    send_one_sompi(&clients[up[0]], &op, &users[0]).await;
    let (now, ..) = head(&clients[up[0]]).await;
    agree_at(&all, now).await;
    // The balances are read at each member's head, and the others may already have run a
    // block after `now` (every `anchor_interval_blocks` blocks the owner pays the anchor fee,
    // 2,000,000 sompi, the difference CI saw): so wait until the members agree, as they must
    // once all have run the same blocks. (Read once, this check failed in CI with the restarted member one
    // block behind.)
    let balance_everywhere = || async {
        let mut v = Vec::new();
        for client in &clients {
            let b = client
                .rpc("wisp_getBalance", rpc_params![agent(&op).to_raw_string()])
                .await
                .ok()?;
            v.push(b.as_str()?.to_string());
        }
        v.windows(2).all(|w| w[0] == w[1]).then_some(())
    };
    eventually_for(
        "the same operator balance on every member",
        60,
        balance_everywhere,
    )
    .await;
    for client in &clients {
        eventually_for(
            "every member, the restarted one too, to see both paid",
            180,
            || all_paid(client, 2),
        )
        .await;
    }

    // Rotation: a second committee of four (new operators, new keys by their own key
    // generation) takes the chain over. Its members first follow the chain as access nodes
    // (`wisp node --follow`, checking the first committee's certificates); the owner's
    // `governance.rotate_committee` names the new committee; the first committee makes its
    // last blocks and stops; the new one continues the chain from the first's last block, the
    // first signs the anchor successor that names the new committee's key, and a withdrawal
    // is then paid by an anchor transaction the new committee signs.
    let started = Instant::now();
    let (next, _) = join_committee(&home, &root, "next");
    let next_keys = dkg_all(&home, &next);
    eprintln!("second committee's key generation: {:?}", started.elapsed());
    let next_ports: Vec<u16> = (0..MEMBERS).map(|_| free_port()).collect();
    let mut next_nodes = Vec::new();
    for (i, (d, port)) in next.iter().zip(&next_ports).enumerate() {
        std::fs::copy(chain_dir.join("node.json"), d.join("node.json")).unwrap();
        std::fs::copy(
            data[0].join("committee.json"),
            d.join("first-committee.json"),
        )
        .unwrap();
        std::fs::write(d.join("wisp.toml"), format!("l1 = \"{l1_url}\"\n")).unwrap();
        if i == 0 {
            // Run as a member before any rotation names it, the new committee would order a
            // chain of its own: refused, saying to follow.
            let early = wisp_output(
                &home,
                &[
                    "node",
                    "--data-dir",
                    d.to_str().unwrap(),
                    "--port",
                    &port.to_string(),
                ],
            );
            let stderr = String::from_utf8_lossy(&early.stderr);
            assert!(
                !early.status.success() && stderr.contains("--follow"),
                "{stderr}"
            );
        }
        next_nodes.push(start_node(
            &home,
            d,
            *port,
            &["--follow", &format!("http://127.0.0.1:{}", ports[1])],
        ));
    }
    let next_clients: Vec<Client> = next_ports
        .iter()
        .map(|p| Client::new(&format!("http://127.0.0.1:{p}")).unwrap())
        .collect();
    for client in &next_clients {
        ready(client).await;
    }
    let status: Value = serde_json::from_str(&wisp(
        &home,
        &[
            "--json",
            "committee",
            "status",
            "--data-dir",
            next[0].to_str().unwrap(),
        ],
    ))
    .unwrap();
    let args: Value = serde_json::from_str(status["rotation_args"].as_str().unwrap()).unwrap();
    assert_eq!(
        args[0].as_str().unwrap().trim_start_matches("0x"),
        next_keys["anchor_key"].as_str().unwrap()
    );
    // Only the owner rotates.
    let refused = call_as(&clients[0], &users[0], "governance.rotate_committee", &args)
        .await
        .unwrap();
    assert_eq!(refused["status"], "failed", "{refused}");
    assert!(
        refused.to_string().contains("only the chain owner"),
        "{refused}"
    );
    let rotated = call_as(&clients[0], &op, "governance.rotate_committee", &args)
        .await
        .unwrap();
    assert_eq!(rotated["status"], "success", "{rotated}");
    let last_block = rotated["returnValue"][1]
        .as_u64()
        .or_else(|| rotated["returnValue"][1].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("the rotation's last block: {rotated}"));
    let rotation_started = Instant::now();
    // The first committee stops at its last block; the new members take over from it.
    agree_at(&all, last_block).await;
    for d in &next {
        eventually_for("a next member to take over", 120, || async {
            let log = std::fs::read_to_string(d.join("node.log")).ok()?;
            let (_, after) = log.split_once("starting as its member")?;
            after.contains("committee member:").then_some(())
        })
        .await;
    }
    eprintln!(
        "rotation: the new committee took over after block {last_block}, {:?} after the rotation ran",
        rotation_started.elapsed()
    );
    let next_all: Vec<&Client> = next_clients.iter().collect();
    agree_at(&next_all, last_block).await;
    assert_eq!(
        block(&next_clients[0], last_block).await,
        block(&clients[0], last_block).await
    );
    // The new committee runs requests; the old one makes no more blocks.
    let r = send_one_sompi(&next_clients[2], &op, &users[1]).await;
    let (after, ..) = head(&next_clients[2]).await;
    assert!(after > last_block, "{r}");
    agree_at(&next_all, after).await;
    for client in &clients {
        assert_eq!(head(client).await.0, last_block, "an old member went on");
    }
    // The old committee refuses requests (nothing would run them) and says where to go.
    let late = call_as(
        &clients[0],
        &op,
        "accounts.transfer",
        &serde_json::json!([agent(&users[2]).to_raw_string(), "1"]),
    )
    .await
    .unwrap_err();
    assert!(late.to_string().contains("next committee"), "{late}");
    // An access node started after the rotation, with the first committee's committee.json,
    // follows a new member from block 1: the first committee's blocks up to the handover
    // with the first committee's certificate, then the new committee's with its key, which
    // the rotation in its own state names.
    let late_dir = access_dir_from(&data[1], &root.join("access-late"));
    let (late_node, late, _) = start_following(&home, &late_dir, next_ports[3], &[]).await;
    eventually_for(
        "the late access node to cross the handover",
        120,
        || async { (head(&late).await.0 >= after).then_some(()) },
    )
    .await;
    agree_at(&[&late, &next_clients[3]], after).await;
    drop(late_node);
    // The first committee moves the anchor to a successor naming the new committee's key.
    eventually_for(
        "the anchor to name the new committee's key",
        180,
        || async {
            let info = clients[0].rpc("wisp_chainInfo", rpc_params![]).await.ok()?;
            let anchor = &info["anchor"];
            (anchor["committeeKey"].as_str()?.trim_start_matches("0x")
                == next_keys["anchor_key"].as_str()?
                && anchor["inFlight"].is_null())
            .then_some(())
        },
    )
    .await;
    // A withdrawal through the new committee, paid by an anchor transaction only its key
    // can sign.
    let started = Instant::now();
    withdraw(&next_clients[1], &op, &payee.to_string(), 4 * KAS).await;
    eventually_for(
        "the withdrawal signed by the new committee paid on Kaspa",
        240,
        || paid_exactly(&l1, &payee, &[2 * KAS, 3 * KAS, 4 * KAS]),
    )
    .await;
    eprintln!(
        "withdrawal through the new committee paid on Kaspa: {:?}",
        started.elapsed()
    );
    // The new committee's members know every withdrawal paid: the two the first committee's
    // anchors paid (their anchor taken over from the first committee) and the one they paid.
    // It learns the last from its anchor watcher seeing the anchor spent on Kaspa: as long as
    // the payment itself may take (a run on a slow machine passed 60 s here).
    eventually_for("a new member to see every withdrawal paid", 240, || {
        all_paid(&next_clients[1], 3)
    })
    .await;
    // Restarts after the handover: a new member, started as before (with --follow), runs as
    // a member at once and catches up; an old member stays stopped at its last block.
    next_nodes[0].kill().unwrap();
    next_nodes[0].wait().unwrap();
    nodes[2].kill().unwrap();
    nodes[2].wait().unwrap();
    send_one_sompi(&next_clients[1], &op, &users[3]).await;
    next_nodes[0] = start_node(
        &home,
        &next[0],
        next_ports[0],
        &["--follow", &format!("http://127.0.0.1:{}", ports[1])],
    );
    nodes[2] = start_member(&home, &data[2], ports[2]);
    ready(&next_clients[0]).await;
    ready(&clients[2]).await;
    let log = std::fs::read_to_string(next[0].join("node.log")).unwrap();
    assert!(!log.contains("following the current committee"), "{log}");
    let (now, ..) = head(&next_clients[1]).await;
    agree_at(&next_all, now).await;
    assert_eq!(head(&clients[2]).await.0, last_block);

    drop(next_nodes);
    drop(nodes);
    miner.stop().await;
    l1.disconnect().await;
}
