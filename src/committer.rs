//! The committer thread: syncs what the sequencer wrote, writes commit slots, seals full
//! segments, and releases durable receipts.
//!
//! # Commit protocol
//!
//! A commit slot must never claim bytes that are not durable. The committer therefore writes
//! each slot *one sync late*: before syncing a segment up to `end`, it writes a slot naming the
//! end of the *previous* successful sync, and that slot becomes durable with this sync. After a
//! crash, the durable slot's committed length is at most one sync behind the durable records,
//! and recovery finds the records in between by following the chain (see
//! [`crate::recovery`]). A segment is sealed by syncing its records, then writing the sealed
//! slot and syncing the header page; the ring is closed the same way with the clean flag.
//!
//! Syncs are coalesced: every message waiting in the channel is applied before one sync of each
//! dirty segment, which releases every receipt of every batch it covers (group commit). Syncing
//! overlaps with the sequencer writing the next batch.
//!
//! A failed sync poisons the ring: the error is recorded in [`Shared`], every waiting receipt
//! and flush fails with it, and every later one too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, RecvTimeoutError};

use crate::config::Durability;
use crate::error::Error;
use crate::hash::Hash;
use crate::mapped::MappedSegment;
use crate::receipt::{Completion, Receipt};
use crate::segment::Slot;
use crate::shared::Shared;

/// What the sequencer tells the committer, in order.
pub(crate) enum CommitMsg {
    /// A segment became active with this (already written) activation slot.
    Activated { seg: Arc<MappedSegment>, slot: Slot },
    /// Records up to `end` of segment `number` are written, the last being `last_seq` with chain
    /// hash `head`. `receipts` and `flushes` wait for them to be durable; `force` asks for a sync
    /// now even under a periodic policy.
    Written {
        number: u64,
        end: u64,
        last_seq: u64,
        head: Hash,
        receipts: Vec<(Completion, Receipt)>,
        flushes: Vec<Completion>,
        force: bool,
    },
    /// Segment `number` is full at `end`: make it durable and seal it.
    Seal {
        number: u64,
        end: u64,
        last_seq: u64,
        head: Hash,
    },
    /// The ring is closing; the last `Written` describes the active segment's final state.
    /// Sync everything, mark it clean, and stop.
    Close,
}

/// The committer's view of one segment.
struct Segment {
    seg: Arc<MappedSegment>,
    /// The newest slot written to the mapping (durable once a sync follows it).
    slot: Slot,
    /// Written by the sequencer, not yet necessarily synced.
    written: (u64, u64, Hash),
    /// Synced: `(end, last_seq, head)`.
    synced: (u64, u64, Hash),
    /// Sealing requested.
    seal: bool,
    /// Sealed in the page cache only (no durability): synced when the ring closes.
    sealed_in_cache: bool,
}

impl Segment {
    fn dirty_seal(&self) -> bool {
        self.seal && !self.sealed_in_cache
    }

    fn dirty(&self) -> bool {
        !self.sealed_in_cache && (self.written.0 > self.synced.0 || self.seal)
    }

    fn next_slot(
        &self,
        (end, last_seq, head): (u64, u64, Hash),
        sealed: bool,
        clean: bool,
    ) -> Slot {
        Slot {
            generation: self.slot.generation + 1,
            committed_len: end,
            last_seq,
            head,
            sealed,
            clean,
            ..self.slot
        }
    }

    fn write_slot(&mut self, slot: Slot) {
        // SAFETY: after activation, only the committer thread writes this segment's slots.
        unsafe { self.seg.write_slot(&slot) };
        self.slot = slot;
    }

    /// Syncs the segment up to what was written, then seals it if asked.
    fn sync(&mut self) -> std::io::Result<()> {
        // The slot naming the previous sync becomes durable with this one.
        if self.synced.0 > self.slot.committed_len {
            let slot = self.next_slot(self.synced, false, false);
            self.write_slot(slot);
        }
        self.seg.sync(0, self.written.0)?;
        self.synced = self.written;
        if self.seal {
            let slot = self.next_slot(self.synced, true, false);
            self.write_slot(slot);
            self.seg.sync_header()?;
        }
        Ok(())
    }

    /// Writes the sealed slot without syncing ([`Durability::None`]: page cache only until
    /// the ring closes).
    fn seal_in_cache(&mut self) {
        let slot = self.next_slot(self.written, true, false);
        self.write_slot(slot);
        self.sealed_in_cache = true;
    }

    /// Final sync at close: records, then a clean slot (a segment sealed in the page cache
    /// keeps its sealed slot).
    fn close(&mut self) -> std::io::Result<()> {
        if self.sealed_in_cache {
            self.seg.sync(0, self.written.0)?;
            self.synced = self.written;
            return self.seg.sync_header();
        }
        self.seg.sync(0, self.written.0)?;
        self.synced = self.written;
        let slot = self.next_slot(self.synced, false, true);
        self.write_slot(slot);
        self.seg.sync_header()
    }
}

/// The committer's state.
pub(crate) struct Committer {
    shared: Arc<Shared>,
    rx: Receiver<CommitMsg>,
    segments: BTreeMap<u64, Segment>,
    receipts: Vec<(Completion, Receipt)>,
    flushes: Vec<Completion>,
    force: bool,
    closing: bool,
}

impl Committer {
    pub(crate) fn new(shared: Arc<Shared>, rx: Receiver<CommitMsg>) -> Committer {
        Committer {
            shared,
            rx,
            segments: BTreeMap::new(),
            receipts: Vec::new(),
            flushes: Vec::new(),
            force: false,
            closing: false,
        }
    }

    /// Runs until the sequencer closes the channel or sends `Close`. Returns the first error.
    pub(crate) fn run(mut self) -> Result<(), Error> {
        let period = match self.shared.durability {
            Durability::Periodic(d) => Some(d),
            _ => None,
        };
        let mut next_tick = period.map(|p| Instant::now() + p);
        let mut result = Ok(());
        loop {
            let msg = match next_tick {
                Some(t) => match self
                    .rx
                    .recv_timeout(t.saturating_duration_since(Instant::now()))
                {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
                None => match self.rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
            };
            if let Some(m) = msg {
                self.apply(m);
            }
            while let Ok(m) = self.rx.try_recv() {
                self.apply(m);
            }
            let tick = next_tick.is_some_and(|t| Instant::now() >= t);
            if tick {
                next_tick = period.map(|p| Instant::now() + p);
            }
            let sync_now = match self.shared.durability {
                Durability::Batch => true,
                Durability::Periodic(_) => tick || self.force,
                Durability::None => self.force,
            } || self.segments.values().any(Segment::dirty_seal);
            if (sync_now || self.closing)
                && let Err(e) = self.commit()
            {
                result = Err(e);
            }
            if self.closing {
                if let Err(e) = self.close() {
                    result = result.and(Err(e));
                }
                break;
            }
        }
        // Anything still waiting can no longer be made durable.
        let error = self.shared.poison_error().unwrap_or(Error::Closed);
        self.fail_waiters(&error);
        result
    }

    fn apply(&mut self, msg: CommitMsg) {
        match msg {
            CommitMsg::Activated { seg, slot } => {
                let state = (slot.committed_len, slot.last_seq, slot.head);
                self.segments.insert(
                    seg.prefix.number,
                    Segment {
                        seg,
                        slot,
                        written: state,
                        synced: state,
                        seal: false,
                        sealed_in_cache: false,
                    },
                );
            }
            CommitMsg::Written {
                number,
                end,
                last_seq,
                head,
                receipts,
                flushes,
                force,
            } => {
                if let Some(s) = self.segments.get_mut(&number) {
                    s.written = (end, last_seq, head);
                }
                self.receipts.extend(receipts);
                self.flushes.extend(flushes);
                self.force |= force;
            }
            CommitMsg::Seal {
                number,
                end,
                last_seq,
                head,
            } => {
                if let Some(s) = self.segments.get_mut(&number) {
                    s.written = (end, last_seq, head);
                    s.seal = true;
                    if self.shared.durability == Durability::None {
                        s.seal_in_cache();
                    }
                }
            }
            CommitMsg::Close => self.closing = true,
        }
    }

    /// Syncs every dirty segment, oldest first, then releases the waiters.
    fn commit(&mut self) -> Result<(), Error> {
        self.force = false;
        if let Some(e) = self.shared.poison_error() {
            self.fail_waiters(&e);
            return Err(e);
        }
        for s in self.segments.values_mut().filter(|s| s.dirty()) {
            if let Err(e) = s.sync() {
                let error = self.shared.poison(e);
                self.fail_waiters(&error);
                return Err(error);
            }
        }
        self.segments.retain(|_, s| !s.dirty_seal());
        for (ticket, receipt) in self.receipts.drain(..) {
            ticket.complete(Ok(Receipt {
                durable: true,
                ..receipt
            }));
        }
        for ticket in self.flushes.drain(..) {
            ticket.complete(Ok(Receipt {
                seq: 0,
                chain: Hash::ZERO,
                durable: true,
            }));
        }
        Ok(())
    }

    /// Marks the remaining (active) segments clean.
    fn close(&mut self) -> Result<(), Error> {
        if let Some(e) = self.shared.poison_error() {
            return Err(e);
        }
        for s in self.segments.values_mut() {
            if let Err(e) = s.close() {
                return Err(self.shared.poison(e));
            }
        }
        Ok(())
    }

    fn fail_waiters(&mut self, error: &Error) {
        for (ticket, _) in self.receipts.drain(..) {
            ticket.complete(Err(error.clone()));
        }
        for ticket in self.flushes.drain(..) {
            ticket.complete(Err(error.clone()));
        }
    }
}
