//! Hand-off latencies on a current-thread runtime, where the only work
//! between the two timestamps is the primitive's own hand-off plus one
//! task switch (the same switch for every primitive):
//!
//! * [`release_to_drain`]: a reader holds the last permit, a drain (in
//!   another task) waits for it; the clock runs from just before the reader
//!   drops its permit to the moment the drain task holds its guard.
//! * [`cancel_to_reader`]: a reader holds a permit, a drain is pending, a
//!   second reader (in another task) is queued behind the drain; the clock
//!   runs from just before the pending drain is dropped to the moment the
//!   queued reader holds its permit.
//!
//! Set-up (spawning, queueing) happens before the clock starts on every
//! iteration; each function returns one sample per iteration, so callers can
//! take a median (robust to the odd preemption on a busy machine) or a sum
//! (criterion's `iter_custom`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use drain_gate::DrainGate;
use tokio::runtime::Runtime;

use crate::CAP;

/// The primitive whose hand-off is timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    /// `DrainGate`: `acquire_owned` / `drain_owned`.
    Gate,
    /// tokio `Semaphore`: `acquire_owned` / `acquire_many_owned(CAP)`.
    Semaphore,
    /// tokio `RwLock::with_max_readers(_, CAP)`: `read_owned` / `write_owned`.
    TokioRwLock,
    /// async-lock `RwLock`: `read_arc` / `write_arc`.
    AsyncRwLock,
}

impl Subject {
    /// Every subject, ours first.
    pub const ALL: [Subject; 4] =
        [Subject::Gate, Subject::Semaphore, Subject::TokioRwLock, Subject::AsyncRwLock];

    /// A short name for bench ids and the report.
    pub fn name(self) -> &'static str {
        match self {
            Subject::Gate => "gate",
            Subject::Semaphore => "tokio_semaphore",
            Subject::TokioRwLock => "tokio_rwlock",
            Subject::AsyncRwLock => "async_lock_rwlock",
        }
    }
}

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// A held read permit or drain guard, type-erased; dropping it releases.
type Held = Box<dyn Send>;

#[derive(Clone)]
enum Prim {
    Gate(Arc<DrainGate>),
    Semaphore(Arc<tokio::sync::Semaphore>),
    TokioRwLock(Arc<tokio::sync::RwLock<()>>),
    AsyncRwLock(Arc<async_lock::RwLock<()>>),
}

impl Prim {
    fn new(subject: Subject) -> Self {
        let cap32 = u32::try_from(CAP).expect("cap fits u32");
        match subject {
            Subject::Gate => Prim::Gate(Arc::new(DrainGate::new(CAP))),
            Subject::Semaphore => Prim::Semaphore(Arc::new(tokio::sync::Semaphore::new(CAP))),
            Subject::TokioRwLock => {
                Prim::TokioRwLock(Arc::new(tokio::sync::RwLock::with_max_readers((), cap32)))
            }
            Subject::AsyncRwLock => Prim::AsyncRwLock(Arc::new(async_lock::RwLock::new(()))),
        }
    }

    fn read(&self) -> BoxFut<Held> {
        match self.clone() {
            Prim::Gate(g) => {
                Box::pin(async move { Box::new(g.acquire_owned().await.expect("open")) as Held })
            }
            Prim::Semaphore(s) => {
                Box::pin(async move { Box::new(s.acquire_owned().await.expect("open")) as Held })
            }
            Prim::TokioRwLock(l) => Box::pin(async move { Box::new(l.read_owned().await) as Held }),
            Prim::AsyncRwLock(l) => Box::pin(async move { Box::new(l.read_arc().await) as Held }),
        }
    }

    fn drain(&self) -> BoxFut<Held> {
        let cap32 = u32::try_from(CAP).expect("cap fits u32");
        match self.clone() {
            Prim::Gate(g) => {
                Box::pin(async move { Box::new(g.drain_owned().await.expect("open")) as Held })
            }
            Prim::Semaphore(s) => Box::pin(async move {
                Box::new(s.acquire_many_owned(cap32).await.expect("open")) as Held
            }),
            Prim::TokioRwLock(l) => {
                Box::pin(async move { Box::new(l.write_owned().await) as Held })
            }
            Prim::AsyncRwLock(l) => Box::pin(async move { Box::new(l.write_arc().await) as Held }),
        }
    }
}

/// Polls `fut` once; `true` if it completed (its output is dropped).
async fn poll_once<T>(fut: &mut BoxFut<T>) -> bool {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx).is_ready())).await
}

/// Lets the other tasks on this current-thread runtime run until they block.
async fn settle() {
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
}

/// `iters` samples of the time from the last reader's release to the
/// waiting drain holding its guard. Run on a current-thread runtime.
///
/// # Panics
///
/// If the drain completes before the reader releases (a broken primitive).
pub fn release_to_drain(rt: &Runtime, subject: Subject, iters: u64) -> Vec<Duration> {
    rt.block_on(async move {
        let prim = Prim::new(subject);
        let mut samples = Vec::with_capacity(usize::try_from(iters).unwrap_or(0));
        for _ in 0..iters {
            let reader = prim.read().await;
            let drain = prim.drain();
            let waiter = tokio::spawn(async move {
                let guard = drain.await;
                let at = Instant::now();
                drop(guard);
                at
            });
            settle().await;
            assert!(!waiter.is_finished(), "drain completed while a reader held a permit");
            let start = Instant::now();
            drop(reader);
            let end = waiter.await.expect("drain task panicked");
            samples.push(end.saturating_duration_since(start));
        }
        samples
    })
}

/// `iters` samples of the time from a pending drain being dropped to the
/// reader queued behind it holding its permit. Run on a current-thread
/// runtime.
///
/// # Panics
///
/// If the drain or the queued reader completes early (a broken primitive).
pub fn cancel_to_reader(rt: &Runtime, subject: Subject, iters: u64) -> Vec<Duration> {
    rt.block_on(async move {
        let prim = Prim::new(subject);
        let mut samples = Vec::with_capacity(usize::try_from(iters).unwrap_or(0));
        for _ in 0..iters {
            let holder = prim.read().await;
            let mut drain = prim.drain();
            assert!(!poll_once(&mut drain).await, "drain granted while a reader held a permit");
            let read = prim.read();
            let queued = tokio::spawn(async move {
                let permit = read.await;
                let at = Instant::now();
                drop(permit);
                at
            });
            settle().await;
            assert!(!queued.is_finished(), "reader overtook a pending drain");
            let start = Instant::now();
            drop(drain);
            let end = queued.await.expect("reader task panicked");
            samples.push(end.saturating_duration_since(start));
            drop(holder);
        }
        samples
    })
}
