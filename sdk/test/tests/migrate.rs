//! `#[migrate]` through the SDK: version 1 of a counter (`sdk/test/fixtures/counter`) is
//! upgraded to version 2 (`counter_v2`), whose migration moves the old state into a new layout
//! in the upgrade's request; a migration that fails leaves everything as it was.

use wisp_test::{AgentId, Hname, RequestErrorCode, TestChain};

const KAS: u64 = 100_000_000;

#[test]
fn a_migration_converts_the_old_state_in_the_upgrade() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let root = Hname::of("root");
    let v1 = wisp_test::contract_wasm("sdk/test/fixtures/counter");
    let v2 = wisp_test::contract_wasm("sdk/test/fixtures/counter_v2");
    let ctr = chain.deploy(&alice, "ctr", &v1, &()).unwrap();
    chain.call(&alice, ctr, "bump", &(5u64,)).unwrap();
    chain.call(&alice, ctr, "bump", &(2u64,)).unwrap();
    assert_eq!(chain.view::<_, u64>(ctr, "count", &()).unwrap(), 7);

    let r = chain
        .call(
            &alice,
            root,
            "upgrade",
            &(ctr, v2.clone(), borsh::to_vec(&(2u64,)).unwrap()),
        )
        .unwrap();
    println!("gas: upgrade with migration {}", r.gas_used);
    type State = (u64, u64, Option<AgentId>);
    assert_eq!(
        chain.view::<_, State>(ctr, "state", &()).unwrap(),
        (7, 2, None)
    );
    chain.call(&alice, ctr, "bump", &(1u64,)).unwrap();
    assert_eq!(
        chain.view::<_, State>(ctr, "state", &()).unwrap(),
        (8, 3, Some(alice.agent()))
    );

    // The same code again: its migration refuses to run twice, so nothing changes.
    let f = chain
        .call(
            &alice,
            root,
            "upgrade",
            &(ctr, v2, borsh::to_vec(&(9u64,)).unwrap()),
        )
        .unwrap_err();
    assert!(f.is_contract(1), "{f:?}");
    assert_eq!(
        chain.view::<_, State>(ctr, "state", &()).unwrap(),
        (8, 3, Some(alice.agent()))
    );
    // And nobody calls `migrate` directly.
    let f = chain.call(&alice, ctr, "migrate", &(0u64,)).unwrap_err();
    assert!(f.is_request(RequestErrorCode::Unauthorized), "{f:?}");
}
