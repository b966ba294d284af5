//! `export` and `verify-export`: self-verifying copies of a range of a log.

use std::path::{Path, PathBuf};

use auditring::{Encoding, ExportOptions, Hash, Manifest, Selection, VerifyExportOptions};
use clap::ValueEnum;
use serde_json::json;

use crate::inspect::{check_exit, failure_json};
use crate::progress::Progress;
use crate::views::with_snapshot;
use crate::{Failure, dir_arg, timearg};

/// The export encodings, as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One JSON object per line: jq, pandas, grep.
    Jsonl,
    /// The records as a segment stores them: compact and fast.
    Bundle,
}

/// Arguments of `auditring export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The log directory.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// How to encode the records.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// The export directory to create.
    #[arg(long, value_parser = dir_arg)]
    out: PathBuf,
    /// First seq to export (default: the log's first).
    #[arg(long, conflicts_with_all = ["since", "until", "last"])]
    from: Option<u64>,
    /// Last seq to export (default: the log's last).
    #[arg(long, conflicts_with_all = ["since", "until", "last"])]
    to: Option<u64>,
    /// Export from the first record with an origin time at or after this (RFC 3339 or ns).
    #[arg(
        long,
        value_parser = timearg::parse_time,
        conflicts_with = "last",
        allow_negative_numbers = true
    )]
    since: Option<i64>,
    /// Export up to the last record with an origin time before this (RFC 3339 or ns).
    #[arg(
        long,
        value_parser = timearg::parse_time,
        conflicts_with = "last",
        allow_negative_numbers = true
    )]
    until: Option<i64>,
    /// Export the last N records.
    #[arg(long)]
    last: Option<u64>,
    /// Replace the output if it exists (atomically).
    #[arg(long)]
    force: bool,
    /// Tie the export to this signed checkpoint of the log (a note, as a ring writes
    /// `checkpoint`, or the last of a `checkpoints.jsonl` history): the export also holds
    /// tree.json, the proof that its records are those the checkpoint signed.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Print the manifest as JSON instead of a summary.
    #[arg(long)]
    json: bool,
}

/// Arguments of `auditring verify-export`.
#[derive(clap::Args)]
pub struct VerifyExportArgs {
    /// The export directory.
    #[arg(value_parser = dir_arg)]
    path: PathBuf,
    /// The head the export must end at, obtained out of band (64 hex digits).
    #[arg(long, value_parser = parse_hash)]
    expect_head: Option<Hash>,
    /// The manifest (or export directory) of the export this one must continue.
    #[arg(long)]
    after: Option<PathBuf>,
    /// Checkpoints to prove the export against (with --key; without --checkpoint, the one the
    /// export carries in tree.json).
    #[command(flatten)]
    trust: crate::tlog::TrustArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// "1 record", "2 records".
fn records(n: u64) -> String {
    if n == 1 {
        "1 record".into()
    } else {
        format!("{n} records")
    }
}

fn parse_hash(s: &str) -> Result<Hash, String> {
    Hash::from_hex(s).map_err(|e| e.to_string())
}

/// Runs `auditring export`.
pub fn export(args: &ExportArgs) -> Result<u8, Failure> {
    let reader = crate::ship::open_reader(&args.dir)?;
    let selection = if let Some(n) = args.last {
        Selection::Last(n)
    } else if args.since.is_some() || args.until.is_some() {
        Selection::Time {
            since: args.since,
            until: args.until,
        }
    } else {
        Selection::Seqs {
            from: args.from,
            to: args.to,
        }
    };
    let encoding = match args.format {
        FormatArg::Jsonl => Encoding::Jsonl,
        FormatArg::Bundle => Encoding::Bundle,
    };
    let note = match &args.checkpoint {
        Some(path) => Some(
            crate::tlog::checkpoint_notes(path)?
                .pop()
                .ok_or_else(|| Failure::input(format!("{}: no checkpoint", path.display())))?,
        ),
        None => None,
    };
    let bar = Progress::new("exporting", "records");
    // Retention may remove segments of the view while they are exported: then export from a
    // newer one (the unfinished export is not published).
    let manifest = with_snapshot(&reader, |snapshot| {
        let mut progress = |done, total| bar.update(done, total);
        let mut options = ExportOptions::new()
            .selection(selection)
            .encoding(encoding)
            .force(args.force)
            .progress(&mut progress);
        if let Some(note) = &note {
            options = options.checkpoint(note.clone());
        }
        snapshot.export(&args.out, options)
    })?;
    drop(bar);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&manifest).expect("a manifest serializes")
        );
    } else {
        let file = &manifest.files[0];
        println!(
            "exported seq {}..{} ({}) to {}",
            manifest.first_seq,
            manifest.last_seq,
            records(manifest.count),
            args.out.display()
        );
        println!("anchor {}", manifest.anchor);
        println!("head   {}", manifest.head);
        println!(
            "{}: {} bytes, sha256 {}",
            file.name, file.bytes, file.sha256
        );
    }
    Ok(0)
}

/// Reads the manifest given to `--after`: a manifest file or an export directory.
fn read_after(path: &Path) -> Result<Manifest, Failure> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        match path.parent() {
            Some(p)
                if path
                    .file_name()
                    .is_some_and(|n| n == auditring::MANIFEST_FILE) =>
            {
                p.to_path_buf()
            }
            _ => {
                return Err(Failure::input(format!(
                    "--after {}: expected an export directory or its manifest.json",
                    path.display()
                )));
            }
        }
    };
    Manifest::read(&dir).map_err(|e| Failure::input(format!("--after {}: {e}", path.display())))
}

/// Runs `auditring verify-export`.
pub fn verify_export(args: &VerifyExportArgs) -> Result<u8, Failure> {
    let bar = Progress::new("verifying", "bytes");
    let mut progress = |done, total| bar.update(done, total);
    let mut options = VerifyExportOptions::new().progress(&mut progress);
    options.expect_head = args.expect_head;
    options.after = args.after.as_deref().map(read_after).transpose()?;
    let trust = args.trust.read()?;
    options = crate::tlog::with_trust!(options, trust);
    let report = auditring::verify_export(&args.path, options)?;
    drop(bar);
    let error = report.failure.as_ref();
    if args.json {
        let out = json!({
            "ok": report.is_ok(),
            "events": report.events,
            "first_seq": report.first_seq,
            "last_seq": report.last_seq,
            "head_hash": report.head.to_hex(),
            "manifest": report.manifest,
            "checkpoints": report.checkpoints,
            "error": failure_json(error),
        });
        println!("{out}");
    } else {
        match error {
            None => {
                println!(
                    "ok: {}, seq {}..{}, head {}",
                    records(report.events),
                    report.first_seq,
                    report.last_seq,
                    report.head
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
                    "verified before the failure: {} from seq {}",
                    records(report.events),
                    report.first_seq
                );
            }
        }
    }
    Ok(check_exit(error))
}
