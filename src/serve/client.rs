//! A client of the daemon ([`crate::serve::server`]): a process that records events into a
//! ring another process holds.
//!
//! It writes frames through a buffer and reads the replies only when it must (`docs/PROTOCOL.md`),
//! so events recorded without a receipt cost a buffered write each. An event the daemon
//! refuses (invalid, or the ring unavailable) is reported by the call that reads its reply:
//! the next [`Client::record_receipt`] or [`Client::flush`], or a [`Client::record`] once
//! `WINDOW` replies are outstanding. Call [`Client::flush`] before relying on what was recorded.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::Error;
use crate::format::event::{Event, now_nanos};
use crate::serve::protocol::{
    ErrorClass, HELLO, OP_FLUSH, OP_RECORD, Reply, read_reply, write_frame,
};
use crate::write::receipt::Receipt;

/// Replies a client leaves outstanding before it reads some.
const WINDOW: usize = 512;

/// A connection to a daemon. Not shared between threads: open one per thread (or process).
pub struct Client {
    output: BufWriter<UnixStream>,
    input: BufReader<UnixStream>,
    /// Frames sent whose replies are not read yet.
    outstanding: usize,
    /// The first refusal read and not yet reported.
    refused: Option<Error>,
    /// The encoded body, reused.
    body: Vec<u8>,
}

impl Client {
    /// Connects to the daemon listening at `socket`.
    pub fn connect(socket: impl AsRef<Path>) -> Result<Client, Error> {
        let socket = socket.as_ref();
        let context = |doing: &str, e: io::Error| {
            Error::io(format!("{doing} the daemon at {}", socket.display()), e)
        };
        let stream = UnixStream::connect(socket).map_err(|e| context("connecting to", e))?;
        let mut output = BufWriter::with_capacity(
            64 * 1024,
            stream
                .try_clone()
                .map_err(|e| context("connecting to", e))?,
        );
        let mut input = BufReader::with_capacity(64 * 1024, stream);
        output
            .write_all(HELLO)
            .and_then(|()| output.flush())
            .map_err(|e| context("greeting", e))?;
        let mut hello = [0u8; HELLO.len()];
        input
            .read_exact(&mut hello)
            .map_err(|e| context("greeting", e))?;
        if &hello != HELLO {
            return Err(Error::Config(format!(
                "{} is not an auditring daemon (it answered {:?})",
                socket.display(),
                String::from_utf8_lossy(&hello)
            )));
        }
        Ok(Client {
            output,
            input,
            outstanding: 0,
            refused: None,
            body: Vec::new(),
        })
    }

    /// Records an event without waiting for it. Fails if the connection fails, or with the
    /// refusal of an earlier event read meanwhile.
    pub fn record(&mut self, event: &Event) -> Result<(), Error> {
        self.send(event, 0)?;
        if self.outstanding >= WINDOW {
            self.output.flush().map_err(lost)?;
            while self.outstanding > WINDOW / 2 {
                self.next_reply()?;
            }
        }
        self.refused.take().map_or(Ok(()), Err)
    }

    /// Records an event and waits for its receipt: its seq and chain hash once it is
    /// sequenced and, under a durable policy, synced. Fails with the refusal of this event, or
    /// of an earlier one.
    pub fn record_receipt(&mut self, event: &Event) -> Result<Receipt, Error> {
        self.send(event, 1)?;
        self.output.flush().map_err(lost)?;
        let reply = self.through_last()?;
        if let Some(e) = self.refused.take() {
            return Err(e);
        }
        match reply {
            Reply::Receipt(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// Waits until every event recorded so far is sequenced and, under a durable policy,
    /// synced; fails with the first refusal since the last call that reported one.
    pub fn flush(&mut self) -> Result<(), Error> {
        write_frame(&mut self.output, OP_FLUSH, None, &[]).map_err(lost)?;
        self.outstanding += 1;
        self.output.flush().map_err(lost)?;
        let reply = self.through_last()?;
        if let Some(e) = self.refused.take() {
            return Err(e);
        }
        match reply {
            Reply::Flushed => Ok(()),
            other => Err(unexpected(&other)),
        }
    }

    fn send(&mut self, event: &Event, want: u8) -> Result<(), Error> {
        let len = event.check(usize::MAX)?;
        self.body.resize(len, 0);
        event.encode_into(now_nanos(), &mut self.body);
        write_frame(&mut self.output, OP_RECORD, Some(want), &self.body).map_err(lost)?;
        self.outstanding += 1;
        Ok(())
    }

    /// Reads every outstanding reply; returns the last one.
    fn through_last(&mut self) -> Result<Reply, Error> {
        let mut last = Reply::Queued;
        while self.outstanding > 0 {
            last = self.next_reply()?;
        }
        Ok(last)
    }

    /// Reads one reply, keeping a refusal for the caller.
    fn next_reply(&mut self) -> Result<Reply, Error> {
        let reply = read_reply(&mut self.input).map_err(lost)?;
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
        Ok(reply)
    }
}

/// The connection failed: what was sent but not replied to is in an unknown state.
fn lost(e: io::Error) -> Error {
    Error::io(
        "talking to the daemon (events not yet acknowledged may or may not be recorded)",
        e,
    )
}

fn unexpected(reply: &Reply) -> Error {
    Error::Refused {
        class: ErrorClass::Protocol,
        message: format!("the daemon answered out of order: {reply:?}"),
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("outstanding", &self.outstanding)
            .finish_non_exhaustive()
    }
}
