//! The bottom layer: what the rest is built on and that knows nothing of logs. The queue's
//! atomics (from `std`, or from loom under `--cfg loom`), cache prefetch hints, spreading work
//! over the cores, telling a forked child from its parent, and waking many threads at once.

pub(crate) mod fork;
pub(crate) mod parallel;
pub(crate) mod prefetch;
pub(crate) mod sync;
pub(crate) mod wake;
