//! Checking many records at once: the expensive part of each record's check (hashing its body)
//! runs in parallel over a batch, the rest (seq and chain, which depend on the previous record)
//! in order.
//!
//! A batch is a buffer of back-to-back records, as a segment's data region or a bundle holds
//! them. [`split`] finds the records in it; [`check_bodies`] checks each record's leaf hash,
//! padding and body on every core; the caller then walks the records in order.

use std::ops::Range;

use crate::error::Reason;
use crate::event::decode_body;
use crate::hash::leaf_hash;
use crate::parallel::par_map;
use crate::retention::PRUNED_KIND;
use crate::segment::{RECORD_HEADER_LEN, RecordHeader};

/// How much a batch reads at a time.
pub(crate) const BATCH: usize = 4 << 20;

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

/// For each record: its body decodes, its padding is zero, and its stored leaf is the SHA-256
/// of its body; and whether it is a prune record. Runs on every core.
pub(crate) fn check_bodies(buf: &[u8], spans: &[Span]) -> Vec<Result<bool, Reason>> {
    par_map(spans, |s| {
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
        decode_body(body)
            .map(|e| e.kind == PRUNED_KIND)
            .map_err(Reason::Body)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Hash, chain_hash};

    fn record(seq: u64, body: &[u8]) -> Vec<u8> {
        let leaf = leaf_hash(body);
        let header = RecordHeader {
            body_len: body.len() as u32,
            seq,
            leaf,
            chain: chain_hash(&Hash::ZERO, seq, &leaf),
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(body);
        out.resize(crate::segment::record_len(body.len()), 0);
        out
    }

    fn body(kind: &str) -> Vec<u8> {
        let e = crate::Event::new(kind.to_owned()).timestamp_nanos(1);
        let mut b = vec![0; e.body_len()];
        e.encode_into(0, &mut b);
        b
    }

    #[test]
    fn splits_whole_records_and_asks_for_the_rest() {
        let mut bytes = Vec::new();
        for (i, k) in ["a", "bb", "ccc"].iter().enumerate() {
            bytes.extend(record(i as u64 + 1, &body(k)));
        }
        let end = 1000 + bytes.len() as u64;
        let s = split(&bytes, 1000, end);
        assert_eq!(s.spans.len(), 3);
        assert_eq!(s.used, bytes.len());
        assert!(s.broken.is_none());
        assert_eq!(s.spans[1].offset, 1000 + s.spans[0].range.len() as u64);
        assert!(check_bodies(&bytes, &s.spans).iter().all(Result::is_ok));
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
        let checks = check_bodies(&bad, &s.spans);
        assert!(checks[0].is_ok() && checks[2].is_err());
    }
}
