//! Read permits and drain guards: RAII tokens that give back what they hold
//! when dropped, unwinding included.

use std::fmt;
use std::sync::Arc;

use crate::future::DrainRequested;
use crate::gate::DrainGate;

/// One or more read permits borrowed from a [`DrainGate`]. Released when
/// dropped.
///
/// While it exists no drain guard can exist. Returned by
/// [`DrainGate::acquire`] and [`DrainGate::try_acquire`] (one permit) and by
/// [`DrainGate::acquire_many`] and [`DrainGate::try_acquire_many`]
/// ([`permits`](Self::permits) of them).
#[must_use = "the permit is released as soon as it is dropped"]
pub struct ReadPermit<'a> {
    gate: &'a DrainGate,
    permits: usize,
}

/// A read permit that owns a handle to its [`DrainGate`]. Released when
/// dropped.
///
/// `'static + Send + Sync`: it can travel inside a channel message or a
/// spawned task, and is released wherever it is dropped. Returned by
/// [`DrainGate::acquire_owned`] and [`DrainGate::try_acquire_owned`] (one
/// permit) and by [`DrainGate::acquire_many_owned`] and
/// [`DrainGate::try_acquire_many_owned`] ([`permits`](Self::permits) of them).
#[must_use = "the permit is released as soon as it is dropped"]
pub struct OwnedReadPermit {
    gate: Arc<DrainGate>,
    permits: usize,
}

/// Exclusive access to a [`DrainGate`]: while it exists no read permit and
/// no other guard exists. Ends the drain when dropped.
///
/// Returned by [`DrainGate::drain`] and [`DrainGate::try_drain`].
#[must_use = "the drain ends as soon as the guard is dropped"]
pub struct DrainGuard<'a> {
    gate: &'a DrainGate,
}

/// Exclusive access to a [`DrainGate`] that owns a handle to it
/// (`'static + Send + Sync`). Ends the drain when dropped.
///
/// Returned by [`DrainGate::drain_owned`] and [`DrainGate::try_drain_owned`].
#[must_use = "the drain ends as soon as the guard is dropped"]
pub struct OwnedDrainGuard {
    gate: Arc<DrainGate>,
}

impl<'a> ReadPermit<'a> {
    /// Wraps `permits` permits the caller has just taken from `gate`'s
    /// state word.
    #[inline]
    pub(crate) fn new(gate: &'a DrainGate, permits: usize) -> Self {
        ReadPermit { gate, permits }
    }

    /// The gate this permit belongs to.
    pub fn gate(&self) -> &'a DrainGate {
        self.gate
    }

    /// How many of the gate's read permits this holds (1 unless taken with
    /// `acquire_many`); all are released together on drop.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Whether a drain is waiting, so a long read should stop early if it
    /// can. One relaxed load.
    pub fn is_drain_pending(&self) -> bool {
        self.gate.is_drain_pending()
    }

    /// A future that resolves once a drain is pending: cooperative
    /// preemption for long reads. See [`DrainRequested`].
    pub fn drain_requested(&self) -> DrainRequested<'a> {
        DrainRequested::new(self.gate)
    }
}

impl OwnedReadPermit {
    #[inline]
    pub(crate) fn new(gate: Arc<DrainGate>, permits: usize) -> Self {
        OwnedReadPermit { gate, permits }
    }

    /// The gate this permit belongs to.
    pub fn gate(&self) -> &Arc<DrainGate> {
        &self.gate
    }

    /// How many of the gate's read permits this holds (1 unless taken with
    /// `acquire_many_owned`); all are released together on drop.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Whether a drain is waiting, so a long read should stop early if it
    /// can. One relaxed load.
    pub fn is_drain_pending(&self) -> bool {
        self.gate.is_drain_pending()
    }

    /// A future that resolves once a drain is pending: cooperative
    /// preemption for long reads. See [`DrainRequested`].
    ///
    /// # Examples
    ///
    /// Stop a long read when a writer asks for the gate:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use drain_gate::DrainGate;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gate = Arc::new(DrainGate::new(4));
    /// let permit = gate.clone().acquire_owned().await.unwrap();
    /// let reader = tokio::spawn(async move {
    ///     tokio::select! {
    ///         _ = std::future::pending::<()>() => "finished", // a read that never ends
    ///         _ = permit.drain_requested() => "stopped early",
    ///     }
    /// });
    /// let guard = gate.drain().await.unwrap(); // wakes the reader, which lets go
    /// assert_eq!(reader.await.unwrap(), "stopped early");
    /// drop(guard);
    /// # }
    /// ```
    pub fn drain_requested(&self) -> DrainRequested<'_> {
        DrainRequested::new(&self.gate)
    }
}

impl<'a> DrainGuard<'a> {
    #[inline]
    pub(crate) fn new(gate: &'a DrainGate) -> Self {
        DrainGuard { gate }
    }

    /// The gate this guard belongs to.
    pub fn gate(&self) -> &'a DrainGate {
        self.gate
    }
}

impl OwnedDrainGuard {
    #[inline]
    pub(crate) fn new(gate: Arc<DrainGate>) -> Self {
        OwnedDrainGuard { gate }
    }

    /// The gate this guard belongs to.
    pub fn gate(&self) -> &Arc<DrainGate> {
        &self.gate
    }
}

impl Drop for ReadPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        self.gate.raw.release_read(self.permits);
    }
}

impl Drop for OwnedReadPermit {
    #[inline]
    fn drop(&mut self) {
        self.gate.raw.release_read(self.permits);
    }
}

impl Drop for DrainGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.gate.raw.release_drain();
    }
}

impl Drop for OwnedDrainGuard {
    #[inline]
    fn drop(&mut self) {
        self.gate.raw.release_drain();
    }
}

macro_rules! debug_as {
    ($($ty:ty => $name:literal),* $(,)?) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($name).field("cap", &self.gate.cap()).finish_non_exhaustive()
            }
        }
    )*};
}

impl fmt::Debug for ReadPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadPermit")
            .field("permits", &self.permits)
            .field("cap", &self.gate.cap())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for OwnedReadPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedReadPermit")
            .field("permits", &self.permits)
            .field("cap", &self.gate.cap())
            .finish_non_exhaustive()
    }
}

debug_as! {
    DrainGuard<'_> => "DrainGuard",
    OwnedDrainGuard => "OwnedDrainGuard",
}
