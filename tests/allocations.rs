//! What the push path allocates, counted by the global allocator.
//!
//! The allocator below counts the allocations (and reallocations) made by the thread that has
//! switched counting on, and only those: the ring's own threads (the sequencer, the committer,
//! the preparer) allocate now and then, for a new segment say, on their own threads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use auditring::{Durability, Event, EventRef, Ring};
use serde::Serialize;

struct Counting;

thread_local! {
    /// Whether this thread's allocations are counted.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Allocations this thread made while counting.
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: a thread being torn down has no thread-locals left, and allocates anyway.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|n| n.set(n.get() + 1));
        }
    });
}

// SAFETY: every call is passed to `System` unchanged; the counting touches only const
// thread-locals with no destructor, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: the caller's contract is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations `f` makes on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    COUNT.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    COUNT.with(Cell::get)
}

/// The demo's details, as an application holds them.
#[derive(Serialize)]
struct Details<'a> {
    plan_id: u64,
    workspace: &'a str,
    resources_changed: u32,
    dry_run: bool,
    duration_ms: u64,
}

/// Pushes this many events in the measured stretch: fewer than the queue's slots, so that no
/// push finds the queue full (waiting for room registers the thread, which allocates).
const PUSHES: u64 = 4_000;

fn ring(dir: &std::path::Path) -> Ring {
    Ring::builder(dir)
        .durability(Durability::None)
        .queue_capacity(1 << 14)
        .open()
        .unwrap()
}

#[test]
fn pushing_a_borrowed_event_allocates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(&dir.path().join("log"));
    let producer = ring.producer();
    let actor = "user:dev01@example.com";
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let push = |i: u64| {
        let details = Details {
            plan_id: i,
            workspace: "prod-eu-west",
            resources_changed: 3,
            dry_run: false,
            duration_ms: 1234,
        };
        let event = EventRef::new("plan.applied")
            .with_actor(actor)
            .with_trace_id(trace)
            .with_details(&details);
        producer.push_ref(&event).unwrap();
    };
    // Warm up: the first push of a thread may set up thread-locals.
    for i in 0..100 {
        push(i);
    }
    producer.flush().unwrap();
    let n = allocations(|| {
        for i in 0..PUSHES {
            push(i);
        }
    });
    assert_eq!(
        n, 0,
        "{n} allocations in {PUSHES} pushes of a borrowed event"
    );
    producer.flush().unwrap();

    // The events are there, exactly as pushed.
    let snapshot = ring.snapshot();
    let last = snapshot.get(snapshot.head_seq()).unwrap().unwrap();
    assert_eq!(last.kind, "plan.applied");
    assert_eq!(last.actor.as_deref(), Some(actor));
    assert_eq!(last.trace_id.as_deref(), Some(trace));
    let details: serde_json::Value = last.details_as().unwrap().unwrap();
    assert_eq!(details["plan_id"], PUSHES - 1);
    assert_eq!(snapshot.len(), 100 + PUSHES);
    ring.close().unwrap();
}

/// The check above can fail: the owned builder allocates, and the allocator sees it.
#[test]
fn building_an_owned_event_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let ring = ring(&dir.path().join("log"));
    let producer = ring.producer();
    let n = allocations(|| {
        for i in 0..10 {
            let event = Event::new("plan.applied")
                .with_actor("user:dev01@example.com")
                .with_details(&serde_json::json!({ "plan_id": i }))
                .unwrap();
            producer.push(event).unwrap();
        }
    });
    assert!(n >= 20, "only {n} allocations counted for 10 owned events");
    ring.close().unwrap();
}
