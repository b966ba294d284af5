//! Rewriting a log consistently, as anyone able to write its files can: every leaf and chain
//! hash, every slot's anchor, head and digest recomputed (`docs/FORMAT.md` §3.2, §5, §7); and
//! resealing it, as a holder of a sealing key can (§16).

use std::collections::BTreeMap;
use std::path::Path;

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

/// The segment files of the log in `dir`, by name, with their bytes.
pub fn segment_files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| Path::new(n).extension().is_some_and(|e| e == "seg"))
        .map(|n| {
            let b = std::fs::read(dir.join(&n)).unwrap();
            (n, b)
        })
        .collect()
}

/// Writes `files` back into `dir` and removes the stored tree (which the one who rewrote would
/// recompute or remove).
pub fn write_back(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for (n, b) in files {
        std::fs::write(dir.join(n), b).unwrap();
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let n = e.unwrap().file_name().into_string().unwrap();
        if n.contains(".t") {
            std::fs::remove_file(dir.join(n)).unwrap();
        }
    }
}

/// A seal record's epoch and where its MAC's hex digits start, in its body (as the ring writes
/// its details: `{"epoch":E,"mac":"…"}`).
pub fn seal_fields(body: &[u8]) -> Option<(u64, usize)> {
    let mac = find(body, b"\"mac\":\"")? + 7;
    let at = find(body, b"\"epoch\":")? + 8;
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    let epoch = std::str::from_utf8(&body[at..at + digits])
        .unwrap()
        .parse()
        .ok()?;
    Some((epoch, mac))
}

/// Rewrites the log with fresh hashes ([`rechain_with`]), recomputing the MAC of every seal
/// record (`docs/FORMAT.md` §16.2) as `reseal(seq, epoch)` says: `Some((epoch to write, key of
/// that epoch))`, or `None` to leave it. The epoch written must have as many digits as the
/// one it replaces.
pub fn rechain_resealing(
    files: &mut BTreeMap<String, Vec<u8>>,
    log_id: [u8; 16],
    mut reseal: impl FnMut(u64, u64) -> Option<(u64, [u8; 32])>,
) {
    rechain_with(files, |seq, prev, body| {
        if find(body, auditring::SEALED_KIND.as_bytes()).is_none() {
            return;
        }
        let Some((epoch, mac_at)) = seal_fields(body) else {
            return;
        };
        let Some((new_epoch, key)) = reseal(seq, epoch) else {
            return;
        };
        let digits = epoch.to_string();
        let new_digits = new_epoch.to_string();
        assert_eq!(digits.len(), new_digits.len(), "the body keeps its length");
        let at = find(body, b"\"epoch\":").unwrap() + 8;
        body[at..at + digits.len()].copy_from_slice(new_digits.as_bytes());
        let mac = seal_mac(&key, &log_id, new_epoch, seq, prev);
        body[mac_at..mac_at + 64].copy_from_slice(hex(&mac).as_bytes());
    });
}

/// A thief of the host's sealing state: the epoch it was in and that epoch's key, and whether
/// the seals it makes again claim that epoch or keep their own.
pub struct Thief {
    /// The stolen epoch.
    pub epoch: u64,
    /// Its key.
    pub key: [u8; 32],
    /// Whether the seals it makes again are for the stolen epoch (else for their own).
    pub claims_its_epoch: bool,
}

impl Thief {
    /// The two thieves of the key of `epoch`, `key`: the one that keeps the epochs of the seals
    /// it makes again, and the one that claims the stolen epoch.
    pub fn both(epoch: u64, key: [u8; 32]) -> [Thief; 2] {
        [false, true].map(|claims_its_epoch| Thief {
            epoch,
            key,
            claims_its_epoch,
        })
    }
}

/// What `thief` makes of the log `from`, in `to`: the event numbered `i` changed
/// ([`edit_event`]), every hash after it recomputed, and each seal that `reseal(seq, epoch)`
/// selects made again with the stolen key (a seal whose epoch has another number of digits than
/// the one it would claim is left: the body keeps its length). The stored tree is removed.
pub fn rewrite_with_stolen_key(
    (from, to): (&Path, &Path),
    i: u64,
    thief: &Thief,
    mut reseal: impl FnMut(u64, u64) -> bool,
) {
    crate::slots::copy_dir(from, to);
    let mut files = segment_files(to);
    edit_event(&mut files, i);
    rechain_resealing(&mut files, log_id_of(from), |seq, epoch| {
        let claimed = if thief.claims_its_epoch {
            thief.epoch
        } else {
            epoch
        };
        (reseal(seq, epoch) && epoch.to_string().len() == claimed.to_string().len())
            .then_some((claimed, thief.key))
    });
    write_back(to, &files);
}

/// The id of the log in `dir` (which must verify as far as its first segment's header).
pub fn log_id_of(dir: &Path) -> [u8; 16] {
    auditring::verify(dir, auditring::VerifyOptions::new())
        .unwrap()
        .log_id
        .unwrap()
        .0
}

/// Bytes in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Changes the event whose details end in `"i":i}` (its last digit) in `files`.
pub fn edit_event(files: &mut BTreeMap<String, Vec<u8>>, i: u64) {
    let needle = format!("\"i\":{i}}}");
    let bytes = files
        .values_mut()
        .find(|b| find(b, needle.as_bytes()).is_some())
        .unwrap();
    let at = find(bytes, needle.as_bytes()).unwrap() + needle.len() - 2;
    bytes[at] = if bytes[at] == b'9' { b'8' } else { b'9' };
}

/// Where `needle` starts in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
