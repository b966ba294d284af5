//! The client's side of the protocol, without I/O: what to send, and what the replies read so
//! far mean. [`crate::serve::client`] drives it over a blocking socket and
//! [`crate::serve::async_client`] over an asynchronous one, so that both keep the same window,
//! report refusals at the same calls, and cannot drift apart.
//!
//! A session gathers frames in an output buffer until the driver writes them, and parses the
//! bytes the driver reads into replies, one per frame, in order (`docs/PROTOCOL.md`).

use std::io;

use crate::error::Error;
use crate::format::event::{Event, now_nanos};
use crate::serve::protocol::{
    ErrorClass, HELLO, OP_FLUSH, OP_RECORD, Reply, frame_head, parse_reply,
};
use crate::write::receipt::Receipt;

/// Replies a client leaves outstanding before it reads some.
pub(crate) const WINDOW: usize = 512;

/// Bytes of frames gathered before a driver writes them even if no reply is wanted yet.
pub(crate) const WRITE_AT: usize = 64 * 1024;

/// What a record waits for: its reply says so (`docs/PROTOCOL.md`).
#[derive(Clone, Copy)]
pub(crate) enum Want {
    /// Queued in the daemon's ring.
    Queued = 0,
    /// Its receipt: sequenced and, under a durable policy, synced.
    Receipt = 1,
}

/// The state of one connection, between the driver's reads and writes.
#[derive(Default)]
pub(crate) struct Session {
    /// Frames not yet written to the socket.
    output: Vec<u8>,
    /// Bytes read from the socket, from `read_at` on not yet parsed.
    input: Vec<u8>,
    read_at: usize,
    /// Frames sent (or gathered) whose replies are not parsed yet.
    outstanding: usize,
    /// The first refusal parsed and not yet reported.
    refused: Option<Error>,
}

impl Session {
    /// Checks the greeting the daemon at `socket` answered with.
    pub(crate) fn check_hello(hello: &[u8], socket: &std::path::Path) -> Result<(), Error> {
        if hello == HELLO {
            return Ok(());
        }
        Err(Error::Config(format!(
            "{} is not an auditring daemon (it answered {:?})",
            socket.display(),
            String::from_utf8_lossy(hello)
        )))
    }

    /// Gathers the frame that records `event`.
    pub(crate) fn record(&mut self, event: &Event, want: Want) -> Result<(), Error> {
        let len = event.check(usize::MAX)?;
        frame_head(&mut self.output, OP_RECORD, Some(want as u8), len).map_err(lost)?;
        let at = self.output.len();
        self.output.resize(at + len, 0);
        event.encode_into(now_nanos(), &mut self.output[at..]);
        self.outstanding += 1;
        Ok(())
    }

    /// Gathers a flush frame.
    pub(crate) fn flush(&mut self) {
        frame_head(&mut self.output, OP_FLUSH, None, 0).expect("an empty payload");
        self.outstanding += 1;
    }

    /// The frames to write to the socket; [`Session::written`] once they are.
    pub(crate) fn output(&self) -> &[u8] {
        &self.output
    }

    /// The output was written.
    pub(crate) fn written(&mut self) {
        self.output.clear();
    }

    /// Frames whose replies are not parsed yet.
    pub(crate) fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Where the driver puts what it reads: a buffer to append to.
    pub(crate) fn input(&mut self) -> &mut Vec<u8> {
        if self.read_at > 0 {
            self.input.drain(..self.read_at);
            self.read_at = 0;
        }
        &mut self.input
    }

    /// The next reply, if all of it was read; a refusal is kept for
    /// [`Session::take_refused`], a protocol error ends the session.
    pub(crate) fn next_reply(&mut self) -> Result<Option<Reply>, Error> {
        let Some((reply, len)) = parse_reply(&self.input[self.read_at..]).map_err(lost)? else {
            return Ok(None);
        };
        self.read_at += len;
        if self.outstanding == 0 {
            return Err(unexpected(&reply));
        }
        self.outstanding -= 1;
        if let Reply::Error(class, message) = &reply {
            let e = Error::Refused {
                class: *class,
                message: message.clone(),
            };
            if *class == ErrorClass::Protocol {
                return Err(e);
            }
            self.refused.get_or_insert(e);
        }
        Ok(Some(reply))
    }

    /// The first refusal not yet reported, as an error.
    pub(crate) fn take_refused(&mut self) -> Result<(), Error> {
        self.refused.take().map_or(Ok(()), Err)
    }

    /// What a receipt wait ends with: the receipt in `last`, unless something was refused.
    pub(crate) fn receipt(&mut self, last: Reply) -> Result<Receipt, Error> {
        self.take_refused()?;
        match last {
            Reply::Receipt(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// What a flush ends with: `Ok` on the flushed reply in `last`, unless something was
    /// refused.
    pub(crate) fn flushed(&mut self, last: Reply) -> Result<(), Error> {
        self.take_refused()?;
        match last {
            Reply::Flushed => Ok(()),
            other => Err(unexpected(&other)),
        }
    }
}

/// The connection failed: what was sent but not replied to is in an unknown state.
pub(crate) fn lost(e: io::Error) -> Error {
    Error::io(
        "talking to the daemon (events not yet acknowledged may or may not be recorded)",
        e,
    )
}

/// The daemon closed the connection before it answered every frame.
pub(crate) fn closed_early() -> Error {
    lost(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the daemon closed the connection",
    ))
}

fn unexpected(reply: &Reply) -> Error {
    Error::Refused {
        class: ErrorClass::Protocol,
        message: format!("the daemon answered out of order: {reply:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::hash::Hash;
    use crate::serve::protocol::write_reply;

    fn replies() -> Vec<Reply> {
        vec![
            Reply::Queued,
            Reply::Receipt(Receipt {
                seq: 7,
                chain: Hash([9; 32]),
                durable: true,
            }),
            Reply::Error(ErrorClass::InvalidEvent, "no kind".into()),
            Reply::Flushed,
        ]
    }

    #[test]
    fn replies_split_anywhere_are_parsed_once_whole() {
        let mut wire = Vec::new();
        for r in replies() {
            write_reply(&mut wire, &r).unwrap();
        }
        for cut in 0..=wire.len() {
            let mut s = Session {
                outstanding: 4,
                ..Session::default()
            };
            let mut got = Vec::new();
            for part in [&wire[..cut], &wire[cut..]] {
                s.input().extend_from_slice(part);
                while let Some(r) = s.next_reply().unwrap() {
                    got.push(r);
                }
            }
            assert_eq!(got, replies(), "cut at {cut}");
            assert_eq!(s.outstanding(), 0);
            let refused = s.take_refused().unwrap_err();
            assert!(refused.to_string().contains("no kind"), "{refused}");
            assert!(s.take_refused().is_ok(), "reported once");
        }
    }

    #[test]
    fn a_reply_to_no_frame_or_an_unknown_status_ends_the_session() {
        let mut s = Session::default();
        s.input().push(0);
        assert!(s.next_reply().is_err(), "a reply nothing asked for");
        let mut s = Session {
            outstanding: 1,
            ..Session::default()
        };
        s.input().push(200);
        assert!(s.next_reply().is_err(), "an unknown status");
    }
}
