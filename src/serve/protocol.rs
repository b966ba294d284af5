//! The wire protocol between a daemon ([`crate::serve::server`]) and its clients
//! ([`crate::serve::client`]) over a Unix stream socket (`docs/PROTOCOL.md`).
//!
//! Both ends first send [`HELLO`]. Then the client sends frames, and the daemon answers every
//! frame with one reply, in order, so a client can send many frames before it reads a reply
//! (batching on both sides). All integers are little-endian.
//!
//! ```text
//! frame:  u32 len | u8 op | payload (len - 1 bytes)
//!   op 1, record: u8 want (0: once queued, 1: once sequenced and, under a durable policy,
//!                 synced) | event body (docs/FORMAT.md §6)
//!   op 2, flush:  (nothing): once every frame before it is sequenced (and synced)
//! reply:  u8 status | ...
//!   0 queued
//!   1 receipt:    u64 seq | 32 bytes chain hash | u8 durable
//!   2 flushed
//!   3 error:      u8 class | u16 len | message (UTF-8)
//! ```

use std::io::{self, Write};

pub use crate::error::ErrorClass;
use crate::format::hash::Hash;
use crate::write::receipt::Receipt;

/// What each end sends first.
pub const HELLO: &[u8; 12] = b"AUDITRING/1\n";

/// Frame operation: record an event.
pub(crate) const OP_RECORD: u8 = 1;
/// Frame operation: flush.
pub(crate) const OP_FLUSH: u8 = 2;

/// Reply status: the event is queued.
pub(crate) const QUEUED: u8 = 0;
/// Reply status: the event's receipt.
pub(crate) const RECEIPT: u8 = 1;
/// Reply status: everything before the flush is sequenced (and synced).
pub(crate) const FLUSHED: u8 = 2;
/// Reply status: an error.
pub(crate) const ERROR: u8 = 3;

/// The code of an error class on the wire.
fn class_code(class: ErrorClass) -> u8 {
    match class {
        ErrorClass::InvalidEvent => 1,
        ErrorClass::Unavailable => 2,
        ErrorClass::Protocol => 3,
    }
}

/// The error class a code on the wire stands for.
fn class_from_code(code: u8) -> Option<ErrorClass> {
    match code {
        1 => Some(ErrorClass::InvalidEvent),
        2 => Some(ErrorClass::Unavailable),
        3 => Some(ErrorClass::Protocol),
        _ => None,
    }
}

/// A reply, as the client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    Queued,
    Receipt(Receipt),
    Flushed,
    Error(ErrorClass, String),
}

/// Longest error message sent.
const MAX_MESSAGE: usize = 4096;

/// Writes a reply.
pub(crate) fn write_reply(out: &mut impl Write, reply: &Reply) -> io::Result<()> {
    match reply {
        Reply::Queued => out.write_all(&[QUEUED]),
        Reply::Flushed => out.write_all(&[FLUSHED]),
        Reply::Receipt(r) => {
            let mut b = [0u8; 42];
            b[0] = RECEIPT;
            b[1..9].copy_from_slice(&r.seq.to_le_bytes());
            b[9..41].copy_from_slice(&r.chain.0);
            b[41] = u8::from(r.durable);
            out.write_all(&b)
        }
        Reply::Error(class, message) => {
            let mut end = message.len().min(MAX_MESSAGE);
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            let text = &message.as_bytes()[..end];
            out.write_all(&[ERROR, class_code(*class)])?;
            out.write_all(&(text.len() as u16).to_le_bytes())?;
            out.write_all(text)
        }
    }
}

/// Parses the reply at the front of `buf`: the reply and its length in bytes, or `None` if
/// `buf` does not hold all of it yet. Fails on a status no daemon sends.
pub(crate) fn parse_reply(buf: &[u8]) -> io::Result<Option<(Reply, usize)>> {
    let Some(&status) = buf.first() else {
        return Ok(None);
    };
    match status {
        QUEUED => Ok(Some((Reply::Queued, 1))),
        FLUSHED => Ok(Some((Reply::Flushed, 1))),
        RECEIPT => {
            let Some(b) = buf.get(1..42) else {
                return Ok(None);
            };
            let receipt = Receipt {
                seq: u64::from_le_bytes(b[0..8].try_into().expect("8 bytes")),
                chain: Hash(b[8..40].try_into().expect("32 bytes")),
                durable: b[40] != 0,
            };
            Ok(Some((Reply::Receipt(receipt), 42)))
        }
        ERROR => {
            let Some(head) = buf.get(1..4) else {
                return Ok(None);
            };
            let class = class_from_code(head[0]).unwrap_or(ErrorClass::Protocol);
            let end = 4 + usize::from(u16::from_le_bytes([head[1], head[2]]));
            let Some(text) = buf.get(4..end) else {
                return Ok(None);
            };
            let message = String::from_utf8_lossy(text).into_owned();
            Ok(Some((Reply::Error(class, message), end)))
        }
        other => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the daemon sent an unknown reply status {other}"),
        )),
    }
}

/// Appends the head of a frame of `op` whose payload (after `want`, for a record) is
/// `payload_len` bytes; the caller appends the payload.
pub(crate) fn frame_head(
    out: &mut Vec<u8>,
    op: u8,
    want: Option<u8>,
    payload_len: usize,
) -> io::Result<()> {
    let len = 1 + usize::from(want.is_some()) + payload_len;
    let len = u32::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a frame over 4 GiB"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.push(op);
    out.extend(want);
    Ok(())
}
