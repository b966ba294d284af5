//! `bench`: the headline comparison in one run. auditring against the designs it replaces, each
//! as it is usually written and as a careful engineer writes it:
//!
//! * a mutex around JSON + chain hash + buffered append, and the same with the JSON encoded by
//!   the producer *outside* the lock;
//! * a write-behind channel into one writer thread that serializes, chains and appends, and the
//!   same with the producers sending ready bytes (the writer only chains and appends).
//!
//! At 1, 2 and 8 producers, each measured several times with the designs interleaved, so that
//! the machine's drift touches them all alike. The headline ratio is against the strongest of
//! the four in each run.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::baselines::{Locked, LockedEncoded, ReadyBytes, WriteBehind};
use crate::load::{self, Auditring, Load, Run, median};
use crate::{Failure, dir_arg};

/// Arguments of `auditring bench`.
#[derive(clap::Args)]
pub struct Args {
    /// Where the logs are written; created, and removed afterwards. Must not exist.
    #[arg(long, default_value = "./auditring-bench", value_parser = dir_arg)]
    dir: PathBuf,
    /// Producer counts to compare, separated by commas.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 8])]
    producers: Vec<usize>,
    /// Events per run.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Body size of each event in bytes (0: the demo's natural ~200 bytes; below that, compact
    /// events of about 64 bytes).
    #[arg(long, default_value_t = 0)]
    event_size: usize,
    /// Runs of each design at each producer count; the table gives medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// The designs compared, in the table's order: auditring first, then the rivals.
const DESIGNS: [&str; 5] = [
    "auditring",
    "mutex + BufWriter",
    "write-behind",
    "mutex, encoded outside",
    "ready bytes to a writer",
];

/// Runs design `d` (an index into [`DESIGNS`]) once, in files under `dir`.
fn run_design(d: usize, load: &Load, dir: &Path) -> Result<Run, Failure> {
    let failed = |message: String| Failure { code: 4, message };
    let io = |e: std::io::Error| failed(format!("{}: {e}", DESIGNS[d]));
    if d == 0 {
        let path = dir.join("log");
        let ring = auditring::Ring::builder(&path).open()?;
        let run = load::drive(load, Auditring::new(&ring, false)).map_err(failed)?;
        ring.close()?;
        std::fs::remove_dir_all(&path).map_err(io)?;
        return Ok(run);
    }
    let path = dir.join(format!("rival-{d}.jsonl"));
    let run = match d {
        1 => load::drive(load, Locked::open(&path).map_err(io)?),
        2 => load::drive(load, WriteBehind::open(&path).map_err(io)?),
        3 => load::drive(load, LockedEncoded::open(&path).map_err(io)?),
        _ => load::drive(load, ReadyBytes::open(&path).map_err(io)?),
    }
    .map_err(failed)?;
    std::fs::remove_file(&path).map_err(io)?;
    Ok(run)
}

/// Every run of one design at one producer count.
#[derive(Default)]
struct Cell {
    per_sec: Vec<f64>,
    latency: Option<hdrhistogram::Histogram<u64>>,
}

impl Cell {
    fn add(&mut self, run: &Run, events: u64) {
        self.per_sec.push(run.per_sec(events));
        match &mut self.latency {
            Some(h) => h.add(&run.latency).expect("same bounds"),
            None => self.latency = Some(run.latency.clone()),
        }
    }

    fn quantile(&self, q: f64) -> u64 {
        self.latency.as_ref().map_or(0, |h| h.value_at_quantile(q))
    }
}

fn millions(per_sec: f64) -> String {
    format!("{:.2} M/s", per_sec / 1e6)
}

fn micros(ns: u64) -> String {
    if ns < 10_000 {
        format!("{:.2} µs", ns as f64 / 1e3)
    } else {
        format!("{:.0} µs", ns as f64 / 1e3)
    }
}

/// Runs `auditring bench`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    if args.producers.is_empty() || args.producers.contains(&0) {
        return Err(Failure::input("--producers: each count must be at least 1"));
    }
    if args.runs == 0 || args.events == 0 {
        return Err(Failure::input("--runs and --events must be at least 1"));
    }
    std::fs::create_dir(&args.dir).map_err(|e| {
        let message = format!(
            "cannot create {}: {e}{}",
            args.dir.display(),
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                " (choose a --dir that does not exist; it is removed afterwards)"
            } else {
                ""
            }
        );
        Failure {
            code: if e.kind() == std::io::ErrorKind::AlreadyExists {
                5
            } else {
                4
            },
            message,
        }
    })?;
    let result = measure(args);
    let _ = std::fs::remove_dir_all(&args.dir);
    let cells = result?;
    report(args, &cells);
    Ok(0)
}

/// `cells[p][d]`: every run of design `d` at the `p`th producer count.
fn measure(args: &Args) -> Result<Vec<Vec<Cell>>, Failure> {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    let mut cells: Vec<Vec<Cell>> = args
        .producers
        .iter()
        .map(|_| DESIGNS.iter().map(|_| Cell::default()).collect())
        .collect();
    let total = args.runs * args.producers.len() * DESIGNS.len();
    let mut done = 0;
    for r in 0..args.runs {
        for (p, &producers) in args.producers.iter().enumerate() {
            let load = Load {
                producers,
                events: args.events,
                event_size: args.event_size,
                timestamp,
            };
            // Rotate the order from run to run, so that no design always follows another.
            for k in 0..DESIGNS.len() {
                let d = (k + r) % DESIGNS.len();
                let run = run_design(d, &load, &args.dir)?;
                cells[p][d].add(&run, args.events);
                done += 1;
                if !args.json {
                    eprint!("\rmeasuring: {done}/{total} runs");
                }
            }
        }
    }
    if !args.json {
        eprintln!();
    }
    Ok(cells)
}

fn report(args: &Args, cells: &[Vec<Cell>]) {
    // Ratios are medians of the per-run ratios (both designs of a ratio ran back to back).
    let ratio = |c: &[Cell], d: usize| {
        median(
            c[0].per_sec
                .iter()
                .zip(&c[d].per_sec)
                .map(|(a, b)| a / b)
                .collect(),
        )
    };
    // Against the best rival of each run.
    let strongest = |c: &[Cell]| {
        median(
            (0..c[0].per_sec.len())
                .map(|i| c[0].per_sec[i] / c[1..].iter().map(|r| r.per_sec[i]).fold(0.0, f64::max))
                .collect(),
        )
    };
    // The rival with the best median.
    let strongest_name = |c: &[Cell]| {
        (1..DESIGNS.len())
            .max_by(|&a, &b| median(c[a].per_sec.clone()).total_cmp(&median(c[b].per_sec.clone())))
            .unwrap_or(1)
    };
    if args.json {
        let rows: Vec<_> = args
            .producers
            .iter()
            .zip(cells)
            .map(|(&producers, c)| {
                let designs: serde_json::Map<_, _> = DESIGNS
                    .iter()
                    .zip(c)
                    .map(|(name, cell)| {
                        (
                            name.to_string(),
                            json!({
                                "events_per_sec_median": median(cell.per_sec.clone()),
                                "events_per_sec_runs": cell.per_sec,
                                "p50_push_ns": cell.quantile(0.5),
                                "p99_push_ns": cell.quantile(0.99),
                                "p999_push_ns": cell.quantile(0.999),
                                "max_push_ns": cell.latency.as_ref().map_or(0, hdrhistogram::Histogram::max),
                            }),
                        )
                    })
                    .collect();
                json!({
                    "producers": producers,
                    "designs": designs,
                    "ratio_vs_mutex": ratio(c, 1),
                    "ratio_vs_write_behind": ratio(c, 2),
                    "ratio_vs_mutex_encoded_outside": ratio(c, 3),
                    "ratio_vs_ready_bytes": ratio(c, 4),
                    "strongest_rival": DESIGNS[strongest_name(c)],
                    "ratio_vs_strongest": strongest(c),
                })
            })
            .collect();
        println!(
            "{}",
            json!({
                "events": args.events,
                "event_size": args.event_size,
                "runs": args.runs,
                "durability": "none",
                "results": rows,
            })
        );
        return;
    }
    println!(
        "{} events per run, {} runs per cell, durability none; medians (events/s) and ratios measured in this run",
        args.events, args.runs
    );
    println!(
        "{:>9}  {:>11}  {:>17}  {:>12}  {:>22}  {:>23}  {:>11}  push p99.9: auditring / strongest",
        "producers", DESIGNS[0], DESIGNS[1], DESIGNS[2], DESIGNS[3], DESIGNS[4], "vs strongest"
    );
    for (&producers, c) in args.producers.iter().zip(cells) {
        let best = strongest_name(c);
        println!(
            "{:>9}  {:>11}  {:>17}  {:>12}  {:>22}  {:>23}  {:>10.2}x  {} / {}",
            producers,
            millions(median(c[0].per_sec.clone())),
            millions(median(c[1].per_sec.clone())),
            millions(median(c[2].per_sec.clone())),
            millions(median(c[3].per_sec.clone())),
            millions(median(c[4].per_sec.clone())),
            strongest(c),
            micros(c[0].quantile(0.999)),
            micros(c[best].quantile(0.999)),
        );
    }
    println!(
        "vs strongest: auditring's throughput over the best rival's in the same run (median over runs)"
    );
}
