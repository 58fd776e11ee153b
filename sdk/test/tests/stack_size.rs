//! `wisp build`'s shadow stack: 32 KiB unless a contract asks for another, so that the example
//! token's memory is one 64 KiB page (each call pays `INITIAL_PAGE_GAS` per page, and the VM
//! zeroes every page after the call).

use std::path::Path;

/// The initial pages of a module's exported memory.
fn memory_pages(wasm: &[u8]) -> u64 {
    let engine = wasmi::Engine::default();
    let module = wasmi::Module::new(&engine, wasm).expect("the module compiles");
    match module.get_export("memory") {
        Some(wasmi::ExternType::Memory(memory)) => memory.minimum(),
        other => panic!("no exported memory: {other:?}"),
    }
}

#[test]
fn the_token_fits_one_page_with_the_default_stack_and_two_with_64_kib() {
    let default = wisp_test::contract_wasm("contracts/token");
    assert_eq!(memory_pages(&default), 1);

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let options = wisp_build::BuildOptions {
        quiet: true,
        stack_bytes: Some(64 * 1024),
        ..Default::default()
    };
    let path = wisp_build::build_contract(&root.join("contracts/token"), &options)
        .unwrap_or_else(|e| panic!("building the token with a 64 KiB stack: {e}"));
    let bigger = std::fs::read(path).unwrap();
    assert_eq!(memory_pages(&bigger), 2);
    assert_ne!(bigger, default, "the stack size is linked into the module");
}
