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
//! one entry after the other, so once entry `i + 1` is written, entry `i` was written whole. The
//! newest entry of a stratum is never read: it is hashed from the level below, as is any entry
//! that is missing (the worker is behind, the tree was never built, or a crash lost it).

use std::cell::RefCell;
use std::collections::VecDeque;

use crate::error::Error;
use crate::format::hash::Hash;
use crate::merkle::hash::{leaf_hash, node_hash};
use crate::merkle::prove::{self, Nodes, ProveError};
use crate::merkle::{ConsistencyProof, InclusionProof};
use crate::read::snapshot::Snapshot;
use crate::storage::tree::{STRATUM_HEIGHT, TreeFiles};

/// Leaves per tile of the bottom level: records are read a tile at a time.
const TILE_LEAVES: u64 = 1 << STRATUM_HEIGHT;

/// Tiles of leaves kept: a proof needs at most two; hashing a node whose stored hash is
/// missing walks its leaves in order and needs one.
const TILES_KEPT: usize = 4;

/// The tree over a snapshot's records (leaf `i` is the record with seq `i + 1`), reading the
/// strata in `files`.
pub(crate) struct TreeView<'a> {
    snapshot: &'a Snapshot,
    files: &'a TreeFiles<'a>,
    /// The last tiles of tree leaf hashes read from the records, with their tile index, newest
    /// last; at most [`TILES_KEPT`].
    tiles: RefCell<VecDeque<(u64, Vec<Hash>)>>,
    /// Whether every written entry can be used, the newest of a stratum included: true for the
    /// writer's own tree worker, the only one that writes them (an entry is written whole or
    /// not at all: it never spans a sector, so not even a crash tears one).
    trust_newest: bool,
}

impl<'a> TreeView<'a> {
    /// The tree over `snapshot`'s records.
    pub(crate) fn new(snapshot: &'a Snapshot, files: &'a TreeFiles<'a>) -> TreeView<'a> {
        TreeView {
            snapshot,
            files,
            tiles: RefCell::new(VecDeque::new()),
            trust_newest: false,
        }
    }

    /// The tree over `snapshot`'s records, for the writer whose tree worker writes `files`.
    pub(crate) fn for_writer(snapshot: &'a Snapshot, files: &'a TreeFiles<'a>) -> TreeView<'a> {
        TreeView {
            trust_newest: true,
            ..TreeView::new(snapshot, files)
        }
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
    /// documentation).
    fn stored(&self, stratum: u8, index: u64) -> Result<Option<Hash>, Error> {
        let read = |i: u64| {
            self.files.read(stratum, i).map_err(|e| {
                Error::io(
                    format!(
                        "reading the Merkle tree of {}",
                        self.snapshot.location().display()
                    ),
                    e,
                )
            })
        };
        let Some(hash) = read(index)? else {
            return Ok(None);
        };
        if self.trust_newest {
            return Ok(Some(hash));
        }
        Ok(read(index + 1)?.map(|_| hash))
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
        if first + 1 < self.snapshot.first_seq() {
            return Err(Error::Config(format!(
                "the tree cannot be computed: records {} to {} were pruned from the log, \
                 and its stored hashes do not cover them",
                first + 1,
                self.snapshot.first_seq() - 1
            )));
        }
        let mut leaves = Vec::with_capacity((last - first + 1) as usize);
        let mut records = self.snapshot.range(first + 1..=last + 1);
        while let Some(leaf) = records.next_leaf() {
            leaves.push(leaf_hash(&leaf?));
        }
        debug_assert_eq!(leaves.len() as u64, last - first + 1);
        let hash = leaves[(index - first) as usize];
        let mut tiles = self.tiles.borrow_mut();
        if tiles.len() == TILES_KEPT {
            tiles.pop_front();
        }
        tiles.push_back((tile, leaves));
        Ok(hash)
    }
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
