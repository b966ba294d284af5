//! What a walk over a log reports.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::IntegrityError;
use crate::format::hash::Hash;
use crate::format::log_id::LogId;
use crate::read::recovery::TornTail;
use crate::verify::seal::SealReport;

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
    /// The log's id, from its first segment's header (`None` if it could not be read).
    pub log_id: Option<LogId>,
    /// The root of the Merkle tree over every record verified (`docs/FORMAT.md` §15), rebuilt
    /// from the records (for a pruned log, from the frontier of its pruned records that the
    /// stored hashes and the tree base give, §15.5); `None` when there is no tree to rebuild
    /// (a pruned log without them), or when a failure stopped the walk.
    pub tree_root: Option<Hash>,
    /// The checkpoints the log was compared with ([`VerifyOptions::checkpoint`]), smallest
    /// first.
    ///
    /// [`VerifyOptions::checkpoint`]: crate::VerifyOptions::checkpoint
    pub checkpoints: Vec<CheckpointCheck>,
    /// What the seal records say, when verified with a sealing key
    /// ([`VerifyOptions::seal_key`](crate::VerifyOptions::seal_key)); `None` without one.
    pub seals: Option<SealReport>,
    /// The first integrity failure; `None` when the log is valid.
    pub failure: Option<IntegrityError>,
}

/// How the log compared with one checkpoint.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CheckpointCheck {
    /// The checkpoint's tree size.
    pub size: u64,
    /// The root it signed.
    pub root: Hash,
    /// The names of the trusted keys whose signatures verified.
    pub signed_by: Vec<String>,
    /// Whether the log's first `size` records hash to `root`.
    pub consistent: bool,
}

impl VerifyReport {
    /// Whether the log verified.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}
