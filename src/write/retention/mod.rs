//! Retention: a log that keeps at most so many segments, bytes or days, pruning the oldest
//! sealed segments, and never losing one silently.
//!
//! After every rotation the retention thread looks at the sealed segments, oldest first, and
//! picks those past a limit. What happens to a segment that no export covers yet is the
//! embedder's choice ([`Unexported`]): export it first (as a bundle), remove it anyway, or wait
//! for an export, holding the log at its size meanwhile (the sequencer does not start a new
//! segment, so the queue fills and producers wait).
//!
//! Pruning is audited. The retention thread pushes an `auditring.pruned` record into the chain,
//! naming the seqs removed, the chain hash at their end and the files, waits until that record
//! is synced, and only then removes the files. The log then starts at the next seq, anchored at
//! that hash; verification starts there and requires the record that says why.
//!
//! How far exports reach is kept in the log directory's `EXPORTED` marker: every export of the
//! log that extends the range covered from the log's start, without a gap, advances it.

pub(crate) mod policy;
pub(crate) mod worker;

pub use policy::{Retention, Unexported};
pub use worker::RetentionPass;
