//! `#[migrate]` through the SDK: version 1 of a counter (`sdk/test/fixtures/counter`) is
//! upgraded to version 2 (`counter_v2`), whose migration moves the old state into a new layout
//! in the upgrade's request; a migration that fails leaves everything as it was.

use wisp_fixture_counter::CounterClient;
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
    // Version 1 declares no errors: its typed client's error type is `NoErrors`.
    let mut v1_client = CounterClient::with_backend(chain.caller(&alice), ctr);
    assert_eq!(v1_client.bump(5).unwrap(), 5);
    assert_eq!(v1_client.bump(2).unwrap(), 7);
    assert_eq!(v1_client.count().unwrap(), 7);

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
    // A version 1 client still works against version 2, which kept `count`'s signature.
    let v1_client = CounterClient::with_backend(chain.caller(&alice), ctr);
    assert_eq!(v1_client.count().unwrap(), 8);

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

/// A factory: version 2's `spawn` deploys a counter from its own stored code with
/// `env::deploy` (`root.deploy_stored`), as its deployer and admin; a taken name is refused.
#[test]
fn a_contract_deploys_contracts_from_stored_code() {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let root = Hname::of("root");
    let v2 = wisp_test::contract_wasm("sdk/test/fixtures/counter_v2");
    let parent = chain.deploy(&alice, "parent", &v2, &()).unwrap();
    let parent_agent = AgentId::Contract(wisp_test::ContractId {
        chain: chain.chain_id(),
        hname: parent,
    });
    let r = chain
        .call(&alice, parent, "spawn", &("child".to_string(),))
        .unwrap();
    println!(
        "gas: spawn (factory deploy from stored code) {}",
        r.gas_used
    );
    let child: Hname = borsh::from_slice(&r.return_data).unwrap();
    assert_eq!(child, Hname::of("child"));
    type State = (u64, u64, Option<AgentId>);
    assert_eq!(
        chain.view::<_, State>(child, "state", &()).unwrap(),
        (0, 0, None)
    );
    chain.call(&alice, child, "bump", &(4u64,)).unwrap();
    assert_eq!(chain.view::<_, u64>(child, "count", &()).unwrap(), 4);
    type Record = Option<(String, wisp_test::Hash32, AgentId, u64)>;
    let (p, c): (Record, Record) = (
        chain.view(root, "contract", &(parent,)).unwrap(),
        chain.view(root, "contract", &(child,)).unwrap(),
    );
    let (p, c) = (p.unwrap(), c.unwrap());
    assert_eq!(c.1, p.1, "the same code");
    assert_eq!(c.2, parent_agent, "deployed by the factory");
    let admin: Option<AgentId> = chain.view(root, "admin", &(child,)).unwrap();
    assert_eq!(admin, Some(parent_agent));
    let f = chain
        .call(&alice, parent, "spawn", &("child".to_string(),))
        .unwrap_err();
    assert!(f.is_contract(2), "{f:?}");
    // Code nobody stored cannot be deployed by hash.
    let f = chain
        .call(
            &alice,
            root,
            "deploy_stored",
            &(
                wisp_test::Hash32([7; 32]),
                "ghost".to_string(),
                Vec::<u8>::new(),
            ),
        )
        .unwrap_err();
    assert!(f.is_request(RequestErrorCode::UnknownContract), "{f:?}");
    assert!(
        f.error.message.contains("blob.store"),
        "{}",
        f.error.message
    );
}
