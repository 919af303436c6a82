//! The report's uncached-read rows on the in-memory backend, for one side
//! only, repeated, for a profiler: where the time between the backend
//! called directly and a read through a handle goes.
//!
//! ```text
//! cargo build --release -p benches --example read_path
//! perf record -g target/release/examples/read_path cold_adapter 1 2000000
//! perf report --no-children
//! ```
//!
//! Arguments: side (`cold_adapter`, `signet_cold_0_10`, `backend_direct`), concurrent tasks,
//! and reads. The report's drain-counting `metrics` recorder is installed,
//! as in the report. Prints the reads per second and the time per read.

use benches::cold::{self, Backend, Fixture, Side};

const USAGE: &str = "usage: read_path SIDE TASKS READS";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [side, tasks, reads] = args.as_slice() else { panic!("{USAGE}") };
    let side = [Side::Ours, Side::Signet, Side::Ceiling]
        .into_iter()
        .find(|s| s.name() == side)
        .unwrap_or_else(|| panic!("unknown side {side:?}; {USAGE}"));
    let tasks: usize = tasks.parse().expect(USAGE);
    let reads: u64 = reads.parse().expect(USAGE);
    assert!(tasks > 0 && reads > 0, "{USAGE}");

    cold::install_drain_counter();
    let rt = benches::multi_thread(2);
    let fixture = rt.block_on(Fixture::new(side, Backend::Mem, 1_024));
    let elapsed = cold::uncached_reads(&rt, &fixture, tasks, reads);
    println!(
        "{} {tasks} tasks: {:.0} reads/s, {:.3} µs/read",
        side.name(),
        reads as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / reads as f64,
    );
    drop(fixture);
}
