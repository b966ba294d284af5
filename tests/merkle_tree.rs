//! The Merkle tree over a log's records (`docs/FORMAT.md` §15): the ring keeps it, roots and
//! proofs agree with a tree built here from the records with nothing but SHA-256, `verify`
//! rebuilds it and checks what is stored, and what is lost is rebuilt.

use std::path::Path;

use auditring::{Event, Hash, Reader, Reason, Ring, VerifyOptions, verify};
use sha2::{Digest, Sha256};

const SEGMENT_SIZE: u64 = 64 * 1024;
/// Past one complete node of level 16 (65,536 leaves), so that two strata are written.
const EVENTS: u64 = 70_000;

/// The RFC 6962 tree hash of `leaves` (tree leaf hashes), by its definition.
fn mth(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => leaves[0],
        n => {
            let k = 1 << (usize::BITS - (n - 1).leading_zeros() - 1);
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(mth(&leaves[..k]));
            h.update(mth(&leaves[k..]));
            h.finalize().into()
        }
    }
}

/// The tree leaf hash of a record whose leaf field is `leaf`.
fn tree_leaf(leaf: &Hash) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf.0);
    h.finalize().into()
}

fn write_log(dir: &Path, events: u64) {
    let ring = Ring::builder(dir)
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    let p = ring.producer();
    for i in 0..events {
        p.push(
            Event::new("tree.test")
                .with_details_json(format!("{{\"i\":{i}}}"))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
}

/// The tree leaf hashes of every record of the log in `dir`.
fn leaves(dir: &Path) -> Vec<[u8; 32]> {
    let snap = Reader::open(dir).unwrap().snapshot().unwrap();
    snap.iter().map(|r| tree_leaf(&r.unwrap().leaf)).collect()
}

fn chunk(dir: &Path, stratum: u8) -> std::path::PathBuf {
    dir.join(format!("0000000000000000.t{stratum}"))
}

#[test]
fn roots_and_proofs_agree_with_the_tree_built_from_the_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    write_log(&dir, EVENTS);
    let leaves = leaves(&dir);
    assert_eq!(leaves.len() as u64, EVENTS);
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();

    // The stored strata hold exactly the complete nodes of levels 8 and 16.
    let t1 = std::fs::read(chunk(&dir, 1)).unwrap();
    let written = t1.chunks(32).take_while(|e| *e != [0; 32]).count();
    assert_eq!(written as u64, EVENTS / 256);
    assert!(t1[written * 32..].iter().all(|&b| b == 0));
    for i in [0, 1, written - 1] {
        assert_eq!(
            t1[i * 32..i * 32 + 32],
            mth(&leaves[i * 256..i * 256 + 256])
        );
    }
    let t2 = std::fs::read(chunk(&dir, 2)).unwrap();
    assert_eq!(t2[..32], mth(&leaves[..65_536]));
    assert!(t2[32..].iter().all(|&b| b == 0));

    let root = |n: u64| Hash(mth(&leaves[..n as usize]));
    assert_eq!(snap.tree_root().unwrap(), root(EVENTS));
    for size in [1, 2, 3, 255, 256, 257, 511, 65_535, 65_536, 65_537, EVENTS] {
        assert_eq!(snap.root_at(size).unwrap(), root(size), "size {size}");
    }
    for (seq, size) in [
        (1, 1),
        (1, EVENTS),
        (256, EVENTS),
        (257, 300),
        (513, EVENTS),
        (65_536, 65_536),
        (65_537, EVENTS),
        (EVENTS, EVENTS),
    ] {
        let proof = snap.inclusion_proof(seq, size).unwrap();
        let record = snap.get(seq).unwrap().unwrap();
        proof.verify(&record.leaf, &root(size)).unwrap();
        // Not for another record, nor against another tree.
        let other = snap
            .get(if seq == 1 { 2 } else { seq - 1 })
            .unwrap()
            .unwrap();
        if size > 1 {
            assert!(proof.verify(&other.leaf, &root(size)).is_err());
        }
        let another = if size < EVENTS { size + 1 } else { size - 1 };
        assert!(proof.verify(&record.leaf, &root(another)).is_err());
    }
    for (old, new) in [
        (1, EVENTS),
        (255, 256),
        (256, EVENTS),
        (1000, 65_536),
        (65_536, EVENTS),
        (EVENTS - 1, EVENTS),
        (EVENTS, EVENTS),
    ] {
        let proof = snap.consistency_proof(old, new).unwrap();
        proof.verify(&root(old), &root(new)).unwrap();
        if old != new {
            assert!(proof.verify(&root(old + 1), &root(new)).is_err());
        }
    }
    // Requests outside the snapshot say so.
    assert!(snap.inclusion_proof(0, 10).is_err());
    assert!(snap.inclusion_proof(11, 10).is_err());
    assert!(snap.root_at(EVENTS + 1).is_err());
    assert!(snap.consistency_proof(10, EVENTS + 1).is_err());

    let report = verify(&dir, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.tree_root, Some(root(EVENTS)));
    assert!(
        report.foreign_files.is_empty(),
        "{:?}",
        report.foreign_files
    );
}

#[test]
fn a_stored_hash_that_is_not_the_records_is_reported_where_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    write_log(&dir, 4_000);
    let path = chunk(&dir, 1);
    let mut t1 = std::fs::read(&path).unwrap();
    t1[3 * 32 + 5] ^= 1;
    std::fs::write(&path, &t1).unwrap();
    let report = verify(&dir, VerifyOptions::default()).unwrap();
    let failure = report.failure.expect("a tampered stored hash");
    assert_eq!(failure.file, path);
    assert_eq!(failure.offset, 3 * 32);
    assert!(
        matches!(
            failure.reason,
            Reason::TreeEntry {
                level: 8,
                index: 3,
                ..
            }
        ),
        "{failure}"
    );
    // A proof that goes through the tampered node does not verify against the true root.
    let leaves = leaves(&dir);
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    let proof = snap.inclusion_proof(513, 4_000).unwrap();
    let record = snap.get(513).unwrap().unwrap();
    assert!(proof.verify(&record.leaf, &Hash(mth(&leaves))).is_err());
}

#[test]
fn lost_tree_files_are_rebuilt_from_the_records() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    write_log(&dir, 3_000);
    let before = std::fs::read(chunk(&dir, 1)).unwrap();
    std::fs::remove_file(chunk(&dir, 1)).unwrap();
    // Proofs still work without them, hashing the records.
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    let leaves = leaves(&dir);
    let proof = snap.inclusion_proof(700, 3_000).unwrap();
    proof
        .verify(&snap.get(700).unwrap().unwrap().leaf, &Hash(mth(&leaves)))
        .unwrap();
    // A writer rebuilds them.
    write_log(&dir, 1);
    let after = std::fs::read(chunk(&dir, 1)).unwrap();
    assert_eq!(after[..before.len()], before[..]);
    let report = verify(&dir, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
}

#[test]
fn entries_past_what_recovery_kept_are_cleared() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    write_log(&dir, 1_000);
    // Stored hashes for records that are not in the log (as a crash that lost records after
    // their tree entries were written would leave): the writer clears them.
    let path = chunk(&dir, 1);
    let mut t1 = std::fs::read(&path).unwrap();
    t1[3 * 32..6 * 32].fill(0xAB);
    std::fs::write(&path, &t1).unwrap();
    write_log(&dir, 0);
    let t1 = std::fs::read(&path).unwrap();
    assert!(t1[3 * 32..].iter().all(|&b| b == 0));
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
}

#[test]
fn a_tree_that_cannot_be_stored_costs_nothing_but_speed() {
    use auditring::storage::MemStorage;
    use auditring_testkit::intercept::{Hooks, Intercept, Kind};
    // Every creation of a tree chunk fails (a full disk, a read-only file): the ring goes on,
    // closes cleanly, and roots and proofs are hashed from the records instead.
    let mem = MemStorage::new("no-tree");
    let hooks = Hooks::new();
    hooks.set(|kind, name| {
        if kind == Kind::Create && name.contains(".t") {
            return Err(std::io::Error::from_raw_os_error(28));
        }
        Ok(())
    });
    let ring = Ring::with_storage(Intercept::new(mem.clone(), hooks.clone()))
        .segment_size(SEGMENT_SIZE)
        .open()
        .unwrap();
    for i in 0..2_000u64 {
        ring.push(
            Event::new("no.tree")
                .with_details_json(format!("{{\"i\":{i}}}"))
                .unwrap(),
        )
        .unwrap();
    }
    ring.close().unwrap();
    assert!(hooks.calls(Kind::Create) > 0);
    use auditring::storage::Storage as _;
    assert!(
        mem.list().unwrap().iter().all(|n| !n.contains(".t")),
        "{:?}",
        mem.list()
    );
    let snap = Reader::with_storage(mem.clone()).snapshot().unwrap();
    let leaves: Vec<[u8; 32]> = snap.iter().map(|r| tree_leaf(&r.unwrap().leaf)).collect();
    let root = Hash(mth(&leaves));
    assert_eq!(snap.tree_root().unwrap(), root);
    let proof = snap.inclusion_proof(1_500, 2_000).unwrap();
    proof
        .verify(&snap.get(1_500).unwrap().unwrap().leaf, &root)
        .unwrap();
    let report = auditring::verify_storage(&mem, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.tree_root, Some(root));
}

#[test]
fn a_pruned_log_drops_the_stored_hashes_it_no_longer_needs_and_still_proves_what_it_keeps() {
    use auditring::{Checkpoints, Retention, SigningKey, Unexported};
    use std::sync::{Arc, Mutex};
    // Past 2^20 records, so that the first chunk of stratum 1 (the hashes of the first 2^20
    // records' 256-record subtrees) is no longer needed once they are pruned.
    const N: u64 = (1 << 20) + 150_000;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let key = SigningKey::generate("audit.example/pruned").unwrap();
    let verifier = key.verifier();
    let signed = Arc::new(Mutex::new(Vec::new()));
    let keep = signed.clone();
    let ring = Ring::builder(&dir)
        .segment_size(4 << 20)
        .retention(
            Retention::new()
                .max_segments(2)
                .unexported(Unexported::Remove),
        )
        .checkpoints(Checkpoints::new(key).to_callback(move |c| {
            keep.lock().unwrap().push(c.clone());
            Ok(())
        }))
        .open()
        .unwrap();
    let p = ring.producer();
    for i in 0..N {
        p.push_ref(&auditring::EventRef::new("p").with_details(&i))
            .unwrap();
    }
    ring.flush().unwrap();
    ring.apply_retention().unwrap();
    ring.close().unwrap();
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    assert!(
        snap.first_seq() > (1 << 20) + 65_536,
        "{}",
        snap.first_seq()
    );
    assert!(
        !chunk(&dir, 1).exists(),
        "the first chunk of stratum 1 stayed"
    );
    assert!(chunk(&dir, 2).exists());
    // The last checkpoint, signed at close, still proves every record kept.
    let last = signed.lock().unwrap().last().unwrap().clone();
    // Every event, and the prune records.
    let n = snap.head_seq();
    assert!(n > N);
    assert_eq!(last.checkpoint().size(), n);
    let opened = auditring::open_note(last.note(), &[verifier]).unwrap();
    let root = auditring::Checkpoint::parse(opened.text()).unwrap().root();
    assert_eq!(snap.tree_root().unwrap(), root);
    // The first record kept (its tile's pruned part is the tree base), and records further on.
    let first = snap.first_seq();
    for seq in [first, first + 1, first + 1_000, n - 1, n] {
        let proof = snap.inclusion_proof(seq, n).unwrap();
        proof
            .verify(&snap.get(seq).unwrap().unwrap().leaf, &root)
            .unwrap();
    }
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
}

#[test]
fn a_pruned_log_whose_tree_files_are_lost_goes_on_without_a_tree() {
    use auditring::{Checkpoints, Retention, SigningKey, Unexported};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir)
        .segment_size(SEGMENT_SIZE)
        .retention(
            Retention::new()
                .max_segments(2)
                .unexported(Unexported::Remove),
        )
        .open()
        .unwrap();
    for i in 0..5_000u64 {
        ring.push(
            Event::new("pruned")
                .with_details_json(format!("{i}"))
                .unwrap(),
        )
        .unwrap();
    }
    ring.flush().unwrap();
    ring.apply_retention().unwrap();
    ring.close().unwrap();
    for e in std::fs::read_dir(&dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.contains(".t") {
            std::fs::remove_file(dir.join(name)).unwrap();
        }
    }
    let first = Reader::open(&dir).unwrap().snapshot().unwrap().first_seq();
    assert!(first > 1);
    // The records the tree needs are gone: the ring writes on without one.
    write_log(&dir, 100);
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    assert!(snap.tree_root().is_err());
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
    // With checkpoints asked for, that is a failure `close` reports (the records are kept).
    let ring = Ring::builder(&dir)
        .checkpoints(
            Checkpoints::new(SigningKey::generate("audit.example/x").unwrap())
                .to_callback(|_| Ok(())),
        )
        .open()
        .unwrap();
    ring.push(Event::new("after")).unwrap();
    let err = ring.close().unwrap_err().to_string();
    assert!(err.contains("no checkpoint can be signed"), "{err}");
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
}

#[test]
fn a_corrupt_newest_stored_hash_is_written_again_before_anything_builds_on_it() {
    // The newest entry of a stratum is one no verification compares (nothing follows it). A
    // writer that reopens the log must not build on it, nor leave it wrong for the next entry
    // to expose: it hashes it again from the records.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    write_log(&dir, 600);
    let path = chunk(&dir, 1);
    let mut t1 = std::fs::read(&path).unwrap();
    assert_ne!(t1[32..64], [0; 32]);
    assert_eq!(t1[64..96], [0; 32]);
    t1[40] ^= 1;
    std::fs::write(&path, &t1).unwrap();
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
    write_log(&dir, 1_000);
    let report = verify(&dir, VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.tree_root, Some(Hash(mth(&leaves(&dir)))));
    let snap = Reader::open(&dir).unwrap().snapshot().unwrap();
    assert_eq!(snap.tree_root().unwrap(), Hash(mth(&leaves(&dir))));
}

/// Checks that the log in `dir` proves, from its first record on, what the tree over every
/// record since seq 1 holds (`docs/FORMAT.md` §15.5): its roots are the signed ones from the
/// tree base's first leaf on, consistency proofs tie them to the head, the first records kept
/// have inclusion proofs, and `verify` agrees with the checkpoints from the first record on
/// and cannot check the older ones. Returns the number of pruned records.
fn assert_provable_from_the_first_record(
    dir: &Path,
    signed: &[auditring::SignedCheckpoint],
    key: &auditring::SigningKey,
) -> u64 {
    let snap = Reader::open(dir).unwrap().snapshot().unwrap();
    let (pruned, head) = (snap.first_seq() - 1, snap.head_seq());
    assert!(pruned > 0);
    let base_start = (pruned - pruned % 256).saturating_sub(256);
    let root = snap.tree_root().unwrap();
    let mut checked = 0;
    for c in signed.iter().filter(|c| c.checkpoint().size() <= head) {
        let size = c.checkpoint().size();
        if size >= base_start {
            assert_eq!(snap.root_at(size).unwrap(), c.checkpoint().root(), "{size}");
            snap.consistency_proof(size, head)
                .unwrap()
                .verify(&c.checkpoint().root(), &root)
                .unwrap();
            checked += 1;
        } else {
            assert!(snap.root_at(size).is_err(), "{size}");
        }
    }
    assert!(
        checked >= 2,
        "{checked} checkpoints from leaf {base_start} on"
    );
    for seq in [pruned + 1, pruned + 2, pruned + 300, head] {
        let record = snap.get(seq).unwrap().unwrap();
        snap.inclusion_proof(seq, head)
            .unwrap()
            .verify(&record.leaf, &root)
            .unwrap();
    }
    let with = |keep: &dyn Fn(u64) -> bool| {
        signed
            .iter()
            .filter(|c| keep(c.checkpoint().size()))
            .fold(VerifyOptions::new().trusted_key(key.verifier()), |o, c| {
                o.checkpoint(c.note())
            })
    };
    let report = verify(dir, with(&|size| size >= pruned && size <= head)).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.tree_root, Some(root));
    assert!(report.checkpoints.iter().all(|c| c.consistent));
    let report = verify(dir, with(&|size| size < pruned)).unwrap();
    assert!(
        matches!(
            report.failure.map(|f| f.reason),
            Some(Reason::CheckpointUncheckable { .. })
        ),
        "a checkpoint of pruned records"
    );
    pruned
}

/// §14.2, §15.5: a ring that prunes keeps, for every start its log can have, the tree base its
/// tree needs: the log proves its records and its checkpoints from its first record on, after
/// a prune that a crash cut short between two removals, after one that completed, and after
/// reopening (the tree worker starts from the pruned log's frontier), and only the tree bases
/// still of use stay.
#[test]
fn a_pruned_log_proves_its_records_and_checkpoints_from_its_first_record_on() {
    use auditring::storage::FsStorage;
    use auditring::{Checkpoints, Retention, SignedCheckpoint, SigningKey, Unexported};
    use auditring_testkit::faults::{Faults, FaultyStorage};
    use std::sync::atomic::Ordering;
    use std::sync::{Arc, Mutex};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    std::fs::create_dir(&dir).unwrap();
    let key = SigningKey::generate("audit.example/pruned").unwrap();
    let signed: Arc<Mutex<Vec<SignedCheckpoint>>> = Arc::default();
    let ring_with = |storage: FaultyStorage, retention: bool| {
        let keep = signed.clone();
        let mut builder = Ring::with_storage(storage)
            .segment_size(SEGMENT_SIZE)
            .checkpoints(
                Checkpoints::new(key.expose_secret().parse().unwrap())
                    .every_events(250)
                    .to_callback(move |c| {
                        keep.lock().unwrap().push(c.clone());
                        Ok(())
                    }),
            );
        if retention {
            builder = builder.retention(
                Retention::new()
                    .max_segments(2)
                    .unexported(Unexported::Remove),
            );
        }
        builder.open().unwrap()
    };
    let push = |ring: &Ring, from: u64, n: u64| {
        for i in from..from + n {
            ring.push(
                Event::new("pruned")
                    .with_details_json(format!("{{\"i\":{i}}}"))
                    .unwrap(),
            )
            .unwrap();
        }
        ring.flush().unwrap();
    };

    // Ten segments and more, no retention yet.
    let ring = ring_with(
        FaultyStorage::new(FsStorage::new(&dir), Faults::new()),
        false,
    );
    push(&ring, 0, 6_000);
    ring.close().unwrap();
    assert!(std::fs::read_dir(&dir).unwrap().count() > 10);

    // A prune of eight segments and more whose fourth removal fails, as a crash would leave it.
    let faults = Faults::new();
    faults
        .segment_removals_until_failure
        .store(3, Ordering::SeqCst);
    let ring = ring_with(
        FaultyStorage::new(FsStorage::new(&dir), faults.clone()),
        true,
    );
    // (The retention thread may have got there first: either way the removals stopped.)
    let _ = ring.apply_retention();
    assert_eq!(
        faults.segment_removals_until_failure.load(Ordering::SeqCst),
        0
    );
    push(&ring, 6_000, 300);
    ring.close().unwrap();
    let bases = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| Path::new(n).extension() == Some("tb".as_ref()))
            .collect();
        names.sort();
        names
    };
    assert!(bases().len() > 4, "one per boundary: {:?}", bases());
    let cut_short = assert_provable_from_the_first_record(&dir, &signed.lock().unwrap(), &key);

    // Reopened without faults: the prune completes, the tree goes on from the pruned log.
    let ring = ring_with(
        FaultyStorage::new(FsStorage::new(&dir), Faults::new()),
        true,
    );
    ring.apply_retention().unwrap();
    push(&ring, 6_300, 2_000);
    ring.close().unwrap();
    let pruned = assert_provable_from_the_first_record(&dir, &signed.lock().unwrap(), &key);
    assert!(pruned > cut_short);
    assert!(bases().contains(&format!("{pruned:016x}.tb")));
    // A writer opening the log keeps only the base of its start: others are left by prunes
    // that a close or a crash cut short. (The tree worker removes them as it starts, and
    // the close waits for it.)
    let ring = ring_with(
        FaultyStorage::new(FsStorage::new(&dir), Faults::new()),
        false,
    );
    ring.close().unwrap();
    assert_eq!(bases(), [format!("{pruned:016x}.tb")]);
    assert_provable_from_the_first_record(&dir, &signed.lock().unwrap(), &key);
}
