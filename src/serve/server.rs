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
use serde_json::value::RawValue;

use crate::format::event::{Envelope, Event, EventError, decode_body};
use crate::format::event_ref::EventRef;
use crate::serve::protocol::{ErrorClass, HELLO, OP_FLUSH, OP_RECORD, QUEUED, Reply, write_reply};
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
    /// This many events in a row were queued: as many `queued` replies. The reader gathers
    /// them while frames are waiting in its buffer, so that a stream of events costs the
    /// replier one message per read, not one per event.
    Queued(u32),
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
    // Events queued whose replies are not handed to the replier yet.
    let mut queued = 0u32;
    loop {
        // Before a read that may block, and before any other reply, the queued ones go.
        if queued > 0 && (input.buffer().is_empty() || queued == u32::MAX) {
            if tx.send(Due::Queued(queued)).is_err() {
                return;
            }
            queued = 0;
        }
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
        if matches!(due, Due::Now(Reply::Queued)) {
            queued += 1;
            continue;
        }
        if queued > 0 && tx.send(Due::Queued(std::mem::take(&mut queued))).is_err() {
            return;
        }
        let last = matches!(due, Due::Last(_));
        if tx.send(due).is_err() || last {
            return;
        }
    }
}

/// Pushes the event of a record frame: borrowed from the frame, as
/// [`Producer::push_ref`] takes it, so that nothing is allocated or parsed into values.
fn record(producer: &Producer, body: &[u8], want_receipt: bool) -> Due {
    let env = match decode_body(body) {
        Ok(env) => env,
        Err(e) => {
            return Due::Now(Reply::Error(
                ErrorClass::InvalidEvent,
                format!("the event does not decode: {e}"),
            ));
        }
    };
    let pushed = match env.details {
        None => push(producer, &event_ref(&env), want_receipt),
        Some(details) => match serde_json::from_str::<&RawValue>(details) {
            // The details go in as the client wrote them: as a raw value when that is
            // exactly their text (a raw value leaves out the whitespace around it).
            Ok(raw) if raw.get().len() == details.len() => {
                push(producer, &event_ref(&env).with_details(raw), want_receipt)
            }
            // Rare: such details are copied into an owned event, which keeps them verbatim.
            Ok(_) => {
                let event = match owned_event(&env, details) {
                    Ok(event) => event,
                    Err(e) => return invalid(&e),
                };
                if want_receipt {
                    producer.push_tracked(event).map(Due::Receipt)
                } else {
                    producer.push(event).map(|()| Due::Now(Reply::Queued))
                }
                .map_err(|e| e.map(|_| ()))
            }
            Err(e) => return invalid(&EventError::Details(e)),
        },
    };
    pushed.unwrap_or_else(|e| {
        let class = match e {
            PushError::Invalid { .. } => ErrorClass::InvalidEvent,
            _ => ErrorClass::Unavailable,
        };
        Due::Now(Reply::Error(class, Error::from(e).to_string()))
    })
}

/// The envelope's event without its details.
fn event_ref<'a>(env: &Envelope<'a>) -> EventRef<'a> {
    let mut event = EventRef::new(env.kind).with_timestamp_nanos(env.timestamp);
    if let Some(actor) = env.actor {
        event = event.with_actor(actor);
    }
    if let Some(trace_id) = env.trace_id {
        event = event.with_trace_id(trace_id);
    }
    event
}

fn push<D: serde::Serialize + ?Sized>(
    producer: &Producer,
    event: &EventRef<'_, D>,
    want_receipt: bool,
) -> Result<Due, PushError<()>> {
    if want_receipt {
        producer.push_ref_tracked(event).map(Due::Receipt)
    } else {
        producer.push_ref(event).map(|()| Due::Now(Reply::Queued))
    }
}

/// The envelope's event, owned, with `details` (checked to be JSON) exactly as they are.
fn owned_event(env: &Envelope<'_>, details: &str) -> Result<Event, EventError> {
    let mut event = Event::new(env.kind.to_owned()).with_timestamp_nanos(env.timestamp);
    if let Some(actor) = env.actor {
        event = event.with_actor(actor);
    }
    if let Some(trace_id) = env.trace_id {
        event = event.with_trace_id(trace_id);
    }
    event.with_details_json(details)
}

/// The reply to an event that is not valid.
fn invalid(e: &EventError) -> Due {
    Due::Now(Reply::Error(
        ErrorClass::InvalidEvent,
        format!("invalid event: {e}"),
    ))
}

/// Writes `n` queued replies.
fn write_queued(out: &mut impl Write, n: u32) -> io::Result<()> {
    const REPLIES: [u8; 1024] = [QUEUED; 1024];
    let mut left = n as usize;
    while left > 0 {
        let now = left.min(REPLIES.len());
        out.write_all(&REPLIES[..now])?;
        left -= now;
    }
    Ok(())
}

/// Writes the replies out if no more are waiting to be written after them.
fn flush_if_idle(out: &mut BufWriter<&UnixStream>, rx: &Receiver<Due>) -> io::Result<()> {
    if rx.is_empty() { out.flush() } else { Ok(()) }
}

/// The replier: answers every frame in order, flushing the socket whenever no reply is
/// waiting to be written. Ends when the reader is done, or the client stops reading.
fn reply(stream: &UnixStream, producer: &Producer, rx: &Receiver<Due>) {
    let mut out = BufWriter::with_capacity(64 * 1024, stream);
    let unavailable = |e: &Error| Reply::Error(ErrorClass::Unavailable, e.to_string());
    for due in rx {
        let (reply, last) = match due {
            Due::Queued(n) => {
                if write_queued(&mut out, n)
                    .and_then(|()| flush_if_idle(&mut out, rx))
                    .is_err()
                {
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    return;
                }
                continue;
            }
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
            if last {
                out.flush()
            } else {
                flush_if_idle(&mut out, rx)
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
