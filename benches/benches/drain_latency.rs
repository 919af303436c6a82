//! Drain hand-off latencies on a current-thread runtime: from the last
//! reader's release to the waiting drain holding its guard, and from a
//! pending drain being dropped to the reader queued behind it running. The
//! hand-offs live in `benches::latency`.

use benches::latency::{self, Subject};
use criterion::{Criterion, criterion_main};

fn drain_latency(c: &mut Criterion) {
    let rt = benches::current_thread();
    let mut group = c.benchmark_group("drain_latency/release_to_drain");
    for subject in Subject::ALL {
        group.bench_function(subject.name(), |b| {
            b.iter_custom(|iters| latency::release_to_drain(&rt, subject, iters).iter().sum());
        });
    }
    group.finish();

    let mut group = c.benchmark_group("drain_latency/cancel_to_reader");
    for subject in Subject::ALL {
        group.bench_function(subject.name(), |b| {
            b.iter_custom(|iters| latency::cancel_to_reader(&rt, subject, iters).iter().sum());
        });
    }
    group.finish();
}

/// Every benchmark of this file, with criterion's command-line configuration.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    drain_latency(&mut criterion);
}

criterion_main!(benches);
