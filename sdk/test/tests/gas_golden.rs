//! Golden gas figures of the example contracts' main entry points (Soroban's `observations`):
//! a change that moves consensus-relevant gas (VM, host costs, SDK, contract code, toolchain)
//! shows up here in review. Refresh with `WISP_BLESS=1 cargo test -p wisp-test --test gas_golden`.

use wisp_test::{AgentId, CallOptions, ContractId, Hname, TestChain};

const E18: u128 = 1_000_000_000_000_000_000;

/// Calls one signature check per entry point, on zeros.
const CHECKER: &str = r#"(module
  (import "wisp" "verify_schnorr" (func $schnorr (param i32 i32 i32) (result i32)))
  (import "wisp" "verify_ecdsa" (func $ecdsa (param i32 i32 i32) (result i32)))
  (import "wisp" "verify_ed25519" (func $ed25519 (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "ep:init"))
  (func (export "ep:schnorr") (drop (call $schnorr (i32.const 0) (i32.const 32) (i32.const 96))))
  (func (export "ep:ecdsa") (drop (call $ecdsa (i32.const 0) (i32.const 32) (i32.const 96))))
  (func (export "ep:ed25519")
    (drop (call $ed25519 (i32.const 0) (i32.const 32) (i32.const 32) (i32.const 96)))))"#;
const KAS: u64 = 100_000_000;

#[test]
fn gas_of_example_contracts_matches_the_golden_file() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(1_000 * KAS);
    let bob = chain.new_account(10 * KAS);
    let mut lines = Vec::new();
    let mut record = |what: &str, gas: u64| lines.push(format!("{what:32} {gas}"));

    let token = wisp_test::contract_wasm("contracts/token");
    let supply = 1_000_000 * E18;
    let deploy = |chain: &mut TestChain, name: &str| {
        let r = chain.call_raw(
            &alice,
            Hname::of("root"),
            "deploy",
            borsh::to_vec(&(
                name.to_string(),
                token.clone(),
                borsh::to_vec(&("T".to_string(), "T".to_string(), 18u8, supply)).unwrap(),
            ))
            .unwrap(),
            &CallOptions {
                gas_budget: 50_000_000,
                ..Default::default()
            },
        );
        r.unwrap()
    };
    let r = deploy(&mut chain, "token_a");
    record("root.deploy(token) incl. init", r.gas_used);
    deploy(&mut chain, "token_b");
    let (a, b) = (Hname::of("token_a"), Hname::of("token_b"));
    record(
        "token.transfer",
        chain
            .call(&alice, a, "transfer", &(bob.agent(), 100u128))
            .unwrap()
            .gas_used,
    );
    record(
        "token.approve",
        chain
            .call(&alice, a, "approve", &(bob.agent(), 100u128))
            .unwrap()
            .gas_used,
    );
    record(
        "token.transfer_from",
        chain
            .call(
                &bob,
                a,
                "transfer_from",
                &(alice.agent(), bob.agent(), 50u128),
            )
            .unwrap()
            .gas_used,
    );
    record(
        "token.mint",
        chain
            .call(&alice, a, "mint", &(bob.agent(), 5u128))
            .unwrap()
            .gas_used,
    );

    let amm = chain
        .deploy(
            &alice,
            "amm",
            &wisp_test::contract_wasm("contracts/amm"),
            &(a, b),
        )
        .unwrap();
    let pair = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: amm,
    });
    chain
        .call(&alice, a, "approve", &(pair, u128::MAX))
        .unwrap();
    chain
        .call(&alice, b, "approve", &(pair, u128::MAX))
        .unwrap();
    record(
        "amm.add_liquidity (first)",
        chain
            .call(
                &alice,
                amm,
                "add_liquidity",
                &(5 * E18, 10 * E18, alice.agent()),
            )
            .unwrap()
            .gas_used,
    );
    record(
        "amm.add_liquidity",
        chain
            .call(&alice, amm, "add_liquidity", &(E18, 2 * E18, alice.agent()))
            .unwrap()
            .gas_used,
    );
    record(
        "amm.swap_exact_in",
        chain
            .call(&alice, amm, "swap_exact_in", &(a, E18, 0u128, bob.agent()))
            .unwrap()
            .gas_used,
    );
    record(
        "amm.remove_liquidity",
        chain
            .call(&alice, amm, "remove_liquidity", &(E18, alice.agent()))
            .unwrap()
            .gas_used,
    );

    let escrow = chain
        .deploy(
            &alice,
            "escrow",
            &wisp_test::contract_wasm("contracts/escrow"),
            &(),
        )
        .unwrap();
    let funds = CallOptions {
        transfer_sompi: KAS,
        ..Default::default()
    };
    record(
        "escrow.open",
        chain
            .call_with(&alice, escrow, "open", &(bob.agent(), 1_000u64), &funds)
            .unwrap()
            .gas_used,
    );
    record(
        "escrow.release",
        chain
            .call(&alice, escrow, "release", &(0u64,))
            .unwrap()
            .gas_used,
    );
    // The multisig wallet, 2 of alice, bob and carol: calls, then a signature made off-chain.
    let carol = chain.new_account(10 * KAS);
    let owners = vec![alice.agent(), bob.agent(), carol.agent()];
    let r = chain.call_raw(
        &alice,
        Hname::of("root"),
        "deploy",
        borsh::to_vec(&(
            "vault".to_string(),
            wisp_test::contract_wasm("contracts/multisig"),
            borsh::to_vec(&(owners, 2u8)).unwrap(),
        ))
        .unwrap(),
        &CallOptions {
            gas_budget: 50_000_000,
            ..Default::default()
        },
    );
    record("root.deploy(multisig) incl. init", r.unwrap().gas_used);
    let vault = Hname::of("vault");
    let vault_agent = AgentId::Contract(ContractId {
        chain: chain.chain_id(),
        hname: vault,
    });
    chain
        .call(
            &alice,
            Hname::of("accounts"),
            "transfer",
            &(vault_agent, 2 * KAS),
        )
        .unwrap();
    chain
        .call(&alice, a, "transfer", &(vault_agent, 100u128))
        .unwrap();
    let mut step = |what: &str, from: &wisp_test::Account, function: &str, args: Vec<u8>| {
        let r = chain
            .call_raw(from, vault, function, args, &CallOptions::default())
            .unwrap();
        record(what, r.gas_used);
    };
    step(
        "multisig.propose_transfer",
        &alice,
        "propose_transfer",
        borsh::to_vec(&(bob.agent(), KAS)).unwrap(),
    );
    step(
        "multisig.approve",
        &bob,
        "approve",
        borsh::to_vec(&(0u64,)).unwrap(),
    );
    step(
        "multisig.execute (transfer)",
        &carol,
        "execute",
        borsh::to_vec(&(0u64,)).unwrap(),
    );
    step(
        "multisig.propose_call",
        &alice,
        "propose_call",
        borsh::to_vec(&(
            a,
            "transfer".to_string(),
            borsh::to_vec(&(bob.agent(), 1u128)).unwrap(),
            0u64,
        ))
        .unwrap(),
    );
    let digest: Option<wisp_test::Hash32> = chain.view(vault, "approval_digest", &(1u64,)).unwrap();
    let signature = carol.sign_schnorr(&digest.unwrap().0).to_vec();
    let r = chain
        .call(
            &bob,
            vault,
            "execute_signed",
            &(1u64, vec![(2u8, signature)]),
        )
        .unwrap();
    record("multisig.execute_signed (1 sig)", r.gas_used);

    // A third token from the code the first deploy stored (what a factory does).
    record(
        "root.deploy_stored(token) + init",
        chain
            .call(
                &alice,
                Hname::of("root"),
                "deploy_stored",
                &(
                    wisp_core::blake2b_256(&token),
                    "token_c".to_string(),
                    borsh::to_vec(&("T".to_string(), "T".to_string(), 18u8, supply)).unwrap(),
                ),
            )
            .unwrap()
            .gas_used,
    );
    // token_b's code replaced by the same code: no `migrate`, so the code-size charge alone.
    record(
        "root.upgrade(token, no migrate)",
        chain
            .call(
                &alice,
                Hname::of("root"),
                "upgrade",
                &(b, token.clone(), Vec::<u8>::new()),
            )
            .unwrap()
            .gas_used,
    );
    record(
        "root.set_admin",
        chain
            .call(
                &alice,
                Hname::of("root"),
                "set_admin",
                &(b, Some(bob.agent())),
            )
            .unwrap()
            .gas_used,
    );
    // One call of each signature check (on zeros: a check costs the same valid or not).
    let checker = chain
        .deploy(&alice, "checker", &wat::parse_str(CHECKER).unwrap(), &())
        .unwrap();
    for kind in ["schnorr", "ecdsa", "ed25519"] {
        let gas = chain
            .call_raw(&alice, checker, kind, vec![], &CallOptions::default())
            .unwrap()
            .gas_used;
        record(&format!("verify_{kind} (WAT, 32 B)"), gas);
    }
    record(
        "accounts.transfer (native)",
        chain
            .call(
                &alice,
                Hname::of("accounts"),
                "transfer",
                &(bob.agent(), KAS),
            )
            .unwrap()
            .gas_used,
    );
    // The same transfer on-ledger, time-locked two DAA scores ahead: its receipt adds the
    // gas of waiting in the queue.
    let (daa, _) = chain.l1_now();
    let (_, arrived) = chain.call_on_ledger(
        &alice,
        Hname::of("accounts"),
        "transfer",
        &(bob.agent(), KAS),
        0,
        &CallOptions {
            time_lock: Some(wisp_test::TimeLock {
                not_before: Some(wisp_test::L1Time::DaaScore(daa + 2)),
                expires_at: None,
            }),
            ..Default::default()
        },
    );
    assert!(arrived.is_empty());
    let ran = chain.advance_blocks(1);
    record("accounts.transfer, time-locked", ran[0].gas_used);
    // The storage price is the chain owner's to set.
    let owner = chain.owner().clone();
    chain.deposit(&owner, KAS);
    let set_price = chain
        .call(
            &owner,
            Hname::of("governance"),
            "set_storage_price",
            &(100u64,),
        )
        .unwrap();
    record("governance.set_storage_price", set_price.gas_used);

    let text = format!(
        "# Gas used per request (receipt gas_used), example contracts built by `wisp build`.\n# Regenerate: WISP_BLESS=1 cargo test -p wisp-test --test gas_golden\n{}\n",
        lines.join("\n")
    );
    // The runtime variable, not `env!`: a shared target directory may hold a build from
    // another checkout of the same sources.
    let path = format!(
        "{}/../../contracts/gas-golden.txt",
        std::env::var("CARGO_MANIFEST_DIR")
            .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string())
    );
    if std::env::var_os("WISP_BLESS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        golden, text,
        "gas changed; if intended, rerun with WISP_BLESS=1 and review the diff"
    );
}
