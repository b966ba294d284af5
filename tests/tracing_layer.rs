//! The `tracing` layer: it records the chosen events and only those, with their fields,
//! actor, trace id and kind, from 100 threads without losing, duplicating or reordering any;
//! in its lossy mode it writes into the chain how many it dropped; its guard flushes and
//! closes the ring.

use std::sync::{Arc, Barrier};

use auditring::{AuditLayer, DROPPED_KIND, Overflow, Ring, VerifyOptions, verify};
use auditring_testkit::threads::{assert_each_thread_in_order, details, gated_ring, records};
use tracing_subscriber::layer::SubscriberExt;

#[test]
fn chosen_events_become_records_with_their_fields_actor_trace_id_and_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir).open().unwrap();
    let (layer, guard) = AuditLayer::builder(ring).actor_field("user").build();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        // Not chosen: another target, no `audit` field, or `audit = false`.
        tracing::info!(target: "app", "ordinary");
        tracing::info!(target: "auditor", "a target that merely starts alike");
        tracing::info!(target: "app", audit = false, "explicitly not");
        // Chosen by target, with a kind, the actor and typed fields.
        tracing::warn!(target: "audit", kind = "user.login", user = "alice", n = 3u64, ok = true, ratio = 0.5, "login");
        // Chosen by target under `audit`, kind from the target.
        tracing::info!(target: "audit::files", path = "/etc/passwd", "read");
        // Chosen by the `audit` field, the actor and trace id from enclosing spans.
        let outer = tracing::info_span!(
            "request",
            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
            user = "bob"
        );
        let _o = outer.enter();
        let inner = tracing::info_span!("handler", user = "carol");
        let _i = inner.enter();
        tracing::info!(target: "app::billing", audit = true, amount = -12i64, "refund");
    });
    guard.close().unwrap();
    let rs = records(&dir);
    assert_eq!(rs.len(), 3, "{rs:?}");

    assert_eq!(rs[0].kind, "user.login");
    assert_eq!(rs[0].actor.as_deref(), Some("alice"));
    assert_eq!(rs[0].trace_id, None);
    assert_eq!(
        details(&rs[0]),
        serde_json::json!({"message": "login", "n": 3, "ok": true, "ratio": 0.5,
                           "level": "WARN", "target": "audit"})
    );

    assert_eq!(rs[1].kind, "audit::files");
    assert_eq!(rs[1].actor, None);
    assert_eq!(details(&rs[1])["path"], "/etc/passwd");

    assert_eq!(rs[2].kind, "app::billing");
    assert_eq!(rs[2].actor.as_deref(), Some("carol"), "the nearest span's");
    assert_eq!(
        rs[2].trace_id.as_deref(),
        Some("4bf92f3577b34da6a3ce929d0e0e4736")
    );
    assert_eq!(details(&rs[2])["amount"], -12);
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
}

/// User story 002 through the layer: 100 threads each emit 10 audit events; every one is in
/// the log once, gapless, each thread's in the order it emitted them.
#[test]
fn a_hundred_threads_lose_duplicate_and_reorder_nothing() {
    const THREADS: u64 = 100;
    const EACH: u64 = 10;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir).queue_capacity(8).open().unwrap();
    let (layer, guard) = AuditLayer::builder(ring).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (dispatch, start) = (dispatch.clone(), start.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    start.wait();
                    for i in 0..EACH {
                        tracing::info!(target: "audit", kind = "story.002", thread = t, i = i);
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    guard.close().unwrap();
    assert_each_thread_in_order(&records(&dir), THREADS, EACH);
}

/// With `Overflow::DropAndRecord`, events that find the queue full (here: the sequencer held
/// before it starts) are dropped and counted, and the count is in the chain before the events
/// that follow; every other event is there, in order.
#[test]
fn the_lossy_mode_writes_how_many_it_dropped_into_the_chain() {
    const SLOTS: usize = 4;
    const EMITTED: u64 = 30;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (ring, gate) = gated_ring(&dir, SLOTS);
    let (layer, guard) = AuditLayer::builder(ring)
        .overflow(Overflow::DropAndRecord)
        .build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..EMITTED {
            tracing::info!(target: "audit", i = i);
        }
    });
    gate.wait();
    // The drop record goes in at the flush at the latest, before what follows.
    guard.flush().unwrap();
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(target: "audit", i = EMITTED);
    });
    guard.close().unwrap();
    let rs = records(&dir);
    assert_eq!(rs.len(), SLOTS + 2, "{rs:?}");
    for (n, r) in rs[..SLOTS].iter().enumerate() {
        assert_eq!(details(r)["i"], n as u64);
    }
    let dropped = &rs[SLOTS];
    assert_eq!(dropped.kind, DROPPED_KIND);
    let d = details(dropped);
    assert_eq!(d["dropped"], EMITTED - SLOTS as u64);
    assert_eq!(d["after_seq"], 0);
    assert!(d["first_at"].as_i64().unwrap() <= d["last_at"].as_i64().unwrap());
    assert_eq!(details(&rs[SLOTS + 1])["i"], EMITTED);
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
}

/// Dropping the guard flushes and closes the ring: what was emitted is in the log, and the
/// directory is free for the next writer.
#[test]
fn the_guard_flushes_and_closes_the_ring_when_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir).open().unwrap();
    let (layer, guard) = AuditLayer::builder(ring).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        for i in 0..500u64 {
            tracing::info!(target: "audit", i = i);
        }
    });
    drop(guard);
    assert_eq!(records(&dir).len(), 500);
    // The lock is free: another ring opens the log at once.
    Ring::builder(&dir).open().unwrap().close().unwrap();
}

/// An event the ring refuses (here: a kind the library reserves) is not lost silently: the
/// guard's close reports how many, and why the first was refused.
#[test]
fn events_the_ring_refuses_are_reported_when_the_guard_closes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir).open().unwrap();
    let (layer, guard) = AuditLayer::builder(ring).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        tracing::info!(target: "audit", kind = "auditring.forged", "refused");
        tracing::info!(target: "audit", kind = "fine", "kept");
        tracing::info!(target: "audit", kind = "auditring.forged", "refused too");
    });
    let err = guard.close().unwrap_err();
    assert!(matches!(err, auditring::Error::Integration(_)), "{err}");
    assert!(err.to_string().contains("2 event(s)"), "{err}");
    let rs = records(&dir);
    assert_eq!(rs.len(), 1);
    assert_eq!(rs[0].kind, "fine");
}
