//! The sequencer thread: the only writer of records.
//!
//! It pops events from the queue in batches of up to `max_batch`, and for each one assigns the
//! next sequence number, computes the chain hash (one SHA-256 over 72 bytes; the leaf hash was
//! computed by the producer), and copies the record into the active mapped segment. After a
//! batch it publishes the new head to snapshots with one atomic pointer swap, and hands the
//! batch's receipts to the committer (or, with no durability, completes them itself).
//!
//! When a record does not fit in the active segment, the sequencer asks the committer to seal it
//! and switches to the next segment, which the preparer created and faulted in ahead of time. If
//! the next segment cannot be created (a full disk, a directory where the file should go), the
//! ring *stalls*. The sequencer moves the event that did not fit into a backlog, makes new pushes
//! fail with the error (handing their events back), and, while it retries, takes whatever is
//! still queued: events join the backlog in queue order, flush markers and prune records fail at
//! once with the stall's error, so that `flush` returns promptly instead of waiting for space.
//! When a segment can be created again, the backlog is written first, in order. If the ring is
//! closed while stalled, one last attempt is made; if it fails too, the backlog's events are
//! decoded back into [`Event`]s and handed to [`Ring::close`](crate::Ring::close) in
//! [`Error::Unwritten`]: an event whose push returned `Ok` is written or handed back, never
//! dropped.
//!
//! Retention ([`crate::write::retention`]) talks to the sequencer twice: it is told after every
//! rotation, and it may hold the log at its size (the sequencer then starts no new segment for
//! an event until released or closed, and the queue fills). Its prune records travel through
//! the queue like events; the sequencer writes one, drops the pruned segments from the view,
//! and has the committer remove their files once the record is synced.
//!
//! With [sealing](crate::write::sealing), the sequencer also writes the seal records itself,
//! between batches: it alone knows the seq and the chain hash a seal's MAC covers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender};
use crossbeam::utils::Backoff;

use crate::error::Error;
use crate::format::event::Event;
use crate::format::hash::{Hash, chain_hash};
use crate::format::segment::{
    INDEX_ENTRY_LEN, INDEX_STRIDE, RECORD_HEADER_LEN, RecordHeader, index_entry_offset, record_len,
};
use crate::read::published::{Published, SegmentEntry, SegmentInfo};
use crate::read::recovery::{ChainState, LogStart, activation_slot};
use crate::storage::mapped::MappedSegment;
use crate::sys::wake::WakeSet;
use crate::write::committer::CommitMsg;
use crate::write::config::Durability;
use crate::write::item::{Encoded, Item, Prune};
use crate::write::preparer::{PREFAULT_AHEAD, PrepMsg, RELEASE_STEP};
use crate::write::queue::{Consumer, Pop};
use crate::write::receipt::{self, Completion, Receipt};
use crate::write::retention::worker::Wake;
use crate::write::sealing::{SealWritten, Sealer};
use crate::write::shared::Shared;
use crate::write::staging::{RecordWrites, Staging};

/// Times the sequencer yields, on finding the queue empty, before it parks.
const IDLE_YIELDS: u32 = 4;

/// How far past the record it writes the sequencer prefetches the segment (a few typical
/// records; see `crate::sys::prefetch`).
const WRITE_PREFETCH_AHEAD: u64 = 1024;

/// Under [`RecordWrites::Buffered`], the most bytes of records the sequencer gathers before it
/// writes them, even within a batch: its buffer stays under this plus one record.
const STAGING_FLUSH_AT: usize = 1 << 20;

/// How long the sequencer sleeps between looks while retention holds the log at its size (it is
/// also woken when released).
const HELD_RECHECK: Duration = Duration::from_millis(100);

/// How long a stalled sequencer first waits before trying to create a segment again; the wait
/// doubles with each failure, up to [`STALL_RETRY_MAX`].
const STALL_RETRY: Duration = Duration::from_millis(1);
const STALL_RETRY_MAX: Duration = Duration::from_millis(250);

/// Whether an event can be written, from [`Sequencer::make_room`].
enum Room {
    /// It fits in the active segment.
    Made,
    /// The ring can write no more (poisoned): its receipt was failed.
    Failed,
    /// No segment could be created for it: it waits in the backlog.
    Stalled,
    /// It is larger than a whole segment's data region, so no segment can take it: its
    /// receipt was failed with this error, and nothing else changed.
    TooLarge(Error),
}

/// The segment being written.
struct Active {
    seg: Arc<MappedSegment>,
    /// Seq of its first record.
    first_seq: u64,
    /// Chain hash before its first record.
    anchor: Hash,
    /// Where the next record goes.
    write_off: u64,
    /// Faulting in has been requested up to here.
    prefaulted: u64,
    /// Releasing the pages of written records has been requested up to here.
    released: u64,
    /// The records written since the last flush, under [`RecordWrites::Buffered`]; `None`
    /// under [`RecordWrites::Mapped`], where they are stored through the mapping.
    staging: Option<Staging>,
}

impl Active {
    /// Puts `bytes` at `offset` of the segment: into the staging buffer under
    /// [`RecordWrites::Buffered`], through the mapping under [`RecordWrites::Mapped`].
    ///
    /// # Safety
    ///
    /// Only the sequencer calls it, for bytes past the published end of the segment (see
    /// [`MappedSegment::write`]).
    unsafe fn put(&mut self, offset: u64, bytes: &[u8]) {
        match &mut self.staging {
            Some(staging) => staging.write(offset, bytes),
            // SAFETY: forwarded from the caller.
            None => unsafe { self.seg.write(offset, bytes) },
        }
    }
}

/// Everything the sequencer thread owns.
pub(crate) struct Sequencer {
    pub(crate) shared: Arc<Shared>,
    pub(crate) max_batch: usize,
    /// The log's identity, its first seq and the chain hash before it (published with every
    /// view; a prune moves the first seq and the anchor).
    start: LogStart,
    /// The last record written.
    pub(crate) head_seq: u64,
    pub(crate) head: Hash,
    active: Active,
    /// Every segment; the last is the active one.
    segments: Vec<Arc<SegmentEntry>>,
    published_segments: Arc<[Arc<SegmentEntry>]>,
    committer: Sender<CommitMsg>,
    prep: Sender<PrepMsg>,
    prepared: Receiver<Result<Arc<MappedSegment>, Error>>,
    spare_requested: bool,
    /// Receipts and flushes of the current batch.
    receipts: Vec<(Completion, Receipt)>,
    flushes: Vec<Completion>,
    /// Prune records of the current batch: the files to remove once they are synced.
    prunes: Vec<(Vec<String>, (Completion, Receipt))>,
    /// Told after every rotation, if a retention policy is set.
    rotated: Option<Sender<Wake>>,
    /// Set once the sequencer can no longer write (poisoned, or stalled at close).
    failure: Option<Error>,
    /// Why the ring is stalled, while it is: no segment could be created for the first event
    /// of `backlog`.
    stall: Option<Error>,
    /// Events taken from the queue while stalled, in queue order, the one that did not fit
    /// first; empty unless `stall` is set. Only `Item::Event`s: markers fail at once.
    backlog: VecDeque<Item>,
    /// The events of a backlog given up at close, decoded, in push order.
    unwritten: Vec<Event>,
    /// Threads to join at shutdown.
    helpers: Vec<JoinHandle<Result<(), Error>>>,
    /// With sealing: when to seal, and the current epoch's key.
    sealer: Option<Sealer>,
    /// Seals written in the current batch, for the committer.
    seals: Vec<SealWritten>,
    /// The head seq at which a seal is due by count: a batch ends there (`u64::MAX` without).
    seal_due_at: u64,
}

/// What [`Sequencer::new`] needs.
pub(crate) struct Start {
    pub(crate) shared: Arc<Shared>,
    pub(crate) max_batch: usize,
    pub(crate) record_writes: RecordWrites,
    /// Where the chain stands, from recovery.
    pub(crate) chain: ChainState,
    pub(crate) committer: Sender<CommitMsg>,
    pub(crate) prep: Sender<PrepMsg>,
    pub(crate) prepared: Receiver<Result<Arc<MappedSegment>, Error>>,
    pub(crate) rotated: Option<Sender<Wake>>,
    pub(crate) helpers: Vec<JoinHandle<Result<(), Error>>>,
    pub(crate) sealer: Option<Sealer>,
}

impl Sequencer {
    pub(crate) fn new(s: Start) -> Sequencer {
        let chain = s.chain;
        let published_segments: Arc<[Arc<SegmentEntry>]> = chain.segments.clone().into();
        Sequencer {
            shared: s.shared,
            max_batch: s.max_batch,
            start: chain.start,
            head_seq: chain.head_seq,
            head: chain.head,
            active: Active {
                seg: chain.active,
                first_seq: chain.active_slot.first_seq,
                anchor: chain.active_slot.anchor,
                write_off: chain.write_off,
                prefaulted: chain.write_off,
                released: chain.write_off,
                staging: match s.record_writes {
                    RecordWrites::Buffered => {
                        let mut staging = Staging::default();
                        staging.restart(chain.write_off);
                        Some(staging)
                    }
                    RecordWrites::Mapped => None,
                },
            },
            segments: chain.segments,
            published_segments,
            committer: s.committer,
            prep: s.prep,
            prepared: s.prepared,
            spare_requested: false,
            receipts: Vec::new(),
            flushes: Vec::new(),
            prunes: Vec::new(),
            rotated: s.rotated,
            failure: None,
            stall: None,
            backlog: VecDeque::new(),
            unwritten: Vec::new(),
            helpers: s.helpers,
            seal_due_at: s.sealer.as_ref().map_or(u64::MAX, Sealer::due_at_seq),
            sealer: s.sealer,
            seals: Vec::new(),
        }
    }

    /// Runs until the queue is closed and drained, then shuts the helpers down. Returns the
    /// first error that made events undurable or unwritten.
    pub(crate) fn run(mut self, mut consumer: Consumer<Item>) -> Result<(), Error> {
        consumer.register_thread();
        self.maybe_prefault();
        // Records the last ring left unsealed are sealed before anything else.
        if self.seal_if_due(true) {
            self.end_batch();
        }
        // Times in a row the queue was found empty.
        let mut idle = 0;
        loop {
            if self.stall.is_some() && !self.ride_out_stall(&mut consumer) {
                break;
            }
            let mut taken = 0;
            let mut closed = false;
            let pending = Backoff::new();
            while taken < self.max_batch && self.stall.is_none() && self.head_seq < self.seal_due_at
            {
                // Each event is read in its queue slot and copied straight into the segment.
                match consumer.pop_with(|item| self.take_or_defer(item)) {
                    Pop::Item(()) => taken += 1,
                    Pop::Pending => pending.snooze(),
                    Pop::Empty => break,
                    Pop::Closed => {
                        closed = true;
                        break;
                    }
                }
            }
            let sealed = self.seal_if_due(closed);
            if taken > 0 || sealed {
                self.end_batch();
                idle = 0;
            }
            if closed && self.stall.is_none() {
                break;
            }
            if taken == 0 && self.stall.is_none() {
                // Give the CPU to the producers a few times before parking: parking costs the
                // next producer a wake-up system call, and spinning would take the CPU they need
                // (measured on two cores; see PERFORMANCE.md).
                if idle < IDLE_YIELDS {
                    idle += 1;
                    thread::yield_now();
                } else {
                    // With sealing, unsealed records wake it when a seal is due by time.
                    let limit = (self.sealer.as_ref()).and_then(|s| s.idle_limit(self.head_seq));
                    consumer.wait(limit);
                    idle = 0;
                }
            }
        }
        self.shutdown()
    }

    /// [`Sequencer::take`] for an item in its queue slot: one the stall leaves unwritten moves
    /// to the end of the backlog.
    fn take_or_defer(&mut self, item: &mut Item) {
        if !self.take(item) {
            self.backlog
                .push_back(std::mem::replace(item, Item::Flush(None)));
        }
    }

    /// Writes an event, or completes a marker. Returns false, leaving the item as it was, for an
    /// event that cannot be written because the ring is stalled.
    fn take(&mut self, item: &mut Item) -> bool {
        if let Some(e) = &self.stall {
            // Stalled: a marker cannot wait for the events before it; an event waits.
            match item {
                Item::Flush(t) => receipt::fail_all(t.take(), e),
                Item::Prune(p) => receipt::fail_all(p.record.ticket.take(), e),
                Item::Event(_) => return false,
            }
            return true;
        }
        let event = match item {
            Item::Flush(t) => {
                self.flushes.extend(t.take());
                return true;
            }
            Item::Prune(p) => {
                self.prune(p);
                return true;
            }
            Item::Event(e) => e,
        };
        // Retention may hold the log at its size: events wait, its own records do not.
        match self.make_room(event, true) {
            Room::Made => self.write(event),
            Room::Failed | Room::TooLarge(_) => {}
            Room::Stalled => return false,
        }
        true
    }

    /// Makes room for `event` in the active segment, rotating if needed. On a failure,
    /// completes its receipt with the error; on a stall, leaves it as it is.
    fn make_room(&mut self, event: &mut Encoded, held: bool) -> Room {
        // (One atomic load per event; the error itself is fetched only once poisoned.)
        if self.failure.is_none() && self.shared.is_poisoned() {
            self.failure = self.shared.poison_error();
        }
        if self.failure.is_none() {
            let total = record_len(event.body.as_slice().len()) as u64;
            // Every segment of a ring has the same size. The builder bounds events to fit, and
            // retention bounds its prune records; this is the guard that no record is ever
            // written past the end of a segment, whoever made it.
            let p = &self.active.seg.prefix;
            if total > p.file_len - p.data_offset {
                let e = Error::io(
                    format!("writing a record to {}", self.active.seg.name),
                    std::io::Error::other(format!(
                        "the record is {total} bytes, and a segment of {} bytes holds at most {}",
                        p.file_len,
                        p.file_len - p.data_offset
                    )),
                );
                if let Some(t) = event.ticket.take() {
                    t.complete(Err(e.clone()));
                }
                return Room::TooLarge(e);
            }
            if self.active.write_off + total > self.active.seg.prefix.file_len {
                if held {
                    self.wait_while_held();
                }
                if let Err(e) = self.rotate() {
                    self.stall = Some(e);
                    return Room::Stalled;
                }
            }
        }
        match &self.failure {
            None => Room::Made,
            Some(e) => {
                if let Some(t) = event.ticket.take() {
                    t.complete(Err(e.clone()));
                }
                Room::Failed
            }
        }
    }

    /// While stalled: takes what is queued (see the module's documentation) and retries the
    /// segment, backing off, until it can be created, then writes the backlog. Returns false
    /// if the ring was closed while the segment still could not be created: the backlog is
    /// then in `unwritten`, and `failure` says why.
    fn ride_out_stall(&mut self, consumer: &mut Consumer<Item>) -> bool {
        // What was written before the stall is published and on its way to the disk.
        self.end_batch();
        let mut retry = STALL_RETRY;
        loop {
            let mut closed = false;
            let pending = Backoff::new();
            loop {
                match consumer.pop_with(|item| self.take_or_defer(item)) {
                    Pop::Item(()) => {}
                    Pop::Pending => pending.snooze(),
                    Pop::Empty => break,
                    Pop::Closed => {
                        closed = true;
                        break;
                    }
                }
            }
            match self.rotate() {
                Ok(()) => {
                    self.stall = None;
                    if self.write_backlog() {
                        return true;
                    }
                    // Stalled again, with more of the backlog to write.
                    retry = STALL_RETRY;
                }
                Err(e) => {
                    self.stall = Some(e);
                    if closed {
                        self.give_up_backlog();
                        return false;
                    }
                    consumer.wait(Some(retry));
                    retry = (retry * 2).min(STALL_RETRY_MAX);
                }
            }
        }
    }

    /// Writes the backlog in order, a batch at a time. Returns false if the ring stalled again
    /// before the end (the rest stays in the backlog).
    fn write_backlog(&mut self) -> bool {
        let mut in_batch = 0;
        while let Some(mut item) = self.backlog.pop_front() {
            if !self.take(&mut item) {
                self.backlog.push_front(item);
                self.end_batch();
                return false;
            }
            in_batch += 1;
            if in_batch == self.max_batch {
                self.end_batch();
                in_batch = 0;
            }
        }
        self.end_batch();
        self.shared.unstall();
        true
    }

    /// Closed while stalled: the backlog's events are handed back, their receipts failed.
    fn give_up_backlog(&mut self) {
        let stall = self.stall.take().expect("stalled");
        // A failed sync meanwhile says more than the stall: it wins.
        let error = self.shared.poison_error().unwrap_or(stall);
        let mut tickets = Vec::new();
        for item in self.backlog.drain(..) {
            if let Item::Event(mut e) = item {
                tickets.extend(e.ticket.take());
                self.unwritten.push(Event::from_body(e.body.as_slice()));
            }
        }
        receipt::fail_all(tickets, &error);
        self.failure = Some(error);
    }

    /// Waits while retention holds the log at its size, publishing first what is written so
    /// that readers and exports see it. A closed ring is never held: it drains.
    fn wait_while_held(&mut self) {
        if !self.shared.retention_blocked() {
            return;
        }
        self.end_batch();
        while self.shared.retention_blocked() && !self.shared.queue.is_closed() {
            thread::park_timeout(HELD_RECHECK);
        }
    }

    /// Writes a seal record if one is due (any unsealed record is, with `now`). Returns whether
    /// it wrote one. Not while stalled or failed: the records stay unsealed until a later seal.
    fn seal_if_due(&mut self, now: bool) -> bool {
        let Some(mut sealer) = self.sealer.take() else {
            return false;
        };
        let wrote = self.stall.is_none()
            && self.failure.is_none()
            && sealer.due(self.head_seq, now)
            && self.write_seal(&mut sealer);
        if self.failure.is_some() || self.shared.is_poisoned() {
            // A ring that can no longer write seals no more: batches must not stop at the
            // count any longer, or the queue would never be drained.
            self.seal_due_at = u64::MAX;
        }
        self.sealer = Some(sealer);
        wrote
    }

    /// Writes the seal record of the next seq, evolves the key, and keeps what the committer
    /// persists once the record is durable. Returns false if it could not be written (a stall,
    /// which the run loop rides out with nothing in the backlog, or a failure).
    fn write_seal(&mut self, sealer: &mut Sealer) -> bool {
        let mut record = match sealer.record(self.head_seq + 1, &self.head) {
            Ok(record) => record,
            Err(e) => {
                let _ = self.shared.poison(std::io::Error::other(e.to_string()));
                return false;
            }
        };
        if !matches!(self.make_room(&mut record, false), Room::Made) {
            return false;
        }
        self.write(&mut record);
        self.seals.push(sealer.written(self.head_seq));
        self.seal_due_at = sealer.due_at_seq();
        true
    }

    /// Writes a prune record and drops the segments it prunes from the view. Their files are
    /// removed by the committer once the record is synced.
    fn prune(&mut self, p: &mut Prune) {
        let Some(ticket) = p.record.ticket.take() else {
            return;
        };
        // The pruned segments must be the oldest ones, all sealed, and the log must go on
        // exactly where they end.
        let k = self
            .segments
            .iter()
            .take_while(|e| e.number <= p.last_segment)
            .count();
        let storage = &*self.shared.storage;
        let continues = k > 0
            && k < self.segments.len()
            && self.segments[k]
                .info(storage)
                .is_ok_and(|i| i.first_seq == p.first_seq && i.anchor == p.anchor);
        if !continues {
            ticket.complete(Err(Error::io(
                "pruning",
                std::io::Error::other("the segments to prune are no longer the oldest ones"),
            )));
            return;
        }
        match self.make_room(&mut p.record, false) {
            Room::Made => {}
            Room::TooLarge(error) => {
                ticket.complete(Err(error));
                return;
            }
            Room::Failed | Room::Stalled => {
                // A stall stays set (the run loop rides it out, with nothing in the backlog),
                // so that the ring's health is restored once a segment can be created again.
                let error =
                    (self.stall.clone().or_else(|| self.failure.clone())).unwrap_or(Error::Closed);
                ticket.complete(Err(error));
                return;
            }
        }
        self.write(&mut p.record);
        let files = self.segments.drain(..k).map(|e| e.name.clone()).collect();
        self.published_segments = self.segments.clone().into();
        self.start.first_seq = p.first_seq;
        self.start.anchor = p.anchor;
        self.prunes.push((files, (ticket, self.head_receipt())));
    }

    /// Appends one record to the active segment.
    fn write(&mut self, event: &mut Encoded) {
        let a = &mut self.active;
        let body = event.body.as_slice();
        let total = record_len(body.len()) as u64;
        let off = a.write_off;
        debug_assert!(off + total <= a.seg.prefix.file_len);
        debug_assert_eq!(off % 8, 0);
        let seq = self.head_seq + 1;
        let pad = total as usize - RECORD_HEADER_LEN - body.len();
        // The body first: its copy does not depend on the chain hash, so the CPU can do it
        // while the hash's dependent rounds run.
        let body_at = off + RECORD_HEADER_LEN as u64;
        // SAFETY: `[off, off + total)` lies past the published end of the active segment, where
        // only the sequencer writes and no reader reads (see `crate::storage::mapped`).
        unsafe {
            a.put(body_at, body);
            a.put(body_at + body.len() as u64, &[0u8; 8][..pad]);
        }
        if a.staging.is_none() {
            // Where the records a few events from now will go.
            a.seg.prefetch(off + WRITE_PREFETCH_AHEAD, total as usize);
        }
        let chain = chain_hash(&self.head, seq, &event.leaf);
        let header = RecordHeader {
            body_len: body.len() as u32,
            seq,
            leaf: event.leaf,
            chain,
        };
        // SAFETY: as above.
        unsafe { a.put(off, &header.encode()) };
        let k = seq - a.first_seq;
        if k.is_multiple_of(INDEX_STRIDE) {
            let entry = index_entry_offset(k / INDEX_STRIDE);
            debug_assert!(entry + INDEX_ENTRY_LEN <= a.seg.prefix.data_offset);
            // SAFETY: index entries of records not yet published are written only here.
            unsafe { a.seg.write(entry, &(off as u32).to_le_bytes()) };
        }
        a.write_off = off + total;
        self.head_seq = seq;
        self.head = chain;
        if let Some(t) = event.ticket.take() {
            self.receipts.push((
                t,
                Receipt {
                    seq,
                    chain,
                    durable: false,
                },
            ));
        }
        // A batch of large events would otherwise gather in memory whole (up to `max_batch`
        // times the maximum event size): past this, what is gathered goes to the file now.
        // Bytes in the file past the published end are allowed (readers never read there), so
        // this changes only when the bytes reach the page cache, not what is published when.
        if self
            .active
            .staging
            .as_ref()
            .is_some_and(|s| s.pending() >= STAGING_FLUSH_AT)
        {
            self.flush_staging();
        }
    }

    /// Writes the records gathered under [`RecordWrites::Buffered`] to the active segment's
    /// file. A failure poisons the ring, as a failed sync does: the records are not in the
    /// file, and none of them is published or acknowledged.
    fn flush_staging(&mut self) {
        let a = &mut self.active;
        let Some(staging) = &mut a.staging else {
            return;
        };
        if let Err(e) = staging.flush(&a.seg) {
            let error = self.shared.poison(std::io::Error::new(
                e.kind(),
                format!(
                    "writing {} bytes of records to {}: {e}",
                    staging.pending(),
                    a.seg.name
                ),
            ));
            self.failure.get_or_insert(error);
        }
    }

    /// Publishes the batch and hands its receipts on.
    fn end_batch(&mut self) {
        self.flush_staging();
        if self.failure.is_none() {
            self.shared.published.store(Arc::new(self.view()));
        }
        self.maybe_prefault();
        self.maybe_request_spare();
        let receipts = std::mem::take(&mut self.receipts);
        let flushes = std::mem::take(&mut self.flushes);
        let prunes = std::mem::take(&mut self.prunes);
        let seals = std::mem::take(&mut self.seals);
        if let Some(e) = &self.failure {
            // The view no longer holds the pruned segments, but their files stay: reopening
            // finds them and retention prunes them again.
            let tickets = (receipts.into_iter().map(|(t, _)| t))
                .chain(flushes)
                .chain(prunes.into_iter().map(|(_, (t, _))| t));
            receipt::fail_all(tickets, e);
            return;
        }
        let written = |receipts, flushes, force| CommitMsg::Written {
            number: self.active.seg.prefix.number,
            end: self.active.write_off,
            last_seq: self.head_seq,
            head: self.head,
            receipts,
            flushes,
            force,
        };
        match self.shared.durability {
            Durability::None => {
                let mut wakes = WakeSet::new();
                for (t, r) in receipts {
                    t.complete_into(Ok(r), &mut wakes);
                }
                let head = self.head_receipt();
                for t in flushes {
                    t.complete_into(Ok(head), &mut wakes);
                }
                wakes.wake();
                // Prune and seal records are synced whatever the policy.
                if !prunes.is_empty() || !seals.is_empty() {
                    let _ = self.committer.send(written(Vec::new(), Vec::new(), true));
                }
            }
            Durability::Batch | Durability::Periodic(_) => {
                let force = matches!(self.shared.durability, Durability::Batch)
                    || !flushes.is_empty()
                    || !prunes.is_empty()
                    || !seals.is_empty();
                let _ = self.committer.send(written(receipts, flushes, force));
            }
        }
        for (files, record) in prunes {
            let _ = self.committer.send(CommitMsg::Prune { files, record });
        }
        for seal in seals {
            let _ = self.committer.send(CommitMsg::SealWritten(seal));
        }
    }

    fn head_receipt(&self) -> Receipt {
        Receipt {
            seq: self.head_seq,
            chain: self.head,
            durable: false,
        }
    }

    /// The view snapshots see after this batch.
    fn view(&self) -> Published {
        Published {
            storage: self.shared.storage.clone(),
            segments: self.published_segments.clone(),
            first_seq: self.start.first_seq,
            anchor: self.start.anchor,
            head_seq: self.head_seq,
            head: self.head,
            active_end: self.active.write_off,
            log_id: self.start.log_id,
        }
    }

    /// Faults in the whole active segment now (see `RingBuilder::sequencer_start_gate`).
    pub(crate) fn prefault_active(&mut self) {
        let len = self.active.seg.prefix.file_len;
        let _ = self.active.seg.prefault(0, len);
        self.active.prefaulted = len;
    }

    fn maybe_prefault(&mut self) {
        let a = &mut self.active;
        if a.staging.is_some() {
            // Records go in with `pwrite`: no page of the data region is ever mapped in.
            return;
        }
        let len = a.seg.prefix.file_len;
        if a.prefaulted < len && a.write_off + PREFAULT_AHEAD / 2 >= a.prefaulted {
            let to = (a.write_off + PREFAULT_AHEAD).min(len);
            let from = if a.prefaulted <= a.seg.prefix.data_offset {
                0
            } else {
                a.prefaulted
            };
            let _ = self.prep.send(PrepMsg::Prefault {
                seg: a.seg.clone(),
                from,
                to,
            });
            a.prefaulted = to;
        }
        // Behind: the records written are never written again. The page holding the write
        // position is kept (it is being filled). Done here rather than by the preparer, which
        // may be busy creating the next segment: one `madvise` per few MiB, a few nanoseconds a
        // record, and memory stays bounded whatever the preparer's backlog.
        let from = a.released.max(a.seg.prefix.data_offset);
        if a.write_off >= from + RELEASE_STEP {
            let page = crate::storage::PAGE_SIZE as u64;
            let to = a.write_off / page * page;
            // A hint: a failure only means the pages stay mapped until the segment is.
            let _ = a.seg.release(from, to - from);
            a.released = to;
        }
    }

    fn maybe_request_spare(&mut self) {
        let p = &self.active.seg.prefix;
        let used = self.active.write_off - p.data_offset;
        if !self.spare_requested && used > (p.file_len - p.data_offset) / 2 {
            self.request_spare();
        }
    }

    fn request_spare(&mut self) {
        let number = self.active.seg.prefix.number + 1;
        if self.prep.send(PrepMsg::Create { number }).is_ok() {
            self.spare_requested = true;
        }
    }

    /// The next segment, from the preparer (requested now if it was not yet). A failure stalls
    /// the ring: new pushes fail, and the flushes of the current batch fail with the error.
    fn next_segment(&mut self) -> Result<Arc<MappedSegment>, Error> {
        if !self.spare_requested {
            self.request_spare();
        }
        let result = self.prepared.recv().unwrap_or(Err(Error::Closed));
        self.spare_requested = false;
        result.inspect_err(|e| {
            self.shared.stall(e);
            receipt::fail_all(self.flushes.drain(..), e);
        })
    }

    /// Seals the active segment and moves to the next one.
    fn rotate(&mut self) -> Result<(), Error> {
        // The records of the old segment go to its file before it is sealed. If they cannot,
        // the ring is poisoned and nothing is sealed: the caller sees `failure`.
        self.flush_staging();
        if self.failure.is_some() {
            return Ok(());
        }
        let next = self.next_segment()?;
        let old = &self.active;
        // The sequencer writes this segment no more: all of its pages but the header (which
        // the committer may still update) can leave memory, whoever still holds the mapping.
        let _ = self.prep.send(PrepMsg::Release {
            seg: old.seg.clone(),
            from: crate::storage::PAGE_SIZE as u64,
            to: old.seg.prefix.file_len,
        });
        let _ = self.committer.send(CommitMsg::Seal {
            number: old.seg.prefix.number,
            end: old.write_off,
            last_seq: self.head_seq,
            head: self.head,
        });
        let sealed_info = SegmentInfo {
            first_seq: old.first_seq,
            anchor: old.anchor,
            data_offset: old.seg.prefix.data_offset,
            end: Some((self.head_seq, old.write_off)),
        };
        let slot = activation_slot(&next, self.head_seq + 1, self.head);
        // SAFETY: the segment is not shared with any other thread yet (the preparer is done
        // with it), so the sequencer may write its activation slot.
        unsafe { next.write_slot(&slot) };
        let _ = self.committer.send(CommitMsg::Activated {
            seg: next.clone(),
            slot,
        });
        let sealed = SegmentEntry::known(
            old.seg.prefix.number,
            old.seg.name.clone(),
            None,
            sealed_info,
        );
        let active = SegmentEntry::known(
            next.prefix.number,
            next.name.clone(),
            Some(next.file.clone()),
            SegmentInfo {
                first_seq: self.head_seq + 1,
                anchor: self.head,
                data_offset: next.prefix.data_offset,
                end: None,
            },
        );
        *self.segments.last_mut().expect("an active segment") = Arc::new(sealed);
        self.segments.push(Arc::new(active));
        self.published_segments = self.segments.clone().into();
        let mut staging = self.active.staging.take();
        if let Some(staging) = &mut staging {
            staging.restart(next.prefix.data_offset);
        }
        self.active = Active {
            first_seq: self.head_seq + 1,
            anchor: self.head,
            write_off: next.prefix.data_offset,
            prefaulted: next.prefix.data_offset + PREFAULT_AHEAD,
            released: next.prefix.data_offset,
            seg: next,
            staging,
        };
        if let Some(tx) = &self.rotated {
            let _ = tx.send(Wake::Rotated);
        }
        Ok(())
    }

    /// After the queue is closed and drained: final commit, helpers stopped, spare removed.
    fn shutdown(mut self) -> Result<(), Error> {
        self.flush_staging();
        let receipts = std::mem::take(&mut self.receipts);
        let flushes = std::mem::take(&mut self.flushes);
        let _ = self.committer.send(CommitMsg::Written {
            number: self.active.seg.prefix.number,
            end: self.active.write_off,
            last_seq: self.head_seq,
            head: self.head,
            receipts,
            flushes,
            force: true,
        });
        let _ = self.committer.send(CommitMsg::Close);
        drop(self.committer);
        drop(self.rotated.take());
        drop(self.prep);
        let unwritten = std::mem::take(&mut self.unwritten);
        let mut result = match self.failure.take() {
            Some(e) if !unwritten.is_empty() => Err(Error::Unwritten {
                source: Box::new(e),
                events: unwritten.into(),
            }),
            Some(e) => Err(e),
            None => Ok(()),
        };
        for h in self.helpers.drain(..) {
            let joined = h.join().unwrap_or_else(|_| {
                Err(Error::io(
                    "joining a ring thread",
                    std::io::Error::other("the thread panicked"),
                ))
            });
            if let Err(e) = joined {
                result = result.and(Err(e));
            }
        }
        // A segment prepared ahead of time and never used.
        for seg in self.prepared.try_iter().flatten() {
            let name = seg.name.clone();
            drop(seg);
            let _ = self.shared.storage.remove(&name);
        }
        result
    }
}
