use auditring::{Durability, Event, Ring, storage::MemStorage};

#[test]
fn smoke_fs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    for round in 0..3u64 {
        let ring = Ring::builder(&path)
            .segment_size(256 * 1024)
            .durability(Durability::Batch)
            .open()
            .unwrap();
        eprintln!("{:?}", ring.recovery());
        for i in 0..2000u64 {
            ring.push(
                Event::new("k")
                    .with_actor(format!("a{i}"))
                    .with_details(&i)
                    .unwrap(),
            )
            .unwrap();
        }
        let r = ring.push_receipt(Event::new("last")).unwrap();
        assert_eq!(r.seq, (round + 1) * 2001);
        let snap = ring.snapshot();
        assert_eq!(snap.head_seq(), r.seq);
        assert_eq!(snap.get(5).unwrap().unwrap().seq, 5);
        assert_eq!(snap.iter().count() as u64, r.seq);
        ring.close().unwrap();
        let rep = auditring::verify(&path, auditring::VerifyOptions::default()).unwrap();
        eprintln!("{rep:?}");
        assert!(rep.is_ok(), "{:?}", rep.failure);
        assert_eq!(rep.events, r.seq);
    }
}

#[test]
fn smoke_mem() {
    let mem = MemStorage::new("m");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(64 * 1024)
        .max_event_size(4096)
        .open()
        .unwrap();
    for i in 0..5000u64 {
        ring.push(Event::new("k").with_details(&i).unwrap())
            .unwrap();
    }
    ring.flush().unwrap();
    assert_eq!(ring.snapshot().len(), 5000);
    let recs: Vec<_> = ring.snapshot().last(3).map(|r| r.unwrap().seq).collect();
    assert_eq!(recs, vec![4998, 4999, 5000]);
    ring.close().unwrap();
    let rep = auditring::verify_storage(&mem, auditring::VerifyOptions::default()).unwrap();
    assert!(rep.is_ok(), "{:?}", rep.failure);
    assert_eq!(rep.events, 5000);
}

/// The pages of written records leave the process's memory every few MiB (`MADV_DONTNEED`
/// behind the sequencer): what was written through them must still reach the file, be synced
/// by group commit, and read back byte for byte, under every policy.
#[test]
fn records_whose_pages_were_released_read_back_and_verify() {
    let pad = "p".repeat(900);
    for durability in [Durability::None, Durability::Batch] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let ring = Ring::builder(&path)
            .segment_size(8 << 20)
            .durability(durability)
            .open()
            .unwrap();
        // About 1 KiB a record, 20 MiB in all: several releases in each of three segments.
        let n = 20_000u64;
        for i in 0..n {
            ring.push(
                Event::new("k")
                    .with_details(&serde_json::json!({ "i": i, "pad": pad }))
                    .unwrap(),
            )
            .unwrap();
        }
        let last = ring.push_receipt(Event::new("last")).unwrap();
        assert_eq!(last.seq, n + 1);
        let snap = ring.snapshot();
        for (k, r) in snap.iter().take(n as usize).enumerate() {
            let r = r.unwrap();
            let d: serde_json::Value = serde_json::from_str(r.details.as_deref().unwrap()).unwrap();
            assert_eq!(d["i"], k as u64, "{durability:?}");
        }
        drop(snap);
        ring.close().unwrap();
        let rep = auditring::verify(&path, auditring::VerifyOptions::default()).unwrap();
        assert!(rep.is_ok(), "{durability:?}: {:?}", rep.failure);
        assert_eq!(rep.events, n + 1);
        assert_eq!(rep.head, last.chain);
    }
}

/// More threads than the 32 bits waiters are woken by (so some share a bit and wake for
/// each other's receipts), each waiting for every one of its receipts, under both the policy
/// whose receipts the sequencer completes and the one whose receipts the committer completes
/// after a sync: every thread gets its own receipts, each naming its event's place in the
/// chain, and together they cover every seq once.
#[test]
fn forty_threads_each_waiting_for_their_receipts_get_exactly_theirs() {
    const THREADS: u64 = 40;
    const EACH: u64 = 150;
    for durability in [Durability::None, Durability::Batch] {
        let ring = Ring::with_storage(MemStorage::new("m"))
            .durability(durability)
            .segment_size(64 * 1024)
            .open()
            .unwrap();
        let start = std::sync::Barrier::new(THREADS as usize);
        let receipts: Vec<(u64, u64, auditring::Receipt)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS)
                .map(|t| {
                    let (ring, start) = (&ring, &start);
                    s.spawn(move || {
                        start.wait();
                        (0..EACH)
                            .map(|i| {
                                let e = Event::new("k").with_details(&(t, i)).unwrap();
                                (t, i, ring.push_receipt(e).unwrap())
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap())
                .collect()
        });
        let snap = ring.snapshot();
        let mut seqs: Vec<u64> = receipts.iter().map(|(_, _, r)| r.seq).collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (1..=THREADS * EACH).collect::<Vec<_>>(),
            "{durability:?}"
        );
        for (t, i, r) in &receipts {
            assert_eq!(r.durable, durability == Durability::Batch);
            let rec = snap
                .get(r.seq)
                .unwrap()
                .expect("a receipted record is in the log");
            assert_eq!(rec.details_as::<(u64, u64)>().unwrap(), Some((*t, *i)));
            assert_eq!(rec.chain, r.chain, "seq {}", r.seq);
        }
        ring.close().unwrap();
    }
}
