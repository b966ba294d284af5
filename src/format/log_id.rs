//! A log's identity: 16 random bytes drawn when the log is created, stored in every segment's
//! header (`docs/FORMAT.md` §3) and in every export's manifest (§13.2), written as 32 lowercase
//! hex digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::format::hex;

/// A log's identity: the same in every segment of the log and in every export taken from it,
/// different (with overwhelming probability) for every log created. Displayed, serialized and
/// parsed as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogId(pub [u8; 16]);

impl LogId {
    /// The 32 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }

    /// Parses exactly 32 lowercase hex digits.
    pub fn from_hex(text: &str) -> Result<LogId, ParseLogIdError> {
        let bytes = text.as_bytes();
        // Lowercase only: in a manifest a log id is written one way.
        let digit = |c: u8| {
            if c.is_ascii_uppercase() {
                None
            } else {
                hex::digit(c)
            }
        };
        if bytes.len() != 32 {
            return Err(ParseLogIdError);
        }
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (digit(pair[0]), digit(pair[1])) else {
                return Err(ParseLogIdError);
            };
            out[i] = (hi << 4) | lo;
        }
        Ok(LogId(out))
    }
}

/// The text given to [`LogId::from_hex`] was not 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseLogIdError;

impl fmt::Display for ParseLogIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("log_id is not 32 lowercase hex digits")
    }
}

impl std::error::Error for ParseLogIdError {}

impl FromStr for LogId {
    type Err = ParseLogIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LogId::from_hex(s)
    }
}

/// `auditring/` and the log id: the origin line of a log's checkpoints (`docs/FORMAT.md`
/// §15.4) unless its writer was given another.
pub(crate) fn default_origin(log_id: LogId) -> String {
    format!("auditring/{log_id}")
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogId({})", self.to_hex())
    }
}

impl Serialize for LogId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for LogId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        LogId::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_only_lowercase_32_digits_parse() {
        let id = LogId([
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 1, 2, 3, 4, 5, 6, 0xff,
        ]);
        let hex = id.to_hex();
        assert_eq!(hex, "0123456789abcdef00010203040506ff");
        assert_eq!(hex.parse::<LogId>(), Ok(id));
        assert_eq!(
            serde_json::from_str::<LogId>(&serde_json::to_string(&id).unwrap()).unwrap(),
            id
        );
        for bad in [
            "0123456789ABCDEF00010203040506FF",
            "0123456789abcdef00010203040506f",
            "0123456789abcdef00010203040506fff",
            "0123456789abcdef00010203040506fg",
            "",
        ] {
            assert_eq!(bad.parse::<LogId>(), Err(ParseLogIdError), "{bad:?}");
        }
    }
}
