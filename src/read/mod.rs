//! The reading layer: what the sequencer publishes for readers, reading records from segment
//! files, finding where a log's valid records end after a crash, and the snapshots, queries and
//! readers built on them.

pub(crate) mod cursor;
pub(crate) mod published;
pub(crate) mod reader;
pub(crate) mod recovery;
pub(crate) mod segment_end;
pub(crate) mod snapshot;
pub(crate) mod tree;
