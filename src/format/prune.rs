//! The record retention writes when it prunes segments (`docs/FORMAT.md` §14.1): its kind, and
//! the one reading of its details.

use serde::{Deserialize, Serialize};

use crate::format::hash::Hash;

/// The kind of the record that says segments were pruned.
pub const PRUNED_KIND: &str = "auditring.pruned";

/// The details of a prune record, exactly as `docs/FORMAT.md` §14.1 specifies them: a JSON
/// object of these six members, each present once, no other member.
///
/// Invariants of a parsed one ([`PruneDetails::from_record`]): `1 <= first_seq`,
/// `first_seq <= last_seq + 1` (the pruned segments may hold no record), and `last_seq` is below
/// the seq of the prune record itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PruneDetails {
    /// First and last seq removed.
    pub(crate) first_seq: u64,
    pub(crate) last_seq: u64,
    /// Chain hash of `last_seq`: the anchor the log now starts from (64 lowercase hex digits).
    pub(crate) head: Hash,
    /// The files removed.
    pub(crate) segments: Vec<String>,
    /// Which limit: `"max_segments"`, `"max_bytes"` or `"max_age"` (any string is read).
    pub(crate) reason: String,
    /// Where the records were exported first, if the ring exported them; always written, as
    /// `null` when not.
    #[serde(deserialize_with = "string_or_null")]
    pub(crate) exported_to: Option<String>,
}

/// A member that must be there, as a string or `null` (serde would take a missing one as
/// `None`).
fn string_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

impl PruneDetails {
    /// What the prune record with this `body`, at `seq`, says; or why it says nothing: not a
    /// prune record, or details that are not those of FORMAT.md §14.1. The one reading of prune
    /// records (verification follows it; `tools/verify_log.py` reads them the same way).
    pub(crate) fn from_record(body: &[u8], seq: u64) -> Result<PruneDetails, String> {
        let d: PruneDetails = crate::format::event::system_details(body, PRUNED_KIND)?;
        if d.first_seq == 0 {
            return Err("first_seq is 0".into());
        }
        if d.last_seq.checked_add(1).is_some_and(|n| d.first_seq > n) {
            return Err(format!(
                "first_seq {} is past last_seq {} + 1",
                d.first_seq, d.last_seq
            ));
        }
        if d.last_seq >= seq {
            return Err(format!(
                "last_seq {} is not before the prune record's own seq {seq}",
                d.last_seq
            ));
        }
        Ok(d)
    }
}
