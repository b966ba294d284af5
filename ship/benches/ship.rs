//! Does shipping keep up with the ring? In each run, two producers write a log at the ring's
//! full rate (about 200-byte events, nothing synced) until it has `--segments` sealed segments
//! of 16 MiB; then one pass ships them to a filesystem store (`file://`, on the same disk)
//! and, when `AUDITRING_TEST_S3` names a bucket (`scripts/s3-tests.sh` sets one up on
//! 127.0.0.1), to an S3 API. Rates are in MB/s of segment files; the table gives the median of
//! the runs and the median of the per-run ratios of shipping to writing.
//!
//! ```text
//! cargo bench -p auditring-ship --bench ship
//! scripts/s3-tests.sh cargo bench -p auditring-ship --bench ship -- --runs 3 --segments 8
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use auditring::{Durability, Event, Ring};
use auditring_ship::{Remote, Shipper};

const SEGMENT: u64 = 16 << 20;
const PRODUCERS: u64 = 2;

fn event(p: u64, i: u64) -> Event {
    Event::new("bench.ship")
        .with_actor(format!("producer-{p}"))
        .with_trace_id(format!("{i:032x}"))
        .with_details_json(format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(80)))
        .expect("a valid event")
}

/// Writes a log of `segments` sealed segments into `dir`; returns its bytes per second.
fn write(dir: &Path, segments: usize) -> (f64, u64) {
    let ring = Arc::new(
        Ring::builder(dir)
            .segment_size(SEGMENT)
            .durability(Durability::None)
            .open()
            .expect("open"),
    );
    let start = Instant::now();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let ring = ring.clone();
            std::thread::spawn(move || {
                let producer = ring.producer();
                let mut i = 0;
                loop {
                    for _ in 0..10_000 {
                        producer.push(event(p, i)).expect("push");
                        i += 1;
                    }
                    if ring.snapshot().segment_count() > segments {
                        return;
                    }
                }
            })
        })
        .collect();
    for p in producers {
        p.join().expect("a producer panicked");
    }
    let took = start.elapsed().as_secs_f64();
    let snap = ring.snapshot();
    let bytes: u64 = (snap.segments().expect("segments").iter())
        .filter(|s| s.sealed)
        .map(|s| s.file_bytes)
        .sum();
    Arc::into_inner(ring)
        .expect("producers done")
        .close()
        .expect("close");
    (bytes as f64 / took, bytes)
}

/// Ships the log in `dir` to `url` in one pass; returns bytes per second.
fn ship(dir: &Path, url: &str) -> f64 {
    let shipper = Shipper::new(Remote::open(url).expect("the store"));
    let start = Instant::now();
    let report = shipper.ship(dir).expect("ship");
    let took = start.elapsed().as_secs_f64();
    assert!(report.already_there == 0 && report.bytes > 0, "{report:?}");
    report.bytes as f64 / took
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut runs = 3;
    let mut segments = 8;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--segments" => {
                segments = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--segments N");
            }
            "--bench" => {}
            other => panic!("unknown argument {other}: --runs N, --segments N"),
        }
    }
    let s3 = std::env::var("AUDITRING_TEST_S3").ok();
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ship-bench");
    let (mut written, mut to_file, mut to_s3) = (Vec::new(), Vec::new(), Vec::new());
    let (mut file_ratio, mut s3_ratio) = (Vec::new(), Vec::new());
    for run in 0..runs {
        let _ = std::fs::remove_dir_all(&scratch);
        let dir = scratch.join("log");
        let (rate, bytes) = write(&dir, segments);
        let file = ship(
            &dir,
            &format!("file://{}/store/run-{run}", scratch.display()),
        );
        eprintln!(
            "run {run}: wrote {:.0} MB at {:.0} MB/s; shipped to file:// at {:.0} MB/s",
            bytes as f64 / 1e6,
            rate / 1e6,
            file / 1e6
        );
        written.push(rate);
        to_file.push(file);
        file_ratio.push(file / rate);
        if let Some(bucket) = &s3 {
            let url = format!("{bucket}/bench-{}-{run}", std::process::id());
            let s3 = ship(&dir, &url);
            eprintln!("run {run}: shipped to {url} at {:.0} MB/s", s3 / 1e6);
            to_s3.push(s3);
            s3_ratio.push(s3 / rate);
        }
    }
    println!("\n{segments} segments of 16 MiB per run, median of {runs} runs\n");
    println!("| | MB/s | shipping / writing |");
    println!("| --- | --- | --- |");
    println!(
        "| the ring writing ({PRODUCERS} producers) | {:.0} | |",
        median(written) / 1e6
    );
    println!(
        "| shipping to a filesystem store | {:.0} | {:.2}x |",
        median(to_file) / 1e6,
        median(file_ratio)
    );
    if !to_s3.is_empty() {
        println!(
            "| shipping to S3 on 127.0.0.1 | {:.0} | {:.2}x |",
            median(to_s3) / 1e6,
            median(s3_ratio)
        );
    }
}
