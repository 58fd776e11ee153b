//! A real Kaspa reorg under a Wisp node: two simnet kaspads mine apart; the node follows the
//! lighter one and executes a deposit (paid with coins that exist only on that branch) and an
//! off-ledger request; then the kaspads connect and the heavier branch wins. The node rolls the
//! chain back to the last block whose L1 reference survived: the deposit is gone (its
//! transaction is invalid on the new branch), the off-ledger request that depended on it is
//! not re-executed, and the chain continues on the new branch.

use std::time::Duration;
use wisp_chain::{Chain, ChainParams, Genesis};
use wisp_core::{AgentId, Call, Hname, RequestBody};
use wisp_l1::{Prefix, SimnetConfig, SimnetNode, Wallet};

const KAS: u64 = 100_000_000;

fn wallet(seed: u8) -> Wallet {
    let keypair = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap();
    Wallet::new(keypair, Prefix::Simnet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kaspa_reorg_undoes_what_the_lost_branch_carried() {
    let dir = tempfile::tempdir().unwrap();
    let start =
        |name: &str| SimnetNode::start(&SimnetConfig::local(dir.path().join(name), 10)).unwrap();
    let (a, b) = (start("a"), start("b"));
    let lb = b.connect().await.unwrap();
    let la = a.connect().await.unwrap();
    let depositor = wallet(1);

    // A node following kaspad A. Its anchor is not on L1 (this test is about the follower);
    // deposits go to the deposit script of that covenant id.
    let committee = wallet(9);
    let committee_key = committee.x_only_key();
    let rules = wisp_settlement::AnchorRules {
        max_fee_sompi: KAS / 10,
    };
    let covenant = kaspa_hashes::Hash::from_bytes([42; 32]);
    let genesis = Genesis {
        name: "reorg".into(),
        owner: AgentId::Address(committee.x_only_key()),
        params: ChainParams::default(),
        timestamp_ms: 0,
        protocol: wisp_chain::Protocol::default(),
        anchor: Some(covenant.as_bytes()),
    };
    let chain = Chain::open(&dir.path().join("chain"), &genesis).unwrap();
    let node = wisp_node::Node::new(
        chain,
        "reorg".into(),
        la,
        wisp_l1::simnet_params(10),
        Prefix::Simnet,
        Some(committee),
        wisp_node::ChainAnchor {
            rules,
            committee_key,
            genesis: wisp_settlement::tx::AnchorUtxo {
                outpoint: kaspa_consensus_core::tx::TransactionOutpoint::new(covenant, 0),
                amount_sompi: KAS,
                state: wisp_settlement::AnchorState::genesis(committee_key),
                covenant_id: covenant,
                block_daa_score: 0,
            },
        },
        wisp_node::NodeMode::Follower,
    )
    .unwrap();
    let la = node.l1();

    // Branch A: the depositor's coins exist only here. B mines a longer branch meanwhile.
    for _ in 0..15 {
        la.mine_block(&depositor.address()).await.unwrap();
    }
    for _ in 0..60 {
        lb.mine_block(&wallet(2).address()).await.unwrap();
    }
    let deposit_script = kaspa_txscript::pay_to_address_script(&node.deposit_address());
    let payload = wisp_core::LanePayload {
        requests: vec![],
        beneficiary: None,
    }
    .encode();
    depositor
        .send(
            la,
            &wisp_l1::simnet_params(10),
            kaspa_consensus_core::subnets::SubnetworkId::from(wisp_core::LANE_ID),
            payload,
            &[(deposit_script, 5 * KAS)],
        )
        .await
        .unwrap();
    let who = AgentId::Address(depositor.x_only_key());
    for _ in 0..50 {
        la.mine_block(&wallet(3).address()).await.unwrap();
        node.produce_block().await.unwrap();
        if node.chain().balance(&who).unwrap() > 0 {
            break;
        }
    }
    assert_eq!(
        node.chain().balance(&who).unwrap(),
        5 * KAS,
        "credited on branch A"
    );
    // An off-ledger request spending that deposit.
    let request = wisp_chain::sign_request(
        RequestBody {
            chain: node.chain().chain_id(),
            call: Call {
                target: Hname::of("accounts"),
                entry_point: Hname::of("transfer"),
                args: borsh::to_vec(&(AgentId::Address([8; 32]), 2 * KAS)).unwrap(),
                transfer_sompi: 0,
            },
            gas_budget: 100_000,
            access_list: None,
            time_lock: None,
        },
        depositor.keypair(),
        0,
    );
    node.submit(request).unwrap();
    node.produce_block().await.unwrap();
    assert_eq!(
        node.chain().balance(&AgentId::Address([8; 32])).unwrap(),
        2 * KAS
    );
    let before = node.chain().head().unwrap();

    // Join the kaspads: A switches to B's heavier branch.
    la.add_peer(b.p2p_addr()).await.unwrap();
    let mut rolled_back = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        node.produce_block().await.unwrap();
        if node.chain().head().unwrap().index < before.index {
            rolled_back = true;
            break;
        }
    }
    assert!(
        rolled_back,
        "the node rolled back the blocks of the lost branch"
    );
    // Follow the new branch for a while: nothing of branch A comes back.
    for _ in 0..5 {
        la.mine_block(&wallet(3).address()).await.unwrap();
        node.produce_block().await.unwrap();
    }
    assert_eq!(
        node.chain().balance(&who).unwrap(),
        0,
        "the deposit vanished with its branch"
    );
    assert_eq!(node.chain().balance(&AgentId::Address([8; 32])).unwrap(), 0);
    assert_eq!(node.chain().total_balance().unwrap(), 0);
    assert_eq!(
        node.mempool_len(),
        0,
        "the request has nothing to spend and is not queued"
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
