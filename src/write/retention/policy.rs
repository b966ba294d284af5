//! What a ring keeps, and what it does with segments no export covers yet.

use std::path::PathBuf;
use std::time::Duration;

/// How much of a log to keep. Limits count sealed segments only: the active one is never
/// pruned. With no limit set (the default), nothing is ever removed.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Retention {
    /// Keep at most this many sealed segments.
    pub max_segments: Option<usize>,
    /// Keep at most this many bytes of segment files, the active one included.
    pub max_bytes: Option<u64>,
    /// Prune sealed segments whose newest event's origin time is older than this.
    pub max_age: Option<Duration>,
    /// What to do with a segment to prune that no export covers.
    pub unexported: Unexported,
}

impl Retention {
    /// No limits.
    pub fn new() -> Retention {
        Retention::default()
    }

    /// At most `n` sealed segments.
    #[must_use]
    pub fn max_segments(mut self, n: usize) -> Retention {
        self.max_segments = Some(n);
        self
    }

    /// At most `bytes` of segment files.
    #[must_use]
    pub fn max_bytes(mut self, bytes: u64) -> Retention {
        self.max_bytes = Some(bytes);
        self
    }

    /// Nothing older than `age`.
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Retention {
        self.max_age = Some(age);
        self
    }

    /// What to do with segments no export covers.
    #[must_use]
    pub fn unexported(mut self, what: Unexported) -> Retention {
        self.unexported = what;
        self
    }

    /// Whether any limit is set.
    pub(crate) fn is_active(&self) -> bool {
        self.max_segments.is_some() || self.max_bytes.is_some() || self.max_age.is_some()
    }
}

/// What to do with a segment past a retention limit that no export covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unexported {
    /// Keep it until an export covers it, holding the log at its size meanwhile: producers
    /// wait. Nothing is lost. The default.
    #[default]
    Wait,
    /// Export it first, as a bundle in a new directory under this one (named after its seq
    /// range), then prune it.
    ExportTo(PathBuf),
    /// Prune it anyway. The prune record still says which seqs and chain hash were removed.
    Remove,
}
