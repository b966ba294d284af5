//! Editing the commit slots of segment files by hand (`docs/FORMAT.md` §3.2), for tests that
//! forge what a crash or an attacker leaves.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Copies the regular files of the log directory `from` into `to` (created): a copy of a
/// closed log to damage.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// The file of segment `n` in `dir`.
pub fn segment(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016x}.seg"))
}

/// Rewrites the digest of the commit slot at `at` (after an edit of its fields).
pub fn fix_slot_digest(bytes: &mut [u8], at: usize) {
    let mut h = Sha256::new();
    h.update(&bytes[64..96]);
    h.update(&bytes[at..at + 104]);
    let d: [u8; 32] = h.finalize().into();
    bytes[at + 104..at + 136].copy_from_slice(&d);
}

/// The newest commit slot's offset (the one with the higher generation).
pub fn current_slot(bytes: &[u8]) -> usize {
    let g = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    if g(512) > g(1024) { 512 } else { 1024 }
}

/// Edits the newest commit slot of segment `n` with `edit` (the slot's 104 bytes before its
/// digest), and fixes its digest. Returns the segment's path and the slot's offset.
pub fn edit_slot(dir: &Path, n: u64, edit: impl Fn(&mut [u8])) -> (PathBuf, u64) {
    let path = segment(dir, n);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = current_slot(&bytes);
    edit(&mut bytes[at..at + 104]);
    fix_slot_digest(&mut bytes, at);
    std::fs::write(&path, &bytes).unwrap();
    (path, at as u64)
}

/// Clears the sealed and clean flags: the slot of a segment whose sealing a crash interrupted.
pub fn unseal(slot: &mut [u8]) {
    slot[32..36].fill(0);
}

/// Makes the slot say the segment holds nothing committed (committed length `data_offset`, no
/// record), activated after another chain (its anchor, and so its head, changed): a segment
/// activated after records that a crash then lost from the segment before it.
pub fn activated_past_lost_records(data_offset: u64) -> impl Fn(&mut [u8]) {
    move |slot| {
        let first = u64::from_le_bytes(slot[8..16].try_into().unwrap());
        slot[16..24].copy_from_slice(&data_offset.to_le_bytes());
        slot[24..32].copy_from_slice(&(first - 1).to_le_bytes());
        slot[32..36].fill(0);
        slot[40] ^= 1;
        let anchor = slot[40..72].to_vec();
        slot[72..104].copy_from_slice(&anchor);
    }
}

/// Where segment `n`'s data region starts, from its prefix.
pub fn data_offset(dir: &Path, n: u64) -> u64 {
    let b = std::fs::read(segment(dir, n)).unwrap();
    u64::from_le_bytes(b[32..40].try_into().unwrap())
}

/// Removes segments `from` and every later one; returns how many there were.
pub fn remove_from(dir: &Path, from: u64) -> u64 {
    let mut n = from;
    while segment(dir, n).exists() {
        std::fs::remove_file(segment(dir, n)).unwrap();
        n += 1;
    }
    n - from
}

/// `(offset, len, seq)` of each record of a segment file, from the index-free walk of its bytes
/// (`docs/FORMAT.md` §5): the record frames from the data offset on, while they carry the
/// record magic.
pub fn records(bytes: &[u8]) -> Vec<(usize, usize, u64)> {
    let data = u64::from_le_bytes(bytes[32..40].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    let mut at = data;
    while at + 80 <= bytes.len() && &bytes[at..at + 4] == b"AREC" {
        let body = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let seq = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        let len = (80 + body + 7) & !7;
        out.push((at, len, seq));
        at += len;
    }
    out
}
