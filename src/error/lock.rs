//! The error of taking a log's writer lock.

use std::io;

/// The writer lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another writer holds it.
    #[error("locked by another writer{}", .pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Held {
        /// The holder's process id, when it could be read from the lock file.
        pid: Option<u32>,
    },
    /// The directory could not be opened or locked.
    #[error("cannot take the writer lock: {0}")]
    Io(#[source] io::Error),
}
