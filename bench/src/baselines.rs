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
        self.json.clear();
        serde_json::to_writer(&mut self.json, e)?;
        let mut h = Sha256::new();
        h.update(self.chain);
        h.update(&self.json);
        self.chain = h.finalize().into();
        self.out.write_all(&self.json)?;
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

struct LockedState {
    writer: ChainWriter,
    /// The first write failure; later events are dropped and `finish` reports it.
    error: Option<io::Error>,
}

impl Locked {
    /// Creates (or truncates) the log file at `path`.
    pub fn open(path: &Path) -> io::Result<Locked> {
        Ok(Locked {
            state: Mutex::new(LockedState {
                writer: ChainWriter::create(path)?,
                error: None,
            }),
        })
    }

    /// Appends one event; callable from any number of threads at once. A write failure is
    /// reported by [`Locked::finish`].
    // By value, as every rival's `push`.
    #[allow(clippy::needless_pass_by_value)]
    pub fn push(&self, e: AuditEvent) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.error.is_none()
            && let Err(err) = state.writer.append(&e)
        {
            state.error = Some(err);
        }
    }

    /// Flushes everything pushed to the operating system (no sync) and returns the number of
    /// events written, or the first write failure.
    pub fn finish(self) -> io::Result<u64> {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        match state.error {
            Some(err) => Err(err),
            None => state.writer.finish(),
        }
    }
}

/// The write-behind design: producers send each event into a bounded channel of
/// [`WRITE_BEHIND_CAPACITY`] events (blocking while it is full), and one writer thread
/// serializes, chains and appends the lines to a [`BufWriter`].
pub struct WriteBehind {
    tx: Sender<AuditEvent>,
    writer: JoinHandle<io::Result<u64>>,
}

impl WriteBehind {
    /// Creates (or truncates) the log file at `path` and starts the writer thread.
    pub fn open(path: &Path) -> io::Result<WriteBehind> {
        let mut out = ChainWriter::create(path)?;
        let (tx, rx) = channel::bounded::<AuditEvent>(WRITE_BEHIND_CAPACITY);
        let writer = thread::Builder::new()
            .name("write-behind".into())
            .spawn(move || {
                // On a failure `rx` is dropped, so producers fail fast instead of blocking.
                for e in rx {
                    out.append(&e)?;
                }
                out.finish()
            })?;
        Ok(WriteBehind { tx, writer })
    }

    /// Queues one event, waiting while the channel is full; callable from any number of
    /// threads at once. If the writer has failed the event is dropped, and
    /// [`WriteBehind::finish`] reports the failure.
    pub fn push(&self, e: AuditEvent) {
        let _ = self.tx.send(e);
    }

    /// Closes the channel, waits for the writer to append and flush everything queued (no
    /// sync), and returns the number of events written, or the writer's failure.
    pub fn finish(self) -> io::Result<u64> {
        let WriteBehind { tx, writer } = self;
        drop(tx);
        writer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the write-behind thread panicked")))
    }
}

impl Design for Locked {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn push(&self, event: AuditEvent) -> Result<(), String> {
        Locked::push(self, event);
        Ok(())
    }

    fn finish(self) -> Result<u64, String> {
        Locked::finish(self).map_err(|e| format!("mutex + BufWriter: {e}"))
    }
}

impl Design for WriteBehind {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    fn push(&self, event: AuditEvent) -> Result<(), String> {
        WriteBehind::push(self, event);
        Ok(())
    }

    fn finish(self) -> Result<u64, String> {
        WriteBehind::finish(self).map_err(|e| format!("write-behind: {e}"))
    }
}

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
                                log.push(events.event(i));
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
    }

    #[test]
    fn baselines_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::Locked>();
        check::<super::WriteBehind>();
    }
}
