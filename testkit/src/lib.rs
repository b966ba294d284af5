//! Test helpers shared by the library's tests (`tests/`), the command-line tool's tests
//! (`cli/tests/`) and the cargo-fuzz targets (`fuzz/`): one home for each, instead of files
//! included into several test crates.
//!
//! * [`faults`]: a storage that fails, stalls or panics on demand;
//! * [`intercept`]: a storage that calls a hook before every operation that changes it;
//! * [`cli`]: running the `auditring` binary under test (its path passed in);
//! * [`python`]: running the independent verifiers of `tools/` and reading their reports;
//! * [`slots`], [`rechain`]: reading and editing segment files by hand, as a crash or an
//!   attacker would;
//! * [`sealing`]: writing sealed logs;
//! * [`threads`]: the logs of many producers, checked for loss, duplicates and order; a ring
//!   whose sequencer waits to start;
//! * [`splitmix`]: the seeded randomness of the crash, fault and kill tests; [`xorshift`]:
//!   that of the tamper mutants and the corpus edits;
//! * [`fuzz`]: the hostile-input harnesses of the fuzz targets, which `tests/fuzz_corpus.rs`
//!   replays on every `cargo test`.
#![deny(missing_docs)]

pub mod cli;
pub mod faults;
pub mod fuzz;
pub mod intercept;
pub mod python;
pub mod rechain;
pub mod sealing;
pub mod slots;
pub mod splitmix;
pub mod threads;
pub mod xorshift;
