//! The futures the gate hands out. Each is `Unpin` (the queue refers to its
//! slot by index, never by address) and `Send`, and cancel-safe: its `Drop`
//! gives back whatever it was queued for or granted.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::error::{AcquireManyError, Closed, InvalidPermits};
use crate::gate::DrainGate;
use crate::permit::{
    DrainGuard, OwnedDrainGuard, OwnedReadPermit, OwnedReadPermits, ReadPermit, ReadPermits,
};
use crate::raw::{Kind, Wait};

macro_rules! request_future {
    (
        $(#[$meta:meta])*
        $name:ident<'a>, $kind:expr, $output:ident
    ) => {
        $(#[$meta])*
        #[must_use = "futures do nothing unless polled"]
        pub struct $name<'a> {
            gate: &'a DrainGate,
            wait: Wait,
        }

        impl<'a> $name<'a> {
            #[inline]
            pub(crate) fn new(gate: &'a DrainGate) -> Self {
                $name { gate, wait: Wait::Init }
            }
        }

        impl<'a> Future for $name<'a> {
            type Output = Result<$output<'a>, Closed>;

            #[inline]
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let this = self.get_mut();
                ready!(this.gate.raw.poll_request($kind, 1, &mut this.wait, cx))?;
                Poll::Ready(Ok($output::new(this.gate)))
            }
        }

        impl Drop for $name<'_> {
            #[inline]
            fn drop(&mut self) {
                self.gate.raw.cancel($kind, &mut self.wait);
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("wait", &self.wait).finish_non_exhaustive()
            }
        }
    };
    (
        $(#[$meta:meta])*
        $name:ident, $kind:expr, $output:ident
    ) => {
        $(#[$meta])*
        #[must_use = "futures do nothing unless polled"]
        pub struct $name {
            // `None` once the handle has moved into the permit or guard.
            gate: Option<Arc<DrainGate>>,
            wait: Wait,
        }

        impl $name {
            #[inline]
            pub(crate) fn new(gate: Arc<DrainGate>) -> Self {
                $name { gate: Some(gate), wait: Wait::Init }
            }
        }

        impl Future for $name {
            type Output = Result<$output, Closed>;

            #[inline]
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let this = self.get_mut();
                let gate = this.gate.as_ref().expect("drain-gate: future polled after it completed");
                ready!(gate.raw.poll_request($kind, 1, &mut this.wait, cx))?;
                Poll::Ready(Ok($output::new(this.gate.take().expect("checked above"))))
            }
        }

        impl Drop for $name {
            #[inline]
            fn drop(&mut self) {
                if let Some(gate) = &self.gate {
                    gate.raw.cancel($kind, &mut self.wait);
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("wait", &self.wait).finish_non_exhaustive()
            }
        }
    };
}

request_future! {
    /// Future returned by [`DrainGate::acquire`]: resolves to a
    /// [`ReadPermit`], or [`Closed`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it at any point leaks nothing: see [`DrainGate::acquire`].
    ///
    /// # Panics
    ///
    /// If polled again after it resolved `Ok` (see
    /// [`DrainGate`](DrainGate#panics)).
    Acquire<'a>, Kind::Read, ReadPermit
}

request_future! {
    /// Future returned by [`DrainGate::acquire_owned`]: resolves to an
    /// [`OwnedReadPermit`], or [`Closed`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it at any point leaks nothing: see [`DrainGate::acquire`].
    ///
    /// # Panics
    ///
    /// If polled again after it resolved `Ok` (see
    /// [`DrainGate`](DrainGate#panics)).
    AcquireOwned, Kind::Read, OwnedReadPermit
}

request_future! {
    /// Future returned by [`DrainGate::drain`]: resolves to a
    /// [`DrainGuard`], or [`Closed`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it at any point leaks nothing and lets the readers queued
    /// behind it in as far as the gate allows: see [`DrainGate::drain`].
    ///
    /// # Panics
    ///
    /// If polled again after it resolved `Ok` (see
    /// [`DrainGate`](DrainGate#panics)).
    Drain<'a>, Kind::Drain, DrainGuard
}

request_future! {
    /// Future returned by [`DrainGate::drain_owned`]: resolves to an
    /// [`OwnedDrainGuard`], or [`Closed`].
    ///
    /// # Cancel safety
    ///
    /// Dropping it at any point leaks nothing and lets the readers queued
    /// behind it in as far as the gate allows: see [`DrainGate::drain`].
    ///
    /// # Panics
    ///
    /// If polled again after it resolved `Ok` (see
    /// [`DrainGate`](DrainGate#panics)).
    DrainOwned, Kind::Drain, OwnedDrainGuard
}

/// Future returned by [`DrainGate::acquire_many`]: resolves to
/// [`ReadPermits`] holding the permits asked for, or an [`AcquireManyError`].
///
/// # Cancel safety
///
/// Dropping it at any point leaks nothing: see [`DrainGate::acquire_many`].
///
/// # Panics
///
/// If polled again after it resolved `Ok` (see [`DrainGate`](DrainGate#panics)).
#[must_use = "futures do nothing unless polled"]
pub struct AcquireMany<'a> {
    gate: &'a DrainGate,
    permits: usize,
    wait: Wait,
}

impl<'a> AcquireMany<'a> {
    #[inline]
    pub(crate) fn new(gate: &'a DrainGate, permits: usize) -> Self {
        AcquireMany { gate, permits, wait: Wait::Init }
    }
}

impl<'a> Future for AcquireMany<'a> {
    type Output = Result<ReadPermits<'a>, AcquireManyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        check_permits(this.gate, this.permits)?;
        ready!(this.gate.raw.poll_request(Kind::Read, this.permits, &mut this.wait, cx))?;
        Poll::Ready(Ok(ReadPermits::new(this.gate, this.permits)))
    }
}

impl Drop for AcquireMany<'_> {
    fn drop(&mut self) {
        self.gate.raw.cancel(Kind::Read, &mut self.wait);
    }
}

/// Future returned by [`DrainGate::acquire_many_owned`]: resolves to
/// [`OwnedReadPermits`] holding the permits asked for, or an
/// [`AcquireManyError`].
///
/// # Cancel safety
///
/// Dropping it at any point leaks nothing: see [`DrainGate::acquire_many`].
///
/// # Panics
///
/// If polled again after it resolved `Ok` (see [`DrainGate`](DrainGate#panics)).
#[must_use = "futures do nothing unless polled"]
pub struct AcquireManyOwned {
    // `None` once the handle has moved into the permit.
    gate: Option<Arc<DrainGate>>,
    permits: usize,
    wait: Wait,
}

impl AcquireManyOwned {
    #[inline]
    pub(crate) fn new(gate: Arc<DrainGate>, permits: usize) -> Self {
        AcquireManyOwned { gate: Some(gate), permits, wait: Wait::Init }
    }
}

impl Future for AcquireManyOwned {
    type Output = Result<OwnedReadPermits, AcquireManyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let gate = this.gate.as_ref().expect("drain-gate: future polled after it completed");
        check_permits(gate, this.permits)?;
        ready!(gate.raw.poll_request(Kind::Read, this.permits, &mut this.wait, cx))?;
        let gate = this.gate.take().expect("checked above");
        Poll::Ready(Ok(OwnedReadPermits::new(gate, this.permits)))
    }
}

impl Drop for AcquireManyOwned {
    fn drop(&mut self) {
        if let Some(gate) = &self.gate {
            gate.raw.cancel(Kind::Read, &mut self.wait);
        }
    }
}

impl fmt::Debug for AcquireMany<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireMany")
            .field("permits", &self.permits)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for AcquireManyOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireManyOwned")
            .field("permits", &self.permits)
            .field("wait", &self.wait)
            .finish_non_exhaustive()
    }
}

/// `Ok` if `gate` can ever grant `permits` at once: `1..=cap`.
#[inline]
pub(crate) fn check_permits(gate: &DrainGate, permits: usize) -> Result<(), InvalidPermits> {
    if permits == 0 || permits > gate.cap() {
        return Err(InvalidPermits { permits, cap: gate.cap() });
    }
    Ok(())
}

macro_rules! watch_future {
    ($(#[$meta:meta])* $name:ident, $kind:expr) => {
        $(#[$meta])*
        #[must_use = "futures do nothing unless polled"]
        pub struct $name<'a> {
            gate: &'a DrainGate,
            wait: Wait,
        }

        impl<'a> $name<'a> {
            #[inline]
            pub(crate) fn new(gate: &'a DrainGate) -> Self {
                $name { gate, wait: Wait::Init }
            }
        }

        impl Future for $name<'_> {
            type Output = ();

            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
                let this = self.get_mut();
                this.gate.raw.poll_watch($kind, &mut this.wait, cx)
            }
        }

        impl Drop for $name<'_> {
            #[inline]
            fn drop(&mut self) {
                self.gate.raw.cancel_watch(&mut self.wait);
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("wait", &self.wait).finish_non_exhaustive()
            }
        }
    };
}

watch_future! {
    /// Future returned by [`DrainGate::closed_and_idle`]: resolves once the
    /// gate is closed and no permit or guard is out.
    ///
    /// # Cancel safety
    ///
    /// Dropping it only unregisters it.
    ClosedAndIdle, Kind::Idle
}

watch_future! {
    /// Future returned by [`ReadPermit::drain_requested`] and
    /// [`OwnedReadPermit::drain_requested`]: resolves once a drain is
    /// pending on the gate (at once if one already is).
    ///
    /// A drain waits for every reader admitted before it, so a reader that
    /// sees this should finish or abandon its work soon. It does not resolve
    /// on [`DrainGate::close`]: shutdown lets reads in flight finish.
    ///
    /// # Cancel safety
    ///
    /// Dropping it only unregisters it.
    DrainRequested, Kind::DrainRequested
}
