//! Time-locked requests: an on-ledger request whose `not_before` has not come waits in the
//! chain's time-lock queue (state) and runs exactly once when due, or gets an `expired`
//! receipt; off-ledger requests are refused outside their window; the queue is bounded, paid
//! for, rolled back with its blocks and kept across restarts.

use wisp_chain::{BlockInputs, Chain, Genesis, L1Ref, OnLedgerBody, OnLedgerRequest};
use wisp_core::{Call, RequestBody};
use wisp_test::{
    AgentId, CallOptions, Hash32, Hname, L1Time, Receipt, ReceiptStatus, RequestErrorCode,
    TestChain, TimeLock,
};

const KAS: u64 = 100_000_000;

fn locked(not_before: Option<L1Time>, expires_at: Option<L1Time>) -> CallOptions {
    CallOptions {
        time_lock: Some(TimeLock {
            not_before,
            expires_at,
        }),
        ..Default::default()
    }
}

fn request_error(receipt: &Receipt) -> Option<u32> {
    receipt.error.as_ref().map(|e| e.code)
}

type Waiting = Option<(String, u64, Option<u64>, u64, AgentId)>;

fn waiting(chain: &TestChain, id: Hash32) -> Waiting {
    chain
        .view(Hname::of("blocklog"), "time_locked", &(id,))
        .unwrap()
}

/// The counter's `bump(by)` as an on-ledger request from `from` under `options`' time lock:
/// its id and the receipts of the block it arrived in.
fn bump_on_ledger(
    chain: &mut TestChain,
    from: &wisp_test::Account,
    ctr: Hname,
    by: u64,
    options: &CallOptions,
) -> (Hash32, Vec<Receipt>) {
    chain.call_on_ledger(from, ctr, "bump", &(by,), 0, options)
}

/// A counter contract from the fixtures, deployed by a funded account.
fn counter() -> (TestChain, wisp_test::Account, Hname) {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let wasm = wisp_test::contract_wasm("sdk/test/fixtures/counter");
    let ctr = chain.deploy(&alice, "ctr", &wasm, &()).unwrap();
    (chain, alice, ctr)
}

#[test]
fn a_waiting_request_runs_exactly_once_when_due() {
    let (mut chain, alice, ctr) = counter();
    let bob = chain.new_account(0);
    let (daa, _) = chain.l1_now();
    // Arrives at daa + 1, due at daa + 4: waits, with its deposit credited at once.
    let (first, arrived) = bump_on_ledger(
        &mut chain,
        &alice,
        ctr,
        5,
        &locked(Some(L1Time::DaaScore(daa + 4)), None),
    );
    assert!(arrived.is_empty(), "no receipt while waiting: {arrived:?}");
    let (second, from_bob) = chain.call_on_ledger(
        &bob,
        ctr,
        "bump",
        &(1u64,),
        KAS,
        &locked(Some(L1Time::DaaScore(daa + 4)), None),
    );
    assert!(from_bob.is_empty());
    assert!(
        chain.balance(&bob.agent()) > KAS / 2,
        "the deposit is credited"
    );
    assert!(chain.balance(&bob.agent()) < KAS, "waiting is paid for");
    let queue = [first, second];
    let w = waiting(&chain, queue[0]).expect("alice's request waits");
    assert_eq!(
        (w.0.as_str(), w.1, w.2, w.4),
        ("daa_score", daa + 4, None, alice.agent())
    );
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 0);

    // daa + 3: not yet.
    assert!(chain.advance_blocks(1).is_empty());
    // daa + 4: both run, in arrival order, first in the block.
    let ran = chain.advance_blocks(1);
    assert_eq!(ran.len(), 2, "{ran:?}");
    assert_eq!(ran[0].request_id, queue[0]);
    assert_eq!(ran[1].request_id, queue[1]);
    assert!(ran.iter().all(|r| r.status == ReceiptStatus::Success));
    assert_eq!(ran[0].sender, alice.agent());
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 6);
    assert_eq!(waiting(&chain, queue[0]), None);
    // The receipt holds the waiting gas on top of the call's: more than the same call now.
    let now = chain.call(&alice, ctr, "bump", &(1u64,)).unwrap();
    assert!(
        ran[0].gas_used > now.gas_used + 10_000,
        "{} vs {}",
        ran[0].gas_used,
        now.gas_used
    );
    assert_eq!(ran[0].fee_sompi, ran[0].gas_used);
    let proc: Option<(u64, u32, Hash32)> = chain
        .view(Hname::of("blocklog"), "request", &(queue[0],))
        .unwrap();
    assert_eq!(proc.map(|p| p.2), Some(ran[0].hash()));
    // Exactly once.
    assert!(chain.advance_blocks(5).is_empty());
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 7);
}

#[test]
fn timestamps_work_as_a_clock_too() {
    let (mut chain, alice, ctr) = counter();
    let (_, now_ms) = chain.l1_now();
    // Each block is 1 s later; arriving at now + 1 s, due at now + 3.5 s: the block at + 4 s.
    let (_, arrived) = bump_on_ledger(
        &mut chain,
        &alice,
        ctr,
        2,
        &locked(Some(L1Time::TimestampMs(now_ms + 3_500)), None),
    );
    assert!(arrived.is_empty());
    assert!(chain.advance_blocks(2).is_empty());
    assert_eq!(chain.advance_blocks(1).len(), 1);
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 2);
}

#[test]
fn expiry_on_arrival_and_while_waiting_gives_an_expired_receipt() {
    let (mut chain, alice, ctr) = counter();
    let (daa, _) = chain.l1_now();
    // Arrives at daa + 1 with its window already closed.
    let (_, r) = bump_on_ledger(
        &mut chain,
        &alice,
        ctr,
        1,
        &locked(None, Some(L1Time::DaaScore(daa + 1))),
    );
    assert_eq!(r.len(), 1);
    assert_eq!(request_error(&r[0]), Some(RequestErrorCode::Expired.code()));
    assert!(r[0].fee_sompi > 0, "a refused request pays its base work");
    // An open window: runs at once.
    let (_, r) = bump_on_ledger(
        &mut chain,
        &alice,
        ctr,
        1,
        &locked(None, Some(L1Time::DaaScore(daa + 10))),
    );
    assert_eq!(r[0].status, ReceiptStatus::Success);
    // Waits for daa + 5, expires at daa + 7; block production pauses past both.
    let (daa, _) = chain.l1_now();
    let (_, r) = bump_on_ledger(
        &mut chain,
        &alice,
        ctr,
        1,
        &locked(
            Some(L1Time::DaaScore(daa + 5)),
            Some(L1Time::DaaScore(daa + 7)),
        ),
    );
    assert!(r.is_empty());
    chain.skip_l1(20);
    let r = chain.advance_blocks(1);
    assert_eq!(r.len(), 1);
    assert_eq!(request_error(&r[0]), Some(RequestErrorCode::Expired.code()));
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 1);
    assert!(chain.advance_blocks(3).is_empty());
}

#[test]
fn unusable_locks_too_far_ahead_and_unpaid_waits_are_refused() {
    let (mut chain, alice, ctr) = counter();
    // Each case arrives one DAA score after the last: `at` is its arrival.
    type Case = (fn(u64, u64) -> CallOptions, RequestErrorCode);
    let cases: [Case; 3] = [
        // Mixed clocks.
        (
            |at, ms| {
                locked(
                    Some(L1Time::DaaScore(at + 5)),
                    Some(L1Time::TimestampMs(ms + 99_000)),
                )
            },
            RequestErrorCode::Malformed,
        ),
        // An empty lock.
        (|_, _| locked(None, None), RequestErrorCode::Malformed),
        // One beyond the 30-day horizon.
        (
            |at, _| {
                locked(
                    Some(L1Time::DaaScore(
                        at + 1 + wisp_chain::timelock::MAX_TIME_LOCK_DAA,
                    )),
                    None,
                )
            },
            RequestErrorCode::Malformed,
        ),
    ];
    for (options, code) in cases {
        let (daa, now_ms) = chain.l1_now();
        let options = options(daa + 1, now_ms + 1_000);
        let (_, r) = bump_on_ledger(&mut chain, &alice, ctr, 1, &options);
        assert_eq!(r.len(), 1, "{options:?}");
        assert_eq!(request_error(&r[0]), Some(code.code()), "{:?}", r[0].error);
    }
    // Exactly at the horizon: waits.
    let (daa, _) = chain.l1_now();
    let (_, r) = bump_on_ledger(
        &mut chain,
        &alice,
        ctr,
        1,
        &locked(
            Some(L1Time::DaaScore(
                daa + 1 + wisp_chain::timelock::MAX_TIME_LOCK_DAA,
            )),
            None,
        ),
    );
    assert!(r.is_empty());
    // Nothing on chain to pay for waiting with: refused, and the deposit (none) is not lost.
    let broke = chain.new_account(0);
    let (_, r) = bump_on_ledger(
        &mut chain,
        &broke,
        ctr,
        1,
        &locked(Some(L1Time::DaaScore(daa + 500)), None),
    );
    assert_eq!(
        request_error(&r[0]),
        Some(RequestErrorCode::InsufficientFunds.code())
    );
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 0);
}

#[test]
fn the_queue_is_bounded() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(1_000 * KAS);
    let bob = chain.new_account(0);
    let (daa, _) = chain.l1_now();
    let due = locked(Some(L1Time::DaaScore(daa + 5_000)), None);
    let transfer = |chain: &mut TestChain| {
        chain
            .call_on_ledger(
                &alice,
                Hname::of("accounts"),
                "transfer",
                &(bob.agent(), 1u64),
                0,
                &due,
            )
            .1
    };
    for _ in 0..wisp_chain::timelock::MAX_TIME_LOCKED {
        assert!(transfer(&mut chain).is_empty());
    }
    let r = transfer(&mut chain);
    assert_eq!(
        request_error(&r[0]),
        Some(RequestErrorCode::TimeLockQueueFull.code())
    );
}

#[test]
fn off_ledger_requests_are_refused_outside_their_window() {
    let (mut chain, alice, ctr) = counter();
    let (daa, _) = chain.l1_now();
    let early = chain
        .call_with(
            &alice,
            ctr,
            "bump",
            &(1u64,),
            &locked(Some(L1Time::DaaScore(daa + 3)), None),
        )
        .unwrap_err();
    assert!(early.is_request(RequestErrorCode::NotYetDue), "{early:?}");
    let late = chain
        .call_with(
            &alice,
            ctr,
            "bump",
            &(1u64,),
            &locked(None, Some(L1Time::DaaScore(daa))),
        )
        .unwrap_err();
    assert!(late.is_request(RequestErrorCode::Expired), "{late:?}");
    // A node's mempool refuses them up front, judged by the head's L1 reference.
    let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[5; 32]).unwrap();
    let (head_daa, _) = chain.l1_now();
    for (lock, code) in [
        (
            TimeLock {
                not_before: Some(L1Time::DaaScore(head_daa + 1)),
                expires_at: None,
            },
            RequestErrorCode::NotYetDue,
        ),
        (
            TimeLock {
                not_before: None,
                expires_at: Some(L1Time::DaaScore(head_daa)),
            },
            RequestErrorCode::Expired,
        ),
    ] {
        let body = RequestBody {
            chain: chain.chain_id(),
            call: Call {
                target: ctr,
                entry_point: Hname::of("bump"),
                args: borsh::to_vec(&(1u64,)).unwrap(),
                transfer_sompi: 0,
            },
            gas_budget: 1_000_000,
            access_list: None,
            time_lock: Some(lock),
        };
        let signed = wisp_chain::verify_signature(wisp_chain::sign_request(body, &key, 0)).unwrap();
        let refused = chain
            .chain()
            .admit(&signed, Default::default())
            .unwrap_err();
        assert_eq!(refused.code, code.code(), "{refused:?}");
    }
    let (daa, _) = chain.l1_now();
    chain
        .call_with(
            &alice,
            ctr,
            "bump",
            &(1u64,),
            &locked(
                Some(L1Time::DaaScore(daa + 1)),
                Some(L1Time::DaaScore(daa + 2)),
            ),
        )
        .unwrap();
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 1);
}

#[test]
fn a_rolled_back_block_takes_its_run_back_and_a_repeat_delivery_is_ignored() {
    let (chain, alice, ctr) = counter();
    let (daa, _) = chain.l1_now();
    let lock = Some(TimeLock {
        not_before: Some(L1Time::DaaScore(daa + 3)),
        expires_at: None,
    });
    let request = OnLedgerRequest {
        l1_tx_id: Hash32([7; 32]),
        index: 0,
        sender: alice.agent(),
        deposit_sompi: 0,
        body: OnLedgerBody::Call(RequestBody {
            chain: chain.chain_id(),
            call: Call {
                target: ctr,
                entry_point: Hname::of("bump"),
                args: borsh::to_vec(&(3u64,)).unwrap(),
                transfer_sompi: 0,
            },
            gas_budget: 10_000_000,
            access_list: None,
            time_lock: lock,
        }),
    };
    let block = |daa: u64, on: Vec<OnLedgerRequest>| BlockInputs {
        randomness: None,
        l1: L1Ref {
            block_hash: Hash32([daa as u8; 32]),
            daa_score: daa,
            timestamp_ms: 1_700_000_000_000 + daa * 1000,
        },
        on_ledger: on,
        off_ledger: vec![],
    };
    let out = chain
        .chain()
        .execute_block(block(daa + 1, vec![request.clone()]))
        .unwrap();
    assert!(out.receipts.is_empty());
    // The same L1 transaction delivered again (a replayed or re-accepted block): ignored.
    let again = chain
        .chain()
        .execute_block(block(daa + 2, vec![request.clone()]))
        .unwrap();
    assert!(again.receipts.is_empty());
    let before_due = chain.chain().head().unwrap().index;
    let ran = chain.chain().execute_block(block(daa + 3, vec![])).unwrap();
    assert_eq!(ran.receipts.len(), 1);
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 3);
    // Roll the due block back: the request waits again, and runs again once.
    chain.chain().rollback_to(before_due).unwrap();
    assert!(waiting(&chain, request.id()).is_some());
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 0);
    let ran_again = chain.chain().execute_block(block(daa + 4, vec![])).unwrap();
    assert_eq!(ran_again.receipts.len(), 1);
    assert_eq!(ran_again.receipts[0].request_id, request.id());
    assert!(chain
        .chain()
        .execute_block(block(daa + 5, vec![]))
        .unwrap()
        .receipts
        .is_empty());
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 3);
}

#[test]
fn the_queue_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let owner = AgentId::Address([9; 32]);
    let alice = AgentId::Address([1; 32]);
    let bob = AgentId::Address([2; 32]);
    let genesis = Genesis {
        name: "restart".into(),
        owner,
        params: wisp_chain::ChainParams::default(),
        timestamp_ms: 1_700_000_000_000,
        protocol: wisp_chain::Protocol::default(),
        anchor: None,
    };
    let l1 = |daa: u64| L1Ref {
        block_hash: Hash32([daa as u8; 32]),
        daa_score: daa,
        timestamp_ms: 1_700_000_000_000 + daa * 1000,
    };
    let chain = Chain::open(dir.path(), &genesis).unwrap();
    let transfer = OnLedgerRequest {
        l1_tx_id: Hash32([3; 32]),
        index: 0,
        sender: alice,
        deposit_sompi: 10 * KAS,
        body: OnLedgerBody::Call(RequestBody {
            chain: chain.chain_id(),
            call: Call {
                target: Hname::of("accounts"),
                entry_point: Hname::of("transfer"),
                args: borsh::to_vec(&(bob, 2 * KAS)).unwrap(),
                transfer_sompi: 0,
            },
            gas_budget: 100_000,
            access_list: None,
            time_lock: Some(TimeLock {
                not_before: Some(L1Time::DaaScore(10)),
                expires_at: None,
            }),
        }),
    };
    let out = chain
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(1),
            on_ledger: vec![transfer.clone()],
            off_ledger: vec![],
        })
        .unwrap();
    assert!(out.receipts.is_empty());
    drop(chain);

    let chain = Chain::open(dir.path(), &genesis).unwrap();
    assert_eq!(chain.balance(&bob).unwrap(), 0);
    let early = chain
        .execute_block(BlockInputs {
            l1: l1(9),
            ..Default::default()
        })
        .unwrap();
    assert!(early.receipts.is_empty());
    let due = chain
        .execute_block(BlockInputs {
            l1: l1(10),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(due.receipts.len(), 1);
    assert_eq!(due.receipts[0].request_id, transfer.id());
    assert_eq!(due.receipts[0].status, ReceiptStatus::Success);
    assert_eq!(chain.balance(&bob).unwrap(), 2 * KAS);
}
