//! The tree's hash rules (RFC 6962 §2.1): a leaf, an interior node, and the empty tree.

use sha2::{Digest, Sha256};

use crate::format::hash::{Block, Hash, digest_of_padded};

/// The tree leaf hash of a record: `SHA-256(0x00 ‖ record_leaf)`, where `record_leaf` is the
/// record's `leaf` field, `SHA-256(body)`.
///
/// The input is 33 bytes, one SHA-256 block. The `0x00` prefix keeps a leaf hash from ever
/// equalling an interior node's (prefix `0x01`), so no proof can pass one off as the other.
#[inline]
pub fn leaf_hash(record_leaf: &Hash) -> Hash {
    let mut block = [Block::default()];
    block[0][0] = 0x00;
    block[0][1..33].copy_from_slice(record_leaf.as_bytes());
    block[0][33] = 0x80;
    block[0][56..].copy_from_slice(&(33u64 * 8).to_be_bytes());
    digest_of_padded(&block)
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`, 65 bytes, two blocks.
#[inline]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut blocks = [Block::default(); 2];
    blocks[0][0] = 0x01;
    blocks[0][1..33].copy_from_slice(left.as_bytes());
    blocks[0][33..].copy_from_slice(&right.as_bytes()[..31]);
    blocks[1][0] = right.as_bytes()[31];
    blocks[1][1] = 0x80;
    blocks[1][56..].copy_from_slice(&(65u64 * 8).to_be_bytes());
    digest_of_padded(&blocks)
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash(Sha256::digest([]).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::hash::digest_parts;

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn leaf_hash_prefixes_the_record_leaf_with_a_zero_byte() {
        // SHA-256 of 33 zero bytes (the prefix and an all-zero record leaf), and of 0x00
        // followed by 0x00..=0x1f, computed independently (Python's hashlib).
        assert_eq!(
            leaf_hash(&Hash::ZERO).to_hex(),
            "7f9c9e31ac8256ca2f258583df262dbc7d6f68f2a03043d5c99a4ae5a7396ce9"
        );
        let counting = Hash(std::array::from_fn(|i| i as u8));
        assert_eq!(
            leaf_hash(&counting).to_hex(),
            "699cacdb4c39d8e0bb1223352765a7f7acdc51dec6694f7b54c3d0a47f0cc409"
        );
        // The same digest as hashing the 33 bytes in one piece, for any record leaf.
        for i in 0u8..=255 {
            let record_leaf = Hash([i; 32]);
            assert_eq!(
                leaf_hash(&record_leaf),
                digest_parts(&[&[0x00], record_leaf.as_bytes()])
            );
            // Never the node hash of anything: the prefixes differ.
            assert_ne!(
                leaf_hash(&record_leaf),
                node_hash(&record_leaf, &record_leaf)
            );
        }
    }

    #[test]
    fn node_hash_is_sha256_of_one_prefix_and_both_children() {
        let (l, r) = (Hash([1; 32]), Hash([2; 32]));
        assert_eq!(
            node_hash(&l, &r),
            digest_parts(&[&[0x01], l.as_bytes(), r.as_bytes()])
        );
        // Order matters.
        assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
        // RFC 6962 test vectors (transparency-dev/merkle testonly): the leaves of "" and 0x00,
        // and the node over them.
        let a = Hash::from_hex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
            .unwrap();
        let b = Hash::from_hex("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
            .unwrap();
        assert_eq!(
            node_hash(&a, &b).to_hex(),
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
        );
    }
}
