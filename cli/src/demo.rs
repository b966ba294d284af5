//! `demo`: the main job. Writes a realistic load through the ring from several producer threads,
//! flushes, closes, verifies, and reports throughput and push latency.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::baselines::{Locked, WriteBehind};
use crate::load::{self, Auditring, LATENCY_EVERY, Load, Run};
use crate::{DurabilityArg, Failure, dir_arg};

/// Arguments of `auditring demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Where to write the log: a directory that does not exist, an empty one, or one that an
    /// earlier `demo` made (holding its DEMO file), which is emptied first. Anything else is
    /// refused: a log in use (exit 3), any other directory or log (exit 5).
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
    /// Capacity of the queue between the producers and the sequencer, in events.
    #[arg(long, default_value_t = auditring::DEFAULT_QUEUE_CAPACITY)]
    queue_capacity: usize,
    /// Also run the same workload through the designs auditring replaces (a mutex around
    /// JSON + chain hash + buffered file append, and a write-behind channel into one writer
    /// thread) and report the ratios measured in this run.
    #[arg(long)]
    compare: bool,
    /// Do not verify the log after writing it (to measure the writing alone, as the memory
    /// benchmark does).
    #[arg(long)]
    skip_verify: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The file `demo` writes into every directory it creates (its log, and the baselines' files):
/// only a directory that carries it is ever emptied by a later run.
const MARK: &str = "DEMO";

/// What [`MARK`] holds.
const MARK_TEXT: &str = "made by `auditring demo`, which may empty and reuse this directory\n";

/// The files `demo --compare` writes into `DIR.baselines`.
const BASELINE_FILES: [&str; 2] = ["locked.jsonl", "write-behind.jsonl"];

/// A refusal to touch an existing directory: exit code 5, with the way to proceed.
fn exists(dir: &Path, what: &str) -> Failure {
    Failure {
        code: 5,
        message: format!(
            "{} exists and {what}; demo only reuses a directory it made itself (one holding its \
             {MARK} file) or an empty one: choose another --dir, or remove it yourself",
            dir.display()
        ),
    }
}

/// The names in `dir`, or `None` if it does not exist. Fails with exit code 5 if it exists and
/// is not a directory.
fn entries(dir: &Path) -> Result<Option<Vec<String>>, Failure> {
    match std::fs::metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(format!("{}: {e}", dir.display()))),
        Ok(m) if !m.is_dir() => return Err(exists(dir, "is not a directory")),
        Ok(_) => {}
    }
    let mut names = Vec::new();
    let read = std::fs::read_dir(dir)
        .map_err(|e| failed(format!("{} cannot be read: {e}", dir.display())))?;
    for entry in read {
        let entry = entry.map_err(|e| failed(format!("{}: {e}", dir.display())))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(Some(names))
}

/// Whether every entry is a regular file (a symlink is not followed), and `dir` holds [`MARK`]
/// and otherwise only names `ours` accepts. Lists the others for the message.
fn strangers(dir: &Path, names: &[String], ours: impl Fn(&str) -> bool) -> Vec<String> {
    let mut others: Vec<String> = names
        .iter()
        .filter(|n| {
            let regular = std::fs::symlink_metadata(dir.join(n)).is_ok_and(|m| m.is_file());
            !regular || (n.as_str() != MARK && !ours(n))
        })
        .cloned()
        .collect();
    if !names.iter().any(|n| n == MARK) {
        others.insert(0, format!("no {MARK} file"));
    }
    others
}

/// Whether `name` is one a log uses (docs/FORMAT.md §1).
fn log_name(name: &str) -> bool {
    auditring::storage::is_log_name(name)
}

/// Removes the files `names` from `dir`, [`MARK`] last (a run interrupted here leaves the
/// directory still marked as the demo's).
fn empty(dir: &Path, names: &[String]) -> Result<(), Failure> {
    let order = names
        .iter()
        .filter(|n| n.as_str() != MARK)
        .chain(names.iter().filter(|n| n.as_str() == MARK));
    for name in order {
        std::fs::remove_file(dir.join(name)).map_err(|e| {
            failed(format!(
                "removing {} (a previous demo's file): {e}",
                dir.join(name).display()
            ))
        })?;
    }
    Ok(())
}

/// Makes `dir` ready for a new demo log: absent, empty, or a previous demo's log, which is
/// emptied, holding its writer lock meanwhile. Refuses a log in use (exit 3) and any other
/// directory (exit 5), before changing anything.
fn recreate(dir: &Path) -> Result<(), Failure> {
    let Some(names) = entries(dir)? else {
        return Ok(());
    };
    if names.is_empty() {
        return Ok(());
    }
    // The lock first, so that no writer can take the log between the check and the removal.
    use auditring::storage::Storage;
    let storage = auditring::storage::FsStorage::new(dir);
    let lock = storage.lock(false).map_err(|e| match e {
        auditring::storage::LockError::Held { pid } => Failure {
            code: 3,
            message: format!(
                "{} is a log in use by a writer{}: demo does not touch it; choose another --dir",
                dir.display(),
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
        },
        e => failed(format!("{}: {e}", dir.display())),
    })?;
    let others = strangers(dir, &names, log_name);
    if !others.is_empty() {
        return Err(exists(
            dir,
            &format!("is not a demo log (it holds {})", others.join(", ")),
        ));
    }
    empty(dir, &names)?;
    drop(lock);
    Ok(())
}

/// Refuses (exit 5) a baselines directory that a previous demo did not leave.
fn check_baselines(dir: &Path) -> Result<(), Failure> {
    if let Some(names) = entries(dir)?
        && !names.is_empty()
    {
        let others = strangers(dir, &names, |n| BASELINE_FILES.contains(&n));
        if !others.is_empty() {
            return Err(exists(
                dir,
                &format!(
                    "is not a demo's baselines directory (it holds {})",
                    others.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Writes [`MARK`] into `dir`, which demo has just made.
fn mark(dir: &Path) -> Result<(), Failure> {
    let path = dir.join(MARK);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, MARK_TEXT.as_bytes()));
    written.map_err(|e| failed(format!("writing {}: {e}", path.display())))
}

fn failed(message: String) -> Failure {
    Failure { code: 4, message }
}

/// The same workload through the designs auditring replaces, in files under `dir`.
fn baselines(load: &Load, dir: &Path) -> Result<(Run, Run), Failure> {
    check_baselines(dir)?;
    if let Some(names) = entries(dir)? {
        empty(dir, &names)?;
    }
    std::fs::create_dir_all(dir).map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
    mark(dir)?;
    let io = |e: std::io::Error| failed(format!("baseline: {e}"));
    let locked = Locked::open(&dir.join("locked.jsonl")).map_err(io)?;
    let locked = load::drive(load, locked).map_err(failed)?;
    let behind = WriteBehind::open(&dir.join("write-behind.jsonl")).map_err(io)?;
    let behind = load::drive(load, behind).map_err(failed)?;
    // Only what this run wrote, and the directory if nothing else appeared in it.
    for name in BASELINE_FILES.iter().chain([&MARK]) {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let _ = std::fs::remove_dir(dir);
    Ok((locked, behind))
}

/// Runs `auditring demo`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    if args.producers == 0 {
        return Err(Failure::input("--producers must be at least 1"));
    }
    let baselines_dir = {
        let mut dir = args.dir.clone().into_os_string();
        dir.push(".baselines");
        PathBuf::from(dir)
    };
    if args.compare {
        check_baselines(&baselines_dir)?;
    }
    recreate(&args.dir)?;
    let ring = auditring::Ring::builder(&args.dir)
        .durability(args.durability.policy())
        .segment_size(args.segment_size)
        .queue_capacity(args.queue_capacity)
        .open()?;
    mark(&args.dir)?;
    let load = Load {
        producers: args.producers,
        events: args.events,
        event_size: args.event_size,
        timestamp: auditring_now(),
    };
    let ours = load::drive(&load, Auditring::new(&ring, false)).map_err(failed)?;
    let snap = ring.snapshot();
    let (head_seq, head) = (snap.head_seq(), snap.head());
    drop(snap);
    let closing = Instant::now();
    ring.close()?;
    let close_seconds = closing.elapsed().as_secs_f64();
    // Writing, closing: before verification and the comparisons allocate anything.
    let peak_rss = peak_rss_bytes();
    let verifying = Instant::now();
    let report = if args.skip_verify {
        None
    } else {
        Some(auditring::verify(
            &args.dir,
            auditring::VerifyOptions::default(),
        )?)
    };
    let verify_seconds = verifying.elapsed().as_secs_f64();
    let verified = report
        .as_ref()
        .map(|r| r.is_ok() && r.events == args.events && r.head == head);
    let compared = if args.compare {
        Some(baselines(&load, &baselines_dir)?)
    } else {
        None
    };

    let q = |p: f64| ours.quantile(p);
    if args.json {
        let mut out = json!({
            "events": args.events,
            "producers": args.producers,
            "event_size": args.event_size,
            "durability": format!("{:?}", args.durability).to_lowercase(),
            "seconds": ours.seconds,
            "events_per_sec": ours.per_sec(args.events),
            "p50_push_ns": q(0.5),
            "p99_push_ns": q(0.99),
            "p999_push_ns": q(0.999),
            "max_push_ns": ours.latency.max(),
            "timed_pushes": ours.latency.len(),
            "head_seq": head_seq,
            "head_hash": head.to_hex(),
            "verified": verified,
            "close_seconds": close_seconds,
            "peak_rss_bytes": peak_rss,
            "verify_seconds": verify_seconds,
            "dir": args.dir,
        });
        if let Some((locked, behind)) = &compared {
            out["compare"] = json!({
                "locked": locked.json(args.events),
                "write_behind": behind.json(args.events),
                "ratio_vs_locked": locked.seconds / ours.seconds,
                "ratio_vs_write_behind": behind.seconds / ours.seconds,
            });
        }
        println!("{out}");
    } else {
        println!(
            "wrote {} events from {} producers in {:.3} s: {:.0} events/s (durability {:?})",
            args.events,
            args.producers,
            ours.seconds,
            ours.per_sec(args.events),
            args.durability
        );
        println!(
            "push latency (every {LATENCY_EVERY}th push, {} timed): p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
            ours.latency.len(),
            q(0.5),
            q(0.99),
            q(0.999),
            ours.latency.max()
        );
        println!("head: seq {head_seq}, hash {head}");
        println!("closed in {close_seconds:.3} s");
        if let Some(bytes) = peak_rss {
            println!(
                "peak resident memory while writing: {:.1} MB",
                bytes as f64 / 1e6
            );
        }
        match report {
            None => println!("not verified (--skip-verify)"),
            Some(report) => match &report.failure {
                None if verified == Some(true) => println!(
                    "verified {} events in {:.3} s: ok",
                    report.events, verify_seconds
                ),
                None => println!(
                    "verification found {} events and head {}: expected {} and {}",
                    report.events, report.head, args.events, head
                ),
                Some(e) => println!("verification FAILED: {e}"),
            },
        }
        println!("log: {}", args.dir.display());
        if let Some((locked, behind)) = &compared {
            println!("same workload, same run, written as chained JSON lines (not synced):");
            for (name, r) in [
                ("mutex + BufWriter", locked),
                ("write-behind channel", behind),
            ] {
                println!(
                    "  {name:<22} {:>10.0} events/s  p99 push {} ns  auditring is {:.2}x",
                    r.per_sec(args.events),
                    r.latency.value_at_quantile(0.99),
                    r.seconds / ours.seconds
                );
            }
        }
    }
    Ok(u8::from(verified == Some(false)))
}

/// The process's peak resident memory so far, in bytes (`VmHWM` of `/proc/self/status`), where
/// the system reports it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The current time in nanoseconds since the Unix epoch: the origin time of the demo's events.
fn auditring_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
