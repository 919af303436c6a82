//! One task, nobody else around: acquire + release, `try_acquire`, and a
//! drain on an idle gate, against tokio's and async-lock's primitives, and
//! against the floor any gate built on one state word has to pay: the two
//! atomic read-modify-writes of an acquire + release, with nothing around
//! them ([`Case::AtomicFloor`]).
//!
//! Every case runs inside [`Runtime::block_on`] on a current-thread runtime,
//! so futures are polled the way an application polls them (tokio's
//! cooperative budget is active for tokio's primitives, drain-gate's own
//! 128-request budget for ours; both yield once every 128 requests). The
//! primitive is built before the clock starts; the loop body is exactly one
//! acquire and one release.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use drain_gate::DrainGate;
use tokio::runtime::Runtime;

use crate::CAP;

/// What one uncontended case times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Case {
    /// `DrainGate::acquire().await`, permit dropped.
    GateAcquire,
    /// `Arc<DrainGate>::acquire_owned().await` (one `Arc` clone), permit dropped.
    GateAcquireOwned,
    /// `DrainGate::try_acquire()`, permit dropped.
    GateTryAcquire,
    /// `DrainGate::drain().await` on an idle gate, guard dropped.
    GateDrainIdle,
    /// tokio `Semaphore::acquire().await`.
    SemAcquire,
    /// tokio `Semaphore::acquire_owned().await` (one `Arc` clone).
    SemAcquireOwned,
    /// tokio `Semaphore::try_acquire()`.
    SemTryAcquire,
    /// tokio `Semaphore::acquire_many(CAP).await` on an idle semaphore: the
    /// drain signet-cold 0.10 does before every write.
    SemAcquireManyCap,
    /// tokio `RwLock::with_max_readers(_, CAP)`, `read().await`.
    TokioRwLockRead,
    /// tokio `RwLock::with_max_readers(_, CAP)`, `write().await` on an idle lock.
    TokioRwLockWrite,
    /// async-lock `RwLock::read().await`.
    AsyncRwLockRead,
    /// async-lock `RwLock::write().await` on an idle lock.
    AsyncRwLockWrite,
    /// async-lock `Semaphore::acquire().await`.
    AsyncSemAcquire,
    /// async-lock `Semaphore::acquire_arc().await`.
    AsyncSemAcquireArc,
    /// The floor of the uncontended path: a `compare_exchange` then a
    /// `fetch_sub` on one `AtomicUsize` (what an uncontended acquire and its
    /// release do to the gate's state word, one cache line), in the same
    /// timed loop, with no future, budget or permit around them.
    AtomicFloor,
}

impl Case {
    /// Every case, ours first, the floor last.
    pub const ALL: [Case; 15] = [
        Case::GateAcquire,
        Case::GateAcquireOwned,
        Case::GateTryAcquire,
        Case::GateDrainIdle,
        Case::SemAcquire,
        Case::SemAcquireOwned,
        Case::SemTryAcquire,
        Case::SemAcquireManyCap,
        Case::TokioRwLockRead,
        Case::TokioRwLockWrite,
        Case::AsyncRwLockRead,
        Case::AsyncRwLockWrite,
        Case::AsyncSemAcquire,
        Case::AsyncSemAcquireArc,
        Case::AtomicFloor,
    ];

    /// A short name for bench ids and the report.
    pub fn name(self) -> &'static str {
        match self {
            Case::GateAcquire => "gate/acquire",
            Case::GateAcquireOwned => "gate/acquire_owned",
            Case::GateTryAcquire => "gate/try_acquire",
            Case::GateDrainIdle => "gate/drain_idle",
            Case::SemAcquire => "tokio_semaphore/acquire",
            Case::SemAcquireOwned => "tokio_semaphore/acquire_owned",
            Case::SemTryAcquire => "tokio_semaphore/try_acquire",
            Case::SemAcquireManyCap => "tokio_semaphore/acquire_many_cap",
            Case::TokioRwLockRead => "tokio_rwlock/read",
            Case::TokioRwLockWrite => "tokio_rwlock/write_idle",
            Case::AsyncRwLockRead => "async_lock_rwlock/read",
            Case::AsyncRwLockWrite => "async_lock_rwlock/write_idle",
            Case::AsyncSemAcquire => "async_lock_semaphore/acquire",
            Case::AsyncSemAcquireArc => "async_lock_semaphore/acquire_arc",
            Case::AtomicFloor => "floor/cas+fetch_sub",
        }
    }
}

/// Runs `iters` acquire + release pairs of `case` on `rt` and returns the
/// time the loop took (construction excluded).
///
/// # Panics
///
/// If a primitive reports itself closed or busy, which cannot happen here.
pub fn run(rt: &Runtime, case: Case, iters: u64) -> Duration {
    rt.block_on(async move {
        match case {
            Case::GateAcquire => {
                let gate = DrainGate::new(CAP);
                timed(iters, async || drop(black_box(gate.acquire().await.unwrap()))).await
            }
            Case::GateAcquireOwned => {
                let gate = Arc::new(DrainGate::new(CAP));
                timed(iters, async || drop(black_box(gate.clone().acquire_owned().await.unwrap())))
                    .await
            }
            Case::GateTryAcquire => {
                let gate = DrainGate::new(CAP);
                timed(iters, async || drop(black_box(gate.try_acquire().unwrap()))).await
            }
            Case::GateDrainIdle => {
                let gate = DrainGate::new(CAP);
                timed(iters, async || drop(black_box(gate.drain().await.unwrap()))).await
            }
            Case::SemAcquire => {
                let sem = tokio::sync::Semaphore::new(CAP);
                timed(iters, async || drop(black_box(sem.acquire().await.unwrap()))).await
            }
            Case::SemAcquireOwned => {
                let sem = Arc::new(tokio::sync::Semaphore::new(CAP));
                timed(iters, async || drop(black_box(sem.clone().acquire_owned().await.unwrap())))
                    .await
            }
            Case::SemTryAcquire => {
                let sem = tokio::sync::Semaphore::new(CAP);
                timed(iters, async || drop(black_box(sem.try_acquire().unwrap()))).await
            }
            Case::SemAcquireManyCap => {
                let sem = tokio::sync::Semaphore::new(CAP);
                let cap = u32::try_from(CAP).expect("cap fits u32");
                timed(iters, async || drop(black_box(sem.acquire_many(cap).await.unwrap()))).await
            }
            Case::TokioRwLockRead => {
                let lock = tokio_rwlock();
                timed(iters, async || drop(black_box(lock.read().await))).await
            }
            Case::TokioRwLockWrite => {
                let lock = tokio_rwlock();
                timed(iters, async || drop(black_box(lock.write().await))).await
            }
            Case::AsyncRwLockRead => {
                let lock = async_lock::RwLock::new(());
                timed(iters, async || drop(black_box(lock.read().await))).await
            }
            Case::AsyncRwLockWrite => {
                let lock = async_lock::RwLock::new(());
                timed(iters, async || drop(black_box(lock.write().await))).await
            }
            Case::AsyncSemAcquire => {
                let sem = async_lock::Semaphore::new(CAP);
                timed(iters, async || drop(black_box(sem.acquire().await))).await
            }
            Case::AsyncSemAcquireArc => {
                let sem = Arc::new(async_lock::Semaphore::new(CAP));
                timed(iters, async || drop(black_box(sem.acquire_arc().await))).await
            }
            Case::AtomicFloor => {
                let word = AtomicUsize::new(0);
                timed(iters, async || cas_then_fetch_sub(&word)).await
            }
        }
    })
}

/// One uncontended acquire + release reduced to its atomics: a
/// `compare_exchange` from idle (0 → 1, as `try_acquire`'s first guess) and
/// a `fetch_sub` back to 0, with the orderings the gate uses. `black_box`
/// hides the word and both results, so neither operation folds away.
#[inline]
pub fn cas_then_fetch_sub(word: &AtomicUsize) {
    let word = black_box(word);
    black_box(word.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok());
    black_box(word.fetch_sub(1, Ordering::Release));
}

fn tokio_rwlock() -> tokio::sync::RwLock<()> {
    tokio::sync::RwLock::with_max_readers((), u32::try_from(CAP).expect("cap fits u32"))
}

async fn timed(iters: u64, mut op: impl AsyncFnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        op().await;
    }
    start.elapsed()
}
