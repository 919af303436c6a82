//! Read permits and drain guards: RAII tokens that give back what they hold
//! when dropped, unwinding included.

use std::fmt;
use std::sync::Arc;

use crate::future::DrainRequested;
use crate::gate::DrainGate;

/// A read permit borrowed from a [`DrainGate`]. Released when dropped.
///
/// While it exists no drain guard can exist. Returned by
/// [`DrainGate::acquire`] and [`DrainGate::try_acquire`]. Several permits
/// taken at once are a [`ReadPermits`]; a single one stays one pointer wide,
/// so the uncontended path moves no more than before weights existed.
#[must_use = "the permit is released as soon as it is dropped"]
pub struct ReadPermit<'a> {
    gate: &'a DrainGate,
}

/// A read permit that owns a handle to its [`DrainGate`]. Released when
/// dropped.
///
/// `'static + Send + Sync`: it can travel inside a channel message or a
/// spawned task, and is released wherever it is dropped. Returned by
/// [`DrainGate::acquire_owned`] and [`DrainGate::try_acquire_owned`]; several
/// at once are an [`OwnedReadPermits`].
#[must_use = "the permit is released as soon as it is dropped"]
pub struct OwnedReadPermit {
    gate: Arc<DrainGate>,
}

/// Several read permits borrowed from a [`DrainGate`] at once, released
/// together when dropped.
///
/// Returned by [`DrainGate::acquire_many`] and
/// [`DrainGate::try_acquire_many`]. It counts as
/// [`permits`](Self::permits) readers against the cap and for a drain.
#[must_use = "the permits are released as soon as they are dropped"]
pub struct ReadPermits<'a> {
    gate: &'a DrainGate,
    permits: usize,
}

/// Several read permits taken at once, owning a handle to their
/// [`DrainGate`] (`'static + Send + Sync`); released together when dropped.
///
/// Returned by [`DrainGate::acquire_many_owned`] and
/// [`DrainGate::try_acquire_many_owned`].
#[must_use = "the permits are released as soon as they are dropped"]
pub struct OwnedReadPermits {
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
    /// Wraps a permit the caller has just taken from `gate`'s state word.
    #[inline]
    pub(crate) fn new(gate: &'a DrainGate) -> Self {
        ReadPermit { gate }
    }

    /// The gate this permit belongs to.
    pub fn gate(&self) -> &'a DrainGate {
        self.gate
    }

    /// Whether a drain is waiting, so a long read should stop early if it
    /// can. One relaxed load.
    pub fn is_drain_pending(&self) -> bool {
        self.gate.is_drain_pending()
    }

    /// A future that resolves once a drain is pending: cooperative
    /// preemption for long reads. See [`DrainRequested`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future only unregisters it (see
    /// [`DrainRequested`]).
    pub fn drain_requested(&self) -> DrainRequested<'a> {
        DrainRequested::new(self.gate)
    }
}

impl OwnedReadPermit {
    #[inline]
    pub(crate) fn new(gate: Arc<DrainGate>) -> Self {
        OwnedReadPermit { gate }
    }

    /// The gate this permit belongs to.
    pub fn gate(&self) -> &Arc<DrainGate> {
        &self.gate
    }

    /// Whether a drain is waiting, so a long read should stop early if it
    /// can. One relaxed load.
    pub fn is_drain_pending(&self) -> bool {
        self.gate.is_drain_pending()
    }

    /// A future that resolves once a drain is pending: cooperative
    /// preemption for long reads. See [`DrainRequested`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future only unregisters it (see
    /// [`DrainRequested`]).
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

impl<'a> ReadPermits<'a> {
    /// Wraps `permits` permits the caller has just taken from `gate`'s
    /// state word.
    #[inline]
    pub(crate) fn new(gate: &'a DrainGate, permits: usize) -> Self {
        ReadPermits { gate, permits }
    }

    /// The gate these permits belong to.
    pub fn gate(&self) -> &'a DrainGate {
        self.gate
    }

    /// How many of the gate's read permits this holds (`1..=cap`).
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Whether a drain is waiting; see [`ReadPermit::is_drain_pending`].
    pub fn is_drain_pending(&self) -> bool {
        self.gate.is_drain_pending()
    }

    /// Resolves once a drain is pending; see [`DrainRequested`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future only unregisters it (see
    /// [`DrainRequested`]).
    pub fn drain_requested(&self) -> DrainRequested<'a> {
        DrainRequested::new(self.gate)
    }
}

impl OwnedReadPermits {
    #[inline]
    pub(crate) fn new(gate: Arc<DrainGate>, permits: usize) -> Self {
        OwnedReadPermits { gate, permits }
    }

    /// The gate these permits belong to.
    pub fn gate(&self) -> &Arc<DrainGate> {
        &self.gate
    }

    /// How many of the gate's read permits this holds (`1..=cap`).
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Whether a drain is waiting; see [`ReadPermit::is_drain_pending`].
    pub fn is_drain_pending(&self) -> bool {
        self.gate.is_drain_pending()
    }

    /// Resolves once a drain is pending; see [`OwnedReadPermit::drain_requested`].
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future only unregisters it (see
    /// [`DrainRequested`]).
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
        self.gate.raw.release_read(1);
    }
}

impl Drop for OwnedReadPermit {
    #[inline]
    fn drop(&mut self) {
        self.gate.raw.release_read(1);
    }
}

impl Drop for ReadPermits<'_> {
    #[inline]
    fn drop(&mut self) {
        self.gate.raw.release_read(self.permits);
    }
}

impl Drop for OwnedReadPermits {
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
    ($($ty:ty => $name:literal $(, $field:ident)?);* $(;)?) => {$(
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct($name)
                    $(.field(stringify!($field), &self.$field))?
                    .field("cap", &self.gate.cap())
                    .finish_non_exhaustive()
            }
        }
    )*};
}

debug_as! {
    ReadPermit<'_> => "ReadPermit";
    OwnedReadPermit => "OwnedReadPermit";
    ReadPermits<'_> => "ReadPermits", permits;
    OwnedReadPermits => "OwnedReadPermits", permits;
    DrainGuard<'_> => "DrainGuard";
    OwnedDrainGuard => "OwnedDrainGuard";
}
