//! Hand-polling helpers: futures are polled with counting wakers, so a test
//! can say exactly who was woken and what a poll returned, with no executor
//! and no sleeps.

#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};

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
