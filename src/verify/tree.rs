//! The Merkle tree during a walk: rebuilt from the records as they are checked, it checks every
//! stored hash of the tree against them (`docs/FORMAT.md` §15.2) and gives the roots that
//! checkpoints are compared with (§15.4).
//!
//! Only the records count: a stored hash is never used in place of the records it covers,
//! since whoever rewrote the records could have left the old hashes, or written new ones.

use std::collections::BTreeMap;

use crate::checkpoint::Checkpoint;
use crate::error::{IntegrityError, Reason};
use crate::format::hash::Hash;
use crate::merkle::hash::leaf_hash;
use crate::merkle::prove::frontier;
use crate::merkle::range::CompactRange;
use crate::storage::Storage;
use crate::storage::tree::{CHUNK_ENTRIES, STRATUM_HEIGHT, TreeFiles, chunk_name};
use crate::storage::tree_base::PrunedPrefix;
use crate::sys::parallel::par_map_by;

/// The leaves of a tile hashed as one piece: the level-8 subtrees (FORMAT.md §15.2).
const TILE: u64 = 1 << STRATUM_HEIGHT;

/// A checkpoint whose signature verified, to compare the log with.
pub(crate) struct OpenedCheckpoint {
    pub(crate) checkpoint: Checkpoint,
    /// The names of the trusted keys that signed it.
    pub(crate) signed_by: Vec<String>,
}

/// The tree rebuilt by one walk.
pub(super) struct TreeCheck<'a> {
    storage: &'a dyn Storage,
    /// `None` once the log is found to start after seq 1 without the stored hashes that stand
    /// for the records it lost (`docs/FORMAT.md` §15.5): there is no tree to rebuild.
    range: Option<CompactRange>,
    files: TreeFiles<'a>,
    /// The sizes whose roots are wanted (the checkpoints'), with the roots once reached.
    roots: BTreeMap<u64, Option<Hash>>,
    /// The first stored hash found not to match the records.
    mismatch: Option<IntegrityError>,
}

impl<'a> TreeCheck<'a> {
    /// A tree over the log in `storage`, keeping the roots at `sizes`.
    pub(super) fn new(
        storage: &'a dyn Storage,
        sizes: impl IntoIterator<Item = u64>,
    ) -> TreeCheck<'a> {
        TreeCheck {
            storage,
            range: Some(CompactRange::new()),
            files: TreeFiles::borrowed(storage),
            roots: sizes.into_iter().map(|s| (s, None)).collect(),
            mismatch: None,
        }
    }

    /// The log starts at `first_seq`. A pruned log's tree starts from the frontier of its
    /// pruned leaves, taken from the strata and the tree base (`docs/FORMAT.md` §15.5): they
    /// are not checked, but whoever changed them changed every root after them, which signed
    /// checkpoints show.
    pub(super) fn start_at(&mut self, first_seq: u64) {
        let pruned = first_seq.saturating_sub(1);
        if pruned == 0 {
            return;
        }
        let frontier = frontier(
            &PrunedPrefix::new(self.storage, &self.files, pruned),
            pruned,
        );
        self.range = frontier
            .ok()
            .and_then(|f| CompactRange::from_frontier(pruned, f).ok());
        if let (Some(range), Some(root)) = (&self.range, self.roots.get_mut(&pruned)) {
            *root = Some(range.root());
        }
    }

    /// Adds the next record, whose leaf field is `leaf` (checked by the caller), and checks the
    /// stored hashes it completes.
    pub(super) fn push(&mut self, leaf: &Hash) {
        self.push_subtree(0, leaf_hash(leaf));
    }

    /// Adds the next records, whose leaf fields are `leaves`, as [`TreeCheck::push`] would one
    /// by one: each whole tile of [`TILE`] leaves that starts at a multiple of [`TILE`] is
    /// hashed on every core, then added as one subtree (unless a wanted root lies inside it).
    pub(super) fn push_all(&mut self, leaves: &[Hash]) {
        let Some(size) = self.range.as_ref().map(CompactRange::size) else {
            return;
        };
        // Leaves one by one up to a tile boundary, then whole tiles, then the rest.
        let head = ((TILE - size % TILE) % TILE).min(leaves.len() as u64) as usize;
        let tiles = (leaves.len() - head) / TILE as usize;
        let (first, rest) = leaves.split_at(head);
        let (whole, last) = rest.split_at(tiles * TILE as usize);
        for l in first {
            self.push(l);
        }
        let chunks: Vec<&[Hash]> = whole.chunks(TILE as usize).collect();
        let roots = par_map_by(&chunks, 2, |leaves| {
            let mut tile = CompactRange::new();
            leaves
                .iter()
                .for_each(|l| tile.push(leaf_hash(l), |_, _, _| {}));
            tile.root()
        });
        for (chunk, root) in chunks.iter().zip(roots) {
            let start = self.range.as_ref().map_or(0, CompactRange::size);
            if self.roots.range(start + 1..start + TILE).next().is_some() {
                for l in *chunk {
                    self.push(l);
                }
            } else {
                self.push_subtree(TILE.trailing_zeros() as u8, root);
            }
        }
        for l in last {
            self.push(l);
        }
    }

    /// Adds a complete subtree of `2^level` leaves with root `hash`, and checks the stored
    /// hashes it completes.
    fn push_subtree(&mut self, level: u8, hash: Hash) {
        let Some(range) = self.range.as_mut() else {
            return;
        };
        let (files, mismatch) = (&self.files, &mut self.mismatch);
        range.push_subtree(level, hash, |level, index, hash| {
            let level = u32::from(level);
            if mismatch.is_some() || level == 0 || !level.is_multiple_of(STRATUM_HEIGHT) {
                return;
            }
            let stratum = (level / STRATUM_HEIGHT) as u8;
            // As readers do: an entry is taken as written only once the next one is (a live
            // writer may be writing it). A chunk that cannot be read is as good as missing:
            // the stored hashes are a cache, and what is not there is not wrong.
            // The successor first: if it is written, the entry was whole before it is read.
            let next = files.read(stratum, index + 1).ok().flatten();
            let stored = files.read(stratum, index).ok().flatten();
            if let (Some(stored), Some(_)) = (stored, next)
                && stored != *hash
            {
                *mismatch = Some(IntegrityError {
                    seq: None,
                    file: files
                        .location()
                        .join(chunk_name(stratum, index / CHUNK_ENTRIES)),
                    offset: (index % CHUNK_ENTRIES) * 32,
                    reason: Reason::TreeEntry {
                        level: level as u8,
                        index,
                        computed: *hash,
                    },
                });
            }
        });
        let size = range.size();
        if let Some(root) = self.roots.get_mut(&size) {
            *root = Some(range.root());
        }
    }

    /// The root of the whole tree walked, if there is a tree to rebuild.
    pub(super) fn root(&self) -> Option<Hash> {
        self.range.as_ref().map(CompactRange::root)
    }

    /// The root at `size`, if the rebuilt tree had that size.
    pub(super) fn root_at(&self, size: u64) -> Option<Hash> {
        self.roots.get(&size).copied().flatten()
    }

    /// The first stored hash that does not match the records.
    pub(super) fn mismatch(&mut self) -> Option<IntegrityError> {
        self.mismatch.take()
    }
}
