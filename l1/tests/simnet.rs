//! A real in-process simnet: mine, send a lane transaction with a payload and a deposit, and
//! follow the accepted order until it shows up with its sender.

use kaspa_consensus_core::subnets::SubnetworkId;
use kaspa_txscript::pay_to_address_script;
use wisp_l1::{Prefix, SimnetConfig, SimnetNode, Wallet};

fn wallet(seed: u8) -> Wallet {
    let keypair = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap();
    Wallet::new(keypair, Prefix::Simnet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lane_transactions_are_followed_in_accepted_order() {
    let dir = tempfile::tempdir().unwrap();
    let maturity = 10;
    let node =
        SimnetNode::start(&SimnetConfig::local(dir.path().join("kaspad"), maturity)).unwrap();
    let client = node.connect().await.unwrap();
    let params = wisp_l1::simnet_params(maturity);
    let alice = wallet(1);
    let chain_key = wallet(2);
    for _ in 0..maturity + 5 {
        client.mine_block(&alice.address()).await.unwrap();
    }
    let lane = SubnetworkId::from_namespace(*b"wisp");
    let deposit = (pay_to_address_script(&chain_key.address()), 300_000_000u64);
    let payload = b"WSP\x01hello".to_vec();
    let tx_id = alice
        .send(&client, &params, lane, payload.clone(), &[deposit])
        .await
        .unwrap();
    let mut cursor = client.genesis_hash().await.unwrap();
    let mut found = None;
    for _ in 0..50 {
        client.mine_block(&alice.address()).await.unwrap();
        let update = client
            .virtual_chain_since(cursor, &lane, None)
            .await
            .unwrap();
        assert!(update.removed.is_empty());
        for block in &update.added {
            for tx in &block.lane_txs {
                if tx.tx_id == tx_id {
                    found = Some(tx.clone());
                }
            }
        }
        if let Some(last) = update.added.last() {
            cursor = last.hash;
        }
        if found.is_some() {
            break;
        }
    }
    let tx = found.expect("the lane transaction is accepted within a few blocks");
    assert_eq!(tx.payload, payload);
    assert_eq!(tx.sender_key(), Some(alice.x_only_key()));
    let to_chain = tx.paid_to(&wisp_l1::LaneScript::from(&pay_to_address_script(
        &chain_key.address(),
    )));
    assert_eq!(to_chain, 300_000_000);
    client.disconnect().await;
    tokio::task::spawn_blocking(move || node.shutdown())
        .await
        .unwrap();
}
