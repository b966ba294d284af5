//! Driving a load through a design under test: the demo, `auditring bench` and the benchmarks
//! (`bench/benches/`, `cli/benches/compare.rs`) all measure auditring and the designs it
//! replaces with this one loop.
//!
//! Every producer thread builds its own events ([`workload::Generator`], prepared before the
//! clock starts), turns each into what the design takes ([`Design::prepare`], the
//! application's work, such as serializing the details), and hands it to [`Design::push`]. The
//! threads are released together by a barrier; the clock runs from their release to the end of
//! [`Design::finish`], which must hand every event to the operating system (or make it
//! durable, for the durable designs). Every [`LATENCY_EVERY`]th push is timed into an HDR
//! histogram.

use std::sync::Barrier;
use std::thread;
use std::time::Instant;

use hdrhistogram::Histogram;

use crate::workload::{self, AuditEvent};

/// Every this many pushes, one is timed: reading the clock twice costs about as much as a
/// tenth of a push, and a systematic sample gives the same distribution.
pub const LATENCY_EVERY: u64 = 4;

/// A design under test: a log that many threads push events into.
pub trait Design: Sync {
    /// What [`Design::push`] takes.
    type Ready: Send;
    /// The application's work for one event, before it is pushed (not in the push latency).
    fn prepare(&self, event: AuditEvent) -> Self::Ready;
    /// Records one event; called from every producer thread at once.
    fn push(&self, event: Self::Ready) -> Result<(), String>;
    /// Anything a producer thread must hold while it pushes (a tracing dispatcher, say).
    fn enter_thread(&self) -> Box<dyn std::any::Any> {
        Box::new(())
    }
    /// Hands every pushed event to the operating system (or makes it durable) and returns how
    /// many events the log holds.
    fn finish(self) -> Result<u64, String>;
    /// Whether the log also holds records of its own (seals), so that [`Design::finish`]
    /// counts more than the events pushed: its owner then counts the events after the run.
    fn writes_own_records(&self) -> bool {
        false
    }
}

/// What to push.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Producer threads.
    pub producers: usize,
    /// Events in all, split evenly between the producers.
    pub events: u64,
    /// Body size of each event ([`workload::Generator::new`]).
    pub event_size: usize,
    /// Origin time of the events.
    pub timestamp: i64,
}

/// How one design fared.
pub struct Run {
    /// From the producers' release to the end of `finish`.
    pub seconds: f64,
    /// Push latency of every [`LATENCY_EVERY`]th push, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl Run {
    /// Events per second over the run.
    pub fn per_sec(&self, events: u64) -> f64 {
        events as f64 / self.seconds
    }

    /// The latency at quantile `q`, in nanoseconds.
    pub fn quantile(&self, q: f64) -> u64 {
        self.latency.value_at_quantile(q)
    }

    /// The run as a JSON object.
    pub fn json(&self, events: u64) -> serde_json::Value {
        serde_json::json!({
            "seconds": self.seconds,
            "events_per_sec": self.per_sec(events),
            "p50_push_ns": self.quantile(0.5),
            "p99_push_ns": self.quantile(0.99),
            "p999_push_ns": self.quantile(0.999),
            "max_push_ns": self.latency.max(),
            "timed_pushes": self.latency.len(),
        })
    }
}

/// The median of `v` (NaN if empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

/// An empty latency histogram (1 ns to 60 s, 3 significant digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds")
}

/// Pushes `load` through `design`, then finishes it, and checks that it holds every event.
pub fn drive<D: Design>(load: &Load, design: D) -> Result<Run, String> {
    if load.producers == 0 {
        return Err("at least one producer is needed".into());
    }
    let start = Barrier::new(load.producers + 1);
    let (began, histograms) = thread::scope(|s| {
        let threads: Vec<_> = (0..load.producers)
            .map(|p| {
                let share = load.events / load.producers as u64
                    + u64::from((p as u64) < load.events % load.producers as u64);
                let events = workload::Generator::new(p, load.event_size, load.timestamp);
                let (start, design) = (&start, &design);
                s.spawn(move || -> Result<Histogram<u64>, String> {
                    let mut latency = histogram();
                    let _held = design.enter_thread();
                    start.wait();
                    for i in 0..share {
                        let event = design.prepare(events.event(i));
                        if i % LATENCY_EVERY == 0 {
                            let t = Instant::now();
                            design.push(event)?;
                            latency.saturating_record(t.elapsed().as_nanos() as u64);
                        } else {
                            design.push(event)?;
                        }
                    }
                    Ok(latency)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let histograms: Vec<_> = threads
            .into_iter()
            .map(std::thread::ScopedJoinHandle::join)
            .collect();
        (began, histograms)
    });
    let mut latency = histogram();
    let mut failure = None;
    for h in histograms {
        match h {
            Ok(Ok(h)) => latency.add(&h).expect("same bounds"),
            Ok(Err(e)) => failure = Some(format!("push failed: {e}")),
            Err(_) => failure = Some("a producer thread panicked".into()),
        }
    }
    // Finished even after a failure, so that its threads end.
    let own_records = design.writes_own_records();
    let written = design.finish();
    let seconds = began.elapsed().as_secs_f64();
    if let Some(f) = failure {
        return Err(f);
    }
    let written = written?;
    if written != load.events && !(own_records && written > load.events) {
        return Err(format!("the log holds {written} of {} events", load.events));
    }
    Ok(Run { seconds, latency })
}

/// auditring itself, as a [`Design`]: pushes into an open ring; `finish` is [`Ring::flush`]
/// (the ring is closed by its owner, after the clock stops).
///
/// [`Ring::flush`]: auditring::Ring::flush
pub struct Auditring<'a> {
    /// The ring, opened by the caller with the durability under test.
    pub ring: &'a auditring::Ring,
    /// Each push waits for its event's durable receipt (`push_receipt`), as a caller that must
    /// not go on before its event is on disk; otherwise pushes return at once.
    pub wait_durable: bool,
    /// The ring's last seq before the run.
    pub before: u64,
    /// The ring seals (writes records of its own): its owner counts the events after the run.
    pub seals: bool,
}

impl<'a> Auditring<'a> {
    /// Pushes into `ring`, each push waiting for its durable receipt if `wait_durable`.
    pub fn new(ring: &'a auditring::Ring, wait_durable: bool) -> Auditring<'a> {
        Auditring {
            ring,
            wait_durable,
            before: ring.snapshot().head_seq(),
            seals: false,
        }
    }
}

impl Design for Auditring<'_> {
    type Ready = AuditEvent;

    fn prepare(&self, event: AuditEvent) -> AuditEvent {
        event
    }

    /// Pushes the event as an [`auditring::EventRef`] borrowing the application's fields, its
    /// details serialized by the push straight into the queue slot (the path that allocates
    /// nothing); a push that waits for its receipt builds an [`auditring::Event`].
    fn push(&self, event: AuditEvent) -> Result<(), String> {
        if self.wait_durable {
            self.ring
                .push_receipt(workload::into_event(event))
                .map(drop)
                .map_err(|e| e.to_string())
        } else {
            let borrowed = auditring::EventRef::new(event.kind)
                .with_actor(&event.actor)
                .with_trace_id(&event.trace_id)
                .with_timestamp_nanos(event.timestamp)
                .with_details(&event.details);
            self.ring.push_ref(&borrowed).map_err(|e| e.to_string())
        }
    }

    fn finish(self) -> Result<u64, String> {
        self.ring.flush().map_err(|e| e.to_string())?;
        Ok(self.ring.snapshot().head_seq() - self.before)
    }

    fn writes_own_records(&self) -> bool {
        self.seals
    }
}
