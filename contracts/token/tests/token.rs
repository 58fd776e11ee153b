//! The token contract through the harness: ERC-20 behaviour, events, errors, gas and fees.

use wisp_test::{events, AgentId, CallOptions, Hname, ReceiptStatus, RequestErrorCode, TestChain};
use wisp_token::{Approval, TokenClient, TokenError, Transfer};

const KAS: u64 = 100_000_000;

fn setup() -> (TestChain, wisp_test::Account, Hname) {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let wasm = wisp_test::contract_wasm("contracts/token");
    let token = chain
        .deploy(
            &alice,
            "token",
            &wasm,
            &(
                "Wisp Token".to_string(),
                "WSP".to_string(),
                18u8,
                1_000_000u128,
            ),
        )
        .expect("deploy");
    (chain, alice, token)
}

#[test]
fn metadata_and_initial_supply() {
    let (chain, alice, token) = setup();
    assert_eq!(
        chain.view::<_, String>(token, "name", &()).unwrap(),
        "Wisp Token"
    );
    assert_eq!(
        chain.view::<_, String>(token, "symbol", &()).unwrap(),
        "WSP"
    );
    assert_eq!(chain.view::<_, u8>(token, "decimals", &()).unwrap(), 18);
    assert_eq!(
        chain.view::<_, u128>(token, "total_supply", &()).unwrap(),
        1_000_000
    );
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(alice.agent(),))
            .unwrap(),
        1_000_000
    );
    assert_eq!(
        chain
            .view::<_, Option<AgentId>>(token, "owner", &())
            .unwrap(),
        Some(alice.agent())
    );
}

#[test]
fn transfer_moves_balances_emits_event_and_charges_fee() {
    let (mut chain, alice, token) = setup();
    let bob = chain.new_account(0);
    let before = chain.balance(&alice.agent());
    let receipt = chain
        .call(&alice, token, "transfer", &(bob.agent(), 250u128))
        .unwrap();
    assert_eq!(receipt.status, ReceiptStatus::Success);
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(alice.agent(),))
            .unwrap(),
        999_750
    );
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(bob.agent(),))
            .unwrap(),
        250
    );
    let transfers: Vec<Transfer> = events(&receipt, "Transfer");
    assert_eq!(
        transfers,
        vec![Transfer {
            from: alice.agent(),
            to: bob.agent(),
            amount: 250
        }]
    );
    // Fee = gas used × gas price (1 sompi), paid from alice's on-chain base-token balance.
    assert!(receipt.gas_used > 10_000);
    assert_eq!(receipt.fee_sompi, receipt.gas_used);
    // Bob's balance is a new entry of the token's storage: alice locks its deposit (its key,
    // its value and 40 bytes, at 100 sompi a byte); her own entry only changed.
    assert_eq!(receipt.storage_refunded_sompi, 0);
    assert!(
        receipt.storage_locked_sompi >= 100 * (40 + 16),
        "{receipt:?}"
    );
    assert_eq!(
        chain.balance(&alice.agent()),
        before - receipt.fee_sompi - receipt.storage_locked_sompi
    );
}

#[test]
fn transfer_more_than_balance_fails_with_contract_code_and_changes_nothing() {
    let (mut chain, alice, token) = setup();
    let bob = chain.new_account(KAS);
    // The typed client: no function names as strings, decoded results, the typed error.
    let mut as_bob = TokenClient::with_backend(chain.caller(&bob), token);
    let err = as_bob.transfer(&alice.agent(), 1).unwrap_err();
    assert_eq!(err.contract_error(), Some(&TokenError::InsufficientBalance));
    let failure = err.failure().unwrap();
    assert!(failure.receipt.events.is_empty());
    assert!(
        failure.receipt.fee_sompi > 0,
        "the fee is charged even when the call fails"
    );
    assert_eq!(as_bob.balance_of(&alice.agent()).unwrap(), 1_000_000);
}

#[test]
fn approve_and_transfer_from_spend_the_allowance() {
    let (mut chain, alice, token) = setup();
    let bob = chain.new_account(KAS);
    let carol = chain.new_account(0);
    let mut as_alice = TokenClient::with_backend(chain.caller(&alice), token);
    as_alice.approve(&bob.agent(), 100).unwrap();
    let receipt = as_alice.backend().last_receipt().unwrap();
    assert_eq!(
        events::<Approval>(receipt, "Approval"),
        vec![Approval {
            owner: alice.agent(),
            spender: bob.agent(),
            amount: 100
        }]
    );
    let mut as_bob = TokenClient::with_backend(chain.caller(&bob), token);
    as_bob
        .transfer_from(&alice.agent(), &carol.agent(), 60)
        .unwrap();
    assert_eq!(as_bob.allowance(&alice.agent(), &bob.agent()).unwrap(), 40);
    assert_eq!(as_bob.balance_of(&carol.agent()).unwrap(), 60);
    let err = as_bob
        .transfer_from(&alice.agent(), &carol.agent(), 41)
        .unwrap_err();
    assert_eq!(
        err.contract_error(),
        Some(&TokenError::InsufficientAllowance)
    );
}

#[test]
fn only_the_owner_mints_and_supply_cannot_overflow() {
    let (mut chain, alice, token) = setup();
    let bob = chain.new_account(KAS);
    let err = TokenClient::with_backend(chain.caller(&bob), token)
        .mint(&bob.agent(), 5)
        .unwrap_err();
    assert_eq!(err.contract_error(), Some(&TokenError::NotOwner));
    let mut as_alice = TokenClient::with_backend(chain.caller(&alice), token);
    as_alice.mint(&bob.agent(), 5).unwrap();
    assert_eq!(as_alice.total_supply().unwrap(), 1_000_005);
    let err = as_alice.mint(&bob.agent(), u128::MAX).unwrap_err();
    assert_eq!(err.contract_error(), Some(&TokenError::SupplyOverflow));
}

#[test]
fn bad_arguments_unknown_functions_and_views_are_typed_errors() {
    let (mut chain, alice, token) = setup();
    let failure = chain
        .call_raw(
            &alice,
            token,
            "transfer",
            vec![1, 2, 3],
            &CallOptions::default(),
        )
        .unwrap_err();
    // The SDK's decoding failure: a contract-level claim, never a request-level error
    // (hardening defect 21).
    assert!(
        failure.is_contract(wisp_test::CONTRACT_BAD_ARGUMENTS_CODE),
        "{failure:?}"
    );
    let failure = chain.call(&alice, token, "no_such_entry", &()).unwrap_err();
    assert!(failure.is_request(RequestErrorCode::UnknownEntryPoint));
    // A view is not an entry point.
    let failure = chain
        .call(&alice, token, "balance_of", &(alice.agent(),))
        .unwrap_err();
    assert!(failure.is_request(RequestErrorCode::UnknownEntryPoint));
    let failure = chain
        .call(&alice, Hname::of("nope"), "transfer", &())
        .unwrap_err();
    assert!(failure.is_request(RequestErrorCode::UnknownContract));
}

#[test]
fn snapshot_and_revert() {
    let (mut chain, alice, token) = setup();
    let bob = chain.new_account(0);
    let snap = chain.snapshot();
    chain
        .call(&alice, token, "transfer", &(bob.agent(), 7u128))
        .unwrap();
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(bob.agent(),))
            .unwrap(),
        7
    );
    chain.revert(snap);
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(bob.agent(),))
            .unwrap(),
        0
    );
    chain
        .call(&alice, token, "transfer", &(bob.agent(), 3u128))
        .unwrap();
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(bob.agent(),))
            .unwrap(),
        3
    );
}

/// `Transfer`'s `from` and `to` are `#[indexed]`: the node finds the transfers to one account
/// from its event index, without reading the others.
#[test]
fn transfers_are_found_by_an_indexed_field() {
    let (mut chain, alice, token) = setup();
    let bob = chain.new_account(0);
    let carol = chain.new_account(0);
    let mut as_alice = TokenClient::with_backend(chain.caller(&alice), token);
    for (to, amount) in [(&bob, 1), (&carol, 2), (&bob, 3)] {
        as_alice.transfer(&to.agent(), amount).unwrap();
    }
    let head = chain.chain().head().unwrap().index;
    let db = chain.chain().db();
    let find = |field: u8, who: &wisp_test::Account| -> Vec<u128> {
        let value = wisp_sdk::borsh::to_vec(&who.agent()).unwrap();
        db.event_positions_where(
            token,
            Some("Transfer"),
            Some((field, &value)),
            (0, head),
            100,
        )
        .unwrap()
        .into_iter()
        .map(|(block, request, event)| {
            let receipts = db.block_receipts(block).unwrap();
            events::<Transfer>(&receipts[request as usize], "Transfer")[event as usize].amount
        })
        .collect()
    };
    assert_eq!(find(1, &bob), vec![1, 3]);
    assert_eq!(find(1, &carol), vec![2]);
    assert_eq!(find(0, &bob), Vec::<u128>::new());
    assert_eq!(find(0, &alice), vec![1, 2, 3]);
}
