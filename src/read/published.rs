//! What the sequencer publishes after every batch, and what a snapshot holds: the head, and the
//! segments to read up to it.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::error::{Error, IntegrityError, Reason};
use crate::format::hash::Hash;
use crate::storage::header::{ReadHeaderError, SegmentHeader};
use crate::storage::listing::open_error;
use crate::storage::{SegmentFile, Storage};

/// Where a segment's records are: known when the segment is written or examined, or read from
/// its header the first time a reader needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentInfo {
    /// Seq of the segment's first record.
    pub(crate) first_seq: u64,
    /// Chain hash before the first record.
    pub(crate) anchor: Hash,
    /// Where its records start.
    pub(crate) data_offset: u64,
    /// For a segment that will not grow: its last seq and where its records end. `None` for the
    /// active segment, whose end is in [`Published`].
    pub(crate) end: Option<(u64, u64)>,
}

/// One segment of a published view.
pub(crate) struct SegmentEntry {
    /// The segment number.
    pub(crate) number: u64,
    /// The file name.
    pub(crate) name: String,
    /// An open handle, kept for the segments a writer or reader already has open, and for
    /// segments about to be pruned (so that views holding them can still read them); others are
    /// opened on demand and closed after use, so a long log does not hold a descriptor per file.
    file: OnceLock<Arc<dyn SegmentFile>>,
    info: OnceLock<SegmentInfo>,
    /// Its commit slot does not say it is sealed, though the writer moved past it: a crash
    /// interrupted its sealing (a reader found it so). Its end is known all the same; it is
    /// not reported as sealed.
    unsealed: bool,
}

impl SegmentEntry {
    /// An entry whose bounds are known.
    pub(crate) fn known(
        number: u64,
        name: String,
        file: Option<Arc<dyn SegmentFile>>,
        info: SegmentInfo,
    ) -> SegmentEntry {
        SegmentEntry {
            number,
            name,
            file: file.map_or_else(OnceLock::new, OnceLock::from),
            info: OnceLock::from(info),
            unsealed: false,
        }
    }

    /// Marks the entry as one whose commit slot is not sealed (see [`SegmentEntry::sealed`]).
    pub(crate) fn with_unsealed_slot(mut self) -> SegmentEntry {
        self.unsealed = true;
        self
    }

    /// Whether the segment is sealed: it will not grow (its end is known) and its commit slot
    /// says so. A segment before the last one whose sealing a crash interrupted will not grow
    /// either, but it is not sealed until a writer reopens the log.
    pub(crate) fn sealed(&self, info: &SegmentInfo) -> bool {
        info.end.is_some() && !self.unsealed
    }

    /// A sealed segment whose bounds will be read from its header when first needed.
    pub(crate) fn lazy(number: u64, name: String) -> SegmentEntry {
        SegmentEntry {
            number,
            name,
            file: OnceLock::new(),
            info: OnceLock::new(),
            unsealed: false,
        }
    }

    /// The file's handle, opening it if this entry does not keep one. A file that retention
    /// removed since this view was taken is [`Error::Pruned`] (see `crate::storage::listing`).
    pub(crate) fn open(&self, storage: &dyn Storage) -> Result<Arc<dyn SegmentFile>, Error> {
        match self.file.get() {
            Some(f) => Ok(f.clone()),
            None => storage
                .open(&self.name, false)
                .map_err(|e| open_error(storage, self.number, &self.name, "opening", e)),
        }
    }

    /// Keeps the file open for as long as this entry lives (see [`SegmentEntry::pin`]), without
    /// reading its header yet.
    pub(crate) fn keep_open(&self, storage: &dyn Storage) -> Result<(), Error> {
        if self.file.get().is_none() {
            let _ = self.file.set(self.open(storage)?);
        }
        Ok(())
    }

    /// Keeps the file open for as long as this entry lives, and its bounds known: every view
    /// holding the entry can still read the segment after its file is removed.
    pub(crate) fn pin(&self, storage: &dyn Storage) -> Result<(), Error> {
        self.info(storage)?;
        if self.file.get().is_none() {
            let _ = self.file.set(self.open(storage)?);
        }
        Ok(())
    }

    /// The segment's path, for messages.
    pub(crate) fn path(&self, storage: &dyn Storage) -> PathBuf {
        storage.location().join(&self.name)
    }

    /// The segment's bounds, reading its header the first time for a lazy entry (which must be
    /// sealed).
    pub(crate) fn info(&self, storage: &dyn Storage) -> Result<SegmentInfo, Error> {
        if let Some(info) = self.info.get() {
            return Ok(*info);
        }
        let file = self.open(storage)?;
        let path = self.path(storage);
        let header = SegmentHeader::read(&*file).map_err(|e| match e {
            ReadHeaderError::Io(e) => Error::io(format!("reading {}", path.display()), e),
            ReadHeaderError::Header(h) => Error::from(IntegrityError {
                seq: None,
                file: path.clone(),
                offset: crate::storage::header::header_error_offset(&h),
                reason: Reason::Header(h),
            }),
        })?;
        let slot = header.newest().filter(|s| s.sealed).ok_or_else(|| {
            Error::from(IntegrityError {
                seq: None,
                file: path.clone(),
                offset: crate::format::segment::SLOT_OFFSETS[0],
                reason: Reason::SlotMismatch("a segment before the last one is not sealed"),
            })
        })?;
        if slot.committed_len > header.file_len {
            return Err(Error::from(IntegrityError {
                seq: None,
                file: path,
                offset: header.file_len,
                reason: Reason::CutShort {
                    committed: slot.committed_len,
                    actual: header.file_len,
                },
            }));
        }
        if slot.committed_len < header.prefix.data_offset
            || slot.committed_len > header.prefix.file_len
        {
            return Err(Error::from(IntegrityError {
                seq: None,
                file: path,
                offset: crate::format::segment::slot_offset(slot.generation),
                reason: Reason::SlotMismatch("committed length outside the data region"),
            }));
        }
        let info = SegmentInfo {
            first_seq: slot.first_seq,
            anchor: slot.anchor,
            data_offset: header.prefix.data_offset,
            end: Some((slot.last_seq, slot.committed_len)),
        };
        Ok(*self.info.get_or_init(|| info))
    }
}

impl fmt::Debug for SegmentEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SegmentEntry")
            .field("name", &self.name)
            .field("info", &self.info.get())
            .finish()
    }
}

/// A consistent view of a log: everything up to `head_seq`, and how to read it.
#[derive(Clone)]
pub(crate) struct Published {
    /// Where the files are.
    pub(crate) storage: Arc<dyn Storage>,
    /// Every segment, in order; only the last may be active.
    pub(crate) segments: Arc<[Arc<SegmentEntry>]>,
    /// Seq of the log's first record.
    pub(crate) first_seq: u64,
    /// Chain hash before the log's first record.
    pub(crate) anchor: Hash,
    /// Seq of the last record in the view; `first_seq - 1` when empty.
    pub(crate) head_seq: u64,
    /// Chain hash after `head_seq`.
    pub(crate) head: Hash,
    /// Where the records of the last segment end, if it is active.
    pub(crate) active_end: u64,
    /// The log's identity, shared by all its segments.
    pub(crate) log_id: [u8; 16],
}

impl Published {
    /// Where records of entry `i` end, and its last seq.
    pub(crate) fn segment_end(&self, i: usize, info: &SegmentInfo) -> (u64, u64) {
        if let Some((last, end)) = info.end {
            (last.min(self.head_seq), end)
        } else {
            debug_assert_eq!(i + 1, self.segments.len());
            (self.head_seq, self.active_end)
        }
    }
}
