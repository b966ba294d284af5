//! Shipping logs to object storage, through the local-filesystem and in-memory stores of
//! `object_store` (and, in `tests/s3.rs`, a real S3 API): what lands there verifies where it
//! is, a pass cut anywhere resumes without uploading twice or skipping, failures and hangs of
//! the store are ridden out, a conditional put that loses its race looks again, and an object
//! edited or deleted in the bucket is found and named by `verify`.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditring::{Durability, Event, Reason, Retention, Ring, Unexported, VerifyOptions};
use auditring_ship::{
    HEAD_OBJECT, Head, Remote, RemoteStorage, Retry, STATE_PREFIX, ShipError, Shipper,
    verify_fleet, verify_remote,
};
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

const SEGMENT: u64 = 64 * 1024;

fn event(i: u64) -> Event {
    Event::new("ship.test")
        .with_actor(format!("user-{}", i % 7))
        .with_details_json(format!("{{\"i\":{i},\"pad\":\"{}\"}}", "x".repeat(120)))
        .unwrap()
}

fn ring(dir: &Path) -> Ring {
    Ring::builder(dir)
        .segment_size(SEGMENT)
        .durability(Durability::None)
        .open()
        .unwrap()
}

/// Pushes events `from..to` and waits until they are in the log.
fn push(ring: &Ring, from: u64, to: u64) {
    for i in from..to {
        ring.push(event(i)).unwrap();
    }
    ring.flush().unwrap();
}

/// A prefix of `store`, retried quickly (the faults here are injected, not slow).
fn remote(store: Arc<dyn ObjectStore>, prefix: &str) -> Remote {
    Remote::with_store(
        store,
        ObjectPath::from(prefix),
        &format!("memory:///{prefix}"),
    )
    .unwrap()
    .with_retry(Retry::new(
        4,
        Duration::from_millis(1),
        Duration::from_secs(60),
    ))
}

/// The number of sealed segments of the log in `dir`, and the last seq they hold.
fn sealed(dir: &Path) -> (usize, u64) {
    let snap = auditring::Reader::open(dir).unwrap().snapshot().unwrap();
    let sealed: Vec<_> = snap
        .segments()
        .unwrap()
        .into_iter()
        .filter(|s| s.sealed)
        .collect();
    (sealed.len(), sealed.last().map_or(0, |s| s.last_seq))
}

#[test]
fn a_log_shipped_to_a_filesystem_store_verifies_there_and_each_pass_ships_only_whats_new() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let url = format!("file://{}/bucket/host-a", tmp.path().display());
    let ring = ring(&dir);
    push(&ring, 0, 2000);
    let shipper = Shipper::new(Remote::open(&url).unwrap());
    // (The ring seals a segment in its file a little after it rotates: each pass ships the
    // segments sealed when it looks, and the assertions count from what each pass reports.)
    let first = shipper.ship(&dir).unwrap();
    let n1 = first.uploaded.len();
    assert!(n1 >= 3, "{first:?}");
    let expected: Vec<String> = (1..=n1 as u64).map(|n| format!("{n:016x}.seg")).collect();
    assert_eq!(first.uploaded, expected);
    assert_eq!(first.already_there, 0);
    let head = first.head.clone().unwrap();
    assert_eq!(head.last_segment, n1 as u64);
    // The shipped objects are the segment files, byte for byte.
    for name in &first.uploaded {
        let shipped = std::fs::read(tmp.path().join("bucket/host-a").join(name)).unwrap();
        assert_eq!(shipped, std::fs::read(dir.join(name)).unwrap(), "{name}");
    }
    let report = verify_remote(shipper.remote(), VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.first_seq, report.last_seq), (1, head.last_seq));

    // Again: only what was sealed since, if anything. Then more: only the new ones.
    let again = shipper.ship(&dir).unwrap();
    assert_eq!(again.already_there, n1);
    assert!(again.uploaded.len() <= 1, "{again:?}");
    push(&ring, 2000, 4000);
    let more = shipper.ship(&dir).unwrap();
    let n2 = n1 + again.uploaded.len();
    assert_eq!(more.already_there, n2);
    let expected: Vec<String> = (n2 as u64 + 1..=(n2 + more.uploaded.len()) as u64)
        .map(|n| format!("{n:016x}.seg"))
        .collect();
    assert!(!more.uploaded.is_empty());
    assert_eq!(more.uploaded, expected);
    let report = verify_remote(shipper.remote(), VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.last_seq, more.head.unwrap().last_seq);
    ring.close().unwrap();
}

/// An object store that fails, hangs or races on demand, and counts what is put.
#[derive(Debug, Default)]
struct Faults {
    /// Requests so far, numbered from 1.
    requests: AtomicU64,
    /// Requests that fail (once each: a failure that passes).
    fail: Mutex<HashSet<u64>>,
    /// Requests that never answer.
    hang: Mutex<HashSet<u64>>,
    /// Every request from this one on fails (an outage, or the shipper's host dying): 0 for
    /// never.
    down_from: AtomicU64,
    /// Before a put of this object, another writer puts these bytes there (once).
    race: Mutex<Option<(String, Vec<u8>)>>,
    /// The objects put, in order.
    puts: Mutex<Vec<String>>,
}

#[derive(Debug)]
struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    faults: Arc<Faults>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    async fn request(&self) -> object_store::Result<()> {
        let n = self.faults.requests.fetch_add(1, Ordering::SeqCst) + 1;
        if self.faults.hang.lock().unwrap().contains(&n) {
            std::future::pending::<()>().await;
        }
        let down = self.faults.down_from.load(Ordering::SeqCst);
        if self.faults.fail.lock().unwrap().remove(&n) || (down > 0 && n >= down) {
            return Err(object_store::Error::Generic {
                store: "faulty",
                source: format!("request {n} failed (injected)").into(),
            });
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.request().await?;
        let race = {
            let mut race = self.faults.race.lock().unwrap();
            match &*race {
                Some((name, _)) if location.as_ref().ends_with(name.as_str()) => race.take(),
                _ => None,
            }
        };
        if let Some((_, bytes)) = race {
            self.inner.put(location, bytes.into()).await?;
        }
        let put = self.inner.put_opts(location, payload, opts).await?;
        self.faults.puts.lock().unwrap().push(location.to_string());
        Ok(put)
    }
    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.request().await?;
        self.inner.put_multipart_opts(location, opts).await
    }
    async fn get_opts(
        &self,
        location: &ObjectPath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.request().await?;
        self.inner.get_opts(location, options).await
    }
    async fn get_ranges(
        &self,
        location: &ObjectPath,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.request().await?;
        self.inner.get_ranges(location, ranges).await
    }
    async fn delete(&self, location: &ObjectPath) -> object_store::Result<()> {
        self.request().await?;
        self.inner.delete(location).await
    }
    fn list(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn list_with_delimiter(
        &self,
        prefix: Option<&ObjectPath>,
    ) -> object_store::Result<ListResult> {
        self.request().await?;
        self.inner.list_with_delimiter(prefix).await
    }
    async fn copy(&self, from: &ObjectPath, to: &ObjectPath) -> object_store::Result<()> {
        self.request().await?;
        self.inner.copy(from, to).await
    }
    async fn copy_if_not_exists(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
    ) -> object_store::Result<()> {
        self.request().await?;
        self.inner.copy_if_not_exists(from, to).await
    }
}

fn faulty(inner: &Arc<InMemory>) -> (Arc<dyn ObjectStore>, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let store = FaultyStore {
        inner: inner.clone(),
        faults: faults.clone(),
    };
    (Arc::new(store), faults)
}

/// A pass cut at every request in turn (the store down from there on, as when the shipper's
/// host dies), then a pass that completes: every segment is uploaded exactly once over the
/// two, none is skipped, and the shipped log verifies.
#[test]
fn a_pass_cut_at_any_request_resumes_without_uploading_twice_or_skipping() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = ring(&dir);
    push(&ring, 0, 1500);
    ring.close().unwrap();
    let (count, last) = sealed(&dir);
    // How many requests a whole pass makes.
    let whole = {
        let memory = Arc::new(InMemory::new());
        let (store, faults) = faulty(&memory);
        Shipper::new(remote(store, "h")).ship(&dir).unwrap();
        faults.requests.load(Ordering::SeqCst)
    };
    for cut in 1..=whole {
        let memory = Arc::new(InMemory::new());
        let (store, faults) = faulty(&memory);
        faults.down_from.store(cut, Ordering::SeqCst);
        let cut_short = Shipper::new(remote(store, "h")).ship(&dir);
        assert!(cut_short.is_err(), "cut at request {cut} of {whole}");
        let (store, after) = faulty(&memory);
        let resumed = Shipper::new(remote(store, "h")).ship(&dir).unwrap();
        let mut puts: Vec<String> = faults.puts.lock().unwrap().clone();
        puts.extend(after.puts.lock().unwrap().iter().cloned());
        let segments: Vec<&String> = puts.iter().filter(|p| is_segment(p)).collect();
        let unique: HashSet<&&String> = segments.iter().collect();
        assert_eq!(segments.len(), count, "cut at {cut}: {segments:?}");
        assert_eq!(unique.len(), count, "cut at {cut}: uploaded twice");
        assert_eq!(resumed.head.unwrap().last_seq, last, "cut at {cut}");
        let report = verify_remote(&remote(memory.clone(), "h"), VerifyOptions::default()).unwrap();
        assert!(report.is_ok(), "cut at {cut}: {:?}", report.failure);
        assert_eq!(report.last_seq, last);
    }
}

/// A request that fails once, or never answers, is made again: the pass succeeds.
#[test]
fn failed_and_hung_requests_are_made_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = ring(&dir);
    push(&ring, 0, 1200);
    ring.close().unwrap();
    let memory = Arc::new(InMemory::new());
    let (store, faults) = faulty(&memory);
    faults.fail.lock().unwrap().extend([1, 3, 4, 7]);
    faults.hang.lock().unwrap().extend([5, 9]);
    // The hung requests end at the timeout: an injected fault, not the machine's speed.
    let remote = Remote::with_store(store, ObjectPath::from("h"), "memory:///h")
        .unwrap()
        .with_retry(Retry::new(
            4,
            Duration::from_millis(1),
            Duration::from_millis(200),
        ));
    let report = Shipper::new(remote.clone()).ship(&dir).unwrap();
    assert_eq!(report.uploaded.len(), sealed(&dir).0);
    assert!(
        faults.fail.lock().unwrap().is_empty(),
        "every failure was met"
    );
    let verified = verify_remote(&remote, VerifyOptions::default()).unwrap();
    assert!(verified.is_ok(), "{:?}", verified.failure);

    // A store that keeps failing: the pass gives up after the attempts, saying what it did.
    let (store, faults) = faulty(&memory);
    faults.down_from.store(1, Ordering::SeqCst);
    let err = Shipper::new(remote_of(store)).ship(&dir).unwrap_err();
    assert!(matches!(err, ShipError::Store { .. }), "{err}");
    assert!(err.to_string().contains("memory:///h"), "{err}");
    assert_eq!(faults.requests.load(Ordering::SeqCst), 4, "four attempts");
}

fn remote_of(store: Arc<dyn ObjectStore>) -> Remote {
    remote(store, "h")
}

/// The head object moves only forward: a racing shipper that wrote an older head between this
/// one's read and its put makes the put fail, and this one looks again and writes its own; one
/// that wrote a newer head keeps it.
#[test]
fn a_conditional_put_that_loses_its_race_looks_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = ring(&dir);
    push(&ring, 0, 600);
    let memory = Arc::new(InMemory::new());
    Shipper::new(remote(memory.clone(), "h"))
        .ship(&dir)
        .unwrap();
    let head_of = |memory: &Arc<InMemory>| -> Head {
        let state = remote(memory.clone(), "h").child(STATE_PREFIX);
        let storage = RemoteStorage::new(state);
        let bytes = auditring::storage::Storage::read_small(&storage, HEAD_OBJECT)
            .unwrap()
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let old = head_of(&memory);

    push(&ring, 600, 1600);
    let (store, faults) = faulty(&memory);
    // Another shipper of this log writes the old head again just before this one's put.
    *faults.race.lock().unwrap() = Some((HEAD_OBJECT.into(), serde_json::to_vec(&old).unwrap()));
    let report = Shipper::new(remote(store, "h")).ship(&dir).unwrap();
    assert!(faults.race.lock().unwrap().is_none(), "the race happened");
    let now = head_of(&memory);
    assert_eq!(Some(&now), report.head.as_ref());
    assert!(now.last_seq > old.last_seq);

    // One that wrote a head further on (as a later pass would) keeps it.
    push(&ring, 1600, 2400);
    let further = Head {
        last_seq: now.last_seq + 1_000_000,
        ..now.clone()
    };
    let (store, faults) = faulty(&memory);
    *faults.race.lock().unwrap() =
        Some((HEAD_OBJECT.into(), serde_json::to_vec(&further).unwrap()));
    Shipper::new(remote(store, "h")).ship(&dir).unwrap();
    assert_eq!(head_of(&memory), further);
    ring.close().unwrap();
}

/// Objects edited or deleted in the bucket are found by `verify` where they are, named by
/// URL, with the seq and byte offset.
#[test]
fn objects_edited_or_deleted_in_the_bucket_are_found_and_located() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = ring(&dir);
    push(&ring, 0, 2000);
    ring.close().unwrap();
    let memory = Arc::new(InMemory::new());
    let report = Shipper::new(remote(memory.clone(), "fleet/h"))
        .ship(&dir)
        .unwrap();
    let victim = report.uploaded[1].clone();
    let path = ObjectPath::from(format!("fleet/h/{victim}"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let original = runtime
        .block_on(async { memory.get(&path).await.unwrap().bytes().await.unwrap() })
        .to_vec();

    // One byte of a record changed.
    let at = 8192 + 300;
    let mut edited = original.clone();
    edited[at] ^= 1;
    runtime.block_on(memory.put(&path, edited.into())).unwrap();
    let found = verify_remote(&remote(memory.clone(), "fleet/h"), VerifyOptions::default())
        .unwrap()
        .failure
        .expect("an edit");
    assert_eq!(
        found.file.to_str().unwrap(),
        format!("memory:///fleet/h/{victim}")
    );
    assert!(found.seq.is_some(), "{found}");
    assert!(found.offset >= 8192 && found.offset <= at as u64, "{found}");

    // The object removed from between others.
    runtime.block_on(memory.delete(&path)).unwrap();
    let found = verify_remote(&remote(memory.clone(), "fleet/h"), VerifyOptions::default())
        .unwrap()
        .failure
        .expect("a missing segment");
    assert!(matches!(found.reason, Reason::MissingSegment(2)), "{found}");
    assert!(
        found
            .file
            .to_str()
            .unwrap()
            .starts_with("memory:///fleet/h/")
    );
    runtime
        .block_on(memory.put(&path, original.into()))
        .unwrap();
    let report =
        verify_remote(&remote(memory.clone(), "fleet/h"), VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);

    // The newest object removed: the records left verify, but the log no longer reaches what
    // the shipper's head object says.
    let newest = report_last_object(&report_names(&memory, &runtime));
    runtime
        .block_on(memory.delete(&ObjectPath::from(format!("fleet/h/{newest}"))))
        .unwrap();
    let err = verify_remote(&remote(memory, "fleet/h"), VerifyOptions::default()).unwrap_err();
    assert!(matches!(err, ShipError::BehindHead { .. }), "{err}");
    assert!(err.to_string().contains("removed from its end"), "{err}");
}

/// The names of the segment objects under `fleet/h`.
fn report_names(memory: &Arc<InMemory>, runtime: &tokio::runtime::Runtime) -> Vec<String> {
    let listed = runtime
        .block_on(memory.list_with_delimiter(Some(&ObjectPath::from("fleet/h"))))
        .unwrap();
    listed
        .objects
        .iter()
        .filter_map(|m| m.location.filename().map(str::to_owned))
        .filter(|n| is_segment(n))
        .collect()
}

/// Whether `name` is a segment's (segment names are lowercase).
fn is_segment(name: &str) -> bool {
    Path::new(name).extension().is_some_and(|e| e == "seg")
}

fn report_last_object(names: &[String]) -> String {
    names.iter().max().unwrap().clone()
}

/// Two logs must not ship to one prefix; segments pruned before they were shipped would leave
/// a gap: both stop the pass, saying why.
#[test]
fn another_logs_prefix_and_a_gap_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let memory = Arc::new(InMemory::new());
    for dir in [&a, &b] {
        let ring = ring(dir);
        push(&ring, 0, 800);
        ring.close().unwrap();
    }
    Shipper::new(remote(memory.clone(), "h")).ship(&a).unwrap();
    let err = Shipper::new(remote(memory.clone(), "h"))
        .ship(&b)
        .unwrap_err();
    assert!(matches!(err, ShipError::OtherLog { .. }), "{err}");

    // Log a goes on, pruning what was never shipped.
    let ring = Ring::builder(&a)
        .segment_size(SEGMENT)
        .durability(Durability::None)
        .retention(
            Retention::new()
                .max_segments(1)
                .unexported(Unexported::Remove),
        )
        .open()
        .unwrap();
    push(&ring, 800, 3000);
    ring.apply_retention().unwrap();
    ring.close().unwrap();
    let err = Shipper::new(remote(memory, "h")).ship(&a).unwrap_err();
    assert!(matches!(err, ShipError::Gap { .. }), "{err}");
    assert!(
        err.to_string().contains("pruned before they were shipped"),
        "{err}"
    );
}

/// Ship before pruning: a ring whose retention waits for exports prunes only what a pass has
/// shipped, and its prune records name the URL; the shipped log keeps every record.
#[test]
fn retention_that_waits_prunes_what_was_shipped_and_names_where() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir)
        .segment_size(SEGMENT)
        .durability(Durability::None)
        .queue_capacity(64)
        .retention(Retention::new().max_segments(1))
        .open()
        .unwrap();
    let ring = Arc::new(ring);
    let memory = Arc::new(InMemory::new());
    let shipper = Shipper::new(remote(memory.clone(), "h"));
    // The writer waits whenever retention holds the log; each pass of the shipper releases it.
    let writer = {
        let ring = ring.clone();
        std::thread::spawn(move || push(&ring, 0, 4000))
    };
    while !writer.is_finished() || ring.retention_held() {
        shipper.ship(&dir).unwrap();
        ring.apply_retention().unwrap();
    }
    writer.join().unwrap();
    ring.flush().unwrap();
    let snap = ring.snapshot();
    assert!(snap.first_seq() > 1, "pruned");
    let prunes: Vec<serde_json::Value> = snap
        .iter()
        .map(Result::unwrap)
        .filter(|r| r.kind == auditring::PRUNED_KIND)
        .map(|r| serde_json::from_str(r.details.as_deref().unwrap()).unwrap())
        .collect();
    assert!(!prunes.is_empty());
    for p in &prunes {
        assert_eq!(p["exported_to"], "memory:///h", "{p}");
    }
    // Everything pruned is in the store, from seq 1 on.
    let shipped = verify_remote(shipper.remote(), VerifyOptions::default()).unwrap();
    assert!(shipped.is_ok(), "{:?}", shipped.failure);
    assert_eq!(shipped.first_seq, 1);
    assert!(shipped.last_seq >= snap.first_seq() - 1);
    Arc::into_inner(ring).unwrap().close().unwrap();
}

/// A fleet: three hosts' logs under one prefix, one of them edited in the bucket; one run
/// verifies them all and says which failed.
#[test]
fn a_central_verifier_checks_every_hosts_log_and_names_the_bad_one() {
    let tmp = tempfile::tempdir().unwrap();
    let memory = Arc::new(InMemory::new());
    for host in ["host-a", "host-b", "host-c"] {
        let dir = tmp.path().join(host);
        let ring = ring(&dir);
        push(&ring, 0, 900);
        ring.close().unwrap();
        Shipper::new(remote(memory.clone(), &format!("fleet/{host}")))
            .ship(&dir)
            .unwrap();
    }
    let path = ObjectPath::from("fleet/host-b/0000000000000001.seg");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut bytes = runtime
        .block_on(async { memory.get(&path).await.unwrap().bytes().await.unwrap() })
        .to_vec();
    bytes[9000] ^= 0x20;
    runtime.block_on(memory.put(&path, bytes.into())).unwrap();

    let fleet = remote(memory, "fleet");
    let reports = verify_fleet(&fleet, VerifyOptions::default).unwrap();
    let hosts: Vec<(&str, bool)> = reports
        .iter()
        .map(|r| (r.host.as_str(), r.is_ok()))
        .collect();
    assert_eq!(
        hosts,
        [("host-a", true), ("host-b", false), ("host-c", true)]
    );
    let bad = reports[1]
        .result
        .as_ref()
        .unwrap()
        .failure
        .as_ref()
        .unwrap();
    assert_eq!(
        bad.file.to_str().unwrap(),
        "memory:///fleet/host-b/0000000000000001.seg"
    );
    // Each its own log.
    let ids: HashSet<_> = reports
        .iter()
        .map(|r| r.result.as_ref().unwrap().log_id)
        .collect();
    assert_eq!(ids.len(), 3);
}

/// The shipper's state objects are not part of the log: a shipped log lists as one.
#[test]
fn a_shipped_log_reads_as_a_log_where_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = ring(&dir);
    push(&ring, 0, 1000);
    ring.close().unwrap();
    let memory = Arc::new(InMemory::new());
    Shipper::new(remote(memory.clone(), "h"))
        .ship(&dir)
        .unwrap();
    let snap = auditring::Reader::with_storage(RemoteStorage::new(remote(memory, "h")))
        .snapshot()
        .unwrap();
    let local = auditring::Reader::open(&dir).unwrap().snapshot().unwrap();
    assert_eq!(snap.first_seq(), 1);
    assert_eq!(snap.log_id(), local.log_id());
    let (_, last) = sealed(&dir);
    assert_eq!(snap.head_seq(), last);
    let q = snap
        .query(&auditring::Query::new().actor("user-3").limit(5))
        .unwrap();
    assert_eq!(q.len(), 5);
    for r in q {
        assert_eq!(local.get(r.seq).unwrap().unwrap(), r);
    }
    // Read-only.
    assert!(
        auditring::Ring::with_storage(RemoteStorage::new(remote(Arc::new(InMemory::new()), "h")))
            .open()
            .is_err()
    );
}

/// A central verifier running while a host ships never takes the shipper's progress for a
/// cut: it reads the head object before it lists the segments.
#[test]
fn verifying_while_a_pass_ships_never_reports_a_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = ring(&dir);
    let memory = Arc::new(InMemory::new());
    let shipper = Shipper::new(remote(memory.clone(), "h"));
    // Until the store holds a log (the ring seals a rotated segment in its file a little
    // after it rotates).
    let mut pushed = 0;
    while shipper.ship(&dir).unwrap().head.is_none() {
        push(&ring, pushed, pushed + 300);
        pushed += 300;
    }
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let verifier = {
        let (memory, done) = (memory.clone(), done.clone());
        std::thread::spawn(move || {
            let mut runs = 0;
            while !done.load(Ordering::SeqCst) || runs == 0 {
                let report = verify_remote(&remote(memory.clone(), "h"), VerifyOptions::default())
                    .unwrap_or_else(|e| panic!("run {runs}: {e}"));
                assert!(report.is_ok(), "run {runs}: {:?}", report.failure);
                runs += 1;
            }
            runs
        })
    };
    for round in 0..40 {
        push(&ring, pushed + round * 150, pushed + (round + 1) * 150);
        shipper.ship(&dir).unwrap();
    }
    done.store(true, Ordering::SeqCst);
    assert!(verifier.join().unwrap() > 0);
    ring.close().unwrap();
}
