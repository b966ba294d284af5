//! Test support: the RFC's definitions written out naively, a node store, and reference
//! vectors.

use std::cell::Cell;

use crate::format::hash::{Hash, digest_parts};

use super::hash::{empty_root, node_hash};
use super::prove::Nodes;

/// The largest power of two smaller than `n` (`n > 1`), by counting.
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH (RFC 6962 §2.1), recursively over tree leaf hashes.
pub(crate) fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]) (RFC 9162 §2.1.3.1), recursively.
pub(crate) fn path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    assert!(m < n);
    if n == 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut out = path(m, &leaves[..k]);
        out.push(mth(&leaves[k..]));
        out
    } else {
        let mut out = path(m - k, &leaves[k..]);
        out.push(mth(&leaves[..k]));
        out
    }
}

/// PROOF(m, D[n]) (RFC 9162 §2.1.4.1), recursively; `0 < m <= n`.
pub(crate) fn proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    assert!(0 < m && m <= leaves.len());
    subproof(m, leaves, true)
}

/// SUBPROOF(m, D[n], b).
fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(leaves)] };
    }
    let k = split(n);
    if m <= k {
        let mut out = subproof(m, &leaves[..k], b);
        out.push(mth(&leaves[k..]));
        out
    } else {
        let mut out = subproof(m - k, &leaves[k..], false);
        out.push(mth(&leaves[..k]));
        out
    }
}

/// The tree leaf hash of raw data, as the RFC hashes its leaves: `SHA-256(0x00 ‖ data)`.
pub(crate) fn data_leaf_hash(data: &[u8]) -> Hash {
    digest_parts(&[&[0x00], data])
}

/// `n` distinct tree leaf hashes.
pub(crate) fn leaves(n: usize) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| data_leaf_hash(&i.to_le_bytes()))
        .collect()
}

/// A hash from hex.
pub(crate) fn hex(s: &str) -> Hash {
    Hash::from_hex(s).unwrap()
}

/// The leaf inputs of the reference tree of transparency-dev/merkle (`testonly/constants.go`,
/// the same as certificate-transparency-go's): raw data, not record leaves.
pub(crate) const RFC_LEAF_INPUTS: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// Its complete subtrees' hashes, by level and index.
pub(crate) const RFC_NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// Its roots at sizes 0 to 8.
pub(crate) const RFC_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// The reference tree's leaf hashes.
pub(crate) fn rfc_leaves() -> Vec<Hash> {
    RFC_LEAF_INPUTS.iter().map(|d| data_leaf_hash(d)).collect()
}

/// A node store that holds every complete subtree of a tree, computed with [`mth`], and counts
/// the reads.
pub(crate) struct MemNodes {
    /// `levels[l][i]`: the node `(l, i)`.
    levels: Vec<Vec<Hash>>,
    /// Calls of [`Nodes::node`] so far.
    pub(crate) reads: Cell<usize>,
}

impl MemNodes {
    /// Every complete subtree over `leaves`.
    pub(crate) fn new(leaves: &[Hash]) -> MemNodes {
        let mut levels = vec![leaves.to_vec()];
        let mut width = 2;
        while width <= leaves.len() {
            levels.push(leaves.chunks_exact(width).map(mth).collect());
            width *= 2;
        }
        MemNodes {
            levels,
            reads: Cell::new(0),
        }
    }

    /// Node reads since the last call.
    pub(crate) fn take_reads(&self) -> usize {
        self.reads.replace(0)
    }
}

/// A node a [`MemNodes`] does not have.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Missing(pub(crate) u8, pub(crate) u64);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no node ({}, {})", self.0, self.1)
    }
}

impl std::error::Error for Missing {}

impl Nodes for MemNodes {
    type Error = Missing;
    fn node(&self, level: u8, index: u64) -> Result<Hash, Missing> {
        self.reads.set(self.reads.get() + 1);
        self.levels
            .get(usize::from(level))
            .and_then(|row| row.get(index as usize))
            .copied()
            .ok_or(Missing(level, index))
    }
}
