//! Hostile-input harnesses, shared by the cargo-fuzz targets in `fuzz/` and by
//! `tests/fuzz_corpus.rs`, which replays the checked-in corpus through them.
//!
//! Every harness takes arbitrary bytes and must never panic: errors from the crate are expected
//! and fine, a panic (in the calling thread or in one of the ring's threads) is a bug. Besides
//! not panicking, the harnesses check properties that hold whatever the input:
//!
//! * a log that [`verify_storage`] accepts can be read in full by a [`Reader`] snapshot (every
//!   record, `get` of the first, middle and last seq, `last(3)`), with as many records and the
//!   same head as the report says; it opens for writing, takes one more event, and still
//!   verifies afterwards, as does the image a crash right after the flush would leave;
//! * an event built from a JSON line reads back with the same fields.
//!
//! Only the crate's public API is used. The segment format is re-implemented here just far
//! enough to recompute digests and hashes after a mutation ("fixups"), so that the fuzzer can
//! reach the logic behind the integrity checks instead of stopping at the first SHA-256.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use auditring::storage::{MemStorage, Storage};
use auditring::{Durability, Event, Query, Reader, Ring, Snapshot, VerifyReport, verify_storage};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// The segment format, as far as the fixups need it (see src/segment.rs).

const MAGIC: &[u8; 8] = b"AUDITRNG";
const HEADER_LEN: usize = 4096;
const PREFIX_BODY_LEN: usize = 64;
const PREFIX_LEN: usize = 96;
const SLOT_OFFSETS: [usize; 2] = [512, 1024];
const SLOT_BODY_LEN: usize = 104;
const SLOT_LEN: usize = 136;
const RECORD_MAGIC: &[u8; 4] = b"AREC";
const RECORD_HEADER_LEN: usize = 80;
const FLAG_SEALED: u32 = 1;
const FLAG_CLEAN: u32 = 2;

/// The files of a log directory: names and contents, in name order.
pub type Files = Vec<(String, Vec<u8>)>;

/// Segment size of every ring the harnesses open.
pub const SEGMENT_SIZE: u64 = 64 * 1024;
/// Queue capacity of the rings the harnesses open for one or two events (the default
/// allocates megabytes per ring).
const QUEUE_CAPACITY: usize = 64;
/// Largest file `raw_directory` builds (content plus zero padding).
const MAX_RAW_FILE: usize = 1 << 20;
/// Most mutations `mutated_log` applies.
const MAX_MUTATIONS: usize = 64;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// `{number:016x}.seg`, the name of segment `number`.
pub fn segment_name(number: u64) -> String {
    format!("{number:016x}.seg")
}

/// The number a segment file name stands for (the crate's own rule).
fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".seg")?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().filter(|&n| n != 0)
}

/// Recomputes the prefix digest and the digest of every non-empty commit slot.
fn fix_digests(b: &mut [u8]) {
    if b.len() < PREFIX_LEN {
        return;
    }
    let digest = sha256(&[&b[..PREFIX_BODY_LEN]]);
    b[PREFIX_BODY_LEN..PREFIX_LEN].copy_from_slice(&digest);
    for at in SLOT_OFFSETS {
        if b.len() < at + SLOT_LEN || b[at..at + SLOT_LEN].iter().all(|&x| x == 0) {
            continue;
        }
        let d = sha256(&[&digest, &b[at..at + SLOT_BODY_LEN]]);
        b[at + SLOT_BODY_LEN..at + SLOT_LEN].copy_from_slice(&d);
    }
}

/// A record as found by [`walk_records`].
#[derive(Clone, Copy, Debug)]
struct RawRecord {
    offset: usize,
    end: usize,
    seq: u64,
    chain: [u8; 32],
}

/// Where the records of a segment file start, if its prefix gives a usable offset.
fn data_offset(b: &[u8]) -> Option<usize> {
    if b.len() < HEADER_LEN {
        return None;
    }
    let d = usize::try_from(u64_at(b, 32)).ok()?;
    (HEADER_LEN..=b.len()).contains(&d).then_some(d)
}

/// The structurally sound records from the data offset on (magic and bounds only).
fn walk_records(b: &[u8]) -> Vec<RawRecord> {
    let mut out = Vec::new();
    let Some(mut pos) = data_offset(b) else {
        return out;
    };
    while pos + RECORD_HEADER_LEN <= b.len() && &b[pos..pos + 4] == RECORD_MAGIC {
        let body_len = u32_at(b, pos + 4) as usize;
        let total = (RECORD_HEADER_LEN + body_len + 7) & !7;
        if total > b.len() - pos {
            break;
        }
        out.push(RawRecord {
            offset: pos,
            end: pos + total,
            seq: u64_at(b, pos + 8),
            chain: b[pos + 48..pos + 80].try_into().expect("32 bytes"),
        });
        pos += total;
    }
    out
}

/// Position of the non-empty slot with the highest generation.
fn newest_slot(b: &[u8]) -> Option<usize> {
    SLOT_OFFSETS
        .into_iter()
        .filter(|&at| b.len() >= at + SLOT_LEN && b[at..at + SLOT_LEN].iter().any(|&x| x != 0))
        .max_by_key(|&at| u64_at(b, at))
}

/// Recomputes every leaf and chain hash of every segment, in name order, each chain continuing
/// from the previous segment's newest head; then points each slot's anchor, head and last seq
/// at what the records say, and fixes all digests. What is left to catch is everything but a
/// hash: seqs, lengths, offsets, flags, index entries, bodies.
fn rechain(files: &mut Files) {
    let mut prev_head: Option<[u8; 32]> = None;
    for (name, b) in files.iter_mut() {
        let Some(number) = parse_segment_name(name) else {
            continue;
        };
        if b.len() < HEADER_LEN || &b[..8] != MAGIC {
            prev_head = None;
            continue;
        }
        let newest = newest_slot(b);
        let anchor: [u8; 32] = match (prev_head, newest) {
            (Some(h), _) => h,
            (None, _) if number == 1 => [0; 32],
            (None, Some(at)) => b[at + 40..at + 72].try_into().expect("32 bytes"),
            (None, None) => [0; 32],
        };
        let mut records = walk_records(b);
        let mut prev = anchor;
        for r in &mut records {
            let body_len = u32_at(b, r.offset + 4) as usize;
            let body = r.offset + RECORD_HEADER_LEN;
            let leaf = sha256(&[&b[body..body + body_len]]);
            let chain = sha256(&[&prev, &r.seq.to_le_bytes(), &leaf]);
            b[r.offset + 16..r.offset + 48].copy_from_slice(&leaf);
            b[r.offset + 48..r.offset + 80].copy_from_slice(&chain);
            r.chain = chain;
            prev = chain;
        }
        let start = data_offset(b);
        for at in SLOT_OFFSETS {
            if b[at..at + SLOT_LEN].iter().all(|&x| x == 0) {
                continue;
            }
            b[at + 40..at + 72].copy_from_slice(&anchor);
            let committed = u64_at(b, at + 16);
            if start.is_some_and(|s| s as u64 == committed) {
                b[at + 72..at + 104].copy_from_slice(&anchor);
                let first = u64_at(b, at + 8);
                put_u64(b, at + 24, first.wrapping_sub(1));
            } else if let Some(r) = records.iter().find(|r| r.end as u64 == committed) {
                b[at + 72..at + 104].copy_from_slice(&r.chain);
                put_u64(b, at + 24, r.seq);
            }
        }
        prev_head = Some(match newest {
            Some(at) => b[at + 72..at + 104].try_into().expect("32 bytes"),
            None => prev,
        });
        fix_digests(b);
    }
}

/// Rewrites both commit slots of a segment file as a writer that had committed the first
/// `count` records last (and a few fewer the time before) would have left them, with the given
/// flags on the newest.
fn rewind(b: &mut [u8], count: usize, sealed: bool, clean: bool) {
    let records = walk_records(b);
    let newest = newest_slot(b).expect("a slot");
    let generation = u64_at(b, newest);
    let first_seq = u64_at(b, newest + 8);
    let anchor: [u8; 32] = b[newest + 40..newest + 72].try_into().expect("32 bytes");
    let start = data_offset(b).expect("data offset");
    for (g, n, sealed, clean) in [
        (generation + 1, count.saturating_sub(3), false, false),
        (generation + 2, count, sealed, clean),
    ] {
        let (committed, last_seq, head) = match n.checked_sub(1).map(|i| records[i]) {
            None => (start, first_seq - 1, anchor),
            Some(r) => (r.end, r.seq, r.chain),
        };
        let at = SLOT_OFFSETS[(g % 2) as usize];
        let s = &mut b[at..at + SLOT_LEN];
        s.fill(0);
        put_u64(s, 0, g);
        put_u64(s, 8, first_seq);
        put_u64(s, 16, committed as u64);
        put_u64(s, 24, last_seq);
        let flags = if sealed { FLAG_SEALED } else { 0 } | if clean { FLAG_CLEAN } else { 0 };
        s[32..36].copy_from_slice(&flags.to_le_bytes());
        s[40..72].copy_from_slice(&anchor);
        s[72..104].copy_from_slice(&head);
    }
    fix_digests(b);
}

// ---------------------------------------------------------------------------------------------
// What every log-shaped input goes through.

fn storage_of(files: &Files) -> MemStorage {
    let mem = MemStorage::new("fuzz");
    for (name, bytes) in files {
        mem.write_file(name, bytes.clone());
    }
    mem
}

/// Reads everything a snapshot offers. Returns the number of records iterated and the first
/// error met, with checks that hold for any snapshot.
fn read_all(snap: &Snapshot) -> (u64, Option<String>) {
    let _ = (
        snap.head(),
        snap.anchor(),
        snap.segment_count(),
        snap.is_empty(),
    );
    let mut count = 0u64;
    let mut error = None;
    for r in snap.iter() {
        match r {
            Ok(rec) => {
                let want = snap.first_seq().wrapping_add(count);
                assert_eq!(rec.seq, want, "Records yielded seq {} for {want}", rec.seq);
                count += 1;
            }
            Err(e) => {
                error = Some(e.to_string());
                break;
            }
        }
    }
    let _ = snap.query(&Query::new().kind("plan.applied").last(2));
    let _ = snap.query(&Query::new().actor("alice").since(0).limit(3));
    (count, error)
}

/// Seqs worth a `get`: the first, the middle and the last of the snapshot.
fn probe_seqs(snap: &Snapshot) -> Vec<u64> {
    let len = snap.len();
    if len == 0 {
        return Vec::new();
    }
    let first = snap.first_seq();
    vec![first, first + len / 2, snap.head_seq()]
}

/// Whether to describe each input's outcome on stderr (`AUDITRING_FUZZ_TRACE=1`).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("AUDITRING_FUZZ_TRACE").is_some_and(|v| v == "1"))
}

fn sample_append(n: u64) -> Event {
    Event::new("fuzz.appended")
        .with_actor("fuzzer")
        .with_timestamp_nanos(1_700_000_000_000_000_000 + n as i64)
        .with_details_json(r#"{"appended":true}"#)
        .expect("static JSON")
}

/// Verifies, reads and reopens the log in `mem`, checking the properties in the module docs.
fn exercise(mem: &MemStorage) {
    let report = verify_storage(mem, auditring::VerifyOptions::default());
    if let Ok(r) = &report {
        let _ = serde_json::to_string(r);
        let _ = r.failure.as_ref().map(std::string::ToString::to_string);
    }
    let verified: Option<&VerifyReport> = report.as_ref().ok().filter(|r| r.is_ok());
    if trace() {
        eprintln!(
            "verify: {}",
            match &report {
                Ok(r) => match &r.failure {
                    None => format!(
                        "ok, {} events, torn tail {:?}",
                        r.events,
                        r.torn_tail.is_some()
                    ),
                    Some(f) => format!("failure after {} events: {f}", r.events),
                },
                Err(e) => format!("error: {e}"),
            }
        );
    }

    let snapshot = Reader::with_storage(mem.clone()).snapshot();
    match (&snapshot, verified) {
        (Err(e), Some(r)) => panic!(
            "verify_storage accepted the log ({} events) but Reader::snapshot failed: {e}",
            r.events
        ),
        (Err(e), None) => drop(e.to_string()),
        (Ok(snap), verified) => {
            let (count, error) = read_all(snap);
            let gets: Vec<_> = probe_seqs(snap)
                .into_iter()
                .map(|s| (s, snap.get(s)))
                .collect();
            let last: Vec<_> = snap.last(3).collect();
            if let Some(r) = verified {
                if let Some(e) = error {
                    panic!(
                        "verify_storage accepted the log ({} events) but reading record {} of \
                         the snapshot failed: {e}",
                        r.events,
                        snap.first_seq() + count
                    );
                }
                assert_eq!(
                    count, r.events,
                    "verify_storage counted {} events, the snapshot iterated {count}",
                    r.events
                );
                assert_eq!(snap.len(), r.events, "snapshot length and verified events");
                assert_eq!(snap.head(), r.head, "snapshot head and verified head");
                if r.events > 0 {
                    assert_eq!(snap.first_seq(), r.first_seq, "first seq");
                    assert_eq!(snap.head_seq(), r.last_seq, "last seq");
                }
                for (seq, got) in gets {
                    match got {
                        Ok(Some(rec)) => assert_eq!(rec.seq, seq, "get({seq}) returned another"),
                        Ok(None) => panic!("verified log: get({seq}) found nothing"),
                        Err(e) => {
                            panic!("verified log ({} events): get({seq}) failed: {e}", r.events)
                        }
                    }
                }
                let expected = r.events.min(3) as usize;
                assert_eq!(last.len(), expected, "verified log: last(3) length");
                for rec in last {
                    if let Err(e) = rec {
                        panic!("verified log ({} events): last(3) failed: {e}", r.events);
                    }
                }
            }
        }
    }
    drop(snapshot);

    let ring = Ring::with_storage(mem.clone())
        .segment_size(SEGMENT_SIZE)
        .queue_capacity(QUEUE_CAPACITY)
        .durability(Durability::Batch)
        .open();
    if trace() {
        eprintln!(
            "open: {}",
            ring.as_ref()
                .map_or_else(|e| format!("error: {e}"), |_| "ok".into())
        );
    }
    let ring = match (ring, verified) {
        (Ok(ring), _) => ring,
        (Err(e), Some(r)) => panic!(
            "verify_storage accepted the log ({} events) but Ring::open failed: {e}",
            r.events
        ),
        (Err(e), None) => return drop(e.to_string()),
    };
    let _ = format!("{:?}", ring.recovery());
    let before = ring.snapshot().head_seq();
    let pushed = ring.push(sample_append(before));
    let flushed = ring.flush();
    let crashed = mem.crash_image();
    let head = ring.snapshot().head();
    let closed = ring.close();
    let Some(r) = verified else {
        // Whatever happened, the crash image is just another input.
        let _ = verify_storage(&crashed, auditring::VerifyOptions::default());
        return;
    };
    if let Err(e) = pushed {
        panic!("verified log reopened, but push failed: {e}");
    }
    if let Err(e) = flushed {
        panic!("verified log reopened, but flush failed: {e}");
    }
    if let Err(e) = closed {
        panic!("verified log reopened, but close failed: {e}");
    }
    for (what, storage) in [("after close", mem), ("crash image after flush", &crashed)] {
        let after = verify_storage(storage, auditring::VerifyOptions::default())
            .unwrap_or_else(|e| panic!("verified log, one event appended: verify {what}: {e}"));
        if let Some(f) = &after.failure {
            panic!(
                "verified log ({} events), one event appended: verify {what} failed: {f}",
                r.events
            );
        }
        assert_eq!(
            after.events,
            r.events + 1,
            "verified log, one event appended: events {what}"
        );
        assert_eq!(
            after.head, head,
            "verified log, one event appended: head {what}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// raw_directory

/// Builds a log directory from raw bytes and runs it through verify, a reader and a writer.
///
/// Layout of `data`: one flag byte, then for each file a 3-byte content length and a 3-byte
/// padded length (both little-endian), then the contents back to back. Each file is its content
/// followed by zeros up to the padded length (at most 1 MiB), so a short input can stand for a
/// 64 KiB segment. Flags: bits 0-1 number of files minus one; bit 2 fix the digests; bit 3
/// recompute every hash; bit 4 number the segments from 2; bit 5 skip a number after the first
/// file; bit 6 give the last file a foreign name; bit 7 which one (a temporary leftover of an
/// interrupted create, or a stranger).
pub fn raw_directory(data: &[u8]) {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(flags & 3) + 1;
    let mut lens = Vec::with_capacity(n);
    for _ in 0..n {
        let Some((l, r)) = rest.split_first_chunk::<6>() else {
            break;
        };
        let content = u32::from_le_bytes([l[0], l[1], l[2], 0]) as usize;
        let padded = (u32::from_le_bytes([l[3], l[4], l[5], 0]) as usize).min(MAX_RAW_FILE);
        lens.push((content, padded));
        rest = r;
    }
    let mut number = if flags & 0x10 != 0 { 2 } else { 1 };
    let mut files = Vec::with_capacity(lens.len());
    let count = lens.len();
    for (i, (content, padded)) in lens.into_iter().enumerate() {
        let take = content.min(rest.len());
        let mut bytes = rest[..take].to_vec();
        rest = &rest[take..];
        if bytes.len() < padded {
            bytes.resize(padded, 0);
        }
        let name = if i + 1 == count && flags & 0x40 != 0 {
            if flags & 0x80 != 0 {
                format!(".{}.tmp", segment_name(number))
            } else {
                "notes.txt".to_owned()
            }
        } else {
            segment_name(number)
        };
        files.push((name, bytes));
        number += if i == 0 && flags & 0x20 != 0 { 2 } else { 1 };
    }
    if flags & 0x04 != 0 {
        for (_, b) in &mut files {
            fix_digests(b);
        }
    }
    if flags & 0x08 != 0 {
        rechain(&mut files);
    }
    exercise(&storage_of(&files));
}

// ---------------------------------------------------------------------------------------------
// mutated_log

/// The event number `i` of the base log: varied kinds, optional fields and details.
pub fn sample_event(i: u64) -> Event {
    const KINDS: [&str; 6] = [
        "user.login",
        "plan.applied",
        "k",
        "secret.rotated",
        "доступ.выдан",
        "a.very.long.kind.name.for.an.audit.event.that.goes.on",
    ];
    let mut e = Event::new(KINDS[(i % KINDS.len() as u64) as usize]);
    if !i.is_multiple_of(3) {
        e = e.with_actor(if i.is_multiple_of(7) {
            "alice".to_owned()
        } else {
            format!("user:dev{:02}@example.com", i % 11)
        });
    }
    if i % 4 != 1 {
        e = e.with_trace_id(format!("{:016x}{:016x}", i.wrapping_mul(0x9e37_79b9), i));
    }
    let ts = if i % 50 == 7 {
        -(i as i64) * 1_000_000_007
    } else {
        1_700_000_000_000_000_000 + i as i64 * 1_000_003
    };
    e = e.with_timestamp_nanos(ts);
    let details = match i % 5 {
        0 => return e,
        1 => serde_json::json!({ "plan": i, "changes": i % 17, "ok": i.is_multiple_of(2) }),
        2 => serde_json::json!(["a", 1, null, { "nested": [i, "\u{1F600} \"quoted\" \\ \n"] }]),
        3 => serde_json::json!(format!("note {i}: ünïcödé")),
        _ => {
            serde_json::json!({ "note": "x".repeat(if i % 97 == 4 { 2500 } else { (i % 40) as usize }) })
        }
    };
    e.with_details(&details).expect("serializable")
}

/// How many events each opening of the base log pushes.
const BASE_ROUNDS: [u64; 3] = [260, 240, 170];
/// The fixed log id and creation time every base segment is rewritten to, so that the base is
/// byte for byte the same on every run.
const BASE_LOG_ID: [u8; 16] = *b"fuzz-base-log-id";
const BASE_CREATED: u64 = 1_700_000_000_000_000_000;

/// Builds the base log: three openings of a ring with 64 KiB segments, closed cleanly each time.
pub fn build_base_log() -> Files {
    let mem = MemStorage::new("fuzz-base");
    let mut i = 0;
    for round in BASE_ROUNDS {
        let ring = Ring::with_storage(mem.clone())
            .segment_size(SEGMENT_SIZE)
            .durability(Durability::None)
            .open()
            .expect("open the base log");
        for _ in 0..round {
            ring.push(sample_event(i)).expect("push into the base log");
            i += 1;
        }
        ring.close().expect("close the base log");
    }
    let mut names = mem.list().expect("list");
    names.sort();
    let mut files: Vec<_> = names
        .into_iter()
        .map(|name| {
            let bytes = mem.read_file(&name).expect("listed file");
            (name, bytes)
        })
        .collect();
    for (_, b) in &mut files {
        b[40..48].copy_from_slice(&BASE_CREATED.to_le_bytes());
        b[48..64].copy_from_slice(&BASE_LOG_ID);
        fix_digests(b);
    }
    files
}

/// The variants of the base log that `mutated_log` starts from.
fn base_variants() -> &'static [Files; 4] {
    static BASE: OnceLock<[Files; 4]> = OnceLock::new();
    BASE.get_or_init(|| {
        let clean = build_base_log();
        assert!(
            clean.len() >= 3,
            "the base log has {} segments",
            clean.len()
        );
        let last = clean.len() - 1;
        let in_last = walk_records(&clean[last].1).len();
        assert!(
            in_last > 80,
            "the last base segment holds {in_last} records"
        );
        // A crash after 10 records of the last segment were committed and the rest written.
        let mut partial = clean.clone();
        rewind(&mut partial[last].1, 10, false, false);
        // A crash before anything in the last segment was committed.
        let mut empty = clean.clone();
        rewind(&mut empty[last].1, 0, false, false);
        // A crash while the segment before the last was being sealed.
        let mut sealing = clean.clone();
        let in_prev = walk_records(&sealing[last - 1].1).len();
        rewind(&mut sealing[last - 1].1, in_prev / 2, false, false);
        [clean, partial, empty, sealing]
    })
}

/// Index of the file holding byte `off` of the files' concatenation, and the offset inside it.
fn locate(files: &Files, mut off: usize) -> (usize, usize) {
    for (i, (_, b)) in files.iter().enumerate() {
        if off < b.len() {
            return (i, off);
        }
        off -= b.len();
    }
    unreachable!("offset inside the total length")
}

/// A value a fuzzer would not guess: limits, off-by-ones of the current value, format sizes.
fn interesting(selector: u8, current: u64) -> u64 {
    match selector % 16 {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - 1,
        4 => i64::MAX as u64,
        5 => 1 << 32,
        6 => u64::from(u32::MAX),
        7 => current.wrapping_add(1),
        8 => current.wrapping_sub(1),
        9 => 4096,
        10 => 8192,
        11 => SEGMENT_SIZE,
        12 => current.wrapping_add(8),
        13 => current.wrapping_add(104),
        14 => current.wrapping_mul(2),
        _ => u64::from(selector) << 8,
    }
}

/// Applies the mutations that `ops` describes, 6 bytes each: a u32 offset into the files'
/// concatenation (taken modulo its length), an operation and a value.
fn mutate(files: &mut Files, ops: &[u8]) {
    for op in ops.chunks_exact(6).take(MAX_MUTATIONS) {
        let total: usize = files.iter().map(|f| f.1.len()).sum();
        if total == 0 {
            return;
        }
        let off = u32::from_le_bytes([op[0], op[1], op[2], op[3]]) as usize % total;
        let (i, at) = locate(files, off);
        let value = op[5];
        let b = &mut files[i].1;
        match op[4] % 8 {
            0 => b[at] ^= value.max(1),
            1 => b[at] = value,
            2 => {
                // Truncate the file here, or remove it.
                if value & 0x80 != 0 {
                    files.remove(i);
                } else {
                    b.truncate(at);
                }
            }
            3 => {
                let page = at & !4095;
                let end = (page + 4096).min(b.len());
                b[page..end].fill(0);
            }
            4 => {
                // Duplicate the record holding this byte over what follows it (a replay), or
                // failing that an aligned range of 8 to 2048 bytes.
                let rec = walk_records(b)
                    .into_iter()
                    .find(|r| (r.offset..r.end).contains(&at));
                let (src, len) = match rec {
                    Some(r) => (r.offset, r.end - r.offset),
                    None => (at & !7, 8 * (usize::from(value) + 1)),
                };
                let dst = src + len;
                if dst < b.len() {
                    let n = len.min(b.len() - dst);
                    b.copy_within(src..src + n, dst);
                }
            }
            5 => {
                let at = at & !7;
                if at + 8 <= b.len() {
                    let v = interesting(value, u64_at(b, at));
                    put_u64(b, at, v);
                }
            }
            6 => {
                let at = at & !3;
                if at + 4 <= b.len() {
                    let v = interesting(value, u64::from(u32_at(b, at))) as u32;
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
            }
            _ => {
                // Swap this 8-byte word with the one `value` words further on.
                let a = at & !7;
                let c = a + 8 * (usize::from(value) + 1);
                if c + 8 <= b.len() {
                    for k in 0..8 {
                        b.swap(a + k, c + k);
                    }
                }
            }
        }
    }
}

/// Damages a copy of a valid log and runs it through verify, a reader and a writer.
///
/// Layout of `data`: one flag byte, then mutations of 6 bytes each (see `mutate`). Flags:
/// bits 0-1 which base (closed cleanly; crashed with 10 records of the last segment committed;
/// crashed with none committed; crashed while sealing the segment before the last); bit 2 fix
/// the digests after mutating; bit 3 recompute every hash; bit 4 drop the first segment (a
/// pruned log); bit 5 drop the last segment.
pub fn mutated_log(data: &[u8]) {
    let (flags, ops) = data.split_first().map_or((0, &[][..]), |(f, o)| (*f, o));
    let mut files = base_variants()[usize::from(flags & 3)].clone();
    if flags & 0x10 != 0 {
        files.remove(0);
    }
    if flags & 0x20 != 0 {
        files.pop();
    }
    mutate(&mut files, ops);
    if flags & 0x04 != 0 {
        for (_, b) in &mut files {
            fix_digests(b);
        }
    }
    if flags & 0x08 != 0 {
        rechain(&mut files);
    }
    exercise(&storage_of(&files));
}

// ---------------------------------------------------------------------------------------------
// jsonl_event

/// What a field of the JSON line holds.
fn field<T: serde::de::DeserializeOwned>(
    fields: &BTreeMap<String, Box<RawValue>>,
    name: &str,
) -> Result<Option<T>, ()> {
    match fields.get(name) {
        None => Ok(None),
        Some(raw) => serde_json::from_str::<Option<T>>(raw.get()).map_err(drop),
    }
}

/// Whether the crate must accept an event with these fields (small, and a usable kind).
fn must_accept(e: &Event) -> bool {
    let len = 20
        + e.kind().len()
        + e.actor().map_or(0, str::len)
        + e.trace_id().map_or(0, str::len)
        + e.details_json().map_or(0, str::len);
    !e.kind().is_empty() && !e.kind().starts_with(auditring::RESERVED_KIND_PREFIX) && len <= 4096
}

fn check_round_trip(rec: &auditring::Record, e: &Event, what: &str) {
    assert_eq!(rec.kind, e.kind(), "{what}: kind");
    assert_eq!(rec.actor.as_deref(), e.actor(), "{what}: actor");
    assert_eq!(rec.trace_id.as_deref(), e.trace_id(), "{what}: trace_id");
    assert_eq!(rec.details.as_deref(), e.details_json(), "{what}: details");
    if let Some(ts) = e.timestamp_nanos() {
        assert_eq!(rec.timestamp, ts, "{what}: timestamp");
        assert_eq!(&rec.to_event(), e, "{what}: Record::to_event");
    }
    if let Some(d) = &rec.details {
        serde_json::from_str::<serde::de::IgnoredAny>(d)
            .unwrap_or_else(|err| panic!("{what}: details read back are not JSON: {err}"));
    }
}

/// Parses `data` as one JSON line `{"kind":..,"actor":..,"trace_id":..,"timestamp":..,
/// "details":..}` (kind a string; actor and `trace_id` strings or null; timestamp integer
/// nanoseconds or null; details any JSON), pushes it into a ring in memory twice (details as
/// the raw text, then as a parsed value), and checks that both read back unchanged, before and
/// after a reopen, and that the log verifies.
pub fn jsonl_event(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let line = text.strip_suffix('\n').unwrap_or(text);
    let line = line.strip_suffix('\r').unwrap_or(line);
    let Ok(fields) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(line) else {
        return;
    };
    let Ok(Some(kind)) = field::<String>(&fields, "kind") else {
        return;
    };
    let (Ok(actor), Ok(trace), Ok(timestamp)) = (
        field::<String>(&fields, "actor"),
        field::<String>(&fields, "trace_id"),
        field::<i64>(&fields, "timestamp"),
    ) else {
        return;
    };
    let mut base = Event::new(kind);
    if let Some(a) = actor {
        base = base.with_actor(a);
    }
    if let Some(t) = trace {
        base = base.with_trace_id(t);
    }
    if let Some(ts) = timestamp {
        base = base.with_timestamp_nanos(ts);
    }
    let mut events = Vec::new();
    match fields.get("details") {
        None => events.push(base),
        Some(raw) => {
            let as_text = base
                .clone()
                .with_details_json(raw.get())
                .unwrap_or_else(|e| {
                    panic!("details_json rejected valid JSON {:?}: {e}", raw.get())
                });
            assert_eq!(
                as_text.details_json(),
                Some(raw.get()),
                "details_json changed the text"
            );
            events.push(as_text);
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(raw.get()) {
                let as_value = base
                    .with_details(&value)
                    .unwrap_or_else(|e| panic!("details rejected a JSON value: {e}"));
                let text = serde_json::to_string(&value).expect("a Value serializes");
                assert_eq!(as_value.details_json(), Some(text.as_str()), "details text");
                events.push(as_value);
            }
        }
    }

    let mem = MemStorage::new("fuzz-jsonl");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(SEGMENT_SIZE)
        .queue_capacity(QUEUE_CAPACITY)
        .open()
        .expect("open an empty ring");
    let mut accepted = Vec::new();
    for (k, e) in events.iter().enumerate() {
        let result = if k == 0 {
            ring.push_receipt(e.clone())
                .map(Some)
                .map_err(|e| e.to_string())
        } else {
            ring.push(e.clone())
                .map(|()| None)
                .map_err(|e| e.to_string())
        };
        match result {
            Ok(receipt) => accepted.push((e, receipt)),
            Err(err) => assert!(
                !must_accept(e),
                "push of a valid event failed: {err}: {e:?}"
            ),
        }
    }
    ring.flush().expect("flush");
    let snap = ring.snapshot();
    assert_eq!(
        snap.len(),
        accepted.len() as u64,
        "records in the live snapshot"
    );
    for (k, (e, receipt)) in accepted.iter().enumerate() {
        let rec = snap
            .get(k as u64 + 1)
            .expect("get from the live snapshot")
            .expect("record present");
        check_round_trip(&rec, e, "live snapshot");
        if let Some(r) = receipt {
            assert_eq!((r.seq, r.chain), (rec.seq, rec.chain), "receipt");
        }
    }
    ring.close().expect("close");

    let report = verify_storage(&mem, auditring::VerifyOptions::default()).expect("verify");
    assert!(report.is_ok(), "verify after close: {:?}", report.failure);
    assert_eq!(report.events, accepted.len() as u64, "verified events");
    let snap = Reader::with_storage(mem)
        .snapshot()
        .expect("reader snapshot");
    let records: Vec<_> = snap.iter().collect::<Result<_, _>>().expect("read back");
    assert_eq!(records.len(), accepted.len(), "records read back");
    for (rec, (e, _)) in records.iter().zip(&accepted) {
        check_round_trip(rec, e, "reader after close");
    }
}

// ---------------------------------------------------------------------------------------------
// segment_file

/// Decodes `data` as the bytes of one segment file and runs it through verify, a reader and a
/// writer: the segment decoder (prefix, slots, index, records, bodies) on arbitrary bytes.
///
/// Layout of `data`: one flag byte, then the file's contents. Flags: bit 0 pad the file with
/// zeros to 64 KiB (so that a short input can stand for a whole segment); bit 1 fix the
/// digests; bit 2 recompute every hash; bit 3 name it segment 2 (a pruned log) instead of 1.
pub fn segment_file(data: &[u8]) {
    let Some((&flags, content)) = data.split_first() else {
        return;
    };
    let mut bytes = content[..content.len().min(MAX_RAW_FILE)].to_vec();
    if flags & 0x01 != 0 && bytes.len() < SEGMENT_SIZE as usize {
        bytes.resize(SEGMENT_SIZE as usize, 0);
    }
    let number = if flags & 0x08 != 0 { 2 } else { 1 };
    let mut files = vec![(segment_name(number), bytes)];
    if flags & 0x02 != 0 {
        fix_digests(&mut files[0].1);
    }
    if flags & 0x04 != 0 {
        rechain(&mut files);
    }
    exercise(&storage_of(&files));
}

// ---------------------------------------------------------------------------------------------
// Exports: export_data, export_manifest

/// A directory of this process for the export harnesses (`verify_export` reads a directory), made
/// empty.
fn export_dir() -> std::path::PathBuf {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("auditring-fuzz-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the export fuzz directory");
        dir
    });
    for entry in std::fs::read_dir(dir).expect("read the export fuzz directory") {
        let path = entry.expect("entry").path();
        std::fs::remove_file(&path).expect("clear the export fuzz directory");
    }
    dir.clone()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A manifest for a data file of `data` bytes: size and digest as stated, range and hashes as
/// given.
fn manifest_json(
    encoding: &str,
    first_seq: u64,
    last_seq: u64,
    anchor: &[u8; 32],
    head: &[u8; 32],
    data: &[u8],
) -> String {
    let name = if encoding == "jsonl" {
        "events.jsonl"
    } else {
        "records.bin"
    };
    serde_json::json!({
        "format": "auditring-export",
        "version": 1,
        "encoding": encoding,
        "chain": "sha256",
        "log_id": "00112233445566778899aabbccddeeff",
        "source": "fuzz",
        "first_seq": first_seq,
        "last_seq": last_seq,
        "count": last_seq.wrapping_sub(first_seq).wrapping_add(1),
        "anchor": hex(anchor),
        "head": hex(head),
        "exported_at": "2026-01-01T00:00:00Z",
        "exported_at_ns": 1_767_225_600_000_000_000i64,
        "files": [{ "name": name, "bytes": data.len(), "sha256": hex(&sha256(&[data])) }],
    })
    .to_string()
}

/// The records of a bundle, walked as [`walk_records`] walks a segment's data region.
fn bundle_records(b: &[u8]) -> Vec<RawRecord> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + RECORD_HEADER_LEN <= b.len() && &b[pos..pos + 4] == RECORD_MAGIC {
        let body_len = u32_at(b, pos + 4) as usize;
        let total = (RECORD_HEADER_LEN + body_len + 7) & !7;
        if total > b.len() - pos {
            break;
        }
        out.push(RawRecord {
            offset: pos,
            end: pos + total,
            seq: u64_at(b, pos + 8),
            chain: b[pos + 48..pos + 80].try_into().expect("32 bytes"),
        });
        pos += total;
    }
    out
}

/// Checks what must hold of any report of `verify_export` on the export in `dir`, whose
/// manifest `verify_export` may or may not accept: a valid export verifies again against its
/// own head and after an export ending at its anchor, and fails against another head.
fn check_export(dir: &std::path::Path) {
    use auditring::{Manifest, Reason, VerifyExportOptions, verify_export};
    let manifest = Manifest::read(dir);
    let report = verify_export(dir, VerifyExportOptions::default());
    let report = match report {
        Ok(r) => r,
        Err(e) => {
            // Only "not an export" and I/O errors are errors, never a damaged one.
            let _ = e.to_string();
            assert!(
                manifest.is_err(),
                "Manifest::read accepted, verify_export failed: {e}"
            );
            return;
        }
    };
    let _ = serde_json::to_string(&report);
    if trace() {
        eprintln!(
            "verify_export: {:?}",
            report.failure.as_ref().map(ToString::to_string)
        );
    }
    match (&manifest, &report.failure) {
        (Err(_), Some(f)) => assert!(
            matches!(f.reason, Reason::Manifest(_)),
            "a manifest Manifest::read refuses must fail as damaged, not {f}"
        ),
        (Err(e), None) => panic!("Manifest::read refused ({e}), verify_export accepted"),
        (Ok(_), Some(f)) => {
            assert!(
                !matches!(f.reason, Reason::Manifest(_)),
                "Manifest::read accepted: {f}"
            );
        }
        (Ok(m), None) => {
            assert_eq!(report.events, m.count, "events of a valid export");
            assert_eq!(report.first_seq, m.first_seq, "first seq");
            assert_eq!(report.last_seq, m.last_seq, "last seq");
            assert_eq!(report.head, m.head, "head");
            let mut prev = m.clone();
            prev.first_seq = 1;
            prev.last_seq = m.first_seq - 1;
            prev.head = m.anchor;
            let mut pinned = VerifyExportOptions::new().expect_head(m.head);
            pinned.after = (m.first_seq > 1).then_some(prev);
            let again = verify_export(dir, pinned).expect("verify again");
            assert!(
                again.is_ok(),
                "valid export, pinned to its own head: {:?}",
                again.failure
            );
            let mut other = m.head;
            other.0[0] ^= 1;
            let wrong = VerifyExportOptions::new().expect_head(other);
            let f = verify_export(dir, wrong).expect("verify again").failure;
            assert!(
                matches!(f.as_ref().map(|f| &f.reason), Some(Reason::Head { .. })),
                "valid export, another expected head: {f:?}"
            );
        }
    }
}

/// Writes `data` as the data file of an export (a bundle, or JSONL lines) with a manifest that
/// states its true size and digest, and runs `verify_export` on it.
///
/// Layout of `data`: one flag byte, then the data file. Flags: bit 0 JSONL instead of a bundle;
/// bit 1 (bundles) recompute the leaf and chain hashes of the records, chained from the anchor;
/// bit 2 anchor the range at a non-zero hash (an export that does not start at seq 1); bit 3
/// state one record fewer than the file holds; bit 4 state the head as all zeros. The range
/// stated is from the first record's seq to the last's (seq 1 when there is none).
pub fn export_data(data: &[u8]) {
    let Some((&flags, content)) = data.split_first() else {
        return;
    };
    let mut bytes = content.to_vec();
    let jsonl = flags & 0x01 != 0;
    let mut anchor = [0u8; 32];
    // (first seq, last seq, head) of what the file holds, as far as it can be read.
    let mut range: Option<(u64, u64, [u8; 32])> = None;
    if jsonl {
        let mut seqs = Vec::new();
        let mut head = [0u8; 32];
        for line in bytes.split(|&b| b == b'\n') {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(s) = v.get("seq").and_then(serde_json::Value::as_u64) {
                seqs.push(s);
            }
            if let Some(h) = v
                .get("chain")
                .and_then(|c| c.as_str())
                .and_then(|c| auditring::Hash::from_hex(c).ok())
            {
                head = h.0;
            }
        }
        if let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) {
            range = Some((first, last, head));
        }
        if flags & 0x04 != 0 {
            anchor = [0xa5; 32];
        }
    } else {
        let records = bundle_records(&bytes);
        if flags & 0x04 != 0 {
            anchor = [0xa5; 32];
        }
        if flags & 0x02 != 0 {
            let mut prev = anchor;
            for r in &records {
                let body_len = u32_at(&bytes, r.offset + 4) as usize;
                let body = r.offset + RECORD_HEADER_LEN;
                let leaf = sha256(&[&bytes[body..body + body_len]]);
                let chain = sha256(&[&prev, &r.seq.to_le_bytes(), &leaf]);
                bytes[r.offset + 16..r.offset + 48].copy_from_slice(&leaf);
                bytes[r.offset + 48..r.offset + 80].copy_from_slice(&chain);
                prev = chain;
            }
        }
        let records = bundle_records(&bytes);
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            range = Some((first.seq, last.seq, last.chain));
        }
    }
    let (first, mut last, mut head) = range.unwrap_or((1, 1, anchor));
    if first == 1 {
        anchor = [0; 32];
    }
    if flags & 0x08 != 0 && last > first {
        last -= 1;
    }
    if flags & 0x10 != 0 {
        head = [0; 32];
    }
    let dir = export_dir();
    let (encoding, name) = if jsonl {
        ("jsonl", "events.jsonl")
    } else {
        ("bundle", "records.bin")
    };
    std::fs::write(dir.join(name), &bytes).expect("write the data file");
    let manifest = manifest_json(encoding, first, last, &anchor, &head, &bytes);
    std::fs::write(dir.join("manifest.json"), manifest).expect("write the manifest");
    check_export(&dir);
}

/// A small valid export of the base events, in both encodings: `(manifest, data file)` each.
fn sample_exports() -> &'static [(Vec<u8>, Vec<u8>); 2] {
    static EXPORTS: OnceLock<[(Vec<u8>, Vec<u8>); 2]> = OnceLock::new();
    EXPORTS.get_or_init(|| {
        let base =
            std::env::temp_dir().join(format!("auditring-fuzz-samples-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let ring = Ring::builder(base.join("log"))
            .segment_size(SEGMENT_SIZE)
            .queue_capacity(QUEUE_CAPACITY)
            .durability(Durability::None)
            .open()
            .expect("open the sample log");
        for i in 0..12 {
            ring.push(sample_event(i)).expect("push");
        }
        ring.flush().expect("flush");
        let snapshot = ring.snapshot();
        let out = |encoding: auditring::Encoding| {
            let path = base.join(format!("{encoding:?}"));
            snapshot
                .export(
                    &path,
                    auditring::ExportOptions::new()
                        .selection(auditring::Selection::Seqs {
                            from: Some(3),
                            to: Some(10),
                        })
                        .encoding(encoding),
                )
                .expect("export");
            let data = std::fs::read(path.join(encoding.file_name())).expect("data file");
            let manifest = std::fs::read(path.join("manifest.json")).expect("manifest");
            (manifest, data)
        };
        let exports = [
            out(auditring::Encoding::Bundle),
            out(auditring::Encoding::Jsonl),
        ];
        drop(snapshot);
        ring.close().expect("close");
        let _ = std::fs::remove_dir_all(&base);
        exports
    })
}

/// Reads arbitrary bytes as `manifest.json` of an export whose data file (of seqs 3 to 10 of a
/// small log) is valid, and runs `Manifest::read` and `verify_export` on it.
///
/// Layout of `data`: one flag byte, then the manifest. Flags: bit 0 put the JSONL data file in
/// the directory instead of the bundle; bit 1 put both.
pub fn export_manifest(data: &[u8]) {
    let Some((&flags, manifest)) = data.split_first() else {
        return;
    };
    let samples = sample_exports();
    let dir = export_dir();
    for (k, (_, file)) in samples.iter().enumerate() {
        let wanted = flags & 0x02 != 0 || usize::from(flags & 0x01) == k;
        if wanted {
            let name = if k == 0 {
                "records.bin"
            } else {
                "events.jsonl"
            };
            std::fs::write(dir.join(name), file).expect("write the data file");
        }
    }
    std::fs::write(dir.join("manifest.json"), manifest).expect("write the manifest");
    check_export(&dir);
}

/// The manifest and data file of the sample export in `encoding` (for seeds).
pub fn sample_export(jsonl: bool) -> (Vec<u8>, Vec<u8>) {
    sample_exports()[usize::from(jsonl)].clone()
}

// ---------------------------------------------------------------------------------------------
// append_line

/// The parser of `auditring append`'s input lines: this is the CLI's own code.
use auditring_cli::line as append_line;

/// Feeds `data` to the parser of `auditring append` as its standard input would reach it (lines
/// as the command's own bounded reader splits them, blank lines skipped, stopping at the first
/// line that is too long, not UTF-8 or does not parse, as the command does), pushes the events
/// into a ring in memory, and checks that each reads back with exactly the fields of its line
/// and that the log verifies.
pub fn append_line(data: &[u8]) {
    let mut events = Vec::new();
    let mut lines = append_line::Lines::new(data, append_line::max_line_len(1 << 20));
    for _ in 0..16 {
        let Some((_, Ok(line))) = lines.next_line() else {
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        match append_line::parse_line(&line) {
            Ok(e) => {
                // What the line says is what the event holds, byte for byte.
                let fields: BTreeMap<String, Box<RawValue>> =
                    serde_json::from_str(&line).expect("parsed, so a JSON object");
                assert_eq!(
                    field::<String>(&fields, "kind"),
                    Ok(Some(e.kind().to_owned()))
                );
                assert_eq!(
                    field::<String>(&fields, "actor"),
                    Ok(e.actor().map(str::to_owned))
                );
                assert_eq!(
                    field::<String>(&fields, "trace_id"),
                    Ok(e.trace_id().map(str::to_owned))
                );
                if let Ok(Some(n)) = field::<i64>(&fields, "timestamp") {
                    assert_eq!(e.timestamp_nanos(), Some(n), "timestamp of {line:?}");
                }
                assert_eq!(
                    e.details_json(),
                    fields.get("details").map(|d| d.get()),
                    "details of {line:?}"
                );
                events.push(e);
            }
            Err(_) => break,
        }
    }
    if events.is_empty() {
        return;
    }
    let mem = MemStorage::new("fuzz-append");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(SEGMENT_SIZE)
        .queue_capacity(QUEUE_CAPACITY)
        .open()
        .expect("open an empty ring");
    let mut accepted = Vec::new();
    for e in &events {
        match ring.push(e.clone()) {
            Ok(()) => accepted.push(e),
            Err(err) => {
                assert!(
                    !must_accept(e),
                    "push of a valid event failed: {err}: {e:?}"
                );
                assert!(
                    matches!(err, auditring::PushError::Invalid { .. }),
                    "an event refused for another reason than itself: {err}"
                );
                // The CLI stops at the first refused event.
                break;
            }
        }
    }
    ring.close().expect("close");
    let report = verify_storage(&mem, auditring::VerifyOptions::default()).expect("verify");
    assert!(report.is_ok(), "verify after close: {:?}", report.failure);
    assert_eq!(report.events, accepted.len() as u64, "verified events");
    let snap = Reader::with_storage(mem)
        .snapshot()
        .expect("reader snapshot");
    let records: Vec<_> = snap.iter().collect::<Result<_, _>>().expect("read back");
    assert_eq!(records.len(), accepted.len(), "records read back");
    for (rec, e) in records.iter().zip(&accepted) {
        check_round_trip(rec, e, "append line, read back");
    }
}
