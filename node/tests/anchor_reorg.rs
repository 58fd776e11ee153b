//! A Kaspa reorg that undoes accepted anchor transactions, on two real simnets.
//!
//! The chain is created on kaspad A and B syncs it (the anchor's genesis is on both); then A
//! bans B, so they mine apart. On A the node credits two deposits (one paid with coins that
//! exist only on A), advances the anchor and pays a withdrawal. B mines a heavier branch; the
//! kaspads connect and A switches to it. On the new branch the anchor transactions are undone
//! and the one that swept the A-only deposit can never be accepted again. The node must go
//! back to the anchor Kaspa holds, forget the payment it had recorded, replace the dead
//! transaction, and advance the anchor on the new branch — with the books balanced against
//! kaspad at the end.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use wisp_core::{AgentId, Call, Hname, RequestBody};
use wisp_l1::{L1Client, Prefix, SimnetConfig, SimnetNode, Wallet};
use wisp_node::{AnchorProgress, Node};

const KAS: u64 = 100_000_000;
const MATURITY: u64 = 10;
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn wallet(seed: u8) -> Wallet {
    let keypair = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap();
    Wallet::new(keypair, Prefix::Simnet)
}

/// Pays `sompi` from `from` to the chain's deposit address in a lane transaction.
async fn deposit(l1: &L1Client, node: &Node, from: &Wallet, sompi: u64) {
    let payload = wisp_core::LanePayload {
        requests: vec![],
        beneficiary: None,
    }
    .encode();
    from.send(
        l1,
        &wisp_l1::simnet_params(MATURITY),
        kaspa_consensus_core::subnets::SubnetworkId::from(wisp_core::LANE_ID),
        payload,
        &[(
            kaspa_txscript::pay_to_address_script(&node.deposit_address()),
            sompi,
        )],
    )
    .await
    .unwrap();
}

/// Submits a signed off-ledger call of `accounts.<entry>` by `from` with the next nonce.
fn call(node: &Node, from: &Wallet, entry: &str, args: Vec<u8>) {
    let who = AgentId::Address(from.x_only_key());
    let nonce = node.chain().nonce(&who).unwrap();
    let request = wisp_chain::sign_request(
        RequestBody {
            chain: node.chain().chain_id(),
            call: Call {
                target: Hname::of("accounts"),
                entry_point: Hname::of(entry),
                args,
                transfer_sompi: 0,
            },
            gas_budget: 100_000,
            access_list: None,
            time_lock: None,
        },
        from.keypair(),
        nonce,
    );
    node.submit(request).unwrap();
}

async fn total_at(l1: &L1Client, address: &wisp_l1::Address) -> u64 {
    l1.spendable_utxos(address, 0)
        .await
        .unwrap()
        .iter()
        .map(|(_, e)| e.amount)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_that_undoes_anchor_transactions_moves_the_anchor_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = SimnetNode::start(&SimnetConfig::local(dir.path().join("a"), MATURITY)).unwrap();
    let la = a.connect().await.unwrap();
    let funder = wallet(1);
    let depositor = wallet(2);
    let payee = wallet(3);

    // The chain is born on A; the funder (its owner) keeps spare mature coins.
    let data = dir.path().join("node");
    wisp_node::datadir::create_chain(wisp_node::datadir::CreateChain {
        l1: &la,
        data_dir: &data,
        name: "reorg".into(),
        funder: *funder.keypair(),
        owner: None,
        anchor_sompi: KAS,
        coinbase_maturity: Some(MATURITY),
        committee_key: None,
        mine: true,
        progress: &|_| {},
    })
    .await
    .unwrap();
    for _ in 0..MATURITY + 10 {
        la.mine_block(&funder.address()).await.unwrap();
    }

    // B syncs A (the anchor's genesis included), then A bans B: they mine apart.
    let b = SimnetNode::start(&SimnetConfig::local(dir.path().join("b"), MATURITY)).unwrap();
    let lb = b.connect().await.unwrap();
    lb.add_peer(a.p2p_addr()).await.unwrap();
    let target = la.virtual_daa_score().await.unwrap();
    for _ in 0..200 {
        if lb.virtual_daa_score().await.unwrap() >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        lb.virtual_daa_score().await.unwrap() >= target,
        "B synced A"
    );
    la.ban_peer(LOOPBACK).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b_before = lb.virtual_daa_score().await.unwrap();
    la.mine_block(&funder.address()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        lb.virtual_daa_score().await.unwrap(),
        b_before,
        "A's blocks no longer reach B"
    );

    let node =
        wisp_node::datadir::open(&data, la, wisp_node::NodeMode::Devnet { miner: wallet(7) })
            .unwrap();
    let la = node.l1();
    let genesis_anchor = node.anchor_status().unwrap();

    // Branch A: the owner deposits from coins both branches have; the depositor from coins
    // mined on A only.
    for _ in 0..MATURITY + 5 {
        la.mine_block(&depositor.address()).await.unwrap();
    }
    deposit(la, &node, &funder, 5 * KAS).await;
    deposit(la, &node, &depositor, 10 * KAS).await;
    let owner = AgentId::Address(funder.x_only_key());
    let who = AgentId::Address(depositor.x_only_key());
    for _ in 0..50 {
        node.mine(1).await.unwrap();
        if node.chain().balance(&who).unwrap() > 0 && node.chain().balance(&owner).unwrap() > 0 {
            break;
        }
    }
    assert_eq!(node.chain().balance(&who).unwrap(), 10 * KAS);
    // A withdrawal to the payee, then blocks until the anchor has paid it on A.
    call(
        &node,
        &depositor,
        "withdraw",
        borsh::to_vec(&(AgentId::Address(payee.x_only_key()), 2 * KAS)).unwrap(),
    );
    node.mine(1).await.unwrap();
    for _ in 0..80 {
        if node.withdrawal_paid_by(0).unwrap().is_some()
            && node.anchor_status().unwrap().in_flight.is_none()
        {
            break;
        }
        call(
            &node,
            &depositor,
            "transfer",
            borsh::to_vec(&(owner, 1u64)).unwrap(),
        );
        node.mine(1).await.unwrap();
    }
    assert!(
        node.withdrawal_paid_by(0).unwrap().is_some(),
        "paid on branch A"
    );
    assert_eq!(total_at(la, &payee.address()).await, 2 * KAS);
    let on_a = node.anchor_status().unwrap();
    assert!(on_a.block_index > 0);

    // B mines a heavier branch; the kaspads connect and A switches to it.
    let heavier = la.virtual_daa_score().await.unwrap() + 60;
    while lb.virtual_daa_score().await.unwrap() < heavier {
        lb.mine_block(&wallet(8).address()).await.unwrap();
    }
    la.unban_peer(LOOPBACK).await.unwrap();
    la.add_peer(b.p2p_addr()).await.unwrap();
    for _ in 0..400 {
        if total_at(la, &payee.address()).await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        total_at(la, &payee.address()).await,
        0,
        "the payout was undone with its branch"
    );

    // The node follows: the chain rolls back, and the anchor goes back to the one Kaspa holds.
    let mut progress = Vec::new();
    for _ in 0..20 {
        node.produce_block().await.unwrap();
        progress.push(node.advance_anchor().await.unwrap());
        if progress
            .iter()
            .any(|p| matches!(p, AnchorProgress::RolledBack(_)))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        progress.contains(&AnchorProgress::RolledBack(genesis_anchor.block_index)),
        "back to the genesis anchor: {progress:?}"
    );
    assert_eq!(
        node.withdrawal_paid_by(0).unwrap(),
        None,
        "the undone payment is forgotten"
    );
    assert_eq!(
        node.chain().balance(&who).unwrap(),
        0,
        "the A-only deposit vanished"
    );

    // On the new branch the owner pays for anchoring again; the node replaces the dead
    // transaction (it sweeps the vanished deposit) and advances the anchor.
    deposit(la, &node, &funder, 5 * KAS).await;
    let mut advanced = false;
    for _ in 0..120 {
        if node.chain().balance(&owner).unwrap() > KAS {
            call(
                &node,
                &funder,
                "transfer",
                borsh::to_vec(&(AgentId::Address([9; 32]), 1u64)).unwrap(),
            );
        }
        node.mine(1).await.unwrap();
        let status = node.anchor_status().unwrap();
        if status.block_index > genesis_anchor.block_index && status.in_flight.is_none() {
            advanced = true;
            break;
        }
    }
    assert!(advanced, "the anchor advanced on the new branch");

    // Kaspa agrees, and the books balance: anchor + unswept deposits = the chain's total +
    // fees paid but not yet spent + the genesis value.
    let status = node.anchor_status().unwrap();
    let state = wisp_settlement::AnchorState {
        block_index: status.block_index,
        header_hash: status.header_hash,
        outbox: status.outbox,
        committee_key: node.anchor().committee_key,
    };
    let address = node.anchor().rules.address(&state, Prefix::Simnet).unwrap();
    assert_eq!(total_at(la, &address).await, status.amount_sompi);
    let unswept = total_at(la, &node.deposit_address()).await;
    assert_eq!(
        status.amount_sompi + unswept,
        node.chain().total_balance().unwrap() + node.chain().anchor_fees().unwrap()
            - status.fees_spent_sompi
            + KAS
    );

    node.l1().disconnect().await;
    lb.disconnect().await;
    tokio::task::spawn_blocking(move || {
        a.shutdown();
        b.shutdown();
    })
    .await
    .unwrap();
}
