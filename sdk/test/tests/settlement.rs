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

/// `accounts.withdraw` debits the amount and the L1 fee, queues an outbox entry in order, and
/// refuses what the anchor could not pay.
#[test]
fn withdrawals_are_debited_and_queued_in_the_outbox() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(10 * KAS);
    let to = wisp_test::AgentId::Address([7; 32]);
    let accounts = Hname::of("accounts");
    let before_total: u64 = chain.view(accounts, "total", &()).unwrap();
    let r = chain
        .call(&alice, accounts, "withdraw", &(to, 2 * KAS))
        .unwrap();
    let seq: u64 = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(seq, 0);
    let cost = 2 * KAS + wisp_chain::WITHDRAWAL_FEE_SOMPI;
    assert_eq!(chain.balance(&alice.agent()), 10 * KAS - cost - r.fee_sompi);
    let total: u64 = chain.view(accounts, "total", &()).unwrap();
    assert_eq!(total, before_total - cost);
    let fees: u64 = chain.view(accounts, "anchor_fees", &()).unwrap();
    assert_eq!(fees, wisp_chain::WITHDRAWAL_FEE_SOMPI);
    let r = chain
        .call(&alice, accounts, "withdraw", &(to, KAS))
        .unwrap();
    assert_eq!(borsh::from_slice::<u64>(&r.return_data).unwrap(), 1);
    let outbox: Vec<(u64, wisp_test::AgentId, wisp_test::AgentId, u64, u64)> =
        chain.view(accounts, "outbox", &(0u64, 10u32)).unwrap();
    assert_eq!(outbox.len(), 2);
    assert_eq!(
        (outbox[0].0, outbox[0].1, outbox[0].2, outbox[0].3),
        (0, alice.agent(), to, 2 * KAS)
    );
    assert_eq!((outbox[1].0, outbox[1].3), (1, KAS));
    let entries = chain.chain().outbox(1, 10).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].to, [7; 32]);

    // Refused, nothing debited but the fee: below the minimum, to a contract, more than held.
    let held = chain.balance(&alice.agent());
    let e = chain
        .call(&alice, accounts, "withdraw", &(to, KAS - 1))
        .unwrap_err();
    assert!(e.error.message.contains("at least"), "{e:?}");
    let e = chain
        .call(
            &alice,
            accounts,
            "withdraw",
            &(
                wisp_test::AgentId::Contract(wisp_core::ContractId {
                    chain: chain.chain_id(),
                    hname: Hname::of("token"),
                }),
                KAS,
            ),
        )
        .unwrap_err();
    assert!(e.error.message.contains("Kaspa address"), "{e:?}");
    let e = chain
        .call(&alice, accounts, "withdraw", &(to, 100 * KAS))
        .unwrap_err();
    assert!(
        e.is_vm(wisp_test::VmErrorCode::InsufficientBalance),
        "{e:?}"
    );
    let fees_paid = held - chain.balance(&alice.agent());
    assert!(
        fees_paid < KAS / 100,
        "only request fees were charged: {fees_paid}"
    );
    assert_eq!(chain.chain().outbox(0, 10).unwrap().len(), 2);
}

/// Contract payouts: a contract withdraws from its own account to a Kaspa address with
/// `withdraw_to_l1`; the outbox entry is the contract's, and a view cannot withdraw.
#[test]
fn a_contract_withdraws_to_l1_from_its_own_account() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(10 * KAS);
    let key = [9u8; 32];
    let wat = format!(
        r#"(module
            (import "wisp" "withdraw_to_l1" (func $w (param i32 i64) (result i64)))
            (import "wisp" "set_return" (func $ret (param i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 0) "{key}")
            (func (export "ep:init"))
            (func (export "ep:pay")
                (i64.store (i32.const 64) (call $w (i32.const 0) (i64.const {amount})))
                (call $ret (i32.const 64) (i32.const 8)))
            (func (export "view:peek")
                (drop (call $w (i32.const 0) (i64.const {amount})))))"#,
        key = key.iter().map(|b| format!("\\{b:02x}")).collect::<String>(),
        amount = 2 * KAS,
    );
    let payer = chain
        .deploy(&alice, "payer", &wat::parse_str(&wat).unwrap(), &())
        .unwrap();
    let payer_agent = wisp_test::AgentId::Contract(wisp_core::ContractId {
        chain: chain.chain_id(),
        hname: payer,
    });
    // Unfunded: the contract cannot pay amount + fee.
    let e = chain.call(&alice, payer, "pay", &()).unwrap_err();
    assert!(
        e.is_vm(wisp_test::VmErrorCode::InsufficientBalance),
        "{e:?}"
    );
    chain
        .call(
            &alice,
            Hname::of("accounts"),
            "transfer",
            &(payer_agent, 3 * KAS),
        )
        .unwrap();
    let r = chain.call(&alice, payer, "pay", &()).unwrap();
    assert_eq!(borsh::from_slice::<u64>(&r.return_data).unwrap(), 0);
    assert_eq!(
        chain.balance(&payer_agent),
        3 * KAS - 2 * KAS - wisp_chain::WITHDRAWAL_FEE_SOMPI
    );
    let entry = &chain.chain().outbox(0, 1).unwrap()[0];
    assert_eq!(
        (entry.from, entry.to, entry.amount_sompi),
        (payer_agent, key, 2 * KAS)
    );
    // A view cannot withdraw.
    assert!(chain.view::<_, ()>(payer, "peek", &()).is_err());
}

/// `governance.rotate_committee`: only the owner, only a key someone can sign for, one rotation
/// at a time; the record fixes the outgoing committee's last block (the call's block + 32)
/// and which committee made every block.
#[test]
fn a_committee_rotation_is_recorded_with_its_handover_block() {
    use wisp_core::{Hash32, RequestErrorCode};
    let mut chain = TestChain::new();
    let owner = chain.owner().clone();
    chain.deposit(&owner, 100 * KAS);
    let stranger = chain.new_account(100 * KAS);
    let gov = Hname::of("governance");
    let anchor_key = Hash32(chain.new_account(KAS).x_only_key());
    let good = (
        anchor_key,
        vec![3u8; 96],
        b"wisp-committee-v1/next".to_vec(),
    );
    let f = chain
        .call(&stranger, gov, "rotate_committee", &good)
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    // 0xff.. is above the field prime: no point has it as its x coordinate.
    for bad in [
        (Hash32([0xff; 32]), good.1.clone(), good.2.clone()),
        (anchor_key, Vec::new(), good.2.clone()),
        (anchor_key, vec![1; 193], good.2.clone()),
        (anchor_key, good.1.clone(), vec![1; 129]),
    ] {
        let f = chain
            .call(&owner, gov, "rotate_committee", &bad)
            .unwrap_err();
        assert!(f.is_request(RequestErrorCode::BadArguments), "{f:?}");
    }
    assert_eq!(chain.chain().committee_epoch().unwrap(), 0);
    let r = chain.call(&owner, gov, "rotate_committee", &good).unwrap();
    let at = chain.chain().head().unwrap().index;
    let (epoch, last): (u64, u64) = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!((epoch, last), (1, at + wisp_chain::HANDOVER_DELAY));
    /// `governance.committee`'s answer: epoch, last block, anchor key, certificate key,
    /// namespace.
    type Rotation = (u64, u64, Hash32, Vec<u8>, Vec<u8>);
    let seen: Option<Rotation> = chain.view(gov, "committee", &()).unwrap();
    assert_eq!(
        seen,
        Some((1, last, anchor_key, good.1.clone(), good.2.clone()))
    );
    let c = chain.chain();
    assert_eq!(
        c.committee_for_block(last).unwrap(),
        None,
        "the outgoing committee's last"
    );
    assert_eq!(
        c.committee_for_block(last + 1).unwrap().map(|r| r.epoch),
        Some(1)
    );
    // A second rotation waits for the first to finish.
    let f = chain
        .call(&owner, gov, "rotate_committee", &good)
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    assert!(
        f.error.message.contains(&format!("until block {last}")),
        "{f:?}"
    );
    let head = chain.chain().head().unwrap().index;
    chain.advance_blocks(last - head);
    let r = chain.call(&owner, gov, "rotate_committee", &good).unwrap();
    let (epoch, last2): (u64, u64) = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(epoch, 2);
    let c = chain.chain();
    assert_eq!(
        c.committee_for_block(last + 1).unwrap().map(|r| r.epoch),
        Some(1)
    );
    assert_eq!(
        c.committee_for_block(last2).unwrap().map(|r| r.epoch),
        Some(1)
    );
    assert_eq!(
        c.committee_for_block(last2 + 1).unwrap().map(|r| r.epoch),
        Some(2)
    );
}
