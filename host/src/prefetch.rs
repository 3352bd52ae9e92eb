//! Cache prefetch hints for the pipeline's batches.
//!
//! A batch's events and the states of their accounts are spread over the
//! heap: every event's id, account, kind and payload, and every account's
//! id, name and attributes, is an allocation of its own, and over a large
//! portfolio few of them are still in the cache when the event comes to
//! be evaluated. Read one after the other, each is a wait on memory. The
//! pipeline knows a batch's events before it starts on them, so it asks
//! the CPU to start loading the next events' data while it works on the
//! current one, and the waits overlap (BENCHMARKS.md, "What was made
//! faster", 2026-12-07 from 19:37).

/// Asks the CPU to start loading the cache line that holds `address` into
/// its nearest cache, without waiting for it.
///
/// A hint, not a read: it never faults (the address may be dangling) and
/// changes nothing a program can observe but time. A no-op on targets
/// other than x86-64.
#[inline(always)]
pub(crate) fn prefetch(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `prefetcht0` is a hint: it never faults, whatever the
    // address, and has no architectural effect.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// [`prefetch`]es every cache line of `value` itself (not what it points
/// to), the line its first byte is in through the line its last byte is
/// in, whether or not it starts at a line's start.
#[inline(always)]
pub(crate) fn prefetch_value<T>(value: &T) {
    let start = std::ptr::from_ref(value).cast::<u8>();
    let first_line = start.addr() & !(CACHE_LINE - 1);
    let end = start.addr() + size_of::<T>();
    for line in (first_line..end).step_by(CACHE_LINE) {
        prefetch(start.with_addr(line));
    }
}

/// The cache line size of the CPUs vigil runs on (x86-64 and the usual
/// Arm cores): a value over several lines is prefetched a line at a time.
const CACHE_LINE: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefetch_of_an_address_that_is_not_memory_does_not_fault() {
        // A read of any of these would crash the test process.
        prefetch(std::ptr::null());
        prefetch(std::ptr::dangling::<u8>());
        prefetch(std::ptr::without_provenance(usize::MAX));
        let freed = Box::new([0u8; 4096]);
        let address = freed.as_ptr();
        drop(freed);
        prefetch(address);
    }
}
