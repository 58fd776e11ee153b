//! A real L1 reorg: two simnet kaspads mine apart, then connect; the one with the lighter chain
//! switches to the heavier one, and the follower reports the chain blocks it removed.

use std::time::Duration;
use wisp_l1::{Prefix, SimnetConfig, SimnetNode, Wallet};

fn wallet(seed: u8) -> Wallet {
    let keypair = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap();
    Wallet::new(keypair, Prefix::Simnet)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simnets_that_mined_apart_reorg_when_they_connect() {
    let dir = tempfile::tempdir().unwrap();
    let start =
        |name: &str| SimnetNode::start(&SimnetConfig::local(dir.path().join(name), 10)).unwrap();
    let (a, b) = (start("a"), start("b"));
    let la = a.connect().await.unwrap();
    let lb = b.connect().await.unwrap();
    let lane = kaspa_consensus_core::subnets::SubnetworkId::from_namespace(*b"wisp");
    let genesis = la.genesis_hash().await.unwrap();
    let mut a_blocks = Vec::new();
    for _ in 0..3 {
        a_blocks.push(la.mine_block(&wallet(1).address()).await.unwrap());
    }
    for _ in 0..8 {
        lb.mine_block(&wallet(2).address()).await.unwrap();
    }
    let before = la.virtual_chain_since(genesis, &lane, None).await.unwrap();
    let a_tip = before.added.last().unwrap().hash;
    la.add_peer(b.p2p_addr()).await.unwrap();
    let mut removed = Vec::new();
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let update = la.virtual_chain_since(a_tip, &lane, None).await.unwrap();
        if !update.removed.is_empty() {
            removed = update.removed;
            break;
        }
    }
    assert!(!removed.is_empty(), "a switched to b's heavier chain");
    assert!(removed.contains(&a_tip));
    la.disconnect().await;
    lb.disconnect().await;
    tokio::task::spawn_blocking(move || {
        a.shutdown();
        b.shutdown();
    })
    .await
    .unwrap();
}
