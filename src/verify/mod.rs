//! Verification: every segment, every record, every hash, and every byte that must be zero.
//!
//! The walk (specified in `docs/FORMAT.md`, "Verifying a log"):
//!
//! 1. segment files are numbered without gaps; each header's prefix is intact (magic, version,
//!    algorithm, digest), names the file's own number and the log's id, and the file has the
//!    length the prefix declares;
//! 2. each segment starts where the previous one ended: its commit slot's first seq and anchor
//!    are the previous segment's last seq + 1 and head (seq 1 and all zeros for segment 1);
//!    after an unsealed segment, a segment that holds nothing committed may instead lie past a
//!    tear (a crash lost records it was activated after), and is noted, as is every later one,
//!    which must hold nothing committed either;
//! 3. every record of the committed region is checked: magic, seq (gapless), leaf hash
//!    recomputed from the body, chain hash recomputed from the previous one, zero padding, a
//!    body that decodes, and the index entry of every 64th record;
//! 4. the commit slots agree with the records (last seq, head, committed length, for both the
//!    current slot and the older one), a sealed segment ends exactly at its committed length, and
//!    every byte that carries nothing (header page outside prefix and slots, unused index
//!    entries, the space after the records) is zero;
//! 5. in the last segment, if the writer did not close it cleanly, records past the committed
//!    length are accepted while they continue the chain, and non-zero bytes after them are
//!    reported as a torn tail: what a crash leaves, not a failure.
//!
//! So any change to any byte of the committed region of a segment is detected, and reported with
//! the seq it concerns, the file, the byte offset and the reason. What a plain hash chain cannot
//! show on its own, a cut at a record boundary or a consistent rewrite of the whole log, shows
//! against a head obtained out of band (a receipt, an export's manifest).

pub(crate) mod records;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, IntegrityError, Reason};
use crate::format::event::decode_body;
use crate::format::hash::Hash;
use crate::format::prune::PruneDetails;
use crate::format::segment::{
    HEADER_LEN, HeaderError, INDEX_STRIDE, PREFIX_LEN, PREFIX_LOG_ID_AT, PREFIX_NUMBER_AT,
    SLOT_LEN, SLOT_OFFSETS, Slot, SlotState, index_entry_offset,
};
use crate::read::cursor::{Cursor, Step, first_nonzero, last_nonzero_end};
use crate::read::reader::check_dir;
use crate::read::recovery::TornTail;
use crate::read::segment_end::{read_index_entry, scan_valid};
use crate::storage::header::{ReadHeaderError, SegmentHeader};
use crate::storage::listing::{PRUNE_RETRIES, list, open_error, pruned_since};
use crate::storage::{FsStorage, SegmentFile, Storage};

/// What verification found.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The log's location.
    pub location: PathBuf,
    /// Number of segment files.
    pub segments: u64,
    /// Number of records verified (up to the failure, if there is one).
    pub events: u64,
    /// Seq of the first record.
    pub first_seq: u64,
    /// Seq of the last record verified.
    pub last_seq: u64,
    /// Chain hash after the last record verified.
    pub head: Hash,
    /// Total size of the records verified, in bytes.
    pub record_bytes: u64,
    /// Total size of the segment files, in bytes.
    pub file_bytes: u64,
    /// Origin timestamp of the first record, nanoseconds since the Unix epoch.
    pub first_timestamp: Option<i64>,
    /// Origin timestamp of the last record verified.
    pub last_timestamp: Option<i64>,
    /// Bytes past the last valid record of an active segment: left by a crash (or by a writer
    /// still writing). Reported, not a failure.
    pub torn_tail: Option<TornTail>,
    /// Findings that are not failures, such as a commit slot torn by a crash.
    pub notes: Vec<String>,
    /// Files in the directory that are not part of the log.
    pub foreign_files: Vec<String>,
    /// The first integrity failure; `None` when the log is valid.
    pub failure: Option<IntegrityError>,
}

impl VerifyReport {
    /// Whether the log verified.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// How many of its oldest segment files a walk opens before it starts.
const KEPT_OPEN: usize = 256;

/// Verifies the log in directory `dir`. Fails only when the log cannot be read; integrity
/// failures are in the report.
pub fn verify(dir: impl AsRef<Path>) -> Result<VerifyReport, Error> {
    let dir = dir.as_ref();
    check_dir(dir)?;
    verify_storage(&FsStorage::new(dir))
}

/// Like [`verify()`], calling `progress(bytes_done, bytes_total)` (bytes of segment files) as
/// it goes.
pub fn verify_with_progress(
    dir: impl AsRef<Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, Error> {
    let dir = dir.as_ref();
    check_dir(dir)?;
    verify_storage_with_progress(&FsStorage::new(dir), progress)
}

/// Verifies the log in `storage`.
pub fn verify_storage(storage: &dyn Storage) -> Result<VerifyReport, Error> {
    verify_storage_with_progress(storage, &mut |_, _| {})
}

/// Like [`verify_storage`], with progress as in [`verify_with_progress`].
///
/// The log may have a live writer, which moves on while the walk reads it. The walk starts
/// again, on a newer listing (a bounded number of times, see `crate::storage::listing`), when:
///
/// * retention removed the oldest segments before they were opened, so that what it removed
///   is not reported as missing (a segment missing between others is);
/// * a segment was found not sealed, and a later one sealed, because the writer sealed both
///   between the reads of their headers (one that is still not sealed is a failure).
pub fn verify_storage_with_progress(
    storage: &dyn Storage,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, Error> {
    let mut attempt = 0;
    loop {
        let last = attempt == PRUNE_RETRIES;
        match verify_once(storage, progress, last) {
            Err(Error::Pruned { .. }) | Ok(None) if !last => attempt += 1,
            Ok(report) => return Ok(report.expect("the last walk is not walked again")),
            Err(e) => return Err(e),
        }
    }
}

/// One walk of [`verify_storage_with_progress`]; `None` if the writer moved on under it and
/// it should be walked again (never when `last`).
fn verify_once(
    storage: &dyn Storage,
    progress: &mut dyn FnMut(u64, u64),
    last: bool,
) -> Result<Option<VerifyReport>, Error> {
    let listing = list(storage)?;
    // Retention removes the oldest segments first: open them now, right after listing them
    // (as a reader's view does), so that pruning during the walk cannot take them away. The
    // total, for progress: a missing or unreadable file is reported by the walk itself.
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
    if listing.segments.is_empty() {
        return Err(Error::NotALog {
            dir: storage.location().to_path_buf(),
            reason: "it holds no segment files".into(),
        });
    }
    let mut walk = Walk {
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
            failure: None,
        },
        chain: None,
        log_id: None,
        start: None,
        pruned: Vec::new(),
        progress: &mut |done| progress(done, total),
        done: 0,
        unsealed: None,
        unsealed_file: None,
        last_walk: last,
        past_tear: false,
    };
    for (i, (number, name)) in listing.segments.iter().enumerate() {
        if i > 0 && *number != listing.segments[i - 1].0 + 1 {
            let missing = listing.segments[i - 1].0 + 1;
            if pruned_since(storage, missing)? {
                return Err(Error::Pruned {
                    file: storage
                        .location()
                        .join(crate::storage::names::segment_name(missing)),
                    segment: missing,
                });
            }
            walk.report.failure = Some(IntegrityError {
                seq: walk.chain.map(|c| c.0),
                file: storage.location().join(name),
                offset: 0,
                reason: Reason::MissingSegment(listing.segments[i - 1].0 + 1),
            });
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
    if walk.report.failure.is_none() {
        walk.report.failure = walk.unjustified_start();
    }
    let r = &mut walk.report;
    if let Some((next, head)) = walk.chain {
        r.last_seq = next - 1;
        r.head = head;
        r.events = next - r.first_seq;
    }
    Ok(Some(walk.report))
}

enum Stop {
    Failed(IntegrityError),
    Io(Error),
    /// The writer moved on under the walk: walk again.
    Again,
}

struct Walk<'a> {
    storage: &'a dyn Storage,
    report: VerifyReport,
    /// Next seq and chain hash so far.
    chain: Option<(u64, Hash)>,
    log_id: Option<[u8; 16]>,
    /// Where the log starts: first segment number, its file, where its commit slot is, first
    /// seq and anchor.
    start: Option<(u64, PathBuf, u64, u64, Hash)>,
    /// What the prune records found say: the first and last seq pruned, and the chain hash at
    /// the last.
    pruned: Vec<(u64, u64, Hash)>,
    /// Told the bytes of segment files walked so far.
    progress: &'a mut dyn FnMut(u64),
    /// Bytes of the segment files before the current one.
    done: u64,
    /// The first segment found not sealed, and where its newest slot lies. Only the last
    /// segments of a log may be unsealed (the active one, and the one before it while a crash
    /// interrupted its sealing), as readers and recovery require: a sealed segment after it is
    /// a failure, reported here.
    unsealed: Option<IntegrityError>,
    /// The file of that segment, to read its header again: a live writer may have sealed it
    /// since, and the segments after it.
    unsealed_file: Option<Arc<dyn SegmentFile>>,
    /// Whether this is the last walk: one that finds the writer moved on reports what it found.
    last_walk: bool,
    /// Set once a segment was found past a tear: activated after records that a crash lost
    /// from the unsealed segment before it, and holding nothing committed. Recovery removes such
    /// segments, and readers stop before them; every later segment must hold nothing
    /// committed either. The chain is not advanced past the tear.
    past_tear: bool,
}

impl Walk<'_> {
    /// Walks segment `number`, whose file is `file` if it was opened already.
    fn segment(
        &mut self,
        number: u64,
        name: &str,
        file: Option<Arc<dyn SegmentFile>>,
    ) -> Result<(), Stop> {
        let path = self.storage.location().join(name);
        let io = |e: std::io::Error| Stop::Io(Error::io(format!("reading {}", path.display()), e));
        let fail = |seq: Option<u64>, offset: u64, reason: Reason| {
            Stop::Failed(IntegrityError {
                seq,
                file: path.clone(),
                offset,
                reason,
            })
        };
        let file: Arc<dyn SegmentFile> = match file {
            Some(f) => f,
            None => self.storage.open(name, false).map_err(|e| {
                match open_error(self.storage, number, name, "opening", e) {
                    Error::Integrity(e) => Stop::Failed(*e),
                    e => Stop::Io(e),
                }
            })?,
        };
        let header = match SegmentHeader::read_raw(&*file) {
            Ok(h) => h,
            Err(ReadHeaderError::Io(e)) => return Err(io(e)),
            Err(ReadHeaderError::Header(h)) => {
                return Err(fail(self.chain.map(|c| c.0), 0, Reason::Header(h)));
            }
        };
        let prefix = header.prefix;
        self.report.file_bytes += header.file_len;
        if prefix.number != number {
            return Err(fail(
                None,
                PREFIX_NUMBER_AT as u64,
                Reason::SegmentNumber {
                    header: prefix.number,
                    name: number,
                },
            ));
        }
        if *self.log_id.get_or_insert(prefix.log_id) != prefix.log_id {
            return Err(fail(None, PREFIX_LOG_ID_AT as u64, Reason::LogId));
        }
        if let Some(at) = nonzero_outside_prefix_and_slots(&header.page) {
            return Err(fail(None, at, Reason::NonZero("the header page")));
        }

        // Commit slots. Each lies alone in a 512-byte sector, so a crash cannot tear one on a
        // disk that writes sectors whole: a damaged slot is a failure. An unwritten slot is
        // normal only in a segment that is not finished while its other slot is still at
        // generation 1 (or unwritten too): the active segment, or the next one created ahead.
        let newest = header.newest();
        let older = header.older();
        let finished = newest.is_some_and(|s| s.sealed || s.clean);
        let unwritten_ok = !finished && newest.is_none_or(|s| s.generation == 1);
        for (i, (state, at)) in header.slots.iter().zip(SLOT_OFFSETS).enumerate() {
            match state {
                SlotState::Valid(_) => {}
                SlotState::Empty if unwritten_ok => {}
                _ => return Err(fail(None, at, Reason::Slot(i))),
            }
        }
        if let Some(generation) = header.same_generation() {
            return Err(fail(
                None,
                SLOT_OFFSETS[1],
                Reason::Header(HeaderError::SameGeneration { generation }),
            ));
        }
        for s in newest.iter().chain(older.iter()) {
            if s.generation % 2 != slot_index_of(&header, s) as u64 {
                return Err(fail(
                    None,
                    SLOT_OFFSETS[slot_index_of(&header, s)],
                    Reason::SlotMismatch("a slot's generation does not match its position"),
                ));
            }
        }
        let (next_seq, prev) = match (self.chain, newest) {
            (Some(c), _) => c,
            (None, _) if number == 1 => (1, Hash::ZERO),
            (None, Some(s)) => (s.first_seq, s.anchor),
            (None, None) => {
                return Err(fail(
                    None,
                    SLOT_OFFSETS[0],
                    Reason::SlotMismatch("the first segment has no commit slot"),
                ));
            }
        };
        if self.chain.is_none() {
            self.report.first_seq = next_seq;
            let at = newest.map_or(SLOT_OFFSETS[0], |s| {
                SLOT_OFFSETS[slot_index_of(&header, &s)]
            });
            self.start = Some((number, path.clone(), at, next_seq, prev));
        }
        let holds_nothing = newest.is_none_or(|s| s.count() == 0 && !s.sealed && !s.clean);
        let breaks = newest.is_some_and(|s| s.first_seq != next_seq || s.anchor != prev);
        if self.past_tear || (breaks && holds_nothing && self.unsealed.is_some()) {
            if !holds_nothing {
                let s = newest.expect("a segment that holds something has a slot");
                return Err(fail(
                    Some(s.first_seq),
                    SLOT_OFFSETS[slot_index_of(&header, &s)],
                    Reason::Continuity("committed records follow a break in the chain"),
                ));
            }
            self.past_tear = true;
            return self.past_the_tear(name, &path, &*file, &header);
        }
        if let Some(s) = newest {
            let at = SLOT_OFFSETS[slot_index_of(&header, &s)];
            if s.first_seq != next_seq {
                return Err(fail(
                    Some(next_seq),
                    at,
                    Reason::Continuity("the commit slot's first seq"),
                ));
            }
            if s.anchor != prev {
                return Err(fail(
                    Some(next_seq),
                    at,
                    Reason::Continuity("the commit slot's anchor is not the previous head"),
                ));
            }
        }
        let committed = newest.map_or(prefix.data_offset, |s| s.committed_len);
        if committed < prefix.data_offset || committed > prefix.file_len {
            return Err(fail(
                None,
                SLOT_OFFSETS[0],
                Reason::SlotMismatch("committed length outside the data region"),
            ));
        }
        if header.file_len < committed {
            return Err(fail(
                None,
                header.file_len,
                Reason::CutShort {
                    committed,
                    actual: header.file_len,
                },
            ));
        }
        if header.file_len != prefix.file_len {
            return Err(fail(
                None,
                header.file_len.min(prefix.file_len),
                Reason::FileLength {
                    expected: prefix.file_len,
                    actual: header.file_len,
                },
            ));
        }

        // The committed records.
        let mut seq = next_seq;
        let mut head = prev;
        let mut older_seen = older.is_some_and(|o| o.count() == 0);
        if let Some(o) = older.filter(|o| o.count() == 0)
            && (o.committed_len != prefix.data_offset || o.head != o.anchor)
        {
            return Err(fail(
                None,
                SLOT_OFFSETS[slot_index_of(&header, &o)],
                Reason::SlotMismatch("an older empty slot with a length or head"),
            ));
        }
        // Batches of records, read ahead on a helper thread: both hashes of every record
        // checked on every core, then seqs and index entries in order.
        let index = {
            let mut index = vec![0u8; (prefix.data_offset - HEADER_LEN) as usize];
            file.read_exact_at(&mut index, HEADER_LEN).map_err(io)?;
            index
        };
        let mut at = prefix.data_offset;
        let read = |b: &mut [u8]| {
            let n = file.read_at(b, at)?;
            at += n as u64;
            Ok(n)
        };
        records::for_each_batch(read, prefix.data_offset, committed, io, |b| {
            let split = &b.split;
            let checks = records::check_records(&b.buf, &split.spans, &head);
            for (span, check) in split.spans.iter().zip(checks) {
                let h = &span.header;
                if h.seq != seq {
                    return Err(fail(
                        Some(seq),
                        span.offset,
                        Reason::Seq {
                            expected: seq,
                            found: h.seq,
                        },
                    ));
                }
                // Leaf, padding, body and chain (against the stored hash before it, which
                // every earlier record's check has tied to the anchor).
                if check.map_err(|r| fail(Some(seq), span.offset, r))? {
                    self.note_prune(seq, span.body(&b.buf));
                }
                head = h.chain;
                let k = seq - next_seq;
                if k.is_multiple_of(INDEX_STRIDE) {
                    let entry = k / INDEX_STRIDE;
                    let at = HEADER_LEN + entry * 4;
                    let Some(bytes) = index.get(entry as usize * 4..entry as usize * 4 + 4) else {
                        return Err(fail(
                            Some(seq),
                            span.offset,
                            Reason::SlotMismatch("more records than the index can hold"),
                        ));
                    };
                    let found = u64::from(u32::from_le_bytes(bytes.try_into().expect("4 bytes")));
                    if found != span.offset {
                        return Err(fail(
                            Some(seq),
                            at,
                            Reason::Index {
                                entry,
                                seq,
                                expected: span.offset,
                                found,
                            },
                        ));
                    }
                }
                let end = span.offset + span.range.len() as u64;
                if let Some(o) = older.filter(|o| o.count() > 0 && o.last_seq == seq) {
                    if o.committed_len != end || o.head != head {
                        return Err(fail(
                            Some(seq),
                            SLOT_OFFSETS[slot_index_of(&header, &o)],
                            Reason::SlotMismatch(
                                "the older commit slot disagrees with the records",
                            ),
                        ));
                    }
                    older_seen = true;
                }
                self.report.record_bytes += span.range.len() as u64;
                seq += 1;
            }
            self.note_times(&b.buf, split.spans.first(), split.spans.last());
            if let Some((offset, reason)) = split.broken.clone() {
                return Err(fail(Some(seq), offset, reason));
            }
            (self.progress)(self.done + b.pos + split.used as u64);
            Ok(())
        })?;
        if let Some(s) = newest {
            let at = SLOT_OFFSETS[slot_index_of(&header, &s)];
            if s.last_seq != seq - 1 {
                return Err(fail(
                    Some(s.last_seq),
                    at,
                    Reason::SlotMismatch("the commit slot's last seq is not the last record's"),
                ));
            }
            if s.head != head {
                return Err(fail(
                    Some(s.last_seq),
                    at,
                    Reason::SlotMismatch(
                        "the commit slot's head is not the last record's chain hash",
                    ),
                ));
            }
        }
        if let Some(o) = older.filter(|_| !older_seen) {
            return Err(fail(
                Some(o.last_seq),
                SLOT_OFFSETS[slot_index_of(&header, &o)],
                Reason::SlotMismatch("the older commit slot names a record that is not there"),
            ));
        }

        // What follows the committed records.
        let sealed = newest.is_some_and(|s| s.sealed);
        if sealed && let Some(e) = self.unsealed.take() {
            let sealed_since = self
                .unsealed_file
                .take()
                .and_then(|f| SegmentHeader::read(&*f).ok())
                .is_some_and(|h| h.newest().is_some_and(|s| s.sealed));
            if sealed_since && !self.last_walk {
                return Err(Stop::Again);
            }
            return Err(Stop::Failed(e));
        }
        if !sealed && self.unsealed.is_none() {
            self.unsealed_file = Some(file.clone());
            self.unsealed = Some(IntegrityError {
                seq: Some(next_seq),
                file: path.clone(),
                offset: newest.map_or(SLOT_OFFSETS[0], |s| {
                    SLOT_OFFSETS[slot_index_of(&header, &s)]
                }),
                reason: Reason::SlotMismatch("a segment before a sealed one is not sealed"),
            });
        }
        let clean = newest.is_some_and(|s| s.clean);
        let mut end = committed;
        if !sealed && !clean {
            let scan = scan_valid(&file, committed, prefix.file_len, seq, head).map_err(io)?;
            if scan.records > 0 {
                // Records written after the last commit: count them, with their index entries.
                let mut c = Cursor::new(file.clone(), committed, scan.end);
                let mut s = seq;
                while let Step::Record(rec) = c.next_record().map_err(io)? {
                    let k = s - next_seq;
                    if k.is_multiple_of(INDEX_STRIDE) {
                        let found = read_index_entry(&*file, k / INDEX_STRIDE).map_err(io)?;
                        if found != rec.offset && found != 0 {
                            return Err(fail(
                                Some(s),
                                index_entry_offset(k / INDEX_STRIDE),
                                Reason::Index {
                                    entry: k / INDEX_STRIDE,
                                    seq: s,
                                    expected: rec.offset,
                                    found,
                                },
                            ));
                        }
                    }
                    self.note_prune(s, rec.body);
                    let timestamp = decode_body(rec.body).map(|e| e.timestamp).ok();
                    self.report.first_timestamp = self.report.first_timestamp.or(timestamp);
                    self.report.last_timestamp = timestamp.or(self.report.last_timestamp);
                    self.report.record_bytes += rec.header.total_len();
                    s += 1;
                }
            }
            end = scan.end;
            seq = scan.next_seq;
            head = scan.head;
        }
        let used = (seq - next_seq).div_ceil(INDEX_STRIDE);
        let unused_index = index_entry_offset(used);
        let unused_nonzero = index
            .get((unused_index - HEADER_LEN) as usize..)
            .unwrap_or(&[])
            .iter()
            .position(|&b| b != 0)
            .map(|i| unused_index + i as u64);
        if sealed || clean {
            if let Some(at) = unused_nonzero {
                return Err(fail(None, at, Reason::NonZero("unused index entries")));
            }
            if let Some(at) = first_nonzero(&*file, end, prefix.file_len).map_err(io)? {
                return Err(fail(
                    Some(seq),
                    at,
                    Reason::NonZero("the space after the last record"),
                ));
            }
        } else {
            self.note_torn_tail(&*file, &path, end, prefix.file_len, seq - 1)?;
            if let Some(at) = unused_nonzero {
                self.report.notes.push(format!(
                    "{name}: index entries past the last valid record, from byte {at} \
                     (left by a crash, or by a writer still writing)"
                ));
            }
        }
        self.chain = Some((seq, head));
        self.done += header.file_len;
        (self.progress)(self.done);
        Ok(())
    }
}

impl Walk<'_> {
    /// Reports a segment past a tear (see [`Walk::past_tear`]) as a crash leaves it: a note,
    /// and its data region as the torn tail if none was found before it.
    fn past_the_tear(
        &mut self,
        name: &str,
        path: &Path,
        file: &dyn SegmentFile,
        header: &SegmentHeader,
    ) -> Result<(), Stop> {
        let last_seq = self.chain.map_or(0, |c| c.0 - 1);
        let prefix = &header.prefix;
        self.note_torn_tail(file, path, prefix.data_offset, prefix.file_len, last_seq)?;
        self.report.notes.push(format!(
            "{name}: past a tear (the chain ends at seq {last_seq} in the segment before, short \
             of where this one was activated); it holds nothing committed, as when a crash \
             interrupts the sealing of the segment before it (opening the log for writing \
             removes it)"
        ));
        self.done += header.file_len;
        (self.progress)(self.done);
        Ok(())
    }

    /// Reports the non-zero bytes of `[start, file_len)`, if any, as the torn tail (after the
    /// record `after_seq`), unless one was found before.
    fn note_torn_tail(
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

    /// Keeps what the prune record at `seq` says, if its details are those of FORMAT.md §14.1
    /// (any other justifies nothing).
    fn note_prune(&mut self, seq: u64, body: &[u8]) {
        if let Ok(d) = PruneDetails::from_record(body, seq) {
            self.pruned.push((d.first_seq, d.last_seq, d.head));
        }
    }

    /// A log that does not start at seq 1 of segment 1 must hold the prune record that says
    /// where the records before it ended; or, if a crash interrupted the removal of a prune's
    /// files (oldest first), one whose range holds the seq before the log's first.
    fn unjustified_start(&self) -> Option<IntegrityError> {
        let (number, file, offset, first_seq, anchor) = self.start.clone()?;
        if number == 1 && first_seq == 1 && anchor == Hash::ZERO {
            return None;
        }
        let before = first_seq - 1;
        let justified = self.pruned.iter().any(|&(first, last, head)| {
            (first..last).contains(&before) || (before == last && head == anchor)
        });
        (!justified).then_some(IntegrityError {
            seq: Some(first_seq),
            file,
            offset,
            reason: Reason::Unpruned { first_seq, anchor },
        })
    }

    /// Keeps the origin timestamps of the log's first record and of the last one seen.
    fn note_times(
        &mut self,
        buf: &[u8],
        first: Option<&records::Span>,
        last: Option<&records::Span>,
    ) {
        let time = |s: &records::Span| decode_body(s.body(buf)).ok().map(|e| e.timestamp);
        if self.report.first_timestamp.is_none() {
            self.report.first_timestamp = first.and_then(time);
        }
        if let Some(t) = last.and_then(time) {
            self.report.last_timestamp = Some(t);
        }
    }
}

/// Which slot position holds `s`.
fn slot_index_of(header: &SegmentHeader, s: &Slot) -> usize {
    (0..2)
        .find(|&i| header.slots[i] == SlotState::Valid(*s))
        .unwrap_or(0)
}

/// The first non-zero byte of the header page outside the prefix and the two slots.
fn nonzero_outside_prefix_and_slots(page: &[u8]) -> Option<u64> {
    let mut carried = vec![false; page.len()];
    carried[..PREFIX_LEN].iter_mut().for_each(|c| *c = true);
    for at in SLOT_OFFSETS {
        let at = at as usize;
        carried[at..at + SLOT_LEN]
            .iter_mut()
            .for_each(|c| *c = true);
    }
    page.iter()
        .zip(&carried)
        .position(|(&b, &c)| b != 0 && !c)
        .map(|i| i as u64)
}
