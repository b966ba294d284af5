//! Checking many records at once, on every core.
//!
//! Writing a chain is sequential: each chain hash needs the one before. *Checking* one is not:
//! record `i` is right when `chain[i] = SHA-256(chain[i-1] ‖ seq ‖ leaf[i])` with the
//! `chain[i-1]` *stored* in record `i-1`, and if that holds for every record and the first one
//! continues the anchor, then by induction every stored chain hash is the one a sequential walk
//! would compute. So both hashes of every record are checked in parallel, and only the cheap
//! part (seq continuity, index entries) is left for the caller's walk in order; the first
//! failure in order is the one a sequential walk would report.
//!
//! A batch is a buffer of back-to-back records, as a segment's data region or a bundle holds
//! them. [`split`] finds the records in it; [`check_records`] checks each record's leaf hash,
//! padding, body and chain hash.

use std::io;
use std::ops::Range;
use std::thread;

use crate::error::Reason;
use crate::format::event::decode_body;
use crate::format::hash::{Hash, chain_hash, leaf_hash};
use crate::format::prune::PRUNED_KIND;
use crate::format::seal::SEALED_KIND;
use crate::format::segment::{RECORD_HEADER_LEN, RecordHeader};
use crate::sys::parallel::par_map;

/// How much a batch reads at a time.
pub(crate) const BATCH: usize = 4 << 20;

/// A buffer of records read ahead, and the records found in it.
pub(crate) struct Batch {
    /// File offset of `buf[0]`.
    pub(crate) pos: u64,
    pub(crate) buf: Vec<u8>,
    pub(crate) split: Split,
}

/// Reads the region `[from, to)` through `read` (which continues where it left off, like
/// [`std::io::Read`], from `from`) and splits it into batches of whole records, on a helper
/// thread one batch ahead of `each`, which runs on the calling thread, in order. So reading
/// (and whatever `read` does, such as hashing the file) overlaps with checking. Stops at the
/// first error, at the end of the region, or after the batch in which the records break (its
/// `split.broken` says where). A `read` that ends early (the file shrank) ends the region
/// there.
pub(crate) fn for_each_batch<E: Send>(
    read: impl FnMut(&mut [u8]) -> io::Result<usize> + Send,
    from: u64,
    to: u64,
    io_error: impl Fn(io::Error) -> E,
    each: impl FnMut(&Batch) -> Result<(), E>,
) -> Result<(), E> {
    for_each_batch_bounded(read, from, to, u64::MAX, io_error, each)
}

/// Like [`for_each_batch`], but a record longer than `max_record` bytes (header and padding
/// included) is not read: the records break there (`Reason::RecordTooLarge`). So the memory a
/// walk takes is bounded by `max_record`, not by what a length field claims.
pub(crate) fn for_each_batch_bounded<E: Send>(
    mut read: impl FnMut(&mut [u8]) -> io::Result<usize> + Send,
    from: u64,
    to: u64,
    max_record: u64,
    io_error: impl Fn(io::Error) -> E,
    mut each: impl FnMut(&Batch) -> Result<(), E>,
) -> Result<(), E> {
    // A record no longer than a batch is read whole in any case.
    debug_assert!(max_record >= BATCH as u64);
    let (tx, rx) = crossbeam::channel::bounded::<io::Result<Batch>>(1);
    let (recycle, recycled) = crossbeam::channel::unbounded::<Vec<u8>>();
    thread::scope(|s| {
        s.spawn(move || {
            let mut pos = from;
            let mut end = to;
            let mut carry: Vec<u8> = Vec::new();
            let mut want = BATCH;
            while pos < end {
                let mut buf = recycled.try_recv().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(&carry);
                let fill = (end - pos).min(want as u64) as usize;
                if buf.len() < fill {
                    let have = buf.len();
                    buf.resize(fill, 0);
                    let n = match read_full(&mut read, &mut buf[have..]) {
                        Ok(n) => n,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    buf.truncate(have + n);
                    if have + n < fill {
                        end = pos + buf.len() as u64;
                    }
                }
                let mut split = split(&buf, pos, end);
                if split.used == 0 && split.broken.is_none() && split.need as u64 > max_record {
                    let len = split.need as u64;
                    split.broken = Some((
                        pos,
                        Reason::RecordTooLarge {
                            len,
                            max: max_record,
                        },
                    ));
                }
                let (used, need, broken) = (split.used, split.need, split.broken.is_some());
                if used == 0 && !broken {
                    // A record larger than a batch: read all of it.
                    want = want.max(need);
                    carry = buf;
                    continue;
                }
                carry.clear();
                carry.extend_from_slice(&buf[used..]);
                if tx.send(Ok(Batch { pos, buf, split })).is_err() || broken {
                    return;
                }
                pos += used as u64;
                want = BATCH;
            }
        });
        for batch in rx {
            let batch = batch.map_err(&io_error)?;
            each(&batch)?;
            let _ = recycle.send(batch.buf);
        }
        Ok(())
    })
}

/// Fills `buf` from `read`; fewer bytes only at the end of the input.
fn read_full(
    read: &mut impl FnMut(&mut [u8]) -> io::Result<usize>,
    mut buf: &mut [u8],
) -> io::Result<usize> {
    let mut total = 0;
    while !buf.is_empty() {
        match read(buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// A record found in a buffer.
pub(crate) struct Span {
    /// File offset of its first byte.
    pub(crate) offset: u64,
    /// Where it lies in the buffer.
    pub(crate) range: Range<usize>,
    /// Its header.
    pub(crate) header: RecordHeader,
}

impl Span {
    /// Its body, in `buf`.
    pub(crate) fn body<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        let start = self.range.start + RECORD_HEADER_LEN;
        &buf[start..start + self.header.body_len as usize]
    }
}

/// The whole records at the start of a buffer.
pub(crate) struct Split {
    pub(crate) spans: Vec<Span>,
    /// Bytes of whole records.
    pub(crate) used: usize,
    /// Bytes the next record needs, when the buffer holds only part of it (0 otherwise).
    pub(crate) need: usize,
    /// Where, and why, the bytes stop being a record.
    pub(crate) broken: Option<(u64, Reason)>,
}

/// Splits `buf`, which holds the bytes of a region from file offset `start`, into records. The
/// region ends at file offset `end`; `buf` may hold less of it. A record that would run past
/// `end` is broken (so a length field cannot make the caller read more than the region holds),
/// as are bytes at the very end of the region that are not a whole record.
pub(crate) fn split(buf: &[u8], start: u64, end: u64) -> Split {
    let mut out = Split {
        spans: Vec::new(),
        used: 0,
        need: 0,
        broken: None,
    };
    let at_end = start + buf.len() as u64 >= end;
    let mut pos = 0;
    while pos < buf.len() {
        let offset = start + pos as u64;
        let rest = &buf[pos..];
        if rest.len() < RECORD_HEADER_LEN {
            if at_end {
                out.broken = Some((offset, Reason::RecordMagic));
            } else {
                out.need = RECORD_HEADER_LEN;
            }
            break;
        }
        let Some(header) = RecordHeader::decode(rest) else {
            out.broken = Some((offset, Reason::RecordMagic));
            break;
        };
        let total = header.total_len();
        if offset + total > end {
            out.broken = Some((
                offset,
                Reason::RecordLength {
                    len: u64::from(header.body_len),
                    end,
                },
            ));
            break;
        }
        let total = total as usize;
        if rest.len() < total {
            out.need = total;
            break;
        }
        out.spans.push(Span {
            offset,
            range: pos..pos + total,
            header,
        });
        pos += total;
    }
    out.used = pos;
    out
}

/// For each record: its stored leaf is the SHA-256 of its body, its padding is zero, its body
/// decodes, and its stored chain hash follows the stored chain hash before it (`prev` for the
/// first record); and whether it is a prune or a seal record. Runs on every core.
pub(crate) fn check_records(
    buf: &[u8],
    spans: &[Span],
    prev: &Hash,
) -> Vec<Result<RecordKind, Reason>> {
    let indices: Vec<usize> = (0..spans.len()).collect();
    par_map(&indices, |&i| {
        let s = &spans[i];
        let before = if i == 0 {
            prev
        } else {
            &spans[i - 1].header.chain
        };
        let body = s.body(buf);
        let padding = &buf[s.range.start + RECORD_HEADER_LEN + body.len()..s.range.end];
        let computed = leaf_hash(body);
        if computed != s.header.leaf {
            return Err(Reason::Leaf {
                stored: s.header.leaf,
                computed,
            });
        }
        if padding.iter().any(|&b| b != 0) {
            return Err(Reason::NonZero("record padding"));
        }
        let kind = decode_body(body)
            .map(|e| match e.kind {
                PRUNED_KIND => RecordKind::Prune,
                SEALED_KIND => RecordKind::Seal,
                _ => RecordKind::Other,
            })
            .map_err(Reason::Body)?;
        check_chain(before, s.header.seq, &s.header.leaf, &s.header.chain)?;
        Ok(kind)
    })
}

/// The records the walk reads twice: what retention and sealing wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// An `auditring.pruned` record.
    Prune,
    /// An `auditring.sealed` record.
    Seal,
    /// Any other.
    Other,
}

/// Whether `chain` is the chain hash of record `seq` with leaf `leaf` after `prev`.
pub(crate) fn check_chain(prev: &Hash, seq: u64, leaf: &Hash, chain: &Hash) -> Result<(), Reason> {
    let computed = chain_hash(prev, seq, leaf);
    if computed == *chain {
        Ok(())
    } else {
        Err(Reason::Chain {
            stored: *chain,
            computed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(prev: &mut Hash, seq: u64, body: &[u8]) -> Vec<u8> {
        let leaf = leaf_hash(body);
        *prev = chain_hash(prev, seq, &leaf);
        let header = RecordHeader {
            body_len: body.len() as u32,
            seq,
            leaf,
            chain: *prev,
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(body);
        out.resize(crate::format::segment::record_len(body.len()), 0);
        out
    }

    fn body(kind: &str) -> Vec<u8> {
        let e = crate::Event::new(kind.to_owned()).with_timestamp_nanos(1);
        let mut b = vec![0; e.body_len()];
        e.encode_into(0, &mut b);
        b
    }

    #[test]
    fn splits_whole_records_and_asks_for_the_rest() {
        let mut bytes = Vec::new();
        let mut prev = Hash::ZERO;
        for (i, k) in ["a", "bb", "ccc"].iter().enumerate() {
            bytes.extend(record(&mut prev, i as u64 + 1, &body(k)));
        }
        let end = 1000 + bytes.len() as u64;
        let s = split(&bytes, 1000, end);
        assert_eq!(s.spans.len(), 3);
        assert_eq!(s.used, bytes.len());
        assert!(s.broken.is_none());
        assert_eq!(s.spans[1].offset, 1000 + s.spans[0].range.len() as u64);
        assert!(
            check_records(&bytes, &s.spans, &Hash::ZERO)
                .iter()
                .all(Result::is_ok)
        );
        // Part of the last record: ask for it, or, at the end of the region, it is broken.
        let cut = &bytes[..bytes.len() - 3];
        let s = split(cut, 1000, end);
        assert_eq!((s.spans.len(), s.need), (2, bytes.len() - s.used));
        let s = split(cut, 1000, 1000 + cut.len() as u64);
        assert!(matches!(s.broken, Some((_, Reason::RecordLength { .. }))));
        // A damaged body is found by the parallel check.
        let mut bad = bytes.clone();
        let last = bad.len() - 9;
        bad[last] ^= 1;
        let s = split(&bad, 0, bad.len() as u64);
        let checks = check_records(&bad, &s.spans, &Hash::ZERO);
        assert!(checks[0].is_ok() && checks[2].is_err());
    }

    #[test]
    fn chains_are_checked_against_the_stored_hash_before_them() {
        let mut bytes = Vec::new();
        let mut prev = Hash([7; 32]);
        for seq in 10..1010 {
            bytes.extend(record(&mut prev, seq, &body(&format!("k{seq}"))));
        }
        let s = split(&bytes, 0, bytes.len() as u64);
        let anchor = Hash([7; 32]);
        assert!(
            check_records(&bytes, &s.spans, &anchor)
                .iter()
                .all(Result::is_ok)
        );
        // Another anchor: only the first record is wrong.
        let checks = check_records(&bytes, &s.spans, &Hash::ZERO);
        assert!(matches!(checks[0], Err(Reason::Chain { .. })));
        assert!(checks[1..].iter().all(Result::is_ok));
        // A chain hash changed in record 500: that record and the next one fail, the first of
        // them is the one a sequential walk names.
        let at = s.spans[500].range.start + crate::format::segment::RECORD_CHAIN_AT;
        bytes[at] ^= 1;
        let s = split(&bytes, 0, bytes.len() as u64);
        let checks = check_records(&bytes, &s.spans, &anchor);
        let failed: Vec<usize> = (0..checks.len()).filter(|&i| checks[i].is_err()).collect();
        assert_eq!(failed, [500, 501]);
    }
}
