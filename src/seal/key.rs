//! The initial sealing key, kept offline, and its key file (FORMAT.md §16.2).

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::seal::epoch::{EpochKey, hex_of, parse_key};
use crate::seal::file::{read_small, write_new_file};
use crate::seal::state::SealState;

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
        let state = SealState {
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

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

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
}
