//! Keys: a name and an Ed25519 key, their key ids, their text encodings, and the bytes of the two
//! kinds of signature they make.
//!
//! A key is named; its **key id** is the first four bytes, big-endian, of
//! `SHA-256(name ‖ 0x0A ‖ signature type ‖ 32-byte public key)`. The signature type is one byte:
//!
//! * `0x01`, [`SignatureType::Ed25519`]: the signature is Ed25519 (RFC 8032) over the note text,
//!   64 bytes;
//! * `0x04`, [`SignatureType::CosignatureV1`]: the signature is a u64 timestamp (POSIX seconds,
//!   big-endian, at most 2^63 - 1) followed by the 64-byte Ed25519 signature of
//!   `"cosignature/v1\ntime <timestamp in decimal>\n" ‖ note text` (c2sp.org/tlog-cosignature).
//!
//! The same Ed25519 key therefore has one id per type, and a signature of one type never passes
//! for the other.
//!
//! Keys are written as text the way Go's `golang.org/x/mod/sumdb/note` writes them:
//!
//! ```text
//! <name>+<key id, 8 hex digits>+<base64(type ‖ 32-byte public key)>                verifier key
//! PRIVATE+KEY+<name>+<key id, 8 hex digits>+<base64(type ‖ 32-byte seed)>         signer key
//! ```
//!
//! A name is non-empty and contains no `+`, no Unicode white space and no ASCII control
//! character.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, Verifier as _};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::format::hex;

/// The literal that starts a signer key's text, so that it is never taken for a verifier key.
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// The largest timestamp a cosignature may carry: 2^63 - 1 (c2sp.org/tlog-cosignature).
pub(crate) const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// What a key's signatures are: the signature type byte of its key id and of its key text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureType {
    /// `0x01`: an Ed25519 signature of the note text (c2sp.org/signed-note). A log signs its
    /// checkpoints with this type.
    Ed25519,
    /// `0x04`: a timestamped Ed25519 cosignature of a checkpoint (c2sp.org/tlog-cosignature,
    /// `cosignature/v1`). A witness cosigns with this type.
    CosignatureV1,
}

impl SignatureType {
    /// The type's identifier byte.
    pub const fn byte(self) -> u8 {
        match self {
            SignatureType::Ed25519 => 0x01,
            SignatureType::CosignatureV1 => 0x04,
        }
    }

    /// The type with this identifier byte, if it is one of the two this module implements.
    pub const fn from_byte(byte: u8) -> Option<SignatureType> {
        match byte {
            0x01 => Some(SignatureType::Ed25519),
            0x04 => Some(SignatureType::CosignatureV1),
            _ => None,
        }
    }
}

impl fmt::Display for SignatureType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureType::Ed25519 => f.write_str("Ed25519 (0x01)"),
            SignatureType::CosignatureV1 => f.write_str("cosignature/v1 (0x04)"),
        }
    }
}

/// A key's name or text is not what the signed-note format allows, or a new key could not be
/// made. No message repeats the secret part of a signer key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key name breaks the rules: empty, or with a `+`, a space or a control character.
    #[error("the key name {name:?} is invalid: {problem}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The text is not `<name>+<key id>+<key data>` (a signer key: with `PRIVATE+KEY+` before).
    #[error("the key text has no {missing}: a key is written <name>+<8 hex digits>+<base64>")]
    MissingPart {
        /// The part that is missing.
        missing: &'static str,
    },
    /// A signer key's text does not start with `PRIVATE+KEY+`.
    #[error("a signer key starts with PRIVATE+KEY+; this text does not")]
    NotASignerKey,
    /// A signer key's text was given where a verifier key was expected.
    #[error(
        "this is a signer key (it starts with PRIVATE+KEY+), which must stay secret; a verifier key was expected"
    )]
    NotAVerifierKey,
    /// The key id part is not 8 hex digits.
    #[error("the key id of {name:?} is {text:?}, not 8 hex digits")]
    BadKeyId {
        /// The key name.
        name: String,
        /// The key id part as written (at most its first 16 characters).
        text: String,
    },
    /// The key data part is not standard base64 with padding.
    #[error("the key data of {name:?} is not standard base64 with padding")]
    NotBase64 {
        /// The key name.
        name: String,
    },
    /// The key data names a signature type this module does not implement.
    #[error(
        "the key data of {name:?} has signature type 0x{byte:02x}; only 0x01 (Ed25519) and 0x04 (cosignature/v1) are supported"
    )]
    UnknownType {
        /// The key name.
        name: String,
        /// The type byte.
        byte: u8,
    },
    /// The key material after the type byte is not 32 bytes.
    #[error(
        "the key data of {name:?} holds {len} bytes of key after the type byte; Ed25519 needs 32"
    )]
    WrongLength {
        /// The key name.
        name: String,
        /// How many bytes it holds (0 when even the type byte is missing).
        len: usize,
    },
    /// The key id written does not match the name, type and key.
    #[error(
        "the key id of {name:?} is written {written:08x} but its name, type and key give {computed:08x}"
    )]
    KeyIdMismatch {
        /// The key name.
        name: String,
        /// The key id written in the text.
        written: u32,
        /// The key id the name, type and public key give.
        computed: u32,
    },
    /// The 32 bytes of a verifier key are not the encoding of a point of Ed25519.
    #[error("the public key of {name:?} is not a valid Ed25519 public key")]
    InvalidPublicKey {
        /// The key name.
        name: String,
    },
    /// The operating system gave no random bytes for a new key.
    #[error("could not get 32 random bytes for a new key: {0}")]
    Random(String),
}

/// A verifier key: a name, a signature type and an Ed25519 public key, which check the signatures
/// of one signer. Its text is `<name>+<key id>+<base64(type ‖ public key)>` ([`Display`] and
/// [`FromStr`]), the form Go's `note.NewVerifier` reads.
///
/// [`Display`]: fmt::Display
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VerifierKey {
    name: String,
    signature_type: SignatureType,
    id: u32,
    public: ed25519_dalek::VerifyingKey,
}

impl VerifierKey {
    /// The verifier key of `name` and a 32-byte Ed25519 public key, for signatures of `signature_type`.
    pub fn new(
        name: &str,
        signature_type: SignatureType,
        public_key: &[u8; 32],
    ) -> Result<VerifierKey, KeyError> {
        check_name(name)?;
        let public = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|_| {
            KeyError::InvalidPublicKey {
                name: name.to_string(),
            }
        })?;
        Ok(VerifierKey {
            name: name.to_string(),
            signature_type,
            id: key_id(name, signature_type, public_key),
            public,
        })
    }

    /// Reads a verifier key's text, `<name>+<key id>+<base64(type ‖ public key)>`. The key id
    /// must match (hex digits of either case are read), the type be 0x01 or 0x04, the public key
    /// 32 bytes and a point of Ed25519.
    pub fn parse(text: &str) -> Result<VerifierKey, KeyError> {
        if text.starts_with(PRIVATE_PREFIX) {
            return Err(KeyError::NotAVerifierKey);
        }
        let (name, written, data) = split_key_text(text)?;
        let raw = STANDARD.decode(data).map_err(|_| KeyError::NotBase64 {
            name: name.to_string(),
        })?;
        let (signature_type, public_key) = type_and_key(name, &raw)?;
        let key = VerifierKey::new(name, signature_type, public_key)?;
        if key.id != written {
            return Err(KeyError::KeyIdMismatch {
                name: name.to_string(),
                written,
                computed: key.id,
            });
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type of signature this key checks.
    pub fn signature_type(&self) -> SignatureType {
        self.signature_type
    }

    /// The key id: the first 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ type ‖ public key).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> &[u8; 32] {
        self.public.as_bytes()
    }

    /// The same name and public key as a witness's key: type `cosignature/v1` (0x04), with the
    /// key id of that type. A key that is already of that type is returned as it is.
    #[must_use]
    pub fn cosigner(&self) -> VerifierKey {
        self.with_type(SignatureType::CosignatureV1)
    }

    /// This key with another signature type, and so another key id.
    fn with_type(&self, signature_type: SignatureType) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            signature_type,
            id: key_id(&self.name, signature_type, self.public.as_bytes()),
            public: self.public,
        }
    }

    /// A key with any key id, for tests of what a collision of key ids does.
    #[cfg(test)]
    pub(crate) fn with_any_id(name: &str, id: u32, public_key: &[u8; 32]) -> VerifierKey {
        VerifierKey {
            name: name.to_string(),
            signature_type: SignatureType::Ed25519,
            id,
            public: ed25519_dalek::VerifyingKey::from_bytes(public_key).unwrap(),
        }
    }

    /// Whether `signature` (the bytes after the key id) is this key's signature of `text`, by the
    /// rules of the key's type. A cosignature whose timestamp exceeds 2^63 - 1 is not valid.
    pub(crate) fn verify(&self, text: &str, signature: &[u8]) -> bool {
        match self.signature_type {
            SignatureType::Ed25519 => verify_ed25519(&self.public, text.as_bytes(), signature),
            SignatureType::CosignatureV1 => match split_timestamped(signature) {
                Some((timestamp, signature)) if timestamp <= MAX_TIMESTAMP => verify_ed25519(
                    &self.public,
                    &cosignature_v1_message(timestamp, text),
                    signature,
                ),
                _ => false,
            },
        }
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut data = Vec::with_capacity(33);
        data.push(self.signature_type.byte());
        data.extend_from_slice(self.public.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, STANDARD.encode(data))
    }
}

impl fmt::Debug for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("VerifierKey")
            .field(&self.to_string())
            .finish()
    }
}

impl FromStr for VerifierKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VerifierKey::parse(s)
    }
}

/// A signer key: a name, a signature type and an Ed25519 secret key. It signs notes
/// ([`sign_note`](super::sign_note)) and cosigns checkpoints ([`cosign`](super::cosign)).
///
/// Its text, `PRIVATE+KEY+<name>+<key id>+<base64(type ‖ 32-byte seed)>`, is secret: it is read
/// by [`FromStr`] and written only by [`SigningKey::expose_secret`]; [`Debug`](fmt::Debug) shows
/// the name, type and key id, never the secret. The secret is wiped from memory when the key is
/// dropped.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    signature_type: SignatureType,
    id: u32,
    /// ed25519-dalek's key, which wipes itself on drop.
    secret: ed25519_dalek::SigningKey,
}

impl SigningKey {
    /// A new random Ed25519 key named `name`, for signing notes (type 0x01). Its
    /// [`cosigner`](SigningKey::cosigner) is the same key for cosigning.
    pub fn generate(name: &str) -> Result<SigningKey, KeyError> {
        check_name(name)?;
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *seed).map_err(|e| KeyError::Random(e.to_string()))?;
        SigningKey::from_seed(name, SignatureType::Ed25519, &seed)
    }

    /// The key of `name` whose Ed25519 secret is the 32-byte `seed` (RFC 8032's private key).
    pub fn from_seed(
        name: &str,
        signature_type: SignatureType,
        seed: &[u8; 32],
    ) -> Result<SigningKey, KeyError> {
        check_name(name)?;
        let secret = ed25519_dalek::SigningKey::from_bytes(seed);
        Ok(SigningKey {
            name: name.to_string(),
            signature_type,
            id: key_id(name, signature_type, secret.verifying_key().as_bytes()),
            secret,
        })
    }

    /// Reads a signer key's text, `PRIVATE+KEY+<name>+<key id>+<base64(type ‖ seed)>`. The key
    /// id must match the public key the seed gives. Errors never repeat the key data.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let rest = text
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(KeyError::NotASignerKey)?;
        let (name, written, data) = split_key_text(rest)?;
        let raw = Zeroizing::new(STANDARD.decode(data).map_err(|_| KeyError::NotBase64 {
            name: name.to_string(),
        })?);
        let (signature_type, seed) = type_and_key(name, &raw)?;
        let key = SigningKey::from_seed(name, signature_type, seed)?;
        if key.id != written {
            return Err(KeyError::KeyIdMismatch {
                name: name.to_string(),
                written,
                computed: key.id,
            });
        }
        Ok(key)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type of signature this key makes when it signs a note.
    pub fn signature_type(&self) -> SignatureType {
        self.signature_type
    }

    /// The key id (the same as its verifier key's).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The verifier key that checks this key's signatures: the same name, type and key id.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            signature_type: self.signature_type,
            id: self.id,
            public: self.secret.verifying_key(),
        }
    }

    /// The same name and secret as a witness's key: type `cosignature/v1` (0x04), with the key
    /// id of that type.
    #[must_use]
    pub fn cosigner(&self) -> SigningKey {
        SigningKey {
            name: self.name.clone(),
            signature_type: SignatureType::CosignatureV1,
            id: key_id(
                &self.name,
                SignatureType::CosignatureV1,
                self.secret.verifying_key().as_bytes(),
            ),
            secret: self.secret.clone(),
        }
    }

    /// **The secret**: the key's text, `PRIVATE+KEY+<name>+<key id>+<base64(type ‖ seed)>`,
    /// which Go's `note.NewSigner` reads. Anyone who has it can sign as this key. The returned
    /// text is wiped from memory when dropped.
    pub fn expose_secret(&self) -> Zeroizing<String> {
        let mut data = Zeroizing::new(Vec::with_capacity(33));
        data.push(self.signature_type.byte());
        data.extend_from_slice(self.secret.as_bytes());
        let encoded = Zeroizing::new(STANDARD.encode(&*data));
        let mut text = Zeroizing::new(String::with_capacity(
            PRIVATE_PREFIX.len() + self.name.len() + 10 + encoded.len(),
        ));
        text.push_str(PRIVATE_PREFIX);
        text.push_str(&self.name);
        text.push('+');
        text.push_str(&hex::encode(&self.id.to_be_bytes()));
        text.push('+');
        text.push_str(&encoded);
        text
    }

    /// The Ed25519 signature of `message`.
    pub(crate) fn sign_ed25519(&self, message: &[u8]) -> [u8; 64] {
        self.secret.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("signature_type", &self.signature_type)
            .field("id", &format_args!("{:08x}", self.id))
            .finish_non_exhaustive()
    }
}

impl FromStr for SigningKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningKey::parse(s)
    }
}

/// The key id of `name` and an Ed25519 public key for signatures of `signature_type`: the first
/// 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ type byte ‖ public key).
pub(crate) fn key_id(name: &str, signature_type: SignatureType, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([signature_type.byte()]);
    h.update(public_key);
    let digest = h.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// What is wrong with `name` as a key name, or `None` if nothing: it must be non-empty, and
/// contain no `+`, no Unicode white space (what Go's `unicode.IsSpace` and Rust's
/// `char::is_whitespace` both call space) and no ASCII control character.
pub(crate) fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".to_string());
    }
    name.chars().find_map(|c| {
        if c == '+' {
            Some("it contains '+'".to_string())
        } else if c.is_whitespace() {
            Some(format!("it contains the space U+{:04X}", u32::from(c)))
        } else if c < ' ' {
            Some(format!(
                "it contains the control character U+{:04X}",
                u32::from(c)
            ))
        } else {
            None
        }
    })
}

/// `Ok` if `name` is a valid key name.
fn check_name(name: &str) -> Result<(), KeyError> {
    match name_problem(name) {
        None => Ok(()),
        Some(problem) => Err(KeyError::InvalidName {
            name: name.to_string(),
            problem,
        }),
    }
}

/// Splits `<name>+<key id>+<data>` (the data may contain `+`, a base64 digit) and reads the key id.
fn split_key_text(text: &str) -> Result<(&str, u32, &str), KeyError> {
    let (name, rest) = text
        .split_once('+')
        .ok_or(KeyError::MissingPart { missing: "key id" })?;
    let (id_text, data) = rest.split_once('+').ok_or(KeyError::MissingPart {
        missing: "key data",
    })?;
    check_name(name)?;
    let id = parse_key_id(id_text).ok_or_else(|| KeyError::BadKeyId {
        name: name.to_string(),
        text: id_text.chars().take(16).collect(),
    })?;
    Ok((name, id, data))
}

/// Exactly 8 hex digits (either case), big-endian.
fn parse_key_id(text: &str) -> Option<u32> {
    if text.len() != 8 {
        return None;
    }
    text.bytes().try_fold(0u32, |id, b| {
        hex::digit(b).map(|d| (id << 4) | u32::from(d))
    })
}

/// Splits decoded key data into its type byte and its 32 bytes of key.
fn type_and_key<'a>(name: &str, raw: &'a [u8]) -> Result<(SignatureType, &'a [u8; 32]), KeyError> {
    let Some((&byte, key)) = raw.split_first() else {
        return Err(KeyError::WrongLength {
            name: name.to_string(),
            len: 0,
        });
    };
    let signature_type = SignatureType::from_byte(byte).ok_or(KeyError::UnknownType {
        name: name.to_string(),
        byte,
    })?;
    let key = key.try_into().map_err(|_| KeyError::WrongLength {
        name: name.to_string(),
        len: key.len(),
    })?;
    Ok((signature_type, key))
}

/// RFC 8032 verification, as Go's `crypto/ed25519.Verify`: the signature is 64 bytes, its scalar
/// is canonical, and the recomputed R encodes to the signature's R.
fn verify_ed25519(key: &ed25519_dalek::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let Ok(bytes) = <&[u8; 64]>::try_from(signature) else {
        return false;
    };
    key.verify(message, &ed25519_dalek::Signature::from_bytes(bytes))
        .is_ok()
}

/// Splits a cosignature/v1 signature, `timestamp (u64, big-endian) ‖ Ed25519 signature (64)`, of
/// exactly 72 bytes.
pub(crate) fn split_timestamped(signature: &[u8]) -> Option<(u64, &[u8])> {
    if signature.len() != 8 + 64 {
        return None;
    }
    let (timestamp, signature) = signature.split_at(8);
    let timestamp = u64::from_be_bytes(timestamp.try_into().ok()?);
    Some((timestamp, signature))
}

/// The message a cosignature/v1 signs: the header line, the timestamp line (`time`, one space,
/// the timestamp in decimal without leading zeros), then the whole checkpoint body.
pub(crate) fn cosignature_v1_message(timestamp: u64, body: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{body}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of Go's `sumdb/note` tests and package documentation.
    const PETER_SIGNER: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VERIFIER: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VERIFIER: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";

    #[test]
    fn go_signer_and_verifier_keys_parse_and_match() {
        let signer: SigningKey = PETER_SIGNER.parse().unwrap();
        let verifier: VerifierKey = PETER_VERIFIER.parse().unwrap();
        assert_eq!(signer.name(), "PeterNeumann");
        assert_eq!(signer.id(), 0xc74f_20a3);
        assert_eq!(signer.signature_type(), SignatureType::Ed25519);
        assert_eq!(verifier.id(), 0xc74f_20a3);
        assert_eq!(signer.verifier(), verifier);
        // Both texts are written back byte for byte.
        assert_eq!(verifier.to_string(), PETER_VERIFIER);
        assert_eq!(*signer.expose_secret(), PETER_SIGNER);
        let enoch: VerifierKey = ENOCH_VERIFIER.parse().unwrap();
        assert_eq!((enoch.name(), enoch.id()), ("EnochRoot", 0xaf0c_fe78));
    }

    /// The key id by hand: SHA-256(name ‖ "\n" ‖ type ‖ public key), first 4 bytes big-endian;
    /// and the C2SP signed-note example key.
    #[test]
    fn key_id_is_the_first_four_bytes_of_sha256_of_name_newline_type_key() {
        let peter: VerifierKey = PETER_VERIFIER.parse().unwrap();
        let mut input = b"PeterNeumann\n\x01".to_vec();
        input.extend_from_slice(peter.public_key());
        let digest = Sha256::digest(&input);
        assert_eq!(peter.id().to_be_bytes(), digest[..4]);
        assert_eq!(
            key_id("PeterNeumann", SignatureType::Ed25519, peter.public_key()),
            0xc74f_20a3
        );

        let c2sp: VerifierKey =
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
                .parse()
                .unwrap();
        assert_eq!(c2sp.id(), 0x530d_903a);
        assert_eq!(
            c2sp.public_key()[..4],
            [0xe9, 0x32, 0x79, 0x1a],
            "the key material follows the type byte"
        );
    }

    /// Go's `TestNewVerifier` and `TestNewSigner`: every proper substring of the key text, and the
    /// text with any one byte incremented, is refused (and nothing panics).
    #[test]
    fn go_mangled_keys_are_refused() {
        for (text, signer) in [(PETER_VERIFIER, false), (PETER_SIGNER, true)] {
            let parse = |s: &str| {
                if signer {
                    SigningKey::parse(s).map(|_| ())
                } else {
                    VerifierKey::parse(s).map(|_| ())
                }
            };
            assert!(parse(text).is_ok());
            let b = text.as_bytes();
            for i in 0..=b.len() {
                for j in i + 1..=b.len() {
                    if i == 0 && j == b.len() {
                        continue;
                    }
                    let s = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(parse(s).is_err(), "{s:?} was accepted");
                }
            }
            for i in 0..b.len() {
                let mut m = b.to_vec();
                m[i] += 1;
                let s = std::str::from_utf8(&m).unwrap();
                assert!(parse(s).is_err(), "{s:?} was accepted");
            }
        }
        // Go's two keys with an adjusted key id: a key of the wrong length, an unknown type. The
        // first ends in "Y==", whose unused bits are not zero: Go's decoder reads it, this one
        // refuses it already there.
        assert!(matches!(
            VerifierKey::parse(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
            ),
            Err(KeyError::NotBase64 { .. })
        ));
        assert!(matches!(
            VerifierKey::parse(
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEQ=="
            ),
            Err(KeyError::WrongLength { len: 36, .. })
        ));
        assert!(matches!(
            VerifierKey::parse(
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
            ),
            Err(KeyError::UnknownType { byte: 0x65, .. })
        ));
    }

    #[test]
    fn each_malformed_key_text_says_what_is_wrong() {
        let err = |s: &str| VerifierKey::parse(s).unwrap_err();
        assert_eq!(
            err("PeterNeumann"),
            KeyError::MissingPart { missing: "key id" }
        );
        assert_eq!(
            err("PeterNeumann+c74f20a3"),
            KeyError::MissingPart {
                missing: "key data"
            }
        );
        assert!(
            matches!(err("PeterNeumann+c74f20a+AAAA"), KeyError::BadKeyId { text, .. } if text == "c74f20a")
        );
        assert!(matches!(
            err("PeterNeumann+0xc74f20+AAAA"),
            KeyError::BadKeyId { .. }
        ));
        assert!(matches!(
            err("PeterNeumann+c74f20a3+AR pc"),
            KeyError::NotBase64 { .. }
        ));
        assert!(matches!(
            err("PeterNeumann+c74f20a3+"),
            KeyError::WrongLength { len: 0, .. }
        ));
        assert!(matches!(
            err("PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
            KeyError::KeyIdMismatch {
                written: 0,
                computed: 0xc74f_20a3,
                ..
            }
        ));
        // Upper-case hex is read, as Go's strconv.ParseUint reads it; it is written lower-case.
        let upper: VerifierKey =
            "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
                .parse()
                .unwrap();
        assert_eq!(upper.to_string(), PETER_VERIFIER);
        // A signer key given as a verifier key is refused without repeating it.
        let e = err(PETER_SIGNER);
        assert_eq!(e, KeyError::NotAVerifierKey);
        assert!(!e.to_string().contains("AYEKF"));
        assert_eq!(
            SigningKey::parse(PETER_VERIFIER).unwrap_err(),
            KeyError::NotASignerKey
        );
    }

    /// No error about a signer key repeats its secret data, whatever is wrong with it.
    #[test]
    fn signer_key_errors_never_repeat_the_secret() {
        let secret = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
        for text in [
            "PRIVATE+KEY+PeterNeumann+c74f20a4+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz=",
            "PRIVATE+KEY+PeterNeumann+c74f20a3+BYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
            "PRIVATE+KEY+Peter Neumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        ] {
            let e = SigningKey::parse(text).unwrap_err();
            assert!(!format!("{e} {e:?}").contains(&secret[4..]), "{e:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key: SigningKey = PETER_SIGNER.parse().unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains("PeterNeumann") && shown.contains("c74f20a3"));
        assert!(!shown.contains("PRIVATE"));
        assert!(!shown.contains("AYEKF"));
        let seed_hex = hex::encode(key.secret.as_bytes());
        assert!(!shown.contains(&seed_hex));
        assert!(!shown.contains(&format!("{:?}", key.secret.as_bytes())));
    }

    #[test]
    fn generated_keys_round_trip_and_sign() {
        let a = SigningKey::generate("example.com/log").unwrap();
        let b = SigningKey::generate("example.com/log").unwrap();
        assert_ne!(
            a.verifier(),
            b.verifier(),
            "two keys from the OS's randomness differ"
        );
        let again: SigningKey = a.expose_secret().parse().unwrap();
        assert_eq!(again.verifier(), a.verifier());
        let vkey: VerifierKey = a.verifier().to_string().parse().unwrap();
        assert_eq!(vkey, a.verifier());
        let sig = a.sign_ed25519(b"text\n");
        assert!(vkey.verify("text\n", &sig));
        assert!(!vkey.verify("text!\n", &sig));
        assert!(!b.verifier().verify("text\n", &sig));
        assert!(!vkey.verify("text\n", &sig[..63]));
        assert!(matches!(
            SigningKey::generate("a b"),
            Err(KeyError::InvalidName { .. })
        ));
    }

    #[test]
    fn names_with_plus_space_or_control_characters_are_refused() {
        for bad in [
            "",
            "a+b",
            "a b",
            "a\tb",
            "a\nb",
            "a\u{a0}b",
            "a\u{85}b",
            "a\u{2003}b",
            "a\u{3000}b",
            "a\u{1}b",
            "a\u{1b}b",
        ] {
            let e = VerifierKey::new(bad, SignatureType::Ed25519, &[0; 32]).unwrap_err();
            assert!(matches!(e, KeyError::InvalidName { .. }), "{bad:?}: {e:?}");
            assert!(SigningKey::from_seed(bad, SignatureType::Ed25519, &[7; 32]).is_err());
        }
        let e = VerifierKey::new("a\u{2003}b", SignatureType::Ed25519, &[0; 32]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the key name \"a\\u{2003}b\" is invalid: it contains the space U+2003",
            "an invisible character is shown escaped"
        );
        // Odd Unicode that is not a space is allowed, as in Go: accents, an em dash, zero-width
        // joiners, right-to-left text, DEL.
        for good in [
            "ed-è-subito-sera",
            "a—b",
            "a\u{200d}b",
            "שלום/log",
            "a\u{7f}b",
            "例え.jp/ログ",
        ] {
            let key = SigningKey::from_seed(good, SignatureType::Ed25519, &[7; 32]).unwrap();
            let text = key.verifier().to_string();
            assert_eq!(
                text.parse::<VerifierKey>().unwrap(),
                key.verifier(),
                "{good:?}"
            );
            assert_eq!(
                key.expose_secret()
                    .parse::<SigningKey>()
                    .unwrap()
                    .verifier(),
                key.verifier()
            );
        }
    }

    /// The 32 bytes of a verifier key must decode to a point; about half of all byte strings do
    /// not.
    #[test]
    fn a_public_key_that_is_not_a_point_is_refused() {
        let bad = (0u8..=255)
            .map(|i| [i; 32])
            .find(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_err())
            .expect("some repeated byte is not a point");
        let id = key_id("n", SignatureType::Ed25519, &bad);
        let mut data = vec![1];
        data.extend_from_slice(&bad);
        let text = format!("n+{id:08x}+{}", STANDARD.encode(data));
        assert_eq!(
            VerifierKey::parse(&text).unwrap_err(),
            KeyError::InvalidPublicKey {
                name: "n".to_string()
            }
        );
    }

    /// A witness key of the public witness network (type 0x04, from transparency-dev/formats'
    /// tests), and the id change between the two types of one key.
    #[test]
    fn a_cosigner_key_has_the_id_of_type_0x04() {
        let remora: VerifierKey =
            "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
                .parse()
                .unwrap();
        assert_eq!(remora.signature_type(), SignatureType::CosignatureV1);
        assert_eq!(remora.id(), 0xda77_ade7);
        assert_eq!(remora.cosigner(), remora);

        let peter: VerifierKey = PETER_VERIFIER.parse().unwrap();
        let witness = peter.cosigner();
        assert_eq!(witness.public_key(), peter.public_key());
        assert_eq!(witness.name(), peter.name());
        assert_ne!(witness.id(), peter.id());
        assert_eq!(
            witness.id(),
            key_id(
                "PeterNeumann",
                SignatureType::CosignatureV1,
                peter.public_key()
            )
        );
        assert!(
            witness
                .to_string()
                .starts_with(&format!("PeterNeumann+{:08x}+B", witness.id()))
        );
        assert_eq!(witness.to_string().parse::<VerifierKey>().unwrap(), witness);

        let signer: SigningKey = PETER_SIGNER.parse().unwrap();
        let cosigner = signer.cosigner();
        assert_eq!(cosigner.verifier(), witness);
        assert_eq!(
            cosigner
                .expose_secret()
                .parse::<SigningKey>()
                .unwrap()
                .verifier(),
            witness
        );
    }

    #[test]
    fn a_cosignature_verifies_only_with_its_timestamp_and_type() {
        let signer: SigningKey = PETER_SIGNER.parse().unwrap();
        let body = "example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let mut sig = 1_700_000_000u64.to_be_bytes().to_vec();
        sig.extend_from_slice(&signer.sign_ed25519(&cosignature_v1_message(1_700_000_000, body)));
        let witness = signer.verifier().cosigner();
        assert!(witness.verify(body, &sig));
        // Another timestamp, the plain Ed25519 type, a truncated signature: no.
        let mut later = sig.clone();
        later[7] += 1;
        assert!(!witness.verify(body, &later));
        assert!(!signer.verifier().verify(body, &sig));
        assert!(!signer.verifier().verify(body, &sig[8..]));
        assert!(!witness.verify(body, &sig[..71]));
        // A timestamp past 2^63 - 1 is refused even with a valid signature over it.
        let big = u64::MAX;
        let mut sig = big.to_be_bytes().to_vec();
        sig.extend_from_slice(&signer.sign_ed25519(&cosignature_v1_message(big, body)));
        assert!(!witness.verify(body, &sig));
    }
}
