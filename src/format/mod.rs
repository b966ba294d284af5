//! The format layer: bytes and hashes, no I/O. The hash rules of the chain, the event and its
//! binary envelope, the segment file's header, commit slots, index and record framing, and the
//! records retention writes. `docs/FORMAT.md` specifies every byte this layer reads and writes.

pub(crate) mod event;
pub(crate) mod event_ref;
pub(crate) mod hash;
pub(crate) mod hex;
pub(crate) mod log_id;
pub(crate) mod prune;
pub(crate) mod seal;
pub(crate) mod segment;
