//! `wisp_node::allocator::configure` in a process of its own: it must run before anything
//! reads mimalloc's options, which other tests in a shared process could do first.

#[test]
fn configure_turns_off_returning_freed_memory() {
    wisp_node::allocator::configure();
    // Index 15 is `purge_delay` (the unit test checks its default): -1 turns purging off,
    // unless the environment says otherwise, which mimalloc lets win.
    // SAFETY: reads one option, after `configure` set its default; no other thread sets one.
    let delay = unsafe { libmimalloc_sys::mi_option_get(15) };
    match std::env::var("MIMALLOC_PURGE_DELAY") {
        Ok(v) => assert_eq!(delay.to_string(), v),
        Err(_) => assert_eq!(delay, -1),
    }
}
