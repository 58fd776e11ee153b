//! Bad input is answered, not crashed on: invalid modules, runaway code, oversized data, bad
//! signatures, replays and unfunded senders each get a typed error, and no other state moves.

use wisp_chain::{
    sign_request, verify_signature, BlockInputs, L1Ref, OnLedgerBody, OnLedgerRequest,
};
use wisp_core::{Call, Hash32, RequestBody};
use wisp_test::{CallOptions, Hname, RequestErrorCode, TestChain, VmErrorCode};

const KAS: u64 = 100_000_000;

/// A module with the given body for `ep:run`, plus the exports every contract needs.
fn module(extra: &str) -> Vec<u8> {
    let text = format!(
        r#"(module
            (import "wisp" "input" (func $input (result i32)))
            (memory (export "memory") 1)
            (func (export "ep:init"))
            {extra})"#
    );
    wat::parse_str(&text).expect("valid wat")
}

fn deploy_err(chain: &mut TestChain, wasm: &[u8]) -> wisp_test::Failure {
    let alice = chain.new_account(10 * KAS);
    chain.deploy(&alice, "bad", wasm, &()).unwrap_err()
}

#[test]
fn invalid_modules_are_refused_at_deploy_with_the_rule_they_break() {
    let mut chain = TestChain::new();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not wasm at all".to_vec(), "not a valid WebAssembly binary"),
        (module(r#"(func (export "ep:run") (drop (f64.add (f64.const 1) (f64.const 2))))"#), "floating point"),
        (module(r#"(func (export "ep:run") (param f32))"#), "floating point"),
        (wat::parse_str(r#"(module (import "env" "x" (func)) (memory (export "memory") 1) (func (export "ep:init")))"#).unwrap(), "not from the `wisp` module"),
        (wat::parse_str(r#"(module (import "wisp" "nope" (func)) (memory (export "memory") 1) (func (export "ep:init")))"#).unwrap(), "not a Wisp host function"),
        (wat::parse_str(r#"(module (import "wisp" "input" (func (param i32))) (memory (export "memory") 1) (func (export "ep:init")))"#).unwrap(), "signature"),
        (wat::parse_str(r#"(module (memory (export "memory") 1) (func $s) (start $s) (func (export "ep:init")))"#).unwrap(), "start functions"),
        (module("(table 1 funcref) (table 1 funcref)"), "at most one table"),
        (wat::parse_str(r#"(module (memory (export "memory") 300) (func (export "ep:init")))"#).unwrap(), "initial memory"),
        (wat::parse_str(r#"(module (memory (export "memory") 1))"#).unwrap(), "ep:init"),
        (wat::parse_str(r#"(module (func (export "ep:init")))"#).unwrap(), "memory"),
    ];
    for (wasm, expected) in cases {
        let f = deploy_err(&mut chain, &wasm);
        assert!(f.is_request(RequestErrorCode::InvalidModule), "{f:?}");
        assert!(
            f.error.message.contains(expected),
            "expected `{expected}` in: {}",
            f.error.message
        );
    }
    // Nothing was registered.
    let contracts: Vec<(Hname, String)> = chain.view(Hname::of("root"), "contracts", &()).unwrap();
    assert!(contracts.is_empty());
}

fn deploy_ok(chain: &mut TestChain, body: &str) -> (wisp_test::Account, Hname) {
    let alice = chain.new_account(100 * KAS);
    let hname = chain.deploy(&alice, "runaway", &module(body), &()).unwrap();
    (alice, hname)
}

#[test]
fn an_infinite_loop_runs_out_of_gas_and_pays_for_it() {
    let mut chain = TestChain::new();
    let (alice, c) = deploy_ok(&mut chain, r#"(func (export "ep:run") (loop (br 0)))"#);
    let before = chain.balance(&alice.agent());
    let options = CallOptions {
        gas_budget: 1_000_000,
        ..Default::default()
    };
    let f = chain
        .call_with(&alice, c, "run", &(), &options)
        .unwrap_err();
    assert!(f.is_vm(VmErrorCode::OutOfGas), "{f:?}");
    assert_eq!(
        f.receipt.gas_used, 1_000_000,
        "out of gas uses the whole budget"
    );
    assert_eq!(chain.balance(&alice.agent()), before - 1_000_000);
    // The chain goes on.
    chain.advance_blocks(1);
}

#[test]
fn unbounded_recursion_overflows_the_stack() {
    let mut chain = TestChain::new();
    let (alice, c) = deploy_ok(&mut chain, r#"(func $r (export "ep:run") (call $r))"#);
    let f = chain.call(&alice, c, "run", &()).unwrap_err();
    assert!(f.is_vm(VmErrorCode::StackOverflow), "{f:?}");
}

#[test]
fn a_memory_bomb_runs_out_of_gas_or_hits_the_memory_limit() {
    let mut chain = TestChain::new();
    let (alice, c) = deploy_ok(
        &mut chain,
        r#"(func (export "ep:run") (loop (drop (memory.grow (i32.const 64))) (br 0)))"#,
    );
    // The default budget (10M gas) pays for two grows of 64 pages (65,536 gas a page): the
    // third is refused and the request ends out of gas, paying its whole budget.
    let before = chain.balance(&alice.agent());
    let f = chain.call(&alice, c, "run", &()).unwrap_err();
    assert!(f.is_vm(VmErrorCode::OutOfGas), "{f:?}");
    assert_eq!(f.receipt.gas_used, wisp_test::DEFAULT_GAS_BUDGET);
    assert_eq!(
        chain.balance(&alice.agent()),
        before - wisp_test::DEFAULT_GAS_BUDGET
    );
    // A budget that pays for 16 MiB (an instance's most) meets the memory limit instead.
    let options = CallOptions {
        gas_budget: 20_000_000,
        ..Default::default()
    };
    let f = chain
        .call_with(&alice, c, "run", &(), &options)
        .unwrap_err();
    assert!(f.is_vm(VmErrorCode::MemoryLimit), "{f:?}");
}

/// A page `memory.grow` grants costs what a page of initial memory does (65,536 gas): both
/// are fresh memory the node allocates and zeroes. Paid at the next host call, call or
/// return; a grow the request could not pay is refused before the node allocates anything.
#[test]
fn grown_pages_cost_what_initial_pages_cost() {
    let mut chain = TestChain::new();
    let (alice, c) = deploy_ok(
        &mut chain,
        r#"(func (export "ep:none"))
           (func (export "ep:one") (drop (memory.grow (i32.const 1))))
           (func (export "ep:ten") (drop (memory.grow (i32.const 10))))"#,
    );
    let gas =
        |chain: &mut TestChain, entry: &str| chain.call(&alice, c, entry, &()).unwrap().gas_used;
    let (none, one, ten) = (
        gas(&mut chain, "none"),
        gas(&mut chain, "one"),
        gas(&mut chain, "ten"),
    );
    // memory.grow and its operand: 2 + 1 (the function's fuel block) instruction gas.
    let page = wisp_vm::gas::INITIAL_PAGE_GAS;
    assert_eq!(one - none, page + 2, "one page");
    assert_eq!(ten - none, 10 * page + 2, "ten pages");
    // A budget that covers the call but not ten pages: refused, out of gas, whole budget.
    let budget = none + 5 * page;
    let options = CallOptions {
        gas_budget: budget,
        ..Default::default()
    };
    let f = chain
        .call_with(&alice, c, "ten", &(), &options)
        .unwrap_err();
    assert!(f.is_vm(VmErrorCode::OutOfGas), "{f:?}");
    assert_eq!(f.receipt.gas_used, budget);
}

#[test]
fn traps_are_vm_errors() {
    let mut chain = TestChain::new();
    let (alice, c) = deploy_ok(
        &mut chain,
        r#"(func (export "ep:run") unreachable)
           (func (export "ep:div") (drop (i32.div_u (i32.const 1) (i32.const 0))))
           (func (export "ep:oob") (drop (i32.load (i32.const 70000))))"#,
    );
    assert!(chain
        .call(&alice, c, "run", &())
        .unwrap_err()
        .is_vm(VmErrorCode::Trap));
    assert!(chain
        .call(&alice, c, "div", &())
        .unwrap_err()
        .is_vm(VmErrorCode::IntegerArithmetic));
    assert!(chain
        .call(&alice, c, "oob", &())
        .unwrap_err()
        .is_vm(VmErrorCode::MemoryOutOfBounds));
}

#[test]
fn oversized_arguments_are_refused() {
    let mut chain = TestChain::new();
    let (alice, c) = deploy_ok(
        &mut chain,
        r#"(func (export "ep:run") (drop (call $input)))"#,
    );
    chain
        .call_raw(&alice, c, "run", vec![0; 1024], &CallOptions::default())
        .unwrap();
    let f = chain
        .call_raw(
            &alice,
            c,
            "run",
            vec![0; 65 * 1024],
            &CallOptions::default(),
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::TooLarge), "{f:?}");
}

#[test]
fn unfunded_senders_and_bad_gas_budgets_are_refused_before_running() {
    let mut chain = TestChain::new();
    let (_, c) = deploy_ok(&mut chain, r#"(func (export "ep:run"))"#);
    let pauper = chain.new_account(0);
    let f = chain.call(&pauper, c, "run", &()).unwrap_err();
    assert!(f.is_request(RequestErrorCode::InsufficientFunds), "{f:?}");
    assert_eq!(f.receipt.fee_sompi, 0);
    let rich = chain.new_account(10 * KAS);
    let options = CallOptions {
        gas_budget: 10,
        ..Default::default()
    };
    let f = chain.call_with(&rich, c, "run", &(), &options).unwrap_err();
    assert!(f.is_request(RequestErrorCode::GasBudgetOutOfRange));
}

#[test]
fn bad_signatures_replays_and_wrong_chains_are_refused() {
    let mut chain = TestChain::new();
    let (_, c) = deploy_ok(&mut chain, r#"(func (export "ep:run"))"#);
    let key = secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[7; 32]).unwrap();
    let body = RequestBody {
        chain: chain.chain_id(),
        call: Call {
            target: c,
            entry_point: Hname::of("run"),
            args: vec![],
            transfer_sompi: 0,
        },
        gas_budget: 1_000_000,
        access_list: None,
        time_lock: None,
    };
    let mut tampered = sign_request(body.clone(), &key, 0);
    tampered.body.gas_budget += 1;
    let e = verify_signature(tampered).unwrap_err();
    assert_eq!(e.code, RequestErrorCode::BadSignature.code());
    let mut garbage = sign_request(body.clone(), &key, 0);
    garbage.signature = [0xff; 64];
    assert_eq!(
        verify_signature(garbage).unwrap_err().code,
        RequestErrorCode::BadSignature.code()
    );

    // Fund the key, run nonce 0, then replay it and skip ahead.
    let agent = wisp_core::AgentId::Address(key.x_only_public_key().0.serialize());
    let fund = OnLedgerRequest {
        l1_tx_id: Hash32([9; 32]),
        index: 0,
        sender: agent,
        deposit_sompi: 10 * KAS,
        body: OnLedgerBody::DepositOnly,
    };
    // A block on L1 block `n` with these requests.
    let block = |n: u64, on_ledger: Vec<OnLedgerRequest>, off_ledger| {
        chain
            .chain()
            .execute_block(BlockInputs {
                randomness: None,
                l1: L1Ref {
                    block_hash: Hash32([n as u8; 32]),
                    daa_score: n,
                    timestamp_ms: 1_800_000_000_000 + n,
                },
                on_ledger,
                off_ledger,
            })
            .unwrap()
    };
    block(100, vec![fund.clone()], vec![]);
    let first = verify_signature(sign_request(body.clone(), &key, 0)).unwrap();
    let out = block(101, vec![], vec![first.clone()]);
    assert!(out.receipts[0].error.is_none());
    // The same signed request again: already processed, no second receipt, no second fee.
    let balance = chain.balance(&agent);
    let out = block(102, vec![fund.clone()], vec![first.clone()]);
    assert!(
        out.receipts.is_empty(),
        "a replay and a re-delivered L1 deposit are ignored"
    );
    assert_eq!(chain.balance(&agent), balance);
    // A replay does not stop its sender: the sender's next request, behind it in the same
    // block, runs.
    let second = verify_signature(sign_request(body.clone(), &key, 1)).unwrap();
    let out = block(103, vec![fund], vec![first.clone(), second.clone(), first]);
    assert_eq!(out.receipts.len(), 1, "{:?}", out.receipts);
    assert_eq!(out.receipts[0].request_id, second.id());
    assert!(out.receipts[0].error.is_none());
    assert_eq!(chain.chain().nonce(&agent).unwrap(), 2);
    let balance = chain.balance(&agent);
    // A stale nonce under a new signature is not executed and not recorded: it costs nothing
    // and leaves the sender's next nonce as it was (hardening defect 10: a recorded `bad_nonce`
    // could block a sender forever).
    let stale = verify_signature(sign_request(
        RequestBody {
            gas_budget: 2_000_000,
            ..body.clone()
        },
        &key,
        0,
    ))
    .unwrap();
    let out = block(104, vec![], vec![stale]);
    assert!(out.receipts.is_empty(), "{:?}", out.receipts);
    assert_eq!(chain.balance(&agent), balance);
    assert_eq!(chain.chain().nonce(&agent).unwrap(), 2);
    // Another chain's request.
    let other = verify_signature(sign_request(
        RequestBody {
            chain: wisp_core::ChainId([1; 32]),
            ..body
        },
        &key,
        2,
    ))
    .unwrap();
    let out = block(105, vec![], vec![other]);
    assert_eq!(
        out.receipts[0].error.as_ref().unwrap().code,
        RequestErrorCode::WrongChain.code()
    );
}

#[test]
fn a_malformed_on_ledger_payload_gets_a_receipt_and_keeps_the_deposit() {
    let chain = TestChain::new();
    let agent = wisp_core::AgentId::Address([5; 32]);
    let request = OnLedgerRequest {
        l1_tx_id: Hash32([4; 32]),
        index: 0,
        sender: agent,
        deposit_sompi: 3 * KAS,
        body: OnLedgerBody::Malformed("payload does not decode".into()),
    };
    let l1 = L1Ref {
        block_hash: Hash32([1; 32]),
        daa_score: 50,
        timestamp_ms: 1_800_000_000_000,
    };
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1,
            on_ledger: vec![request],
            off_ledger: vec![],
        })
        .unwrap();
    assert_eq!(
        out.receipts[0].error.as_ref().unwrap().code,
        RequestErrorCode::Malformed.code()
    );
    assert_eq!(chain.balance(&agent), 3 * KAS);
}

#[test]
fn a_declared_access_list_is_enforced() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let token = chain
        .deploy(
            &alice,
            "token",
            &wisp_test::contract_wasm("contracts/token"),
            &("T".to_string(), "T".to_string(), 0u8, 100u128),
        )
        .unwrap();
    let bob = chain.new_account(0);
    let write_all = wisp_test::AccessList {
        reads: vec![],
        writes: vec![wisp_core::Access {
            contract: token,
            key_prefix: None,
        }],
    };
    let ok = CallOptions {
        access_list: Some(write_all),
        ..Default::default()
    };
    chain
        .call_with(&alice, token, "transfer", &(bob.agent(), 1u128), &ok)
        .unwrap();
    // Read-only access to balances is not enough to transfer.
    let read_only = wisp_test::AccessList {
        reads: vec![wisp_core::Access {
            contract: token,
            key_prefix: None,
        }],
        writes: vec![],
    };
    let options = CallOptions {
        access_list: Some(read_only),
        ..Default::default()
    };
    let f = chain
        .call_with(&alice, token, "transfer", &(bob.agent(), 1u128), &options)
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::AccessListViolation), "{f:?}");
    assert_eq!(
        chain
            .view::<_, u128>(token, "balance_of", &(bob.agent(),))
            .unwrap(),
        1
    );
}
