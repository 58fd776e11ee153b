//! The AMM pair through the harness, against Uniswap V2's published pair test vectors
//! (v2-core test/UniswapV2Pair.spec.ts: `swapTestCases` and `mint`).

use wisp_amm::{AmmError, Swap, MINIMUM_LIQUIDITY};
use wisp_test::{events, Account, Hname, TestChain};

const E18: u128 = 1_000_000_000_000_000_000;
const KAS: u64 = 100_000_000;

struct Pair {
    chain: TestChain,
    alice: Account,
    token_a: Hname,
    token_b: Hname,
    amm: Hname,
}

fn setup() -> Pair {
    let mut chain = TestChain::new();
    let alice = chain.new_account(1_000 * KAS);
    let token = wisp_test::contract_wasm("contracts/token");
    let supply = 10_000 * E18;
    let token_a = chain
        .deploy(
            &alice,
            "token_a",
            &token,
            &("A".to_string(), "A".to_string(), 18u8, supply),
        )
        .unwrap();
    let token_b = chain
        .deploy(
            &alice,
            "token_b",
            &token,
            &("B".to_string(), "B".to_string(), 18u8, supply),
        )
        .unwrap();
    let amm_wasm = wisp_test::contract_wasm("contracts/amm");
    let amm = chain
        .deploy(&alice, "amm", &amm_wasm, &(token_a, token_b))
        .unwrap();
    let pair = wisp_test::AgentId::Contract(wisp_core_contract(chain.chain_id(), amm));
    chain
        .call(&alice, token_a, "approve", &(pair, u128::MAX))
        .unwrap();
    chain
        .call(&alice, token_b, "approve", &(pair, u128::MAX))
        .unwrap();
    Pair {
        chain,
        alice,
        token_a,
        token_b,
        amm,
    }
}

fn wisp_core_contract(chain: wisp_test::ChainId, hname: Hname) -> wisp_test::ContractId {
    wisp_test::ContractId { chain, hname }
}

#[test]
fn first_mint_locks_minimum_liquidity() {
    let mut p = setup();
    // Uniswap's `mint` test: 1e18 and 4e18 give sqrt(4e36) = 2e18 liquidity, 1000 of it locked.
    let r = p
        .chain
        .call(
            &p.alice,
            p.amm,
            "add_liquidity",
            &(E18, 4 * E18, p.alice.agent()),
        )
        .unwrap();
    let minted: u128 = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(minted, 2 * E18 - MINIMUM_LIQUIDITY);
    assert_eq!(
        p.chain.view::<_, u128>(p.amm, "total_supply", &()).unwrap(),
        2 * E18
    );
    assert_eq!(
        p.chain
            .view::<_, (u128, u128)>(p.amm, "get_reserves", &())
            .unwrap(),
        (E18, 4 * E18)
    );
    // Too little for the locked minimum.
    let mut q = setup();
    let f = q
        .chain
        .call(
            &q.alice,
            q.amm,
            "add_liquidity",
            &(1000u128, 1000u128, q.alice.agent()),
        )
        .unwrap_err();
    assert!(f.is_contract(AmmError::InsufficientLiquidityMinted as u32));
}

#[test]
fn swaps_reproduce_uniswap_v2_vectors() {
    // (amount in, reserve in, reserve out, expected out) from UniswapV2Pair.spec.ts.
    let cases: [(u128, u128, u128, u128); 4] = [
        (E18, 5 * E18, 10 * E18, 1_662_497_915_624_478_906),
        (E18, 10 * E18, 5 * E18, 453_305_446_940_074_565),
        (2 * E18, 5 * E18, 10 * E18, 2_851_015_155_847_869_602),
        (2 * E18, 10 * E18, 5 * E18, 831_248_957_812_239_453),
    ];
    for (amount_in, reserve_in, reserve_out, expected) in cases {
        let mut p = setup();
        // The view alone.
        let quoted: u128 = p
            .chain
            .view(
                p.amm,
                "get_amount_out",
                &(amount_in, reserve_in, reserve_out),
            )
            .unwrap();
        assert_eq!(quoted, expected);
        // And a real swap of token A into a pool with those reserves.
        p.chain
            .call(
                &p.alice,
                p.amm,
                "add_liquidity",
                &(reserve_in, reserve_out, p.alice.agent()),
            )
            .unwrap();
        let bob = p.chain.new_account(10 * KAS);
        let before_b: u128 = p
            .chain
            .view(p.token_b, "balance_of", &(bob.agent(),))
            .unwrap();
        assert_eq!(before_b, 0);
        // Asking for one more than the formula gives must fail (Uniswap's K check).
        let f = p
            .chain
            .call(
                &p.alice,
                p.amm,
                "swap_exact_in",
                &(p.token_a, amount_in, expected + 1, bob.agent()),
            )
            .unwrap_err();
        assert!(f.is_contract(AmmError::InsufficientOutputAmount as u32));
        let r = p
            .chain
            .call(
                &p.alice,
                p.amm,
                "swap_exact_in",
                &(p.token_a, amount_in, expected, bob.agent()),
            )
            .unwrap();
        let out: u128 = borsh::from_slice(&r.return_data).unwrap();
        assert_eq!(out, expected);
        assert_eq!(
            p.chain
                .view::<_, u128>(p.token_b, "balance_of", &(bob.agent(),))
                .unwrap(),
            expected
        );
        assert_eq!(
            p.chain
                .view::<_, (u128, u128)>(p.amm, "get_reserves", &())
                .unwrap(),
            (reserve_in + amount_in, reserve_out - expected)
        );
        let swaps: Vec<Swap> = events(&r, "Swap");
        assert_eq!(swaps.len(), 1);
        assert_eq!(swaps[0].amount_out, expected);
        // Token Transfer events of the nested calls are in the same receipt, in call order.
        assert_eq!(r.events.iter().filter(|e| e.topic == "Transfer").count(), 2);
    }
}

#[test]
fn a_failed_nested_call_undoes_everything() {
    let mut p = setup();
    p.chain
        .call(
            &p.alice,
            p.amm,
            "add_liquidity",
            &(5 * E18, 10 * E18, p.alice.agent()),
        )
        .unwrap();
    let bob = p.chain.new_account(10 * KAS);
    // Bob has no token A and approved nothing: the pull fails, so the swap fails whole.
    let f = p
        .chain
        .call(
            &bob,
            p.amm,
            "swap_exact_in",
            &(p.token_a, E18, 0u128, bob.agent()),
        )
        .unwrap_err();
    assert!(f.is_contract(AmmError::TokenCallFailed as u32), "{f:?}");
    assert!(f.receipt.events.is_empty());
    assert_eq!(
        p.chain
            .view::<_, (u128, u128)>(p.amm, "get_reserves", &())
            .unwrap(),
        (5 * E18, 10 * E18)
    );
    let f = p
        .chain
        .call(
            &bob,
            p.amm,
            "swap_exact_in",
            &(Hname::of("other"), E18, 0u128, bob.agent()),
        )
        .unwrap_err();
    assert!(f.is_contract(AmmError::InvalidToken as u32));
}

#[test]
fn remove_liquidity_returns_a_proportional_share() {
    let mut p = setup();
    let r = p
        .chain
        .call(
            &p.alice,
            p.amm,
            "add_liquidity",
            &(4 * E18, 4 * E18, p.alice.agent()),
        )
        .unwrap();
    let minted: u128 = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(minted, 4 * E18 - MINIMUM_LIQUIDITY);
    let before: u128 = p
        .chain
        .view(p.token_a, "balance_of", &(p.alice.agent(),))
        .unwrap();
    let r = p
        .chain
        .call(
            &p.alice,
            p.amm,
            "remove_liquidity",
            &(minted, p.alice.agent()),
        )
        .unwrap();
    let (a, b): (u128, u128) = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(
        (a, b),
        (4 * E18 - MINIMUM_LIQUIDITY, 4 * E18 - MINIMUM_LIQUIDITY)
    );
    let after: u128 = p
        .chain
        .view(p.token_a, "balance_of", &(p.alice.agent(),))
        .unwrap();
    assert_eq!(after - before, a);
    assert_eq!(
        p.chain.view::<_, u128>(p.amm, "total_supply", &()).unwrap(),
        MINIMUM_LIQUIDITY
    );
}
