//! A scorer built with vigil-sdk's `fast-alloc` feature off and an
//! allocator of its own, which counts what goes through it: the factor
//! `allocations` says how many of the plugin's allocations it served.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use vigil_sdk::prelude::*;

/// Allocations served so far by this instance.
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counted.
struct Counting;

// SAFETY: every call is passed on unchanged to `System`, which upholds the
// `GlobalAlloc` contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is `System.alloc`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[vigil_sdk::scorer(name = "own-allocator", description = "Counts its own allocations.", score = "own-allocator", factors = ["allocations"])]
pub fn score(_ctx: &Context<'_>) -> Result<ScoreCard, PluginError> {
    let served = ALLOCATIONS.load(Ordering::Relaxed) as f64;
    Ok(ScoreCardBuilder::new("own-allocator")
        .factor("allocations", 1.0, served, 50.0, "served by the plugin's allocator")
        .build(health_band))
}
