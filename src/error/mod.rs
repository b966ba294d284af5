//! Errors: one `#[non_exhaustive]` enum per concern, and the top-level [`Error`] that every
//! operation on a log returns.
//!
//! * [`Error`]: everything an operation on a log can fail with;
//! * [`PushError`]: a push that did not happen, handing the event back (`From` into `Error`);
//! * [`EventError`]: an event that cannot be encoded (`From` into `Error`);
//! * [`IntegrityError`]: where (seq, file, byte offset) and why ([`Reason`]) a log fails
//!   verification (`From` into `Error`);
//! * [`ExportError`], with [`ManifestError`]: an export that cannot be made or read (`From`
//!   into `Error`);
//! * [`LockError`]: the writer lock cannot be taken (as [`Error::Locked`] or an I/O error, with
//!   the directory);
//! * [`HeaderError`] and [`BodyError`] (defined with the format they describe): a segment header
//!   or a record body that cannot be decoded, carried by [`Reason`].
//!
//! The enums live here, below every layer that returns them, so that the top-level `Error` can
//! hold each of them without this layer depending on the layers above.

mod export;
mod lock;

pub use export::{ExportError, ManifestError};
pub use lock::LockError;

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::format::event::{BodyError, Event, EventError};
use crate::format::hash::Hash;
use crate::format::segment::HeaderError;

/// Everything an operation on a log can fail with.
///
/// Cloneable, so that one failure (a failed sync that poisons the ring) can be reported to every
/// waiter.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and to which file.
        context: String,
        /// The operating system's error.
        #[source]
        source: Arc<io::Error>,
    },
    /// Another writer holds the log's lock.
    #[error("{} is locked by another writer{}", .dir.display(), .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The log directory.
        dir: PathBuf,
        /// The holder's process id, when known.
        pid: Option<u32>,
    },
    /// The directory exists but is not an auditring log.
    #[error("{} is not an auditring log: {reason}", .dir.display())]
    NotALog {
        /// The directory.
        dir: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The log is damaged: verification or recovery found the place.
    #[error("{0}")]
    Integrity(Box<IntegrityError>),
    /// An earlier sync (or write of records to a segment) failed, so nothing can be promised
    /// durable any more; the ring accepts no further events. Reopen the log to recover what was
    /// durable.
    #[error("the ring is poisoned by an earlier failed write or sync: {source}")]
    Poisoned {
        /// The sync's (or write's) error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The ring was closed.
    #[error("the ring is closed")]
    Closed,
    /// The queue was full (from [`PushError::Full`]).
    #[error("the queue is full")]
    QueueFull,
    /// An event could not be encoded.
    #[error("invalid event: {0}")]
    Event(#[source] Arc<EventError>),
    /// The configuration or an argument is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The daemon refused an event or a frame ([`DaemonClient`](crate::DaemonClient)): the
    /// event was invalid, the ring is unavailable, or the client broke the protocol.
    #[error("the daemon refused: {message}")]
    Refused {
        /// Why.
        class: ErrorClass,
        /// The daemon's message.
        message: String,
    },
    /// A logging integration (`AuditLayer`, `AuditLogger`) could not record some events: the
    /// ring refused them (it was closed or poisoned, or an event was invalid). Reported when
    /// its guard flushes or closes.
    #[error("audit integration: {0}")]
    Integration(String),
    /// A checkpoint given to check a log against cannot be used: it is not a signed note, no
    /// trusted key signed it, a trusted key's signature does not verify, or it names another
    /// log.
    #[error("{0}")]
    Checkpoint(String),
    /// Forward-secure sealing cannot go on: a sealing key or state file cannot be read,
    /// written or used (it belongs to another log, or is behind or ahead of the log).
    #[error("{0}")]
    Sealing(String),
    /// An export could not be made or read.
    #[error("{0}")]
    Export(ExportError),
    /// The ring was closed while it could not write (no segment could be created: a full disk,
    /// a directory where the next segment should go), so the events still queued were not
    /// written. They are handed back here, in the order they were pushed, to be pushed again
    /// once the cause is fixed; every event pushed before them is in the log. Their receipts
    /// failed with `source`.
    #[error("{} event(s) pushed were not written and are handed back: {source}", .events.len())]
    Unwritten {
        /// Why they could not be written.
        #[source]
        source: Box<Error>,
        /// The events, in push order.
        events: Arc<[Event]>,
    },
    /// A segment file that this view of the log listed was removed before it could be read,
    /// from the front of the log, as retention prunes: the log now starts after it. Retryable:
    /// a newer view ([`Reader::snapshot`](crate::Reader::snapshot)) no longer holds it. (A
    /// segment that disappears from between others is an [`Error::Integrity`] failure
    /// instead.)
    #[error(
        "{} was removed (pruned) after this view of the log was taken: the log now starts \
         after segment {segment}; read it again from a newer view",
        .file.display()
    )]
    Pruned {
        /// The segment file.
        file: PathBuf,
        /// Its segment number.
        segment: u64,
    },
    /// The ring was opened by another process, of which this one is a child forked since: a
    /// child can neither write to the log nor release its lock (see [`crate::Ring`]).
    #[error(
        "the ring was opened by process {pid}, before a fork: this process (a forked child) \
         cannot write to it, flush it or release its lock"
    )]
    Forked {
        /// The process that opened the ring.
        pid: u32,
    },
}

impl Error {
    /// An I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// The events handed back by [`Error::Unwritten`], in push order; empty for any other
    /// error.
    pub fn unwritten(&self) -> &[Event] {
        match self {
            Error::Unwritten { events, .. } => events,
            _ => &[],
        }
    }

    /// The integrity failure, if this is one.
    pub fn integrity(&self) -> Option<&IntegrityError> {
        match self {
            Error::Integrity(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IntegrityError> for Error {
    fn from(e: IntegrityError) -> Error {
        Error::Integrity(Box::new(e))
    }
}

impl From<EventError> for Error {
    fn from(e: EventError) -> Error {
        Error::Event(Arc::new(e))
    }
}

/// Converts a lock failure, naming the directory.
pub(crate) fn lock_error(dir: PathBuf, e: LockError) -> Error {
    match e {
        LockError::Held { pid } => Error::Locked { dir, pid },
        LockError::Io(source) => Error::io(format!("locking {}", dir.display()), source),
    }
}

/// A push that did not happen. The event is handed back, never dropped.
///
/// `T` is what is handed back: the [`Event`] itself, or `()` for a borrowed
/// [`EventRef`](crate::EventRef), which the caller still holds.
#[derive(Debug)]
#[non_exhaustive]
pub enum PushError<T = Event> {
    /// The queue is full ([`try_push`](crate::Producer::try_push) only; `push` waits).
    Full(T),
    /// The ring was closed.
    Closed(T),
    /// The event cannot be encoded (empty kind, a field too long, larger than the maximum).
    Invalid {
        /// The event.
        event: T,
        /// Why.
        source: EventError,
    },
    /// The ring cannot take events: it is poisoned by a failed sync, stalled because its
    /// storage is full, or this process is a child forked since the ring was opened
    /// ([`Error::Forked`]).
    Failed {
        /// The event.
        event: T,
        /// Why.
        source: Error,
    },
}

impl<T> PushError<T> {
    /// The event that was not pushed.
    pub fn into_event(self) -> T {
        match self {
            PushError::Full(e) | PushError::Closed(e) => e,
            PushError::Invalid { event, .. } | PushError::Failed { event, .. } => event,
        }
    }

    /// The event that was not pushed, by reference.
    pub fn event(&self) -> &T {
        match self {
            PushError::Full(e) | PushError::Closed(e) => e,
            PushError::Invalid { event, .. } | PushError::Failed { event, .. } => event,
        }
    }

    /// The same error handing back `f(event)` instead.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> PushError<U> {
        match self {
            PushError::Full(e) => PushError::Full(f(e)),
            PushError::Closed(e) => PushError::Closed(f(e)),
            PushError::Invalid { event, source } => PushError::Invalid {
                event: f(event),
                source,
            },
            PushError::Failed { event, source } => PushError::Failed {
                event: f(event),
                source,
            },
        }
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("the queue is full"),
            PushError::Closed(_) => f.write_str("the ring is closed"),
            PushError::Invalid { source, .. } => write!(f, "invalid event: {source}"),
            PushError::Failed { source, .. } => write!(f, "{source}"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for PushError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PushError::Invalid { source, .. } => Some(source),
            PushError::Failed { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl<T> From<PushError<T>> for Error {
    fn from(e: PushError<T>) -> Error {
        match e {
            PushError::Full(_) => Error::QueueFull,
            PushError::Closed(_) => Error::Closed,
            PushError::Invalid { source, .. } => Error::Event(Arc::new(source)),
            PushError::Failed { source, .. } => source,
        }
    }
}

/// Why a daemon (`auditring serve`) refused a frame: the class of [`Error::Refused`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The event is invalid (a reserved kind, too large, details that are not JSON, a body
    /// that does not decode): it was not recorded, and the connection goes on.
    InvalidEvent,
    /// The ring is closed or can no longer write: nothing more will be recorded.
    Unavailable,
    /// The frame breaks the protocol (an unknown operation, a length beyond the limit): the
    /// daemon closes the connection after this reply.
    Protocol,
}

/// Where a log fails verification, and why.
///
/// `seq` is the sequence number of the record at fault (or, for a missing record, the one that
/// was expected there); `file` and `offset` locate the first byte that is wrong or where the
/// wrong structure starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityError {
    /// The record's sequence number, when the failure concerns a record.
    pub seq: Option<u64>,
    /// The segment file.
    pub file: PathBuf,
    /// Byte offset in that file.
    pub offset: u64,
    /// What is wrong.
    pub reason: Reason,
}

impl fmt::Display for IntegrityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(seq) = self.seq {
            write!(f, "seq {seq}: ")?;
        }
        write!(
            f,
            "{} at byte {}: {}",
            self.file.display(),
            self.offset,
            self.reason
        )
    }
}

impl std::error::Error for IntegrityError {}

impl serde::Serialize for IntegrityError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("IntegrityError", 4)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("file", &self.file)?;
        st.serialize_field("offset", &self.offset)?;
        st.serialize_field("reason", &self.reason.to_string())?;
        st.end()
    }
}

/// What verification found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The segment's header cannot be used.
    #[error("{0}")]
    Header(HeaderError),
    /// The header names a different segment number than the file name.
    #[error("the header says segment {header} but the file is named for segment {name}")]
    SegmentNumber {
        /// Number in the header.
        header: u64,
        /// Number in the file name.
        name: u64,
    },
    /// A segment belongs to another log.
    #[error("the segment belongs to another log (log id differs from the first segment's)")]
    LogId,
    /// A segment is missing between two others.
    #[error("segment {0} is missing")]
    MissingSegment(u64),
    /// The file length differs from the one in its header.
    #[error("the file is {actual} bytes but its header says {expected}")]
    FileLength {
        /// Length in the header.
        expected: u64,
        /// Length on disk.
        actual: u64,
    },
    /// The file is shorter than the committed length its header claims: it was cut.
    #[error("segment cut short: the header commits {committed} bytes but the file has {actual}")]
    CutShort {
        /// Committed length in the header.
        committed: u64,
        /// Length on disk.
        actual: u64,
    },
    /// A commit slot is damaged (or missing where the segment's state requires one).
    #[error(
        "commit slot {0} is damaged or missing (a header write interrupted by a crash, or \
         tampering)"
    )]
    Slot(usize),
    /// The commit slot contradicts the records or the previous segment.
    #[error("commit slot disagrees with the records: {0}")]
    SlotMismatch(&'static str),
    /// No record header where the committed region says there is one.
    #[error("no record header here (bad record magic)")]
    RecordMagic,
    /// A record's body length runs past the committed region.
    #[error("record body of {len} bytes runs past the end of the records at byte {end}")]
    RecordLength {
        /// Body length claimed.
        len: u64,
        /// End of the committed region.
        end: u64,
    },
    /// A record carries the wrong seq.
    #[error("expected seq {expected}, found {found}")]
    Seq {
        /// The seq that should be here.
        expected: u64,
        /// The seq stored.
        found: u64,
    },
    /// The stored leaf hash is not the SHA-256 of the body.
    #[error("leaf hash mismatch: stored {stored}, body hashes to {computed}")]
    Leaf {
        /// Stored in the record.
        stored: Hash,
        /// Recomputed from the body.
        computed: Hash,
    },
    /// The stored chain hash does not follow from the previous one.
    #[error("chain hash mismatch: stored {stored}, expected {computed}")]
    Chain {
        /// Stored in the record.
        stored: Hash,
        /// Recomputed from the previous chain hash, seq and leaf.
        computed: Hash,
    },
    /// The body does not decode.
    #[error("bad event body: {0}")]
    Body(BodyError),
    /// Padding or unused space that must be zero is not.
    #[error("non-zero byte in {0} that must be zero")]
    NonZero(&'static str),
    /// An index entry does not point at the record it indexes.
    #[error("index entry {entry} says byte {found}, but record {seq} starts at byte {expected}")]
    Index {
        /// Entry number.
        entry: u64,
        /// Seq the entry indexes.
        seq: u64,
        /// Actual offset.
        expected: u64,
        /// Offset stored.
        found: u64,
    },
    /// A segment does not continue the previous one.
    #[error("segment does not continue the previous one: {0}")]
    Continuity(&'static str),
    /// An export's manifest is damaged or inconsistent.
    #[error("damaged manifest: {0}")]
    Manifest(String),
    /// A file's SHA-256 is not the one its manifest states.
    #[error("the file's SHA-256 is {computed}, but the manifest says {stated}")]
    FileDigest {
        /// In the manifest.
        stated: Hash,
        /// Of the file.
        computed: Hash,
    },
    /// A JSONL line is not a record line.
    #[error("not a record line: {0}")]
    Line(String),
    /// An export holds fewer records than its manifest states.
    #[error("the manifest states {stated} records but the file holds {found}")]
    Count {
        /// In the manifest.
        stated: u64,
        /// In the file.
        found: u64,
    },
    /// The chain does not end at the head it must end at.
    #[error("the chain ends at {found}, not at {expected}")]
    Head {
        /// The head expected (from the manifest or given).
        expected: Hash,
        /// The chain hash after the last record.
        found: Hash,
    },
    /// An export does not continue the one it must follow.
    #[error("the export does not continue the previous one: {0}")]
    After(&'static str),
    /// A file an export's manifest lists is not there.
    #[error("the manifest lists this file, but it is missing")]
    MissingFile,
    /// An export's data file does not have the size its manifest states.
    #[error("the file is {actual} bytes but the manifest says {stated}")]
    DataLength {
        /// In the manifest.
        stated: u64,
        /// Of the file.
        actual: u64,
    },
    /// An export holds a record past the last seq its manifest states.
    #[error("a record past the manifest's last seq {last_seq}")]
    Extra {
        /// The manifest's last seq.
        last_seq: u64,
    },
    /// The log does not start at seq 1, and no `auditring.pruned` record says that the records
    /// before it were pruned, ending at its anchor: they were removed by hand.
    #[error(
        "the log starts at seq {first_seq}, anchored at {anchor}, but no auditring.pruned record \
         says seqs before it were pruned (segments removed by hand?)"
    )]
    Unpruned {
        /// The log's first seq.
        first_seq: u64,
        /// The chain hash before it.
        anchor: Hash,
    },
    /// A stored hash of the Merkle tree (`docs/FORMAT.md` §15.2) is not the hash of the
    /// records it covers.
    #[error(
        "the stored hash of tree node (level {level}, index {index}) is not the hash of the \
         records it covers ({computed})"
    )]
    TreeEntry {
        /// The node's level (a multiple of 8).
        level: u8,
        /// Its index in the level.
        index: u64,
        /// What the records give.
        computed: Hash,
    },
    /// The log holds fewer records than a checkpoint signed: it was cut.
    #[error(
        "a checkpoint signed the first {size} records, but the log ends at seq {last_seq}: \
         records {first_missing} to {size} were cut"
    )]
    CheckpointCut {
        /// The checkpoint's tree size.
        size: u64,
        /// The log's last seq.
        last_seq: u64,
        /// The first seq the log lacks.
        first_missing: u64,
    },
    /// The log's first `size` records do not hash to the root a checkpoint signed: some of them
    /// were rewritten, after seq `after` (the largest size of a checkpoint the log agrees with,
    /// or 0).
    #[error(
        "the log's first {size} records are not those a checkpoint signed (root {signed}): \
         records after seq {after} and up to seq {size} were rewritten"
    )]
    CheckpointRoot {
        /// The checkpoint's tree size.
        size: u64,
        /// The root it signed, which the log's first `size` records do not hash to.
        signed: Hash,
        /// The largest checkpoint size the log agrees with, or 0.
        after: u64,
    },
    /// A checkpoint covers records that the log no longer holds (its oldest segments were
    /// pruned), so its root cannot be recomputed from the records.
    #[error(
        "a checkpoint signed the first {size} records, but the log starts at seq {first_seq}: \
         its root cannot be recomputed without the pruned records"
    )]
    CheckpointUncheckable {
        /// The checkpoint's tree size.
        size: u64,
        /// The log's first seq.
        first_seq: u64,
    },
    /// An export's `tree.json` (`docs/FORMAT.md` §13.6) cannot be used: unreadable, not the
    /// format, for another range, or a prefix of the wrong length.
    #[error("the export's tree.json cannot be used: {0}")]
    ExportTree(String),
    /// A checkpoint covers fewer records than come before an export's first: its root cannot be
    /// computed from the export.
    #[error(
        "a checkpoint signed the first {size} records, fewer than the {} before the export: \
         it cannot be compared with the export's records",
        first_seq - 1
    )]
    CheckpointBeforeExport {
        /// The checkpoint's tree size.
        size: u64,
        /// The export's first seq.
        first_seq: u64,
    },
    /// A checkpoint is larger than the export, which carries no consistency proof to its size
    /// (`proved`: the size it carries one to, if any).
    #[error(
        "a checkpoint signed the first {size} records, past the export's last seq {last_seq}, \
         and the export carries no proof to that size{}",
        match proved { Some(p) => format!(" (only to {p})"), None => String::new() }
    )]
    CheckpointBeyondExport {
        /// The checkpoint's tree size.
        size: u64,
        /// The export's last seq.
        last_seq: u64,
        /// The size its `tree.json` proves consistency to, if any.
        proved: Option<u64>,
    },
    /// A seal record (`docs/FORMAT.md` §16.1) whose details cannot be read.
    #[error("a seal record whose details are not those of a seal: {0}")]
    SealRecord(String),
    /// A seal record's epoch breaks the order of epochs: the first seal of a log must be for
    /// epoch 0, and each later one for the previous seal's epoch or the next. Seals were
    /// removed, or this one was forged by a holder of a later epoch's key.
    #[error(
        "a seal for epoch {found} {}: seals were removed, or this one was forged with a later key",
        match previous {
            Some(p) => format!("follows a seal for epoch {p}"),
            None => "is the log's first, for an epoch it cannot have (0 from seq 1, else below its seq)".to_owned(),
        }
    )]
    SealEpoch {
        /// The previous seal's epoch, if any.
        previous: Option<u64>,
        /// This seal's epoch.
        found: u64,
    },
    /// A seal record's MAC is not what the key of its epoch gives: a record at or before it
    /// was changed after it was sealed (and the chain rewritten to hide it), or the seal was
    /// forged without the key.
    #[error(
        "the seal for epoch {epoch} does not verify with that epoch's key: a record at or \
         before it was rewritten after it was sealed, or the seal is forged"
    )]
    SealMac {
        /// The seal's epoch.
        epoch: u64,
    },
    /// The log's last seal is older than the auditor knew it to be
    /// ([`VerifyOptions::expect_epoch`](crate::VerifyOptions::expect_epoch)): seals were
    /// removed from its end.
    #[error("the log was sealed up to epoch {expected} at least, but its last seal is {}", match last {
        Some(l) => format!("for epoch {l}"),
        None => "missing (it has none)".to_owned(),
    })]
    SealMissing {
        /// The epoch the auditor knew was sealed.
        expected: u64,
        /// The log's last seal's epoch.
        last: Option<u64>,
    },
    /// The manifest of an export lists this file, but what is there is not a regular file (a
    /// symbolic link, a FIFO, a directory, a device): it is not read.
    #[error("the manifest lists this file, but it is {what}, not a regular file")]
    NotRegularFile {
        /// What it is ("a symbolic link", "a FIFO", ...).
        what: &'static str,
    },
    /// A record of a bundle is larger than an export may hold (`docs/FORMAT.md` §13.5).
    #[error("a record of {len} bytes, larger than an export's records may be ({max})")]
    RecordTooLarge {
        /// The record's length, header and padding included.
        len: u64,
        /// The limit.
        max: u64,
    },
}
