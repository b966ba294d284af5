//! Telling a process forked after a ring was opened from the process that opened it.
//!
//! A forked child gets a copy of its parent's memory, but none of its threads, and shares its
//! open file descriptions, among them the one the writer lock is on (`flock(2)` locks belong to
//! the open file description). A ring copied into a child therefore has a queue that no thread
//! drains, and a lock that, if the child released it, would release the parent's too.
//!
//! The first time a ring takes a lock, a `pthread_atfork` child handler is registered (once per
//! process); it bumps a process-wide fork generation in every child. A ring records the
//! generation when it is opened: if the current one differs, the process is a child forked
//! since, and the ring refuses to write or to release the lock. Checking costs one relaxed
//! atomic load, no system call. Children made by `posix_spawn`, `vfork` or a raw `clone` without
//! the handlers run no code of the ring before they `exec`, which is all they may do.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bumped in every child forked through `fork()` once [`watch`] has run.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Registers the `pthread_atfork` handler, once.
static WATCH: Once = Once::new();

extern "C" fn forked_child() {
    // Async-signal-safe: one atomic add. The child has one thread, the one that forked; threads
    // it starts later see the new value through their creation.
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// Makes sure forks from now on bump [`generation`] in the child. Call before recording a
/// generation.
pub(crate) fn watch() {
    WATCH.call_once(|| {
        // SAFETY: registers a handler that only adds to an atomic; the prepare and parent
        // handlers are absent. The handler lives for the whole program (a plain function).
        let rc = unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
        // Fails only for lack of memory; then forks go unseen, as before this module existed.
        debug_assert_eq!(rc, 0, "pthread_atfork failed");
    });
}

/// The process's fork generation: different in a child forked after [`watch`] from what it was
/// in the parent before the fork.
#[inline]
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

/// Where and when a ring was opened, to recognise a forked child.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Opener {
    /// The opening process's id.
    pub(crate) pid: u32,
    /// [`generation`] at the opening.
    generation: u64,
}

impl Opener {
    /// This process, now.
    pub(crate) fn current() -> Opener {
        watch();
        Opener {
            pid: std::process::id(),
            generation: generation(),
        }
    }

    /// Whether this process is a child forked since the ring was opened.
    #[inline]
    pub(crate) fn forked(&self) -> bool {
        generation() != self.generation
    }
}
