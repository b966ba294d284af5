//! The `EXPORTED` marker: how far exports of a log reach, so that retention prunes only what
//! was exported when it is told to wait for exports.

use serde::{Deserialize, Serialize};

use crate::format::hash::Hash;
use crate::storage::Storage;
use crate::storage::names::EXPORTED_FILE;

/// How far exports of a log reach: the `EXPORTED` marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Coverage {
    /// The first seq covered.
    pub(crate) first_seq: u64,
    /// Every seq from `first_seq` to this one is in some export.
    pub(crate) last_seq: u64,
    /// The chain hash at `last_seq`.
    pub(crate) head: Hash,
}

impl Coverage {
    /// The marker of `storage`'s log, if there is a readable one.
    pub(crate) fn read(storage: &dyn Storage) -> Option<Coverage> {
        let bytes = storage.read_small(EXPORTED_FILE).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records that seqs `from..=to` (ending at `head`) were exported, if that extends the
    /// coverage from the log's first seq `log_first` without a gap.
    pub(crate) fn extend(
        storage: &dyn Storage,
        log_first: u64,
        from: u64,
        to: u64,
        head: Hash,
    ) -> std::io::Result<()> {
        let new = match Coverage::read(storage) {
            Some(c) if c.last_seq >= to => return Ok(()),
            Some(c) if from <= c.last_seq + 1 => Coverage {
                first_seq: c.first_seq,
                last_seq: to,
                head,
            },
            _ if from <= log_first => Coverage {
                first_seq: from,
                last_seq: to,
                head,
            },
            _ => return Ok(()),
        };
        let bytes = serde_json::to_vec(&new).expect("coverage serializes");
        storage.write_small(EXPORTED_FILE, &bytes)
    }

    /// Whether seqs `from..=to` are all covered.
    pub(crate) fn covers(&self, from: u64, to: u64) -> bool {
        self.first_seq <= from && to <= self.last_seq
    }
}
