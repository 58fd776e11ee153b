//! Recording-mode simulation (`Chain::simulate_request`, `wisp_simulateRequest`): a request is
//! run once while its accesses are recorded, and the access list it returns is the one to
//! declare: the request succeeds under it with the gas the simulation reported, runs in a
//! parallel batch, and nothing narrower passes.

use wisp_core::{Access, AccessList, Call, Hname, RequestBody, RequestErrorCode};
use wisp_test::{CallOptions, TestChain};

fn balance_key(who: &wisp_core::AgentId) -> Vec<u8> {
    let mut k = b"balances\0".to_vec();
    k.extend(borsh::to_vec(who).unwrap());
    k
}

/// A chain where alice deployed the token with `supply` for herself, and bob, with no tokens.
fn token_chain(supply: u128) -> (TestChain, wisp_test::Account, wisp_test::Account, Hname) {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100_000_000_000);
    let bob = chain.new_account(0);
    let token = chain
        .deploy(
            &alice,
            "token",
            &wisp_test::contract_wasm("contracts/token"),
            &("T".to_string(), "T".to_string(), 0u8, supply),
        )
        .unwrap();
    (chain, alice, bob, token)
}

/// A `token.transfer` of `amount` to `to`.
fn transfer_body(
    chain: &TestChain,
    token: Hname,
    to: wisp_core::AgentId,
    amount: u128,
    access_list: Option<AccessList>,
) -> RequestBody {
    RequestBody {
        chain: chain.chain_id(),
        call: Call {
            target: token,
            entry_point: Hname::of("transfer"),
            args: borsh::to_vec(&(to, amount)).unwrap(),
            transfer_sompi: 0,
        },
        gas_budget: 10_000_000,
        access_list,
        time_lock: None,
    }
}

#[test]
fn the_recorded_access_list_is_exact_and_sufficient() {
    let (mut chain, alice, bob, token) = token_chain(1_000_000);
    // The body's list is ignored while recording: a wrong one does not hide accesses.
    let body = transfer_body(&chain, token, bob.agent(), 25, Some(AccessList::default()));
    let sim = chain
        .chain()
        .simulate_request(alice.agent(), &body)
        .unwrap();
    assert!(sim.receipt.error.is_none(), "{:?}", sim.receipt.error);
    let list = sim.access_list.expect("a transfer fits an access list");
    // Both balances are written, as exact keys; nothing is both read and written; the
    // sender's base balance and nonce are implicit.
    let written: Vec<&Access> = list.writes.iter().collect();
    for who in [alice.agent(), bob.agent()] {
        assert!(
            written
                .iter()
                .any(|a| a.contract == token
                    && a.key_prefix.as_deref() == Some(&balance_key(&who)[..])),
            "{list:?}"
        );
    }
    assert!(list.writes.iter().all(|w| !list.reads.contains(w)));
    assert!(list
        .reads
        .iter()
        .chain(&list.writes)
        .all(|a| a.contract != Hname::of("accounts")));
    assert!(list.entries() <= AccessList::MAX_ENTRIES);

    // Declared, the transfer succeeds with the gas the simulation reported.
    let declared = CallOptions {
        access_list: Some(list.clone()),
        ..CallOptions::default()
    };
    let receipt = chain
        .call_with(&alice, token, "transfer", &(bob.agent(), 25u128), &declared)
        .unwrap();
    assert_eq!(receipt.gas_used, sim.receipt.gas_used);
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(bob.agent(),))
            .unwrap(),
        25
    );

    // Any narrower list fails: drop each write in turn.
    for i in 0..list.writes.len() {
        let mut narrower = list.clone();
        let dropped = narrower.writes.remove(i);
        narrower.reads.retain(|r| r != &dropped);
        let options = CallOptions {
            access_list: Some(narrower),
            ..CallOptions::default()
        };
        let failure = chain
            .call_with(&alice, token, "transfer", &(bob.agent(), 1u128), &options)
            .unwrap_err();
        assert!(
            failure.is_request(RequestErrorCode::AccessListViolation),
            "without {dropped:?}: {:?}",
            failure.error
        );
    }
}

#[test]
fn a_failing_call_reports_its_receipt_and_the_accesses_before_the_failure() {
    let (mut chain, alice, bob, token) = token_chain(10);
    // Bob holds no tokens: the transfer fails after reading his balance.
    let body = transfer_body(&chain, token, alice.agent(), 5, None);
    chain.deposit(&bob, 1_000_000_000);
    let sim = chain.chain().simulate_request(bob.agent(), &body).unwrap();
    assert!(sim.receipt.error.is_some());
    let list = sim.access_list.expect("the accesses before the failure");
    assert!(list
        .reads
        .iter()
        .chain(&list.writes)
        .any(|a| a.contract == token
            && a.key_prefix.as_deref() == Some(&balance_key(&bob.agent())[..])));
    // Nothing was committed by either simulation.
    assert_eq!(chain.chain().nonce(&bob.agent()).unwrap(), 0);
}
