//! The daemon and its client (`docs/PROTOCOL.md`): many clients into one chain, receipts as an
//! in-process producer gets them, and clients that misbehave (garbage, a huge length, invalid
//! events, one that never reads its replies, one that dies mid-frame) hurt neither the others
//! nor the log.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Barrier};

use std::future::Future;

use auditring::{
    AsyncDaemonClient, DAEMON_HELLO, Daemon, DaemonClient, DaemonErrorClass, Durability, Error,
    Event, Ring, ServeOptions, VerifyOptions, verify,
};
use auditring_testkit::threads::{assert_each_thread_in_order, records};

fn event(thread: u64, i: u64) -> Event {
    Event::new("daemon.test")
        .with_actor(format!("client-{thread}"))
        .with_details_json(format!("{{\"thread\":{thread},\"i\":{i}}}"))
        .unwrap()
}

struct Setup {
    daemon: Daemon,
    ring: Ring,
    dir: std::path::PathBuf,
    socket: std::path::PathBuf,
    tmp: tempfile::TempDir,
}

/// The largest event the daemons of these tests take.
const MAX_EVENT: usize = 4096;

/// An event larger than the daemons of these tests take.
fn too_large() -> Event {
    Event::new("large")
        .with_details(&"x".repeat(2 * MAX_EVENT))
        .unwrap()
}

/// Fails unless `refused` is the daemon's refusal of an invalid event.
fn assert_invalid_event(refused: &Error) {
    assert!(
        matches!(
            refused,
            Error::Refused {
                class: DaemonErrorClass::InvalidEvent,
                ..
            }
        ),
        "{refused}"
    );
}

fn setup(durability: Durability) -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let socket = tmp.path().join("audit.sock");
    let ring = Ring::builder(&dir)
        .durability(durability)
        .max_event_size(MAX_EVENT)
        .open()
        .unwrap();
    let daemon = Daemon::start(ring.producer(), &socket, &ServeOptions::new()).unwrap();
    Setup {
        daemon,
        ring,
        dir,
        socket,
        tmp,
    }
}

impl Setup {
    /// Stops the daemon, closes the ring and verifies the log; returns its directory (and the
    /// temporary directory that holds it, to keep).
    fn finish(self) -> (tempfile::TempDir, std::path::PathBuf) {
        self.daemon.stop();
        self.ring.close().unwrap();
        assert!(verify(&self.dir, VerifyOptions::default()).unwrap().is_ok());
        (self.tmp, self.dir)
    }
}

/// 16 clients, each on its own connection, record 10,000 events each without waiting, then
/// flush: one chain, gapless, every client's events once and in its order.
#[test]
fn sixteen_clients_make_one_gapless_chain() {
    const CLIENTS: u64 = 16;
    const EACH: u64 = 10_000;
    let s = setup(Durability::None);
    let start = Arc::new(Barrier::new(CLIENTS as usize));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (socket, start) = (s.socket.clone(), start.clone());
            std::thread::spawn(move || {
                let mut c = DaemonClient::connect(&socket).unwrap();
                start.wait();
                for i in 0..EACH {
                    c.record(&event(t, i)).unwrap();
                }
                c.flush().unwrap();
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let (_tmp, dir) = s.finish();
    assert_each_thread_in_order(&records(&dir), CLIENTS, EACH);
}

/// A receipt through the daemon is the one an in-process producer gets: the seq, the chain
/// hash the log holds there, durable under a durable policy.
#[test]
fn receipts_through_the_daemon_are_the_logs() {
    let s = setup(Durability::Batch);
    let mut c = DaemonClient::connect(&s.socket).unwrap();
    c.record(&event(0, 0)).unwrap();
    let r = c.record_receipt(&event(0, 1)).unwrap();
    assert_eq!(r.seq, 2);
    assert!(r.durable);
    let local = s.ring.push_receipt(event(1, 0)).unwrap();
    assert_eq!(local.seq, 3);
    let (_tmp, dir) = s.finish();
    let rs = records(&dir);
    assert_eq!(rs[1].chain, r.chain);
    assert_eq!(rs.len(), 3);
}

/// An invalid event is refused with the reason, and the connection goes on; the events around
/// it are recorded.
#[test]
fn an_invalid_event_is_refused_and_the_connection_goes_on() {
    let s = setup(Durability::None);
    let mut c = DaemonClient::connect(&s.socket).unwrap();
    c.record(&event(0, 0)).unwrap();
    // A kind the library reserves: the client refuses it itself, as a producer would.
    assert!(matches!(
        c.record_receipt(&Event::new("auditring.forged")),
        Err(Error::Event(_))
    ));
    // Larger than this daemon's ring takes: refused by the daemon, with the reason.
    let large = too_large();
    assert_invalid_event(&c.record_receipt(&large).unwrap_err());
    // Refused without waiting: reported by the next call that reads replies.
    c.record(&large).unwrap();
    assert!(matches!(c.flush(), Err(Error::Refused { .. })));
    let r = c.record_receipt(&event(0, 1)).unwrap();
    assert_eq!(r.seq, 2);
    let (_tmp, dir) = s.finish();
    assert_eq!(records(&dir).len(), 2);
}

/// Raw bytes on a socket, and what the daemon answers before it closes the connection.
fn raw(socket: &std::path::Path, bytes: &[u8]) -> Vec<u8> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(bytes).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    answer
}

/// Garbage instead of the hello, a frame longer than any event, an unknown operation, and a
/// frame cut short by a client that dies: each ends its own connection (with an error reply
/// where there is a frame to answer), records nothing, and a well-behaved client goes on.
#[test]
fn garbage_huge_lengths_and_cut_frames_end_only_their_connection() {
    let s = setup(Durability::None);
    let mut good = DaemonClient::connect(&s.socket).unwrap();
    good.record(&event(0, 0)).unwrap();

    let garbage = raw(&s.socket, b"GET / HTTP/1.1\r\n\r\n");
    assert!(garbage.starts_with(DAEMON_HELLO));
    assert_eq!(garbage[DAEMON_HELLO.len()], 3, "an error reply");

    let mut huge = DAEMON_HELLO.to_vec();
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    let answer = raw(&s.socket, &huge);
    assert_eq!(answer[DAEMON_HELLO.len()], 3);
    assert!(
        String::from_utf8_lossy(&answer).contains("at most"),
        "{answer:?}"
    );

    let mut unknown = DAEMON_HELLO.to_vec();
    unknown.extend_from_slice(&1u32.to_le_bytes());
    unknown.push(9);
    let answer = raw(&s.socket, &unknown);
    assert!(String::from_utf8_lossy(&answer).contains("unknown frame"));

    // A frame announcing 100 bytes, of which 10 come before the client goes.
    let mut cut = DAEMON_HELLO.to_vec();
    cut.extend_from_slice(&100u32.to_le_bytes());
    cut.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    let answer = raw(&s.socket, &cut);
    assert_eq!(answer, DAEMON_HELLO, "nothing to answer");

    assert_eq!(good.record_receipt(&event(0, 1)).unwrap().seq, 2);
    let (_tmp, dir) = s.finish();
    assert_eq!(records(&dir).len(), 2);
}

/// A client that sends and never reads its replies stalls only itself: once its replies fill
/// the socket and its window, the daemon stops reading it, and another client records and
/// flushes meanwhile. When the stalled client goes, the daemon stops cleanly.
#[test]
fn a_client_that_never_reads_its_replies_stalls_only_itself() {
    let s = setup(Durability::None);
    let socket = s.socket.clone();
    let stalled = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(&socket).unwrap();
        stream.write_all(DAEMON_HELLO).unwrap();
        // Valid flush frames, whose replies it never reads, until the daemon stops reading it
        // and the socket is full.
        let frame = [1u8, 0, 0, 0, 2];
        let mut sent = 0u64;
        while stream.write_all(&frame).is_ok() {
            sent += 1;
        }
        sent
    });
    let mut good = DaemonClient::connect(&s.socket).unwrap();
    for i in 0..1_000 {
        good.record(&event(0, i)).unwrap();
    }
    good.flush().unwrap();
    assert_eq!(good.record_receipt(&event(0, 1_000)).unwrap().seq, 1_001);
    // Stopping the daemon closes the stalled connection: its writes fail, and it ends.
    s.daemon.stop();
    assert!(stalled.join().unwrap() > 0);
    s.ring.close().unwrap();
    assert_eq!(records(&s.dir).len(), 1_001);
}

/// A second daemon on a live socket is refused; a socket file a dead daemon left is replaced;
/// anything else at the path is left alone. The socket has the permissions asked for.
#[test]
fn the_socket_path_is_taken_only_when_free() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup(Durability::None);
    let mode = std::fs::metadata(&s.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let other = Ring::builder(s.dir.with_file_name("other")).open().unwrap();
    let refused = Daemon::start(other.producer(), &s.socket, &ServeOptions::new());
    assert!(refused.is_err());
    // A stale socket (bound, never served: as a killed daemon leaves it) is replaced.
    let stale = s.socket.with_file_name("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let d = Daemon::start(other.producer(), &stale, &ServeOptions::new().mode(0o660)).unwrap();
    let mode = std::fs::metadata(&stale).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    d.stop();
    assert!(!stale.exists(), "the socket goes with the daemon");
    // A regular file is not a socket to replace.
    let file = s.socket.with_file_name("file");
    std::fs::write(&file, "keep").unwrap();
    assert!(Daemon::start(other.producer(), &file, &ServeOptions::new()).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");
    other.close().unwrap();
    s.finish();
}

/// A ring closed while the daemon still serves it: clients are told it is unavailable rather
/// than left waiting, and the daemon still stops.
#[test]
fn a_ring_closed_under_the_daemon_makes_clients_fail_not_hang() {
    let s = setup(Durability::Batch);
    let mut c = DaemonClient::connect(&s.socket).unwrap();
    assert_eq!(c.record_receipt(&event(0, 0)).unwrap().seq, 1);
    let Setup {
        daemon, ring, dir, ..
    } = s;
    ring.close().unwrap();
    let refused = c.record_receipt(&event(0, 1)).unwrap_err();
    assert!(
        matches!(
            refused,
            Error::Refused {
                class: DaemonErrorClass::Unavailable,
                ..
            }
        ),
        "{refused}"
    );
    assert!(matches!(c.flush(), Err(Error::Refused { .. })));
    daemon.stop();
    assert_eq!(records(&dir).len(), 1);
}

/// The asynchronous client: 16 tasks on a multi-threaded runtime, each on its own connection,
/// record without waiting and with receipts: one gapless chain, each task's events in order,
/// and every receipt the log's.
#[test]
fn sixteen_async_clients_make_one_gapless_chain_with_the_logs_receipts() {
    const TASKS: u64 = 16;
    const EACH: u64 = 2_000;
    let s = setup(Durability::None);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let receipts = runtime.block_on(async {
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let socket = s.socket.clone();
                tokio::spawn(async move {
                    let mut c = AsyncDaemonClient::connect(&socket).await.unwrap();
                    let mut receipts = Vec::new();
                    for i in 0..EACH {
                        if i % 500 == 499 {
                            receipts.push(c.record_receipt(&event(t, i)).await.unwrap());
                        } else {
                            c.record(&event(t, i)).await.unwrap();
                        }
                    }
                    c.flush().await.unwrap();
                    receipts
                })
            })
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let (_tmp, dir) = s.finish();
    let rs = records(&dir);
    assert_each_thread_in_order(&rs, TASKS, EACH);
    assert_eq!(receipts.len() as u64, TASKS * EACH / 500);
    for r in receipts {
        assert_eq!(rs[r.seq as usize - 1].chain, r.chain);
    }
}

/// The asynchronous client reports refusals at the same calls as the blocking one.
#[test]
fn the_async_client_reports_refusals_as_the_blocking_one_does() {
    let s = setup(Durability::Batch);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut c = AsyncDaemonClient::connect(&s.socket).await.unwrap();
        assert!(matches!(
            c.record_receipt(&Event::new("auditring.forged")).await,
            Err(Error::Event(_))
        ));
        c.record(&too_large()).await.unwrap();
        assert_invalid_event(&c.flush().await.unwrap_err());
        let r = c.record_receipt(&event(0, 1)).await.unwrap();
        assert_eq!(r.seq, 1);
        assert!(r.durable);
    });
    let (_tmp, dir) = s.finish();
    assert_eq!(records(&dir).len(), 1);
}

/// A call of the asynchronous client dropped while it waited for the daemon (a timeout, a
/// `select!`) leaves the connection in an unknown state: the next call says so instead of
/// taking the dropped call's reply for its own.
#[test]
fn a_cancelled_async_call_fails_the_next_one_instead_of_mixing_replies() {
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("silent.sock");
    // A daemon that greets, then reads and never answers.
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let silent = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        conn.write_all(DAEMON_HELLO).unwrap();
        let mut sink = Vec::new();
        let _ = conn.read_to_end(&mut sink);
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut c = AsyncDaemonClient::connect(&socket).await.unwrap();
        {
            let mut flush = std::pin::pin!(c.flush());
            let polled =
                std::future::poll_fn(|cx| std::task::Poll::Ready(flush.as_mut().poll(cx))).await;
            assert!(polled.is_pending(), "no reply can have come");
        }
        let err = c.record_receipt(&event(0, 0)).await.unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");
        drop(c);
    });
    silent.join().unwrap();
}

/// An event through the daemon is stored byte for byte as a producer in the daemon's process
/// would store it: the same leaf hash, whatever its details look like (whitespace around
/// them, escapes, nesting) or whichever fields it leaves out.
#[test]
fn events_through_the_daemon_are_stored_byte_for_byte_as_a_producers() {
    let s = setup(Durability::None);
    let events = [
        Event::new("bare"),
        Event::new("full")
            .with_actor("alice")
            .with_trace_id("4bf92f3577b34da6a3ce929d0e0e4736"),
        Event::new("spaced")
            .with_details_json(" \n {\"a\": [1, 2.5e3, \"\\u00e9\\n\"]} \t")
            .unwrap(),
        Event::new("scalar").with_details_json("null").unwrap(),
    ];
    let mut c = DaemonClient::connect(&s.socket).unwrap();
    for (i, e) in events.iter().enumerate() {
        let at = 1_700_000_000_000_000_000 + i as i64;
        c.record(&e.clone().with_timestamp_nanos(at)).unwrap();
        c.flush().unwrap();
        s.ring.push(e.clone().with_timestamp_nanos(at)).unwrap();
        s.ring.flush().unwrap();
    }
    let (_tmp, dir) = s.finish();
    let rs = records(&dir);
    assert_eq!(rs.len(), 2 * events.len());
    for pair in rs.chunks(2) {
        assert_eq!(pair[0].leaf, pair[1].leaf, "{:?}", pair[0].kind);
        assert_eq!(pair[0].details, pair[1].details);
    }
    assert_eq!(
        rs[4].details.as_deref(),
        Some(" \n {\"a\": [1, 2.5e3, \"\\u00e9\\n\"]} \t")
    );
}
