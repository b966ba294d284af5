//! The initial sealing key, the key of each epoch, and the seal MAC (FORMAT.md §16.2).

use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::format::hash::Hash;

/// The domain of the one-way function that evolves an epoch's key into the next one's.
const EVOLVE_DOMAIN: &[u8] = b"auditring-seal-evolve-v1";

/// The domain of the seal MAC's input.
const MAC_DOMAIN: &[u8] = b"auditring-seal-v1";

/// The first word of a sealing key file.
const KEY_FILE_TAG: &str = "auditring-seal-key-v1";

/// The secret a log's seals start from: the key of epoch 0.
///
/// Whoever holds it can check every seal of the logs sealed from it, and forge them: keep it
/// offline, with the auditor. The ring is given a state file made from it
/// ([`SealKey::write_state`]), which holds only the key of the epoch it is in.
///
/// Its text form, in a key file, is one line: `auditring-seal-key-v1 ` and the key in 64
/// lowercase hex digits. It is wiped from memory when dropped.
#[derive(Clone)]
pub struct SealKey(Zeroizing<[u8; 32]>);

impl SealKey {
    /// A new random key, from the operating system's generator.
    pub fn generate() -> Result<SealKey, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut key[..])
            .map_err(|e| Error::Sealing(format!("generating a sealing key: {e}")))?;
        Ok(SealKey(key))
    }

    /// The key with these 32 bytes (for tests and for keys kept in another store).
    pub fn from_bytes(bytes: [u8; 32]) -> SealKey {
        SealKey(Zeroizing::new(bytes))
    }

    /// Reads a key from its text form (see the type's documentation).
    pub fn from_text(text: &str) -> Result<SealKey, Error> {
        let line = text.strip_suffix('\n').unwrap_or(text);
        let hex = line
            .strip_prefix(KEY_FILE_TAG)
            .and_then(|rest| rest.strip_prefix(' '))
            .ok_or_else(|| {
                Error::Sealing(format!(
                    "not a sealing key: it must be one line, {KEY_FILE_TAG:?} and the key in hex"
                ))
            })?;
        Ok(SealKey(parse_key(hex).map_err(Error::Sealing)?))
    }

    /// Reads a key file (see the type's documentation).
    pub fn read(path: &Path) -> Result<SealKey, Error> {
        let text = Zeroizing::new(read_small(path)?);
        SealKey::from_text(&text)
            .map_err(|e| Error::Sealing(format!("reading {}: {e}", path.display())))
    }

    /// The key's text form, with its newline.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{KEY_FILE_TAG} {}\n", &*hex_of(&self.0)))
    }

    /// Writes the key to a new file, readable by its owner only; an existing file is never
    /// replaced.
    pub fn write_new(&self, path: &Path) -> Result<(), Error> {
        write_new_file(path, self.to_text().as_bytes())
    }

    /// Writes a new state file for a ring, at epoch 0 with this key and bound to no log yet
    /// (the first ring that seals with it binds it to its log); an existing file is never
    /// replaced.
    pub fn write_state(&self, path: &Path) -> Result<(), Error> {
        let state = crate::seal::state::SealState {
            log: None,
            sealed_seq: 0,
            key: self.epoch(0),
        };
        write_new_file(path, state.to_text().as_bytes())
    }

    /// The key of `epoch`, derived by evolving this one `epoch` times.
    pub(crate) fn epoch(&self, epoch: u64) -> EpochKey {
        let mut key = EpochKey {
            epoch: 0,
            key: self.0.clone(),
        };
        while key.epoch < epoch {
            key.evolve();
        }
        key
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(..)")
    }
}

/// The key of one epoch.
pub(crate) struct EpochKey {
    pub(crate) epoch: u64,
    /// Wiped when it evolves and when dropped.
    pub(crate) key: Zeroizing<[u8; 32]>,
}

impl EpochKey {
    /// Moves to the next epoch: `key = SHA-256(EVOLVE_DOMAIN ‖ key)`; the old key is
    /// overwritten in place.
    pub(crate) fn evolve(&mut self) {
        let mut h = Sha256::new();
        h.update(EVOLVE_DOMAIN);
        h.update(&self.key[..]);
        let next: [u8; 32] = h.finalize().into();
        self.key.copy_from_slice(&next);
        self.epoch += 1;
    }

    /// The seal MAC of a seal record at `seq` of log `log_id`, whose chain hash before it is
    /// `prev`: `HMAC-SHA-256(key, MAC_DOMAIN ‖ log_id ‖ epoch ‖ seq ‖ prev)`, the integers
    /// big-endian u64.
    pub(crate) fn mac(&self, log_id: &[u8; 16], seq: u64, prev: &Hash) -> Hash {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key[..]).expect("HMAC takes any key");
        mac.update(MAC_DOMAIN);
        mac.update(log_id);
        mac.update(&self.epoch.to_be_bytes());
        mac.update(&seq.to_be_bytes());
        mac.update(prev.as_bytes());
        Hash(mac.finalize().into_bytes().into())
    }

    /// A copy (for the state file written after a seal).
    pub(crate) fn duplicate(&self) -> EpochKey {
        EpochKey {
            epoch: self.epoch,
            key: self.key.clone(),
        }
    }
}

/// 64 lowercase hex digits to a key.
pub(crate) fn parse_key(hex: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("a key must be 64 lowercase hex digits".into());
    }
    let mut key = Zeroizing::new([0u8; 32]);
    for (i, out) in key.iter_mut().enumerate() {
        *out = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(key)
}

/// A key in 64 lowercase hex digits.
pub(crate) fn hex_of(key: &[u8; 32]) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = Zeroizing::new(String::with_capacity(64));
    for b in key {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Reads a key or state file: a regular file of at most 4 KiB.
pub(crate) fn read_small(path: &Path) -> Result<String, Error> {
    use std::io::Read as _;
    let fail = |e: &dyn fmt::Display| Error::Sealing(format!("reading {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    let meta = file.metadata().map_err(|e| fail(&e))?;
    if !meta.is_file() {
        return Err(fail(&"not a regular file"));
    }
    let mut text = String::new();
    file.take(4097)
        .read_to_string(&mut text)
        .map_err(|e| fail(&e))?;
    if text.len() > 4096 {
        return Err(fail(&"larger than a key or state file can be (4 KiB)"));
    }
    Ok(text)
}

/// Creates `path` with `bytes`, mode 0600, never replacing a file, and syncs it.
fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |e: std::io::Error| Error::Sealing(format!("creating {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_evolve_one_way_and_the_text_form_round_trips() {
        let key = SealKey::from_bytes([7; 32]);
        let mut k = key.epoch(0);
        assert_eq!(*k.key, [7; 32]);
        k.evolve();
        let mut h = Sha256::new();
        h.update(b"auditring-seal-evolve-v1");
        h.update([7u8; 32]);
        assert_eq!(&k.key[..], &h.finalize()[..]);
        assert_eq!(*key.epoch(1).key, *k.key);
        assert_eq!(key.epoch(5).epoch, 5);
        let text = key.to_text();
        assert_eq!(text.len(), KEY_FILE_TAG.len() + 1 + 64 + 1);
        assert_eq!(*SealKey::from_text(&text).unwrap().0, [7; 32]);
        for bad in [
            "",
            "auditring-seal-key-v1",
            &format!("auditring-seal-key-v1 {}", "0A".repeat(32)),
            &format!("auditring-seal-key-v1  {}", "0a".repeat(32)),
            &format!("auditring-seal-key-v2 {}", "0a".repeat(32)),
            &format!("auditring-seal-key-v1 {}\n\n", "0a".repeat(32)),
        ] {
            assert!(SealKey::from_text(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_mac_binds_every_input() {
        let key = SealKey::from_bytes([1; 32]);
        let (k0, k1) = (key.epoch(0), key.epoch(1));
        let base = k0.mac(&[2; 16], 10, &Hash([3; 32]));
        assert_ne!(base, k1.mac(&[2; 16], 10, &Hash([3; 32])));
        assert_ne!(base, k0.mac(&[9; 16], 10, &Hash([3; 32])));
        assert_ne!(base, k0.mac(&[2; 16], 11, &Hash([3; 32])));
        assert_ne!(base, k0.mac(&[2; 16], 10, &Hash([4; 32])));
        // HMAC-SHA-256 by its definition (RFC 2104), for an independent check of the crate.
        let mut input = b"auditring-seal-v1".to_vec();
        input.extend([2; 16]);
        input.extend(0u64.to_be_bytes());
        input.extend(10u64.to_be_bytes());
        input.extend([3; 32]);
        let pad = |b: u8| -> Vec<u8> { (0..64).map(|i| if i < 32 { 1 ^ b } else { b }).collect() };
        let inner = Sha256::digest([pad(0x36), input].concat());
        let outer = Sha256::digest([pad(0x5c), inner.to_vec()].concat());
        assert_eq!(base.0, <[u8; 32]>::from(outer));
    }
}
