//! Small blocks served from free lists in front of another allocator.
//!
//! A plugin's guest code allocates mostly small, short-lived blocks: the
//! strings and lists of the results it builds, freed once the batch's
//! results are packed. A general-purpose allocator searches and splits for
//! each of them; in the bench rule set talc's `allocate` and `deallocate`
//! were a quarter of the instructions the Wasm code ran (BENCHMARKS.md,
//! "What was made faster", 2026-12-05). Here a freed block of up to
//! [`MAX_SMALL`] bytes goes onto the free list of its size class and the
//! next allocation of that class takes it back: a few instructions each
//! way. Larger or over-aligned blocks, and a class whose list is empty, go
//! to the inner allocator.
//!
//! The price: a small block is never given back to the inner allocator, so
//! memory freed in one class serves only that class. What an instance
//! holds is still what it once held at its peak (within the host's memory
//! cap, like any other growth), plus up to 15 bytes of rounding per block.
//!
//! Written here because no maintained crate offers such a front end over
//! another allocator; it is the design of Zig's `WasmAllocator` without
//! its own page management.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Block sizes are multiples of this, and every block is aligned to it.
const GRAIN: usize = 16;
/// Size classes: blocks of 16, 32, … [`MAX_SMALL`] bytes.
const CLASSES: usize = 16;
/// The largest allocation served from the free lists, in bytes.
pub const MAX_SMALL: usize = GRAIN * CLASSES;

/// A [`GlobalAlloc`] that keeps freed small blocks on per-size free lists
/// and takes everything else to `A` (see the module docs).
///
/// Not thread-safe: it is `Sync` (as a global allocator must be) only in a
/// Wasm guest built without threads, where nothing runs concurrently.
#[derive(Debug)]
pub struct SmallBlocks<A: GlobalAlloc> {
    inner: A,
    /// The first free block of each class; a free block's first bytes hold
    /// the address of the next (null ends the list).
    free: UnsafeCell<[*mut u8; CLASSES]>,
}

/// The size class of `layout`, if it is served from the free lists.
fn class_of(layout: Layout) -> Option<usize> {
    (layout.size() <= MAX_SMALL && layout.align() <= GRAIN)
        .then(|| layout.size().saturating_sub(1) / GRAIN)
}

/// The layout of every block of `class` (below [`CLASSES`]).
fn block_layout(class: usize) -> Layout {
    #[allow(unsafe_code)]
    // SAFETY: GRAIN is a power of two and the size, at most MAX_SMALL, is
    // far from overflowing when rounded up to it.
    unsafe {
        Layout::from_size_align_unchecked((class + 1) * GRAIN, GRAIN)
    }
}

impl<A: GlobalAlloc> SmallBlocks<A> {
    /// Small blocks in front of `inner`, with every list empty.
    pub const fn new(inner: A) -> Self {
        Self {
            inner,
            free: UnsafeCell::new([ptr::null_mut(); CLASSES]),
        }
    }
}

#[allow(unsafe_code)]
// SAFETY: a block handed out is a block of its class's layout (from the
// inner allocator, or freed by a caller as that class and not used since),
// so it is valid for the caller's layout: at least as large, aligned to
// GRAIN and at least as aligned as asked. The free lists are only touched
// through `&self` by one thread at a time (see the `Sync` impl).
unsafe impl<A: GlobalAlloc> GlobalAlloc for SmallBlocks<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            // SAFETY: the caller's layout, passed on.
            return unsafe { self.inner.alloc(layout) };
        };
        // SAFETY: no other reference to the lists is live (one thread, and
        // none is held across calls).
        let heads = unsafe { &mut *self.free.get() };
        let head = heads[class];
        if head.is_null() {
            // SAFETY: a block layout has a non-zero size.
            return unsafe { self.inner.alloc(block_layout(class)) };
        }
        // SAFETY: a listed block is free, aligned to GRAIN and holds the
        // next block's address in its first bytes.
        heads[class] = unsafe { head.cast::<*mut u8>().read() };
        head
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if class_of(layout).is_none() {
            // SAFETY: the caller's layout, passed on (the inner allocator
            // may know its fresh memory is zero already).
            return unsafe { self.inner.alloc_zeroed(layout) };
        }
        // SAFETY: as in `alloc`; a reused block holds old bytes, so every
        // byte the caller asked for is cleared.
        unsafe {
            let block = self.alloc(layout);
            if !block.is_null() {
                ptr::write_bytes(block, 0, layout.size());
            }
            block
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            // SAFETY: `block` came from the inner allocator with `layout`.
            return unsafe { self.inner.dealloc(block, layout) };
        };
        // SAFETY: as in `alloc`.
        let heads = unsafe { &mut *self.free.get() };
        // SAFETY: the caller is done with `block`, a block of this class:
        // at least GRAIN bytes, aligned to GRAIN, so a pointer fits.
        unsafe { block.cast::<*mut u8>().write(heads[class]) };
        heads[class] = block;
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that `new_size` rounded up to the
        // alignment does not overflow, which makes this a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class_of(layout), class_of(new_layout)) {
            // The block already has room.
            (Some(old), Some(new)) if old == new => block,
            // SAFETY: the caller's arguments, passed on.
            (None, None) => unsafe { self.inner.realloc(block, layout, new_size) },
            _ => {
                // SAFETY: as in `alloc` and `dealloc`; the two blocks are
                // distinct, and the copy is the smaller of their sizes.
                unsafe {
                    let moved = self.alloc(new_layout);
                    if !moved.is_null() {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                    moved
                }
            }
        }
    }
}

impl<A: GlobalAlloc> Drop for SmallBlocks<A> {
    /// Gives the listed blocks back to the inner allocator (a global
    /// allocator is never dropped; one made for a test is).
    fn drop(&mut self) {
        let heads = self.free.get_mut();
        for (class, head) in heads.iter_mut().enumerate() {
            let mut block = std::mem::replace(head, ptr::null_mut());
            while !block.is_null() {
                #[allow(unsafe_code)]
                // SAFETY: a listed block is free, holds the next one's
                // address, and came from the inner allocator as a block of
                // its class.
                unsafe {
                    let next = block.cast::<*mut u8>().read();
                    self.inner.dealloc(block, block_layout(class));
                    block = next;
                }
            }
        }
    }
}

#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[allow(unsafe_code)]
// SAFETY: a Wasm guest built without the atomics feature has one thread,
// so the free lists are never touched concurrently.
unsafe impl<A: GlobalAlloc + Sync> Sync for SmallBlocks<A> {}

#[cfg(test)]
#[allow(unsafe_code, clippy::unwrap_used)]
mod tests {
    use std::alloc::System;
    use std::cell::Cell;
    use std::rc::Rc;

    use super::*;

    /// What reached the inner allocator.
    #[derive(Default)]
    struct Counts {
        allocs: Cell<usize>,
        deallocs: Cell<usize>,
        live: Cell<isize>,
    }

    /// The system allocator, counting what reaches it.
    struct Counting(Rc<Counts>);

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            self.0.allocs.set(self.0.allocs.get() + 1);
            self.0.live.set(self.0.live.get() + 1);
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
            self.0.deallocs.set(self.0.deallocs.get() + 1);
            self.0.live.set(self.0.live.get() - 1);
            unsafe { System.dealloc(block, layout) }
        }
    }

    /// Small blocks over a counting system allocator, and its counts.
    fn counted() -> (SmallBlocks<Counting>, Rc<Counts>) {
        let counts = Rc::new(Counts::default());
        (SmallBlocks::new(Counting(Rc::clone(&counts))), counts)
    }

    /// Drops `blocks` and checks that every block went back to the inner
    /// allocator.
    fn drop_and_check_nothing_leaks(blocks: SmallBlocks<Counting>, counts: &Counts) {
        drop(blocks);
        assert_eq!(counts.live.get(), 0, "blocks were not given back");
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    /// Fills `size` bytes at `block` with `byte`.
    fn fill(block: *mut u8, size: usize, byte: u8) {
        unsafe { ptr::write_bytes(block, byte, size) }
    }

    /// Whether the `size` bytes at `block` are all `byte`.
    fn holds(block: *mut u8, size: usize, byte: u8) -> bool {
        unsafe { std::slice::from_raw_parts(block, size) }
            .iter()
            .all(|b| *b == byte)
    }

    /// Checks that `size` bytes at `block` overlap none of the `live`
    /// blocks.
    fn assert_disjoint(live: &[(*mut u8, Layout, u8)], block: *mut u8, size: usize) {
        let (start, end) = (block as usize, block as usize + size);
        for (other, layout, _) in live {
            let (other_start, other_end) = (*other as usize, *other as usize + layout.size());
            assert!(
                end <= other_start || other_end <= start,
                "{start:#x}..{end:#x} overlaps a live block at {other_start:#x}..{other_end:#x}"
            );
        }
    }

    #[test]
    fn a_zeroed_allocation_is_zero_even_when_it_reuses_a_freed_block() {
        let (blocks, counts) = counted();
        unsafe {
            let block = blocks.alloc(layout(48, 8));
            fill(block, 48, 0xff);
            blocks.dealloc(block, layout(48, 8));
            let zeroed = blocks.alloc_zeroed(layout(40, 8));
            assert_eq!(zeroed, block, "the freed block is reused");
            assert!(holds(zeroed, 40, 0));
            blocks.dealloc(zeroed, layout(40, 8));
            let large = blocks.alloc_zeroed(layout(4096, 8));
            assert!(holds(large, 4096, 0));
            blocks.dealloc(large, layout(4096, 8));
        }
        drop_and_check_nothing_leaks(blocks, &counts);
    }

    #[test]
    fn a_freed_small_block_is_taken_back_by_the_next_allocation_of_its_class() {
        let (blocks, counts) = counted();
        unsafe {
            let first = blocks.alloc(layout(20, 1));
            blocks.dealloc(first, layout(20, 1));
            // 17 to 32 bytes is one class.
            let again = blocks.alloc(layout(32, 8));
            assert_eq!(again, first);
            // Another class does not take it.
            blocks.dealloc(again, layout(32, 8));
            let other = blocks.alloc(layout(33, 1));
            assert_ne!(other, first);
            blocks.dealloc(other, layout(33, 1));
        }
        assert_eq!(counts.allocs.get(), 2);
        assert_eq!(counts.deallocs.get(), 0);
        drop_and_check_nothing_leaks(blocks, &counts);
    }

    #[test]
    fn large_and_over_aligned_allocations_go_to_the_inner_allocator() {
        let (blocks, counts) = counted();
        for layout in [layout(MAX_SMALL + 1, 1), layout(1000, 8), layout(8, 32)] {
            unsafe {
                let block = blocks.alloc(layout);
                assert_eq!(block as usize % layout.align(), 0);
                fill(block, layout.size(), 0xa5);
                blocks.dealloc(block, layout);
            }
        }
        assert_eq!(counts.allocs.get(), 3);
        assert_eq!(counts.deallocs.get(), 3);
        drop_and_check_nothing_leaks(blocks, &counts);
    }

    #[test]
    fn every_small_block_is_aligned_and_as_large_as_its_class() {
        let (blocks, counts) = counted();
        let mut held = Vec::new();
        for size in 1..=MAX_SMALL {
            for align in [1, 2, 4, 8, 16] {
                let layout = layout(size, align);
                let block = unsafe { blocks.alloc(layout) };
                assert!(!block.is_null());
                assert_eq!(block as usize % GRAIN, 0);
                // Writable up to the class's whole size.
                fill(block, size.div_ceil(GRAIN) * GRAIN, (size % 251) as u8);
                held.push((block, layout));
            }
        }
        for (block, layout) in &held {
            let size = layout.size();
            assert!(holds(
                *block,
                size.div_ceil(GRAIN) * GRAIN,
                (size % 251) as u8
            ));
            unsafe { blocks.dealloc(*block, *layout) };
        }
        drop_and_check_nothing_leaks(blocks, &counts);
    }

    #[test]
    fn realloc_keeps_the_contents_within_a_class_across_classes_and_to_a_large_block() {
        let (blocks, counts) = counted();
        unsafe {
            let block = blocks.alloc(layout(5, 1));
            fill(block, 5, 7);
            // Within the class: the same block.
            let same = blocks.realloc(block, layout(5, 1), 16);
            assert_eq!(same, block);
            fill(same.add(5), 11, 8);
            // To the next class: moved, contents kept.
            let moved = blocks.realloc(same, layout(16, 1), 40);
            assert!(holds(moved, 5, 7) && holds(moved.add(5), 11, 8));
            // The old block is free again for its class.
            let reused = blocks.alloc(layout(16, 1));
            assert_eq!(reused, block);
            blocks.dealloc(reused, layout(16, 1));
            // To a large block and back.
            fill(moved, 40, 9);
            let large = blocks.realloc(moved, layout(40, 1), 4096);
            assert!(holds(large, 40, 9));
            fill(large, 4096, 3);
            let larger = blocks.realloc(large, layout(4096, 1), 8192);
            assert!(holds(larger, 4096, 3));
            let small = blocks.realloc(larger, layout(8192, 1), 24);
            assert!(holds(small, 24, 3));
            // Shrinking to a smaller class moves it too.
            let smaller = blocks.realloc(small, layout(24, 1), 3);
            assert!(holds(smaller, 3, 3));
            blocks.dealloc(smaller, layout(3, 1));
        }
        drop_and_check_nothing_leaks(blocks, &counts);
    }

    #[test]
    fn interleaved_allocations_never_share_or_corrupt_a_block() {
        let (blocks, counts) = counted();
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        // A fixed pseudo-random walk of allocations, frees and reallocs.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for step in 0..20_000u32 {
            let roll = next();
            let tag = (step % 250) as u8 + 1;
            if live.len() < 8 || roll % 3 == 0 {
                let size = (next() % 400) as usize + 1;
                let layout = layout(size, 1 << (next() % 7));
                let block = unsafe { blocks.alloc(layout) };
                assert_eq!(block as usize % layout.align(), 0);
                assert_disjoint(&live, block, size);
                fill(block, size, tag);
                live.push((block, layout, tag));
            } else {
                let at = (next() as usize) % live.len();
                let (block, layout, byte) = live.swap_remove(at);
                assert!(holds(block, layout.size(), byte), "block corrupted");
                if roll % 3 == 1 {
                    unsafe { blocks.dealloc(block, layout) };
                } else {
                    let size = (next() % 400) as usize + 1;
                    let moved = unsafe { blocks.realloc(block, layout, size) };
                    assert_eq!(moved as usize % layout.align(), 0);
                    assert!(holds(moved, layout.size().min(size), byte));
                    assert_disjoint(&live, moved, size);
                    let layout = Layout::from_size_align(size, layout.align()).unwrap();
                    fill(moved, size, tag);
                    live.push((moved, layout, tag));
                }
            }
        }
        for (block, layout, byte) in live {
            assert!(holds(block, layout.size(), byte), "block corrupted");
            unsafe { blocks.dealloc(block, layout) };
        }
        drop_and_check_nothing_leaks(blocks, &counts);
    }
}
