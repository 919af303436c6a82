//! Many tasks on a 2-worker runtime, each doing K acquire/release pairs
//! around a tiny critical section ([`critical_section`]), optionally
//! replacing every M-th acquire with a drain (or the anchor's equivalent:
//! `acquire_many(cap)` on a semaphore, `write()` on an `RwLock`).
//!
//! One [`run`] spawns the tasks, waits for all of them and returns the wall
//! time from before the first spawn to after the last join; throughput is
//! `tasks * ops_per_task / time`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use drain_gate::DrainGate;
use tokio::runtime::Runtime;

#[cfg(doc)]
use crate::CAP;
use crate::critical_section;

/// The primitive under contention.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// `DrainGate`: `acquire`, drain with `drain`.
    Gate,
    /// tokio `Semaphore`: `acquire`, drain with `acquire_many(cap)`.
    Semaphore,
    /// tokio `RwLock::with_max_readers(_, cap)`: `read`, drain with `write`.
    TokioRwLock,
    /// async-lock `RwLock`: `read`, drain with `write`.
    AsyncRwLock,
    /// async-lock `Semaphore`: `acquire`; it has no many-permit acquire, so
    /// it is only run without drains.
    AsyncSemaphore,
}

impl Primitive {
    /// Every primitive, ours first.
    pub const ALL: [Primitive; 5] = [
        Primitive::Gate,
        Primitive::Semaphore,
        Primitive::TokioRwLock,
        Primitive::AsyncRwLock,
        Primitive::AsyncSemaphore,
    ];

    /// A short name for bench ids and the report.
    pub fn name(self) -> &'static str {
        match self {
            Primitive::Gate => "gate",
            Primitive::Semaphore => "tokio_semaphore",
            Primitive::TokioRwLock => "tokio_rwlock",
            Primitive::AsyncRwLock => "async_lock_rwlock",
            Primitive::AsyncSemaphore => "async_lock_semaphore",
        }
    }

    /// Whether this primitive has a drain to run every M operations.
    pub fn can_drain(self) -> bool {
        self != Primitive::AsyncSemaphore
    }
}

/// One contended workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Workload {
    /// Tasks spawned, all hitting the same primitive.
    pub tasks: usize,
    /// Acquire/release pairs (or drains) each task does.
    pub ops_per_task: u64,
    /// Every this many operations a task drains instead of acquiring.
    pub drain_every: Option<u64>,
    /// Read permits of the capped primitives (the gate, both semaphores,
    /// tokio's `RwLock`); async-lock's `RwLock` has no reader cap. The
    /// report uses [`CAP`] and, to measure what the gate's batch bound
    /// costs, the task count.
    pub cap: usize,
}

impl Workload {
    /// Operations in one run: `tasks * ops_per_task`.
    pub fn total_ops(&self) -> u64 {
        self.tasks as u64 * self.ops_per_task
    }
}

/// Runs `workload` once on `rt` (which should have 2 workers) and returns the
/// wall time, spawns and joins included.
///
/// # Panics
///
/// If `workload.drain_every` is set for [`Primitive::AsyncSemaphore`], or
/// a task panics.
pub fn run(rt: &Runtime, primitive: Primitive, workload: Workload) -> Duration {
    assert!(
        workload.drain_every.is_none() || primitive.can_drain(),
        "{} has no drain",
        primitive.name()
    );
    let Workload { tasks, ops_per_task: k, drain_every, cap } = workload;
    let m = drain_every.unwrap_or(u64::MAX);
    rt.block_on(async move {
        let shared = Shared::new(primitive, cap);
        let start = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let shared = shared.clone();
                tokio::spawn(async move { shared.work(t as u64, k, m, cap).await })
            })
            .collect();
        let mut sum = 0u64;
        for handle in handles {
            sum = sum.wrapping_add(handle.await.expect("worker task panicked"));
        }
        let elapsed = start.elapsed();
        black_box(sum);
        elapsed
    })
}

#[derive(Clone)]
enum Shared {
    Gate(Arc<DrainGate>),
    Semaphore(Arc<tokio::sync::Semaphore>),
    TokioRwLock(Arc<tokio::sync::RwLock<()>>),
    AsyncRwLock(Arc<async_lock::RwLock<()>>),
    AsyncSemaphore(Arc<async_lock::Semaphore>),
}

impl Shared {
    fn new(primitive: Primitive, cap: usize) -> Self {
        let cap32 = u32::try_from(cap).expect("cap fits u32");
        match primitive {
            Primitive::Gate => Shared::Gate(Arc::new(DrainGate::new(cap))),
            Primitive::Semaphore => Shared::Semaphore(Arc::new(tokio::sync::Semaphore::new(cap))),
            Primitive::TokioRwLock => {
                Shared::TokioRwLock(Arc::new(tokio::sync::RwLock::with_max_readers((), cap32)))
            }
            Primitive::AsyncRwLock => Shared::AsyncRwLock(Arc::new(async_lock::RwLock::new(()))),
            Primitive::AsyncSemaphore => {
                Shared::AsyncSemaphore(Arc::new(async_lock::Semaphore::new(cap)))
            }
        }
    }

    /// `k` operations; every `m`-th is a drain. Returns a checksum so the
    /// critical sections are not optimised away.
    async fn work(&self, seed: u64, k: u64, m: u64, cap: usize) -> u64 {
        let cap32 = u32::try_from(cap).expect("cap fits u32");
        let mut acc = seed;
        for i in 1..=k {
            let drain = i % m == 0;
            match (self, drain) {
                (Shared::Gate(g), false) => {
                    let _p = g.acquire().await.expect("gate closed");
                    acc = critical_section(acc);
                }
                (Shared::Gate(g), true) => {
                    let _d = g.drain().await.expect("gate closed");
                    acc = critical_section(acc);
                }
                (Shared::Semaphore(s), false) => {
                    let _p = s.acquire().await.expect("semaphore closed");
                    acc = critical_section(acc);
                }
                (Shared::Semaphore(s), true) => {
                    let _d = s.acquire_many(cap32).await.expect("semaphore closed");
                    acc = critical_section(acc);
                }
                (Shared::TokioRwLock(l), false) => {
                    let _p = l.read().await;
                    acc = critical_section(acc);
                }
                (Shared::TokioRwLock(l), true) => {
                    let _d = l.write().await;
                    acc = critical_section(acc);
                }
                (Shared::AsyncRwLock(l), false) => {
                    let _p = l.read().await;
                    acc = critical_section(acc);
                }
                (Shared::AsyncRwLock(l), true) => {
                    let _d = l.write().await;
                    acc = critical_section(acc);
                }
                (Shared::AsyncSemaphore(s), _) => {
                    let _p = s.acquire().await;
                    acc = critical_section(acc);
                }
            }
        }
        acc
    }
}
