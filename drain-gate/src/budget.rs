//! Executor fairness.
//!
//! A future that is granted at once never returns `Pending`, so a task that
//! loops `acquire().await` and drops the permit would never give its thread
//! back to the executor. Two mechanisms, both checked before anything is
//! taken, so a yield holds no permit:
//!
//! * **Always, on any executor**: every request future counts, per thread,
//!   the requests polled since one last had to wait; after [`BUDGET`] of
//!   them the next request wakes itself and returns `Pending` once. This
//!   needs no runtime hooks and costs one thread-local increment.
//! * **With the `tokio` feature**: each request also spends one unit of
//!   tokio's per-task cooperative budget (`tokio::task::coop::poll_proceed`),
//!   so the gate yields in step with tokio's own resources. A request that
//!   queues instead of being granted gives the unit back.

use std::task::{Context, Poll};

/// Requests a thread may start in a row without waiting before one yields.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const BUDGET: u32 = 128;

/// Permission to try the fast path; say [`Proceed::made_progress`] when it
/// granted something.
pub(crate) struct Proceed {
    #[cfg(all(feature = "tokio", not(loom)))]
    coop: tokio::task::coop::RestoreOnPending,
}

impl Proceed {
    /// The request was granted: the budget unit stays spent.
    #[inline]
    pub(crate) fn made_progress(&self) {
        #[cfg(all(feature = "tokio", not(loom)))]
        self.coop.made_progress();
    }
}

/// `Ready` when a request may go ahead; `Pending` (with the task woken, or
/// rescheduled by tokio) when it must yield first.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<Proceed> {
    if run::should_yield() {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    #[cfg(all(feature = "tokio", not(loom)))]
    {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        Poll::Ready(Proceed { coop })
    }
    #[cfg(not(all(feature = "tokio", not(loom))))]
    Poll::Ready(Proceed {})
}

pub(crate) use run::reset;

#[cfg(not(loom))]
mod run {
    use std::cell::Cell;

    use super::BUDGET;

    thread_local! {
        static RUN: Cell<u32> = const { Cell::new(0) };
    }

    /// Counts one request; `true` when this one must yield first.
    #[inline]
    pub(super) fn should_yield() -> bool {
        RUN.with(|run| {
            let n = run.get();
            if n >= BUDGET {
                run.set(0);
                true
            } else {
                run.set(n + 1);
                false
            }
        })
    }

    /// A request is about to wait: the thread will go back to its executor.
    #[inline]
    pub(crate) fn reset() {
        RUN.with(|run| run.set(0));
    }
}

// loom explores interleavings, not executor starvation; a yield there would
// only add states.
#[cfg(loom)]
mod run {
    pub(super) fn should_yield() -> bool {
        false
    }

    pub(crate) fn reset() {}
}
