//! Determinism: the same requests on two independent chains (separate runtimes, module caches
//! and stores) give the same state roots, receipts and block hashes, block by block.

use wisp_test::{AgentId, ContractId, Hname, TestChain};

const E18: u128 = 1_000_000_000_000_000_000;
const KAS: u64 = 100_000_000;

fn scenario() -> Vec<(u64, wisp_core::Hash32, wisp_core::Hash32)> {
    let mut chain = TestChain::new();
    let alice = chain.new_account(1_000 * KAS);
    let bob = chain.new_account(50 * KAS);
    let token = wisp_test::contract_wasm("contracts/token");
    let a = chain
        .deploy(
            &alice,
            "token_a",
            &token,
            &("A".to_string(), "A".to_string(), 18u8, 1_000 * E18),
        )
        .unwrap();
    let b = chain
        .deploy(
            &alice,
            "token_b",
            &token,
            &("B".to_string(), "B".to_string(), 18u8, 1_000 * E18),
        )
        .unwrap();
    let amm = chain
        .deploy(
            &alice,
            "amm",
            &wisp_test::contract_wasm("contracts/amm"),
            &(a, b),
        )
        .unwrap();
    let pair = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: amm,
    });
    chain
        .call(&alice, a, "approve", &(pair, u128::MAX))
        .unwrap();
    chain
        .call(&alice, b, "approve", &(pair, u128::MAX))
        .unwrap();
    chain
        .call(
            &alice,
            amm,
            "add_liquidity",
            &(50 * E18, 80 * E18, alice.agent()),
        )
        .unwrap();
    for i in 0..5u128 {
        chain
            .call(
                &alice,
                amm,
                "swap_exact_in",
                &(
                    if i.is_multiple_of(2) { a } else { b },
                    E18 + i,
                    0u128,
                    bob.agent(),
                ),
            )
            .unwrap();
    }
    // Failures are part of history too.
    let _ = chain.call(&bob, a, "transfer", &(alice.agent(), 1u128));
    let _ = chain.call(&bob, Hname::of("nope"), "x", &());
    let head = chain.chain().head().unwrap().index;
    (0..=head)
        .map(|i| {
            let h = chain.chain().db().block(i).unwrap();
            (i, h.state_root, h.hash())
        })
        .collect()
}

#[test]
fn two_runs_give_identical_roots_and_block_hashes() {
    let first = scenario();
    let second = scenario();
    assert!(first.len() > 10);
    assert_eq!(first, second);
}
