//! State shared by the producers, the sequencer, the committer and snapshot takers.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::error::Error;
use crate::read::published::Published;
use crate::storage::Storage;
use crate::write::config::Durability;
use crate::write::item::Item;
use crate::write::queue::Queue;

const HEALTHY: u8 = 0;
const STALLED: u8 = 1;
const POISONED: u8 = 2;

/// What every thread of a ring can reach.
pub(crate) struct Shared {
    /// Producers push here; the sequencer pops.
    pub(crate) queue: Arc<Queue<Item>>,
    /// The latest published head and segment list, swapped in after every batch.
    pub(crate) published: ArcSwap<Published>,
    /// Largest body a producer may encode.
    pub(crate) max_body: usize,
    /// The ring's sync policy.
    pub(crate) durability: Durability,
    /// Where the log lives.
    pub(crate) storage: Arc<dyn Storage>,
    /// `HEALTHY`, `STALLED` (storage full; may recover) or `POISONED` (a sync failed; final).
    /// Producers read it with one relaxed load per push; `failure` has the details.
    health: AtomicU8,
    /// Why the ring is stalled or poisoned.
    failure: ArcSwapOption<Error>,
    /// Set by the retention thread while segments past a limit wait for an export
    /// ([`Unexported::Wait`](crate::Unexported::Wait)): the sequencer then starts no new segment.
    retention_blocked: AtomicBool,
    /// The retention thread's last failure, cleared by its next success.
    retention_error: ArcSwapOption<Error>,
    /// How far the tree worker has read the records (the Merkle tree's size), `u64::MAX` when
    /// there is no tree worker (any more): retention prunes no record before the tree has it.
    tree_size: Mutex<u64>,
    /// Signalled when `tree_size` grows.
    tree_grew: Condvar,
}

impl Shared {
    pub(crate) fn new(
        queue: Arc<Queue<Item>>,
        published: Published,
        max_body: usize,
        durability: Durability,
        storage: Arc<dyn Storage>,
    ) -> Shared {
        Shared {
            queue,
            published: ArcSwap::from_pointee(published),
            max_body,
            durability,
            storage,
            health: AtomicU8::new(HEALTHY),
            failure: ArcSwapOption::empty(),
            retention_blocked: AtomicBool::new(false),
            retention_error: ArcSwapOption::empty(),
            tree_size: Mutex::new(u64::MAX),
            tree_grew: Condvar::new(),
        }
    }

    /// The tree worker has read the first `size` records (or, with `u64::MAX`, is gone).
    pub(crate) fn set_tree_size(&self, size: u64) {
        *self
            .tree_size
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = size;
        self.tree_grew.notify_all();
    }

    /// Waits until the tree worker has read the records up to `seq`, or is gone, or the queue
    /// is closed (the ring is closing: the tree worker catches up on its own then).
    pub(crate) fn wait_for_tree(&self, seq: u64) {
        let mut size = self
            .tree_size
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        while *size < seq && !self.queue.is_closed() {
            // A bounded wait, so that a close is seen even though nothing signals it here.
            size = self
                .tree_grew
                .wait_timeout(size, std::time::Duration::from_millis(50))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// `Ok` unless the ring is stalled or poisoned.
    #[inline]
    pub(crate) fn check_health(&self) -> Result<(), Error> {
        if self.health.load(Ordering::Relaxed) == HEALTHY {
            return Ok(());
        }
        match self.failure.load_full() {
            Some(e) => Err((*e).clone()),
            // Cleared between the two loads: healthy again.
            None => Ok(()),
        }
    }

    /// Whether the ring cannot take events now (a waiting producer then gives up).
    pub(crate) fn is_failing(&self) -> bool {
        self.health.load(Ordering::SeqCst) != HEALTHY
    }

    /// Whether a sync has failed.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.health.load(Ordering::Acquire) == POISONED
    }

    /// The poisoning error, if poisoned.
    pub(crate) fn poison_error(&self) -> Option<Error> {
        if self.is_poisoned() {
            self.failure.load_full().map(|e| (*e).clone())
        } else {
            None
        }
    }

    /// Records a failed sync. Final: the first error is kept, and a poison always wins over a
    /// stall.
    pub(crate) fn poison(&self, source: io::Error) -> Error {
        let error = Error::Poisoned {
            source: Arc::new(source),
        };
        self.failure.rcu(|cur| match cur {
            Some(e) if matches!(**e, Error::Poisoned { .. }) => cur.clone(),
            _ => Some(Arc::new(error.clone())),
        });
        self.health.store(POISONED, Ordering::SeqCst);
        self.queue.wake_all_producers();
        self.poison_error().unwrap_or(error)
    }

    /// Marks the ring as unable to take events for now (its storage is full).
    pub(crate) fn stall(&self, error: &Error) {
        self.failure.rcu(|cur| match cur {
            Some(e) if matches!(**e, Error::Poisoned { .. }) => cur.clone(),
            _ => Some(Arc::new(error.clone())),
        });
        let _ = self
            .health
            .compare_exchange(HEALTHY, STALLED, Ordering::SeqCst, Ordering::SeqCst);
        self.queue.wake_all_producers();
    }

    /// Clears a stall.
    pub(crate) fn unstall(&self) {
        if self
            .health
            .compare_exchange(STALLED, HEALTHY, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.failure.rcu(|cur| match cur {
                Some(e) if matches!(**e, Error::Poisoned { .. }) => cur.clone(),
                _ => None,
            });
        }
    }

    /// Whether the log is held at its size until an export covers what retention must prune.
    pub(crate) fn retention_blocked(&self) -> bool {
        self.retention_blocked.load(Ordering::SeqCst)
    }

    /// Holds the log at its size, or lets it grow again (waking the sequencer).
    pub(crate) fn set_retention_blocked(&self, blocked: bool) {
        if self.retention_blocked.swap(blocked, Ordering::SeqCst) && !blocked {
            self.queue.unpark_consumer();
        }
    }

    /// The retention thread's last failure, if its last attempt failed.
    pub(crate) fn retention_error(&self) -> Option<Error> {
        self.retention_error.load_full().map(|e| (*e).clone())
    }

    /// Records the outcome of the retention thread's last attempt.
    pub(crate) fn set_retention_error(&self, error: Option<Error>) {
        self.retention_error.store(error.map(Arc::new));
    }
}
