//! The `log` backend, installed as the process's logger (one test: there is one logger per
//! process): it records the chosen records with their key-values, passes the others on to the
//! next logger, keeps every record of 100 threads once and in order, and its guard closes the
//! ring.

use std::sync::{Arc, Barrier, Mutex};

use auditring::{AuditLogger, Ring, VerifyOptions, verify};
use auditring_testkit::threads::{assert_each_thread_in_order, details, records};

/// The next logger: keeps the messages it is given.
struct Keep(Arc<Mutex<Vec<String>>>);

impl log::Log for Keep {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

#[test]
fn the_log_backend_records_chosen_records_and_passes_on_the_rest() {
    const THREADS: u64 = 100;
    const EACH: u64 = 10;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let ring = Ring::builder(&dir).queue_capacity(8).open().unwrap();
    let passed = Arc::new(Mutex::new(Vec::new()));
    let guard = AuditLogger::builder(ring)
        .then(Box::new(Keep(passed.clone())))
        .init()
        .unwrap();

    log::info!(target: "app", "an ordinary line");
    log::warn!(target: "audit", kind = "user.login", actor = "alice", trace_id = "t-1", n = 3, ok = true; "login from {}", "10.0.0.7");
    log::info!(target: "audit::files", path = "/etc/passwd"; "read");
    guard.flush().unwrap();
    let start = Arc::new(Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 0..EACH {
                    log::info!(target: "audit", kind = "story.002", thread = t, i = i; "event");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    guard.close().unwrap();

    assert_eq!(*passed.lock().unwrap(), ["an ordinary line"]);
    let rs = records(&dir);
    assert_eq!(rs.len() as u64, 2 + THREADS * EACH);
    assert_eq!(rs[0].kind, "user.login");
    assert_eq!(rs[0].actor.as_deref(), Some("alice"));
    assert_eq!(rs[0].trace_id.as_deref(), Some("t-1"));
    assert_eq!(
        details(&rs[0]),
        serde_json::json!({"message": "login from 10.0.0.7", "n": 3, "ok": true,
                           "level": "WARN", "target": "audit"})
    );
    assert_eq!(rs[1].kind, "audit::files");
    assert_eq!(details(&rs[1])["path"], "/etc/passwd");
    assert_each_thread_in_order(&rs[2..], THREADS, EACH);
    assert!(verify(&dir, VerifyOptions::default()).unwrap().is_ok());
}
