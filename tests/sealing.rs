//! Forward-secure sealing (`docs/SECURITY.md`, "Sealed epochs"; `docs/FORMAT.md` §16): seals
//! come when asked, verify against the initial key, and catch what a thief of the host's
//! current key does to the epochs already sealed; what they can still do is shown too.

use std::path::{Path, PathBuf};

use auditring::{
    Durability, Error, Event, Reason, Ring, SEALED_KIND, SealKey, Sealing, VerifyOptions, verify,
};
use auditring_testkit::rechain::{
    Thief, edit_event, find, log_id_of, rechain_resealing, rechain_with, rewrite_with_stolen_key,
    seal_epoch_key, segment_files, write_back,
};
use auditring_testkit::sealing::{SEGMENT_SIZE, push_numbered, write_pruned_sealed, write_sealed};

const KEY: [u8; 32] = [0x5a; 32];

/// A log directory, and the sealing state file beside it made from [`KEY`].
fn setup(tmp: &Path) -> (PathBuf, PathBuf) {
    let state = tmp.join("seal.state");
    SealKey::from_bytes(KEY).write_state(&state).unwrap();
    (tmp.join("log"), state)
}

fn with_key() -> VerifyOptions<'static> {
    VerifyOptions::new().seal_key(SealKey::from_bytes(KEY))
}

/// The epoch in a state file.
fn state_epoch(state: &Path) -> u64 {
    let text = std::fs::read_to_string(state).unwrap();
    let line = text.lines().find(|l| l.starts_with("epoch ")).unwrap();
    line[6..].parse().unwrap()
}

/// The key in a state file: what a thief of the host takes.
fn state_key(state: &Path) -> [u8; 32] {
    let text = std::fs::read_to_string(state).unwrap();
    let hex = &text.lines().find(|l| l.starts_with("key ")).unwrap()[4..];
    std::array::from_fn(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
}

#[test]
fn seals_come_at_each_count_and_at_close_and_verify_against_the_initial_key() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    write_sealed(&dir, &state, 0, 1_000, 100);

    let plain = verify(&dir, VerifyOptions::new()).unwrap();
    assert!(plain.is_ok(), "{:?}", plain.failure);
    assert!(plain.seals.is_none(), "no key, no seal report");
    let report = verify(&dir, with_key()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let seals = report.seals.unwrap();
    // 1000 events sealed every 100 at least, plus the seal records themselves.
    assert!(seals.seals >= 10, "{seals:?}");
    assert_eq!(report.last_seq, 1_000 + seals.seals);
    assert_eq!(seals.first_epoch, Some(0));
    assert_eq!(
        seals.last_epoch,
        Some(seals.seals - 1),
        "one seal per epoch"
    );
    assert_eq!((seals.sealed_through, seals.unsealed), (report.last_seq, 0));
    assert!(seals.last_sealed_at.is_some());
    // The ring holds only the next epoch's key.
    assert_eq!(state_epoch(&state), seals.seals);
    assert_eq!(state_key(&state), seal_epoch_key(&KEY, seals.seals));

    // Reopened, it goes on from its state; an idle open and close writes no seal.
    write_sealed(&dir, &state, 1_000, 0, 100);
    write_sealed(&dir, &state, 1_000, 50, 100);
    let again = verify(&dir, with_key()).unwrap();
    assert!(again.is_ok(), "{:?}", again.failure);
    let more = again.seals.unwrap();
    assert_eq!(more.seals, seals.seals + 1);
    assert_eq!(more.unsealed, 0);
    assert_eq!(again.last_seq, report.last_seq + 51);

    // A wrong key fails at the first seal.
    let wrong = verify(
        &dir,
        VerifyOptions::new().seal_key(SealKey::from_bytes([1; 32])),
    )
    .unwrap();
    let failure = wrong.failure.expect("a wrong key is caught");
    assert_eq!(failure.reason, Reason::SealMac { epoch: 0 });
}

#[test]
fn a_thief_of_the_current_key_cannot_reseal_a_rewrite_of_earlier_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    // Fewer than ten seals: the thief's epoch has as many digits as the ones it replaces.
    write_sealed(&dir, &state, 0, 700, 100);
    let log_id = log_id_of(&dir);
    let stolen_epoch = state_epoch(&state);
    let stolen = state_key(&state);
    assert!(stolen_epoch < 10);

    // The thief changes event 450 and rewrites every hash after it. Resealing each seal with
    // the stolen key (keeping its epoch) or claiming the stolen epoch: both are caught at the
    // first seal after the edit; the chain alone accepts both.
    for thief in Thief::both(stolen_epoch, stolen) {
        let claim_stolen_epoch = thief.claims_its_epoch;
        let copy = tmp.path().join(format!("rewrite-{claim_stolen_epoch}"));
        rewrite_with_stolen_key((&dir, &copy), 450, &thief, |seq, _| seq > 451);
        let alone = verify(&copy, VerifyOptions::new()).unwrap();
        assert!(alone.is_ok(), "{:?}", alone.failure);
        let failure = verify(&copy, with_key())
            .unwrap()
            .failure
            .expect("the rewrite is caught");
        let seq = failure.seq.unwrap();
        assert!(seq > 451, "{failure}");
        match failure.reason {
            Reason::SealMac { epoch } => assert!(!claim_stolen_epoch && epoch < stolen_epoch),
            Reason::SealEpoch { previous, found } => {
                assert!(claim_stolen_epoch, "{failure}");
                assert_eq!(found, stolen_epoch);
                assert!(previous.is_none_or(|p| p + 1 < stolen_epoch));
            }
            other => panic!("{other}"),
        }
        assert!(failure.file.starts_with(&copy));
    }

    // Leaving the seals as they are, only the seals before the edit verify.
    let copy = tmp.path().join("rewrite-unsealed");
    auditring_testkit::slots::copy_dir(&dir, &copy);
    let mut files = segment_files(&copy);
    edit_event(&mut files, 450);
    rechain_resealing(&mut files, log_id, |_, _| None);
    write_back(&copy, &files);
    let failure = verify(&copy, with_key()).unwrap().failure.unwrap();
    assert!(
        matches!(failure.reason, Reason::SealMac { .. }),
        "{failure}"
    );
}

#[test]
fn a_thief_of_the_current_key_can_add_after_the_last_seal_and_is_seen_only_as_unsealed() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    write_sealed(&dir, &state, 0, 300, 100);
    let sealed = verify(&dir, with_key()).unwrap();
    let before = sealed.seals.clone().unwrap();

    // Appending with the stolen state seals the additions with the stolen epoch: that verifies
    // (what the current key can do: docs/SECURITY.md).
    let stolen = tmp.path().join("stolen.state");
    std::fs::copy(&state, &stolen).unwrap();
    let with_stolen = tmp.path().join("with-stolen");
    auditring_testkit::slots::copy_dir(&dir, &with_stolen);
    write_sealed(&with_stolen, &stolen, 300, 20, 100);
    let report = verify(&with_stolen, with_key()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.seals.unwrap().last_epoch, Some(state_epoch(&state)));

    // Appending without any key (truncate-and-append, journald's CVE-2023-31438): verified as
    // a chain, and reported as unsealed, never as sealed.
    let appended = tmp.path().join("appended");
    auditring_testkit::slots::copy_dir(&dir, &appended);
    let ring = Ring::open(&appended).unwrap();
    push_numbered(&ring, 300, 7);
    ring.close().unwrap();
    let report = verify(&appended, with_key()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let seals = report.seals.unwrap();
    assert_eq!(seals.sealed_through, before.sealed_through);
    assert_eq!(seals.unsealed, 7);
}

#[test]
fn a_cut_or_the_seals_removed_are_caught_by_the_epoch_the_auditor_saw() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    write_sealed(&dir, &state, 0, 3_000, 100);
    let seen = verify(&dir, with_key()).unwrap();
    let last_epoch = seen.seals.unwrap().last_epoch.unwrap();
    assert!(
        verify(&dir, with_key().expect_epoch(last_epoch))
            .unwrap()
            .is_ok()
    );

    // The newest segment removed: a cut at a record boundary.
    let cut = tmp.path().join("cut");
    auditring_testkit::slots::copy_dir(&dir, &cut);
    let files = segment_files(&cut);
    std::fs::remove_file(cut.join(files.keys().next_back().unwrap())).unwrap();
    assert!(
        verify(&cut, with_key()).unwrap().is_ok(),
        "seals alone miss a cut"
    );
    let failure = verify(&cut, with_key().expect_epoch(last_epoch))
        .unwrap()
        .failure
        .expect("the cut is caught");
    match failure.reason {
        Reason::SealMissing { expected, last } => {
            assert_eq!(expected, last_epoch);
            assert!(last.unwrap() < last_epoch);
        }
        other => panic!("{other}"),
    }

    // Every seal turned into an ordinary record and the log rewritten: no seal is left.
    let log_id = seen.log_id.unwrap().0;
    let unsealed = tmp.path().join("unsealed");
    auditring_testkit::slots::copy_dir(&dir, &unsealed);
    let mut files = segment_files(&unsealed);
    rechain_with(&mut files, |_, _, body| {
        if let Some(at) = find(body, SEALED_KIND.as_bytes()) {
            body[at..at + SEALED_KIND.len()].copy_from_slice(b"auditring_sealed");
        }
    });
    let _ = log_id;
    write_back(&unsealed, &files);
    let report = verify(&unsealed, with_key()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let seals = report.seals.unwrap();
    assert_eq!((seals.seals, seals.unsealed), (0, report.events));
    let failure = verify(&unsealed, with_key().expect_epoch(0))
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(
        failure.reason,
        Reason::SealMissing {
            expected: 0,
            last: None
        }
    );
}

#[test]
fn a_crash_before_the_state_is_replaced_seals_again_in_the_same_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    let ring = Ring::builder(&dir)
        .segment_size(SEGMENT_SIZE)
        .durability(Durability::Batch)
        .sealing(Sealing::new(&state).not_by_time())
        .open()
        .unwrap();
    push_numbered(&ring, 0, 50);
    ring.flush().unwrap();
    // The state as it was before close sealed epoch 0: what a crash between the seal's sync
    // and the state's replacement leaves.
    let before = std::fs::read(&state).unwrap();
    ring.close().unwrap();
    assert_eq!(state_epoch(&state), 1);
    std::fs::write(&state, &before).unwrap();

    // The next ring finds records after the state's last seal and seals them first, with the
    // same epoch; the verifier accepts two seals of one epoch.
    write_sealed(&dir, &state, 50, 10, 1_000);
    let report = verify(&dir, with_key()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    let seals = report.seals.unwrap();
    assert_eq!((seals.seals, seals.last_epoch), (3, Some(1)));
    assert_eq!(seals.unsealed, 0);
    assert_eq!(state_epoch(&state), 2);
}

#[test]
fn state_files_that_do_not_fit_the_log_are_refused_with_their_path() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    write_sealed(&dir, &state, 0, 20, 5);

    // Another log's state.
    let (other, _) = setup(&tmp.path().join("x").tap_create());
    let open =
        |dir: &Path, state: &Path| match Ring::builder(dir).sealing(Sealing::new(state)).open() {
            Ok(_) => panic!("refused"),
            Err(e) => e,
        };
    let message = |e: Error| match e {
        Error::Sealing(m) => m,
        other => panic!("{other}"),
    };
    let m = message(open(&other, &state));
    assert!(
        m.contains("belongs to log") && m.contains("seal.state"),
        "{m}"
    );

    // A state that says more was sealed than the log holds.
    let fresh = tmp.path().join("fresh");
    let ahead = tmp.path().join("ahead.state");
    std::fs::copy(&state, &ahead).unwrap();
    let text = std::fs::read_to_string(&ahead).unwrap();
    let text = text.replace(
        &format!(
            "log {}",
            verify(&dir, VerifyOptions::new()).unwrap().log_id.unwrap()
        ),
        "log -",
    );
    std::fs::write(&ahead, text).unwrap();
    let m = message(open(&fresh, &ahead));
    assert!(m.contains("but the log ends at seq 0"), "{m}");

    // Missing, garbage, a directory.
    for bad in [
        tmp.path().join("missing.state"),
        tmp.path().to_path_buf(),
        {
            let p = tmp.path().join("garbage.state");
            std::fs::write(&p, "auditring-seal-state-v1\nlog -\n").unwrap();
            p
        },
    ] {
        let m = message(open(&dir, &bad));
        assert!(m.contains(&bad.display().to_string()), "{m}");
    }
    // The log is unharmed.
    assert!(verify(&dir, with_key()).unwrap().is_ok());
}

trait TapCreate {
    fn tap_create(self) -> Self;
}

impl TapCreate for PathBuf {
    fn tap_create(self) -> PathBuf {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

#[test]
fn an_idle_ring_seals_by_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    let ring = Ring::builder(&dir)
        .sealing(Sealing::new(&state).every(std::time::Duration::from_millis(1)))
        .open()
        .unwrap();
    push_numbered(&ring, 0, 3);
    ring.flush().unwrap();
    // No more events: the sequencer wakes by itself to seal. Waits for it (a condition, not a
    // time: a ring that never sealed would hang here and the harness would say so).
    loop {
        let snapshot = ring.snapshot();
        if snapshot.head_seq() == 4 {
            let last = snapshot.get(4).unwrap().unwrap();
            assert_eq!(last.kind, SEALED_KIND);
            break;
        }
        std::thread::yield_now();
    }
    ring.close().unwrap();
    let report = verify(&dir, with_key()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.seals.unwrap().unsealed, 0);
}

#[test]
fn a_pruned_log_keeps_sealing_and_verifies_from_its_first_kept_seal() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    write_pruned_sealed(&dir, &state);
    let report = verify(&dir, with_key()).unwrap();
    assert!(report.is_ok(), "{:?}", report.failure);
    assert!(report.first_seq > 1);
    let seals = report.seals.unwrap();
    assert!(seals.first_epoch.unwrap() > 0, "{seals:?}");
    assert_eq!(seals.unsealed, 0);
}

#[test]
fn a_walk_that_fails_past_a_seal_in_its_last_segment_reports_nothing_unsealed_before() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = setup(tmp.path());
    write_sealed(&dir, &state, 0, 1_500, 100);
    // The seal of epoch 12 forged: the walk fails in the third segment, after the seal of
    // epoch 11 there, so that the chain it reports ends before the last seal it checked.
    let mut files = segment_files(&dir);
    rechain_resealing(&mut files, log_id_of(&dir), |_, epoch| {
        (epoch == 12).then_some((epoch, [1; 32]))
    });
    write_back(&dir, &files);
    let report = verify(&dir, with_key()).unwrap();
    let failure = report.failure.expect("the forged seal is caught");
    assert_eq!(failure.reason, Reason::SealMac { epoch: 12 });
    let seals = report.seals.unwrap();
    assert!(
        seals.sealed_through > report.last_seq,
        "{seals:?}, last seq {}",
        report.last_seq
    );
    assert_eq!((seals.last_epoch, seals.unsealed), (Some(11), 0));
}

#[test]
fn a_poisoned_ring_that_seals_still_drains_its_queue_and_closes() {
    use auditring::storage::MemStorage;
    use auditring_testkit::faults::{Faults, FaultyStorage};
    use std::sync::atomic::Ordering;

    let tmp = tempfile::tempdir().unwrap();
    let (_, state) = setup(tmp.path());
    let faults = Faults::new();
    // Every sync after the one at open fails: the ring is poisoned at its first batch, while events are
    // queued, with a seal due after each of them.
    faults.syncs_until_failure.store(1, Ordering::SeqCst);
    let ring = Ring::with_storage(FaultyStorage::new(MemStorage::new("poisoned"), faults))
        .durability(Durability::Batch)
        .queue_capacity(64)
        .sealing(Sealing::new(&state).every_events(1).not_by_time())
        .open()
        .unwrap();
    let p = ring.producer();
    let mut pending = Vec::new();
    for i in 0..500u64 {
        let event = Event::new("seal.test")
            .with_details_json(format!("{{\"i\":{i}}}"))
            .unwrap();
        match p.push_tracked(event) {
            Ok(r) => pending.push(r),
            Err(_) => break,
        }
    }
    // Every receipt completes (durable, or failed with the poison), and close returns.
    let failed = pending
        .into_iter()
        .map(auditring::PendingReceipt::wait)
        .filter(Result::is_err)
        .count();
    assert!(failed > 0, "the sync failures reached some receipts");
    assert!(matches!(ring.close(), Err(Error::Poisoned { .. })));
}
