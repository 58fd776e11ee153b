//! The memory allocator a Wisp node runs on: mimalloc, tuned for a process that allocates
//! and frees the same working set block after block.
//!
//! The binary declares it (`#[global_allocator] static ALLOCATOR: Allocator = ALLOCATOR;` with
//! this module's items) and calls [`configure`] first thing in `main`. The benchmarks
//! (`wisp-bench`) do the same, so that they measure what a node does.
//!
//! Why mimalloc: glibc's malloc took about a third of the samples of a block's execution phase
//! (`perf` of `profile_block -- 1 120 independent`: `_int_malloc`, `malloc_consolidate`,
//! `unlink_chunk`, growing a block's read memo and write set). Why [`configure`]: by default
//! mimalloc returns freed memory to the operating system after a delay (1 s in this version),
//! and the benchmark's execution phase ran at 53–59k transfers/s that way against 84k with the
//! returns turned off (`WISP_BENCH_ONLY=runtime`, set through the environment variable
//! `MIMALLOC_PURGE_DELAY`, one run each). Why no transparent huge pages (the `no_thp` feature
//! in the workspace manifest): with them, the kernel zeroing 2 MiB pages on page faults
//! (`clear_page_erms`) was 23% of `profile_block`'s samples. More in CHANGELOG.md and
//! docs/benchmarks.md.

/// The global allocator type of Wisp's binaries.
pub type Allocator = mimalloc::MiMalloc;

/// The value to declare the global allocator with.
pub const ALLOCATOR: Allocator = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in the mimalloc the workspace pins (libmimalloc-sys `=0.1.49`,
/// mimalloc 3: `mi_option_e` in `mimalloc.h`); the crate leaves it unnamed.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps memory that mimalloc's heaps freed for reuse by the process instead of returning it
/// to the operating system after 1 s: resident memory stays near its peak, and memory freed by
/// one block is there for the next without page faults. An explicit
/// `MIMALLOC_PURGE_DELAY` in the environment (milliseconds; 0 purges at once) still wins.
///
/// Call it once, first thing in `main`, before any thread starts (mimalloc's options are not
/// thread safe) and before anything reads the option: it sets the option's default, which
/// mimalloc takes (or the environment's value instead) when the option is first read, so a
/// read before it leaves 1 s in force. Checked by `tests/allocator.rs`, a process of its own.
pub fn configure() {
    // SAFETY: sets one option's default value (a plain store into mimalloc's option table)
    // before any other thread exists, as the function's contract asks of its caller.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_is_the_option_the_index_names() {
        // This version's default for `purge_delay` is 1000 ms and no other option defaults to
        // 1000; read before `configure` (tests do not run it) unless the environment sets it.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // SAFETY: reads one option; no test sets mimalloc options.
            let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
            assert_eq!(
                value, 1000,
                "option {MI_OPTION_PURGE_DELAY} is not purge_delay"
            );
        }
    }
}
