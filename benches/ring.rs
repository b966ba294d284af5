//! Throughput of auditring against the designs it replaces (`verify` and exports are measured
//! in `benches/export.rs`).
//!
//! * `push/1_producer`, `push/2_producers`: events per second pushed by that many threads at
//!   once, until every event is handed to the operating system (`Ring::flush` for auditring,
//!   `finish` for the baselines; nothing is synced). Every design is handed the same demo
//!   events, built inside the measured loop.
//!
//! Run with `cargo bench --bench ring` (about a minute and a half of measuring on two cores).

use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use auditring::{Durability, Ring};

// The allocator of the command-line tool, so that these figures and the demo's agree.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};

// Cargo compiles benchmarks with cfg(test) but without their `#[test]` functions, which leaves
// the import of the workload's unit tests unused here.
#[path = "../src/bin/auditring/workload.rs"]
#[allow(unused_imports)]
mod workload;

#[path = "../src/bin/auditring/baselines.rs"]
mod baselines;

use baselines::{Locked, WriteBehind};

/// Origin time of the demo events (any fixed, plausible value: the same for every design).
const TIMESTAMP: i64 = 1_700_000_000_000_000_000;

const SEGMENT_SIZE: u64 = 64 << 20;

/// Pushes `total` events split across `producers` threads, all released together by a barrier.
/// Each thread builds its events with its own generator (prepared before the clock starts) and
/// hands each one to `push`. Returns the instant the threads were released, once every thread
/// has finished.
fn run_producers(
    producers: usize,
    total: u64,
    push: impl Fn(workload::AuditEvent) + Sync,
) -> Instant {
    let barrier = Barrier::new(producers + 1);
    thread::scope(|s| {
        for p in 0..producers {
            let n = total / producers as u64 + u64::from((p as u64) < total % producers as u64);
            let (barrier, push) = (&barrier, &push);
            s.spawn(move || {
                let events = workload::Generator::new(p, 0, TIMESTAMP);
                barrier.wait();
                for i in 0..n {
                    push(events.event(i));
                }
            });
        }
        barrier.wait();
        Instant::now()
    })
}

fn auditring_push(producers: usize, iters: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let ring = Ring::builder(dir.path().join("audit"))
        .durability(Durability::None)
        .segment_size(SEGMENT_SIZE)
        .open()
        .expect("open ring");
    let producer = ring.producer();
    let start = run_producers(producers, iters, |e| {
        producer.push(workload::into_event(e)).expect("push");
    });
    ring.flush().expect("flush");
    let elapsed = start.elapsed();
    ring.close().expect("close");
    elapsed
}

fn locked_push(producers: usize, iters: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Locked::open(&dir.path().join("locked.jsonl")).expect("open");
    let start = run_producers(producers, iters, |e| log.push(e));
    assert_eq!(log.finish().expect("finish"), iters);
    start.elapsed()
}

fn write_behind_push(producers: usize, iters: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = WriteBehind::open(&dir.path().join("write-behind.jsonl")).expect("open");
    let start = run_producers(producers, iters, |e| log.push(e));
    assert_eq!(log.finish().expect("finish"), iters);
    start.elapsed()
}

fn push(c: &mut Criterion) {
    type Design = fn(usize, u64) -> Duration;
    let designs: [(&str, Design); 3] = [
        ("auditring", auditring_push),
        ("locked", locked_push),
        ("write_behind", write_behind_push),
    ];
    for (producers, name) in [(2, "push/2_producers"), (1, "push/1_producer")] {
        let mut group = c.benchmark_group(name);
        // Flat sampling: every sample is the same, large number of events (several hundred
        // thousand), so that starting threads and opening files do not weigh in.
        group
            .sampling_mode(SamplingMode::Flat)
            .sample_size(10)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(10))
            .throughput(Throughput::Elements(1));
        for (design, run) in designs {
            group.bench_function(BenchmarkId::from_parameter(design), |b| {
                b.iter_custom(|iters| run(producers, iters))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, push);
criterion_main!(benches);
