//! What a walk over a log reports.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::IntegrityError;
use crate::format::hash::Hash;
use crate::read::recovery::TornTail;

/// What verification found.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct VerifyReport {
    /// The log's location.
    pub location: PathBuf,
    /// Number of segment files.
    pub segments: u64,
    /// Number of records verified (up to the failure, if there is one).
    pub events: u64,
    /// Seq of the first record.
    pub first_seq: u64,
    /// Seq of the last record verified.
    pub last_seq: u64,
    /// Chain hash after the last record verified.
    pub head: Hash,
    /// Total size of the records verified, in bytes.
    pub record_bytes: u64,
    /// Total size of the segment files, in bytes.
    pub file_bytes: u64,
    /// Origin timestamp of the first record, nanoseconds since the Unix epoch.
    pub first_timestamp: Option<i64>,
    /// Origin timestamp of the last record verified.
    pub last_timestamp: Option<i64>,
    /// Bytes past the last valid record of an active segment: left by a crash (or by a writer
    /// still writing). Reported, not a failure.
    pub torn_tail: Option<TornTail>,
    /// Findings that are not failures, such as a commit slot torn by a crash.
    pub notes: Vec<String>,
    /// Files in the directory that are not part of the log.
    pub foreign_files: Vec<String>,
    /// The first integrity failure; `None` when the log is valid.
    pub failure: Option<IntegrityError>,
}

impl VerifyReport {
    /// Whether the log verified.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}
