//! The tree files: the stored hashes of the Merkle tree's large complete subtrees
//! (`docs/FORMAT.md`, "The Merkle tree").
//!
//! The tree's leaves are the records, whose leaf hashes the segments already hold. What is stored
//! besides are the hashes of its complete subtrees of 2⁸, 2¹⁶, 2²⁴, … leaves: *stratum* `k` (≥ 1)
//! holds, in index order, every complete node of level `8·k`. Every other node is computed from at
//! most 2⁷ hashes of the stratum below it (or of the records, for levels under 8), so a proof
//! reads a bounded number of bytes whatever the size of the log.
//!
//! A stratum is kept in *chunk* files of [`CHUNK_ENTRIES`] hashes each (128 KiB), created whole,
//! zero-filled, the way segments are ([`Storage::create`]). An entry is written once, when its
//! subtree is complete; an entry of 32 zero bytes is one not written (no SHA-256 output is all
//! zeros in practice), so neither a crash nor a lost page can make an entry look written when
//! it is not. Entries are derived from the records: any of them can be recomputed, and the
//! writer clears those beyond what recovery kept.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use crate::format::hash::Hash;
use crate::storage::{SegmentFile, Storage};

/// Levels between two strata: stratum `k` holds the nodes of level `8·k`.
pub(crate) const STRATUM_HEIGHT: u32 = 8;

/// The highest stratum: its nodes cover 2⁵⁶ leaves, and a log of 2⁶⁴ records has at most 2⁸ of
/// them.
pub(crate) const MAX_STRATUM: u8 = 7;

/// Hashes per chunk file.
pub(crate) const CHUNK_ENTRIES: u64 = 1 << 12;

/// Bytes per chunk file.
pub(crate) const CHUNK_LEN: u64 = CHUNK_ENTRIES * 32;

/// Suffix of a chunk of stratum `k`: `.t` and the digit `k`.
const CHUNK_SUFFIX: &str = ".t";

/// The file name of chunk `chunk` of stratum `stratum`: 16 lowercase hex digits, `.t`, and the
/// stratum's digit, e.g. `0000000000000000.t1`.
pub(crate) fn chunk_name(stratum: u8, chunk: u64) -> String {
    debug_assert!((1..=MAX_STRATUM).contains(&stratum));
    format!("{chunk:016x}{CHUNK_SUFFIX}{stratum}")
}

/// The stratum and chunk number a file name stands for, if it is a chunk's name.
pub(crate) fn parse_chunk_name(name: &str) -> Option<(u8, u64)> {
    let (hex, stratum) = name.split_at_checked(16)?;
    let stratum = stratum.strip_prefix(CHUNK_SUFFIX)?;
    let &[digit] = stratum.as_bytes() else {
        return None;
    };
    let stratum = digit.checked_sub(b'0')?;
    if !(1..=MAX_STRATUM).contains(&stratum)
        || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    Some((stratum, u64::from_str_radix(hex, 16).ok()?))
}

/// The strata of one log directory, read and written through its [`Storage`].
///
/// Chunk files are opened on first use and kept open. Safe to share between the writer's tree
/// worker and readers: an entry is written once and read only after the worker has published
/// that it is written.
pub(crate) struct TreeFiles<'a> {
    storage: StorageRef<'a>,
    /// Open chunks; `None` records a chunk that does not exist (yet), so that a reader does not
    /// look for it again and again. The writer replaces it when it creates the chunk.
    chunks: Mutex<HashMap<(u8, u64), Option<Chunk>>>,
    /// Whether this handle may create and write chunks.
    write: bool,
}

/// An open chunk file.
type Chunk = Arc<dyn SegmentFile>;

/// The storage a [`TreeFiles`] reads: shared by a writer's threads, or borrowed by a walk.
enum StorageRef<'a> {
    Shared(Arc<dyn Storage>),
    Borrowed(&'a dyn Storage),
}

impl std::ops::Deref for StorageRef<'_> {
    type Target = dyn Storage;

    fn deref(&self) -> &(dyn Storage + 'static) {
        match self {
            StorageRef::Shared(s) => &**s,
            StorageRef::Borrowed(s) => *s,
        }
    }
}

impl std::fmt::Debug for TreeFiles<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeFiles")
            .field("location", &self.storage.location())
            .field("write", &self.write)
            .finish()
    }
}

impl TreeFiles<'static> {
    /// The strata of the log in `storage`; `write` for the writer.
    pub(crate) fn new(storage: Arc<dyn Storage>, write: bool) -> TreeFiles<'static> {
        TreeFiles {
            storage: StorageRef::Shared(storage),
            chunks: Mutex::new(HashMap::new()),
            write,
        }
    }
}

impl<'a> TreeFiles<'a> {
    /// The strata of the log in `storage`, to read.
    pub(crate) fn borrowed(storage: &'a dyn Storage) -> TreeFiles<'a> {
        TreeFiles {
            storage: StorageRef::Borrowed(storage),
            chunks: Mutex::new(HashMap::new()),
            write: false,
        }
    }

    /// The log's location.
    pub(crate) fn location(&self) -> &std::path::Path {
        self.storage.location()
    }

    /// The chunk holding entry `index` of `stratum`, and the entry's byte offset in it; with
    /// `create`, created if missing.
    fn chunk(
        &self,
        stratum: u8,
        index: u64,
        create: bool,
    ) -> io::Result<Option<(Arc<dyn SegmentFile>, u64)>> {
        let chunk = index / CHUNK_ENTRIES;
        let offset = (index % CHUNK_ENTRIES) * 32;
        let mut chunks = self.chunks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(Some(file)) = chunks.get(&(stratum, chunk)) {
            return Ok(Some((file.clone(), offset)));
        }
        if chunks.get(&(stratum, chunk)).is_some() && !create {
            return Ok(None);
        }
        let name = chunk_name(stratum, chunk);
        let file = match self.storage.open(&name, self.write) {
            Ok(file) => Some(file),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(context(&e, &name, "opening")),
        };
        let file = match file {
            Some(file) => {
                let size = file.size().map_err(|e| context(&e, &name, "reading"))?;
                if size != CHUNK_LEN {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} is {size} bytes where a tree chunk is {CHUNK_LEN}",
                            self.storage.location().join(&name).display()
                        ),
                    ));
                }
                Some(file)
            }
            None if create => Some(
                self.storage
                    .create(&name, CHUNK_LEN, &[])
                    .map_err(|e| context(&e, &name, "creating"))?,
            ),
            None => None,
        };
        chunks.insert((stratum, chunk), file.clone());
        Ok(file.map(|f| (f, offset)))
    }

    /// Entry `index` of `stratum`, or `None` if it is not written (its chunk is missing, or the
    /// entry is zeros).
    pub(crate) fn read(&self, stratum: u8, index: u64) -> io::Result<Option<Hash>> {
        Ok(self.read_run(stratum, index, 1)?[0])
    }

    /// Entries `index..index + count` of `stratum` (`count` at most to the end of `index`'s
    /// chunk), each `None` if not written; one read.
    pub(crate) fn read_run(
        &self,
        stratum: u8,
        index: u64,
        count: usize,
    ) -> io::Result<Vec<Option<Hash>>> {
        debug_assert!(index % CHUNK_ENTRIES + count as u64 <= CHUNK_ENTRIES);
        let Some((file, offset)) = self.chunk(stratum, index, false)? else {
            return Ok(vec![None; count]);
        };
        let mut bytes = vec![0u8; count * 32];
        file.read_exact_at(&mut bytes, offset)?;
        Ok(bytes
            .chunks_exact(32)
            .map(|e| {
                let hash: [u8; 32] = e.try_into().expect("32 bytes");
                (hash != [0; 32]).then_some(Hash(hash))
            })
            .collect())
    }

    /// Writes entry `index` of `stratum`, creating its chunk if needed.
    pub(crate) fn write(&self, stratum: u8, index: u64, hash: &Hash) -> io::Result<()> {
        debug_assert!(self.write);
        debug_assert_ne!(hash.0, [0; 32]);
        let (file, offset) = self
            .chunk(stratum, index, true)?
            .expect("created when missing");
        file.write_at(&hash.0, offset)
    }

    /// Clears every entry of `stratum` from `index` on: they cover records that recovery did
    /// not keep. The rest of `index`'s chunk is zeroed, and the chunks after it are removed.
    pub(crate) fn clear_from(&self, stratum: u8, index: u64) -> io::Result<()> {
        debug_assert!(self.write);
        let first = index / CHUNK_ENTRIES;
        if let Some((file, offset)) = self.chunk(stratum, index, false)? {
            file.zero_range(offset, CHUNK_LEN - offset)?;
        }
        let mut chunks = self.chunks.lock().unwrap_or_else(PoisonError::into_inner);
        for name in self.storage.list()? {
            if let Some((s, chunk)) = parse_chunk_name(&name)
                && s == stratum
                && chunk > first
            {
                chunks.remove(&(s, chunk));
                self.storage
                    .remove(&name)
                    .map_err(|e| context(&e, &name, "removing"))?;
            }
        }
        Ok(())
    }

    /// Syncs every chunk this handle has open.
    pub(crate) fn sync(&self) -> io::Result<()> {
        let files: Vec<_> = self
            .chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .flatten()
            .cloned()
            .collect();
        files.iter().try_for_each(|f| f.sync_all())
    }
}

/// Removes the chunks that a log whose records before seq `first_seq` were pruned no longer
/// needs, and returns how many: every chunk of stratum `k` that ends before the node of level
/// `8k + 8` that precedes the one holding leaf `first_seq - 1` (`docs/FORMAT.md` §14.2).
///
/// What stays is enough for every proof of the records kept: a proof of leaf `i ≥ s` (`s` the
/// first kept leaf) needs, left of `s`, only the roots of the complete subtrees that make up
/// `[0, s)`, and one of level `l` in `[8k, 8k + 8)` lies inside the node of level `8k + 8`
/// holding `s`, so it is hashed from entries of stratum `k` that stay (those of higher levels
/// from higher strata, which stay too). The node before it stays as well: the newest entry of
/// stratum `k + 1` before `s` counts only once the next one, which holds `s`, is written, and
/// until then it is hashed from the entries of stratum `k` below it. Without this, a ring with
/// retention would keep 128 KiB of stratum 1 for every million records it ever wrote.
pub(crate) fn remove_chunks_before(storage: &dyn Storage, first_seq: u64) -> io::Result<usize> {
    let first_leaf = first_seq.saturating_sub(1);
    let mut removed = 0;
    for name in storage.list()? {
        let Some((stratum, chunk)) = parse_chunk_name(&name) else {
            continue;
        };
        let block_shift = STRATUM_HEIGHT * (u32::from(stratum) + 1);
        let chunk_shift = STRATUM_HEIGHT * u32::from(stratum) + CHUNK_ENTRIES.trailing_zeros();
        if block_shift >= 64 || chunk_shift >= 64 {
            continue;
        }
        let keep_from = ((first_leaf >> block_shift).saturating_sub(1)) << block_shift;
        let chunk_end = chunk
            .checked_add(1)
            .and_then(|c| c.checked_mul(1 << chunk_shift));
        if chunk_end.is_some_and(|end| end <= keep_from) {
            match storage.remove(&name) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(context(&e, &name, "removing")),
            }
        }
    }
    Ok(removed)
}

/// `e`, with the chunk's name and what was being done.
fn context(e: &io::Error, name: &str, doing: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} tree chunk {name}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStorage;

    #[test]
    fn chunk_names_round_trip_and_reject_near_misses() {
        assert_eq!(chunk_name(1, 0), "0000000000000000.t1");
        assert_eq!(parse_chunk_name("00000000000000ff.t7"), Some((7, 255)));
        for bad in [
            "0000000000000000.t0",
            "0000000000000000.t8",
            "0000000000000000.t",
            "0000000000000000.t11",
            "000000000000000F.t1",
            "000000000000000.t1",
            "0000000000000000.seg",
            "é000000000000000.t1",
        ] {
            assert_eq!(parse_chunk_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn pruning_removes_only_the_chunks_no_proof_needs() {
        let storage = MemStorage::new("mem");
        // Stratum 1: a chunk covers 2^20 leaves; stratum 2: 2^28.
        for (stratum, chunk) in [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0)] {
            storage
                .create(&chunk_name(stratum, chunk), CHUNK_LEN, &[])
                .unwrap();
        }
        // The first kept leaf inside chunk 2 of stratum 1, at 2^21 + 3·2^16 + 5: the level-16
        // block before the one holding it starts at 2^21 + 2·2^16, so chunks 0 and 1 go, 2
        // and 3 stay.
        let first_leaf = (1u64 << 21) + 3 * (1 << 16) + 5;
        assert_eq!(remove_chunks_before(&storage, first_leaf + 1).unwrap(), 2);
        let mut left = storage.list().unwrap();
        left.sort();
        assert_eq!(
            left,
            vec![chunk_name(2, 0), chunk_name(1, 2), chunk_name(1, 3)]
        );
        // At the very start of chunk 2's first level-16 block: the block before it is the
        // last of chunk 1, which stays.
        let storage = MemStorage::new("mem");
        for chunk in 0..3 {
            storage
                .create(&chunk_name(1, chunk), CHUNK_LEN, &[])
                .unwrap();
        }
        assert_eq!(remove_chunks_before(&storage, (2 << 20) + 1).unwrap(), 1);
        assert_eq!(
            remove_chunks_before(&storage, (2 << 20) + (1 << 16) + 1).unwrap(),
            1
        );
        // Nothing pruned, nothing removed.
        assert_eq!(remove_chunks_before(&storage, 1).unwrap(), 0);
    }

    #[test]
    fn entries_are_written_once_read_back_and_cleared() {
        let storage: Arc<dyn Storage> = Arc::new(MemStorage::new("mem"));
        let tree = TreeFiles::new(storage.clone(), true);
        let h = |i: u64| Hash([i as u8 + 1; 32]);
        assert_eq!(tree.read(1, 5).unwrap(), None);
        for i in [
            0,
            1,
            CHUNK_ENTRIES - 1,
            CHUNK_ENTRIES,
            3 * CHUNK_ENTRIES + 2,
        ] {
            tree.write(1, i, &h(i)).unwrap();
        }
        let reader = TreeFiles::new(storage.clone(), false);
        assert_eq!(reader.read(1, 1).unwrap(), Some(h(1)));
        assert_eq!(reader.read(1, 2).unwrap(), None);
        assert_eq!(
            reader.read(1, CHUNK_ENTRIES).unwrap(),
            Some(h(CHUNK_ENTRIES))
        );
        assert_eq!(reader.read(2, 0).unwrap(), None);
        // Chunk 2 was never created; chunk 3 goes all the same.
        tree.clear_from(1, 1).unwrap();
        let reader = TreeFiles::new(storage.clone(), false);
        assert_eq!(reader.read(1, 0).unwrap(), Some(h(0)));
        assert_eq!(reader.read(1, CHUNK_ENTRIES - 1).unwrap(), None);
        assert_eq!(reader.read(1, CHUNK_ENTRIES).unwrap(), None);
        assert_eq!(reader.read(1, 3 * CHUNK_ENTRIES + 2).unwrap(), None);
        assert_eq!(storage.list().unwrap(), vec![chunk_name(1, 0)]);
    }
}
