//! The parts of the `auditring` command-line tool that are run on hostile input outside the
//! tool too: the parser of `auditring append`'s input lines ([`mod@line`]) and the parser of time
//! arguments ([`timearg`]). The fuzz harness (`auditring_testkit::fuzz`, run by the cargo-fuzz
//! targets in `fuzz/` and by `tests/fuzz_corpus.rs`) runs this very code; the binary uses it
//! from here. Everything else of the tool is in the binary (`src/main.rs`).
#![deny(missing_docs)]

pub mod line;
pub mod timearg;
