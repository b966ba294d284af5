//! Cosignatures (c2sp.org/tlog-cosignature, Ed25519 `cosignature/v1`): a witness's signed
//! statement that, as of a time, the checkpoint is the largest consistent one it has seen of the
//! log. Log clients require a quorum of witnesses before they trust a checkpoint.
//!
//! A cosignature is a signature line of the checkpoint's note, by the witness's key name, with
//! the key id of signature type 0x04:
//!
//! ```text
//! — <witness name> base64(key id (4) ‖ timestamp (u64, big-endian) ‖ Ed25519 signature (64))
//! ```
//!
//! The Ed25519 signature is of two header lines followed by the whole checkpoint body
//! (extension lines included, signature lines not):
//!
//! ```text
//! cosignature/v1\n
//! time <timestamp>\n              POSIX seconds, decimal, no leading zeros, at most 2^63 - 1
//! <checkpoint body>
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::checkpoint::{Checkpoint, CheckpointError};
use super::key::{
    MAX_TIMESTAMP, SignatureType, SigningKey, VerifierKey, cosignature_v1_message,
    split_timestamped,
};
use super::note::{NoteSignature, OpenedNote, find_key};

/// A checkpoint could not be cosigned, or its cosignatures do not meet the quorum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignatureError {
    /// The text to cosign, or the text of the note, is not a checkpoint.
    #[error("the note text is not a checkpoint: {0}")]
    NotACheckpoint(#[from] CheckpointError),
    /// The timestamp to cosign with is larger than 2^63 - 1.
    #[error("the timestamp {timestamp} is larger than 2^63 - 1")]
    TimestampOutOfRange {
        /// The timestamp.
        timestamp: u64,
    },
    /// A cosignature by a trusted witness is not valid; the whole note is refused.
    #[error("the cosignature by the witness {name}+{id:08x} is invalid: {problem}")]
    InvalidCosignature {
        /// The witness's key name.
        name: String,
        /// The witness's key id (of type 0x04).
        id: u32,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Two different witness keys have the same name and key id, and a cosignature names them.
    #[error("the cosignature by {name}+{id:08x} names two different witness keys")]
    AmbiguousWitness {
        /// The key name.
        name: String,
        /// The key id.
        id: u32,
    },
    /// A quorum of zero witnesses was asked for, which any note meets.
    #[error("a quorum of 0 witnesses was asked for; ask for at least 1")]
    ZeroQuorum,
    /// More witnesses were required than were given.
    #[error(
        "{required} witnesses are required but only {witnesses} distinct witness keys were given"
    )]
    QuorumTooLarge {
        /// The quorum asked for.
        required: usize,
        /// The distinct witness keys given.
        witnesses: usize,
    },
    /// Fewer witnesses than required cosigned the checkpoint.
    #[error("{found} of the {required} required witnesses cosigned the checkpoint")]
    NoQuorum {
        /// How many distinct witnesses' cosignatures verified.
        found: usize,
        /// The quorum asked for.
        required: usize,
    },
}

/// A valid cosignature: which witness, and the time it states.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cosignature {
    name: String,
    id: u32,
    timestamp: u64,
}

impl Cosignature {
    /// The witness's key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The witness's key id (of type 0x04).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The time of the cosignature, in seconds since the Unix epoch.
    pub fn timestamp(&self) -> u64 {
        self.timestamp
    }
}

/// Cosigns a checkpoint as of `timestamp` (seconds since the Unix epoch, at most 2^63 - 1) and
/// returns the signature line, newline included, to append to the checkpoint's signed note.
///
/// `checkpoint_body` must be a valid checkpoint ([`Checkpoint::parse`]). The key signs with the
/// key id of type 0x04 whatever its own type, so an Ed25519 (0x01) key cosigns as its
/// [`cosigner`](SigningKey::cosigner); witnesses' clients trust `key.verifier().cosigner()`.
pub fn cosign(
    checkpoint_body: &str,
    key: &SigningKey,
    timestamp: u64,
) -> Result<String, CosignatureError> {
    Checkpoint::parse(checkpoint_body)?;
    if timestamp > MAX_TIMESTAMP {
        return Err(CosignatureError::TimestampOutOfRange { timestamp });
    }
    let key = if key.signature_type() == SignatureType::CosignatureV1 {
        key
    } else {
        &key.cosigner()
    };
    let signature = key.sign_ed25519(&cosignature_v1_message(timestamp, checkpoint_body));
    let mut data = Vec::with_capacity(4 + 8 + 64);
    data.extend_from_slice(&key.id().to_be_bytes());
    data.extend_from_slice(&timestamp.to_be_bytes());
    data.extend_from_slice(&signature);
    Ok(format!(
        "\u{2014} {} {}\n",
        key.name(),
        STANDARD.encode(data)
    ))
}

/// Checks the cosignatures of an opened checkpoint note against the `witnesses` a client trusts,
/// and requires that at least `quorum` distinct witnesses cosigned it. Returns one cosignature
/// per witness that cosigned, in the order of `witnesses`.
///
/// The note's text must be a checkpoint. Every signature line (verified or not when the note was
/// opened) whose name and key id are a witness's is checked; one that does not verify refuses
/// the note. A witness key of type Ed25519 (0x01) is taken as its
/// [`cosigner`](VerifierKey::cosigner). Several cosignatures by one witness count once; the
/// first in the note is returned.
pub fn verify_cosignatures(
    note: &OpenedNote,
    witnesses: &[VerifierKey],
    quorum: usize,
) -> Result<Vec<Cosignature>, CosignatureError> {
    Checkpoint::parse(note.text())?;
    if quorum == 0 {
        return Err(CosignatureError::ZeroQuorum);
    }
    let mut keys: Vec<VerifierKey> = Vec::with_capacity(witnesses.len());
    for w in witnesses {
        let w = w.cosigner();
        if !keys.contains(&w) {
            keys.push(w);
        }
    }
    // A witness is its public key: the cosigned message does not hold the key's name, so one
    // key given under two names would let one cosignature, copied under the other name, count
    // twice.
    let witness_of =
        |key: &VerifierKey| keys.iter().position(|k| k.public_key() == key.public_key());
    let distinct = (0..keys.len())
        .filter(|&i| witness_of(&keys[i]) == Some(i))
        .count();
    if quorum > distinct {
        return Err(CosignatureError::QuorumTooLarge {
            required: quorum,
            witnesses: distinct,
        });
    }

    let signatures: Vec<&NoteSignature> = note.verified().iter().chain(note.unverified()).collect();
    let mut found: Vec<(usize, Cosignature)> = Vec::new();
    for signature in signatures {
        let (name, id) = (signature.name(), signature.id());
        let Some(key) =
            find_key(&keys, name, id).map_err(|()| CosignatureError::AmbiguousWitness {
                name: name.to_string(),
                id,
            })?
        else {
            continue;
        };
        let invalid = |problem| CosignatureError::InvalidCosignature {
            name: name.to_string(),
            id,
            problem,
        };
        let (timestamp, _) = split_timestamped(signature.bytes())
            .ok_or_else(|| invalid("it is not 8 bytes of timestamp and 64 of signature"))?;
        if timestamp > MAX_TIMESTAMP {
            return Err(invalid("its timestamp is larger than 2^63 - 1"));
        }
        if !key.verify(note.text(), signature.bytes()) {
            return Err(invalid("the signature does not verify"));
        }
        let rank = witness_of(key).unwrap_or(usize::MAX);
        if !found.iter().any(|(r, _)| *r == rank) {
            found.push((
                rank,
                Cosignature {
                    name: name.to_string(),
                    id,
                    timestamp,
                },
            ));
        }
    }
    if found.len() < quorum {
        return Err(CosignatureError::NoQuorum {
            found: found.len(),
            required: quorum,
        });
    }
    found.sort_by_key(|(rank, _)| *rank);
    Ok(found.into_iter().map(|(_, c)| c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::note::{open_note, sign_note};
    use crate::format::hash::Hash;

    const SPEC_BODY: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn key(name: &str, seed: u8) -> SigningKey {
        SigningKey::from_seed(name, SignatureType::Ed25519, &[seed; 32]).unwrap()
    }

    /// The bytes of c2sp.org/tlog-cosignature's example: the signed message, and the layout of
    /// the example's signature line (key id ‖ timestamp ‖ signature).
    #[test]
    fn the_spec_example_message_and_line_layout() {
        assert_eq!(
            cosignature_v1_message(1_679_315_147, SPEC_BODY),
            b"cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        let note = format!(
            "{SPEC_BODY}\n\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
        );
        // Its keys are not published: a made-up log key leaves both lines unverified.
        let e = open_note(&note, &[key("example.com/behind-the-sofa", 1).verifier()]).unwrap_err();
        assert_eq!(
            e,
            crate::checkpoint::NoteError::NoTrustedSignature { unverified: 2 }
        );
        let data = STANDARD
            .decode("jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==")
            .unwrap();
        assert_eq!(data.len(), 4 + 8 + 64);
        assert_eq!(data[..4], [0x8d, 0x66, 0xcf, 0x3f]);
        assert_eq!(split_timestamped(&data[4..]).unwrap().0, 1_679_315_147);
    }

    /// A real checkpoint of a public log (the staging CT log arche2025h1 of transparency.dev),
    /// signed by the log's Ed25519 key and an RFC 6962 key, and cosigned by four witnesses of the
    /// public witness network; one of the witnesses' keys is known. From the tests of
    /// florolf/tlog-scales.
    #[test]
    fn a_real_ct_log_checkpoint_and_a_real_witness_cosignature_verify() {
        let note = "arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n\n\
\u{2014} arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=\n\
\u{2014} arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n\
\u{2014} transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==\n\
\u{2014} witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==\n\
\u{2014} remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==\n\
\u{2014} witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==\n";
        let log: VerifierKey =
            "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f"
                .parse()
                .unwrap();
        let remora: VerifierKey =
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
                .parse()
                .unwrap();

        let opened = open_note(note, std::slice::from_ref(&log)).unwrap();
        assert_eq!(opened.verified().len(), 1);
        assert_eq!(opened.verified()[0].id(), 0xba2f_06c0);
        assert_eq!(
            opened.unverified().len(),
            5,
            "the RFC 6962 signature and 4 witnesses"
        );
        let checkpoint = Checkpoint::parse(opened.text()).unwrap();
        assert_eq!(
            checkpoint.origin(),
            "arche2025h1.staging.ct.transparency.dev"
        );
        assert_eq!(checkpoint.size(), 1_432_088_532);

        let cosignatures = verify_cosignatures(&opened, std::slice::from_ref(&remora), 1).unwrap();
        assert_eq!(cosignatures.len(), 1);
        assert_eq!(cosignatures[0].name(), "remora.n621.de");
        assert_eq!(cosignatures[0].id(), 0xda77_ade7);
        assert_eq!(cosignatures[0].timestamp(), 0x6a12_2120);

        // The witness's key also opens the note: it checks its own line as a cosignature.
        let by_witness = open_note(note, std::slice::from_ref(&remora)).unwrap();
        assert_eq!(by_witness.verified()[0].name(), "remora.n621.de");

        // Two witnesses asked for, one more key known that did not cosign.
        let other = key("witness.example/none", 9).verifier().cosigner();
        assert_eq!(
            verify_cosignatures(&opened, &[remora.clone(), other], 2).unwrap_err(),
            CosignatureError::NoQuorum {
                found: 1,
                required: 2
            }
        );
        assert_eq!(
            verify_cosignatures(&opened, std::slice::from_ref(&remora), 2).unwrap_err(),
            CosignatureError::QuorumTooLarge {
                required: 2,
                witnesses: 1
            }
        );

        // The tree size changed: the log's signature fails, and so would the witness's.
        let forged = note.replacen("1432088532", "1432088533", 1);
        assert!(matches!(
            open_note(&forged, &[log]),
            Err(crate::checkpoint::NoteError::InvalidSignature { .. })
        ));
        assert!(open_note(&forged, &[remora]).is_err());
    }

    /// A real checkpoint of the Go checksum database, signed by its published key (the key the
    /// go command trusts by default); from the tests of transparency-dev/tessera.
    #[test]
    fn a_real_sum_golang_org_checkpoint_verifies() {
        let key: VerifierKey =
            "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
                .parse()
                .unwrap();
        let note = "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n\u{2014} sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n";
        let opened = open_note(note, &[key]).unwrap();
        let checkpoint = Checkpoint::parse(opened.text()).unwrap();
        assert_eq!(checkpoint.origin(), "go.sum database tree");
        assert_eq!(checkpoint.size(), 31_700_353);
    }

    #[test]
    fn a_log_and_witnesses_round_trip_with_a_quorum() {
        let log = key("example.com/log", 1);
        let witnesses = [
            key("w1.example", 2),
            key("w2.example", 3),
            key("w3.example", 4),
        ];
        let trusted: Vec<VerifierKey> = witnesses.iter().map(|w| w.verifier().cosigner()).collect();
        let checkpoint = Checkpoint::new("example.com/log", 42, Hash([7; 32]))
            .unwrap()
            .with_extension("an extension")
            .unwrap();
        let body = checkpoint.to_body();
        let mut note = sign_note(&body, &[&log]).unwrap();
        note.push_str(&cosign(&body, &witnesses[2], 1_700_000_300).unwrap());
        note.push_str(&cosign(&body, &witnesses[0], 1_700_000_100).unwrap());

        let opened = open_note(&note, &[log.verifier()]).unwrap();
        let found = verify_cosignatures(&opened, &trusted, 2).unwrap();
        let summary: Vec<(&str, u64)> = found.iter().map(|c| (c.name(), c.timestamp())).collect();
        assert_eq!(
            summary,
            [("w1.example", 1_700_000_100), ("w3.example", 1_700_000_300)],
            "in the order of the witnesses given"
        );
        assert_eq!(found[0].id(), trusted[0].id());
        assert_eq!(
            verify_cosignatures(&opened, &trusted, 3).unwrap_err(),
            CosignatureError::NoQuorum {
                found: 2,
                required: 3
            }
        );
        assert_eq!(
            verify_cosignatures(&opened, &trusted, 0).unwrap_err(),
            CosignatureError::ZeroQuorum
        );
        // Plain Ed25519 verifier keys of the witnesses are taken as their cosigner keys.
        let plain: Vec<VerifierKey> = witnesses.iter().map(SigningKey::verifier).collect();
        assert_eq!(verify_cosignatures(&opened, &plain, 2).unwrap(), found);
        // A witness's plain key does not take a cosignature for a note signature.
        assert!(matches!(
            open_note(&note, &[witnesses[0].verifier()]),
            Err(crate::checkpoint::NoteError::NoTrustedSignature { unverified: 3 })
        ));
        // Cosignature lines are by 0x04 keys: opened with them, they verify.
        let by_witnesses = open_note(&note, &trusted).unwrap();
        assert_eq!(by_witnesses.verified().len(), 2);
    }

    #[test]
    fn one_witness_key_under_two_names_counts_once() {
        let log = key("example.com/log", 1);
        let (w, alias) = (key("w.example", 2), key("alias.example", 2));
        let body = Checkpoint::new("example.com/log", 1, Hash([1; 32]))
            .unwrap()
            .to_body();
        let mut note = sign_note(&body, &[&log]).unwrap();
        let line = cosign(&body, &w, 100).unwrap();
        note.push_str(&line);
        // The same signature, under the alias's name and id: it verifies with the alias's key.
        let signature = line.rsplit_once(' ').unwrap().1;
        let mut bytes = STANDARD.decode(signature.trim_end()).unwrap();
        bytes[..4].copy_from_slice(&alias.verifier().cosigner().id().to_be_bytes());
        note.push_str("\u{2014} alias.example ");
        note.push_str(&STANDARD.encode(&bytes));
        note.push('\n');
        let opened = open_note(&note, &[log.verifier()]).unwrap();
        let trusted = [w.verifier().cosigner(), alias.verifier().cosigner()];
        assert_eq!(
            verify_cosignatures(&opened, &trusted, 2).unwrap_err(),
            CosignatureError::QuorumTooLarge {
                required: 2,
                witnesses: 1
            }
        );
        assert_eq!(verify_cosignatures(&opened, &trusted, 1).unwrap().len(), 1);
    }

    #[test]
    fn several_cosignatures_by_one_witness_count_once() {
        let log = key("example.com/log", 1);
        let w = key("w.example", 2);
        let body = Checkpoint::new("example.com/log", 1, Hash([1; 32]))
            .unwrap()
            .to_body();
        let mut note = sign_note(&body, &[&log]).unwrap();
        let first = cosign(&body, &w, 100).unwrap();
        note.push_str(&first);
        note.push_str(&cosign(&body, &w, 200).unwrap());
        note.push_str(&first);
        let opened = open_note(&note, &[log.verifier()]).unwrap();
        assert_eq!(
            opened.unverified().len(),
            2,
            "the repeated identical line once"
        );
        let trusted = [
            w.verifier().cosigner(),
            w.verifier(),
            key("x.example", 3).verifier(),
        ];
        let found = verify_cosignatures(&opened, &trusted, 1).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].timestamp(), 100, "the first in the note");
        // The same witness listed as 0x04 and as 0x01 is one witness: two are not there.
        assert_eq!(
            verify_cosignatures(&opened, &trusted, 2).unwrap_err(),
            CosignatureError::NoQuorum {
                found: 1,
                required: 2
            }
        );
    }

    #[test]
    fn a_tampered_cosignature_refuses_the_note() {
        let log = key("example.com/log", 1);
        let w = key("w.example", 2);
        let body = Checkpoint::new("example.com/log", 5, Hash([5; 32]))
            .unwrap()
            .to_body();
        let line = cosign(&body, &w, 1_700_000_000).unwrap();
        let signed = sign_note(&body, &[&log]).unwrap();
        let trusted = [w.verifier().cosigner()];

        // The timestamp changed (its last byte is the 12th of the data: base64 digit 16).
        let data_at = line.rfind(' ').unwrap() + 1;
        let mut later = line.clone().into_bytes();
        later[data_at + 15] = if later[data_at + 15] == b'A' {
            b'B'
        } else {
            b'A'
        };
        let later = String::from_utf8(later).unwrap();
        let opened = open_note(&format!("{signed}{later}"), &[log.verifier()]).unwrap();
        let e = verify_cosignatures(&opened, &trusted, 1).unwrap_err();
        assert_eq!(
            e,
            CosignatureError::InvalidCosignature {
                name: "w.example".to_string(),
                id: trusted[0].id(),
                problem: "the signature does not verify"
            }
        );
        // With a valid cosignature too, the bad one still refuses the note.
        let opened = open_note(&format!("{signed}{line}{later}"), &[log.verifier()]).unwrap();
        assert!(verify_cosignatures(&opened, &trusted, 1).is_err());

        // A cosignature over another extension line, or a truncated one.
        let extended = Checkpoint::parse(&body)
            .unwrap()
            .with_extension("x")
            .unwrap()
            .to_body();
        let signed_ext = sign_note(&extended, &[&log]).unwrap();
        let opened = open_note(&format!("{signed_ext}{line}"), &[log.verifier()]).unwrap();
        assert!(matches!(
            verify_cosignatures(&opened, &trusted, 1),
            Err(CosignatureError::InvalidCosignature { .. })
        ));
        let mut short = STANDARD.decode(line[data_at..].trim_end()).unwrap();
        short.truncate(4 + 8 + 63);
        let short_line = format!("\u{2014} w.example {}\n", STANDARD.encode(&short));
        let opened = open_note(&format!("{signed}{short_line}"), &[log.verifier()]).unwrap();
        assert!(matches!(
            verify_cosignatures(&opened, &trusted, 1),
            Err(CosignatureError::InvalidCosignature { problem, .. }) if problem.contains("8 bytes")
        ));

        // A timestamp past 2^63 - 1, validly signed: refused, and never made.
        let big = u64::MAX;
        let cosigner = w.cosigner();
        let mut data = cosigner.id().to_be_bytes().to_vec();
        data.extend_from_slice(&big.to_be_bytes());
        data.extend_from_slice(&cosigner.sign_ed25519(&cosignature_v1_message(big, &body)));
        let big_line = format!("\u{2014} w.example {}\n", STANDARD.encode(&data));
        let opened = open_note(&format!("{signed}{big_line}"), &[log.verifier()]).unwrap();
        assert!(matches!(
            verify_cosignatures(&opened, &trusted, 1),
            Err(CosignatureError::InvalidCosignature { problem, .. }) if problem.contains("2^63")
        ));
        assert_eq!(
            cosign(&body, &w, 1 << 63).unwrap_err(),
            CosignatureError::TimestampOutOfRange { timestamp: 1 << 63 }
        );
        assert!(cosign(&body, &w, (1 << 63) - 1).is_ok());
    }

    #[test]
    fn only_checkpoints_are_cosigned_or_counted() {
        let log = key("example.com/log", 1);
        let w = key("w.example", 2);
        assert_eq!(
            cosign("hello\n", &w, 1).unwrap_err(),
            CosignatureError::NotACheckpoint(CheckpointError::TooFewLines { lines: 1 })
        );
        assert!(matches!(
            cosign(
                "o\n01\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
                &w,
                1
            ),
            Err(CosignatureError::NotACheckpoint(
                CheckpointError::BadSize { .. }
            ))
        ));
        let signed = sign_note("hello\n", &[&log]).unwrap();
        let opened = open_note(&signed, &[log.verifier()]).unwrap();
        assert!(matches!(
            verify_cosignatures(&opened, &[w.verifier()], 1),
            Err(CosignatureError::NotACheckpoint(_))
        ));
    }

    #[test]
    fn the_cosignature_line_has_the_spec_layout() {
        let w = key("w.example", 2);
        let line = cosign(SPEC_BODY, &w, 1_679_315_147).unwrap();
        let rest = line.strip_prefix("\u{2014} w.example ").unwrap();
        let data = STANDARD.decode(rest.strip_suffix('\n').unwrap()).unwrap();
        assert_eq!(data.len(), 76);
        assert_eq!(data[..4], w.cosigner().id().to_be_bytes());
        assert_eq!(data[4..12], 1_679_315_147u64.to_be_bytes());
        let mut message = b"cosignature/v1\ntime 1679315147\n".to_vec();
        message.extend_from_slice(SPEC_BODY.as_bytes());
        let public = ed25519_dalek::VerifyingKey::from_bytes(w.verifier().public_key()).unwrap();
        let signature = ed25519_dalek::Signature::from_bytes(data[12..].try_into().unwrap());
        assert!(public.verify_strict(&message, &signature).is_ok());
        // A key that is already of type 0x04 cosigns the same bytes.
        assert_eq!(
            cosign(SPEC_BODY, &w.cosigner(), 1_679_315_147).unwrap(),
            line
        );
    }
}
