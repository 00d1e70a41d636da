//! A counting global allocator: how many heap allocations (and bytes) each side of a call makes.
//!
//! Counting is off until [`enable`] is called, so the timing cases pay one relaxed load per
//! allocation and nothing more. Each allocation is charged to the [`Side`] of the thread that
//! makes it (set with [`set_thread_side`]); the cost case runs the client and the server on
//! separate threads, each with a current-thread tokio runtime, to tell them apart.
//!
//! `alloc`, `alloc_zeroed` and `realloc` each count as one allocation; `dealloc` is not counted.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The system allocator, counting allocations while counting is enabled. Install it in the
/// benchmark binary with `#[global_allocator]`.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

/// Whose work a thread does, for charging its allocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Side {
    /// Anything not tagged (the main thread before tagging, helper threads).
    Other = 0,
    /// The RPC client.
    Client = 1,
    /// The RPC server.
    Server = 2,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static COUNTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
static BYTES: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

thread_local! {
    // Const-initialised and without a destructor: reading it never allocates.
    static SIDE: Cell<u8> = const { Cell::new(Side::Other as u8) };
}

/// Charges the calling thread's future allocations to `side`.
pub fn set_thread_side(side: Side) {
    SIDE.with(|s| s.set(side as u8));
}

/// Turns counting on or off for the whole process.
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::SeqCst);
}

/// Allocation counters at one moment, per [`Side`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Allocations, indexed by `Side as usize`.
    pub counts: [u64; 3],
    /// Bytes requested, indexed by `Side as usize`.
    pub bytes: [u64; 3],
}

impl Snapshot {
    /// The counters now.
    pub fn take() -> Snapshot {
        let load = |a: &[AtomicU64; 3]| [0, 1, 2].map(|i| a[i].load(Ordering::SeqCst));
        Snapshot { counts: load(&COUNTS), bytes: load(&BYTES) }
    }

    /// Allocations charged to `side` since `earlier`.
    pub fn allocations_since(&self, earlier: &Snapshot, side: Side) -> u64 {
        self.counts[side as usize] - earlier.counts[side as usize]
    }

    /// Bytes allocated by `side` since `earlier`.
    pub fn bytes_since(&self, earlier: &Snapshot, side: Side) -> u64 {
        self.bytes[side as usize] - earlier.bytes[side as usize]
    }
}

#[inline]
fn record(size: usize) {
    if ENABLED.load(Ordering::Relaxed) {
        let side = SIDE.try_with(Cell::get).unwrap_or(Side::Other as u8) as usize;
        COUNTS[side].fetch_add(1, Ordering::Relaxed);
        BYTES[side].fetch_add(size as u64, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counting
// touches only atomics and a const thread-local, and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded; the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded; the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
}
