//! The compact range: the tree over `[0, n)` kept as its frontier, grown one leaf at a time.
//!
//! The frontier of a tree of `n` leaves is the list of roots of the complete subtrees that cover
//! `[0, n)`, left to right: one for each 1 bit of `n`, largest first. For `n = 13 = 0b1101` it
//! is the nodes `(3, 0)`, `(2, 2)` and `(0, 12)`, covering `[0, 8)`, `[8, 12)` and `[12, 13)`.
//! Appending a leaf is binary addition: the new leaf is a complete subtree of level 0, and while
//! the frontier ends with one of the same level, the two merge into their parent, exactly as a
//! carry ripples through the trailing 1 bits of `n`. The root is the frontier folded from the
//! right, which is the RFC's tree hash because the RFC splits every range at the largest power
//! of two below its size.

use std::fmt;

use crate::format::hash::Hash;

use super::hash::{empty_root, node_hash};

/// The tree over the first `size` leaves, as its frontier: O(log n) hashes, enough to append
/// and to compute the root.
///
/// [`push`](CompactRange::push) reports every complete subtree it finishes, so that a store can
/// keep them for [proofs](super::prove); [`frontier`](CompactRange::frontier) and
/// [`from_frontier`](CompactRange::from_frontier) let a reopened log continue where it stopped
/// without hashing its leaves again.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct CompactRange {
    /// Leaves appended.
    size: u64,
    /// The roots of the complete subtrees covering `[0, size)`, left to right (largest first).
    frontier: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// The tree over the first `size` leaves, from its frontier (as [`frontier`] returns it, or
    /// [`prove::frontier`] reads it from stored nodes): one hash for each 1 bit of `size`, from
    /// the highest bit to the lowest.
    ///
    /// [`frontier`]: CompactRange::frontier
    /// [`prove::frontier`]: super::prove::frontier
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<CompactRange, FrontierError> {
        let expected = size.count_ones() as usize;
        if frontier.len() != expected {
            return Err(FrontierError {
                size,
                expected,
                got: frontier.len(),
            });
        }
        Ok(CompactRange { size, frontier })
    }

    /// Leaves appended so far: the tree's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the complete subtrees covering `[0, size)`, left to right: for each 1 bit
    /// of the size, from the highest, at `level` = that bit, the node
    /// `(level, (size >> level) - 1)`.
    #[cfg(test)]
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }

    /// Appends the leaf with tree leaf hash `leaf_hash` (see [`leaf_hash`]) as leaf number
    /// `size()`, and calls `completed(level, index, hash)` for each complete subtree this
    /// finishes, children before parents: the leaf itself at level 0, then one node for each
    /// trailing 1 bit of the old size. O(log n) hashes at worst, one on average.
    ///
    /// Panics when the tree already holds `u64::MAX` leaves.
    ///
    /// [`leaf_hash`]: super::hash::leaf_hash
    pub fn push(&mut self, leaf_hash: Hash, completed: impl FnMut(u8, u64, &Hash)) {
        self.push_subtree(0, leaf_hash, completed);
    }

    /// Appends the `2^level` leaves of a complete subtree whose root is `hash`, as
    /// [`CompactRange::push`] would one by one (calling `completed` for the subtree itself and
    /// the nodes it finishes above it, not for those inside it). The size must be a multiple
    /// of `2^level`.
    ///
    /// Panics when the tree would hold more than `u64::MAX` leaves.
    pub fn push_subtree(
        &mut self,
        level: u8,
        hash: Hash,
        mut completed: impl FnMut(u8, u64, &Hash),
    ) {
        let old = self.size;
        debug_assert!(level < 64 && old.trailing_zeros() >= u32::from(level));
        self.size = old
            .checked_add(1 << level)
            .expect("a tree holds at most u64::MAX leaves");
        let mut hash = hash;
        let mut level = level;
        let mut index = old >> level;
        completed(level, index, &hash);
        // Each trailing 1 bit of the old size is a complete subtree of that level at the end of
        // the frontier, the left sibling of the one just finished.
        while index & 1 == 1 {
            let left = self
                .frontier
                .pop()
                .expect("the frontier has one hash per 1 bit of the size");
            hash = node_hash(&left, &hash);
            level += 1;
            index >>= 1;
            completed(level, index, &hash);
        }
        self.frontier.push(hash);
    }

    /// The root of the tree, `MTH(D[0:size])`: the frontier folded from the right. At most
    /// `log2(size)` node hashes; the empty tree's root for size 0.
    pub fn root(&self) -> Hash {
        let mut hashes = self.frontier.iter().rev();
        let Some(&last) = hashes.next() else {
            return empty_root();
        };
        hashes.fold(last, |right, left| node_hash(left, &right))
    }
}

impl fmt::Debug for CompactRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactRange")
            .field("size", &self.size)
            .field("root", &self.root())
            .finish()
    }
}

/// [`CompactRange::from_frontier`] was given a frontier of the wrong length for its size.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a tree of {size} leaves has a frontier of {expected} hashes (one per 1 bit of its size), \
     not {got}"
)]
pub struct FrontierError {
    /// The size given.
    pub size: u64,
    /// Hashes a frontier of that size has.
    pub expected: usize,
    /// Hashes given.
    pub got: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::testing::{leaves, mth};

    #[test]
    fn a_subtree_pushed_whole_is_the_same_as_its_leaves_one_by_one() {
        let all = leaves(1024);
        let (mut one, mut whole) = (CompactRange::new(), CompactRange::new());
        let (mut seen_one, mut seen_whole) = (Vec::new(), Vec::new());
        // 16 single leaves, then subtrees of 4, 2 and 8 leaves, a tile of 256 and one of 512:
        // each starts at a multiple of its width.
        let mut at = 0;
        for (count, level) in [(16usize, 0u8), (4, 2), (8, 1), (26, 3), (1, 8), (1, 9)] {
            for _ in 0..count {
                let width = 1usize << level;
                let mut sub = CompactRange::new();
                for l in &all[at..at + width] {
                    sub.push(*l, |_, _, _| {});
                    one.push(*l, |lv, i, h| {
                        if lv >= level {
                            seen_one.push((lv, i, *h));
                        }
                    });
                }
                whole.push_subtree(level, sub.root(), |lv, i, h| seen_whole.push((lv, i, *h)));
                at += width;
                assert_eq!(one.root(), whole.root(), "at {at}");
                assert_eq!(one.frontier(), whole.frontier());
            }
        }
        assert_eq!(at, 1024);
        assert_eq!(seen_one, seen_whole);
        assert_eq!(whole.root(), mth(&all[..at]));
    }

    /// The root equals the reference tree hash at every size, and every node reported is a
    /// complete subtree that exists only once, with the reference hash of the leaves it covers.
    #[test]
    fn root_and_completed_nodes_match_the_reference_up_to_300_leaves() {
        let leaves = leaves(300);
        let mut range = CompactRange::new();
        assert_eq!(range.root(), empty_root());
        assert_eq!(range.root(), mth(&[]));
        let mut reported: Vec<(u8, u64, Hash)> = Vec::new();
        for (i, leaf) in leaves.iter().enumerate() {
            let mut now = Vec::new();
            range.push(*leaf, |level, index, hash| now.push((level, index, *hash)));
            let size = i as u64 + 1;
            assert_eq!(range.size(), size);
            assert_eq!(range.root(), mth(&leaves[..=i]), "size {size}");
            assert_eq!(range.frontier().len(), size.count_ones() as usize);
            // The leaf first, then one parent per trailing 1 bit of the old size, in order.
            assert_eq!(now.len(), 1 + (i as u64).trailing_ones() as usize);
            for (k, &(level, index, hash)) in now.iter().enumerate() {
                assert_eq!(usize::from(level), k);
                let begin = (index << level) as usize;
                let end = ((index + 1) << level) as usize;
                // The node ends at the leaf just appended: it was completed by it.
                assert_eq!(end, i + 1);
                assert_eq!(hash, mth(&leaves[begin..end]), "node ({level}, {index})");
            }
            reported.extend(now);
        }
        // Every complete subtree of the 300-leaf tree was reported, exactly once.
        let complete: u64 = (0..9).map(|level| 300u64 >> level).sum();
        assert_eq!(reported.len() as u64, complete);
        let mut ids: Vec<(u8, u64)> = reported.iter().map(|&(l, i, _)| (l, i)).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len() as u64, complete);
    }

    /// The frontier is the documented list of nodes: for each 1 bit of the size, highest first.
    #[test]
    fn frontier_is_the_binary_decomposition_of_the_size() {
        let leaves = leaves(100);
        let mut range = CompactRange::new();
        for (i, leaf) in leaves.iter().enumerate() {
            range.push(*leaf, |_, _, _| {});
            let size = i as u64 + 1;
            let expected: Vec<Hash> = (0..64u32)
                .rev()
                .filter(|&level| size >> level & 1 == 1)
                .map(|level| {
                    let index = (size >> level) - 1;
                    mth(&leaves[(index << level) as usize..((index + 1) << level) as usize])
                })
                .collect();
            assert_eq!(range.frontier(), &expected[..], "size {size}");
        }
    }

    /// A range saved at any size and restored continues to the same roots, nodes and frontiers
    /// as one that never stopped.
    #[test]
    fn restored_from_a_frontier_continues_with_the_same_roots() {
        let leaves = leaves(140);
        let mut whole = CompactRange::new();
        let mut saved = vec![whole.clone()];
        for leaf in &leaves {
            whole.push(*leaf, |_, _, _| {});
            saved.push(whole.clone());
        }
        for (n, at_n) in saved.iter().enumerate() {
            let mut restored =
                CompactRange::from_frontier(n as u64, at_n.frontier().to_vec()).unwrap();
            assert_eq!(restored, *at_n);
            assert_eq!(restored.root(), mth(&leaves[..n]));
            let mut uninterrupted = at_n.clone();
            for (i, leaf) in leaves.iter().enumerate().skip(n) {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                restored.push(*leaf, |l, x, h| a.push((l, x, *h)));
                uninterrupted.push(*leaf, |l, x, h| b.push((l, x, *h)));
                assert_eq!(a, b);
                assert_eq!(restored.root(), saved[i + 1].root());
                assert_eq!(restored.frontier(), saved[i + 1].frontier());
            }
        }
    }

    #[test]
    fn a_frontier_of_the_wrong_length_is_refused() {
        let err = CompactRange::from_frontier(13, vec![Hash::ZERO; 2]).unwrap_err();
        assert_eq!(
            err,
            FrontierError {
                size: 13,
                expected: 3,
                got: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "a tree of 13 leaves has a frontier of 3 hashes (one per 1 bit of its size), not 2"
        );
        assert!(CompactRange::from_frontier(0, vec![Hash::ZERO]).is_err());
        assert_eq!(
            CompactRange::from_frontier(0, Vec::new()).unwrap().root(),
            empty_root()
        );
        // At the largest size, all 64 bits are set; one more leaf does not fit.
        let full = CompactRange::from_frontier(u64::MAX, vec![Hash::ZERO; 64]).unwrap();
        assert_eq!(full.size(), u64::MAX);
        let pushed = std::panic::catch_unwind(move || {
            let mut full = full;
            full.push(Hash::ZERO, |_, _, _| {});
        });
        assert!(pushed.is_err());
    }

    /// The transparency-dev/merkle reference tree of 8 leaves: its frontier at every size.
    #[test]
    fn rfc6962_reference_frontiers() {
        use crate::merkle::testing::{RFC_NODES, RFC_ROOTS, hex, rfc_leaves};
        let node = |level: usize, index: usize| hex(RFC_NODES[level][index]);
        let expected: [Vec<Hash>; 9] = [
            vec![],
            vec![node(0, 0)],
            vec![node(1, 0)],
            vec![node(1, 0), node(0, 2)],
            vec![node(2, 0)],
            vec![node(2, 0), node(0, 4)],
            vec![node(2, 0), node(1, 2)],
            vec![node(2, 0), node(1, 2), node(0, 6)],
            vec![node(3, 0)],
        ];
        let mut range = CompactRange::new();
        let mut nodes = Vec::new();
        assert_eq!(range.frontier(), &expected[0][..]);
        for (i, leaf) in rfc_leaves().into_iter().enumerate() {
            range.push(leaf, |level, index, hash| nodes.push((level, index, *hash)));
            assert_eq!(range.frontier(), &expected[i + 1][..]);
            assert_eq!(range.root(), hex(RFC_ROOTS[i + 1]));
        }
        // Every node of the reference table was reported, with its hash.
        for (level, row) in RFC_NODES.iter().enumerate() {
            for (index, h) in row.iter().enumerate() {
                assert!(nodes.contains(&(level as u8, index as u64, hex(h))));
            }
        }
        assert_eq!(nodes.len(), 15);
    }
}
