//! Hardening defect 5: compiled code was never freed (one wasmi engine whose code map only
//! grows, a cache that cleared wholesale). A node that sees thousands of distinct modules must
//! keep a flat resident memory: the engine is replaced after a fixed number of compilations.
//! Alone in its test binary, so other tests' allocations do not move the measurement.

use wisp_test::{Hname, TestChain};

const KAS: u64 = 100_000_000;

/// Resident set size of this process, bytes (Linux `/proc/self/statm`).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A small module, distinct per `i` (its data differs), with a few functions so that its
/// compiled code is not trivial.
fn module(i: usize) -> Vec<u8> {
    let mut funcs = String::new();
    for f in 0..48 {
        funcs.push_str(&format!(
            "(func $f{f} (param i64) (result i64) (local i64)
               (local.set 1 (i64.const {}))
               (block (loop
                 (br_if 1 (i64.eqz (local.get 0)))
                 (local.set 1 (i64.xor (i64.mul (local.get 1) (i64.const 31)) (local.get 0)))
                 (local.set 0 (i64.sub (local.get 0) (i64.const 1)))
                 (br 0)))
               (i64.add (local.get 1) (i64.rotl (local.get 0) (i64.const 7))))",
            i * 64 + f
        ));
    }
    wat::parse_str(format!(
        r#"(module (memory (export "memory") 1)
            (data (i32.const 0) "module {i}")
            {funcs}
            (func (export "ep:init"))
            (func (export "ep:run") (drop (call $f47 (i64.const 3)))))"#
    ))
    .unwrap()
}

/// Deploys and calls `count` distinct modules, starting at `first`, on fresh chains (so the
/// chains' in-memory state does not accumulate: only the shared runtime persists).
fn deploy_and_call(first: usize, count: usize) {
    for batch in (first..first + count).collect::<Vec<_>>().chunks(100) {
        let mut chain = TestChain::new();
        let alice = chain.new_account(1_000 * KAS);
        for &i in batch {
            let c = chain
                .deploy(&alice, &format!("m{i}"), &module(i), &())
                .unwrap();
            chain.call(&alice, c, "run", &()).unwrap();
        }
        assert!(chain.hname("m0") == Hname::of("m0"));
    }
}

#[test]
fn resident_memory_stays_flat_across_thousands_of_distinct_modules() {
    let per_engine = wisp_chain::ENGINE_COMPILATIONS;
    // Warm up: two full engine generations.
    deploy_and_call(0, 2 * per_engine);
    let warm = rss_bytes();
    let generations = TestChain::engine_generations();
    deploy_and_call(2 * per_engine, 2 * per_engine);
    let after = rss_bytes();
    let growth = after.saturating_sub(warm);
    eprintln!(
        "{} distinct modules: resident {} MiB after {}, {} MiB after {} (+{} KiB)",
        4 * per_engine,
        warm >> 20,
        2 * per_engine,
        after >> 20,
        4 * per_engine,
        growth >> 10
    );
    assert!(
        TestChain::engine_generations() >= generations + 2,
        "engines were replaced"
    );
    assert!(
        growth < 16 << 20,
        "resident memory grew by {} KiB over {} more modules",
        growth >> 10,
        2 * per_engine
    );
}
