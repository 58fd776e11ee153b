//! The chain's side of settlement: every anchoring interval the owner pays the next anchor
//! transaction's L1 fee out of what it earned, burned from its balance and the chain's total,
//! so the anchor (which pays that fee on Kaspa) stays exactly as full as the chain owes.

use wisp_chain::ChainParams;
use wisp_test::{Hname, TestChain};

const KAS: u64 = 100_000_000;

#[test]
fn the_owner_pays_the_anchor_fee_every_interval_from_its_balance() {
    let mut chain = TestChain::with_params(ChainParams {
        anchor_interval_blocks: 4,
        anchor_fee_sompi: 1_000,
        ..ChainParams::default()
    });
    let owner = chain.owner().clone();
    let paid = |chain: &TestChain| -> u64 {
        chain
            .view(Hname::of("accounts"), "anchor_fees", &())
            .unwrap()
    };
    let total =
        |chain: &TestChain| -> u64 { chain.view(Hname::of("accounts"), "total", &()).unwrap() };
    // Block 1: an owner with nothing pays nothing, even at the interval.
    chain.advance_blocks(3); // blocks 1..=3
    assert_eq!(paid(&chain), 0);
    chain.advance_blocks(1); // block 4: due, but the owner holds nothing
    assert_eq!(paid(&chain), 0);
    chain.deposit(&owner, KAS); // block 5
    assert_eq!(chain.balance(&owner.agent()), KAS);
    chain.advance_blocks(3); // blocks 6, 7, 8: block 8 is due
    assert_eq!(paid(&chain), 1_000);
    assert_eq!(chain.balance(&owner.agent()), KAS - 1_000);
    assert_eq!(total(&chain), KAS - 1_000);
    chain.advance_blocks(8); // blocks 9..=16: two more intervals
    assert_eq!(paid(&chain), 3_000);
    // The chain's total still equals the sum of balances.
    assert_eq!(total(&chain), chain.balance(&owner.agent()));
}

#[test]
fn the_harness_chain_does_not_pay_towards_anchoring() {
    let mut chain = TestChain::new();
    let owner = chain.owner().clone();
    chain.deposit(&owner, KAS);
    chain.advance_blocks(30);
    assert_eq!(chain.balance(&owner.agent()), KAS);
}
