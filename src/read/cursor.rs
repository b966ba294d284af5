//! Sequential, buffered reading of records from a segment file.
//!
//! Every reader of records (snapshots, verification, recovery) goes through a [`Cursor`]: it reads
//! the file with `pread` in large chunks, so a reader copies what it looks at and never touches a
//! mapping another thread or process is writing, and a file shorter than expected is an error,
//! never a `SIGBUS`.

use std::io;
use std::sync::Arc;

use crate::error::Reason;
use crate::format::segment::{RECORD_HEADER_LEN, RecordHeader};
use crate::storage::SegmentFile;

/// How much a cursor reads at a time.
const CHUNK: usize = 256 * 1024;

/// One step of a cursor.
pub(crate) enum Step<'a> {
    /// A structurally sound record.
    Record(RawRecord<'a>),
    /// The region ends exactly here.
    End,
    /// No record where one must start: no record header there (bad magic, or fewer bytes than
    /// a header left), or one whose body would run past the region's end.
    Broken {
        /// Where the record should start.
        offset: u64,
        /// Which of the two.
        reason: Reason,
    },
}

/// A [`Step`] whose body was copied out.
pub(crate) enum Owned {
    Record { offset: u64, header: RecordHeader },
    End,
    Broken { offset: u64, reason: Reason },
}

/// A record as stored: header, body and padding, borrowed from the cursor's buffer.
pub(crate) struct RawRecord<'a> {
    /// File offset of the record's first byte.
    pub(crate) offset: u64,
    /// The decoded header.
    pub(crate) header: RecordHeader,
    /// The body bytes.
    pub(crate) body: &'a [u8],
    /// The padding bytes after the body (must be zero).
    pub(crate) padding: &'a [u8],
}

/// Reads records from `[pos, end)` of a file.
pub(crate) struct Cursor {
    file: Arc<dyn SegmentFile>,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    /// Number of valid bytes in `buf`.
    buf_len: usize,
    /// File offset of the next record.
    pos: u64,
    /// The region ends here.
    end: u64,
}

impl Cursor {
    /// A cursor over `[start, end)` of `file`.
    pub(crate) fn new(file: Arc<dyn SegmentFile>, start: u64, end: u64) -> Cursor {
        Cursor {
            file,
            buf: Vec::new(),
            buf_start: start,
            buf_len: 0,
            pos: start,
            end,
        }
    }

    /// File offset of the next record.
    pub(crate) fn position(&self) -> u64 {
        self.pos
    }

    /// Where the region ends.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// The file read.
    pub(crate) fn file(&self) -> &Arc<dyn SegmentFile> {
        &self.file
    }

    /// Makes `[at, at + len)` available in the buffer; `len` must not exceed `end - at`.
    fn fill(&mut self, at: u64, len: usize) -> io::Result<()> {
        let have = at >= self.buf_start && at + len as u64 <= self.buf_start + self.buf_len as u64;
        if have {
            return Ok(());
        }
        let want = len.max(CHUNK).min((self.end - at) as usize).max(len);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.file.read_exact_at(&mut self.buf[..want], at)?;
        self.buf_start = at;
        self.buf_len = want;
        Ok(())
    }

    fn slice(&self, at: u64, len: usize) -> &[u8] {
        let i = (at - self.buf_start) as usize;
        &self.buf[i..i + len]
    }

    /// Reads the next record, checking only its structure (magic and bounds), and copies its body
    /// into `body`; returns the record's header and offset, or why there is none.
    pub(crate) fn next_owned(&mut self, body: &mut Vec<u8>) -> io::Result<Owned> {
        Ok(match self.next_record()? {
            Step::Record(rec) => {
                body.clear();
                body.extend_from_slice(rec.body);
                Owned::Record {
                    offset: rec.offset,
                    header: rec.header,
                }
            }
            Step::End => Owned::End,
            Step::Broken { offset, reason } => Owned::Broken { offset, reason },
        })
    }

    /// Reads the next record, checking only its structure (magic and bounds).
    pub(crate) fn next_record(&mut self) -> io::Result<Step<'_>> {
        let pos = self.pos;
        if pos == self.end {
            return Ok(Step::End);
        }
        let no_header = Step::Broken {
            offset: pos,
            reason: Reason::RecordMagic,
        };
        if pos > self.end || self.end - pos < RECORD_HEADER_LEN as u64 {
            return Ok(no_header);
        }
        self.fill(pos, RECORD_HEADER_LEN)?;
        let Some(header) = RecordHeader::decode(self.slice(pos, RECORD_HEADER_LEN)) else {
            return Ok(no_header);
        };
        let total = header.total_len();
        if total > self.end - pos {
            return Ok(Step::Broken {
                offset: pos,
                reason: Reason::RecordLength {
                    len: u64::from(header.body_len),
                    end: self.end,
                },
            });
        }
        self.fill(pos, total as usize)?;
        self.pos = pos + total;
        let body_len = header.body_len as usize;
        let record = self.slice(pos, total as usize);
        let (body, padding) = record[RECORD_HEADER_LEN..].split_at(body_len);
        Ok(Step::Record(RawRecord {
            offset: pos,
            header,
            body,
            padding,
        }))
    }
}

/// Reads `[start, end)` of `file` in chunks, handing each with its offset to `f`, until `f`
/// returns `true`.
fn read_chunks(
    file: &dyn SegmentFile,
    start: u64,
    end: u64,
    mut f: impl FnMut(u64, &[u8]) -> bool,
) -> io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    while at < end {
        let n = ((end - at) as usize).min(CHUNK);
        file.read_exact_at(&mut buf[..n], at)?;
        if f(at, &buf[..n]) {
            break;
        }
        at += n as u64;
    }
    Ok(())
}

/// Offset of the first non-zero byte in `[start, end)` of `file`, if any.
pub(crate) fn first_nonzero(
    file: &dyn SegmentFile,
    start: u64,
    end: u64,
) -> io::Result<Option<u64>> {
    let mut first = None;
    read_chunks(file, start, end, |at, chunk| {
        first = chunk.iter().position(|&b| b != 0).map(|i| at + i as u64);
        first.is_some()
    })?;
    Ok(first)
}

/// Offset just past the last non-zero byte in `[start, end)` of `file`, if any.
pub(crate) fn last_nonzero_end(
    file: &dyn SegmentFile,
    start: u64,
    end: u64,
) -> io::Result<Option<u64>> {
    let mut last = None;
    read_chunks(file, start, end, |at, chunk| {
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            last = Some(at + i as u64 + 1);
        }
        false
    })?;
    Ok(last)
}
