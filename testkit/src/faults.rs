//! A storage that fails, stalls or panics on demand, and counts what is read through it.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use auditring::storage::{LockError, LockGuard, SegmentFile, Storage, WritableMap};
use crossbeam::channel::Receiver;

/// What a [`FaultyStorage`] does wrong.
#[derive(Default)]
pub struct Faults {
    /// Range syncs left before every later one fails with EIO (negative: never fail).
    pub syncs_until_failure: AtomicI64,
    /// Every `create` fails with ENOSPC while set.
    pub disk_full: AtomicBool,
    /// `create` blocks until a message arrives on this channel (one per create).
    pub create_gate: Mutex<Option<Receiver<()>>>,
    /// A range sync blocks until a message arrives on this channel (one per sync); it first
    /// sends on `sync_entered`, if set.
    pub sync_gate: Mutex<Option<(crossbeam::channel::Sender<()>, Receiver<()>)>>,
    /// Bytes read through `read_at`.
    pub bytes_read: AtomicU64,
    /// Number of `create` calls.
    pub creates: AtomicU64,
    /// A sync (of a range or of a whole file) panics while set.
    pub panic_on_sync: AtomicBool,
    /// Files to remove just before a file is opened, by the name of the file opened (once
    /// each): what retention in another process does between a reader's listing and its open.
    pub remove_on_open: Mutex<HashMap<String, Vec<String>>>,
    /// Set when the [`FaultyStorage`] is dropped (by whoever held it last).
    pub storage_dropped: AtomicBool,
    /// Segment removals left before every later one fails with EIO (negative: never fail):
    /// a prune that a crash cut short.
    pub segment_removals_until_failure: AtomicI64,
    /// Names the next listings show although they are gone, one set per listing: a directory
    /// listing is not atomic, and may read an entry just before retention removes the file.
    pub stale_listings: Mutex<VecDeque<Vec<String>>>,
    /// Names the next listings leave out although they are there, one set per listing: a
    /// listing may miss a file created while it was taken, yet show one created after it.
    pub hidden_in_listings: Mutex<VecDeque<Vec<String>>>,
}

impl Faults {
    /// No fault set: syncs never fail, nothing blocks.
    pub fn new() -> Arc<Faults> {
        let f = Faults::default();
        f.syncs_until_failure.store(-1, Ordering::SeqCst);
        f.segment_removals_until_failure.store(-1, Ordering::SeqCst);
        Arc::new(f)
    }
}

/// Wraps a storage and applies [`Faults`].
pub struct FaultyStorage {
    /// The storage every call goes to.
    pub inner: Arc<dyn Storage>,
    /// What goes wrong, shared with the test.
    pub faults: Arc<Faults>,
}

impl FaultyStorage {
    /// Wraps `inner`, applying `faults`.
    pub fn new(inner: impl Storage, faults: Arc<Faults>) -> FaultyStorage {
        FaultyStorage {
            inner: Arc::new(inner),
            faults,
        }
    }
}

impl Drop for FaultyStorage {
    fn drop(&mut self) {
        self.faults.storage_dropped.store(true, Ordering::SeqCst);
    }
}

impl fmt::Debug for FaultyStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStorage({:?})", self.inner)
    }
}

impl Storage for FaultyStorage {
    fn location(&self) -> &Path {
        self.inner.location()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = self.inner.list()?;
        if let Some(stale) = self.faults.stale_listings.lock().unwrap().pop_front() {
            names.extend(stale);
        }
        if let Some(hidden) = self.faults.hidden_in_listings.lock().unwrap().pop_front() {
            names.retain(|n| !hidden.contains(n));
        }
        Ok(names)
    }
    fn create(&self, name: &str, len: u64, prefix: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        self.faults.creates.fetch_add(1, Ordering::SeqCst);
        let gate = self.faults.create_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            let _ = gate.recv();
        }
        if self.faults.disk_full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        let file = self.inner.create(name, len, prefix)?;
        Ok(Arc::new(FaultyFile {
            inner: file,
            faults: self.faults.clone(),
        }))
    }
    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let victims = self.faults.remove_on_open.lock().unwrap().remove(name);
        for v in victims.into_iter().flatten() {
            self.inner.remove(&v)?;
        }
        let file = self.inner.open(name, write)?;
        Ok(Arc::new(FaultyFile {
            inner: file,
            faults: self.faults.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        if std::path::Path::new(name).extension() == Some("seg".as_ref()) {
            countdown(&self.faults.segment_removals_until_failure)?;
        }
        self.inner.remove(name)
    }
    fn write_small(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_small(name, bytes)
    }
    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_small(name)
    }
    fn lock(&self, wait: bool) -> Result<LockGuard, LockError> {
        self.inner.lock(wait)
    }
}

struct FaultyFile {
    inner: Arc<dyn SegmentFile>,
    faults: Arc<Faults>,
}

impl fmt::Debug for FaultyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyFile({:?})", self.inner)
    }
}

fn sync_allowed(faults: &Faults) -> io::Result<()> {
    assert!(
        !faults.panic_on_sync.load(Ordering::SeqCst),
        "injected panic in a sync"
    );
    countdown(&faults.syncs_until_failure)
}

/// Counts one call down on `left`: an error (EIO) once it reaches 0, nothing while negative.
fn countdown(left: &AtomicI64) -> io::Result<()> {
    let n = left.load(Ordering::SeqCst);
    if n < 0 {
        return Ok(());
    }
    if n == 0 {
        return Err(io::Error::from_raw_os_error(5)); // EIO
    }
    left.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

impl SegmentFile for FaultyFile {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = self.inner.read_at(buf, offset)?;
        self.faults.bytes_read.fetch_add(n as u64, Ordering::SeqCst);
        Ok(n)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.inner.write_at(buf, offset)
    }
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        self.inner.zero_range(offset, len)
    }
    fn sync_all(&self) -> io::Result<()> {
        sync_allowed(&self.faults)?;
        self.inner.sync_all()
    }
    fn map_writable(&self) -> io::Result<Box<dyn WritableMap>> {
        Ok(Box::new(FaultyMap {
            inner: self.inner.map_writable()?,
            faults: self.faults.clone(),
        }))
    }
}

struct FaultyMap {
    inner: Box<dyn WritableMap>,
    faults: Arc<Faults>,
}

impl fmt::Debug for FaultyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyMap({:?})", self.inner)
    }
}

// SAFETY: every call is forwarded to a `WritableMap` that upholds the contract.
unsafe impl WritableMap for FaultyMap {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        let gate = self.faults.sync_gate.lock().unwrap().clone();
        if let Some((entered, release)) = gate {
            let _ = entered.send(());
            let _ = release.recv();
        }
        sync_allowed(&self.faults)?;
        self.inner.sync(offset, len)
    }
    fn prefault(&self, offset: usize, len: usize) -> io::Result<()> {
        self.inner.prefault(offset, len)
    }
}
