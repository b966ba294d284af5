//! Opening a log: finding where its valid records end, in time independent of its size, and,
//! for a writer, repairing what a crash left behind.
//!
//! A log's segments are all sealed but the last few (normally one; two or more only when a crash
//! interrupted the sealing of a full segment). [`examine`] reads the header of the last sealed
//! segment and of each segment after it, and nothing else:
//!
//! * the last sealed segment's last committed record must match its seal;
//! * each later segment must continue the chain; the last record its commit slot names must
//!   match the slot (see [`check_committed_head`]);
//! * past the committed length of those segments, records are accepted while each continues the
//!   chain ([`scan_valid`]); a segment closed cleanly is not looked at past its committed length.
//!
//! Damage inside a committed region is an error naming the seq, file, offset and reason. What
//! lies past the last valid record is a torn tail: never acknowledged as durable, it is trimmed
//! by [`recover`] (zeroed, so a later scan cannot mistake it for records) and reported.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, IntegrityError, Reason};
use crate::format::event::now_nanos;
use crate::format::hash::Hash;
use crate::format::segment::{
    INDEX_STRIDE, PREFIX_LOG_ID_AT, PREFIX_NUMBER_AT, Prefix, SLOT_OFFSETS, Slot, data_offset_for,
    index_entry_offset, slot_offset,
};
use crate::read::cursor::{Cursor, Step, last_nonzero_end};
use crate::read::published::{Published, SegmentEntry, SegmentInfo};
use crate::read::segment_end::{CheckError, check_committed_head, scan_valid};
use crate::storage::header::{ReadHeaderError, SegmentHeader, header_error_offset};
use crate::storage::listing::{Listing, check_gapless, list, open_error};
use crate::storage::mapped::MappedSegment;
use crate::storage::names::segment_name;
use crate::storage::{SegmentFile, Storage};

/// Bytes past the last valid record that a crash left behind.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TornTail {
    /// The segment file.
    pub file: PathBuf,
    /// Where the last valid record ends.
    pub offset: u64,
    /// How many bytes after it, up to the last non-zero one, are not valid records.
    pub len: u64,
    /// Seq of the last valid record before the tear.
    pub after_seq: u64,
}

/// What opening a log for writing found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// The log did not exist and was created.
    pub created: bool,
    /// The log had been closed cleanly: nothing past the committed length was examined.
    pub clean: bool,
    /// Valid records found past the last commit (written before a crash, not yet committed).
    pub recovered: u64,
    /// A torn tail that was trimmed.
    pub torn_tail: Option<TornTail>,
    /// Segments whose sealing a crash had interrupted, sealed now.
    pub sealed: Vec<String>,
    /// Files removed: interrupted segment creations, and segments past a tear that held nothing
    /// committed.
    pub removed: Vec<String>,
    /// Segments that another process had cut short (`truncate`, logrotate's copytruncate)
    /// without removing any committed record: extended back to their length, and recovered to
    /// their last committed state (and the valid records after it) as after a crash. A cut
    /// that removed committed records is an integrity failure instead
    /// ([`Reason::CutShort`](crate::Reason::CutShort)).
    pub extended: Vec<String>,
}

/// A segment after the last sealed one whose records continue the chain.
pub(crate) struct Live {
    pub(crate) number: u64,
    pub(crate) name: String,
    pub(crate) file: Arc<dyn SegmentFile>,
    pub(crate) header: SegmentHeader,
    /// The newest valid commit slot, if any.
    pub(crate) slot: Option<Slot>,
    pub(crate) first_seq: u64,
    pub(crate) anchor: Hash,
    /// Where the valid records end.
    pub(crate) end: u64,
    /// Seq of the last valid record (`first_seq - 1` if none).
    pub(crate) last_seq: u64,
    /// Chain hash after it.
    pub(crate) head: Hash,
    /// Closed cleanly: nothing was looked at past the committed length.
    pub(crate) clean: bool,
}

/// The state of a log's end.
pub(crate) struct Examined {
    pub(crate) listing: Listing,
    pub(crate) log_id: [u8; 16],
    /// Seq of the log's first record.
    pub(crate) first_seq: u64,
    /// Chain hash before it.
    pub(crate) anchor: Hash,
    /// Segments up to the last sealed one, oldest first.
    pub(crate) sealed: Vec<Arc<SegmentEntry>>,
    /// Seq and chain hash after the last sealed segment (or at the log's start).
    pub(crate) sealed_next_seq: u64,
    pub(crate) sealed_head: Hash,
    /// Segments after the last sealed one that continue the chain.
    pub(crate) live: Vec<Live>,
    /// Segments past a tear: they hold nothing committed.
    pub(crate) beyond: Vec<String>,
    /// Valid records found past committed lengths.
    pub(crate) recovered: u64,
    /// Segments that another process cut short past their committed records, extended back to
    /// their length (by a writer only).
    pub(crate) extended: Vec<String>,
}

fn integrity(seq: Option<u64>, file: PathBuf, offset: u64, reason: Reason) -> Error {
    Error::from(IntegrityError {
        seq,
        file,
        offset,
        reason,
    })
}

/// Reads a segment's header, turning failures into errors that name the file.
pub(crate) fn read_header(
    file: &dyn SegmentFile,
    path: &std::path::Path,
) -> Result<SegmentHeader, Error> {
    SegmentHeader::read(file).map_err(|e| match e {
        ReadHeaderError::Io(e) => Error::io(format!("reading {}", path.display()), e),
        ReadHeaderError::Header(h) => integrity(
            None,
            path.to_path_buf(),
            header_error_offset(&h),
            Reason::Header(h),
        ),
    })
}

fn check_error(e: CheckError, path: &std::path::Path) -> Error {
    match e {
        CheckError::Io(e) => Error::io(format!("reading {}", path.display()), e),
        CheckError::Integrity(e) => Error::from(e),
    }
}

/// Checks a file against its header's length and committed length.
fn check_length(
    header: &SegmentHeader,
    slot: Option<&Slot>,
    path: &std::path::Path,
) -> Result<(), Error> {
    if let Some(s) = slot
        && s.committed_len > header.file_len
    {
        return Err(integrity(
            None,
            path.to_path_buf(),
            header.file_len,
            Reason::CutShort {
                committed: s.committed_len,
                actual: header.file_len,
            },
        ));
    }
    if header.file_len != header.prefix.file_len {
        return Err(integrity(
            None,
            path.to_path_buf(),
            header.file_len.min(header.prefix.file_len),
            Reason::FileLength {
                expected: header.prefix.file_len,
                actual: header.file_len,
            },
        ));
    }
    Ok(())
}

/// Examines the end of the log in `storage`; `None` if it has no segments. Reads only the
/// headers and committed heads of the last segments, and the records past their commits.
pub(crate) fn examine(storage: &dyn Storage, write: bool) -> Result<Option<Examined>, Error> {
    let listing = list(storage)?;
    if listing.segments.is_empty() {
        return Ok(None);
    }
    check_gapless(storage, &listing)?;
    let examiner = Examiner {
        storage,
        segments: &listing.segments,
        write,
    };
    let end = examiner.read_end()?;
    let log_id = examiner.log_id(&end)?;
    let sealed = examiner.sealed(&end)?;
    let (first_seq, anchor) = match sealed.entries.first() {
        Some(first) => {
            let info = first.info(storage)?;
            (info.first_seq, info.anchor)
        }
        None => (sealed.next_seq, sealed.head),
    };
    let tail = examiner.follow_tail(end.tail, sealed.next_seq, sealed.head)?;
    Ok(Some(Examined {
        listing,
        log_id,
        first_seq,
        anchor,
        sealed: sealed.entries,
        sealed_next_seq: sealed.next_seq,
        sealed_head: sealed.head,
        live: tail.live,
        beyond: tail.beyond,
        recovered: tail.recovered,
        extended: tail.extended,
    }))
}

/// A segment of the log's end, opened, with its header.
struct Opened {
    /// Its position in the listing.
    index: usize,
    file: Arc<dyn SegmentFile>,
    header: SegmentHeader,
}

/// The last segments of a log, as [`Examiner::read_end`] finds them.
struct End {
    /// The last sealed segment, if any.
    last_sealed: Option<Opened>,
    /// The segments after it, oldest first.
    tail: Vec<Opened>,
}

/// The segments up to the last sealed one, and where the chain stands after them.
struct Sealed {
    /// Oldest first; only the last one's bounds are read.
    entries: Vec<Arc<SegmentEntry>>,
    /// Seq of the record that comes next.
    next_seq: u64,
    /// Chain hash before it.
    head: Hash,
}

/// The segments after the last sealed one, as [`Examiner::follow_tail`] finds them.
struct Tail {
    /// Those that continue the chain, oldest first.
    live: Vec<Live>,
    /// Those past a tear, which hold nothing committed.
    beyond: Vec<String>,
    /// Valid records found past committed lengths.
    recovered: u64,
    /// Segments cut short by another process, extended back to their length.
    extended: Vec<String>,
}

/// What one segment after the last sealed one turned out to be.
enum Followed {
    /// It continues the chain; `recovered` of its records lie past its commit.
    Live { live: Box<Live>, recovered: u64 },
    /// It lies past a tear: it and every segment after it hold nothing committed.
    Beyond,
}

/// The phases of [`examine`], over the segments of one listing.
struct Examiner<'a> {
    storage: &'a dyn Storage,
    /// The listing's segments, numbered without gaps.
    segments: &'a [(u64, String)],
    /// Opening for a writer: segments cut short are extended.
    write: bool,
}

impl Examiner<'_> {
    fn path(&self, index: usize) -> PathBuf {
        self.storage.location().join(&self.segments[index].1)
    }

    /// Opens segment `index` of the listing and reads its header, which must name the file's
    /// own number.
    fn open(&self, index: usize) -> Result<Opened, Error> {
        let (number, name) = &self.segments[index];
        let file = self
            .storage
            .open(name, self.write)
            .map_err(|e| open_error(self.storage, *number, name, "opening", e))?;
        let header = read_header(&*file, &self.path(index))?;
        if header.prefix.number != *number {
            return Err(integrity(
                None,
                self.path(index),
                PREFIX_NUMBER_AT as u64,
                Reason::SegmentNumber {
                    header: header.prefix.number,
                    name: *number,
                },
            ));
        }
        Ok(Opened {
            index,
            file,
            header,
        })
    }

    /// Reads the headers of the segments from the newest back to the last sealed one, and no
    /// further.
    fn read_end(&self) -> Result<End, Error> {
        let mut tail = Vec::new();
        let mut last_sealed = None;
        for index in (0..self.segments.len()).rev() {
            let opened = self.open(index)?;
            if opened.header.newest().is_some_and(|s| s.sealed) {
                last_sealed = Some(opened);
                break;
            }
            tail.push(opened);
        }
        tail.reverse();
        Ok(End { last_sealed, tail })
    }

    /// The log's id, which every segment read names.
    fn log_id(&self, end: &End) -> Result<[u8; 16], Error> {
        let read = || end.last_sealed.iter().chain(&end.tail);
        let log_id = read()
            .next()
            .expect("at least one segment was read")
            .header
            .prefix
            .log_id;
        match read().find(|o| o.header.prefix.log_id != log_id) {
            Some(other) => Err(integrity(
                None,
                self.path(other.index),
                PREFIX_LOG_ID_AT as u64,
                Reason::LogId,
            )),
            None => Ok(log_id),
        }
    }

    /// The segments up to the last sealed one, whose last committed record is checked against
    /// its seal, and where the chain stands after them; with none sealed, where the log starts
    /// (the first segment's commit slot, or seq 1 for segment 1).
    fn sealed(&self, end: &End) -> Result<Sealed, Error> {
        let Some(Opened {
            index,
            file,
            header,
        }) = &end.last_sealed
        else {
            let first = &end.tail[0];
            let (next_seq, head) = match first.header.newest() {
                Some(s) => (s.first_seq, s.anchor),
                None if self.segments[first.index].0 == 1 => (1, Hash::ZERO),
                None => {
                    return Err(integrity(
                        None,
                        self.path(first.index),
                        SLOT_OFFSETS[0],
                        Reason::SlotMismatch(
                            "the first segment has no commit slot to say where the log starts",
                        ),
                    ));
                }
            };
            return Ok(Sealed {
                entries: Vec::new(),
                next_seq,
                head,
            });
        };
        let (number, name) = &self.segments[*index];
        let path = self.path(*index);
        let slot = header.newest().expect("sealed slot");
        check_length(header, Some(&slot), &path)?;
        check_committed_head(file, &path, &header.prefix, &slot)
            .map_err(|e| check_error(e, &path))?;
        let mut entries: Vec<Arc<SegmentEntry>> = self.segments[..*index]
            .iter()
            .map(|(n, name)| Arc::new(SegmentEntry::lazy(*n, name.clone())))
            .collect();
        entries.push(Arc::new(SegmentEntry::known(
            *number,
            name.clone(),
            None,
            SegmentInfo {
                first_seq: slot.first_seq,
                anchor: slot.anchor,
                data_offset: header.prefix.data_offset,
                end: Some((slot.last_seq, slot.committed_len)),
            },
        )));
        Ok(Sealed {
            entries,
            next_seq: slot.last_seq + 1,
            head: slot.head,
        })
    }

    /// Follows the chain from `next_seq` and `prev` through the segments after the last sealed
    /// one, up to the first that does not continue it; those after that must hold nothing
    /// committed.
    fn follow_tail(&self, tail: Vec<Opened>, next_seq: u64, prev: Hash) -> Result<Tail, Error> {
        let mut found = Tail {
            live: Vec::new(),
            beyond: Vec::new(),
            recovered: 0,
            extended: Vec::new(),
        };
        let (mut next_seq, mut prev) = (next_seq, prev);
        let last_index = tail.len().saturating_sub(1);
        let mut tail = tail.into_iter().enumerate();
        for (k, mut opened) in tail.by_ref() {
            let name = self.segments[opened.index].1.clone();
            if self.restore_length(&mut opened)? {
                found.extended.push(name.clone());
            }
            match self.follow(opened, k, k == last_index, next_seq, prev)? {
                Followed::Live { live, recovered } => {
                    next_seq = live.last_seq + 1;
                    prev = live.head;
                    found.recovered += recovered;
                    found.live.push(*live);
                }
                Followed::Beyond => {
                    found.beyond.push(name);
                    break;
                }
            }
        }
        // Whatever follows a tear must hold nothing committed.
        for (_, opened) in tail {
            if let Some(s) = opened.header.newest().filter(|s| s.count() > 0) {
                return Err(integrity(
                    Some(s.first_seq),
                    self.path(opened.index),
                    slot_offset(s.generation),
                    Reason::Continuity("committed records follow a break in the chain"),
                ));
            }
            found.beyond.push(self.segments[opened.index].1.clone());
        }
        Ok(found)
    }

    /// For a writer, gives a segment that another process cut (`truncate`, logrotate's
    /// copytruncate) past its committed records back its length, zeros where the cut was, so
    /// that it goes on from its last committed state as after a crash. Whether it did.
    fn restore_length(&self, opened: &mut Opened) -> Result<bool, Error> {
        let header = &mut opened.header;
        let intact = header
            .newest()
            .is_none_or(|s| s.committed_len <= header.file_len);
        if !(self.write && intact && header.file_len < header.prefix.file_len) {
            return Ok(false);
        }
        extend(&*opened.file, header.file_len, header.prefix.file_len).map_err(|e| {
            Error::io(
                format!("extending {}", self.path(opened.index).display()),
                e,
            )
        })?;
        header.file_len = header.prefix.file_len;
        Ok(true)
    }

    /// Follows the chain from `next_seq` and `prev` through `opened`, the `k`-th segment after
    /// the last sealed one (`last` if it is the log's last): its length must be whole, and its
    /// commit slot, if it has one, must start where the chain is and name its last committed
    /// record; past its commit, records are accepted while they continue the chain, unless it
    /// was closed cleanly.
    fn follow(
        &self,
        opened: Opened,
        k: usize,
        last: bool,
        next_seq: u64,
        prev: Hash,
    ) -> Result<Followed, Error> {
        let Opened {
            index,
            file,
            header,
        } = opened;
        let (number, name) = self.segments[index].clone();
        let p = self.path(index);
        let slot = header.newest();
        check_length(&header, slot.as_ref(), &p)?;
        match slot {
            Some(s) if s.first_seq == next_seq && s.anchor == prev => {
                check_committed_head(&file, &p, &header.prefix, &s)
                    .map_err(|e| check_error(e, &p))?;
            }
            Some(s) if s.count() > 0 => {
                return Err(integrity(
                    Some(s.first_seq),
                    p,
                    slot_offset(s.generation),
                    Reason::Continuity("its commit slot does not start where the chain is"),
                ));
            }
            Some(_) => return Ok(Followed::Beyond),
            None => {}
        }
        // Up to its commit (its data region's start, without a slot), the segment continues
        // the chain from `next_seq` and `prev`.
        let end = slot.map_or(header.prefix.data_offset, |s| s.committed_len);
        let mut live = Live {
            number,
            name,
            file,
            header,
            slot,
            first_seq: next_seq,
            anchor: prev,
            end,
            last_seq: slot.map_or(next_seq - 1, |s| s.last_seq),
            head: slot.map_or(prev, |s| s.head),
            clean: last && slot.is_some_and(|s| s.clean),
        };
        let mut recovered = 0;
        if !live.clean {
            let scan = scan_valid(
                &live.file,
                live.end,
                live.header.file_len,
                live.last_seq + 1,
                live.head,
            )
            .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
            if slot.is_none() && scan.records == 0 && k > 0 {
                // A segment created ahead of time that never received a record.
                return Ok(Followed::Beyond);
            }
            live.end = scan.end;
            live.last_seq = scan.next_seq - 1;
            live.head = scan.head;
            recovered = scan.records;
        }
        Ok(Followed::Live {
            live: Box::new(live),
            recovered,
        })
    }
}

/// Writes zeros to `file` from `from` up to `to` (past its end), and syncs it.
fn extend(file: &dyn SegmentFile, from: u64, to: u64) -> std::io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        file.write_at(&zeros[..n], at)?;
        at += n as u64;
    }
    file.sync_all()
}

/// The writer's starting point, after recovery.
pub(crate) struct Recovered {
    /// Where the chain stands.
    pub(crate) chain: ChainState,
    pub(crate) report: RecoveryReport,
}

/// Where a writer's chain stands: where the log starts, its last record, its segments, and
/// where the next record goes. Recovery establishes it; the ring hands it whole to the first
/// published view ([`ChainState::view`]) and to the sequencer, which carries it on.
pub(crate) struct ChainState {
    /// The log's identity and first record.
    pub(crate) start: LogStart,
    /// Seq of the last record (`start.first_seq - 1` when there is none).
    pub(crate) head_seq: u64,
    /// Chain hash after it.
    pub(crate) head: Hash,
    /// Every segment, oldest first: the sealed ones, then the active one.
    pub(crate) segments: Vec<Arc<SegmentEntry>>,
    /// The segment to write into.
    pub(crate) active: Arc<MappedSegment>,
    /// Its newest slot, as written during recovery: it commits every record up to the head.
    pub(crate) active_slot: Slot,
    /// Where the next record goes.
    pub(crate) write_off: u64,
}

impl ChainState {
    /// The chain of a writer about to write into `active`, whose newest slot, `slot`, was just
    /// written and commits every record of the log so far; `sealed` are the segments before it.
    fn resume(
        start: LogStart,
        mut sealed: Vec<Arc<SegmentEntry>>,
        active: Arc<MappedSegment>,
        slot: Slot,
    ) -> ChainState {
        sealed.push(Arc::new(SegmentEntry::known(
            active.prefix.number,
            active.name.clone(),
            Some(active.file.clone()),
            SegmentInfo {
                first_seq: slot.first_seq,
                anchor: slot.anchor,
                data_offset: active.prefix.data_offset,
                end: None,
            },
        )));
        ChainState {
            start,
            head_seq: slot.last_seq,
            head: slot.head,
            segments: sealed,
            write_off: slot.committed_len,
            active,
            active_slot: slot,
        }
    }

    /// The view of the log that snapshots see before the first batch.
    pub(crate) fn view(&self, storage: Arc<dyn Storage>) -> Published {
        Published {
            storage,
            segments: self.segments.clone().into(),
            first_seq: self.start.first_seq,
            anchor: self.start.anchor,
            head_seq: self.head_seq,
            head: self.head,
            active_end: self.write_off,
            log_id: self.start.log_id,
        }
    }
}

/// Creates a segment file with a fresh prefix.
pub(crate) fn create_segment(
    storage: &dyn Storage,
    number: u64,
    size: u64,
    log_id: [u8; 16],
) -> Result<Arc<MappedSegment>, Error> {
    let name = segment_name(number);
    let prefix = Prefix {
        number,
        file_len: size,
        data_offset: data_offset_for(size),
        created: now_nanos(),
        log_id,
    };
    let context = || format!("creating {}", storage.location().join(&name).display());
    let file = storage
        .create(&name, size, &prefix.encode())
        .map_err(|e| Error::io(context(), e))?;
    let path = storage.location().join(&name);
    let seg = MappedSegment::new(name.clone(), &path, prefix, file)
        .map_err(|e| Error::io(context(), e))?;
    Ok(Arc::new(seg))
}

/// Writes a slot and makes the header durable.
fn commit_slot(seg: &MappedSegment, slot: &Slot, storage: &dyn Storage) -> Result<(), Error> {
    // SAFETY: recovery runs before any other thread of the ring exists: it alone touches the
    // segment.
    unsafe { seg.write_slot(slot) };
    seg.sync_header().map_err(|e| {
        Error::io(
            format!("syncing {}", storage.location().join(&seg.name).display()),
            e,
        )
    })
}

/// Zeroes what lies past `end` (records) and past the index entries of `[first_seq, next_seq)`.
/// Returns the torn tail found, if any.
fn trim(
    live: &Live,
    seg: &MappedSegment,
    storage: &dyn Storage,
) -> Result<Option<TornTail>, Error> {
    let p = storage.location().join(&live.name);
    let io = |what: &str, e| Error::io(format!("{what} {}", p.display()), e);
    let file = &*live.file;
    let mut torn = None;
    if let Some(last) =
        last_nonzero_end(file, live.end, live.header.file_len).map_err(|e| io("reading", e))?
    {
        torn = Some(TornTail {
            file: p.clone(),
            offset: live.end,
            len: last - live.end,
            after_seq: live.last_seq,
        });
        file.zero_range(live.end, last - live.end)
            .map_err(|e| io("trimming", e))?;
    }
    let used = (live.last_seq + 1 - live.first_seq).div_ceil(INDEX_STRIDE);
    let index_start = index_entry_offset(used);
    if let Some(last) = last_nonzero_end(file, index_start, live.header.prefix.data_offset)
        .map_err(|e| io("reading", e))?
    {
        file.zero_range(index_start, last - index_start)
            .map_err(|e| io("trimming", e))?;
    }
    reindex(live, seg).map_err(|e| io("reading", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    seg.sync(0, live.end).map_err(|e| io("syncing", e))?;
    Ok(torn)
}

/// Rewrites the index entries of the records found past the last commit: a crash may have kept
/// the records but lost the page that held their entries.
fn reindex(live: &Live, seg: &MappedSegment) -> std::io::Result<()> {
    let (start, mut seq) = match live.slot {
        Some(s) => (s.committed_len, s.last_seq + 1),
        None => (live.header.prefix.data_offset, live.first_seq),
    };
    let mut cursor = Cursor::new(live.file.clone(), start, live.end);
    while let Step::Record(rec) = cursor.next_record()? {
        let k = seq - live.first_seq;
        if k.is_multiple_of(INDEX_STRIDE) {
            let entry = index_entry_offset(k / INDEX_STRIDE);
            // SAFETY: recovery runs before any other thread of the ring exists: it alone
            // touches the segment. The entry lies in the index region (the scan found a record
            // here, and the region holds an entry for every record a segment can hold).
            unsafe { seg.write(entry, &(rec.offset as u32).to_le_bytes()) };
        }
        seq += 1;
    }
    debug_assert_eq!(seq, live.last_seq + 1);
    Ok(())
}

/// Opens the log in `storage` for writing: creates it if it has no segments, repairs what a
/// crash left, and returns where to write next. The caller holds the writer lock.
pub(crate) fn recover(storage: &dyn Storage, segment_size: u64) -> Result<Recovered, Error> {
    let mut report = RecoveryReport::default();
    let Some(mut examined) = examine(storage, true)? else {
        return create_log(storage, segment_size);
    };
    // Segments beyond a tear go newest first: a crash between two removals must leave the
    // segment numbers without a gap, or the log would refuse to open again (a missing segment).
    for name in examined
        .listing
        .temporary
        .iter()
        .chain(examined.beyond.iter().rev())
    {
        storage.remove(name).map_err(|e| {
            Error::io(
                format!("removing {}", storage.location().join(name).display()),
                e,
            )
        })?;
        report.removed.push(name.clone());
    }
    report.recovered = examined.recovered;
    report.extended = std::mem::take(&mut examined.extended);
    let mut sealed = std::mem::take(&mut examined.sealed);
    let mut chain = (examined.sealed_next_seq, examined.sealed_head);
    let last = examined.live.pop();
    // Seal every live segment but the last: the writer had moved on from them.
    for live in examined.live {
        let seg = MappedSegment::new(
            live.name.clone(),
            &storage.location().join(&live.name),
            live.header.prefix,
            live.file.clone(),
        )
        .map_err(|e| Error::io(format!("mapping {}", live.name), e))?;
        if let Some(t) = trim(&live, &seg, storage)? {
            report.torn_tail.get_or_insert(t);
        }
        // Both slots are written, so a sealed segment never has a slot left over from a crash.
        let generation = live.slot.map_or(0, |s| s.generation);
        for g in [generation + 1, generation + 2] {
            let slot = Slot {
                generation: g,
                first_seq: live.first_seq,
                committed_len: live.end,
                last_seq: live.last_seq,
                sealed: true,
                clean: false,
                anchor: live.anchor,
                head: live.head,
            };
            commit_slot(&seg, &slot, storage)?;
        }
        chain = (live.last_seq + 1, live.head);
        report.sealed.push(live.name.clone());
        sealed.push(Arc::new(SegmentEntry::known(
            live.number,
            live.name,
            None,
            SegmentInfo {
                first_seq: live.first_seq,
                anchor: live.anchor,
                data_offset: live.header.prefix.data_offset,
                end: Some((live.last_seq, live.end)),
            },
        )));
    }
    let start = LogStart {
        log_id: examined.log_id,
        first_seq: examined.first_seq,
        anchor: examined.anchor,
    };
    let Some(live) = last else {
        // Everything is sealed: start the next segment.
        let number = sealed.last().map_or(1, |e| e.number + 1);
        return start_segment(storage, segment_size, start, number, chain, sealed, report);
    };
    let seg = Arc::new(
        MappedSegment::new(
            live.name.clone(),
            &storage.location().join(&live.name),
            live.header.prefix,
            live.file.clone(),
        )
        .map_err(|e| Error::io(format!("mapping {}", live.name), e))?,
    );
    report.clean = live.clean;
    if !live.clean {
        report.torn_tail = trim(&live, &seg, storage)?.or(report.torn_tail);
    }
    // Mark the segment as open (not clean) and commit what was recovered.
    let slot = Slot {
        generation: live.slot.map_or(0, |s| s.generation) + 1,
        first_seq: live.first_seq,
        committed_len: live.end,
        last_seq: live.last_seq,
        sealed: false,
        clean: false,
        anchor: live.anchor,
        head: live.head,
    };
    commit_slot(&seg, &slot, storage)?;
    Ok(Recovered {
        chain: ChainState::resume(start, sealed, seg, slot),
        report,
    })
}

/// Identity and first record of a log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LogStart {
    /// The log's identity, shared by all its segments.
    pub(crate) log_id: [u8; 16],
    /// Seq of the log's first record.
    pub(crate) first_seq: u64,
    /// Chain hash before it.
    pub(crate) anchor: Hash,
}

/// Creates a log: segment 1, starting the chain at seq 1 from the zero anchor.
fn create_log(storage: &dyn Storage, segment_size: u64) -> Result<Recovered, Error> {
    let listing = list(storage)?;
    if !listing.foreign.is_empty() {
        return Err(Error::NotALog {
            dir: storage.location().to_path_buf(),
            reason: format!(
                "it holds other files ({}) and no segments",
                listing.foreign.join(", ")
            ),
        });
    }
    let mut log_id = [0u8; 16];
    getrandom::fill(&mut log_id).map_err(|e| {
        Error::io(
            "drawing a random log id",
            std::io::Error::other(e.to_string()),
        )
    })?;
    let start = LogStart {
        log_id,
        first_seq: 1,
        anchor: Hash::ZERO,
    };
    // A writer killed while it created the first segment left its temporary file behind:
    // remove it, or creating the segment again (under that temporary name first) would fail
    // for good.
    for name in &listing.temporary {
        storage.remove(name).map_err(|e| {
            Error::io(
                format!("removing {}", storage.location().join(name).display()),
                e,
            )
        })?;
    }
    let report = RecoveryReport {
        created: true,
        removed: listing.temporary,
        ..RecoveryReport::default()
    };
    start_segment(
        storage,
        segment_size,
        start,
        1,
        (1, Hash::ZERO),
        Vec::new(),
        report,
    )
}

/// Creates segment `number` and activates it at `chain` (next seq, chain hash before it).
fn start_segment(
    storage: &dyn Storage,
    segment_size: u64,
    start: LogStart,
    number: u64,
    chain: (u64, Hash),
    sealed: Vec<Arc<SegmentEntry>>,
    report: RecoveryReport,
) -> Result<Recovered, Error> {
    let seg = create_segment(storage, number, segment_size, start.log_id)?;
    let slot = activation_slot(&seg, chain.0, chain.1);
    commit_slot(&seg, &slot, storage)?;
    Ok(Recovered {
        chain: ChainState::resume(start, sealed, seg, slot),
        report,
    })
}

/// The first commit slot of a segment whose first record will be `next_seq`.
pub(crate) fn activation_slot(seg: &MappedSegment, next_seq: u64, anchor: Hash) -> Slot {
    Slot {
        generation: 1,
        first_seq: next_seq,
        committed_len: seg.prefix.data_offset,
        last_seq: next_seq - 1,
        sealed: false,
        clean: false,
        anchor,
        head: anchor,
    }
}
