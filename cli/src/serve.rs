//! `serve`: hold a log for many local processes, over a Unix socket; and `append --socket`,
//! one of them.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use auditring::{Daemon, DaemonClient, ServeOptions};

use crate::line::{Lines, max_line_len, parse_line};
use crate::{DurabilityArg, Failure, dir_arg};

/// Arguments of `auditring serve`.
#[derive(clap::Args)]
pub struct Args {
    /// The log directory (created if missing).
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// Where to listen: a Unix socket path. A socket left there by a daemon that died is
    /// replaced; anything else is not.
    #[arg(long)]
    socket: PathBuf,
    /// Permission bits of the socket, in octal: whoever may connect may append.
    #[arg(long, default_value = "600", value_parser = mode_arg)]
    mode: u32,
    /// Wait for another writer to release the log instead of failing (exit code 3).
    #[arg(long)]
    wait: bool,
    /// When events are synced: receipts say `durable` per this policy.
    #[arg(long, value_enum, default_value = "batch")]
    durability: DurabilityArg,
    /// Size of new segment files, in bytes.
    #[arg(long, default_value_t = auditring::DEFAULT_SEGMENT_SIZE)]
    segment_size: u64,
}

fn mode_arg(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mode such as 600 or 660"))
}

/// Runs `auditring serve` until SIGINT or SIGTERM; then stops accepting, ends the
/// connections, and closes the log (everything queued is written and synced).
pub fn run(args: &Args) -> Result<u8, Failure> {
    // Blocked here, before any thread starts, so that every thread inherits the mask and the
    // signals wait for `sigwait` below.
    let signals = block_stop_signals()?;
    let ring = auditring::Ring::builder(&args.dir)
        .durability(args.durability.policy())
        .segment_size(args.segment_size)
        .wait_for_lock(args.wait)
        .open()?;
    let daemon = Daemon::start(
        ring.producer(),
        &args.socket,
        &ServeOptions::new().mode(args.mode),
    )?;
    eprintln!(
        "auditring: serving {} at {} (stop with SIGTERM or SIGINT)",
        args.dir.display(),
        args.socket.display()
    );
    let mut signal = 0;
    // SAFETY: `signals` is an initialized set; `signal` outlives the call.
    let waited = unsafe { libc::sigwait(&raw const signals, &raw mut signal) };
    if waited != 0 {
        eprintln!("auditring: waiting for a signal failed ({waited}); stopping");
    }
    daemon.stop();
    ring.close()?;
    eprintln!("auditring: stopped");
    Ok(0)
}

/// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts), and returns
/// the set.
fn block_stop_signals() -> Result<libc::sigset_t, Failure> {
    // SAFETY: a zeroed sigset_t is a valid argument to sigemptyset, which initializes it; the
    // other calls take the initialized set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, libc::SIGINT);
        libc::sigaddset(&raw mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
        if rc != 0 {
            return Err(Failure {
                code: 4,
                message: format!("blocking SIGINT and SIGTERM: error {rc}"),
            });
        }
        Ok(set)
    }
}

/// Runs `auditring append --socket`: the lines of stdin, sent to the daemon at `socket`.
pub fn append(socket: &Path, receipts: bool, json: bool) -> Result<u8, Failure> {
    let mut client = DaemonClient::connect(socket)?;
    let stdin = io::stdin();
    // The daemon's own limit is checked by the daemon; this bounds what is read.
    let mut input = Lines::new(
        stdin.lock(),
        max_line_len(auditring::DEFAULT_MAX_EVENT_SIZE),
    );
    let stdout = io::stdout();
    let mut appended = 0u64;
    let mut last = None;
    while let Some((number, line)) = input.next_line() {
        let line = line.map_err(|e| Failure::input(format!("line {number}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let event = parse_line(&line).map_err(|e| Failure::input(format!("line {number}: {e}")))?;
        let at_line = |e: auditring::Error| {
            let mut f = Failure::from(e);
            f.message = format!(
                "line {number} or one before it: {}; the {appended} line(s) before were sent",
                f.message
            );
            f
        };
        if receipts {
            let r = client.record_receipt(&event).map_err(at_line)?;
            let mut out = stdout.lock();
            let written = if json {
                writeln!(out, r#"{{"seq":{},"head_hash":"{}"}}"#, r.seq, r.chain)
            } else {
                writeln!(out, "{} {}", r.seq, r.chain)
            };
            written.and_then(|()| out.flush()).map_err(|e| Failure {
                code: 4,
                message: format!("writing a receipt: {e}"),
            })?;
            last = Some(r);
        } else {
            client.record(&event).map_err(at_line)?;
        }
        appended += 1;
    }
    client.flush().map_err(|e| {
        let mut f = Failure::from(e);
        f.message = format!("{}; {appended} line(s) were sent", f.message);
        f
    })?;
    if json {
        match last {
            Some(r) => println!(
                r#"{{"appended":{appended},"last_seq":{},"last_hash":"{}"}}"#,
                r.seq, r.chain
            ),
            None => println!(r#"{{"appended":{appended}}}"#),
        }
    }
    Ok(0)
}
