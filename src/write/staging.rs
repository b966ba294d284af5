//! How the sequencer puts records into the active segment: stored through its mapping, or
//! gathered in a buffer and written with `pwrite` once per batch.
//!
//! A store through the mapping into a page not yet in the page cache faults the page in, and
//! the kernel first fills it with zeros (the segment's blocks are allocated but *unwritten*),
//! only for the sequencer to overwrite it at once. Ahead of the sequencer the preparer faults
//! pages in (`MADV_POPULATE_WRITE`), which moves that zeroing off the sequencer's thread but
//! not off the machine's CPUs: it was the largest single cost of a push (PERFORMANCE.md).
//! `pwrite` of whole pages allocates page-cache pages and copies into them without zeroing
//! them first; only the part of a page a write does not cover is zeroed (at most one partial
//! page per batch).
//!
//! Measured on the reference machine (PERFORMANCE.md, "Writing records: pwrite against the
//! mapping"), the two are level within this machine's noise: the paired ratio of `pwrite` to
//! the mapping ranged from 0.74 to 1.26 over six sessions (median 1.04). The zeroing saved is
//! paid back in page-cache work (allocating, locking and dirtying each page, mapping its
//! blocks) that now runs on the sequencer's thread, where the mapped path has the preparer
//! take the page faults ahead of it. `pwrite` is the default for what else it brings: no page
//! of the data region is mapped into the process (its resident memory holds the staging
//! buffer, not a 16 MiB prefault window), and a segment cut by another process is reported as
//! an error naming the file, not a `SIGBUS`.
//!
//! With [`RecordWrites::Buffered`], the sequencer writes each record (header, body, padding)
//! into a buffer that mirrors the segment from the first byte not yet in the file, and the
//! buffer is written to the file before the batch is published or handed to the committer,
//! and before a rotation seals the segment. Everything else is unchanged: index entries and
//! commit slots are stored through the mapping (they are in the prefix, faulted in at
//! creation), readers read the file with `pread` whichever way the bytes got there, and the
//! committer's `msync` of a range writes back every dirty page of it, however it was dirtied.

use std::io;

use crate::storage::mapped::MappedSegment;

/// How the sequencer puts records into the active segment (see the module docs). Chosen
/// only through `RingBuilder::record_writes`, which the `test-support` feature compiles, for
/// the benchmarks that compare the two.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecordWrites {
    /// Gathered per batch and written with `pwrite`: no page is zeroed before it is written.
    /// The default.
    #[default]
    Buffered,
    /// Stored through the mapping, the pages faulted in ahead of the sequencer.
    #[cfg_attr(not(any(test, feature = "test-support")), allow(dead_code))]
    Mapped,
}

/// The records of the active segment written since the last [`Staging::flush`].
#[derive(Debug, Default)]
pub(crate) struct Staging {
    /// Offset in the segment of `buf[0]`: the first byte not yet written to the file.
    start: u64,
    /// The bytes of `[start, start + buf.len())`. Cleared (its capacity kept) by every flush,
    /// so that in a steady state nothing is allocated.
    buf: Vec<u8>,
}

impl Staging {
    /// Starts gathering at `offset` of a segment: everything before it is in the file.
    pub(crate) fn restart(&mut self, offset: u64) {
        debug_assert!(self.buf.is_empty(), "restarted with bytes not yet written");
        self.start = offset;
        self.buf.clear();
    }

    /// Copies `bytes` to `offset` of the segment, which must not be before the first byte not
    /// yet written to the file. The bytes between the end of the last write and `offset`, if
    /// any, are zeros.
    #[inline]
    pub(crate) fn write(&mut self, offset: u64, bytes: &[u8]) {
        debug_assert!(offset >= self.start);
        let at = (offset - self.start) as usize;
        let end = at + bytes.len();
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        self.buf[at..end].copy_from_slice(bytes);
    }

    /// Writes what was gathered to `seg`'s file, so that it is in the page cache (visible to
    /// readers, and to the committer's sync) when this returns; gathering goes on from where
    /// it ended.
    ///
    /// Fails if another process has cut the file: a `pwrite` past the end of a truncated file
    /// does not fail (as a store through the mapping does, with `SIGBUS`), it extends the file,
    /// with a hole of zeros where the records before it were. The length is checked after the
    /// write: a cut anywhere leaves the file shorter than the segment then (at most as long as
    /// the end of this write, or the cut), unless this write ends at the segment's very end and
    /// so gives the file its length back; only then is it checked before the write as well.
    pub(crate) fn flush(&mut self, seg: &MappedSegment) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let end = self.start + self.buf.len() as u64;
        if end == seg.prefix.file_len {
            seg.check_length()?;
        }
        seg.file.write_at(&self.buf, self.start)?;
        seg.check_length()?;
        self.start += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Bytes gathered and not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }
}
