//! The walk over a log's segments, in order: what it carries from one segment to the next (the
//! chain, where the log starts, the prune records seen, the first unsealed segment), and what it
//! concludes once every segment is walked. Each segment's own checks are in `super::segment`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::records::Span;
use super::report::{CheckpointCheck, VerifyReport};
use super::seal::{SealCheck, SealOptions};
use super::tree::{OpenedCheckpoint, TreeCheck};
use crate::error::{Error, IntegrityError, Reason};
use crate::format::event::decode_body;
use crate::format::hash::Hash;
use crate::format::log_id::LogId;
use crate::format::prune::PruneDetails;
use crate::read::cursor::last_nonzero_end;
use crate::read::recovery::TornTail;
use crate::seal::key::SealKey;
use crate::storage::listing::{Listing, list, listing_moved_on};
use crate::storage::names::segment_name;
use crate::storage::{SegmentFile, Storage};

/// How many of its oldest segment files a walk opens before it starts.
const KEPT_OPEN: usize = 256;

/// One walk of `verify_storage_with_progress`; `None` if the writer moved on under it and it
/// should be walked again (never when `last`).
pub(super) fn verify_once(
    storage: &dyn Storage,
    progress: &mut dyn FnMut(u64, u64),
    last: bool,
    checkpoints: &[OpenedCheckpoint],
    seals: &SealOptions,
) -> Result<Option<VerifyReport>, Error> {
    let listing = list(storage)?;
    let (mut opened, total) = open_oldest(storage, &listing);
    if listing.segments.is_empty() {
        return Err(Error::NotALog {
            dir: storage.location().to_path_buf(),
            reason: "it holds no segment files".into(),
        });
    }
    let mut tell = |done| progress(done, total);
    let mut walk = Walk::new(
        storage,
        &listing,
        &mut tell,
        last,
        checkpoints.iter().map(|c| c.checkpoint.size()),
        seals.key.as_ref(),
    );
    for (i, (number, name)) in listing.segments.iter().enumerate() {
        if i > 0 && *number != listing.segments[i - 1].0 + 1 {
            walk.report.failure = Some(walk.missing(listing.segments[i - 1].0 + 1, name)?);
            break;
        }
        match walk.segment(*number, name, opened.remove(number)) {
            Ok(()) => {}
            Err(Stop::Failed(e)) => {
                walk.report.failure = Some(e);
                break;
            }
            Err(Stop::Io(e)) => return Err(e),
            Err(Stop::Again) => return Ok(None),
        }
    }
    Ok(Some(walk.into_report(checkpoints, seals.expect_epoch)))
}

/// Opens the oldest segments of `listing` right away, and sums the sizes of all, for progress.
///
/// Retention removes the oldest segments first: opened now, right after listing them (as a
/// reader's view does), they cannot be taken away by pruning during the walk. A missing or
/// unreadable file is left out here, and reported by the walk itself.
fn open_oldest(
    storage: &dyn Storage,
    listing: &Listing,
) -> (HashMap<u64, Arc<dyn SegmentFile>>, u64) {
    let mut opened = HashMap::new();
    let mut total = 0;
    for (i, (number, name)) in listing.segments.iter().enumerate() {
        let Ok(file) = storage.open(name, false) else {
            continue;
        };
        total += file.size().unwrap_or(0);
        if i < KEPT_OPEN {
            opened.insert(*number, file);
        }
    }
    (opened, total)
}

/// Why a walk stops early.
pub(super) enum Stop {
    /// The log fails verification here.
    Failed(IntegrityError),
    /// It could not be read.
    Io(Error),
    /// The writer moved on under the walk: walk again.
    Again,
}

/// Where the walk found that the log starts: the first segment walked.
#[derive(Clone)]
pub(super) struct LogStartSeen {
    /// Its number.
    pub(super) number: u64,
    /// Its file.
    pub(super) file: PathBuf,
    /// Where its newest commit slot lies (slot 0 without one).
    pub(super) slot_at: u64,
    /// Seq of the log's first record.
    pub(super) first_seq: u64,
    /// Chain hash before it.
    pub(super) anchor: Hash,
}

/// What a prune record found in the log says (`docs/FORMAT.md` §14.1).
#[derive(Clone, Copy)]
pub(super) struct PrunedRange {
    /// First seq pruned.
    pub(super) first_seq: u64,
    /// Last seq pruned.
    pub(super) last_seq: u64,
    /// Chain hash of the last seq pruned.
    pub(super) head: Hash,
}

/// The state of a walk, carried from one segment to the next.
pub(super) struct Walk<'a> {
    pub(super) storage: &'a dyn Storage,
    pub(super) report: VerifyReport,
    /// Next seq and chain hash so far.
    pub(super) chain: Option<(u64, Hash)>,
    pub(super) log_id: Option<[u8; 16]>,
    /// Where the log starts.
    pub(super) start: Option<LogStartSeen>,
    /// What the prune records found say.
    pub(super) pruned: Vec<PrunedRange>,
    /// Told the bytes of segment files walked so far.
    pub(super) progress: &'a mut dyn FnMut(u64),
    /// Bytes of the segment files before the current one.
    pub(super) done: u64,
    /// The first segment found not sealed, and where its newest slot lies. Only the last
    /// segments of a log may be unsealed (the active one, and the one before it while a crash
    /// interrupted its sealing), as readers and recovery require: a sealed segment after it is
    /// a failure, reported here.
    pub(super) unsealed: Option<IntegrityError>,
    /// The file of that segment, to read its header again: a live writer may have sealed it
    /// since, and the segments after it.
    pub(super) unsealed_file: Option<Arc<dyn SegmentFile>>,
    /// Whether this is the last walk: one that finds the writer moved on reports what it found.
    pub(super) is_last: bool,
    /// The Merkle tree, rebuilt from the records walked.
    pub(super) tree: TreeCheck<'a>,
    /// The seal check, with a sealing key.
    pub(super) seal: Option<SealCheck>,
    /// The last segment walked, and where its records end.
    pub(super) last_end: Option<(PathBuf, u64)>,
    /// Set once a segment was found past a tear: activated after records that a crash lost
    /// from the unsealed segment before it, and holding nothing committed. Recovery removes such
    /// segments, and readers stop before them; every later segment must hold nothing
    /// committed either. The chain is not advanced past the tear.
    pub(super) past_tear: bool,
}

impl<'a> Walk<'a> {
    /// A walk of the segments of `listing`, about to start.
    fn new(
        storage: &'a dyn Storage,
        listing: &Listing,
        progress: &'a mut dyn FnMut(u64),
        is_last: bool,
        checkpoint_sizes: impl IntoIterator<Item = u64>,
        seal_key: Option<&SealKey>,
    ) -> Walk<'a> {
        Walk {
            storage,
            report: VerifyReport {
                location: storage.location().to_path_buf(),
                segments: listing.segments.len() as u64,
                events: 0,
                first_seq: 0,
                last_seq: 0,
                head: Hash::ZERO,
                record_bytes: 0,
                file_bytes: 0,
                first_timestamp: None,
                last_timestamp: None,
                torn_tail: None,
                notes: Vec::new(),
                foreign_files: listing.foreign.clone(),
                log_id: None,
                tree_root: None,
                checkpoints: Vec::new(),
                seals: None,
                failure: None,
            },
            chain: None,
            log_id: None,
            start: None,
            pruned: Vec::new(),
            progress,
            done: 0,
            unsealed: None,
            unsealed_file: None,
            is_last,
            past_tear: false,
            tree: TreeCheck::new(storage, checkpoint_sizes),
            seal: seal_key.cloned().map(SealCheck::new),
            last_end: None,
        }
    }
}

impl Walk<'_> {
    /// The failure for segment `missing`, absent from the listing before `next` (the segment
    /// listed after the gap); or [`Error::Pruned`] if the listing is out of date (retention
    /// removed the segment since, or the writer created it while the listing was taken), so
    /// that the walk starts again.
    fn missing(&self, missing: u64, next: &str) -> Result<IntegrityError, Error> {
        if listing_moved_on(self.storage, missing)? {
            return Err(Error::Pruned {
                file: self.storage.location().join(segment_name(missing)),
                segment: missing,
            });
        }
        Ok(IntegrityError {
            seq: self.chain.map(|c| c.0),
            file: self.storage.location().join(next),
            offset: 0,
            reason: Reason::MissingSegment(missing),
        })
    }

    /// The report once every segment is walked (or the walk stopped at a failure): where the
    /// chain ended, and, if nothing failed before, whether the log's start is justified.
    fn into_report(
        mut self,
        checkpoints: &[OpenedCheckpoint],
        expect_epoch: Option<u64>,
    ) -> VerifyReport {
        if self.report.failure.is_none() {
            self.report.failure = self.unjustified_start();
        }
        let r = &mut self.report;
        if let Some((next, head)) = self.chain {
            r.last_seq = next - 1;
            r.head = head;
            r.events = next - r.first_seq;
        }
        r.log_id = self.log_id.map(LogId);
        if self.report.failure.is_none() {
            self.report.failure = self.tree.mismatch();
        }
        if self.report.failure.is_none() {
            self.report.tree_root = self.tree.root();
            let failure = self.check_checkpoints(checkpoints);
            self.report.failure = failure;
        }
        if let Some(check) = self.seal.take() {
            let mut seals = check.report;
            let r = &self.report;
            // A walk that failed in a segment after a seal it checked there reports the chain
            // as the segments before ended, short of that seal: none of their records is
            // unsealed.
            seals.unsealed = match r.events {
                0 => 0,
                _ => r
                    .last_seq
                    .saturating_sub(seals.sealed_through.max(r.first_seq - 1)),
            };
            if r.failure.is_none()
                && let Some(expected) = expect_epoch
                && seals.last_epoch.is_none_or(|l| l < expected)
            {
                let end = self.end_of_log();
                self.report.failure = Some(IntegrityError {
                    seq: Some(seals.sealed_through + 1),
                    file: end.0,
                    offset: end.1,
                    reason: Reason::SealMissing {
                        expected,
                        last: seals.last_epoch,
                    },
                });
            }
            self.report.seals = Some(seals);
        }
        self.report
    }

    /// Compares the log with each checkpoint, smallest first: a checkpoint larger than the log
    /// shows a cut, one whose root differs a rewrite, located between the largest checkpoint
    /// the log agrees with and that one. Returns the first failure.
    fn check_checkpoints(&mut self, checkpoints: &[OpenedCheckpoint]) -> Option<IntegrityError> {
        let mut sorted: Vec<&OpenedCheckpoint> = checkpoints.iter().collect();
        sorted.sort_by_key(|c| c.checkpoint.size());
        let last_seq = self.report.last_seq;
        let end = self.end_of_log();
        let mut agreed = 0;
        let mut failure = None;
        for c in sorted {
            let size = c.checkpoint.size();
            let signed = c.checkpoint.root();
            let computed = if size == 0 {
                Some(crate::merkle::hash::empty_root())
            } else {
                self.tree.root_at(size)
            };
            let consistent = computed == Some(signed);
            self.report.checkpoints.push(CheckpointCheck {
                size,
                root: signed,
                signed_by: c.signed_by.clone(),
                consistent,
            });
            if consistent {
                agreed = agreed.max(size);
                continue;
            }
            if failure.is_some() {
                continue;
            }
            failure = Some(match computed {
                _ if size > last_seq => IntegrityError {
                    seq: Some(last_seq + 1),
                    file: end.0.clone(),
                    offset: end.1,
                    reason: Reason::CheckpointCut {
                        size,
                        last_seq,
                        first_missing: last_seq + 1,
                    },
                },
                Some(_) => IntegrityError {
                    seq: Some(agreed + 1),
                    file: self.storage.location().to_path_buf(),
                    offset: 0,
                    reason: Reason::CheckpointRoot {
                        size,
                        signed,
                        after: agreed,
                    },
                },
                // The log does not start at seq 1: its tree cannot be rebuilt.
                None => IntegrityError {
                    seq: Some(self.report.first_seq),
                    file: self.storage.location().to_path_buf(),
                    offset: 0,
                    reason: Reason::CheckpointUncheckable {
                        size,
                        first_seq: self.report.first_seq,
                    },
                },
            });
        }
        failure
    }

    /// The last segment file walked and where its records end.
    fn end_of_log(&self) -> (PathBuf, u64) {
        self.last_end
            .clone()
            .unwrap_or_else(|| (self.storage.location().to_path_buf(), 0))
    }

    /// Reports the non-zero bytes of `[start, file_len)`, if any, as the torn tail (after the
    /// record `after_seq`), unless one was found before.
    pub(super) fn note_torn_tail(
        &mut self,
        file: &dyn SegmentFile,
        path: &Path,
        start: u64,
        file_len: u64,
        after_seq: u64,
    ) -> Result<(), Stop> {
        let last = last_nonzero_end(file, start, file_len)
            .map_err(|e| Stop::Io(Error::io(format!("reading {}", path.display()), e)))?;
        if let Some(last) = last {
            self.report.torn_tail.get_or_insert(TornTail {
                file: path.to_path_buf(),
                offset: start,
                len: last - start,
                after_seq,
            });
        }
        Ok(())
    }

    /// Checks the seal record at `seq`, whose chain hash before it is `prev`, if the walk was
    /// given a sealing key.
    pub(super) fn note_seal(&mut self, seq: u64, body: &[u8], prev: &Hash) -> Result<(), Reason> {
        let (Some(check), Some(log_id)) = (&mut self.seal, &self.log_id) else {
            return Ok(());
        };
        check.check(log_id, self.report.first_seq, seq, body, prev)
    }

    /// Keeps what the prune record at `seq` says, if its details are those of FORMAT.md §14.1
    /// (any other justifies nothing).
    pub(super) fn note_prune(&mut self, seq: u64, body: &[u8]) {
        if let Ok(d) = PruneDetails::from_record(body, seq) {
            self.pruned.push(PrunedRange {
                first_seq: d.first_seq,
                last_seq: d.last_seq,
                head: d.head,
            });
        }
    }

    /// A log that does not start at seq 1 of segment 1 must hold the prune record that says
    /// where the records before it ended; or, if a crash interrupted the removal of a prune's
    /// files (oldest first), one whose range holds the seq before the log's first.
    fn unjustified_start(&self) -> Option<IntegrityError> {
        let LogStartSeen {
            number,
            file,
            slot_at,
            first_seq,
            anchor,
        } = self.start.clone()?;
        if number == 1 && first_seq == 1 && anchor == Hash::ZERO {
            return None;
        }
        let before = first_seq - 1;
        let justified = self.pruned.iter().any(|p| {
            (p.first_seq..p.last_seq).contains(&before)
                || (before == p.last_seq && p.head == anchor)
        });
        (!justified).then_some(IntegrityError {
            seq: Some(first_seq),
            file,
            offset: slot_at,
            reason: Reason::Unpruned { first_seq, anchor },
        })
    }

    /// Keeps the origin timestamps of the log's first record and of the last one seen.
    pub(super) fn note_times(&mut self, buf: &[u8], first: Option<&Span>, last: Option<&Span>) {
        let time = |s: &Span| decode_body(s.body(buf)).ok().map(|e| e.timestamp);
        if self.report.first_timestamp.is_none() {
            self.report.first_timestamp = first.and_then(time);
        }
        if let Some(t) = last.and_then(time) {
            self.report.last_timestamp = Some(t);
        }
    }
}
