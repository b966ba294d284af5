//! The segment file format: header page, commit slots, sparse index and records.
//!
//! This module only encodes and decodes bytes; it does no I/O and holds no policy. The format is
//! specified byte by byte in `docs/FORMAT.md`; in short, a segment file of `file_len` bytes is:
//!
//! ```text
//! [0, 4096)                 header page
//!     [0, 96)               prefix: magic, version, chain algorithm, index stride, segment
//!                           number, file length, data offset, created time, log id, digest
//!     [512, 648)            commit slot 0
//!     [1024, 1160)          commit slot 1
//!     every other byte      zero
//! [4096, data_offset)       sparse index: u32 file offset of every 64th record, 0 = none yet
//! [data_offset, file_len)   records, 8-byte aligned, then zeros
//! ```
//!
//! A record is an 80-byte header (`"AREC"`, body length, seq, leaf hash, chain hash), the body
//! (see [`crate::format::event`]) and zero padding up to a multiple of 8.
//!
//! The two commit slots are written alternately, each with a generation number and a digest, so
//! that a write torn by a crash damages at most the slot being written and the other still holds
//! the previous commit. The newest slot with a good digest is the segment's state.

use crate::format::hash::{Hash, digest_parts};

/// First eight bytes of every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"AUDITRNG";
/// The format version this crate writes and reads.
pub(crate) const FORMAT_VERSION: u16 = 1;
/// Chain algorithm 1: the SHA-256 chain described in [`crate::format::hash`].
pub(crate) const CHAIN_SHA256: u16 = 1;
/// Size of the header page.
pub(crate) const HEADER_LEN: u64 = 4096;

// The prefix, `[0, 96)` of the header page (`docs/FORMAT.md` §3.1): where each field starts. The
// prefix starts the file, so these are file offsets too.
/// `magic`: `[8]`, [`MAGIC`].
const PREFIX_MAGIC_AT: usize = 0;
/// `version`: `u16`, [`FORMAT_VERSION`].
const PREFIX_VERSION_AT: usize = 8;
/// `algorithm`: `u16`, [`CHAIN_SHA256`].
const PREFIX_ALGORITHM_AT: usize = 10;
/// `index stride`: `u32`, [`INDEX_STRIDE`].
const PREFIX_STRIDE_AT: usize = 12;
/// `number`: `u64`, the segment number.
pub(crate) const PREFIX_NUMBER_AT: usize = 16;
/// `file_len`: `u64`.
const PREFIX_FILE_LEN_AT: usize = 24;
/// `data_offset`: `u64`.
const PREFIX_DATA_OFFSET_AT: usize = 32;
/// `created`: `i64`, nanoseconds since the Unix epoch.
const PREFIX_CREATED_AT: usize = 40;
/// `log_id`: `[16]`.
pub(crate) const PREFIX_LOG_ID_AT: usize = 48;
/// Bytes of the prefix that are covered by its digest; the `prefix digest` follows them.
const PREFIX_BODY_LEN: usize = 64;
/// Length of the prefix including its digest.
pub(crate) const PREFIX_LEN: usize = PREFIX_BODY_LEN + 32;

/// File offsets of the two commit slots (each in its own 512-byte sector).
pub(crate) const SLOT_OFFSETS: [u64; 2] = [512, 1024];
// A commit slot (`docs/FORMAT.md` §3.2): where each field starts, from the slot's start.
/// `generation`: `u64`.
const SLOT_GENERATION_AT: usize = 0;
/// `first_seq`: `u64`.
const SLOT_FIRST_SEQ_AT: usize = 8;
/// `committed_len`: `u64`.
const SLOT_COMMITTED_LEN_AT: usize = 16;
/// `last_seq`: `u64`.
const SLOT_LAST_SEQ_AT: usize = 24;
/// `flags`: `u32`, [`FLAG_SEALED`] and [`FLAG_CLEAN`].
const SLOT_FLAGS_AT: usize = 32;
/// `reserved`: `u32`, zero.
const SLOT_RESERVED_AT: usize = 36;
/// `anchor`: `[32]`.
const SLOT_ANCHOR_AT: usize = 40;
/// `head`: `[32]`.
const SLOT_HEAD_AT: usize = 72;
/// Bytes of a slot that are covered by its digest; the `slot digest` follows them.
const SLOT_BODY_LEN: usize = 104;
/// Length of a commit slot including its digest.
pub(crate) const SLOT_LEN: usize = SLOT_BODY_LEN + 32;

/// Every `INDEX_STRIDE`-th record of a segment has an index entry.
pub(crate) const INDEX_STRIDE: u64 = 64;
/// Size of an index entry: a `u32` file offset (`docs/FORMAT.md` §4).
pub(crate) const INDEX_ENTRY_LEN: u64 = 4;
/// The index region is rounded up to whole pages of this size (`docs/FORMAT.md` §2).
const INDEX_PAGE_LEN: u64 = 4096;

/// First four bytes of every record.
pub(crate) const RECORD_MAGIC: [u8; 4] = *b"AREC";
// A record header (`docs/FORMAT.md` §5): where each field starts, from the record's start.
/// `magic`: `[4]`, [`RECORD_MAGIC`].
const RECORD_MAGIC_AT: usize = 0;
/// `body_len`: `u32`.
const RECORD_BODY_LEN_AT: usize = 4;
/// `seq`: `u64`.
const RECORD_SEQ_AT: usize = 8;
/// `leaf`: `[32]`.
const RECORD_LEAF_AT: usize = 16;
/// `chain`: `[32]`.
pub(crate) const RECORD_CHAIN_AT: usize = 48;
/// Length of a record header.
pub(crate) const RECORD_HEADER_LEN: usize = 80;
/// Records start at multiples of this.
pub(crate) const RECORD_ALIGN: usize = 8;
/// The smallest possible record: header plus a body with a one-byte kind, aligned.
pub(crate) const MIN_RECORD_LEN: u64 = 104;
/// Smallest segment file this crate creates.
pub const MIN_SEGMENT_SIZE: u64 = 64 * 1024;
/// Largest segment file: index entries are 32-bit file offsets.
pub const MAX_SEGMENT_SIZE: u64 = 1 << 32;
/// Generations are below this (they grow by one per commit, so it is never reached); a slot
/// claiming more is damaged, and adding to a generation can never overflow.
pub(crate) const MAX_GENERATION: u64 = 1 << 63;
/// Slot flag: the segment is sealed and will never grow.
const FLAG_SEALED: u32 = 1;
/// Slot flag: the writer closed the log cleanly; nothing was written past `committed_len`.
const FLAG_CLEAN: u32 = 2;

/// File offset of the commit slot that generation `generation` is written to: position
/// `generation % 2`.
pub(crate) fn slot_offset(generation: u64) -> u64 {
    SLOT_OFFSETS[(generation % 2) as usize]
}

/// File offset of index entry `entry`.
pub(crate) fn index_entry_offset(entry: u64) -> u64 {
    HEADER_LEN + entry * INDEX_ENTRY_LEN
}

/// Total length of a record with a body of `body_len` bytes, padding included.
#[inline]
pub(crate) const fn record_len(body_len: usize) -> usize {
    (RECORD_HEADER_LEN + body_len + RECORD_ALIGN - 1) & !(RECORD_ALIGN - 1)
}

/// Where the data region of a segment of `file_len` bytes begins: after the header page and an
/// index large enough for the most records such a file can hold, rounded up to whole pages.
pub(crate) fn data_offset_for(file_len: u64) -> u64 {
    let max_records = file_len.saturating_sub(HEADER_LEN) / MIN_RECORD_LEN;
    let entries = max_records / INDEX_STRIDE + 1;
    HEADER_LEN + (entries * INDEX_ENTRY_LEN).div_ceil(INDEX_PAGE_LEN) * INDEX_PAGE_LEN
}

/// The static part of the header page, written once when the file is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefix {
    /// Position of the segment in its log, from 1; the file is named after it.
    pub(crate) number: u64,
    /// Length of the file in bytes.
    pub(crate) file_len: u64,
    /// Start of the data region; the index region is `[HEADER_LEN, data_offset)`.
    pub(crate) data_offset: u64,
    /// When the file was created, nanoseconds since the Unix epoch.
    pub(crate) created: i64,
    /// Random identity shared by every segment of one log.
    pub(crate) log_id: [u8; 16],
}

impl Prefix {
    /// The prefix's bytes, digest included.
    pub(crate) fn encode(&self) -> [u8; PREFIX_LEN] {
        let mut b = [0u8; PREFIX_LEN];
        put(&mut b, PREFIX_MAGIC_AT, &MAGIC);
        put(&mut b, PREFIX_VERSION_AT, &FORMAT_VERSION.to_le_bytes());
        put(&mut b, PREFIX_ALGORITHM_AT, &CHAIN_SHA256.to_le_bytes());
        put(
            &mut b,
            PREFIX_STRIDE_AT,
            &(INDEX_STRIDE as u32).to_le_bytes(),
        );
        put(&mut b, PREFIX_NUMBER_AT, &self.number.to_le_bytes());
        put(&mut b, PREFIX_FILE_LEN_AT, &self.file_len.to_le_bytes());
        put(
            &mut b,
            PREFIX_DATA_OFFSET_AT,
            &self.data_offset.to_le_bytes(),
        );
        put(&mut b, PREFIX_CREATED_AT, &self.created.to_le_bytes());
        put(&mut b, PREFIX_LOG_ID_AT, &self.log_id);
        let digest = digest_parts(&[&b[..PREFIX_BODY_LEN]]);
        b[PREFIX_BODY_LEN..].copy_from_slice(&digest.0);
        b
    }

    /// Digest of the prefix, which every commit slot of the same file includes in its own.
    pub(crate) fn digest(&self) -> Hash {
        let b = self.encode();
        Hash(b[PREFIX_BODY_LEN..].try_into().expect("32 bytes"))
    }

    /// Decodes and checks the prefix from the start of the header page.
    pub(crate) fn decode(b: &[u8]) -> Result<Prefix, HeaderError> {
        if b.len() < PREFIX_LEN {
            return Err(HeaderError::Truncated {
                len: b.len() as u64,
            });
        }
        if b[PREFIX_MAGIC_AT..PREFIX_MAGIC_AT + MAGIC.len()] != MAGIC {
            return Err(HeaderError::BadMagic);
        }
        let version = u16_at(b, PREFIX_VERSION_AT);
        if version != FORMAT_VERSION {
            return Err(HeaderError::UnsupportedVersion(version));
        }
        let digest = digest_parts(&[&b[..PREFIX_BODY_LEN]]);
        if b[PREFIX_BODY_LEN..PREFIX_LEN] != digest.0 {
            return Err(HeaderError::PrefixDigest);
        }
        let algorithm = u16_at(b, PREFIX_ALGORITHM_AT);
        if algorithm != CHAIN_SHA256 {
            return Err(HeaderError::UnsupportedAlgorithm(algorithm));
        }
        let stride = u32_at(b, PREFIX_STRIDE_AT);
        if u64::from(stride) != INDEX_STRIDE {
            return Err(HeaderError::Layout("index stride is not 64"));
        }
        let p = Prefix {
            number: u64_at(b, PREFIX_NUMBER_AT),
            file_len: u64_at(b, PREFIX_FILE_LEN_AT),
            data_offset: u64_at(b, PREFIX_DATA_OFFSET_AT),
            created: u64_at(b, PREFIX_CREATED_AT) as i64,
            log_id: b[PREFIX_LOG_ID_AT..PREFIX_LOG_ID_AT + 16]
                .try_into()
                .expect("16 bytes"),
        };
        if p.number == 0 {
            return Err(HeaderError::Layout("segment number is 0"));
        }
        if p.file_len < MIN_SEGMENT_SIZE || p.file_len > MAX_SEGMENT_SIZE {
            return Err(HeaderError::Layout("file length outside 64 KiB ..= 4 GiB"));
        }
        if p.data_offset != data_offset_for(p.file_len) {
            return Err(HeaderError::Layout(
                "data offset does not match the file length",
            ));
        }
        Ok(p)
    }

    /// Number of index entries the index region holds.
    pub(crate) fn index_entries(&self) -> u64 {
        (self.data_offset - HEADER_LEN) / INDEX_ENTRY_LEN
    }
}

/// The mutable part of the header: one commit slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    /// Incremented on every slot write; the slot with the larger generation is current.
    pub(crate) generation: u64,
    /// Seq of the segment's first record.
    pub(crate) first_seq: u64,
    /// File offset where the records known to be durable end.
    pub(crate) committed_len: u64,
    /// Seq of the last record before `committed_len`; `first_seq - 1` when there is none.
    pub(crate) last_seq: u64,
    /// The segment is complete: `committed_len` is final.
    pub(crate) sealed: bool,
    /// The writer closed cleanly after this commit: nothing lies past `committed_len`.
    pub(crate) clean: bool,
    /// Chain hash just before the first record.
    pub(crate) anchor: Hash,
    /// Chain hash of record `last_seq`; equals `anchor` when there is none.
    pub(crate) head: Hash,
}

/// What a slot's bytes hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// All zeros: never written.
    Empty,
    /// A good slot.
    Valid(Slot),
    /// Neither: a write torn by a crash, or tampering.
    Torn,
}

impl Slot {
    /// The slot's bytes, bound to its file by the prefix digest.
    pub(crate) fn encode(&self, prefix_digest: &Hash) -> [u8; SLOT_LEN] {
        let mut b = [0u8; SLOT_LEN];
        put(&mut b, SLOT_GENERATION_AT, &self.generation.to_le_bytes());
        put(&mut b, SLOT_FIRST_SEQ_AT, &self.first_seq.to_le_bytes());
        put(
            &mut b,
            SLOT_COMMITTED_LEN_AT,
            &self.committed_len.to_le_bytes(),
        );
        put(&mut b, SLOT_LAST_SEQ_AT, &self.last_seq.to_le_bytes());
        let flags =
            if self.sealed { FLAG_SEALED } else { 0 } | if self.clean { FLAG_CLEAN } else { 0 };
        put(&mut b, SLOT_FLAGS_AT, &flags.to_le_bytes());
        put(&mut b, SLOT_ANCHOR_AT, &self.anchor.0);
        put(&mut b, SLOT_HEAD_AT, &self.head.0);
        let digest = digest_parts(&[&prefix_digest.0, &b[..SLOT_BODY_LEN]]);
        b[SLOT_BODY_LEN..].copy_from_slice(&digest.0);
        b
    }

    /// Decodes a slot; a bad digest, unknown flags or inconsistent fields make it `Torn`.
    pub(crate) fn decode(b: &[u8], prefix_digest: &Hash) -> SlotState {
        if b.len() < SLOT_LEN {
            return SlotState::Torn;
        }
        let b = &b[..SLOT_LEN];
        if b.iter().all(|&x| x == 0) {
            return SlotState::Empty;
        }
        let digest = digest_parts(&[&prefix_digest.0, &b[..SLOT_BODY_LEN]]);
        if b[SLOT_BODY_LEN..] != digest.0 {
            return SlotState::Torn;
        }
        let flags = u32_at(b, SLOT_FLAGS_AT);
        let slot = Slot {
            generation: u64_at(b, SLOT_GENERATION_AT),
            first_seq: u64_at(b, SLOT_FIRST_SEQ_AT),
            committed_len: u64_at(b, SLOT_COMMITTED_LEN_AT),
            last_seq: u64_at(b, SLOT_LAST_SEQ_AT),
            sealed: flags & FLAG_SEALED != 0,
            clean: flags & FLAG_CLEAN != 0,
            anchor: hash_at(b, SLOT_ANCHOR_AT),
            head: hash_at(b, SLOT_HEAD_AT),
        };
        let consistent = flags & !(FLAG_SEALED | FLAG_CLEAN) == 0
            && u32_at(b, SLOT_RESERVED_AT) == 0
            && (1..MAX_GENERATION).contains(&slot.generation)
            && slot.first_seq != 0
            && slot
                .last_seq
                .checked_add(1)
                .is_some_and(|n| n >= slot.first_seq);
        if consistent {
            SlotState::Valid(slot)
        } else {
            SlotState::Torn
        }
    }

    /// Number of records the slot covers.
    pub(crate) fn count(&self) -> u64 {
        self.last_seq + 1 - self.first_seq
    }
}

/// The fixed header of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Length of the body that follows the header.
    pub(crate) body_len: u32,
    /// The record's sequence number.
    pub(crate) seq: u64,
    /// `SHA-256(body)`.
    pub(crate) leaf: Hash,
    /// `SHA-256(prev ‖ seq ‖ leaf)`.
    pub(crate) chain: Hash,
}

impl RecordHeader {
    /// The header's bytes.
    pub(crate) fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut b = [0u8; RECORD_HEADER_LEN];
        put(&mut b, RECORD_MAGIC_AT, &RECORD_MAGIC);
        put(&mut b, RECORD_BODY_LEN_AT, &self.body_len.to_le_bytes());
        put(&mut b, RECORD_SEQ_AT, &self.seq.to_le_bytes());
        put(&mut b, RECORD_LEAF_AT, &self.leaf.0);
        put(&mut b, RECORD_CHAIN_AT, &self.chain.0);
        b
    }

    /// Decodes a record header; `None` when the magic is wrong or `b` is too short.
    pub(crate) fn decode(b: &[u8]) -> Option<RecordHeader> {
        if b.len() < RECORD_HEADER_LEN
            || b[RECORD_MAGIC_AT..RECORD_MAGIC_AT + RECORD_MAGIC.len()] != RECORD_MAGIC
        {
            return None;
        }
        Some(RecordHeader {
            body_len: u32_at(b, RECORD_BODY_LEN_AT),
            seq: u64_at(b, RECORD_SEQ_AT),
            leaf: hash_at(b, RECORD_LEAF_AT),
            chain: hash_at(b, RECORD_CHAIN_AT),
        })
    }

    /// Total length of the record, padding included.
    pub(crate) fn total_len(&self) -> u64 {
        record_len(self.body_len as usize) as u64
    }
}

/// Why a segment header cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The file is shorter than the header page.
    #[error("truncated header: the file is {len} bytes, shorter than the 4096-byte header")]
    Truncated {
        /// The file's length.
        len: u64,
    },
    /// The first eight bytes are not `AUDITRNG`.
    #[error("bad magic: not an auditring segment")]
    BadMagic,
    /// A format version this build does not read.
    #[error("unsupported format version {0} (this build reads version 1)")]
    UnsupportedVersion(u16),
    /// A chain algorithm this build does not know.
    #[error("unsupported chain algorithm {0} (this build knows 1, SHA-256)")]
    UnsupportedAlgorithm(u16),
    /// The prefix digest does not match.
    #[error("header prefix digest mismatch")]
    PrefixDigest,
    /// The prefix is self-consistent but describes an impossible layout.
    #[error("invalid header layout: {0}")]
    Layout(&'static str),
    /// Both commit slots are Valid with the same generation, which only one position may hold:
    /// a slot was copied over the other, so which state is current is unknown (`docs/FORMAT.md`
    /// §3.2). Located at the second slot, 1024.
    #[error(
        "both commit slots claim generation {generation}, which only one of them can hold (a \
         slot copied over the other: tampering or a faulty disk), so the segment's current \
         state is unknown"
    )]
    SameGeneration {
        /// The generation both claim.
        generation: u64,
    },
}

/// Copies `bytes` into `b` at `at`.
fn put(b: &mut [u8], at: usize, bytes: &[u8]) {
    b[at..at + bytes.len()].copy_from_slice(bytes);
}

/// The 32-byte hash at `at`.
fn hash_at(b: &[u8], at: usize) -> Hash {
    Hash(b[at..at + 32].try_into().expect("32 bytes"))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix() -> Prefix {
        Prefix {
            number: 3,
            file_len: 1 << 20,
            data_offset: data_offset_for(1 << 20),
            created: 1_700_000_000_000_000_000,
            log_id: [9; 16],
        }
    }

    #[test]
    fn layout_constants_agree() {
        assert_eq!(record_len(21) as u64, MIN_RECORD_LEN);
        assert_eq!(record_len(0), 80);
        assert_eq!(record_len(1), 88);
        assert!(SLOT_OFFSETS[0] as usize >= PREFIX_LEN);
        assert!(SLOT_OFFSETS[0] as usize + SLOT_LEN <= SLOT_OFFSETS[1] as usize);
        assert!(SLOT_OFFSETS[1] as usize + SLOT_LEN <= HEADER_LEN as usize);
        // The last field of each layout ends where its digest, or the body, begins.
        assert_eq!(PREFIX_LOG_ID_AT + 16, PREFIX_BODY_LEN);
        assert_eq!(SLOT_HEAD_AT + 32, SLOT_BODY_LEN);
        assert_eq!(RECORD_CHAIN_AT + 32, RECORD_HEADER_LEN);
        assert_eq!(slot_offset(2), SLOT_OFFSETS[0]);
        assert_eq!(slot_offset(7), SLOT_OFFSETS[1]);
        // Index entries suffice for a file full of minimal records.
        for len in [MIN_SEGMENT_SIZE, 1 << 20, 64 << 20, MAX_SEGMENT_SIZE] {
            let d = data_offset_for(len);
            assert_eq!(d % 4096, 0);
            let max_records = (len - d) / MIN_RECORD_LEN;
            assert!((d - HEADER_LEN) / 4 >= max_records.div_ceil(INDEX_STRIDE));
        }
    }

    #[test]
    fn prefix_round_trip_and_checks() {
        let p = prefix();
        let b = p.encode();
        assert_eq!(Prefix::decode(&b).unwrap(), p);
        assert_eq!(
            Prefix::decode(&b[..50]),
            Err(HeaderError::Truncated { len: 50 })
        );
        let mut bad = b;
        bad[0] = b'X';
        assert_eq!(Prefix::decode(&bad), Err(HeaderError::BadMagic));
        let mut bad = b;
        bad[8] = 2;
        assert_eq!(
            Prefix::decode(&bad),
            Err(HeaderError::UnsupportedVersion(2))
        );
        for i in 10..PREFIX_LEN {
            let mut bad = b;
            bad[i] ^= 0x10;
            assert!(Prefix::decode(&bad).is_err(), "byte {i}");
        }
    }

    #[test]
    fn slot_round_trip_and_torn() {
        let d = prefix().digest();
        let s = Slot {
            generation: 5,
            first_seq: 10,
            committed_len: 9000,
            last_seq: 12,
            sealed: true,
            clean: false,
            anchor: Hash([1; 32]),
            head: Hash([2; 32]),
        };
        let b = s.encode(&d);
        assert_eq!(Slot::decode(&b, &d), SlotState::Valid(s));
        let clean = Slot { clean: true, ..s };
        assert_eq!(Slot::decode(&clean.encode(&d), &d), SlotState::Valid(clean));
        assert_eq!(Slot::decode(&[0; SLOT_LEN], &d), SlotState::Empty);
        assert_eq!(Slot::decode(&b, &Hash([7; 32])), SlotState::Torn);
        for i in 0..SLOT_LEN {
            let mut bad = b;
            bad[i] ^= 1;
            assert_eq!(Slot::decode(&bad, &d), SlotState::Torn, "byte {i}");
        }
        for generation in [0, MAX_GENERATION, u64::MAX] {
            let forged = Slot { generation, ..s };
            assert_eq!(Slot::decode(&forged.encode(&d), &d), SlotState::Torn);
        }
        assert_eq!(s.count(), 3);
    }

    #[test]
    fn record_header_round_trip() {
        let h = RecordHeader {
            body_len: 21,
            seq: 77,
            leaf: Hash([3; 32]),
            chain: Hash([4; 32]),
        };
        let b = h.encode();
        assert_eq!(RecordHeader::decode(&b), Some(h));
        assert_eq!(RecordHeader::decode(&b[..79]), None);
        assert_eq!(RecordHeader::decode(&[0; 80]), None);
        assert_eq!(h.total_len(), 104);
    }
}
