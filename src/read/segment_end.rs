//! The end of a segment: checking the last committed record, and finding how far valid records
//! go past the committed length.
//!
//! Opening a log looks only here, never at the whole log: the commit slot says where the durable
//! records end and what the chain hash is there; the record just before that point must agree,
//! and whatever lies after it is accepted only while each record continues the chain.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::error::{IntegrityError, Reason};
use crate::format::event::decode_body;
use crate::format::hash::{Hash, chain_hash, leaf_hash};
use crate::format::segment::{
    HEADER_LEN, INDEX_ENTRY_LEN, INDEX_STRIDE, Prefix, Slot, index_entry_offset, u32_at,
};
use crate::read::cursor::{Cursor, RawRecord, Step};
use crate::storage::SegmentFile;

/// How far a run of valid records goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TailScan {
    /// Offset just past the last valid record.
    pub(crate) end: u64,
    /// Seq the next record would have.
    pub(crate) next_seq: u64,
    /// Chain hash after the last valid record.
    pub(crate) head: Hash,
    /// Number of valid records found.
    pub(crate) records: u64,
}

/// Whether `rec` is the record `seq` that follows chain hash `prev`: right seq, leaf and chain
/// hashes, zero padding, and a body that decodes. Returns the record's chain hash, or what is
/// wrong with it.
pub(crate) fn check_record(rec: &RawRecord<'_>, seq: u64, prev: &Hash) -> Result<Hash, Reason> {
    let leaf = check_unchained(rec, seq)?;
    let chain = chain_hash(prev, seq, &leaf);
    if chain != rec.header.chain {
        return Err(Reason::Chain {
            stored: rec.header.chain,
            computed: chain,
        });
    }
    Ok(chain)
}

/// Everything [`check_record`] checks but the chain hash, whose predecessor may not be at
/// hand. Returns the leaf hash.
pub(crate) fn check_unchained(rec: &RawRecord<'_>, seq: u64) -> Result<Hash, Reason> {
    let h = &rec.header;
    if h.seq != seq {
        return Err(Reason::Seq {
            expected: seq,
            found: h.seq,
        });
    }
    let leaf = leaf_hash(rec.body);
    if leaf != h.leaf {
        return Err(Reason::Leaf {
            stored: h.leaf,
            computed: leaf,
        });
    }
    if rec.padding.iter().any(|&b| b != 0) {
        return Err(Reason::NonZero("record padding"));
    }
    decode_body(rec.body).map_err(Reason::Body)?;
    Ok(leaf)
}

/// Follows valid records from `start` while they continue the chain (`next_seq`, `prev`), up
/// to `end`. Stops, without error, at the first byte that is not such a record.
pub(crate) fn scan_valid(
    file: &Arc<dyn SegmentFile>,
    start: u64,
    end: u64,
    next_seq: u64,
    prev: Hash,
) -> io::Result<TailScan> {
    let mut scan = TailScan {
        end: start,
        next_seq,
        head: prev,
        records: 0,
    };
    let mut cursor = Cursor::new(file.clone(), start, end);
    while let Step::Record(rec) = cursor.next_record()? {
        let Ok(chain) = check_record(&rec, scan.next_seq, &scan.head) else {
            break;
        };
        scan.end = rec.offset + rec.header.total_len();
        scan.next_seq += 1;
        scan.head = chain;
        scan.records += 1;
    }
    Ok(scan)
}

/// Reads index entry `entry` of a segment.
pub(crate) fn read_index_entry(file: &dyn SegmentFile, entry: u64) -> io::Result<u64> {
    let mut b = [0u8; INDEX_ENTRY_LEN as usize];
    file.read_exact_at(&mut b, index_entry_offset(entry))?;
    Ok(u64::from(u32_at(&b, 0)))
}

/// Checks the last committed record of a segment against its commit slot: found through the
/// index, it must carry `slot.last_seq`, hash to `slot.head`, and end exactly at
/// `slot.committed_len`. Costs at most one index stride of records, whatever the log's size.
pub(crate) fn check_committed_head(
    file: &Arc<dyn SegmentFile>,
    path: &Path,
    prefix: &Prefix,
    slot: &Slot,
) -> Result<(), CheckError> {
    let fail = |seq: Option<u64>, offset: u64, reason: Reason| {
        CheckError::Integrity(IntegrityError {
            seq,
            file: path.to_path_buf(),
            offset,
            reason,
        })
    };
    if slot.committed_len < prefix.data_offset || slot.committed_len > prefix.file_len {
        return Err(fail(
            None,
            slot.committed_len,
            Reason::SlotMismatch("committed length outside the data region"),
        ));
    }
    if slot.count() == 0 {
        if slot.committed_len != prefix.data_offset || slot.head != slot.anchor {
            return Err(fail(
                None,
                prefix.data_offset,
                Reason::SlotMismatch("an empty segment with a committed length or head"),
            ));
        }
        return Ok(());
    }
    let last = slot.last_seq - slot.first_seq;
    let entry = last / INDEX_STRIDE;
    if entry >= prefix.index_entries() {
        return Err(fail(
            Some(slot.last_seq),
            HEADER_LEN,
            Reason::SlotMismatch("more records than the index can hold"),
        ));
    }
    let start = read_index_entry(&**file, entry).map_err(CheckError::Io)?;
    if start < prefix.data_offset || start >= slot.committed_len {
        return Err(fail(
            Some(slot.first_seq + entry * INDEX_STRIDE),
            index_entry_offset(entry),
            Reason::Index {
                entry,
                seq: slot.first_seq + entry * INDEX_STRIDE,
                expected: 0,
                found: start,
            },
        ));
    }
    let mut seq = slot.first_seq + entry * INDEX_STRIDE;
    let mut prev: Option<Hash> = None;
    let mut cursor = Cursor::new(file.clone(), start, slot.committed_len);
    loop {
        let at = cursor.position();
        let rec = match cursor.next_record().map_err(CheckError::Io)? {
            Step::Record(rec) => rec,
            Step::End => {
                return Err(fail(
                    Some(seq),
                    at,
                    Reason::SlotMismatch("the committed region ends before the last record"),
                ));
            }
            Step::Broken { offset, reason } => return Err(fail(Some(seq), offset, reason)),
        };
        // Reading starts at the indexed record, whose predecessor's chain hash is not at hand
        // (unless it is the segment's first): its own chain hash is taken as stored, and each
        // later record must follow from it.
        let checked = match prev {
            Some(p) => check_record(&rec, seq, &p),
            None if seq == slot.first_seq => check_record(&rec, seq, &slot.anchor),
            None => check_unchained(&rec, seq).map(|_| rec.header.chain),
        };
        let chain = checked.map_err(|r| fail(Some(seq), rec.offset, r))?;
        if seq == slot.last_seq {
            let end = rec.offset + rec.header.total_len();
            if end != slot.committed_len {
                return Err(fail(
                    Some(seq),
                    end,
                    Reason::SlotMismatch("records continue past the last committed seq"),
                ));
            }
            if chain != slot.head {
                return Err(fail(
                    Some(seq),
                    rec.offset,
                    Reason::SlotMismatch("the last committed record's chain hash is not the head"),
                ));
            }
            return Ok(());
        }
        prev = Some(chain);
        seq += 1;
    }
}

/// A check that could not be made, or that failed.
#[derive(Debug)]
pub(crate) enum CheckError {
    /// Reading failed.
    Io(io::Error),
    /// The segment is damaged here.
    Integrity(IntegrityError),
}
