//! Errors of making and checking exports.

use std::path::PathBuf;

use super::Error;

/// Why an export could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The output exists and `force` was not set.
    #[error(
        "{} already exists (an earlier export is replaced only when `force` is set)",
        .path.display()
    )]
    OutputExists {
        /// The output.
        path: PathBuf,
    },
    /// `force` was set, but the output is not an earlier export: it is not replaced.
    #[error(
        "{} exists and is not an auditring export; `force` replaces only an earlier export",
        .path.display()
    )]
    NotReplaceable {
        /// The output.
        path: PathBuf,
    },
    /// The selection holds no record.
    #[error("the selected range holds no record (the log holds seqs {first}..={last})")]
    EmptyRange {
        /// First seq in the log.
        first: u64,
        /// Last seq in the log.
        last: u64,
    },
    /// The selection reaches outside the log.
    #[error("seqs {from}..={to} are not all in the log, which holds {first}..={last}")]
    OutsideLog {
        /// First seq asked for.
        from: u64,
        /// Last seq asked for.
        to: u64,
        /// First seq in the log.
        first: u64,
        /// Last seq in the log.
        last: u64,
    },
    /// The directory is not an export (its manifest is missing or unreadable).
    #[error("{} is not an auditring export: {reason}", .path.display())]
    NotAnExport {
        /// The directory.
        path: PathBuf,
        /// What is wrong.
        reason: ManifestError,
    },
    /// A record of the selection cannot be written in the chosen encoding so that the export
    /// verifies (a JSONL line holds a record's details as JSON text, so details that are not
    /// JSON cannot be a line; a record or line longer than an export allows). Nothing is
    /// written.
    #[error(
        "record {seq} cannot be exported as {encoding}: {why}; nothing was written \
         (the bundle encoding holds any record up to 64 MiB)"
    )]
    Unrepresentable {
        /// The record's seq.
        seq: u64,
        /// The encoding asked for: `"jsonl"` or `"bundle"`.
        encoding: &'static str,
        /// Why.
        why: String,
    },
}

impl From<ExportError> for Error {
    fn from(e: ExportError) -> Error {
        Error::Export(e)
    }
}

/// Why a manifest could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The path is not a directory.
    #[error("not a directory: not an auditring export")]
    NotADirectory,
    /// There is no `manifest.json`: not an export.
    #[error("no manifest.json: not an auditring export")]
    Missing,
    /// It could not be read.
    #[error("cannot read manifest.json: {0}")]
    Unreadable(String),
    /// It is not a valid manifest.
    #[error("damaged manifest.json: {0}")]
    Damaged(String),
}
