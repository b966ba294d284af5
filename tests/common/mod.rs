//! Test utilities: a storage that fails or stalls on demand, and one that counts what is read.
#![allow(dead_code)]

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
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        let f = Faults::default();
        f.syncs_until_failure.store(-1, Ordering::SeqCst);
        Arc::new(f)
    }
}

/// Wraps a storage and applies [`Faults`].
pub struct FaultyStorage {
    pub inner: Arc<dyn Storage>,
    pub faults: Arc<Faults>,
}

impl FaultyStorage {
    pub fn new(inner: impl Storage, faults: Arc<Faults>) -> FaultyStorage {
        FaultyStorage {
            inner: Arc::new(inner),
            faults,
        }
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
        self.inner.list()
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
        let file = self.inner.open(name, write)?;
        Ok(Arc::new(FaultyFile {
            inner: file,
            faults: self.faults.clone(),
        }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
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
    if faults.panic_on_sync.load(Ordering::SeqCst) {
        panic!("injected panic in a sync");
    }
    let left = faults.syncs_until_failure.load(Ordering::SeqCst);
    if left < 0 {
        return Ok(());
    }
    if left == 0 {
        return Err(io::Error::from_raw_os_error(5)); // EIO
    }
    faults.syncs_until_failure.fetch_sub(1, Ordering::SeqCst);
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

/// The path of the binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_auditring")
}

/// Starts `auditring ARGS` with its standard input, output and error piped.
pub fn spawn(args: &[&str]) -> std::process::Child {
    use std::process::{Command, Stdio};
    Command::new(bin())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `auditring ARGS` with `stdin` as its standard input, and waits for it.
pub fn run(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = spawn(args);
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `auditring ARGS` with `stdin` as its standard input, which the command may stop reading
/// early (a write to it that fails because it did is not an error here). Kills the command if
/// it has not ended after five minutes: a guard against a hang, not a timing condition.
pub fn run_partial_stdin(args: &[&str], stdin: Vec<u8>) -> std::process::Output {
    use std::io::Write;
    let mut child = spawn(args);
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let pid = child.id() as i32;
    let (done, finished) = crossbeam::channel::bounded::<()>(1);
    let guard = std::thread::spawn(move || {
        if finished
            .recv_timeout(std::time::Duration::from_secs(300))
            .is_err()
        {
            // SAFETY: kill(2) on the child's pid, which is not reaped before `done` is sent.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = done.send(());
    guard.join().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.code().is_some(),
        "auditring hung and was killed: {out:?}"
    );
    out
}

/// The one JSON object a command printed on stdout.
pub fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}
