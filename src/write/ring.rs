//! The ring: opening a log for writing, its threads, and closing it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crossbeam::channel::{self, Sender};

use crate::error::{Error, PushError, lock_error};
use crate::format::event::Event;
use crate::format::event_ref::EventRef;
use crate::read::recovery::{ChainState, Recovered, RecoveryReport, recover};
use crate::read::snapshot::Snapshot;
use crate::storage::tree::TreeFiles;
use crate::storage::{FsStorage, LockGuard, Storage};
use crate::sys::fork::Opener;
use crate::write::checkpoints::Checkpoints;
use crate::write::committer::{CommitMsg, Committer};
use crate::write::config::{Durability, Options};
use crate::write::item::Item;
use crate::write::panic_hook;
use crate::write::preparer;
use crate::write::producer::Producer;
use crate::write::queue::{Consumer, Queue};
use crate::write::receipt::{PendingReceipt, Receipt};
use crate::write::retention::policy::Retention;
use crate::write::retention::worker::{self, RetentionPass, Wake};
use crate::write::sealing::Sealing;
use crate::write::sequencer::{Sequencer, Start};
use crate::write::shared::Shared;
#[cfg(any(test, feature = "test-support"))]
use crate::write::staging::RecordWrites;
use crate::write::tree::TreeWorker;

/// Where a builder's log lives.
enum Location {
    Dir(PathBuf),
    Storage(Arc<dyn Storage>),
}

/// Options for opening a [`Ring`]; finish with [`RingBuilder::open`].
///
/// ```
/// use auditring::{Durability, Ring};
/// # let dir = tempfile::tempdir().unwrap();
/// let ring = Ring::builder(dir.path().join("audit"))
///     .segment_size(8 << 20)
///     .durability(Durability::Batch)
///     .open()?;
/// ring.close()?;
/// # Ok::<(), auditring::Error>(())
/// ```
#[must_use]
pub struct RingBuilder {
    location: Location,
    options: Options,
    /// See [`RingBuilder::sequencer_start_gate`].
    start_gate: Option<(Arc<std::sync::Barrier>, bool)>,
}

impl RingBuilder {
    /// Size of each segment file (default 64 MiB; a multiple of 4096, 64 KiB to 4 GiB; outside
    /// that, [`RingBuilder::open`] fails with [`Error::Config`]).
    pub fn segment_size(mut self, bytes: u64) -> RingBuilder {
        self.options.segment_size = bytes;
        self
    }

    /// Capacity of the queue between producers and the sequencer, in events: 1 to
    /// [`MAX_QUEUE_CAPACITY`](crate::MAX_QUEUE_CAPACITY) (default 16384). The whole queue is
    /// allocated and written at open, [`QUEUE_SLOT_BYTES`](crate::QUEUE_SLOT_BYTES) bytes a
    /// slot (4.5 MiB for the default, 288 MiB for the maximum); outside the range,
    /// [`RingBuilder::open`] fails with [`Error::Config`].
    pub fn queue_capacity(mut self, events: usize) -> RingBuilder {
        self.options.queue_capacity = events;
        self
    }

    /// When events are synced (default [`Durability::None`]).
    pub fn durability(mut self, durability: Durability) -> RingBuilder {
        self.options.durability = durability;
        self
    }

    /// Largest encoded event, in bytes (default 1 MiB, or less if a segment cannot hold that);
    /// larger events are handed back. At least 64, and the largest record (this plus 87 bytes)
    /// must fit in an empty segment, or [`RingBuilder::open`] fails with [`Error::Config`].
    pub fn max_event_size(mut self, bytes: usize) -> RingBuilder {
        self.options.max_event_size = Some(bytes);
        self
    }

    /// Most events the sequencer takes before publishing a batch: 1 to
    /// [`MAX_BATCH`](crate::MAX_BATCH) (default 4096; outside that, [`RingBuilder::open`]
    /// fails with [`Error::Config`]).
    pub fn max_batch(mut self, events: usize) -> RingBuilder {
        self.options.max_batch = events;
        self
    }

    /// Whether to wait for another writer to release the log instead of failing with
    /// [`Error::Locked`] (default: fail).
    pub fn wait_for_lock(mut self, wait: bool) -> RingBuilder {
        self.options.wait_for_lock = wait;
        self
    }

    /// For benchmarks of the sequencer alone: the sequencer thread waits on `gate` before it
    /// takes its first event, so that the queue can be filled first (it must be large enough
    /// to take every event pushed meanwhile, or the pushes wait for a sequencer that waits for
    /// the gate). With `prefault`, it first faults in the whole active segment, as the
    /// preparer does ahead of it in a steady state, so that the time measured is its own work.
    /// Compiled with the `test-support` feature only; not part of the stable API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-support"))]
    pub fn sequencer_start_gate(
        mut self,
        gate: Arc<std::sync::Barrier>,
        prefault: bool,
    ) -> RingBuilder {
        self.start_gate = Some((gate, prefault));
        self
    }

    /// How the sequencer puts records into segments (default [`RecordWrites::Buffered`]); for
    /// the benchmarks that compare the two ways. Compiled with the `test-support` feature
    /// only; not part of the stable API.
    #[doc(hidden)]
    #[cfg(any(test, feature = "test-support"))]
    pub fn record_writes(mut self, how: RecordWrites) -> RingBuilder {
        self.options.record_writes = how;
        self
    }

    /// How much of the log to keep (default: everything). See [`Retention`]: past a limit the
    /// oldest sealed segments are pruned, audibly, and never silently while no export covers
    /// them unless asked.
    pub fn retention(mut self, retention: Retention) -> RingBuilder {
        self.options.retention = retention;
        self
    }

    /// Whether the ring keeps the Merkle tree over its records up to date (default: yes), on a
    /// thread of its own: the stored hashes that make roots and proofs cost `O(log n)` reads
    /// (`docs/FORMAT.md` §15). Without it, [`Snapshot::tree_root`] and the proofs still work,
    /// hashing the records they need.
    pub fn merkle_tree(mut self, keep: bool) -> RingBuilder {
        self.options.merkle_tree = keep;
        self
    }

    /// Signs checkpoints of the Merkle tree as `checkpoints` says: signed notes that hold the
    /// tree's size and root, to keep outside the log, so that a cut or a rewrite of what they
    /// cover is found later ([`verify`](crate::verify()) with
    /// [`VerifyOptions::checkpoint`](crate::VerifyOptions::checkpoint), `docs/SECURITY.md`).
    pub fn checkpoints(mut self, checkpoints: Checkpoints) -> RingBuilder {
        self.options.checkpoints = Some(checkpoints);
        self
    }

    /// Seals the log as `sealing` says (forward-secure sealing): seal records whose keys evolve
    /// one way, so that whoever takes the host later cannot reseal the epochs already sealed
    /// ([`VerifyOptions::seal_key`](crate::VerifyOptions::seal_key), `docs/SECURITY.md`).
    /// Opening fails if the state file cannot be read, belongs to another log, or says more
    /// was sealed than the log holds.
    pub fn sealing(mut self, sealing: Sealing) -> RingBuilder {
        self.options.sealing = Some(sealing);
        self
    }

    /// Opens the log, creating it if needed, and starts the ring's threads.
    ///
    /// Takes the log's writer lock, then recovers from whatever a crash left (see
    /// [`RecoveryReport`]), examining only the end of the log.
    pub fn open(self) -> Result<Ring, Error> {
        let options = self.options;
        options.validate()?;
        let storage = self.location.storage()?;
        let location = storage.location().to_path_buf();
        let (lock, Recovered { chain, report }) = lock_and_recover(&storage, &options)?;
        let queue = Arc::new(Queue::new(options.queue_capacity));
        let shared = Arc::new(Shared::new(
            queue.clone(),
            chain.view(storage.clone()),
            options.max_event_size(),
            options.durability,
            storage.clone(),
        ));
        let start = start_helpers(&shared, &options, chain)?;
        let retention = start.rotated.clone();
        let sequencer = Sequencer::new(start);
        let sequencer = spawn_sequencer(&shared, sequencer, Consumer::new(queue), self.start_gate)?;
        Ok(Ring {
            producer: Producer {
                shared,
                opener: Opener::current(),
            },
            sequencer: Some(sequencer),
            lock: Some(lock),
            retention,
            report,
            location,
        })
    }
}

impl Location {
    /// The storage of the log, its directory created first if it is one.
    fn storage(self) -> Result<Arc<dyn Storage>, Error> {
        Ok(match self {
            Location::Storage(s) => s,
            Location::Dir(dir) => {
                create_dir(&dir)?;
                Arc::new(FsStorage::new(dir))
            }
        })
    }
}

/// Takes the writer lock of the log in `storage`, recovers the log (creating it if it has no
/// segments), and records this process as the lock's holder: once this returns, the log is
/// this writer's, and its chain is where [`Recovered::chain`] says.
fn lock_and_recover(
    storage: &Arc<dyn Storage>,
    options: &Options,
) -> Result<(LockGuard, Recovered), Error> {
    let location = storage.location();
    let lock = storage
        .lock(options.wait_for_lock)
        .map_err(|e| lock_error(location.to_path_buf(), e))?;
    let recovered = recover(&**storage, options.segment_size)?;
    // Only now that the directory is known to be a log (recovery refuses anything else).
    storage.record_holder().map_err(|e| {
        Error::io(
            format!("recording this writer's pid in {}", location.display()),
            e,
        )
    })?;
    Ok((lock, recovered))
}

/// Starts the threads that serve the sequencer: the committer (told first of the active
/// segment's slot), the preparer and, with a retention policy, the retention worker. Returns
/// what the sequencer needs to go on from `chain` and to drive them.
fn start_helpers(
    shared: &Arc<Shared>,
    options: &Options,
    chain: ChainState,
) -> Result<Start, Error> {
    let sealer = match &options.sealing {
        Some(s) => Some(s.start(chain.start.log_id, chain.head_seq)?),
        None => None,
    };
    let (commit_tx, commit_rx) = channel::unbounded();
    let _ = commit_tx.send(CommitMsg::Activated {
        seg: chain.active.clone(),
        slot: chain.active_slot,
    });
    let mut tree = None;
    let tree_tx = if options.merkle_tree {
        let (tx, rx) = channel::unbounded();
        let worker = TreeWorker::new(
            shared.clone(),
            Arc::new(TreeFiles::new(shared.storage.clone(), true)),
            rx,
            chain.head_seq,
            options
                .checkpoints
                .clone()
                .map(|c| (c, crate::format::log_id::LogId(chain.start.log_id))),
        );
        tree = Some(worker);
        // Retention waits for the worker from the start: it reads the records before they go.
        shared.set_tree_size(0);
        Some(tx)
    } else {
        None
    };
    let committer = Committer::new(shared.clone(), commit_rx, tree_tx);
    let committer = spawn("auditring-commit", shared, move || committer.run())?;
    let (prep_tx, prep_rx) = channel::unbounded();
    let (ready_tx, ready_rx) = channel::unbounded();
    let (prep_storage, size, log_id, record_writes) = (
        shared.storage.clone(),
        options.segment_size,
        chain.start.log_id,
        options.record_writes,
    );
    let preparer = spawn("auditring-prepare", shared, move || {
        preparer::run(prep_storage, size, log_id, prep_rx, ready_tx, record_writes);
        Ok(())
    })?;
    let mut helpers = vec![committer, preparer];
    if let Some(worker) = tree {
        helpers.push(spawn("auditring-tree", shared, move || worker.run())?);
    }
    let retention = if options.retention.is_active() {
        let (tx, rx) = channel::unbounded();
        let worker = worker::Worker {
            shared: shared.clone(),
            policy: options.retention.clone(),
            wake: rx,
            tree: options.merkle_tree,
        };
        helpers.push(spawn("auditring-retention", shared, move || worker.run())?);
        Some(tx)
    } else {
        None
    };
    Ok(Start {
        shared: shared.clone(),
        max_batch: options.max_batch,
        record_writes: options.record_writes,
        chain,
        committer: commit_tx,
        prep: prep_tx,
        prepared: ready_rx,
        rotated: retention,
        helpers,
        sealer,
    })
}

/// Starts the sequencer thread, which takes events from `consumer`; with a start gate (see
/// [`RingBuilder::sequencer_start_gate`]), it waits on it first.
fn spawn_sequencer(
    shared: &Arc<Shared>,
    mut sequencer: Sequencer,
    consumer: Consumer<Item>,
    gate: Option<(Arc<std::sync::Barrier>, bool)>,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    spawn("auditring-sequencer", shared, move || {
        if let Some((gate, prefault)) = gate {
            if prefault {
                sequencer.prefault_active();
            }
            gate.wait();
        }
        sequencer.run(consumer)
    })
}

/// Creates the log directory, with an error that says what is in the way.
fn create_dir(dir: &Path) -> Result<(), Error> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::NotALog {
            dir: dir.to_path_buf(),
            reason: "it is not a directory".into(),
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), e))
}

/// Starts one of the ring's threads. Should it panic, the ring fails visibly instead of taking
/// events it can no longer handle: it is poisoned with an error naming the thread (every later
/// push, flush, receipt and close returns it), as soon as the unwinding drops a waiter's
/// receipt or at the latest when it ends, and its queue is closed, waking everyone waiting;
/// the thread then returns that error.
fn spawn(
    name: &str,
    shared: &Arc<Shared>,
    f: impl FnOnce() -> Result<(), Error> + Send + 'static,
) -> Result<JoinHandle<Result<(), Error>>, Error> {
    let shared = shared.clone();
    thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            panic_hook::set(Box::new(move |cause| {
                let error = shared.poison(cause);
                shared.queue.close();
                error
            }));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
                .unwrap_or_else(|_| Err(panic_hook::thread_panicked()));
            // Not kept past the thread's work: a closed ring must not be kept alive.
            panic_hook::clear();
            result
        })
        .map_err(|e| Error::io(format!("starting thread {name}"), e))
}

/// An open audit log: the writer of one log directory.
///
/// Push events through [`Ring::push`] or through [`Producer`] handles (from
/// [`Ring::producer`]), read through [`Ring::snapshot`], and [`Ring::close`] it to drain the
/// queue, sync and release the writer lock. Dropping a ring closes it too, but cannot report a
/// failure.
///
/// # Fork
///
/// Only the process that opened a ring writes to it. In a child forked after the opening (which
/// has a copy of the ring but none of its threads, and shares the lock's open file description
/// with its parent): every push, [`Ring::flush`], [`Ring::push_receipt`] and
/// [`Ring::apply_retention`] fail at once with [`Error::Forked`], handing the event back;
/// [`Ring::close`] returns [`Error::Forked`], and neither it nor dropping the ring touches the
/// lock, the files or the parent's threads (the parent's lock stays held and its chain goes on).
/// The child may still read: [`Ring::snapshot`] shows the log as it was at the fork, and a
/// [`Reader`](crate::Reader) opened in the child sees what the parent has written since. A
/// [`PendingReceipt`] still pending at the fork completes only in the parent; waiting for it in
/// the child fails at once with [`Error::Forked`].
pub struct Ring {
    producer: Producer,
    sequencer: Option<JoinHandle<Result<(), Error>>>,
    lock: Option<LockGuard>,
    /// Wakes the retention thread, if a policy is set. Dropped at close, so that the thread
    /// stops as soon as the sequencer lets go of its own sender.
    retention: Option<Sender<Wake>>,
    report: RecoveryReport,
    location: PathBuf,
}

// The errors hand the event back by value, as crossbeam-channel's `TrySendError` does.
#[allow(clippy::result_large_err)]
impl Ring {
    /// A builder for the log in directory `dir` (created if missing).
    pub fn builder(dir: impl Into<PathBuf>) -> RingBuilder {
        RingBuilder {
            location: Location::Dir(dir.into()),
            options: Options::default(),
            start_gate: None,
        }
    }

    /// A builder for a log in a custom [`Storage`] (for example [`crate::storage::MemStorage`]).
    pub fn with_storage(storage: impl Storage) -> RingBuilder {
        RingBuilder {
            location: Location::Storage(Arc::new(storage)),
            options: Options::default(),
            start_gate: None,
        }
    }

    /// Opens the log in `dir` with the default options.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Ring, Error> {
        Ring::builder(dir).open()
    }

    /// A new handle for pushing events from any thread.
    pub fn producer(&self) -> Producer {
        self.producer.clone()
    }

    /// See [`Producer::push`].
    pub fn push(&self, event: Event) -> Result<(), PushError> {
        self.producer.push(event)
    }

    /// See [`Producer::try_push`].
    pub fn try_push(&self, event: Event) -> Result<(), PushError> {
        self.producer.try_push(event)
    }

    /// See [`Producer::push_tracked`].
    pub fn push_tracked(&self, event: Event) -> Result<PendingReceipt, PushError> {
        self.producer.push_tracked(event)
    }

    /// See [`Producer::push_receipt`].
    pub fn push_receipt(&self, event: Event) -> Result<Receipt, Error> {
        self.producer.push_receipt(event)
    }

    /// See [`Producer::push_ref`].
    pub fn push_ref<D: serde::Serialize + ?Sized>(
        &self,
        event: &EventRef<'_, D>,
    ) -> Result<(), PushError<()>> {
        self.producer.push_ref(event)
    }

    /// See [`Producer::flush`].
    pub fn flush(&self) -> Result<(), Error> {
        self.producer.flush()
    }

    /// A consistent view of everything sequenced so far, taken without waiting for or stopping
    /// anyone (one atomic load).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.producer.shared.published.load_full())
    }

    /// What opening the log found and repaired.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.report
    }

    /// The log's location (its directory, for a file-system log).
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// The ring's sync policy.
    pub fn durability(&self) -> Durability {
        self.producer.shared.durability
    }

    /// Number of events waiting in the queue (a momentary value, for monitoring).
    pub fn queued(&self) -> usize {
        self.producer.shared.queue.len()
    }

    /// Capacity of the queue.
    pub fn queue_capacity(&self) -> usize {
        self.producer.shared.queue.capacity()
    }

    /// The largest event body this ring accepts, in bytes (the builder's
    /// [`max_event_size`](RingBuilder::max_event_size), or the default the segment size allows).
    pub fn max_event_size(&self) -> usize {
        self.producer.shared.max_body
    }

    /// Whether retention holds the log at its size until an export covers the segments it must
    /// prune ([`Unexported::Wait`](crate::Unexported::Wait)): producers then wait once the
    /// queue is full.
    pub fn retention_held(&self) -> bool {
        self.producer.shared.retention_blocked()
    }

    /// Applies the retention policy now, on the retention thread, and says what it did: prunes
    /// every segment past a limit that may be pruned, and returns once their files are removed.
    /// Retention runs by itself after every rotation; this is for tests, tools and embedders
    /// that want to know. Does nothing without a policy.
    pub fn apply_retention(&self) -> Result<RetentionPass, Error> {
        self.producer.check_opener()?;
        let Some(wake) = &self.retention else {
            return Ok(RetentionPass::default());
        };
        let (tx, rx) = channel::bounded(1);
        wake.send(Wake::Now(tx)).map_err(|_| Error::Closed)?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Why retention's last attempt failed, if it did (it tries again at the next rotation, or
    /// within a second).
    pub fn retention_error(&self) -> Option<Error> {
        self.producer.shared.retention_error()
    }

    /// Closes the ring: later pushes fail with the event handed back; every event pushed before
    /// is sequenced and synced; the log is marked as closed cleanly and the writer lock is
    /// released. Returns the first failure of the ring's life that made an event undurable.
    ///
    /// During a stall (no segment can be created: a full disk), close makes one more attempt;
    /// if it fails too, the events still queued are handed back in [`Error::Unwritten`], in
    /// push order (see [`Error::unwritten`]), and everything pushed before them is in the log
    /// and synced. Close never waits for space to come back.
    pub fn close(mut self) -> Result<(), Error> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), Error> {
        if let Err(forked) = self.producer.check_opener() {
            self.abandon_in_child();
            return Err(forked);
        }
        let Some(handle) = self.sequencer.take() else {
            return Ok(());
        };
        self.retention.take();
        self.producer.shared.queue.close();
        let result = handle.join().unwrap_or_else(|_| {
            Err(Error::io(
                "closing the ring",
                std::io::Error::other("the sequencer thread panicked"),
            ))
        });
        self.lock.take();
        result
    }
}

impl Ring {
    /// In a forked child: lets go of the ring without touching the parent's threads (they do
    /// not exist here: joining would fail), the queue, the files, or the lock (which the child
    /// shares with its parent: the guard does not unlock in a child, see `crate::sys::fork`).
    fn abandon_in_child(&mut self) {
        if let Some(handle) = self.sequencer.take() {
            // Neither joined nor detached: the thread behind it lives in the parent only.
            std::mem::forget(handle);
        }
        if let Some(wake) = self.retention.take() {
            // The retention thread's receiver is the parent's; leave its channel as it is.
            std::mem::forget(wake);
        }
        self.lock.take();
    }
}

impl Drop for Ring {
    /// Closes the ring as [`Ring::close`] does. Dropping cannot hand events back: if the ring
    /// is dropped during a stall, the events still queued are written to standard error, one
    /// line each, as `auditring-unwritten: ` followed by the JSON line `auditring append`
    /// reads ([`Event::to_json_line`]), after one line that says why. Call [`Ring::close`] to
    /// have them handed back instead.
    fn drop(&mut self) {
        if let Err(Error::Unwritten { source, events }) = self.shutdown() {
            report_unwritten(&self.location, &source, &events);
        }
    }
}

/// What a ring dropped during a stall does with the events it could not write: it writes them to
/// standard error in a form that `auditring append` takes back.
fn report_unwritten(location: &Path, source: &Error, events: &[Event]) {
    use std::io::Write as _;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "auditring: {}: the ring was dropped while it could not write ({source}); its {} \
         unwritten event(s) follow, one per line after `auditring-unwritten: `; strip that \
         prefix and feed them to `auditring append` to write them",
        location.display(),
        events.len()
    );
    for e in events {
        let _ = write!(err, "auditring-unwritten: {}", e.to_json_line());
    }
    let _ = err.flush();
}

impl fmt::Debug for Ring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ring")
            .field("location", &self.location)
            .field("durability", &self.durability())
            .finish_non_exhaustive()
    }
}
