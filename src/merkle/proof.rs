//! Inclusion and consistency proofs, and their verification: the algorithms of RFC 9162
//! §2.1.3.2 and §2.1.4.2, step by step.
//!
//! The RFC's loops decide the length of a valid proof from the index and sizes alone: they fail
//! when the proof runs past the top of the tree (`sn` reaches 0 with hashes left) or stops short
//! of it (`sn` is not 0 at the end). Both are reported here as [`ProofError::WrongLength`],
//! with the length the loop needed. Only a proof of exactly that length reaches a root, and then
//! only the root matters.

use crate::format::hash::Hash;

use super::hash::{leaf_hash, node_hash};

/// A proof that a leaf is in a tree: the hashes that lead from the leaf to the root, the
/// RFC's inclusion path `PATH(index, D[size])` (RFC 9162 §2.1.3.1), from the leaf upward.
///
/// The leaf of the record with sequence number `seq` has index `seq - 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The leaf's index, `seq - 1`.
    pub index: u64,
    /// The size of the tree the proof is for: the number of records it covers.
    pub size: u64,
    /// The sibling hashes, from the leaf upward.
    pub hashes: Vec<Hash>,
}

impl InclusionProof {
    /// Checks that the record whose `leaf` field (`SHA-256(body)`) is `record_leaf` is leaf
    /// number `index` of the tree of `size` records whose root is `root`.
    ///
    /// This is RFC 9162 §2.1.3.2 over the tree leaf hash `SHA-256(0x00 ‖ record_leaf)`. It fails
    /// with [`ProofError::IndexOutOfRange`] when `index >= size` (so always for size 0),
    /// [`ProofError::WrongLength`] when the proof has more or fewer hashes than the path from
    /// that leaf to the root of that tree, and [`ProofError::RootMismatch`] when the hashes lead
    /// to another root.
    pub fn verify(&self, record_leaf: &Hash, root: &Hash) -> Result<(), ProofError> {
        self.verify_leaf_hash(&leaf_hash(record_leaf), root)
    }

    /// [`verify`](InclusionProof::verify) from the tree leaf hash itself.
    pub(crate) fn verify_leaf_hash(&self, leaf_hash: &Hash, root: &Hash) -> Result<(), ProofError> {
        let computed = self.root_from(leaf_hash)?;
        if computed != *root {
            return Err(ProofError::RootMismatch {
                computed,
                expected: *root,
            });
        }
        Ok(())
    }

    /// The root the proof leads to from the tree leaf hash `leaf_hash` (RFC 9162 §2.1.3.2,
    /// steps 1 to 4, and step 5 but for the comparison with the root).
    fn root_from(&self, leaf_hash: &Hash) -> Result<Hash, ProofError> {
        let (index, size) = (self.index, self.size);
        // 1. leaf_index >= tree_size fails.
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let wrong_length = || ProofError::WrongLength {
            expected: inclusion_len(index, size),
            got: self.hashes.len(),
        };
        // 2. fn = leaf_index, sn = tree_size - 1. 3. r = hash.
        let (mut f, mut s) = (index, size - 1);
        let mut r = *leaf_hash;
        // 4. For each p in the path:
        for p in &self.hashes {
            // a. sn = 0: the path goes past the root.
            if s == 0 {
                return Err(wrong_length());
            }
            // b. fn is a right child, or the last node of its level (then p is its left
            // sibling, and levels where it has none are skipped).
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            // c.
            f >>= 1;
            s >>= 1;
        }
        // 5. sn must be 0: the path reached the root.
        if s != 0 {
            return Err(wrong_length());
        }
        Ok(r)
    }
}

/// The number of hashes in the inclusion path of leaf `index` in a tree of `size` leaves
/// (`index < size`): the iterations of RFC 9162 §2.1.3.2's loop.
pub(crate) fn inclusion_len(index: u64, size: u64) -> usize {
    debug_assert!(index < size);
    let (mut f, mut s) = (index, size - 1);
    let mut len = 0;
    while s != 0 {
        if f & 1 == 0 && f == s {
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        }
        f >>= 1;
        s >>= 1;
        len += 1;
    }
    len
}

/// A proof that a tree of `old_size` records is the first `old_size` records of a tree of
/// `new_size`: that the log only grew in between. It is the RFC's consistency proof
/// `PROOF(old_size, D[new_size])` (RFC 9162 §2.1.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The size of the older tree.
    pub old_size: u64,
    /// The size of the newer tree.
    pub new_size: u64,
    /// The proof's hashes, in the RFC's order.
    pub hashes: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks that the tree of `old_size` records with root `old_root` is the start of the tree
    /// of `new_size` records with root `new_root`.
    ///
    /// For `0 < old_size < new_size` this is RFC 9162 §2.1.4.2. The RFC defines no proof for
    /// the other sizes; here:
    ///
    /// * `old_size > new_size` fails with [`ProofError::SizesOutOfOrder`];
    /// * `old_size == 0` fails with [`ProofError::EmptyOldTree`], whatever the new size (as
    ///   transparency-dev/merkle does): the empty tree is the start of every tree, so a proof
    ///   from it would prove nothing;
    /// * `old_size == new_size` (at least 1) needs an empty proof ([`ProofError::WrongLength`]
    ///   otherwise) and two equal roots ([`ProofError::RootsDiffer`] otherwise), since the RFC's
    ///   `SUBPROOF(m, D[m], true)` is empty.
    ///
    /// A proof with the wrong number of hashes for the sizes fails with
    /// [`ProofError::WrongLength`], one that does not lead to `old_root` with
    /// [`ProofError::OldRootMismatch`], and one that does not lead to `new_root` with
    /// [`ProofError::RootMismatch`].
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), ProofError> {
        let (first, second) = (self.old_size, self.new_size);
        if first > second {
            return Err(ProofError::SizesOutOfOrder {
                old_size: first,
                new_size: second,
            });
        }
        if first == 0 {
            return Err(ProofError::EmptyOldTree { new_size: second });
        }
        if first == second {
            if !self.hashes.is_empty() {
                return Err(ProofError::WrongLength {
                    expected: 0,
                    got: self.hashes.len(),
                });
            }
            if old_root != new_root {
                return Err(ProofError::RootsDiffer {
                    size: first,
                    old_root: *old_root,
                    new_root: *new_root,
                });
            }
            return Ok(());
        }
        let wrong_length = || ProofError::WrongLength {
            expected: consistency_len(first, second),
            got: self.hashes.len(),
        };
        // 1. An empty path fails.
        if self.hashes.is_empty() {
            return Err(wrong_length());
        }
        // 2. If first is a power of 2, the path starts with first_hash (the old tree is a
        // complete subtree of the new one, and the proof leaves its root out).
        let prepend = first.is_power_of_two().then_some(old_root);
        let mut path = prepend.into_iter().chain(&self.hashes);
        // 3.
        let (mut f, mut s) = (first - 1, second - 1);
        // 4. Up to the old tree's last complete subtree that is a left child, or the root.
        while f & 1 == 1 {
            f >>= 1;
            s >>= 1;
        }
        // 5. fr and sr start from the first value of the path.
        let start = *path.next().expect("the path is not empty");
        let (mut fr, mut sr) = (start, start);
        // 6. For each subsequent value c:
        for c in path {
            // a.
            if s == 0 {
                return Err(wrong_length());
            }
            // b. c is a left sibling: part of both trees. Levels where the old tree's node
            // has no sibling are skipped.
            if f & 1 == 1 || f == s {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                // Otherwise c is a right sibling: only in the new tree.
                sr = node_hash(&sr, c);
            }
            // c.
            f >>= 1;
            s >>= 1;
        }
        // 7. sn must be 0, fr the old root, sr the new root.
        if s != 0 {
            return Err(wrong_length());
        }
        if fr != *old_root {
            return Err(ProofError::OldRootMismatch {
                computed: fr,
                expected: *old_root,
            });
        }
        if sr != *new_root {
            return Err(ProofError::RootMismatch {
                computed: sr,
                expected: *new_root,
            });
        }
        Ok(())
    }
}

/// The number of hashes in the consistency proof between sizes `first` and `second`
/// (`0 < first < second`): the iterations of RFC 9162 §2.1.4.2's loop, plus its first value,
/// less the old root that step 2 prepends when `first` is a power of two.
pub(crate) fn consistency_len(first: u64, second: u64) -> usize {
    debug_assert!(0 < first && first < second);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let mut len = 1;
    while s != 0 {
        if f & 1 == 0 && f == s {
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        }
        f >>= 1;
        s >>= 1;
        len += 1;
    }
    len - usize::from(first.is_power_of_two())
}

/// Why a proof did not verify, or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// An inclusion proof for a leaf the tree does not have: `index >= size`.
    #[error("leaf index {index} is out of range for a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof whose old tree is larger than its new one.
    #[error("the old tree size {old_size} is larger than the new tree size {new_size}")]
    SizesOutOfOrder {
        /// The old size.
        old_size: u64,
        /// The new size.
        new_size: u64,
    },
    /// A consistency proof from the empty tree, which RFC 9162 does not define: the empty tree
    /// is the start of every tree, so there is nothing to prove.
    #[error(
        "no consistency proof starts from the empty tree (old size 0, new size {new_size}): it \
         would prove nothing"
    )]
    EmptyOldTree {
        /// The new size.
        new_size: u64,
    },
    /// The proof has more or fewer hashes than a proof for its index and size, or its two
    /// sizes, has.
    #[error("the proof has {got} hashes, but a proof for its index and sizes has {expected}")]
    WrongLength {
        /// Hashes a proof for these sizes has.
        expected: usize,
        /// Hashes the proof has.
        got: usize,
    },
    /// The proof leads to another root than the expected one: the new tree's, for a
    /// consistency proof.
    #[error("the proof leads to root {computed}, not to the expected {expected}")]
    RootMismatch {
        /// The root the proof leads to.
        computed: Hash,
        /// The root it was checked against.
        expected: Hash,
    },
    /// A consistency proof leads to another root of the old tree than the expected one.
    #[error("the proof leads to old root {computed}, not to the expected {expected}")]
    OldRootMismatch {
        /// The old tree's root the proof leads to.
        computed: Hash,
        /// The old root it was checked against.
        expected: Hash,
    },
    /// A consistency proof between two trees of the same size, whose roots differ.
    #[error("two trees of {size} leaves have different roots: {old_root} and {new_root}")]
    RootsDiffer {
        /// The size of both trees.
        size: u64,
        /// The old tree's root.
        old_root: Hash,
        /// The new tree's root.
        new_root: Hash,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::testing::{RFC_NODES, RFC_ROOTS, hex, rfc_leaves};

    fn node(level: usize, index: usize) -> Hash {
        hex(RFC_NODES[level][index])
    }

    fn root(size: usize) -> Hash {
        hex(RFC_ROOTS[size])
    }

    fn incl(index: u64, size: u64, hashes: Vec<Hash>) -> InclusionProof {
        InclusionProof {
            index,
            size,
            hashes,
        }
    }

    fn cons(old_size: u64, new_size: u64, hashes: Vec<Hash>) -> ConsistencyProof {
        ConsistencyProof {
            old_size,
            new_size,
            hashes,
        }
    }

    /// The happy paths of transparency-dev/merkle's `testdata/inclusion` (the 8-leaf reference
    /// tree, leaves as raw data) verify, and their published variants fail.
    #[test]
    fn rfc_inclusion_vectors() {
        let leaves = rfc_leaves();
        let vectors = [
            incl(0, 1, vec![]),
            incl(0, 8, vec![node(0, 1), node(1, 1), node(2, 1)]),
            incl(5, 8, vec![node(0, 4), node(1, 3), node(2, 0)]),
            incl(2, 3, vec![node(1, 0)]),
            incl(1, 5, vec![node(0, 0), node(1, 1), node(0, 4)]),
        ];
        for p in &vectors {
            let leaf = leaves[p.index as usize];
            let r = root(p.size as usize);
            p.verify_leaf_hash(&leaf, &r).unwrap();
            // Wrong leaf, wrong root, index or size changed, a hash dropped, added or changed:
            // all fail.
            assert!(p.verify_leaf_hash(&leaves[7], &r).is_err() || p.index == 7);
            assert!(
                p.verify_leaf_hash(&leaf, &root(p.size as usize - 1))
                    .is_err()
            );
            for index in [p.index + 1, p.index ^ 2, p.index.wrapping_sub(1)] {
                let q = incl(index, p.size, p.hashes.clone());
                assert!(q.verify_leaf_hash(&leaf, &r).is_err(), "{q:?}");
            }
            // Against the root of the size claimed, where the reference tree has one: a proof
            // for another size can be a well-formed path whose hashes lead to the old root.
            for size in [p.size * 2, p.size / 2, p.size + 1] {
                let q = incl(p.index, size, p.hashes.clone());
                let r = if size <= 8 { root(size as usize) } else { r };
                assert!(q.verify_leaf_hash(&leaf, &r).is_err(), "{q:?}");
            }
            let mut longer = p.hashes.clone();
            longer.push(leaf);
            assert!(
                incl(p.index, p.size, longer)
                    .verify_leaf_hash(&leaf, &r)
                    .is_err()
            );
            let mut preceded = vec![leaf];
            preceded.extend(&p.hashes);
            assert!(
                incl(p.index, p.size, preceded)
                    .verify_leaf_hash(&leaf, &r)
                    .is_err()
            );
            if let Some((_, shorter)) = p.hashes.split_last() {
                let q = incl(p.index, p.size, shorter.to_vec());
                assert!(q.verify_leaf_hash(&leaf, &r).is_err());
            }
        }
        // The single-entry vectors: a leaf that is its own root.
        let leaf = hex("0d3aed023148ffd2a259fbd0cdc7fb3cf975658760d3775b82af6f90aacc2dfc");
        incl(0, 1, vec![]).verify_leaf_hash(&leaf, &leaf).unwrap();
        // An index past the end: the "additional" vectors, sizes 0 and 1.
        for (index, size) in [(0, 0), (1, 0), (2, 1)] {
            assert_eq!(
                incl(index, size, vec![]).verify_leaf_hash(&leaf, &root(0)),
                Err(ProofError::IndexOutOfRange { index, size })
            );
        }
        assert!(
            incl(0, 1, vec![])
                .verify_leaf_hash(&leaf, &root(0))
                .is_err()
        );
    }

    /// The happy paths of transparency-dev/merkle's `testdata/consistency` verify, and its
    /// "additional" edge cases are decided as documented.
    #[test]
    fn rfc_consistency_vectors() {
        let vectors = [
            cons(1, 1, vec![]),
            cons(1, 8, vec![node(0, 1), node(1, 1), node(2, 1)]),
            cons(6, 8, vec![node(1, 2), node(1, 3), node(2, 0)]),
            cons(2, 5, vec![node(1, 1), node(0, 4)]),
            cons(6, 7, vec![node(1, 2), node(0, 6), node(2, 0)]),
        ];
        for p in &vectors {
            let (r1, r2) = (root(p.old_size as usize), root(p.new_size as usize));
            p.verify(&r1, &r2).unwrap();
            if p.old_size == p.new_size {
                continue;
            }
            assert!(p.verify(&r2, &r1).is_err(), "swapped roots");
            assert!(p.verify(&root(0), &r2).is_err());
            assert!(p.verify(&r1, &root(0)).is_err());
            assert!(
                cons(p.old_size, p.new_size, vec![])
                    .verify(&r1, &r2)
                    .is_err()
            );
            for (old, new) in [
                (p.old_size + 1, p.new_size),
                (p.old_size - 1, p.new_size),
                (p.old_size ^ 2, p.new_size),
                (p.old_size, p.new_size * 2),
                (p.old_size, p.new_size / 2),
            ] {
                let q = cons(old, new, p.hashes.clone());
                let r1 = if old <= 8 { root(old as usize) } else { r1 };
                let r2 = if new <= 8 { root(new as usize) } else { r2 };
                assert!(q.verify(&r1, &r2).is_err(), "{q:?}");
            }
            for extra in [r1, r2] {
                let mut longer = p.hashes.clone();
                longer.push(extra);
                assert!(
                    cons(p.old_size, p.new_size, longer)
                        .verify(&r1, &r2)
                        .is_err()
                );
                let mut preceded = vec![extra];
                preceded.extend(&p.hashes);
                assert!(
                    cons(p.old_size, p.new_size, preceded)
                        .verify(&r1, &r2)
                        .is_err()
                );
            }
            let shorter = p.hashes[..p.hashes.len() - 1].to_vec();
            assert!(
                cons(p.old_size, p.new_size, shorter)
                    .verify(&r1, &r2)
                    .is_err()
            );
        }

        let (a, b, empty) = (Hash([0xa; 32]), Hash([0xb; 32]), root(0));
        // Old size 0, whatever the new size, roots and proof.
        for (new_size, hashes, r1, r2) in [
            (1, vec![empty], empty, empty),
            (0, vec![], a, a),
            (0, vec![], empty, b),
            (0, vec![empty], empty, empty),
            (1, vec![], a, b),
        ] {
            assert_eq!(
                cons(0, new_size, hashes).verify(&r1, &r2),
                Err(ProofError::EmptyOldTree { new_size })
            );
        }
        // Sizes out of order.
        for (old_size, new_size) in [(1, 0), (2, 1)] {
            assert_eq!(
                cons(old_size, new_size, vec![]).verify(&a, &b),
                Err(ProofError::SizesOutOfOrder { old_size, new_size })
            );
        }
        // Equal sizes: an empty proof and equal roots.
        cons(1, 1, vec![]).verify(&b, &b).unwrap();
        assert_eq!(
            cons(1, 1, vec![]).verify(&a, &b),
            Err(ProofError::RootsDiffer {
                size: 1,
                old_root: a,
                new_root: b
            })
        );
        assert_eq!(
            cons(1, 1, vec![empty]).verify(&empty, &empty),
            Err(ProofError::WrongLength {
                expected: 0,
                got: 1
            })
        );
        // Different sizes need a proof.
        assert_eq!(
            cons(1, 2, vec![]).verify(&a, &b),
            Err(ProofError::WrongLength {
                expected: 1,
                got: 0
            })
        );
    }

    /// Each failure says why, with the numbers.
    #[test]
    fn errors_say_what_is_wrong() {
        let leaves = rfc_leaves();
        let good = incl(5, 8, vec![node(0, 4), node(1, 3), node(2, 0)]);
        let mut long = good.clone();
        long.hashes.push(node(3, 0));
        assert_eq!(
            long.verify_leaf_hash(&leaves[5], &root(8)),
            Err(ProofError::WrongLength {
                expected: 3,
                got: 4
            })
        );
        let mut short = good.clone();
        short.hashes.pop();
        assert_eq!(
            short
                .verify_leaf_hash(&leaves[5], &root(8))
                .unwrap_err()
                .to_string(),
            "the proof has 2 hashes, but a proof for its index and sizes has 3"
        );
        let wrong = good.verify_leaf_hash(&leaves[4], &root(8)).unwrap_err();
        let ProofError::RootMismatch { computed, expected } = wrong.clone() else {
            panic!("{wrong:?}");
        };
        assert_eq!(expected, root(8));
        assert_eq!(
            wrong.to_string(),
            format!(
                "the proof leads to root {computed}, not to the expected {}",
                root(8)
            )
        );
        assert_eq!(
            incl(8, 8, vec![])
                .verify_leaf_hash(&leaves[0], &root(8))
                .unwrap_err()
                .to_string(),
            "leaf index 8 is out of range for a tree of 8 leaves"
        );
        // Consistency: the old root is checked on its own.
        let p = cons(6, 8, vec![node(1, 2), node(1, 3), node(2, 0)]);
        assert_eq!(
            p.verify(&root(5), &root(8)),
            Err(ProofError::OldRootMismatch {
                computed: root(6),
                expected: root(5)
            })
        );
        assert!(matches!(
            p.verify(&root(6), &root(7)),
            Err(ProofError::RootMismatch { computed, expected }) if computed == root(8) && expected == root(7)
        ));
        assert_eq!(
            cons(3, 2, vec![])
                .verify(&root(3), &root(2))
                .unwrap_err()
                .to_string(),
            "the old tree size 3 is larger than the new tree size 2"
        );
        assert_eq!(
            cons(0, 5, vec![])
                .verify(&root(0), &root(5))
                .unwrap_err()
                .to_string(),
            "no consistency proof starts from the empty tree (old size 0, new size 5): it would \
             prove nothing"
        );
        assert_eq!(
            cons(4, 4, vec![])
                .verify(&root(4), &root(3))
                .unwrap_err()
                .to_string(),
            format!(
                "two trees of 4 leaves have different roots: {} and {}",
                root(4),
                root(3)
            )
        );
    }

    /// `verify` hashes the record leaf into the tree leaf first: the same proof verifies
    /// from the record leaf, and not from the tree leaf hash passed as if it were one.
    #[test]
    fn verify_takes_the_record_leaf() {
        use crate::merkle::hash::leaf_hash;
        let record_leaves: Vec<Hash> = (0u8..3).map(|i| Hash([i; 32])).collect();
        let tree_leaves: Vec<Hash> = record_leaves.iter().map(leaf_hash).collect();
        let root = crate::merkle::testing::mth(&tree_leaves);
        let p = incl(2, 3, vec![node_hash(&tree_leaves[0], &tree_leaves[1])]);
        p.verify(&record_leaves[2], &root).unwrap();
        p.verify_leaf_hash(&tree_leaves[2], &root).unwrap();
        assert!(p.verify(&tree_leaves[2], &root).is_err());
    }
}
