//! Uncontended acquire + release, `try_acquire` and drain on an idle gate,
//! against tokio's `Semaphore` / `RwLock` and async-lock's `RwLock` /
//! `Semaphore`, and the floor (a CAS and a `fetch_sub` on one atomic). The
//! loops live in `benches::uncontended`.

use benches::uncontended::{self, Case};
use criterion::{Criterion, criterion_main};

fn gate_uncontended(c: &mut Criterion) {
    let rt = benches::current_thread();
    let mut group = c.benchmark_group("gate_uncontended");
    for case in Case::ALL {
        group.bench_function(case.name(), |b| {
            b.iter_custom(|iters| uncontended::run(&rt, case, iters));
        });
    }
    group.finish();
}

/// Every benchmark of this file, with criterion's command-line configuration.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    gate_uncontended(&mut criterion);
}

criterion_main!(benches);
