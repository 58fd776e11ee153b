//! The SDK's memory shortcuts: its allocator hands out heap memory without zeroing it
//! (`alloc_zeroed` is a plain bump: memory past the heap base is fresh), which holds only if
//! every call starts with a zeroed heap, also on an instance the VM reuses after a call that
//! dirtied it; and map keys are encoded in place into the key being built.

use wisp_core::ReceiptStatus;
use wisp_test::TestChain;

const KAS: u64 = 100_000_000;

/// A chain with the counter fixture deployed by a funded account.
fn counter() -> (TestChain, wisp_test::Account, wisp_core::Hname) {
    let mut chain = TestChain::new();
    let alice = chain.new_account(100 * KAS);
    let wasm = wisp_test::contract_wasm("sdk/test/fixtures/counter");
    let ctr = chain.deploy(&alice, "ctr", &wasm, &()).unwrap();
    (chain, alice, ctr)
}

#[test]
fn zeroed_allocations_read_zero_on_a_fresh_and_on_a_reused_instance() {
    let (mut chain, alice, ctr) = counter();
    // Two 8,000-byte zeroed allocations around a vector grown byte by byte to 8,000 bytes
    // (8 KiB of capacity): about 24 KB of heap, which the counter's one page holds.
    for round in 0..4 {
        let receipt = chain.call(&alice, ctr, "zeroed", &(8_000u32,)).unwrap();
        assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
        let (clean, pages): (bool, u32) = borsh::from_slice(&receipt.return_data).unwrap();
        assert!(
            clean,
            "call {round} found non-zero bytes in fresh allocations"
        );
        // Memory that grew would keep the instance from being reused; it must not.
        assert_eq!(pages, 1, "call {round}");
    }
}

#[test]
fn map_entries_of_any_key_length_live_under_the_documented_key() {
    let (mut chain, alice, ctr) = counter();
    // The key is "m", 0x00, a 4-byte length and `len` bytes; 250 makes the longest key the
    // chain allows (256 bytes). The key's buffer starts at the map's name plus 40 bytes.
    for len in [0u32, 1, 34, 35, 36, 200, 250] {
        let receipt = chain.call(&alice, ctr, "long_key", &(len,)).unwrap();
        assert_eq!(receipt.status, ReceiptStatus::Success, "{receipt:?}");
        let ok: bool = borsh::from_slice(&receipt.return_data).unwrap();
        assert!(ok, "a {len}-byte map key");
    }
}
