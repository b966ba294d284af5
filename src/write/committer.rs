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
//! [`crate::read::recovery`]). A full segment is sealed by syncing its records, then writing the
//! sealed slot and syncing again, through its file: its mapping is released as soon as the
//! sequencer moves on. The ring is closed the same way, with the clean flag.
//!
//! Syncs are coalesced: every message waiting in the channel is applied before one sync of each
//! dirty segment, which releases every receipt of every batch it covers (group commit). Syncing
//! overlaps with the sequencer writing the next batch.
//!
//! A failed sync poisons the ring: the error is recorded in [`Shared`], every waiting receipt
//! and flush fails with it, and every later one too.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use crossbeam::channel::{Receiver, RecvTimeoutError};

use crate::error::Error;
use crate::format::hash::Hash;
use crate::format::segment::{SLOT_LEN, Slot, slot_offset};
use crate::storage::SegmentFile;
use crate::storage::mapped::MappedSegment;
use crate::sys::wake::WakeSet;
use crate::write::config::Durability;
use crate::write::receipt::{self, Completion, Receipt};
use crate::write::sealing::SealWritten;
use crate::write::shared::Shared;
use crate::write::tree::TreeMsg;

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
    /// Retention pruned these files from the log: once everything written so far (the prune
    /// record included) is synced, remove them and complete the record's receipt.
    Prune {
        files: Vec<String>,
        record: (Completion, Receipt),
    },
    /// The sequencer wrote a seal record (forward-secure sealing): once everything written so
    /// far is synced, replace the state file with the next epoch's key.
    SealWritten(SealWritten),
    /// The ring is closing; the last `Written` describes the active segment's final state.
    /// Sync everything, mark it clean, and stop.
    Close,
}

/// The committer's view of a segment the sequencer is writing.
struct Active {
    seg: Arc<MappedSegment>,
    /// The newest slot written to the mapping (durable once a sync follows it).
    slot: Slot,
    /// Written by the sequencer, not yet necessarily synced: `(end, last_seq, head)`.
    written: (u64, u64, Hash),
    /// Synced: `(end, last_seq, head)`.
    synced: (u64, u64, Hash),
}

impl Active {
    fn dirty(&self) -> bool {
        self.written.0 > self.synced.0
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

    /// Syncs the segment up to what was written.
    fn sync(&mut self) -> io::Result<()> {
        // The slot naming the previous sync becomes durable with this one.
        if self.synced.0 > self.slot.committed_len {
            let slot = self.next_slot(self.synced, false, false);
            self.write_slot(slot);
        }
        self.seg.sync(0, self.written.0)?;
        self.seg.check_unchanged()?;
        self.synced = self.written;
        Ok(())
    }

    /// Final sync at close: records, then a clean slot.
    fn close(&mut self) -> io::Result<()> {
        self.seg.sync(0, self.written.0)?;
        self.synced = self.written;
        let slot = self.next_slot(self.synced, false, true);
        self.write_slot(slot);
        self.seg.sync_header()?;
        self.seg.check_unchanged()
    }

    /// The segment is full: keep only what sealing it needs. Its mapping is released here,
    /// so memory does not grow with the number of segments waiting to be sealed.
    fn into_full(self) -> Full {
        let seal = self.next_slot(self.written, true, false);
        Full {
            file: self.seg.file.clone(),
            name: self.seg.name.clone(),
            seal: seal.encode(&self.seg.prefix_digest),
            seal_at: slot_offset(seal.generation),
        }
    }
}

/// A segment the sequencer has filled: sealed through its file, without a mapping.
struct Full {
    file: Arc<dyn SegmentFile>,
    name: String,
    /// The sealed slot's bytes, and where they go.
    seal: [u8; SLOT_LEN],
    seal_at: u64,
}

impl Full {
    /// Writes the sealed slot, without syncing it.
    fn write_seal(&self) -> io::Result<()> {
        self.file.write_at(&self.seal, self.seal_at)
    }

    /// Makes the records durable, then writes the sealed slot and makes it durable.
    fn seal_durably(&self) -> io::Result<()> {
        self.file.sync_all()?;
        self.write_seal()?;
        self.file.sync_all()?;
        self.file.check_in_place()
    }
}

/// The committer's state.
pub(crate) struct Committer {
    shared: Arc<Shared>,
    rx: Receiver<CommitMsg>,
    /// Segments being written (normally one; two around a rotation).
    active: BTreeMap<u64, Active>,
    /// Full segments to seal at the next commit (durable policies).
    full: Vec<Full>,
    /// Full segments sealed in the page cache only ([`Durability::None`]), synced at close.
    unsynced: Vec<String>,
    receipts: Vec<(Completion, Receipt)>,
    flushes: Vec<Completion>,
    /// Files to remove after the next sync, and the receipt of the record that says so.
    prunes: Vec<(Vec<String>, (Completion, Receipt))>,
    /// The newest seal written and not yet synced: its state file is replaced after the sync.
    seal: Option<SealWritten>,
    force: bool,
    closing: bool,
    /// The tree worker, told how far the records are synced and which segments are sealed.
    /// Dropped when the committer ends, which tells the worker the ring is closing.
    tree: Option<crossbeam::channel::Sender<TreeMsg>>,
    /// The last seq of the records written so far (from `Written` messages).
    written_seq: u64,
    /// Segments sealed since the tree worker was last told: their last seqs.
    sealed: Vec<u64>,
}

impl Committer {
    pub(crate) fn new(
        shared: Arc<Shared>,
        rx: Receiver<CommitMsg>,
        tree: Option<crossbeam::channel::Sender<TreeMsg>>,
    ) -> Committer {
        Committer {
            shared,
            rx,
            tree,
            written_seq: 0,
            sealed: Vec::new(),
            active: BTreeMap::new(),
            full: Vec::new(),
            unsynced: Vec::new(),
            receipts: Vec::new(),
            flushes: Vec::new(),
            prunes: Vec::new(),
            seal: None,
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
        // The interval is bounded at open (`MAX_SYNC_INTERVAL`); should the clock still not reach
        // that far, there is no tick: syncs happen when forced and at close.
        let next = || period.and_then(|p| Instant::now().checked_add(p));
        let mut next_tick = next();
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
                next_tick = next();
            }
            let sync_now = match self.shared.durability {
                Durability::Batch => true,
                Durability::Periodic(_) => tick || self.force,
                Durability::None => self.force,
            } || !self.full.is_empty();
            let committed = if sync_now || self.closing {
                let committed = self.commit();
                if let Err(e) = &committed {
                    result = Err(e.clone());
                }
                committed.is_ok()
            } else {
                false
            };
            if self.closing {
                match self.close() {
                    Ok(()) => self.tell_tree(true),
                    Err(e) => result = result.and(Err(e)),
                }
                break;
            }
            self.tell_tree(committed);
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
                self.active.insert(
                    seg.prefix.number,
                    Active {
                        seg,
                        slot,
                        written: state,
                        synced: state,
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
                if let Some(s) = self.active.get_mut(&number) {
                    s.written = (end, last_seq, head);
                }
                self.written_seq = self.written_seq.max(last_seq);
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
                self.sealed.push(last_seq);
                if let Some(mut s) = self.active.remove(&number) {
                    s.written = (end, last_seq, head);
                    let full = s.into_full();
                    if self.shared.durability == Durability::None {
                        // Page cache only: sealed now, synced at close. Only its name is kept,
                        // so that not even a descriptor per segment outlives it.
                        if let Err(e) = full.write_seal() {
                            let error = self.shared.poison(e);
                            self.fail_waiters(&error);
                        }
                        self.unsynced.push(full.name);
                    } else {
                        self.full.push(full);
                    }
                }
            }
            CommitMsg::Prune { files, record } => {
                self.unsynced.retain(|n| !files.contains(n));
                self.prunes.push((files, record));
                self.force = true;
            }
            CommitMsg::SealWritten(seal) => {
                // A newer seal's state supersedes an older one's: both seals are synced first.
                self.seal = Some(seal);
                self.force = true;
            }
            CommitMsg::Close => self.closing = true,
        }
    }

    /// Tells the tree worker what is committed: with `committed`, every record written so far
    /// (just synced); and the segments sealed. (Under [`Durability::None`] the worker follows
    /// the published head instead.)
    fn tell_tree(&mut self, committed: bool) {
        let Some(tree) = &self.tree else {
            return;
        };
        for last_seq in self.sealed.drain(..) {
            let _ = tree.send(TreeMsg::Sealed(last_seq));
        }
        if committed {
            let _ = tree.send(TreeMsg::Committed(self.written_seq));
        }
    }

    /// Seals the full segments and syncs every dirty one, oldest first, then releases the
    /// waiters.
    fn commit(&mut self) -> Result<(), Error> {
        self.force = false;
        if let Some(e) = self.shared.poison_error() {
            self.fail_waiters(&e);
            return Err(e);
        }
        // A prune record must not be durable before the segments between the pruned ones and
        // it: sync everything first.
        let mut synced = if self.prunes.is_empty() && self.seal.is_none() {
            Ok(())
        } else {
            self.sync_unsynced()
        };
        for f in std::mem::take(&mut self.full) {
            synced = synced.and_then(|()| f.seal_durably());
        }
        for s in self.active.values_mut().filter(|s| s.dirty()) {
            synced = synced.and_then(|()| s.sync());
        }
        if let Err(e) = synced {
            let error = self.shared.poison(e);
            self.fail_waiters(&error);
            return Err(error);
        }
        // Every waiter this sync releases wakes with one system call (see `crate::sys::wake`).
        let mut wakes = WakeSet::new();
        for (ticket, receipt) in self.receipts.drain(..) {
            let receipt = Receipt {
                durable: true,
                ..receipt
            };
            ticket.complete_into(Ok(receipt), &mut wakes);
        }
        for ticket in self.flushes.drain(..) {
            let done = Receipt {
                seq: 0,
                chain: Hash::ZERO,
                durable: true,
            };
            ticket.complete_into(Ok(done), &mut wakes);
        }
        wakes.wake();
        self.remove_pruned();
        self.persist_seal()
    }

    /// Replaces the sealing state file with the next epoch's key, now that the seal record
    /// that ended the epoch is durable. A failure poisons the ring: it must not go on sealing
    /// while the old key stays on disk.
    fn persist_seal(&mut self) -> Result<(), Error> {
        let Some(seal) = self.seal.take() else {
            return Ok(());
        };
        seal.next.persist(&seal.path).map_err(|e| {
            let error = self.shared.poison(io::Error::other(e.to_string()));
            self.fail_waiters(&error);
            error
        })
    }

    /// Removes the files of prune records now durable.
    fn remove_pruned(&mut self) {
        let storage = self.shared.storage.clone();
        for (files, (ticket, receipt)) in self.prunes.drain(..) {
            let removed = files
                .iter()
                .try_for_each(|name| match storage.remove(name) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(Error::io(
                        format!("removing {}", storage.location().join(name).display()),
                        e,
                    )),
                    _ => Ok(()),
                });
            ticket.complete(removed.map(|()| Receipt {
                durable: true,
                ..receipt
            }));
        }
    }

    /// Syncs the segments sealed in the page cache ([`Durability::None`]).
    fn sync_unsynced(&mut self) -> io::Result<()> {
        let storage = self.shared.storage.clone();
        for name in std::mem::take(&mut self.unsynced) {
            let synced = storage.open(&name, true).and_then(|f| f.sync_all());
            if let Err(e) = synced {
                return Err(io::Error::new(
                    e.kind(),
                    format!("syncing {}: {e}", storage.location().join(&name).display()),
                ));
            }
        }
        Ok(())
    }

    /// Syncs the segments sealed in the page cache, and marks the active ones clean.
    fn close(&mut self) -> Result<(), Error> {
        if let Some(e) = self.shared.poison_error() {
            return Err(e);
        }
        if let Err(e) = self.sync_unsynced() {
            return Err(self.shared.poison(e));
        }
        for s in self.active.values_mut() {
            if let Err(e) = s.close() {
                return Err(self.shared.poison(e));
            }
        }
        Ok(())
    }

    fn fail_waiters(&mut self, error: &Error) {
        let tickets = (self.receipts.drain(..).map(|(t, _)| t))
            .chain(self.flushes.drain(..))
            .chain(self.prunes.drain(..).map(|(_, (t, _))| t));
        receipt::fail_all(tickets, error);
    }
}
