//! The tree base of a pruned log: the leaf hashes of the pruned part of the tile that holds
//! the log's first leaf, which no stratum covers (`docs/FORMAT.md` §15.5).
//!
//! A log whose records before seq `p + 1` were pruned still has the Merkle tree over every
//! record since seq 1. Of its pruned part, the strata ([`crate::storage::tree`]) keep every
//! node of level 8 and above that a proof of the records kept can need; what they cannot give
//! is a node under level 8 in the tile that holds the first kept leaf `p`, nor, until that
//! tile is complete, the stored hash of the tile before it (an entry counts only once the next
//! one is written). The leaf hashes of those two tiles' pruned leaves, `t..p` ([`base_start`]),
//! are the *tree base* file of `p`, written by retention before it removes the segments that
//! hold them, one per segment boundary it may stop at. With it, [`PrunedPrefix`] gives every
//! node that lies inside the pruned leaves `[0, p)` and that the tree over sizes from `t` on
//! needs, as soon as the prune is done.

use std::io;

use crate::format::hash::Hash;
use crate::merkle::hash::node_hash;
use crate::merkle::prove::Nodes;
use crate::storage::Storage;
use crate::storage::names::{base_name, is_base_replacement, parse_base_name};
use crate::storage::tree::{MAX_STRATUM, STRATUM_HEIGHT, TreeFiles};

/// Leaves per tile: the base holds fewer.
const TILE: u64 = 1 << STRATUM_HEIGHT;

/// The first leaf of the tree base of `pruned`: the first of the tile before the one that
/// holds leaf `pruned` (or 0).
pub(crate) fn base_start(pruned: u64) -> u64 {
    (pruned - pruned % TILE).saturating_sub(TILE)
}

/// Writes the tree base of `pruned`: the leaf hashes of leaves [`base_start`]`(pruned)` to
/// `pruned - 1`, as `leaves`. Nothing is written for a log that lost nothing.
pub(crate) fn write_base(storage: &dyn Storage, pruned: u64, leaves: &[Hash]) -> io::Result<()> {
    debug_assert_eq!(leaves.len() as u64, pruned - base_start(pruned));
    if leaves.is_empty() {
        return Ok(());
    }
    let bytes: Vec<u8> = leaves.iter().flat_map(|h| h.0).collect();
    let name = base_name(pruned);
    storage
        .write_small(&name, &bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("writing the tree base {name}: {e}")))
}

/// The tree base of `pruned`, if its file is valid: a regular file of exactly `pruned -`
/// [`base_start`]`(pruned)` hashes. A missing file, or one of another length, is `None`.
pub(crate) fn read_base(storage: &dyn Storage, pruned: u64) -> Option<Vec<Hash>> {
    let want = (pruned - base_start(pruned)) as usize;
    if want == 0 {
        return Some(Vec::new());
    }
    let bytes = storage.read_small(&base_name(pruned)).ok()??;
    if bytes.len() != want * 32 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(32)
            .map(|c| Hash(c.try_into().expect("32 bytes")))
            .collect(),
    )
}

/// Removes every tree base file whose number is not in `keep`, and every replacement of one
/// that a crash left (none is in progress while the writer prunes), and returns how many.
pub(crate) fn remove_bases_except(storage: &dyn Storage, keep: &[u64]) -> io::Result<usize> {
    let mut removed = 0;
    for name in storage.list()? {
        let stale = match parse_base_name(&name) {
            Some(pruned) => !keep.contains(&pruned),
            None => is_base_replacement(&name),
        };
        if !stale {
            continue;
        }
        match storage.remove(&name) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("removing the tree base {name}: {e}"),
                ));
            }
        }
    }
    Ok(removed)
}

/// The nodes of a pruned log's tree that lie inside its pruned leaves `[0, p)`, from the
/// strata and the tree base alone (`docs/FORMAT.md` §15.5).
pub(crate) struct PrunedPrefix<'a> {
    files: &'a TreeFiles<'a>,
    /// `p`: the leaves pruned.
    pruned: u64,
    /// The leaf hashes of leaves [`base_start`]`(p)..p`, if the base is valid.
    base: Option<Vec<Hash>>,
}

/// Why a node of the pruned part of the tree cannot be had.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PrefixError {
    /// A leaf that neither the tree base nor the records hold.
    Pruned { leaf: u64 },
}

impl std::fmt::Display for PrefixError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let PrefixError::Pruned { leaf } = self;
        write!(
            f,
            "the record with seq {} was pruned, and no stored hash of the tree covers it",
            leaf + 1
        )
    }
}

impl<'a> PrunedPrefix<'a> {
    /// The pruned part of the tree of the log in `storage` whose first `pruned` leaves were
    /// pruned, reading the strata through `files`.
    pub(crate) fn new(storage: &dyn Storage, files: &'a TreeFiles<'a>, pruned: u64) -> Self {
        PrunedPrefix {
            files,
            pruned,
            base: read_base(storage, pruned),
        }
    }

    /// The first leaf whose hash this prefix holds, or `p` if its base is not valid: roots and
    /// proofs of trees of that size or more can be made.
    pub(crate) fn first_leaf(&self) -> u64 {
        match self.base {
            Some(_) => base_start(self.pruned),
            None => self.pruned,
        }
    }

    /// The tree leaf hash of pruned leaf `index`, if the base holds it.
    pub(crate) fn leaf(&self, index: u64) -> Option<Hash> {
        let start = base_start(self.pruned);
        match &self.base {
            Some(base) if (start..self.pruned).contains(&index) => {
                Some(base[(index - start) as usize])
            }
            _ => None,
        }
    }
}

impl Nodes for PrunedPrefix<'_> {
    type Error = PrefixError;

    /// Node `(level, index)`, which must end at or before leaf `p`.
    fn node(&self, level: u8, index: u64) -> Result<Hash, PrefixError> {
        let level_u32 = u32::from(level);
        debug_assert!(
            level_u32 < 64 && (index + 1) << level_u32 <= self.pruned,
            "node ({level}, {index}) is not inside the {} pruned leaves",
            self.pruned
        );
        if level == 0 {
            return self.leaf(index).ok_or(PrefixError::Pruned { leaf: index });
        }
        if level_u32.is_multiple_of(STRATUM_HEIGHT) {
            let stratum = (level_u32 / STRATUM_HEIGHT) as u8;
            if stratum <= MAX_STRATUM {
                // The successor first: if it is written, the entry was whole before it is read.
                // A chunk that cannot be read is as good as missing, as in a verification.
                let next = self.files.read(stratum, index + 1).ok().flatten();
                let entry = self.files.read(stratum, index).ok().flatten();
                if let (Some(entry), Some(_)) = (entry, next) {
                    return Ok(entry);
                }
            }
        }
        Ok(node_hash(
            &self.node(level - 1, 2 * index)?,
            &self.node(level - 1, 2 * index + 1)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::hash::leaf_hash;
    use crate::merkle::prove::{frontier, root};
    use crate::merkle::range::CompactRange;
    use crate::storage::MemStorage;
    use std::sync::Arc;

    #[test]
    fn base_names_round_trip_and_reject_near_misses() {
        assert_eq!(base_name(0xa3c), "0000000000000a3c.tb");
        assert_eq!(parse_base_name("0000000000000a3c.tb"), Some(0xa3c));
        for other in [
            "0000000000000A3C.tb",
            "000000000000a3c.tb",
            "0000000000000a3c.t1",
            "0000000000000a3c.tb.tmp",
            ".tb",
        ] {
            assert_eq!(parse_base_name(other), None, "{other:?}");
        }
        assert!(is_base_replacement(".0000000000000a3c.tb.tmp-12-0"));
        assert!(!is_base_replacement(".0000000000000a3c.tb.tmp"));
        assert!(!is_base_replacement(".x.tb.tmp-1"));
    }

    /// Leaves, the strata a writer would have stored over them, and the base of `pruned`:
    /// every frontier from the base's tile on agrees with the tree of all the leaves.
    #[test]
    fn a_pruned_prefix_gives_the_frontiers_of_the_whole_tree() {
        for pruned in [255u64, 256, 700, 65_536 + 300, 70_000] {
            let storage: Arc<dyn Storage> = Arc::new(MemStorage::new("pruned"));
            let files = TreeFiles::new(storage.clone(), true);
            let leaves: Vec<Hash> = (0..pruned + 600)
                .map(|i| {
                    let mut leaf = [0u8; 32];
                    leaf[..8].copy_from_slice(&i.to_be_bytes());
                    leaf_hash(&Hash(leaf))
                })
                .collect();
            let mut range = CompactRange::new();
            for l in &leaves {
                range.push(*l, |level, index, hash| {
                    let level = u32::from(level);
                    if level > 0 && level.is_multiple_of(STRATUM_HEIGHT) {
                        files
                            .write((level / STRATUM_HEIGHT) as u8, index, hash)
                            .unwrap();
                    }
                });
            }
            let start = base_start(pruned);
            write_base(&*storage, pruned, &leaves[start as usize..pruned as usize]).unwrap();
            let prefix = PrunedPrefix::new(&*storage, &files, pruned);
            assert_eq!(prefix.first_leaf(), start);
            for size in [start, u64::midpoint(start, pruned), pruned] {
                let whole = Whole(&leaves);
                assert_eq!(
                    frontier(&prefix, size).unwrap(),
                    frontier(&whole, size).unwrap(),
                    "frontier at {size}, {pruned} pruned"
                );
                assert_eq!(root(&prefix, size).unwrap(), root(&whole, size).unwrap());
            }
            if start > 0 {
                assert!(matches!(
                    frontier(&prefix, start - 1),
                    Err(crate::merkle::prove::ProveError::Node { .. })
                ));
            }
            // A base of the wrong length counts as absent.
            {
                storage
                    .write_small(&base_name(pruned), &[7u8; 32 * 3])
                    .unwrap();
                let prefix = PrunedPrefix::new(&*storage, &files, pruned);
                assert_eq!(prefix.first_leaf(), pruned);
                if pruned % TILE != 0 {
                    assert!(frontier(&prefix, pruned).is_err());
                }
            }
            assert_eq!(remove_bases_except(&*storage, &[]).unwrap(), 1);
        }
    }

    /// Every node hashed from all the leaves.
    struct Whole<'a>(&'a [Hash]);

    impl Nodes for Whole<'_> {
        type Error = std::convert::Infallible;

        fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
            if level == 0 {
                return Ok(self.0[index as usize]);
            }
            Ok(node_hash(
                &self.node(level - 1, 2 * index)?,
                &self.node(level - 1, 2 * index + 1)?,
            ))
        }
    }
}
