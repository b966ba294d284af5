//! The ring's sealing state file: the epoch it is in, that epoch's key, and the seal that ended
//! the epoch before (FORMAT.md §16.3).
//!
//! ```text
//! auditring-seal-state-v1
//! log <32 lowercase hex digits, or ->
//! epoch <decimal>
//! sealed <decimal>
//! key <64 lowercase hex digits>
//! ```
//!
//! It is replaced whole (a temporary beside it, synced, renamed over it, the directory synced),
//! so a crash leaves the old state or the new one.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::Error;
use crate::format::log_id::LogId;
use crate::seal::epoch::{EpochKey, hex_of, parse_key};
use crate::seal::file::read_small;

/// The first line of a state file.
const STATE_TAG: &str = "auditring-seal-state-v1";

/// What a state file holds.
pub(crate) struct SealState {
    /// The log it seals, once a ring sealed with it; `None` before.
    pub(crate) log: Option<[u8; 16]>,
    /// Seq of the seal record written with the previous epoch's key, or 0 before any: records
    /// after it are not sealed yet.
    pub(crate) sealed_seq: u64,
    /// The epoch the ring is in, and its key.
    pub(crate) key: EpochKey,
}

impl SealState {
    /// The file's text.
    pub(crate) fn to_text(&self) -> Zeroizing<String> {
        let log = match &self.log {
            Some(id) => LogId(*id).to_hex(),
            None => "-".to_owned(),
        };
        Zeroizing::new(format!(
            "{STATE_TAG}\nlog {log}\nepoch {}\nsealed {}\nkey {}\n",
            self.key.epoch,
            self.sealed_seq,
            &*hex_of(&self.key.key)
        ))
    }

    /// Reads a state file's text, exactly as [`SealState::to_text`] writes it.
    pub(crate) fn from_text(text: &str) -> Result<SealState, String> {
        let mut lines = text.split('\n');
        if lines.next() != Some(STATE_TAG) {
            return Err(format!("not a sealing state file (no {STATE_TAG:?} line)"));
        }
        let mut field = |name: &str| -> Result<&str, String> {
            lines
                .next()
                .and_then(|l| l.strip_prefix(name))
                .and_then(|l| l.strip_prefix(' '))
                .ok_or_else(|| format!("the line {name:?} is missing or malformed"))
        };
        let log = match field("log")? {
            "-" => None,
            hex if hex.len() == 32 && !hex.bytes().any(|b| b.is_ascii_uppercase()) => Some(
                LogId::from_hex(hex)
                    .map_err(|e| format!("the log id: {e}"))?
                    .0,
            ),
            _ => return Err("the log id must be 32 lowercase hex digits or -".into()),
        };
        let epoch = decimal(field("epoch")?)?;
        let sealed_seq = decimal(field("sealed")?)?;
        let key = parse_key(field("key")?)?;
        if lines.next() != Some("") || lines.next().is_some() {
            return Err("it must end with the key line and a newline".into());
        }
        Ok(SealState {
            log,
            sealed_seq,
            key: EpochKey { epoch, key },
        })
    }

    /// Reads the state file at `path`.
    pub(crate) fn read(path: &Path) -> Result<SealState, Error> {
        let text = Zeroizing::new(read_small(path)?);
        SealState::from_text(&text)
            .map_err(|e| Error::Sealing(format!("reading {}: {e}", path.display())))
    }

    /// Replaces the state file at `path` with this state, durably: after a crash the file holds
    /// the old state or this one.
    pub(crate) fn persist(&self, path: &Path) -> Result<(), Error> {
        let fail = |what: &str, e: std::io::Error| {
            Error::Sealing(format!("{what} {}: {e}", path.display()))
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| Error::Sealing(format!("{} names no file", path.display())))?;
        let mut tmp_name = name.to_owned();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| fail("writing the state beside", e))?;
        file.write_all(self.to_text().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| fail("writing the state beside", e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("replacing", e))?;
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("syncing the directory of", e))
    }
}

/// A decimal u64 without sign or leading zeros.
fn decimal(text: &str) -> Result<u64, String> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return Err(format!("{text:?} is not a decimal number"));
    }
    text.parse().map_err(|_| format!("{text} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::key::SealKey;

    #[test]
    fn the_state_round_trips_and_is_read_exactly() {
        let state = SealState {
            log: Some([0xab; 16]),
            sealed_seq: 42,
            key: SealKey::from_bytes([5; 32]).epoch(3),
        };
        let text = state.to_text();
        let back = SealState::from_text(&text).unwrap();
        assert_eq!(back.to_text(), text);
        assert_eq!(
            (back.log, back.sealed_seq, back.key.epoch),
            (state.log, 42, 3)
        );
        let fresh = SealState { log: None, ..back };
        assert!(fresh.to_text().contains("\nlog -\n"));
        assert!(
            SealState::from_text(&fresh.to_text())
                .unwrap()
                .log
                .is_none()
        );
        for (from, to) in [
            ("epoch 3", "epoch 03"),
            ("epoch 3", "epoch -3"),
            ("sealed 42", "sealed"),
            ("log -", "log"),
            ("auditring-seal-state-v1", "auditring-seal-state-v2"),
            ("key ", "key  "),
        ] {
            let bad = fresh.to_text().replace(from, to);
            assert!(SealState::from_text(&bad).is_err(), "{bad}");
        }
        let mut trailing = fresh.to_text().to_string();
        trailing.push('\n');
        assert!(SealState::from_text(&trailing).is_err());
    }

    #[test]
    fn persisting_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.state");
        let key = SealKey::from_bytes([9; 32]);
        key.write_state(&path).unwrap();
        assert!(
            key.write_state(&path).is_err(),
            "never replaced by write_state"
        );
        let mut state = SealState::read(&path).unwrap();
        assert_eq!((state.key.epoch, state.sealed_seq, state.log), (0, 0, None));
        state.key.evolve();
        state.sealed_seq = 7;
        state.log = Some([1; 16]);
        state.persist(&path).unwrap();
        let read = SealState::read(&path).unwrap();
        assert_eq!((read.key.epoch, read.sealed_seq), (1, 7));
        assert_eq!(*read.key.key, *key.epoch(1).key);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
