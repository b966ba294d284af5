//! [`FsStorage`]: a log in a directory of preallocated, memory-mapped segment files.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Advice, MmapMut, MmapOptions, UncheckedAdvice};

use super::{LockError, LockGuard, SegmentFile, Storage, WritableMap};

/// Name of the writer's lock file inside a log directory.
pub const LOCK_FILE: &str = "LOCK";

/// A log stored in a directory.
#[derive(Debug, Clone)]
pub struct FsStorage {
    dir: PathBuf,
}

impl FsStorage {
    /// A storage over `dir`. Nothing is created or checked until it is used.
    pub fn new(dir: impl Into<PathBuf>) -> FsStorage {
        FsStorage { dir: dir.into() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Makes the directory's entries durable (after a create, rename or remove).
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

impl Storage for FsStorage {
    fn location(&self) -> &Path {
        &self.dir
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    fn create(&self, name: &str, len: u64, prefix: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        let final_path = self.path(name);
        let tmp_path = self.path(&format!(".{name}.tmp"));
        let build = || -> io::Result<File> {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp_path)?;
            allocate(&file, len)?;
            file.write_all_at(prefix, 0)?;
            file.sync_all()?;
            Ok(file)
        };
        let file = match build() {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_file(&tmp_path);
                return Err(e);
            }
        };
        if let Ok(meta) = fs::symlink_metadata(&final_path) {
            let _ = fs::remove_file(&tmp_path);
            let what = if meta.is_dir() {
                "a directory"
            } else if meta.is_symlink() {
                "a symbolic link"
            } else if meta.is_file() {
                "a file this writer did not create"
            } else {
                "a special file"
            };
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} already exists and is {what}: the next segment cannot be created \
                     until it is moved away",
                    final_path.display()
                ),
            ));
        }
        fs::rename(&tmp_path, &final_path)?;
        self.sync_dir()?;
        Ok(Arc::new(FsFile {
            file,
            path: final_path,
        }))
    }

    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let path = self.path(name);
        let file = OpenOptions::new().read(true).write(write).open(&path)?;
        Ok(Arc::new(FsFile { file, path }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path(name))?;
        self.sync_dir()
    }

    fn write_small(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        // Unique per process and call: two threads may replace the same file at once.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.path(&format!(".{name}.tmp-{}-{n}", std::process::id()));
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, self.path(name))?;
            self.sync_dir()
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path(name)) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn lock(&self, wait: bool) -> Result<LockGuard, LockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path(LOCK_FILE))
            .map_err(LockError::Io)?;
        let taken = if wait {
            file.lock().map_err(LockError::Io)
        } else {
            match file.try_lock() {
                Ok(()) => Ok(()),
                Err(TryLockError::WouldBlock) => {
                    let mut text = String::new();
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::Held {
                        pid: text.trim().parse().ok(),
                    });
                }
                Err(TryLockError::Error(e)) => Err(LockError::Io(e)),
            }
        };
        taken?;
        // Record who holds the lock, for the error another writer will get.
        let record = |file: &mut File| -> io::Result<()> {
            file.set_len(0)?;
            file.rewind()?;
            writeln!(file, "{}", std::process::id())
        };
        record(&mut file).map_err(LockError::Io)?;
        Ok(LockGuard::new(Box::new(HeldLock(file))))
    }
}

/// The open, locked lock file. Unlocks explicitly when dropped: closing our descriptor is not
/// enough while a child process started by another thread still holds a copy of it (between
/// its `fork` and its `exec`), and the lock must be free the moment a ring is closed.
struct HeldLock(File);

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Allocates `len` bytes of disk for `file`, so that stores through a mapping never meet a full
/// disk (which `mmap` would report as `SIGBUS`).
/// Allocates `len` bytes of blocks for `file`, and writes zeros over them.
///
/// `posix_fallocate` alone leaves *unwritten* extents: the first write-back of each block must
/// then also rewrite the file's extent metadata, which needs space and a metadata write of its
/// own. On a file system without a journal whose device runs out of space (a thin volume, a
/// loop device over a full file system), that conversion can fail after `msync` has returned:
/// the kernel logs "failed to convert unwritten extents", and blocks whose receipts were issued
/// read back as zeros. Writing the zeros here (and the caller's sync) turns every block into an
/// ordinary written one before a record goes into it, so that writing records later only
/// overwrites data in place, and a lack of space surfaces now, as a failure to create the
/// segment (the ring stalls), never as a lost receipt. The `fallocate` first makes a full disk
/// fail at once, without writing anything.
fn allocate(file: &File, len: u64) -> io::Result<()> {
    let n = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
    // SAFETY: `file` is an open descriptor for the duration of the call; the call has no memory
    // arguments.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, n) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    write_zeros(file, 0, len)
}

/// Writes zeros over `[offset, offset + len)`, 64 KiB at a time.
fn write_zeros(file: &File, offset: u64, len: u64) -> io::Result<()> {
    const ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let end = offset
        .checked_add(len)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "range too large"))?;
    let mut at = offset;
    while at < end {
        let n = (end - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

#[derive(Debug)]
struct FsFile {
    file: File,
    /// Where the log names it (see `SegmentFile::check_in_place`).
    path: PathBuf,
}

impl SegmentFile for FsFile {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        // Written, not `FALLOC_FL_ZERO_RANGE`: that turns the blocks back into unwritten extents
        // (see `allocate`).
        write_zeros(&self.file, offset, len)
    }

    fn sync_all(&self) -> io::Result<()> {
        // The length never changes after creation: the data, and what is needed to read it.
        self.file.sync_data()
    }

    fn check_in_place(&self) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let open = self.file.metadata()?;
        let gone = |what: &str| {
            Err(io::Error::other(format!(
                "{} was {what} by another process while this writer held it open: the events \
                 it holds are no longer in the log",
                self.path.display()
            )))
        };
        match fs::symlink_metadata(&self.path) {
            Ok(named) if (named.dev(), named.ino()) == (open.dev(), open.ino()) => Ok(()),
            Ok(_) => gone("replaced"),
            Err(e) if e.kind() == io::ErrorKind::NotFound && open.nlink() == 0 => gone("removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => gone("renamed"),
            Err(e) => Err(e),
        }
    }

    fn map_writable(&self) -> io::Result<Box<dyn WritableMap>> {
        let len = usize::try_from(self.size()?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large to map"))?;
        // SAFETY: the map is of a segment file that only this process writes while it holds the
        // writer lock; the ring never reads or writes past `len`, and checks that the file is at
        // least as long as its header claims before mapping it. Another process truncating the
        // file behind the lock's back is outside what the crate defends against.
        let mut map = unsafe { MmapOptions::new().len(len).map_mut(&self.file)? };
        let ptr = map.as_mut_ptr();
        Ok(Box::new(FsMap { map, ptr }))
    }
}

#[derive(Debug)]
struct FsMap {
    map: MmapMut,
    /// `map.as_mut_ptr()`, taken once so that writes need no `&mut`.
    ptr: *mut u8,
}

// SAFETY: the mapping is plain shared memory; `FsMap` hands out only the raw pointer, and the
// ring orders every access to the bytes behind it (see `crate::map`).
unsafe impl Send for FsMap {}
// SAFETY: as above.
unsafe impl Sync for FsMap {}

// SAFETY: `MmapMut` owns a mapping of `len()` bytes that stays at the same address until it is
// dropped; it is a `MAP_SHARED` mapping of the file, so `pread` sees what is stored through it.
unsafe impl WritableMap for FsMap {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    fn size(&self) -> usize {
        self.map.len()
    }

    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        self.map.flush_range(offset, len)
    }

    fn prefault(&self, offset: usize, len: usize) -> io::Result<()> {
        match self.map.advise_range(Advice::PopulateWrite, offset, len) {
            // Kernels before 5.14 do not know MADV_POPULATE_WRITE: then pages fault on first use.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
            other => other,
        }
    }

    fn release(&self, offset: usize, len: usize) -> io::Result<()> {
        // SAFETY: MADV_DONTNEED on a MAP_SHARED file mapping only unmaps the pages: the next
        // access reads them back from the file (page cache), and a dirty page stays dirty in
        // the page cache, so msync and writeback still see it (madvise(2)). No reference into
        // the range is held: the ring writes there no more.
        unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len)
        }
    }
}
