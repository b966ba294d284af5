//! A storage wrapper that calls a hook before every operation that changes what is stored, so
//! that a test can take a crash image at that moment, or make the operation fail.
//!
//! Used by `tests/crash_sim.rs` and `tests/faults.rs`.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use auditring::storage::{LockError, LockGuard, SegmentFile, Storage, WritableMap};

/// The kinds of operations that change what a storage holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `SegmentFile::write_at` (the committer writes sealed slots with it).
    Write,
    /// `WritableMap::sync`: an `msync` of a range of a mapping.
    Msync,
    /// `SegmentFile::sync_all`: an `fdatasync` of a file.
    Fsync,
    /// `SegmentFile::zero_range` (recovery trims torn tails with it).
    Zero,
    /// `Storage::create`: a new segment file.
    Create,
    /// `Storage::remove`.
    Remove,
    /// `Storage::write_small`: a small file replaced atomically (a write and a rename).
    WriteSmall,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 7] = [
        Kind::Write,
        Kind::Msync,
        Kind::Fsync,
        Kind::Zero,
        Kind::Create,
        Kind::Remove,
        Kind::WriteSmall,
    ];

    fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap()
    }
}

/// Called before an operation, with its kind and the file's name; an error fails the operation
/// (it is then not performed).
pub type Hook = Arc<dyn Fn(Kind, &str) -> io::Result<()> + Send + Sync>;

/// The hook of an [`Intercept`] storage, and counts of what went through it.
#[derive(Default)]
pub struct Hooks {
    hook: RwLock<Option<Hook>>,
    calls: [AtomicU64; 7],
    done: [AtomicU64; 7],
    /// Completed operations by kind and by the name of the thread that made them (the ring's
    /// threads are named: `auditring-sequencer`, `auditring-commit`, ...).
    done_by: std::sync::Mutex<std::collections::HashMap<(usize, String), u64>>,
}

impl Hooks {
    /// No hook installed, no operation counted yet.
    pub fn new() -> Arc<Hooks> {
        Arc::new(Hooks::default())
    }

    /// Installs `hook`, replacing any other.
    pub fn set(&self, hook: impl Fn(Kind, &str) -> io::Result<()> + Send + Sync + 'static) {
        *self.hook.write().unwrap() = Some(Arc::new(hook));
    }

    /// Removes the hook: operations go straight through.
    pub fn clear(&self) {
        *self.hook.write().unwrap() = None;
    }

    /// Operations of `kind` attempted so far.
    pub fn calls(&self, kind: Kind) -> u64 {
        self.calls[kind.index()].load(Ordering::SeqCst)
    }

    /// Operations of `kind` that completed successfully so far.
    pub fn done(&self, kind: Kind) -> u64 {
        self.done[kind.index()].load(Ordering::SeqCst)
    }

    /// Operations of `kind` that the thread named `thread` completed successfully so far.
    pub fn done_by(&self, kind: Kind, thread: &str) -> u64 {
        let done = self.done_by.lock().unwrap();
        done.get(&(kind.index(), thread.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn run<T>(&self, kind: Kind, name: &str, op: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
        self.calls[kind.index()].fetch_add(1, Ordering::SeqCst);
        // Cloned out of the lock: a hook may take long (crash images), or replace the hook.
        let hook = self.hook.read().unwrap().clone();
        if let Some(hook) = hook {
            hook(kind, name)?;
        }
        let out = op()?;
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        *self
            .done_by
            .lock()
            .unwrap()
            .entry((kind.index(), thread))
            .or_insert(0) += 1;
        self.done[kind.index()].fetch_add(1, Ordering::SeqCst);
        Ok(out)
    }
}

/// Wraps a storage: every file it opens or creates, and every mapping of one, goes through
/// [`Hooks`].
pub struct Intercept {
    inner: Arc<dyn Storage>,
    /// The hook and the counts, shared with the test.
    pub hooks: Arc<Hooks>,
}

impl Intercept {
    /// Wraps `inner`, calling `hooks` before every operation that changes it.
    pub fn new(inner: impl Storage, hooks: Arc<Hooks>) -> Intercept {
        Intercept {
            inner: Arc::new(inner),
            hooks,
        }
    }

    fn wrap(&self, name: &str, file: Arc<dyn SegmentFile>) -> Arc<dyn SegmentFile> {
        Arc::new(File {
            name: name.to_owned(),
            inner: file,
            hooks: self.hooks.clone(),
        })
    }
}

impl fmt::Debug for Intercept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Intercept({:?})", self.inner)
    }
}

impl Storage for Intercept {
    fn location(&self) -> &Path {
        self.inner.location()
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.inner.list()
    }
    fn create(&self, name: &str, len: u64, prefix: &[u8]) -> io::Result<Arc<dyn SegmentFile>> {
        let file = self
            .hooks
            .run(Kind::Create, name, || self.inner.create(name, len, prefix))?;
        Ok(self.wrap(name, file))
    }
    fn open(&self, name: &str, write: bool) -> io::Result<Arc<dyn SegmentFile>> {
        let file = self.inner.open(name, write)?;
        Ok(self.wrap(name, file))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.hooks
            .run(Kind::Remove, name, || self.inner.remove(name))
    }
    fn write_small(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.hooks.run(Kind::WriteSmall, name, || {
            self.inner.write_small(name, bytes)
        })
    }
    fn read_small(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        self.inner.read_small(name)
    }
    fn lock(&self, wait: bool) -> Result<LockGuard, LockError> {
        self.inner.lock(wait)
    }
}

struct File {
    name: String,
    inner: Arc<dyn SegmentFile>,
    hooks: Arc<Hooks>,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Intercepted({}, {:?})", self.name, self.inner)
    }
}

impl SegmentFile for File {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.hooks
            .run(Kind::Write, &self.name, || self.inner.write_at(buf, offset))
    }
    fn zero_range(&self, offset: u64, len: u64) -> io::Result<()> {
        self.hooks.run(Kind::Zero, &self.name, || {
            self.inner.zero_range(offset, len)
        })
    }
    fn sync_all(&self) -> io::Result<()> {
        self.hooks
            .run(Kind::Fsync, &self.name, || self.inner.sync_all())
    }
    fn map_writable(&self) -> io::Result<Box<dyn WritableMap>> {
        Ok(Box::new(Map {
            name: self.name.clone(),
            inner: self.inner.map_writable()?,
            hooks: self.hooks.clone(),
        }))
    }
}

struct Map {
    name: String,
    inner: Box<dyn WritableMap>,
    hooks: Arc<Hooks>,
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InterceptedMap({}, {:?})", self.name, self.inner)
    }
}

// SAFETY: every call is forwarded to a `WritableMap` that upholds the contract.
unsafe impl WritableMap for Map {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }
    fn size(&self) -> usize {
        self.inner.size()
    }
    fn sync(&self, offset: usize, len: usize) -> io::Result<()> {
        self.hooks
            .run(Kind::Msync, &self.name, || self.inner.sync(offset, len))
    }
    fn prefault(&self, offset: usize, len: usize) -> io::Result<()> {
        self.inner.prefault(offset, len)
    }
}
