//! [`DrainGate`], the public face of [`RawGate`].

use std::sync::Arc;

#[cfg(doc)]
use crate::error::AcquireManyError;
use crate::error::{CapError, TryAcquireError, TryDrainError};
use crate::future::{
    Acquire, AcquireMany, AcquireManyOwned, AcquireOwned, ClosedAndIdle, Drain, DrainOwned,
    check_permits,
};
use crate::permit::{
    DrainGuard, OwnedDrainGuard, OwnedReadPermit, OwnedReadPermits, ReadPermit, ReadPermits,
};
use crate::raw::{self, RawGate, TryFail};

/// The largest cap a [`DrainGate`] accepts.
///
/// `usize::MAX >> 5`: 2^59 − 1 on 64-bit targets, 2^27 − 1 on 32-bit ones.
/// The five top bits of the gate's state word are flags; every bit below them
/// counts readers, so no cap up to this one can overflow the count.
pub const MAX_CAP: usize = raw::MAX_CAP;

/// Up to `cap` concurrent read permits, and an exclusive drain that waits for
/// every reader in flight while holding new ones back.
///
/// A `DrainGate` is the barrier a storage task needs between concurrent reads
/// and exclusive writes: readers [`acquire`](Self::acquire) a permit, at most
/// `cap` at a time; a writer asks to [`drain`](Self::drain), and once the
/// readers in flight (and any drain queued before it, with the readers that
/// drain admits) are done it holds a guard under which no read permit
/// exists. [`close`](Self::close) shuts the gate
/// for graceful shutdown, and [`closed_and_idle`](Self::closed_and_idle)
/// resolves once the last permit or guard is gone.
///
/// The gate does not protect data by itself (it is a [`Semaphore`]-like
/// primitive, not a lock around a value); it is `Send + Sync` and is shared
/// by reference or in an [`Arc`]. It does not depend on any runtime.
///
/// # Fairness
///
/// This is the gate's one statement of its fairness rule; the crate docs
/// and the README link here.
///
/// Requests that cannot be granted at once wait in one queue, readers and
/// drains together, served strictly from the front: a request is granted
/// only once every request ahead of it has been granted or dropped. A read
/// of `n` permits (1, or what [`acquire_many`](Self::acquire_many) asked
/// for) is granted when at least `n` of the `cap` permits are free and no
/// drain guard exists; a drain when no permit is out and no guard exists.
/// Where a request joins the queue:
///
/// 1. A read request joins at the back.
/// 2. A drain request joins behind every drain already queued and behind the
///    *batch* the last of them admits when its guard drops: the readers
///    queued right after it, as many as fit in `cap` permits together (stop
///    at the first that does not fit). With no drain queued but one held,
///    the batch is taken from the front of the queue; with no drain queued
///    or held, the drain goes to the front (the readers in flight are the
///    batch). Either way it goes *ahead* of every other queued reader.
///
/// Hence:
///
/// * a drain waits for the readers in flight and, for each drain requested
///   before it, that drain and its batch of at most `cap` permits; never for
///   the rest of the readers queued: **writers never starve**, and one write
///   after another under a read flood each waits for about `cap` permits'
///   worth of reads, not for the backlog;
/// * every drain's release admits its batch, in request order, before the
///   next drain is granted. A batch admits at least one reader, and `cap`
///   single-permit readers when that many are queued, so a single-permit
///   reader with `k` readers queued ahead of it is overtaken by at most
///   `k / cap + 1` drains; with weighted readers, two batches in a row admit
///   more than `cap` permits, so a reader with `p` permits asked for ahead
///   of it is overtaken by at most `2 * p / cap + 2`: **readers never
///   starve**;
/// * drains are served in request order;
/// * the non-waiting [`try_acquire`](Self::try_acquire) and
///   [`try_drain`](Self::try_drain) never overtake a queued request: they
///   fail while anyone is queued.
///
/// Two consequences of serving in order, which tokio's `RwLock` shares:
///
/// * **A request is served on its behalf, polled or not.** Once at the
///   front it is granted, and holds what it was granted until it is polled
///   or dropped. A drain future kept alive but no longer polled (a
///   `select!` branch that lost, a stream nobody drives) holds back every
///   reader requested after it and, once granted, holds the guard: no reader
///   gets in until it is dropped. Poll request futures to completion or drop
///   them.
/// * **Holding a permit while asking for another can wait forever.** If a
///   drain is queued between the two, the drain waits for the permit you
///   hold and your new request waits behind the drain. Ask for everything at
///   once ([`acquire_many`](Self::acquire_many)), or release first.
///
/// A drain nobody polls any more, granted on its behalf:
///
/// ```
/// use futures_util::FutureExt;
/// use drain_gate::DrainGate;
///
/// let gate = DrainGate::new(4);
/// let reader = gate.try_acquire().unwrap();
/// let mut drain = Box::pin(gate.drain());
/// assert!(drain.as_mut().now_or_never().is_none()); // queued, then forgotten
/// drop(reader); // the drain is granted: it holds the guard, unobserved
/// assert!(gate.is_drain_held());
/// assert!(gate.acquire().now_or_never().is_none()); // every reader waits...
/// drop(drain); // ...until the future is dropped (or polled and its guard dropped)
/// assert!(gate.acquire().now_or_never().is_some());
/// ```
///
/// A task asking for a second permit while a drain waits for its first:
///
/// ```
/// use futures_util::FutureExt;
/// use drain_gate::DrainGate;
///
/// let gate = DrainGate::new(4);
/// let held = gate.try_acquire().unwrap();
/// let mut drain = Box::pin(gate.drain());
/// assert!(drain.as_mut().now_or_never().is_none()); // queued: waits for `held`
///
/// // The same task asks for a second permit: it queues behind the drain,
/// // which waits for `held`. Awaiting it here would never return.
/// assert!(gate.acquire().now_or_never().is_none());
///
/// // Releasing first breaks the cycle: the drain runs, then readers.
/// drop(held);
/// let guard = drain.now_or_never().unwrap().unwrap();
/// drop(guard);
/// assert!(gate.acquire().now_or_never().is_some());
/// ```
///
/// # Cancel safety
///
/// Every future this gate returns may be dropped at any point: never polled,
/// after `Pending`, or after being woken with a grant it has not yet observed.
/// Nothing leaks and no wake-up is lost: a queued request leaves the queue, a
/// grant it never observed is given back, and whoever can proceed because of
/// that is woken. Dropping a pending drain lets the readers queued behind it
/// in at once, without waiting for the readers in flight, as far as a free
/// permit and no other drain ahead of them allow.
///
/// # Wakers run outside the lock
///
/// Waiting requests live in a queue behind a mutex. No waker is woken *or
/// dropped* while that mutex is held, on any path (grant, re-poll with a new
/// waker, cancel, close, the watchers): a waker's `wake` or `drop` may
/// re-enter the same gate and cannot deadlock it. That matters because
/// dropping the last reference to a task's waker can free the task, and with
/// it every permit or guard its future owned, whose release takes the same
/// mutex (tokio-rs/tokio#5429 is this bug in tokio's semaphore). The one
/// waker call made under the mutex is `Waker::clone`, when a request queues
/// or is re-polled from another task, as in tokio; every executor's clone
/// only counts a reference, and a clone that blocked on this gate would
/// deadlock.
///
/// # Executor fairness
///
/// A request granted at once does not return `Pending`, so a task that loops
/// acquire and release without contention would never return to its
/// executor. Two mechanisms keep it fair; both act before anything is taken,
/// so a yield holds no permit:
///
/// * **Any executor** (always on): after 128 requests in a row on one thread
///   that did not have to wait, the next request yields once (wakes itself
///   and returns `Pending`). It costs one thread-local counter per request
///   and no atomic operation.
/// * **tokio** (the off-by-default `tokio` feature): every request also
///   spends a unit of tokio's per-task cooperative budget
///   (`tokio::task::coop::poll_proceed`), so inside a tokio runtime the gate
///   yields in step with tokio's own channels, sockets and locks. A request
///   that has to queue gives its unit back. Outside a tokio runtime this
///   costs one thread-local read and never yields.
///
/// So polling a request once (`now_or_never`, a `poll_ready` shortcut) may
/// return `Pending` even on an idle gate; use [`try_acquire`](Self::try_acquire)
/// and [`try_drain`](Self::try_drain) to take without waiting.
///
/// # Panics
///
/// No method panics on a gate's state; [`new`](Self::new) panics on a cap
/// [`try_new`](Self::try_new) refuses. Like most futures, a request future that resolved `Ok` panics if polled
/// again (the grant now belongs to the permit or guard it returned). One
/// that resolved `Err(Closed)` returns the error again.
///
/// # Examples
///
/// The drain-before-write pattern: reads run concurrently, each write runs
/// with no read in flight.
///
/// ```
/// use std::sync::Arc;
/// use drain_gate::DrainGate;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), drain_gate::Closed> {
/// let gate = Arc::new(DrainGate::new(64));
///
/// // A read: the owned permit travels into the spawned task and is released
/// // when the task finishes, fails or panics.
/// let permit = gate.clone().acquire_owned().await?;
/// let read = tokio::spawn(async move {
///     let _permit = permit;
///     // ... read from storage ...
/// });
///
/// // A write: wait for the reads admitted so far, hold new ones back.
/// let guard = gate.drain().await?;
/// assert_eq!(gate.readers_in_flight(), 0);
/// // ... write to storage ...
/// drop(guard);
/// # read.await.unwrap();
///
/// // Shutdown: refuse new work, wait for what is in flight.
/// gate.close();
/// gate.closed_and_idle().await;
/// # Ok(())
/// # }
/// ```
///
/// [`Semaphore`]: https://docs.rs/tokio/latest/tokio/sync/struct.Semaphore.html
#[derive(Debug)]
pub struct DrainGate {
    pub(crate) raw: RawGate,
}

impl DrainGate {
    /// Creates a gate that admits up to `cap` readers at once.
    ///
    /// # Panics
    ///
    /// If `cap` is 0 or above [`MAX_CAP`]; the message names the limit. Use
    /// [`try_new`](Self::try_new) to get an error instead.
    ///
    /// # Examples
    ///
    /// ```
    /// let gate = drain_gate::DrainGate::new(64);
    /// assert_eq!(gate.cap(), 64);
    /// ```
    #[track_caller]
    pub fn new(cap: usize) -> Self {
        match Self::try_new(cap) {
            Ok(gate) => gate,
            Err(e) => panic!("{e}"),
        }
    }

    /// Creates a gate that admits up to `cap` readers at once, or says why
    /// `cap` is refused.
    ///
    /// # Errors
    ///
    /// [`CapError::Zero`] for a cap of 0, [`CapError::AboveMax`] for a cap
    /// above [`MAX_CAP`].
    ///
    /// # Examples
    ///
    /// ```
    /// use drain_gate::{CapError, DrainGate};
    ///
    /// assert_eq!(DrainGate::try_new(0).unwrap_err(), CapError::Zero);
    /// assert!(DrainGate::try_new(8).is_ok());
    /// ```
    pub fn try_new(cap: usize) -> Result<Self, CapError> {
        match cap {
            0 => Err(CapError::Zero),
            cap if cap > MAX_CAP => Err(CapError::AboveMax { cap }),
            cap => Ok(DrainGate { raw: RawGate::new(cap) }),
        }
    }

    /// The most read permits that can be out at once.
    pub fn cap(&self) -> usize {
        self.raw.cap()
    }

    /// Waits for a read permit.
    ///
    /// Resolves once fewer than `cap` permits are out, no drain guard exists
    /// and every request queued before this one has been served (see
    /// [Fairness](Self#fairness)). The permit is released when dropped.
    /// When nothing is queued this is one compare-and-swap, with no lock and
    /// no allocation.
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::Closed) if the gate is closed before the permit is
    /// observed, including while waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe. Dropping the future before it resolves leaves the gate
    /// as if it had never been called: it leaves the queue, and a permit
    /// granted to it but not yet observed goes to the next waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let gate = drain_gate::DrainGate::new(2);
    /// let permit = gate.acquire().await.unwrap();
    /// assert_eq!(gate.readers_in_flight(), 1);
    /// drop(permit);
    /// assert_eq!(gate.readers_in_flight(), 0);
    /// # });
    /// ```
    #[inline]
    pub fn acquire(&self) -> Acquire<'_> {
        Acquire::new(self)
    }

    /// Waits for a read permit that owns a handle to the gate.
    ///
    /// Like [`acquire`](Self::acquire), but the permit is `'static + Send +
    /// Sync`, so it can travel inside a channel message or a spawned task.
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::Closed) if the gate is closed before the permit is
    /// observed.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gate = Arc::new(drain_gate::DrainGate::new(4));
    /// let permit = gate.clone().acquire_owned().await.unwrap();
    /// tokio::spawn(async move {
    ///     // read while holding the permit
    ///     drop(permit);
    /// })
    /// .await
    /// .unwrap();
    /// assert_eq!(gate.readers_in_flight(), 0);
    /// # }
    /// ```
    #[inline]
    pub fn acquire_owned(self: Arc<Self>) -> AcquireOwned {
        AcquireOwned::new(self)
    }

    /// Takes a read permit if one is free now, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Closed`] if the gate is closed;
    /// [`TryAcquireError::NoPermits`] if `cap` permits are out, a drain guard
    /// is held, or any request is queued (it never overtakes a waiter). Never
    /// [`TryAcquireError::Invalid`]: one permit is always a valid count.
    ///
    /// # Examples
    ///
    /// ```
    /// use drain_gate::{DrainGate, TryAcquireError};
    ///
    /// let gate = DrainGate::new(1);
    /// let permit = gate.try_acquire().unwrap();
    /// assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    /// drop(permit);
    /// assert!(gate.try_acquire().is_ok());
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<ReadPermit<'_>, TryAcquireError> {
        self.raw.try_acquire(1).map_err(TryAcquireError::from)?;
        Ok(ReadPermit::new(self))
    }

    /// Takes an owned read permit if one is free now, without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    #[inline]
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedReadPermit, TryAcquireError> {
        self.raw.try_acquire(1).map_err(TryAcquireError::from)?;
        Ok(OwnedReadPermit::new(self))
    }

    /// Waits for `permits` read permits at once, held by one [`ReadPermits`]
    /// and released together when it drops.
    ///
    /// For requests that cost more than others: a wide scan can take a share
    /// of the cap in proportion to its work, so a few of them cannot fill
    /// the gate alone. The request is one waiter, served in request order
    /// like any other (see [Fairness](Self#fairness)): while it waits at the
    /// front for enough permits to come free, the requests behind it wait
    /// too, even single ones that would fit. A drain counts it as `permits`
    /// readers in flight. [`acquire`](Self::acquire) is `acquire_many(1)`
    /// without the check.
    ///
    /// # Errors
    ///
    /// [`AcquireManyError::Invalid`] on the first poll if `permits` is 0 or
    /// above [`cap`](Self::cap) (such a request could never be granted, so
    /// it fails instead of waiting forever); [`AcquireManyError::Closed`] if
    /// the gate is closed before the permits are observed.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`acquire`](Self::acquire): a dropped request leaves
    /// the queue, and permits granted to it but not yet observed go to the
    /// next waiters.
    ///
    /// # Examples
    ///
    /// ```
    /// use drain_gate::{AcquireManyError, DrainGate};
    ///
    /// # futures_executor::block_on(async {
    /// let gate = DrainGate::new(8);
    /// let wide = gate.acquire_many(6).await.unwrap();
    /// assert_eq!((wide.permits(), gate.readers_in_flight()), (6, 6));
    /// // Only 2 permits are left for everyone else.
    /// assert!(gate.try_acquire_many(3).is_err());
    /// drop(wide);
    ///
    /// // A count the gate can never grant fails at once.
    /// assert!(matches!(gate.acquire_many(9).await, Err(AcquireManyError::Invalid(_))));
    /// # });
    /// ```
    #[inline]
    pub fn acquire_many(&self, permits: usize) -> AcquireMany<'_> {
        AcquireMany::new(self, permits)
    }

    /// Waits for `permits` read permits at once, held by one
    /// [`OwnedReadPermits`] (`'static + Send + Sync`).
    ///
    /// # Errors
    ///
    /// As [`acquire_many`](Self::acquire_many).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`acquire_many`](Self::acquire_many).
    #[inline]
    pub fn acquire_many_owned(self: Arc<Self>, permits: usize) -> AcquireManyOwned {
        AcquireManyOwned::new(self, permits)
    }

    /// Takes `permits` read permits at once if they are free now, without
    /// waiting.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::Invalid`] if `permits` is 0 or above
    /// [`cap`](Self::cap) (checked first); otherwise as
    /// [`try_acquire`](Self::try_acquire): [`TryAcquireError::Closed`], or
    /// [`TryAcquireError::NoPermits`] if fewer than `permits` are free, a
    /// drain guard is held, or any request is queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use drain_gate::{DrainGate, InvalidPermits, TryAcquireError};
    ///
    /// let gate = DrainGate::new(4);
    /// let three = gate.try_acquire_many(3).unwrap();
    /// assert_eq!(gate.try_acquire_many(2).unwrap_err(), TryAcquireError::NoPermits);
    /// assert_eq!(
    ///     gate.try_acquire_many(0).unwrap_err(),
    ///     TryAcquireError::Invalid(InvalidPermits { permits: 0, cap: 4 })
    /// );
    /// drop(three);
    /// ```
    #[inline]
    pub fn try_acquire_many(&self, permits: usize) -> Result<ReadPermits<'_>, TryAcquireError> {
        check_permits(self, permits).map_err(TryAcquireError::Invalid)?;
        self.raw.try_acquire(permits).map_err(TryAcquireError::from)?;
        Ok(ReadPermits::new(self, permits))
    }

    /// Takes `permits` owned read permits at once if they are free now,
    /// without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_acquire_many`](Self::try_acquire_many).
    #[inline]
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        permits: usize,
    ) -> Result<OwnedReadPermits, TryAcquireError> {
        check_permits(&self, permits).map_err(TryAcquireError::Invalid)?;
        self.raw.try_acquire(permits).map_err(TryAcquireError::from)?;
        Ok(OwnedReadPermits::new(self, permits))
    }

    /// Waits for exclusive access: no read permit out, no other guard.
    ///
    /// Once requested, the drain holds back every read requested after it
    /// and goes ahead of some of those queued before it; it resolves once
    /// the readers in flight, and the drains queued before it with the
    /// readers each of them admits, are done (the rule is under
    /// [Fairness](Self#fairness)). Dropping the guard ends the drain and
    /// admits the readers queued behind it. On an idle gate this is one
    /// compare-and-swap.
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::Closed) if the gate is closed before the guard is
    /// observed, including while waiting.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe. Dropping a pending drain removes it from the queue, and
    /// the readers queued behind it are admitted at once as far as a free
    /// permit and no other drain ahead of them allow, without waiting for
    /// the readers in flight; a guard granted to it but not yet observed is
    /// given back.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let gate = drain_gate::DrainGate::new(8);
    /// let guard = gate.drain().await.unwrap();
    /// assert!(gate.is_drain_held());
    /// assert!(gate.try_acquire().is_err());
    /// drop(guard);
    /// assert!(gate.try_acquire().is_ok());
    /// # });
    /// ```
    #[inline]
    pub fn drain(&self) -> Drain<'_> {
        Drain::new(self)
    }

    /// Waits for exclusive access, returning a guard that owns a handle to
    /// the gate (`'static + Send + Sync`).
    ///
    /// # Errors
    ///
    /// [`Closed`](crate::Closed) if the gate is closed before the guard is
    /// observed.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`drain`](Self::drain).
    #[inline]
    pub fn drain_owned(self: Arc<Self>) -> DrainOwned {
        DrainOwned::new(self)
    }

    /// Takes the drain guard if the gate is idle now, without waiting.
    ///
    /// # Errors
    ///
    /// [`TryDrainError::Closed`] if the gate is closed;
    /// [`TryDrainError::Busy`] if a permit or guard is out or any request is
    /// queued.
    ///
    /// # Examples
    ///
    /// ```
    /// use drain_gate::{DrainGate, TryDrainError};
    ///
    /// let gate = DrainGate::new(4);
    /// let permit = gate.try_acquire().unwrap();
    /// assert_eq!(gate.try_drain().unwrap_err(), TryDrainError::Busy);
    /// drop(permit);
    /// assert!(gate.try_drain().is_ok());
    /// ```
    #[inline]
    pub fn try_drain(&self) -> Result<DrainGuard<'_>, TryDrainError> {
        self.raw.try_drain().map_err(TryDrainError::from)?;
        Ok(DrainGuard::new(self))
    }

    /// Takes an owned drain guard if the gate is idle now, without waiting.
    ///
    /// # Errors
    ///
    /// As [`try_drain`](Self::try_drain).
    #[inline]
    pub fn try_drain_owned(self: Arc<Self>) -> Result<OwnedDrainGuard, TryDrainError> {
        self.raw.try_drain().map_err(TryDrainError::from)?;
        Ok(OwnedDrainGuard::new(self))
    }

    /// Closes the gate. Returns `true` if this call closed it, `false` if it
    /// was already closed.
    ///
    /// Every waiting request is woken and resolves to
    /// [`Closed`](crate::Closed), as does every later one, including a
    /// request that was granted but had not yet observed its grant: its
    /// grant is given back when that future is next polled or dropped, and
    /// counts as out (in [`readers_in_flight`](Self::readers_in_flight),
    /// for [`closed_and_idle`](Self::closed_and_idle)) until then. Permits
    /// and guards already held stay valid until dropped;
    /// [`closed_and_idle`](Self::closed_and_idle) resolves once they are all
    /// gone.
    ///
    /// # Examples
    ///
    /// ```
    /// use drain_gate::{DrainGate, TryAcquireError};
    ///
    /// let gate = DrainGate::new(4);
    /// assert!(gate.close());
    /// assert!(!gate.close());
    /// assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::Closed);
    /// ```
    pub fn close(&self) -> bool {
        self.raw.close()
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.raw.is_closed()
    }

    /// Resolves once the gate is closed and no permit or guard is out:
    /// graceful shutdown without a task tracker.
    ///
    /// It does not close the gate; it waits for someone to. Resolves at once
    /// if the gate is already closed and idle.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: dropping the future only unregisters it.
    ///
    /// # Examples
    ///
    /// ```
    /// # futures_executor::block_on(async {
    /// let gate = drain_gate::DrainGate::new(4);
    /// let permit = gate.acquire().await.unwrap();
    /// gate.close();
    /// // the permit stays valid; the gate is closed but not idle
    /// assert_eq!(gate.readers_in_flight(), 1);
    /// drop(permit);
    /// gate.closed_and_idle().await;
    /// # });
    /// ```
    pub fn closed_and_idle(&self) -> ClosedAndIdle<'_> {
        ClosedAndIdle::new(self)
    }

    /// Read permits out now, including permits granted to waiters that have
    /// not yet observed them. At most [`cap`](Self::cap).
    ///
    /// A relaxed load: exact at the instant of the load, stale a moment later.
    pub fn readers_in_flight(&self) -> usize {
        self.raw.readers_in_flight()
    }

    /// Read and drain requests queued now, waiting for their turn.
    ///
    /// Counts requests, not permits: an [`acquire_many`](Self::acquire_many)
    /// request counts once whatever it asks for. A relaxed load of a count
    /// maintained under the queue's lock.
    pub fn waiters(&self) -> usize {
        self.raw.waiters()
    }

    /// Whether a drain is queued, waiting for readers (or for requests ahead
    /// of it) to finish. Readers can check this to stop early: see
    /// [`ReadPermit::is_drain_pending`].
    pub fn is_drain_pending(&self) -> bool {
        self.raw.is_drain_pending()
    }

    /// Whether a drain guard is held (or granted and about to be observed).
    pub fn is_drain_held(&self) -> bool {
        self.raw.is_drain_held()
    }
}

impl From<TryFail> for TryAcquireError {
    fn from(fail: TryFail) -> Self {
        match fail {
            TryFail::Closed => TryAcquireError::Closed,
            TryFail::Busy => TryAcquireError::NoPermits,
        }
    }
}

impl From<TryFail> for TryDrainError {
    fn from(fail: TryFail) -> Self {
        match fail {
            TryFail::Closed => TryDrainError::Closed,
            TryFail::Busy => TryDrainError::Busy,
        }
    }
}
