//! `auditring`: run, feed and check auditring logs from the command line.
//!
//! Exit codes (scripts rely on them): 0 ok, 1 integrity failure, 2 usage or bad input,
//! 3 locked by another writer, 4 any other I/O error. Errors go to stderr on one line.

// A faster allocator than the system's for the tool's many small allocations (the demo builds
// events as an application would; the baselines it compares with use the same allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod append;
mod baselines;
mod demo;
mod inspect;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

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
    /// Append events read as JSON lines on stdin.
    ///
    /// Each line: {"kind":..,"actor":..,"trace_id":..,"timestamp":..,"details":{..}}, only
    /// kind required; timestamp as RFC 3339 or integer nanoseconds since the Unix epoch.
    ///
    /// Example: echo '{"kind":"user.login","actor":"alice"}' | auditring append ./audit --receipts
    Append(append::Args),
    /// Verify every segment, record and hash of a log.
    ///
    /// Example: auditring verify ./audit --json
    Verify(inspect::VerifyArgs),
    /// Show a log's segments, events, size, seq and time range, and head hash.
    ///
    /// Example: auditring stat ./audit
    Stat(inspect::StatArgs),
}

/// The durability policies, as the command line names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DurabilityArg {
    /// Page cache only until a segment is sealed or the log closed.
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
            Error::NotALog { .. } | Error::Config(_) | Error::Event(_) => 2,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 2,
            _ => 4,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
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
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Append(args) => append::run(args),
        Command::Verify(args) => inspect::verify(args),
        Command::Stat(args) => inspect::stat(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            let line = f.message.replace('\n', " ");
            eprintln!("auditring: error: {line}");
            ExitCode::from(f.code)
        }
    }
}
