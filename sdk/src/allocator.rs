//! The global allocator of plugins built for Wasm.
//!
//! Small blocks come from the free lists of
//! [`SmallBlocks`](crate::small_blocks::SmallBlocks); the rest from talc,
//! whose first heap is [`INITIAL_HEAP_BYTES`] of the plugin's own zeroed
//! data, part of the memory every instance starts with, and which grows the
//! instance's memory only when that is used up.
//!
//! Why not talc's own `WasmGrowAndExtend`, which grows the memory at the
//! first allocation: each grown page is made accessible by the host's
//! instance pool when it grows and inaccessible again when the next
//! instance takes the slot, two `mprotect` calls whose TLB shootdowns cost
//! the other core an interrupt. A plugin run on a fresh instance per call
//! (how an audited decision is replayed) paid them at every call; one that
//! starts with a heap pays them only when a call needs more than it.
//! (BENCHMARKS.md, "What was made faster", 2026-12-07.) The heap is in the
//! zero-initialized data (`.bss`), so it adds nothing to the `.wasm` file,
//! and the host's reset copies back only the pages a call wrote.

use std::alloc::Layout;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use talc::base::binning::Binning;
use talc::base::{CHUNK_UNIT, Talc};
use talc::cell::TalcSyncCell;
use talc::wasm::WasmBinning;

use crate::small_blocks::SmallBlocks;

/// Bytes of talc's first heap, in the plugin's initial memory. A call of
/// one event of the standard and bench plugins allocates far less; a batch
/// that needs more grows the memory as before.
pub const INITIAL_HEAP_BYTES: usize = 64 << 10;

/// A Wasm page.
const PAGE_BYTES: usize = 64 << 10;

/// talc's first heap. Only the allocator touches it, through the pointer
/// [`InitialHeapThenGrow::acquire`] claims.
static mut INITIAL_HEAP: [MaybeUninit<u8>; INITIAL_HEAP_BYTES] =
    [MaybeUninit::uninit(); INITIAL_HEAP_BYTES];

/// talc's source of memory: [`INITIAL_HEAP`] first, then pages grown at
/// the end of the instance's memory, each growth extending the heap the
/// one before made when they are adjacent (as talc's `WasmGrowAndExtend`).
///
/// Private: the global allocator below is its one value, since two would
/// both hand talc the same [`INITIAL_HEAP`].
#[derive(Debug)]
struct InitialHeapThenGrow {
    /// Whether [`INITIAL_HEAP`] has been claimed.
    claimed_initial: bool,
    /// The end of the last heap grown, which the next growth extends.
    grown_end: Option<NonNull<u8>>,
}

impl InitialHeapThenGrow {
    /// A source whose initial heap is not claimed yet.
    const fn new() -> Self {
        Self {
            claimed_initial: false,
            grown_end: None,
        }
    }
}

#[allow(unsafe_code)]
// SAFETY: `acquire` hands talc only memory nothing else uses: the initial
// heap, which no other code names, and pages just grown at the end of the
// memory, which nothing has an address into; it does not allocate.
unsafe impl talc::source::Source for InitialHeapThenGrow {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.claimed_initial {
            talc.source.claimed_initial = true;
            let base = (&raw mut INITIAL_HEAP).cast::<u8>();
            // SAFETY: the initial heap is handed to talc once, here.
            if unsafe { talc.claim(base, INITIAL_HEAP_BYTES) }.is_some() {
                // talc tries the allocation again and asks once more if
                // it does not fit.
                return Ok(());
            }
        }
        // Enough for the block, its chunk's metadata and its alignment; a
        // block too large for the address space is refused here rather
        // than wrapping round to a small growth.
        let needed = layout
            .size()
            .checked_add(layout.align() + 2 * CHUNK_UNIT)
            .ok_or(())?;
        let pages = needed.div_ceil(PAGE_BYTES);
        let previous_pages = core::arch::wasm32::memory_grow::<0>(pages);
        if previous_pages == usize::MAX {
            return Err(());
        }
        // The grown pages lie within the 4 GiB a wasm32 memory can hold,
        // but their end may be that limit itself, which does not fit in a
        // pointer: talc takes a saturated end, as its own sources do.
        let grown_start = previous_pages * PAGE_BYTES;
        let grown_bytes = pages * PAGE_BYTES;
        let grown_base = grown_start as *mut u8;
        let grown_end = grown_start.saturating_add(grown_bytes) as *mut u8;
        if let Some(end) = talc.source.grown_end.take()
            && end.as_ptr() == grown_base
        {
            // SAFETY: `end` is the end of the heap talc made of the last
            // growth, and the pages after it are the ones just grown.
            talc.source.grown_end = Some(unsafe { talc.extend(end, grown_end) });
            return Ok(());
        }
        // SAFETY: the pages were just grown and nothing else uses them.
        let end = unsafe { talc.claim(grown_base, grown_bytes) }.ok_or(())?;
        talc.source.grown_end = Some(end);
        Ok(())
    }
}

/// The global allocator: small blocks from their free lists, the rest from
/// talc over the initial heap and then grown memory (within the host's
/// memory cap, like any other growth).
#[global_allocator]
static ALLOCATOR: SmallBlocks<TalcSyncCell<InitialHeapThenGrow, WasmBinning>> =
    SmallBlocks::new(TalcSyncCell::new_wasm(InitialHeapThenGrow::new()));
