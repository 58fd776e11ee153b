//! What a `no_std` contract needs on wasm32: a global allocator and a panic handler.
//!
//! The allocator bumps a pointer through linear memory and never frees: every call runs in a fresh
//! instance, so memory lives exactly as long as the call. Growth past the chain's memory limit
//! traps in the VM (`memory_limit`).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

const PAGE: usize = 65_536;

struct Bump {
    next: UnsafeCell<usize>,
    end: UnsafeCell<usize>,
}

// SAFETY: wasm32 contracts are single-threaded (the VM rejects the threads proposal).
unsafe impl Sync for Bump {}

extern "C" {
    static __heap_base: u8;
}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = &mut *self.next.get();
        let end = &mut *self.end.get();
        if *next == 0 {
            *next = core::ptr::addr_of!(__heap_base) as usize;
            *end = core::arch::wasm32::memory_size(0) * PAGE;
        }
        let start = (*next + layout.align() - 1) & !(layout.align() - 1);
        let Some(new_next) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        if new_next > *end {
            let pages = (new_next - *end).div_ceil(PAGE);
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return core::ptr::null_mut();
            }
            *end += pages * PAGE;
        }
        *next = new_next;
        start as *mut u8
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    next: UnsafeCell::new(0),
    end: UnsafeCell::new(0),
};

/// Aborts with the panic's message when it is a plain string; formatted messages are not
/// rendered, which keeps `core::fmt` (most of a contract's code) out of the module.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let message = info.message().as_str().unwrap_or("the contract panicked");
    crate::env::abort(wisp_core::CONTRACT_PANIC_CODE, message)
}
