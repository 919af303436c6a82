//! One contended workload of `benches::contended`, repeated, for a profiler:
//! the same tasks, operations and 2-worker runtime as the report's
//! `gate_contended` rows, for one primitive only.
//!
//! ```text
//! cargo build --release -p benches --example contended_workload
//! perf record -g target/release/examples/contended_workload gate 256 100 20
//! ```
//!
//! Arguments: primitive (`gate`, `tokio_semaphore`, `tokio_rwlock`,
//! `async_lock_rwlock`, `async_lock_semaphore`), tasks, drain every M
//! operations (`0` for none), runs, and optionally the read cap (default
//! `benches::CAP`, 64). Each run is the report's 400,000
//! operations; its throughput goes to stdout.

use benches::contended::{self, Primitive, Workload};
use benches::report::per_sec;

const USAGE: &str = "usage: contended_workload PRIMITIVE TASKS DRAIN_EVERY RUNS [CAP]";
/// Operations per run, as in the report.
const OPS: u64 = 400_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (name, tasks, every, runs, cap) = match args.as_slice() {
        [name, tasks, every, runs] => (name, tasks, every, runs, None),
        [name, tasks, every, runs, cap] => (name, tasks, every, runs, Some(cap)),
        _ => panic!("{USAGE}"),
    };
    let primitive = Primitive::ALL
        .into_iter()
        .find(|p| p.name() == name)
        .unwrap_or_else(|| panic!("unknown primitive {name:?} ({USAGE})"));
    let tasks: usize = tasks.parse().expect(USAGE);
    let every: u64 = every.parse().expect(USAGE);
    let runs: u32 = runs.parse().expect(USAGE);
    let cap: usize = cap.map_or(benches::CAP, |cap| cap.parse().expect(USAGE));
    let workload = Workload {
        tasks,
        ops_per_task: OPS / tasks as u64,
        drain_every: (every != 0).then_some(every),
        cap,
    };
    let rt = benches::multi_thread(2);
    for _ in 0..runs {
        let elapsed = contended::run(&rt, primitive, workload);
        println!("{name} {tasks} tasks: {:.2} Mops/s", per_sec(workload.total_ops(), elapsed, 1e6));
    }
}
