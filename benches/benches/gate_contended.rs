//! 2 / 64 / 256 tasks on a 2-worker tokio runtime, each doing acquire /
//! release pairs around a tiny critical section, with and without a drain
//! every 100 operations; throughput. The workload lives in
//! `benches::contended`.

use std::time::Duration;

use benches::contended::{self, Primitive, Workload};
use criterion::{Criterion, Throughput, criterion_main};

const TOTAL_OPS: u64 = 128_000;
const DRAIN_EVERY: u64 = 100;

fn gate_contended(c: &mut Criterion) {
    let rt = benches::multi_thread(2);
    for drain_every in [None, Some(DRAIN_EVERY)] {
        for tasks in [2usize, 64, 256] {
            let workload = Workload {
                tasks,
                ops_per_task: TOTAL_OPS / tasks as u64,
                drain_every,
                cap: benches::CAP,
            };
            let name = match drain_every {
                None => format!("gate_contended/{tasks}_tasks"),
                Some(m) => format!("gate_contended/{tasks}_tasks_drain_every_{m}"),
            };
            let mut group = c.benchmark_group(name);
            group.throughput(Throughput::Elements(workload.total_ops()));
            group.sample_size(20);
            group.measurement_time(Duration::from_secs(3));
            for primitive in Primitive::ALL {
                if drain_every.is_some() && !primitive.can_drain() {
                    continue;
                }
                group.bench_function(primitive.name(), |b| {
                    b.iter_custom(|iters| {
                        (0..iters).map(|_| contended::run(&rt, primitive, workload)).sum()
                    });
                });
            }
            group.finish();
        }
    }
}

/// Every benchmark of this file, with criterion's command-line configuration.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    gate_contended(&mut criterion);
}

criterion_main!(benches);
