//! Reading a log that its writer prunes meanwhile.
//!
//! A view of a log ([`Snapshot`]) lists its segments when it is taken; retention (in the
//! writer's process) may remove the oldest of them before they are read, and reading one then
//! fails with [`auditring::Error::Pruned`]. Every command that reads a log goes through here:
//!
//! * a command that prints nothing before it has read everything (`stat`, `segments`,
//!   `export`) runs again on a newer view ([`with_snapshot`]);
//! * a command that prints records as it reads them (`query`, `tail`) goes on from the next
//!   record on a newer view ([`scan`]). If the newer view starts past it, the records between
//!   were pruned before they could be read: that is said, on stderr and with `--json` as a
//!   line of its own, and never skipped silently.
//!
//! Both take a newer view a bounded number of times in a row, so a writer pruning faster than
//! a view can be read makes the command fail (exit 4), not loop forever.

use std::io::Write as _;

use auditring::{Reader, RecordRef, Snapshot};

use crate::Failure;

/// How many newer views a command takes in a row before it gives up.
const RETRIES: usize = 100;

/// Runs `f` on a view of the log, and again on a newer one while it fails because retention
/// removed a segment of the view it had.
pub fn with_snapshot<T>(
    reader: &Reader,
    mut f: impl FnMut(&Snapshot) -> Result<T, auditring::Error>,
) -> Result<T, Failure> {
    let mut attempt = 0;
    loop {
        let snap = reader.snapshot()?;
        match f(&snap) {
            Err(auditring::Error::Pruned { .. }) if attempt < RETRIES => attempt += 1,
            other => return other.map_err(Failure::from),
        }
    }
}

/// What [`scan`] hands over.
pub enum Visit<'a> {
    /// The next record.
    Record(&'a RecordRef<'a>),
    /// Seqs `first..=last` were pruned before they could be read.
    Missed {
        /// First seq missed.
        first: u64,
        /// Last seq missed.
        last: u64,
    },
}

/// Reads the records `from..=to` of `snap` (from its first when `from` is `None`) in order,
/// handing each to `visit`, and goes on in a newer view when retention removes a segment
/// first. Returns `Ok(false)` when `visit` did (its output was closed).
pub fn scan(
    reader: &Reader,
    mut snap: Snapshot,
    from: Option<u64>,
    to: u64,
    mut visit: impl FnMut(Visit<'_>) -> Result<bool, Failure>,
) -> Result<bool, Failure> {
    let log_id = snap.log_id();
    // The next seq to read, once one was read or asked for.
    let mut next = from;
    let mut attempt = 0;
    loop {
        let first = snap.first_seq();
        let start = match next {
            Some(n) if n < first => {
                let last = (first - 1).min(to);
                if !visit(Visit::Missed { first: n, last })? {
                    return Ok(false);
                }
                first
            }
            Some(n) => n,
            None => first,
        };
        if start > to {
            return Ok(true);
        }
        {
            let mut records = snap.range(start..=to);
            loop {
                match records.next_ref() {
                    None => return Ok(true),
                    Some(Ok(r)) => {
                        next = Some(r.seq + 1);
                        if !visit(Visit::Record(&r))? {
                            return Ok(false);
                        }
                    }
                    Some(Err(auditring::Error::Pruned { .. })) if attempt < RETRIES => break,
                    Some(Err(e)) => return Err(e.into()),
                }
            }
        }
        attempt += 1;
        snap = reader.snapshot()?;
        if snap.log_id() != log_id {
            return Err(replaced(reader, &snap, &log_id));
        }
    }
}

/// The failure of a log that another one replaced while it was read.
pub fn replaced(reader: &Reader, snap: &Snapshot, log_id: &auditring::LogId) -> Failure {
    Failure {
        code: 1,
        message: format!(
            "the log in {} was replaced by another one (log id {} instead of {log_id})",
            reader.storage().location().display(),
            snap.log_id()
        ),
    }
}

/// Says that seqs `first..=last` were pruned before they could be read: on stderr, and with
/// `json` as a line of `out` of its own, `{"missed":{"first_seq":..,"last_seq":..,"reason":..}}`
/// (no record line has a `missed` member).
pub fn note_missed(out: &mut Vec<u8>, first: u64, last: u64, json: bool) {
    let reason = "pruned before they could be read";
    eprintln!("auditring: seqs {first}..={last} were {reason} (retention removed their segments)");
    if json {
        let line = serde_json::json!({
            "missed": {"first_seq": first, "last_seq": last, "reason": reason}
        });
        let _ = writeln!(out, "{line}");
    }
}
