//! `ReservingAllocator`: the process allocator. Huge allocations (≥ 1 GiB) reserve address space
//! with `mmap(MAP_NORESERVE)` instead of asking malloc for committed memory.
//!
//! Why: the wire decoder (`kafka-protocol`) sizes a `Vec` from an array length read off the
//! network before reading the elements. A 14-byte request claiming 2^31 elements makes malloc
//! fail, and a failed allocation aborts the process: one client could kill the broker. With a
//! reservation the allocation succeeds without using memory, the decoder then runs out of
//! input on the next element, and the request fails like any malformed one (connection closed,
//! log line). Legitimate allocations this large do not exist in the broker (frames are capped by
//! `socket.request.max.bytes`), so nothing real takes this path.

// A global allocator is unsafe by nature; each block states why it is sound.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Allocations at or above this size are reservations.
const HUGE: usize = 1 << 30;
/// mmap returns page-aligned memory; larger alignments go to the system allocator.
const PAGE: usize = 4096;

/// See the module docs.
#[derive(Debug)]
pub(crate) struct ReservingAllocator;

fn is_reservation(layout: &Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: small and over-aligned layouts go to `System` unchanged. Huge ones get a fresh private
// anonymous mapping of exactly `layout.size()` bytes (page-aligned, zero-filled, never shared),
// released with `munmap` of the same size in `dealloc`; `realloc` moves between the two kinds
// by allocate-copy-free, which is what `GlobalAlloc::realloc` permits.
unsafe impl GlobalAlloc for ReservingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_reservation(&layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: a new anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            ptr::null_mut()
        } else {
            p.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_reservation(&layout) {
            // SAFETY: anonymous mappings are zero-filled.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_reservation(&layout) {
            // SAFETY: `ptr` came from our mmap with this same size (the caller passes the layout
            // it allocated with).
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ptr::null_mut();
        };
        if !is_reservation(&layout) && !is_reservation(&new_layout) {
            // SAFETY: forwarded with the caller's guarantees.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: allocate the new block, copy the overlapping prefix, free the old block; both
        // blocks are valid for the copied length and do not overlap.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn absurd_vec_capacity_is_a_reservation_not_an_abort() {
        // 2^31 elements of 72 bytes: what a hostile array length asks for.
        let v: Vec<[u8; 72]> = Vec::with_capacity(1 << 31);
        assert!(v.capacity() >= 1 << 31);
        let mut small: Vec<u8> = Vec::with_capacity(16);
        small.extend_from_slice(b"still works");
        assert_eq!(&small, b"still works");
    }
}
