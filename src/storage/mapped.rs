//! A segment mapped for writing: the only place the crate stores through raw pointers.
//!
//! Three threads write into a [`MappedSegment`], each into bytes it alone owns at that moment:
//!
//! * the **preparer** writes nothing: the prefix is written by [`Storage::create`] before the
//!   segment is mapped, and prefaulting does not change bytes;
//! * the **sequencer** writes index entries (and, under `RecordWrites::Mapped`, records) past
//!   the published end of the segment, and the activation slot (generation 1) before it hands
//!   the segment to anyone else; under `RecordWrites::Buffered`, the default, records reach the
//!   file by `pwrite` (`crate::write::staging`), also past the published end;
//! * the **committer** writes every later commit slot, and only it.
//!
//! Readers never read through the mapping: they use [`SegmentFile::read_at`], and only below the
//! end the sequencer published (with Release) after writing. So no byte is ever written by two
//! threads, or read while it is written.
//!
//! [`Storage::create`]: crate::storage::Storage::create

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::format::hash::Hash;
use crate::format::segment::{HEADER_LEN, Prefix, Slot, slot_offset};
use crate::storage::sigbus::Registration;
use crate::storage::{SegmentFile, WritableMap};

/// A segment file and its writable mapping.
pub(crate) struct MappedSegment {
    /// The file name, `{number:016x}.seg`.
    pub(crate) name: String,
    /// Where the file is, for messages.
    pub(crate) path: std::path::PathBuf,
    /// The segment's static header.
    pub(crate) prefix: Prefix,
    /// `prefix.digest()`, which every slot includes.
    pub(crate) prefix_digest: Hash,
    /// The open file, shared with readers.
    pub(crate) file: Arc<dyn SegmentFile>,
    /// The mapping's entry in the `SIGBUS` registry (`crate::storage::sigbus`), so that a process that
    /// dies because another one cut the file says so. Declared before `map`: it is dropped,
    /// unregistering the range, before the mapping is unmapped.
    _sigbus: Registration,
    /// The whole file, mapped; `map.size() == prefix.file_len`.
    map: Box<dyn WritableMap>,
    /// `map.as_ptr()` and `map.size()`, read once: they never change while `map` lives.
    base: *mut u8,
    len: usize,
    /// Every page of the data region below this offset has been released and is never written
    /// again. Raised by [`MappedSegment::release`] (monotonic); read by
    /// [`MappedSegment::prefault`], whose requests can reach the preparer after the sequencer
    /// wrote past and released what they name: faulting those pages in again would keep them
    /// in memory until the segment is unmapped.
    released: AtomicU64,
}

// SAFETY: `base` points into the mapping `map` owns, which is `Send + Sync`; every access through
// it follows the ownership rules in the module docs.
unsafe impl Send for MappedSegment {}
// SAFETY: as above.
unsafe impl Sync for MappedSegment {}

impl MappedSegment {
    /// Maps `file` (at `path`, for messages), whose prefix is `prefix`; fails if the file is
    /// shorter than the prefix says.
    pub(crate) fn new(
        name: String,
        path: &Path,
        prefix: Prefix,
        file: Arc<dyn SegmentFile>,
    ) -> io::Result<MappedSegment> {
        let len = file.size()?;
        if len != prefix.file_len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{name} is {len} bytes but its header says {}",
                    prefix.file_len
                ),
            ));
        }
        let map = file.map_writable()?;
        debug_assert_eq!(map.size() as u64, prefix.file_len);
        let sigbus = crate::storage::sigbus::register(map.as_ptr(), map.size(), path);
        Ok(MappedSegment {
            name,
            path: path.to_path_buf(),
            prefix_digest: prefix.digest(),
            prefix,
            file,
            _sigbus: sigbus,
            base: map.as_ptr(),
            len: map.size(),
            map,
            released: AtomicU64::new(0),
        })
    }

    /// Hints that `[offset, offset + len)` is about to be written (see `crate::sys::prefetch`); the
    /// part past the end of the mapping is ignored.
    #[inline]
    pub(crate) fn prefetch(&self, offset: u64, len: usize) {
        let offset = offset as usize;
        if offset < self.len {
            crate::sys::prefetch::prefetch(
                self.base.wrapping_add(offset),
                len.min(self.len - offset),
            );
        }
    }

    /// Copies `bytes` to `offset`.
    ///
    /// # Safety
    ///
    /// The caller owns `[offset, offset + bytes.len())` for writing: no other thread reads it
    /// through the mapping or writes it until the caller publishes it (see the module docs).
    #[inline]
    pub(crate) unsafe fn write(&self, offset: u64, bytes: &[u8]) {
        let offset = offset as usize;
        assert!(
            offset <= self.len && bytes.len() <= self.len - offset,
            "write past the end of {}",
            self.name
        );
        // SAFETY: the range is inside the mapping (checked above), which stays valid while
        // `self.map` lives; the caller guarantees exclusive access to it; `bytes` is a Rust
        // buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(offset), bytes.len()) }
    }

    /// Writes `slot` into slot `generation % 2`.
    ///
    /// # Safety
    ///
    /// The caller is the only thread writing slots of this segment (the sequencer for the
    /// activation slot before it shares the segment, the committer afterwards).
    pub(crate) unsafe fn write_slot(&self, slot: &Slot) {
        debug_assert!(slot.generation >= 1);
        let at = slot_offset(slot.generation);
        // SAFETY: forwarded from the caller; the slot lies inside the header page.
        unsafe { self.write(at, &slot.encode(&self.prefix_digest)) }
    }

    /// Fails if another process has removed, renamed, replaced ([`SegmentFile::check_in_place`])
    /// or cut ([`MappedSegment::check_length`]) the file: what the writer stored there is then
    /// not in the log. The committer checks after every sync, before it issues receipts.
    pub(crate) fn check_unchanged(&self) -> io::Result<()> {
        self.file.check_in_place()?;
        self.check_length()
    }

    /// Fails, naming the file and what happened, if another process has changed its length
    /// (truncated it, or truncated and extended it): the writer's stores past the cut are
    /// lost. One `fstat`.
    pub(crate) fn check_length(&self) -> io::Result<()> {
        let size = self.file.size()?;
        if size == self.prefix.file_len {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "{} is {size} bytes where it must be {}: the file was truncated by another process \
             while auditring wrote it (truncate, logrotate copytruncate, an editor: never \
             rotate a log that way); the log can be recovered by reopening it, to its last \
             committed state if the cut left that intact",
            self.path.display(),
            self.prefix.file_len
        )))
    }

    /// Makes `[offset, offset + len)` durable.
    pub(crate) fn sync(&self, offset: u64, len: u64) -> io::Result<()> {
        self.map.sync(offset as usize, len as usize)
    }

    /// Makes the header page durable.
    pub(crate) fn sync_header(&self) -> io::Result<()> {
        self.sync(0, HEADER_LEN)
    }

    /// Lets the pages wholly inside `[offset, offset + len)` leave the process's memory (see
    /// [`WritableMap::release`]): the caller writes there no more, nor anywhere in the data
    /// region before it.
    pub(crate) fn release(&self, offset: u64, len: u64) -> io::Result<()> {
        let from = offset.next_multiple_of(PAGE);
        let to = (offset.saturating_add(len)).min(self.prefix.file_len) / PAGE * PAGE;
        if from >= to {
            return Ok(());
        }
        self.released.fetch_max(to, Ordering::Release);
        self.map.release(from as usize, (to - from) as usize)
    }

    /// Faults `[offset, offset + len)` in for writing, clamped to the file, skipping the part
    /// of the data region already released, [`PREFAULT_CHUNK`] at a time.
    ///
    /// A release may run on another thread while a chunk is faulted in; what the chunk brought
    /// back below the released mark is released again, so that of the data region only the
    /// pages the writer has not passed yet stay in memory.
    pub(crate) fn prefault(&self, offset: u64, len: u64) -> io::Result<()> {
        let end = (offset.saturating_add(len)).min(self.prefix.file_len);
        let data = self.prefix.data_offset;
        let mut at = offset;
        while at < end {
            let from = if at < data {
                at
            } else {
                at.max(self.released.load(Ordering::Acquire))
            };
            if from >= end {
                break;
            }
            let to = (from + PREFAULT_CHUNK).min(end);
            self.map.prefault(from as usize, (to - from) as usize)?;
            let (lo, released) = (from.max(data), self.released.load(Ordering::Acquire));
            if released > lo {
                self.release(lo, released.min(to).saturating_sub(lo))?;
            }
            at = to;
        }
        Ok(())
    }
}

/// The page size the mappings are released in.
const PAGE: u64 = crate::storage::PAGE_SIZE as u64;

/// How much [`MappedSegment::prefault`] faults in before it looks at the released mark again.
const PREFAULT_CHUNK: u64 = 1 << 20;

impl fmt::Debug for MappedSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedSegment")
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use crate::read::recovery::create_segment;
    use crate::storage::FsStorage;

    /// Resident bytes of the mapping that starts at `base`, from `/proc/self/smaps`.
    fn resident(base: *mut u8) -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let start = format!("{:x}-", base as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&start));
        lines.next().expect("the mapping is listed");
        let rss = lines.find(|l| l.starts_with("Rss:")).unwrap();
        let kib: u64 = rss.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib * 1024
    }

    /// A prefault request that reaches the preparer after the sequencer wrote past and released
    /// part of its range faults in only the rest: the released pages stay out of memory.
    #[test]
    fn a_late_prefault_skips_what_was_released() {
        const MIB: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let seg = create_segment(&FsStorage::new(dir.path()), 1, 32 * MIB, [7; 16]).unwrap();
        let data = seg.prefix.data_offset;
        let before = resident(seg.base);
        seg.release(data, 12 * MIB).unwrap();
        seg.prefault(data, 16 * MIB).unwrap();
        let grown = resident(seg.base) - before;
        // The 4 MiB past the released mark (without the mark: 16 MiB). The slack allows for a
        // kernel that maps a large page-cache folio across the mark whole.
        assert!(
            (4 * MIB..=6 * MIB).contains(&grown),
            "{grown} bytes faulted in"
        );
        // Past the mark, faulting in works as before.
        seg.prefault(data + 16 * MIB, 8 * MIB).unwrap();
        assert!(resident(seg.base) - before >= 12 * MIB);
    }
}
