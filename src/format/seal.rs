//! The record the ring writes to seal an epoch (`docs/FORMAT.md` §16): its kind, and the one
//! reading of its details.

use serde::{Deserialize, Serialize};

use crate::format::hash::Hash;

/// The kind of the record that seals everything before it with the key of an epoch
/// (forward-secure sealing; see [`crate::Sealing`]).
pub const SEALED_KIND: &str = "auditring.sealed";

/// The details of a seal record, exactly as `docs/FORMAT.md` §16 specifies them: a JSON object
/// of these two members, each present once, no other member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SealDetails {
    /// The epoch whose key computed `mac`.
    pub(crate) epoch: u64,
    /// HMAC-SHA-256 of the seal input (§16.2) under the epoch's key (64 lowercase hex digits).
    pub(crate) mac: Hash,
}

impl SealDetails {
    /// What the seal record with this `body` says; or why it says nothing: not a seal record,
    /// or details that are not those of FORMAT.md §16. The one reading of seal records
    /// (verification follows it; `tools/verify_log.py` reads them the same way).
    pub(crate) fn from_record(body: &[u8]) -> Result<SealDetails, String> {
        crate::format::event::system_details(body, SEALED_KIND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::event::Event;
    use crate::write::item::encode;

    fn body(details: &str) -> Vec<u8> {
        let event = Event::system(SEALED_KIND, details.to_owned()).with_timestamp_nanos(1);
        encode(&event, usize::MAX).unwrap().body.as_slice().to_vec()
    }

    #[test]
    fn the_details_are_read_exactly() {
        let mac = "ab".repeat(32);
        let good =
            SealDetails::from_record(&body(&format!(r#"{{"epoch":7,"mac":"{mac}"}}"#))).unwrap();
        assert_eq!(good.epoch, 7);
        assert_eq!(good.mac.to_hex(), mac);
        for bad in [
            r#"{"epoch":7}"#.to_owned(),
            format!(r#"{{"epoch":7,"mac":"{mac}","extra":1}}"#),
            format!(r#"{{"epoch":-1,"mac":"{mac}"}}"#),
            format!(r#"{{"epoch":7,"mac":"{}"}}"#, "AB".repeat(32)),
            format!(r#"[7,"{mac}"]"#),
            format!(r#"{{"epoch":7,"epoch":8,"mac":"{mac}"}}"#),
        ] {
            assert!(SealDetails::from_record(&body(&bad)).is_err(), "{bad}");
        }
    }
}
