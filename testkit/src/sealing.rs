//! Writing sealed logs (`docs/FORMAT.md` §16) for the tests: numbered events, sealed every so
//! many by a ring given a sealing state file.

use std::path::Path;

use auditring::{Durability, Event, Retention, Ring, Sealing, Unexported};

/// The segment size of the sealed logs written here: small, so that a few thousand events span
/// several segments.
pub const SEGMENT_SIZE: u64 = 64 * 1024;

/// A ring on `dir` sealing every `every` events with the state file `state` (never by time),
/// in segments of [`SEGMENT_SIZE`], committing in batches.
pub fn sealing_ring(dir: &Path, state: &Path, every: u64) -> Ring {
    Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .durability(Durability::Batch)
        .sealing(Sealing::new(state).every_events(every).not_by_time())
        .open()
        .unwrap()
}

/// Pushes `events` events of kind `seal.test` numbered from `from`: details `{"i":N}`.
pub fn push_numbered(ring: &Ring, from: u64, events: u64) {
    let p = ring.producer();
    for i in from..from + events {
        p.push(
            Event::new("seal.test")
                .with_details_json(format!("{{\"i\":{i}}}"))
                .unwrap(),
        )
        .unwrap();
    }
}

/// Pushes `events` events numbered from `from` into a ring sealing every `every` events (see
/// [`sealing_ring`]), then closes it.
pub fn write_sealed(dir: &Path, state: &Path, from: u64, events: u64, every: u64) {
    let ring = sealing_ring(dir, state, every);
    push_numbered(&ring, from, events);
    ring.close().unwrap();
}

/// Pushes 3000 events into a ring sealing every 100 and keeping two sealed segments (removing
/// them unexported), prunes, pushes 10 more and closes it: a sealed log whose first seals were
/// pruned with their records.
pub fn write_pruned_sealed(dir: &Path, state: &Path) {
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .durability(Durability::Batch)
        .retention(
            Retention::new()
                .max_segments(2)
                .unexported(Unexported::Remove),
        )
        .sealing(Sealing::new(state).every_events(100).not_by_time())
        .open()
        .unwrap();
    push_numbered(&ring, 0, 3_000);
    ring.flush().unwrap();
    // (Retention prunes as the ring rotates; this pass prunes whatever is left.)
    ring.apply_retention().unwrap();
    push_numbered(&ring, 3_000, 10);
    ring.close().unwrap();
}
