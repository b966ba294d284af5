//! What the auditring demo and benchmarks measure, in one place: the workload of realistic
//! audit events ([`workload`]), the loop that drives a load through a design under test and
//! times it ([`load`]), and the designs auditring replaces ([`baselines`], which the command
//! line's `bench` and `demo --compare` run too; and `rivals`, behind the feature of that name,
//! which only the comparison benchmark runs).
//!
//! Used by the command-line tool (`auditring-cli`, without the `rivals` feature), by the
//! criterion benchmarks of this package (`cargo bench --bench ring|export|export_stall` from
//! the repository root) and by the comparison benchmark `cli/benches/compare.rs` (`cargo bench
//! --bench compare`), which also runs the tool.
#![deny(missing_docs)]

pub mod baselines;
pub mod load;
#[cfg(feature = "rivals")]
pub mod rivals;
pub mod workload;
