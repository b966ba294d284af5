//! Which checkpoints a verification is given, and which keys it trusts to sign and cosign them:
//! the same for a log ([`crate::VerifyOptions`]) and an export ([`crate::VerifyExportOptions`]).

use crate::checkpoint::{Checkpoint, SignatureType, VerifierKey, open_note, verify_cosignatures};
use crate::error::Error;
use crate::format::log_id::{LogId, default_origin};
use crate::verify::tree::OpenedCheckpoint;

/// Checkpoints obtained out of band, and the keys that vouch for them.
#[derive(Default)]
pub(crate) struct CheckpointTrust {
    /// The signed notes, as given.
    pub(crate) notes: Vec<String>,
    /// Keys whose signature on a checkpoint is trusted (any one suffices).
    pub(crate) keys: Vec<VerifierKey>,
    /// The origin the checkpoints must name (default: the log's).
    pub(crate) origin: Option<String>,
    /// Witnesses, and how many distinct ones must have cosigned each checkpoint.
    pub(crate) witnesses: Vec<VerifierKey>,
    pub(crate) quorum: usize,
}

impl CheckpointTrust {
    /// Opens every checkpoint given: each must be a signed note verified by a trusted key,
    /// holding a checkpoint body, and cosigned by the quorum of witnesses.
    pub(crate) fn open(&self) -> Result<Vec<OpenedCheckpoint>, Error> {
        self.open_notes(&self.notes)
    }

    /// [`CheckpointTrust::open`], for `notes` instead of the notes given.
    pub(crate) fn open_notes(&self, notes: &[String]) -> Result<Vec<OpenedCheckpoint>, Error> {
        if !notes.is_empty() && self.keys.is_empty() {
            return Err(Error::Checkpoint(
                "checkpoints were given but no key to trust: add the log's verifier key".into(),
            ));
        }
        if let Some(k) = self
            .keys
            .iter()
            .find(|k| k.signature_type() != SignatureType::Ed25519)
        {
            return Err(Error::Checkpoint(format!(
                "{k} is a witness's cosigner key, not a log's key: give it as a witness"
            )));
        }
        notes
            .iter()
            .enumerate()
            .map(|(i, note)| {
                let which = || format!("checkpoint {}", i + 1);
                let opened = open_note(note, &self.keys)
                    .map_err(|e| Error::Checkpoint(format!("{}: {e}", which())))?;
                let checkpoint = Checkpoint::parse(opened.text())
                    .map_err(|e| Error::Checkpoint(format!("{}: {e}", which())))?;
                if self.quorum > 0 {
                    verify_cosignatures(&opened, &self.witnesses, self.quorum).map_err(|e| {
                        Error::Checkpoint(format!("{} (size {}): {e}", which(), checkpoint.size()))
                    })?;
                }
                Ok(OpenedCheckpoint {
                    signed_by: opened
                        .verified()
                        .iter()
                        .map(|s| s.name().to_owned())
                        .collect(),
                    checkpoint,
                })
            })
            .collect()
    }

    /// Fails if a checkpoint names another log than `log_id` (or the origin given).
    pub(crate) fn check_origin(
        &self,
        log_id: LogId,
        checkpoints: &[OpenedCheckpoint],
    ) -> Result<(), Error> {
        let origin = self
            .origin
            .clone()
            .unwrap_or_else(|| default_origin(log_id));
        match checkpoints.iter().find(|c| c.checkpoint.origin() != origin) {
            Some(c) => Err(Error::Checkpoint(format!(
                "a checkpoint of size {} is for the log {:?}, not this one ({origin:?})",
                c.checkpoint.size(),
                c.checkpoint.origin()
            ))),
            None => Ok(()),
        }
    }
}
