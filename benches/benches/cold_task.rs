//! The cold adapter's `ColdStorageHandle` against signet-cold 0.10's own
//! `ColdStorage` handle over `MemColdBackend`, SQLite and (with
//! `DATABASE_URL` set) Postgres: uncached reads at
//! concurrency 1 / 64 / 256 / 1024, cached reads, append latency while 256
//! readers flood, and a burst of 64 appends. The workloads live in
//! `benches::cold`; the p50/p99 and drain counts are printed by the report
//! binary (criterion reports the mean time per append / per burst here).

use std::time::Duration;

use benches::cold::{self, Backend, Fixture, Side, Writes};
use criterion::{Criterion, Throughput, criterion_main};

const BLOCKS: u64 = 1024;

fn cold_task(c: &mut Criterion) {
    cold::install_drain_counter();
    let rt = benches::multi_thread(2);
    let mut backends = vec![Backend::Mem, Backend::Sqlite];
    if cold_testkit::postgres::database_url().is_some() {
        backends.push(Backend::Postgres);
    } else {
        eprintln!("cold_task: DATABASE_URL not set, Postgres skipped");
    }
    for backend in backends {
        let mut fixtures: Vec<(Side, Fixture)> = [Side::Ours, Side::Signet]
            .into_iter()
            .map(|side| (side, rt.block_on(Fixture::new(side, backend, BLOCKS))))
            .collect();
        let reads: u64 = match backend {
            Backend::Mem => 4_096,
            Backend::Sqlite | Backend::Postgres => 512,
        };

        for concurrency in [1usize, 64, 256, 1024] {
            let mut group = c.benchmark_group(format!(
                "cold_task/{}/uncached_reads_c{concurrency}",
                backend.name()
            ));
            group.throughput(Throughput::Elements(reads));
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(3));
            for (side, fx) in &fixtures {
                group.bench_function(side.name(), |b| {
                    b.iter_custom(|iters| {
                        (0..iters).map(|_| cold::uncached_reads(&rt, fx, concurrency, reads)).sum()
                    });
                });
            }
            group.finish();
        }

        let mut group = c.benchmark_group(format!("cold_task/{}/cached_reads_c64", backend.name()));
        group.throughput(Throughput::Elements(reads * 4));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(3));
        for (side, fx) in &fixtures {
            group.bench_function(side.name(), |b| {
                b.iter_custom(|iters| {
                    (0..iters).map(|_| cold::cached_reads(&rt, fx, 64, reads * 4)).sum()
                });
            });
        }
        group.finish();

        let mut group =
            c.benchmark_group(format!("cold_task/{}/append_under_256_readers", backend.name()));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        for (side, fx) in &mut fixtures {
            group.bench_function(side.name(), |b| {
                b.iter_custom(|iters| {
                    let n = usize::try_from(iters).expect("iteration count fits usize");
                    cold::writes_under_flood(&rt, fx, 256, Writes::Sequential(n))
                        .latencies
                        .iter()
                        .sum()
                });
            });
        }
        group.finish();

        let mut group = c.benchmark_group(format!("cold_task/{}/burst_64_appends", backend.name()));
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(5));
        for (side, fx) in &mut fixtures {
            let mut drains = (0u64, 0u64);
            group.bench_function(side.name(), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let r = cold::writes_under_flood(&rt, fx, 256, Writes::Burst(64));
                        drains.0 += r.drain_waits.len() as u64;
                        drains.1 += 1;
                        total += r.total;
                    }
                    total
                });
            });
            eprintln!(
                "cold_task/{}/burst_64_appends/{}: {:.1} drains per burst",
                backend.name(),
                side.name(),
                drains.0 as f64 / drains.1.max(1) as f64
            );
        }
        group.finish();
    }
}

/// Every benchmark of this file, with criterion's command-line configuration.
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    cold_task(&mut criterion);
}

criterion_main!(benches);
