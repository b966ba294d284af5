//! Files, mappings and syncs behind a small trait, so that tests can inject faults and crashes.
//!
//! The ring never touches the file system directly: it asks a [`Storage`] for named files, maps a
//! segment through [`SegmentFile::map_writable`] and makes byte ranges durable through
//! [`WritableMap::sync`]. Two implementations ship with the crate:
//!
//! * [`FsStorage`]: a directory; segments are preallocated with `fallocate`, mapped with `mmap`,
//!   synced with `msync(MS_SYNC)`; the writer lock is an `flock` on the directory itself, and
//!   no symlink inside the directory is ever followed;
//! * [`MemStorage`]: memory only, keeping apart what was written and what was synced, so a test
//!   can take the image a crash would leave behind (`MemStorage::crash_image`) and reopen it,
//!   or a harsher one in which every page written since its last sync is independently kept,
//!   lost or torn (`MemStorage::crash_image_with`, `MemStorage::crash_image_seeded`). The crash
//!   simulation is for tests: it is compiled with the `test-support` feature only.
//!
//! Tests wrap either of them to fail the k-th sync, create or remove.

pub(crate) mod exported;
mod fs;
pub(crate) mod header;
pub(crate) mod listing;
pub(crate) mod mapped;
mod memory;
pub(crate) mod names;
pub(crate) mod sigbus;
pub(crate) mod tree;
pub(crate) mod tree_base;

use std::any::Any;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

pub use crate::error::LockError;
pub use fs::{FsStorage, NotRegular};
pub use memory::MemStorage;
#[cfg(any(test, feature = "test-support"))]
pub use memory::{DirtyPage, PageFate, SECTOR_SIZE};
pub use names::{LOCK_FILE, is_log_name};

/// Where a log's files live.
///
/// File names are plain names (no separators). Implementations must make [`Storage::create`]
/// atomic: a file is either absent or present with its allocated length and its prefix.
pub trait Storage: Send + Sync + fmt::Debug + 'static {
    /// Where the log lives, for messages (the directory, or a made-up path for memory).
    fn location(&self) -> &Path;

    /// The names of the regular files present, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;

    /// Creates `name` with `len` bytes, all zero except `prefix` at offset 0, allocated so that
    /// writes through a mapping cannot fail for lack of space, synced, and then made visible
    /// under `name` atomically. Fails if `name` exists.
    fn create(&self, name: &str, len: u64, prefix: &[u8]) -> io::Result<Arc<dyn SegmentFile>>;

    /// Opens an existing file, for reading and, if `write`, for writing.
    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn SegmentFile>>;

    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;

    /// Replaces the small file `name` (a marker of the log's own, not a segment) with `bytes`,
    /// atomically and durably.
    fn write_small(&self, name: &str, bytes: &[u8]) -> io::Result<()>;

    /// The contents of the small file `name`, or `None` if it does not exist.
    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>>;

    /// Takes the exclusive writer lock, waiting for it if `wait`. The lock is held until the
    /// returned guard is dropped, and released by the operating system if the process dies.
    fn lock(&self, wait: bool) -> Result<LockGuard, LockError>;

    /// Records, for the message another writer gets, that this process holds the lock (for
    /// `FsStorage`, its pid in `LOCK`). Called by a writer once it holds the lock and has found
    /// the directory to be a log, so that a directory refused as not a log is left as it was.
    /// Informational only: the default does nothing.
    fn record_holder(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Holds a [`Storage`]'s writer lock until dropped.
pub struct LockGuard(#[allow(dead_code)] Box<dyn Any + Send + Sync>);

impl LockGuard {
    /// Wraps whatever keeps the lock held (for `FsStorage`, the locked directory).
    pub fn new(holder: Box<dyn Any + Send + Sync>) -> LockGuard {
        LockGuard(holder)
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LockGuard")
    }
}

/// The page size segments are mapped, faulted in and synced by: the sequencer pre-faults and
/// releases whole pages, and a simulated crash (`MemStorage::crash_image_with`) keeps, loses
/// or tears each page of this size independently.
pub const PAGE_SIZE: usize = 4096;

/// One file of a log.
pub trait SegmentFile: Send + Sync + fmt::Debug {
    /// The file's current size in bytes.
    fn size(&self) -> io::Result<u64>;

    /// Reads up to `buf.len()` bytes at `offset`; fewer only at the end of the file.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`, which must lie within the file.
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// Makes `[offset, offset + len)` read as zeros, keeping it allocated.
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()>;

    /// Makes everything written to the file durable, through a mapping or not.
    fn sync_all(&self) -> io::Result<()>;

    /// Maps the whole file for writing.
    fn map_writable(&self) -> io::Result<Box<dyn WritableMap>>;

    /// Fails if the file is no longer the one its name in the log names: another process
    /// removed, renamed or replaced it while the writer held it open (what it holds is then no
    /// longer in the log, whatever was synced). The writer checks after every sync, so that no
    /// receipt is issued for an event that is no longer in the log. A storage without names
    /// that can change keeps the default, which never fails.
    fn check_in_place(&self) -> io::Result<()> {
        Ok(())
    }
}

impl dyn SegmentFile + '_ {
    /// Reads exactly `buf.len()` bytes at `offset`, or fails with `UnexpectedEof`.
    pub(crate) fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A writable mapping of a whole segment file.
///
/// # Safety
///
/// Implementations guarantee that [`WritableMap::as_ptr`] points to [`WritableMap::size`] bytes
/// that stay valid, writable and at the same address until the map is dropped, and that reads of
/// the file through [`SegmentFile::read_at`] observe what was written through the pointer.
pub unsafe trait WritableMap: Send + Sync + fmt::Debug {
    /// Start of the mapped bytes.
    fn as_ptr(&self) -> *mut u8;

    /// Number of mapped bytes: the file's size.
    fn size(&self) -> usize;

    /// Makes `[offset, offset + len)` durable (`msync(MS_SYNC)`).
    fn sync(&self, offset: usize, len: usize) -> io::Result<()>;

    /// Asks for `[offset, offset + len)` to be faulted in for writing ahead of use. A hint:
    /// implementations may do nothing.
    fn prefault(&self, offset: usize, len: usize) -> io::Result<()>;

    /// Tells the mapping that `[offset, offset + len)` will not be written again, so that its
    /// pages can leave the process's memory (they stay in the file, and in the page cache until
    /// written back). Must not change what the file holds, nor what a later
    /// [`WritableMap::sync`] makes durable. A hint: the default does nothing.
    fn release(&self, offset: usize, len: usize) -> io::Result<()> {
        let _ = (offset, len);
        Ok(())
    }
}

/// Lets tests wrap a storage and still reach the inner one.
impl<S: Storage + ?Sized> Storage for Arc<S> {
    fn location(&self) -> &Path {
        (**self).location()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        (**self).list()
    }
    fn create(&self, name: &str, len: u64, prefix: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        (**self).create(name, len, prefix)
    }
    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn SegmentFile>> {
        (**self).open(name, write)
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        (**self).remove(name)
    }
    fn write_small(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        (**self).write_small(name, bytes)
    }
    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        (**self).read_small(name)
    }
    fn lock(&self, wait: bool) -> Result<LockGuard, LockError> {
        (**self).lock(wait)
    }
    fn record_holder(&self) -> io::Result<()> {
        (**self).record_holder()
    }
}
