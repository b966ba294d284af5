//! `append`: events as JSON lines on stdin, into a log.

use std::io::{self, Write};
use std::path::PathBuf;
use std::thread;

use crate::line::{Lines, max_line_len, parse_line};
use crate::{DurabilityArg, Failure, dir_arg};

/// Arguments of `auditring append`.
#[derive(clap::Args)]
pub struct Args {
    /// The log directory (created if missing). Not with --socket.
    #[arg(value_parser = dir_arg, required_unless_present = "socket")]
    dir: Option<PathBuf>,
    /// Send the events to the daemon listening at this socket (`auditring serve`), which
    /// holds the log, instead of opening it: many processes may append at once. The daemon's
    /// policy decides durability; receipts arrive once it says an event is durable.
    #[arg(long, conflicts_with_all = ["dir", "wait", "checkpoint_key", "seal_state"])]
    pub(crate) socket: Option<PathBuf>,
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
    /// Sign checkpoints of the log's Merkle tree with this secret key (a file written by
    /// `auditring keygen`), at each sealed segment, at the end, and every
    /// --checkpoint-every events; into --checkpoint-dir.
    #[arg(long, requires = "checkpoint_dir")]
    checkpoint_key: Option<String>,
    /// Where signed checkpoints go: `checkpoint` (the latest) and `checkpoints.jsonl` (all).
    /// Keep it outside the log, out of reach of whoever can write the log.
    #[arg(long, requires = "checkpoint_key")]
    checkpoint_dir: Option<PathBuf>,
    /// Also a checkpoint every this many events.
    #[arg(long, requires = "checkpoint_key")]
    checkpoint_every: Option<u64>,
    /// Seal the log (forward-secure sealing) with this state file, written by `auditring
    /// seal-keygen --state` and replaced at every seal: every --seal-every events, every
    /// minute, and at the end.
    #[arg(long)]
    seal_state: Option<PathBuf>,
    /// Also a seal every this many events.
    #[arg(long, requires = "seal_state")]
    seal_every: Option<u64>,
}

/// Runs `auditring append`.
pub fn run(args: &Args) -> Result<u8, Failure> {
    if let Some(socket) = &args.socket {
        return crate::serve::append(socket, args.receipts, args.json);
    }
    let dir = args
        .dir
        .as_ref()
        .expect("clap requires a directory without --socket");
    let mut builder = auditring::Ring::builder(dir)
        .durability(args.durability.policy())
        .segment_size(args.segment_size)
        .wait_for_lock(args.wait);
    if let (Some(key), Some(dir)) = (&args.checkpoint_key, &args.checkpoint_dir) {
        let mut checkpoints =
            auditring::Checkpoints::new(crate::tlog::signing_key(key)?).to_dir(dir);
        if let Some(n) = args.checkpoint_every {
            checkpoints = checkpoints.every_events(n);
        }
        builder = builder.checkpoints(checkpoints);
    }
    if let Some(state) = &args.seal_state {
        let mut sealing = auditring::Sealing::new(state);
        if let Some(n) = args.seal_every {
            sealing = sealing.every_events(n);
        }
        builder = builder.sealing(sealing);
    }
    let ring = builder.open()?;
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
    // Seqs are gapless and this process is the only writer: the events it appends get the
    // seqs after this one, in the order of their lines.
    let first_seq = ring.snapshot().head_seq() + 1;
    let mut failure = None;
    let mut lines = LineNumbers::default();
    let stdin = io::stdin();
    // Bounded: a line with no end never costs more than `max_line_len` bytes.
    let mut input = Lines::new(stdin.lock(), max_line_len(ring.max_event_size()));
    while let Some((number, line)) = input.next_line() {
        let number = number as u64;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                failure = Some((number, Failure::input(format!("line {number}: {e}"))));
                break;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let event = match parse_line(&line) {
            Ok(e) => e,
            Err(e) => {
                failure = Some((number, Failure::input(format!("line {number}: {e}"))));
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
            failure = Some((number, f));
            break;
        }
        lines.push(number);
    }
    drop(tx);
    // A failed flush fails the close below too, which reports it.
    let _ = ring.flush();
    let closed = ring.close();
    let printed = printer.map(|p| {
        p.join()
            .unwrap_or_else(|_| Err("receipt printer panicked".into()))
    });
    // Events pushed but handed back by the close (it could not write them) are not in the log:
    // everything from the first of their lines on is to be appended again.
    let unwritten = closed.as_ref().err().map_or(0, |e| e.unwritten().len()) as u64;
    let mut written = lines.count() - unwritten;
    // Why a poisoned log could not be read back, if it could not.
    let mut unreadable = None;
    if let Err(e) = &closed {
        // After a failure (a poisoned ring may have sequenced events it could not make
        // durable), what counts is what the log holds now, as the next reader or writer sees
        // it. A ring that was only stalled wrote and synced everything it did not hand back,
        // so the count above is exact even if the log cannot be read now (say, a directory
        // where a segment should be); a poisoned one may have lost what it wrote.
        let poisoned = match e {
            auditring::Error::Unwritten { source, .. } => {
                matches!(**source, auditring::Error::Poisoned { .. })
            }
            e => matches!(e, auditring::Error::Poisoned { .. }),
        };
        match auditring::Reader::open(dir).and_then(|r| r.snapshot()) {
            Ok(snap) => written = written.min((snap.head_seq() + 1).saturating_sub(first_seq)),
            Err(e) if poisoned => unreadable = Some(e),
            Err(_) => {}
        }
    }
    let first_unwritten = match (unwritten > 0).then(|| lines.line_of(written)) {
        Some(line) => Some(line),
        None => failure.as_ref().map(|(line, _)| *line),
    };
    if let Some(line) = first_unwritten {
        let (code, cause) = match (&closed, failure) {
            (Err(auditring::Error::Unwritten { source, .. }), _) => (4, source.to_string()),
            (_, Some((_, f))) => (f.code, f.message),
            (Err(e), None) => (4, e.to_string()),
            (Ok(()), None) => unreachable!("a first unwritten line has a cause"),
        };
        let message = match (written, &unreadable) {
            // Nothing can be said of the lines pushed: say so, rather than count them in.
            (_, Some(e)) => format!(
                "{cause}; the log cannot be read back to tell which lines of this input are in \
                 it ({e}): reopen it (`auditring append` with no input recovers what it can), \
                 then see where it ends (`auditring stat`) before resuming"
            ),
            (0, None) => format!(
                "{cause}; no line of this input is in the log; line {line} and every line after \
                 it were not written: resume from line {line}"
            ),
            (_, None) => format!(
                "{cause}; the {written} event(s) before line {line} are in the log, seqs \
                 {first_seq}..={}; line {line} and every line after it were not written: \
                 resume from line {line}",
                first_seq + written - 1
            ),
        };
        return Err(Failure { code, message });
    }
    closed?;
    if let Some(Err(e)) = printed {
        return Err(Failure {
            code: 4,
            message: e,
        });
    }
    if json {
        let appended = lines.count();
        let head_seq = first_seq + appended - 1;
        let head = auditring::Reader::open(dir)
            .and_then(|r| r.snapshot())
            .map(|s| s.head().to_string())
            .unwrap_or_default();
        println!(r#"{{"appended":{appended},"head_seq":{head_seq},"head_hash":"{head}"}}"#);
    }
    Ok(0)
}

/// The input line of each event pushed, kept compactly: blank lines are skipped, so line and
/// event numbers drift apart only where a blank line was.
#[derive(Default)]
struct LineNumbers {
    /// Events pushed.
    count: u64,
    /// `(event index, line)` where the line of event `index` is not the one after the line of
    /// event `index - 1`; in increasing order.
    jumps: Vec<(u64, u64)>,
}

impl LineNumbers {
    fn push(&mut self, line: u64) {
        if self.count == 0 || self.line_of(self.count - 1) + 1 != line {
            self.jumps.push((self.count, line));
        }
        self.count += 1;
    }

    fn count(&self) -> u64 {
        self.count
    }

    /// The line of event `index` (0-based); for `index == count`, the line after the last.
    fn line_of(&self, index: u64) -> u64 {
        let k = self.jumps.partition_point(|&(i, _)| i <= index);
        match k.checked_sub(1).map(|k| self.jumps[k]) {
            Some((i, line)) => line + (index - i),
            None => index + 1,
        }
    }
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
        assert_eq!(e.actor(), Some("a"));
        assert_eq!(e.trace_id(), Some("t"));
        assert_eq!(e.timestamp_nanos(), Some(5));
        assert_eq!(e.details_json(), Some(r#"{"x": [1, 2]}"#));
        let e = parse_line(r#"{"kind":"k","timestamp":"2026-01-01T00:00:00.000000001Z"}"#).unwrap();
        assert_eq!(e.timestamp_nanos(), Some(1_767_225_600_000_000_001));
        let e = parse_line(r#"{"kind":"k","timestamp":"2026-01-01T01:00:00+01:00"}"#).unwrap();
        assert_eq!(e.timestamp_nanos(), Some(1_767_225_600_000_000_000));
        let e = parse_line(r#"{"kind":"k","details":null}"#).unwrap();
        assert_eq!(e.details_json(), Some("null"));
        assert_eq!(parse_line(r#"{"kind":"k"}"#).unwrap().details_json(), None);
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
