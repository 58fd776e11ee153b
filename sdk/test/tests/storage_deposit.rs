//! Storage deposits (NEAR's storage staking): the bytes a request adds to contracts' state
//! lock sompi from its sender, held per contract and returned to the sender of the request
//! that frees them; a sender that cannot pay stores nothing; coins stay conserved.

use wisp_test::{AgentId, CallOptions, ContractId, Hname, RequestErrorCode, TestChain};

const KAS: u64 = 100_000_000;

fn price(chain: &TestChain) -> u64 {
    chain
        .view(Hname::of("governance"), "storage_price", &())
        .unwrap()
}

fn deposit_of(chain: &TestChain, contract: Hname) -> (u64, u64) {
    chain
        .view(Hname::of("accounts"), "storage_deposit", &(contract,))
        .unwrap()
}

/// Every sompi pegged in is a balance (of `accounts`, the owner or `contract`) or
/// `contract`'s storage deposit.
fn assert_conserved(chain: &TestChain, accounts: &[AgentId], contract: Hname) {
    let contract_agent = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: contract,
    });
    let held: u64 = accounts
        .iter()
        .chain([&chain.owner().agent(), &contract_agent])
        .map(|a| chain.balance(a))
        .sum();
    let total: u64 = chain.view(Hname::of("accounts"), "total", &()).unwrap();
    assert_eq!(
        held + deposit_of(chain, contract).1,
        total,
        "every sompi is a balance or a deposit"
    );
}

/// The example escrow, deployed by `by`.
fn deploy_escrow(chain: &mut TestChain, by: &wisp_test::Account) -> Hname {
    chain
        .deploy(
            by,
            "escrow",
            &wisp_test::contract_wasm("contracts/escrow"),
            &(),
        )
        .unwrap()
}

/// The counter fixture, deployed by `by`.
fn deploy_counter(chain: &mut TestChain, by: &wisp_test::Account) -> Hname {
    chain
        .deploy(
            by,
            "ctr",
            &wisp_test::contract_wasm("sdk/test/fixtures/counter"),
            &(),
        )
        .unwrap()
}

#[test]
fn storing_locks_a_deposit_and_freeing_returns_it() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let bob = chain.new_account(KAS);
    let price = price(&chain);
    assert_eq!(price, 100, "the default: 10 KB lock 0.01 KAS");
    let escrow = deploy_escrow(&mut chain, &alice);
    // `init` stored the id counter: the deployer paid for it.
    let (bytes, sompi) = deposit_of(&chain, escrow);
    assert!(bytes > 40, "{bytes}");
    assert_eq!(sompi, bytes * price);

    let before = chain.balance(&alice.agent());
    let head = chain.chain().head().unwrap().index;
    let opened = chain
        .call_with(
            &alice,
            escrow,
            "open",
            &(bob.agent(), head + 100),
            &CallOptions {
                transfer_sompi: 10 * KAS,
                ..Default::default()
            },
        )
        .unwrap();
    let locked = opened.storage_locked_sompi;
    assert!(locked > 0 && locked.is_multiple_of(price), "{locked}");
    assert_eq!(opened.storage_refunded_sompi, 0);
    assert_eq!(
        chain.balance(&alice.agent()),
        before - opened.fee_sompi - 10 * KAS - locked,
        "the sender pays the fee, the transfer and the deposit"
    );
    assert_eq!(
        deposit_of(&chain, escrow),
        (bytes + locked / price, sompi + locked)
    );

    // Releasing deletes the deal: its bytes' deposit goes back to the releasing sender.
    let before = chain.balance(&alice.agent());
    let released = chain.call(&alice, escrow, "release", &(0u64,)).unwrap();
    assert_eq!(released.storage_refunded_sompi, locked);
    assert_eq!(released.storage_locked_sompi, 0);
    assert_eq!(
        chain.balance(&alice.agent()),
        before - released.fee_sompi + locked
    );
    assert_eq!(deposit_of(&chain, escrow), (bytes, sompi));

    assert_conserved(&chain, &[alice.agent(), bob.agent()], escrow);
}

#[test]
fn a_sender_that_cannot_pay_the_deposit_stores_nothing() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let counter = deploy_counter(&mut chain, &alice);
    // Enough to reserve the fee of a 1M-gas budget, not for the counter's first entry.
    let carol = chain.new_account(1_000_000 + 100);
    let options = CallOptions {
        gas_budget: 1_000_000,
        ..Default::default()
    };
    let failure = chain
        .call_with(&carol, counter, "bump", &(1u64,), &options)
        .unwrap_err();
    assert!(
        failure.is_request(RequestErrorCode::InsufficientFunds),
        "{failure:?}"
    );
    assert!(
        failure.error.message.contains("storage deposit"),
        "{failure:?}"
    );
    assert!(failure.receipt.fee_sompi > 0, "the work is still paid for");
    assert_eq!(failure.receipt.storage_locked_sompi, 0);
    assert_eq!(chain.view::<_, u64>(counter, "count", &()).unwrap(), 0);
    assert_eq!(deposit_of(&chain, counter), (0, 0));
    // Once someone has stored the entry, changing it in place needs no deposit.
    let first = chain.call(&alice, counter, "bump", &(1u64,)).unwrap();
    assert!(first.storage_locked_sompi > 0);
    chain.deposit(&carol, 1_000_000);
    let again = chain
        .call_with(&carol, counter, "bump", &(1u64,), &options)
        .unwrap();
    assert_eq!(again.storage_locked_sompi, 0);
    assert_eq!(chain.view::<_, u64>(counter, "count", &()).unwrap(), 2);
}

#[test]
fn only_the_owner_sets_the_price_and_zero_turns_deposits_off() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let owner = chain.owner().clone();
    chain.deposit(&owner, 10 * KAS);
    let governance = Hname::of("governance");
    let refused = chain
        .call(&alice, governance, "set_storage_price", &(0u64,))
        .unwrap_err();
    assert!(
        refused.is_request(RequestErrorCode::Unauthorized),
        "{refused:?}"
    );
    let too_high = chain
        .call(
            &owner,
            governance,
            "set_storage_price",
            &(wisp_chain::MAX_STORAGE_DEPOSIT_SOMPI_PER_BYTE + 1),
        )
        .unwrap_err();
    assert!(too_high.is_request(RequestErrorCode::Malformed));
    chain
        .call(&owner, governance, "set_storage_price", &(0u64,))
        .unwrap();
    assert_eq!(price(&chain), 0);
    let counter = deploy_counter(&mut chain, &alice);
    let r = chain.call(&alice, counter, "bump", &(1u64,)).unwrap();
    assert_eq!(r.storage_locked_sompi, 0);
    // The bytes are still counted, at no deposit.
    let (bytes, sompi) = deposit_of(&chain, counter);
    assert!(bytes > 0);
    assert_eq!(sompi, 0);
}

/// A freed byte returns the smaller of what the contract's bytes locked on average and the
/// current price: a price cut lowers refunds (the rest stays locked with the contract), a
/// price rise never pays out more than was locked; coins stay conserved either way.
#[test]
fn a_price_change_never_pays_out_more_than_was_locked() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let bob = chain.new_account(KAS);
    let owner = chain.owner().clone();
    chain.deposit(&owner, 10 * KAS);
    let governance = Hname::of("governance");
    let escrow = deploy_escrow(&mut chain, &alice);
    let head = chain.chain().head().unwrap().index;
    let open = |chain: &mut TestChain| {
        chain
            .call_with(
                &alice,
                escrow,
                "open",
                &(bob.agent(), head + 1_000),
                &CallOptions {
                    transfer_sompi: KAS,
                    ..Default::default()
                },
            )
            .unwrap()
    };
    let set_price = |chain: &mut TestChain, price: u64| {
        chain
            .call(&owner, governance, "set_storage_price", &(price,))
            .unwrap();
    };
    // Locked at 100 per byte, freed at 50: half comes back, half stays with the contract.
    let locked = open(&mut chain).storage_locked_sompi;
    let deal_bytes = locked / 100;
    set_price(&mut chain, 50);
    let (bytes, sompi) = deposit_of(&chain, escrow);
    let released = chain.call(&alice, escrow, "release", &(0u64,)).unwrap();
    assert_eq!(released.storage_refunded_sompi, deal_bytes * 50);
    assert_eq!(
        deposit_of(&chain, escrow),
        (bytes - deal_bytes, sompi - deal_bytes * 50)
    );
    // The price rises to 1,000: a deal locks 1,000 per byte, and returns only what the
    // contract's bytes locked on average (the record's sompi over its bytes), not 1,000.
    set_price(&mut chain, 1_000);
    let locked = open(&mut chain).storage_locked_sompi;
    assert_eq!(locked, deal_bytes * 1_000);
    let (bytes, sompi) = deposit_of(&chain, escrow);
    let released = chain.call(&alice, escrow, "release", &(1u64,)).unwrap();
    let average = u128::from(deal_bytes) * u128::from(sompi) / u128::from(bytes);
    assert_eq!(u128::from(released.storage_refunded_sompi), average);
    assert!(released.storage_refunded_sompi < locked);
    let (after_bytes, after_sompi) = deposit_of(&chain, escrow);
    assert_eq!(after_bytes, bytes - deal_bytes);
    assert_eq!(after_sompi, sompi - released.storage_refunded_sompi);
    assert!(
        after_sompi >= after_bytes * 50,
        "what stays covers the rest"
    );

    assert_conserved(&chain, &[alice.agent(), bob.agent()], escrow);
}
