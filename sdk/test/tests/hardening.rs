//! Regression tests for the hardening review of main at cf9d76c (issue 5): each test names the
//! defect it guards and fails on that commit.

use wisp_chain::{
    sign_request, verify_signature, BlockInputs, ChainParams, L1Ref, OnLedgerBody, OnLedgerRequest,
};
use wisp_core::{Call, Hash32, ReceiptError, RequestBody};
use wisp_test::{AgentId, CallOptions, Hname, RequestErrorCode, TestChain, VmErrorCode};

const KAS: u64 = 100_000_000;

fn token_init_args(supply: u128) -> (String, String, u8, u128) {
    ("Token".into(), "TKN".into(), 18, supply)
}

/// Borsh bytes as a WAT data string (`\xx` escapes).
fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// Defect 1 (critical): any account could call a deployed contract's `init` again, directly,
/// and reset its ownership and supply (`wisp call ta init '[..., u128::MAX]' --from dev1`).
#[test]
fn init_cannot_be_called_after_deploy() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let mallory = chain.new_account(100 * KAS);
    let wasm = wisp_test::contract_wasm("contracts/token");
    let token = chain
        .deploy(&alice, "victim", &wasm, &token_init_args(1_000))
        .unwrap();

    let f = chain
        .call(&mallory, token, "init", &token_init_args(u128::MAX))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    assert!(f.error.message.contains("runs once"), "{}", f.error.message);
    // The failed request still paid for what it cost.
    assert!(f.receipt.fee_sompi > 0);

    let owner: Option<AgentId> = chain.view(token, "owner", &()).unwrap();
    assert_eq!(owner, Some(alice.agent()));
    let supply: u128 = chain.view(token, "total_supply", &()).unwrap();
    assert_eq!(supply, 1_000);
    let stolen: u128 = chain
        .view(token, "balance_of", &(mallory.agent(),))
        .unwrap();
    assert_eq!(stolen, 0);
    // Even the deployer cannot run it twice.
    let f = chain
        .call(&alice, token, "init", &token_init_args(5))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
}

/// Defect 1, through a nested call: a contract calling another contract's `init` gets a
/// failure status and the callee's state does not move.
#[test]
fn init_cannot_be_reached_through_a_cross_contract_call() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let mallory = chain.new_account(100 * KAS);
    let wasm = wisp_test::contract_wasm("contracts/token");
    let token = chain
        .deploy(&alice, "victim", &wasm, &token_init_args(1_000))
        .unwrap();
    let args = borsh::to_vec(&token_init_args(u128::MAX)).unwrap();
    let attacker = format!(
        r#"(module
            (import "wisp" "call" (func $call (param i32 i32 i32 i32 i32 i64) (result i32)))
            (import "wisp" "set_return" (func $ret (param i32 i32)))
            (memory (export "memory") 1)
            (data (i32.const 64) "{data}")
            (func (export "ep:init"))
            (func (export "ep:run")
                (i32.store (i32.const 0)
                    (call $call (i32.const 0) (i32.const {target}) (i32.const {init})
                                (i32.const 64) (i32.const {len}) (i64.const 0)))
                (call $ret (i32.const 0) (i32.const 4))))"#,
        data = wat_bytes(&args),
        target = token.0 as i32,
        init = Hname::of("init").0 as i32,
        len = args.len(),
    );
    let attacker = wat::parse_str(&attacker).unwrap();
    let c = chain.deploy(&mallory, "attacker", &attacker, &()).unwrap();
    let receipt = chain.call(&mallory, c, "run", &()).unwrap();
    assert_eq!(
        receipt.return_data,
        1u32.to_le_bytes(),
        "the nested init must fail (status 1)"
    );
    let owner: Option<AgentId> = chain.view(token, "owner", &()).unwrap();
    assert_eq!(owner, Some(alice.agent()));
    let supply: u128 = chain.view(token, "total_supply", &()).unwrap();
    assert_eq!(supply, 1_000);
}

fn key(seed: u8) -> secp256k1::Keypair {
    secp256k1::Keypair::from_seckey_slice(secp256k1::SECP256K1, &[seed; 32]).unwrap()
}

fn agent_of(key: &secp256k1::Keypair) -> AgentId {
    AgentId::Address(key.x_only_public_key().0.serialize())
}

fn l1(n: u64) -> L1Ref {
    L1Ref {
        block_hash: Hash32([n as u8; 32]),
        daa_score: n,
        timestamp_ms: 1_800_000_000_000 + n,
    }
}

/// An on-ledger request from `sender` (L1 tx `tx`) with a deposit and a call of `entry` of
/// `target` (no arguments) on `chain` with `gas_budget`.
fn on_ledger_call(
    chain: &TestChain,
    tx: u8,
    sender: AgentId,
    deposit: u64,
    (target, entry): (Hname, &str),
    gas_budget: u64,
) -> OnLedgerRequest {
    OnLedgerRequest {
        l1_tx_id: Hash32([tx; 32]),
        index: 0,
        sender,
        deposit_sompi: deposit,
        body: OnLedgerBody::Call(RequestBody {
            chain: chain.chain_id(),
            call: Call {
                target,
                entry_point: Hname::of(entry),
                args: vec![],
                transfer_sompi: 0,
            },
            gas_budget,
            access_list: None,
            time_lock: None,
        }),
    }
}

/// Defect 9 (medium): the fee was capped at what the sender held after the call, so a call
/// that moved the whole balance away paid nothing. The whole budget is now reserved first.
#[test]
fn a_call_cannot_spend_the_fee_it_owes() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(10 * KAS);
    let bob = chain.new_account(KAS);
    let owner = chain.owner().agent();
    let owner_before = chain.balance(&owner);
    let held = chain.balance(&alice.agent());
    let f = chain
        .call(
            &alice,
            Hname::of("accounts"),
            "transfer",
            &(bob.agent(), held),
        )
        .unwrap_err();
    assert!(f.is_vm(VmErrorCode::InsufficientBalance), "{f:?}");
    assert!(f.receipt.fee_sompi > 0);
    assert_eq!(f.receipt.fee_sompi, f.receipt.gas_used);
    assert_eq!(chain.balance(&alice.agent()), held - f.receipt.fee_sompi);
    assert_eq!(chain.balance(&bob.agent()), KAS);
    assert_eq!(chain.balance(&owner), owner_before + f.receipt.fee_sompi);
    // What is left after the reservation can still be moved, and the fee is still paid.
    let reserve = wisp_test::DEFAULT_GAS_BUDGET;
    let movable = chain.balance(&alice.agent()) - reserve;
    let r = chain
        .call(
            &alice,
            Hname::of("accounts"),
            "transfer",
            &(bob.agent(), movable),
        )
        .unwrap();
    assert!(r.fee_sompi > 0);
    assert_eq!(chain.balance(&alice.agent()), reserve - r.fee_sompi);
}

/// Defect 17 (medium): one request could hold ~1 GiB (64 instances × 16 MiB). The memory of
/// all instances of a request is capped together (64 MiB by default), and initial and grown
/// pages cost 65,536 gas each, so the default 50M gas of a request cannot reach the cap at all;
/// a chain that allows 100M a request: here each instance grows to 16 MiB.
#[test]
fn memory_of_all_instances_of_a_request_is_capped() {
    let mut chain = TestChain::with_params(ChainParams {
        max_request_gas: 100_000_000,
        ..ChainParams::default()
    });
    let alice = chain.new_account(100 * KAS);
    let wat = format!(
        r#"(module
            (import "wisp" "call" (func $call (param i32 i32 i32 i32 i32 i64) (result i32)))
            (import "wisp" "register_len" (func $rlen (result i32)))
            (import "wisp" "register_read" (func $rread (param i32)))
            (import "wisp" "set_return" (func $ret (param i32 i32)))
            (import "wisp" "self_hname" (func $me (result i32)))
            (memory (export "memory") 1)
            (func (export "ep:init"))
            (func (export "ep:run")
                (drop (memory.grow (i32.const 255)))
                (drop (call $call (i32.const 0) (call $me) (i32.const {run})
                                  (i32.const 0) (i32.const 0) (i64.const 0)))
                (call $rread (i32.const 0))
                (call $ret (i32.const 0) (call $rlen))))"#,
        run = Hname::of("run").0 as i32
    );
    let c = chain
        .deploy(&alice, "hog", &wat::parse_str(&wat).unwrap(), &())
        .unwrap();
    let options = CallOptions {
        gas_budget: 100_000_000,
        ..Default::default()
    };
    let r = chain.call_with(&alice, c, "run", &(), &options).unwrap();
    // The innermost failure, passed up by every level: the fifth 16 MiB instance would pass
    // 64 MiB (without the cap, the chain of calls ran into the call-depth limit instead).
    let innermost: ReceiptError = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(innermost.level, wisp_core::ErrorLevel::Vm, "{innermost:?}");
    assert_eq!(
        innermost.code,
        VmErrorCode::MemoryLimit.code(),
        "{innermost:?}"
    );
    // Four instances of 1 initial page grown by 255 were paid for, each page 65,536 gas.
    assert!(r.gas_used > 4 * 256 * wisp_vm::gas::INITIAL_PAGE_GAS);
}

/// Defect 19 (low): governance could set a gas price of 0 or limits below what any request
/// needs, bricking the chain.
#[test]
fn governance_cannot_brick_the_chain() {
    let mut chain = TestChain::new();
    let owner = chain.owner().clone();
    chain.deposit(&owner, 100 * KAS);
    let gov = Hname::of("governance");
    for price in [0u64, u64::MAX] {
        let f = chain
            .call(&owner, gov, "set_gas_price", &(price,))
            .unwrap_err();
        assert!(f.is_request(RequestErrorCode::GasBudgetOutOfRange), "{f:?}");
    }
    for (request, block) in [(1u64, 1u64), (5_000, 10_000_000), (u64::MAX, u64::MAX)] {
        let f = chain
            .call(&owner, gov, "set_limits", &(request, block))
            .unwrap_err();
        assert!(f.is_request(RequestErrorCode::GasBudgetOutOfRange), "{f:?}");
    }
    chain
        .call(&owner, gov, "set_limits", &(20_000_000u64, 200_000_000u64))
        .unwrap();
}

/// Deploys a contract whose `run` loops until it is out of gas.
fn deploy_looper(chain: &mut TestChain) -> Hname {
    let deployer = chain.new_account(100 * KAS);
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "ep:init"))
           (func (export "ep:run") (loop (br 0))))"#,
    )
    .unwrap();
    chain.deploy(&deployer, "looper", &wasm, &()).unwrap()
}

/// Defect 15 (medium): on-ledger requests had no block cap, so catching up after downtime
/// built one unbounded block. They now fill blocks up to the gas and count caps, and the rest
/// is carried over in L1 order, persisted with the block.
#[test]
fn on_ledger_requests_beyond_the_block_cap_carry_over_in_order() {
    let params = ChainParams {
        max_request_gas: 50_000_000,
        max_block_gas: 60_000_000,
        ..ChainParams::default()
    };
    let mut chain = TestChain::with_params(params);
    let looper = deploy_looper(&mut chain);
    let senders: Vec<AgentId> = (1..=5).map(|i| agent_of(&key(i))).collect();
    // Each request burns its whole 20M budget: three fill the 60M block.
    let requests: Vec<OnLedgerRequest> = senders
        .iter()
        .enumerate()
        .map(|(i, s)| on_ledger_call(&chain, 10 + i as u8, *s, KAS, (looper, "run"), 20_000_000))
        .collect();
    let ids: Vec<_> = requests.iter().map(OnLedgerRequest::id).collect();
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(1),
            on_ledger: requests,
            off_ledger: vec![],
        })
        .unwrap();
    assert_eq!(out.receipts.len(), 3);
    assert_eq!(out.deferred.len(), 2);
    assert_eq!(
        chain.chain().backlog(out.header.index).unwrap(),
        out.deferred
    );
    let next = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(2),
            on_ledger: vec![],
            off_ledger: vec![],
        })
        .unwrap();
    let order: Vec<_> = out
        .receipts
        .iter()
        .chain(&next.receipts)
        .map(|r| r.request_id)
        .collect();
    assert_eq!(order, ids, "every request ran once, in L1 order");
    assert!(next.deferred.is_empty());
    for (r, s) in out.receipts.iter().chain(&next.receipts).zip(&senders) {
        assert!(r.fee_sompi > 0);
        assert_eq!(chain.balance(s), KAS - r.fee_sompi);
    }
}

/// Defect 10 (medium): a request skipped for block gas left its sender's later request to run
/// with a bad nonce, recorded as processed: that request was never evicted and the sender's
/// next nonce stuck forever. A sender's run now stops at its first skipped request, and a bad
/// nonce is never recorded.
#[test]
fn a_request_skipped_for_block_gas_does_not_block_its_sender() {
    let params = ChainParams {
        max_request_gas: 50_000_000,
        max_block_gas: 60_000_000,
        ..ChainParams::default()
    };
    let mut chain = TestChain::with_params(params);
    let looper = deploy_looper(&mut chain);
    let (carol, alice) = (key(21), key(22));
    let fund = |tx: u8, who: &secp256k1::Keypair| OnLedgerRequest {
        l1_tx_id: Hash32([tx; 32]),
        index: 0,
        sender: agent_of(who),
        deposit_sompi: 10 * KAS,
        body: OnLedgerBody::DepositOnly,
    };
    chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(50),
            on_ledger: vec![fund(1, &carol), fund(2, &alice)],
            off_ledger: vec![],
        })
        .unwrap();
    let body = |target: Hname, entry: &str, args: Vec<u8>, gas_budget: u64| RequestBody {
        chain: chain.chain_id(),
        call: Call {
            target,
            entry_point: Hname::of(entry),
            args,
            transfer_sompi: 0,
        },
        gas_budget,
        access_list: None,
        time_lock: None,
    };
    let signed = |b: RequestBody, k: &secp256k1::Keypair, n: u64| {
        verify_signature(sign_request(b, k, n)).unwrap()
    };
    let noop = borsh::to_vec(&(agent_of(&alice), 0u64)).unwrap();
    let burn = signed(body(looper, "run", vec![], 50_000_000), &carol, 0);
    let a0 = signed(
        body(Hname::of("accounts"), "transfer", noop.clone(), 15_000_000),
        &alice,
        0,
    );
    let a1 = signed(
        body(Hname::of("accounts"), "transfer", noop, 1_000_000),
        &alice,
        1,
    );
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(51),
            on_ledger: vec![],
            off_ledger: vec![burn, a0.clone(), a1.clone()],
        })
        .unwrap();
    assert_eq!(out.receipts.len(), 1, "only carol's request fits: {out:?}");
    assert!(!chain.chain().is_processed(&a1.id()).unwrap());
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(52),
            on_ledger: vec![],
            off_ledger: vec![a0, a1],
        })
        .unwrap();
    assert_eq!(out.receipts.len(), 2);
    assert!(out.receipts.iter().all(|r| r.error.is_none()), "{out:?}");
    assert_eq!(chain.chain().nonce(&agent_of(&alice)).unwrap(), 2);
}

/// Defect 8 (medium): a request refused by the pre-checks (here: its budget is over the limit)
/// bumped the nonce, was recorded and cost nothing. It now pays the base fee.
#[test]
fn a_refused_request_pays_the_base_fee() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(10 * KAS);
    let before = chain.balance(&alice.agent());
    let options = CallOptions {
        gas_budget: ChainParams::default().max_request_gas + 1,
        ..Default::default()
    };
    let f = chain
        .call_with(
            &alice,
            Hname::of("accounts"),
            "transfer",
            &(alice.agent(), 0u64),
            &options,
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::GasBudgetOutOfRange), "{f:?}");
    assert_eq!(f.receipt.gas_used, wisp_vm::gas::REQUEST_BASE_GAS);
    assert_eq!(f.receipt.fee_sompi, wisp_vm::gas::REQUEST_BASE_GAS);
    assert_eq!(chain.balance(&alice.agent()), before - f.receipt.fee_sompi);
}

/// Defect 8, other chains: requests on the shared lane addressed to another chain and paying
/// nothing to this one are not this chain's business: no receipt, nothing recorded.
#[test]
fn other_chains_lane_requests_are_ignored() {
    let chain = TestChain::new();
    let other = TestChain::with_params(ChainParams {
        gas_price_sompi: 2,
        ..ChainParams::default()
    });
    let sender = agent_of(&key(40));
    let theirs = on_ledger_call(
        &other,
        77,
        sender,
        0,
        (Hname::of("accounts"), "total"),
        1_000_000,
    );
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(9),
            on_ledger: vec![theirs.clone()],
            off_ledger: vec![],
        })
        .unwrap();
    assert!(out.receipts.is_empty(), "{out:?}");
    assert!(!chain.chain().is_processed(&theirs.id()).unwrap());
}

/// Defect 16 (medium): declared access lists were not enforced on the top-level target, on
/// native core contracts, on `transfer_sompi` or on balances; their size was unbounded and
/// cost no gas.
#[test]
fn access_lists_are_enforced_on_every_path_bounded_and_charged() {
    use wisp_core::{Access, AccessList};
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let bob = chain.new_account(KAS);
    let noop = wat::parse_str(
        r#"(module (memory (export "memory") 1) (func (export "ep:init")) (func (export "ep:noop")))"#,
    )
    .unwrap();
    let c = chain.deploy(&alice, "noop", &noop, &()).unwrap();
    let with = |list: AccessList| CallOptions {
        access_list: Some(list),
        ..Default::default()
    };
    // The top-level target must be declared, even when it touches no state.
    let f = chain
        .call_with(&alice, c, "noop", &(), &with(AccessList::default()))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::AccessListViolation), "{f:?}");
    let declared = AccessList {
        reads: vec![Access {
            contract: c,
            key_prefix: None,
        }],
        writes: vec![],
    };
    let r = chain
        .call_with(&alice, c, "noop", &(), &with(declared.clone()))
        .unwrap();
    // Charged per entry.
    let plain = chain.call(&alice, c, "noop", &()).unwrap();
    assert_eq!(
        r.gas_used,
        plain.gas_used + wisp_chain::admission::ACCESS_ENTRY_GAS
    );
    // Native core contracts: moving base tokens to bob needs bob's balance declared; the
    // sender's own balance is implicit.
    let accounts = Hname::of("accounts");
    let bobs_balance = wisp_chain::keys::balance(&bob.agent())[4..].to_vec();
    let only_call = AccessList {
        reads: vec![Access {
            contract: accounts,
            key_prefix: Some(b"nothing".to_vec()),
        }],
        writes: vec![],
    };
    let f = chain
        .call_with(
            &alice,
            accounts,
            "transfer",
            &(bob.agent(), 5u64),
            &with(only_call),
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::AccessListViolation), "{f:?}");
    assert_eq!(chain.balance(&bob.agent()), KAS);
    let to_bob = AccessList {
        reads: vec![],
        writes: vec![Access {
            contract: accounts,
            key_prefix: Some(bobs_balance),
        }],
    };
    chain
        .call_with(
            &alice,
            accounts,
            "transfer",
            &(bob.agent(), 5u64),
            &with(to_bob),
        )
        .unwrap();
    assert_eq!(chain.balance(&bob.agent()), KAS + 5);
    // Attaching sompi to a call moves them into the target's balance: it must be declared.
    let f = chain
        .call_with(
            &alice,
            c,
            "noop",
            &(),
            &CallOptions {
                transfer_sompi: 7,
                ..with(declared)
            },
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::AccessListViolation), "{f:?}");
    // Bounded.
    let huge = AccessList {
        reads: (0..=AccessList::MAX_ENTRIES as u32)
            .map(|i| Access {
                contract: Hname(i + 1),
                key_prefix: None,
            })
            .collect(),
        writes: vec![],
    };
    let f = chain
        .call_with(&alice, c, "noop", &(), &with(huge))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::TooLarge), "{f:?}");
}

/// Defect 4 (high): wasmi zero-fills a function's locals on every call without fuel; a function
/// with 20,000 locals ran 8× underpriced. Locals per function are capped at validation (the
/// example contracts use at most 50), and so are globals and data segments, which cost work
/// at every instantiation.
#[test]
fn per_call_work_that_fuel_does_not_see_is_capped_at_validation() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let limits = wisp_vm::ValidationLimits::default();
    let many_locals = |n: u32| {
        wat::parse_str(format!(
            r#"(module (memory (export "memory") 1) (func (export "ep:init"))
               (func (export "ep:run") (local i64 i64) {}))"#,
            format_args!("(local {})", vec!["i64"; n as usize - 2].join(" "))
        ))
        .unwrap()
    };
    let f = chain
        .deploy(
            &alice,
            "locals",
            &many_locals(limits.max_locals_per_function + 1),
            &(),
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::InvalidModule), "{f:?}");
    assert!(f.error.message.contains("locals"), "{}", f.error.message);
    chain
        .deploy(
            &alice,
            "locals",
            &many_locals(limits.max_locals_per_function),
            &(),
        )
        .unwrap();
    let globals = (0..=limits.max_globals)
        .map(|i| format!("(global i32 (i32.const {i}))"))
        .collect::<String>();
    let wasm = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) {globals} (func (export "ep:init")))"#
    ))
    .unwrap();
    let f = chain.deploy(&alice, "globals", &wasm, &()).unwrap_err();
    assert!(f.error.message.contains("globals"), "{}", f.error.message);
    let data = (0..=limits.max_data_segments)
        .map(|i| format!("(data (i32.const {i}) \"x\")"))
        .collect::<String>();
    let wasm = wat::parse_str(format!(
        r#"(module (memory (export "memory") 1) {data} (func (export "ep:init")))"#
    ))
    .unwrap();
    let f = chain.deploy(&alice, "data", &wasm, &()).unwrap_err();
    assert!(
        f.error.message.contains("data segments"),
        "{}",
        f.error.message
    );
}

/// Defect 5 (high): `blob.store` validated and compiled a module for 2 gas per byte, and a
/// module missing from the node's cache was compiled again for free. Storing pays what a deploy
/// pays, and the first instantiation of a code in a block pays its compilation: decided by the
/// block's history, never by the cache, so gas is the same on every node.
#[test]
fn storing_and_loading_code_is_charged_by_its_size() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(1_000 * KAS);
    let wasm = wisp_test::contract_wasm("contracts/token");
    let r = chain
        .call_with(
            &alice,
            Hname::of("blob"),
            "store",
            &(wasm.clone(),),
            &CallOptions {
                gas_budget: 50_000_000,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        r.gas_used >= wisp_vm::gas::DEPLOY_GAS_PER_BYTE * wasm.len() as u64,
        "{} gas for {} bytes",
        r.gas_used,
        wasm.len()
    );
    let token = chain
        .deploy(&alice, "tok", &wasm, &token_init_args(1_000))
        .unwrap();
    // Two identical requests in one block: only the first pays the compilation.
    let key = key(50);
    let sender = agent_of(&key);
    chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(200),
            on_ledger: vec![OnLedgerRequest {
                l1_tx_id: Hash32([50; 32]),
                index: 0,
                sender,
                deposit_sompi: 100 * KAS,
                body: OnLedgerBody::DepositOnly,
            }],
            off_ledger: vec![],
        })
        .unwrap();
    let approve = |nonce: u64| {
        let body = RequestBody {
            chain: chain.chain_id(),
            call: Call {
                target: token,
                entry_point: Hname::of("approve"),
                args: borsh::to_vec(&(alice.agent(), 5u128)).unwrap(),
                transfer_sompi: 0,
            },
            gas_budget: 10_000_000,
            access_list: None,
            time_lock: None,
        };
        verify_signature(sign_request(body, &key, nonce)).unwrap()
    };
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(201),
            on_ledger: vec![],
            off_ledger: vec![approve(0), approve(1)],
        })
        .unwrap();
    let (first, second) = (&out.receipts[0], &out.receipts[1]);
    assert!(first.error.is_none() && second.error.is_none(), "{out:?}");
    assert_eq!(
        first.gas_used - second.gas_used,
        wisp_vm::gas::compile_gas(wasm.len() as u64)
    );
    // A budget that cannot pay the first use fails before the node compiles anything.
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(202),
            on_ledger: vec![],
            off_ledger: vec![{
                let mut r = approve(2);
                r = verify_signature(sign_request(
                    RequestBody {
                        gas_budget: 100_000,
                        ..r.request().body.clone()
                    },
                    &key,
                    2,
                ))
                .unwrap();
                r
            }],
        })
        .unwrap();
    let failed = out.receipts[0].error.as_ref().unwrap();
    assert_eq!(failed.code, VmErrorCode::OutOfGas.code(), "{failed:?}");
    assert_eq!(out.receipts[0].gas_used, 100_000);
}

/// Defect 23 (low): base tokens could be sent to a core contract, another chain's agent or an
/// hname with no contract, where nobody can ever spend them (`wisp deploy --transfer` stranded
/// coins in `root`).
#[test]
fn base_tokens_cannot_be_sent_where_they_would_be_locked() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let before = chain.balance(&alice.agent());
    let here = chain.chain_id();
    let contract = |chain: wisp_core::ChainId, name: &str| {
        AgentId::Contract(wisp_core::ContractId {
            chain,
            hname: Hname::of(name),
        })
    };
    for sink in [
        contract(here, "root"),
        contract(wisp_core::ChainId([9; 32]), "token"),
        contract(here, "nobody-deployed-this"),
    ] {
        let f = chain
            .call(&alice, Hname::of("accounts"), "transfer", &(sink, 1_000u64))
            .unwrap_err();
        assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
        assert!(f.error.message.contains("locked"), "{}", f.error.message);
    }
    // Attaching sompi to a call of a core contract.
    let f = chain
        .call_with(
            &alice,
            Hname::of("accounts"),
            "total",
            &(),
            &CallOptions {
                transfer_sompi: 1_000,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    let spent = before - chain.balance(&alice.agent());
    assert!(spent < 1_000_000, "only fees were paid: {spent}");
    assert_eq!(chain.balance(&contract(here, "root")), 0);
}

/// Defect 25 (low): `contract:<x>` resolved a name before an hname, and a contract could be
/// named like another's hname, so tools could be pointed at the wrong contract.
#[test]
fn names_cannot_pose_as_hnames() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let noop = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "ep:init")))"#)
        .unwrap();
    let real = chain.deploy(&alice, "real", &noop, &()).unwrap();
    let fake_name = format!("0x{real}");
    assert!(Hname::from_hex(&fake_name).is_some(), "{fake_name}");
    let f = chain.deploy(&alice, &fake_name, &noop, &()).unwrap_err();
    assert!(f.is_request(RequestErrorCode::ContractExists), "{f:?}");
    assert_eq!(
        chain.chain().resolve_contract(&fake_name).unwrap(),
        Some(real)
    );
    assert_eq!(chain.chain().resolve_contract("real").unwrap(), Some(real));
}

/// Found by the `module` fuzz target: a failed instantiation's receipt message carried wasmi's
/// debug text with a per-process store id, so the same request gave different receipts (and
/// receipt roots) on two nodes. Receipt messages are now fixed texts.
#[test]
fn vm_error_messages_are_deterministic() {
    let wasm = wat::parse_str(
        r#"(module (table 1 funcref) (func $f) (elem (i32.const 4) func $f)
           (memory (export "memory") 1) (func (export "ep:init")))"#,
    )
    .unwrap();
    let failures: Vec<_> = (0..2)
        .map(|_| {
            let mut chain = TestChain::new();
            let alice = chain.new_account(100 * KAS);
            chain.deploy(&alice, "elem", &wasm, &()).unwrap_err()
        })
        .collect();
    assert!(failures[0].is_vm(VmErrorCode::Trap), "{:?}", failures[0]);
    assert_eq!(failures[0].error, failures[1].error);
    assert_eq!(failures[0].receipt.hash(), failures[1].receipt.hash());
    assert!(
        !failures[0].error.message.contains("Store"),
        "{:?}",
        failures[0].error
    );
}

/// Defect 21 (low): a contract aborting with code `u32::MAX` was reported as the request-level
/// `bad_arguments`, so a contract could pose as the runtime. Every abort stays at the contract
/// level.
#[test]
fn a_contract_cannot_raise_a_request_level_error() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let wasm = wat::parse_str(
        r#"(module
            (import "wisp" "abort" (func $abort (param i32 i32 i32)))
            (memory (export "memory") 1)
            (func (export "ep:init"))
            (func (export "ep:run") (call $abort (i32.const -1) (i32.const 0) (i32.const 0))))"#,
    )
    .unwrap();
    let c = chain.deploy(&alice, "poser", &wasm, &()).unwrap();
    let f = chain.call(&alice, c, "run", &()).unwrap_err();
    assert_eq!(f.error.level, wisp_core::ErrorLevel::Contract, "{f:?}");
    assert!(f.is_contract(u32::MAX), "{f:?}");
}

/// Defect 18 (medium): VM limits were node-local settings (`VmConfig` passed to `Chain::open`),
/// so two nodes configured differently diverged. They are now chain state with a protocol
/// version in genesis and every block header, changed only by a governance upgrade at a stated
/// block; two nodes executing the same blocks switch at exactly that block.
#[test]
fn a_protocol_upgrade_activates_at_its_block_on_every_node() {
    let big_args = vec![7u8; 2048];
    let run = |chain: &mut TestChain| -> Vec<(u64, u32, Hash32, bool)> {
        let owner = chain.owner().clone();
        chain.deposit(&owner, 100 * KAS);
        let noop = wat::parse_str(
            r#"(module (memory (export "memory") 1) (func (export "ep:init")) (func (export "ep:run")))"#,
        )
        .unwrap();
        let c = chain.deploy(&owner, "noop", &noop, &()).unwrap();
        let head = chain.chain().head().unwrap().index;
        let tighter = wisp_vm::VmConfig {
            max_data_bytes: 1024,
            ..wisp_vm::VmConfig::default()
        };
        chain
            .call(
                &owner,
                Hname::of("governance"),
                "schedule_upgrade",
                &(head + 3, 1u32, borsh::to_vec(&tighter).unwrap()),
            )
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            let ok = chain
                .call_raw(&owner, c, "run", big_args.clone(), &CallOptions::default())
                .is_ok();
            let h = chain.chain().head().unwrap();
            seen.push((h.index, h.protocol_version, h.state_root, ok));
        }
        seen
    };
    let (mut a, mut b) = (TestChain::new(), TestChain::new());
    let (seen_a, seen_b) = (run(&mut a), run(&mut b));
    assert_eq!(
        seen_a, seen_b,
        "two nodes, same blocks, same roots and switch"
    );
    // 2 KiB of arguments pass before the activation block (head + 3, where head was the
    // block of the deploy) and are refused from it on.
    let oks: Vec<bool> = seen_a.iter().map(|s| s.3).collect();
    assert_eq!(oks, vec![true, false, false, false], "{seen_a:?}");
    assert_eq!(seen_a[1].0, seen_a[0].0 + 1);
    assert_eq!(
        a.chain().protocol().unwrap().vm.max_data_bytes,
        1024,
        "the new limits are in state"
    );
    assert!(a.chain().scheduled_upgrade().unwrap().is_none());
    // Bounds: governance cannot schedule limits that brick the chain, nor go back in time.
    let owner = a.owner().clone();
    let head = a.chain().head().unwrap().index;
    let zero_depth = wisp_vm::VmConfig {
        max_call_depth: 0,
        ..wisp_vm::VmConfig::default()
    };
    let gov = Hname::of("governance");
    let args = |at: u64, v: u32, vm: &wisp_vm::VmConfig| (at, v, borsh::to_vec(vm).unwrap());
    for bad in [
        args(head + 5, 1, &zero_depth),
        args(head, 1, &wisp_vm::VmConfig::default()),
        args(head + 5, 0, &wisp_vm::VmConfig::default()),
    ] {
        assert!(a.call(&owner, gov, "schedule_upgrade", &bad).is_err());
    }
    // A version this software does not implement stops the chain at its activation block with
    // an error that says what to do, instead of executing it differently from newer nodes.
    let head = a.chain().head().unwrap().index;
    a.call(
        &owner,
        gov,
        "schedule_upgrade",
        &args(
            head + 3,
            wisp_chain::SUPPORTED_PROTOCOL_VERSION + 1,
            &wisp_vm::VmConfig::default(),
        ),
    )
    .unwrap();
    let next = a.chain().head().unwrap().index + 1;
    let l1 = L1Ref {
        block_hash: Hash32([0xee; 32]),
        daa_score: 10_000,
        timestamp_ms: 1_900_000_000_000,
    };
    a.chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1,
            on_ledger: vec![],
            off_ledger: vec![],
        })
        .unwrap();
    assert_eq!(a.chain().head().unwrap().index, next);
    let e = a
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1,
            on_ledger: vec![],
            off_ledger: vec![],
        })
        .unwrap_err();
    assert!(
        matches!(e, wisp_chain::ChainError::UnsupportedProtocol { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade the node software"), "{e}");
}

/// Defect 14 (medium): deposits with no sender identity were dropped silently. The chain
/// credits the payload's beneficiary, or records the deposit as refundable under its L1
/// transaction id (also when the beneficiary could never spend it).
#[test]
fn deposits_without_a_sender_are_credited_or_kept_refundable() {
    let chain = TestChain::new();
    let bob = agent_of(&key(60));
    let nobody = AgentId::Contract(wisp_core::ContractId {
        chain: chain.chain_id(),
        hname: Hname::of("not-deployed"),
    });
    let entry = |tx: u8, body: OnLedgerBody| OnLedgerRequest {
        l1_tx_id: Hash32([tx; 32]),
        index: u32::MAX,
        sender: AgentId::Address([0; 32]),
        deposit_sompi: 5 * KAS,
        body,
    };
    let out = chain
        .chain()
        .execute_block(BlockInputs {
            randomness: None,
            l1: l1(120),
            on_ledger: vec![
                entry(1, OnLedgerBody::DepositFor(bob)),
                entry(2, OnLedgerBody::Refundable),
                entry(3, OnLedgerBody::DepositFor(nobody)),
            ],
            off_ledger: vec![],
        })
        .unwrap();
    assert_eq!(out.receipts.len(), 3);
    assert_eq!(chain.balance(&bob), 5 * KAS);
    assert_eq!(chain.balance(&nobody), 0);
    let unclaimed = |tx: u8| -> u64 {
        chain
            .view(Hname::of("accounts"), "unclaimed", &(Hash32([tx; 32]),))
            .unwrap()
    };
    assert_eq!(unclaimed(1), 0);
    assert_eq!(unclaimed(2), 5 * KAS);
    assert_eq!(unclaimed(3), 5 * KAS);
    assert!(out.receipts[1]
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("refundable"));
}

/// Defect 12 (medium): deploy compiled a module into the node's shared cache and then read it
/// back, so a deploy failed on one node only if another thread evicted it in between. Deploy now
/// instantiates the module it compiled. A simulated deploy never inserts into the cache, so it
/// is exactly the "evicted in between" case; it succeeds, and a deploy costs the same gas
/// whether the code was never compiled, compiled in this request, or already cached.
#[test]
fn deploy_does_not_depend_on_the_module_cache() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(1_000 * KAS);
    // A module no other test compiles (its own data bytes), so no cache anywhere holds it.
    let wasm = wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 0) "defect 12: deploy without the cache")
            (func (export "ep:init")))"#,
    )
    .unwrap();
    let chain_id = chain.chain_id();
    let deploy_body = |name: &str| RequestBody {
        chain: chain_id,
        call: Call {
            target: Hname::of("root"),
            entry_point: Hname::of("deploy"),
            args: borsh::to_vec(&(name.to_string(), wasm.clone(), Vec::<u8>::new())).unwrap(),
            transfer_sompi: 0,
        },
        gas_budget: 50_000_000,
        access_list: None,
        time_lock: None,
    };
    let simulated = chain
        .chain()
        .simulate(alice.agent(), &deploy_body("cacheless1"))
        .unwrap();
    assert!(simulated.error.is_none(), "{simulated:?}");
    let deploy = |chain: &mut TestChain, name: &str| {
        chain
            .call_raw(
                &alice,
                Hname::of("root"),
                "deploy",
                deploy_body(name).call.args,
                &CallOptions {
                    gas_budget: 50_000_000,
                    ..Default::default()
                },
            )
            .unwrap()
    };
    // Compiled in its own request, then (next block) found in the cache: the same gas as the
    // simulation that compiled it and kept nothing.
    let first = deploy(&mut chain, "cacheless1");
    let second = deploy(&mut chain, "cacheless2");
    assert_eq!(first.gas_used, simulated.gas_used);
    assert_eq!(second.gas_used, simulated.gas_used);
    assert_ne!(first.return_data, second.return_data);
}
