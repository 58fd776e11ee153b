//! `wisp::random`: what a contract draws is derived from the block's randomness, the request
//! id and the draw number; a view and a chain without a committee get a typed error.

use wisp_test::{random_value, TestChain, VmErrorCode};

const KAS: u64 = 100_000_000;

/// `ep:draw2` returns two draws (64 bytes); `view:peek` draws in a view.
const DRAWS: &str = r#"(module
    (import "wisp" "random" (func $random (param i32)))
    (import "wisp" "set_return" (func $ret (param i32 i32)))
    (memory (export "memory") 1)
    (func (export "ep:init"))
    (func (export "ep:draw2")
        (call $random (i32.const 0))
        (call $random (i32.const 32))
        (call $ret (i32.const 0) (i32.const 64)))
    (func (export "view:peek")
        (call $random (i32.const 0))
        (call $ret (i32.const 0) (i32.const 32))))"#;

#[test]
fn each_draw_is_the_documented_derivation_and_views_cannot_draw() {
    let mut chain = TestChain::new();
    chain.set_random_seed(Some([9; 32]));
    let alice = chain.new_account(10 * KAS);
    let c = chain
        .deploy(&alice, "draws", &wat::parse_str(DRAWS).unwrap(), &())
        .unwrap();
    let r = chain.call(&alice, c, "draw2", &()).unwrap();
    let randomness = chain.block_randomness(r.block_index).unwrap().0;
    assert_eq!(r.return_data.len(), 64);
    assert_eq!(
        r.return_data[..32],
        random_value(&randomness, &r.request_id, 0)
    );
    assert_eq!(
        r.return_data[32..],
        random_value(&randomness, &r.request_id, 1)
    );
    assert_ne!(r.return_data[..32], r.return_data[32..]);
    // The next request, in the next block, draws other values.
    let again = chain.call(&alice, c, "draw2", &()).unwrap();
    assert_ne!(again.return_data, r.return_data);

    let e = chain.view::<_, Vec<u8>>(c, "peek", &()).unwrap_err();
    assert_eq!(e.code, VmErrorCode::RandomnessUnavailable.code(), "{e:?}");
    assert!(e.message.contains("view"), "{}", e.message);
}

#[test]
fn a_chain_without_a_committee_refuses_to_draw() {
    let mut chain = TestChain::new();
    chain.set_random_seed(None);
    let alice = chain.new_account(10 * KAS);
    let c = chain
        .deploy(&alice, "draws", &wat::parse_str(DRAWS).unwrap(), &())
        .unwrap();
    let f = chain.call(&alice, c, "draw2", &()).unwrap_err();
    assert_eq!(f.error.code, VmErrorCode::RandomnessUnavailable.code());
    assert!(f.error.message.contains("committee"), "{}", f.error.message);
    // A simulation draws from a stand-in, so `wisp call` can estimate such a request
    // anywhere; only executing it in a block fails.
    let simulated = chain
        .chain()
        .simulate(
            alice.agent(),
            &wisp_core::RequestBody {
                chain: chain.chain_id(),
                call: wisp_core::Call {
                    target: c,
                    entry_point: wisp_test::Hname::of("draw2"),
                    args: vec![],
                    transfer_sompi: 0,
                },
                gas_budget: 1_000_000,
                access_list: None,
                time_lock: None,
            },
        )
        .unwrap();
    assert!(simulated.error.is_none(), "{:?}", simulated.error);
    assert_eq!(simulated.return_data.len(), 64);
}
