//! Contract upgrades: `root.upgrade` by the contract's admin replaces its code and runs the new
//! code's `migrate` in the same request, atomically; storage carries over; the admin hands the
//! right over or renounces it; `migrate` cannot be called otherwise. Modules are WAT so each
//! version's behaviour is exact.

use wisp_core::Hash32;
use wisp_test::{events, AgentId, Hname, RequestErrorCode, TestChain};

const KAS: u64 = 100_000_000;

/// Imports and the `view:stored` view (the byte under key `v`) every version shares.
const COMMON: &str = r#"
  (import "wisp" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "wisp" "storage_get" (func $get (param i32 i32) (result i64)))
  (import "wisp" "register_read" (func $rr (param i32)))
  (import "wisp" "input" (func $input (result i32)))
  (import "wisp" "set_return" (func $ret (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "v")
  (data (i32.const 8) "\01")
  (func (export "view:stored")
    (drop (call $get (i32.const 0) (i32.const 1)))
    (call $rr (i32.const 16))
    (call $ret (i32.const 16) (i32.const 1)))"#;

/// Version `n` of the contract: `view:version` returns `n`, and `items` adds its `init` and
/// anything else.
fn version(n: u8, items: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {COMMON}
  (data (i32.const 9) "\{n:02x}")
  (func (export "view:version") (call $ret (i32.const 9) (i32.const 1)))
{items})"#
    ))
    .unwrap()
}

/// Version 1: `init` stores 1.
fn v1() -> Vec<u8> {
    version(
        1,
        r#"(func (export "ep:init") (call $set (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 1)))"#,
    )
}

/// Version 2: `migrate(x: u8)` stores x, trapping on 0.
fn v2() -> Vec<u8> {
    version(
        2,
        r#"(func (export "ep:init"))
  (func (export "ep:migrate")
    (drop (call $input))
    (call $rr (i32.const 32))
    (if (i32.eqz (i32.load8_u (i32.const 32))) (then unreachable))
    (call $set (i32.const 0) (i32.const 1) (i32.const 32) (i32.const 1)))"#,
    )
}

/// Version 3: no `migrate`.
fn v3() -> Vec<u8> {
    version(3, r#"(func (export "ep:init"))"#)
}

fn code_hash(chain: &TestChain, contract: Hname) -> Hash32 {
    let record: Option<(String, Hash32, AgentId, u64)> = chain
        .view(Hname::of("root"), "contract", &(contract,))
        .unwrap();
    record.unwrap().1
}

#[test]
fn the_admin_upgrades_with_a_migration_and_storage_carries_over() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let bob = chain.new_account(100 * KAS);
    let root = Hname::of("root");
    let c = chain.deploy(&alice, "versioned", &v1(), &()).unwrap();
    let view = |chain: &TestChain, f: &str| -> u8 { chain.view(c, f, &()).unwrap() };
    assert_eq!((view(&chain, "version"), view(&chain, "stored")), (1, 1));
    let admin: Option<AgentId> = chain.view(root, "admin", &(c,)).unwrap();
    assert_eq!(admin, Some(alice.agent()), "the deployer is the admin");
    let h1 = code_hash(&chain, c);

    // Not the admin: refused.
    let f = chain
        .call(
            &bob,
            root,
            "upgrade",
            &(c, v2(), borsh::to_vec(&2u8).unwrap()),
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    // A migration that fails leaves the old code and state.
    let f = chain
        .call(
            &alice,
            root,
            "upgrade",
            &(c, v2(), borsh::to_vec(&0u8).unwrap()),
        )
        .unwrap_err();
    assert!(f.is_vm(wisp_test::VmErrorCode::Trap), "{f:?}");
    assert_eq!(code_hash(&chain, c), h1);
    assert_eq!((view(&chain, "version"), view(&chain, "stored")), (1, 1));

    // The upgrade and its migration, in one request.
    let r = chain
        .call(
            &alice,
            root,
            "upgrade",
            &(c, v2(), borsh::to_vec(&7u8).unwrap()),
        )
        .unwrap();
    let h2: Hash32 = borsh::from_slice(&r.return_data).unwrap();
    assert_ne!(h2, h1);
    assert_eq!(code_hash(&chain, c), h2);
    let upgraded: Vec<(Hname, Hash32, Hash32)> = events(&r, "Upgraded");
    assert_eq!(upgraded, vec![(c, h1, h2)]);
    assert_eq!((view(&chain, "version"), view(&chain, "stored")), (2, 7));
    println!("gas: upgrade with migration {}", r.gas_used);

    // `migrate` runs only through an upgrade.
    let f = chain.call(&alice, c, "migrate", &(9u8,)).unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    assert!(
        f.error.message.contains("root.upgrade"),
        "{}",
        f.error.message
    );
    assert_eq!(view(&chain, "stored"), 7);

    // Code without `migrate`: arguments for it are refused; without them the code is replaced
    // and the state stays as the last migration left it.
    let f = chain
        .call(&alice, root, "upgrade", &(c, v3(), vec![1u8]))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::BadArguments), "{f:?}");
    chain
        .call(&alice, root, "upgrade", &(c, v3(), Vec::<u8>::new()))
        .unwrap();
    assert_eq!((view(&chain, "version"), view(&chain, "stored")), (3, 7));
}

#[test]
fn the_upgrade_right_is_handed_over_and_renounced() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let bob = chain.new_account(100 * KAS);
    let root = Hname::of("root");
    let c = chain.deploy(&alice, "versioned", &v1(), &()).unwrap();
    let none = Vec::<u8>::new();

    let f = chain
        .call(&bob, root, "set_admin", &(c, Some(bob.agent())))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    let r = chain
        .call(&alice, root, "set_admin", &(c, Some(bob.agent())))
        .unwrap();
    let changed: Vec<(Hname, Option<AgentId>)> = events(&r, "AdminChanged");
    assert_eq!(changed, vec![(c, Some(bob.agent()))]);
    let f = chain
        .call(&alice, root, "upgrade", &(c, v3(), none.clone()))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    chain
        .call(&bob, root, "upgrade", &(c, v3(), none.clone()))
        .unwrap();

    // Renounced: immutable for good.
    chain
        .call(&bob, root, "set_admin", &(c, None::<AgentId>))
        .unwrap();
    let admin: Option<AgentId> = chain.view(root, "admin", &(c,)).unwrap();
    assert_eq!(admin, None);
    let f = chain
        .call(&bob, root, "upgrade", &(c, v1(), none.clone()))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    assert!(f.error.message.contains("immutable"), "{}", f.error.message);
    let f = chain
        .call(&bob, root, "set_admin", &(c, Some(bob.agent())))
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
    // Core contracts and unknown names have no admin to act as.
    let f = chain
        .call(
            &alice,
            root,
            "upgrade",
            &(Hname::of("accounts"), v1(), none),
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::UnknownContract), "{f:?}");
}

/// Contracts call core contracts through the same `call`: a multisig wallet (the example) that
/// is a contract's admin upgrades it, deploys a contract of its own and pays from its balance,
/// each through an approved proposal.
#[test]
fn a_multisig_wallet_upgrades_deploys_and_pays_through_core_contracts() {
    let mut chain = TestChain::new();
    let owners: Vec<_> = (0..2).map(|_| chain.new_account(100 * KAS)).collect();
    let bob = chain.new_account(KAS);
    let root = Hname::of("root");
    let accounts = Hname::of("accounts");
    let keys: Vec<AgentId> = owners.iter().map(|o| o.agent()).collect();
    let wallet = chain
        .deploy(
            &owners[0],
            "vault",
            &wisp_test::contract_wasm("contracts/multisig"),
            &(keys, 2u8),
        )
        .unwrap();
    let wallet_agent = AgentId::Contract(wisp_test::ContractId {
        chain: chain.chain_id(),
        hname: wallet,
    });
    chain
        .call(&owners[0], accounts, "transfer", &(wallet_agent, 10 * KAS))
        .unwrap();
    let c = chain.deploy(&owners[0], "versioned", &v1(), &()).unwrap();
    chain
        .call(&owners[0], root, "set_admin", &(c, Some(wallet_agent)))
        .unwrap();
    // Proposes `function` of `contract` with `args`, approves with the second owner, runs it.
    let run =
        |chain: &mut TestChain, contract: Hname, function: &str, args: Vec<u8>, sompi: u64| {
            let r = chain
                .call(
                    &owners[0],
                    wallet,
                    "propose_call",
                    &(contract, function.to_string(), args, sompi),
                )
                .unwrap();
            // `Proposed { id, proposer }`.
            let id = events::<(u64, AgentId)>(&r, "Proposed")[0].0;
            chain.call(&owners[1], wallet, "approve", &(id,)).unwrap();
            chain.call(&owners[1], wallet, "execute", &(id,))
        };

    // root.upgrade, with the wallet as the admin.
    let r = run(
        &mut chain,
        root,
        "upgrade",
        borsh::to_vec(&(c, v3(), Vec::<u8>::new())).unwrap(),
        0,
    )
    .unwrap();
    assert_eq!(events::<(Hname, Hash32, Hash32)>(&r, "Upgraded").len(), 1);
    assert_eq!(chain.view::<_, u8>(c, "version", &()).unwrap(), 3);

    // root.deploy: the wallet deploys (and administers) a contract of its own; its `init` ran.
    run(
        &mut chain,
        root,
        "deploy",
        borsh::to_vec(&("child".to_string(), v1(), Vec::<u8>::new())).unwrap(),
        0,
    )
    .unwrap();
    let child = Hname::of("child");
    assert_eq!(chain.view::<_, u8>(child, "stored", &()).unwrap(), 1);
    let record: Option<(String, Hash32, AgentId, u64)> =
        chain.view(root, "contract", &(child,)).unwrap();
    assert_eq!(
        record.unwrap().2,
        wallet_agent,
        "the wallet is the deployer"
    );
    let admin: Option<AgentId> = chain.view(root, "admin", &(child,)).unwrap();
    assert_eq!(admin, Some(wallet_agent));

    // accounts.transfer from the wallet's own balance; a core contract takes no base tokens.
    let before = chain.balance(&bob.agent());
    run(
        &mut chain,
        accounts,
        "transfer",
        borsh::to_vec(&(bob.agent(), 3 * KAS)).unwrap(),
        0,
    )
    .unwrap();
    assert_eq!(chain.balance(&bob.agent()), before + 3 * KAS);
    assert_eq!(chain.balance(&wallet_agent), 7 * KAS);
    let f = run(
        &mut chain,
        accounts,
        "transfer",
        borsh::to_vec(&(bob.agent(), KAS)).unwrap(),
        1,
    )
    .unwrap_err();
    assert!(f.is_contract(7), "the wallet's CallFailed: {f:?}");
    assert_eq!(chain.balance(&wallet_agent), 7 * KAS);
}
