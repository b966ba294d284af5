//! Signed notes, transparency-log checkpoints and witness cosignatures, with Ed25519 keys, in
//! the formats of the C2SP specifications (c2sp.org/signed-note, c2sp.org/tlog-checkpoint,
//! c2sp.org/tlog-cosignature) and of Go's `golang.org/x/mod/sumdb/note`, so that what this
//! module signs Go's tools open and the other way round. Pure code: no I/O, no threads.
//!
//! # The formats
//!
//! A **signed note** is a text, a blank line, and signature lines ([`sign_note`],
//! [`open_note`]):
//!
//! ```text
//! example.com/log                         the text: what is signed, final newline included;
//! 42                                      no ASCII control character but the newline
//! q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=
//!                                         one blank line
//! — example.com/log <base64(key id ‖ signature)>       "—" is U+2014, then a space
//! — w1.example <base64(key id ‖ signature)>
//! ```
//!
//! A signature is by a **key**: a name (non-empty, no `+`, no space) and an Ed25519 key pair
//! ([`SigningKey`], [`VerifierKey`]). The **key id** is the first 4 bytes, big-endian, of
//! `SHA-256(name ‖ "\n" ‖ signature type ‖ 32-byte public key)`; a signature line's data starts
//! with it. Keys are written `<name>+<8 hex digits of key id>+<base64(type ‖ public key)>`, and,
//! secret, `PRIVATE+KEY+<name>+<key id>+<base64(type ‖ 32-byte seed)>`. The signature type
//! ([`SignatureType`]) is 0x01 for Ed25519 signatures of the note text (64 bytes), 0x04 for
//! cosignatures.
//!
//! A **checkpoint** is a note text that states a log's Merkle tree ([`Checkpoint`]): the log's
//! origin line, the tree size in decimal without leading zeros, the root hash in base64, then
//! optional non-empty extension lines. The log signs it as a note with its Ed25519 key.
//!
//! A **cosignature** is a witness's signature line added to a checkpoint's note ([`cosign`],
//! [`verify_cosignatures`]): with a key id of type 0x04, its data is the key id, a timestamp
//! (u64 big-endian, POSIX seconds) and the Ed25519 signature of
//! `"cosignature/v1\ntime <timestamp>\n" ‖ checkpoint body`.
//!
//! Base64 is always the standard alphabet with padding (RFC 4648, section 4), read strictly.
//!
//! # A log and its witnesses
//!
//! ```
//! use auditring::{Checkpoint, Hash, SigningKey, cosign, open_note, sign_note, verify_cosignatures};
//!
//! let log = SigningKey::generate("example.com/log")?;
//! let witness = SigningKey::generate("witness.example/w1")?;
//!
//! // The log signs its tree head; a witness appends its cosignature line.
//! let body = Checkpoint::new("example.com/log", 42, Hash([7; 32]))?.to_body();
//! let mut note = sign_note(&body, &[&log])?;
//! note.push_str(&cosign(&body, &witness, 1_700_000_000)?);
//!
//! // A client trusts the log's key and the witness's cosigner key.
//! let opened = open_note(&note, &[log.verifier()])?;
//! let checkpoint = Checkpoint::parse(opened.text())?;
//! let cosigned = verify_cosignatures(&opened, &[witness.verifier().cosigner()], 1)?;
//! assert_eq!((checkpoint.size(), cosigned[0].timestamp()), (42, 1_700_000_000));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The tlog-checkpoint body is this module's namesake.
#[allow(clippy::module_inception)]
mod checkpoint;
mod cosignature;
mod key;
mod note;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use cosignature::{Cosignature, CosignatureError, cosign, verify_cosignatures};
pub use key::{KeyError, SignatureType, SigningKey, VerifierKey};
pub use note::{MAX_SIGNATURES, NoteError, NoteSignature, OpenedNote, open_note, sign_note};
