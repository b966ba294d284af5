//! Many producers, no loss, gapless seqs, per-producer order; flush, close and drop keep
//! everything; a full queue hands the event back.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::thread;

use auditring::storage::MemStorage;
use auditring::{Durability, Event, PushError, Reader, Ring, Snapshot};
use auditring_testkit::faults::{Faults, FaultyStorage};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq, Clone, Copy)]
struct Tag {
    producer: u64,
    i: u64,
}

fn tagged(producer: u64, i: u64) -> Event {
    Event::new("test.event")
        .with_actor(format!("producer-{producer}"))
        .with_details(&Tag { producer, i })
        .unwrap()
}

/// Checks that `snap` holds exactly `producers × per` tagged events, seqs 1.. without gaps,
/// each producer's events in its own order.
fn check_all_present(snap: &Snapshot, producers: u64, per: u64) {
    assert_eq!(snap.first_seq(), 1);
    assert_eq!(snap.head_seq(), producers * per);
    let mut next = vec![0u64; producers as usize];
    let mut records = snap.iter();
    let mut expected_seq = 1;
    while let Some(r) = records.next_ref() {
        let r = r.unwrap();
        assert_eq!(r.seq, expected_seq, "gapless");
        expected_seq += 1;
        let tag: Tag = serde_json::from_str(r.details.unwrap()).unwrap();
        assert_eq!(
            tag.i, next[tag.producer as usize],
            "producer {} order",
            tag.producer
        );
        next[tag.producer as usize] += 1;
    }
    assert_eq!(expected_seq, producers * per + 1);
    assert!(
        next.iter().all(|&n| n == per),
        "every event present: {next:?}"
    );
}

fn run_producers(ring: &Ring, producers: u64, per: u64) {
    let start = Arc::new(Barrier::new(producers as usize));
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let producer = ring.producer();
            let start = start.clone();
            thread::spawn(move || {
                start.wait();
                for i in 0..per {
                    producer.push(tagged(p, i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn hundred_threads_ten_events_each() {
    let dir = tempfile::tempdir().unwrap();
    let ring = Ring::builder(dir.path())
        .segment_size(1 << 20)
        .open()
        .unwrap();
    run_producers(&ring, 100, 10);
    ring.flush().unwrap();
    check_all_present(&ring.snapshot(), 100, 10);
    ring.close().unwrap();
    let report = auditring::verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.events, 1000);
    check_all_present(
        &Reader::open(dir.path()).unwrap().snapshot().unwrap(),
        100,
        10,
    );
}

#[test]
fn eight_producers_hundred_thousand_each() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments and a small queue: many rotations, and producers that wait for room.
    let ring = Ring::builder(dir.path())
        .segment_size(4 << 20)
        .queue_capacity(256)
        .open()
        .unwrap();
    run_producers(&ring, 8, 100_000);
    ring.close().unwrap();
    let report = auditring::verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.events, 800_000);
    assert!(report.segments > 10, "{} segments", report.segments);
    check_all_present(
        &Reader::open(dir.path()).unwrap().snapshot().unwrap(),
        8,
        100_000,
    );
}

#[test]
fn snapshots_taken_while_producers_write_are_consistent() {
    let mem = MemStorage::new("snapshots");
    let ring = Ring::with_storage(mem)
        .segment_size(256 * 1024)
        .open()
        .unwrap();
    let writer = {
        let producer = ring.producer();
        thread::spawn(move || {
            for i in 0..20_000 {
                producer.push(tagged(0, i)).unwrap();
            }
        })
    };
    let mut seen = 0;
    while seen < 20_000 {
        let snap = ring.snapshot();
        assert!(snap.head_seq() >= seen, "heads never go back");
        seen = snap.head_seq();
        // Everything up to the head is readable and chained, however much is written meanwhile.
        let mut prev = snap.anchor();
        let mut n = 0;
        for r in snap.iter() {
            let r = r.unwrap();
            n += 1;
            prev = r.chain;
        }
        assert_eq!(n, snap.len());
        assert_eq!(prev, snap.head());
        if let Some(last) = snap.last(1).next() {
            assert_eq!(last.unwrap().seq, snap.head_seq());
        }
    }
    writer.join().unwrap();
    ring.close().unwrap();
}

#[test]
fn close_and_drop_lose_nothing() {
    for drop_instead_of_close in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let ring = Ring::builder(dir.path())
            .segment_size(1 << 20)
            .open()
            .unwrap();
        // No flush: close (or drop) must drain the queue itself.
        run_producers(&ring, 4, 5_000);
        if drop_instead_of_close {
            drop(ring);
        } else {
            ring.close().unwrap();
        }
        let snap = Reader::open(dir.path()).unwrap().snapshot().unwrap();
        check_all_present(&snap, 4, 5_000);
        assert!(
            auditring::verify(dir.path(), auditring::VerifyOptions::default())
                .unwrap()
                .is_ok()
        );
    }
}

#[test]
fn flush_makes_everything_pushed_before_it_visible() {
    for durability in [Durability::None, Durability::Batch] {
        let mem = MemStorage::new("flush");
        let ring = Ring::with_storage(mem)
            .durability(durability)
            .open()
            .unwrap();
        for round in 1..=20u64 {
            for i in 0..100 {
                ring.push(tagged(0, (round - 1) * 100 + i)).unwrap();
            }
            ring.flush().unwrap();
            assert_eq!(ring.snapshot().head_seq(), round * 100);
        }
        ring.close().unwrap();
    }
}

#[test]
fn pushes_after_close_hand_the_event_back() {
    let mem = MemStorage::new("closed");
    let ring = Ring::with_storage(mem).open().unwrap();
    let producer = ring.producer();
    ring.close().unwrap();
    let event = tagged(7, 7);
    match producer.push(event.clone()) {
        Err(PushError::Closed(e)) => assert_eq!(e, event),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(matches!(
        producer.try_push(event.clone()),
        Err(PushError::Closed(_))
    ));
    assert!(producer.flush().is_err());
}

#[test]
fn try_push_on_a_full_queue_hands_the_event_back_and_nothing_is_lost() {
    // The sequencer blocks when it needs its second segment, so the queue fills up for sure
    // (it may also fill up sooner, while the sequencer starts).
    let faults = Faults::new();
    let (release, gate) = crossbeam::channel::unbounded();
    *faults.create_gate.lock().unwrap() = Some(gate);
    let mem = MemStorage::new("full");
    // The first segment is created by recovery, before the gate matters: let that create pass.
    release.send(()).unwrap();
    let ring = Ring::with_storage(FaultyStorage::new(mem.clone(), faults.clone()))
        .segment_size(64 * 1024)
        .queue_capacity(64)
        .open()
        .unwrap();
    let mut pushed = 0u64;
    let full_event = loop {
        let event = tagged(0, pushed);
        match ring.try_push(event.clone()) {
            Ok(()) => pushed += 1,
            Err(PushError::Full(back)) => {
                assert_eq!(back, event, "the event comes back unchanged");
                break back;
            }
            Err(e) => panic!("unexpected {e}"),
        }
        assert!(pushed < 10_000, "the queue never filled");
    };
    assert!(pushed >= 64);
    // Open the gate for good (a create may be waiting on it), and push the event again.
    *faults.create_gate.lock().unwrap() = None;
    let _ = release.send(());
    ring.push(full_event).unwrap();
    pushed += 1;
    // Enough for several more segments.
    for _ in 0..2_000 {
        ring.push(tagged(0, pushed)).unwrap();
        pushed += 1;
    }
    ring.close().unwrap();
    assert!(faults.creates.load(Ordering::SeqCst) >= 3);
    let snap = Reader::with_storage(mem).snapshot().unwrap();
    check_all_present(&snap, 1, pushed);
}

#[test]
fn a_closed_ring_frees_everything_it_held() {
    // The storage is held by the ring's threads, its shared state and its published views: once
    // the ring is closed and the snapshot dropped, nothing may keep it alive.
    let faults = Faults::new();
    let held = Arc::downgrade(&faults);
    let ring = Ring::with_storage(FaultyStorage::new(MemStorage::new("freed"), faults))
        .open()
        .unwrap();
    let producer = ring.producer();
    producer.push(tagged(0, 0)).unwrap();
    producer.flush().unwrap();
    let snapshot = ring.snapshot();
    ring.close().unwrap();
    assert_eq!(snapshot.len(), 1);
    drop(snapshot);
    drop(producer);
    assert!(held.upgrade().is_none(), "the ring leaked its state");
}

/// Many more producers than queue slots (issue 12, item 15): every producer pushes `per`
/// events with the blocking `push`, and every event is sequenced, gapless and in each
/// producer's order. The producers mostly park, waiting for room; a consumer that woke every
/// waiter whenever it was about to park livelocked here (the woken found the queue full,
/// registered again, and the wake-all loop never ended). The deadline is only a hang guard.
fn many_producers_on_a_small_queue(producers: u64, capacity: usize, per: u64) {
    let dir = tempfile::tempdir().unwrap();
    let ring = Ring::builder(dir.path())
        .segment_size(4 << 20)
        .queue_capacity(capacity)
        .open()
        .unwrap();
    let (done_tx, done_rx) = crossbeam::channel::unbounded();
    let start = Arc::new(Barrier::new(producers as usize));
    for p in 0..producers {
        let producer = ring.producer();
        let start = start.clone();
        let done = done_tx.clone();
        thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                start.wait();
                for i in 0..per {
                    producer.push(tagged(p, i)).unwrap();
                }
                done.send(p).unwrap();
            })
            .unwrap();
    }
    drop(done_tx);
    let guard = std::time::Instant::now() + std::time::Duration::from_secs(300);
    for finished in 0..producers {
        let left = guard.saturating_duration_since(std::time::Instant::now());
        assert!(
            done_rx.recv_timeout(left).is_ok(),
            "{producers} producers on {capacity} slots: {finished} finished and {} events \
             sequenced after 300 s",
            ring.snapshot().head_seq()
        );
    }
    ring.flush().unwrap();
    check_all_present(&ring.snapshot(), producers, per);
    ring.close().unwrap();
}

/// 1,000 producers on 8 slots, 500 on 8 and 1,000 on 64, the three rings at the same time (as
/// the livelock was first seen; contention for the CPUs makes it likelier).
#[test]
fn thousands_of_producers_on_small_queues_all_get_sequenced() {
    let runs: Vec<_> = [(1000, 8), (500, 8), (1000, 64)]
        .into_iter()
        .map(|(producers, capacity)| {
            thread::spawn(move || many_producers_on_a_small_queue(producers, capacity, 100))
        })
        .collect();
    for run in runs {
        run.join().unwrap();
    }
}

/// Extreme settings are refused at open, naming the setting and its range (issue 12, items 17
/// and 18): an interval the clock cannot add made the commit thread panic on an `Instant`
/// overflow, and a queue of 2^24 slots took 13 s and 4.7 GB to open.
#[test]
fn extreme_settings_are_refused_at_open_with_the_setting_and_its_range() {
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let refused = |builder: auditring::RingBuilder, setting: &str| {
        let started = std::time::Instant::now();
        match builder.open() {
            Err(auditring::Error::Config(message)) => {
                assert!(message.contains(setting), "{message}");
                assert!(message.contains("must be"), "{message}");
            }
            Err(e) => panic!("{setting}: not a configuration error: {e}"),
            Ok(_) => panic!("{setting}: an extreme setting was accepted"),
        }
        // Refused before anything is allocated (a hang guard, not a timing assertion).
        assert!(started.elapsed() < Duration::from_secs(60));
    };
    let b = || Ring::builder(dir.path());
    refused(
        b().durability(Durability::Periodic(Duration::MAX)),
        "Periodic",
    );
    refused(
        b().durability(Durability::Periodic(
            auditring::MAX_SYNC_INTERVAL + Duration::from_nanos(1),
        )),
        "Periodic",
    );
    refused(b().queue_capacity(1 << 24), "queue_capacity");
    refused(
        b().queue_capacity(auditring::MAX_QUEUE_CAPACITY + 1),
        "queue_capacity",
    );
    refused(b().queue_capacity(0), "queue_capacity");
    refused(b().max_batch(0), "max_batch");
    refused(b().max_batch(auditring::MAX_BATCH + 1), "max_batch");
    refused(b().max_batch(usize::MAX), "max_batch");
    refused(b().max_event_size(usize::MAX), "max_event_size");
    refused(b().max_event_size(63), "max_event_size");
    refused(b().segment_size(u64::MAX), "segment_size");
    // The largest of each is accepted, and the ring works.
    let ring = b()
        .durability(Durability::Periodic(auditring::MAX_SYNC_INTERVAL))
        .max_batch(auditring::MAX_BATCH)
        .queue_capacity(auditring::MAX_QUEUE_CAPACITY)
        .open()
        .unwrap();
    assert_eq!(ring.queue_capacity(), auditring::MAX_QUEUE_CAPACITY);
    ring.push(tagged(0, 0)).unwrap();
    // A flush waits for a sync: with a one-day interval, the one the flush forces.
    ring.flush().unwrap();
    ring.close().unwrap();
    let report = auditring::verify(dir.path(), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.events, 1);
}

/// A thread of the ring that dies must not leave pushes returning `Ok` (issue 12, item 17):
/// the commit thread panics in a sync; the receipt waiting for it, every later push, flush and
/// the close fail with an error that names the thread.
#[test]
fn a_ring_thread_that_panics_fails_the_ring_visibly() {
    let faults = Faults::new();
    let ring = Ring::with_storage(FaultyStorage::new(
        MemStorage::new("panics"),
        faults.clone(),
    ))
    .durability(Durability::Batch)
    .open()
    .unwrap();
    ring.push_receipt(tagged(0, 0)).unwrap();
    faults.panic_on_sync.store(true, Ordering::SeqCst);
    let err = ring.push_receipt(tagged(0, 1)).unwrap_err().to_string();
    assert!(err.contains("auditring-commit thread panicked"), "{err}");
    match ring.push(tagged(0, 2)) {
        Err(PushError::Failed { source, .. }) => {
            let source = source.to_string();
            assert!(
                source.contains("auditring-commit thread panicked"),
                "{source}"
            );
        }
        other => panic!("a push after the commit thread died: {other:?}"),
    }
    let err = ring.flush().unwrap_err().to_string();
    assert!(err.contains("auditring-commit"), "{err}");
    let err = ring.close().unwrap_err().to_string();
    assert!(err.contains("auditring-commit"), "{err}");
}
