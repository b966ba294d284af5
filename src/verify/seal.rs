//! Checking the seal records of a log against its initial sealing key (`docs/FORMAT.md` §16.4).
//!
//! Seals are checked in seq order as the walk meets them. Each must read as §16.1 says; its
//! epoch must be 0 for the first seal of a log that starts at seq 1 (any epoch below its seq in
//! a pruned log), and the previous seal's epoch or the one after for every later seal; and its
//! MAC must be the one the epoch's key gives over the log id, the epoch, its seq and the chain
//! hash before it. The epoch keys are derived from the initial key as the walk goes, each once.

use serde::Serialize;

use crate::error::Reason;
use crate::format::hash::Hash;
use crate::format::seal::SealDetails;
use crate::seal::epoch::{EpochKey, MAX_EPOCHS};
use crate::seal::key::SealKey;

/// What the seals of a log say, when it was verified with a sealing key
/// ([`VerifyOptions::seal_key`](crate::VerifyOptions::seal_key)).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SealReport {
    /// Seal records checked.
    pub seals: u64,
    /// Epoch of the first seal checked.
    pub first_epoch: Option<u64>,
    /// Epoch of the last seal checked.
    pub last_epoch: Option<u64>,
    /// Seq of the last seal checked: every record up to it is sealed. 0 when there is none.
    pub sealed_through: u64,
    /// Records after the last seal (or, with none, every record): not sealed, so a holder of
    /// the current key could have written them. An active ring always has some.
    pub unsealed: u64,
    /// Timestamp of the last seal record (when it was sealed), nanoseconds since the Unix
    /// epoch.
    pub last_sealed_at: Option<i64>,
}

/// What [`VerifyOptions::seal_key`](crate::VerifyOptions::seal_key) and
/// [`VerifyOptions::expect_epoch`](crate::VerifyOptions::expect_epoch) ask for.
#[derive(Default)]
pub(crate) struct SealOptions {
    pub(crate) key: Option<SealKey>,
    pub(crate) expect_epoch: Option<u64>,
}

/// The state of the seal check during a walk.
pub(crate) struct SealCheck {
    initial: SealKey,
    /// The key of the last epoch derived.
    key: Option<EpochKey>,
    pub(crate) report: SealReport,
}

impl SealCheck {
    pub(crate) fn new(key: SealKey) -> SealCheck {
        SealCheck {
            initial: key,
            key: None,
            report: SealReport::default(),
        }
    }

    /// Checks the seal record at `seq` with this `body`, whose chain hash before it is `prev`,
    /// in log `log_id` that starts at `first_seq`.
    pub(crate) fn check(
        &mut self,
        log_id: &[u8; 16],
        first_seq: u64,
        seq: u64,
        body: &[u8],
        prev: &Hash,
    ) -> Result<(), Reason> {
        let details = SealDetails::from_record(body).map_err(Reason::SealRecord)?;
        let epoch = details.epoch;
        let allowed = match self.report.last_epoch {
            Some(last) => epoch == last || Some(epoch) == last.checked_add(1),
            None if first_seq == 1 => epoch == 0,
            // Each epoch before it had a seal record of its own, at a smaller seq.
            None => epoch < seq,
        };
        if !allowed || epoch >= MAX_EPOCHS {
            return Err(Reason::SealEpoch {
                previous: self.report.last_epoch,
                found: epoch,
            });
        }
        let key = match self.key.take() {
            Some(k) if k.epoch <= epoch => self.key.insert(k),
            _ => self.key.insert(self.initial.epoch(0)),
        };
        while key.epoch < epoch {
            key.evolve();
        }
        if key.mac(log_id, seq, prev) != details.mac {
            return Err(Reason::SealMac { epoch });
        }
        let r = &mut self.report;
        r.seals += 1;
        r.first_epoch = r.first_epoch.or(Some(epoch));
        r.last_epoch = Some(epoch);
        r.sealed_through = seq;
        r.last_sealed_at = crate::format::event::decode_body(body)
            .ok()
            .map(|e| e.timestamp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::event::Event;
    use crate::format::seal::SEALED_KIND;
    use crate::write::item::encode;

    fn seal_body(epoch: u64) -> Vec<u8> {
        let details = format!(r#"{{"epoch":{epoch},"mac":"{}"}}"#, "00".repeat(32));
        let event = Event::system(SEALED_KIND, details).with_timestamp_nanos(1);
        encode(&event, usize::MAX).unwrap().body.as_slice().to_vec()
    }

    #[test]
    fn an_epoch_past_the_limit_is_refused_before_any_key_is_derived() {
        // A pruned log may start with any epoch below the seal's seq: a forged one claiming
        // a huge seq and epoch must fail at once, not after 2^40 hashes.
        let mut check = SealCheck::new(SealKey::from_bytes([1; 32]));
        let seq = 1 << 40;
        let found = check.check(&[0; 16], 1 << 39, seq, &seal_body(seq - 1), &Hash::ZERO);
        assert_eq!(
            found,
            Err(Reason::SealEpoch {
                previous: None,
                found: seq - 1
            })
        );
        assert!(
            check
                .check(&[0; 16], 1 << 39, seq, &seal_body(MAX_EPOCHS), &Hash::ZERO)
                .is_err()
        );
        // Below the limit, the epoch's key is derived (and the MAC, made up here, fails). The
        // last epoch allowed takes about 30 s of hashing on a two-core machine of 2026.
        let found = check.check(&[0; 16], 1 << 39, seq, &seal_body(1_000), &Hash::ZERO);
        assert_eq!(found, Err(Reason::SealMac { epoch: 1_000 }));
    }
}
