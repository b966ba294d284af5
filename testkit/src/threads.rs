//! The logs of many producers: what each record says of its producer, and the check that
//! nothing was lost, duplicated or reordered; and a ring whose sequencer waits to start, so
//! that a test can fill its queue.

use std::path::Path;
use std::sync::{Arc, Barrier};

use auditring::{Reader, Record, Ring};

/// Every record of the log in `dir`, in seq order.
pub fn records(dir: &Path) -> Vec<Record> {
    let snap = Reader::open(dir).unwrap().snapshot().unwrap();
    snap.iter().map(Result::unwrap).collect()
}

/// A record's details, as JSON (`null` if it has none).
pub fn details(r: &Record) -> serde_json::Value {
    serde_json::from_str(r.details.as_deref().unwrap_or("null")).unwrap()
}

/// Asserts that `records`, whose details each hold `"thread": t` and `"i": i`, are gapless
/// from their first seq and hold each of `threads` threads' `each` events once, in the order
/// the thread emitted them (`i` from 0).
pub fn assert_each_thread_in_order(records: &[Record], threads: u64, each: u64) {
    assert_eq!(records.len() as u64, threads * each);
    let first = records.first().map_or(1, |r| r.seq);
    let mut next = vec![0u64; threads as usize];
    for (n, r) in records.iter().enumerate() {
        assert_eq!(r.seq, first + n as u64, "a gap before seq {}", r.seq);
        let d = details(r);
        let (t, i) = (d["thread"].as_u64().unwrap(), d["i"].as_u64().unwrap());
        assert_eq!(
            i, next[t as usize],
            "thread {t}: out of order or duplicated"
        );
        next[t as usize] += 1;
    }
    assert!(next.iter().all(|&n| n == each), "{next:?}");
}

/// A ring on `dir` with a queue of `slots` events whose sequencer does not start until the
/// returned barrier is waited on (by one other thread): pushes fill the queue and stay there.
pub fn gated_ring(dir: &Path, slots: usize) -> (Ring, Arc<Barrier>) {
    let gate = Arc::new(Barrier::new(2));
    let ring = Ring::builder(dir)
        .queue_capacity(slots)
        .sequencer_start_gate(gate.clone(), false)
        .open()
        .unwrap();
    (ring, gate)
}
