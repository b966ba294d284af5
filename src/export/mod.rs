//! Exports: a range of a snapshot as a self-verifying directory that anyone can check offline.
//!
//! An export directory holds one data file and `manifest.json`:
//!
//! * `events.jsonl` ([`Encoding::Jsonl`]): one line per record, see
//!   [`RecordRef::write_json_line`](crate::RecordRef::write_json_line);
//! * `records.bin` ([`Encoding::Bundle`]): the records exactly as a segment stores them;
//! * `manifest.json` ([`Manifest`]): the range, the chain hashes before and after it, the log's
//!   identity, and the size and SHA-256 of the data file.
//!
//! It is written from a [`Snapshot`], so producers keep writing meanwhile, and
//! published atomically (see `atomic`): a reader never sees half an export. Exports of
//! consecutive ranges link up: each one's anchor is the previous one's head.
//! [`verify_export`] checks one without the log.

mod atomic;
mod check;
mod input;
mod manifest;
mod tree;

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

pub use crate::error::ExportError;
use crate::error::{Error, IntegrityError, Reason};
use crate::format::hash::Hash;
use crate::read::snapshot::Snapshot;
use crate::storage::exported::Coverage;
use crate::verify::records;

pub use check::{VerifyExportOptions, VerifyExportReport, verify_export};
pub use input::{MAX_LINE_BYTES, MAX_MANIFEST_BYTES, MAX_RECORD_BYTES};
pub use manifest::{
    Encoding, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, ManifestError,
    ManifestFile,
};
pub use tree::TREE_FILE;

use atomic::{PublishError, StagedDir};

/// Which records to export: always a contiguous range of seqs, so that the chain can be
/// checked from the anchor to the head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Selection {
    /// Every record of the snapshot.
    #[default]
    All,
    /// Seqs from `from` to `to`, both included (`None`: the snapshot's first or last).
    Seqs {
        /// First seq, or the snapshot's first.
        from: Option<u64>,
        /// Last seq, or the snapshot's last.
        to: Option<u64>,
    },
    /// The smallest range holding every record whose origin timestamp is at or after `since`
    /// and before `until` (records in between whose timestamps fall outside are included too:
    /// origin timestamps need not grow with the seq).
    Time {
        /// Inclusive lower bound, nanoseconds since the Unix epoch.
        since: Option<i64>,
        /// Exclusive upper bound.
        until: Option<i64>,
    },
    /// The last `n` records.
    Last(u64),
}

/// Options of [`Snapshot::export`]: which records, how encoded, whether an earlier export is
/// replaced, and where progress goes. Built with [`ExportOptions::new`] (or `default()`) and its
/// setters, so that options can be added without breaking callers.
#[derive(Default)]
#[non_exhaustive]
#[must_use]
pub struct ExportOptions<'a> {
    /// Which records (default: all).
    pub selection: Selection,
    /// How they are encoded (default: JSON lines).
    pub encoding: Encoding,
    /// Replace an existing output, atomically, if it is an earlier export (default: no).
    pub force: bool,
    /// Called with `(records_done, records_total)` as the export goes.
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// A signed checkpoint to tie the export to (see [`ExportOptions::checkpoint`]).
    pub checkpoint: Option<String>,
}

impl<'a> ExportOptions<'a> {
    /// Every record, as JSON lines, never replacing anything, no progress reporting.
    pub fn new() -> ExportOptions<'a> {
        ExportOptions::default()
    }

    /// Exports the records `selection` names.
    pub fn selection(mut self, selection: Selection) -> ExportOptions<'a> {
        self.selection = selection;
        self
    }

    /// Encodes them as `encoding`.
    pub fn encoding(mut self, encoding: Encoding) -> ExportOptions<'a> {
        self.encoding = encoding;
        self
    }

    /// Replaces an existing output that is an earlier export (and only that), atomically.
    pub fn force(mut self, force: bool) -> ExportOptions<'a> {
        self.force = force;
        self
    }

    /// Reports progress to `progress(records_done, records_total)`.
    pub fn progress(mut self, progress: &'a mut dyn FnMut(u64, u64)) -> ExportOptions<'a> {
        self.progress = Some(progress);
        self
    }

    /// Ties the export to `note`, a signed checkpoint of the log (`docs/FORMAT.md` §13.6): the
    /// export also holds [`TREE_FILE`], with the checkpoint, the hashes of the tree before the
    /// export's first record, and, if the checkpoint is larger than the export, a consistency
    /// proof to it. [`VerifyExportOptions::checkpoint`] (or the checkpoint it carries, with
    /// [`VerifyExportOptions::trusted_key`]) then proves the export's records are those the
    /// checkpoint signed. The checkpoint's size must be at least the export's first seq − 1
    /// and at most the snapshot's head seq, and its root the log's.
    pub fn checkpoint(mut self, note: impl Into<String>) -> ExportOptions<'a> {
        self.checkpoint = Some(note.into());
        self
    }
}

impl std::fmt::Debug for ExportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("selection", &self.selection)
            .field("encoding", &self.encoding)
            .field("force", &self.force)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Whether `path` is a directory holding a manifest and nothing but the files of an export:
/// the only thing `force` may replace.
fn is_export_dir(path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(path) else {
        return false;
    };
    let mut has_manifest = false;
    for e in entries {
        let Ok(e) = e else { return false };
        let name = e.file_name();
        match name.to_str() {
            Some(MANIFEST_FILE) => has_manifest = true,
            Some(n)
                if n == Encoding::Jsonl.file_name()
                    || n == Encoding::Bundle.file_name()
                    || n == TREE_FILE => {}
            _ => return false,
        }
        if !e.file_type().is_ok_and(|t| t.is_file()) {
            return false;
        }
    }
    has_manifest
}

/// RFC 3339 text (UTC, nanoseconds) of a timestamp.
pub(crate) fn rfc3339(nanos: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| nanos.to_string())
}

impl Snapshot {
    /// Writes the selected records to a new export directory `out` and returns its manifest.
    pub fn export(
        &self,
        out: impl AsRef<Path>,
        options: ExportOptions<'_>,
    ) -> Result<Manifest, Error> {
        let mut no_progress = |_, _| {};
        let progress = match options.progress {
            Some(p) => p,
            None => &mut no_progress,
        };
        let out = out.as_ref();
        let encoding = options.encoding;
        let (from, to) = self.select(&options.selection)?;
        if out.exists() {
            if !options.force {
                return Err(ExportError::OutputExists {
                    path: out.to_path_buf(),
                }
                .into());
            }
            if !is_export_dir(out) {
                return Err(ExportError::NotReplaceable {
                    path: out.to_path_buf(),
                }
                .into());
            }
        }
        let anchor = if from == self.first_seq() {
            self.anchor()
        } else {
            self.get(from - 1)?.map_or(self.anchor(), |r| r.chain)
        };
        let io = |what: &str, e: io::Error| Error::io(format!("{what} {}", out.display()), e);
        // Before anything is written: a checkpoint that cannot be tied fails the export.
        let tree = match &options.checkpoint {
            Some(note) => Some(tree::tree_file(self, from, to, note)?),
            None => None,
        };
        let staged = StagedDir::new(
            out,
            &[
                MANIFEST_FILE,
                Encoding::Jsonl.file_name(),
                Encoding::Bundle.file_name(),
                TREE_FILE,
            ],
        )
        .map_err(|e| io("creating a directory beside", e))?;
        let data_path = staged.path.join(encoding.file_name());
        let DataFile {
            bytes,
            sha256,
            head,
        } = self
            .write_records(&data_path, encoding, from, to, anchor, progress)
            .map_err(|e| match e {
                Written::Io(e) => io("writing", e),
                Written::Log(e) => e,
            })?;
        let exported_at_ns = crate::format::event::now_nanos();
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            encoding,
            chain: "sha256".into(),
            log_id: self.log_id(),
            source: self.location().display().to_string(),
            first_seq: from,
            last_seq: to,
            count: to - from + 1,
            anchor,
            head,
            exported_at: rfc3339(exported_at_ns),
            exported_at_ns,
            files: vec![ManifestFile {
                name: encoding.file_name().into(),
                bytes,
                sha256,
            }],
        };
        let mut text = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        text.push(b'\n');
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            // Only the source path is unbounded; a verifier would not read such a manifest.
            let why = format!(
                "it would be {} bytes, more than a manifest may be ({MAX_MANIFEST_BYTES}): the \
                 log's path is too long",
                text.len()
            );
            return Err(io(
                "writing the manifest of",
                io::Error::new(io::ErrorKind::InvalidInput, why),
            ));
        }
        if let Some(tree) = &tree {
            write_synced(&staged.path.join(TREE_FILE), tree)
                .map_err(|e| io("writing the tree file of", e))?;
        }
        write_synced(&staged.path.join(MANIFEST_FILE), &text)
            .map_err(|e| io("writing the manifest of", e))?;
        staged.publish(options.force).map_err(|e| match e {
            PublishError::Exists => Error::from(ExportError::OutputExists {
                path: out.to_path_buf(),
            }),
            PublishError::Io(e) => io("publishing", e),
        })?;
        // Best effort: the export is complete either way. Only a ring holding its log at its
        // size until an export covers it (`Unexported::Wait`) depends on the marker, and it
        // keeps waiting if the log's directory cannot be written.
        let location = out.display().to_string();
        let _ = Coverage::extend(
            self.storage(),
            self.first_seq(),
            (from, to),
            head,
            Some(&location),
        );
        Ok(manifest)
    }

    /// Records in the log's export marker (`docs/FORMAT.md` §14.3) that seqs
    /// `first_seq..=last_seq` of this snapshot are kept at `location` (an object-storage URL
    /// they were shipped to, an archive): a ring whose retention waits for exports
    /// ([`Unexported::Wait`](crate::Unexported::Wait)) may then prune them, and its prune
    /// record names `location`. [`Snapshot::export`] does this itself.
    ///
    /// The marker covers a range from the log's first seq without a gap: a range that would
    /// leave one is not recorded (this returns `Ok`, and the marker is as it was).
    pub fn mark_exported(
        &self,
        first_seq: u64,
        last_seq: u64,
        location: &str,
    ) -> Result<(), Error> {
        let (from, to) = self.select(&Selection::Seqs {
            from: Some(first_seq),
            to: Some(last_seq),
        })?;
        let head = self.get(to)?.map(|r| r.chain).ok_or(Error::Closed)?;
        Coverage::extend(
            self.storage(),
            self.first_seq(),
            (from, to),
            head,
            Some(location),
        )
        .map_err(|e| {
            Error::io(
                format!(
                    "recording the export of seqs {from}..={to} in {}",
                    self.storage().location().display()
                ),
                e,
            )
        })
    }

    /// The seqs a selection stands for, checked against the snapshot.
    pub fn select(&self, selection: &Selection) -> Result<(u64, u64), Error> {
        let (first, last) = (self.first_seq(), self.head_seq());
        let empty = || Error::from(ExportError::EmptyRange { first, last });
        let (from, to) = match *selection {
            Selection::All => (first, last),
            Selection::Seqs { from, to } => (from.unwrap_or(first), to.unwrap_or(last)),
            Selection::Last(n) => {
                if n == 0 {
                    return Err(empty());
                }
                ((last + 1).saturating_sub(n).max(first), last)
            }
            Selection::Time { since, until } => {
                let mut q = crate::read::snapshot::Query::new();
                if let Some(s) = since {
                    q = q.since(s);
                }
                if let Some(u) = until {
                    q = q.until(u);
                }
                let mut found: Option<(u64, u64)> = None;
                let mut records = self.iter();
                while let Some(r) = records.next_ref() {
                    let r = r?;
                    if q.matches(&r) {
                        found = Some((found.map_or(r.seq, |f| f.0), r.seq));
                    }
                }
                found.ok_or_else(empty)?
            }
        };
        if last < first {
            return Err(empty());
        }
        let outside = if from <= to {
            from < first || to > last
        } else {
            from > last || to < first
        };
        if !outside && from > to {
            return Err(empty());
        }
        if outside {
            return Err(ExportError::OutsideLog {
                from,
                to,
                first,
                last,
            }
            .into());
        }
        Ok((from, to))
    }

    /// Writes records `from..=to` to `path` in `encoding`. Returns the file's size and digest,
    /// and the head (see [`DataFile`]).
    ///
    /// Both encodings go through one check, the one `verify` runs on a log and
    /// [`verify_export`] on a bundle: the segments' records are read in batches, and both hashes
    /// of every record, its padding, its body and its seq are checked (on every core) before
    /// any of it is written, so a damaged log is not exported. Each record must then be one the
    /// encoding can hold so that the export verifies: a bundle record no longer than
    /// [`MAX_RECORD_BYTES`]; a JSONL line no longer than [`MAX_LINE_BYTES`] whose details, if
    /// in the `details` member, are JSON text (see `check::json_line`). A record that is not
    /// is refused with
    /// [`ExportError::Unrepresentable`], and nothing is published: an export either verifies
    /// or is not written.
    fn write_records(
        &self,
        path: &Path,
        encoding: Encoding,
        from: u64,
        to: u64,
        anchor: Hash,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<DataFile, Written> {
        let file = File::create_new(path).map_err(Written::Io)?;
        // A bundle is the bytes read, so they are hashed as they are read, on the reading
        // thread, overlapping with the checks; JSONL lines are hashed as they are written.
        let mut read_digest = (encoding == Encoding::Bundle).then(Sha256::new);
        let mut out = HashingWriter::new(
            BufWriter::with_capacity(1 << 20, file),
            encoding == Encoding::Jsonl,
        );
        let total = to - from + 1;
        let (mut next, mut prev) = (from, anchor);
        let mut line = Vec::with_capacity(1024);
        let unrepresentable = |seq, why| {
            Written::Log(
                ExportError::Unrepresentable {
                    seq,
                    encoding: match encoding {
                        Encoding::Jsonl => "jsonl",
                        Encoding::Bundle => "bundle",
                    },
                    why,
                }
                .into(),
            )
        };
        for region in self.regions(from, to).map_err(Written::Log)? {
            let fail = |offset: u64, seq: u64, reason: Reason| {
                Written::Log(
                    IntegrityError {
                        seq: Some(seq),
                        file: region.path.clone(),
                        offset,
                        reason,
                    }
                    .into(),
                )
            };
            debug_assert_eq!(next, region.first_seq);
            let mut at = region.start;
            let read = |b: &mut [u8]| {
                let n = region.file.read_at(b, at)?;
                if let Some(h) = read_digest.as_mut() {
                    h.update(&b[..n]);
                }
                at += n as u64;
                Ok(n)
            };
            records::for_each_batch(read, region.start, region.end, Written::Io, |b| {
                let split = &b.split;
                let checks = records::check_records(&b.buf, &split.spans, &prev);
                for (span, check) in split.spans.iter().zip(checks) {
                    if span.header.seq != next {
                        let found = span.header.seq;
                        let expected = next;
                        return Err(fail(span.offset, next, Reason::Seq { expected, found }));
                    }
                    check.map_err(|reason| fail(span.offset, next, reason))?;
                    prev = span.header.chain;
                    next += 1;
                }
                if let Some((offset, reason)) = split.broken.clone() {
                    return Err(fail(offset, next, reason));
                }
                match encoding {
                    Encoding::Bundle => {
                        if let Some(s) = split
                            .spans
                            .iter()
                            .find(|s| s.header.total_len() > MAX_RECORD_BYTES)
                        {
                            let why = format!(
                                "it is {} bytes, more than an export's record may be \
                                 ({MAX_RECORD_BYTES})",
                                s.header.total_len()
                            );
                            return Err(unrepresentable(s.header.seq, why));
                        }
                        out.write_all(&b.buf[..split.used]).map_err(Written::Io)?;
                    }
                    Encoding::Jsonl => {
                        for s in &split.spans {
                            let h = &s.header;
                            check::json_line(&mut line, h.seq, h.leaf, h.chain, s.body(&b.buf))
                                .map_err(|why| unrepresentable(h.seq, why))?;
                            out.write_all(&line).map_err(Written::Io)?;
                        }
                    }
                }
                progress(next - from, total);
                Ok(())
            })?;
            debug_assert_eq!(next, region.last_seq + 1);
        }
        if next != to + 1 {
            return Err(Written::Log(Error::io(
                format!("exporting from {}", self.location().display()),
                io::Error::other("the snapshot's records ended early"),
            )));
        }
        let (bytes, digest, inner) = out.finish();
        let digest = read_digest.map_or(digest, |h| Hash(h.finalize().into()));
        let file = inner
            .into_inner()
            .map_err(|e| Written::Io(e.into_error()))?;
        file.sync_all().map_err(Written::Io)?;
        Ok(DataFile {
            bytes,
            sha256: digest,
            head: prev,
        })
    }
}

/// The data file of an export, as written.
struct DataFile {
    /// Its size.
    bytes: u64,
    /// Its SHA-256.
    sha256: Hash,
    /// The chain hash of its last record.
    head: Hash,
}

/// A failure while writing an export: of the output, or of the log being read.
enum Written {
    Io(io::Error),
    Log(Error),
}

/// Writes through, counting the bytes and, unless told not to, hashing them.
struct HashingWriter<W> {
    inner: W,
    /// Whether to hash what is written (otherwise only counted: the caller hashes it).
    hashing: bool,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W, hashing: bool) -> Self {
        HashingWriter {
            inner,
            hashing,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    fn finish(self) -> (u64, Hash, W) {
        (self.bytes, Hash(self.hasher.finalize().into()), self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.hashing {
            self.hasher.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a new file and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = File::create_new(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}
