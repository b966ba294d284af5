//! Cache prefetch hints for the bytes the sequencer will read (queue slots) and write (segment)
//! a few events from now.
//!
//! The sequencer's chain step is a chain of dependent SHA-256 rounds that keeps the core busy
//! for most of the time it spends on an event; a cache miss on the next queue slot, or on the
//! next bytes of the segment, then comes on top of it instead of overlapping with it. A prefetch
//! issued a few events ahead lets the memory system fetch those lines while the hash runs.

/// Bytes in a cache line on the CPUs this targets.
#[cfg(all(target_arch = "x86_64", not(loom)))]
const LINE: usize = 64;

/// Asks the CPU to bring the `len` bytes at `ptr` into its caches. A hint only: it never faults,
/// whatever `ptr` is, and does nothing on CPUs without the instruction (or under loom).
#[inline(always)]
pub(crate) fn prefetch(ptr: *const u8, len: usize) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let mut at = 0;
        while at < len {
            // SAFETY: PREFETCHT0 is a hint that never faults and has no architectural effect,
            // whatever the address (Intel SDM, PREFETCHh); SSE is part of the x86_64 baseline.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(ptr.wrapping_add(at).cast()) };
            at += LINE;
        }
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = (ptr, len);
}
