//! The escrow contract: base tokens held by a contract and released under conditions.

use wisp_escrow::{Closed, EscrowError};
use wisp_test::{events, AgentId, CallOptions, ContractId, TestChain, VmErrorCode};

const KAS: u64 = 100_000_000;

#[test]
fn release_claim_and_cancel_move_base_tokens() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let bob = chain.new_account(KAS);
    let escrow = chain
        .deploy(
            &alice,
            "escrow",
            &wisp_test::contract_wasm("contracts/escrow"),
            &(),
        )
        .unwrap();
    let escrow_agent = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: escrow,
    });
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
    assert_eq!(
        chain.balance(&alice.agent()),
        alice_before + 10 * KAS - r.fee_sompi
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
    let mut chain = TestChain::new();
    let alice = chain.new_account(50 * KAS);
    let bob = chain.new_account(50 * KAS);
    let escrow = chain
        .deploy(
            &alice,
            "escrow",
            &wisp_test::contract_wasm("contracts/escrow"),
            &(),
        )
        .unwrap();
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
    .sum();
    let recorded: u64 = chain
        .view(wisp_test::Hname::of("accounts"), "total", &())
        .unwrap();
    assert_eq!(
        total,
        100 * KAS,
        "deposits = sum of balances (fees went to the owner)"
    );
    assert_eq!(recorded, total);
}
