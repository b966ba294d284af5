//! Waking the threads that wait for receipts, many at a time.
//!
//! A group commit releases every receipt of the batches one sync covered at once: with 32
//! producers each waiting for its own receipt, that is 32 threads to wake after every sync. One
//! `unpark` per thread is one system call each, made one after the other by the thread that
//! completes them, while the threads it already woke compete with it for the CPU.
//!
//! On Linux the waiters sleep on one futex word instead, each with its own bit of a 32-bit
//! mask (`FUTEX_WAIT_BITSET`), and the completing thread wakes every thread whose bit it
//! collected with a single `FUTEX_WAKE_BITSET`. A thread's bit is assigned once, round-robin,
//! so up to 32 waiting threads never share one; beyond that, a thread may wake early and
//! sleep again, which costs time, never a lost wake-up. Elsewhere, each waiter is unparked
//! individually.
//!
//! # Protocol
//!
//! The waiter registers (its bit, or its thread) in the ticket, issues a sequentially
//! consistent fence, then loops: read the [`epoch`], look for the result, [`sleep`] unless the
//! epoch has moved. The completer stores the result, issues a sequentially consistent fence,
//! reads the registration into a [`WakeSet`], and [`WakeSet::wake`] advances the epoch before
//! it wakes. Either the completer sees the registration, or the waiter sees the result; and a
//! waiter that read the epoch before the completer advanced it does not sleep, because the
//! futex compares the word before sleeping.

use std::sync::atomic::{AtomicU32, Ordering};

/// How a waiting thread is woken: its bit (Linux), or its handle.
#[derive(Clone, Debug)]
pub(crate) struct Sleeper(imp::Id);

impl Sleeper {
    /// The calling thread's.
    pub(crate) fn current() -> Sleeper {
        Sleeper(imp::current())
    }
}

/// The waiters of the tickets a thread completed, to be woken together.
#[derive(Debug, Default)]
pub(crate) struct WakeSet(imp::Set);

impl WakeSet {
    pub(crate) fn new() -> WakeSet {
        WakeSet::default()
    }

    /// Adds a waiter.
    pub(crate) fn add(&mut self, sleeper: &Sleeper) {
        imp::add(&mut self.0, &sleeper.0);
    }

    /// Wakes every waiter added (with one system call on Linux). With none added, does
    /// nothing: a waiter the completer did not see registered sees its result before it sleeps.
    pub(crate) fn wake(self) {
        if imp::is_empty(&self.0) {
            return;
        }
        EPOCH.fetch_add(1, Ordering::SeqCst);
        imp::wake(self.0);
    }
}

/// The futex word: advanced by every [`WakeSet::wake`], so that a waiter that read it before a
/// wake-up does not sleep through it. One per process: waiters of different rings share it,
/// and a wake-up meant for one ring only makes the others look at their tickets again.
static EPOCH: AtomicU32 = AtomicU32::new(0);

/// The current epoch, to pass to [`sleep`] after looking for the result.
pub(crate) fn epoch() -> u32 {
    EPOCH.load(Ordering::SeqCst)
}

/// Sleeps until woken, unless the epoch is no longer `seen`. May return spuriously: the caller
/// looks for its result again.
pub(crate) fn sleep(sleeper: &Sleeper, seen: u32) {
    imp::sleep(&sleeper.0, &EPOCH, seen);
}

#[cfg(target_os = "linux")]
mod imp {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A bit of the futex mask.
    pub(super) type Id = u32;
    /// The union of the bits to wake.
    pub(super) type Set = u32;

    /// Hands each thread its bit the first time it waits, round-robin.
    static NEXT_BIT: AtomicU32 = AtomicU32::new(0);

    thread_local! {
        static BIT: Cell<u32> = const { Cell::new(0) };
    }

    pub(super) fn current() -> Id {
        BIT.with(|b| {
            if b.get() == 0 {
                b.set(1 << (NEXT_BIT.fetch_add(1, Ordering::Relaxed) % 32));
            }
            b.get()
        })
    }

    // By reference, as on other platforms, where `Id` and `Set` are not `Copy`.
    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(super) fn add(set: &mut Set, id: &Id) {
        *set |= *id;
    }

    #[allow(clippy::trivially_copy_pass_by_ref)] // as `add`
    pub(super) fn is_empty(set: &Set) -> bool {
        *set == 0
    }

    pub(super) fn wake(set: Set) {
        // SAFETY: the address is that of a live static `AtomicU32`, which is what the futex
        // calls require (an aligned 32-bit word); FUTEX_WAKE_BITSET reads no other argument
        // as a pointer (the timeout slot is unused and null, the second address unused).
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                super::EPOCH.as_ptr(),
                libc::FUTEX_WAKE_BITSET | libc::FUTEX_PRIVATE_FLAG,
                i32::MAX,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                set,
            );
        }
    }

    pub(super) fn sleep(id: &Id, word: &AtomicU32, seen: u32) {
        debug_assert_ne!(*id, 0, "a waiter has a bit");
        // SAFETY: `word` is a live, aligned 32-bit atomic for the duration of the call; a null
        // timeout means no timeout; the second address is unused by FUTEX_WAIT_BITSET. The
        // kernel only reads the word. Errors (EAGAIN when the word moved, EINTR) are spurious
        // returns, which the caller handles by looking again.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
                seen,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                *id,
            );
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::sync::atomic::AtomicU32;
    use std::thread::{self, Thread};

    pub(super) type Id = Thread;
    pub(super) type Set = Vec<Thread>;

    pub(super) fn current() -> Id {
        thread::current()
    }

    pub(super) fn add(set: &mut Set, id: &Id) {
        set.push(id.clone());
    }

    pub(super) fn is_empty(set: &Set) -> bool {
        set.is_empty()
    }

    pub(super) fn wake(set: Set) {
        for t in set {
            t.unpark();
        }
    }

    pub(super) fn sleep(_id: &Id, _word: &AtomicU32, _seen: u32) {
        // An unpark that came first makes this return at once.
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::{Arc, Barrier};

    /// A thread that went to sleep is woken by a set holding its sleeper, and a set without it
    /// leaves the flag it waits for unseen until the right wake-up comes.
    #[test]
    fn wakes_the_threads_added() {
        let ready = Arc::new(AtomicBool::new(false));
        let registered = Arc::new(Barrier::new(2));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let (ready, registered) = (ready.clone(), registered.clone());
            std::thread::spawn(move || {
                let me = Sleeper::current();
                tx.send(me.clone()).unwrap();
                registered.wait();
                loop {
                    let seen = epoch();
                    if ready.load(Ordering::SeqCst) {
                        return;
                    }
                    sleep(&me, seen);
                }
            })
        };
        let sleeper = rx.recv().unwrap();
        registered.wait();
        // A wake-up for nobody: the waiter, if asleep, stays asleep or looks and sleeps again.
        WakeSet::new().wake();
        ready.store(true, Ordering::SeqCst);
        let mut set = WakeSet::new();
        set.add(&sleeper);
        set.wake();
        waiter.join().unwrap();
    }
}
