//! Point-in-time views of a log, and queries over them.
//!
//! A [`Snapshot`] is one `Arc` the sequencer published: a head seq and hash, and the segments to
//! read up to it. Taking one is a single atomic load; holding one stops nobody. Reads copy
//! records out of the segment files below the published end, which the sequencer never writes
//! again, so a snapshot sees exactly the records up to its head, however many are appended
//! meanwhile.
//!
//! Lookups by seq go through each segment's sparse index (one entry every 64 records), so
//! [`Snapshot::get`], [`Snapshot::range`] and [`Snapshot::last`] read at most 63 records they do
//! not return. Filters ([`Query`]) scan the records in range without allocating for those that
//! do not match.

use std::collections::VecDeque;
use std::fmt;
use std::ops::{Bound, RangeBounds};
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::{Error, IntegrityError, Reason};
use crate::format::event::{Record, RecordRef, decode_body};
use crate::format::hash::Hash;
use crate::format::log_id::LogId;
use crate::format::segment::{INDEX_STRIDE, RecordHeader};
use crate::read::cursor::{Cursor, Owned, Step};
use crate::read::published::Published;
use crate::read::segment_end::read_index_entry;

/// A consistent, read-only view of a log up to one head.
#[derive(Clone)]
pub struct Snapshot {
    view: Arc<Published>,
}

impl Snapshot {
    pub(crate) fn new(view: Arc<Published>) -> Snapshot {
        Snapshot { view }
    }

    /// Seq of the first record in the log (1, unless older records were pruned).
    pub fn first_seq(&self) -> u64 {
        self.view.first_seq
    }

    /// Seq of the last record in the view; `first_seq() - 1` when the log is empty.
    pub fn head_seq(&self) -> u64 {
        self.view.head_seq
    }

    /// Chain hash after the last record: it commits to every record in the view.
    pub fn head(&self) -> Hash {
        self.view.head
    }

    /// Chain hash before the first record (all zeros for a log starting at seq 1).
    pub fn anchor(&self) -> Hash {
        self.view.anchor
    }

    /// Number of records in the view.
    pub fn len(&self) -> u64 {
        self.view.head_seq + 1 - self.view.first_seq
    }

    /// Whether the view holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The log's identity: 16 random bytes drawn when the log was created, in every segment's
    /// header.
    pub fn log_id(&self) -> LogId {
        LogId(self.view.log_id)
    }

    /// Where the log is (its directory, for a file-system log).
    pub fn location(&self) -> &std::path::Path {
        self.view.storage.location()
    }

    /// The storage the log is in.
    pub(crate) fn storage(&self) -> &dyn crate::storage::Storage {
        &*self.view.storage
    }

    /// The storage of the log, shared.
    pub(crate) fn storage_arc(&self) -> Arc<dyn crate::storage::Storage> {
        self.view.storage.clone()
    }

    /// Number of segment files the view spans.
    pub fn segment_count(&self) -> usize {
        self.view.segments.len()
    }

    /// The record with sequence number `seq`, if it is in the view.
    pub fn get(&self, seq: u64) -> Result<Option<Record>, Error> {
        if seq < self.view.first_seq || seq > self.view.head_seq {
            return Ok(None);
        }
        self.range(seq..=seq).next().transpose()
    }

    /// The records with sequence numbers in `range`, in order (clamped to the view).
    pub fn range(&self, range: impl RangeBounds<u64>) -> Records<'_> {
        let from = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_sub(1),
            Bound::Unbounded => u64::MAX,
        };
        Records {
            snap: self,
            next: from.max(self.view.first_seq),
            last: to.min(self.view.head_seq),
            // Excluded(0) as an end is empty: nothing is below seq 1.
            empty: matches!(range.end_bound(), Bound::Excluded(&0)),
            seg: None,
            body: Vec::new(),
        }
    }

    /// Every record, in order.
    // `for r in &snapshot` would be new API, beyond this method.
    #[allow(clippy::iter_without_into_iter)]
    pub fn iter(&self) -> Records<'_> {
        self.range(..)
    }

    /// The last `n` records, in order.
    pub fn last(&self, n: u64) -> Records<'_> {
        let from = (self.view.head_seq + 1).saturating_sub(n);
        self.range(from..)
    }

    /// The records that match `query`, in seq order.
    pub fn query(&self, query: &Query) -> Result<Vec<Record>, Error> {
        let mut records = self.range((query.from, query.to));
        let mut out = VecDeque::new();
        while let Some(r) = records.next_ref() {
            let r = r?;
            if !query.matches(&r) {
                continue;
            }
            if query.newest && query.limit == Some(out.len()) {
                out.pop_front();
            }
            out.push_back(r.to_record());
            if !query.newest && query.limit == Some(out.len()) {
                break;
            }
        }
        if query.limit == Some(0) {
            out.clear();
        }
        Ok(out.into())
    }

    /// One summary per segment file of the view, oldest first. Reads the header of each sealed
    /// segment this view has not read yet.
    pub fn segments(&self) -> Result<Vec<SegmentSummary>, Error> {
        let view = &*self.view;
        let storage = &*view.storage;
        let mut out = Vec::with_capacity(view.segments.len());
        for (i, entry) in view.segments.iter().enumerate() {
            let info = entry.info(storage)?;
            let (last_seq, end) = view.segment_end(i, &info);
            let path = entry.path(storage);
            let file_len = entry
                .open(storage)?
                .size()
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            out.push(SegmentSummary {
                number: entry.number,
                path,
                first_seq: info.first_seq,
                last_seq,
                record_bytes: end - info.data_offset,
                file_bytes: file_len,
                sealed: entry.sealed(&info),
            });
        }
        Ok(out)
    }

    /// The segments numbered `from` or more that the writer has moved past, as (segment
    /// number, seq of its last record), oldest first. The last segment is left out: it may
    /// still be active.
    pub(crate) fn rolled_from(&self, from: u64) -> Result<Vec<(u64, u64)>, Error> {
        let view = &*self.view;
        let mut out = Vec::new();
        for pair in view.segments.windows(2) {
            if pair[0].number >= from {
                let next = pair[1].info(&*view.storage)?;
                out.push((pair[0].number, next.first_seq.saturating_sub(1)));
            }
        }
        Ok(out)
    }

    /// The number of the view's last segment (0 if it has none).
    pub(crate) fn last_segment_number(&self) -> u64 {
        self.view.segments.last().map_or(0, |s| s.number)
    }

    /// Keeps the files of segments numbered up to `last_segment` open for as long as any view
    /// holding them lives: retention removes them next.
    pub(crate) fn pin_files(&self, last_segment: u64) -> Result<(), Error> {
        let storage = &*self.view.storage;
        for entry in self
            .view
            .segments
            .iter()
            .filter(|e| e.number <= last_segment)
        {
            entry.pin(storage)?;
        }
        Ok(())
    }

    /// Where records `from..=to` are stored: one stretch of bytes per segment, each holding
    /// whole records back to back, as a bundle holds them.
    pub(crate) fn regions(&self, from: u64, to: u64) -> Result<Vec<Region>, Error> {
        let mut out = Vec::new();
        let mut seq = from;
        while seq <= to {
            let mut at = self.locate(seq)?;
            let start = at.seek(seq)?;
            let last_seq = at.last_seq.min(to);
            let end = if last_seq == at.last_seq {
                at.cursor.end()
            } else {
                at.seek(last_seq + 1)?
            };
            out.push(Region {
                file: at.cursor.file().clone(),
                path: at.path,
                start,
                end,
                first_seq: seq,
                last_seq,
            });
            seq = last_seq + 1;
        }
        Ok(out)
    }

    /// Where the record `seq` starts and the segment it is in.
    fn locate(&self, seq: u64) -> Result<Located, Error> {
        let view = &*self.view;
        let storage = &*view.storage;
        let segs = &view.segments;
        // Most reads are of recent records: try the last segment first.
        let last = segs.len() - 1;
        let mut i = last;
        if segs[last].info(storage)?.first_seq > seq {
            let (mut lo, mut hi) = (0, last);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if segs[mid].info(storage)?.first_seq <= seq {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            i = lo;
        }
        let entry = &segs[i];
        let info = entry.info(storage)?;
        let (last_seq, end) = view.segment_end(i, &info);
        let path = entry.path(storage);
        let file = entry.open(storage)?;
        // Start at the index entry for `seq`'s stride. An entry of 0 was never written, or a
        // crash lost it (records past the last commit): start from an earlier one instead.
        let Some(k) = seq.checked_sub(info.first_seq) else {
            return Err(Error::Config(format!(
                "record {seq} is not in the log, which starts at seq {}",
                info.first_seq
            )));
        };
        let mut entry_no = k / INDEX_STRIDE;
        let offset = loop {
            if entry_no == 0 {
                break info.data_offset;
            }
            let at = read_index_entry(&*file, entry_no)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            if at == 0 {
                entry_no -= 1;
                continue;
            }
            if at < info.data_offset || at >= end {
                let stride_start = info.first_seq + entry_no * INDEX_STRIDE;
                return Err(IntegrityError {
                    seq: Some(stride_start),
                    file: path,
                    offset: crate::format::segment::index_entry_offset(entry_no),
                    reason: Reason::Index {
                        entry: entry_no,
                        seq: stride_start,
                        expected: 0,
                        found: at,
                    },
                }
                .into());
            }
            break at;
        };
        let stride_start = info.first_seq + entry_no * INDEX_STRIDE;
        Ok(Located {
            last_seq,
            cursor: Cursor::new(file, offset, end),
            cursor_seq: stride_start,
            path,
        })
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("first_seq", &self.first_seq())
            .field("head_seq", &self.head_seq())
            .field("head", &self.head())
            .finish()
    }
}

/// One segment file of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SegmentSummary {
    /// The segment's number (its position in the log, from 1).
    pub number: u64,
    /// The file.
    pub path: PathBuf,
    /// Seq of its first record.
    pub first_seq: u64,
    /// Seq of its last record in the view (`first_seq - 1` if it has none).
    pub last_seq: u64,
    /// Bytes of records it holds (in the view).
    pub record_bytes: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Whether it is sealed (complete, and its commit slot says so). The last segment of a log
    /// being written is not; nor, until a writer reopens the log, is a segment before it whose
    /// sealing a crash interrupted.
    pub sealed: bool,
}

/// A stretch of one segment file holding records `first_seq..=last_seq`, back to back.
pub(crate) struct Region {
    pub(crate) file: Arc<dyn crate::storage::SegmentFile>,
    pub(crate) path: PathBuf,
    /// File offsets of the first record and of the end of the last.
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
}

/// A cursor positioned in one segment.
struct Located {
    /// Last seq to read from this segment.
    last_seq: u64,
    cursor: Cursor,
    /// Seq of the record at the cursor.
    cursor_seq: u64,
    path: PathBuf,
}

impl Located {
    /// Moves the cursor forward to record `seq` (at most one index stride) and returns where
    /// it starts.
    fn seek(&mut self, seq: u64) -> Result<u64, Error> {
        while self.cursor_seq < seq {
            let want = self.cursor_seq;
            let fail = |offset: u64, reason: Reason| -> Error {
                IntegrityError {
                    seq: Some(want),
                    file: self.path.clone(),
                    offset,
                    reason,
                }
                .into()
            };
            let step = self
                .cursor
                .next_record()
                .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
            match step {
                Step::Record(r) if r.header.seq == want => {}
                Step::Record(r) => {
                    let found = r.header.seq;
                    let offset = r.offset;
                    return Err(fail(
                        offset,
                        Reason::Seq {
                            expected: want,
                            found,
                        },
                    ));
                }
                Step::End => {
                    let at = self.cursor.position();
                    return Err(fail(
                        at,
                        Reason::SlotMismatch("the segment ends before the snapshot's head"),
                    ));
                }
                Step::Broken { offset, reason } => return Err(fail(offset, reason)),
            }
            self.cursor_seq += 1;
        }
        Ok(self.cursor.position())
    }
}

/// Records of a snapshot in seq order; each is read from its segment file when reached.
///
/// Yields `Err` once, and then nothing, if a record cannot be read or is not what the index and
/// the seq order say it must be (run [`verify`](crate::verify()) for a full check).
pub struct Records<'s> {
    snap: &'s Snapshot,
    next: u64,
    last: u64,
    empty: bool,
    seg: Option<Located>,
    /// The current record's body, copied out of the segment.
    body: Vec<u8>,
}

impl Records<'_> {
    /// The next record, borrowed from the iterator's buffer: no allocation.
    pub fn next_ref(&mut self) -> Option<Result<RecordRef<'_>, Error>> {
        if self.empty || self.next > self.last {
            return None;
        }
        let (seq, header) = match self.advance() {
            Ok(found) => found,
            Err(e) => {
                self.empty = true;
                return Some(Err(e));
            }
        };
        // `advance` checked that the body decodes.
        let env = match decode_body(&self.body) {
            Ok(env) => env,
            Err(e) => return Some(Err(Error::Config(format!("undecodable body: {e}")))),
        };
        Some(Ok(env.record(seq, header.leaf, header.chain)))
    }

    /// Reads record `self.next` into `self.body`.
    fn advance(&mut self) -> Result<(u64, RecordHeader), Error> {
        let seq = self.next;
        if self.seg.as_ref().is_none_or(|s| seq > s.last_seq) {
            self.seg = Some(self.snap.locate(seq)?);
        }
        let seg = self.seg.as_mut().expect("located");
        loop {
            let want = seg.cursor_seq;
            let step = seg
                .cursor
                .next_owned(&mut self.body)
                .map_err(|e| Error::io(format!("reading {}", seg.path.display()), e))?;
            let fail = |offset: u64, reason: Reason| -> Error {
                IntegrityError {
                    seq: Some(want),
                    file: seg.path.clone(),
                    offset,
                    reason,
                }
                .into()
            };
            let (offset, header) = match step {
                Owned::Record { offset, header, .. } => (offset, header),
                Owned::End => {
                    return Err(fail(
                        seg.cursor.position(),
                        Reason::SlotMismatch("the segment ends before the snapshot's head"),
                    ));
                }
                Owned::Broken { offset, reason } => return Err(fail(offset, reason)),
            };
            if header.seq != want {
                return Err(fail(
                    offset,
                    Reason::Seq {
                        expected: want,
                        found: header.seq,
                    },
                ));
            }
            seg.cursor_seq += 1;
            if want < seq {
                continue;
            }
            decode_body(&self.body).map_err(|e| fail(offset, Reason::Body(e)))?;
            self.next += 1;
            return Ok((seq, header));
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|r| r.to_record()))
    }
}

/// A filter over a snapshot's records: every condition given must hold.
///
/// ```
/// use auditring::Query;
/// let q = Query::new().kind("plan.applied").actor("alice").last(10);
/// # let _ = q;
/// ```
#[must_use]
#[derive(Clone, Debug)]
pub struct Query {
    kind: Option<String>,
    actor: Option<String>,
    trace_id: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
    from: Bound<u64>,
    to: Bound<u64>,
    limit: Option<usize>,
    newest: bool,
}

impl Default for Query {
    fn default() -> Query {
        Query::new()
    }
}

impl Query {
    /// Matches every record.
    pub fn new() -> Query {
        Query {
            kind: None,
            actor: None,
            trace_id: None,
            since: None,
            until: None,
            from: Bound::Unbounded,
            to: Bound::Unbounded,
            limit: None,
            newest: false,
        }
    }

    /// Only events of this kind.
    pub fn kind(mut self, kind: impl Into<String>) -> Query {
        self.kind = Some(kind.into());
        self
    }

    /// Only events by this actor.
    pub fn actor(mut self, actor: impl Into<String>) -> Query {
        self.actor = Some(actor.into());
        self
    }

    /// Only events of this trace.
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> Query {
        self.trace_id = Some(trace_id.into());
        self
    }

    /// Only events whose origin timestamp is at or after `nanos`.
    pub fn since(mut self, nanos: i64) -> Query {
        self.since = Some(nanos);
        self
    }

    /// Only events whose origin timestamp is before `nanos`.
    pub fn until(mut self, nanos: i64) -> Query {
        self.until = Some(nanos);
        self
    }

    /// Only events with sequence numbers in `range`.
    pub fn seqs(mut self, range: impl RangeBounds<u64>) -> Query {
        self.from = range.start_bound().cloned();
        self.to = range.end_bound().cloned();
        self
    }

    /// At most `n` results: the first `n` matches.
    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self.newest = false;
        self
    }

    /// At most `n` results: the last `n` matches (still returned in seq order).
    pub fn last(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self.newest = true;
        self
    }

    /// Whether a record passes every filter (the seq range and limit aside).
    pub fn matches(&self, r: &RecordRef<'_>) -> bool {
        self.kind.as_deref().is_none_or(|k| r.kind == k)
            && self.actor.as_deref().is_none_or(|a| r.actor == Some(a))
            && self
                .trace_id
                .as_deref()
                .is_none_or(|t| r.trace_id == Some(t))
            && self.since.is_none_or(|s| r.timestamp >= s)
            && self.until.is_none_or(|u| r.timestamp < u)
    }
}
