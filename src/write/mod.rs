//! The write path: opening a ring, pushing into it, and its threads. A producer encodes and
//! hashes on the caller's thread and enqueues without a lock; the sequencer chains and writes;
//! the committer syncs and releases receipts; the preparer creates segments ahead; the
//! retention worker prunes; the tree worker keeps the Merkle tree and signs checkpoints; with sealing, the sequencer
//! seals epochs.

pub(crate) mod checkpoints;
pub(crate) mod committer;
pub(crate) mod config;
pub(crate) mod item;
#[cfg(all(test, loom))]
mod loom_models;
pub(crate) mod panic_hook;
pub(crate) mod preparer;
pub(crate) mod producer;
pub(crate) mod queue;
pub(crate) mod receipt;
pub(crate) mod retention;
pub(crate) mod ring;
pub(crate) mod sealing;
pub(crate) mod sequencer;
pub(crate) mod shared;
pub(crate) mod staging;
pub(crate) mod tree;
