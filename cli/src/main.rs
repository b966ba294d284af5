//! `auditring`: run, feed and check auditring logs from the command line.
//!
//! Exit codes (scripts rely on them): 0 ok, 1 integrity failure, 2 usage or bad input,
//! 3 locked by another writer, 4 any other I/O error, 5 the output of an export exists.
//! Errors go to stderr on one line. With `--json`, a command that fails also prints, as the
//! last line of its standard output, `{"ok":false,"error":"..","exit_code":N}` (the same
//! message), so that a script reading JSON always gets JSON: [`report_failure`] does it for
//! every command, usage errors included.

// A faster allocator than the system's for the tool's many small allocations (the demo builds
// events as an application would; the baselines it compares with use the same allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod append;
mod bench;
mod demo;
mod export;
mod inspect;
mod progress;
mod query;
mod seal;
mod segments;
mod serve;
mod ship;
mod tail;
mod tlog;
mod views;
mod witness;

// The input parsers, shared with the fuzz harness (the library of this package), and the demo's
// workload, load driver and baselines, shared with the benchmarks (`auditring-bench`).
use auditring_bench::{baselines, load};
use auditring_cli::{line, timearg};

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// A lock-free, tamper-evident audit log.
#[derive(Parser)]
#[command(name = "auditring", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a realistic load through the ring, then close, verify and report the speed.
    ///
    /// Example: auditring demo --events 1000000 --producers 2 --json
    Demo(demo::Args),
    /// Compare auditring with the designs it replaces, in one run, and print the ratios.
    ///
    /// Each of auditring, a mutex around JSON + chain hash + buffered append, and a
    /// write-behind channel into one writer thread writes the same events (no sync) at each
    /// producer count, several times, interleaved; the table gives median events/s, the ratios
    /// of the runs, and push p99.9. About a minute with the defaults.
    ///
    /// Example: auditring bench --producers 1,2,8 --runs 3
    Bench(bench::Args),
    /// Append events read as JSON lines on stdin.
    ///
    /// Each line: {"kind":..,"actor":..,"trace_id":..,"timestamp":..,"details":{..}}, only
    /// kind required; timestamp as RFC 3339 or integer nanoseconds since the Unix epoch.
    ///
    /// A line may be 6 times the maximum event size plus 4096 bytes (6 MiB + 4 KiB with the
    /// defaults); a longer one is not read further. A UTF-8 byte order mark at the very start of
    /// the input is skipped; lines must be UTF-8 JSON without lone surrogate escapes (\ud800).
    /// The first line refused stops the command (exit code 2), naming it; the lines before it
    /// are written.
    ///
    /// Example: echo '{"kind":"user.login","actor":"alice"}' | auditring append ./audit --receipts --json
    #[allow(clippy::doc_markdown)] // help text, printed as written
    Append(append::Args),
    /// Hold a log for many local processes: accept events over a Unix socket until SIGTERM.
    ///
    /// Clients (`auditring append --socket`, the library's `DaemonClient`, the Python
    /// package) get the same receipts as a process holding the log itself. The socket's
    /// permissions (--mode) decide who may append. On SIGTERM or SIGINT it stops accepting,
    /// and closes the log with everything queued written and synced.
    ///
    /// Example: auditring serve ./audit --socket /run/audit.sock --mode 660
    Serve(serve::Args),
    /// Verify every segment, record and hash of a log.
    ///
    /// The log may be one shipped to object storage (`auditring ship`), given by its URL: it
    /// is verified where it is, and failures name its objects by URL. With --hosts, the URL
    /// is a fleet's: every log under it (one per host) is verified, with a line per host.
    ///
    /// Example: auditring verify ./audit --json
    Verify(inspect::VerifyArgs),
    /// Ship a log's sealed segments to object storage, where `verify`, `export`, `query` and
    /// the other reading commands read it by URL.
    ///
    /// Each segment is written once, create-only; the store's head object (how far the log
    /// goes) and latest checkpoint only move forward, by conditional puts. Requests that fail
    /// are retried with backoff. Each pass records in the log's export marker that what it
    /// shipped is kept at the URL, so that a writer whose retention waits for exports prunes
    /// it, its prune records naming the URL. A pass cut short is resumed by the next one.
    ///
    /// Example: AWS_REGION=eu-west-1 auditring ship ./audit --to s3://audit-fleet/host-a --every 60
    #[allow(clippy::doc_markdown)] // help text, printed as written
    Ship(ship::Args),
    /// Show a log's segments, events, size, seq and time range, and head hash.
    ///
    /// Example: auditring stat ./audit
    Stat(inspect::StatArgs),
    /// Print the records that match filters, in seq order.
    ///
    /// Filters combine: every one given must hold. --since is inclusive, --until exclusive;
    /// times are RFC 3339 (any offset) or integer nanoseconds since the Unix epoch. Each record
    /// prints as `SEQ  TIME  KIND  actor=..  trace=..  DETAILS`, or with --json as the JSON line
    /// an export holds.
    ///
    /// Example: auditring query ./audit --actor alice --since 2026-01-01T00:00:00Z --limit 20
    Query(query::Args),
    /// Print the last records of a log, and with --follow each new one as it is written.
    ///
    /// With --follow, polls the log ten times a second (the writer may be another process) and
    /// stops when its output is closed.
    ///
    /// Example: auditring tail ./audit -n 20 --follow --json
    Tail(tail::Args),
    /// Export a range of a log as a self-verifying directory: the records and a manifest.
    ///
    /// The range is every record by default, or --from/--to seqs, or --since/--until origin
    /// times (the smallest contiguous range holding every record in that time), or --last N.
    /// The directory appears whole or not at all; an existing one is replaced only with
    /// --force. Exit code 5 when the output exists.
    ///
    /// Example: auditring export ./audit --format jsonl --from 1 --to 1000 --out ./audit-q1
    Export(export::ExportArgs),
    /// Check an export without its log: manifest, file digest, every leaf and chain hash.
    ///
    /// --expect-head pins the head to a value obtained out of band; --after checks that the
    /// export continues a previous one (its manifest, or its directory).
    ///
    /// Example: auditring verify-export ./audit-q2 --after ./audit-q1 --json
    VerifyExport(export::VerifyExportArgs),
    /// List a log's segment files: seq range, bytes of records and of file, sealed or active.
    ///
    /// Example: auditring segments ./audit --json
    Segments(segments::Args),
    /// Create an Ed25519 key for signing checkpoints (a C2SP signed-note key).
    ///
    /// Writes the secret key to --out (mode 0600) and prints the verifier key, which
    /// verifiers are given with --key.
    ///
    /// Example: auditring keygen audit.example.com/payments --out payments.key
    Keygen(tlog::KeygenArgs),
    /// Create a key for forward-secure sealing: the initial key, for the auditor, and the
    /// ring's state file made from it.
    ///
    /// A ring given the state (append --seal-state) writes a seal record every epoch and
    /// evolves its key one way, so that whoever takes the host later cannot reseal the epochs
    /// already sealed; verify --seal-key checks the seals. Exit code 5 if a file exists.
    ///
    /// Example: auditring seal-keygen --key /media/offline/audit.sealkey --state ./audit.seal
    SealKeygen(seal::SealKeygenArgs),
    /// Print a Merkle proof of a log as JSON: that a record is in the tree (--seq), or that an
    /// older tree is a prefix of a newer one (--old).
    ///
    /// The tree is the one checkpoints sign (docs/FORMAT.md §15); --size picks its size (a
    /// checkpoint's), by default every record.
    ///
    /// Example: auditring prove ./audit --seq 1234 --size 5000 > proof.json
    Prove(tlog::ProveArgs),
    /// Check a proof printed by `prove` against signed checkpoints, without the log.
    ///
    /// Exit code 0 when the proof leads to the checkpoint's root, 1 when it does not.
    ///
    /// Example: auditring check-proof proof.json --checkpoint cp.txt --key payments.pub
    CheckProof(tlog::CheckProofArgs),
    /// Act as a witness: cosign a log's checkpoint only if it extends the last one cosigned.
    ///
    /// Keeps the last cosigned checkpoint of each log in --state; a smaller one, another tree
    /// of the same size, or a larger one without a valid consistency proof (--proof) is
    /// refused with exit code 1: the log showed two histories. Prints the note with the
    /// witness's cosignature (C2SP tlog-cosignature) added.
    ///
    /// Example: auditring witness --key w.key --state ./witness --log-key log.pub cp.txt --proof p.json
    Witness(witness::Args),
}

/// The durability policies, as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Page cache only until the log is closed: nothing is synced before (sealing a segment
    /// does not sync it either); receipts say `durable: false`.
    None,
    /// One msync per batch before receipts are issued (group commit).
    Batch,
    /// An msync every 10 ms.
    Periodic,
}

impl DurabilityArg {
    /// The library's policy.
    pub fn policy(self) -> auditring::Durability {
        match self {
            DurabilityArg::None => auditring::Durability::None,
            DurabilityArg::Batch => auditring::Durability::Batch,
            DurabilityArg::Periodic => auditring::Durability::Periodic(Duration::from_millis(10)),
        }
    }
}

/// A failure with the exit code it maps to.
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Bad input or usage: exit code 2.
    pub fn input(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<auditring::Error> for Failure {
    fn from(e: auditring::Error) -> Failure {
        use auditring::Error;
        let code = match &e {
            Error::Integrity(_) => 1,
            Error::Locked { .. } => 3,
            Error::Export(
                auditring::ExportError::OutputExists { .. }
                | auditring::ExportError::NotReplaceable { .. },
            ) => 5,
            Error::NotALog { .. }
            | Error::Config(_)
            | Error::Checkpoint(_)
            | Error::Sealing(_)
            | Error::Event(_)
            | Error::Export(_)
            | Error::Refused {
                class: auditring::DaemonErrorClass::InvalidEvent,
                ..
            } => 2,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 2,
            _ => 4,
        };
        Failure {
            code,
            message: in_cli_terms(&e),
        }
    }
}

/// The library's message, with its options named as the command line names them.
fn in_cli_terms(e: &auditring::Error) -> String {
    use auditring::{Error, ExportError};
    match e {
        Error::Export(ExportError::OutputExists { path }) => {
            format!(
                "{} already exists (replace it with --force)",
                path.display()
            )
        }
        Error::Export(ExportError::NotReplaceable { path }) => format!(
            "{} exists and is not an auditring export; --force replaces only an earlier export",
            path.display()
        ),
        Error::Export(ExportError::Unrepresentable { seq, encoding, why }) => format!(
            "record {seq} cannot be exported as {encoding}: {why}; nothing was written \
             (--format bundle holds any record up to 64 MiB)"
        ),
        _ => e.to_string(),
    }
}

/// Help and version go to stdout as clap writes them; a usage error goes to stderr on one line,
/// like every other error, with exit code 2 (and with `--json`, as a JSON error object too).
fn usage_error(e: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // No command at all: the help, on stderr.
        let _ = e.print();
        return ExitCode::from(2);
    }
    // The error is the first paragraph (a list of missing arguments spans several lines);
    // the usage and the hint after it are left to --help.
    let text = e.to_string();
    let message: Vec<&str> = text
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    report_failure(
        json,
        "usage",
        &Failure::input(format!("{message} (see --help)")),
    )
}

/// Reports a failure: one line on stderr, `auditring: LABEL: MESSAGE` (`error`, or `usage` for
/// a usage error), and with `--json` the same as a JSON object on stdout.
fn report_failure(json: bool, label: &str, f: &Failure) -> ExitCode {
    let message = f.message.replace('\n', " ");
    eprintln!("auditring: {label}: {message}");
    if json {
        let text = serde_json::to_string(&message).unwrap_or_else(|_| "\"\"".into());
        let mut out = std::io::stdout().lock();
        // Nothing more can be said if stdout is gone; stderr has it.
        let _ = writeln!(
            out,
            r#"{{"ok":false,"error":{text},"exit_code":{}}}"#,
            f.code
        )
        .and_then(|()| out.flush());
    }
    ExitCode::from(f.code)
}

/// Whether the command line asks for JSON output, read from the raw arguments: for usage
/// errors, when clap could not parse them.
fn json_in_raw_args() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

/// Parses a directory argument.
pub fn dir_arg(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        Err("the directory is empty".into())
    } else {
        Ok(PathBuf::from(s))
    }
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => return usage_error(&e, json_in_raw_args()),
    };
    // Every command that prints JSON has a `--json` flag.
    let json = matches
        .subcommand()
        .and_then(|(_, m)| m.try_get_one::<bool>("json").ok().flatten().copied())
        .unwrap_or(false);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e, json),
    };
    let result = match cli.command {
        Command::Demo(args) => demo::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Append(args) => append::run(&args),
        Command::Serve(args) => serve::run(&args),
        Command::Verify(args) => inspect::verify(&args),
        Command::Ship(args) => ship::run(&args),
        Command::Stat(args) => inspect::stat(&args),
        Command::Export(args) => export::export(&args),
        Command::VerifyExport(args) => export::verify_export(&args),
        Command::Query(args) => query::run(args),
        Command::Tail(args) => tail::run(&args),
        Command::Segments(args) => segments::run(&args),
        Command::Keygen(args) => tlog::keygen(&args),
        Command::SealKeygen(args) => seal::keygen(&args),
        Command::Prove(args) => tlog::prove(&args),
        Command::CheckProof(args) => tlog::check_proof(&args),
        Command::Witness(args) => witness::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => report_failure(json, "error", &f),
    }
}
