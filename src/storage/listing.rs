//! The files of a log directory: segments, leftovers of interrupted creates, and anything else.
//!
//! A listing is out of date as soon as it is taken: retention (in another process, too) removes
//! the oldest segments at any time. A reader that lists the segments and then opens one may find
//! it gone. Every such open goes through [`open_error`], which tells the two cases apart
//! ([`pruned_since`]): retention removes segments oldest first, so a segment gone together with
//! the one before it was pruned, and the reader retries on a newer view ([`Error::Pruned`]; that
//! the prune was audited is what `verify` checks, from the prune records); a segment gone while
//! the one before it is still there, or from a log that no longer has any, is an integrity
//! failure ([`Reason::MissingSegment`]). A gap seen in one listing is judged the same way
//! ([`check_gapless`]), and is no gap if the segment is there now ([`listing_moved_on`]): a
//! directory listing is not atomic, and may catch retention between the removals of two
//! segments (showing the older one and not the newer), or the writer between the creations of
//! two (showing the newer one and not the older).

use std::io;

use crate::error::{Error, IntegrityError, Reason};
use crate::storage::Storage;
use crate::storage::names::{
    EXPORTED_FILE, LOCK_FILE, is_base_replacement, is_temporary, parse_base_name,
    parse_segment_name, segment_name,
};
use crate::storage::tree::parse_chunk_name;

/// What a log directory holds.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// Segment files, sorted by number.
    pub(crate) segments: Vec<(u64, String)>,
    /// Leftovers of a segment creation that a crash interrupted (`.NAME.tmp`).
    pub(crate) temporary: Vec<String>,
    /// Chunks of the Merkle tree's strata (`crate::storage::tree`) and tree bases
    /// (`crate::storage::tree_base`), sorted by name.
    pub(crate) tree: Vec<String>,
    /// Files that are not part of a log.
    pub(crate) foreign: Vec<String>,
}

/// Lists and classifies the files of `storage`.
pub(crate) fn list(storage: &dyn Storage) -> Result<Listing, Error> {
    let names = storage.list().map_err(|e| {
        let dir = storage.location().to_path_buf();
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<crate::storage::NotRegular>())
        {
            // A name of the log taken by a symlink or a special file (FORMAT.md §1).
            Some(entry) => Error::NotALog {
                dir,
                reason: entry.to_string(),
            },
            None => Error::io(format!("listing {}", dir.display()), e),
        }
    })?;
    let mut listing = Listing::default();
    for name in names {
        if let Some(n) = parse_segment_name(&name) {
            listing.segments.push((n, name));
        } else if is_temporary(&name) {
            listing.temporary.push(name);
        } else if parse_chunk_name(&name).is_some()
            || parse_base_name(&name).is_some()
            || is_base_replacement(&name)
        {
            listing.tree.push(name);
        } else if name != LOCK_FILE
            && name != EXPORTED_FILE
            && !name.starts_with(&format!(".{EXPORTED_FILE}.tmp-"))
        {
            listing.foreign.push(name);
        }
    }
    listing.segments.sort();
    listing.tree.sort();
    listing.foreign.sort();
    Ok(listing)
}

/// How many times a reader takes a newer view of a log after losing a race with retention,
/// before it gives up with [`Error::Pruned`]. Each retry follows a segment removal, so only a
/// writer that prunes faster than a reader can read one view gets there.
pub(crate) const PRUNE_RETRIES: usize = 100;

/// The error for segment `number` (file `name`), listed earlier, that could not be opened (or
/// read) for `what` with `e`. A file that is gone (`NotFound`) was pruned if the log now
/// starts after it ([`Error::Pruned`], retryable), and is a missing segment otherwise (an
/// integrity failure naming it).
pub(crate) fn open_error(
    storage: &dyn Storage,
    number: u64,
    name: &str,
    what: &str,
    e: io::Error,
) -> Error {
    let path = storage.location().join(name);
    if e.kind() != io::ErrorKind::NotFound {
        return Error::io(format!("{what} {}", path.display()), e);
    }
    let pruned = match pruned_since(storage, number) {
        Ok(pruned) => pruned,
        Err(e) => return e,
    };
    if pruned {
        // Retention never removes the active segment: a log with none left was not pruned.
        return match list(storage) {
            Ok(now) if now.segments.is_empty() => Error::from(IntegrityError {
                seq: None,
                file: path,
                offset: 0,
                reason: Reason::MissingSegment(number),
            }),
            Ok(_) => Error::Pruned {
                file: path,
                segment: number,
            },
            Err(e) => e,
        };
    }
    if storage.open(name, false).is_ok() {
        return Error::io(
            format!(
                "{what} {}: the file was gone, then there again (replaced by another process?)",
                path.display()
            ),
            e,
        );
    }
    Error::from(IntegrityError {
        seq: None,
        file: path,
        offset: 0,
        reason: Reason::MissingSegment(number),
    })
}

/// Whether segment `number`, found gone, was pruned: removed from the front of the log.
///
/// Retention removes the oldest segments first, one at a time: a segment gone while the one
/// before it is still there was not pruned (it is missing), and one gone with the one before
/// it gone too was (or that one is missing, which a new walk then finds). The segment before
/// it is opened directly, not looked for in a new listing: a directory listing taken while
/// retention removes files is not atomic, and may show a segment already removed.
pub(crate) fn pruned_since(storage: &dyn Storage, number: u64) -> Result<bool, Error> {
    let Some(before) = number.checked_sub(1).filter(|&n| n >= 1) else {
        return Ok(true);
    };
    let name = segment_name(before);
    match storage.open(&name, false) {
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(Error::io(
            format!("opening {}", storage.location().join(name).display()),
            e,
        )),
    }
}

/// Whether a listing that lacks segment `number` between two others is out of date, so that a
/// newer one will do: the segment was pruned since ([`pruned_since`]), or is there now. A
/// listing is read a batch of entries at a time, and may miss a segment the writer created
/// while it was taken, yet show a later one created after it.
pub(crate) fn listing_moved_on(storage: &dyn Storage, number: u64) -> Result<bool, Error> {
    let name = segment_name(number);
    match storage.open(&name, false) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => pruned_since(storage, number),
        Err(e) => Err(Error::io(
            format!("opening {}", storage.location().join(name).display()),
            e,
        )),
    }
}

/// Fails unless the segments of `listing` are numbered without a gap. A gap that a new listing
/// shows at the front of the log, before its first segment, is a prune caught half way
/// ([`Error::Pruned`]); any other is a missing segment.
pub(crate) fn check_gapless(storage: &dyn Storage, listing: &Listing) -> Result<(), Error> {
    for pair in listing.segments.windows(2) {
        let missing = pair[0].0 + 1;
        if pair[1].0 != missing {
            if listing_moved_on(storage, missing)? {
                return Err(Error::Pruned {
                    file: storage.location().join(segment_name(missing)),
                    segment: missing,
                });
            }
            return Err(Error::from(IntegrityError {
                seq: None,
                file: storage.location().join(&pair[1].1),
                offset: 0,
                reason: Reason::MissingSegment(missing),
            }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort() {
        assert_eq!(segment_name(1), "0000000000000001.seg");
        assert_eq!(parse_segment_name(&segment_name(0xabc)), Some(0xabc));
        assert_eq!(parse_segment_name("0000000000000000.seg"), None);
        assert_eq!(parse_segment_name("000000000000000G.seg"), None);
        assert_eq!(parse_segment_name("0000000000000001.SEG"), None);
        assert_eq!(parse_segment_name("01.seg"), None);
        assert!(segment_name(9) < segment_name(10));
    }

    #[test]
    fn classifies_files() {
        let mem = crate::storage::MemStorage::new("t");
        for name in [
            "0000000000000002.seg",
            "0000000000000001.seg",
            ".0000000000000003.seg.tmp",
            "notes.txt",
            "LOCK",
        ] {
            mem.write_file(name, vec![]);
        }
        let l = list(&mem).unwrap();
        assert_eq!(
            l.segments.iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(l.temporary, vec![".0000000000000003.seg.tmp".to_string()]);
        assert_eq!(l.foreign, vec!["notes.txt".to_string()]);
    }
}
