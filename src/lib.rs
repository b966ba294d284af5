//! A lock-free, concurrent, tamper-evident audit log.
//!
//! Many threads push audit events (who did what, when, in which trace, with which details) into
//! a bounded lock-free queue and return at once. One sequencer thread gives every event a
//! gapless sequence number and a SHA-256 chain hash over the previous one, and copies it into a
//! memory-mapped, append-only segment file. Readers take consistent snapshots without stopping
//! the writers, and [`verify()`] says exactly where a log was edited, cut or torn.
//!
//! ```
//! use auditring::{Durability, Event, Ring};
//!
//! # let dir = tempfile::tempdir().unwrap();
//! let ring = Ring::builder(dir.path().join("audit"))
//!     .durability(Durability::Batch)
//!     .open()?;
//!
//! // Producers are cheap to clone and push from any thread without a lock.
//! let producer = ring.producer();
//! std::thread::spawn(move || {
//!     producer.push(Event::new("user.login").with_actor("alice")).unwrap();
//! })
//! .join()
//! .unwrap();
//!
//! // A receipt names the event's place in the chain, once it is durable.
//! let receipt = ring.push_receipt(
//!     Event::new("plan.applied")
//!         .with_actor("alice")
//!         .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
//!         .with_details(&serde_json::json!({ "plan": 42, "changes": 3 }))?,
//! )?;
//! assert_eq!(receipt.seq, 2);
//!
//! let snapshot = ring.snapshot();
//! assert_eq!(snapshot.head(), receipt.chain);
//! let logins = snapshot.query(&auditring::Query::new().kind("user.login"))?;
//! assert_eq!(logins[0].actor.as_deref(), Some("alice"));
//!
//! ring.close()?;
//! let report = auditring::verify(dir.path().join("audit"), auditring::VerifyOptions::default())?;
//! assert!(report.is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Guarantees
//!
//! * **One total order.** Every event gets a sequence number; they start at 1 and have no gaps.
//!   Events pushed by one thread are sequenced in the order that thread pushed them. Between
//!   threads, if one push returns before another starts, the first gets the smaller number;
//!   pushes that overlap in time are ordered by the instant each claims its queue slot.
//! * **No loss.** `push` waits while the queue is full; [`Producer::try_push`] hands the event
//!   back in [`PushError::Full`]. [`Producer::flush`], [`Ring::close`] and dropping the ring
//!   sequence and sync every event pushed before them.
//! * **Durability as configured.** See [`Durability`]: with group commit, a receipt is issued
//!   only after the `msync` that made its event durable; a failed sync poisons the ring.
//! * **One chain.** One writer per log, across processes (an exclusive `flock` on the log directory itself, whatever
//!   happens to the files in it; a process forked from the writer cannot write or unlock).
//! * **Tamper evidence.** Any change to a committed byte is found by [`verify()`], with the seq,
//!   file, byte offset and reason. Reopening examines only the end of the log.
//!
//! # Contents
//!
//! * [`Event`], [`Record`], [`RecordRef`]: what goes in and what comes out.
//! * [`Ring`], [`RingBuilder`]: opening a log for writing; [`Producer`]: pushing into it;
//!   [`Receipt`], [`PendingReceipt`]: where an event landed.
//! * [`Snapshot`], [`Records`], [`Query`]: consistent reads; [`Reader`]: reads from another
//!   process.
//! * [`Retention`], [`Unexported`]: keeping a log to a size, pruning it audibly.
//! * [`Snapshot::export`], [`ExportOptions`], [`Selection`], [`Encoding`], [`Manifest`]: ranges
//!   of a log as self-verifying directories, and [`verify_export`], [`VerifyExportOptions`],
//!   [`VerifyExportReport`] to check them offline.
//! * [`verify()`], [`verify_storage`], [`VerifyOptions`], [`VerifyReport`]: checking a log.
//! * [`InclusionProof`], [`ConsistencyProof`], [`ProofError`]: the Merkle tree over the records
//!   (RFC 6962): that a record is in a log of a given size and root, and that a log only grew
//!   between two sizes.
//! * [`RecoveryReport`], [`TornTail`]: what opening after a crash did.
//! * [`storage`]: the file layer, and an in-memory storage for tests.
//! * [`sign_note`], [`open_note`], [`SigningKey`], [`VerifierKey`]: C2SP signed notes with
//!   Ed25519 keys, interoperable with Go's `sumdb/note`; [`Checkpoint`]: a transparency log's
//!   tree head as a note text; [`cosign`], [`verify_cosignatures`]: witness cosignatures and a
//!   quorum of them.
//! * [`Sealing`], [`SealKey`]: forward-secure sealing, seal records whose keys evolve one way,
//!   so that whoever takes the host later cannot reseal what was already sealed.
//! * [`Daemon`], [`ServeOptions`]: one process holding a ring for many local ones over a Unix
//!   socket (`docs/PROTOCOL.md`); [`DaemonClient`] (and `AsyncDaemonClient`, feature `tokio`):
//!   recording into it from another process.
//! * [`Error`], [`PushError`], [`EventError`], [`IntegrityError`], [`Reason`]: errors.
//!
//! # Features
//!
//! * `tracing` (default): `AuditLayer`, a `tracing_subscriber::Layer` that records events.
//! * `log` (default): `AuditLogger`, a `log::Log` backend that records events.
//! * `tokio`: `AsyncDaemonClient`, the daemon's client for asynchronous code.
//!
//! The on-disk format is specified byte by byte in `docs/FORMAT.md`.

#![deny(missing_docs)]

// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

// The layers, lowest first (`docs/ARCHITECTURE.md`; `tests/architecture.rs` checks that each
// uses only its own and lower ones).
mod checkpoint;
mod error;
mod export;
mod format;
mod integrate;
mod merkle;
mod read;
mod seal;
mod serve;
pub mod storage;
mod sys;
mod verify;
mod write;

pub use checkpoint::{
    Checkpoint, CheckpointError, Cosignature, CosignatureError, KeyError, MAX_SIGNATURES,
    NoteError, NoteSignature, OpenedNote, SignatureType, SigningKey, VerifierKey, cosign,
    open_note, sign_note, verify_cosignatures,
};
pub use error::{Error, IntegrityError, PushError, Reason};
pub use export::{
    Encoding, ExportError, ExportOptions, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION,
    MAX_LINE_BYTES, MAX_MANIFEST_BYTES, MAX_RECORD_BYTES, Manifest, ManifestError, ManifestFile,
    Selection, TREE_FILE, VerifyExportOptions, VerifyExportReport, verify_export,
};
pub use format::event::{BodyError, Event, EventError, RESERVED_KIND_PREFIX, Record, RecordRef};
pub use format::event_ref::EventRef;
pub use format::hash::{Hash, ParseHashError};
pub use format::log_id::{LogId, ParseLogIdError};
pub use format::prune::PRUNED_KIND;
pub use format::seal::SEALED_KIND;
pub use format::segment::{HeaderError, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE};
#[cfg(feature = "log")]
pub use integrate::log_backend::{AuditLogger, AuditLoggerBuilder};
#[cfg(any(feature = "tracing", feature = "log"))]
pub use integrate::sink::{AuditGuard, DROPPED_KIND, Overflow};
#[cfg(feature = "tracing")]
pub use integrate::tracing_layer::{AuditLayer, AuditLayerBuilder};
// The Merkle tree over the records (RFC 6962): what a holder of a proof needs to check it.
pub use merkle::{ConsistencyProof, InclusionProof, ProofError};
pub use read::reader::Reader;
pub use read::recovery::{RecoveryReport, TornTail};
pub use read::snapshot::{Query, Records, SegmentSummary, Snapshot};
pub use seal::key::SealKey;
#[cfg(feature = "tokio")]
pub use serve::async_client::AsyncDaemonClient;
pub use serve::client::Client as DaemonClient;
pub use serve::protocol::{ErrorClass as DaemonErrorClass, HELLO as DAEMON_HELLO};
pub use serve::server::{ServeOptions, Server as Daemon};
pub use verify::{
    CheckpointCheck, SealReport, VerifyOptions, VerifyReport, verify, verify_storage,
};
pub use write::checkpoints::{
    CHECKPOINT_HISTORY_FILE, CheckpointCallback, Checkpoints, LATEST_CHECKPOINT_FILE,
    SignedCheckpoint,
};
pub use write::config::{
    DEFAULT_MAX_EVENT_SIZE, DEFAULT_QUEUE_CAPACITY, DEFAULT_SEGMENT_SIZE, Durability, MAX_BATCH,
    MAX_QUEUE_CAPACITY, MAX_SYNC_INTERVAL, QUEUE_SLOT_BYTES,
};
pub use write::producer::Producer;
pub use write::receipt::{PendingReceipt, Receipt};
pub use write::retention::{Retention, RetentionPass, Unexported};
pub use write::ring::{Ring, RingBuilder};
pub use write::sealing::Sealing;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub use write::staging::RecordWrites;
