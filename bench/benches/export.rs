//! Checking and exporting a log: `verify`, `export` and `verify_export` over a log of 1,000,000
//! demo events (about 200 bytes each, 290 MB of records), against the raw cost of the same
//! bytes measured in the same run.
//!
//! * `verify/auditring`: `auditring::verify` of the whole log (every leaf and chain hash, every
//!   byte that must be zero), in events per second.
//! * `verify/sha256_one_pass`: one SHA-256 over every segment file, on one thread, as
//!   `sha256sum` would: the floor a single-threaded checker of the same bytes cannot beat.
//! * `export/bundle`, `export/jsonl`: `Snapshot::export` of every record (written, synced,
//!   renamed), in bytes of the data file written per second.
//! * `export/copy_files`: copying the segment files and syncing the copies: the raw I/O of
//!   writing the same amount of data.
//! * `verify_export/bundle`, `verify_export/jsonl`: `verify_export` of those exports, in events
//!   per second.
//!
//! Run with `cargo bench --bench export` (about two minutes on two cores). The log lives in the
//! page cache (the machine has far more memory than it needs), so these are CPU and memory
//! figures, plus the syncs an export makes.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use auditring::{
    Durability, Encoding, ExportOptions, Ring, Selection, VerifyExportOptions, verify_export,
};
use auditring_bench::workload;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

// The allocator of the command-line tool, so that these figures and the CLI's agree.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Origin time of the demo events.
const TIMESTAMP: i64 = 1_700_000_000_000_000_000;
const EVENTS: u64 = 1_000_000;

/// Writes `EVENTS` demo events (from four generators, as four producers would) into `dir`.
fn build_log(dir: &Path) {
    let ring = Ring::builder(dir)
        .durability(Durability::None)
        .open()
        .expect("open ring");
    let events: Vec<_> = (0..4)
        .map(|p| workload::Generator::new(p, 0, TIMESTAMP))
        .collect();
    for i in 0..EVENTS {
        let e = events[(i % 4) as usize].event(i / 4);
        ring.push(workload::into_event(e)).expect("push");
    }
    ring.close().expect("close");
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

fn file_bytes(files: &[PathBuf]) -> u64 {
    files
        .iter()
        .map(|f| f.metadata().expect("metadata").len())
        .sum()
}

fn options(encoding: Encoding) -> ExportOptions<'static> {
    ExportOptions::new()
        .selection(Selection::All)
        .encoding(encoding)
        .force(true)
}

fn checks(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let log = tmp.path().join("audit");
    build_log(&log);
    let files = segment_files(&log);
    let snapshot = auditring::Reader::open(&log)
        .expect("reader")
        .snapshot()
        .expect("snapshot");
    assert_eq!(snapshot.len(), EVENTS);

    let mut group = c.benchmark_group("verify");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(EVENTS));
    group.bench_function("auditring", |b| {
        b.iter(|| {
            let report =
                auditring::verify(&log, auditring::VerifyOptions::default()).expect("verify");
            assert!(report.is_ok());
            assert_eq!(report.events, EVENTS);
        });
    });
    group.bench_function("sha256_one_pass", |b| {
        let mut buf = vec![0u8; 1 << 20];
        b.iter(|| {
            let mut hasher = Sha256::new();
            for f in &files {
                let mut file = File::open(f).expect("open");
                loop {
                    let n = file.read(&mut buf).expect("read");
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
            }
            hasher.finalize()
        });
    });
    group.finish();

    // Export sizes, for the byte throughputs: one export of each kind, kept for
    // `verify_export` below.
    let bundle = tmp.path().join("bundle");
    let jsonl = tmp.path().join("jsonl");
    let bundle_bytes = snapshot
        .export(&bundle, options(Encoding::Bundle))
        .expect("export")
        .files[0]
        .bytes;
    let jsonl_bytes = snapshot
        .export(&jsonl, options(Encoding::Jsonl))
        .expect("export")
        .files[0]
        .bytes;

    let mut group = c.benchmark_group("export");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15));
    let out = tmp.path().join("out");
    for (name, encoding, bytes) in [
        ("bundle", Encoding::Bundle, bundle_bytes),
        ("jsonl", Encoding::Jsonl, jsonl_bytes),
    ] {
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function(name, |b| {
            b.iter(|| {
                let m = snapshot.export(&out, options(encoding)).expect("export");
                assert_eq!(m.count, EVENTS);
            });
        });
    }
    group.throughput(Throughput::Bytes(file_bytes(&files)));
    group.bench_function("copy_files", |b| {
        let copies = tmp.path().join("copies");
        std::fs::create_dir_all(&copies).expect("mkdir");
        b.iter(|| {
            for f in &files {
                let to = copies.join(f.file_name().expect("name"));
                std::fs::copy(f, &to).expect("copy");
                File::open(&to).and_then(|c| c.sync_all()).expect("sync");
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("verify_export");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(EVENTS));
    for (name, dir) in [("bundle", &bundle), ("jsonl", &jsonl)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let report =
                    verify_export(dir, VerifyExportOptions::default()).expect("verify_export");
                assert!(report.is_ok());
                assert_eq!(report.events, EVENTS);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, checks);
criterion_main!(benches);
