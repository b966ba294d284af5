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
    rechain_with(files, |_, _, _| {});
}

/// [`rechain`], calling `edit(seq, chain hash before it, body)` on every record before hashing
/// it: an attacker's edit that depends on the chain so far (a seal's MAC), in one pass. The
/// body's length must not change.
pub fn rechain_with(
    files: &mut BTreeMap<String, Vec<u8>>,
    mut edit: impl FnMut(u64, &[u8; 32], &mut [u8]),
) {
    let mut prev = [0u8; 32];
    for b in files.values_mut() {
        let anchor = prev;
        let mut heads = BTreeMap::new();
        for (at, _) in record_spans(b) {
            let body_len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
            edit(
                u64_at(b, at + 8),
                &prev,
                &mut b[at + 80..at + 80 + body_len],
            );
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

/// HMAC-SHA-256 (RFC 2104), written out: the tests' own, independent of the library's.
pub fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let pad = |x: u8| -> Vec<u8> {
        (0..64)
            .map(|i| key.get(i).copied().unwrap_or(0) ^ x)
            .collect()
    };
    let inner = Sha256::digest([pad(0x36), message.to_vec()].concat());
    Sha256::digest([pad(0x5c), inner.to_vec()].concat()).into()
}

/// The sealing key of `epoch`, evolved from the initial `key` (`docs/FORMAT.md` §16.2).
pub fn seal_epoch_key(key: &[u8; 32], epoch: u64) -> [u8; 32] {
    let mut k = *key;
    for _ in 0..epoch {
        k = Sha256::digest([&b"auditring-seal-evolve-v1"[..], &k].concat()).into();
    }
    k
}

/// The MAC of a seal record for `epoch` at `seq` of log `log_id`, with the chain hash `prev`
/// before it, under that epoch's key (`docs/FORMAT.md` §16.2).
pub fn seal_mac(
    epoch_key: &[u8; 32],
    log_id: &[u8; 16],
    epoch: u64,
    seq: u64,
    prev: &[u8; 32],
) -> [u8; 32] {
    let mut input = b"auditring-seal-v1".to_vec();
    input.extend_from_slice(log_id);
    input.extend_from_slice(&epoch.to_be_bytes());
    input.extend_from_slice(&seq.to_be_bytes());
    input.extend_from_slice(prev);
    hmac_sha256(epoch_key, &input)
}

/// Where `needle` starts in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
