//! The names of the files in a log directory: segments, tree chunks and bases, the temporaries of
//! their creation, the writer lock and the export marker (`docs/FORMAT.md`, "The log directory").

use crate::storage::tree::parse_chunk_name;

/// Name of the file inside a log directory that records the writer's process id.
pub const LOCK_FILE: &str = "LOCK";

/// The marker of how far exports of the log reach (see `crate::storage::exported`).
pub(crate) const EXPORTED_FILE: &str = "EXPORTED";

/// Suffix of segment files.
const SEGMENT_SUFFIX: &str = ".seg";

/// The file name of segment `number`: 16 lowercase hex digits and `.seg`, so that names sort
/// in segment order.
pub(crate) fn segment_name(number: u64) -> String {
    format!("{number:016x}{SEGMENT_SUFFIX}")
}

/// The segment number a file name stands for, if it is a segment's name.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    parse_numbered(name, SEGMENT_SUFFIX).filter(|&n| n != 0)
}

/// The number of a name made of 16 lowercase hex digits and `suffix`, as the log names its
/// segments and tree bases.
pub(crate) fn parse_numbered(name: &str, suffix: &str) -> Option<u64> {
    let hex = name.strip_suffix(suffix)?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Suffix of a tree base file.
const BASE_SUFFIX: &str = ".tb";

/// The name of the tree base file of a log whose first `pruned` leaves were pruned: 16
/// lowercase hex digits and `.tb`, e.g. `0000000000000a3c.tb`.
pub(crate) fn base_name(pruned: u64) -> String {
    format!("{pruned:016x}{BASE_SUFFIX}")
}

/// The number of pruned leaves a file name stands for, if it is a tree base's name.
pub(crate) fn parse_base_name(name: &str) -> Option<u64> {
    parse_numbered(name, BASE_SUFFIX)
}

/// Whether `name` is a tree base's replacement in progress (`.NAME.tmp-…`).
pub(crate) fn is_base_replacement(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.split_once(".tmp-"))
        .is_some_and(|(inner, _)| parse_base_name(inner).is_some())
}

/// Whether `name` is one a log uses (a segment, a tree chunk, a tree base or its replacement,
/// a temporary, the lock file, the export marker or its replacement: `docs/FORMAT.md` §1); any
/// other file in a log directory is foreign to it. An entry with such a name must be a regular
/// file.
pub fn is_log_name(name: &str) -> bool {
    parse_segment_name(name).is_some()
        || parse_chunk_name(name).is_some()
        || parse_base_name(name).is_some()
        || is_base_replacement(name)
        || is_temporary(name)
        || name == LOCK_FILE
        || name == EXPORTED_FILE
        || name.starts_with(&format!(".{EXPORTED_FILE}.tmp-"))
}

/// Whether `name` is a temporary of a segment's or a tree chunk's creation (`.NAME.tmp`).
pub(crate) fn is_temporary(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|n| n.strip_suffix(".tmp"))
        .is_some_and(|inner| {
            parse_segment_name(inner).is_some() || parse_chunk_name(inner).is_some()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporaries_are_told_from_names_that_merely_look_alike() {
        assert!(is_temporary(".0000000000000001.seg.tmp"));
        assert!(is_temporary(".0000000000000000.t1.tmp"));
        for other in [
            ".tmp",
            "..tmp",
            ".",
            "",
            ".seg.tmp",
            "0000000000000001.seg.tmp",
            ".x.tmp",
        ] {
            assert!(!is_temporary(other), "{other:?}");
        }
    }
}
