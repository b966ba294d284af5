//! Checking an export without the log it came from.
//!
//! The manifest must be intact; the data file must have the size and SHA-256 the manifest
//! states; every record must carry the next seq, a leaf hash that is the SHA-256 of its body
//! (for JSONL, the body is rebuilt from the line, as `docs/FORMAT.md` specifies), and a chain
//! hash that follows from the previous one, starting at the manifest's anchor and ending at its
//! head. Optionally the head must equal one obtained out of band, and the export must continue a
//! previous one.
//!
//! The work is bounded whatever the files hold: the manifest and the data file are opened
//! without following a symbolic link and without blocking (a FIFO), and read only if they are
//! regular files; the manifest is read only up to [`MAX_MANIFEST_BYTES`](super::MAX_MANIFEST_BYTES); the data file is read
//! as a stream, up to the size it had when opened, one line of at most [`MAX_LINE_BYTES`] or one
//! batch of records (a record of at most [`MAX_RECORD_BYTES`]) at a time.

use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::input::{MAX_LINE_BYTES, MAX_RECORD_BYTES, open_regular};
use super::manifest::{Encoding, MANIFEST_FILE, Manifest, ManifestError};
use super::tree::{self, ExportTree, TREE_FILE, TreeFile, read_tree_file};
use crate::checkpoint::VerifierKey;
use crate::error::ExportError;
use crate::error::{Error, IntegrityError, Reason};
use crate::format::event::decode_body;
use crate::format::hash::{Hash, leaf_hash};
use crate::sys::parallel::par_map;
use crate::verify::CheckpointCheck;
use crate::verify::records;
use crate::verify::tree::OpenedCheckpoint;
use crate::verify::trust::CheckpointTrust;

/// What [`verify_export`] checks besides the export itself, and where progress goes. Built
/// with [`VerifyExportOptions::new`] (or `default()`) and its setters, so that options can be
/// added without breaking callers.
#[derive(Default)]
#[non_exhaustive]
#[must_use]
pub struct VerifyExportOptions<'a> {
    /// The head the export must end at, obtained out of band (a receipt, a published value).
    pub expect_head: Option<Hash>,
    /// The manifest of an export this one must continue.
    pub after: Option<Manifest>,
    /// Called with `(bytes_done, bytes_total)` as the check goes.
    pub progress: Option<&'a mut dyn FnMut(u64, u64)>,
    /// Checkpoints to compare the export with, and the keys trusted to sign them.
    trust: CheckpointTrust,
}

impl<'a> VerifyExportOptions<'a> {
    /// The export alone, no progress reporting.
    pub fn new() -> VerifyExportOptions<'a> {
        VerifyExportOptions::default()
    }

    /// Requires the export to end at `head`.
    pub fn expect_head(mut self, head: Hash) -> VerifyExportOptions<'a> {
        self.expect_head = Some(head);
        self
    }

    /// Requires the export to continue the export whose manifest is `previous`.
    pub fn after(mut self, previous: Manifest) -> VerifyExportOptions<'a> {
        self.after = Some(previous);
        self
    }

    /// Reports progress to `progress(bytes_done, bytes_total)`.
    pub fn progress(mut self, progress: &'a mut dyn FnMut(u64, u64)) -> VerifyExportOptions<'a> {
        self.progress = Some(progress);
        self
    }

    /// Also proves the export's records are those `note`, a signed checkpoint of the log
    /// obtained out of band, signed (`docs/FORMAT.md` §13.6): its size must lie within the
    /// export's reach (from its first seq − 1 to its last seq, given the tree file an export
    /// tied to a checkpoint carries for an export that does not start at seq 1), or be the size
    /// of the checkpoint the export carries a consistency proof to. A difference fails with
    /// [`Reason::CheckpointRoot`](crate::Reason::CheckpointRoot). Repeatable. Without any, and
    /// with a [`VerifyExportOptions::trusted_key`], the checkpoint the export carries is used.
    pub fn checkpoint(mut self, note: impl Into<String>) -> VerifyExportOptions<'a> {
        self.trust.notes.push(note.into());
        self
    }

    /// Trusts checkpoints signed by `key` (any one trusted key's signature suffices).
    pub fn trusted_key(mut self, key: VerifierKey) -> VerifyExportOptions<'a> {
        self.trust.keys.push(key);
        self
    }

    /// Trusts cosignatures by `key`, a witness's key; see [`VerifyExportOptions::quorum`].
    pub fn witness(mut self, key: VerifierKey) -> VerifyExportOptions<'a> {
        self.trust.witnesses.push(key);
        self
    }

    /// Requires every checkpoint to carry valid cosignatures of at least `k` distinct
    /// witnesses given to [`VerifyExportOptions::witness`].
    pub fn quorum(mut self, k: usize) -> VerifyExportOptions<'a> {
        self.trust.quorum = k;
        self
    }

    /// The origin the checkpoints must have (default: `auditring/` and the log id).
    pub fn origin(mut self, origin: impl Into<String>) -> VerifyExportOptions<'a> {
        self.trust.origin = Some(origin.into());
        self
    }
}

impl std::fmt::Debug for VerifyExportOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyExportOptions")
            .field("expect_head", &self.expect_head)
            .field("after", &self.after)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What [`verify_export`] found.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct VerifyExportReport {
    /// The export directory.
    pub path: PathBuf,
    /// Its manifest, if it could be read.
    pub manifest: Option<Manifest>,
    /// Records checked (up to the failure, if there is one).
    pub events: u64,
    /// Seq of the first record.
    pub first_seq: u64,
    /// Seq of the last record checked.
    pub last_seq: u64,
    /// Chain hash after the last record checked.
    pub head: Hash,
    /// The checkpoints the export was compared with, smallest first.
    pub checkpoints: Vec<CheckpointCheck>,
    /// The first failure; `None` when the export is valid.
    pub failure: Option<IntegrityError>,
}

impl VerifyExportReport {
    /// The report on `dir` before anything was read.
    fn new(dir: &Path) -> VerifyExportReport {
        VerifyExportReport {
            path: dir.to_path_buf(),
            manifest: None,
            events: 0,
            first_seq: 0,
            last_seq: 0,
            head: Hash::ZERO,
            checkpoints: Vec::new(),
            failure: None,
        }
    }

    /// Whether the export verified.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

/// Verifies the export in directory `dir`. Fails only when it cannot be read or is not an
/// export; integrity failures are in the report.
pub fn verify_export(
    dir: impl AsRef<Path>,
    mut options: VerifyExportOptions<'_>,
) -> Result<VerifyExportReport, Error> {
    let mut no_progress = |_, _| {};
    let progress = match options.progress.take() {
        Some(p) => p,
        None => &mut no_progress,
    };
    let dir = dir.as_ref();
    check_is_dir(dir)?;
    let given = options.trust.open()?;
    let mut report = VerifyExportReport::new(dir);
    let manifest = match read_manifest(dir)? {
        Ok(m) => m,
        Err(damaged) => {
            report.failure = Some(damaged);
            return Ok(report);
        }
    };
    report.manifest = Some(manifest.clone());
    let tied = match tie(dir, &manifest, &options.trust, given)? {
        Ok(tied) => tied,
        Err(damaged) => {
            report.failure = Some(damaged);
            return Ok(report);
        }
    };
    report.first_seq = manifest.first_seq;
    report.last_seq = manifest.first_seq - 1;
    report.head = manifest.anchor;
    let path = dir.join(&manifest.files[0].name);
    let (data, actual_len) = match open_data(&path)? {
        Ok(opened) => opened,
        Err(damaged) => {
            report.failure = Some(damaged);
            return Ok(report);
        }
    };
    // Never more than the file held when it was opened, however it grows meanwhile.
    let mut reader = DigestReader::new(data.take(actual_len));
    let mut walk = Walk::new(path.clone(), &manifest);
    walk.tree = tied.as_ref().map(Tied::tree_start);
    let walked = walk.records(manifest.encoding, &mut reader, actual_len, progress);
    report.events = walk.events;
    report.last_seq = walk.next_seq - 1;
    report.head = walk.head;
    match walked {
        Err(Stop::Io(e)) => return Err(Error::io(format!("reading {}", path.display()), e)),
        Err(Stop::Failed(e)) => {
            report.failure = Some(e);
            return Ok(report);
        }
        Ok(()) => {}
    }
    let ending = Ending {
        dir,
        manifest: &manifest,
        walk: &walk,
        len: actual_len,
        digest: reader.finish(),
    };
    report.failure = ending.check(&options);
    if let (None, Some(tied), Some(tree)) = (&report.failure, &tied, &walk.tree) {
        let (checks, failure) = tree::compare(
            &tied.checkpoints,
            tree,
            tied.file.as_ref(),
            (manifest.first_seq, manifest.last_seq),
            &path,
        );
        report.checkpoints = checks;
        report.failure = failure;
    }
    Ok(report)
}

/// The checkpoints an export is compared with, and its tree file.
struct Tied {
    checkpoints: Vec<OpenedCheckpoint>,
    file: Option<TreeFile>,
    first_seq: u64,
}

impl Tied {
    /// The tree before the export's first record, from the tree file's prefix (none needed
    /// for an export from seq 1).
    fn tree_start(&self) -> ExportTree {
        let prefix = self.file.as_ref().map(TreeFile::prefix).unwrap_or_default();
        let sizes: Vec<u64> = self
            .checkpoints
            .iter()
            .map(|c| c.checkpoint.size())
            .collect();
        ExportTree::new(self.first_seq, prefix, &sizes).expect("checked by `tie`")
    }
}

/// Which checkpoints the export is compared with (`given`, or the one its tree file carries),
/// with its tree file: `Ok(Ok(None))` when there is none to compare with; an integrity failure
/// for a tree file that cannot be used.
fn tie(
    dir: &Path,
    manifest: &Manifest,
    trust: &CheckpointTrust,
    given: Vec<OpenedCheckpoint>,
) -> Result<Result<Option<Tied>, IntegrityError>, Error> {
    if trust.keys.is_empty() {
        return Ok(Ok(None));
    }
    let file = match read_tree_file(dir)? {
        Ok(file) => file,
        Err(damaged) => return Ok(Err(damaged)),
    };
    let damaged = |why: String| {
        Ok(Err(IntegrityError {
            seq: None,
            file: dir.join(TREE_FILE),
            offset: 0,
            reason: Reason::ExportTree(why),
        }))
    };
    if let Some(f) = &file {
        if !f.covers(manifest.first_seq, manifest.last_seq) {
            return damaged(format!(
                "it is for another range than the manifest's ({} to {})",
                manifest.first_seq, manifest.last_seq
            ));
        }
        if ExportTree::new(manifest.first_seq, f.prefix(), &[]).is_none() {
            return damaged(format!(
                "its prefix does not have one hash per 1 bit of {}",
                manifest.first_seq - 1
            ));
        }
    }
    let checkpoints = match (&file, given.is_empty()) {
        (Some(f), true) => trust.open_notes(&[f.note().to_owned()])?,
        _ => given,
    };
    if checkpoints.is_empty() {
        return Err(Error::Checkpoint(
            "no checkpoint to compare the export with: give one, or export it with one".into(),
        ));
    }
    trust.check_origin(manifest.log_id, &checkpoints)?;
    if file.is_none() && manifest.first_seq > 1 {
        return Err(Error::Checkpoint(format!(
            "the export starts at seq {} and carries no {TREE_FILE}: it cannot be compared \
             with a checkpoint (export it with one)",
            manifest.first_seq
        )));
    }
    Ok(Ok(Some(Tied {
        checkpoints,
        file,
        first_seq: manifest.first_seq,
    })))
}

/// An export is a directory: anything else is not an export.
fn check_is_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(ExportError::NotAnExport {
            path: dir.to_path_buf(),
            reason: ManifestError::NotADirectory,
        }
        .into()),
        Err(e) => Err(Error::io(format!("opening {}", dir.display()), e)),
    }
}

/// Reads the manifest of the export in `dir` (checks 1 and 2 of `docs/FORMAT.md` §13.4): the
/// manifest, or the failure of a damaged one; an error when there is none (not an export).
fn read_manifest(dir: &Path) -> Result<Result<Manifest, IntegrityError>, Error> {
    match Manifest::read(dir) {
        Ok(m) => Ok(Ok(m)),
        Err(ManifestError::Damaged(why)) => Ok(Err(IntegrityError {
            seq: None,
            file: dir.join(MANIFEST_FILE),
            offset: 0,
            reason: Reason::Manifest(why),
        })),
        Err(reason) => Err(ExportError::NotAnExport {
            path: dir.to_path_buf(),
            reason,
        }
        .into()),
    }
}

/// Opens the data file at `path` (check 3 of `docs/FORMAT.md` §13.4): the file and its size
/// when opened, or the failure when the manifest vouches for a file that is not there, or is
/// not a regular file (the export is damaged).
fn open_data(path: &Path) -> Result<Result<(std::fs::File, u64), IntegrityError>, Error> {
    let damaged = |reason| IntegrityError {
        seq: None,
        file: path.to_path_buf(),
        offset: 0,
        reason,
    };
    match open_regular(path) {
        Ok(Ok(opened)) => Ok(Ok(opened)),
        Ok(Err(what)) => Ok(Err(damaged(Reason::NotRegularFile { what }))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Err(damaged(Reason::MissingFile))),
        Err(e) => Err(Error::io(format!("opening {}", path.display()), e)),
    }
}

/// What a walk through every record of an export found, for the checks that follow it.
struct Ending<'a> {
    dir: &'a Path,
    manifest: &'a Manifest,
    walk: &'a Walk,
    /// The data file's size when opened.
    len: u64,
    /// Its SHA-256.
    digest: Hash,
}

impl Ending<'_> {
    /// Checks 5 to 10 of `docs/FORMAT.md` §13.4, in order: the data file's size and digest are
    /// the manifest's, the records end at its last seq and its head, which is the one expected,
    /// and the export continues the previous one. The first failure, if any.
    fn check(&self, options: &VerifyExportOptions) -> Option<IntegrityError> {
        let Ending {
            dir,
            manifest,
            walk,
            len,
            digest,
        } = *self;
        let file = &manifest.files[0];
        let fail = |seq, offset, reason| {
            Some(IntegrityError {
                seq,
                file: walk.path.clone(),
                offset,
                reason,
            })
        };
        let end_seq = walk.next_seq;
        if len != file.bytes {
            fail(
                None,
                len.min(file.bytes),
                Reason::DataLength {
                    stated: file.bytes,
                    actual: len,
                },
            )
        } else if digest != file.sha256 {
            fail(
                None,
                0,
                Reason::FileDigest {
                    stated: file.sha256,
                    computed: digest,
                },
            )
        } else if end_seq != manifest.last_seq + 1 {
            fail(
                Some(end_seq),
                len,
                Reason::Count {
                    stated: manifest.count,
                    found: walk.events,
                },
            )
        } else if walk.head != manifest.head {
            fail(
                Some(manifest.last_seq),
                len,
                Reason::Head {
                    expected: manifest.head,
                    found: walk.head,
                },
            )
        } else if let Some(expected) = options.expect_head.filter(|h| *h != walk.head) {
            fail(
                Some(manifest.last_seq),
                len,
                Reason::Head {
                    expected,
                    found: walk.head,
                },
            )
        } else {
            let after = options.after.as_ref();
            after
                .and_then(|prev| not_after(prev, manifest))
                .map(|why| IntegrityError {
                    seq: Some(manifest.first_seq),
                    file: dir.join(MANIFEST_FILE),
                    offset: 0,
                    reason: Reason::After(why),
                })
        }
    }
}

/// Why `next` does not continue `prev`, if it does not.
fn not_after(prev: &Manifest, next: &Manifest) -> Option<&'static str> {
    if prev.log_id != next.log_id {
        Some("it comes from another log")
    } else if next.first_seq != prev.last_seq + 1 {
        Some("its first seq does not follow the previous export's last")
    } else if next.anchor != prev.head {
        Some("its anchor is not the previous export's head")
    } else {
        None
    }
}

enum Stop {
    Io(io::Error),
    Failed(IntegrityError),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// Reads through, hashing every byte.
struct DigestReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> DigestReader<R> {
    fn new(inner: R) -> Self {
        DigestReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(mut self) -> Hash {
        // Whatever a walk left unread still counts (streamed: the inner reader is bounded).
        let _ = io::copy(&mut self.inner, &mut self.hasher);
        Hash(self.hasher.finalize().into())
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// JSONL records are checked in chunks of about this many bytes: bodies in parallel, then
/// their chain in order.
const CHUNK: usize = 4 << 20;
const MAX_LINE: u64 = MAX_LINE_BYTES;

/// The line a JSONL export writes for a record whose body passed `records::check_records`, or why
/// the record cannot be one that [`verify_export`] reads back as that record: its details are
/// not JSON text (and hold no line break, which would put them in `details_raw`): `parse_line`
/// takes the bytes after `"details":` as JSON; or the line is longer than [`MAX_LINE_BYTES`].
/// Every other part of a line is written by the rules `parse_line` rewrites it with.
pub(super) fn json_line(
    line: &mut Vec<u8>,
    seq: u64,
    leaf: Hash,
    chain: Hash,
    body: &[u8],
) -> Result<(), String> {
    let env = decode_body(body).map_err(|e| format!("its body does not decode: {e}"))?;
    if let Some(d) = env.details
        && !d.contains(['\n', '\r'])
        && serde_json::from_str::<serde::de::IgnoredAny>(d).is_err()
    {
        return Err("its details are not JSON text, which a JSONL line holds as JSON".into());
    }
    line.clear();
    env.record(seq, leaf, chain).write_json_line(line);
    if line.len() as u64 > MAX_LINE {
        return Err(format!(
            "its line would be {} bytes, longer than an export line may be ({MAX_LINE})",
            line.len()
        ));
    }
    // What the checks above leave to the line's writer and the verifier's reader agreeing, in
    // debug builds (reading every line back costs a JSONL export three times its time).
    debug_assert!(
        matches!(parse_line(0, line), Ok(Parsed { body: Ok(ref b), .. }) if b == body),
        "record {seq}: its line does not read back as its body"
    );
    Ok(())
}

/// One record read from an export, before its checks.
struct Parsed {
    offset: u64,
    seq: u64,
    leaf: Hash,
    chain: Hash,
    /// The body as hashed, or why it could not be rebuilt.
    body: Result<Vec<u8>, Reason>,
}

/// A record as read, with the result of its own check, for [`Walk::in_order`].
struct Checked {
    /// Where it starts in the data file.
    offset: u64,
    /// The seq it carries.
    seq: u64,
    /// Its chain hash.
    chain: Hash,
    /// Its stored leaf hash.
    leaf: Hash,
    /// Its leaf hash, padding, body and chain hash checked (see [`Walk::in_order`]).
    check: Result<(), Reason>,
}

/// The state of a walk through an export's records.
struct Walk {
    path: PathBuf,
    next_seq: u64,
    /// The manifest's last seq: a record past it is a failure.
    last_seq: u64,
    head: Hash,
    events: u64,
    /// The Merkle tree over the records confirmed so far, when the export is compared with
    /// checkpoints.
    tree: Option<ExportTree>,
}

impl Walk {
    /// A walk through the data file at `path` of the export `manifest` describes, from its
    /// first seq and anchor.
    fn new(path: PathBuf, manifest: &Manifest) -> Walk {
        Walk {
            path,
            next_seq: manifest.first_seq,
            last_seq: manifest.last_seq,
            head: manifest.anchor,
            events: 0,
            tree: None,
        }
    }

    /// Walks every record of a data file of `encoding`, `len` bytes long (check 4 of
    /// `docs/FORMAT.md` §13.4).
    fn records(
        &mut self,
        encoding: Encoding,
        reader: &mut (impl Read + Send),
        len: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Stop> {
        match encoding {
            Encoding::Jsonl => self.jsonl(reader, len, progress),
            Encoding::Bundle => self.bundle(reader, len, progress),
        }
    }

    fn fail(&self, seq: Option<u64>, offset: u64, reason: Reason) -> Stop {
        Stop::Failed(IntegrityError {
            seq,
            file: self.path.clone(),
            offset,
            reason,
        })
    }

    /// Checks records in order: each must carry the next seq and have passed its own check
    /// (`check`: leaf hash, padding, decoding, and chain hash against the stored one before it,
    /// see `crate::verify::records`).
    fn in_order(&mut self, records: impl Iterator<Item = Checked>) -> Result<(), Stop> {
        for Checked {
            offset,
            seq: seq_found,
            chain,
            leaf,
            check,
        } in records
        {
            let seq = self.next_seq;
            if seq > self.last_seq {
                return Err(self.fail(
                    Some(seq),
                    offset,
                    Reason::Extra {
                        last_seq: self.last_seq,
                    },
                ));
            }
            if seq_found != seq {
                return Err(self.fail(
                    Some(seq),
                    offset,
                    Reason::Seq {
                        expected: seq,
                        found: seq_found,
                    },
                ));
            }
            check.map_err(|reason| self.fail(Some(seq), offset, reason))?;
            if let Some(tree) = &mut self.tree {
                tree.push(&leaf);
            }
            self.head = chain;
            self.next_seq += 1;
            self.events += 1;
        }
        Ok(())
    }

    /// Checks JSONL records: each one's hashes in parallel, then in order.
    fn check(&mut self, records: &[Parsed]) -> Result<(), Stop> {
        let indices: Vec<usize> = (0..records.len()).collect();
        let head = self.head;
        let checks = par_map(&indices, |&i| {
            let r = &records[i];
            let body = r.body.as_ref().map_err(Clone::clone)?;
            let computed = leaf_hash(body);
            if computed != r.leaf {
                return Err(Reason::Leaf {
                    stored: r.leaf,
                    computed,
                });
            }
            decode_body(body).map_err(Reason::Body)?;
            let prev = if i == 0 { &head } else { &records[i - 1].chain };
            records::check_chain(prev, r.seq, &r.leaf, &r.chain)
        });
        self.in_order(records.iter().zip(checks).map(|(r, check)| Checked {
            offset: r.offset,
            seq: r.seq,
            chain: r.chain,
            leaf: r.leaf,
            check,
        }))
    }

    /// Walks a bundle: records as a segment stores them, back to back.
    fn bundle(
        &mut self,
        reader: &mut (impl Read + Send),
        len: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Stop> {
        // Read (and digested) on a helper thread one batch ahead, checked here.
        records::for_each_batch_bounded(
            |b| reader.read(b),
            0,
            len,
            MAX_RECORD_BYTES,
            Stop::Io,
            |b| {
                let split = &b.split;
                let checks = records::check_records(&b.buf, &split.spans, &self.head);
                self.in_order(split.spans.iter().zip(checks).map(|(s, c)| Checked {
                    offset: s.offset,
                    seq: s.header.seq,
                    chain: s.header.chain,
                    leaf: s.header.leaf,
                    check: c.map(drop),
                }))?;
                if let Some((offset, reason)) = split.broken.clone() {
                    return Err(self.fail(Some(self.next_seq), offset, reason));
                }
                progress(b.pos + split.used as u64, len);
                Ok(())
            },
        )
    }

    /// Walks a JSONL export, rebuilding each body from its line.
    fn jsonl(
        &mut self,
        reader: &mut impl Read,
        len: u64,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<(), Stop> {
        let mut lines = BufReader::with_capacity(1 << 20, reader);
        let mut at = 0u64;
        let mut chunk: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut chunk_bytes = 0usize;
        loop {
            let mut line = Vec::new();
            let n = (&mut lines).take(MAX_LINE).read_until(b'\n', &mut line)?;
            // The records before a line too long to read are checked first.
            let too_long = n as u64 == MAX_LINE && !line.ends_with(b"\n");
            if n > 0 && !too_long {
                chunk_bytes += n;
                chunk.push((at, line));
                at += n as u64;
            }
            if n == 0 || too_long || chunk_bytes >= CHUNK {
                let parsed = par_map(&chunk, |(offset, line)| parse_line(*offset, line));
                let mut records = Vec::with_capacity(parsed.len());
                for p in parsed {
                    match p {
                        Ok(r) => records.push(r),
                        Err((offset, reason)) => {
                            self.check(&records)?;
                            return Err(self.fail(Some(self.next_seq), offset, reason));
                        }
                    }
                }
                self.check(&records)?;
                progress(at, len);
                chunk.clear();
                chunk_bytes = 0;
            }
            if too_long {
                return Err(self.fail(
                    Some(self.next_seq),
                    at,
                    Reason::Line(format!("a line longer than {MAX_LINE} bytes")),
                ));
            }
            if n == 0 {
                return Ok(());
            }
        }
    }
}

/// The fields of a JSONL line (`details` is read from the line's bytes, not through this).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    // Numbers and hashes are read leniently (`1.0`, `-0`, upper-case hex), so that a line
    // written another way fails where it differs from the one form (see `parse_line`).
    #[serde(deserialize_with = "integer")]
    seq: u64,
    #[serde(deserialize_with = "integer")]
    timestamp: i64,
    kind: String,
    actor: Option<String>,
    trace_id: Option<String>,
    #[serde(deserialize_with = "any_case_hash")]
    leaf: Hash,
    #[serde(deserialize_with = "any_case_hash")]
    chain: Hash,
    /// Whether the member is there (its value, even `null`, is read from the line's bytes).
    #[serde(default, deserialize_with = "present")]
    details: bool,
    #[serde(default)]
    details_raw: Option<String>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A JSON number with an integral value in range, however it is written.
fn integer<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    use serde::de::Error as _;
    let n = serde_json::Number::deserialize(d)?;
    let value = if let Some(u) = n.as_u64() {
        Some(i128::from(u))
    } else if let Some(i) = n.as_i64() {
        Some(i128::from(i))
    } else {
        // Exactly representable integers only: 1.0 and 1e3 are, 1.5 and 1e30 are not.
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
            .map(|f| f as i128)
    };
    value
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| D::Error::custom(format!("{n} is not an integer in range")))
}

/// A hash in hex of either case.
fn any_case_hash<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    Hash::from_hex(&s).map_err(serde::de::Error::custom)
}

/// Parses one JSONL line and rebuilds the body that was hashed.
fn parse_line(offset: u64, line: &[u8]) -> Result<Parsed, (u64, Reason)> {
    let bad = |why: String| (offset, Reason::Line(why));
    let text = line
        .strip_suffix(b"\n")
        .ok_or_else(|| bad("the line does not end with a line feed".into()))?;
    let fields: Line = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
    // The details are the bytes after the first `,"details":` up to the last closing brace: no
    // earlier field can hold those bytes unescaped. (Whitespace after that brace is not part of
    // the one form: the comparison below finds it.)
    const KEY: &[u8] = b",\"details\":";
    let close = text.iter().rposition(|&b| b == b'}').unwrap_or(0);
    let inline = text
        .windows(KEY.len())
        .position(|w| w == KEY)
        .map(|i| i + KEY.len())
        .filter(|&start| start <= close)
        .map(|start| &text[start..close]);
    let details: Option<&[u8]> = match (inline, &fields.details_raw) {
        (Some(_), Some(_)) => return Err(bad("both details and details_raw".into())),
        (Some(d), None) => Some(d),
        (None, Some(raw)) => Some(raw.as_bytes()),
        (None, None) => None,
    };
    let last_member =
        inline.is_none_or(|d| serde_json::from_slice::<serde::de::IgnoredAny>(d).is_ok());
    if fields.details != inline.is_some() || !last_member {
        return Err(bad("details is not the line's last member".into()));
    }
    let too_long = |what: &str| bad(format!("the {what} is longer than 65535 bytes"));
    let len16 = |s: &Option<String>, what: &str| {
        u16::try_from(s.as_ref().map_or(0, String::len)).map_err(|_| too_long(what))
    };
    let kind_len = u16::try_from(fields.kind.len()).map_err(|_| too_long("kind"))?;
    let actor_len = len16(&fields.actor, "actor")?;
    let trace_len = len16(&fields.trace_id, "trace id")?;
    let details_len = u32::try_from(details.map_or(0, <[u8]>::len))
        .map_err(|_| bad("the details are longer than 4 GiB".into()))?;
    let flags = u8::from(fields.actor.is_some())
        | u8::from(fields.trace_id.is_some()) << 1
        | u8::from(details.is_some()) << 2;
    let mut body = Vec::with_capacity(20 + line.len());
    body.push(crate::format::event::BODY_VERSION);
    body.push(flags);
    body.extend_from_slice(&kind_len.to_le_bytes());
    body.extend_from_slice(&actor_len.to_le_bytes());
    body.extend_from_slice(&trace_len.to_le_bytes());
    body.extend_from_slice(&fields.timestamp.to_le_bytes());
    body.extend_from_slice(&details_len.to_le_bytes());
    body.extend_from_slice(fields.kind.as_bytes());
    body.extend_from_slice(fields.actor.as_deref().unwrap_or("").as_bytes());
    body.extend_from_slice(fields.trace_id.as_deref().unwrap_or("").as_bytes());
    body.extend_from_slice(details.unwrap_or(b""));
    // One record, one way to write it: the line must be exactly the one an export writes
    // (member order, no spaces, lowercase hex, the details member chosen by the rule), so that
    // no byte of the file is outside what the hashes and the checks cover.
    let details_text = match details.map(std::str::from_utf8) {
        Some(Err(_)) => return Err(bad("the details are not UTF-8".into())),
        Some(Ok(d)) => Some(d),
        None => None,
    };
    let mut canonical = Vec::with_capacity(line.len());
    crate::format::event::RecordRef {
        seq: fields.seq,
        timestamp: fields.timestamp,
        kind: &fields.kind,
        actor: fields.actor.as_deref(),
        trace_id: fields.trace_id.as_deref(),
        details: details_text,
        leaf: fields.leaf,
        chain: fields.chain,
    }
    .write_json_line(&mut canonical);
    if canonical != line {
        let at = canonical
            .iter()
            .zip(line)
            .position(|(a, b)| a != b)
            .unwrap_or(canonical.len().min(line.len()));
        return Err((
            offset + at as u64,
            Reason::Line(format!(
                "not written the way an export writes it, from byte {at} of the line"
            )),
        ));
    }
    Ok(Parsed {
        offset,
        seq: fields.seq,
        leaf: fields.leaf,
        chain: fields.chain,
        body: Ok(body),
    })
}
