//! L1 reorgs: blocks whose Kaspa reference left the selected chain are undone, and the same
//! requests accepted again on the new branch give the same state as before.

use wisp_chain::{BlockInputs, L1Ref, OnLedgerBody, OnLedgerRequest};
use wisp_core::{AgentId, Hash32};
use wisp_test::TestChain;

fn l1(tag: u8, daa: u64) -> L1Ref {
    L1Ref {
        block_hash: Hash32([tag; 32]),
        daa_score: daa,
        timestamp_ms: 1_900_000_000_000 + daa,
    }
}

fn deposit(tx: u8, who: u8, amount: u64) -> OnLedgerRequest {
    OnLedgerRequest {
        l1_tx_id: Hash32([tx; 32]),
        index: 0,
        sender: AgentId::Address([who; 32]),
        deposit_sompi: amount,
        body: OnLedgerBody::DepositOnly,
    }
}

#[test]
fn a_reorg_rolls_back_to_the_last_surviving_l1_reference_and_replays() {
    let chain = TestChain::new();
    let c = chain.chain();
    let run = |l1: L1Ref, on_ledger: Vec<OnLedgerRequest>| {
        c.execute_block(BlockInputs {
            randomness: None,
            l1,
            on_ledger,
            off_ledger: vec![],
        })
        .unwrap()
        .header
    };
    let b1 = run(l1(1, 10), vec![deposit(1, 7, 100)]);
    let b2 = run(l1(2, 11), vec![deposit(2, 7, 50)]);
    let b3 = run(l1(3, 12), vec![deposit(3, 8, 25)]);
    assert_eq!(c.balance(&AgentId::Address([7; 32])).unwrap(), 150);

    // Kaspa drops chain blocks 2 and 3 (tip first); block 1 survives.
    assert_eq!(
        c.rollback_l1(&[Hash32([3; 32]), Hash32([2; 32])]).unwrap(),
        Some((b3.index, b1.index))
    );
    assert_eq!(c.head().unwrap(), b1);
    assert_eq!(c.balance(&AgentId::Address([7; 32])).unwrap(), 100);
    assert_eq!(c.balance(&AgentId::Address([8; 32])).unwrap(), 0);
    assert!(
        !c.is_processed(&deposit(2, 7, 50).id()).unwrap(),
        "undone requests can run again"
    );

    // The new branch accepts the same transactions in one chain block.
    let b2_new = run(l1(9, 11), vec![deposit(2, 7, 50), deposit(3, 8, 25)]);
    assert_eq!(b2_new.index, b2.index);
    assert_eq!(c.balance(&AgentId::Address([7; 32])).unwrap(), 150);
    assert_eq!(c.balance(&AgentId::Address([8; 32])).unwrap(), 25);
    // An unrelated reorg changes nothing.
    assert_eq!(c.rollback_l1(&[Hash32([42; 32])]).unwrap(), None);
}
