//! The bounded, lock-free, multi-producer single-consumer queue between producers and the
//! sequencer, with parking on both sides.
//!
//! # Algorithm
//!
//! The queue is Dmitry Vyukov's bounded array queue, as crossbeam's `ArrayQueue` and the array
//! flavour of crossbeam-channel implement it, specialised to one consumer:
//!
//! * `head` and `tail` are *stamps*: an index into the buffer in the low bits, a lap count in the
//!   high bits, and, in `tail` only, a *mark bit* meaning "closed".
//! * Each slot has its own stamp. A slot is free for a producer at tail stamp `t` when the slot's
//!   stamp equals `t`; the producer claims it by moving `tail` forward with a compare-and-swap,
//!   writes the value, then sets the slot's stamp to `t + 1` (Release), which tells the consumer
//!   the value is ready. The consumer takes a value when the slot's stamp is `head + 1`, and
//!   frees the slot for the next lap by setting its stamp to `head + one_lap`.
//! * Closing sets the mark bit in `tail` with one atomic `fetch_or`. A push is the compare-and-
//!   swap on `tail`, so every push either happened before the close (and its value is in the
//!   buffer, which the consumer drains) or sees the mark and hands its value back. No value can be
//!   stranded by a close.
//!
//! There is no lock anywhere on the push path: a producer touches `tail`, one slot, and reads the
//! consumer's `sleeping` flag.
//!
//! # Parking
//!
//! * The consumer, finding the queue empty, sets `sleeping` and checks the queue once more before
//!   it parks. A producer, after a push, reads `sleeping` and unparks the consumer only when it is
//!   set. Both the flag and `tail` are accessed with sequentially consistent operations, so either
//!   the consumer sees the new tail or the producer sees the flag.
//! * A producer finding the queue full registers itself in `waiters`, increments `waiting`, issues
//!   a fence, tries once more, and parks until its registration is woken (a flag per
//!   registration, see `Waiter`). The consumer, before it parks on an empty queue, and `close`,
//!   after setting the mark, issue a fence and wake every registration in `waiters` when they
//!   look, if `waiting` is non-zero. Again either the producer's retry sees
//!   the freed slot (or the mark) or the waker sees the registration. While it pops, the
//!   consumer also unparks the longest waiting producer every `WAKE_EVERY` pops, so that
//!   waiters need not wait for the queue to empty; one at a time, not all (see `WAKE_EVERY`).
//!   No waiter is left behind: a consumer that keeps popping reaches an empty queue, and wakes
//!   everyone before it parks.
//!
//! # Every waker's pass ends
//!
//! A pass wakes the registrations present when it starts (it counts them first), never the
//! ones made during it. Those belong to producers that registered after the pass's fence, so
//! their own re-check sees the room the consumer made (or the mark); and a producer woken by
//! the pass that finds the queue full again registers behind the count. Waking until `waiters`
//! was empty did not end: with 1,000 producers on 8 slots, the consumer, about to park, woke
//! one waiter after another while the producers it woke found the queue full (it was not
//! popping), registered again and parked, faster than it could wake them, and nothing was
//! sequenced.
//!
//! These protocols are checked by loom (`src/loom_models.rs`, `scripts/loom.sh`), which runs this
//! very code on loom's atomics (`src/sync.rs`).

use std::mem::MaybeUninit;
use std::sync::OnceLock;
use std::time::Duration;

use crossbeam::utils::CachePadded;

// The atomics, the cell, the threads and the backoff come from `crate::sys::sync`: `std`'s (and
// crossbeam's), or loom's under `--cfg loom`, where `src/loom_models.rs` checks this queue.
use crate::sys::sync::{
    self as atomic, AtomicBool, AtomicUsize, Backoff, Ordering, Thread, UnsafeCell, WaitList,
    thread,
};

/// A slot of the buffer.
struct Slot<T> {
    /// `{lap, index}` stamp: equal to the tail stamp when the slot is free for that push,
    /// one more than the head stamp when it holds a value ready for that pop.
    stamp: AtomicUsize,
    /// The value, initialised exactly when the stamp says it is ready.
    value: UnsafeCell<MaybeUninit<T>>,
}

/// Why a push did not happen; the value is handed back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TryPushError<T> {
    /// Every slot is taken.
    Full(T),
    /// The queue was closed.
    Closed(T),
}

/// What the consumer found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pop<T> {
    /// A value.
    Item(T),
    /// Nothing now.
    Empty,
    /// A producer has claimed the next slot and is writing it: the value is moments away.
    Pending,
    /// Closed and drained: nothing will ever come.
    Closed,
}

/// The queue. Producers share it through an `Arc`; the single consumer pops through a
/// [`Consumer`].
pub(crate) struct Queue<T> {
    /// Stamp of the next slot to pop. Written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Stamp of the next slot to push, with `mark_bit` set once the queue is closed.
    tail: CachePadded<AtomicUsize>,
    /// The slots; `buffer.len() == cap`.
    buffer: Box<[Slot<T>]>,
    cap: usize,
    /// A stamp with lap 1, index 0: the smallest power of two above `mark_bit`.
    one_lap: usize,
    /// The smallest power of two greater than `cap`; set in `tail` when closed.
    mark_bit: usize,
    /// The consumer has announced it is about to park, or is parked.
    sleeping: CachePadded<AtomicBool>,
    /// The consumer's thread, registered before it first parks.
    consumer: OnceLock<Thread>,
    /// Number of entries in `waiters` (producers parked or about to park on a full queue).
    waiting: CachePadded<AtomicUsize>,
    /// Producers waiting for room, one entry per registration, oldest first.
    waiters: WaitList<std::sync::Arc<Waiter>>,
}

/// One registration of a producer waiting for room.
///
/// The producer parks until `woken` is set, not until its thread is unparked once: the waker
/// sets the flag, then unparks. The flag makes the wait independent of how the thread's park
/// token behaves: std keeps an unpark that arrives while the thread is not parked (say, while
/// it re-checks the queue), but loom 0.7 drops one that arrives during a `yield_now`, and a
/// wait that relied on the token deadlocked there (`loom_three_waiters_one_slot`). It also
/// keeps a spurious return from `park` from sending the producer round the register-and-retry
/// loop again.
struct Waiter {
    /// Who waits: a producer's thread, or an async push's task.
    target: Target,
    /// Set (Release) by the pass that pops this registration, before it wakes `target`;
    /// read (Acquire) by the producer before each park.
    woken: AtomicBool,
}

/// Whom a [`Waiter`] wakes.
enum Target {
    /// A thread parked in [`Queue::push`].
    Thread(Thread),
    /// A task waiting in [`Queue::poll_push`]: woken, it polls again, and registers anew if
    /// the queue is full again. A registration whose task is gone (its future dropped) costs
    /// one wake-up that finds nobody: the consumer's pass that wakes every waiter when the
    /// queue is empty still comes.
    Task(std::task::Waker),
}

/// What [`Queue::poll_push`] did with a value.
pub(crate) enum PollPush<T> {
    /// It is in the queue.
    Pushed,
    /// The queue is closed, or the caller gave up: the value is handed back.
    Refused(T),
    /// The queue is full: the task is registered to be woken when there may be room, and the
    /// value handed back to push again then.
    Waiting(T),
}

// SAFETY: values move between threads through the slots, so `T: Send` suffices; access to each
// slot's value is handed over by its stamp (Release on write, Acquire on read).
unsafe impl<T: Send> Send for Queue<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    /// A queue of `cap` slots (at least 1).
    pub(crate) fn new(cap: usize) -> Queue<T> {
        let cap = cap.max(1);
        let mark_bit = (cap + 1).next_power_of_two();
        let one_lap = mark_bit * 2;
        let buffer = (0..cap)
            .map(|i| Slot {
                stamp: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Queue {
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
            buffer,
            cap,
            one_lap,
            mark_bit,
            sleeping: CachePadded::new(AtomicBool::new(false)),
            consumer: OnceLock::new(),
            waiting: CachePadded::new(AtomicUsize::new(0)),
            waiters: WaitList::new(),
        }
    }

    /// Number of slots.
    pub(crate) fn capacity(&self) -> usize {
        self.cap
    }

    /// Pushes without waiting.
    pub(crate) fn try_push(&self, value: T) -> Result<(), TryPushError<T>> {
        let backoff = Backoff::new();
        let mut tail = self.tail.load(Ordering::Relaxed);
        loop {
            if tail & self.mark_bit != 0 {
                return Err(TryPushError::Closed(value));
            }
            let index = tail & (self.mark_bit - 1);
            let lap = tail & !(self.one_lap - 1);
            debug_assert!(index < self.cap);
            let slot = &self.buffer[index];
            let stamp = slot.stamp.load(Ordering::Acquire);
            if tail == stamp {
                let new_tail = if index + 1 < self.cap {
                    tail + 1
                } else {
                    lap.wrapping_add(self.one_lap)
                };
                match self.tail.compare_exchange_weak(
                    tail,
                    new_tail,
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the successful CAS gave this thread exclusive ownership of the
                        // free slot until it publishes the stamp below.
                        slot.value
                            .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
                        slot.stamp.store(tail + 1, Ordering::Release);
                        self.wake_consumer();
                        return Ok(());
                    }
                    Err(t) => {
                        tail = t;
                        backoff.spin();
                    }
                }
            } else if stamp.wrapping_add(self.one_lap) == tail + 1 {
                // The slot still holds last lap's value: the queue may be full.
                atomic::fence(Ordering::SeqCst);
                let head = self.head.load(Ordering::Relaxed);
                if head.wrapping_add(self.one_lap) == tail {
                    return Err(TryPushError::Full(value));
                }
                backoff.spin();
                tail = self.tail.load(Ordering::Relaxed);
            } else {
                // Another producer moved the tail and has not published yet.
                backoff.snooze();
                tail = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Pushes, parking while the queue is full. Hands the value back if the queue is closed, or
    /// if `give_up` returns true (it is asked before every park, after registering, so a
    /// condition set before [`Queue::wake_all_producers`] is always seen).
    pub(crate) fn push(&self, mut value: T, give_up: impl Fn() -> bool) -> Result<(), T> {
        let backoff = Backoff::new();
        loop {
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(v)) => return Err(v),
                Err(TryPushError::Full(v)) => value = v,
            }
            if !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            // Register, re-check, park: see "Parking" in the module docs.
            let waiter = self.register(Target::Thread(thread::current()));
            match self.try_push(value) {
                Ok(()) => return Ok(()),
                Err(TryPushError::Closed(v)) => return Err(v),
                Err(TryPushError::Full(v)) => value = v,
            }
            if give_up() {
                return Err(value);
            }
            // Park until this registration is woken, not merely until the thread is unparked:
            // `park` may return spuriously, and an unpark may come before it (see `Waiter`).
            while !waiter.woken.load(Ordering::Acquire) {
                thread::park();
            }
        }
    }

    /// Pushes for a task that must not block its thread: as [`Queue::push`], but where that
    /// parks, this registers `waker` (same protocol: register, fence, re-check) and returns
    /// [`PollPush::Waiting`], for the task to poll again when woken.
    pub(crate) fn poll_push(
        &self,
        value: T,
        waker: &std::task::Waker,
        give_up: impl Fn() -> bool,
    ) -> PollPush<T> {
        let value = match self.try_push(value) {
            Ok(()) => return PollPush::Pushed,
            Err(TryPushError::Closed(v)) => return PollPush::Refused(v),
            Err(TryPushError::Full(v)) => v,
        };
        self.register(Target::Task(waker.clone()));
        match self.try_push(value) {
            Ok(()) => PollPush::Pushed,
            Err(TryPushError::Closed(v)) => PollPush::Refused(v),
            Err(TryPushError::Full(v)) if give_up() => PollPush::Refused(v),
            Err(TryPushError::Full(v)) => PollPush::Waiting(v),
        }
    }

    /// Registers `target` as waiting for room, and issues the fence that orders the
    /// registration before the caller's re-check (see "Parking" in the module docs).
    fn register(&self, target: Target) -> std::sync::Arc<Waiter> {
        // The fence orders the registration before the re-check's loads of `tail` (closed?)
        // and of the slot and `head` (room?): with the fence in `wake_all_producers`, after
        // the close or the consumer's pops, either the re-check sees them or the waker sees the
        // registration. (A SeqCst read-modify-write alone does not order the Relaxed load of
        // `tail` after it; the model in `src/loom_models.rs` found the lost wake-up at close.)
        let waiter = std::sync::Arc::new(Waiter {
            target,
            woken: AtomicBool::new(false),
        });
        self.waiters.push(waiter.clone());
        self.waiting.fetch_add(1, Ordering::SeqCst);
        atomic::fence(Ordering::SeqCst);
        waiter
    }

    /// Closes the queue: every later push hands its value back. Values already pushed stay for
    /// the consumer to drain. Wakes everyone.
    pub(crate) fn close(&self) {
        self.tail.fetch_or(self.mark_bit, Ordering::SeqCst);
        self.wake_all_producers();
        crate::sys::sync::store_flag(&self.sleeping, false);
        if let Some(t) = self.consumer.get() {
            t.unpark();
        }
    }

    /// Unparks the consumer thread, whatever it waits for.
    pub(crate) fn unpark_consumer(&self) {
        if let Some(t) = self.consumer.get() {
            t.unpark();
        }
    }

    /// Whether [`Queue::close`] was called.
    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::SeqCst) & self.mark_bit != 0
    }

    /// Number of values in the queue (a snapshot; for statistics).
    pub(crate) fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::SeqCst) & !self.mark_bit;
        let head = self.head.load(Ordering::SeqCst);
        let hix = head & (self.mark_bit - 1);
        let tix = tail & (self.mark_bit - 1);
        if hix < tix {
            tix - hix
        } else if hix > tix {
            self.cap - hix + tix
        } else if tail == head {
            0
        } else {
            self.cap
        }
    }

    fn wake_consumer(&self) {
        // The claim of the slot (a SeqCst compare-and-swap on `tail`) comes before this SeqCst
        // load in the single order of SeqCst accesses; see `crate::sys::sync::seq_cst_accesses`.
        crate::sys::sync::seq_cst_accesses();
        if self.sleeping.load(Ordering::SeqCst)
            && self.sleeping.swap(false, Ordering::SeqCst)
            && let Some(t) = self.consumer.get()
        {
            t.unpark();
        }
    }

    /// Unparks every producer waiting for room. Called when the consumer is about to park, when
    /// the queue is closed, and when the ring can no longer take events (so that waiters give
    /// up).
    pub(crate) fn wake_all_producers(&self) -> usize {
        self.wake_producers(usize::MAX)
    }

    /// Unparks up to `n` of the producers registered when it is called, the longest waiting
    /// first, and returns how many. Registrations made meanwhile wait for the next pass (see
    /// "Every waker's pass ends" in the module docs).
    fn wake_producers(&self, n: usize) -> usize {
        atomic::fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Acquire) == 0 {
            return 0;
        }
        // Every registration whose push into `waiters` came before this count is counted, and
        // `waiters` is FIFO: the first `present` pops take exactly those.
        let present = self.waiters.len();
        let mut woken = 0;
        for _ in 0..n.min(present) {
            let Some(w) = self.waiters.pop() else { break };
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            w.woken.store(true, Ordering::Release);
            match &w.target {
                Target::Thread(t) => t.unpark(),
                Target::Task(waker) => waker.wake_by_ref(),
            }
            woken += 1;
        }
        woken
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        // Drop whatever the consumer did not take (only if it stopped early). `&mut self`: no
        // other thread can touch the queue, so relaxed loads see the last values.
        let tail = self.tail.load(Ordering::Relaxed) & !self.mark_bit;
        let mut head = self.head.load(Ordering::Relaxed);
        while head != tail {
            let index = head & (self.mark_bit - 1);
            let slot = &self.buffer[index];
            if slot.stamp.load(Ordering::Relaxed) == head + 1 {
                // SAFETY: the stamp says the slot holds an initialised value, and `&mut self`
                // means no one else can touch it.
                slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
            }
            head = if index + 1 < self.cap {
                head + 1
            } else {
                (head & !(self.one_lap - 1)).wrapping_add(self.one_lap)
            };
        }
    }
}

/// The consumer's end of a [`Queue`]: the only place values are popped.
pub(crate) struct Consumer<T> {
    queue: std::sync::Arc<Queue<T>>,
    /// Pops since a producer was last offered a wake-up.
    since_wake: usize,
    /// `WAKE_EVERY`, or a quarter of the capacity if smaller (at least 1).
    wake_every: usize,
    /// Values found ready in a row, since the queue was last found empty or pending.
    streak: usize,
    /// The most producers one wake-up pass unparked (for the models and tests).
    #[cfg(test)]
    pub(crate) most_woken: usize,
}

/// While the consumer pops, it wakes one producer waiting for room every this many pops (or
/// every quarter of the capacity, if smaller); when it finds the queue empty it wakes them all.
///
/// Waking every waiter at every few pops makes a herd: with more producers than cores, the
/// queue fills, and each pop then pays for a wake-up system call of a producer that pushes one
/// event and parks again (measured on two cores: 32 producers fell from 2 M to 0.2 M events/s,
/// the sequencer's time going to wake-ups). Waking one producer per stretch of room lets each
/// woken producer push many events before it can find the queue full again, and keeps the
/// others parked, off the CPU the sequencer needs.
const WAKE_EVERY: usize = 1024;

/// How many slots ahead of the one it pops the consumer prefetches (see `crate::sys::prefetch`)...
const PREFETCH_AHEAD: usize = 4;

/// ...once it has found this many values in a row ready: it is draining a backlog, and the
/// slots ahead are written.
const PREFETCH_AFTER: usize = 64;

impl<T> Consumer<T> {
    /// The consumer end of `queue`; there must be only one, and it registers the calling
    /// thread as the one producers wake.
    pub(crate) fn new(queue: std::sync::Arc<Queue<T>>) -> Consumer<T> {
        let wake_every = WAKE_EVERY.min(queue.cap / 4).max(1);
        Consumer {
            queue,
            since_wake: 0,
            wake_every,
            streak: 0,
            #[cfg(test)]
            most_woken: 0,
        }
    }

    /// Registers the current thread as the consumer that producers unpark.
    pub(crate) fn register_thread(&self) {
        let _ = self.queue.consumer.set(thread::current());
    }

    /// Takes the next value if there is one.
    #[cfg(test)]
    pub(crate) fn pop(&mut self) -> Pop<T> {
        // SAFETY: the value is read out exactly once, and `pop_in_place` is told not to drop it.
        self.pop_in_place(|v| unsafe { std::ptr::read(v) }, false)
    }

    /// Hands the next value, in its slot, to `f`, then drops it there and frees the slot: the
    /// value is never copied out of the slot.
    pub(crate) fn pop_with<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> Pop<R> {
        self.pop_in_place(f, true)
    }

    fn pop_in_place<R>(&mut self, f: impl FnOnce(&mut T) -> R, drop_value: bool) -> Pop<R> {
        let q = &*self.queue;
        let head = q.head.load(Ordering::Relaxed);
        let index = head & (q.mark_bit - 1);
        let lap = head & !(q.one_lap - 1);
        debug_assert!(index < q.cap);
        let slot = &q.buffer[index];
        let stamp = slot.stamp.load(Ordering::Acquire);
        if head + 1 == stamp {
            // Draining a backlog, the slot `PREFETCH_AHEAD` pops from now was written by a
            // producer on another core, and fetching it while this value is processed hides the
            // miss. Not otherwise: a slot no producer has written yet would be pulled away from
            // the producer about to write it.
            self.streak += 1;
            if self.streak >= PREFETCH_AFTER {
                let ahead = index + PREFETCH_AHEAD;
                let ahead = if ahead < q.cap { ahead } else { ahead - q.cap };
                if let Some(next) = q.buffer.get(ahead) {
                    crate::sys::prefetch::prefetch(
                        std::ptr::from_ref::<Slot<T>>(next).cast(),
                        std::mem::size_of::<Slot<T>>(),
                    );
                }
            }
            let new_head = if index + 1 < q.cap {
                head + 1
            } else {
                lap.wrapping_add(q.one_lap)
            };
            let result = slot.value.with_mut(|p| {
                // SAFETY: the stamp (read with Acquire) says a producer wrote the value and
                // handed the slot over; only this consumer reads slots, and the slot is not
                // released until the value is dropped or moved out below. (If `f` panics, the
                // slot keeps its value and its stamp, and `Queue::drop` drops it.)
                let value = unsafe { (*p).assume_init_mut() };
                let result = f(value);
                if drop_value {
                    // SAFETY: the value is initialised and is dropped exactly once, here, before
                    // the slot is released.
                    unsafe { std::ptr::drop_in_place(value) };
                }
                result
            });
            slot.stamp
                .store(head.wrapping_add(q.one_lap), Ordering::Release);
            q.head.store(new_head, Ordering::Release);
            self.since_wake += 1;
            if self.since_wake >= self.wake_every {
                self.since_wake = 0;
                let woken = q.wake_producers(1);
                self.note_woken(woken);
            }
            return Pop::Item(result);
        }
        self.streak = 0;
        atomic::fence(Ordering::SeqCst);
        let tail = q.tail.load(Ordering::Relaxed);
        if tail & !q.mark_bit == head {
            if tail & q.mark_bit != 0 {
                Pop::Closed
            } else {
                Pop::Empty
            }
        } else {
            Pop::Pending
        }
    }

    /// Unparks every producer waiting for room, if there is any.
    pub(crate) fn wake_producers(&mut self) {
        self.since_wake = 0;
        let woken = self.queue.wake_all_producers();
        self.note_woken(woken);
    }

    #[cfg(test)]
    fn note_woken(&mut self, woken: usize) {
        self.most_woken = self.most_woken.max(woken);
    }

    #[cfg(not(test))]
    #[inline(always)]
    #[allow(clippy::unused_self)] // the same signature as the test build's, which records
    fn note_woken(&mut self, _woken: usize) {}

    /// Parks until a producer pushes, the queue is closed, or `timeout` passes. May return
    /// spuriously; callers pop again.
    pub(crate) fn wait(&mut self, timeout: Option<Duration>) {
        self.wake_producers();
        let q = &*self.queue;
        crate::sys::sync::store_flag(&q.sleeping, true);
        crate::sys::sync::seq_cst_accesses();
        let head = q.head.load(Ordering::Relaxed);
        let tail = q.tail.load(Ordering::SeqCst);
        if tail != head {
            // Something arrived, or the queue is closed: do not sleep.
            crate::sys::sync::store_flag(&q.sleeping, false);
            return;
        }
        match timeout {
            Some(t) => crate::sys::sync::park_timeout(t),
            None => thread::park(),
        }
        crate::sys::sync::store_flag(&q.sleeping, false);
    }
}

// Plain threads: these cannot run under loom (see `src/loom_models.rs` for what does).
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[test]
    fn fifo_full_and_closed() {
        let q = Arc::new(Queue::new(3));
        let mut c = Consumer::new(q.clone());
        for i in 0..3 {
            q.try_push(i).unwrap();
        }
        assert_eq!(q.len(), 3);
        assert_eq!(q.try_push(9), Err(TryPushError::Full(9)));
        assert_eq!(c.pop(), Pop::Item(0));
        q.try_push(3).unwrap();
        q.close();
        assert_eq!(q.try_push(4), Err(TryPushError::Closed(4)));
        assert_eq!(q.push(5, || false), Err(5));
        for i in 1..4 {
            assert_eq!(c.pop(), Pop::Item(i));
        }
        assert_eq!(c.pop(), Pop::Closed);
    }

    #[test]
    fn wraps_around_many_laps() {
        let q = Arc::new(Queue::new(5));
        let mut c = Consumer::new(q.clone());
        for round in 0..100u32 {
            for i in 0..=(round % 5) {
                q.try_push(round * 10 + i).unwrap();
            }
            for i in 0..=(round % 5) {
                assert_eq!(c.pop(), Pop::Item(round * 10 + i));
            }
            assert_eq!(c.pop(), Pop::Empty);
        }
    }

    /// `producers` threads push `per` values `(producer, i)` each, in order, into a queue of
    /// `cap` slots, all starting together; the consumer hands each value it pops to `each`,
    /// parking when the queue is empty, until it has them all. Returns the consumer.
    fn push_from_threads(
        cap: usize,
        producers: u64,
        per: u64,
        mut each: impl FnMut((u64, u64)),
    ) -> Consumer<(u64, u64)> {
        let q = Arc::new(Queue::new(cap));
        let start = Arc::new(Barrier::new(producers as usize + 1));
        let handles: Vec<_> = (0..producers)
            .map(|p| {
                let q = q.clone();
                let start = start.clone();
                thread::spawn(move || {
                    start.wait();
                    for i in 0..per {
                        q.push((p, i), || false).unwrap();
                    }
                })
            })
            .collect();
        let mut c = Consumer::new(q.clone());
        c.register_thread();
        start.wait();
        let mut got = 0;
        while got < producers * per {
            match c.pop() {
                Pop::Item(v) => {
                    each(v);
                    got += 1;
                }
                Pop::Empty => c.wait(None),
                Pop::Pending => thread::yield_now(),
                Pop::Closed => unreachable!(),
            }
        }
        for h in handles {
            h.join().unwrap();
        }
        c
    }

    #[test]
    fn blocking_push_waits_for_room_and_loses_nothing() {
        let mut next = [0u64; 4];
        push_from_threads(4, 4, 2000, |(p, i)| {
            assert_eq!(next[p as usize], i, "per-producer order");
            next[p as usize] += 1;
        });
        assert_eq!(next, [2000; 4]);
    }

    /// The cost of a slot that the docs of `queue_capacity`, `DEFAULT_QUEUE_CAPACITY` and
    /// `MAX_QUEUE_CAPACITY` state (issue 12, item 18).
    #[test]
    #[cfg(target_pointer_width = "64")]
    #[allow(clippy::float_cmp)] // exact: small multiples of powers of two
    fn a_slot_costs_what_the_docs_say() {
        assert_eq!(
            std::mem::size_of::<Slot<crate::write::item::Item>>(),
            crate::write::config::QUEUE_SLOT_BYTES
        );
        let mib =
            |slots: usize| (slots * crate::write::config::QUEUE_SLOT_BYTES) as f64 / 1_048_576.0;
        assert_eq!(mib(crate::write::config::DEFAULT_QUEUE_CAPACITY), 4.5);
        assert_eq!(mib(crate::write::config::MAX_QUEUE_CAPACITY), 288.0);
    }

    /// Many more producers than slots, each pushing and parking (issue 12, item 15): no pass
    /// of the consumer wakes more producers than there are, and nothing is lost.
    #[test]
    fn a_wake_pass_wakes_no_producer_twice() {
        let producers = 64u64;
        let c = push_from_threads(2, producers, 50, |_| {});
        assert!(
            c.most_woken <= producers as usize,
            "one pass woke {} of {producers} producers",
            c.most_woken
        );
    }

    #[test]
    fn drop_releases_unconsumed_values() {
        let value = Arc::new(());
        {
            let q = Queue::new(4);
            q.try_push(value.clone()).unwrap();
            q.try_push(value.clone()).unwrap();
            assert_eq!(Arc::strong_count(&value), 3);
        }
        assert_eq!(Arc::strong_count(&value), 1);
    }
}
