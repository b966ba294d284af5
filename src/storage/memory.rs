//! [`MemStorage`]: a log in memory that remembers what a crash would leave behind.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{LockError, LockGuard, SegmentFile, Storage, WritableMap};

/// A log kept in memory.
///
/// Every file has two images: the *live* bytes, which the ring writes and readers see, and the
/// *durable* bytes, which only a sync updates. [`MemStorage::crash_image`] returns a new storage
/// holding just the durable bytes: what a machine that lost power would find on its disk.
///
/// Clones share the same files. It is meant for tests and for embedders that want a log that
/// never touches the disk; readers opened on it must not race a writer's unpublished tail.
#[derive(Clone)]
pub struct MemStorage {
    inner: Arc<Inner>,
}

struct Inner {
    location: PathBuf,
    files: Mutex<BTreeMap<String, Arc<MemFile>>>,
    locked: Mutex<bool>,
    unlocked: Condvar,
    syncs: AtomicU64,
}

impl MemStorage {
    /// An empty storage; `name` only appears in messages.
    pub fn new(name: &str) -> MemStorage {
        MemStorage {
            inner: Arc::new(Inner {
                location: PathBuf::from(format!("memory:{name}")),
                files: Mutex::new(BTreeMap::new()),
                locked: Mutex::new(false),
                unlocked: Condvar::new(),
                syncs: AtomicU64::new(0),
            }),
        }
    }

    /// A new storage holding only the bytes that were synced: the state after a crash.
    pub fn crash_image(&self) -> MemStorage {
        let image = MemStorage::new(&format!(
            "{}+crash",
            self.inner
                .location
                .display()
                .to_string()
                .trim_start_matches("memory:")
        ));
        {
            let mut files = lock(&image.inner.files);
            for (name, file) in lock(&self.inner.files).iter() {
                let durable = lock(&file.durable).clone();
                files.insert(name.clone(), Arc::new(MemFile::from_bytes(durable)));
            }
        }
        image
    }

    /// Number of range syncs performed so far (a measure of group commit in tests).
    pub fn sync_count(&self) -> u64 {
        self.inner.syncs.load(Ordering::Relaxed)
    }

    /// The live bytes of a file, or `None` if it does not exist.
    pub fn read_file(&self, name: &str) -> Option<Vec<u8>> {
        let file = lock(&self.inner.files).get(name).cloned()?;
        let mut out = vec![0; file.len];
        file.copy_out(&mut out, 0);
        Some(out)
    }

    /// Replaces a file's live and durable bytes: for tests that damage a log.
    pub fn write_file(&self, name: &str, bytes: Vec<u8>) {
        lock(&self.inner.files).insert(name.to_owned(), Arc::new(MemFile::from_bytes(bytes)));
    }
}

impl fmt::Debug for MemStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemStorage")
            .field("location", &self.inner.location)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Storage for MemStorage {
    fn location(&self) -> &Path {
        &self.inner.location
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(lock(&self.inner.files).keys().cloned().collect())
    }

    fn create(&self, name: &str, len: u64, prefix: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        let len = usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        let mut files = lock(&self.inner.files);
        if files.contains_key(name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{name} already exists"),
            ));
        }
        let mut bytes = vec![0u8; len];
        let n = prefix.len().min(len);
        bytes[..n].copy_from_slice(&prefix[..n]);
        let file = Arc::new(MemFile::from_bytes(bytes));
        files.insert(name.to_owned(), file.clone());
        Ok(Arc::new(MemHandle {
            file,
            storage: self.inner.clone(),
        }))
    }

    fn open(&self, name: &str, _write: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let file = lock(&self.inner.files)
            .get(name)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name} not found")))?;
        Ok(Arc::new(MemHandle {
            file,
            storage: self.inner.clone(),
        }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        lock(&self.inner.files)
            .remove(name)
            .map(drop)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name} not found")))
    }

    fn write_small(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        lock(&self.inner.files).insert(
            name.to_owned(),
            Arc::new(MemFile::from_bytes(bytes.to_vec())),
        );
        Ok(())
    }

    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.read_file(name))
    }

    fn lock(&self, wait: bool) -> Result<LockGuard, LockError> {
        let mut locked = lock(&self.inner.locked);
        while *locked {
            if !wait {
                return Err(LockError::Held {
                    pid: Some(std::process::id()),
                });
            }
            locked = self
                .inner
                .unlocked
                .wait(locked)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *locked = true;
        Ok(LockGuard::new(Box::new(MemLock(self.inner.clone()))))
    }
}

struct MemLock(Arc<Inner>);

impl Drop for MemLock {
    fn drop(&mut self) {
        *lock(&self.0.locked) = false;
        self.0.unlocked.notify_all();
    }
}

/// One in-memory file: live bytes behind a raw pointer, durable bytes behind a mutex.
struct MemFile {
    /// Start of `len` live bytes, owned by this struct (a leaked `Box<[u8]>`).
    live: *mut u8,
    len: usize,
    durable: Mutex<Vec<u8>>,
}

// SAFETY: `live` is an owned heap allocation; concurrent access to its bytes is ordered by the
// ring exactly as it orders access to a shared file mapping.
unsafe impl Send for MemFile {}
// SAFETY: as above.
unsafe impl Sync for MemFile {}

impl MemFile {
    fn from_bytes(bytes: Vec<u8>) -> MemFile {
        let durable = bytes.clone();
        let len = bytes.len();
        let live = Box::into_raw(bytes.into_boxed_slice()).cast::<u8>();
        MemFile {
            live,
            len,
            durable: Mutex::new(durable),
        }
    }

    /// Copies live bytes at `offset` into `out`, which must lie within the file.
    fn copy_out(&self, out: &mut [u8], offset: usize) {
        assert!(offset <= self.len && out.len() <= self.len - offset);
        // SAFETY: the range is inside the live allocation (checked above) and `out` is a
        // distinct Rust buffer.
        unsafe { std::ptr::copy_nonoverlapping(self.live.add(offset), out.as_mut_ptr(), out.len()) }
    }

    fn sync(&self, offset: usize, len: usize) {
        let mut durable = lock(&self.durable);
        // SAFETY: callers pass ranges inside the file; see `copy_out`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.live.add(offset),
                durable[offset..offset + len].as_mut_ptr(),
                len,
            )
        }
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        // SAFETY: `live` came from `Box::into_raw` of a boxed slice of `len` bytes and is freed
        // exactly once, here.
        unsafe {
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.live, self.len,
            )))
        }
    }
}

struct MemHandle {
    file: Arc<MemFile>,
    storage: Arc<Inner>,
}

impl fmt::Debug for MemHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemHandle({} bytes)", self.file.len)
    }
}

impl SegmentFile for MemHandle {
    fn size(&self) -> io::Result<u64> {
        Ok(self.file.len as u64)
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Ok(offset) = usize::try_from(offset) else {
            return Ok(0);
        };
        if offset >= self.file.len {
            return Ok(0);
        }
        let n = buf.len().min(self.file.len - offset);
        self.file.copy_out(&mut buf[..n], offset);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let fits = usize::try_from(offset)
            .ok()
            .is_some_and(|o| o <= self.file.len && buf.len() <= self.file.len - o);
        if !fits {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "write past the end of the file",
            ));
        }
        // SAFETY: the range is inside the live allocation (checked above), and `buf` is a
        // distinct Rust buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                buf.as_ptr(),
                self.file.live.add(offset as usize),
                buf.len(),
            )
        };
        Ok(())
    }

    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        let end = offset.saturating_add(len).min(self.file.len as u64) as usize;
        let start = (offset as usize).min(end);
        // SAFETY: `[start, end)` is inside the live allocation.
        unsafe { std::ptr::write_bytes(self.file.live.add(start), 0, end - start) };
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.storage.syncs.fetch_add(1, Ordering::Relaxed);
        self.file.sync(0, self.file.len);
        Ok(())
    }

    fn map_writable(&self) -> io::Result<Box<dyn WritableMap>> {
        Ok(Box::new(MemMap {
            file: self.file.clone(),
            storage: self.storage.clone(),
        }))
    }
}

struct MemMap {
    file: Arc<MemFile>,
    storage: Arc<Inner>,
}

impl fmt::Debug for MemMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemMap({} bytes)", self.file.len)
    }
}

// SAFETY: the live allocation of `len` bytes is owned by `MemFile`, which this map keeps alive,
// and never moves; `read_at` reads the same bytes.
unsafe impl WritableMap for MemMap {
    fn as_ptr(&self) -> *mut u8 {
        self.file.live
    }

    fn size(&self) -> usize {
        self.file.len
    }

    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        if offset > self.file.len || len > self.file.len - offset {
            return Err(io::ErrorKind::InvalidInput.into());
        }
        self.storage.syncs.fetch_add(1, Ordering::Relaxed);
        self.file.sync(offset, len);
        Ok(())
    }

    fn prefault(&self, _offset: usize, _len: usize) -> io::Result<()> {
        Ok(())
    }
}
