//! Verification: every segment, every record, every hash, and every byte that must be zero.
//!
//! The walk (specified in `docs/FORMAT.md`, "Verifying a log"):
//!
//! 1. segment files are numbered without gaps; each header's prefix is intact (magic, version,
//!    algorithm, digest), names the file's own number and the log's id, and the file has the
//!    length the prefix declares;
//! 2. each segment starts where the previous one ended: its commit slot's first seq and anchor
//!    are the previous segment's last seq + 1 and head (seq 1 and all zeros for segment 1);
//!    after an unsealed segment, a segment that holds nothing committed may instead lie past a
//!    tear (a crash lost records it was activated after), and is noted, as is every later one,
//!    which must hold nothing committed either;
//! 3. every record of the committed region is checked: magic, seq (gapless), leaf hash
//!    recomputed from the body, chain hash recomputed from the previous one, zero padding, a
//!    body that decodes, and the index entry of every 64th record;
//! 4. the commit slots agree with the records (last seq, head, committed length, for both the
//!    current slot and the older one), a sealed segment ends exactly at its committed length, and
//!    every byte that carries nothing (header page outside prefix and slots, unused index
//!    entries, the space after the records) is zero;
//! 5. in the last segment, if the writer did not close it cleanly, records past the committed
//!    length are accepted while they continue the chain, and non-zero bytes after them are
//!    reported as a torn tail: what a crash leaves, not a failure.
//!
//! So any change to any byte of the committed region of a segment is detected, and reported with
//! the seq it concerns, the file, the byte offset and the reason. What a plain hash chain cannot
//! show on its own, a cut at a record boundary or a consistent rewrite of the whole log, shows
//! against a head obtained out of band (a receipt, an export's manifest).
//!
//! The walk over the segments is in `walk.rs` (step 1, and what it carries from one segment to
//! the next), the checks of each segment in `segment.rs` (steps 2 to 5), checking many records
//! at once in `records.rs`, and the report in `report.rs`.

pub(crate) mod records;
mod report;
mod seal;
mod segment;
pub(crate) mod tree;
pub(crate) mod trust;
mod walk;

use std::path::Path;

use crate::checkpoint::VerifierKey;
use crate::error::Error;
use crate::read::reader::check_dir;
use crate::seal::key::SealKey;
use crate::storage::listing::PRUNE_RETRIES;
use crate::storage::{FsStorage, Storage};
pub use report::{CheckpointCheck, VerifyReport};
use seal::SealOptions;
pub use seal::SealReport;
use trust::CheckpointTrust;
use walk::verify_once;

/// What [`verify()`] and [`verify_storage`] do besides checking the log on its own: report
/// progress, and compare the log with checkpoints obtained elsewhere. Built with
/// [`VerifyOptions::new`] (or `default()`) and its setters, so that options can be added
/// without breaking callers.
#[derive(Default)]
#[non_exhaustive]
#[must_use]
pub struct VerifyOptions<'a> {
    /// Called with `(bytes_done, bytes_total)`, in bytes of segment files, as the walk goes.
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    trust: CheckpointTrust,
    seals: SealOptions,
}

impl<'a> VerifyOptions<'a> {
    /// No progress reporting.
    pub fn new() -> VerifyOptions<'a> {
        VerifyOptions::default()
    }

    /// Reports progress to `progress(bytes_done, bytes_total)`.
    pub fn progress(mut self, progress: &'a mut dyn FnMut(u64, u64)) -> VerifyOptions<'a> {
        self.progress = Some(progress);
        self
    }

    /// Also proves the log consistent with `note`, a signed checkpoint of it
    /// (`docs/FORMAT.md` §15.4) obtained out of band: signed by a key given to
    /// [`VerifyOptions::trusted_key`], for this log's origin, and the log's first `size` records
    /// must hash to its root. A log shorter than the checkpoint fails with
    /// [`Reason::CheckpointCut`](crate::Reason::CheckpointCut), one whose records differ with
    /// [`Reason::CheckpointRoot`](crate::Reason::CheckpointRoot), which, given several
    /// checkpoints, says after which one the records were changed. Repeatable.
    pub fn checkpoint(mut self, note: impl Into<String>) -> VerifyOptions<'a> {
        self.trust.notes.push(note.into());
        self
    }

    /// Checks every seal record against `key`, the initial sealing key the ring's state file
    /// was made from (forward-secure sealing, `docs/FORMAT.md` §16.4): a seal whose MAC does
    /// not verify fails with [`Reason::SealMac`](crate::Reason::SealMac), a seal out of the
    /// order of epochs with [`Reason::SealEpoch`](crate::Reason::SealEpoch). The report's
    /// [`seals`](VerifyReport::seals) says how far the log is sealed; records after the last
    /// seal are reported as unsealed, never as sealed.
    pub fn seal_key(mut self, key: SealKey) -> VerifyOptions<'a> {
        self.seals.key = Some(key);
        self
    }

    /// With [`VerifyOptions::seal_key`]: fails with
    /// [`Reason::SealMissing`](crate::Reason::SealMissing) unless the log holds a seal for
    /// `epoch` or a later one. An auditor who saw epoch `epoch` sealed (in an earlier
    /// verification) catches seals removed from the end of the log.
    pub fn expect_epoch(mut self, epoch: u64) -> VerifyOptions<'a> {
        self.seals.expect_epoch = Some(epoch);
        self
    }

    /// Trusts checkpoints signed by `key` (any one trusted key's signature suffices).
    pub fn trusted_key(mut self, key: VerifierKey) -> VerifyOptions<'a> {
        self.trust.keys.push(key);
        self
    }

    /// Trusts cosignatures by `key`, a witness's key (C2SP `tlog-cosignature`; its note key or
    /// cosigner key). With [`VerifyOptions::quorum`], every checkpoint must be cosigned by
    /// that many of them.
    pub fn witness(mut self, key: VerifierKey) -> VerifyOptions<'a> {
        self.trust.witnesses.push(key);
        self
    }

    /// Requires every checkpoint to carry valid cosignatures of at least `k` distinct
    /// witnesses given to [`VerifyOptions::witness`] (default 0: none required).
    pub fn quorum(mut self, k: usize) -> VerifyOptions<'a> {
        self.trust.quorum = k;
        self
    }

    /// The origin the checkpoints must have (default: `auditring/` and the log id, what a
    /// ring signs unless told otherwise).
    pub fn origin(mut self, origin: impl Into<String>) -> VerifyOptions<'a> {
        self.trust.origin = Some(origin.into());
        self
    }
}

impl std::fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Verifies the log in directory `dir`. Fails only when the log cannot be read; integrity
/// failures are in the report.
pub fn verify(dir: impl AsRef<Path>, options: VerifyOptions<'_>) -> Result<VerifyReport, Error> {
    let dir = dir.as_ref();
    check_dir(dir)?;
    verify_storage(&FsStorage::new(dir), options)
}

/// Verifies the log in `storage`: [`verify()`] on any [`Storage`].
///
/// The log may have a live writer, which moves on while the walk reads it. The walk starts
/// again, on a newer listing (a bounded number of times, see `crate::storage::listing`), when:
///
/// * retention removed the oldest segments before they were opened, so that what it removed
///   is not reported as missing (a segment missing between others is);
/// * a segment was found not sealed, and a later one sealed, because the writer sealed both
///   between the reads of their headers (one that is still not sealed is a failure).
pub fn verify_storage(
    storage: &dyn Storage,
    options: VerifyOptions<'_>,
) -> Result<VerifyReport, Error> {
    let checkpoints = options.trust.open()?;
    let mut no_progress = |_, _| {};
    let progress = options.progress.unwrap_or(&mut no_progress);
    let mut attempt = 0;
    let report = loop {
        let last = attempt == PRUNE_RETRIES;
        match verify_once(storage, progress, last, &checkpoints, &options.seals) {
            Err(Error::Pruned { .. }) | Ok(None) if !last => attempt += 1,
            Ok(report) => break report.expect("the last walk is not walked again"),
            Err(e) => return Err(e),
        }
    };
    if let Some(log_id) = report.log_id {
        options.trust.check_origin(log_id, &checkpoints)?;
    }
    Ok(report)
}
