//! The `tracing` layer against what a service would otherwise use to keep its audit events:
//! `tracing-appender`'s `non_blocking` writer under `tracing-subscriber`'s JSON formatter,
//! writing a file. Same events, same threads, in the same run.
//!
//! * `tracing/auditring_layer`: `AuditLayer` into a ring (`Durability::None`, the default
//!   queue): every event encoded, hashed and chained; nothing dropped (it waits for room).
//! * `tracing/appender_json_lossy`: `non_blocking` as it comes (lossy: a 128,000-line buffer,
//!   events dropped when it is full), JSON lines to a file.
//! * `tracing/appender_json_blocking`: the same with `lossy(false)`: it waits for room, as the
//!   layer does, so nothing is lost either.
//!
//! Each iteration sets the subscriber up, has two threads emit `EVENTS` events between them,
//! and tears it down, so that every event is written (the ring closed, the appender's guard
//! dropped) inside the timing. Run with `cargo bench --bench integrations` (about a minute).

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use auditring::{AuditLayer, Durability, Ring};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tracing_subscriber::layer::{Layer, SubscriberExt};

// The allocator of the command-line tool, so that these figures and the CLI's agree.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Events per iteration, over all threads.
const EVENTS: u64 = 200_000;
const THREADS: u64 = 2;

/// Has `THREADS` threads emit `EVENTS` audit events between them through `dispatch`.
fn emit(dispatch: &tracing::Dispatch) {
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (dispatch, start) = (dispatch.clone(), start.clone());
            std::thread::spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    start.wait();
                    for i in 0..EVENTS / THREADS {
                        tracing::info!(
                            target: "audit",
                            kind = "user.login",
                            actor = "alice@example.com",
                            trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                            thread = t,
                            i = i,
                            ok = true,
                            "login"
                        );
                    }
                });
            })
        })
        .collect();
    for t in threads {
        t.join().expect("emitter");
    }
}

/// One iteration through auditring's layer, into a new log in `dir`.
fn auditring_layer(dir: &Path) -> Duration {
    let _ = std::fs::remove_dir_all(dir);
    let t = Instant::now();
    let ring = Ring::builder(dir)
        .durability(Durability::None)
        .open()
        .expect("open");
    let (layer, guard) = AuditLayer::builder(ring).build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    emit(&dispatch);
    guard.close().expect("close");
    t.elapsed()
}

/// One iteration through `non_blocking` and the JSON formatter, into a new file in `dir`.
fn appender_json(dir: &Path, lossy: bool) -> Duration {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("dir");
    let t = Instant::now();
    let file = std::fs::File::create(dir.join("audit.jsonl")).expect("file");
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(lossy)
        .finish(file);
    let layer = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(writer)
        .with_filter(
            tracing_subscriber::filter::Targets::new().with_target("audit", tracing::Level::TRACE),
        );
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    emit(&dispatch);
    drop(dispatch);
    drop(guard);
    t.elapsed()
}

fn integrations(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("tracing");
    group.throughput(Throughput::Elements(EVENTS));
    group.sample_size(10);
    group.bench_function("auditring_layer", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| auditring_layer(&tmp.path().join("ring")))
                .sum()
        });
    });
    group.bench_function("appender_json_lossy", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| appender_json(&tmp.path().join("lossy"), true))
                .sum()
        });
    });
    group.bench_function("appender_json_blocking", |b| {
        b.iter_custom(|n| {
            (0..n)
                .map(|_| appender_json(&tmp.path().join("blocking"), false))
                .sum()
        });
    });
    group.finish();
}

criterion_group!(benches, integrations);
criterion_main!(benches);
