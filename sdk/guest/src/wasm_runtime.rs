//! What a `no_std` contract needs on wasm32: a global allocator and a panic handler.
//!
//! The allocator bumps a pointer through linear memory and never frees: every call runs in a fresh
//! instance, or in one the VM reset to its fresh state (memory zeroed, data segments and globals
//! restored), so memory lives exactly as long as the call. Growth past the chain's memory limit
//! traps in the VM (`max_memory_bytes`).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

const PAGE: usize = 65_536;

/// The bump allocator. `next` is the first free byte and `end` the end of linear memory, both
/// as addresses; `end` starts at 0 so that the first allocation takes the slow path, which reads
/// the memory's size. Every byte it hands out lies past `__heap_base` and was never handed out
/// before in this instance, so it is still zero: linear memory starts zeroed (the VM zeroes a
/// reused instance's memory too) and `memory.grow` adds zeroed pages.
struct Bump {
    next: UnsafeCell<usize>,
    end: UnsafeCell<usize>,
}

// SAFETY: wasm32 contracts are single-threaded (the VM rejects the threads proposal).
unsafe impl Sync for Bump {}

extern "C" {
    static __heap_base: u8;
}

impl Bump {
    /// Where an allocation of `layout` at `next` starts and ends, or `None` past the address
    /// space. Plain wrapping arithmetic with explicit checks: contracts build with overflow
    /// checks on, which would add a panic path to the allocator's hot path.
    #[inline(always)]
    fn place(next: usize, layout: Layout) -> Option<(usize, usize)> {
        let mask = layout.align() - 1;
        let start = next.wrapping_add(mask) & !mask;
        let new_next = start.wrapping_add(layout.size());
        if start < next || new_next < start {
            return None;
        }
        Some((start, new_next))
    }

    /// First allocation (heap not yet located) or one that needs more memory.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&self, layout: Layout) -> *mut u8 {
        let next = &mut *self.next.get();
        let end = &mut *self.end.get();
        if *end == 0 {
            *next = core::ptr::addr_of!(__heap_base) as usize;
            *end = core::arch::wasm32::memory_size(0) * PAGE;
        }
        let Some((start, new_next)) = Self::place(*next, layout) else {
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
}

unsafe impl GlobalAlloc for Bump {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let next = &mut *self.next.get();
        match Self::place(*next, layout) {
            Some((start, new_next)) if new_next <= *self.end.get() => {
                *next = new_next;
                start as *mut u8
            }
            _ => self.alloc_slow(layout),
        }
    }

    /// Bump memory is never handed out twice and starts zeroed (see [`Bump`]), so there is
    /// nothing to clear.
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.alloc(layout)
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}

    /// Shrinks in place; grows in place when `ptr` is the last allocation (a `Vec` being
    /// filled); otherwise allocates and copies like the default.
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size <= layout.size() {
            return ptr;
        }
        let next = &mut *self.next.get();
        let old_end = (ptr as usize).wrapping_add(layout.size());
        if old_end == *next {
            let new_end = (ptr as usize).wrapping_add(new_size);
            if new_end >= old_end && new_end <= *self.end.get() {
                *next = new_end;
                return ptr;
            }
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to `layout.align()`, does not
        // overflow `isize`, as `GlobalAlloc::realloc` requires.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new_ptr = self.alloc(new_layout);
        if !new_ptr.is_null() {
            core::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
        }
        new_ptr
    }
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
