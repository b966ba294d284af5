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
            ring.push(Event::new("k").actor(format!("a{i}")).details(&i).unwrap())
                .unwrap();
        }
        let r = ring.push_receipt(Event::new("last")).unwrap();
        assert_eq!(r.seq, (round + 1) * 2001);
        let snap = ring.snapshot();
        assert_eq!(snap.head_seq(), r.seq);
        assert_eq!(snap.get(5).unwrap().unwrap().seq, 5);
        assert_eq!(snap.iter().count() as u64, r.seq);
        ring.close().unwrap();
        let rep = auditring::verify(&path).unwrap();
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
        ring.push(Event::new("k").details(&i).unwrap()).unwrap();
    }
    ring.flush().unwrap();
    assert_eq!(ring.snapshot().len(), 5000);
    let recs: Vec<_> = ring.snapshot().last(3).map(|r| r.unwrap().seq).collect();
    assert_eq!(recs, vec![4998, 4999, 5000]);
    ring.close().unwrap();
    let rep = auditring::verify_storage(&mem).unwrap();
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
                    .details(&serde_json::json!({ "i": i, "pad": pad }))
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
        let rep = auditring::verify(&path).unwrap();
        assert!(rep.is_ok(), "{durability:?}: {:?}", rep.failure);
        assert_eq!(rep.events, n + 1);
        assert_eq!(rep.head, last.chain);
    }
}
