mod workload;
fn main() {}
