//! A model test: random sequences of push, flush, snapshot, close and reopen (and crashes),
//! checked against a plain in-memory list and an independent implementation of the hash rules
//! of `docs/FORMAT.md`.

use auditring::storage::MemStorage;
use auditring::{Durability, Event, Hash, Reader, Ring};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// An event as the model keeps it.
#[derive(Clone, Debug, PartialEq)]
struct Spec {
    kind: String,
    actor: Option<String>,
    trace_id: Option<String>,
    timestamp: i64,
    details: Option<String>,
}

impl Spec {
    fn event(&self) -> Event {
        let mut e = Event::new(self.kind.clone()).with_timestamp_nanos(self.timestamp);
        if let Some(a) = &self.actor {
            e = e.with_actor(a.clone());
        }
        if let Some(t) = &self.trace_id {
            e = e.with_trace_id(t.clone());
        }
        if let Some(d) = &self.details {
            e = e.with_details_json(d.clone()).unwrap();
        }
        e
    }

    /// The body, built from the format document's table, not from the crate.
    fn body(&self) -> Vec<u8> {
        let actor = self.actor.as_deref().unwrap_or("");
        let trace = self.trace_id.as_deref().unwrap_or("");
        let details = self.details.as_deref().unwrap_or("");
        let flags = u8::from(self.actor.is_some())
            | u8::from(self.trace_id.is_some()) << 1
            | u8::from(self.details.is_some()) << 2;
        let mut b = vec![1, flags];
        b.extend_from_slice(&(self.kind.len() as u16).to_le_bytes());
        b.extend_from_slice(&(actor.len() as u16).to_le_bytes());
        b.extend_from_slice(&(trace.len() as u16).to_le_bytes());
        b.extend_from_slice(&self.timestamp.to_le_bytes());
        b.extend_from_slice(&(details.len() as u32).to_le_bytes());
        for s in [self.kind.as_str(), actor, trace, details] {
            b.extend_from_slice(s.as_bytes());
        }
        b
    }
}

fn sha(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash(h.finalize().into())
}

#[derive(Clone, Debug)]
enum Op {
    Push(Spec),
    PushReceipt(Spec),
    Flush,
    Snapshot,
    CloseReopen,
    /// Power loss: reopen what was synced.
    Crash,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        "[a-z]{1,3}\\.[a-z]{1,8}",
        proptest::option::of("[a-zA-Z0-9@._:-]{0,20}"),
        proptest::option::of("[0-9a-f]{0,32}"),
        any::<i64>(),
        proptest::option::of(prop_oneof![
            Just("null".to_string()),
            any::<i32>().prop_map(|n| n.to_string()),
            "[ -~]{0,300}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            (any::<u16>(), "[a-zé✓ ]{0,40}")
                .prop_map(|(n, s)| format!("{{\"n\": {n}, \"s\": {}}}", serde_json::json!(s))),
        ]),
    )
        .prop_map(|(kind, actor, trace_id, timestamp, details)| Spec {
            kind,
            actor,
            trace_id,
            timestamp,
            details,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => spec().prop_map(Op::Push),
        3 => spec().prop_map(Op::PushReceipt),
        2 => Just(Op::Flush),
        2 => Just(Op::Snapshot),
        1 => Just(Op::CloseReopen),
        1 => Just(Op::Crash),
    ]
}

/// The model: every event in order, and the chain hashes computed independently.
#[derive(Default)]
struct Model {
    events: Vec<Spec>,
    chains: Vec<Hash>,
    /// Events known to be durable (receipted or flushed under group commit).
    durable: usize,
}

impl Model {
    fn push(&mut self, s: Spec) {
        let prev = self.chains.last().copied().unwrap_or(Hash::ZERO);
        let seq = self.events.len() as u64 + 1;
        let leaf = sha(&[&s.body()]);
        self.chains
            .push(sha(&[&prev.0, &seq.to_le_bytes(), &leaf.0]));
        self.events.push(s);
    }

    fn truncate(&mut self, n: usize) {
        self.events.truncate(n);
        self.chains.truncate(n);
        self.durable = self.durable.min(n);
    }

    /// Checks that `snap` holds exactly the model's first `snap.len()` events.
    fn check(&self, snap: &auditring::Snapshot) {
        assert!(snap.len() as usize <= self.events.len());
        assert_eq!(snap.first_seq(), 1);
        let mut n = 0;
        for r in snap.iter() {
            let r = r.unwrap();
            let s = &self.events[n];
            assert_eq!(r.seq, n as u64 + 1);
            assert_eq!(&r.kind, &s.kind);
            assert_eq!(r.actor, s.actor);
            assert_eq!(r.trace_id, s.trace_id);
            assert_eq!(r.timestamp, s.timestamp);
            assert_eq!(r.details, s.details);
            assert_eq!(r.leaf, sha(&[&s.body()]), "leaf of seq {}", r.seq);
            assert_eq!(r.chain, self.chains[n], "chain of seq {}", r.seq);
            n += 1;
        }
        assert_eq!(n as u64, snap.len());
        let head = if n == 0 {
            Hash::ZERO
        } else {
            self.chains[n - 1]
        };
        assert_eq!(snap.head(), head);
    }
}

fn open(mem: &MemStorage) -> Ring {
    Ring::with_storage(mem.clone())
        .segment_size(64 * 1024)
        .max_event_size(2048)
        .durability(Durability::Batch)
        .open()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_ring_behaves_like_a_list(ops in proptest::collection::vec(op(), 1..120)) {
        let mut mem = MemStorage::new("model");
        let mut ring = open(&mem);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Push(s) => {
                    ring.push(s.event()).unwrap();
                    model.push(s);
                }
                Op::PushReceipt(s) => {
                    let r = ring.push_receipt(s.event()).unwrap();
                    model.push(s);
                    assert_eq!(r.seq, model.events.len() as u64);
                    assert_eq!(&r.chain, model.chains.last().unwrap());
                    assert!(r.durable);
                    model.durable = model.events.len();
                }
                Op::Flush => {
                    ring.flush().unwrap();
                    model.durable = model.events.len();
                    let snap = ring.snapshot();
                    assert_eq!(snap.len() as usize, model.events.len());
                    model.check(&snap);
                }
                Op::Snapshot => {
                    // A prefix: pushes may still be in the queue.
                    model.check(&ring.snapshot());
                }
                Op::CloseReopen => {
                    ring.close().unwrap();
                    let report = auditring::verify_storage(&mem, auditring::VerifyOptions::default()).unwrap();
                    assert!(report.is_ok(), "{:?}", report.failure);
                    assert_eq!(report.events as usize, model.events.len());
                    ring = open(&mem);
                    model.durable = model.events.len();
                    model.check(&ring.snapshot());
                    assert_eq!(ring.snapshot().len() as usize, model.events.len());
                }
                Op::Crash => {
                    let image = mem.crash_image();
                    // Stop the old ring without letting it touch the image.
                    ring.close().unwrap();
                    mem = image;
                    let survived = Reader::with_storage(mem.clone()).snapshot().unwrap().len() as usize;
                    assert!(survived >= model.durable, "durable events lost: {survived} < {}", model.durable);
                    model.truncate(survived);
                    ring = open(&mem);
                    model.check(&ring.snapshot());
                }
            }
        }
        ring.close().unwrap();
        let report = auditring::verify_storage(&mem, auditring::VerifyOptions::default()).unwrap();
        assert!(report.is_ok(), "{:?}", report.failure);
        assert_eq!(report.events as usize, model.events.len());
        model.check(&Reader::with_storage(mem).snapshot().unwrap());
    }
}
