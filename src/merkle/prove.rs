//! Making proofs and roots from stored complete subtrees.
//!
//! A store keeps the hash of every complete subtree (what [`CompactRange::push`] reports) and
//! answers [`Nodes::node`]. Every hash a proof or a root needs is the hash of a range of the
//! RFC's recursion, `MTH(D[begin:end])`: a complete subtree, one read; or, on the right edge of
//! the tree, a range whose size is not a power of two, which is the fold of the complete
//! subtrees that cover it (one for each 1 bit of its size). A proof has at most one such range,
//! so it costs at most `2·⌈log2 size⌉` reads (see [`inclusion_proof`] and
//! [`consistency_proof`]).
//!
//! [`CompactRange::push`]: super::range::CompactRange::push

use crate::format::hash::Hash;

use super::hash::{empty_root, node_hash};
use super::proof::{ConsistencyProof, InclusionProof, ProofError};

/// Where the hashes of complete subtrees are kept.
pub trait Nodes {
    /// Why a node could not be read.
    type Error;

    /// The hash of the complete subtree `(level, index)`, the one over the leaves
    /// `[index·2^level, (index+1)·2^level)`: the tree leaf hash of leaf `index` for level 0.
    ///
    /// Proofs and roots for a tree of `size` leaves read only nodes that end at or before
    /// `size`: `(index+1)·2^level <= size`.
    fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error>;
}

/// Why a proof or a root could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError<E> {
    /// The index or the sizes asked for have no proof.
    #[error(transparent)]
    Invalid(#[from] ProofError),
    /// The store could not give a node.
    #[error("cannot read tree node (level {level}, index {index}): {source}")]
    Node {
        /// The node's level.
        level: u8,
        /// The node's index in its level.
        index: u64,
        /// Why.
        #[source]
        source: E,
    },
}

/// Reads node `(level, index)`.
fn read<N: Nodes + ?Sized>(nodes: &N, level: u8, index: u64) -> Result<Hash, ProveError<N::Error>> {
    nodes.node(level, index).map_err(|source| ProveError::Node {
        level,
        index,
        source,
    })
}

/// The largest power of two smaller than `n` (`n >= 2`): where the RFC splits `n` leaves.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (n - 1).ilog2()
}

/// `MTH(D[begin:end])` for a range of the RFC's recursion over some tree (`begin < end`, and
/// `begin` a multiple of the smallest power of two at least `end - begin`): the complete
/// subtrees covering it, one for each 1 bit of its size, largest first, folded from the right.
/// As many reads as 1 bits.
fn range_hash<N: Nodes + ?Sized>(
    nodes: &N,
    begin: u64,
    end: u64,
) -> Result<Hash, ProveError<N::Error>> {
    debug_assert!(begin < end);
    let len = end - begin;
    let mut acc: Option<Hash> = None;
    // From the smallest subtree, the rightmost, to the largest.
    for level in 0..64u8 {
        if len >> level & 1 == 0 {
            continue;
        }
        // It starts after the larger subtrees to its left: the higher bits of `len`.
        let start = begin + (len & (u64::MAX << level << 1));
        let hash = read(nodes, level, start >> level)?;
        acc = Some(match acc {
            None => hash,
            Some(right) => node_hash(&hash, &right),
        });
    }
    Ok(acc.expect("the range is not empty"))
}

/// The root of the tree of `size` leaves, `MTH(D[0:size])`: one read for each 1 bit of
/// `size`; the empty tree's root, without reads, for size 0.
pub fn root<N: Nodes + ?Sized>(nodes: &N, size: u64) -> Result<Hash, ProveError<N::Error>> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(nodes, 0, size)
}

/// The frontier of the tree of `size` leaves, as [`CompactRange::from_frontier`] takes it: the
/// complete subtrees covering `[0, size)`, left to right. One read for each 1 bit of `size`.
///
/// [`CompactRange::from_frontier`]: super::range::CompactRange::from_frontier
pub fn frontier<N: Nodes + ?Sized>(
    nodes: &N,
    size: u64,
) -> Result<Vec<Hash>, ProveError<N::Error>> {
    (0..64u8)
        .rev()
        .filter(|&level| size >> level & 1 == 1)
        .map(|level| read(nodes, level, (size >> level) - 1))
        .collect()
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves: `PATH(index, D[size])`
/// (RFC 9162 §2.1.3.1).
///
/// Fails with [`ProofError::IndexOutOfRange`] when `index >= size`. Reads at most
/// `2·⌈log2 size⌉ - 1` nodes (none for size 1): one per hash of the path, whose length is at
/// most `⌈log2 size⌉`, except the one hash on the tree's right edge that covers a range whose
/// size is not a power of two, which takes one read per 1 bit of that size, fewer than
/// `⌈log2 size⌉`.
pub fn inclusion_proof<N: Nodes + ?Sized>(
    nodes: &N,
    index: u64,
    size: u64,
) -> Result<InclusionProof, ProveError<N::Error>> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size }.into());
    }
    // The siblings of the path, from the root down, as ranges of leaves.
    let mut siblings = Vec::new();
    let (mut begin, mut end) = (0, size);
    while end - begin > 1 {
        let mid = begin + split(end - begin);
        if index < mid {
            siblings.push((mid, end));
            end = mid;
        } else {
            siblings.push((begin, mid));
            begin = mid;
        }
    }
    let hashes = siblings
        .iter()
        .rev()
        .map(|&(b, e)| range_hash(nodes, b, e))
        .collect::<Result<_, _>>()?;
    Ok(InclusionProof {
        index,
        size,
        hashes,
    })
}

/// The consistency proof between the trees of `old_size` and `new_size` leaves:
/// `PROOF(old_size, D[new_size])` (RFC 9162 §2.1.4.1).
///
/// Fails with [`ProofError::SizesOutOfOrder`] when `old_size > new_size` and with
/// [`ProofError::EmptyOldTree`] when `old_size` is 0 (the RFC defines proofs for
/// `0 < old_size < new_size`; see [`ConsistencyProof::verify`]). For equal sizes the proof is
/// empty, the RFC's `SUBPROOF(m, D[m], true)`, and reads nothing. Otherwise it reads at most
/// `2·⌈log2 new_size⌉` nodes: as for an inclusion proof, with at most one more hash, the old
/// tree's last complete subtree when the old size is not a power of two.
pub fn consistency_proof<N: Nodes + ?Sized>(
    nodes: &N,
    old_size: u64,
    new_size: u64,
) -> Result<ConsistencyProof, ProveError<N::Error>> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size }.into());
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size }.into());
    }
    // SUBPROOF(m, D[begin:end], whole) from the root down: `m` leaves of the old tree in
    // [begin, end); `whole` while [begin, end) starts at leaf 0, whose root the verifier has.
    let mut parts = Vec::new();
    let (mut begin, mut end, mut m, mut whole) = (0, new_size, old_size, true);
    while m != end - begin {
        let k = split(end - begin);
        if m <= k {
            parts.push((begin + k, end));
            end = begin + k;
        } else {
            parts.push((begin, begin + k));
            begin += k;
            m -= k;
            whole = false;
        }
    }
    if !whole {
        parts.push((begin, end));
    }
    let hashes = parts
        .iter()
        .rev()
        .map(|&(b, e)| range_hash(nodes, b, e))
        .collect::<Result<_, _>>()?;
    Ok(ConsistencyProof {
        old_size,
        new_size,
        hashes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::range::CompactRange;
    use crate::merkle::testing::{
        MemNodes, Missing, RFC_NODES, RFC_ROOTS, hex, leaves, mth, path, proof, rfc_leaves,
    };

    /// `⌈log2 n⌉`.
    fn ceil_log2(n: u64) -> usize {
        (64 - (n - 1).leading_zeros()) as usize
    }

    /// Flips each bit of each hash of `hashes` in turn and calls `check` with the result.
    fn each_bit_flipped(hashes: &[Hash], mut check: impl FnMut(Vec<Hash>)) {
        for i in 0..hashes.len() {
            for bit in 0..256 {
                let mut h = hashes.to_vec();
                h[i].0[bit / 8] ^= 1 << (bit % 8);
                check(h);
            }
        }
    }

    /// The proofs of the transparency-dev/merkle reference tree, generated from its nodes.
    #[test]
    fn rfc_reference_proofs_are_generated() {
        let nodes = MemNodes::new(&rfc_leaves());
        let node = |level: usize, index: usize| hex(RFC_NODES[level][index]);
        for size in 0..=8u64 {
            assert_eq!(root(&nodes, size).unwrap(), hex(RFC_ROOTS[size as usize]));
        }
        for (index, size, expected) in [
            (0, 1, vec![]),
            (0, 8, vec![node(0, 1), node(1, 1), node(2, 1)]),
            (5, 8, vec![node(0, 4), node(1, 3), node(2, 0)]),
            (2, 3, vec![node(1, 0)]),
            (1, 5, vec![node(0, 0), node(1, 1), node(0, 4)]),
        ] {
            let p = inclusion_proof(&nodes, index, size).unwrap();
            assert_eq!(p.hashes, expected, "leaf {index} of {size}");
        }
        for (old, new, expected) in [
            (1, 1, vec![]),
            (1, 8, vec![node(0, 1), node(1, 1), node(2, 1)]),
            (6, 8, vec![node(1, 2), node(1, 3), node(2, 0)]),
            (2, 5, vec![node(1, 1), node(0, 4)]),
            (6, 7, vec![node(1, 2), node(0, 6), node(2, 0)]),
        ] {
            let p = consistency_proof(&nodes, old, new).unwrap();
            assert_eq!(p.hashes, expected, "{old} to {new}");
        }
    }

    /// Every inclusion proof in every tree of 1 to 70 leaves equals the RFC's PATH, verifies,
    /// and fails with any one bit changed, a hash dropped or added, another index or size, or
    /// another leaf.
    #[test]
    fn inclusion_proofs_match_the_reference_and_only_they_verify() {
        let leaves = leaves(72);
        let nodes = MemNodes::new(&leaves);
        for size in 1..=70u64 {
            let n = size as usize;
            let root_n = mth(&leaves[..n]);
            for index in 0..size {
                let i = index as usize;
                let p = inclusion_proof(&nodes, index, size).unwrap();
                assert_eq!(p.hashes, path(i, &leaves[..n]), "leaf {index} of {size}");
                p.verify_leaf_hash(&leaves[i], &root_n).unwrap();

                each_bit_flipped(&p.hashes, |hashes| {
                    let q = InclusionProof {
                        hashes,
                        ..p.clone()
                    };
                    assert!(matches!(
                        q.verify_leaf_hash(&leaves[i], &root_n),
                        Err(ProofError::RootMismatch { .. })
                    ));
                });
                let wrong_length = |hashes: Vec<Hash>| {
                    let got = hashes.len();
                    let q = InclusionProof {
                        hashes,
                        ..p.clone()
                    };
                    assert_eq!(
                        q.verify_leaf_hash(&leaves[i], &root_n),
                        Err(ProofError::WrongLength {
                            expected: p.hashes.len(),
                            got
                        })
                    );
                };
                for at in 0..p.hashes.len() {
                    let mut h = p.hashes.clone();
                    h.remove(at);
                    wrong_length(h);
                }
                for at in 0..=p.hashes.len() {
                    let mut h = p.hashes.clone();
                    h.insert(at, root_n);
                    wrong_length(h);
                }
                // Another leaf, or this leaf's hash under another index, in the same tree.
                for other in 0..n {
                    if other != i {
                        assert!(p.verify_leaf_hash(&leaves[other], &root_n).is_err());
                        let q = InclusionProof {
                            index: other as u64,
                            ..p.clone()
                        };
                        assert!(q.verify_leaf_hash(&leaves[i], &root_n).is_err());
                        assert!(q.verify_leaf_hash(&leaves[other], &root_n).is_err());
                    }
                }
                // Another size, against that tree's root (or this one's).
                for other in 1..=72u64 {
                    if other != size {
                        let q = InclusionProof {
                            size: other,
                            ..p.clone()
                        };
                        let root_other = mth(&leaves[..other as usize]);
                        assert!(q.verify_leaf_hash(&leaves[i], &root_other).is_err());
                        if index >= other {
                            assert_eq!(
                                q.verify_leaf_hash(&leaves[i], &root_n),
                                Err(ProofError::IndexOutOfRange { index, size: other })
                            );
                        }
                    }
                }
            }
        }
    }

    /// Every consistency proof between two trees of 1 to 70 leaves equals the RFC's PROOF,
    /// verifies, and fails with any one bit changed, a hash dropped or added, other sizes, or
    /// other roots.
    #[test]
    fn consistency_proofs_match_the_reference_and_only_they_verify() {
        let leaves = leaves(72);
        let nodes = MemNodes::new(&leaves);
        let roots: Vec<Hash> = (0..=72).map(|n| mth(&leaves[..n])).collect();
        for new in 1..=70u64 {
            let root_new = roots[new as usize];
            for old in 1..=new {
                let root_old = roots[old as usize];
                let p = consistency_proof(&nodes, old, new).unwrap();
                assert_eq!(
                    p.hashes,
                    proof(old as usize, &leaves[..new as usize]),
                    "{old} to {new}"
                );
                p.verify(&root_old, &root_new).unwrap();

                each_bit_flipped(&p.hashes, |hashes| {
                    let q = ConsistencyProof {
                        hashes,
                        ..p.clone()
                    };
                    assert!(matches!(
                        q.verify(&root_old, &root_new),
                        Err(ProofError::OldRootMismatch { .. } | ProofError::RootMismatch { .. })
                    ));
                });
                let wrong_length = |hashes: Vec<Hash>| {
                    let got = hashes.len();
                    let q = ConsistencyProof {
                        hashes,
                        ..p.clone()
                    };
                    assert_eq!(
                        q.verify(&root_old, &root_new),
                        Err(ProofError::WrongLength {
                            expected: p.hashes.len(),
                            got
                        })
                    );
                };
                for at in 0..p.hashes.len() {
                    let mut h = p.hashes.clone();
                    h.remove(at);
                    wrong_length(h);
                }
                for at in 0..=p.hashes.len() {
                    let mut h = p.hashes.clone();
                    h.insert(at, root_old);
                    wrong_length(h);
                }
                // Other sizes, against the roots of those trees: one size changed to any other,
                // or both by up to 2. (Against these roots instead, a proof can be well formed
                // for other sizes: PROOF(1, D[3]) is [l1, l2], which also leads from root 1 to
                // root 3 as if it were a proof from 1 to 4 leaves.)
                let near = (0..25u64).filter_map(|k| {
                    Some(((old + k / 5).checked_sub(2)?, (new + k % 5).checked_sub(2)?))
                });
                let others = (0..=72u64)
                    .map(|o| (o, new))
                    .chain((0..=72u64).map(|n| (old, n)))
                    .chain(near)
                    .filter(|&other| other != (old, new))
                    // The empty proof between equal sizes holds for every size (but 0).
                    .filter(|&(o, n)| !(old == new && o == n && o > 0));
                for (other_old, other_new) in others {
                    let q = ConsistencyProof {
                        old_size: other_old,
                        new_size: other_new,
                        ..p.clone()
                    };
                    let (r1, r2) = (roots[other_old as usize], roots[other_new as usize]);
                    assert!(q.verify(&r1, &r2).is_err(), "{q:?}");
                }
                // Other roots.
                if old != new {
                    assert!(p.verify(&root_new, &root_old).is_err());
                    assert!(p.verify(&roots[old as usize - 1], &root_new).is_err());
                    assert!(p.verify(&root_old, &roots[new as usize + 1]).is_err());
                }
            }
        }
    }

    /// The bounds on node reads the docs state, checked at every index and size up to 300, and
    /// at a few sizes near 2^40.
    #[test]
    fn proofs_read_logarithmically_many_nodes() {
        let leaves = leaves(300);
        let nodes = MemNodes::new(&leaves);
        for size in 1..=300u64 {
            let bound = 2 * ceil_log2(size);
            for index in 0..size {
                inclusion_proof(&nodes, index, size).unwrap();
                let reads = nodes.take_reads();
                assert!(
                    reads < bound.max(1),
                    "leaf {index} of {size}: {reads} reads"
                );
            }
            for old in 1..=size {
                consistency_proof(&nodes, old, size).unwrap();
                let reads = nodes.take_reads();
                assert!(reads <= bound, "{old} to {size}: {reads} reads");
            }
            root(&nodes, size).unwrap();
            assert_eq!(nodes.take_reads(), size.count_ones() as usize);
        }

        // A store that has every node and makes up its hash: large trees without the leaves.
        struct Any(std::cell::Cell<usize>);
        impl Nodes for Any {
            type Error = std::convert::Infallible;
            fn node(&self, level: u8, index: u64) -> Result<Hash, Self::Error> {
                self.0.set(self.0.get() + 1);
                let mut h = [0; 32];
                h[0] = level;
                h[8..16].copy_from_slice(&index.to_le_bytes());
                Ok(Hash(h))
            }
        }
        let any = Any(std::cell::Cell::new(0));
        for size in [(1u64 << 40) - 1, (1 << 40) + 1, 0x55_5555_5555, u64::MAX] {
            let bound = 2 * ceil_log2(size);
            for index in [0, 1, size / 3, size - 2, size - 1] {
                let p = inclusion_proof(&any, index, size).unwrap();
                assert!(any.0.replace(0) < bound);
                assert_eq!(
                    p.hashes.len(),
                    super::super::proof::inclusion_len(index, size)
                );
                consistency_proof(&any, index + 1, size).unwrap();
                assert!(any.0.replace(0) <= bound);
            }
        }
    }

    /// The nodes a compact range reports are the ones proofs read: a store filled from
    /// `push` makes the same proofs, and its frontier restores the range.
    #[test]
    fn a_store_filled_by_a_compact_range_serves_proofs_and_frontiers() {
        let leaves = leaves(100);
        let mut levels: Vec<Vec<Hash>> = Vec::new();
        let mut range = CompactRange::new();
        struct Store<'a>(&'a [Vec<Hash>]);
        impl Nodes for Store<'_> {
            type Error = Missing;
            fn node(&self, level: u8, index: u64) -> Result<Hash, Missing> {
                self.0
                    .get(usize::from(level))
                    .and_then(|row| row.get(index as usize))
                    .copied()
                    .ok_or(Missing(level, index))
            }
        }
        let reference = MemNodes::new(&leaves);
        for (i, leaf) in leaves.iter().enumerate() {
            range.push(*leaf, |level, index, hash| {
                let level = usize::from(level);
                if levels.len() == level {
                    levels.push(Vec::new());
                }
                // Stored in order, each once.
                assert_eq!(levels[level].len() as u64, index);
                levels[level].push(*hash);
            });
            let size = i as u64 + 1;
            let store = Store(&levels);
            assert_eq!(root(&store, size).unwrap(), range.root());
            assert_eq!(frontier(&store, size).unwrap(), range.frontier());
            let restored =
                CompactRange::from_frontier(size, frontier(&store, size).unwrap()).unwrap();
            assert_eq!(restored, range);
            for index in 0..size {
                assert_eq!(
                    inclusion_proof(&store, index, size).unwrap(),
                    inclusion_proof(&reference, index, size).unwrap()
                );
            }
            for old in 1..=size {
                assert_eq!(
                    consistency_proof(&store, old, size).unwrap(),
                    consistency_proof(&reference, old, size).unwrap()
                );
            }
        }
        assert_eq!(frontier(&Store(&levels), 0).unwrap(), Vec::<Hash>::new());
    }

    #[test]
    fn bad_requests_and_missing_nodes_are_errors() {
        let nodes = MemNodes::new(&leaves(5));
        assert!(matches!(
            inclusion_proof(&nodes, 5, 5),
            Err(ProveError::Invalid(ProofError::IndexOutOfRange {
                index: 5,
                size: 5
            }))
        ));
        assert!(matches!(
            inclusion_proof(&nodes, 0, 0),
            Err(ProveError::Invalid(ProofError::IndexOutOfRange {
                index: 0,
                size: 0
            }))
        ));
        assert!(matches!(
            consistency_proof(&nodes, 3, 2),
            Err(ProveError::Invalid(ProofError::SizesOutOfOrder {
                old_size: 3,
                new_size: 2
            }))
        ));
        for new_size in [0, 3] {
            assert!(matches!(
                consistency_proof(&nodes, 0, new_size),
                Err(ProveError::Invalid(ProofError::EmptyOldTree { new_size: n })) if n == new_size
            ));
        }
        assert_eq!(root(&nodes, 0).unwrap(), empty_root());
        assert_eq!(nodes.take_reads(), 0);
        // Equal sizes: an empty proof, no reads.
        assert!(consistency_proof(&nodes, 5, 5).unwrap().hashes.is_empty());
        assert_eq!(nodes.take_reads(), 0);
        // A tree larger than the store: the node it lacks is named. Leaf 0 of 6 needs (0, 1),
        // (1, 1) and the node over [4, 6), (1, 2), which a store of 5 leaves does not have.
        let err = inclusion_proof(&nodes, 0, 6).unwrap_err();
        assert!(matches!(
            err,
            ProveError::Node {
                level: 1,
                index: 2,
                source: Missing(1, 2)
            }
        ));
        assert_eq!(
            err.to_string(),
            "cannot read tree node (level 1, index 2): no node (1, 2)"
        );
        assert!(std::error::Error::source(&err).is_some());
        let err = consistency_proof(&nodes, 3, 8).unwrap_err();
        assert!(matches!(err, ProveError::Node { .. }), "{err}");
    }
}
