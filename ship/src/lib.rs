//! Ships auditring logs to object storage, and reads and verifies them there.
//!
//! A fleet runs one ring per host; each host ships its log's sealed segments to a prefix of its
//! own in one bucket, and a central verifier checks every host's log where it is. The segments
//! are written once and never changed, with create-only puts; the shipper's two mutable objects
//! (how far the log goes, the latest signed checkpoint) only move forward, with conditional
//! puts. Stores are named by URL as the `object_store` crate parses them: `file:///dir`,
//! `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`.
//!
//! * [`Remote`], [`Retry`]: a prefix of a store, and how its requests are retried.
//! * [`Shipper`], [`ShipReport`], [`Head`]: shipping a log, a pass at a time.
//! * [`RemoteStorage`]: a shipped log as an [`auditring::storage::Storage`], so that snapshots,
//!   queries and exports read it where it is.
//! * [`verify_remote`], [`verify_fleet`], [`HostReport`]: verifying one shipped log, or every
//!   host's.
//! * [`ShipError`]: what goes wrong.
//!
//! `docs/FLEET.md` describes the layout in the store and what it defends against.

mod error;
mod fleet;
mod remote;
mod shipper;
mod storage;

pub use error::ShipError;
pub use fleet::{HostReport, verify_fleet, verify_remote};
pub use remote::{Remote, Retry};
pub use shipper::{
    CHECKPOINT_OBJECT, CHECKPOINTS_PREFIX, HEAD_OBJECT, Head, STATE_PREFIX, ShipReport, Shipper,
};
pub use storage::{RemoteStorage, WINDOW};
