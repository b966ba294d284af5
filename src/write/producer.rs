//! The producer side: encoding and hashing on the caller's thread, then a lock-free enqueue.

use std::fmt;
use std::sync::Arc;
use std::task::Poll;

use serde::Serialize;

use crate::error::{Error, PushError};
use crate::format::event::{Event, EventError};
use crate::format::event_ref::EventRef;
use crate::sys::fork::Opener;
use crate::write::item::{Encoded, Item, encode_into, encode_ref_into};
use crate::write::queue::{PollPush, TryPushError};
use crate::write::receipt::{Completion, PendingReceipt, Receipt, Ticket};
use crate::write::shared::Shared;

/// A handle for pushing events into a ring: cheap to clone, `Send` and `Sync`.
///
/// Every push encodes the event and computes its leaf hash on the calling thread, then enqueues
/// it without taking any lock. Events pushed by one producer thread are sequenced in the order
/// it pushed them.
///
/// In a process forked after the ring was opened, every push, and [`Producer::flush`], fails at
/// once with [`Error::Forked`] (the event handed back): the child has none of the ring's threads,
/// and only the process that opened a ring may write to its log.
#[derive(Clone)]
pub struct Producer {
    pub(crate) shared: Arc<Shared>,
    /// The process that opened the ring (see `crate::sys::fork`).
    pub(crate) opener: Opener,
}

// The errors hand the event back by value, as crossbeam-channel's `TrySendError` does.
#[allow(clippy::result_large_err)]
impl Producer {
    /// Pushes an event, waiting while the queue is full. Returns as soon as the event is queued.
    ///
    /// The event is handed back in the error if it is invalid, or if the ring is closed,
    /// poisoned or stalled.
    pub fn push(&self, event: Event) -> Result<(), PushError> {
        self.enqueue(|max, out| encode_into(&event, max, out), None, true)
            .map_err(|e| e.map(|()| event))
    }

    /// Pushes an event if there is room in the queue; otherwise hands it back in
    /// [`PushError::Full`].
    pub fn try_push(&self, event: Event) -> Result<(), PushError> {
        self.enqueue(|max, out| encode_into(&event, max, out), None, false)
            .map_err(|e| e.map(|()| event))
    }

    /// Pushes an event (waiting while the queue is full) and returns a handle on its receipt,
    /// which arrives once the event is sequenced and, under a durable policy, synced.
    pub fn push_tracked(&self, event: Event) -> Result<PendingReceipt, PushError> {
        let (ticket, completion) = Ticket::new();
        self.enqueue(
            |max, out| encode_into(&event, max, out),
            Some(completion),
            true,
        )
        .map_err(|e| e.map(|()| event))?;
        Ok(PendingReceipt {
            ticket,
            opener: self.opener,
        })
    }

    /// Pushes an event and waits for its receipt: its sequence number and chain hash, once it is
    /// sequenced and, under a durable policy, synced.
    pub fn push_receipt(&self, event: Event) -> Result<Receipt, Error> {
        self.push_tracked(event)?.wait()
    }

    /// Pushes a borrowed event, waiting while the queue is full: the same as
    /// [`Producer::push`], but an event whose envelope fits a queue slot (up to 232 bytes) is
    /// encoded straight into it, its details serialized in place, and nothing is allocated.
    /// The caller keeps the event, so the error hands back `()`.
    pub fn push_ref<D: Serialize + ?Sized>(
        &self,
        event: &EventRef<'_, D>,
    ) -> Result<(), PushError<()>> {
        self.enqueue(|max, out| encode_ref_into(event, max, out), None, true)
    }

    /// Pushes a borrowed event if there is room in the queue; otherwise fails with
    /// [`PushError::Full`]. See [`Producer::push_ref`].
    pub fn try_push_ref<D: Serialize + ?Sized>(
        &self,
        event: &EventRef<'_, D>,
    ) -> Result<(), PushError<()>> {
        self.enqueue(|max, out| encode_ref_into(event, max, out), None, false)
    }

    /// Pushes a borrowed event (waiting while the queue is full) and returns a handle on its
    /// receipt. See [`Producer::push_ref`] and [`Producer::push_tracked`]; the receipt's
    /// handle is allocated.
    pub fn push_ref_tracked<D: Serialize + ?Sized>(
        &self,
        event: &EventRef<'_, D>,
    ) -> Result<PendingReceipt, PushError<()>> {
        let (ticket, completion) = Ticket::new();
        self.enqueue(
            |max, out| encode_ref_into(event, max, out),
            Some(completion),
            true,
        )?;
        Ok(PendingReceipt {
            ticket,
            opener: self.opener,
        })
    }

    /// Waits until every event pushed before the call (by any thread) is sequenced, visible to
    /// snapshots and, under a durable policy, synced.
    pub fn flush(&self) -> Result<(), Error> {
        self.check_opener()?;
        self.shared.check_health()?;
        let (ticket, completion) = Ticket::new();
        let shared = &*self.shared;
        shared
            .queue
            .push(Item::Flush(Some(completion)), || shared.is_failing())
            .map_err(|_| shared.check_health().err().unwrap_or(Error::Closed))?;
        ticket.wait().map(drop)
    }

    /// Pushes an event, waiting while the queue is full without blocking the thread: the
    /// returned future is woken by the ring's sequencer when there is room. For async code,
    /// under any executor; otherwise the same as [`Producer::push`]. The event is encoded and
    /// hashed before the first await. Dropping the future before it completes drops the event.
    pub async fn push_async(&self, event: Event) -> Result<(), PushError> {
        let item = match self.prepare(|max, out| encode_into(&event, max, out), None) {
            Ok(item) => item,
            Err(e) => return Err(e.map(|()| event)),
        };
        self.enqueue_async(item)
            .await
            .map_err(|e| e.map(|()| event))
    }

    /// Pushes an event as [`Producer::push_async`] does, and returns a handle on its receipt,
    /// which is itself a future (see [`PendingReceipt`]): `producer.push_tracked_async(e)
    /// .await?.await?` waits for room, then for the receipt, blocking no thread.
    pub async fn push_tracked_async(&self, event: Event) -> Result<PendingReceipt, PushError> {
        let (ticket, completion) = Ticket::new();
        let item = match self.prepare(|max, out| encode_into(&event, max, out), Some(completion)) {
            Ok(item) => item,
            Err(e) => return Err(e.map(|()| event)),
        };
        self.enqueue_async(item)
            .await
            .map_err(|e| e.map(|()| event))?;
        Ok(PendingReceipt {
            ticket,
            opener: self.opener,
        })
    }

    /// Waits as [`Producer::flush`] does, blocking no thread.
    pub async fn flush_async(&self) -> Result<(), Error> {
        self.check_opener()?;
        self.shared.check_health()?;
        let (ticket, completion) = Ticket::new();
        self.enqueue_async(Item::Flush(Some(completion)))
            .await
            .map_err(Error::from)?;
        PendingReceipt {
            ticket,
            opener: self.opener,
        }
        .await
        .map(drop)
    }

    /// Enqueues `item`, registering the task to be woken while the queue is full.
    async fn enqueue_async(&self, item: Item) -> Result<(), PushError<()>> {
        let shared = &*self.shared;
        let mut item = Some(item);
        std::future::poll_fn(|cx| {
            let Some(value) = item.take() else {
                return Poll::Ready(Ok(()));
            };
            match shared
                .queue
                .poll_push(value, cx.waker(), || shared.is_failing())
            {
                PollPush::Pushed => Poll::Ready(Ok(())),
                PollPush::Refused(_) => Poll::Ready(Err(self.refused())),
                PollPush::Waiting(value) => {
                    item = Some(value);
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Why the queue refused an item: the ring's failure, or its close.
    fn refused(&self) -> PushError<()> {
        match self.shared.check_health() {
            Err(source) => PushError::Failed { event: (), source },
            Ok(()) => PushError::Closed(()),
        }
    }

    /// Checks that the ring takes events, and encodes one with `encode` (given the maximum
    /// body size, into the queue item, in place). The error hands back `()`: the callers hand
    /// back the event.
    fn prepare(
        &self,
        encode: impl FnOnce(usize, &mut Encoded) -> Result<(), EventError>,
        ticket: Option<Completion>,
    ) -> Result<Item, PushError<()>> {
        let event = ();
        if let Err(source) = self.check_opener() {
            return Err(PushError::Failed { event, source });
        }
        if let Err(source) = self.shared.check_health() {
            return Err(PushError::Failed { event, source });
        }
        // Built once, encoded in place, moved once into its slot.
        let mut item = Item::Event(Encoded::blank());
        let Item::Event(encoded) = &mut item else {
            unreachable!("an event item")
        };
        if let Err(source) = encode(self.shared.max_body, encoded) {
            return Err(PushError::Invalid { event, source });
        }
        encoded.ticket = ticket;
        Ok(item)
    }

    /// Encodes an event with `encode` (see [`Producer::prepare`]) and enqueues it.
    fn enqueue(
        &self,
        encode: impl FnOnce(usize, &mut Encoded) -> Result<(), EventError>,
        ticket: Option<Completion>,
        wait: bool,
    ) -> Result<(), PushError<()>> {
        let event = ();
        let item = self.prepare(encode, ticket)?;
        if wait {
            let shared = &*self.shared;
            shared
                .queue
                .push(item, || shared.is_failing())
                .map_err(|_| self.refused())
        } else {
            match self.shared.queue.try_push(item) {
                Ok(()) => Ok(()),
                Err(TryPushError::Full(_)) => Err(PushError::Full(event)),
                Err(TryPushError::Closed(_)) => Err(PushError::Closed(event)),
            }
        }
    }
}

impl Producer {
    /// Fails with [`Error::Forked`] in a process forked since the ring was opened. One relaxed
    /// atomic load.
    #[inline]
    pub(crate) fn check_opener(&self) -> Result<(), Error> {
        if self.opener.forked() {
            return Err(Error::Forked {
                pid: self.opener.pid,
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Producer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("log", &self.shared.storage.location())
            .finish_non_exhaustive()
    }
}
