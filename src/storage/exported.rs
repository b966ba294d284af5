//! The `EXPORTED` marker: how far exports of a log reach, so that retention prunes only what
//! was exported when it is told to wait for exports.

use serde::{Deserialize, Serialize};

use crate::format::hash::Hash;
use crate::storage::Storage;
use crate::storage::names::EXPORTED_FILE;

/// How far exports of a log reach: the `EXPORTED` marker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Coverage {
    /// The first seq covered.
    pub(crate) first_seq: u64,
    /// Every seq from `first_seq` to this one is in some export.
    pub(crate) last_seq: u64,
    /// The chain hash at `last_seq`.
    pub(crate) head: Hash,
    /// Where the seqs from some seq to `last_seq` were put (an object-storage URL, an export
    /// directory), if the extensions that covered them said: prune records of those seqs name
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) to: Option<KeptAt>,
}

/// Where a run of covered seqs is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KeptAt {
    /// The location, as the exporter named it.
    pub(crate) location: String,
    /// The first seq of the run kept there; the run ends at the coverage's `last_seq`.
    pub(crate) first_seq: u64,
}

impl Coverage {
    /// The marker of `storage`'s log, if there is a readable one.
    pub(crate) fn read(storage: &dyn Storage) -> Option<Coverage> {
        let bytes = storage.read_small(EXPORTED_FILE).ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records that seqs `from..=to` (ending at `head`) were exported (to `location`, if
    /// given), if that extends the coverage from the log's first seq `log_first` without a gap.
    pub(crate) fn extend(
        storage: &dyn Storage,
        log_first: u64,
        (from, to): (u64, u64),
        head: Hash,
        location: Option<&str>,
    ) -> std::io::Result<()> {
        let new = match Coverage::read(storage) {
            Some(c) if c.last_seq >= to => return Ok(()),
            Some(c) if from <= c.last_seq + 1 => {
                // The run kept at `location` goes on if the last one was kept there too.
                let first = match (&c.to, location) {
                    (Some(kept), Some(l)) if kept.location == l => kept.first_seq,
                    _ => c.last_seq + 1,
                };
                Coverage {
                    first_seq: c.first_seq,
                    last_seq: to,
                    head,
                    to: location.map(|l| KeptAt {
                        location: l.to_owned(),
                        first_seq: first,
                    }),
                }
            }
            _ if from <= log_first => Coverage {
                first_seq: from,
                last_seq: to,
                head,
                to: location.map(|l| KeptAt {
                    location: l.to_owned(),
                    first_seq: from,
                }),
            },
            _ => return Ok(()),
        };
        let bytes = serde_json::to_vec(&new).expect("coverage serializes");
        storage.write_small(EXPORTED_FILE, &bytes)
    }

    /// Where seqs `from..=to` are kept, if they are all covered by one run that said.
    pub(crate) fn kept_at(&self, from: u64, to: u64) -> Option<&str> {
        let kept = self.to.as_ref()?;
        (self.covers(from, to) && kept.first_seq <= from).then_some(kept.location.as_str())
    }

    /// Whether seqs `from..=to` are all covered.
    pub(crate) fn covers(&self, from: u64, to: u64) -> bool {
        self.first_seq <= from && to <= self.last_seq
    }
}
