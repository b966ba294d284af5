//! `tail`: the last records of a log, and with `--follow`, every record committed after them,
//! as a writer (in any process) appends it.

use std::io::{self, Write};
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use crate::query::{emit, write_record};
use crate::views::{self, Visit};
use crate::{Failure, dir_arg};

/// Arguments of `auditring tail`.
#[derive(clap::Args)]
pub struct Args {
    /// The log directory.
    #[arg(value_parser = dir_arg)]
    dir: PathBuf,
    /// How many of the last records to print first.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    lines: u64,
    /// Keep running and print each new record as it is written; stops when stdout is closed.
    #[arg(short, long)]
    follow: bool,
    /// Print each record as one JSON line, as an export writes it.
    #[arg(long)]
    json: bool,
}

/// How often `--follow` looks for new records.
const POLL: Duration = Duration::from_millis(100);

/// Output is handed to stdout in chunks of about this many bytes.
const CHUNK: usize = 64 * 1024;

/// Runs `auditring tail`.
///
/// A writer that prunes may remove records before `--follow` reads them (when it falls
/// behind): which seqs were missed, and why, is said (see `crate::views`), and following goes
/// on from the first record still there.
pub fn run(args: &Args) -> Result<u8, Failure> {
    let reader = crate::ship::open_reader(&args.dir)?;
    let snap = reader.snapshot()?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    let log_id = snap.log_id();
    // Every record up to `done` has been printed or was before the first ones asked for.
    let done = snap.head_seq();
    let from = (done + 1).saturating_sub(args.lines).max(snap.first_seq());
    let read = print(&reader, &mut out, &mut buf, snap, from, done, args.json)?;
    if !read || !args.follow {
        return Ok(0);
    }
    follow(args, &reader, &log_id, done, &mut out, &mut buf)
}

/// Prints each record written after `done`, as it is written, until stdout's reader goes.
fn follow(
    args: &Args,
    reader: &auditring::Reader,
    log_id: &auditring::LogId,
    mut done: u64,
    out: &mut impl Write,
    buf: &mut Vec<u8>,
) -> Result<u8, Failure> {
    loop {
        thread::sleep(POLL);
        if reader_gone() {
            return Ok(0);
        }
        let snap = reader.snapshot()?;
        if snap.log_id() != *log_id {
            return Err(views::replaced(reader, &snap, log_id));
        }
        let head = snap.head_seq();
        if head < done {
            return Err(Failure {
                code: 1,
                message: format!(
                    "the log in {} now ends at seq {head}, before seq {done} that was already read: it was cut",
                    args.dir.display()
                ),
            });
        }
        if head > done {
            if !print(reader, out, buf, snap, done + 1, head, args.json)? {
                return Ok(0);
            }
            done = head;
        }
    }
}

/// Prints records `from..=to` of `snap` (and says which of them were pruned before they
/// could be read), flushing as it goes; `Ok(false)` when stdout's reader has gone.
fn print(
    reader: &auditring::Reader,
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    snap: auditring::Snapshot,
    from: u64,
    to: u64,
    json: bool,
) -> Result<bool, Failure> {
    buf.clear();
    let scanned = views::scan(reader, snap, Some(from), to, |visit| {
        match visit {
            Visit::Record(r) => write_record(buf, r, json),
            Visit::Missed { first, last } => {
                // What was read before goes out first, so the note falls where the gap is.
                if !emit(out, buf)? {
                    return Ok(false);
                }
                buf.clear();
                views::note_missed(buf, first, last, json);
            }
        }
        if buf.len() >= CHUNK {
            if !emit(out, buf)? {
                return Ok(false);
            }
            buf.clear();
        }
        Ok(true)
    });
    match scanned {
        Ok(true) => emit(out, buf),
        Ok(false) => Ok(false),
        Err(e) => {
            // What was read before the failure is printed, then the failure.
            emit(out, buf)?;
            Err(e)
        }
    }
}

/// Whether stdout is a pipe or socket whose reader has gone, or is closed: `--follow` then
/// stops even while no record comes that it could fail to write.
#[cfg(unix)]
fn reader_gone() -> bool {
    let mut fd = libc::pollfd {
        fd: libc::STDOUT_FILENO,
        events: 0,
        revents: 0,
    };
    // SAFETY: `fd` is one valid pollfd, and a zero timeout returns at once.
    let n = unsafe { libc::poll(&raw mut fd, 1, 0) };
    n == 1 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0
}

#[cfg(not(unix))]
fn reader_gone() -> bool {
    false
}
