//! `ship`: a log's sealed segments to object storage; and reading a shipped log where it is,
//! for every command that reads a log, when its argument is a URL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use auditring_ship::{Remote, RemoteStorage, ShipError, Shipper};
use serde_json::json;

use crate::{Failure, dir_arg};

/// Arguments of `auditring ship`.
#[derive(clap::Args)]
#[allow(clippy::doc_markdown)] // help text, printed as written
pub struct Args {
    /// The log directory.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// Where to: a URL as the object_store crate parses it (file:///srv/audit/host-a,
    /// s3://bucket/host-a, gs://bucket/host-a, az://container/host-a). Credentials, region
    /// and endpoint come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP, GOOGLE_SERVICE_ACCOUNT, AZURE_STORAGE_...).
    #[arg(long)]
    to: String,
    /// Also ship this signed checkpoint (the latest one the writer wrote: the `checkpoint`
    /// file of its --checkpoint-dir), when it is newer than the store's.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Ship again every this many seconds, until stopped (SIGTERM, SIGINT: a pass cut short
    /// is resumed by the next run, nothing uploaded twice or skipped). A pass that fails for
    /// a reason that may pass (the store out of reach) is reported and tried again at the next
    /// interval; one that cannot (another log's prefix, a gap) ends the command.
    #[arg(long)]
    every: Option<f64>,
    /// Print one JSON object per pass instead of text.
    #[arg(long)]
    json: bool,
}

impl From<ShipError> for Failure {
    fn from(e: ShipError) -> Failure {
        let code = match &e {
            ShipError::Log(e) => return Failure::from(e.clone()),
            ShipError::Differs { .. } | ShipError::BehindHead { .. } => 1,
            ShipError::BadUrl { .. }
            | ShipError::OtherLog { .. }
            | ShipError::Gap { .. }
            | ShipError::BadHead { .. } => 2,
            _ => 4,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

/// Runs `auditring ship`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let every = match args.every {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            return Err(Failure::input(format!(
                "--every {s}: expected a number of seconds above 0"
            )));
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let mut shipper = Shipper::new(Remote::open(&args.to)?);
    if let Some(file) = &args.checkpoint {
        shipper = shipper.checkpoint(file);
    }
    loop {
        let started = Instant::now();
        let report = match (shipper.ship(&args.dir), every) {
            (Ok(report), _) => report,
            // Shipping again later may succeed: the next pass resumes where this one stopped.
            (Err(e), Some(wait)) if passes(&e) => {
                eprintln!(
                    "auditring: this pass failed, the next one is in {:.0} s: {e}",
                    wait.as_secs_f64()
                );
                std::thread::sleep(wait);
                continue;
            }
            (Err(e), _) => return Err(e.into()),
        };
        let seconds = started.elapsed().as_secs_f64();
        let rate = report.bytes as f64 / 1e6 / seconds.max(1e-9);
        if args.json {
            let head = report.head.as_ref().map(|h| {
                json!({"last_segment": h.last_segment, "last_seq": h.last_seq, "head_hash": h.head})
            });
            let out = json!({
                "to": shipper.remote().url(),
                "uploaded": report.uploaded,
                "bytes": report.bytes,
                "seconds": seconds,
                "already_there": report.already_there,
                "head": head,
                "checkpoint": report.checkpoint,
            });
            println!("{out}");
        } else {
            println!(
                "shipped {} object(s), {} bytes in {seconds:.3} s ({rate:.1} MB/s); {} \
                 segment(s) were there already",
                report.uploaded.len(),
                report.bytes,
                report.already_there
            );
            match &report.head {
                Some(h) => println!(
                    "{} holds seq ..={} (segment {}), head {}",
                    shipper.remote().url(),
                    h.last_seq,
                    h.last_segment,
                    h.head
                ),
                None => println!("no sealed segment to ship yet"),
            }
            if let Some(size) = report.checkpoint {
                println!("shipped the checkpoint of tree size {size}");
            }
        }
        match every {
            Some(wait) => std::thread::sleep(wait),
            None => return Ok(0),
        }
    }
}

/// Whether a pass that failed with `e` may succeed later (the store or the log was out of
/// reach), rather than never without someone's help (another log's prefix, a gap, a copy that
/// differs, a bad URL or head object).
fn passes(e: &ShipError) -> bool {
    !matches!(
        e,
        ShipError::BadUrl { .. }
            | ShipError::OtherLog { .. }
            | ShipError::Differs { .. }
            | ShipError::Gap { .. }
            | ShipError::BadHead { .. }
            | ShipError::Log(auditring::Error::Integrity(_) | auditring::Error::NotALog { .. })
    )
}

/// The URL a log argument names, if it names one (`scheme://...`) rather than a directory.
pub fn url_of(dir: &Path) -> Option<&str> {
    dir.to_str().filter(|s| {
        s.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        })
    })
}

/// A reader of the log `dir` names: a directory, or a log shipped to the URL it is.
pub fn open_reader(dir: &Path) -> Result<auditring::Reader, Failure> {
    match url_of(dir) {
        Some(url) => Ok(auditring::Reader::with_storage(RemoteStorage::new(
            Remote::open(url)?,
        ))),
        None => Ok(auditring::Reader::open(dir)?),
    }
}
