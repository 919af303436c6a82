//! The report's uncached-read rows for one side and one backend, repeated,
//! for a profiler: where the time between the backend called directly and
//! a read through a handle goes.
//!
//! ```text
//! cargo build --release -p benches --example read_path
//! perf record -g target/release/examples/read_path cold_adapter 1 2000000
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!   target/release/examples/read_path cold_adapter 1 5000 postgres
//! perf report --no-children
//! ```
//!
//! Arguments: side (`cold_adapter`, `signet_cold_0_10`, `backend_direct`),
//! concurrent tasks, reads, and optionally the backend (`mem`, the
//! default, `sqlite` or `postgres`, which needs `DATABASE_URL`). The
//! report's drain-counting `metrics` recorder is installed, as in the
//! report. Prints the reads per second and the time per read.

use benches::cold::{self, Backend, Fixture, Side};

const USAGE: &str = "usage: read_path SIDE TASKS READS [BACKEND]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (side, tasks, reads, backend) = match args.as_slice() {
        [side, tasks, reads] => (side, tasks, reads, "mem"),
        [side, tasks, reads, backend] => (side, tasks, reads, backend.as_str()),
        _ => panic!("{USAGE}"),
    };
    let backend = [Backend::Mem, Backend::Sqlite, Backend::Postgres]
        .into_iter()
        .find(|b| b.name() == backend)
        .unwrap_or_else(|| panic!("unknown backend {backend:?}; {USAGE}"));
    let side = [Side::Ours, Side::Signet, Side::Ceiling]
        .into_iter()
        .find(|s| s.name() == side)
        .unwrap_or_else(|| panic!("unknown side {side:?}; {USAGE}"));
    let tasks: usize = tasks.parse().expect(USAGE);
    let reads: u64 = reads.parse().expect(USAGE);
    assert!(tasks > 0 && reads > 0, "{USAGE}");

    cold::install_drain_counter();
    let rt = benches::multi_thread(2);
    let fixture = rt.block_on(Fixture::new(side, backend, 1_024));
    let elapsed = cold::uncached_reads(&rt, &fixture, tasks, reads);
    println!(
        "{} on {} {tasks} tasks: {:.0} reads/s, {:.3} µs/read",
        side.name(),
        backend.name(),
        reads as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / reads as f64,
    );
    drop(fixture);
}
