//! Async pushes and receipts: a task waits for room in the queue and for its receipt without
//! blocking its thread, under any executor (tested here under tokio's two runtimes), and no
//! event is lost, duplicated or reordered.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use auditring::{Durability, Event, Reader, Ring, VerifyOptions, verify};
use auditring_testkit::threads::gated_ring;

fn event(task: u64, i: u64) -> Event {
    Event::new("async.test")
        .with_actor(format!("task-{task}"))
        .with_details_json(format!("{{\"task\":{task},\"i\":{i}}}"))
        .unwrap()
}

/// The (task, i) of every record of the log in `dir`, in seq order, and checks the seqs are
/// gapless from 1.
fn records(dir: &std::path::Path) -> Vec<(u64, u64)> {
    let snap = Reader::open(dir).unwrap().snapshot().unwrap();
    let mut out = Vec::new();
    for (n, r) in snap.iter().enumerate() {
        let r = r.unwrap();
        assert_eq!(r.seq, n as u64 + 1);
        let d: serde_json::Value = serde_json::from_str(r.details.as_deref().unwrap()).unwrap();
        out.push((d["task"].as_u64().unwrap(), d["i"].as_u64().unwrap()));
    }
    out
}

/// 50 tasks on a two-thread runtime each push 40 events and await each receipt: the receipts
/// are durable, their seqs are 1 to 2,000 with none twice, each task's in the order it pushed,
/// and the log holds exactly those events there.
#[test]
fn awaited_receipts_are_gapless_and_in_each_tasks_order() {
    const TASKS: u64 = 50;
    const EACH: u64 = 40;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir)
        .durability(Durability::Batch)
        .queue_capacity(16)
        .open()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let receipts: Vec<Vec<(u64, u64)>> = runtime.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|task| {
                let producer = ring.producer();
                tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for i in 0..EACH {
                        let pending = producer.push_tracked_async(event(task, i)).await.unwrap();
                        let receipt = pending.await.unwrap();
                        assert!(receipt.durable);
                        seqs.push((receipt.seq, i));
                    }
                    seqs
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.push(h.await.unwrap());
        }
        all
    });
    ring.close().unwrap();
    let log = records(&dir);
    assert_eq!(log.len() as u64, TASKS * EACH);
    let mut seen = vec![false; log.len()];
    for (task, seqs) in receipts.iter().enumerate() {
        assert!(
            seqs.windows(2).all(|w| w[0].0 < w[1].0),
            "task {task}: {seqs:?}"
        );
        for &(seq, i) in seqs {
            let at = (seq - 1) as usize;
            assert!(!seen[at], "seq {seq} twice");
            seen[at] = true;
            assert_eq!(log[at], (task as u64, i), "seq {seq}");
        }
    }
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
}

/// On a single-threaded runtime, a task pushing into a full queue whose sequencer has not
/// started waits without holding the thread: the test's own task runs meanwhile, on that same
/// thread. Once the sequencer starts, every event arrives, in order; an awaited flush covers
/// them all.
#[test]
fn a_task_waiting_for_room_leaves_its_thread_to_other_tasks() {
    const SLOTS: usize = 4;
    const EVENTS: u64 = 50;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (ring, gate) = gated_ring(&dir, SLOTS);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let started = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let producer = ring.producer();
        let counter = started.clone();
        let pusher = tokio::spawn(async move {
            for i in 0..EVENTS {
                counter.fetch_add(1, Ordering::SeqCst);
                producer.push_async(event(0, i)).await.unwrap();
            }
            producer.flush_async().await.unwrap();
        });
        // The pusher runs only when this task yields: once it has started its fifth push, the
        // four slots are taken and nothing pops them, so that push is waiting, and this task
        // runs again, on the one thread there is.
        while started.load(Ordering::SeqCst) <= SLOTS {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        assert_eq!(started.load(Ordering::SeqCst), SLOTS + 1);
        assert!(!pusher.is_finished());
        // Let the sequencer start (the gate's other party is the sequencer thread).
        let release = gate.clone();
        let releaser = std::thread::spawn(move || {
            release.wait();
        });
        pusher.await.unwrap();
        releaser.join().unwrap();
    });
    // The flush returned: every event is sequenced and visible.
    assert_eq!(ring.snapshot().head_seq(), EVENTS);
    ring.close().unwrap();
    let log = records(&dir);
    assert_eq!(log, (0..EVENTS).map(|i| (0, i)).collect::<Vec<_>>());
}

/// A push future dropped while it waits for room drops its event and nothing else: every
/// other event is in the log once, and the ring goes on.
#[test]
fn a_push_dropped_while_waiting_loses_only_its_own_event() {
    const SLOTS: usize = 2;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (ring, gate) = gated_ring(&dir, SLOTS);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let producer = ring.producer();
        for i in 0..SLOTS as u64 {
            producer.push_async(event(0, i)).await.unwrap();
        }
        // The queue is full and the sequencer not started: this push waits, and is dropped.
        let mut waiting = Box::pin(producer.push_async(event(1, 0)));
        let polled = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(waiting.as_mut().poll(cx).is_pending())
        })
        .await;
        assert!(polled, "the push should wait for room");
        drop(waiting);
        let release = gate.clone();
        let releaser = std::thread::spawn(move || {
            release.wait();
        });
        for i in SLOTS as u64..20 {
            producer.push_async(event(0, i)).await.unwrap();
        }
        producer.flush_async().await.unwrap();
        releaser.join().unwrap();
    });
    ring.close().unwrap();
    assert_eq!(records(&dir), (0..20).map(|i| (0, i)).collect::<Vec<_>>());
}
