//! [`MemStorage`]: a log in memory that remembers what a crash would leave behind.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

#[cfg(any(test, feature = "test-support"))]
use super::PAGE_SIZE;
use super::{LockError, LockGuard, SegmentFile, Storage, WritableMap};

#[cfg(any(test, feature = "test-support"))]
/// Size of the sectors a disk writes whole: [`MemStorage::crash_image_seeded`] tears pages at
/// sector boundaries half of the time.
pub const SECTOR_SIZE: usize = 512;

#[cfg(any(test, feature = "test-support"))]
/// A page of a [`MemStorage`] file written since it was last synced.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirtyPage {
    /// The file's name.
    pub file: String,
    /// Where the page starts in the file: a multiple of [`PAGE_SIZE`].
    pub offset: u64,
    /// The page's length: [`PAGE_SIZE`], or less for the last page of a file whose length is
    /// not a multiple of it.
    pub len: usize,
}

#[cfg(any(test, feature = "test-support"))]
/// What a simulated crash does to one page written since it was last synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageFate {
    /// The page reached the disk: it holds the bytes written last.
    Kept,
    /// The page did not reach the disk: it holds the bytes of its last sync (or of its
    /// creation).
    Lost,
    /// The page was being written when the power went: its first `n` bytes are the bytes written
    /// last, the rest those of its last sync. `Torn(0)` is [`PageFate::Lost`]; `n` at or past
    /// the page's length is [`PageFate::Kept`].
    Torn(usize),
}

#[cfg(any(test, feature = "test-support"))]
impl PageFate {
    /// A fate drawn from 64 random bits: kept, lost or torn with equal odds; a torn page keeps a
    /// whole number of sectors ([`SECTOR_SIZE`]) when bit 2 is clear, and any number of bytes
    /// when it is set, always at least one and fewer than the page's length. The choice of
    /// [`MemStorage::crash_image_seeded`].
    pub fn random(page: &DirtyPage, bits: u64) -> PageFate {
        match bits % 3 {
            0 => PageFate::Kept,
            1 => PageFate::Lost,
            _ => {
                let r = bits >> 3;
                let sectors = page.len / SECTOR_SIZE;
                if bits & 4 == 0 && sectors > 1 {
                    PageFate::Torn((1 + r as usize % (sectors - 1)) * SECTOR_SIZE)
                } else if page.len > 1 {
                    PageFate::Torn(1 + r as usize % (page.len - 1))
                } else {
                    PageFate::Lost
                }
            }
        }
    }
}

#[cfg(any(test, feature = "test-support"))]
/// A small, fast generator for seeded crash images (`SplitMix64`; not for anything secret).
struct SplitMix64(u64);

#[cfg(any(test, feature = "test-support"))]
impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// A log kept in memory.
///
/// Every file has two images: the *live* bytes, which the ring writes and readers see, and the
/// *durable* bytes, which only a sync updates. With the `test-support` feature,
/// `MemStorage::crash_image` returns a new storage holding just the durable bytes: what a
/// machine that lost power would find on its disk; `MemStorage::crash_image_with` and
/// `MemStorage::crash_image_seeded` simulate a harsher crash: every page written since its last
/// sync is independently kept, lost or torn.
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

    #[cfg(any(test, feature = "test-support"))]
    /// A new storage holding only the bytes that were synced: the state after a crash in which
    /// no page written since its last sync reached the disk. The same as
    /// [`MemStorage::crash_image_with`] with every page [`PageFate::Lost`].
    #[must_use]
    pub fn crash_image(&self) -> MemStorage {
        self.crash_image_with(|_| PageFate::Lost)
    }

    #[cfg(any(test, feature = "test-support"))]
    /// The pages written since they were last synced, file by file (in name order) and by
    /// offset: the pages a crash could keep, lose or tear.
    ///
    /// A page is dirty when its live bytes differ from its durable ones. A page written since
    /// its last sync with the bytes it already held is not dirty: keeping or losing it leaves
    /// the same bytes. File creation, removal and [`Storage::write_small`] are atomic and
    /// durable in this storage, as [`FsStorage`](super::FsStorage) makes them (it syncs the
    /// directory after each), so they leave no dirty page.
    ///
    /// Call it, like the `crash_image` functions, while no thread writes to the storage: the
    /// live bytes are read as they are.
    pub fn dirty_pages(&self) -> Vec<DirtyPage> {
        let mut pages = Vec::new();
        for (name, file) in lock(&self.inner.files).iter() {
            let durable = lock(&file.durable);
            let mut live = vec![0u8; file.len];
            file.copy_out(&mut live, 0);
            for (i, (l, d)) in live
                .chunks(PAGE_SIZE)
                .zip(durable.chunks(PAGE_SIZE))
                .enumerate()
            {
                if l != d {
                    pages.push(DirtyPage {
                        file: name.clone(),
                        offset: (i * PAGE_SIZE) as u64,
                        len: l.len(),
                    });
                }
            }
        }
        pages
    }

    #[cfg(any(test, feature = "test-support"))]
    /// A new storage holding what a crash (a power loss) would leave on the disk, with the fate
    /// of each page chosen by `choose`.
    ///
    /// Every byte that was synced is kept. Each page written since it was last synced (see
    /// [`MemStorage::dirty_pages`], which lists them in the order `choose` is called) is
    /// independently [kept](PageFate::Kept), [lost](PageFate::Lost) or
    /// [torn](PageFate::Torn), as a disk that writes back pages in any order may leave them
    /// when the power goes, in the spirit of SQLite's crash tests. `choose` is called once per
    /// dirty page, so a deterministic function (or a seeded generator, as in
    /// [`MemStorage::crash_image_seeded`]) gives the same image for the same history.
    ///
    /// With every page kept, the image is what the death of the writing process (not of the
    /// machine) leaves: the page cache survives it.
    ///
    /// The new storage's files are durable as they are: a crash image of the image is the image
    /// itself until it is written to.
    ///
    /// ```
    /// use auditring::storage::{MemStorage, PageFate, Storage};
    /// let mem = MemStorage::new("m");
    /// let file = mem.create("f", 8192, b"synced")?;
    /// file.write_at(b"written", 4096)?;
    /// // One dirty page; torn after 3 bytes: "wri" reached the disk, the rest did not.
    /// let image = mem.crash_image_with(|page| {
    ///     assert_eq!((page.file.as_str(), page.offset), ("f", 4096));
    ///     PageFate::Torn(3)
    /// });
    /// let bytes = image.read_file("f").unwrap();
    /// assert_eq!(&bytes[..6], b"synced");
    /// assert_eq!(&bytes[4096..4104], b"wri\0\0\0\0\0");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn crash_image_with(&self, mut choose: impl FnMut(&DirtyPage) -> PageFate) -> MemStorage {
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
                let mut bytes = lock(&file.durable).clone();
                let mut live = vec![0u8; file.len];
                file.copy_out(&mut live, 0);
                for (i, (l, d)) in live
                    .chunks(PAGE_SIZE)
                    .zip(bytes.chunks_mut(PAGE_SIZE))
                    .enumerate()
                {
                    if l == d {
                        continue;
                    }
                    let page = DirtyPage {
                        file: name.clone(),
                        offset: (i * PAGE_SIZE) as u64,
                        len: l.len(),
                    };
                    let kept = match choose(&page) {
                        PageFate::Kept => l.len(),
                        PageFate::Lost => 0,
                        PageFate::Torn(n) => n.min(l.len()),
                    };
                    d[..kept].copy_from_slice(&l[..kept]);
                }
                files.insert(name.clone(), Arc::new(MemFile::from_bytes(bytes)));
            }
        }
        image
    }

    #[cfg(any(test, feature = "test-support"))]
    /// A crash image ([`MemStorage::crash_image_with`]) whose page fates are drawn from a
    /// generator seeded with `seed`: each dirty page is kept, lost or torn with equal odds, and
    /// a torn page keeps its first few sectors ([`SECTOR_SIZE`]) or, as often, its first few
    /// bytes. The same seed and the same history give the same image.
    #[must_use]
    pub fn crash_image_seeded(&self, seed: u64) -> MemStorage {
        let mut rng = SplitMix64(seed);
        self.crash_image_with(|page| PageFate::random(page, rng.next()))
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
            );
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
            )));
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
            );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_images_keep_lose_or_tear_each_page_written_since_its_sync() {
        let mem = MemStorage::new("t");
        let file = mem.create("f", 3 * PAGE_SIZE as u64, b"prefix").unwrap();
        let map = file.map_writable().unwrap();
        file.write_at(&[1; 10], 100).unwrap();
        map.sync(0, PAGE_SIZE).unwrap();
        // Pages 1 and 2 are written after the last sync of their bytes.
        file.write_at(&[2; PAGE_SIZE], PAGE_SIZE as u64).unwrap();
        file.write_at(&[3; 10], 2 * PAGE_SIZE as u64 + 5).unwrap();
        let offsets: Vec<u64> = mem.dirty_pages().iter().map(|p| p.offset).collect();
        assert_eq!(offsets, [PAGE_SIZE as u64, 2 * PAGE_SIZE as u64]);

        for (fates, page1, page2) in [
            ([PageFate::Lost, PageFate::Torn(7)], 0, [3, 3, 0]),
            ([PageFate::Kept, PageFate::Torn(0)], 2, [0, 0, 0]),
            ([PageFate::Torn(1), PageFate::Kept], 0, [3, 3, 3]),
        ] {
            let image = mem.crash_image_with(|p| fates[p.offset as usize / PAGE_SIZE - 1]);
            let b = image.read_file("f").unwrap();
            assert_eq!(&b[..6], b"prefix");
            assert_eq!(b[100..110], [1; 10], "synced bytes are always kept");
            assert!(b[PAGE_SIZE + 1..2 * PAGE_SIZE].iter().all(|&x| x == page1));
            let p2 = 2 * PAGE_SIZE;
            assert_eq!([b[p2 + 5], b[p2 + 6], b[p2 + 14]], page2, "{fates:?}");
            // An image is durable as it is.
            assert!(image.dirty_pages().is_empty());
        }
        // Seeded images depend on the seed only.
        let a = mem.crash_image_seeded(9).read_file("f");
        assert_eq!(a, mem.crash_image_seeded(9).read_file("f"));
        assert_eq!(mem.crash_image().read_file("f"), {
            let mut durable = vec![0u8; 3 * PAGE_SIZE];
            durable[..6].copy_from_slice(b"prefix");
            durable[100..110].fill(1);
            Some(durable)
        });
    }

    #[test]
    fn random_fates_tear_inside_the_page() {
        let page = DirtyPage {
            file: "f".into(),
            offset: 0,
            len: PAGE_SIZE,
        };
        let mut rng = SplitMix64(1);
        let (mut kept, mut lost, mut torn) = (0, 0, 0);
        for _ in 0..3000 {
            let bits = rng.next();
            match PageFate::random(&page, bits) {
                PageFate::Kept => kept += 1,
                PageFate::Lost => lost += 1,
                PageFate::Torn(n) => {
                    torn += 1;
                    assert!(n > 0 && n < PAGE_SIZE);
                    if bits & 4 == 0 {
                        assert_eq!(n % SECTOR_SIZE, 0);
                    }
                }
            }
        }
        assert!(
            kept > 800 && lost > 800 && torn > 800,
            "{kept} {lost} {torn}"
        );
    }
}
