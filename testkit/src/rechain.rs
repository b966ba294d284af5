//! Rewriting a log consistently, as anyone able to write its files can: every leaf and chain
//! hash, every slot's anchor, head and digest recomputed (`docs/FORMAT.md` §3.2, §5, §7).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// The little-endian `u64` at `at`.
pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// `(offset, total length)` of every record of a segment.
pub fn record_spans(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = u64_at(b, 32) as usize;
    while at + 80 <= b.len() && &b[at..at + 4] == b"AREC" {
        let body = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push((at, (80 + body + 7) & !7));
        at += (80 + body + 7) & !7;
    }
    out
}

/// Rewrites a log consistently: every leaf and chain hash, every slot's anchor, head and digest
/// recomputed (what anyone able to write the files can do).
pub fn rechain(files: &mut BTreeMap<String, Vec<u8>>) {
    let mut prev = [0u8; 32];
    for b in files.values_mut() {
        let anchor = prev;
        let mut heads = BTreeMap::new();
        for (at, _) in record_spans(b) {
            let body_len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
            let leaf: [u8; 32] = Sha256::digest(&b[at + 80..at + 80 + body_len]).into();
            let mut h = Sha256::new();
            h.update(prev);
            h.update(&b[at + 8..at + 16]);
            h.update(leaf);
            let chain: [u8; 32] = h.finalize().into();
            b[at + 16..at + 48].copy_from_slice(&leaf);
            b[at + 48..at + 80].copy_from_slice(&chain);
            heads.insert(u64_at(b, at + 8), chain);
            prev = chain;
        }
        for slot in [512, 1024] {
            if b[slot..slot + 136].iter().all(|&x| x == 0) {
                continue;
            }
            b[slot + 40..slot + 72].copy_from_slice(&anchor);
            let last = u64_at(b, slot + 24);
            let head = heads.get(&last).copied().unwrap_or(anchor);
            b[slot + 72..slot + 104].copy_from_slice(&head);
            let mut h = Sha256::new();
            h.update(&b[64..96]);
            h.update(&b[slot..slot + 104]);
            let d: [u8; 32] = h.finalize().into();
            b[slot + 104..slot + 136].copy_from_slice(&d);
        }
    }
}
