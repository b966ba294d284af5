//! Replays the fuzz corpus (`fuzz/corpus/<target>/`) through the harnesses the cargo-fuzz
//! targets use, and runs each harness on a fixed-seed stream of pseudo-random inputs, so that a
//! plain `cargo test` exercises them without cargo-fuzz or a nightly toolchain.
//!
//! `cargo test --test fuzz_corpus -- --ignored generate_seeds` rewrites the seed files this file
//! generates (files with other names in the corpus, such as minimized crashes, are kept).

use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use auditring::storage::{MemStorage, Storage};
use auditring::{Durability, Ring};
use auditring_testkit::faults::{Faults, FaultyStorage};
use auditring_testkit::fuzz as fuzz_harness;
use auditring_testkit::xorshift::Rng;

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 7] = [
    ("raw_directory", fuzz_harness::raw_directory),
    ("mutated_log", fuzz_harness::mutated_log),
    ("jsonl_event", fuzz_harness::jsonl_event),
    ("segment_file", fuzz_harness::segment_file),
    ("export_data", fuzz_harness::export_data),
    ("export_manifest", fuzz_harness::export_manifest),
    ("append_line", fuzz_harness::append_line),
];

/// Pseudo-random inputs per harness.
const RANDOM_INPUTS: usize = 300;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn harness(target: &str) -> Harness {
    TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, h)| *h)
        .expect("known target")
}

/// The tests share one panic log (the ring's threads report there), so they run one at a time.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Panics in threads other than the test's own (the ring's sequencer, committer, preparer),
/// which the ring turns into errors: for a fuzz target they are crashes all the same.
fn thread_panics() -> &'static Mutex<Vec<String>> {
    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    PANICS.get_or_init(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.starts_with("auditring-") {
                let message = format!("thread {name}: {info}");
                if let Ok(mut p) = thread_panics().lock() {
                    p.push(message);
                }
            }
            previous(info);
        }));
        Mutex::new(Vec::new())
    })
}

/// Runs `input` through the harness; returns what went wrong, if anything.
fn run_one(h: Harness, input: &[u8]) -> Option<String> {
    let panics = thread_panics();
    let before = panics.lock().unwrap_or_else(PoisonError::into_inner).len();
    let result = panic::catch_unwind(AssertUnwindSafe(|| h(input)));
    let mut problems = Vec::new();
    if let Err(payload) = result {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("(non-string panic payload)");
        problems.push(format!("panicked: {message}"));
    }
    let p = panics.lock().unwrap_or_else(PoisonError::into_inner);
    problems.extend(p[before..].iter().cloned());
    (!problems.is_empty()).then(|| problems.join("; "))
}

fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str) {
    let _serial = serial();
    let h = harness(target);
    let files = corpus_files(target);
    assert!(!files.is_empty(), "no corpus for {target}");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let input = fs::read(path).expect("read corpus file");
            run_one(h, &input).map(|p| format!("{}: {p}", path.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} corpus inputs of {target} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// A few random edits of `input`: flips, overwrites, inserts, deletions, truncation.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if at < out.len() => out[at] ^= 1 << rng.below(8),
            1 if at < out.len() => out[at] = rng.byte(),
            2 => {
                let n = 1 + rng.below(8);
                for _ in 0..n {
                    out.insert(at, rng.byte());
                }
            }
            3 if at < out.len() => {
                let n = (1 + rng.below(16)).min(out.len() - at);
                out.drain(at..at + n);
            }
            4 if rng.below(8) == 0 => out.truncate(at),
            _ if at + 8 <= out.len() => {
                let v = [0u64, 1, u64::MAX, 0xffff_ffff, 4096, 65536][rng.below(6)];
                out[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    out
}

/// A random string: ASCII, escapes, multi-byte characters.
fn random_string(rng: &mut Rng, max: usize) -> String {
    const PIECES: [&str; 12] = [
        "a",
        "Z",
        "0",
        ".",
        " ",
        "\"",
        "\\",
        "\n",
        "é",
        "доступ",
        "\u{1F600}",
        "\u{0}",
    ];
    (0..rng.below(max + 1))
        .map(|_| PIECES[rng.below(PIECES.len())])
        .collect()
}

fn random_json(rng: &mut Rng, depth: usize) -> serde_json::Value {
    use serde_json::{Value, json};
    match rng.below(if depth == 0 { 5 } else { 7 }) {
        0 => Value::Null,
        1 => json!(rng.below(2) == 0),
        2 => json!(rng.next() as i64),
        3 => json!((rng.next() as f64) / 7.0),
        4 => json!(random_string(rng, 12)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| (random_string(rng, 6), random_json(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// A JSON line of the shape `jsonl_event` takes, with random fields.
fn random_jsonl(rng: &mut Rng) -> Vec<u8> {
    let mut m = serde_json::Map::new();
    let kind = match rng.below(10) {
        0 => String::new(),
        1 => format!("auditring.{}", random_string(rng, 4)),
        _ => format!("k{}", random_string(rng, 16)),
    };
    m.insert("kind".into(), kind.into());
    if rng.below(2) == 0 {
        m.insert("actor".into(), random_string(rng, 20).into());
    }
    if rng.below(2) == 0 {
        m.insert("trace_id".into(), random_string(rng, 32).into());
    }
    if rng.below(2) == 0 {
        m.insert("timestamp".into(), (rng.next() as i64).into());
    }
    if rng.below(3) != 0 {
        m.insert("details".into(), random_json(rng, 3));
    }
    serde_json::to_vec(&m).expect("serializes")
}

/// Inputs for a harness: mostly mutated corpus files, some fresh random ones.
fn random_inputs(target: &str, seed: u64) -> Vec<Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus_files(target)
        .iter()
        .map(|p| fs::read(p).expect("read corpus file"))
        .collect();
    let mut rng = Rng(seed);
    (0..RANDOM_INPUTS)
        .map(|k| match (target, k % 4) {
            ("mutated_log", 0) => (0..=(6 * rng.below(12))).map(|_| rng.byte()).collect(),
            ("jsonl_event", 0 | 1) => random_jsonl(&mut rng),
            ("append_line", 0 | 1) => {
                let mut lines = random_jsonl(&mut rng);
                lines.push(b'\n');
                lines.extend(random_jsonl(&mut rng));
                lines
            }
            (_, 0) => (0..rng.below(256)).map(|_| rng.byte()).collect(),
            _ => {
                let pick = rng.below(seeds.len());
                mutate(&mut rng, &seeds[pick])
            }
        })
        .collect()
}

fn random_pass(target: &str, seed: u64) {
    let _serial = serial();
    let h = harness(target);
    let failures: Vec<String> = random_inputs(target, seed)
        .iter()
        .enumerate()
        .filter_map(|(k, input)| {
            run_one(h, input).map(|p| {
                let hex: String = input.iter().take(64).map(|b| format!("{b:02x}")).collect();
                format!("input {k} ({} bytes, starts {hex}): {p}", input.len())
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {RANDOM_INPUTS} pseudo-random inputs of {target} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn replay_raw_directory() {
    replay("raw_directory");
}

#[test]
fn replay_mutated_log() {
    replay("mutated_log");
}

#[test]
fn replay_jsonl_event() {
    replay("jsonl_event");
}

#[test]
fn replay_segment_file() {
    replay("segment_file");
}

#[test]
fn replay_export_data() {
    replay("export_data");
}

#[test]
fn replay_export_manifest() {
    replay("export_manifest");
}

#[test]
fn replay_append_line() {
    replay("append_line");
}

#[test]
fn random_segment_file() {
    random_pass("segment_file", 0x5eed_0004);
}

#[test]
fn random_export_data() {
    random_pass("export_data", 0x5eed_0005);
}

#[test]
fn random_export_manifest() {
    random_pass("export_manifest", 0x5eed_0006);
}

#[test]
fn random_append_line() {
    random_pass("append_line", 0x5eed_0007);
}

#[test]
fn random_raw_directory() {
    random_pass("raw_directory", 0x5eed_0001);
}

#[test]
fn random_mutated_log() {
    random_pass("mutated_log", 0x5eed_0002);
}

#[test]
fn random_jsonl_event() {
    random_pass("jsonl_event", 0x5eed_0003);
}

/// The base log `mutated_log` damages must be the same on every run, or a saved crash would
/// not reproduce.
#[test]
fn mutated_log_base_is_deterministic() {
    let _serial = serial();
    let a = fuzz_harness::build_base_log();
    let b = fuzz_harness::build_base_log();
    assert_eq!(a.len(), b.len());
    for ((na, ba), (nb, bb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ba == bb, "{na} differs between two builds");
    }
}

// ---------------------------------------------------------------------------------------------
// Seed generation.

/// A `raw_directory` input holding `files` (all named as segments from 1), each stored up to
/// its last non-zero byte and padded back to its length, or whole if `whole`.
fn raw_input(flags: u8, files: &[Vec<u8>], whole: bool) -> Vec<u8> {
    assert!((1..=4).contains(&files.len()));
    let mut out = vec![(flags & !3) | (files.len() as u8 - 1)];
    let contents: Vec<&[u8]> = files
        .iter()
        .map(|f| {
            let end = if whole {
                f.len()
            } else {
                f.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
            };
            &f[..end]
        })
        .collect();
    for (f, c) in files.iter().zip(&contents) {
        out.extend_from_slice(&(c.len() as u32).to_le_bytes()[..3]);
        out.extend_from_slice(&(f.len() as u32).to_le_bytes()[..3]);
    }
    for c in contents {
        out.extend_from_slice(c);
    }
    out
}

/// The segment files of a small log: `rounds` openings pushing that many events each.
fn small_log(rounds: &[u64]) -> (MemStorage, Vec<Vec<u8>>) {
    let mem = MemStorage::new("seed");
    let mut i = 0;
    for &n in rounds {
        let ring = Ring::with_storage(mem.clone())
            .segment_size(fuzz_harness::SEGMENT_SIZE)
            .durability(Durability::None)
            .open()
            .expect("open");
        for _ in 0..n {
            ring.push(fuzz_harness::sample_event(i)).expect("push");
            i += 1;
        }
        ring.close().expect("close");
    }
    let files = segment_files(&mem);
    (mem, files)
}

fn segment_files(mem: &MemStorage) -> Vec<Vec<u8>> {
    let mut names = mem.list().expect("list");
    names.sort();
    names
        .iter()
        .map(|n| mem.read_file(n).expect("file"))
        .collect()
}

fn write_seed(target: &str, name: &str, bytes: &[u8]) {
    let dir = corpus_dir(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

/// Regenerates the seed corpus. Run once by hand; the output is checked in.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn generate_seeds() {
    // raw_directory: real segments produced by the crate.
    let (_, one) = small_log(&[12, 8]);
    assert_eq!(one.len(), 1);
    write_seed(
        "raw_directory",
        "one-segment-whole",
        &raw_input(0, &one, true),
    );
    write_seed("raw_directory", "one-segment", &raw_input(0, &one, false));
    write_seed(
        "raw_directory",
        "one-segment-fixups",
        &raw_input(0x0c, &one, false),
    );
    let (_, two) = small_log(&[300, 30]);
    assert!(two.len() >= 2, "two segments expected");
    write_seed(
        "raw_directory",
        "two-segments",
        &raw_input(0, &two[..2], false),
    );
    write_seed(
        "raw_directory",
        "pruned",
        &raw_input(0x10, &two[1..2], false),
    );
    write_seed(
        "raw_directory",
        "foreign",
        &raw_input(0x40, &[one[0].clone(), b"hello".to_vec()], false),
    );
    // A crash: the durable image of a ring that was never closed, with records past the commit.
    let mem = MemStorage::new("seed-crash");
    let ring = Ring::with_storage(mem.clone())
        .segment_size(fuzz_harness::SEGMENT_SIZE)
        .durability(Durability::Batch)
        .open()
        .expect("open");
    for i in 0..20 {
        ring.push(fuzz_harness::sample_event(i)).expect("push");
    }
    ring.flush().expect("flush");
    for i in 20..25 {
        ring.push(fuzz_harness::sample_event(i)).expect("push");
    }
    ring.flush().expect("flush");
    let crashed = segment_files(&mem.crash_image());
    drop(ring);
    write_seed(
        "raw_directory",
        "crash-image",
        &raw_input(0, &crashed, false),
    );
    // A fresh log: one segment with nothing but its header.
    let (_, empty) = small_log(&[0]);
    write_seed("raw_directory", "empty-log", &raw_input(0, &empty, false));
    write_seed(
        "raw_directory",
        "garbage",
        b"\x03\x10\x00\x00\x00\x00\x01AUDITRNG\x01\x00",
    );
    write_seed("raw_directory", "nothing", b"");

    // mutated_log: flags, then 6-byte mutations (offset, op, value).
    let op = |offset: u32, op: u8, value: u8| {
        let mut v = offset.to_le_bytes().to_vec();
        v.extend_from_slice(&[op, value]);
        v
    };
    write_seed("mutated_log", "clean", &[0]);
    write_seed("mutated_log", "partial", &[1]);
    write_seed("mutated_log", "empty-tail", &[2]);
    write_seed("mutated_log", "sealing", &[3]);
    write_seed("mutated_log", "pruned-fixups", &[0x1c]);
    write_seed(
        "mutated_log",
        "flip-record",
        &[[0u8].as_slice(), &op(8200, 0, 0x20)].concat(),
    );
    write_seed(
        "mutated_log",
        "truncate-rechain",
        &[[0x09u8].as_slice(), &op(70_000, 2, 0)].concat(),
    );
    write_seed(
        "mutated_log",
        "seq-rechain",
        &[[0x0au8].as_slice(), &op(8200, 5, 7)].concat(),
    );
    write_seed(
        "mutated_log",
        "zero-index",
        &[[0x00u8].as_slice(), &op(65_536 * 2 + 4096, 3, 0)].concat(),
    );
    write_seed(
        "mutated_log",
        "replay-record",
        &[[0x0cu8].as_slice(), &op(65_536 + 9000, 4, 0)].concat(),
    );
    write_seed(
        "mutated_log",
        "slot-fields",
        &[
            [0x04u8].as_slice(),
            &op(512 + 16, 5, 7),
            &op(1024 + 32, 6, 1),
        ]
        .concat(),
    );

    // jsonl_event: JSON lines.
    let lines: [(&str, &str); 10] = [
        (
            "full",
            r#"{"kind":"plan.applied","actor":"user:alice@example.com","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","timestamp":1767225600123456789,"details":{"plan":42,"changes":3}}"#,
        ),
        ("minimal", r#"{"kind":"user.login"}"#),
        (
            "nulls",
            r#"{"kind":"k","actor":null,"trace_id":null,"timestamp":null,"details":null}"#,
        ),
        (
            "unicode",
            "{\"kind\":\"доступ.выдан\",\"actor\":\"\\u00e9\\ud83d\\ude00\",\"details\":\"\\u0000 tab\\t\"}\n",
        ),
        (
            "spacing",
            "{ \"kind\" : \"k\" , \"details\" : [ 1 , 2.50 , -0 , 1e3 , { } ] }\r\n",
        ),
        (
            "negative-time",
            r#"{"kind":"k","timestamp":-9223372036854775808,"details":[]}"#,
        ),
        ("reserved", r#"{"kind":"auditring.internal"}"#),
        ("empty-kind", r#"{"kind":""}"#),
        (
            "big-number",
            r#"{"kind":"k","details":{"n":1e400,"m":18446744073709551616}}"#,
        ),
        ("not-json", "{\"kind\":\"k\",\"details\":"),
    ];
    for (name, line) in lines {
        write_seed("jsonl_event", name, line.as_bytes());
    }
}

/// Writes the seed corpus of the targets added after the first ones (`segment_file`, `export_data`,
/// `export_manifest`, `append_line`), leaving the older seeds as they are. Run once by hand; the
/// output is checked in.
#[test]
#[ignore = "writes fuzz/corpus; run by hand"]
fn generate_seeds_more() {
    let trimmed = |f: &[u8]| f[..f.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)].to_vec();
    // segment_file: flag byte, then the file.
    let (_, one) = small_log(&[12, 8]);
    write_seed(
        "segment_file",
        "closed",
        &[&[0x01u8][..], &trimmed(&one[0])].concat(),
    );
    write_seed(
        "segment_file",
        "closed-fixups",
        &[&[0x07u8][..], &trimmed(&one[0])].concat(),
    );
    let (_, two) = small_log(&[300, 30]);
    write_seed(
        "segment_file",
        "sealed",
        &[&[0x01u8][..], &trimmed(&two[0])].concat(),
    );
    write_seed(
        "segment_file",
        "pruned-second",
        &[&[0x0fu8][..], &trimmed(&two[1])].concat(),
    );
    let (_, empty) = small_log(&[0]);
    write_seed(
        "segment_file",
        "empty",
        &[&[0x01u8][..], &trimmed(&empty[0])].concat(),
    );
    write_seed(
        "segment_file",
        "header-only",
        &[
            0x03, b'A', b'U', b'D', b'I', b'T', b'R', b'N', b'G', 1, 0, 1, 0, 64,
        ],
    );

    // export_data: flag byte, then the data file.
    let (_, bundle) = fuzz_harness::sample_export(false);
    let (_, jsonl) = fuzz_harness::sample_export(true);
    write_seed("export_data", "bundle", &[&[0x04u8][..], &bundle].concat());
    write_seed(
        "export_data",
        "bundle-rechain",
        &[&[0x06u8][..], &bundle].concat(),
    );
    write_seed(
        "export_data",
        "bundle-one-fewer",
        &[&[0x0cu8][..], &bundle].concat(),
    );
    write_seed("export_data", "jsonl", &[&[0x05u8][..], &jsonl].concat());
    write_seed(
        "export_data",
        "jsonl-zero-head",
        &[&[0x15u8][..], &jsonl].concat(),
    );
    write_seed("export_data", "empty-bundle", &[0x00]);
    let mut big = bundle[..80].to_vec();
    big[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    write_seed(
        "export_data",
        "huge-body-length",
        &[&[0x06u8][..], &big].concat(),
    );

    // export_manifest: flag byte, then manifest.json.
    let (bundle_manifest, _) = fuzz_harness::sample_export(false);
    let (jsonl_manifest, _) = fuzz_harness::sample_export(true);
    write_seed(
        "export_manifest",
        "bundle",
        &[&[0x00u8][..], &bundle_manifest].concat(),
    );
    write_seed(
        "export_manifest",
        "jsonl",
        &[&[0x01u8][..], &jsonl_manifest].concat(),
    );
    write_seed(
        "export_manifest",
        "wrong-file",
        &[&[0x01u8][..], &bundle_manifest].concat(),
    );
    let huge = String::from_utf8(bundle_manifest.clone())
        .expect("UTF-8")
        .replace("\"count\": 8", "\"count\": 18446744073709551615");
    write_seed(
        "export_manifest",
        "huge-count",
        &[&[0x02u8][..], huge.as_bytes()].concat(),
    );
    write_seed("export_manifest", "not-json", b"\x00{\"format\":");

    // append_line: standard input of `auditring append`.
    let lines: [(&str, &str); 8] = [
        (
            "full",
            "{\"kind\":\"plan.applied\",\"actor\":\"alice\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"timestamp\":\"2026-01-01T00:00:00.5+01:00\",\"details\":{\"plan\": 42}}\n",
        ),
        (
            "nanos",
            "{\"kind\":\"k\",\"timestamp\":-5,\"details\":null}\n",
        ),
        (
            "two-lines-blank",
            "{\"kind\":\"a\"}\n\n   \n{\"kind\":\"b\",\"actor\":\"\"}\r\n",
        ),
        ("unknown-field", "{\"kind\":\"k\",\"actr\":\"a\"}\n"),
        ("bad-time", "{\"kind\":\"k\",\"timestamp\":\"5\"}\n"),
        (
            "reserved-then-valid",
            "{\"kind\":\"auditring.x\"}\n{\"kind\":\"k\"}\n",
        ),
        ("duplicate-kind", "{\"kind\":\"a\",\"kind\":\"b\"}\n"),
        ("not-json", "kind=k\n"),
    ];
    for (name, line) in lines {
        write_seed("append_line", name, line.as_bytes());
    }
}

/// Every input of every target opens a ring; under `LeakSanitizer` (cargo fuzz's default) each
/// one then reports the ring's shared state as leaked, queue and storage included. This is the
/// same leak without a sanitizer: once closed and dropped, a ring must release its storage.
#[test]
fn closed_ring_releases_its_storage() {
    let faults = Faults::new();
    let probe = FaultyStorage::new(MemStorage::new("probe"), faults.clone());
    let ring = Ring::with_storage(probe)
        .segment_size(fuzz_harness::SEGMENT_SIZE)
        .open()
        .expect("open");
    ring.push(fuzz_harness::sample_event(1)).expect("push");
    ring.close().expect("close");
    assert!(
        faults
            .storage_dropped
            .load(std::sync::atomic::Ordering::SeqCst),
        "the ring's storage is still referenced after close: the ring's shared state leaked"
    );
}
