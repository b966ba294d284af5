//! `verify` and `stat`: reading a log without writing it.

use std::path::PathBuf;

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use auditring::IntegrityError;

use crate::progress::Progress;
use crate::views::with_snapshot;
use crate::{Failure, dir_arg};

/// Arguments of `auditring verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The log directory, or the URL of a log shipped to object storage.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// The URL is a fleet's prefix: verify each host's log under it (each sub-prefix that
    /// holds segments), printing a line per host; exit code 1 if any fails.
    #[arg(long)]
    hosts: bool,
    #[command(flatten)]
    trust: crate::tlog::TrustArgs,
    /// Check every seal record against this initial sealing key (a file written by
    /// `auditring seal-keygen --key`), and say how far the log is sealed.
    #[arg(long)]
    seal_key: Option<PathBuf>,
    /// Fail unless the log holds a seal for this epoch or a later one (the last epoch an
    /// earlier verification reported): catches seals cut from the end.
    #[arg(long, requires = "seal_key")]
    expect_epoch: Option<u64>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `auditring stat`.
#[derive(clap::Args)]
pub struct StatArgs {
    /// The log directory.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// RFC 3339 text of a nanosecond timestamp.
pub fn rfc3339(nanos: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{nanos}ns"))
}

/// An integrity failure in `--json` output (`null` for none).
pub fn failure_json(error: Option<&IntegrityError>) -> serde_json::Value {
    error.map_or(serde_json::Value::Null, |e| {
        json!({
            "seq": e.seq,
            "file": e.file,
            "offset": e.offset,
            "reason": e.reason.to_string(),
        })
    })
}

/// The exit code of a check: 0, or 1 with the failure on stderr.
pub fn check_exit(error: Option<&IntegrityError>) -> u8 {
    match error {
        None => 0,
        Some(e) => {
            eprintln!("auditring: integrity failure: {e}");
            1
        }
    }
}

/// Runs `auditring verify`.
pub fn verify(args: &VerifyArgs) -> Result<u8, Failure> {
    let trust = args.trust.read()?;
    let bar = Progress::new("verifying", "bytes");
    let mut update = |done, total| bar.update(done, total);
    let mut options = auditring::VerifyOptions::new().progress(&mut update);
    options = crate::tlog::with_trust!(options, trust);
    if let Some(path) = &args.seal_key {
        options = options.seal_key(crate::seal::read_key(path)?);
    }
    if let Some(epoch) = args.expect_epoch {
        options = options.expect_epoch(epoch);
    }
    let report = match crate::ship::url_of(&args.dir) {
        Some(url) => {
            let remote = auditring_ship::Remote::open(url)?;
            if args.hosts {
                drop(bar);
                return verify_fleet(&remote, args.json);
            }
            auditring_ship::verify_remote(&remote, options)?
        }
        None if args.hosts => {
            return Err(Failure::input(format!(
                "--hosts: {} is not a URL (a fleet's logs are verified in their store)",
                args.dir.display()
            )));
        }
        None => auditring::verify(&args.dir, options)?,
    };
    drop(bar);
    let error = report.failure.as_ref();
    if args.json {
        let out = json!({
            "ok": report.is_ok(),
            "events": report.events,
            "first_seq": report.first_seq,
            "last_seq": report.last_seq,
            "head_hash": report.head.to_hex(),
            "segments": report.segments,
            "record_bytes": report.record_bytes,
            "torn_tail": report.torn_tail,
            "notes": report.notes,
            "foreign_files": report.foreign_files,
            "tree_root": report.tree_root.map(|h| h.to_hex()),
            "checkpoints": report.checkpoints.iter().map(|c| json!({
                "size": c.size,
                "root": c.root.to_hex(),
                "signed_by": c.signed_by,
                "consistent": c.consistent,
            })).collect::<Vec<_>>(),
            "seals": report.seals,
            "error": failure_json(error),
        });
        println!("{out}");
    } else {
        match error {
            None => {
                println!(
                    "ok: {} events, seq {}..{}, {} segments, head {}",
                    report.events, report.first_seq, report.last_seq, report.segments, report.head
                );
                if let Some(largest) = report.checkpoints.iter().map(|c| c.size).max() {
                    println!(
                        "consistent with {} checkpoint(s), the largest of size {largest}",
                        report.checkpoints.len()
                    );
                }
            }
            Some(e) => {
                println!("FAILED: {e}");
                println!(
                    "verified before the failure: {} events, seq {}..{}",
                    report.events, report.first_seq, report.last_seq
                );
            }
        }
        if let Some(s) = &report.seals {
            match s.last_epoch {
                Some(epoch) => println!(
                    "sealed through seq {} (epoch {epoch}{}); {} record(s) after it not sealed",
                    s.sealed_through,
                    s.last_sealed_at
                        .map(|t| format!(", sealed at {}", rfc3339(t)))
                        .unwrap_or_default(),
                    s.unsealed
                ),
                None => println!("no seal: {} record(s) not sealed", s.unsealed),
            }
        }
        if let Some(t) = &report.torn_tail {
            println!(
                "torn tail (left by a crash or a writer still writing; not a failure): {} bytes after seq {} at byte {} of {}",
                t.len,
                t.after_seq,
                t.offset,
                t.file.display()
            );
        }
        for note in &report.notes {
            println!("note: {note}");
        }
        if !report.foreign_files.is_empty() {
            println!(
                "note: files that are not part of the log: {}",
                report.foreign_files.join(", ")
            );
        }
    }
    Ok(check_exit(error))
}

/// `auditring verify URL --hosts`: every host's log under a fleet's prefix, a line each.
fn verify_fleet(remote: &auditring_ship::Remote, json: bool) -> Result<u8, Failure> {
    let reports = auditring_ship::verify_fleet(remote, auditring::VerifyOptions::default)?;
    if reports.is_empty() {
        return Err(Failure::input(format!(
            "{}: no host's log under it (a sub-prefix holding segments)",
            remote.url()
        )));
    }
    let mut failed = 0;
    for host in &reports {
        let line = match &host.result {
            Ok(r) if r.is_ok() => {
                if json {
                    json!({"host": host.host, "url": host.url, "ok": true, "log_id": r.log_id.map(|id| id.to_string()),
                        "events": r.events, "first_seq": r.first_seq, "last_seq": r.last_seq,
                        "head_hash": r.head.to_hex(), "error": null})
                    .to_string()
                } else {
                    format!(
                        "ok      {}: {} events, seq {}..{}, log {}, head {}",
                        host.host,
                        r.events,
                        r.first_seq,
                        r.last_seq,
                        r.log_id.map(|id| id.to_string()).unwrap_or_default(),
                        r.head
                    )
                }
            }
            Ok(r) => {
                failed += 1;
                if json {
                    json!({"host": host.host, "url": host.url, "ok": false, "log_id": r.log_id.map(|id| id.to_string()),
                        "events": r.events, "first_seq": r.first_seq, "last_seq": r.last_seq,
                        "error": failure_json(r.failure.as_ref())})
                    .to_string()
                } else {
                    format!(
                        "FAILED  {}: {}",
                        host.host,
                        r.failure
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default()
                    )
                }
            }
            Err(e) => {
                failed += 1;
                if json {
                    json!({"host": host.host, "url": host.url, "ok": false,
                        "error": {"reason": e.to_string()}})
                    .to_string()
                } else {
                    format!("FAILED  {}: {e}", host.host)
                }
            }
        };
        println!("{line}");
    }
    if !json {
        println!(
            "{} host(s): {} verified, {failed} failed",
            reports.len(),
            reports.len() - failed
        );
    }
    Ok(u8::from(failed > 0))
}

/// Runs `auditring stat`.
pub fn stat(args: &StatArgs) -> Result<u8, Failure> {
    let reader = crate::ship::open_reader(&args.dir)?;
    // Retention may remove segments of the view while it is read: then read a newer one.
    let (snap, segments, first, last) = with_snapshot(&reader, |snap| {
        let segments = snap.segments()?;
        let first = snap.get(snap.first_seq())?;
        let last = snap.get(snap.head_seq())?;
        Ok((snap.clone(), segments, first, last))
    })?;
    let record_bytes: u64 = segments.iter().map(|s| s.record_bytes).sum();
    let file_bytes: u64 = segments.iter().map(|s| s.file_bytes).sum();
    let first_time = first.as_ref().map(|r| r.timestamp);
    let last_time = last.as_ref().map(|r| r.timestamp);
    if args.json {
        let out = json!({
            "segments": segments.len(),
            "events": snap.len(),
            "record_bytes": record_bytes,
            "file_bytes": file_bytes,
            "first_seq": snap.first_seq(),
            "last_seq": snap.head_seq(),
            "first_time": first_time.map(rfc3339),
            "last_time": last_time.map(rfc3339),
            "first_timestamp_ns": first_time,
            "last_timestamp_ns": last_time,
            "head_hash": snap.head().to_hex(),
        });
        println!("{out}");
    } else {
        println!("log:        {}", args.dir.display());
        println!("segments:   {}", segments.len());
        println!("events:     {}", snap.len());
        println!("bytes:      {record_bytes} of records in {file_bytes} bytes of files");
        if snap.is_empty() {
            println!("seq:        (empty)");
        } else {
            println!("seq:        {}..{}", snap.first_seq(), snap.head_seq());
        }
        if let (Some(f), Some(l)) = (first_time, last_time) {
            println!("time:       {} .. {}", rfc3339(f), rfc3339(l));
        }
        println!("head hash:  {}", snap.head());
    }
    Ok(0)
}
