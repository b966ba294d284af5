//! The daemon: one ring, many local client processes, over a Unix stream socket.
//!
//! [`Server::start`] binds the socket (atomically, with its permissions already set: they
//! decide who may write) and accepts connections on a thread of its own. Each connection has
//! two threads: a reader that decodes frames and pushes their events into the ring through a
//! [`Producer`], and a replier that answers every frame in order, waiting for receipts where
//! asked (`docs/PROTOCOL.md`). Between them is a bounded window of replies: a client that sends
//! and never reads its replies stalls itself (its replier blocks, then its reader), and
//! nobody else. A frame that breaks the protocol (an unknown operation, a length beyond the
//! largest event) ends that connection after an error reply; an invalid event is refused with
//! an error reply, and the connection goes on.

use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crossbeam::channel::{Receiver, Sender, bounded};

use crate::error::{Error, PushError};
use crate::format::event::{Event, decode_body};
use crate::serve::protocol::{ErrorClass, HELLO, OP_FLUSH, OP_RECORD, Reply, write_reply};
use crate::write::producer::Producer;
use crate::write::receipt::PendingReceipt;

/// Replies a connection may have outstanding before its reader stops reading.
const REPLY_WINDOW: usize = 1024;

/// Options of [`Server::start`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Permission bits of the socket (default `0o600`: the daemon's user only). Whoever may
    /// connect may write events.
    pub mode: u32,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions { mode: 0o600 }
    }
}

impl ServeOptions {
    /// The default options.
    pub fn new() -> ServeOptions {
        ServeOptions::default()
    }

    /// Sets the socket's permission bits.
    #[must_use]
    pub fn mode(mut self, mode: u32) -> ServeOptions {
        self.mode = mode;
        self
    }
}

/// A running daemon (see the module documentation). [`Server::stop`] stops it; dropping it
/// stops it too.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    connections: Arc<Mutex<Vec<Connection>>>,
}

/// A connection's socket (to shut it down) and its threads.
struct Connection {
    stream: UnixStream,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// Serves `producer`'s ring on a new Unix socket at `path`. A socket file left there by a
    /// daemon that is gone is replaced; a live one, or any other file, is an error.
    pub fn start(
        producer: Producer,
        path: impl AsRef<Path>,
        options: &ServeOptions,
    ) -> Result<Server, Error> {
        let path = path.as_ref().to_path_buf();
        let listener = bind(&path, options.mode)?;
        let stop = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<Connection>>> = Arc::default();
        let accept = {
            let (stop, connections) = (stop.clone(), connections.clone());
            std::thread::Builder::new()
                .name("auditring-serve".into())
                .spawn(move || accept_loop(&listener, &producer, &stop, &connections))
                .map_err(|e| Error::io("starting the daemon's thread", e))?
        };
        Ok(Server {
            path,
            stop,
            accept: Some(accept),
            connections,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops accepting, ends every connection, and removes the socket file. Events already
    /// pushed stay pushed (closing the ring then records them); a client whose replies were
    /// not all sent sees its connection closed, and does not know of the rest.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which sees the flag.
        let _ = UnixStream::connect(&self.path);
        let _ = accept.join();
        let connections = std::mem::take(
            &mut *self
                .connections
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // Both ways: a client that stopped reading its replies cannot hold the stop up.
        for c in &connections {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        for c in connections {
            for t in c.threads {
                let _ = t.join();
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Binds a listener at `path` with `mode`: at a temporary name beside it, given its
/// permissions, then renamed into place, so that it is never reachable with others.
fn bind(path: &Path, mode: u32) -> Result<UnixListener, Error> {
    let context = |doing: &str, e: io::Error| Error::io(format!("{doing} {}", path.display()), e);
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(Error::Config(format!(
                    "{} exists and is not a socket: not replacing it",
                    path.display()
                )));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(context(
                    "serving at",
                    io::Error::new(io::ErrorKind::AddrInUse, "a daemon listens there already"),
                ));
            }
            std::fs::remove_file(path).map_err(|e| context("removing the stale socket", e))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(context("looking at", e)),
    }
    let name = path
        .file_name()
        .ok_or_else(|| Error::Config(format!("{} names no file", path.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(|e| context("binding a socket for", e))?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(context("placing the socket at", e));
    }
    Ok(listener)
}

fn accept_loop(
    listener: &UnixListener,
    producer: &Producer,
    stop: &AtomicBool,
    connections: &Mutex<Vec<Connection>>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else {
            continue;
        };
        let mut all = connections.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget the connections that ended.
        all.retain(|c| !c.threads.iter().all(JoinHandle::is_finished));
        if let Ok(c) = connect(stream, producer) {
            all.push(c);
        }
    }
}

/// Greets a new connection and starts its two threads.
fn connect(mut stream: UnixStream, producer: &Producer) -> io::Result<Connection> {
    // Twelve bytes into a new socket's empty buffer: this does not block.
    stream.write_all(HELLO)?;
    let (tx, rx) = bounded(REPLY_WINDOW);
    let reader = {
        let (stream, producer) = (stream.try_clone()?, producer.clone());
        std::thread::Builder::new()
            .name("auditring-serve-read".into())
            .spawn(move || read_frames(&stream, &producer, &tx))?
    };
    let replier = {
        let (stream, producer) = (stream.try_clone()?, producer.clone());
        std::thread::Builder::new()
            .name("auditring-serve-reply".into())
            .spawn(move || reply(&stream, &producer, &rx))?
    };
    Ok(Connection {
        stream,
        threads: vec![reader, replier],
    })
}

/// What the reader hands the replier, in frame order.
enum Due {
    /// A reply known now.
    Now(Reply),
    /// The receipt of an event, once it comes.
    Receipt(PendingReceipt),
    /// A flush: done once everything pushed before it is sequenced.
    Flush,
    /// The reply to a frame that broke the protocol: the connection ends after it.
    Last(Reply),
}

/// The reader: hello, then frames until the client closes, breaks the protocol or the replier
/// is gone.
fn read_frames(stream: &UnixStream, producer: &Producer, tx: &Sender<Due>) {
    let mut input = BufReader::with_capacity(64 * 1024, stream);
    let mut hello = [0u8; HELLO.len()];
    if input.read_exact(&mut hello).is_err() || &hello != HELLO {
        let _ = tx.send(Due::Last(Reply::Error(
            ErrorClass::Protocol,
            "not an auditring client (bad hello)".into(),
        )));
        return;
    }
    // The largest frame: an op, a want byte, and twice the largest body the ring takes (at
    // least 64 KiB): a client whose event is merely too large for this ring is told so and goes
    // on; a length beyond that is not an event, and ends the connection.
    let max_frame = 2 + (2 * producer.shared.max_body).max(64 * 1024);
    let mut frame = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if input.read_exact(&mut len).is_err() {
            return;
        }
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 || len > max_frame {
            let _ = tx.send(Due::Last(Reply::Error(
                ErrorClass::Protocol,
                format!("a frame of {len} bytes (at most {max_frame})"),
            )));
            return;
        }
        frame.resize(len, 0);
        if input.read_exact(&mut frame).is_err() {
            return;
        }
        let due = match (frame[0], frame.get(1)) {
            (OP_RECORD, Some(&want @ (0 | 1))) => record(producer, &frame[2..], want == 1),
            (OP_FLUSH, None) => Due::Flush,
            (op, _) => Due::Last(Reply::Error(
                ErrorClass::Protocol,
                format!("an unknown frame (operation {op}, {len} bytes)"),
            )),
        };
        let last = matches!(due, Due::Last(_));
        if tx.send(due).is_err() || last {
            return;
        }
    }
}

/// Pushes the event of a record frame.
fn record(producer: &Producer, body: &[u8], want_receipt: bool) -> Due {
    let event = match event_from_body(body) {
        Ok(e) => e,
        Err(message) => return Due::Now(Reply::Error(ErrorClass::InvalidEvent, message)),
    };
    let pushed = if want_receipt {
        producer.push_tracked(event).map(Due::Receipt)
    } else {
        producer.push(event).map(|()| Due::Now(Reply::Queued))
    };
    pushed.unwrap_or_else(|e| {
        let class = match e {
            PushError::Invalid { .. } => ErrorClass::InvalidEvent,
            _ => ErrorClass::Unavailable,
        };
        Due::Now(Reply::Error(class, Error::from(e).to_string()))
    })
}

/// The event a client's body encodes, checked as a producer's would be (the details must be
/// JSON).
fn event_from_body(body: &[u8]) -> Result<Event, String> {
    let env = decode_body(body).map_err(|e| format!("the event does not decode: {e}"))?;
    let mut event = Event::new(env.kind.to_owned()).with_timestamp_nanos(env.timestamp);
    if let Some(actor) = env.actor {
        event = event.with_actor(actor);
    }
    if let Some(trace_id) = env.trace_id {
        event = event.with_trace_id(trace_id);
    }
    if let Some(details) = env.details {
        event = event
            .with_details_json(details)
            .map_err(|e| format!("invalid event: {e}"))?;
    }
    Ok(event)
}

/// The replier: answers every frame in order, flushing the socket whenever no reply is
/// waiting to be written. Ends when the reader is done, or the client stops reading.
fn reply(stream: &UnixStream, producer: &Producer, rx: &Receiver<Due>) {
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    let unavailable = |e: &Error| Reply::Error(ErrorClass::Unavailable, e.to_string());
    for due in rx {
        let (reply, last) = match due {
            Due::Now(r) => (r, false),
            Due::Last(r) => (r, true),
            Due::Receipt(p) => (
                p.wait().map_or_else(|e| unavailable(&e), Reply::Receipt),
                false,
            ),
            Due::Flush => (
                producer
                    .flush()
                    .map_or_else(|e| unavailable(&e), |()| Reply::Flushed),
                false,
            ),
        };
        let written = write_reply(&mut out, &reply).and_then(|()| {
            if rx.is_empty() || last {
                out.flush()
            } else {
                Ok(())
            }
        });
        if written.is_err() || last {
            // The client is gone, or broke the protocol: the reader stops too.
            let _ = stream.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
    // The reader is done (the client closed its end, or stopped mid-frame): close ours, for
    // the daemon keeps a handle on the socket until it forgets the connection.
    let _ = out.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
}
