//! The designs auditring replaces, for the demo and the benchmarks.
//!
//! Each is handed the same [`AuditEvent`]s as auditring, and does the same integrity work: it
//! serializes the whole event as one JSON line and extends a SHA-256 hash chain over it,
//! `chain = SHA-256(previous chain ‖ JSON bytes)`, starting from 32 zero bytes. Each line of its
//! file is the event's JSON, a tab, and the chain hash in lower-case hex:
//!
//! ```text
//! {"kind":"plan.applied","actor":"user:dev01@example.com",...}\t9f86d081884c7d65...\n
//! ```
//!
//! * [`Locked`]: the obvious locked design. One mutex around serializing, chaining and writing
//!   into a buffered file; every producer takes it for every event.
//! * [`WriteBehind`]: the write-behind design. Producers send each event into a bounded
//!   channel (blocking while it is full); one writer thread serializes, chains and appends.
//!
//! * [`LockedEncoded`]: the locked design as a careful engineer writes it. Each producer
//!   serializes its event on its own thread, into a reused buffer, *outside* the lock; the lock
//!   covers only the chain step and the append of ready bytes.
//! * [`ReadyBytes`]: the write-behind design as a careful engineer writes it. Each producer
//!   serializes its event on its own thread and sends the ready bytes into a bounded channel;
//!   the one writer thread only chains and appends.
//!
//! The last two are the strong rivals: the work that can run in parallel (serialization) does,
//! and only what must be serial (the chain, the file order) is. auditring's headline ratios are
//! taken against the better of them.
//!
//! `finish` hands everything to the operating system (flushed, not synced) and returns the
//! number of events written.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use crossbeam::channel::{self, Sender};
use sha2::{Digest, Sha256};

use crate::load::Design;
use crate::workload::AuditEvent;

/// Capacity of [`WriteBehind`]'s channel, in events.
pub const WRITE_BEHIND_CAPACITY: usize = 10_000;

/// The serializing, chaining and writing that every baseline does for one event.
struct ChainWriter {
    out: BufWriter<File>,
    /// Reused for every event's JSON.
    json: Vec<u8>,
    chain: [u8; 32],
    count: u64,
}

impl ChainWriter {
    fn create(path: &Path) -> io::Result<ChainWriter> {
        Ok(ChainWriter {
            out: BufWriter::with_capacity(1 << 16, File::create(path)?),
            json: Vec::with_capacity(512),
            chain: [0; 32],
            count: 0,
        })
    }

    /// Serializes `e`, extends the chain over its JSON and appends the line.
    fn append(&mut self, e: &AuditEvent) -> io::Result<()> {
        let mut json = std::mem::take(&mut self.json);
        json.clear();
        serde_json::to_writer(&mut json, e)?;
        let appended = self.append_json(&json);
        self.json = json;
        appended
    }

    /// Extends the chain over `json`, an event already serialized, and appends the line.
    fn append_json(&mut self, json: &[u8]) -> io::Result<()> {
        let mut h = Sha256::new();
        h.update(self.chain);
        h.update(json);
        self.chain = h.finalize().into();
        self.out.write_all(json)?;
        self.out.write_all(b"\t")?;
        self.out.write_all(&hex(&self.chain))?;
        self.out.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    /// Flushes the buffer to the operating system and returns the number of events written.
    fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        Ok(self.count)
    }
}

/// Lower-case hex of a hash.
fn hex(hash: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0; 64];
    for (i, b) in hash.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(b >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// The obvious locked design: one [`Mutex`] around serializing the event into a reused buffer,
/// chaining it and writing the line into a [`BufWriter`]. Producers contend for the lock on
/// every event, and all the work, serialization included, happens while holding it.
pub struct Locked {
    state: Mutex<LockedState>,
}

/// The locked designs' writer, and their first failure.
struct LockedState {
    writer: ChainWriter,
    /// The first failure; later events are dropped and `finish` reports it.
    error: Option<io::Error>,
}

impl LockedState {
    fn open(path: &Path) -> io::Result<Mutex<LockedState>> {
        Ok(Mutex::new(LockedState {
            writer: ChainWriter::create(path)?,
            error: None,
        }))
    }

    /// Records the first failure of `append`, and appends nothing after one.
    fn append(&mut self, append: impl FnOnce(&mut ChainWriter) -> io::Result<()>) {
        if self.error.is_none()
            && let Err(err) = append(&mut self.writer)
        {
            self.error = Some(err);
        }
    }

    /// Flushes everything appended to the operating system (no sync) and returns the number
    /// of events written, or the first failure.
    fn finish(state: Mutex<LockedState>) -> io::Result<u64> {
        let state = state.into_inner().unwrap_or_else(PoisonError::into_inner);
        match state.error {
            Some(err) => Err(err),
            None => state.writer.finish(),
        }
    }
}

impl Locked {
    /// Creates (or truncates) the log file at `path`.
    pub fn open(path: &Path) -> io::Result<Locked> {
        Ok(Locked {
            state: LockedState::open(path)?,
        })
    }

    /// Appends one event; callable from any number of threads at once. A write failure is
    /// reported by [`Locked::finish`].
    // By value, as every rival's `push`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn push(&self, e: AuditEvent) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.append(|w| w.append(&e));
    }

    /// Flushes everything pushed to the operating system (no sync) and returns the number of
    /// events written, or the first write failure.
    pub fn finish(self) -> io::Result<u64> {
        LockedState::finish(self.state)
    }
}

/// The locked design with serialization outside the lock: each producer serializes its event
/// into a buffer of its own thread (reused, so no allocation per event), then takes the one
/// [`Mutex`] only to extend the chain over the ready bytes and append them to a [`BufWriter`].
pub struct LockedEncoded {
    state: Mutex<LockedState>,
}

thread_local! {
    /// The serialization buffer of [`LockedEncoded`]'s producers, one per thread.
    static ENCODE_BUFFER: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(512));
}

impl LockedEncoded {
    /// Creates (or truncates) the log file at `path`.
    pub fn open(path: &Path) -> io::Result<LockedEncoded> {
        Ok(LockedEncoded {
            state: LockedState::open(path)?,
        })
    }

    /// Serializes one event on the calling thread, then chains and appends it under the lock;
    /// callable from any number of threads at once. A failure is reported by
    /// [`LockedEncoded::finish`].
    #[allow(clippy::needless_pass_by_value)] // by value, as every rival's `push`
    pub fn push(&self, e: AuditEvent) {
        ENCODE_BUFFER.with_borrow_mut(|json| {
            json.clear();
            let encoded = serde_json::to_writer(&mut *json, &e);
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.append(|w| {
                encoded?;
                w.append_json(json)
            });
        });
    }

    /// Flushes everything pushed to the operating system (no sync) and returns the number of
    /// events written, or the first failure.
    pub fn finish(self) -> io::Result<u64> {
        LockedState::finish(self.state)
    }
}

/// One writer thread appending what producers send through a bounded channel of
/// [`WRITE_BEHIND_CAPACITY`] items (blocking while it is full).
struct Behind<T> {
    tx: Sender<T>,
    writer: JoinHandle<io::Result<u64>>,
}

impl<T: Send + 'static> Behind<T> {
    /// Creates (or truncates) the log file at `path` and starts the writer thread `name`, which
    /// appends each item with `append`.
    fn open(
        path: &Path,
        name: &str,
        append: fn(&mut ChainWriter, &T) -> io::Result<()>,
    ) -> io::Result<Behind<T>> {
        let mut out = ChainWriter::create(path)?;
        let (tx, rx) = channel::bounded::<T>(WRITE_BEHIND_CAPACITY);
        let writer = thread::Builder::new().name(name.into()).spawn(move || {
            // On a failure `rx` is dropped, so producers fail fast instead of blocking.
            for item in rx {
                append(&mut out, &item)?;
            }
            out.finish()
        })?;
        Ok(Behind { tx, writer })
    }

    /// Queues one item, waiting while the channel is full. If the writer has failed the item
    /// is dropped, and `finish` reports the failure.
    fn push(&self, item: T) {
        let _ = self.tx.send(item);
    }

    /// Closes the channel, waits for the writer to append and flush everything queued (no
    /// sync), and returns the number of events written, or the writer's failure.
    fn finish(self) -> io::Result<u64> {
        let Behind { tx, writer } = self;
        drop(tx);
        writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the writer thread panicked")))
    }
}

/// The write-behind design: producers send each event into a bounded channel of
/// [`WRITE_BEHIND_CAPACITY`] events (blocking while it is full), and one writer thread
/// serializes, chains and appends the lines to a [`BufWriter`].
pub struct WriteBehind(Behind<AuditEvent>);

impl WriteBehind {
    /// Creates (or truncates) the log file at `path` and starts the writer thread.
    pub fn open(path: &Path) -> io::Result<WriteBehind> {
        Behind::open(path, "write-behind", ChainWriter::append).map(WriteBehind)
    }

    /// Queues one event, waiting while the channel is full; callable from any number of
    /// threads at once. If the writer has failed the event is dropped, and
    /// [`WriteBehind::finish`] reports the failure.
    pub fn push(&self, e: AuditEvent) {
        self.0.push(e);
    }

    /// Closes the channel, waits for the writer to append and flush everything queued (no
    /// sync), and returns the number of events written, or the writer's failure.
    pub fn finish(self) -> io::Result<u64> {
        self.0.finish()
    }
}

/// The write-behind design with serialization on the producers: each producer serializes its
/// event and sends the ready bytes into a bounded channel of [`WRITE_BEHIND_CAPACITY`] events
/// (blocking while it is full); one writer thread extends the chain over them and appends them
/// to a [`BufWriter`].
pub struct ReadyBytes(Behind<Vec<u8>>);

impl ReadyBytes {
    /// Creates (or truncates) the log file at `path` and starts the writer thread.
    pub fn open(path: &Path) -> io::Result<ReadyBytes> {
        Behind::open(path, "ready-bytes", |w, json: &Vec<u8>| w.append_json(json)).map(ReadyBytes)
    }

    /// Serializes one event on the calling thread. Serialization into a `Vec` cannot fail for
    /// these events (string keys, no non-finite floats); it is the application's work, done
    /// before the push.
    pub fn encode(e: &AuditEvent) -> Vec<u8> {
        serde_json::to_vec(e).expect("an AuditEvent serializes")
    }

    /// Queues one serialized event, waiting while the channel is full; callable from any
    /// number of threads at once. If the writer has failed the event is dropped, and
    /// [`ReadyBytes::finish`] reports the failure.
    pub fn push(&self, json: Vec<u8>) {
        self.0.push(json);
    }

    /// Closes the channel, waits for the writer to append and flush everything queued (no
    /// sync), and returns the number of events written, or the writer's failure.
    pub fn finish(self) -> io::Result<u64> {
        self.0.finish()
    }
}

/// `impl Design` for a baseline: what it takes (`Ready`), how a producer makes it from an
/// event (`prepare`), and the name its errors carry.
macro_rules! design {
    ($design:ident, $ready:ty, $prepare:expr, $name:literal) => {
        impl Design for $design {
            type Ready = $ready;

            fn prepare(&self, event: AuditEvent) -> $ready {
                $prepare(event)
            }

            fn push(&self, ready: $ready) -> Result<(), String> {
                $design::push(self, ready);
                Ok(())
            }

            fn finish(self) -> Result<u64, String> {
                $design::finish(self).map_err(|e| format!(concat!($name, ": {}"), e))
            }
        }
    };
}

design!(
    Locked,
    AuditEvent,
    std::convert::identity,
    "mutex + BufWriter"
);
design!(
    WriteBehind,
    AuditEvent,
    std::convert::identity,
    "write-behind"
);
design!(
    LockedEncoded,
    AuditEvent,
    std::convert::identity,
    "mutex, encoded outside"
);
design!(
    ReadyBytes,
    Vec<u8>,
    |e: AuditEvent| ReadyBytes::encode(&e),
    "ready bytes to a writer"
);

#[cfg(test)]
mod tests {
    // A macro writes the same test for each design.
    macro_rules! writes_every_event_once_with_a_correct_chain {
        ($($test:ident: $design:ident,)*) => {$(
            /// Pushes 1000 events from each of 4 threads at once, re-reads the file, and checks
            /// the chain line by line and that every event of every thread is there exactly
            /// once, each thread's in the order it pushed them.
            #[test]
            fn $test() {
                use std::collections::HashMap;

                use sha2::{Digest, Sha256};

                use crate::load::Design;
                use crate::workload;

                const THREADS: usize = 4;
                const PER_THREAD: u64 = 1000;

                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("log.jsonl");
                let log = super::$design::open(&path).unwrap();
                std::thread::scope(|s| {
                    for p in 0..THREADS {
                        let log = &log;
                        s.spawn(move || {
                            let events = workload::Generator::new(p, 0, 1_700_000_000_000_000_000);
                            for i in 0..PER_THREAD {
                                let ready = Design::prepare(log, events.event(i));
                                Design::push(log, ready).unwrap();
                            }
                        });
                    }
                });
                assert_eq!(log.finish().unwrap(), THREADS as u64 * PER_THREAD);

                let text = std::fs::read_to_string(&path).unwrap();
                let mut chain = [0u8; 32];
                let mut next: HashMap<String, u64> = HashMap::new();
                let mut lines = 0;
                for (n, line) in text.lines().enumerate() {
                    let (json, hash) = line.rsplit_once('\t').expect("a tab before the chain");
                    let mut h = Sha256::new();
                    h.update(chain);
                    h.update(json.as_bytes());
                    chain = h.finalize().into();
                    assert_eq!(hash.as_bytes(), super::hex(&chain), "chain of line {}", n + 1);

                    let v: serde_json::Value = serde_json::from_str(json).unwrap();
                    let actor = v["actor"].as_str().unwrap().to_owned();
                    let plan = v["details"]["plan_id"].as_u64().unwrap();
                    let expected = next.entry(actor.clone()).or_insert(0);
                    assert_eq!(plan, *expected, "{actor}: events missing, repeated or reordered");
                    *expected += 1;
                    lines += 1;
                }
                assert_eq!(lines, THREADS as u64 * PER_THREAD);
                assert_eq!(next.len(), THREADS);
                assert!(next.values().all(|&n| n == PER_THREAD), "{next:?}");
            }
        )*};
    }

    writes_every_event_once_with_a_correct_chain! {
        locked_writes_every_event_once_with_a_correct_chain: Locked,
        write_behind_writes_every_event_once_with_a_correct_chain: WriteBehind,
        locked_encoded_writes_every_event_once_with_a_correct_chain: LockedEncoded,
        ready_bytes_writes_every_event_once_with_a_correct_chain: ReadyBytes,
    }

    #[test]
    fn baselines_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Locked>();
        check::<super::WriteBehind>();
        check::<super::LockedEncoded>();
        check::<super::ReadyBytes>();
    }
}
