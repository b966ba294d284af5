//! The manifest of an export: what range of which log it holds, and how to check it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::input::MAX_MANIFEST_BYTES;
pub use crate::error::ManifestError;
use crate::format::hash::Hash;
use crate::format::log_id::LogId;

/// The `format` field of every manifest.
pub const MANIFEST_FORMAT: &str = "auditring-export";
/// The manifest version this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;
/// The file name of the manifest inside an export directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// How an export encodes its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One JSON object per line (`events.jsonl`), readable by jq and pandas.
    #[default]
    Jsonl,
    /// The records exactly as a segment stores them (`records.bin`): compact and fast.
    Bundle,
}

impl Encoding {
    /// The name of the data file of an export in this encoding.
    pub fn file_name(self) -> &'static str {
        match self {
            Encoding::Jsonl => "events.jsonl",
            Encoding::Bundle => "records.bin",
        }
    }
}

/// One data file of an export.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// The file's name inside the export directory.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of its contents.
    pub sha256: Hash,
}

/// What an export holds: written last, as `manifest.json`, next to the data.
///
/// The records from `first_seq` to `last_seq` continue the chain from `anchor` (the chain hash
/// just before `first_seq` in the source log) and end at `head`. An export that continues a
/// previous one has that one's `head` as its `anchor`.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Always [`MANIFEST_VERSION`] for this build.
    pub version: u32,
    /// How the records are encoded.
    pub encoding: Encoding,
    /// The chain algorithm: `"sha256"`.
    pub chain: String,
    /// The source log's identity, the same in every export of that log.
    pub log_id: LogId,
    /// Where the source log was, when exported (for people; not checked).
    pub source: String,
    /// Seq of the first record.
    pub first_seq: u64,
    /// Seq of the last record.
    pub last_seq: u64,
    /// Number of records: `last_seq - first_seq + 1`.
    pub count: u64,
    /// Chain hash just before `first_seq`.
    pub anchor: Hash,
    /// Chain hash after `last_seq`.
    pub head: Hash,
    /// When the export was made, RFC 3339, UTC.
    pub exported_at: String,
    /// The same, in nanoseconds since the Unix epoch.
    pub exported_at_ns: i64,
    /// The data files, with their sizes and digests.
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// Reads `manifest.json` from the export directory `dir`.
    pub fn read(dir: &Path) -> Result<Manifest, ManifestError> {
        use std::io::Read as _;
        let path = dir.join(MANIFEST_FILE);
        let unreadable = |e: std::io::Error| ManifestError::Unreadable(e.to_string());
        let (file, len) = match super::input::open_regular(&path) {
            Ok(Ok(opened)) => opened,
            Ok(Err(what)) => {
                return Err(ManifestError::Unreadable(format!(
                    "it is {what}, not a regular file"
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ManifestError::Missing);
            }
            Err(e) => return Err(unreadable(e)),
        };
        let too_large = |len: u64| {
            ManifestError::Damaged(format!(
                "it is {len} bytes, more than a manifest may be ({MAX_MANIFEST_BYTES})"
            ))
        };
        if len > MAX_MANIFEST_BYTES {
            return Err(too_large(len));
        }
        // Bounded even if the file grows meanwhile.
        let mut text = Vec::with_capacity(len as usize);
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(unreadable)?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(too_large(text.len() as u64));
        }
        let manifest: Manifest =
            serde_json::from_slice(&text).map_err(|e| ManifestError::Damaged(e.to_string()))?;
        manifest.check().map_err(ManifestError::Damaged)?;
        Ok(manifest)
    }

    /// Checks that the fields agree with each other and with this build.
    pub(crate) fn check(&self) -> Result<(), String> {
        if self.format != MANIFEST_FORMAT {
            return Err(format!(
                "format is {:?}, not {MANIFEST_FORMAT:?}",
                self.format
            ));
        }
        if self.version != MANIFEST_VERSION {
            return Err(format!(
                "version {} (this build reads {MANIFEST_VERSION})",
                self.version
            ));
        }
        if self.chain != "sha256" {
            return Err(format!(
                "chain algorithm {:?} is not \"sha256\"",
                self.chain
            ));
        }
        if self.first_seq == 0 || self.last_seq < self.first_seq {
            return Err(format!(
                "seq range {}..={} is empty or starts at 0",
                self.first_seq, self.last_seq
            ));
        }
        if self.count != self.last_seq - self.first_seq + 1 {
            return Err(format!(
                "count {} does not match seqs {}..={}",
                self.count, self.first_seq, self.last_seq
            ));
        }
        if self.first_seq == 1 && self.anchor != Hash::ZERO {
            return Err("the anchor of an export from seq 1 is not all zeros".into());
        }
        if self.files.len() != 1 || self.files[0].name != self.encoding.file_name() {
            return Err(format!(
                "expected one data file named {:?}",
                self.encoding.file_name()
            ));
        }
        Ok(())
    }
}
