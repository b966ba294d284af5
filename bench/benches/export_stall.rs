//! Does exporting (or verifying) a live log stall its producers? Push latency while a 1 GiB
//! export runs, against the same producers with nothing else running, in one run.
//!
//! A log of 1 GiB of demo records (about 3.7 million events of about 200 bytes) is written and
//! left open. Then, in each phase, producer threads push demo events at a steady rate (paced,
//! not flat out, as a service's request threads would), and every push's latency goes into an
//! HDR histogram:
//!
//! * `idle`: nothing else runs;
//! * `export`: a bundle export of the first 1 GiB of records runs from a snapshot, on another
//!   thread, for as long as it takes;
//! * `verify`: `auditring::verify` of the whole log runs meanwhile.
//!
//! Each phase lasts as long as the export took (at least 3 seconds). The table gives p50, p99,
//! p99.9 and the maximum of each phase, and the export's own throughput.
//!
//! Run with `cargo bench --bench export_stall` (about a minute); `-- --producers P --rate R`
//! (events per second per producer, default 2 and 100,000) and `--json` for one JSON object.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use auditring::{Durability, Encoding, ExportOptions, Ring, Selection};
use auditring_bench::workload;
use hdrhistogram::Histogram;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TIMESTAMP: i64 = 1_700_000_000_000_000_000;
const GIB: u64 = 1 << 30;

struct Phase {
    name: &'static str,
    pushes: u64,
    latency: Histogram<u64>,
    /// Seconds and bytes of the concurrent work, if any.
    work: Option<(f64, u64)>,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `producers` paced producers until `stop` is set, while `work` runs on this thread (it
/// sets nothing; the producers stop when it returns, or after `min` if that is longer).
fn phase(
    name: &'static str,
    ring: &Ring,
    producers: usize,
    rate: u64,
    min: Duration,
    work: impl FnOnce() -> Option<(f64, u64)>,
) -> Phase {
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(producers + 1);
    let (histograms, work) = thread::scope(|s| {
        let handles: Vec<_> = (0..producers)
            .map(|p| {
                let (producer, stop, barrier) = (ring.producer(), &stop, &barrier);
                s.spawn(move || {
                    let events = workload::Generator::new(p + 100, 0, TIMESTAMP);
                    let mut h = Histogram::<u64>::new(3).expect("histogram");
                    barrier.wait();
                    let start = Instant::now();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // Pace: event i is due at start + i / rate.
                        if i.is_multiple_of(32) {
                            let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
                            let now = Instant::now();
                            if due > now {
                                thread::sleep(due - now);
                            }
                        }
                        let event = workload::into_event(events.event(i));
                        let t = Instant::now();
                        producer.push(event).expect("push");
                        h.record(t.elapsed().as_nanos() as u64).expect("record");
                        i += 1;
                    }
                    h
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let work = work();
        if let Some(rest) = min.checked_sub(started.elapsed()) {
            thread::sleep(rest);
        }
        stop.store(true, Ordering::Relaxed);
        let hs: Vec<Histogram<u64>> = handles
            .into_iter()
            .map(|h| h.join().expect("producer"))
            .collect();
        (hs, work)
    });
    let mut latency = Histogram::<u64>::new(3).expect("histogram");
    for h in &histograms {
        latency.add(h).expect("add");
    }
    Phase {
        name,
        pushes: latency.len(),
        latency,
        work,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo bench` asks every bench target for its list; this one has no criterion
        // benchmarks to list.
        return;
    }
    let producers: usize = arg(&args, "--producers", 2);
    let rate: u64 = arg(&args, "--rate", 100_000);
    let json = args.iter().any(|a| a == "--json");

    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("audit");
    let ring = Ring::builder(&dir)
        .durability(Durability::None)
        .open()
        .expect("open");
    // 1 GiB of records, from four generators.
    let events: Vec<_> = (0..4)
        .map(|p| workload::Generator::new(p, 0, TIMESTAMP))
        .collect();
    let mut i = 0u64;
    let mut bytes = 0u64;
    while bytes < GIB {
        for _ in 0..100_000 {
            let e = events[(i % 4) as usize].event(i / 4);
            ring.push(workload::into_event(e)).expect("push");
            i += 1;
        }
        ring.flush().expect("flush");
        bytes = ring
            .snapshot()
            .segments()
            .expect("segments")
            .iter()
            .map(|s| s.record_bytes)
            .sum();
    }
    let exported = ring.snapshot().head_seq();
    eprintln!(
        "log: {exported} events, {:.2} GiB of records; {producers} producers at {rate} events/s each",
        bytes as f64 / GIB as f64
    );

    let out = tmp.path().join("export");
    let export = || {
        let snapshot = ring.snapshot();
        let t = Instant::now();
        let m = snapshot
            .export(
                &out,
                ExportOptions::new()
                    .selection(Selection::Seqs {
                        from: Some(1),
                        to: Some(exported),
                    })
                    .encoding(Encoding::Bundle)
                    .force(true),
            )
            .expect("export");
        Some((t.elapsed().as_secs_f64(), m.files[0].bytes))
    };
    // A first export, unmeasured, to size the phases (and to have the page cache warm).
    let (seconds, _) = export().expect("export");
    let min = Duration::from_secs_f64(seconds.max(3.0));
    let phases = [
        phase("idle", &ring, producers, rate, min, || None),
        phase("export", &ring, producers, rate, min, export),
        phase("verify", &ring, producers, rate, min, || {
            let t = Instant::now();
            let r = auditring::verify(&dir, auditring::VerifyOptions::default()).expect("verify");
            assert!(r.is_ok());
            Some((t.elapsed().as_secs_f64(), r.record_bytes))
        }),
    ];
    ring.close().expect("close");

    if json {
        let rows: Vec<serde_json::Value> = phases
            .iter()
            .map(|p| {
                serde_json::json!({
                    "phase": p.name,
                    "pushes": p.pushes,
                    "p50_ns": p.latency.value_at_quantile(0.5),
                    "p99_ns": p.latency.value_at_quantile(0.99),
                    "p999_ns": p.latency.value_at_quantile(0.999),
                    "max_ns": p.latency.max(),
                    "work_seconds": p.work.map(|w| w.0),
                    "work_mb_per_sec": p.work.map(|(s, b)| b as f64 / s / 1e6),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "producers": producers, "rate": rate, "phases": rows })
        );
        return;
    }
    println!(
        "{:<8} {:>10} {:>9} {:>9} {:>9} {:>11} {:>16}",
        "phase", "pushes", "p50 ns", "p99 ns", "p99.9 ns", "max ns", "concurrent work"
    );
    for p in &phases {
        let work = p.work.map_or(String::new(), |(s, b)| {
            format!("{:.2} s, {:.0} MB/s", s, b as f64 / s / 1e6)
        });
        println!(
            "{:<8} {:>10} {:>9} {:>9} {:>9} {:>11} {:>16}",
            p.name,
            p.pushes,
            p.latency.value_at_quantile(0.5),
            p.latency.value_at_quantile(0.99),
            p.latency.value_at_quantile(0.999),
            p.latency.max(),
            work
        );
    }
}
