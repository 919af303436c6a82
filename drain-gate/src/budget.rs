//! Executor fairness without a runtime.
//!
//! A future that is granted at once never returns `Pending`, so a task that
//! loops `acquire().await` and drops the permit would never give its thread
//! back to the executor. Every request future therefore counts, per thread,
//! the requests polled since one last had to wait; after [`BUDGET`] of them
//! the next request wakes itself and returns `Pending` once, before taking
//! anything, so the yield holds no permit. This needs no runtime hooks and
//! costs one thread-local increment per request.

/// Requests a thread may start in a row without waiting before one yields.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const BUDGET: u32 = 128;

#[cfg(not(loom))]
mod imp {
    use std::cell::Cell;

    use super::BUDGET;

    thread_local! {
        static RUN: Cell<u32> = const { Cell::new(0) };
    }

    /// Counts one request; `true` when this one must yield first.
    #[inline]
    pub(crate) fn should_yield() -> bool {
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
mod imp {
    pub(crate) fn should_yield() -> bool {
        false
    }

    pub(crate) fn reset() {}
}

pub(crate) use imp::{reset, should_yield};
