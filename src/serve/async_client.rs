//! [`crate::serve::client`] for asynchronous code: the same protocol and the same guarantees
//! over tokio's Unix socket, so that a task records events without blocking its runtime's
//! thread. Built with the `tokio` feature.
//!
//! The protocol's state is in [`crate::serve::session`], shared with the blocking client; this
//! drives it with `.await`s. A future dropped half way (a timeout, a `select!` that chose
//! another branch) leaves the connection in an unknown state: the frames it gathered may or
//! may not have been written. The next call then fails rather than mix replies up.

use std::io;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::error::Error;
use crate::format::event::Event;
use crate::serve::protocol::{HELLO, Reply};
use crate::serve::session::{Session, WINDOW, WRITE_AT, Want, closed_early, lost};
use crate::write::receipt::Receipt;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 64 * 1024;

/// An asynchronous connection to a daemon ([`DaemonClient`](crate::DaemonClient)'s
/// counterpart). Its methods take `&mut self`: one task uses it at a time; open one per task
/// that records concurrently.
pub struct AsyncDaemonClient {
    stream: UnixStream,
    session: Session,
    /// Set while a call awaits the socket, cleared when it is done: still set at the next
    /// call, the last one was dropped half way.
    busy: bool,
}

impl AsyncDaemonClient {
    /// Connects to the daemon listening at `socket`.
    pub async fn connect(socket: impl AsRef<Path>) -> Result<AsyncDaemonClient, Error> {
        let socket = socket.as_ref();
        let context = |doing: &str, e: io::Error| {
            Error::io(format!("{doing} the daemon at {}", socket.display()), e)
        };
        let mut stream = UnixStream::connect(socket)
            .await
            .map_err(|e| context("connecting to", e))?;
        stream
            .write_all(HELLO)
            .await
            .map_err(|e| context("greeting", e))?;
        let mut hello = [0u8; HELLO.len()];
        stream
            .read_exact(&mut hello)
            .await
            .map_err(|e| context("greeting", e))?;
        Session::check_hello(&hello, socket)?;
        Ok(AsyncDaemonClient {
            stream,
            session: Session::default(),
            busy: false,
        })
    }

    /// Records an event without waiting for it. Fails if the connection fails, or with the
    /// refusal of an earlier event read meanwhile.
    pub async fn record(&mut self, event: &Event) -> Result<(), Error> {
        self.check_not_cancelled()?;
        self.session.record(event, Want::Queued)?;
        self.busy = true;
        let sent = self.send_some().await;
        self.busy = false;
        sent?;
        self.session.take_refused()
    }

    /// Records an event and waits for its receipt: its seq and chain hash once it is
    /// sequenced and, under a durable policy, synced. Fails with the refusal of this event, or
    /// of an earlier one.
    pub async fn record_receipt(&mut self, event: &Event) -> Result<Receipt, Error> {
        self.check_not_cancelled()?;
        self.session.record(event, Want::Receipt)?;
        self.busy = true;
        let last = self.through_last().await;
        self.busy = false;
        self.session.receipt(last?)
    }

    /// Waits until every event recorded so far is sequenced and, under a durable policy,
    /// synced; fails with the first refusal since the last call that reported one.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.check_not_cancelled()?;
        self.session.flush();
        self.busy = true;
        let last = self.through_last().await;
        self.busy = false;
        self.session.flushed(last?)
    }

    /// Fails if an earlier call was dropped while it awaited the socket.
    fn check_not_cancelled(&self) -> Result<(), Error> {
        if self.busy {
            return Err(lost(io::Error::other(
                "an earlier call on this connection was cancelled half way",
            )));
        }
        Ok(())
    }

    /// Writes what is gathered once there is enough of it, and reads replies down to half
    /// the window once it is full.
    async fn send_some(&mut self) -> Result<(), Error> {
        if self.session.outstanding() >= WINDOW {
            self.write_out().await?;
            while self.session.outstanding() > WINDOW / 2 {
                self.next_reply().await?;
            }
        } else if self.session.output().len() >= WRITE_AT {
            self.write_out().await?;
        }
        Ok(())
    }

    async fn write_out(&mut self) -> Result<(), Error> {
        self.stream
            .write_all(self.session.output())
            .await
            .map_err(lost)?;
        self.session.written();
        Ok(())
    }

    /// Sends what is gathered and reads every outstanding reply; returns the last one.
    async fn through_last(&mut self) -> Result<Reply, Error> {
        self.write_out().await?;
        let mut last = Reply::Queued;
        while self.session.outstanding() > 0 {
            last = self.next_reply().await?;
        }
        Ok(last)
    }

    /// Reads until one more reply is whole, and parses it.
    async fn next_reply(&mut self) -> Result<Reply, Error> {
        loop {
            if let Some(reply) = self.session.next_reply()? {
                return Ok(reply);
            }
            let input = self.session.input();
            input.reserve(READ_CHUNK);
            match self.stream.read_buf(input).await {
                Ok(0) => return Err(closed_early()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(lost(e)),
            }
        }
    }
}

impl std::fmt::Debug for AsyncDaemonClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncDaemonClient")
            .field("outstanding", &self.session.outstanding())
            .finish_non_exhaustive()
    }
}
