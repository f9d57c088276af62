//! A memory-tracking global allocator: current and peak heap bytes.
//!
//! Install it in a binary with
//! `#[global_allocator] static ALLOC: CountingAllocator = CountingAllocator;`.
//! Counters are global atomics, so allocations on rayon workers count too;
//! the peak is kept with `fetch_max` and can be reset to the current level
//! before a measured region.
//!
//! # What it does not see
//! - Memory that does not go through Rust's global allocator: CPython's
//!   objects and NumPy's buffers (`malloc` from C), BLAS/OpenMP workspaces,
//!   thread stacks, memory-mapped files. Python contenders are measured with
//!   `tracemalloc` instead, and every contender by peak resident memory.
//! - Allocator overhead and fragmentation: it counts the bytes asked for.
//! - A peak between two allocations on different threads is exact only up to
//!   the interleaving of the two atomic updates (bounded by one allocation).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Forwards to the system allocator and counts live bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAllocator;

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(bytes: usize) {
    CURRENT.fetch_sub(bytes, Ordering::Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees hold; the counting touches only atomics
// and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ACTIVE.store(true, Ordering::Relaxed);
        // SAFETY: the caller upholds `alloc`'s contract (non-zero size).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ACTIVE.store(true, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (so by `System`) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; the caller
        // upholds `realloc`'s contract for `new_size`.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        new
    }
}

/// Whether a [`CountingAllocator`] is installed and has counted anything.
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The most live heap bytes since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new peak at the current level; returns that level (the baseline).
pub fn reset_peak() -> usize {
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Runs `f` and returns its result with the peak heap bytes above the level
/// at its start (`None` when no counting allocator is installed).
pub fn peak_above_baseline<R>(f: impl FnOnce() -> R) -> (R, Option<u64>) {
    let baseline = reset_peak();
    let result = f();
    let peak = peak_bytes().saturating_sub(baseline) as u64;
    (result, is_active().then_some(peak))
}
