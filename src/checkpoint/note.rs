//! Signed notes (c2sp.org/signed-note): a text, a blank line, and signature lines.
//!
//! ```text
//! <text: lines, each ending in "\n">
//! <blank line: "\n">
//! — <key name> <base64(key id, 4 bytes big-endian ‖ signature)>\n      one or more
//! ```
//!
//! The text is what is signed, its final newline included. Signature lines start with an em dash
//! (U+2014) and a space. The text may contain blank lines: the last `"\n\n"` of a note separates
//! it from the signatures. A note is UTF-8 (a `&str` always is) with no ASCII control character
//! but the newline.
//!
//! Opening a note follows Go's `note.Open` (`golang.org/x/mod/sumdb/note`) and the spec:
//!
//! * a signature by a key not in the trusted list (its name and key id, taken together, match no
//!   trusted key) is kept as unverified and is no error; a repeated identical one is kept once;
//! * a signature by a trusted key must verify, or the whole note is refused;
//! * at least one signature by a trusted key must verify;
//! * more than [`MAX_SIGNATURES`] signature lines (repeats counted) refuse the note, as Go does.
//!
//! Two rules are stricter than Go's: base64 must be canonical (the unused bits of the last digit
//! zero, as every encoder writes them), and every distinct signature line by a trusted key is
//! verified, where Go checks only the first one of each key and skips the others.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::key::{SignatureType, SigningKey, VerifierKey, name_problem};

/// The most signature lines a note may have, repeats counted: Go's `note.Open` refuses a note
/// with more (the spec asks verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// What starts a signature line: an em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A note could not be signed or opened: what is wrong, and on which line (counted from 1 over
/// the whole signed note) or for which key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NoteError {
    /// The text to sign is empty or does not end in a newline.
    #[error("the note text does not end in a newline")]
    TextNotTerminated,
    /// The note contains an ASCII control character other than the newline.
    #[error(
        "line {line} contains the control character U+{code:04X}; a note may contain none but the newline"
    )]
    ControlCharacter {
        /// The line, from 1.
        line: usize,
        /// The character's code point.
        code: u32,
    },
    /// No signer was given.
    #[error("no signer was given: a signed note has at least one signature")]
    NoSigners,
    /// A key of another signature type was asked to sign a note.
    #[error(
        "the key {name}+{id:08x} is a {signature_type} key; only Ed25519 (0x01) keys sign notes (cosign checkpoints with the others)"
    )]
    NotANoteKey {
        /// The key name.
        name: String,
        /// The key id.
        id: u32,
        /// The key's type.
        signature_type: SignatureType,
    },
    /// No blank line separates the text from signature lines.
    #[error("the note has no blank line before its signature lines")]
    NoBlankLine,
    /// Nothing follows the last blank line.
    #[error("the note has no signature line after its last blank line (line {line})")]
    NoSignatures {
        /// The blank line's number.
        line: usize,
    },
    /// The last signature line does not end in a newline.
    #[error("the last line ({line}) does not end in a newline")]
    LastLineNotTerminated {
        /// The line's number.
        line: usize,
    },
    /// A line after the last blank line is not a well-formed signature line.
    #[error("line {line} is not a signature line: {problem}")]
    MalformedSignature {
        /// The line's number.
        line: usize,
        /// What is wrong with it.
        problem: String,
    },
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("the note has more than {max} signature lines (line {line} is one too many)")]
    TooManySignatures {
        /// The limit.
        max: usize,
        /// The first line past the limit.
        line: usize,
    },
    /// Two different trusted keys have the same name and key id, and a signature names them.
    #[error("line {line} is signed by {name}+{id:08x}, which names two different trusted keys")]
    AmbiguousKey {
        /// The line's number.
        line: usize,
        /// The key name.
        name: String,
        /// The key id.
        id: u32,
    },
    /// A signature by a trusted key does not verify.
    #[error("line {line}: the signature by the trusted key {name}+{id:08x} does not verify")]
    InvalidSignature {
        /// The line's number.
        line: usize,
        /// The key name.
        name: String,
        /// The key id.
        id: u32,
    },
    /// No signature is by a trusted key.
    #[error("no signature is by a trusted key ({unverified} by unknown keys)")]
    NoTrustedSignature {
        /// How many distinct signatures by unknown keys the note has.
        unverified: usize,
    },
}

/// One signature of a note: who made it (key name and key id) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    name: String,
    id: u32,
    bytes: Vec<u8>,
}

impl NoteSignature {
    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The signature: the bytes after the key id (64 for Ed25519, 72 for a cosignature/v1).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signature line, `— <name> <base64(key id ‖ signature)>` and its newline.
    pub fn to_line(&self) -> String {
        let mut data = Vec::with_capacity(4 + self.bytes.len());
        data.extend_from_slice(&self.id.to_be_bytes());
        data.extend_from_slice(&self.bytes);
        format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(data)
        )
    }
}

/// A note whose signatures were checked: its text, the signatures that trusted keys verified
/// (at least one), and those by keys that are not trusted, in the note's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    text: String,
    verified: Vec<NoteSignature>,
    unverified: Vec<NoteSignature>,
}

impl OpenedNote {
    /// The text that was signed, its final newline included.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signatures by trusted keys, each of which verified; one per key.
    pub fn verified(&self) -> &[NoteSignature] {
        &self.verified
    }

    /// The signatures by keys that are not trusted, not checked; repeated identical lines once.
    pub fn unverified(&self) -> &[NoteSignature] {
        &self.unverified
    }
}

/// Signs `text` with each signer and returns the signed note: the text, a blank line, and one
/// signature line per signer in the order given (a signer given twice signs once).
///
/// The text must end in a newline and contain no control character but the newline; each
/// signer must be an Ed25519 (0x01) key. Ed25519 is deterministic: the same text and keys give
/// the same bytes, the same Go's `note.Sign` gives.
pub fn sign_note(text: &str, signers: &[&SigningKey]) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::TextNotTerminated);
    }
    check_control_characters(text)?;
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    let mut signed: Vec<NoteSignature> = Vec::with_capacity(signers.len());
    for key in signers {
        if key.signature_type() != SignatureType::Ed25519 {
            return Err(NoteError::NotANoteKey {
                name: key.name().to_string(),
                id: key.id(),
                signature_type: key.signature_type(),
            });
        }
        if signed
            .iter()
            .any(|s| s.name == key.name() && s.id == key.id())
        {
            continue;
        }
        if signed.len() == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
                line: text.matches('\n').count() + 2 + MAX_SIGNATURES,
            });
        }
        signed.push(NoteSignature {
            name: key.name().to_string(),
            id: key.id(),
            bytes: key.sign_ed25519(text.as_bytes()).to_vec(),
        });
    }
    let mut note = String::with_capacity(text.len() + 1 + signed.len() * 100);
    note.push_str(text);
    note.push('\n');
    for s in &signed {
        note.push_str(&s.to_line());
    }
    Ok(note)
}

/// Opens a signed note: checks its form and the signature of every line by a `trusted` key, and
/// returns the text with the verified and the unverified signatures.
///
/// A trusted key matches a signature line by its name and key id together; a key of type
/// cosignature/v1 (0x04) checks the line as a timestamped cosignature of the text. For a
/// checkpoint, trust the log's key here, then count witnesses with
/// [`verify_cosignatures`](super::verify_cosignatures).
pub fn open_note(signed: &str, trusted: &[VerifierKey]) -> Result<OpenedNote, NoteError> {
    check_control_characters(signed)?;
    let split = signed.rfind("\n\n").ok_or(NoteError::NoBlankLine)?;
    let text = &signed[..=split];
    let block = &signed[split + 2..];
    // Lines are numbered from 1; the blank line is the one after the text's last.
    let blank_line = text.matches('\n').count() + 1;
    if block.is_empty() {
        return Err(NoteError::NoSignatures { line: blank_line });
    }
    let Some(block) = block.strip_suffix('\n') else {
        return Err(NoteError::LastLineNotTerminated {
            line: blank_line + block.matches('\n').count() + 1,
        });
    };

    let mut verified: Vec<NoteSignature> = Vec::new();
    let mut unverified: Vec<NoteSignature> = Vec::new();
    // The distinct lines by trusted keys that verified, so that a repeat is not checked again.
    let mut verified_lines: Vec<&str> = Vec::new();
    for (n, line) in block.split('\n').enumerate() {
        let line_number = blank_line + 1 + n;
        if n == MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                max: MAX_SIGNATURES,
                line: line_number,
            });
        }
        let signature = parse_line(line).map_err(|problem| NoteError::MalformedSignature {
            line: line_number,
            problem,
        })?;
        let Some(key) = find_key(trusted, &signature.name, signature.id).map_err(|()| {
            NoteError::AmbiguousKey {
                line: line_number,
                name: signature.name.clone(),
                id: signature.id,
            }
        })?
        else {
            if !unverified.contains(&signature) {
                unverified.push(signature);
            }
            continue;
        };
        if verified_lines.contains(&line) {
            continue;
        }
        if !key.verify(text, &signature.bytes) {
            return Err(NoteError::InvalidSignature {
                line: line_number,
                name: signature.name,
                id: signature.id,
            });
        }
        verified_lines.push(line);
        if !verified
            .iter()
            .any(|s| s.name == signature.name && s.id == signature.id)
        {
            verified.push(signature);
        }
    }
    if verified.is_empty() {
        return Err(NoteError::NoTrustedSignature {
            unverified: unverified.len(),
        });
    }
    Ok(OpenedNote {
        text: text.to_string(),
        verified,
        unverified,
    })
}

/// The trusted key of this name and id: `Ok(None)` if there is none, `Err` if two different
/// keys share them (the same key listed twice is one key).
pub(crate) fn find_key<'a>(
    keys: &'a [VerifierKey],
    name: &str,
    id: u32,
) -> Result<Option<&'a VerifierKey>, ()> {
    let mut found: Option<&VerifierKey> = None;
    for key in keys.iter().filter(|k| k.id() == id && k.name() == name) {
        match found {
            Some(first) if first != key => return Err(()),
            _ => found = Some(key),
        }
    }
    Ok(found)
}

/// Reads one signature line (without its newline), or says what is wrong with it.
fn parse_line(line: &str) -> Result<NoteSignature, String> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or_else(|| "it does not start with an em dash (U+2014) and a space".to_string())?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| "no space separates the key name from the signature".to_string())?;
    if let Some(problem) = name_problem(name) {
        return Err(format!("the key name is invalid: {problem}"));
    }
    let data = STANDARD
        .decode(encoded)
        .map_err(|_| format!("the signature by {name} is not standard base64 with padding"))?;
    if data.len() < 5 {
        return Err(format!(
            "the signature by {name} is {} bytes; a key id and a signature take at least 5",
            data.len()
        ));
    }
    let (id, bytes) = data.split_at(4);
    Ok(NoteSignature {
        name: name.to_string(),
        id: u32::from_be_bytes([id[0], id[1], id[2], id[3]]),
        bytes: bytes.to_vec(),
    })
}

/// `Err` at the first ASCII control character other than the newline.
fn check_control_characters(s: &str) -> Result<(), NoteError> {
    match s.bytes().position(|b| b < 0x20 && b != b'\n') {
        None => Ok(()),
        Some(at) => Err(NoteError::ControlCharacter {
            line: s[..at].matches('\n').count() + 1,
            code: u32::from(s.as_bytes()[at]),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Go's sumdb/note tests: keys, text and signature lines.
    const PETER_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VERIFIER: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VERIFIER: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                        then you don't know what your problem is.\n";
    const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    fn peter() -> VerifierKey {
        PETER_VERIFIER.parse().unwrap()
    }

    fn enoch() -> VerifierKey {
        ENOCH_VERIFIER.parse().unwrap()
    }

    /// Go's `TestSign`: the exact bytes of Go's signed note.
    #[test]
    fn go_sign_is_reproduced_byte_for_byte() {
        let signer: SigningKey = PETER_SIGNER.parse().unwrap();
        let signed = sign_note(TEXT, &[&signer]).unwrap();
        assert_eq!(signed, format!("{TEXT}\n{PETER_SIG}"));
        // A signer given twice signs once.
        assert_eq!(sign_note(TEXT, &[&signer, &signer]).unwrap(), signed);
    }

    /// Go's `TestOpen`: one signature verified and one unknown, both verified, none.
    #[test]
    fn go_notes_open_with_one_or_both_keys() {
        let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let opened = open_note(&msg, &[peter()]).unwrap();
        assert_eq!(opened.text(), TEXT);
        assert_eq!(opened.verified().len(), 1);
        assert_eq!(
            (opened.verified()[0].name(), opened.verified()[0].id()),
            ("PeterNeumann", 0xc74f_20a3)
        );
        assert_eq!(opened.verified()[0].bytes().len(), 64);
        assert_eq!(opened.verified()[0].to_line(), PETER_SIG);
        assert_eq!(opened.unverified().len(), 1);
        assert_eq!(opened.unverified()[0].to_line(), ENOCH_SIG);

        let both = open_note(&msg, &[peter(), enoch()]).unwrap();
        assert_eq!(both.verified().len(), 2);
        assert_eq!(both.verified()[1].name(), "EnochRoot");
        assert!(both.unverified().is_empty());

        assert_eq!(
            open_note(&msg, &[]).unwrap_err(),
            NoteError::NoTrustedSignature { unverified: 2 }
        );
    }

    /// The example of c2sp.org/signed-note.
    #[test]
    fn the_c2sp_example_note_opens() {
        let key: VerifierKey =
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
                .parse()
                .unwrap();
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let opened = open_note(note, &[key]).unwrap();
        assert_eq!(opened.text(), "This is an example message.\n");
    }

    /// Go's `TestOpen`: duplicated known and unknown signatures; a repeat of a bad line by an
    /// unknown key is a different signature and is kept.
    #[test]
    fn repeated_signatures_are_kept_once() {
        let bad_enoch = format!("{}ABCD{}", &ENOCH_SIG[..60], &ENOCH_SIG[60..]);
        let msg = format!("{TEXT}\n{PETER_SIG}{PETER_SIG}{ENOCH_SIG}{ENOCH_SIG}{bad_enoch}");
        let opened = open_note(&msg, &[peter()]).unwrap();
        assert_eq!(opened.verified().len(), 1);
        assert_eq!(opened.unverified().len(), 2);
        assert_eq!(opened.unverified()[0].to_line(), ENOCH_SIG);
        assert_eq!(opened.unverified()[1].to_line(), bad_enoch);
        // The same key listed twice among the trusted is one key.
        assert!(open_note(&msg, &[peter(), peter()]).is_ok());
    }

    /// Go's `TestOpen`: 101 signature lines are too many, even identical ones and even with no
    /// trusted key; 100 are not.
    #[test]
    fn more_than_100_signature_lines_are_refused() {
        let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(101));
        for trusted in [vec![peter()], vec![]] {
            assert_eq!(
                open_note(&msg, &trusted).unwrap_err(),
                NoteError::TooManySignatures {
                    max: 100,
                    line: 104
                }
            );
        }
        let msg = format!("{TEXT}\n{}", PETER_SIG.repeat(100));
        assert_eq!(open_note(&msg, &[peter()]).unwrap().verified().len(), 1);
    }

    /// Go's `TestOpen`: a signature by a known key that does not verify refuses the note.
    #[test]
    fn a_bad_signature_by_a_trusted_key_is_an_error() {
        let bad = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        let msg = format!("{TEXT}\n{bad}");
        let e = open_note(&msg, &[peter()]).unwrap_err();
        assert_eq!(
            e,
            NoteError::InvalidSignature {
                line: 4,
                name: "PeterNeumann".to_string(),
                id: 0xc74f_20a3
            }
        );
        assert_eq!(
            e.to_string(),
            "line 4: the signature by the trusted key PeterNeumann+c74f20a3 does not verify"
        );
        // Also after a good one by the same key (Go skips it; the spec says to verify it).
        let msg = format!("{TEXT}\n{PETER_SIG}{bad}");
        assert!(matches!(
            open_note(&msg, &[peter()]),
            Err(NoteError::InvalidSignature { line: 5, .. })
        ));
    }

    #[test]
    fn a_modified_text_or_signature_does_not_verify() {
        let msg = format!("{TEXT}\n{PETER_SIG}");
        let changed_text = msg.replacen("answer", "Answer", 1);
        assert!(matches!(
            open_note(&changed_text, &[peter()]),
            Err(NoteError::InvalidSignature { line: 4, .. })
        ));
        // Each base64 digit of the signature changed in turn (the key id digits excepted: the
        // line is then by an unknown key).
        let start = msg.find("x08go/").unwrap();
        let digits: Vec<usize> = (start + 8..msg.len() - 2).collect();
        for at in digits {
            let mut bytes = msg.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(bytes).unwrap();
            assert!(open_note(&tampered, &[peter()]).is_err(), "digit {at}");
        }
    }

    /// The spec: a signature whose name or key id (not both) matches a trusted key is by an
    /// unknown key, and ignored.
    #[test]
    fn the_right_name_with_a_wrong_key_id_is_an_unknown_key() {
        let wrong_id = PETER_SIG.replacen("x08g", "xxxx", 1);
        let msg = format!("{TEXT}\n{wrong_id}{PETER_SIG}");
        let opened = open_note(&msg, &[peter()]).unwrap();
        assert_eq!(opened.unverified().len(), 1);
        assert_eq!(opened.unverified()[0].name(), "PeterNeumann");
        assert_ne!(opened.unverified()[0].id(), 0xc74f_20a3);
        let alone = format!("{TEXT}\n{wrong_id}");
        assert_eq!(
            open_note(&alone, &[peter()]).unwrap_err(),
            NoteError::NoTrustedSignature { unverified: 1 }
        );
        // Peter's key id under another name: unknown too.
        let renamed = PETER_SIG.replacen("PeterNeumann", "CarmenSandiego", 1);
        assert!(matches!(
            open_note(&format!("{TEXT}\n{renamed}"), &[peter()]),
            Err(NoteError::NoTrustedSignature { unverified: 1 })
        ));
    }

    /// A log that rotates its key signs with the old and the new one; a client that trusts
    /// either opens the note.
    #[test]
    fn a_note_signed_by_an_old_and_a_new_key_opens_with_either() {
        let old =
            SigningKey::from_seed("example.com/log", SignatureType::Ed25519, &[1; 32]).unwrap();
        let new =
            SigningKey::from_seed("example.com/log", SignatureType::Ed25519, &[2; 32]).unwrap();
        assert_ne!(old.id(), new.id(), "the same name, two key ids");
        let text = "example.com/log\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let signed = sign_note(text, &[&old, &new]).unwrap();
        for trusted in [vec![old.verifier()], vec![new.verifier()]] {
            let opened = open_note(&signed, &trusted).unwrap();
            assert_eq!(opened.text(), text);
            assert_eq!(opened.verified().len(), 1);
            assert_eq!(opened.unverified().len(), 1);
        }
        let opened = open_note(&signed, &[new.verifier(), old.verifier()]).unwrap();
        assert_eq!(opened.verified().len(), 2);
        assert_eq!(opened.verified()[0].id(), old.id(), "in the note's order");
    }

    #[test]
    fn two_different_trusted_keys_with_one_name_and_id_are_ambiguous() {
        // Another public key under Peter's name and key id (a 32-bit collision, made by hand).
        let twin = VerifierKey::with_any_id("PeterNeumann", 0xc74f_20a3, enoch().public_key());
        assert_ne!(twin, peter());
        let msg = format!("{TEXT}\n{PETER_SIG}");
        assert_eq!(
            open_note(&msg, &[peter(), twin.clone()]).unwrap_err(),
            NoteError::AmbiguousKey {
                line: 4,
                name: "PeterNeumann".to_string(),
                id: 0xc74f_20a3
            }
        );
        // Not named by any line: no error, as in Go.
        let msg = format!("{TEXT}\n{ENOCH_SIG}");
        assert!(open_note(&msg, &[peter(), twin, enoch()]).is_ok());
    }

    /// Go's `TestOpen`'s malformed notes, and more.
    #[test]
    fn malformed_notes_are_refused_with_the_line() {
        let err = |m: &str| open_note(m, &[peter()]).unwrap_err();
        assert_eq!(err(TEXT), NoteError::NoBlankLine);
        assert_eq!(
            err(&format!("{TEXT}\n")),
            NoteError::NoSignatures { line: 3 }
        );
        assert_eq!(
            err(&format!("{TEXT}\n{}", PETER_SIG.trim_end())),
            NoteError::LastLineNotTerminated { line: 4 }
        );
        assert_eq!(
            err(&format!("\x01{TEXT}\n{PETER_SIG}")),
            NoteError::ControlCharacter { line: 1, code: 1 }
        );
        assert_eq!(
            err(&format!("{TEXT}\n{}", PETER_SIG.replace('\n', "\r\n"))),
            NoteError::ControlCharacter {
                line: 4,
                code: 0x0d
            }
        );
        assert!(matches!(
            err(&format!(
                "{TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            )),
            NoteError::MalformedSignature { line: 4, .. }
        ));
        assert!(matches!(
            err(&format!("{TEXT}\n{PETER_SIG}Unexpected line.\n")),
            NoteError::MalformedSignature { line: 5, problem } if problem.contains("em dash")
        ));
        // Signature lines straight after the text, with no blank line.
        assert_eq!(err(&format!("{TEXT}{PETER_SIG}")), NoteError::NoBlankLine);
        // A hyphen or an en dash for the em dash; no space after it; two spaces.
        for line in [
            PETER_SIG.replacen('\u{2014}', "-", 1),
            PETER_SIG.replacen('\u{2014}', "\u{2013}", 1),
            PETER_SIG.replacen("\u{2014} ", "\u{2014}", 1),
            PETER_SIG.replacen(' ', "  ", 1),
            PETER_SIG.replacen("Neumann ", "Neumann", 1),
            "\u{2014} PeterNeumann \n".to_string(),
            "\u{2014}  x08go/ZJkuBS9UG/Sffc=\n".to_string(),
            "\u{2014} PeterNeumann AAAA\n".to_string(),
            "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n".to_string(),
            "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAN=\n".to_string(),
            "\u{2014} PeterNeumann x08go_ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n".to_string(),
        ] {
            let e = err(&format!("{TEXT}\n{line}"));
            assert!(matches!(e, NoteError::MalformedSignature { line: 4, .. }), "{line:?}: {e:?}");
        }
    }

    #[test]
    fn sign_note_refuses_what_open_note_would() {
        let signer: SigningKey = PETER_SIGNER.parse().unwrap();
        assert_eq!(
            sign_note("abc", &[&signer]).unwrap_err(),
            NoteError::TextNotTerminated
        );
        assert_eq!(
            sign_note("", &[&signer]).unwrap_err(),
            NoteError::TextNotTerminated
        );
        assert_eq!(
            sign_note("a\r\nb\n", &[&signer]).unwrap_err(),
            NoteError::ControlCharacter {
                line: 1,
                code: 0x0d
            }
        );
        assert_eq!(
            sign_note("a\nb\tc\n", &[&signer]).unwrap_err(),
            NoteError::ControlCharacter { line: 2, code: 9 }
        );
        assert_eq!(sign_note(TEXT, &[]).unwrap_err(), NoteError::NoSigners);
        assert!(matches!(
            sign_note(TEXT, &[&signer.cosigner()]),
            Err(NoteError::NotANoteKey { .. })
        ));
        let many: Vec<SigningKey> = (0..=MAX_SIGNATURES)
            .map(|i| {
                SigningKey::from_seed(&format!("k{i}"), SignatureType::Ed25519, &[7; 32]).unwrap()
            })
            .collect();
        let refs: Vec<&SigningKey> = many.iter().collect();
        assert!(matches!(
            sign_note(TEXT, &refs),
            Err(NoteError::TooManySignatures { max: 100, .. })
        ));
        assert!(
            open_note(
                &sign_note(TEXT, &refs[..100]).unwrap(),
                &[many[99].verifier()]
            )
            .is_ok()
        );
    }

    /// Texts with blank lines, a text that is one blank line, a text that looks like a
    /// signature block, and odd Unicode: what is signed is what is opened.
    #[test]
    fn any_text_round_trips() {
        let key = SigningKey::from_seed("例え.jp/ログ", SignatureType::Ed25519, &[3; 32]).unwrap();
        for text in [
            "\n",
            "\n\n\n",
            "a\n\nb\n\n",
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n",
            "a\n\n\u{2014} PeterNeumann x08go/ZJkuBS9UG/Sffc=\n",
            "\u{feff}bom\u{200b}zero width\u{2028}line separator\u{85}next line\u{7f}del\n",
            "\u{202e}right-to-left override \u{1f600}\n",
        ] {
            let signed = sign_note(text, &[&key]).unwrap();
            let opened = open_note(&signed, &[key.verifier()]).unwrap();
            assert_eq!(opened.text(), text);
            assert_eq!(opened.verified()[0].name(), "例え.jp/ログ");
        }
    }

    /// Nothing panics on hostile input: every prefix of a valid note, every character replaced
    /// by odd ones, large inputs.
    #[test]
    fn hostile_input_never_panics() {
        let msg = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
        let trusted = [peter(), enoch()];
        for (at, _) in msg.char_indices() {
            let _ = open_note(&msg[..at], &trusted);
            for odd in [
                "",
                "\n",
                "\n\n",
                "\u{2014}",
                " ",
                "+",
                "=",
                "\u{0}",
                "\u{10ffff}",
                "\u{2014} x AAAAAAA=\n",
            ] {
                let mut m = msg.clone();
                let end = at + m[at..].chars().next().map_or(0, char::len_utf8);
                m.replace_range(at..end, odd);
                let _ = open_note(&m, &trusted);
            }
        }
        // A megabyte of text without a blank line; one huge signature line; a huge key name.
        let big = "x".repeat(1 << 20);
        assert_eq!(
            open_note(&big, &trusted).unwrap_err(),
            NoteError::NoBlankLine
        );
        let huge_line = format!("{TEXT}\n\u{2014} n {}\n", "A".repeat(1 << 20));
        assert!(matches!(
            open_note(&huge_line, &trusted),
            Err(NoteError::NoTrustedSignature { unverified: 1 })
        ));
        let huge_name = format!("{TEXT}\n\u{2014} {} AAAAAAA=\n", "n".repeat(1 << 20));
        assert!(open_note(&huge_name, &trusted).is_err());
        let dashes = format!("{TEXT}\n{}\n", "\u{2014}".repeat(1 << 18));
        assert!(matches!(
            open_note(&dashes, &trusted),
            Err(NoteError::MalformedSignature { line: 4, .. })
        ));
    }
}
