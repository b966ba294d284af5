//! The designs auditring replaces that only the benchmarks run (the command line's `bench` and
//! `demo --compare` run the two in [`crate::baselines`]). Each implements [`Design`], so that
//! one loop drives every design over the same events.
//!
//! | baseline | type | what it does per event |
//! | --- | --- | --- |
//! | 1 | [`InMemory`] | pushes the event into a `Mutex<Vec<_>>`; no file, no chain |
//! | 2 | `baselines::Locked` | mutex around JSON + chain hash + `BufWriter` append |
//! | 3 | `baselines::WriteBehind` | bounded channel (10,000) into one writer thread that chains and appends |
//! | 4 | [`FlockReread`] | `flock`, re-read the whole log for the last hash, append a chained JSON line, `fsync`, unlock |
//! | 5 | [`FsyncPerEvent`] | mutex around JSON + chain hash + append + `fsync` |
//! | 6a | [`SqlitePerEvent`] | `INSERT` + `COMMIT` per event under a mutex (WAL) |
//! | 6b | [`SqliteBatched`] | bounded channel (10,000) into one thread committing every 1,000 events (WAL) |
//! | 7 | [`TracingJson`] | `tracing` event through `tracing-subscriber`'s JSON formatter into `tracing-appender`'s non-blocking writer, set not to drop; no chain |
//!
//! The SQLite databases run in WAL mode with `synchronous=NORMAL`, SQLite's recommended setting
//! for WAL: a commit is not synced (the WAL is synced at checkpoints), so 6a and 6b are
//! compared with auditring without durability.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use crossbeam::channel::{self, Sender};
use sha2::{Digest, Sha256};

use crate::load::Design;
use crate::workload::AuditEvent;

fn text<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> String {
    move |e| format!("{what}: {e}")
}

/// `SHA-256(previous ‖ json)` and the line `json TAB hex(chain) LF`, as the JSON-lines
/// baselines write it.
fn chained_line(previous: &[u8; 32], e: &AuditEvent) -> io::Result<([u8; 32], Vec<u8>)> {
    let mut line = serde_json::to_vec(e)?;
    let mut h = Sha256::new();
    h.update(previous);
    h.update(&line);
    let chain: [u8; 32] = h.finalize().into();
    line.push(b'\t');
    for b in chain {
        line.extend_from_slice(format!("{b:02x}").as_bytes());
    }
    line.push(b'\n');
    Ok((chain, line))
}

/// Baseline 1: the events in memory under a mutex; nothing written, nothing chained.
#[derive(Default)]
pub struct InMemory {
    events: Mutex<Vec<AuditEvent>>,
}

impl InMemory {
    /// An empty log.
    pub fn new() -> InMemory {
        InMemory {
            events: Mutex::new(Vec::new()),
        }
    }
}

impl Design for InMemory {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn push(&self, event: AuditEvent) -> Result<(), String> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
        Ok(())
    }

    fn finish(self) -> Result<u64, String> {
        let events = self
            .events
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(events.len() as u64)
    }
}

/// Baseline 4: for every event, take an exclusive `flock` on a lock file, read the
/// whole log to find the last chain hash, append the chained JSON line, `fsync`, unlock. Safe
/// across processes, and its cost grows with the log.
pub struct FlockReread {
    path: PathBuf,
    lock: File,
}

impl FlockReread {
    /// Creates (or truncates) the log file at `path`, and its lock file beside it.
    pub fn open(path: &Path) -> io::Result<FlockReread> {
        File::create(path)?;
        let lock = File::create(path.with_extension("lock"))?;
        Ok(FlockReread {
            path: path.to_path_buf(),
            lock,
        })
    }

    fn append(&self, e: &AuditEvent) -> io::Result<()> {
        // The lock is per open file description; each push opens its own, as a process would.
        let lock = File::open(self.path.with_extension("lock"))?;
        // SAFETY: flock on a file descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut previous = [0u8; 32];
        for line in BufReader::new(File::open(&self.path)?).lines() {
            let line = line?;
            if let Some((_, hex)) = line.rsplit_once('\t') {
                for (i, b) in previous.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
            }
        }
        let (_, line) = chained_line(&previous, e)?;
        let mut out = OpenOptions::new().append(true).open(&self.path)?;
        out.write_all(&line)?;
        out.sync_all()?;
        // Closing `lock` releases the flock.
        drop(lock);
        Ok(())
    }
}

impl Design for FlockReread {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn push(&self, event: AuditEvent) -> Result<(), String> {
        self.append(&event).map_err(text("flock + re-read"))
    }

    fn finish(self) -> Result<u64, String> {
        let _ = &self.lock;
        count_lines(&self.path).map_err(text("flock + re-read"))
    }
}

#[allow(clippy::naive_bytecount)] // one count per run: not worth a dependency
fn count_lines(path: &Path) -> io::Result<u64> {
    let bytes = std::fs::read(path)?;
    Ok(bytes.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// Baseline 5: a mutex around serializing, chaining, appending the line and `fsync`, per event.
pub struct FsyncPerEvent {
    state: Mutex<(File, [u8; 32], u64)>,
}

impl FsyncPerEvent {
    /// Creates (or truncates) the log file at `path`.
    pub fn open(path: &Path) -> io::Result<FsyncPerEvent> {
        Ok(FsyncPerEvent {
            state: Mutex::new((File::create(path)?, [0; 32], 0)),
        })
    }
}

impl Design for FsyncPerEvent {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn push(&self, event: AuditEvent) -> Result<(), String> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (file, chain, count) = &mut *state;
        let (next, line) = chained_line(chain, &event).map_err(text("fsync per event"))?;
        file.write_all(&line).map_err(text("fsync per event"))?;
        file.sync_all().map_err(text("fsync per event"))?;
        *chain = next;
        *count += 1;
        Ok(())
    }

    fn finish(self) -> Result<u64, String> {
        Ok(self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .2)
    }
}

const CREATE_TABLE: &str = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
     CREATE TABLE audit (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, actor TEXT,
                         trace_id TEXT, timestamp INTEGER NOT NULL, details TEXT);";
const INSERT: &str =
    "INSERT INTO audit (kind, actor, trace_id, timestamp, details) VALUES (?1, ?2, ?3, ?4, ?5)";

fn sqlite_open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let _ = std::fs::remove_file(path);
    let db = rusqlite::Connection::open(path)?;
    db.execute_batch(CREATE_TABLE)?;
    Ok(db)
}

fn sqlite_insert(db: &rusqlite::Connection, e: &AuditEvent) -> rusqlite::Result<()> {
    let details = serde_json::to_string(&e.details).expect("details serialize");
    db.prepare_cached(INSERT)?.execute(rusqlite::params![
        e.kind,
        e.actor,
        e.trace_id,
        e.timestamp,
        details
    ])?;
    Ok(())
}

fn sqlite_count(db: &rusqlite::Connection) -> rusqlite::Result<u64> {
    db.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
}

/// Baseline 6a: one `INSERT` committed per event, on the caller's
/// thread, under a mutex around the connection.
pub struct SqlitePerEvent {
    db: Mutex<rusqlite::Connection>,
}

impl SqlitePerEvent {
    /// Creates (or replaces) the database at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<SqlitePerEvent> {
        Ok(SqlitePerEvent {
            db: Mutex::new(sqlite_open(path)?),
        })
    }
}

impl Design for SqlitePerEvent {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn push(&self, event: AuditEvent) -> Result<(), String> {
        let db = self.db.lock().unwrap_or_else(PoisonError::into_inner);
        // Autocommit: the statement is its own transaction, committed before it returns.
        sqlite_insert(&db, &event).map_err(text("sqlite"))
    }

    fn finish(self) -> Result<u64, String> {
        let db = self.db.into_inner().unwrap_or_else(PoisonError::into_inner);
        sqlite_count(&db).map_err(text("sqlite"))
    }
}

/// Events per transaction of [`SqliteBatched`].
const SQLITE_BATCH: usize = 1000;

/// Inserts `batch` in one transaction, and empties it.
fn commit_batch(
    db: &mut rusqlite::Connection,
    batch: &mut Vec<AuditEvent>,
) -> rusqlite::Result<()> {
    let t = db.transaction()?;
    for e in batch.drain(..) {
        sqlite_insert(&t, &e)?;
    }
    t.commit()
}

/// Baseline 6b: a bounded channel of 10,000 events into one writer
/// thread that commits a transaction every 1,000 events.
pub struct SqliteBatched {
    tx: Sender<AuditEvent>,
    writer: JoinHandle<rusqlite::Result<u64>>,
}

impl SqliteBatched {
    /// Creates (or replaces) the database at `path` and starts its writer thread.
    pub fn open(path: &Path) -> rusqlite::Result<SqliteBatched> {
        let mut db = sqlite_open(path)?;
        let (tx, rx) = channel::bounded::<AuditEvent>(10_000);
        let writer = thread::spawn(move || {
            let mut batch = Vec::with_capacity(SQLITE_BATCH);
            for e in rx {
                batch.push(e);
                if batch.len() == SQLITE_BATCH {
                    commit_batch(&mut db, &mut batch)?;
                }
            }
            commit_batch(&mut db, &mut batch)?;
            sqlite_count(&db)
        });
        Ok(SqliteBatched { tx, writer })
    }
}

impl Design for SqliteBatched {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn push(&self, event: AuditEvent) -> Result<(), String> {
        self.tx
            .send(event)
            .map_err(|_| "sqlite writer failed".to_string())
    }

    fn finish(self) -> Result<u64, String> {
        drop(self.tx);
        self.writer
            .join()
            .map_err(|_| "sqlite writer panicked".to_string())?
            .map_err(text("sqlite"))
    }
}

/// Baseline 7: what a Rust service reaches for. A `tracing` event per audit event, formatted by
/// `tracing-subscriber`'s JSON formatter and written by `tracing-appender`'s non-blocking
/// writer (a worker thread behind a bounded channel of 10,000 lines, set to wait rather than
/// drop) into a file appender. No chain.
pub struct TracingJson {
    dispatch: tracing::Dispatch,
    guard: tracing_appender::non_blocking::WorkerGuard,
    path: PathBuf,
}

impl TracingJson {
    /// Writes into `dir/tracing.jsonl` (replaced if it exists), through a dispatcher of its own.
    pub fn open(dir: &Path) -> io::Result<TracingJson> {
        const FILE: &str = "tracing.jsonl";
        let path = dir.join(FILE);
        let _ = std::fs::remove_file(&path);
        let appender = tracing_appender::rolling::never(dir, FILE);
        let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
            .lossy(false)
            .buffered_lines_limit(10_000)
            .finish(appender);
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .finish();
        Ok(TracingJson {
            dispatch: tracing::Dispatch::new(subscriber),
            guard,
            path,
        })
    }
}

impl Design for TracingJson {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn enter_thread(&self) -> Box<dyn std::any::Any> {
        Box::new(tracing::dispatcher::set_default(&self.dispatch))
    }

    fn push(&self, e: AuditEvent) -> Result<(), String> {
        let details = serde_json::to_string(&e.details).map_err(text("tracing"))?;
        tracing::info!(
            kind = e.kind,
            actor = %e.actor,
            trace_id = %e.trace_id,
            timestamp = e.timestamp,
            details = %details,
            "audit"
        );
        Ok(())
    }

    fn finish(self) -> Result<u64, String> {
        let TracingJson {
            dispatch,
            guard,
            path,
        } = self;
        drop(dispatch);
        // Waits for the worker to write every queued line (for up to a second; a shortfall
        // shows as a count below the events pushed).
        drop(guard);
        count_lines(&path).map_err(text("tracing"))
    }
}
