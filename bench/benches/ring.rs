//! Criterion benchmarks of the ring itself, each against a baseline measured in the same run
//! (the wider comparison with every design auditring replaces is `cli/benches/compare.rs`;
//! checking and exporting are in `benches/export.rs`).
//!
//! * `push/N_producers`: events per second pushed by N threads at once until every event is
//!   handed to the operating system (`Ring::flush` for auditring, `finish` for the baselines;
//!   nothing synced), against a mutex around JSON + chain + `BufWriter` (`locked`) and a
//!   write-behind channel (`write_behind`). Every design is handed the same demo events, built
//!   inside the measured loop.
//! * `sequencer/alone`: the serial section by itself. 16,384 events are pushed (encoded and
//!   leaf-hashed by the producer) into a fresh ring, whose queue has its default capacity and
//!   holds them all, while the sequencer waits at a gate; the clock runs from the moment both
//!   threads have reached the gate until `flush` returns, so it covers the sequencer numbering,
//!   chaining, copying into the mapped segment and publishing every event, and the flush. In `alone` the segment's pages were faulted in
//!   beforehand, as the preparer keeps them ahead of the sequencer in a steady state; in
//!   `alone_fresh_pages` the sequencer runs into fresh pages, faster than the preparer can
//!   fault them in, and pays for the kernel zeroing them. Against `full_hash_under_lock`: what the
//!   serial section of the locked design costs at least (take a mutex, SHA-256 over the
//!   previous hash, the seq and the ~210-byte JSON of the event, append it to a buffer), on
//!   events serialized beforehand.
//! * `open/1MiB`, `open/1GiB`: `Ring::open` of a cleanly closed log of that size, until it
//!   is ready to take events.
//! * `floor`: the work an event cannot avoid, each piece alone, per event: the SHA-256 leaf of
//!   a ~210-byte body, the chain step (SHA-256 of 72 bytes), serializing the demo's details
//!   with `serde_json` into a reused buffer, and copying a ~290-byte record into fresh page-cache
//!   pages (`pwrite` of 64 KiB at a time into a new preallocated file, as the sequencer's
//!   batches do; the file is removed and made again when it is full). Their sum is the least
//!   CPU an event costs here, whatever the design around them.
//!
//! Run with `cargo bench --bench ring` (about five minutes), or one group:
//! `cargo bench --bench ring -- sequencer`.

use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use auditring::{Durability, Ring};
use auditring_bench::baselines::{Locked, WriteBehind};
use auditring_bench::load::{self, Auditring, Load};
use auditring_bench::workload;
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use sha2::{Digest, Sha256};

// The allocator of the command-line tool, so that these figures and the demo's agree.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Origin time of the demo events (any fixed, plausible value: the same for every design).
const TIMESTAMP: i64 = 1_700_000_000_000_000_000;

fn load(producers: usize, events: u64) -> Load {
    Load {
        producers,
        events,
        event_size: 0,
        timestamp: TIMESTAMP,
    }
}

/// A group measured in events per second. Flat sampling: every sample is the same, large
/// number of events (several hundred thousand), so that starting threads and opening files do
/// not weigh in.
fn per_event_group(c: &mut Criterion, name: String) -> BenchmarkGroup<'_, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(1));
    group
}

fn auditring_push(producers: usize, iters: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let ring = Ring::builder(dir.path().join("audit"))
        .durability(Durability::None)
        .open()
        .expect("open ring");
    let run = load::drive(&load(producers, iters), Auditring::new(&ring, false)).expect("run");
    ring.close().expect("close");
    Duration::from_secs_f64(run.seconds)
}

fn locked_push(producers: usize, iters: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = Locked::open(&dir.path().join("locked.jsonl")).expect("open");
    let run = load::drive(&load(producers, iters), log).expect("run");
    Duration::from_secs_f64(run.seconds)
}

fn write_behind_push(producers: usize, iters: u64) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = WriteBehind::open(&dir.path().join("write-behind.jsonl")).expect("open");
    let run = load::drive(&load(producers, iters), log).expect("run");
    Duration::from_secs_f64(run.seconds)
}

fn push(c: &mut Criterion) {
    type Design = fn(usize, u64) -> Duration;
    let designs: [(&str, Design); 3] = [
        ("auditring", auditring_push),
        ("locked", locked_push),
        ("write_behind", write_behind_push),
    ];
    for producers in [1, 2, 8, 32] {
        let mut group = per_event_group(c, format!("push/{producers}_producers"));
        for (design, run) in designs {
            group.bench_function(BenchmarkId::from_parameter(design), |b| {
                b.iter_custom(|iters| run(producers, iters));
            });
        }
        group.finish();
    }
}

/// Events sequenced per ring in `sequencer/alone`: they fit in the queue (its default
/// capacity, whose slots stay in the caches as they do in a steady state) and in one segment.
const SEQUENCER_CHUNK: u64 = 1 << 14;

/// Segment size in `sequencer/alone`: a demo record takes under 300 bytes.
const SEQUENCER_SEGMENT: u64 = 8 << 20;

/// Time the sequencer takes for `n` events already in its queue.
fn sequencer_chunk(events: &[auditring::Event], prefault: bool) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let gate = Arc::new(Barrier::new(2));
    let ring = Ring::builder(dir.path().join("audit"))
        .durability(Durability::None)
        .queue_capacity(SEQUENCER_CHUNK as usize)
        // Room for the chunk, and no more pages to fault in (and to write back) than that.
        .segment_size(SEQUENCER_SEGMENT)
        .sequencer_start_gate(gate.clone(), prefault)
        .open()
        .expect("open ring");
    for e in events {
        ring.push(e.clone()).expect("push");
    }
    // The sequencer may still be faulting in its segment: the clock starts once it is at the
    // gate too.
    gate.wait();
    let start = Instant::now();
    ring.flush().expect("flush");
    let elapsed = start.elapsed();
    assert_eq!(ring.snapshot().head_seq(), events.len() as u64);
    ring.close().expect("close");
    elapsed
}

fn demo_events(n: u64) -> Vec<auditring::Event> {
    let g = workload::Generator::new(0, 0, TIMESTAMP);
    (0..n).map(|i| workload::into_event(g.event(i))).collect()
}

fn sequencer(c: &mut Criterion) {
    let events = demo_events(SEQUENCER_CHUNK);
    let json: Vec<Vec<u8>> = {
        let g = workload::Generator::new(0, 0, TIMESTAMP);
        (0..SEQUENCER_CHUNK)
            .map(|i| serde_json::to_vec(&g.event(i)).expect("json"))
            .collect()
    };
    let mut group = per_event_group(c, "sequencer".into());
    for (name, prefault) in [("alone", true), ("alone_fresh_pages", false)] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(SEQUENCER_CHUNK);
                    total += sequencer_chunk(&events[..n as usize], prefault);
                    left -= n;
                }
                total
            });
        });
    }
    group.bench_function("full_hash_under_lock", |b| {
        b.iter_custom(|iters| {
            // (previous hash, seq, the log's bytes)
            let state = Mutex::new(([0u8; 32], 0u64, Vec::<u8>::with_capacity(64 << 20)));
            let start = Instant::now();
            for i in 0..iters {
                let body = &json[(i % SEQUENCER_CHUNK) as usize];
                let mut s = state.lock().expect("lock");
                let (prev, seq, log) = &mut *s;
                *seq += 1;
                let mut h = Sha256::new();
                h.update(*prev);
                h.update(seq.to_le_bytes());
                h.update(body);
                *prev = h.finalize().into();
                if log.len() + body.len() + 40 > log.capacity() {
                    log.clear();
                }
                log.extend_from_slice(&seq.to_le_bytes());
                log.extend_from_slice(prev);
                log.extend_from_slice(body);
            }
            let elapsed = start.elapsed();
            std::hint::black_box(state);
            elapsed
        });
    });
    group.finish();
}

/// Writes about `bytes` of demo records into a new log at `dir` and closes it.
fn build_log(dir: &Path, bytes: u64) {
    let ring = Ring::open(dir).expect("open ring");
    let producer = ring.producer();
    let g = workload::Generator::new(0, 0, TIMESTAMP);
    // A demo event takes about 280 bytes in a segment.
    for i in 0..bytes / 280 {
        producer
            .push(workload::into_event(g.event(i)))
            .expect("push");
    }
    drop(producer);
    ring.close().expect("close");
}

fn open(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("open");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, bytes) in [("1MiB", 1u64 << 20), ("1GiB", 1 << 30)] {
        let path = dir.path().join(name);
        build_log(&path, bytes);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let ring = Ring::open(&path).expect("open");
                    total += start.elapsed();
                    ring.close().expect("close");
                }
                total
            });
        });
    }
    group.finish();
}

fn floor(c: &mut Criterion) {
    use std::os::unix::fs::FileExt;

    let mut group = c.benchmark_group("floor");
    group.throughput(Throughput::Elements(1));
    let event = workload::Generator::new(0, 0, TIMESTAMP).event(12_345);
    let body = vec![0x5a_u8; workload::body_len(&event)];
    group.bench_function("leaf_sha256_of_the_body", |b| {
        b.iter(|| Sha256::digest(std::hint::black_box(&body)));
    });
    let step = [0x33_u8; 72];
    group.bench_function("chain_sha256_of_72_bytes", |b| {
        b.iter(|| Sha256::digest(std::hint::black_box(step)));
    });
    let mut json = Vec::with_capacity(512);
    group.bench_function("serialize_the_details", |b| {
        b.iter(|| {
            json.clear();
            serde_json::to_writer(&mut json, std::hint::black_box(&event.details)).expect("json");
        });
    });
    // ~290 bytes of record per event, written 64 KiB at a time.
    const RECORD: u64 = 290;
    const CHUNK: usize = 64 << 10;
    const FILE: u64 = 256 << 20;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fresh.bin");
    let chunk = vec![0x77_u8; CHUNK];
    let fresh = || {
        let _ = std::fs::remove_file(&path);
        let f = std::fs::File::create(&path).expect("create");
        f.set_len(FILE).expect("set_len");
        f
    };
    let mut file = fresh();
    let mut at = 0u64;
    group.throughput(Throughput::Elements(CHUNK as u64 / RECORD));
    group.bench_function("copy_into_fresh_page_cache_per_290_bytes", |b| {
        b.iter(|| {
            if at + CHUNK as u64 > FILE {
                file = fresh();
                at = 0;
            }
            file.write_all_at(&chunk, at).expect("pwrite");
            at += CHUNK as u64;
        });
    });
    group.finish();
}

/// Merkle proofs in a log of 10,000,000 small events written by a ring (so its tree is stored):
/// an inclusion proof of a record spread over the log, a consistency proof, and the root. The
/// log takes about a minute and 1.3 GB to write, once, before the measurements.
fn proofs(c: &mut Criterion) {
    const EVENTS: u64 = 10_000_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ten-million");
    let ring = Ring::builder(&path).open().expect("open");
    let producer = ring.producer();
    for i in 0..EVENTS {
        producer
            .push_ref(&auditring::EventRef::new("proof.bench").with_details(&i))
            .expect("push");
    }
    drop(producer);
    ring.close().expect("close");
    let snap = auditring::Reader::open(&path)
        .expect("reader")
        .snapshot()
        .expect("snapshot");
    let root = snap.tree_root().expect("root");
    let mut group = c.benchmark_group("proofs");
    group.sample_size(50);
    let mut seq = 1u64;
    group.bench_function("inclusion_in_10M", |b| {
        b.iter(|| {
            // A different record each time, spread over the log (a prime stride).
            seq = (seq + 7_919_981) % EVENTS + 1;
            snap.inclusion_proof(seq, EVENTS).expect("proof")
        });
    });
    group.bench_function("consistency_in_10M", |b| {
        b.iter(|| {
            seq = (seq + 7_919_981) % EVENTS + 1;
            snap.consistency_proof(seq, EVENTS).expect("proof")
        });
    });
    group.bench_function("root_of_10M", |b| {
        b.iter(|| snap.tree_root().expect("root"));
    });
    group.finish();
    // Checked once, outside the timing: the proofs are right, and what one reads (the bytes
    // this process reads with read(2)/pread(2), from /proc/self/io, over 1,000 proofs).
    let proof = snap.inclusion_proof(4_321_987, EVENTS).expect("proof");
    let record = snap.get(4_321_987).expect("get").expect("record");
    proof.verify(&record.leaf, &root).expect("verifies");
    let rchar = || {
        std::fs::read_to_string("/proc/self/io")
            .ok()
            .and_then(|io| {
                io.lines().find_map(|l| {
                    l.strip_prefix("rchar: ")
                        .and_then(|v| v.parse::<u64>().ok())
                })
            })
            .unwrap_or(0)
    };
    let before = rchar();
    for k in 0..1_000u64 {
        let seq = (k * 7_919_981) % EVENTS + 1;
        snap.inclusion_proof(seq, EVENTS).expect("proof");
    }
    println!(
        "proofs/inclusion_in_10M: {} bytes read per proof (mean of 1,000)",
        (rchar() - before) / 1_000
    );
}

criterion_group!(benches, push, sequencer, open, floor, proofs);
criterion_main!(benches);
