//! auditring against every design it replaces, in the same run: throughput by producer count
//! and by event size, durable throughput, and peak memory. The designs run interleaved (the
//! order rotates from run to run) so that the machine's drift touches them all alike; each
//! ratio is the median of per-run ratios of designs that ran back to back.
//!
//! ```text
//! cargo bench --bench compare                    # every section (about 12 minutes)
//! cargo bench --bench compare -- producers       # one section (or several, by name)
//! cargo bench --bench compare -- producers --runs 5 --events 2000000
//! ```
//!
//! Each section prints a table and writes every run to `target/tmp/compare-SECTION.json`, which
//! `scripts/chart.py` turns into the chart in `docs/`.
//!
//! * `headline`: 2, 8 and 32 producers, ~200-byte events, nothing synced: auditring, with its
//!   records written by `pwrite` of batches and stored through the mapping, against the strong
//!   rivals (JSON encoded outside the lock; ready bytes to one writer) and the usual baselines.
//!   Not in the default set: run it by name.
//! * `writes`: auditring alone, records written by `pwrite` of batches (the default) against
//!   records stored through the mapping, at 2 and 8 producers. Not in the default set either.
//! * `producers`: 1, 2, 8 and 32 producer threads, ~200-byte events, nothing synced.
//! * `sizes`: 2 producers, events of about 64 B, 256 B, 1 KiB and 4 KiB.
//! * `rotations`: push latency of 2 producers with segments of 64, 4 and 1 MiB: about 4, 70
//!   and 280 rotations in a run of 1,000,000 events.
//! * `durable`: 8 producers pushing continuously under group commit (`Durability::Batch`) and
//!   under `Periodic(10 ms)`; then 32 producers each waiting for its own event to be durable
//!   (`push_receipt` under `Batch`), against per-event `fsync` (baseline 5) and the seed-001
//!   pattern (baseline 4); and the same 32 waiting producers under `None`, where the sequencer
//!   completes the receipts without a sync (the cost of waking them, without the disk).
//! * `memory`: peak resident memory of `auditring demo --skip-verify` writing 100 MiB and 2 GiB
//!   of log (the writing alone: verification is measured in `bench/benches/export.rs`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use auditring::{DEFAULT_SEGMENT_SIZE, Durability, RecordWrites, Ring};
use auditring_bench::load::{self, Auditring, Load, Run, median};
use auditring_bench::{baselines, rivals};
use serde_json::json;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Origin time of the events (any fixed, plausible value: the same for every design).
const TIMESTAMP: i64 = 1_700_000_000_000_000_000;

/// A design, as the tables name it.
#[derive(Clone, Copy, Debug)]
enum Rival {
    /// auditring with the given durability; `wait` makes each push wait for its durable
    /// receipt.
    Auditring {
        durability: Durability,
        wait: bool,
    },
    /// auditring without durability, with segments of this many bytes.
    Segments(u64),
    /// auditring with the given durability, its records stored through the mapping instead of
    /// written by one `pwrite` per batch (see `src/write/staging.rs`); `wait` as above.
    Mapped {
        durability: Durability,
        wait: bool,
    },
    /// auditring (none) without the Merkle tree.
    WithoutTree,
    /// auditring (none) with the tree and a signed checkpoint every second.
    Checkpointed,
    /// As `Checkpointed`, and sealing every second (forward-secure sealing).
    Sealed,
    InMemory,
    Locked,
    WriteBehind,
    LockedEncoded,
    ReadyBytes,
    FlockReread,
    FsyncPerEvent,
    SqlitePerEvent,
    SqliteBatched,
    Tracing,
}

impl Rival {
    fn name(self) -> String {
        match self {
            Rival::Auditring { durability, wait } => {
                let d = match durability {
                    Durability::None => "none".to_string(),
                    Durability::Batch => "batch".to_string(),
                    Durability::Periodic(t) => format!("periodic {} ms", t.as_millis()),
                    _ => format!("{durability:?}"),
                };
                if wait {
                    format!("auditring ({d}, each push waits for its receipt)")
                } else {
                    format!("auditring ({d})")
                }
            }
            Rival::Segments(bytes) => format!("auditring (none), {} MiB segments", bytes >> 20),
            Rival::Mapped { durability, wait } => format!(
                "{}, records stored through the mapping",
                Rival::Auditring { durability, wait }.name()
            ),
            Rival::WithoutTree => "auditring (none), no Merkle tree".into(),
            Rival::Checkpointed => "auditring (none), tree + a checkpoint every second".into(),
            Rival::Sealed => "auditring (none), tree + a checkpoint and a seal every second".into(),
            Rival::InMemory => "1 Mutex<Vec>".into(),
            Rival::Locked => "2 mutex + BufWriter".into(),
            Rival::WriteBehind => "3 write-behind".into(),
            Rival::LockedEncoded => "2s mutex, JSON encoded outside".into(),
            Rival::ReadyBytes => "3s ready bytes to a writer".into(),
            Rival::FlockReread => "4 flock + re-read + fsync".into(),
            Rival::FsyncPerEvent => "5 fsync per event".into(),
            Rival::SqlitePerEvent => "6a SQLite commit per event".into(),
            Rival::SqliteBatched => "6b SQLite batches of 1000".into(),
            Rival::Tracing => "7 tracing JSON non-blocking".into(),
        }
    }

    /// Runs the load through a fresh instance in `dir`.
    fn run(self, load: &Load, dir: &Path) -> Result<Run, String> {
        let io = |e: std::io::Error| e.to_string();
        let sql = |e: rusqlite::Error| e.to_string();
        let (durability, wait, segment_size) = match self {
            Rival::Auditring { durability, wait } | Rival::Mapped { durability, wait } => {
                (durability, wait, DEFAULT_SEGMENT_SIZE)
            }
            Rival::Segments(bytes) => (Durability::None, false, bytes),
            _ => (Durability::None, false, DEFAULT_SEGMENT_SIZE),
        };
        let record_writes = match self {
            Rival::Mapped { .. } => RecordWrites::Mapped,
            _ => RecordWrites::Buffered,
        };
        match self {
            Rival::Auditring { .. }
            | Rival::Segments(_)
            | Rival::Mapped { .. }
            | Rival::WithoutTree
            | Rival::Checkpointed
            | Rival::Sealed => {
                let path = dir.join("auditring");
                let mut builder =
                    Ring::builder(&path).merkle_tree(!matches!(self, Rival::WithoutTree));
                if matches!(self, Rival::Sealed) {
                    let state = dir.join("seal.state");
                    let _ = std::fs::remove_file(&state);
                    auditring::SealKey::generate()
                        .and_then(|k| k.write_state(&state))
                        .map_err(|e| e.to_string())?;
                    builder = builder
                        .sealing(auditring::Sealing::new(&state).every(Duration::from_secs(1)));
                }
                if matches!(self, Rival::Checkpointed | Rival::Sealed) {
                    let key = auditring::SigningKey::generate("bench.example/log")
                        .map_err(|e| e.to_string())?;
                    builder = builder.checkpoints(
                        auditring::Checkpoints::new(key)
                            .every(Duration::from_secs(1))
                            .to_dir(dir.join("checkpoints")),
                    );
                }
                let ring = builder
                    .record_writes(record_writes)
                    .durability(durability)
                    .segment_size(segment_size)
                    .queue_capacity(if load.producers > 16 {
                        1 << 16
                    } else {
                        1 << 14
                    })
                    .open()
                    .map_err(|e| e.to_string())?;
                let mut design = Auditring::new(&ring, wait);
                design.seals = matches!(self, Rival::Sealed);
                let run = load::drive(load, design)?;
                ring.close().map_err(|e| e.to_string())?;
                if matches!(self, Rival::Sealed) {
                    // Every event is there, besides the seals (counted after the clock).
                    let snapshot = auditring::Reader::open(&path)
                        .and_then(|r| r.snapshot())
                        .map_err(|e| e.to_string())?;
                    let seals = snapshot
                        .query(&auditring::Query::new().kind(auditring::SEALED_KIND))
                        .map_err(|e| e.to_string())?
                        .len() as u64;
                    if snapshot.head_seq() - seals != load.events {
                        return Err(format!(
                            "the log holds {} events and {seals} seals, not {} events",
                            snapshot.head_seq() - seals,
                            load.events
                        ));
                    }
                }
                std::fs::remove_dir_all(&path).map_err(io)?;
                Ok(run)
            }
            Rival::InMemory => load::drive(load, rivals::InMemory::new()),
            Rival::Locked => load::drive(
                load,
                baselines::Locked::open(&dir.join("locked")).map_err(io)?,
            ),
            Rival::WriteBehind => load::drive(
                load,
                baselines::WriteBehind::open(&dir.join("behind")).map_err(io)?,
            ),
            Rival::LockedEncoded => load::drive(
                load,
                baselines::LockedEncoded::open(&dir.join("locked-encoded")).map_err(io)?,
            ),
            Rival::ReadyBytes => load::drive(
                load,
                baselines::ReadyBytes::open(&dir.join("ready-bytes")).map_err(io)?,
            ),
            Rival::FlockReread => load::drive(
                load,
                rivals::FlockReread::open(&dir.join("seed")).map_err(io)?,
            ),
            Rival::FsyncPerEvent => load::drive(
                load,
                rivals::FsyncPerEvent::open(&dir.join("fsync")).map_err(io)?,
            ),
            Rival::SqlitePerEvent => load::drive(
                load,
                rivals::SqlitePerEvent::open(&dir.join("per-event.db")).map_err(sql)?,
            ),
            Rival::SqliteBatched => load::drive(
                load,
                rivals::SqliteBatched::open(&dir.join("batched.db")).map_err(sql)?,
            ),
            Rival::Tracing => load::drive(load, rivals::TracingJson::open(dir).map_err(io)?),
        }
    }
}

impl Rival {
    /// Whether this design is a log a headline ratio may be taken against: it chains and writes
    /// every event to a file. Not auditring itself, and not `Mutex<Vec>`, which keeps the
    /// events in memory only (a floor for the cost of a lock, not a design that does the job).
    fn is_log_rival(self) -> bool {
        !matches!(
            self,
            Rival::Auditring { .. }
                | Rival::Segments(_)
                | Rival::Mapped { .. }
                | Rival::WithoutTree
                | Rival::Checkpointed
                | Rival::Sealed
                | Rival::InMemory
        )
    }
}

fn mapped(durability: Durability, wait: bool) -> Rival {
    Rival::Mapped { durability, wait }
}

fn none() -> Rival {
    Rival::Auditring {
        durability: Durability::None,
        wait: false,
    }
}

/// One cell of a table: a design at a producer count and event size.
struct Cell {
    rival: Rival,
    producers: usize,
    event_size: usize,
    events: u64,
    runs: Vec<Run>,
}

impl Cell {
    fn per_sec(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.per_sec(self.events)).collect()
    }

    /// Push latency over every run.
    fn latency(&self) -> hdrhistogram::Histogram<u64> {
        let mut h = load::histogram();
        for r in &self.runs {
            h.add(&r.latency).expect("same bounds");
        }
        h
    }
}

/// A directory for the logs, emptied before each run.
fn scratch() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    dir
}

/// Runs every cell `runs` times; within a run the order of the cells that share a producer
/// count and size rotates.
fn measure(section: &str, cells: &mut [Cell], runs: usize) {
    let dir = scratch();
    let total = runs * cells.len();
    let mut done = 0;
    let groups = group_bounds(cells);
    for r in 0..runs {
        for &(a, b) in &groups {
            let n = b - a;
            for k in 0..n {
                let i = a + (k + r) % n;
                let c = &cells[i];
                let load = Load {
                    producers: c.producers,
                    events: c.events,
                    event_size: c.event_size,
                    timestamp: TIMESTAMP,
                };
                let run = c
                    .rival
                    .run(&load, &dir)
                    .unwrap_or_else(|e| panic!("{} failed: {e}", c.rival.name()));
                for entry in std::fs::read_dir(&dir).expect("list scratch") {
                    let p = entry.expect("entry").path();
                    let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
                }
                cells[i].runs.push(run);
                done += 1;
                eprint!("\r{section}: {done}/{total} runs");
            }
        }
    }
    eprintln!();
    let _ = std::fs::remove_dir_all(&dir);
}

/// `[a, b)` ranges of cells with the same producer count and event size.
fn group_bounds(cells: &[Cell]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut a = 0;
    for i in 1..=cells.len() {
        if i == cells.len()
            || (cells[i].producers, cells[i].event_size)
                != (cells[a].producers, cells[a].event_size)
        {
            out.push((a, i));
            a = i;
        }
    }
    out
}

/// Prints each group's table (ratios against the group's first cell, auditring) and writes
/// every run as JSON.
fn report(section: &str, cells: &[Cell]) {
    let mut rows = Vec::new();
    for (a, b) in group_bounds(cells) {
        let ours = &cells[a];
        println!(
            "\n{section}: {} producers, event size {}, {} runs",
            ours.producers,
            if ours.event_size == 0 {
                "~200 B".to_string()
            } else {
                format!("{} B", ours.event_size)
            },
            ours.runs.len()
        );
        println!(
            "  {:<52} {:>10} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "design", "events/s", "ratio", "p50", "p99", "p99.9", "max"
        );
        for c in &cells[a..b] {
            // auditring's time over the other's, run by run (paired by run number).
            let ratio = median(
                ours.per_sec()
                    .iter()
                    .zip(c.per_sec())
                    .map(|(o, t)| o / t)
                    .collect(),
            );
            let h = c.latency();
            let ns = |v: u64| {
                if v >= 1_000_000 {
                    format!("{:.1} ms", v as f64 / 1e6)
                } else if v >= 10_000 {
                    format!("{:.0} µs", v as f64 / 1e3)
                } else {
                    format!("{:.2} µs", v as f64 / 1e3)
                }
            };
            println!(
                "  {:<52} {:>10} {:>8.2}x {:>9} {:>9} {:>9} {:>10}",
                c.rival.name(),
                format!("{:.3} M", median(c.per_sec()) / 1e6),
                ratio,
                ns(h.value_at_quantile(0.5)),
                ns(h.value_at_quantile(0.99)),
                ns(h.value_at_quantile(0.999)),
                ns(h.max()),
            );
            rows.push(json!({
                "section": section,
                "design": c.rival.name(),
                "producers": c.producers,
                "event_size": c.event_size,
                "events": c.events,
                "events_per_sec_runs": c.per_sec(),
                "events_per_sec_median": median(c.per_sec()),
                "auditring_ratio_median": ratio,
                "p50_push_ns": h.value_at_quantile(0.5),
                "p99_push_ns": h.value_at_quantile(0.99),
                "p999_push_ns": h.value_at_quantile(0.999),
                "max_push_ns": h.max(),
            }));
        }
    }
    for (a, b) in group_bounds(cells) {
        if let Some((name, ratio)) = strongest(&cells[a], &cells[a + 1..b]) {
            println!(
                "{} producers, size {}: auditring / the strongest log design ({name}): {ratio:.2}x",
                cells[a].producers, cells[a].event_size
            );
        }
    }
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("compare-{section}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&rows).expect("json"))
        .expect("write the results");
    println!("\nwritten: {}", path.display());
}

/// The strongest of `others` that is a log ([`Rival::is_log_rival`]), by median throughput, and
/// the median over runs of `ours`'s throughput over the better of the log designs in that run.
fn strongest(ours: &Cell, others: &[Cell]) -> Option<(String, f64)> {
    let logs: Vec<&Cell> = others.iter().filter(|c| c.rival.is_log_rival()).collect();
    let best = logs
        .iter()
        .max_by(|x, y| median(x.per_sec()).total_cmp(&median(y.per_sec())))?;
    let ratios = ours
        .per_sec()
        .iter()
        .enumerate()
        .map(|(run, o)| {
            let best_in_run = logs
                .iter()
                .filter_map(|c| c.per_sec().get(run).copied())
                .fold(0.0, f64::max);
            o / best_in_run
        })
        .collect();
    Some((best.rival.name(), median(ratios)))
}

/// Events per run for a design: the slow ones get fewer, so that each run takes about as long.
fn events_for(rival: Rival, base: u64, event_size: usize) -> u64 {
    // No run writes more than 512 MiB of events.
    let by_size = (512u64 << 20) / event_size.max(200) as u64;
    let n = base.min(by_size);
    match rival {
        Rival::SqlitePerEvent => n / 8,
        Rival::Tracing | Rival::SqliteBatched => n / 2,
        _ => n,
    }
}

fn producers_section(runs: usize, base: u64) {
    let designs = [
        none(),
        Rival::InMemory,
        Rival::Locked,
        Rival::WriteBehind,
        Rival::LockedEncoded,
        Rival::ReadyBytes,
        Rival::SqlitePerEvent,
        Rival::SqliteBatched,
        Rival::Tracing,
    ];
    by_producers("producers", &designs, &[1, 2, 8, 32], runs, base);
}

/// Measures and reports `designs` at each of `producers`, ~200-byte events.
fn by_producers(section: &str, designs: &[Rival], producers: &[usize], runs: usize, base: u64) {
    let mut cells = Vec::new();
    for &producers in producers {
        for &rival in designs {
            cells.push(Cell {
                rival,
                producers,
                event_size: 0,
                events: events_for(rival, base, 0),
                runs: Vec::new(),
            });
        }
    }
    measure(section, &mut cells, runs);
    report(section, &cells);
}

/// The headline: auditring (records written both ways) against the strong rivals and the
/// usual baselines, at 2, 8 and 32 producers.
fn headline_section(runs: usize, base: u64) {
    let designs = [
        none(),
        mapped(Durability::None, false),
        Rival::LockedEncoded,
        Rival::ReadyBytes,
        Rival::Locked,
        Rival::WriteBehind,
    ];
    by_producers("headline", &designs, &[2, 8, 32], runs, base);
}

/// auditring alone, its records written by `pwrite` of batches (the default) and stored
/// through the mapping, interleaved, at 2 and 8 producers.
fn writes_section(runs: usize, base: u64) {
    by_producers(
        "writes",
        &[none(), mapped(Durability::None, false)],
        &[2, 8],
        runs,
        base,
    );
}

/// auditring without the Merkle tree, with it (the default), and with it and a signed
/// checkpoint every second, interleaved, at 2 and 8 producers.
fn tree_section(runs: usize, base: u64) {
    by_producers(
        "tree",
        &[
            Rival::WithoutTree,
            none(),
            Rival::Checkpointed,
            Rival::Sealed,
        ],
        &[2, 8],
        runs,
        base,
    );
}

fn sizes_section(runs: usize, base: u64) {
    let designs = [
        none(),
        Rival::InMemory,
        Rival::Locked,
        Rival::WriteBehind,
        Rival::LockedEncoded,
        Rival::ReadyBytes,
        Rival::SqliteBatched,
        Rival::Tracing,
    ];
    let mut cells = Vec::new();
    for event_size in [64, 256, 1024, 4096] {
        for rival in designs {
            cells.push(Cell {
                rival,
                producers: 2,
                event_size,
                events: events_for(rival, base, event_size),
                runs: Vec::new(),
            });
        }
    }
    measure("sizes", &mut cells, runs);
    report("sizes", &cells);
}

fn rotations_section(runs: usize, base: u64) {
    let mut cells: Vec<Cell> = [64u64 << 20, 4 << 20, 1 << 20]
        .into_iter()
        .map(|bytes| Cell {
            rival: Rival::Segments(bytes),
            producers: 2,
            event_size: 0,
            events: base,
            runs: Vec::new(),
        })
        .collect();
    measure("rotations", &mut cells, runs);
    report("rotations", &cells);
}

fn durable_section(runs: usize, base: u64) {
    let batch = |wait| Rival::Auditring {
        durability: Durability::Batch,
        wait,
    };
    let mut cells = vec![
        Cell {
            rival: batch(false),
            producers: 8,
            event_size: 0,
            events: base,
            runs: Vec::new(),
        },
        Cell {
            rival: Rival::Auditring {
                durability: Durability::Periodic(Duration::from_millis(10)),
                wait: false,
            },
            producers: 8,
            event_size: 0,
            events: base,
            runs: Vec::new(),
        },
        Cell {
            rival: none(),
            producers: 8,
            event_size: 0,
            events: base,
            runs: Vec::new(),
        },
        Cell {
            rival: mapped(Durability::Batch, false),
            producers: 8,
            event_size: 0,
            events: base,
            runs: Vec::new(),
        },
        Cell {
            rival: batch(true),
            producers: 32,
            event_size: 0,
            events: (base / 10).max(32),
            runs: Vec::new(),
        },
        Cell {
            rival: Rival::Auditring {
                durability: Durability::None,
                wait: true,
            },
            producers: 32,
            event_size: 0,
            events: (base / 10).max(32),
            runs: Vec::new(),
        },
        Cell {
            rival: mapped(Durability::Batch, true),
            producers: 32,
            event_size: 0,
            events: (base / 10).max(32),
            runs: Vec::new(),
        },
        Cell {
            rival: Rival::FsyncPerEvent,
            producers: 32,
            event_size: 0,
            events: (base / 500).max(32),
            runs: Vec::new(),
        },
        Cell {
            rival: Rival::FlockReread,
            producers: 32,
            event_size: 0,
            events: (base / 1000).max(32),
            runs: Vec::new(),
        },
    ];
    measure("durable", &mut cells, runs);
    report("durable", &cells);
    // The bound on 32 producers that each wait for their own durable receipt: at best every
    // msync releases all 32 at once, so they cannot go faster than 32 events per msync.
    let msync = msync_latency(&scratch(), 300).expect("time msync");
    let bound = 32.0 / msync.as_secs_f64();
    println!(
        "\ndurable: one msync of a ~9 KB batch took {:.0} µs (median of 300, this run), so 32 \
         waiting producers are bounded by 32 / msync = {bound:.0} events/s",
        msync.as_secs_f64() * 1e6,
    );
    for waiting in cells.iter().filter(|c| {
        matches!(
            c.rival,
            Rival::Auditring {
                durability: Durability::Batch,
                wait: true
            } | Rival::Mapped {
                durability: Durability::Batch,
                wait: true
            }
        )
    }) {
        let got = median(waiting.per_sec());
        println!(
            "  {}: {got:.0} events/s, {:.0}% of the bound",
            waiting.rival.name(),
            100.0 * got / bound
        );
    }
    let _ = std::fs::remove_dir_all(scratch());
}

/// The median time of one `msync` of a small batch, as the committer makes it: a 16 MiB file
/// preallocated and mapped as a segment is, then `times` times ~9 KB written (32 records of
/// ~290 bytes) and a word of the header page, and the written prefix synced with one `msync`
/// (what `scripts/msync_latency.py` measures, in the same run as the figures it bounds).
fn msync_latency(dir: &Path, times: usize) -> std::io::Result<Duration> {
    use std::os::fd::AsRawFd;

    const SIZE: usize = 16 << 20;
    const BATCH: usize = 32 * 290;
    let path = dir.join("msync-latency.bin");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    // SAFETY: plain system calls on a descriptor that stays open for the whole function; the
    // mapping is used only within its bounds and unmapped before the file is closed.
    unsafe {
        let rc = libc::posix_fallocate(file.as_raw_fd(), 0, SIZE as libc::off_t);
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        let map = libc::mmap(
            std::ptr::null_mut(),
            SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = map.cast::<u8>();
        let mut samples = Vec::with_capacity(times);
        let mut offset = 4096;
        for i in 0..times {
            if offset + BATCH > SIZE {
                break;
            }
            std::ptr::write_bytes(base.add(offset), b'x', BATCH);
            std::ptr::copy_nonoverlapping((i as u64).to_le_bytes().as_ptr(), base, 8);
            let end = (offset + BATCH).next_multiple_of(4096);
            let start = std::time::Instant::now();
            if libc::msync(map, end, libc::MS_SYNC) != 0 {
                let e = std::io::Error::last_os_error();
                libc::munmap(map, SIZE);
                return Err(e);
            }
            samples.push(start.elapsed());
            offset += BATCH;
        }
        libc::munmap(map, SIZE);
        samples.sort();
        drop(file);
        std::fs::remove_file(&path)?;
        Ok(samples[samples.len() / 2])
    }
}

/// Peak resident memory of a child `auditring demo` writing about `bytes` of log, as the demo
/// reports it (`VmHWM` after writing and closing: the mapping of the new program only; a
/// child's `ru_maxrss` would also count the memory of this process, which it starts as).
fn demo_peak_rss(bytes: u64, durability: &str, dir: &Path) -> u64 {
    // A demo event takes about 280 bytes in a segment (record header, body, padding).
    let events = bytes / 280;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_auditring"))
        .args([
            "demo",
            "--json",
            "--skip-verify",
            "--events",
            &events.to_string(),
        ])
        .args(["--durability", durability])
        .arg("--dir")
        .arg(dir.join("demo"))
        .output()
        .expect("run auditring demo");
    assert!(out.status.success(), "auditring demo failed: {out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("demo json");
    assert_eq!(v["head_seq"], events, "{v}");
    let _ = std::fs::remove_dir_all(dir.join("demo"));
    v["peak_rss_bytes"]
        .as_u64()
        .expect("peak_rss_bytes (Linux /proc)")
}

fn memory_section(runs: usize) {
    let dir = scratch();
    let mut rows = Vec::new();
    println!("\nmemory: peak resident memory of `auditring demo`, median of {runs} runs");
    println!(
        "  {:<10} {:>16} {:>16} {:>8}",
        "durability", "100 MiB of log", "2 GiB of log", "ratio"
    );
    for durability in ["none", "periodic", "batch"] {
        let mut small = Vec::new();
        let mut large = Vec::new();
        for _ in 0..runs {
            small.push(demo_peak_rss(100 << 20, durability, &dir) as f64);
            large.push(demo_peak_rss(2 << 30, durability, &dir) as f64);
            eprint!(".");
        }
        let (s, l) = (median(small.clone()), median(large.clone()));
        println!(
            "  {:<10} {:>13.1} MB {:>13.1} MB {:>7.2}x",
            durability,
            s / 1e6,
            l / 1e6,
            l / s
        );
        rows.push(json!({
            "durability": durability,
            "peak_rss_100mib_runs": small,
            "peak_rss_2gib_runs": large,
            "ratio": l / s,
        }));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("compare-memory.json");
    std::fs::write(&path, serde_json::to_string_pretty(&rows).expect("json"))
        .expect("write the results");
    println!("\nwritten: {}", path.display());
}

fn main() {
    let mut sections = Vec::new();
    let mut runs = 3;
    let mut events = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--events" => {
                events = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--events N");
            }
            // What cargo bench passes to every harness.
            "--bench" => {}
            s if s.starts_with('-') => panic!("unknown option {s}"),
            s => sections.push(s.to_string()),
        }
    }
    if sections.is_empty() {
        sections = ["producers", "sizes", "rotations", "durable", "memory"]
            .map(String::from)
            .to_vec();
    }
    for s in &sections {
        match s.as_str() {
            "headline" => headline_section(runs, events),
            "writes" => writes_section(runs, events),
            "tree" => tree_section(runs, events),
            "producers" => producers_section(runs, events),
            "sizes" => sizes_section(runs, events),
            "durable" => durable_section(runs, events),
            "rotations" => rotations_section(runs, events),
            "memory" => memory_section(runs),
            other => {
                panic!(
                    "unknown section {other}: headline, writes, tree, producers, sizes, rotations, \
                     durable, memory"
                )
            }
        }
    }
}
