//! The checks of one segment, in the order of `docs/FORMAT.md` §9: its header, its commit
//! slots, where it starts in the chain, its committed records, what its slots say of them, and
//! what follows them.

use std::path::PathBuf;
use std::sync::Arc;

use super::records::{self, RecordKind};
use super::walk::{LogStartSeen, Stop, Walk};
use crate::error::{Error, IntegrityError, Reason};
use crate::format::event::decode_body;
use crate::format::hash::Hash;
use crate::format::seal::SEALED_KIND;
use crate::format::segment::{
    HEADER_LEN, HeaderError, INDEX_ENTRY_LEN, INDEX_STRIDE, PREFIX_LEN, PREFIX_LOG_ID_AT,
    PREFIX_NUMBER_AT, SLOT_LEN, SLOT_OFFSETS, Slot, SlotState, index_entry_offset,
};
use crate::read::cursor::{Cursor, Step, first_nonzero};
use crate::read::segment_end::{read_index_entry, scan_valid};
use crate::storage::SegmentFile;
use crate::storage::header::{ReadHeaderError, SegmentHeader};
use crate::storage::listing::open_error;

/// A segment being checked: its file, its header as read, and its commit slots.
pub(super) struct Segment<'n> {
    number: u64,
    name: &'n str,
    path: PathBuf,
    file: Arc<dyn SegmentFile>,
    header: SegmentHeader,
    /// Its current commit slot, if it has one.
    newest: Option<Slot>,
    /// The other valid slot, if both are valid.
    older: Option<Slot>,
}

/// Where a run of a segment's records ends, and the chain there.
#[derive(Clone, Copy)]
struct Reached {
    /// File offset just past the last record.
    end: u64,
    /// Seq of the record that would come next.
    next_seq: u64,
    /// Chain hash after the last record (the anchor when there is none).
    head: Hash,
}

impl Segment<'_> {
    fn fail(&self, seq: Option<u64>, offset: u64, reason: Reason) -> Stop {
        Stop::Failed(IntegrityError {
            seq,
            file: self.path.clone(),
            offset,
            reason,
        })
    }

    fn io(&self, e: std::io::Error) -> Stop {
        Stop::Io(Error::io(format!("reading {}", self.path.display()), e))
    }

    /// File offset of the slot position that holds `s`.
    fn slot_at(&self, s: &Slot) -> u64 {
        SLOT_OFFSETS[slot_index_of(&self.header, s)]
    }

    /// File offset of the current slot; slot 0's without one.
    fn newest_at(&self) -> u64 {
        self.newest.map_or(SLOT_OFFSETS[0], |s| self.slot_at(&s))
    }

    fn sealed(&self) -> bool {
        self.newest.is_some_and(|s| s.sealed)
    }

    fn clean(&self) -> bool {
        self.newest.is_some_and(|s| s.clean)
    }

    /// Checks the commit slots. Each lies alone in a 512-byte sector, so a crash cannot tear
    /// one on a disk that writes sectors whole: a damaged slot is a failure. An unwritten slot
    /// is normal only in a segment that is not finished while its other slot is still at
    /// generation 1 (or unwritten too): the active segment, or the next one created ahead.
    /// Two slots may not claim one generation, and each must lie at the position its
    /// generation names.
    fn check_slots(&self) -> Result<(), Stop> {
        let finished = self.sealed() || self.clean();
        let unwritten_ok = !finished && self.newest.is_none_or(|s| s.generation == 1);
        for (i, (state, at)) in self.header.slots.iter().zip(SLOT_OFFSETS).enumerate() {
            match state {
                SlotState::Valid(_) => {}
                SlotState::Empty if unwritten_ok => {}
                _ => return Err(self.fail(None, at, Reason::Slot(i))),
            }
        }
        if let Some(generation) = self.header.same_generation() {
            return Err(self.fail(
                None,
                SLOT_OFFSETS[1],
                Reason::Header(HeaderError::SameGeneration { generation }),
            ));
        }
        for s in self.newest.iter().chain(self.older.iter()) {
            if s.generation % 2 != slot_index_of(&self.header, s) as u64 {
                return Err(self.fail(
                    None,
                    self.slot_at(s),
                    Reason::SlotMismatch("a slot's generation does not match its position"),
                ));
            }
        }
        Ok(())
    }

    /// Checks that the current slot starts the segment at `start` (next seq, and the chain
    /// hash before it).
    fn check_continues(&self, (next_seq, prev): (u64, Hash)) -> Result<(), Stop> {
        let Some(s) = self.newest else {
            return Ok(());
        };
        let at = self.slot_at(&s);
        if s.first_seq != next_seq {
            return Err(self.fail(
                Some(next_seq),
                at,
                Reason::Continuity("the commit slot's first seq"),
            ));
        }
        if s.anchor != prev {
            return Err(self.fail(
                Some(next_seq),
                at,
                Reason::Continuity("the commit slot's anchor is not the previous head"),
            ));
        }
        Ok(())
    }

    /// The committed length, which must lie in the data region and within the file, whose
    /// length must be the one its prefix declares.
    fn committed_len(&self) -> Result<u64, Stop> {
        let prefix = &self.header.prefix;
        let file_len = self.header.file_len;
        let committed = self.newest.map_or(prefix.data_offset, |s| s.committed_len);
        if committed < prefix.data_offset || committed > prefix.file_len {
            return Err(self.fail(
                None,
                SLOT_OFFSETS[0],
                Reason::SlotMismatch("committed length outside the data region"),
            ));
        }
        if file_len < committed {
            return Err(self.fail(
                None,
                file_len,
                Reason::CutShort {
                    committed,
                    actual: file_len,
                },
            ));
        }
        if file_len != prefix.file_len {
            return Err(self.fail(
                None,
                file_len.min(prefix.file_len),
                Reason::FileLength {
                    expected: prefix.file_len,
                    actual: file_len,
                },
            ));
        }
        Ok(committed)
    }

    /// The index region, whole.
    fn read_index(&self) -> Result<Vec<u8>, Stop> {
        let mut index = vec![0u8; (self.header.prefix.data_offset - HEADER_LEN) as usize];
        self.file
            .read_exact_at(&mut index, HEADER_LEN)
            .map_err(|e| self.io(e))?;
        Ok(index)
    }

    /// An older slot that covers no record must be the empty state the segment started in.
    fn check_older_empty(&self) -> Result<(), Stop> {
        if let Some(o) = self.older.filter(|o| o.count() == 0)
            && (o.committed_len != self.header.prefix.data_offset || o.head != o.anchor)
        {
            return Err(self.fail(
                None,
                self.slot_at(&o),
                Reason::SlotMismatch("an older empty slot with a length or head"),
            ));
        }
        Ok(())
    }

    /// Checks the index entry of committed record `seq`, at file offset `offset`, if it has
    /// one (the segment's first record being `first_seq`).
    fn check_index_entry(
        &self,
        index: &[u8],
        first_seq: u64,
        seq: u64,
        offset: u64,
    ) -> Result<(), Stop> {
        let k = seq - first_seq;
        if !k.is_multiple_of(INDEX_STRIDE) {
            return Ok(());
        }
        let entry = k / INDEX_STRIDE;
        let from = (entry * INDEX_ENTRY_LEN) as usize;
        let Some(bytes) = index.get(from..from + INDEX_ENTRY_LEN as usize) else {
            return Err(self.fail(
                Some(seq),
                offset,
                Reason::SlotMismatch("more records than the index can hold"),
            ));
        };
        let found = u64::from(u32::from_le_bytes(bytes.try_into().expect("4 bytes")));
        if found != offset {
            return Err(self.fail(
                Some(seq),
                index_entry_offset(entry),
                Reason::Index {
                    entry,
                    seq,
                    expected: offset,
                    found,
                },
            ));
        }
        Ok(())
    }

    /// Whether the older slot names the record just `reached`; a failure if it does and
    /// disagrees with it.
    fn older_names(&self, reached: Reached) -> Result<bool, Stop> {
        let Some(o) = self
            .older
            .filter(|o| o.count() > 0 && o.last_seq == reached.next_seq - 1)
        else {
            return Ok(false);
        };
        if o.committed_len != reached.end || o.head != reached.head {
            return Err(self.fail(
                Some(reached.next_seq - 1),
                self.slot_at(&o),
                Reason::SlotMismatch("the older commit slot disagrees with the records"),
            ));
        }
        Ok(true)
    }

    /// Checks that the current slot names the last committed record and its chain hash, and
    /// that the older one named a record that is there (`older_seen`).
    fn check_slots_name(&self, reached: Reached, older_seen: bool) -> Result<(), Stop> {
        if let Some(s) = self.newest {
            let at = self.slot_at(&s);
            if s.last_seq != reached.next_seq - 1 {
                return Err(self.fail(
                    Some(s.last_seq),
                    at,
                    Reason::SlotMismatch("the commit slot's last seq is not the last record's"),
                ));
            }
            if s.head != reached.head {
                return Err(self.fail(
                    Some(s.last_seq),
                    at,
                    Reason::SlotMismatch(
                        "the commit slot's head is not the last record's chain hash",
                    ),
                ));
            }
        }
        if let Some(o) = self.older.filter(|_| !older_seen) {
            return Err(self.fail(
                Some(o.last_seq),
                self.slot_at(&o),
                Reason::SlotMismatch("the older commit slot names a record that is not there"),
            ));
        }
        Ok(())
    }
}

impl Walk<'_> {
    /// Walks segment `number`, whose file is `file` if it was opened already.
    pub(super) fn segment(
        &mut self,
        number: u64,
        name: &str,
        file: Option<Arc<dyn SegmentFile>>,
    ) -> Result<(), Stop> {
        let seg = self.open_segment(number, name, file)?;
        self.check_prefix(&seg)?;
        seg.check_slots()?;
        let start = self.segment_start(&seg)?;
        if self.lies_past_tear(&seg, start)? {
            return self.past_the_tear(&seg);
        }
        seg.check_continues(start)?;
        let committed = seg.committed_len()?;
        seg.check_older_empty()?;
        let index = seg.read_index()?;
        let reached = self.committed_records(&seg, &index, start, committed)?;
        self.track_sealing(&seg, start.0)?;
        let reached = self.uncommitted_records(&seg, start.0, reached)?;
        self.check_after_records(&seg, &index, start.0, reached)?;
        self.chain = Some((reached.next_seq, reached.head));
        self.last_end = Some((seg.path.clone(), reached.end));
        self.done += seg.header.file_len;
        (self.progress)(self.done);
        Ok(())
    }

    /// Opens segment `number` unless `file` is its file already, and reads its header page as
    /// it is (the prefix must be intact: magic, version, algorithm, digest).
    fn open_segment<'n>(
        &mut self,
        number: u64,
        name: &'n str,
        file: Option<Arc<dyn SegmentFile>>,
    ) -> Result<Segment<'n>, Stop> {
        let path = self.storage.location().join(name);
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
            Err(ReadHeaderError::Io(e)) => {
                return Err(Stop::Io(Error::io(
                    format!("reading {}", path.display()),
                    e,
                )));
            }
            Err(ReadHeaderError::Header(h)) => {
                return Err(Stop::Failed(IntegrityError {
                    seq: self.chain.map(|c| c.0),
                    file: path,
                    offset: 0,
                    reason: Reason::Header(h),
                }));
            }
        };
        self.report.file_bytes += header.file_len;
        Ok(Segment {
            number,
            name,
            path,
            file,
            newest: header.newest(),
            older: header.older(),
            header,
        })
    }

    /// Checks that the prefix names the file's own number and the log's id, and that the
    /// header page holds nothing outside the prefix and the slots.
    fn check_prefix(&mut self, seg: &Segment) -> Result<(), Stop> {
        let prefix = &seg.header.prefix;
        if prefix.number != seg.number {
            return Err(seg.fail(
                None,
                PREFIX_NUMBER_AT as u64,
                Reason::SegmentNumber {
                    header: prefix.number,
                    name: seg.number,
                },
            ));
        }
        if *self.log_id.get_or_insert(prefix.log_id) != prefix.log_id {
            return Err(seg.fail(None, PREFIX_LOG_ID_AT as u64, Reason::LogId));
        }
        if let Some(at) = nonzero_outside_prefix_and_slots(&seg.header.page) {
            return Err(seg.fail(None, at, Reason::NonZero("the header page")));
        }
        Ok(())
    }

    /// Where the segment starts in the chain: the next seq and the chain hash before it. For
    /// the log's first segment, its slot says (seq 1 and all zeros for segment 1), and that is
    /// where the log starts.
    fn segment_start(&mut self, seg: &Segment) -> Result<(u64, Hash), Stop> {
        let start = match (self.chain, seg.newest) {
            (Some(c), _) => c,
            (None, _) if seg.number == 1 => (1, Hash::ZERO),
            (None, Some(s)) => (s.first_seq, s.anchor),
            (None, None) => {
                return Err(seg.fail(
                    None,
                    SLOT_OFFSETS[0],
                    Reason::SlotMismatch("the first segment has no commit slot"),
                ));
            }
        };
        if self.chain.is_none() {
            self.report.first_seq = start.0;
            self.tree.start_at(start.0);
            self.start = Some(LogStartSeen {
                number: seg.number,
                file: seg.path.clone(),
                slot_at: seg.newest_at(),
                first_seq: start.0,
                anchor: start.1,
            });
        }
        Ok(start)
    }

    /// Whether the segment lies past a tear (see [`Walk::past_tear`]): after one, or after an
    /// unsealed segment when it does not continue the chain and holds nothing committed. Such
    /// a segment that holds something committed is a failure.
    fn lies_past_tear(
        &mut self,
        seg: &Segment,
        (next_seq, prev): (u64, Hash),
    ) -> Result<bool, Stop> {
        let holds_nothing = seg
            .newest
            .is_none_or(|s| s.count() == 0 && !s.sealed && !s.clean);
        let breaks = seg
            .newest
            .is_some_and(|s| s.first_seq != next_seq || s.anchor != prev);
        if !(self.past_tear || (breaks && holds_nothing && self.unsealed.is_some())) {
            return Ok(false);
        }
        if !holds_nothing {
            let s = seg
                .newest
                .expect("a segment that holds something has a slot");
            return Err(seg.fail(
                Some(s.first_seq),
                seg.slot_at(&s),
                Reason::Continuity("committed records follow a break in the chain"),
            ));
        }
        self.past_tear = true;
        Ok(true)
    }

    /// Reports a segment past a tear (see [`Walk::past_tear`]) as a crash leaves it: a note,
    /// and its data region as the torn tail if none was found before it.
    fn past_the_tear(&mut self, seg: &Segment) -> Result<(), Stop> {
        let last_seq = self.chain.map_or(0, |c| c.0 - 1);
        let prefix = &seg.header.prefix;
        self.note_torn_tail(
            &*seg.file,
            &seg.path,
            prefix.data_offset,
            prefix.file_len,
            last_seq,
        )?;
        self.report.notes.push(format!(
            "{}: past a tear (the chain ends at seq {last_seq} in the segment before, short \
             of where this one was activated); it holds nothing committed, as when a crash \
             interrupts the sealing of the segment before it (opening the log for writing \
             removes it)",
            seg.name
        ));
        self.done += seg.header.file_len;
        (self.progress)(self.done);
        Ok(())
    }

    /// Checks every committed record from `start` (next seq and chain hash before it) to
    /// `committed`: magic, seq, leaf and chain hashes, padding, body, the index entry of every
    /// 64th record, and the older slot where it names one; then that the slots name the last
    /// one. Batches of records are read ahead on a helper thread, both hashes of every record
    /// checked on every core, then seqs and index entries in order.
    fn committed_records(
        &mut self,
        seg: &Segment,
        index: &[u8],
        (first_seq, anchor): (u64, Hash),
        committed: u64,
    ) -> Result<Reached, Stop> {
        let data_offset = seg.header.prefix.data_offset;
        let mut reached = Reached {
            end: data_offset,
            next_seq: first_seq,
            head: anchor,
        };
        let mut older_seen = seg.older.is_some_and(|o| o.count() == 0);
        let mut at = data_offset;
        let read = |b: &mut [u8]| {
            let n = seg.file.read_at(b, at)?;
            at += n as u64;
            Ok(n)
        };
        records::for_each_batch(
            read,
            data_offset,
            committed,
            |e| seg.io(e),
            |b| {
                let split = &b.split;
                let checks = records::check_records(&b.buf, &split.spans, &reached.head);
                for (span, check) in split.spans.iter().zip(checks) {
                    let seq = reached.next_seq;
                    if span.header.seq != seq {
                        return Err(seg.fail(
                            Some(seq),
                            span.offset,
                            Reason::Seq {
                                expected: seq,
                                found: span.header.seq,
                            },
                        ));
                    }
                    // Leaf, padding, body and chain (against the stored hash before it, which
                    // every earlier record's check has tied to the anchor).
                    match check.map_err(|r| seg.fail(Some(seq), span.offset, r))? {
                        RecordKind::Prune => self.note_prune(seq, span.body(&b.buf)),
                        RecordKind::Seal => self
                            .note_seal(seq, span.body(&b.buf), &reached.head)
                            .map_err(|r| seg.fail(Some(seq), span.offset, r))?,
                        RecordKind::Other => {}
                    }
                    seg.check_index_entry(index, first_seq, seq, span.offset)?;
                    reached = Reached {
                        end: span.offset + span.range.len() as u64,
                        next_seq: seq + 1,
                        head: span.header.chain,
                    };
                    older_seen |= seg.older_names(reached)?;
                    self.report.record_bytes += span.range.len() as u64;
                }
                // The batch's records all passed: into the tree at once (a failure above ends
                // the walk, and a walk that failed reports no tree).
                let leaves: Vec<Hash> = split.spans.iter().map(|s| s.header.leaf).collect();
                self.tree.push_all(&leaves);
                self.note_times(&b.buf, split.spans.first(), split.spans.last());
                if let Some((offset, reason)) = split.broken.clone() {
                    return Err(seg.fail(Some(reached.next_seq), offset, reason));
                }
                (self.progress)(self.done + b.pos + split.used as u64);
                Ok(())
            },
        )?;
        seg.check_slots_name(reached, older_seen)?;
        Ok(Reached {
            end: committed,
            ..reached
        })
    }

    /// Keeps track of the first unsealed segment (starting at `next_seq`): a sealed one after
    /// it is a failure, unless a live writer sealed both meanwhile (then the walk starts again).
    fn track_sealing(&mut self, seg: &Segment, next_seq: u64) -> Result<(), Stop> {
        let sealed = seg.sealed();
        if sealed && let Some(e) = self.unsealed.take() {
            let sealed_since = self
                .unsealed_file
                .take()
                .and_then(|f| SegmentHeader::read(&*f).ok())
                .is_some_and(|h| h.newest().is_some_and(|s| s.sealed));
            if sealed_since && !self.is_last {
                return Err(Stop::Again);
            }
            return Err(Stop::Failed(e));
        }
        if !sealed && self.unsealed.is_none() {
            self.unsealed_file = Some(seg.file.clone());
            self.unsealed = Some(IntegrityError {
                seq: Some(next_seq),
                file: seg.path.clone(),
                offset: seg.newest_at(),
                reason: Reason::SlotMismatch("a segment before a sealed one is not sealed"),
            });
        }
        Ok(())
    }

    /// In a segment neither sealed nor closed cleanly, follows the records written after the
    /// last commit (`committed`) while they continue the chain, counting them, and checking
    /// the index entries they have (a crash may have lost one: zero is accepted). Returns where
    /// they end (where the committed ones do otherwise).
    fn uncommitted_records(
        &mut self,
        seg: &Segment,
        first_seq: u64,
        committed: Reached,
    ) -> Result<Reached, Stop> {
        if seg.sealed() || seg.clean() {
            return Ok(committed);
        }
        let file = &seg.file;
        let scan = scan_valid(
            file,
            committed.end,
            seg.header.prefix.file_len,
            committed.next_seq,
            committed.head,
        )
        .map_err(|e| seg.io(e))?;
        if scan.records > 0 {
            let mut c = Cursor::new(file.clone(), committed.end, scan.end);
            let mut s = committed.next_seq;
            let mut prev = committed.head;
            while let Step::Record(rec) = c.next_record().map_err(|e| seg.io(e))? {
                let k = s - first_seq;
                if k.is_multiple_of(INDEX_STRIDE) {
                    let found =
                        read_index_entry(&**file, k / INDEX_STRIDE).map_err(|e| seg.io(e))?;
                    if found != rec.offset && found != 0 {
                        return Err(seg.fail(
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
                if decode_body(rec.body).is_ok_and(|e| e.kind == SEALED_KIND) {
                    self.note_seal(s, rec.body, &prev)
                        .map_err(|r| seg.fail(Some(s), rec.offset, r))?;
                }
                prev = rec.header.chain;
                self.tree.push(&rec.header.leaf);
                let timestamp = decode_body(rec.body).map(|e| e.timestamp).ok();
                self.report.first_timestamp = self.report.first_timestamp.or(timestamp);
                self.report.last_timestamp = timestamp.or(self.report.last_timestamp);
                self.report.record_bytes += rec.header.total_len();
                s += 1;
            }
        }
        Ok(Reached {
            end: scan.end,
            next_seq: scan.next_seq,
            head: scan.head,
        })
    }

    /// Checks what follows the records (`reached`) of a segment starting at `first_seq`: in a
    /// sealed or cleanly closed one, the unused index entries and the space after the records
    /// are zero; in another, non-zero bytes there are a torn tail, and index entries past the
    /// records a note.
    fn check_after_records(
        &mut self,
        seg: &Segment,
        index: &[u8],
        first_seq: u64,
        reached: Reached,
    ) -> Result<(), Stop> {
        let used = (reached.next_seq - first_seq).div_ceil(INDEX_STRIDE);
        let unused_index = index_entry_offset(used);
        let unused_nonzero = index
            .get((unused_index - HEADER_LEN) as usize..)
            .unwrap_or(&[])
            .iter()
            .position(|&b| b != 0)
            .map(|i| unused_index + i as u64);
        let file_len = seg.header.prefix.file_len;
        if seg.sealed() || seg.clean() {
            if let Some(at) = unused_nonzero {
                return Err(seg.fail(None, at, Reason::NonZero("unused index entries")));
            }
            if let Some(at) =
                first_nonzero(&*seg.file, reached.end, file_len).map_err(|e| seg.io(e))?
            {
                return Err(seg.fail(
                    Some(reached.next_seq),
                    at,
                    Reason::NonZero("the space after the last record"),
                ));
            }
        } else {
            self.note_torn_tail(
                &*seg.file,
                &seg.path,
                reached.end,
                file_len,
                reached.next_seq - 1,
            )?;
            if let Some(at) = unused_nonzero {
                self.report.notes.push(format!(
                    "{}: index entries past the last valid record, from byte {at} \
                     (left by a crash, or by a writer still writing)",
                    seg.name
                ));
            }
        }
        Ok(())
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
