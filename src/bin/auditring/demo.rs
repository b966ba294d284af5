//! `demo`: the main job. Writes a realistic load through the ring from several producer threads,
//! flushes, closes, verifies, and reports throughput and push latency.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use hdrhistogram::Histogram;
use serde_json::json;

use crate::{DurabilityArg, Failure, dir_arg, workload};

/// Arguments of `auditring demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the log; recreated on every run.
    #[arg(long, default_value = "./auditring-demo", value_parser = dir_arg)]
    dir: PathBuf,
    /// Number of events in all.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Number of producer threads.
    #[arg(long, default_value_t = 2)]
    producers: usize,
    /// Size of each encoded event in bytes (0: the natural ~200 bytes of the demo event).
    #[arg(long, default_value_t = 0)]
    event_size: usize,
    /// When events are synced.
    #[arg(long, value_enum, default_value = "none")]
    durability: DurabilityArg,
    /// Size of each segment file, in bytes.
    #[arg(long, default_value_t = auditring::DEFAULT_SEGMENT_SIZE)]
    segment_size: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Every this many pushes, one is timed: reading the clock twice costs about as much as a
/// tenth of a push, and a systematic sample gives the same distribution.
const LATENCY_EVERY: u64 = 4;

/// Removes a previous demo log, refusing to touch a directory that holds anything else.
fn recreate(dir: &Path) -> Result<(), Failure> {
    if dir.exists() {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Failure::input(format!("{} cannot be read: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| Failure::input(format!("{}: {e}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name == "LOCK"
                || (name.ends_with(".seg") && name.len() == 20)
                || (name.starts_with('.') && name.ends_with(".seg.tmp"));
            if !ours {
                return Err(Failure::input(format!(
                    "{} exists and holds {name:?}, which is not part of an auditring log; \
                     choose another --dir",
                    dir.display()
                )));
            }
        }
        std::fs::remove_dir_all(dir).map_err(|e| Failure {
            code: 4,
            message: format!("removing the previous demo log {}: {e}", dir.display()),
        })?;
    }
    Ok(())
}

/// Runs `auditring demo`.
pub fn run(args: Args) -> Result<u8, Failure> {
    if args.producers == 0 {
        return Err(Failure::input("--producers must be at least 1"));
    }
    recreate(&args.dir)?;
    let ring = auditring::Ring::builder(&args.dir)
        .durability(args.durability.policy())
        .segment_size(args.segment_size)
        .open()?;
    let start = Arc::new(Barrier::new(args.producers + 1));
    let timestamp = auditring_now();
    let threads: Vec<_> = (0..args.producers)
        .map(|p| {
            let producer = ring.producer();
            let start = start.clone();
            let share = args.events / args.producers as u64
                + u64::from((p as u64) < args.events % args.producers as u64);
            let events = workload::Generator::new(p, args.event_size, timestamp);
            thread::spawn(move || -> Result<Histogram<u64>, String> {
                let mut latency =
                    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
                start.wait();
                for i in 0..share {
                    let event = workload::into_event(events.event(i));
                    if i % LATENCY_EVERY == 0 {
                        let t = Instant::now();
                        producer.push(event).map_err(|e| e.to_string())?;
                        latency.saturating_record(t.elapsed().as_nanos() as u64);
                    } else {
                        producer.push(event).map_err(|e| e.to_string())?;
                    }
                }
                Ok(latency)
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("bounds");
    for t in threads {
        let h = t
            .join()
            .map_err(|_| Failure {
                code: 4,
                message: "a producer thread panicked".into(),
            })?
            .map_err(|e| Failure {
                code: 4,
                message: format!("push failed: {e}"),
            })?;
        latency.add(&h).expect("same bounds");
    }
    ring.flush()?;
    let seconds = began.elapsed().as_secs_f64();
    let snap = ring.snapshot();
    let (head_seq, head) = (snap.head_seq(), snap.head());
    drop(snap);
    let closing = Instant::now();
    ring.close()?;
    let close_seconds = closing.elapsed().as_secs_f64();
    let verifying = Instant::now();
    let report = auditring::verify(&args.dir)?;
    let verify_seconds = verifying.elapsed().as_secs_f64();
    let verified = report.is_ok() && report.events == args.events && report.head == head;
    let per_sec = args.events as f64 / seconds;
    let q = |p: f64| latency.value_at_quantile(p);
    if args.json {
        let out = json!({
            "events": args.events,
            "producers": args.producers,
            "event_size": args.event_size,
            "durability": format!("{:?}", args.durability).to_lowercase(),
            "seconds": seconds,
            "events_per_sec": per_sec,
            "p50_push_ns": q(0.5),
            "p99_push_ns": q(0.99),
            "p999_push_ns": q(0.999),
            "max_push_ns": latency.max(),
            "timed_pushes": latency.len(),
            "head_seq": head_seq,
            "head_hash": head.to_hex(),
            "verified": verified,
            "close_seconds": close_seconds,
            "verify_seconds": verify_seconds,
            "dir": args.dir,
        });
        println!("{out}");
    } else {
        println!(
            "wrote {} events from {} producers in {:.3} s: {:.0} events/s (durability {:?})",
            args.events, args.producers, seconds, per_sec, args.durability
        );
        println!(
            "push latency (every {LATENCY_EVERY}th push, {} timed): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
            latency.len(),
            q(0.5),
            q(0.99),
            q(0.999),
            latency.max()
        );
        println!("head: seq {head_seq}, hash {head}");
        println!("closed in {close_seconds:.3} s");
        match &report.failure {
            None if verified => println!(
                "verified {} events in {:.3} s: ok",
                report.events, verify_seconds
            ),
            None => println!(
                "verification found {} events and head {}: expected {} and {}",
                report.events, report.head, args.events, head
            ),
            Some(e) => println!("verification FAILED: {e}"),
        }
        println!("log: {}", args.dir.display());
    }
    Ok(if verified { 0 } else { 1 })
}

/// The current time in nanoseconds since the Unix epoch: the origin time of the demo's events.
fn auditring_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
