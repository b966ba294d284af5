#![no_main]

use auditring_testkit::fuzz as harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::mutated_log(data));
