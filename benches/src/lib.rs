//! Benchmarks of `drain-gate` and the cold adapter against their anchors:
//! tokio's `Semaphore` and `RwLock`, async-lock's `RwLock` and `Semaphore`,
//! and signet-cold 0.10's own `ColdStorage` handle.
//!
//! The measurement code lives here, in the library, so that the criterion
//! benches (`benches/*.rs`) and the one-run report (`src/bin/report.rs`)
//! time exactly the same loops. Each module exposes plain functions that run
//! a fixed amount of work and return the time it took (or the latencies it
//! saw); criterion drives them through `iter_custom`, the report with short
//! fixed counts.
//!
//! * [`uncontended`]: one task acquiring and releasing with nobody else
//!   around (the fast paths).
//! * [`contended`]: 2 / 64 / 256 tasks on a 2-worker runtime hammering one
//!   primitive, with and without a drain every M operations.
//! * [`latency`]: how long a drain takes to complete after the last reader
//!   releases, and how long a reader queued behind a drain takes to run once
//!   that drain is dropped.
//! * [`cold`]: the cold adapter's `ColdStorageHandle` against signet-cold
//!   0.10's `ColdStorage` over the same backends (in-memory, SQLite and,
//!   with `DATABASE_URL` set, Postgres), and against the backend called
//!   directly (the ceiling).
//! * [`report`]: the table the report binary prints, plus the machine and
//!   date lines.

pub mod cold;
pub mod contended;
pub mod latency;
pub mod report;
pub mod uncontended;

use tokio::runtime::{Builder, Runtime};

/// The cap every gate and semaphore is built with: signet-cold's read
/// concurrency (`MAX_CONCURRENT_READERS`), and the cold adapter's default.
pub const CAP: usize = 64;

/// A single-threaded tokio runtime with timers, for the uncontended and
/// latency benches.
///
/// # Panics
///
/// If the runtime cannot be built (out of file descriptors, say).
pub fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().expect("build current-thread runtime")
}

/// A multi-threaded tokio runtime with exactly `workers` worker threads.
///
/// # Panics
///
/// If the runtime cannot be built.
pub fn multi_thread(workers: usize) -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("build multi-thread runtime")
}

/// A few arithmetic steps the optimiser cannot remove: the "tiny critical
/// section" run while a permit is held.
#[inline]
pub fn critical_section(seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..4 {
        x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}
