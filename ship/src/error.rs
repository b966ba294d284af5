//! What can go wrong shipping a log, or reading one shipped.

use std::path::PathBuf;

/// An error of the shipper or of a shipped log's store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShipError {
    /// The URL does not name a store `object_store` can open.
    #[error("{url} does not name an object store: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// A request to the store failed, after every retry.
    #[error("{doing} {location}: {source}")]
    Store {
        /// What was being done.
        doing: &'static str,
        /// The object (or prefix), as a URL.
        location: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A request did not complete in time, after every retry.
    #[error("{doing} {location}: no answer within {seconds} s, {attempts} times")]
    Timeout {
        /// What was being done.
        doing: &'static str,
        /// The object (or prefix), as a URL.
        location: String,
        /// The limit per request.
        seconds: f64,
        /// Requests made.
        attempts: u32,
    },
    /// The prefix holds another log (its log id differs): two hosts must not ship to one
    /// prefix.
    #[error("{location} holds the log {theirs}, not {ours}: each log ships to a prefix of its own")]
    OtherLog {
        /// The prefix, as a URL.
        location: String,
        /// The log id found there.
        theirs: String,
        /// The log id of the log being shipped.
        ours: String,
    },
    /// The store holds an object under a segment's name that is not the segment: edited in
    /// the bucket, or another log's.
    #[error("{location} is {theirs} bytes where {local} is {ours}: the store's copy differs")]
    Differs {
        /// The object, as a URL.
        location: String,
        /// Its size.
        theirs: u64,
        /// The local file.
        local: PathBuf,
        /// Its size.
        ours: u64,
    },
    /// Segments were pruned locally before they were shipped: shipping on would leave a gap.
    #[error(
        "segments {first} to {last} of {dir} were pruned before they were shipped to \
         {location}: shipping on would leave a gap there (keep retention waiting for the \
         shipper: Unexported::Wait)"
    )]
    Gap {
        /// The log directory.
        dir: PathBuf,
        /// The prefix, as a URL.
        location: String,
        /// First segment missing.
        first: u64,
        /// Last segment missing.
        last: u64,
    },
    /// A file of the local log could not be read.
    #[error("reading {path}: {source}")]
    Local {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The shipper's own state object in the store is not what it writes.
    #[error("{location} is not a shipper's head object: {reason}")]
    BadHead {
        /// The object, as a URL.
        location: String,
        /// Why.
        reason: String,
    },
    /// A shipped log ends before the point its head object says it reaches, or holds another
    /// chain hash there: objects were removed from its end, or replaced.
    #[error(
        "{location} ends at seq {log_seq}, but its head object says it reaches seq {head_seq} \
         with chain hash {head}: {why}"
    )]
    BehindHead {
        /// The prefix, as a URL.
        location: String,
        /// Where the head object says it ends.
        head_seq: u64,
        /// The chain hash it says the log has there.
        head: String,
        /// Where the log ends.
        log_seq: u64,
        /// What differs.
        why: &'static str,
    },
    /// The log (reading it, verifying it) failed.
    #[error(transparent)]
    Log(#[from] auditring::Error),
}
