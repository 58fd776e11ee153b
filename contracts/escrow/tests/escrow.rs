//! The escrow contract: base tokens held by a contract and released under conditions.

use wisp_escrow::{Closed, EscrowClient, EscrowError};
use wisp_test::{events, Account, AgentId, CallOptions, ContractId, Hname, TestChain, VmErrorCode};

const KAS: u64 = 100_000_000;

/// A chain with the escrow deployed by Alice: (chain, Alice, Bob, the escrow's hname, its
/// agent), the accounts funded with the given sompi.
fn deployed(alice_sompi: u64, bob_sompi: u64) -> (TestChain, Account, Account, Hname, AgentId) {
    let mut chain = TestChain::new();
    let alice = chain.new_account(alice_sompi);
    let bob = chain.new_account(bob_sompi);
    let escrow = chain
        .deploy(
            &alice,
            "escrow",
            &wisp_test::contract_wasm("contracts/escrow"),
            &(),
        )
        .unwrap();
    let agent = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: escrow,
    });
    (chain, alice, bob, escrow, agent)
}

#[test]
fn release_claim_and_cancel_move_base_tokens() {
    let (mut chain, alice, bob, escrow, escrow_agent) = deployed(100 * KAS, KAS);
    let with_funds = CallOptions {
        transfer_sompi: 10 * KAS,
        ..Default::default()
    };

    // Open and release.
    let head = chain.chain().head().unwrap().index;
    let r = chain
        .call_with(
            &alice,
            escrow,
            "open",
            &(bob.agent(), head + 100),
            &with_funds,
        )
        .unwrap();
    let id: u64 = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(chain.balance(&escrow_agent), 10 * KAS);
    let bob_before = chain.balance(&bob.agent());
    let f = chain.call(&bob, escrow, "release", &(id,)).unwrap_err();
    assert!(f.is_contract(EscrowError::NotDepositor as u32));
    let f = chain.call(&bob, escrow, "claim", &(id,)).unwrap_err();
    assert!(f.is_contract(EscrowError::TooEarly as u32));
    let bob_after_failures = chain.balance(&bob.agent());
    let r = chain.call(&alice, escrow, "release", &(id,)).unwrap();
    assert_eq!(events::<Closed>(&r, "Closed")[0].amount_sompi, 10 * KAS);
    assert_eq!(chain.balance(&bob.agent()), bob_after_failures + 10 * KAS);
    assert!(
        bob_after_failures < bob_before,
        "failed calls still paid fees"
    );
    assert_eq!(chain.balance(&escrow_agent), 0);

    // Open, let the deadline pass, claim.
    let head = chain.chain().head().unwrap().index;
    let r = chain
        .call_with(
            &alice,
            escrow,
            "open",
            &(bob.agent(), head + 2),
            &with_funds,
        )
        .unwrap();
    let id: u64 = borsh::from_slice(&r.return_data).unwrap();
    chain.advance_blocks(3);
    let f = chain.call(&alice, escrow, "cancel", &(id,)).unwrap_err();
    assert!(f.is_contract(EscrowError::TooLate as u32));
    chain.call(&bob, escrow, "claim", &(id,)).unwrap();
    assert_eq!(
        chain
            .view::<_, Option<(AgentId, AgentId, u64, u64)>>(escrow, "deal", &(id,))
            .unwrap(),
        None
    );

    // Open and cancel.
    let head = chain.chain().head().unwrap().index;
    let r = chain
        .call_with(
            &alice,
            escrow,
            "open",
            &(bob.agent(), head + 50),
            &with_funds,
        )
        .unwrap();
    let id: u64 = borsh::from_slice(&r.return_data).unwrap();
    let alice_before = chain.balance(&alice.agent());
    let r = chain.call(&alice, escrow, "cancel", &(id,)).unwrap();
    // Cancelling deletes the deal: its storage deposit comes back with the funds.
    assert!(r.storage_refunded_sompi > 0);
    assert_eq!(
        chain.balance(&alice.agent()),
        alice_before + 10 * KAS + r.storage_refunded_sompi - r.fee_sompi
    );

    // Nothing attached.
    let f = chain
        .call(&alice, escrow, "open", &(bob.agent(), 5u64))
        .unwrap_err();
    assert!(f.is_contract(EscrowError::NothingAttached as u32));
    // Attaching more than the sender holds fails before running.
    let poor = chain.new_account(KAS / 10);
    let f = chain
        .call_with(&poor, escrow, "open", &(bob.agent(), 5u64), &with_funds)
        .unwrap_err();
    assert!(
        f.is_request(wisp_test::RequestErrorCode::InsufficientFunds),
        "{f:?}"
    );
    let _ = VmErrorCode::InsufficientBalance;
}

#[test]
fn coins_are_conserved() {
    let (mut chain, alice, bob, escrow, _) = deployed(50 * KAS, 50 * KAS);
    let with_funds = CallOptions {
        transfer_sompi: 3 * KAS,
        ..Default::default()
    };
    chain
        .call_with(
            &alice,
            escrow,
            "open",
            &(bob.agent(), 1_000u64),
            &with_funds,
        )
        .unwrap();
    chain
        .call_with(
            &bob,
            escrow,
            "open",
            &(alice.agent(), 1_000u64),
            &with_funds,
        )
        .unwrap();
    chain.call(&alice, escrow, "release", &(0u64,)).unwrap();
    let escrow_agent = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: escrow,
    });
    let total: u64 = [
        alice.agent(),
        bob.agent(),
        escrow_agent,
        chain.owner().agent(),
    ]
    .iter()
    .map(|a| chain.balance(a))
    .sum::<u64>()
        + chain
            .view::<_, (u64, u64)>(
                wisp_test::Hname::of("accounts"),
                "storage_deposit",
                &(escrow,),
            )
            .unwrap()
            .1;
    let recorded: u64 = chain
        .view(wisp_test::Hname::of("accounts"), "total", &())
        .unwrap();
    assert_eq!(
        total,
        100 * KAS,
        "pegged in = balances + storage deposits (fees went to the owner)"
    );
    assert_eq!(recorded, total);
}

/// `release_to_l1`: the escrow pays its beneficiary on Kaspa from the contract's own account
/// (an outbox entry of the contract's); the fee comes out of the deal, and a deal whose
/// beneficiary is a contract, or too small to withdraw, is refused and stays open.
#[test]
fn release_to_l1_pays_the_beneficiary_on_kaspa() {
    let (mut chain, alice, bob, escrow, escrow_agent) = deployed(100 * KAS, KAS);
    let open = |chain: &mut TestChain, to: AgentId, sompi: u64| -> u64 {
        let r = chain
            .call_with(
                &alice,
                escrow,
                "open",
                &(to, 1_000u64),
                &CallOptions {
                    transfer_sompi: sompi,
                    ..Default::default()
                },
            )
            .unwrap();
        borsh::from_slice(&r.return_data).unwrap()
    };

    let id = open(&mut chain, bob.agent(), 5 * KAS);
    let f = chain
        .call(&bob, escrow, "release_to_l1", &(id,))
        .unwrap_err();
    assert!(f.is_contract(EscrowError::NotDepositor as u32));
    let r = chain.call(&alice, escrow, "release_to_l1", &(id,)).unwrap();
    let seq: u64 = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(events::<Closed>(&r, "Closed")[0].amount_sompi, 5 * KAS);
    assert_eq!(chain.balance(&escrow_agent), 0, "the whole deal left");
    let outbox = chain.chain().outbox(seq, 10).unwrap();
    assert_eq!(outbox.len(), 1);
    let AgentId::Address(bob_key) = bob.agent() else {
        panic!("an account is an address")
    };
    assert_eq!(outbox[0].from, escrow_agent);
    assert_eq!(outbox[0].to, bob_key);
    assert_eq!(
        outbox[0].amount_sompi,
        5 * KAS - wisp_sdk::WITHDRAWAL_FEE_SOMPI
    );

    // A contract beneficiary, and a deal too small to pay on L1 after the fee: refused, and
    // the deals stay open with their coins.
    let to_contract = open(&mut chain, escrow_agent, 5 * KAS);
    let too_small = open(&mut chain, bob.agent(), KAS);
    for id in [to_contract, too_small] {
        let f = chain
            .call(&alice, escrow, "release_to_l1", &(id,))
            .unwrap_err();
        assert!(f.is_contract(EscrowError::NotPayableOnL1 as u32), "{f:?}");
    }
    assert_eq!(chain.balance(&escrow_agent), 6 * KAS);
    assert_eq!(chain.chain().outbox(0, 10).unwrap().len(), 1);
}

#[test]
fn typed_client_attaches_sompi_to_the_next_call_only() {
    let (mut chain, alice, bob, escrow, escrow_agent) = deployed(100 * KAS, KAS);
    let head = chain.chain().head().unwrap().index;
    let mut as_alice = EscrowClient::with_backend(chain.caller(&alice), escrow);
    let id = as_alice
        .attach_sompi(3 * KAS)
        .open(&bob.agent(), head + 10)
        .unwrap();
    assert_eq!(
        as_alice.deal(id).unwrap(),
        Some((alice.agent(), bob.agent(), 3 * KAS, head + 10))
    );
    // The attachment was spent by that call: the next one carries nothing.
    let err = as_alice.open(&bob.agent(), head + 10).unwrap_err();
    assert_eq!(err.contract_error(), Some(&EscrowError::NothingAttached));
    as_alice.release(id).unwrap();
    let receipt = as_alice.into_backend().last_receipt().cloned().unwrap();
    assert_eq!(events::<Closed>(&receipt, "Closed").len(), 1);
    assert_eq!(chain.balance(&escrow_agent), 0);
    assert_eq!(chain.balance(&bob.agent()), 4 * KAS);
}
