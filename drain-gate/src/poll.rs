//! [`PollDrainGate`]: the gate in poll form, for hand-written `Future`,
//! `Stream` and `Service` impls.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_core::Stream;

use crate::error::{AcquireManyError, Closed};
use crate::future::check_permits;
use crate::gate::DrainGate;
use crate::permit::{OwnedDrainGuard, OwnedReadPermit, OwnedReadPermits};
use crate::raw::{Kind, Wait};

/// A [`DrainGate`] handle with `poll_acquire` and `poll_drain`, in the
/// spirit of tokio-util's `PollSemaphore`.
///
/// It keeps its place in the queue between polls, so a `Service::poll_ready`
/// or a hand-written future can call [`poll_acquire`](Self::poll_acquire)
/// until it is ready without allocating a future each time. It holds at most
/// one read request and one drain request at a time; a permit or guard it
/// returns is owned by the caller, and the next poll starts a new request.
///
/// As a [`Stream`] it yields read permits, and ends when the gate closes.
///
/// # Cancel safety
///
/// Dropping a `PollDrainGate` drops its pending requests with the same
/// guarantees as dropping [`DrainGate::acquire`] and [`DrainGate::drain`]
/// futures.
///
/// # Examples
///
/// ```
/// use std::future::poll_fn;
/// use std::sync::Arc;
/// use drain_gate::{DrainGate, PollDrainGate};
///
/// # futures_executor::block_on(async {
/// let mut poll_gate = PollDrainGate::new(Arc::new(DrainGate::new(2)));
/// let permit = poll_fn(|cx| poll_gate.poll_acquire(cx)).await.unwrap();
/// assert_eq!(poll_gate.gate().readers_in_flight(), 1);
/// drop(permit);
/// let guard = poll_fn(|cx| poll_gate.poll_drain(cx)).await.unwrap();
/// assert!(poll_gate.gate().is_drain_held());
/// # drop(guard);
/// # });
/// ```
pub struct PollDrainGate {
    gate: Arc<DrainGate>,
    read: Wait,
    /// Permits the pending read request asks for.
    read_permits: usize,
    drain: Wait,
}

impl PollDrainGate {
    /// Wraps a shared gate.
    pub fn new(gate: Arc<DrainGate>) -> Self {
        PollDrainGate { gate, read: Wait::Init, read_permits: 1, drain: Wait::Init }
    }

    /// The gate.
    pub fn gate(&self) -> &Arc<DrainGate> {
        &self.gate
    }

    /// Drops any pending requests and returns the gate.
    pub fn into_inner(self) -> Arc<DrainGate> {
        self.gate.clone()
    }

    /// Polls for a read permit, queueing on the first call.
    ///
    /// Returns `Ready(Ok(permit))` once granted, and starts a fresh request
    /// on the next call. The same fairness, fast path and executor-fairness
    /// yield as [`DrainGate::acquire`] apply.
    ///
    /// # Errors
    ///
    /// `Ready(Err(Closed))` once the gate is closed.
    ///
    /// # Cancel safety
    ///
    /// Not an async fn, but the same guarantee: a pending request keeps its
    /// place in the queue between calls, and stopping the calls without
    /// dropping the `PollDrainGate` keeps it queued (and, once granted,
    /// holding what it was granted: see
    /// [Fairness](DrainGate#fairness)). Dropping the `PollDrainGate` cancels
    /// it as dropping an [`acquire`](DrainGate::acquire) future does.
    pub fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Result<OwnedReadPermit, Closed>> {
        ready!(self.poll_read(1, cx))?;
        Poll::Ready(Ok(OwnedReadPermit::new(self.gate.clone())))
    }

    /// Polls for `permits` read permits at once, queueing on the first call:
    /// the poll form of [`DrainGate::acquire_many_owned`].
    ///
    /// A pending request keeps its place only while it is polled with the
    /// same `permits`: polling with another number drops it (giving back
    /// anything granted to it) and queues a new request at the back. A
    /// pending [`poll_acquire`](Self::poll_acquire) is a request for 1.
    ///
    /// # Errors
    ///
    /// `Ready(Err(AcquireManyError::Invalid))` if `permits` is 0 or above
    /// the cap (a pending request is left as it was);
    /// `Ready(Err(AcquireManyError::Closed))` once the gate is closed.
    ///
    /// # Cancel safety
    ///
    /// As [`poll_acquire`](Self::poll_acquire).
    pub fn poll_acquire_many(
        &mut self,
        cx: &mut Context<'_>,
        permits: usize,
    ) -> Poll<Result<OwnedReadPermits, AcquireManyError>> {
        check_permits(&self.gate, permits)?;
        ready!(self.poll_read(permits, cx))?;
        Poll::Ready(Ok(OwnedReadPermits::new(self.gate.clone(), permits)))
    }

    fn poll_read(&mut self, permits: usize, cx: &mut Context<'_>) -> Poll<Result<(), Closed>> {
        if permits != self.read_permits {
            self.gate.raw.cancel(Kind::Read, &mut self.read);
            self.read = Wait::Init;
            self.read_permits = permits;
        }
        let result = ready!(self.gate.raw.poll_request(Kind::Read, permits, &mut self.read, cx));
        self.read = Wait::Init;
        Poll::Ready(result)
    }

    /// Polls for the drain guard, queueing on the first call.
    ///
    /// Returns `Ready(Ok(guard))` once granted, and starts a fresh request on
    /// the next call. The same fairness as [`DrainGate::drain`] applies.
    ///
    /// # Errors
    ///
    /// `Ready(Err(Closed))` once the gate is closed.
    ///
    /// # Cancel safety
    ///
    /// As [`poll_acquire`](Self::poll_acquire), for the drain request:
    /// dropping the `PollDrainGate` cancels it as dropping a
    /// [`drain`](DrainGate::drain) future does.
    pub fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Result<OwnedDrainGuard, Closed>> {
        let result = ready!(self.gate.raw.poll_request(Kind::Drain, 1, &mut self.drain, cx));
        self.drain = Wait::Init;
        Poll::Ready(result.map(|()| OwnedDrainGuard::new(self.gate.clone())))
    }
}

impl Clone for PollDrainGate {
    /// A new handle on the same gate, with no request of its own.
    fn clone(&self) -> Self {
        PollDrainGate::new(self.gate.clone())
    }
}

impl Drop for PollDrainGate {
    fn drop(&mut self) {
        self.gate.raw.cancel(Kind::Read, &mut self.read);
        self.gate.raw.cancel(Kind::Drain, &mut self.drain);
    }
}

impl Stream for PollDrainGate {
    type Item = OwnedReadPermit;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<OwnedReadPermit>> {
        Poll::Ready(ready!(self.get_mut().poll_acquire(cx)).ok())
    }
}

impl fmt::Debug for PollDrainGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollDrainGate")
            .field("gate", &self.gate)
            .field("read", &self.read)
            .field("drain", &self.drain)
            .finish()
    }
}

impl AsRef<DrainGate> for PollDrainGate {
    fn as_ref(&self) -> &DrainGate {
        &self.gate
    }
}
