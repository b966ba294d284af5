//! Tamper mutation test: over a thousand damaged copies of a small multi-segment log, generated
//! deterministically from a seed, each of which verification must reject with the right location
//! (seq, file, byte offset, by the rule of docs/FORMAT.md §9: the offset where the wrong byte or
//! the wrong structure starts). Byte flips anywhere in the files, records deleted, inserted,
//! duplicated and reordered, segments swapped and renamed, files cut at a record boundary.
//!
//! What a chain alone cannot show (the newest records cut at a record boundary, a consistent
//! rewrite of the whole log with every hash recomputed) verifies, and is caught against an
//! expected head: the head of a receipt, or the head of an export's manifest
//! (`VerifyExportOptions::expect_head`).

use std::collections::BTreeMap;

use auditring::storage::{MemStorage, Storage};
use auditring::{
    Durability, Encoding, Event, ExportOptions, Hash, Reason, Ring, Selection, VerifyExportOptions,
};
use auditring_testkit::rechain;
use auditring_testkit::xorshift::Rng;

const SEGMENT: u64 = 64 * 1024;
const SEED: u64 = 0x7a3b_e11e_d00d_5eed;

type Files = BTreeMap<String, Vec<u8>>;

/// A cleanly closed log of three openings (so more than two segments): its files.
fn base_log() -> Files {
    let mem = MemStorage::new("mutants");
    let mut i = 0u64;
    for round in [300, 300, 300] {
        let ring = Ring::with_storage(mem.clone())
            .segment_size(SEGMENT)
            .durability(Durability::None)
            .open()
            .unwrap();
        for _ in 0..round {
            let mut e = Event::new(["user.login", "plan.applied", "k"][(i % 3) as usize])
                .with_timestamp_nanos(1_700_000_000_000_000_000 + i as i64);
            if i.is_multiple_of(2) {
                e = e.with_actor(format!("user{}", i % 7));
            }
            if !i.is_multiple_of(5) {
                e = e
                    .with_details(
                        &serde_json::json!({ "i": i, "pad": "p".repeat((i % 150) as usize) }),
                    )
                    .unwrap();
            }
            ring.push(e).unwrap();
            i += 1;
        }
        ring.close().unwrap();
    }
    mem.list()
        .unwrap()
        .into_iter()
        .filter(|n| {
            std::path::Path::new(n)
                .extension()
                .is_some_and(|e| e == "seg")
        })
        .map(|n| {
            let b = mem.read_file(&n).unwrap();
            (n, b)
        })
        .collect()
}

fn storage(files: &Files) -> MemStorage {
    let mem = MemStorage::new("mutant");
    for (n, b) in files {
        mem.write_file(n, b.clone());
    }
    mem
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// A record of a segment file.
#[derive(Clone, Copy, Debug)]
struct Rec {
    offset: usize,
    len: usize,
    seq: u64,
}

fn records(b: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut at = u64_at(b, 32) as usize;
    while at + 80 <= b.len() && &b[at..at + 4] == b"AREC" {
        let len = (80 + u32_at(b, at + 4) as usize + 7) & !7;
        out.push(Rec {
            offset: at,
            len,
            seq: u64_at(b, at + 8),
        });
        at += len;
    }
    out
}

/// Where verification must report a change of byte `at` of a segment of a closed log: the start
/// of the structure it belongs to, and the seq it concerns (`None`: the rule allows any).
#[allow(clippy::option_option)] // the seq, or none, or any (the outer `None`), as documented
fn expected_location(b: &[u8], at: usize) -> (usize, Option<Option<u64>>) {
    let data = u64_at(b, 32) as usize;
    let recs = records(b);
    if at < 96 {
        return (0, None);
    }
    for slot in [512, 1024] {
        if (slot..slot + 136).contains(&at) {
            return (slot, None);
        }
    }
    if at < 4096 {
        return (at, Some(None));
    }
    if at < data {
        let used = recs.len().div_ceil(64);
        let entry = (at - 4096) / 4;
        if entry < used {
            let seq = recs[entry * 64].seq;
            return (4096 + entry * 4, Some(Some(seq)));
        }
        return (at, Some(None));
    }
    if let Some(r) = recs
        .iter()
        .find(|r| (r.offset..r.offset + r.len).contains(&at))
    {
        return (r.offset, Some(Some(r.seq)));
    }
    (at, None)
}

/// A mutant: the damaged files, and where the failure must be reported: the file, the offset,
/// and the seq (`None`: any).
struct Mutant {
    what: String,
    files: Files,
    file: String,
    offset: u64,
    #[allow(clippy::option_option)] // as `expected_location`'s
    seq: Option<Option<u64>>,
}

/// Replaces the data region `[from, len)` of a segment by `bytes` followed by zeros.
fn splice(b: &mut [u8], from: usize, bytes: &[u8]) {
    let end = b.len();
    let n = bytes.len().min(end - from);
    b[from..from + n].copy_from_slice(&bytes[..n]);
    b[from + n..].fill(0);
}

fn mutants(base: &Files) -> Vec<Mutant> {
    let names: Vec<String> = base.keys().cloned().collect();
    let mut rng = Rng(SEED);
    let mut out = Vec::new();
    // Byte flips anywhere in any file.
    for _ in 0..700 {
        let name = &names[rng.below(names.len())];
        let mut files = base.clone();
        let b = files.get_mut(name).unwrap();
        let at = rng.below(b.len());
        let (offset, seq) = expected_location(b, at);
        b[at] ^= 1 << rng.below(8);
        out.push(Mutant {
            what: format!("flip byte {at} of {name}"),
            files,
            file: name.clone(),
            offset: offset as u64,
            seq,
        });
    }
    // Record-level edits inside one segment.
    for k in 0..360 {
        let name = &names[rng.below(names.len())];
        let mut files = base.clone();
        let b = files.get_mut(name).unwrap();
        let recs = records(b);
        let i = rng.below(recs.len() - 1);
        let (r, next) = (recs[i], recs[i + 1]);
        let end = recs.last().map(|r| r.offset + r.len).unwrap();
        let tail = b[r.offset..end].to_vec();
        let rec = &b[r.offset..r.offset + r.len].to_vec();
        let rest = &b[next.offset..end].to_vec();
        let (what, offset, seq) = match k % 6 {
            0 => {
                // Delete record i.
                splice(b, r.offset, rest);
                ("delete", r.offset, r.seq)
            }
            1 => {
                // Delete the segment's last record: its place becomes zeros.
                let last = *recs.last().unwrap();
                b[last.offset..last.offset + last.len].fill(0);
                ("delete the last record of", last.offset, last.seq)
            }
            2 => {
                // Insert a copy of record i after it (a replay).
                splice(b, r.offset, &[rec.as_slice(), &tail].concat());
                ("duplicate", next.offset, next.seq)
            }
            3 => {
                // Insert a record from another place of the log before record i.
                let other = &names[rng.below(names.len())];
                let ob = &base[other];
                let orecs = records(ob);
                let o = orecs[rng.below(orecs.len())];
                let foreign = ob[o.offset..o.offset + o.len].to_vec();
                if o.seq == r.seq {
                    // The very same record: inserting it is a duplicate of record i.
                    splice(b, r.offset, &[foreign.as_slice(), &tail].concat());
                    ("insert (itself) before", next.offset, next.seq)
                } else {
                    splice(b, r.offset, &[foreign.as_slice(), &tail].concat());
                    ("insert another record before", r.offset, r.seq)
                }
            }
            4 => {
                // Swap records i and i + 1.
                let after = &b[next.offset + next.len..end].to_vec();
                let second = b[next.offset..next.offset + next.len].to_vec();
                splice(b, r.offset, &[second.as_slice(), rec, after].concat());
                ("reorder", r.offset, r.seq)
            }
            _ => {
                // Cut the file right after record i: shorter than its committed length.
                let cut = next.offset;
                b.truncate(cut);
                out.push(Mutant {
                    what: format!("cut {name} after seq {}", r.seq),
                    files,
                    file: name.clone(),
                    offset: cut as u64,
                    seq: Some(None),
                });
                continue;
            }
        };
        out.push(Mutant {
            what: format!("{what} record at {offset} (seq {seq}) of {name}"),
            files,
            file: name.clone(),
            offset: offset as u64,
            seq: Some(Some(seq)),
        });
    }
    // Segments swapped, renamed, removed from the middle.
    let first_of = |name: &str| records(&base[name])[0].seq;
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        let mut files = base.clone();
        let (na, nb) = (names[a].clone(), names[b].clone());
        let (ba, bb) = (files.remove(&na).unwrap(), files.remove(&nb).unwrap());
        files.insert(na.clone(), bb);
        files.insert(nb, ba);
        // The first of the two is found holding another segment's number.
        out.push(Mutant {
            what: format!("swap {na} and {}", names[b]),
            files,
            file: na,
            offset: 16,
            seq: None,
        });
    }
    {
        let mut files = base.clone();
        let last = names.last().unwrap().clone();
        let b = files.remove(&last).unwrap();
        let renamed = format!("{:016x}.seg", names.len() + 1);
        files.insert(renamed.clone(), b);
        out.push(Mutant {
            what: format!("rename {last} to {renamed}"),
            files,
            file: renamed,
            offset: 0,
            seq: Some(Some(first_of(&last))),
        });
        let mut files = base.clone();
        files.remove(&names[1]);
        out.push(Mutant {
            what: format!("remove {}", names[1]),
            files,
            file: names[2].clone(),
            offset: 0,
            seq: Some(Some(first_of(&names[1]))),
        });
    }
    out
}

#[test]
fn every_mutant_is_detected_where_it_is() {
    let base = base_log();
    assert!(base.len() >= 3, "{} segments", base.len());
    let report =
        auditring::verify_storage(&storage(&base), auditring::VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let mutants = mutants(&base);
    let (mut detected, mut located) = (0, 0);
    let mut wrong = Vec::new();
    for m in &mutants {
        let report =
            auditring::verify_storage(&storage(&m.files), auditring::VerifyOptions::default())
                .unwrap();
        let Some(f) = report.failure else {
            wrong.push(format!("{}: not detected", m.what));
            continue;
        };
        detected += 1;
        let file_ok = f.file.file_name().and_then(|n| n.to_str()) == Some(m.file.as_str());
        let seq_ok = m.seq.is_none_or(|s| s == f.seq);
        if file_ok && f.offset == m.offset && seq_ok {
            located += 1;
        } else {
            wrong.push(format!(
                "{}: expected {} at {} seq {:?}, got {f}",
                m.what, m.file, m.offset, m.seq
            ));
        }
    }
    println!(
        "tamper mutants: {} mutants, {detected} detected, {located} with the right location",
        mutants.len()
    );
    assert!(mutants.len() >= 1000, "{}", mutants.len());
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn what_the_chain_alone_cannot_show_is_caught_against_an_expected_head() {
    let base = base_log();
    let good =
        auditring::verify_storage(&storage(&base), auditring::VerifyOptions::default()).unwrap();
    assert!(good.is_ok());
    // The expected head, obtained out of band (a receipt of the last event).
    let (expected_seq, expected_head) = (good.last_seq, good.head);
    let matches_expected = |files: &Files| {
        let r = auditring::verify_storage(&storage(files), auditring::VerifyOptions::default())
            .unwrap();
        assert!(r.is_ok(), "the chain alone accepts it: {:?}", r.failure);
        r.last_seq == expected_seq && r.head == expected_head
    };
    assert!(matches_expected(&base));
    let mut caught = 0;

    // 1. A cut at a record boundary: the newest segment removed (the one before is sealed).
    let mut cut = base.clone();
    let last = cut.keys().last().unwrap().clone();
    cut.remove(&last);
    assert!(
        !matches_expected(&cut),
        "a cut log reaches the expected head"
    );
    caught += 1;

    // 2. A consistent rewrite: one detail changed, every hash and digest recomputed.
    let mut rewritten = base.clone();
    {
        let b = rewritten.values_mut().nth(1).unwrap();
        let r = records(b)[10];
        let body = &mut b[r.offset + 80..r.offset + r.len];
        let at = body.windows(4).position(|w| w == b"\"i\":").unwrap() + 4;
        body[at] = if body[at] == b'9' { b'8' } else { b'9' };
    }
    rechain::rechain(&mut rewritten);
    assert!(
        !matches_expected(&rewritten),
        "a rewritten log reaches the expected head"
    );
    caught += 1;

    // The same two, against an export's manifest: the original's head pins the rewritten log's
    // export, which verifies on its own.
    let dir = tempfile::tempdir().unwrap();
    let export = |files: &Files, name: &str| {
        let mem = storage(files);
        let snap = auditring::Reader::with_storage(mem).snapshot().unwrap();
        let path = dir.path().join(name);
        snap.export(
            &path,
            ExportOptions::new()
                .selection(Selection::Seqs {
                    from: Some(1),
                    to: None,
                })
                .encoding(Encoding::Bundle),
        )
        .unwrap();
        path
    };
    let original = export(&base, "original");
    let manifest = auditring::Manifest::read(&original).unwrap();
    assert_eq!(manifest.head, expected_head);
    for (files, name) in [(&cut, "cut"), (&rewritten, "rewritten")] {
        let path = export(files, name);
        let alone = auditring::verify_export(&path, VerifyExportOptions::default()).unwrap();
        assert!(alone.is_ok(), "{name}: {:?}", alone.failure);
        let pinned = VerifyExportOptions::new().expect_head(manifest.head);
        let f = auditring::verify_export(&path, pinned)
            .unwrap()
            .failure
            .unwrap_or_else(|| panic!("{name}: passes against the original head"));
        assert!(
            matches!(f.reason, Reason::Head { expected, .. } if expected == manifest.head),
            "{name}: {f}"
        );
        caught += 1;
    }
    // And a receipt of an earlier event pins everything before it: the rewritten log's record
    // at the receipt's seq has another chain hash.
    let receipt_seq = expected_seq - 1;
    let snap = auditring::Reader::with_storage(storage(&base))
        .snapshot()
        .unwrap();
    let receipt: Hash = snap.get(receipt_seq).unwrap().unwrap().chain;
    let snap = auditring::Reader::with_storage(storage(&rewritten))
        .snapshot()
        .unwrap();
    assert_ne!(snap.get(receipt_seq).unwrap().unwrap().chain, receipt);
    caught += 1;
    println!("chain-alone gaps: {caught} caught against an expected head");
}
