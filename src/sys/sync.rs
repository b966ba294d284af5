//! The synchronisation primitives of the queue, from `std` (and crossbeam), or from `loom` when
//! the crate is built with `--cfg loom`, so that the real queue runs under the loom model
//! checker (`scripts/loom.sh`).
//!
//! In a normal build every item here is a re-export or an `#[inline(always)]` wrapper that
//! compiles to the same code as the `std` call it stands for.

// The wrappers must cost nothing over the call they stand for, in every build.
#![allow(clippy::inline_always)]

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::thread::{self, Thread};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
#[cfg(loom)]
pub(crate) use loom::thread::{self, Thread};

/// Exponential backoff in spin loops: crossbeam's.
#[cfg(not(loom))]
pub(crate) use crossbeam::utils::Backoff;

/// Under loom, a spin is a yield to the model's scheduler (a loop that does not yield never
/// lets the thread it waits for run), and backing off is over at once, so that a waiting
/// producer goes straight to the register-and-park protocol the models check.
#[cfg(loom)]
pub(crate) struct Backoff;

#[cfg(loom)]
impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff
    }
    pub(crate) fn spin(&self) {
        loom::thread::yield_now();
    }
    pub(crate) fn snooze(&self) {
        loom::thread::yield_now();
    }
    pub(crate) fn is_completed(&self) -> bool {
        true
    }
}

/// Where the queue relies on the single total order of sequentially consistent *accesses* (a
/// `SeqCst` store or read-modify-write followed by a `SeqCst` load of another variable, on both
/// sides: the consumer's `sleeping` flag against the producers' `tail`), which the C11 model
/// guarantees and `std` provides: nothing. loom treats `SeqCst` accesses as `AcqRel` (its README,
/// "Unsupported features"; loom issue 180), which would report a lost wake-up that cannot
/// happen; it does model `SeqCst` fences, so under loom this is the `SeqCst` fence that gives the
/// same guarantee. The normal build's code is unchanged.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn seq_cst_accesses() {}

/// See the non-loom version: under loom, a SeqCst fence stands for the total order of the
/// SeqCst accesses around it.
#[cfg(loom)]
pub(crate) fn seq_cst_accesses() {
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// Stores `value` in `flag`, sequentially consistent: the consumer's `sleeping` flag.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn store_flag(flag: &AtomicBool, value: bool) {
    flag.store(value, Ordering::SeqCst);
}

/// Under loom, the store is a swap (its read Relaxed, its write Release, which is what loom
/// makes of a SeqCst store). loom keeps the modification order of a variable as a partial order,
/// so a plain store and another thread's swap that it does not know of are left unordered, and
/// a later swap may read either; in C11 the order is total and a swap reads the last write, so
/// the producers' `swap(false)` could not miss the consumer's last `true`. Writing the flag by
/// swaps only puts every write of it in one order for loom too.
#[cfg(loom)]
pub(crate) fn store_flag(flag: &AtomicBool, value: bool) {
    flag.swap(value, Ordering::Release);
}

/// Parks the current thread for at most `timeout`.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn park_timeout(timeout: std::time::Duration) {
    std::thread::park_timeout(timeout);
}

/// Under loom there is no time: a timed park is a yield (it returns at once, as if the
/// timeout had passed, which callers must handle anyway).
#[cfg(loom)]
pub(crate) fn park_timeout(_timeout: std::time::Duration) {
    loom::thread::yield_now();
}

/// An `UnsafeCell` whose accesses loom can check for data races: every access goes through
/// [`UnsafeCell::with_mut`].
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline(always)]
    pub(crate) fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer to the value; the caller upholds the aliasing rules.
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(loom::cell::UnsafeCell<T>);

#[cfg(loom)]
impl<T> UnsafeCell<T> {
    pub(crate) fn new(value: T) -> UnsafeCell<T> {
        UnsafeCell(loom::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a pointer to the value; loom records the access as a write and fails the
    /// model if it races with another access.
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        self.0.with_mut(f)
    }
}

/// A lock-free FIFO list: crossbeam's `SegQueue`. Its push releases and its pop acquires, so
/// what a thread wrote before pushing an entry is visible to the thread that pops it.
#[cfg(not(loom))]
pub(crate) use crossbeam::queue::SegQueue as WaitList;

/// Under loom, the same FIFO behind loom's mutex: crossbeam's `SegQueue` is not built on loom's
/// atomics, so loom would not see the ordering its push and pop give (and would report a race
/// between a value written before the push and read after the pop). The mutex gives loom the
/// same happens-before edge, from each push to the pop that takes its entry.
#[cfg(loom)]
pub(crate) struct WaitList<T>(loom::sync::Mutex<std::collections::VecDeque<T>>);

#[cfg(loom)]
impl<T> WaitList<T> {
    pub(crate) fn new() -> WaitList<T> {
        WaitList(loom::sync::Mutex::new(std::collections::VecDeque::new()))
    }

    pub(crate) fn push(&self, value: T) {
        self.0
            .lock()
            .expect("no panics under the lock")
            .push_back(value);
    }

    pub(crate) fn pop(&self) -> Option<T> {
        self.0.lock().expect("no panics under the lock").pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().expect("no panics under the lock").len()
    }
}
