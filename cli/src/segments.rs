//! `segments`: the segment files of a log, oldest first.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use serde_json::json;

use crate::query::emit;
use crate::views::with_snapshot;
use crate::{Failure, dir_arg};

/// Arguments of `auditring segments`.
#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// Print one JSON array, an object a segment, instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `auditring segments`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let reader = crate::ship::open_reader(&args.dir)?;
    let segments = with_snapshot(&reader, auditring::Snapshot::segments)?;
    let name = |s: &auditring::SegmentSummary| {
        s.path.file_name().map_or_else(
            || s.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    };
    // A segment with no record has `last_seq == first_seq - 1`.
    let events = |s: &auditring::SegmentSummary| (s.last_seq + 1).saturating_sub(s.first_seq);
    let last = segments.last().map(|s| s.number);
    let mut text = String::new();
    if args.json {
        let out: Vec<_> = segments
            .iter()
            .map(|s| {
                json!({
                    "number": s.number,
                    "file": name(s),
                    "path": s.path,
                    "first_seq": s.first_seq,
                    "last_seq": s.last_seq,
                    "events": events(s),
                    "record_bytes": s.record_bytes,
                    "file_bytes": s.file_bytes,
                    "sealed": s.sealed,
                })
            })
            .collect();
        text = serde_json::Value::Array(out).to_string();
        text.push('\n');
    } else {
        for s in &segments {
            let seqs = if events(s) == 0 {
                "empty".to_string()
            } else {
                format!("seq {}..{}", s.first_seq, s.last_seq)
            };
            let _ = writeln!(
                text,
                "{}  {}  {seqs}  {} / {} bytes  {}",
                s.number,
                name(s),
                s.record_bytes,
                s.file_bytes,
                state(s, last)
            );
        }
    }
    // A reader that has gone (a broken pipe) is no failure.
    emit(&mut io::stdout().lock(), text.as_bytes())?;
    Ok(0)
}

/// How the text output shows a segment: sealed, the active one (the last, not sealed), or one
/// before it whose sealing a crash interrupted (a writer seals it when it reopens the log).
fn state(s: &auditring::SegmentSummary, last: Option<u64>) -> &'static str {
    if s.sealed {
        "sealed"
    } else if Some(s.number) == last {
        "active"
    } else {
        "unsealed (a crash interrupted its sealing)"
    }
}
