//! Tying an export to a signed checkpoint (`docs/FORMAT.md` §13.6): `tree.json`, which carries
//! what a verifier needs besides the export's own records to compute the Merkle tree root a
//! checkpoint signed.
//!
//! The records of an export `[a, b]` are leaves `a..=b` of the log's tree. With the *prefix*
//! (the frontier of the tree of the `a − 1` records before them, one hash per 1 bit of `a − 1`)
//! the verifier computes the root at every size from `a − 1` to `b`; with a consistency proof
//! from `b` to a checkpoint's size `n > b`, it ties the root at `b` to the checkpoint's root.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::input::open_regular;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, IntegrityError, Reason};
use crate::format::hash::Hash;
use crate::merkle::ConsistencyProof;
use crate::merkle::hash::empty_root;
use crate::merkle::range::CompactRange;
use crate::read::snapshot::Snapshot;
use crate::verify::CheckpointCheck;
use crate::verify::tree::OpenedCheckpoint;

/// The name of the file, in the export directory.
pub const TREE_FILE: &str = "tree.json";

/// The value of its `format` member.
const TREE_FORMAT: &str = "auditring-export-tree";

/// The most bytes a `tree.json` may have: a note of a few KiB and two lists of at most 64
/// hashes each fit many times over.
const MAX_TREE_BYTES: u64 = 256 * 1024;

/// What `tree.json` holds (FORMAT.md §13.6): every member required, no other.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TreeFile {
    /// Always [`TREE_FORMAT`].
    format: String,
    /// Always 1.
    version: u32,
    /// The export's range, as in its manifest.
    first_seq: u64,
    last_seq: u64,
    /// The frontier of the tree of the `first_seq − 1` records before the export.
    prefix: Vec<Hash>,
    /// The signed checkpoint the exporter tied the export to.
    checkpoint: String,
    /// A consistency proof from `last_seq` to the checkpoint's size, when it is larger; empty
    /// otherwise.
    consistency: Vec<Hash>,
}

/// The body of a signed note (its text before the blank line), as a checkpoint, without
/// checking any signature: the exporter only needs its size and root.
fn unverified_checkpoint(note: &str) -> Result<Checkpoint, Error> {
    // A signed note's signatures follow its last blank line.
    let body = note
        .rfind("\n\n")
        .map(|at| &note[..=at])
        .ok_or_else(|| Error::Checkpoint("the checkpoint is not a signed note".into()))?;
    Checkpoint::parse(body).map_err(|e| Error::Checkpoint(format!("the checkpoint: {e}")))
}

/// The `tree.json` of an export of `[from, to]` from `snapshot`, tied to the checkpoint `note`.
/// Fails if the checkpoint cannot be tied to that range (its size is below `from − 1` or past
/// the snapshot), or if the snapshot's tree disagrees with it.
pub(crate) fn tree_file(
    snapshot: &Snapshot,
    from: u64,
    to: u64,
    note: &str,
) -> Result<Vec<u8>, Error> {
    let checkpoint = unverified_checkpoint(note)?;
    let n = checkpoint.size();
    if n + 1 < from || n > snapshot.head_seq() {
        return Err(Error::Checkpoint(format!(
            "a checkpoint of size {n} cannot be tied to records {from} to {to} of a log whose \
             last seq is {}: its size must be from {} to the last seq",
            snapshot.head_seq(),
            from - 1
        )));
    }
    let root = if n == 0 {
        empty_root()
    } else {
        snapshot.root_at(n)?
    };
    if root != checkpoint.root() {
        return Err(Error::Checkpoint(format!(
            "the log's first {n} records do not hash to the checkpoint's root: it is not a \
             checkpoint of this log as it is"
        )));
    }
    let file = TreeFile {
        format: TREE_FORMAT.into(),
        version: 1,
        first_seq: from,
        last_seq: to,
        prefix: snapshot.tree_frontier(from - 1)?,
        checkpoint: note.to_owned(),
        consistency: if n > to {
            snapshot.consistency_proof(to, n)?.hashes
        } else {
            Vec::new()
        },
    };
    let mut text = serde_json::to_vec_pretty(&file).expect("tree.json serializes");
    text.push(b'\n');
    Ok(text)
}

/// `tree.json` read from an export directory: `Ok(None)` if there is none.
pub(crate) fn read_tree_file(
    dir: &Path,
) -> Result<Result<Option<TreeFile>, IntegrityError>, Error> {
    let path = dir.join(TREE_FILE);
    let fail = |why: String| {
        Ok(Err(IntegrityError {
            seq: None,
            file: path.clone(),
            offset: 0,
            reason: Reason::ExportTree(why),
        }))
    };
    let (file, len) = match open_regular(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        Ok(Err(what)) => return fail(format!("it is {what}, not a regular file")),
        Ok(Ok(opened)) => opened,
    };
    if len > MAX_TREE_BYTES {
        return fail(format!(
            "{len} bytes, more than it may have ({MAX_TREE_BYTES})"
        ));
    }
    let mut text = Vec::new();
    file.take(MAX_TREE_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    match serde_json::from_slice::<TreeFile>(&text) {
        Ok(t) if t.format != TREE_FORMAT || t.version != 1 => {
            fail(format!("format {:?} version {}", t.format, t.version))
        }
        Ok(t) => Ok(Ok(Some(t))),
        Err(e) => fail(e.to_string()),
    }
}

/// The Merkle tree over an export's records, grown from the prefix as the walk confirms them,
/// keeping the roots at the sizes the checkpoints need.
pub(crate) struct ExportTree {
    range: CompactRange,
    /// Checkpoint size to the root at that size, once reached.
    roots: BTreeMap<u64, Option<Hash>>,
}

impl ExportTree {
    /// Starts from `prefix`, the frontier of the tree of `first_seq − 1` records; `None` if it
    /// does not have one hash per 1 bit of that size.
    pub(crate) fn new(first_seq: u64, prefix: Vec<Hash>, sizes: &[u64]) -> Option<ExportTree> {
        let range = CompactRange::from_frontier(first_seq - 1, prefix).ok()?;
        let mut roots: BTreeMap<u64, Option<Hash>> = sizes.iter().map(|&n| (n, None)).collect();
        if let Some(r) = roots.get_mut(&range.size()) {
            *r = Some(range.root());
        }
        Some(ExportTree { range, roots })
    }

    /// The next record's leaf (its record's leaf hash, §15.1).
    pub(crate) fn push(&mut self, record_leaf: &Hash) {
        self.range
            .push(crate::merkle::hash::leaf_hash(record_leaf), |_, _, _| {});
        if let Some(r) = self.roots.get_mut(&self.range.size()) {
            *r = Some(self.range.root());
        }
    }

    /// The root over the records so far.
    pub(crate) fn root(&self) -> Hash {
        self.range.root()
    }

    /// The root at size `n`, if the walk reached it.
    pub(crate) fn root_at(&self, n: u64) -> Option<Hash> {
        self.roots.get(&n).copied().flatten()
    }
}

/// Compares an export of `[first_seq, last_seq]`, whose tree is `tree`, with each checkpoint,
/// smallest first: sizes within the export's reach by the roots the walk computed, a larger one
/// by the consistency proof of `file` (whose checkpoint must have that size). Returns what each
/// comparison found, and the first failure (`data` is the data file, where it is located).
pub(crate) fn compare(
    checkpoints: &[OpenedCheckpoint],
    tree: &ExportTree,
    file: Option<&TreeFile>,
    (first_seq, last_seq): (u64, u64),
    data: &Path,
) -> (Vec<CheckpointCheck>, Option<IntegrityError>) {
    let mut sorted: Vec<&OpenedCheckpoint> = checkpoints.iter().collect();
    sorted.sort_by_key(|c| c.checkpoint.size());
    let mut checks = Vec::new();
    let mut failure = None;
    let proved_size = file
        .and_then(|f| unverified_checkpoint(&f.checkpoint).ok())
        .map(|c| c.size());
    for c in sorted {
        let (n, signed) = (c.checkpoint.size(), c.checkpoint.root());
        let found: Result<(), Reason> = if n + 1 < first_seq {
            Err(Reason::CheckpointBeforeExport { size: n, first_seq })
        } else if n <= last_seq {
            match tree.root_at(n) {
                Some(root) if root == signed => Ok(()),
                _ => Err(Reason::CheckpointRoot {
                    size: n,
                    signed,
                    after: first_seq - 1,
                }),
            }
        } else if proved_size != Some(n) {
            Err(Reason::CheckpointBeyondExport {
                size: n,
                last_seq,
                proved: proved_size,
            })
        } else {
            let proof = ConsistencyProof {
                old_size: last_seq,
                new_size: n,
                hashes: file.map(|f| f.consistency.clone()).unwrap_or_default(),
            };
            proof
                .verify(&tree.root(), &signed)
                .map_err(|_| Reason::CheckpointRoot {
                    size: n,
                    signed,
                    after: first_seq - 1,
                })
        };
        checks.push(CheckpointCheck {
            size: n,
            root: signed,
            signed_by: c.signed_by.clone(),
            consistent: found.is_ok(),
        });
        if let (Err(reason), None) = (found, &failure) {
            failure = Some(IntegrityError {
                seq: Some(first_seq),
                file: data.to_path_buf(),
                offset: 0,
                reason,
            });
        }
    }
    (checks, failure)
}

impl TreeFile {
    /// The checkpoint it carries.
    pub(crate) fn note(&self) -> &str {
        &self.checkpoint
    }

    /// Whether it describes the export `[first_seq, last_seq]`.
    pub(crate) fn covers(&self, first_seq: u64, last_seq: u64) -> bool {
        (self.first_seq, self.last_seq) == (first_seq, last_seq)
    }

    /// Its prefix.
    pub(crate) fn prefix(&self) -> Vec<Hash> {
        self.prefix.clone()
    }
}
