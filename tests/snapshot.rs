//! Snapshots and queries against a naive reference; ordering and timestamps as documented.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use auditring::storage::MemStorage;
use auditring::{Durability, Event, Query, Reader, Record, Ring};

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// A log of `n` events with kinds, actors, traces and times that repeat in different cycles.
fn sample(n: u64) -> (Ring, Vec<Record>) {
    let ring = Ring::with_storage(MemStorage::new("sample"))
        .segment_size(64 * 1024)
        .open()
        .unwrap();
    for i in 0..n {
        let mut e = Event::new(["login", "logout", "plan.applied"][(i % 3) as usize])
            .with_timestamp_nanos(1_000 + (i as i64 * 7919) % 5_000);
        if i % 4 != 0 {
            e = e.with_actor(format!("user-{}", i % 5));
        }
        if i % 6 != 0 {
            e = e.with_trace_id(format!("trace-{}", i % 11));
        }
        ring.push(e).unwrap();
    }
    ring.flush().unwrap();
    let all: Vec<Record> = ring.snapshot().iter().map(Result::unwrap).collect();
    assert_eq!(all.len() as u64, n);
    (ring, all)
}

#[test]
fn get_range_and_last_agree_with_iteration() {
    // Several segments, so lookups cross segment boundaries and use the sparse index.
    let (ring, all) = sample(3_000);
    let snap = ring.snapshot();
    assert!(snap.segment_count() > 3);
    for seq in [1, 2, 63, 64, 65, 128, 1_000, 2_999, 3_000] {
        assert_eq!(
            snap.get(seq).unwrap().as_ref(),
            Some(&all[seq as usize - 1])
        );
    }
    assert_eq!(snap.get(0).unwrap(), None);
    assert_eq!(snap.get(3_001).unwrap(), None);
    let range: Vec<Record> = snap.range(700..=1_300).map(Result::unwrap).collect();
    assert_eq!(range, all[699..1_300]);
    let range: Vec<Record> = snap.range(2_990..).map(Result::unwrap).collect();
    assert_eq!(range, all[2_989..]);
    assert_eq!(snap.range(5..5).count(), 0);
    assert_eq!(snap.range(..0).count(), 0);
    let last: Vec<Record> = snap.last(10).map(Result::unwrap).collect();
    assert_eq!(last, all[2_990..]);
    assert_eq!(snap.last(5_000).count(), 3_000);
    ring.close().unwrap();
}

#[test]
fn queries_match_a_naive_filter() {
    let (ring, all) = sample(2_000);
    let snap = ring.snapshot();
    type Filter = Box<dyn Fn(&Record) -> bool>;
    let queries: Vec<(Query, Filter)> = vec![
        (Query::new(), Box::new(|_| true)),
        (
            Query::new().kind("logout"),
            Box::new(|r| r.kind == "logout"),
        ),
        (
            Query::new().actor("user-3"),
            Box::new(|r| r.actor.as_deref() == Some("user-3")),
        ),
        (
            Query::new().trace_id("trace-7"),
            Box::new(|r| r.trace_id.as_deref() == Some("trace-7")),
        ),
        (
            Query::new().since(2_000).until(3_000),
            Box::new(|r| (2_000..3_000).contains(&r.timestamp)),
        ),
        (
            Query::new().kind("login").actor("user-1").since(1_500),
            Box::new(|r| {
                r.kind == "login" && r.actor.as_deref() == Some("user-1") && r.timestamp >= 1_500
            }),
        ),
        (
            Query::new().seqs(100..200).trace_id("trace-2"),
            Box::new(|r| (100..200).contains(&r.seq) && r.trace_id.as_deref() == Some("trace-2")),
        ),
    ];
    for (query, keep) in &queries {
        let expected: Vec<&Record> = all.iter().filter(|r| keep(r)).collect();
        let got = snap.query(query).unwrap();
        assert_eq!(got.iter().collect::<Vec<_>>(), expected, "{query:?}");
        let first = snap.query(&query.clone().limit(3)).unwrap();
        assert_eq!(
            first.iter().collect::<Vec<_>>(),
            expected.iter().take(3).copied().collect::<Vec<_>>()
        );
        let last = snap.query(&query.clone().last(3)).unwrap();
        let tail = &expected[expected.len().saturating_sub(3)..];
        assert_eq!(last.iter().collect::<Vec<_>>(), tail.to_vec(), "{query:?}");
        assert!(snap.query(&query.clone().limit(0)).unwrap().is_empty());
    }
    ring.close().unwrap();
}

#[test]
fn a_push_that_returns_before_another_starts_gets_the_smaller_seq() {
    let ring = Ring::with_storage(MemStorage::new("order")).open().unwrap();
    for round in 0..200 {
        let (tx, rx) = std::sync::mpsc::channel();
        let first = ring.producer();
        let a = std::thread::spawn(move || {
            first
                .push(Event::new("first").with_details(&round).unwrap())
                .unwrap();
            tx.send(()).unwrap();
        });
        let second = ring.producer();
        let b = std::thread::spawn(move || {
            rx.recv().unwrap();
            second
                .push(Event::new("second").with_details(&round).unwrap())
                .unwrap();
        });
        a.join().unwrap();
        b.join().unwrap();
    }
    ring.flush().unwrap();
    let kinds: Vec<String> = ring.snapshot().iter().map(|r| r.unwrap().kind).collect();
    for pair in kinds.chunks(2) {
        assert_eq!(pair, ["first", "second"]);
    }
    ring.close().unwrap();
}

#[test]
fn the_origin_timestamp_defaults_to_the_push_time_and_is_never_rounded() {
    let ring = Ring::with_storage(MemStorage::new("time")).open().unwrap();
    let before = now_ns();
    ring.push(Event::new("no.time")).unwrap();
    let after = now_ns();
    ring.push(Event::new("given").with_timestamp_nanos(1_767_225_600_123_456_789))
        .unwrap();
    ring.push(Event::new("early").with_timestamp_nanos(-1))
        .unwrap();
    ring.flush().unwrap();
    let snap = ring.snapshot();
    let t = snap.get(1).unwrap().unwrap().timestamp;
    assert!(before <= t && t <= after, "{before} <= {t} <= {after}");
    assert_eq!(
        snap.get(2).unwrap().unwrap().timestamp,
        1_767_225_600_123_456_789
    );
    assert_eq!(snap.get(3).unwrap().unwrap().timestamp, -1);
    ring.close().unwrap();
}

#[test]
fn periodic_receipts_wait_for_a_sync() {
    let mem = MemStorage::new("periodic");
    let ring = Ring::with_storage(mem.clone())
        .durability(Durability::Periodic(Duration::from_millis(5)))
        .open()
        .unwrap();
    for i in 0..20 {
        let r = ring
            .push_receipt(Event::new("tick").with_details(&i).unwrap())
            .unwrap();
        assert!(r.durable);
        // Durable means in the image a power loss would leave.
        let image = Reader::with_storage(mem.crash_image()).snapshot().unwrap();
        assert_eq!(image.get(r.seq).unwrap().unwrap().chain, r.chain);
    }
    // Without a durable policy, receipts say so.
    let plain = Ring::with_storage(MemStorage::new("none")).open().unwrap();
    assert!(!plain.push_receipt(Event::new("tick")).unwrap().durable);
    plain.close().unwrap();
    ring.close().unwrap();
}
