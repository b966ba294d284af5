//! Receipts: what a producer learns about its event once it is in the chain.
//!
//! A [`Ticket`] travels with a tracked event (or a flush marker) through the queue; the sequencer
//! or the committer completes it, and the producer asleep in [`PendingReceipt::wait`] wakes, or
//! the task that awaits the [`PendingReceipt`] is woken.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Waker};

use serde::Serialize;

use crate::error::Error;
use crate::format::hash::Hash;
use crate::sys::wake::{self, Sleeper, WakeSet};

/// Proof that an event is in the chain: its sequence number and the chain hash after it.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The event's sequence number.
    pub seq: u64,
    /// The chain hash after the event: it commits to this event and every one before it.
    pub chain: Hash,
    /// Whether the event was synced to stable storage before the receipt was issued
    /// (always for [`Durability::Batch`](crate::Durability) and
    /// [`Durability::Periodic`](crate::Durability), never for
    /// [`Durability::None`](crate::Durability)).
    pub durable: bool,
}

/// A one-shot slot for a result, completed by the ring and waited on by one thread.
///
/// The waiter registers before it looks for the result, the completer stores the result before
/// it looks for a waiter, and a sequentially consistent fence on each side makes sure at least
/// one of them sees the other: the waiter never sleeps through its result (see
/// [`crate::sys::wake`]).
///
/// A task that awaits the result follows the same protocol with its [`Waker`]: it stores the
/// waker, sets `has_task`, fences, and looks for the result; the completer, after its fence,
/// wakes the stored waker if `has_task` is set.
pub(crate) struct Ticket {
    result: OnceLock<Result<Receipt, Error>>,
    waiter: OnceLock<Sleeper>,
    /// The waker of the task that last polled the receipt, if one did.
    task: Mutex<Option<Waker>>,
    /// Set once a task has stored its waker in `task`.
    has_task: AtomicBool,
}

impl Ticket {
    /// A ticket with no result yet: the waiter's end and the ring's end.
    pub(crate) fn new() -> (Arc<Ticket>, Completion) {
        let ticket = Arc::new(Ticket {
            result: OnceLock::new(),
            waiter: OnceLock::new(),
            task: Mutex::new(None),
            has_task: AtomicBool::new(false),
        });
        (ticket.clone(), Completion(ticket))
    }

    /// Stores the result (the first one wins) and adds the waiter, if one is registered, to
    /// the threads `wakes` will wake.
    fn complete(&self, result: Result<Receipt, Error>, wakes: &mut WakeSet) {
        if self.result.set(result).is_ok() {
            fence(Ordering::SeqCst);
            if let Some(w) = self.waiter.get() {
                wakes.add(w);
            }
            if self.has_task.load(Ordering::SeqCst) {
                let task = self
                    .task
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                if let Some(task) = task {
                    task.wake();
                }
            }
        }
    }

    /// The result, or, if there is none yet, registers `waker` to be woken when it comes.
    fn poll(&self, waker: &Waker) -> Poll<Result<Receipt, Error>> {
        if let Some(r) = self.get() {
            return Poll::Ready(r.clone());
        }
        {
            let mut task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
            match &mut *task {
                Some(t) if t.will_wake(waker) => {}
                other => *other = Some(waker.clone()),
            }
        }
        self.has_task.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        match self.get() {
            Some(r) => Poll::Ready(r.clone()),
            None => Poll::Pending,
        }
    }

    fn get(&self) -> Option<&Result<Receipt, Error>> {
        self.result.get()
    }

    /// Sleeps until completed. Only one thread may wait on a ticket.
    pub(crate) fn wait(&self) -> Result<Receipt, Error> {
        let me = Sleeper::current();
        let registered = self.waiter.set(me.clone()).is_ok();
        debug_assert!(registered, "a ticket has a single waiter");
        fence(Ordering::SeqCst);
        loop {
            let seen = wake::epoch();
            if let Some(r) = self.get() {
                return r.clone();
            }
            wake::sleep(&me, seen);
        }
    }
}

/// The ring's end of a [`Ticket`]. Completing it consumes it; dropping it uncompleted (a
/// queue dropped with items in it, a thread that unwinds) fails the waiter with
/// [`Error::Closed`], so no waiter can sleep forever.
pub(crate) struct Completion(Arc<Ticket>);

impl Completion {
    /// Delivers the result to the waiter and wakes it.
    pub(crate) fn complete(self, result: Result<Receipt, Error>) {
        let mut wakes = WakeSet::new();
        self.complete_into(result, &mut wakes);
        wakes.wake();
    }

    /// Delivers the result to the waiter, which `wakes` wakes later, together with the waiters
    /// of the other tickets completed at the same time.
    pub(crate) fn complete_into(self, result: Result<Receipt, Error>, wakes: &mut WakeSet) {
        self.0.complete(result, wakes);
    }
}

/// Fails every ticket with `error`, waking their waiters together.
pub(crate) fn fail_all(tickets: impl IntoIterator<Item = Completion>, error: &Error) {
    let mut wakes = WakeSet::new();
    for t in tickets {
        t.complete_into(Err(error.clone()), &mut wakes);
    }
    wakes.wake();
}

impl Drop for Completion {
    fn drop(&mut self) {
        // A no-op if `complete` already ran. Dropped by a thread of the ring that unwinds: the
        // ring is poisoned first, so that no push can succeed once a waiter has seen this.
        let error = if std::thread::panicking() {
            crate::write::panic_hook::thread_panicked()
        } else {
            Error::Closed
        };
        let mut wakes = WakeSet::new();
        self.0.complete(Err(error), &mut wakes);
        wakes.wake();
    }
}

/// A receipt that will arrive once the event is sequenced (and, under a durable policy, synced).
///
/// Returned by [`Producer::push_tracked`](crate::Producer::push_tracked) and
/// [`Producer::push_tracked_async`](crate::Producer::push_tracked_async). Any one thread may
/// wait for it, or a task may `.await` it: it is a [`Future`] that blocks no thread, and works
/// under any executor (the ring's own thread wakes the task).
///
/// In a process forked while the receipt was pending, it can never arrive (the ring's threads are
/// the parent's): [`PendingReceipt::wait`] then fails at once with [`Error::Forked`].
pub struct PendingReceipt {
    pub(crate) ticket: Arc<Ticket>,
    /// The process that opened the ring (see `crate::sys::fork`).
    pub(crate) opener: crate::sys::fork::Opener,
}

impl PendingReceipt {
    /// Blocks the calling thread until the receipt is ready.
    ///
    /// Fails if the ring was poisoned by a failed sync before the event became durable.
    pub fn wait(self) -> Result<Receipt, Error> {
        if self.ticket.get().is_none() && self.opener.forked() {
            return Err(Error::Forked {
                pid: self.opener.pid,
            });
        }
        self.ticket.wait()
    }

    /// The receipt, if it is ready.
    pub fn try_get(&self) -> Option<Result<Receipt, Error>> {
        self.ticket.get().cloned()
    }
}

impl Future for PendingReceipt {
    type Output = Result<Receipt, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.ticket.get().is_none() && self.opener.forked() {
            return Poll::Ready(Err(Error::Forked {
                pid: self.opener.pid,
            }));
        }
        self.ticket.poll(cx.waker())
    }
}

impl fmt::Debug for PendingReceipt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingReceipt")
            .field("ready", &self.ticket.get().is_some())
            .finish()
    }
}
