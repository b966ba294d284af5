//! A client of the daemon ([`crate::serve::server`]): a process that records events into a
//! ring another process holds.
//!
//! It gathers frames in a buffer and reads the replies only when it must (`docs/PROTOCOL.md`),
//! so events recorded without a receipt cost a buffered write each. An event the daemon
//! refuses (invalid, or the ring unavailable) is reported by the call that reads its reply:
//! the next [`Client::record_receipt`] or [`Client::flush`], or a [`Client::record`] once
//! `WINDOW` replies are outstanding. Call [`Client::flush`] before relying on what was recorded.
//! The protocol's state is in [`crate::serve::session`]; this drives it over a blocking socket.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::Error;
use crate::format::event::Event;
use crate::serve::protocol::{HELLO, Reply};
use crate::serve::session::{Session, WINDOW, WRITE_AT, Want, closed_early, lost};
use crate::write::receipt::Receipt;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// A connection to a daemon. Not shared between threads: open one per thread (or process).
pub struct Client {
    stream: UnixStream,
    session: Session,
}

impl Client {
    /// Connects to the daemon listening at `socket`.
    pub fn connect(socket: impl AsRef<Path>) -> Result<Client, Error> {
        let socket = socket.as_ref();
        let context = |doing: &str, e: io::Error| {
            Error::io(format!("{doing} the daemon at {}", socket.display()), e)
        };
        let mut stream = UnixStream::connect(socket).map_err(|e| context("connecting to", e))?;
        stream
            .write_all(HELLO)
            .map_err(|e| context("greeting", e))?;
        let mut hello = [0u8; HELLO.len()];
        stream
            .read_exact(&mut hello)
            .map_err(|e| context("greeting", e))?;
        Session::check_hello(&hello, socket)?;
        Ok(Client {
            stream,
            session: Session::default(),
        })
    }

    /// Records an event without waiting for it. Fails if the connection fails, or with the
    /// refusal of an earlier event read meanwhile.
    pub fn record(&mut self, event: &Event) -> Result<(), Error> {
        self.session.record(event, Want::Queued)?;
        self.send_some()?;
        self.session.take_refused()
    }

    /// Writes what is gathered once there is enough of it, and reads replies down to half
    /// the window once it is full.
    fn send_some(&mut self) -> Result<(), Error> {
        if self.session.outstanding() >= WINDOW {
            self.write_out()?;
            while self.session.outstanding() > WINDOW / 2 {
                self.next_reply()?;
            }
        } else if self.session.output().len() >= WRITE_AT {
            self.write_out()?;
        }
        Ok(())
    }

    /// Records an event and waits for its receipt: its seq and chain hash once it is
    /// sequenced and, under a durable policy, synced. Fails with the refusal of this event, or
    /// of an earlier one.
    pub fn record_receipt(&mut self, event: &Event) -> Result<Receipt, Error> {
        self.session.record(event, Want::Receipt)?;
        let last = self.through_last()?;
        self.session.receipt(last)
    }

    /// Waits until every event recorded so far is sequenced and, under a durable policy,
    /// synced; fails with the first refusal since the last call that reported one.
    pub fn flush(&mut self) -> Result<(), Error> {
        self.session.flush();
        let last = self.through_last()?;
        self.session.flushed(last)
    }

    fn write_out(&mut self) -> Result<(), Error> {
        self.stream.write_all(self.session.output()).map_err(lost)?;
        self.session.written();
        Ok(())
    }

    /// Sends what is gathered and reads every outstanding reply; returns the last one.
    fn through_last(&mut self) -> Result<Reply, Error> {
        self.write_out()?;
        let mut last = Reply::Queued;
        while self.session.outstanding() > 0 {
            last = self.next_reply()?;
        }
        Ok(last)
    }

    /// Reads until one more reply is whole, and parses it.
    fn next_reply(&mut self) -> Result<Reply, Error> {
        loop {
            if let Some(reply) = self.session.next_reply()? {
                return Ok(reply);
            }
            let input = self.session.input();
            let at = input.len();
            input.resize(at + READ_CHUNK, 0);
            let read = self.stream.read(&mut input[at..]);
            input.truncate(at + *read.as_ref().unwrap_or(&0));
            match read {
                Ok(0) => return Err(closed_early()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(lost(e)),
            }
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("outstanding", &self.session.outstanding())
            .finish_non_exhaustive()
    }
}
