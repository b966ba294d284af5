//! `append`: events as JSON lines on stdin, into a log.

use std::io::{self, Write};
use std::path::PathBuf;
use std::thread;

use crate::line::{Lines, max_line_len, parse_line};
use crate::{DurabilityArg, Failure, dir_arg};

/// Arguments of `auditring append`.
#[derive(clap::Args)]
pub struct Args {
    /// The log directory (created if missing).
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// Wait for another writer to release the log instead of failing (exit code 3).
    #[arg(long)]
    wait: bool,
    /// When events are synced.
    #[arg(long, value_enum, default_value = "batch")]
    durability: DurabilityArg,
    /// Print `SEQ HEADHASH` on its own line, flushed, once each event is durable.
    #[arg(long)]
    receipts: bool,
    /// JSON output: receipts as `{"seq":..,"head_hash":..}` lines, then one summary line
    /// `{"appended":..,"head_seq":..,"head_hash":..}` once everything is durable.
    #[arg(long)]
    json: bool,
    /// Size of new segment files, in bytes.
    #[arg(long, default_value_t = auditring::DEFAULT_SEGMENT_SIZE)]
    segment_size: u64,
}

/// Runs `auditring append`.
pub fn run(args: Args) -> Result<u8, Failure> {
    let ring = auditring::Ring::builder(&args.dir)
        .durability(args.durability.policy())
        .segment_size(args.segment_size)
        .wait_for_lock(args.wait)
        .open()?;
    // Receipts are printed in order by a thread of their own, so that reading stdin never waits
    // for a sync.
    let (tx, rx) = crossbeam::channel::bounded::<auditring::PendingReceipt>(64 * 1024);
    let json = args.json;
    let printer = args.receipts.then(|| {
        thread::spawn(move || -> Result<(), String> {
            let stdout = io::stdout();
            for pending in rx {
                let r = pending.wait().map_err(|e| e.to_string())?;
                let mut out = stdout.lock();
                let written = if json {
                    writeln!(out, r#"{{"seq":{},"head_hash":"{}"}}"#, r.seq, r.chain)
                } else {
                    writeln!(out, "{} {}", r.seq, r.chain)
                };
                written
                    .and_then(|()| out.flush())
                    .map_err(|e| format!("writing a receipt: {e}"))?;
            }
            Ok(())
        })
    });
    let mut failure = None;
    let mut appended = 0u64;
    let stdin = io::stdin();
    // Bounded: a line with no end never costs more than `max_line_len` bytes.
    let mut lines = Lines::new(stdin.lock(), max_line_len(ring.max_event_size()));
    while let Some((number, line)) = lines.next_line() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                failure = Some(Failure::input(format!(
                    "line {number}: {e}; nothing from this line on was written"
                )));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let event = match parse_line(&line) {
            Ok(e) => e,
            Err(e) => {
                failure = Some(Failure::input(format!(
                    "line {number}: {e}; nothing from this line on was written"
                )));
                break;
            }
        };
        let pushed = if args.receipts {
            ring.push_tracked(event).map(|p| {
                let _ = tx.send(p);
            })
        } else {
            ring.push(event)
        };
        if let Err(e) = pushed {
            let mut f = Failure::from(auditring::Error::from(e));
            f.message = format!("line {number}: {}", f.message);
            failure = Some(f);
            break;
        }
        appended += 1;
    }
    drop(tx);
    // A failed flush fails the close below too, which reports it.
    let _ = ring.flush();
    let head = ring.snapshot();
    let closed = ring.close();
    let printed = printer.map(|p| {
        p.join()
            .unwrap_or_else(|_| Err("receipt printer panicked".into()))
    });
    if let Some(f) = failure {
        return Err(f);
    }
    closed?;
    if let Some(Err(e)) = printed {
        return Err(Failure {
            code: 4,
            message: e,
        });
    }
    if json {
        println!(
            r#"{{"appended":{appended},"head_seq":{},"head_hash":"{}"}}"#,
            head.head_seq(),
            head.head()
        );
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::line::parse_line;

    #[test]
    fn parses_lines() {
        let e = parse_line(
            r#"{"kind":"k","actor":"a","trace_id":"t","timestamp":5,"details":{"x": [1, 2]}}"#,
        )
        .unwrap();
        assert_eq!(e.kind(), "k");
        assert_eq!(e.actor_id(), Some("a"));
        assert_eq!(e.trace(), Some("t"));
        assert_eq!(e.origin_nanos(), Some(5));
        assert_eq!(e.details_text(), Some(r#"{"x": [1, 2]}"#));
        let e = parse_line(r#"{"kind":"k","timestamp":"2026-01-01T00:00:00.000000001Z"}"#).unwrap();
        assert_eq!(e.origin_nanos(), Some(1_767_225_600_000_000_001));
        let e = parse_line(r#"{"kind":"k","timestamp":"2026-01-01T01:00:00+01:00"}"#).unwrap();
        assert_eq!(e.origin_nanos(), Some(1_767_225_600_000_000_000));
        let e = parse_line(r#"{"kind":"k","details":null}"#).unwrap();
        assert_eq!(e.details_text(), Some("null"));
        assert_eq!(parse_line(r#"{"kind":"k"}"#).unwrap().details_text(), None);
        assert!(parse_line(r#"{"actor":"a"}"#).is_err());
        assert!(parse_line(r#"{"kind":"k","actr":"a"}"#).is_err());
        assert!(parse_line(r#"{"kind":"k","timestamp":"yesterday"}"#).is_err());
        // Nanoseconds are a JSON integer; digits in a string are refused (seconds? millis?).
        assert!(parse_line(r#"{"kind":"k","timestamp":"5"}"#).is_err());
        assert!(parse_line("not json").is_err());
        // Arrays of the fields in order are not lines (a derived struct would take them).
        assert!(parse_line(r#"["k"]"#).is_err());
        assert!(parse_line(r#"["k","a","t",5,{"x":1}]"#).is_err());
        assert!(parse_line(" \t{\"kind\":\"k\"}").is_ok());
    }
}
