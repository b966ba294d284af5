//! The Merkle tree of a snapshot: its root, and proofs, from the stored strata and the records.
//!
//! Any node of the tree over a snapshot's records is found the same way
//! ([`TreeView::node`]): a node of a stored level (`8·k`, `k ≥ 1`) is read from its stratum
//! when the tree worker has written it, a leaf is the record's own leaf hash, and every other
//! node is hashed from its two children. So a node of level `l` costs at most `2^(l mod 8)`
//! reads, and a proof, which asks for `O(log n)` nodes, reads `O(log n)` tiles of at most 256
//! hashes (or records, for the bottom one) whatever the size of the log.
//!
//! Whether a stored entry can be trusted is decided without any shared state, so that readers
//! in other processes follow the same rule: the tree worker writes each stratum in index order,
//! one entry after the other, so once entry `i + 1` is written, entry `i` was written whole, and
//! a read of entry `i` made after `i + 1` was seen written sees it whole. The newest entry of a
//! stratum is never used: it is hashed from the level below, as is any entry that is missing
//! (the worker is behind, the tree was never built, or a crash lost it).

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::error::{Error, IntegrityError, Reason};
use crate::format::hash::Hash;
use crate::merkle::hash::{leaf_hash, node_hash};
use crate::merkle::prove::{self, Nodes, ProveError};
use crate::merkle::{ConsistencyProof, InclusionProof};
use crate::read::cursor::{Cursor, Step};
use crate::read::snapshot::Snapshot;
use crate::storage::tree::{STRATUM_HEIGHT, TreeFiles};
use crate::storage::tree_base::{PrefixError, PrunedPrefix};

/// Leaves per tile of the bottom level: records are read a tile at a time.
const TILE_LEAVES: u64 = 1 << STRATUM_HEIGHT;

/// Tiles of leaves kept: a proof needs at most two; hashing a node whose stored hash is
/// missing walks its leaves in order and needs one.
const TILES_KEPT: usize = 4;

/// A tile of a stratum, by `(stratum, tile index)`: its 256 entries and the one after.
type StoredTile = ((u8, u64), Vec<Option<Hash>>);

/// The tree over a snapshot's records (leaf `i` is the record with seq `i + 1`), reading the
/// strata in `files`.
pub(crate) struct TreeView<'a> {
    snapshot: &'a Snapshot,
    files: &'a TreeFiles<'a>,
    /// The last tiles of tree leaf hashes read from the records, with their tile index, newest
    /// last; at most [`TILES_KEPT`].
    tiles: RefCell<VecDeque<(u64, Vec<Hash>)>>,
    /// The last tiles of stored entries read, by stratum and tile, each with the entry after
    /// it; at most twice [`TILES_KEPT`].
    stored_tiles: RefCell<VecDeque<StoredTile>>,
    /// For a pruned log, the nodes inside its pruned leaves (`docs/FORMAT.md` §15.5).
    prefix: Option<PrunedPrefix<'a>>,
}

impl<'a> TreeView<'a> {
    /// The tree over `snapshot`'s records.
    pub(crate) fn new(snapshot: &'a Snapshot, files: &'a TreeFiles<'a>) -> TreeView<'a> {
        let pruned = snapshot.first_seq().saturating_sub(1);
        TreeView {
            snapshot,
            files,
            tiles: RefCell::new(VecDeque::new()),
            stored_tiles: RefCell::new(VecDeque::new()),
            prefix: (pruned > 0).then(|| PrunedPrefix::new(snapshot.storage(), files, pruned)),
        }
    }

    /// The smallest tree size whose root and proofs this view can compute: 0, or for a
    /// pruned log the first leaf of its tree base (`docs/FORMAT.md` §15.5).
    pub(crate) fn first_size(&self) -> u64 {
        self.prefix.as_ref().map_or(0, PrunedPrefix::first_leaf)
    }

    /// The number of leaves: the snapshot's head seq.
    pub(crate) fn size(&self) -> u64 {
        self.snapshot.head_seq()
    }

    /// The hash of the complete subtree of `2^level` leaves starting at leaf `index · 2^level`.
    ///
    /// The subtree must lie inside the tree, and its leaves must still be in the log (not
    /// pruned), unless its hash is stored.
    pub(crate) fn node(&self, level: u8, index: u64) -> Result<Hash, Error> {
        let level_u32 = u32::from(level);
        debug_assert!(level_u32 < 64);
        let end = index
            .checked_add(1)
            .and_then(|i| i.checked_mul(1u64 << level_u32));
        if end.is_none_or(|end| end > self.size()) {
            return Err(Error::Config(format!(
                "the tree of {} records has no complete node of level {level} at index {index}",
                self.size()
            )));
        }
        if let Some(prefix) = &self.prefix
            && end.is_some_and(|end| end < self.snapshot.first_seq())
        {
            return Nodes::node(prefix, level, index).map_err(|e| self.prefix_error(e));
        }
        if level == 0 {
            return self.leaf(index);
        }
        if level_u32.is_multiple_of(STRATUM_HEIGHT) {
            let stratum = (level_u32 / STRATUM_HEIGHT) as u8;
            if let Some(hash) = self.stored(stratum, index)? {
                return Ok(hash);
            }
        }
        Ok(node_hash(
            &self.node(level - 1, 2 * index)?,
            &self.node(level - 1, 2 * index + 1)?,
        ))
    }

    /// Entry `index` of `stratum`, if it is written and its successor is too (see the module
    /// documentation). Entries are read a tile (256 entries, and the one after) at a time, as
    /// `tlog-tiles` serves them: a proof needs a few nodes of each tile it touches.
    fn stored(&self, stratum: u8, index: u64) -> Result<Option<Hash>, Error> {
        let tile = index / TILE_LEAVES;
        let at = (index % TILE_LEAVES) as usize;
        if let Some((_, t)) = self
            .stored_tiles
            .borrow()
            .iter()
            .find(|(key, _)| *key == (stratum, tile))
        {
            return Ok(t[at]);
        }
        let io = |e: std::io::Error| {
            Error::io(
                format!(
                    "reading the Merkle tree of {}",
                    self.snapshot.location().display()
                ),
                e,
            )
        };
        let first = tile * TILE_LEAVES;
        let run = |files: &TreeFiles<'_>| -> Result<Vec<Option<Hash>>, Error> {
            let mut entries = files
                .read_run(stratum, first, TILE_LEAVES as usize)
                .map_err(io)?;
            // The entry after the tile, which says whether the tile's last one is whole; it
            // may be in the next chunk.
            entries.push(files.read(stratum, first + TILE_LEAVES).map_err(io)?);
            Ok(entries)
        };
        // Whether an entry's successor is written must be read *before* the entry itself:
        // then the entry was whole before it is read. So the tile is read twice, and an entry
        // of the second read counts if its successor was written in the first.
        let before = run(self.files)?;
        let mut entries = run(self.files)?;
        for (i, e) in entries.iter_mut().take(TILE_LEAVES as usize).enumerate() {
            if before[i + 1].is_none() {
                *e = None;
            }
        }
        let hash = entries[at];
        let mut tiles = self.stored_tiles.borrow_mut();
        if tiles.len() == TILES_KEPT * 2 {
            tiles.pop_front();
        }
        tiles.push_back(((stratum, tile), entries));
        Ok(hash)
    }

    /// The root of the tree over the first `size` records.
    pub(crate) fn root(&self, size: u64) -> Result<Hash, Error> {
        prove::root(self, size).map_err(prove_error)
    }

    /// The tree leaf hash of leaf `index`, from the tile of records holding it.
    fn leaf(&self, index: u64) -> Result<Hash, Error> {
        let tile = index / TILE_LEAVES;
        if let Some((_, t)) = self.tiles.borrow().iter().find(|(i, _)| *i == tile) {
            return Ok(t[(index % TILE_LEAVES) as usize]);
        }
        let first = tile * TILE_LEAVES;
        let last = (first + TILE_LEAVES).min(self.size()) - 1;
        let pruned = self.snapshot.first_seq() - 1;
        let mut leaves = Vec::with_capacity((last - first + 1) as usize);
        // A tile's pruned leaves are the tree base's (`docs/FORMAT.md` §15.5).
        for i in first..pruned.min(last + 1) {
            match self.prefix.as_ref().and_then(|p| p.leaf(i)) {
                Some(hash) => leaves.push(hash),
                None => return Err(self.prefix_error(PrefixError::Pruned { leaf: i })),
            }
        }
        for_each_leaf(self.snapshot, pruned.max(first) + 1, last + 1, |leaf| {
            leaves.push(leaf_hash(leaf));
        })?;
        debug_assert_eq!(leaves.len() as u64, last - first + 1);
        let hash = leaves[(index - first) as usize];
        let mut tiles = self.tiles.borrow_mut();
        if tiles.len() == TILES_KEPT {
            tiles.pop_front();
        }
        tiles.push_back((tile, leaves));
        Ok(hash)
    }

    /// A node of the pruned part of the tree that could not be had, as the crate's error.
    fn prefix_error(&self, e: PrefixError) -> Error {
        Error::Config(format!(
            "the Merkle tree of {} cannot be computed there: {e} (the log starts at seq {})",
            self.snapshot.location().display(),
            self.snapshot.first_seq()
        ))
    }
}

/// Calls `f` with the leaf field of every record with a seq in `from..=to`, in order. Reads the
/// records' bytes a region at a time and checks their framing and seqs, as every read of
/// records does, but not their bodies: the tree needs their leaf hashes only.
pub(crate) fn for_each_leaf(
    snapshot: &Snapshot,
    from: u64,
    to: u64,
    mut f: impl FnMut(&Hash),
) -> Result<(), Error> {
    if from > to {
        return Ok(());
    }
    if from < snapshot.first_seq() {
        return Err(Error::Config(format!(
            "records {from} to {} were pruned from the log",
            snapshot.first_seq() - 1
        )));
    }
    for region in snapshot.regions(from, to)? {
        let fail = |seq: u64, offset: u64, reason: Reason| -> Error {
            IntegrityError {
                seq: Some(seq),
                file: region.path.clone(),
                offset,
                reason,
            }
            .into()
        };
        let mut cursor = Cursor::new(region.file.clone(), region.start, region.end);
        let mut seq = region.first_seq;
        loop {
            let step = cursor
                .next_record()
                .map_err(|e| Error::io(format!("reading {}", region.path.display()), e))?;
            match step {
                Step::Record(r) if r.header.seq == seq => f(&r.header.leaf),
                Step::Record(r) => {
                    let reason = Reason::Seq {
                        expected: seq,
                        found: r.header.seq,
                    };
                    return Err(fail(seq, r.offset, reason));
                }
                Step::End => break,
                Step::Broken { offset, reason } => return Err(fail(seq, offset, reason)),
            }
            seq += 1;
        }
        if seq != region.last_seq + 1 {
            let at = cursor.position();
            return Err(fail(
                seq,
                at,
                Reason::SlotMismatch("the segment ends before the snapshot's head"),
            ));
        }
    }
    Ok(())
}

impl Nodes for TreeView<'_> {
    type Error = Error;

    fn node(&self, level: u8, index: u64) -> Result<Hash, Error> {
        TreeView::node(self, level, index)
    }
}

/// A proof that could not be made, as the crate's error: a bad request is a configuration
/// error (it names the sizes), a node that could not be read is that node's error.
pub(crate) fn prove_error(e: ProveError<Error>) -> Error {
    match e {
        ProveError::Node { source, .. } => source,
        ProveError::Invalid(e) => Error::Config(e.to_string()),
    }
}

/// The Merkle tree over a snapshot's records (`docs/FORMAT.md` §15): roots and proofs, read
/// from the tree's stored hashes where the writer has written them and hashed from the records
/// where not, so they cost `O(log n)` reads in a log whose tree is up to date.
impl Snapshot {
    /// The root of the tree over every record of the snapshot (size [`Snapshot::head_seq`]).
    pub fn tree_root(&self) -> Result<Hash, Error> {
        self.root_at(self.head_seq())
    }

    /// The root of the tree over the records with seqs `1..=size` (`size` at most the
    /// snapshot's head seq).
    pub fn root_at(&self, size: u64) -> Result<Hash, Error> {
        self.check_size(size)?;
        let files = TreeFiles::new(self.storage_arc(), false);
        TreeView::new(self, &files).root(size)
    }

    /// The proof that the record with seq `seq` is in the tree of size `tree_size`
    /// (`1 ≤ seq ≤ tree_size ≤` the head seq): `O(log n)` hashes, checked with
    /// [`InclusionProof::verify`] against that tree's root.
    pub fn inclusion_proof(&self, seq: u64, tree_size: u64) -> Result<InclusionProof, Error> {
        self.check_size(tree_size)?;
        if seq == 0 || seq > tree_size {
            return Err(Error::Config(format!(
                "no record with seq {seq} in a tree of {tree_size} records"
            )));
        }
        let files = TreeFiles::new(self.storage_arc(), false);
        prove::inclusion_proof(&TreeView::new(self, &files), seq - 1, tree_size)
            .map_err(prove_error)
    }

    /// The proof that the tree of size `old_size` is a prefix of the tree of size `new_size`
    /// (`1 ≤ old_size ≤ new_size ≤` the head seq), checked with [`ConsistencyProof::verify`]
    /// against both roots.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, Error> {
        self.check_size(new_size)?;
        let files = TreeFiles::new(self.storage_arc(), false);
        prove::consistency_proof(&TreeView::new(self, &files), old_size, new_size)
            .map_err(prove_error)
    }

    /// The frontier of the tree of size `size` (one hash per 1 bit of `size`, highest first):
    /// what an export starting at `size + 1` carries to tie its records to a checkpoint.
    pub(crate) fn tree_frontier(&self, size: u64) -> Result<Vec<Hash>, Error> {
        self.check_size(size)?;
        let files = TreeFiles::new(self.storage_arc(), false);
        prove::frontier(&TreeView::new(self, &files), size).map_err(prove_error)
    }

    /// The tree leaf hashes of leaves `from..to` (the records with seqs `from + 1..=to`, or
    /// for a pruned log the part of them its tree base holds).
    pub(crate) fn leaf_hashes(&self, from: u64, to: u64) -> Result<Vec<Hash>, Error> {
        self.check_size(to)?;
        let files = TreeFiles::new(self.storage_arc(), false);
        let view = TreeView::new(self, &files);
        (from..to).map(|i| view.node(0, i)).collect()
    }

    fn check_size(&self, size: u64) -> Result<(), Error> {
        if size > self.head_seq() {
            return Err(Error::Config(format!(
                "the snapshot holds {} records, not {size}",
                self.head_seq()
            )));
        }
        Ok(())
    }
}
