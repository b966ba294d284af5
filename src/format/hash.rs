//! SHA-256 digests and the two hash rules of the chain.
//!
//! * the **leaf** of a record is `SHA-256(body)`, where `body` is the event's envelope exactly as
//!   stored (see [`crate::format::event`] and `docs/FORMAT.md`);
//! * the **chain** hash of record `seq` is `SHA-256(prev ‖ seq as u64 little-endian ‖ leaf)`,
//!   where `prev` is the chain hash of record `seq - 1`, or the segment's anchor for the first
//!   record of a log (all zeros for a log that starts at seq 1).
//!
//! The chain step always hashes exactly 72 bytes (two SHA-256 blocks), whatever the event's size:
//! that is the whole serial cost per event in the sequencer.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::format::hex;

/// A 32-byte SHA-256 digest: a leaf hash, a chain hash, an anchor or a head.
///
/// Displays and serializes as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// All zeros: the anchor of a log's first segment.
    pub const ZERO: Hash = Hash([0; 32]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(s: &str) -> Result<Self, ParseHashError> {
        let bytes = s.as_bytes();
        if let Some(at) = bytes.iter().position(|&b| hex::digit(b).is_none()) {
            return Err(ParseHashError {
                len: s.chars().count(),
                bad: Some((
                    s[..at].chars().count(),
                    s[at..].chars().next().unwrap_or('?'),
                )),
            });
        }
        if bytes.len() != 64 {
            return Err(ParseHashError {
                len: bytes.len(),
                bad: None,
            });
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            // Both are hex digits: checked above.
            let hi = hex::digit(pair[0]).unwrap_or(0);
            let lo = hex::digit(pair[1]).unwrap_or(0);
            out[i] = (hi << 4) | lo;
        }
        Ok(Hash(out))
    }
}

/// The text given to [`Hash::from_hex`] was not 64 hex digits: it says which character is not
/// one, or how many there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseHashError {
    /// Characters given.
    len: usize,
    /// The first character that is not a hex digit, and its 0-based position.
    bad: Option<(usize, char)>,
}

impl fmt::Display for ParseHashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bad {
            Some((at, c)) => write!(
                f,
                "expected 64 hex digits (a SHA-256 hash), but character {} is {c:?}, not a hex \
                 digit",
                at + 1
            ),
            None => write!(
                f,
                "expected 64 hex digits (a SHA-256 hash), got {} digit{}",
                self.len,
                if self.len == 1 { "" } else { "s" }
            ),
        }
    }
}

impl std::error::Error for ParseHashError {}

impl FromStr for Hash {
    type Err = ParseHashError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_hex(s)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // In JSON (manifests, markers, export lines) a hash is written one way only: 64
        // lowercase hex digits.
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(serde::de::Error::custom(
                "a hash must be written in lowercase hex",
            ));
        }
        Hash::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

/// `SHA-256(body)`: the leaf hash of a record.
#[inline]
pub(crate) fn leaf_hash(body: &[u8]) -> Hash {
    Hash(Sha256::digest(body).into())
}

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
#[allow(clippy::unreadable_literal)] // as the standard prints them
const SHA256_IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// `SHA-256(prev ‖ seq_le ‖ leaf)`: the chain hash of record `seq`.
///
/// The input always has 72 bytes, so its two padded blocks are laid out here once and given to
/// the compression function directly (with SHA extensions where the CPU has them), which saves
/// the streaming hasher's buffering on the sequencer's serial path: the same digest, about 12%
/// sooner.
#[inline]
pub(crate) fn chain_hash(prev: &Hash, seq: u64, leaf: &Hash) -> Hash {
    use sha2::digest::consts::U64;
    use sha2::digest::generic_array::GenericArray;
    let mut blocks = [GenericArray::<u8, U64>::default(); 2];
    blocks[0][..32].copy_from_slice(&prev.0);
    blocks[0][32..40].copy_from_slice(&seq.to_le_bytes());
    blocks[0][40..].copy_from_slice(&leaf.0[..24]);
    blocks[1][..8].copy_from_slice(&leaf.0[24..]);
    // Padding: a 1 bit, zeros, and the message length in bits, big-endian.
    blocks[1][8] = 0x80;
    blocks[1][56..].copy_from_slice(&(72u64 * 8).to_be_bytes());
    digest_of_padded(&blocks)
}

/// One SHA-256 block of 64 bytes, as the compression function takes it.
pub(crate) type Block = sha2::digest::generic_array::GenericArray<u8, sha2::digest::consts::U64>;

/// The SHA-256 digest of a message already laid out in `blocks` with its padding (a 1 bit,
/// zeros, and the length in bits, big-endian, in the last 8 bytes): the compression function
/// applied from the initial state, with SHA extensions where the CPU has them. For short
/// inputs of a fixed length on hot paths (the chain step, the Merkle tree's nodes), where the
/// streaming hasher's buffering costs about as much again.
#[inline]
pub(crate) fn digest_of_padded(blocks: &[Block]) -> Hash {
    let mut state = SHA256_IV;
    sha2::compress256(&mut state, blocks);
    let mut out = [0u8; 32];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    Hash(out)
}

/// `SHA-256` of several byte strings concatenated.
pub(crate) fn digest_parts(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let h = leaf_hash(b"abc");
        assert_eq!(
            h.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Hash::from_hex(&h.to_hex()).unwrap(), h);
        assert_eq!(Hash::from_hex(&h.to_hex().to_uppercase()).unwrap(), h);
        assert!(Hash::from_hex("zz").is_err());
        assert!(Hash::from_hex(&"g".repeat(64)).is_err());
        // The message says what is wrong: the length, or the first character that is not hex.
        assert_eq!(
            Hash::from_hex("00").unwrap_err().to_string(),
            "expected 64 hex digits (a SHA-256 hash), got 2 digits"
        );
        assert_eq!(
            Hash::from_hex(&format!("{}é", "0".repeat(70)))
                .unwrap_err()
                .to_string(),
            "expected 64 hex digits (a SHA-256 hash), but character 71 is 'é', not a hex digit"
        );
        assert!(
            Hash::from_hex("")
                .unwrap_err()
                .to_string()
                .ends_with("got 0 digits")
        );
    }

    #[test]
    fn chain_is_sha256_of_72_bytes() {
        let prev = Hash([1; 32]);
        let leaf = Hash([2; 32]);
        let mut manual = Vec::new();
        manual.extend_from_slice(&[1; 32]);
        manual.extend_from_slice(&7u64.to_le_bytes());
        manual.extend_from_slice(&[2; 32]);
        assert_eq!(chain_hash(&prev, 7, &leaf), leaf_hash(&manual));
        // The hand-padded blocks agree with the streaming hasher on any input (here, 1,000
        // pseudo-random ones: digests of a counter).
        for i in 0u64..1000 {
            let prev = leaf_hash(&i.to_le_bytes());
            let leaf = leaf_hash(&prev.0);
            let seq = u64::from_le_bytes(leaf.0[..8].try_into().unwrap());
            let input = [&prev.0[..], &seq.to_le_bytes(), &leaf.0[..]].concat();
            assert_eq!(chain_hash(&prev, seq, &leaf), leaf_hash(&input));
        }
        assert_eq!(
            digest_parts(&[&manual[..10], &manual[10..]]),
            leaf_hash(&manual)
        );
    }
}
