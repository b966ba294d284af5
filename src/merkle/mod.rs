//! The Merkle tree over a log's records (RFC 6962 §2.1, RFC 9162 §2.1): hashing, roots, and
//! inclusion and consistency proofs. Pure computation: no I/O, no threads.
//!
//! # The tree
//!
//! The leaves are the log's records in sequence order: the record with sequence number `seq` is
//! leaf `seq - 1`. Two hash rules build the tree ([`hash`]):
//!
//! * the **leaf hash** of a record is `SHA-256(0x00 ‖ leaf)`, where `leaf` is the record's own
//!   32-byte `leaf` field, `SHA-256(body)`;
//! * an **interior node** over two children is `SHA-256(0x01 ‖ left ‖ right)`.
//!
//! The tree hash of `n` leaves, `MTH(D[0:n])`, is the RFC's: `SHA-256("")` for no leaves, the
//! leaf hash for one, and otherwise, with `k` the largest power of two smaller than `n`, the node
//! over `MTH(D[0:k])` and `MTH(D[k:n])`. The left part is always a complete (perfect) subtree of
//! `k` leaves; the right part, if `n - k` is not a power of two, is split again the same way.
//! Six leaves:
//!
//! ```text
//!                     MTH[0,6)
//!                /               \
//!            (2,0)              (1,2)
//!          /       \           /     \
//!      (1,0)       (1,1)    (0,4)   (0,5)
//!      /   \       /   \
//!   (0,0) (0,1) (0,2) (0,3)
//! ```
//!
//! # Node addresses
//!
//! A **complete subtree** is addressed `(level, index)`: it covers the `2^level` leaves
//! `[index·2^level, (index+1)·2^level)`; level 0 is the leaves themselves. Its hash never
//! changes once its last leaf is appended, so a store can keep it: every hash a proof needs is
//! one of these, or, on the right edge of the tree, the hash of a range whose size is not a
//! power of two (`MTH[0,6)` above), computed from the complete subtrees that cover it, one for
//! each 1 bit of its size.
//!
//! The **frontier** of a tree of `n` leaves is the list of complete subtrees covering `[0, n)`,
//! left to right: for each 1 bit of `n`, from the highest, at that bit's `level`, the node
//! `(level, (n >> level) - 1)`. For 6 leaves, `(2,0)` and `(1,2)`. Folded from the right with
//! the node rule, it gives the root; it is all that is needed to append more leaves.
//!
//! # Contents
//!
//! * [`hash`]: [`leaf_hash`](hash::leaf_hash), [`node_hash`](hash::node_hash),
//!   [`empty_root`](hash::empty_root).
//! * [`range`]: [`CompactRange`](range::CompactRange), the tree kept as its frontier, grown
//!   one leaf at a time, reporting each complete subtree it finishes.
//! * [`prove`]: proofs and roots from a store of complete subtrees (the [`Nodes`](prove::Nodes)
//!   trait), with O(log n) reads each.
//! * [`proof`]: [`InclusionProof`] and [`ConsistencyProof`], their verification (RFC 9162
//!   §2.1.3.2 and §2.1.4.2), and [`ProofError`].

pub(crate) mod hash;
pub(crate) mod proof;
pub(crate) mod prove;
pub(crate) mod range;
#[cfg(test)]
mod testing;

pub use proof::{ConsistencyProof, InclusionProof, ProofError};
