//! Counts the host's heap allocations per event of each engine, a figure
//! that, unlike time, does not vary from run to run:
//! `cargo run --release -p xtask --bin xtask-allocs -- [ACCOUNTS]`.
//! A separate binary, so that the counting allocator never runs under
//! `cargo xtask bench`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use vigil_host::demo::generate_portfolio;
use xtask::bench::{contenders, time_run};

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator, which
// upholds `GlobalAlloc`'s contract; the counter has no effect on memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's obligations are passed on as they are.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's obligations are passed on as they are.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn main() -> anyhow::Result<()> {
    let accounts = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    let portfolio = generate_portfolio(accounts, 42);
    let events = portfolio.iter().map(|a| a.events.len()).sum::<usize>() as f64;
    for mut contender in contenders()? {
        // One run to warm the engine's pools and caches, one counted.
        time_run(contender.as_mut(), &portfolio)?;
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        time_run(contender.as_mut(), &portfolio)?;
        let counted = ALLOCATIONS.load(Ordering::Relaxed) - before;
        println!(
            "{:<24} {:>8.1} host allocations per event",
            contender.name(),
            counted as f64 / events
        );
    }
    Ok(())
}
