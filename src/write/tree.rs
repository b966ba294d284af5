//! The tree worker: keeps the Merkle tree over the records up to date, off the producers' and
//! the sequencer's path, and signs checkpoints of it.
//!
//! It follows the records the sequencer publishes, a batch at a time: it reads each new
//! record's leaf hash from its header, adds it to a compact range (`O(log n)` hashes of state,
//! about two SHA-256 compressions per record), and writes every complete node of a stored level
//! to its stratum (see [`crate::storage::tree`]), in index order. The committer tells it how
//! far the records are committed and which segments it sealed; checkpoints are signed only at
//! committed sizes, so a checkpoint never covers a record that a crash can take back under the
//! ring's durability policy.
//!
//! On start it removes the tree bases of other starts than the log's, clears every stored
//! entry that covers records recovery did not keep, finds the first entry missing from each
//! stratum (a crash may lose some, and a log written without the tree has none), and rebuilds
//! from there, reading the records. So the tree is rebuilt from the records whenever its files
//! are lost, in this thread, while the ring already runs. (Retention prunes nothing before
//! this start is done: it waits for the tree to reach what it prunes.)

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError};

use crate::error::Error;
use crate::format::hash::Hash;
use crate::format::log_id::LogId;
use crate::merkle::hash::{leaf_hash, node_hash};
use crate::merkle::prove;
use crate::merkle::range::CompactRange;
use crate::read::snapshot::Snapshot;
use crate::read::tree::{TreeView, for_each_leaf, prove_error};
use crate::storage::tree::{MAX_STRATUM, STRATUM_HEIGHT, TreeFiles};
use crate::storage::tree_base::remove_bases_except;
use crate::write::checkpoints::Checkpoints;
use crate::write::config::Durability;
use crate::write::shared::Shared;

/// What the committer tells the tree worker, in order. The worker stops when the committer's
/// sender is dropped (the ring is closing, or the committer failed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TreeMsg {
    /// Every record up to this seq is committed (synced). Under [`Durability::None`], where
    /// written is committed, the worker follows the published head instead.
    Committed(u64),
    /// A segment ending at this seq was sealed.
    Sealed(u64),
}

/// How long the worker waits for news when it has no checkpoint due; under
/// [`Durability::None`], how often it looks for new records.
const IDLE_WAIT: Duration = Duration::from_millis(10);

/// The tree worker's state.
pub(crate) struct TreeWorker {
    shared: Arc<Shared>,
    files: Arc<TreeFiles<'static>>,
    rx: Receiver<TreeMsg>,
    /// Records committed, as far as the committer said (the recovered size at start).
    committed: u64,
    /// Sizes of segments sealed and not yet checkpointed, oldest first.
    sealed: VecDeque<u64>,
    /// Under [`Durability::None`]: the first segment number not yet looked at for a seal.
    /// There the worker follows the published head, which can pass a segment's end before the
    /// committer's [`TreeMsg::Sealed`] arrives, so it reads the ends from the same view.
    rolled_from: u64,
    signer: Option<Signer>,
    /// A stratum entry could not be written: none is written after it, so that every stratum
    /// stays written in index order (see [`crate::read::tree`]).
    write_failed: std::cell::Cell<bool>,
}

/// What the worker needs to sign checkpoints, and where it is.
struct Signer {
    config: Checkpoints,
    origin: String,
    /// The size of the last checkpoint this worker signed.
    last: Option<u64>,
    /// The recovered size: where counting events for checkpoints starts.
    base: u64,
    /// When the next timed checkpoint is due.
    due: Option<Instant>,
    /// The first failure to sign or deliver one.
    failure: Option<Error>,
}

impl TreeWorker {
    /// A worker for the ring in `shared`, whose recovered log holds `recovered` records.
    pub(crate) fn new(
        shared: Arc<Shared>,
        files: Arc<TreeFiles<'static>>,
        rx: Receiver<TreeMsg>,
        recovered: u64,
        checkpoints: Option<(Checkpoints, LogId)>,
    ) -> TreeWorker {
        let signer = checkpoints.map(|(config, log_id)| Signer {
            origin: config.origin_for(log_id),
            due: config
                .interval()
                .and_then(|i| Instant::now().checked_add(i)),
            config,
            last: None,
            base: recovered,
            failure: None,
        });
        let rolled_from = Snapshot::new(shared.published.load_full()).last_segment_number();
        TreeWorker {
            shared,
            files,
            rx,
            committed: recovered,
            sealed: VecDeque::new(),
            rolled_from,
            signer,
            write_failed: std::cell::Cell::new(false),
        }
    }

    /// Runs until the committer is gone, then brings the tree up to the last committed record,
    /// signs the closing checkpoint and syncs the tree's files. Returns the first failure to
    /// deliver a checkpoint; the tree's own files are a cache, and failing to write them only
    /// makes proofs hash more.
    pub(crate) fn run(mut self) -> Result<(), Error> {
        // However this ends, retention no longer waits for it.
        struct Gone<'a>(&'a Shared);
        impl Drop for Gone<'_> {
            fn drop(&mut self) {
                self.0.set_tree_size(u64::MAX);
            }
        }
        let shared = self.shared.clone();
        let gone = Gone(&shared);
        let mut range = match self.start() {
            Ok(range) => range,
            // The tree cannot be built (records it needs were pruned and its stored hashes
            // lost): the ring goes on without it, and proofs say why they cannot be made.
            Err(e) => return self.without_tree(gone, &e),
        };
        loop {
            let wait = self
                .signer
                .as_ref()
                .and_then(|s| s.due)
                .map_or(IDLE_WAIT, |due| {
                    due.saturating_duration_since(Instant::now()).min(IDLE_WAIT)
                });
            match self.rx.recv_timeout(wait) {
                Ok(msg) => self.apply(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(msg) = self.rx.try_recv() {
                self.apply(msg);
            }
            if let Err(e) = self.advance(&mut range, false) {
                return self.without_tree(gone, &e);
            }
        }
        if let Err(e) = self.advance(&mut range, true) {
            return self.without_tree(gone, &e);
        }
        let _ = self.files.sync();
        match self.signer.and_then(|s| s.failure) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Goes on without the tree after `e` (records that cannot be read, or were pruned before
    /// the tree had them): retention no longer waits for it, and the committer's messages are
    /// taken until it goes. The ring's records are not at stake, so this fails nothing, unless
    /// checkpoints were asked for: then their failure is what `close` reports.
    fn without_tree(self, gone: impl Drop, e: &Error) -> Result<(), Error> {
        drop(gone);
        while self.rx.recv().is_ok() {}
        let failure = self.signer.map(|s| {
            s.failure.unwrap_or_else(|| {
                Error::Checkpoint(format!(
                    "no checkpoint can be signed: the Merkle tree stopped: {e}"
                ))
            })
        });
        failure.map_or(Ok(()), Err)
    }

    fn apply(&mut self, msg: TreeMsg) {
        match msg {
            TreeMsg::Committed(seq) => self.committed = self.committed.max(seq),
            TreeMsg::Sealed(seq) => self.sealed.push_back(seq),
        }
    }

    /// Follows the committed records, signing the checkpoints that fall due on the way: one at
    /// each sealed segment, one at each multiple of the configured count, one when the interval
    /// is past, and, with `closing`, one at the end.
    fn advance(&mut self, range: &mut CompactRange, closing: bool) -> Result<(), Error> {
        // Under `Durability::None` a record is committed once written: the committer hears of
        // no batch, and the published head is how far the records go.
        if self.shared.durability == Durability::None {
            let snapshot = self.snapshot();
            if self.signer.is_some() {
                for (number, last_seq) in snapshot.rolled_from(self.rolled_from)? {
                    self.sealed.push_back(last_seq);
                    self.rolled_from = number + 1;
                }
            }
            self.committed = self.committed.max(snapshot.head_seq());
        }
        let committed = self.committed;
        let Some(signer) = self.signer.as_ref() else {
            return self.follow(range, committed);
        };
        let mut stops: Vec<u64> = self
            .sealed
            .iter()
            .copied()
            .filter(|&s| s > signer.last.unwrap_or(signer.base) && s <= committed)
            .collect();
        self.sealed.retain(|&s| s > committed);
        if let Some(n) = signer.config.every_events_n() {
            let mut at = (signer.last.unwrap_or(signer.base) / n + 1).saturating_mul(n);
            while at <= committed {
                stops.push(at);
                at = at.saturating_add(n);
            }
        }
        let timed = signer.due.is_some_and(|due| Instant::now() >= due);
        if timed || closing {
            stops.push(committed);
        }
        stops.sort_unstable();
        stops.dedup();
        for size in stops {
            self.follow(range, size)?;
            if range.size() == size {
                self.sign(range);
            }
        }
        if timed && let Some(signer) = self.signer.as_mut() {
            signer.due = signer
                .config
                .interval()
                .and_then(|i| Instant::now().checked_add(i));
        }
        self.follow(range, committed)
    }

    /// Signs and delivers a checkpoint of `range`, unless one of that size was signed.
    fn sign(&mut self, range: &CompactRange) {
        let Some(signer) = self.signer.as_mut() else {
            return;
        };
        if signer.last.is_some_and(|last| last >= range.size()) {
            return;
        }
        let signed = signer
            .config
            .sign(&signer.origin, range.size(), range.root())
            .and_then(|signed| signer.config.deliver(&signed));
        signer.last = Some(range.size());
        if let Err(e) = signed
            && signer.failure.is_none()
        {
            signer.failure = Some(e);
        }
    }

    /// Clears what recovery did not keep, and returns the compact range at the end of the
    /// longest prefix of the tree whose stored nodes are all there.
    fn start(&mut self) -> Result<CompactRange, Error> {
        let n = self.committed;
        let first_seq = self.snapshot().first_seq();
        // Tree bases of other starts than the log's are left by prunes that a crash or a close
        // cut short (`docs/FORMAT.md` §14.2); nothing needs them. (A failure to remove one
        // costs nothing but its bytes: the next prune tries again.)
        let _ = remove_bases_except(&*self.shared.storage, &[first_seq - 1]);
        let mut from = n;
        let mut newest = Vec::new();
        for stratum in 1..=MAX_STRATUM {
            let shift = STRATUM_HEIGHT * u32::from(stratum);
            let kept = if shift >= 64 { 0 } else { n >> shift };
            self.files
                .clear_from(stratum, kept)
                .map_err(|e| self.io_error("clearing the Merkle tree of", e))?;
            // Entries missing from `written` on: the nodes they hold must be hashed again, from
            // their first leaf.
            let written = self.written(stratum, kept)?;
            if written < kept {
                from = from.min(written << shift);
            }
            if written > 0 {
                newest.push((stratum, written - 1));
            }
        }
        // The newest entry of each stratum is one no verification compares (nothing follows
        // it): hash it again from the level below and write it over if it differs, before an
        // entry after it makes it one that is compared.
        for (stratum, index) in newest {
            let snapshot = self.snapshot();
            let view = TreeView::new(&snapshot, &self.files);
            let level = (STRATUM_HEIGHT * u32::from(stratum)) as u8;
            let computed = node_hash(
                &view.node(level - 1, 2 * index)?,
                &view.node(level - 1, 2 * index + 1)?,
            );
            let stored = self
                .files
                .read(stratum, index)
                .map_err(|e| self.io_error("reading the Merkle tree of", e))?;
            if stored != Some(computed) {
                self.files
                    .write(stratum, index, &computed)
                    .map_err(|e| self.io_error("writing the Merkle tree of", e))?;
            }
        }
        let snapshot = self.snapshot();
        // As any reader: an entry counts only if the next one is written. Those are the entries
        // `verify` compares with the records, so a log that verifies gives a right frontier
        // (trusting the newest entry too would build on one no verification ever checked).
        let view = TreeView::new(&snapshot, &self.files);
        if from < view.first_size() {
            return Err(Error::Config(format!(
                "the Merkle tree cannot be rebuilt: it needs records {} to {}, which were pruned",
                from + 1,
                first_seq - 1
            )));
        }
        let frontier = prove::frontier(&view, from).map_err(prove_error)?;
        let range = CompactRange::from_frontier(from, frontier)
            .map_err(|e| Error::Config(format!("restoring the Merkle tree: {e}")))?;
        self.shared.set_tree_size(from);
        Ok(range)
    }

    /// How many leading entries of `stratum`, among its first `kept`, are written: found by
    /// bisection, in `O(log n)` reads, since the worker writes a stratum in index order. (A
    /// crash that lost a page of entries in the middle leaves a hole that this may not see:
    /// readers hash those nodes from the level below, and nothing is wrong, only slower.)
    fn written(&self, stratum: u8, kept: u64) -> Result<u64, Error> {
        let (mut lo, mut hi) = (0, kept);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.files.read(stratum, mid) {
                Ok(Some(_)) => lo = mid + 1,
                Ok(None) => hi = mid,
                Err(e) => return Err(self.io_error("reading the Merkle tree of", e)),
            }
        }
        Ok(lo)
    }

    /// Adds the records after `range`'s end up to seq `to` (as far as they are published) to
    /// `range`, writing the stored nodes it completes. A node that cannot be written is left
    /// for readers to hash from below.
    fn follow(&self, range: &mut CompactRange, to: u64) -> Result<(), Error> {
        let snapshot = self.snapshot();
        let to = to.min(snapshot.head_seq());
        if range.size() >= to {
            return Ok(());
        }
        for_each_leaf(&snapshot, range.size() + 1, to, |leaf| {
            range.push(leaf_hash(leaf), |level, index, hash: &Hash| {
                let level = u32::from(level);
                if level > 0 && level.is_multiple_of(STRATUM_HEIGHT) && !self.write_failed.get() {
                    let stratum = (level / STRATUM_HEIGHT) as u8;
                    self.write_failed
                        .set(self.files.write(stratum, index, hash).is_err());
                }
            });
        })?;
        self.shared.set_tree_size(range.size());
        Ok(())
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.shared.published.load_full())
    }

    fn io_error(&self, doing: &str, e: io::Error) -> Error {
        Error::io(
            format!("{doing} {}", self.shared.storage.location().display()),
            e,
        )
    }
}
