//! Hand-polling helpers: futures are polled with counting wakers, so a test
//! can say exactly who was woken and what a poll returned, with no executor
//! and no sleeps.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use drain_gate::{DrainGate, OwnedReadPermit};

/// A waker that counts how often it was woken.
pub struct Probe {
    count: Arc<Count>,
    waker: Waker,
}

struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Probe {
    pub fn new() -> Self {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        Probe { count, waker }
    }

    /// Times woken so far.
    pub fn wakes(&self) -> usize {
        self.count.0.load(Ordering::SeqCst)
    }

    pub fn woken(&self) -> bool {
        self.wakes() > 0
    }

    /// Polls `fut` once with this probe's waker.
    pub fn poll<F: Future + Unpin>(&self, fut: &mut F) -> Poll<F::Output> {
        Pin::new(fut).poll(&mut Context::from_waker(&self.waker))
    }
}

/// Polls once; panics unless the future is pending.
#[track_caller]
pub fn pending<F: Future + Unpin>(fut: &mut F) -> Probe {
    let probe = Probe::new();
    assert!(probe.poll(fut).is_pending(), "expected Pending");
    probe
}

/// Polls once; panics unless the future is ready, and returns its output.
#[track_caller]
pub fn ready<F: Future + Unpin>(fut: &mut F) -> F::Output {
    match Probe::new().poll(fut) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("expected Ready"),
    }
}

/// A waker that runs gate code (case G11): its `drop` releases `permit`, an
/// owned permit of the gate (as dropping a task's last waker frees the task
/// and every permit its future owned), and its `wake` calls `try_acquire`.
struct Reentrant {
    gate: Arc<DrainGate>,
    permit: std::sync::Mutex<Option<OwnedReadPermit>>,
}

impl Wake for Reentrant {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        drop(self.gate.try_acquire());
    }
}

impl Drop for Reentrant {
    fn drop(&mut self) {
        drop(self.permit.get_mut().unwrap_or_else(|e| e.into_inner()).take());
    }
}

/// Polls `fut` once with a re-entrant waker owning `permit`, then drops this
/// handle to the waker: the gate's clone, if it kept one, is the last.
pub fn poll_reentrant<F: Future + Unpin>(
    fut: &mut F,
    gate: &Arc<DrainGate>,
    permit: OwnedReadPermit,
) -> Poll<F::Output> {
    let waker = Waker::from(Arc::new(Reentrant {
        gate: gate.clone(),
        permit: std::sync::Mutex::new(Some(permit)),
    }));
    Pin::new(fut).poll(&mut Context::from_waker(&waker))
}
