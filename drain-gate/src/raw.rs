//! The gate's core: one state word and a waiter queue.
//!
//! Everything that decides who holds what lives here; the public types in
//! `gate.rs`, `permit.rs` and `future.rs` are thin wrappers around it.
//!
//! # How the pieces fit
//!
//! * The **state word** says how many read permits are outstanding and
//!   whether a drain guard exists. While nobody is queued, an acquire is one
//!   compare-and-swap on it and a release one `fetch_sub`: no lock.
//! * The **waiter queue** (behind a mutex) holds every read and drain
//!   request that could not be granted at once, in the order they will be
//!   served: readers in request order, each drain placed behind the drains
//!   already queued and one batch of readers (see `Waiters::push`). While
//!   it is non-empty the `QUEUED` bit is set, which fails every fast-path
//!   acquire, so nobody can overtake a waiter.
//! * Grants to queued waiters are made only under the mutex, by whoever
//!   changed something that may let the queue move (a release, a cancelled
//!   waiter, a close): see [`RawGate::settle`]. A grant bumps the state word
//!   on the waiter's behalf *before* it is woken, so a granted waiter that is
//!   dropped before it observes its grant gives it back in its `Drop`.
//!
//! # Why no wake-up is lost
//!
//! A request queues by setting `QUEUED` with a compare-and-swap against the
//! very state it judged "cannot be granted now", under the mutex. A release
//! that lands before that CAS makes it fail and the request looks again; a
//! release that lands after it sees `QUEUED` in the value its `fetch_sub`
//! returned and takes the mutex to run the queue. Every path that clears
//! `QUEUED` does so under the mutex with the queue empty.

use std::task::{Context, Poll, Waker};

use crate::loom::{AtomicUsize, Mutex, MutexGuard, Ordering};

// Layout of the state word (W = usize::BITS):
//
//   bit W-1      CLOSED         close() was called; never cleared.
//   bit W-2      QUEUED         the waiter queue is non-empty: requests must queue.
//   bit W-3      DRAIN_PENDING  at least one drain is queued (implies QUEUED).
//   bit W-4      DRAIN_HELD     a drain guard exists, or a granted drain not yet observed.
//   bit W-5      DRAIN_AT_HEAD  the request at the front of the queue is a drain (implies QUEUED).
//   bits 0..W-5  readers        read permits outstanding, granted-but-unobserved included.
//
// Readers sit in the low bits so that the read fast path is one comparison:
// `state < cap` holds exactly when no flag is set and a permit is free.
const CLOSED: usize = 1 << (usize::BITS - 1);
const QUEUED: usize = 1 << (usize::BITS - 2);
const DRAIN_PENDING: usize = 1 << (usize::BITS - 3);
const DRAIN_HELD: usize = 1 << (usize::BITS - 4);
const DRAIN_AT_HEAD: usize = 1 << (usize::BITS - 5);
const READERS: usize = DRAIN_AT_HEAD - 1;

/// The largest cap a gate accepts: every bit of the state word below the five
/// flag bits counts readers.
pub(crate) const MAX_CAP: usize = READERS;

/// Index meaning "no slot" in the intrusive lists of [`Waiters`].
const NIL: usize = usize::MAX;

/// What a queued slot is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A read permit (in the queue).
    Read,
    /// A drain guard (in the queue).
    Drain,
    /// The gate being closed with nothing outstanding.
    Idle,
    /// A drain being requested (a permit holder watching for preemption).
    DrainRequested,
}

/// Where a slot stands. Only the future that allocated a slot frees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Free,
    /// Linked into its kind's list, waiting.
    Linked,
    /// Granted (queue) or notified (watch lists); unlinked, waiting to be observed.
    Granted,
    /// Failed because the gate closed; unlinked.
    Closed,
}

#[derive(Debug)]
struct Slot {
    kind: Kind,
    /// Read permits a read request asks for (1 for drains and watchers).
    permits: usize,
    status: Status,
    waker: Option<Waker>,
    prev: usize,
    next: usize,
}

#[derive(Debug, Clone, Copy)]
struct List {
    head: usize,
    tail: usize,
    len: usize,
}

impl List {
    const EMPTY: List = List { head: NIL, tail: NIL, len: 0 };
}

/// The mutex-protected half: a slab of slots threaded into three lists.
///
/// Slots are reused through a free list, so a steady state of queueing and
/// cancelling allocates nothing.
#[derive(Debug)]
struct Waiters {
    slots: Vec<Slot>,
    free: usize,
    /// Read and drain requests, in the order they will be served.
    queue: List,
    /// `closed_and_idle` futures.
    idle: List,
    /// `drain_requested` futures.
    watch: List,
    /// Drains in `queue`; `DRAIN_PENDING` mirrors `drains_queued > 0`.
    drains_queued: usize,
    /// The last drain in `queue` (`NIL` when none is queued). Only readers
    /// follow it.
    last_drain: usize,
}

impl Waiters {
    fn new() -> Self {
        Waiters {
            slots: Vec::new(),
            free: NIL,
            queue: List::EMPTY,
            idle: List::EMPTY,
            watch: List::EMPTY,
            drains_queued: 0,
            last_drain: NIL,
        }
    }

    fn list(&mut self, kind: Kind) -> &mut List {
        match kind {
            Kind::Read | Kind::Drain => &mut self.queue,
            Kind::Idle => &mut self.idle,
            Kind::DrainRequested => &mut self.watch,
        }
    }

    /// Allocates a slot and links it into its kind's list.
    ///
    /// Watchers and readers go to the back. A drain goes behind every drain
    /// already queued and behind the *batch* the last of them will admit:
    /// the longest run of readers queued after it whose permits add up to at
    /// most `cap`. With no drain queued but one held (`drain_held`), the
    /// batch is taken from the front of the queue, which that guard's
    /// release admits; with neither, the drain goes to the front, ahead of
    /// readers that only wait for capacity (the batch is the readers in
    /// flight). See the fairness rule on `DrainGate`. The walk is over at
    /// most `cap` slots (every reader asks for at least one permit).
    fn push(
        &mut self,
        kind: Kind,
        permits: usize,
        waker: Waker,
        drain_held: bool,
        cap: usize,
    ) -> usize {
        let after = match kind {
            Kind::Drain => {
                let (mut after, batch) = if self.last_drain != NIL {
                    (self.last_drain, cap)
                } else if drain_held {
                    (NIL, cap)
                } else {
                    (NIL, 0)
                };
                // Everything after the last drain is a reader.
                let mut admitted = 0;
                loop {
                    let next = if after == NIL { self.queue.head } else { self.slots[after].next };
                    if next == NIL || admitted + self.slots[next].permits > batch {
                        break;
                    }
                    admitted += self.slots[next].permits;
                    after = next;
                }
                after
            }
            _ => self.list(kind).tail,
        };
        let before = if after == NIL { self.list(kind).head } else { self.slots[after].next };
        let slot = Slot {
            kind,
            permits,
            status: Status::Linked,
            waker: Some(waker),
            prev: after,
            next: before,
        };
        let idx = if self.free == NIL {
            self.slots.push(slot);
            self.slots.len() - 1
        } else {
            let idx = self.free;
            self.free = self.slots[idx].next;
            self.slots[idx] = slot;
            idx
        };
        if after == NIL {
            self.list(kind).head = idx;
        } else {
            self.slots[after].next = idx;
        }
        if before == NIL {
            self.list(kind).tail = idx;
        } else {
            self.slots[before].prev = idx;
        }
        self.list(kind).len += 1;
        if kind == Kind::Drain {
            self.drains_queued += 1;
            // Drains keep request order, so the newest is the last.
            self.last_drain = idx;
        }
        idx
    }

    /// Unlinks a `Linked` slot, sets its new status and returns its waker.
    fn unlink(&mut self, idx: usize, status: Status) -> Option<Waker> {
        let Slot { kind, prev, next, .. } = self.slots[idx];
        debug_assert_eq!(self.slots[idx].status, Status::Linked);
        if prev == NIL {
            self.list(kind).head = next;
        } else {
            self.slots[prev].next = next;
        }
        if next == NIL {
            self.list(kind).tail = prev;
        } else {
            self.slots[next].prev = prev;
        }
        self.list(kind).len -= 1;
        if kind == Kind::Drain {
            self.drains_queued -= 1;
            if self.last_drain == idx {
                // Granted from the front, `prev` is NIL at once; only a
                // cancelled drain walks back to the one before it.
                let mut p = prev;
                while p != NIL && self.slots[p].kind != Kind::Drain {
                    p = self.slots[p].prev;
                }
                self.last_drain = p;
            }
        }
        let slot = &mut self.slots[idx];
        slot.status = status;
        slot.waker.take()
    }

    fn free(&mut self, idx: usize) {
        let slot = &mut self.slots[idx];
        // Its waker left with `unlink` (to be woken or dropped by the caller
        // after the lock is released): dropping one here would run foreign
        // code under the lock.
        debug_assert!(slot.waker.is_none(), "slot freed with its waker still in it");
        slot.status = Status::Free;
        slot.next = self.free;
        self.free = idx;
    }
}

/// Wakers collected under the lock, woken after it is released.
///
/// Waking under the lock would run foreign code (the executor's wake) inside
/// our critical section, so wakers are collected there and woken after.
/// The common hand-off wakes one waiter, so the first waker is kept inline
/// and only a second one allocates.
struct WakeList {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl WakeList {
    fn new() -> Self {
        WakeList { first: None, rest: Vec::new() }
    }

    fn push(&mut self, waker: Option<Waker>) {
        match (waker, &self.first) {
            (Some(waker), None) => self.first = Some(waker),
            (Some(waker), Some(_)) => self.rest.push(waker),
            (None, _) => {}
        }
    }

    fn wake_all(&mut self) {
        if let Some(waker) = self.first.take() {
            waker.wake();
        }
        for waker in self.rest.drain(..) {
            waker.wake();
        }
    }
}

/// Stores `new` in `slot` unless the waker there already wakes the same
/// task, and returns the waker it replaced, for the caller to drop once the
/// lock is released (see [`RawGate::lock`]).
fn replace_waker(slot: &mut Option<Waker>, new: &Waker) -> Option<Waker> {
    match slot {
        Some(w) if w.will_wake(new) => None,
        _ => slot.replace(new.clone()),
    }
}

/// Where one future stands in its request. Lives inside the future, so the
/// future can be moved freely (it is `Unpin`): the queue refers to the slot
/// by index, never by address.
#[derive(Debug)]
pub(crate) enum Wait {
    /// Not polled yet.
    Init,
    /// Holds slot `usize` in the waiter slab.
    Queued(usize),
    /// Resolved with a permit or guard, now owned by the caller.
    Done,
    /// Resolved with `Closed`; polling again says `Closed` again.
    Failed,
}

/// The state word, the waiter queue and the cap.
#[derive(Debug)]
pub(crate) struct RawGate {
    state: AtomicUsize,
    /// Mirror of the queue length, written under the lock, for lock-free
    /// introspection.
    queued: AtomicUsize,
    cap: usize,
    waiters: Mutex<Waiters>,
}

impl RawGate {
    /// `cap` must be in `1..=MAX_CAP`; the public constructors check it.
    pub(crate) fn new(cap: usize) -> Self {
        debug_assert!((1..=MAX_CAP).contains(&cap));
        RawGate {
            state: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            cap,
            waiters: Mutex::new(Waiters::new()),
        }
    }

    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    /// Takes the waiter queue's lock.
    ///
    /// No foreign code runs while it is held: no waker is woken *or dropped*
    /// under it (every path takes the waker out and lets it go after the
    /// guard is gone). A waker's drop can free a task and every permit that
    /// task owned, and that release takes this same lock: dropping one here
    /// would deadlock the thread on itself (tokio-rs/tokio#5429). Cloning a
    /// waker, as tokio also does under its semaphore's lock, is the one
    /// exception: `clone` only takes a reference.
    fn lock(&self) -> MutexGuard<'_, Waiters> {
        // Nothing panics while the lock is held (wakers run outside it), so a
        // poisoned lock still guards consistent data.
        self.waiters.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    // ----- fast paths ---------------------------------------------------

    /// `permits` read permits (`1..=cap`, checked by the caller) if they
    /// are free and nobody is queued.
    #[inline]
    pub(crate) fn try_acquire(&self, permits: usize) -> Result<(), TryFail> {
        debug_assert!((1..=self.cap).contains(&permits));
        // First guess: an idle gate. A CAS that misses returns the real state,
        // so no load is needed first; under contention that saves fetching
        // the cache line shared for the load and again exclusive for the CAS.
        let mut state = 0;
        loop {
            match self.state.compare_exchange_weak(
                state,
                state + permits,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
            // Any flag makes `state` larger than every `cap - permits`, so
            // one comparison checks both. Computed here, not before the CAS:
            // the path that succeeds at once does no arithmetic.
            if state > self.cap - permits {
                return Err(if state & CLOSED != 0 { TryFail::Closed } else { TryFail::Busy });
            }
        }
    }

    /// The drain guard if the gate is idle: no reader, no guard, nobody queued.
    #[inline]
    pub(crate) fn try_drain(&self) -> Result<(), TryFail> {
        match self.state.compare_exchange(0, DRAIN_HELD, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => Ok(()),
            Err(state) if state & CLOSED != 0 => Err(TryFail::Closed),
            Err(_) => Err(TryFail::Busy),
        }
    }

    /// Gives back `permits` read permits.
    #[inline]
    pub(crate) fn release_read(&self, permits: usize) {
        let prev = self.state.fetch_sub(permits, Ordering::Release);
        debug_assert!(prev & READERS >= permits, "read permits released that were not out");
        if prev & (QUEUED | CLOSED) != 0 && !Self::release_grants_nothing(prev, permits) {
            self.release_slow();
        }
    }

    /// Whether a release of `permits` from state `prev` can let no request
    /// move, so it need not take the lock: a drain heads the queue (so
    /// nothing behind it may go first), it needs every permit back, and
    /// other permits are still out after this release, so a later release
    /// (the one that brings the count to zero, which does take the lock)
    /// grants it. With the gate closed, every release takes the lock
    /// (`closed_and_idle` waits on the last one).
    ///
    /// Sound because `DRAIN_AT_HEAD` only changes under the lock, and
    /// `settle` clears it with a read-modify-write before it looks at the
    /// count: a release that skipped on a stale bit is seen by that look.
    #[inline]
    fn release_grants_nothing(prev: usize, permits: usize) -> bool {
        prev & (DRAIN_AT_HEAD | CLOSED) == DRAIN_AT_HEAD && prev & READERS > permits
    }

    /// Gives back the drain guard.
    #[inline]
    pub(crate) fn release_drain(&self) {
        // Nothing queued and not closed: no one to admit.
        if self.state.compare_exchange(DRAIN_HELD, 0, Ordering::Release, Ordering::Relaxed).is_err()
        {
            self.release_drain_slow();
        }
    }

    /// Gives back the drain guard under the lock, then admits its batch.
    ///
    /// Under the lock, so that a drain requested meanwhile (its enqueue takes
    /// the lock) sees either this guard still held, and queues behind its
    /// batch, or the batch already admitted; never the guard gone with the
    /// batch still queued, which would let it go to the front.
    #[cold]
    fn release_drain_slow(&self) {
        let waiters = self.lock();
        let prev = self.state.fetch_sub(DRAIN_HELD, Ordering::Release);
        debug_assert!(prev & DRAIN_HELD != 0, "drain guard released while none is held");
        self.settle(waiters);
    }

    #[cold]
    fn release_slow(&self) {
        self.settle(self.lock());
    }

    // ----- queued requests ----------------------------------------------

    /// Polls a read or drain request.
    ///
    /// Returns `Ready(Ok(()))` once the permit or guard is the caller's (it
    /// must then wrap it in an RAII type), `Ready(Err(Closed))` once the gate
    /// is closed, and again on every later poll.
    ///
    /// # Panics
    ///
    /// If polled again after it returned `Ready(Ok(()))` without `wait` being
    /// reset: that grant is gone, and a future must not be polled again.
    ///
    /// `permits` is what a read asks for (`1..=cap`, checked by the caller);
    /// drains pass 1 and it is ignored.
    #[inline]
    pub(crate) fn poll_request(
        &self,
        kind: Kind,
        permits: usize,
        wait: &mut Wait,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Closed>> {
        if let Wait::Init = wait {
            let proceed = std::task::ready!(crate::budget::poll_proceed(cx));
            let fast = match kind {
                Kind::Read => self.try_acquire(permits),
                _ => self.try_drain(),
            };
            match fast {
                Ok(()) => {
                    proceed.made_progress();
                    *wait = Wait::Done;
                    return Poll::Ready(Ok(()));
                }
                Err(TryFail::Closed) => {
                    *wait = Wait::Failed;
                    return Poll::Ready(Err(Closed));
                }
                Err(TryFail::Busy) => {}
            }
        }
        self.poll_request_slow(kind, permits, wait, cx)
    }

    /// [`RawGate::poll_request`] once the fast path is out of the question.
    #[cold]
    fn poll_request_slow(
        &self,
        kind: Kind,
        permits: usize,
        wait: &mut Wait,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Closed>> {
        match *wait {
            Wait::Init => self.enqueue(kind, permits, wait, cx),
            Wait::Queued(idx) => {
                let mut waiters = self.lock();
                let slot = &mut waiters.slots[idx];
                match slot.status {
                    Status::Linked => {
                        let old = replace_waker(&mut slot.waker, cx.waker());
                        drop(waiters);
                        // After the lock: its drop may release a permit.
                        drop(old);
                        Poll::Pending
                    }
                    Status::Granted => {
                        let permits = slot.permits;
                        waiters.free(idx);
                        if self.state.load(Ordering::Acquire) & CLOSED != 0 {
                            *wait = Wait::Failed;
                            // Granted before close, observed after: after
                            // `close()` returns no request resolves `Ok`, so
                            // the grant goes back.
                            self.undo_grant(kind, permits);
                            self.settle(waiters);
                            return Poll::Ready(Err(Closed));
                        }
                        *wait = Wait::Done;
                        Poll::Ready(Ok(()))
                    }
                    Status::Closed => {
                        waiters.free(idx);
                        *wait = Wait::Failed;
                        Poll::Ready(Err(Closed))
                    }
                    Status::Free => {
                        unreachable!("a queued request's slot is never freed by others")
                    }
                }
            }
            // Closed is final, so a re-poll gives the same answer.
            Wait::Failed => Poll::Ready(Err(Closed)),
            Wait::Done => panic!("drain-gate: request future polled after it completed"),
        }
    }

    /// Slow path of a request: grant under the lock if nothing is queued and
    /// the gate allows it, queue otherwise.
    fn enqueue(
        &self,
        kind: Kind,
        permits: usize,
        wait: &mut Wait,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Closed>> {
        crate::budget::reset();
        let mut waiters = self.lock();
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                *wait = Wait::Failed;
                return Poll::Ready(Err(Closed));
            }
            // Nobody queued: the lock may have found the gate free again.
            if state & QUEUED == 0
                && let Some(granted) = self.grant_for(kind, permits, state, &waiters)
            {
                match self.state.compare_exchange(
                    state,
                    granted,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        *wait = Wait::Done;
                        return Poll::Ready(Ok(()));
                    }
                    Err(actual) => {
                        state = actual;
                        continue;
                    }
                }
            }
            let queued = state | QUEUED | if kind == Kind::Drain { DRAIN_PENDING } else { 0 };
            if queued == state {
                break;
            }
            match self.state.compare_exchange(state, queued, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        let idx =
            waiters.push(kind, permits, cx.waker().clone(), state & DRAIN_HELD != 0, self.cap);
        self.sync_drain_at_head(&waiters);
        self.queued.store(waiters.queue.len, Ordering::Relaxed);
        *wait = Wait::Queued(idx);
        if kind == Kind::Drain && waiters.watch.len != 0 {
            // A queued drain wakes the permit holders watching for one.
            self.settle(waiters);
        }
        Poll::Pending
    }

    /// The state after granting `kind` (a read of `permits`) on `state`, if
    /// the gate allows it (ignoring the queue, which the caller has checked).
    fn grant_for(
        &self,
        kind: Kind,
        permits: usize,
        state: usize,
        waiters: &Waiters,
    ) -> Option<usize> {
        match kind {
            Kind::Read => (state & DRAIN_HELD == 0 && state & READERS <= self.cap - permits)
                .then(|| state + permits),
            Kind::Drain => (state & (DRAIN_HELD | READERS) == 0).then(|| {
                // The drain being granted leaves the queue; the last one
                // queued takes DRAIN_PENDING with it.
                let mut next = state | DRAIN_HELD;
                if waiters.drains_queued <= 1 {
                    next &= !DRAIN_PENDING;
                }
                next
            }),
            Kind::Idle | Kind::DrainRequested => unreachable!("watchers are not granted"),
        }
    }

    fn undo_grant(&self, kind: Kind, permits: usize) {
        match kind {
            Kind::Read => self.state.fetch_sub(permits, Ordering::Release),
            _ => self.state.fetch_sub(DRAIN_HELD, Ordering::Release),
        };
    }

    /// Drops a request future's claim: unlinks it if it still waits, gives
    /// back a grant it never observed, and lets the queue move on.
    #[inline]
    pub(crate) fn cancel(&self, kind: Kind, wait: &mut Wait) {
        if let Wait::Queued(idx) = *wait {
            *wait = Wait::Done;
            self.cancel_queued(kind, idx);
        }
    }

    #[cold]
    fn cancel_queued(&self, kind: Kind, idx: usize) {
        let mut waiters = self.lock();
        match waiters.slots[idx].status {
            Status::Linked => {
                let waker = waiters.unlink(idx, Status::Free);
                if kind == Kind::Drain && waiters.drains_queued == 0 {
                    self.state.fetch_and(!DRAIN_PENDING, Ordering::Relaxed);
                }
                waiters.free(idx);
                self.queued.store(waiters.queue.len, Ordering::Relaxed);
                self.settle(waiters);
                // After the lock: its drop may release a permit.
                drop(waker);
            }
            Status::Granted => {
                let permits = waiters.slots[idx].permits;
                waiters.free(idx);
                self.undo_grant(kind, permits);
                self.settle(waiters);
            }
            Status::Closed => waiters.free(idx),
            Status::Free => unreachable!("a queued request's slot is never freed by others"),
        }
    }

    // ----- watchers -------------------------------------------------------

    /// Polls a `closed_and_idle` or `drain_requested` watcher.
    pub(crate) fn poll_watch(&self, kind: Kind, wait: &mut Wait, cx: &mut Context<'_>) -> Poll<()> {
        let fired = |state: usize| match kind {
            Kind::Idle => state & CLOSED != 0 && state & (READERS | DRAIN_HELD) == 0,
            _ => state & DRAIN_PENDING != 0,
        };
        match *wait {
            Wait::Init => {
                if fired(self.state.load(Ordering::Acquire)) {
                    *wait = Wait::Done;
                    return Poll::Ready(());
                }
                let mut waiters = self.lock();
                // Both conditions only turn true under the lock (a release
                // that empties a closed gate then takes the lock to notify),
                // so this second look cannot miss a notification.
                if fired(self.state.load(Ordering::Acquire)) {
                    *wait = Wait::Done;
                    return Poll::Ready(());
                }
                *wait = Wait::Queued(waiters.push(kind, 1, cx.waker().clone(), false, self.cap));
                Poll::Pending
            }
            Wait::Queued(idx) => {
                let mut waiters = self.lock();
                let slot = &mut waiters.slots[idx];
                if slot.status == Status::Linked {
                    let old = replace_waker(&mut slot.waker, cx.waker());
                    drop(waiters);
                    // After the lock: its drop may release a permit.
                    drop(old);
                    return Poll::Pending;
                }
                waiters.free(idx);
                *wait = Wait::Done;
                Poll::Ready(())
            }
            // Both conditions are final or were true once: a re-poll says so again.
            Wait::Done | Wait::Failed => Poll::Ready(()),
        }
    }

    pub(crate) fn cancel_watch(&self, wait: &mut Wait) {
        let Wait::Queued(idx) = *wait else { return };
        *wait = Wait::Done;
        let mut waiters = self.lock();
        let waker = if waiters.slots[idx].status == Status::Linked {
            waiters.unlink(idx, Status::Free)
        } else {
            None
        };
        waiters.free(idx);
        drop(waiters);
        // After the lock: its drop may release a permit.
        drop(waker);
    }

    // ----- close and settle -----------------------------------------------

    /// Closes the gate; returns whether this call did it.
    pub(crate) fn close(&self) -> bool {
        let waiters = self.lock();
        let prev = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        if prev & CLOSED != 0 {
            return false;
        }
        self.settle(waiters);
        true
    }

    /// Brings the queue and the watchers up to date with the state word, then
    /// releases the lock and wakes whoever was granted, failed or notified.
    ///
    /// Called, with the lock held, by everything that may let the queue
    /// move: releases that saw `QUEUED` or `CLOSED`, cancelled requests,
    /// close, and a new queued drain (which notifies watchers).
    ///
    /// Every grant is made before the lock is released: a release admits its
    /// whole batch (up to `cap` readers) in one critical section, so a drain
    /// requested meanwhile finds either the guard still held or the batch in
    /// flight, never half of it still queued (the fairness rule counts on
    /// it).
    fn settle<'a>(&'a self, mut waiters: MutexGuard<'a, Waiters>) {
        // Before any load below: a release that skipped the lock on a stale
        // `DRAIN_AT_HEAD` (see `release_grants_nothing`) is ordered before
        // this read-modify-write, so the loads see its count.
        self.sync_drain_at_head(&waiters);
        let mut wakers = WakeList::new();
        // Grant (or fail, once closed) from the front of the queue.
        while waiters.queue.head != NIL {
            let idx = waiters.queue.head;
            let Slot { kind, permits, .. } = waiters.slots[idx];
            let mut state = self.state.load(Ordering::Acquire);
            let status = loop {
                if state & CLOSED != 0 {
                    break Status::Closed;
                }
                let Some(next) = self.grant_for(kind, permits, state, &waiters) else {
                    break Status::Linked;
                };
                match self.state.compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => break Status::Granted,
                    Err(actual) => state = actual,
                }
            };
            if status == Status::Linked {
                break;
            }
            wakers.push(waiters.unlink(idx, status));
        }
        self.queued.store(waiters.queue.len, Ordering::Relaxed);
        if waiters.queue.len == 0 {
            self.state.fetch_and(!(QUEUED | DRAIN_PENDING | DRAIN_AT_HEAD), Ordering::AcqRel);
        } else {
            self.sync_drain_at_head(&waiters);
        }

        let state = self.state.load(Ordering::Acquire);
        let idle = state & CLOSED != 0 && state & (READERS | DRAIN_HELD) == 0;
        for (kind, fire) in [(Kind::Idle, idle), (Kind::DrainRequested, state & DRAIN_PENDING != 0)]
        {
            if !fire {
                continue;
            }
            while waiters.list(kind).head != NIL {
                let idx = waiters.list(kind).head;
                wakers.push(waiters.unlink(idx, Status::Granted));
            }
        }
        drop(waiters);
        wakers.wake_all();
    }

    /// Makes `DRAIN_AT_HEAD` say whether a drain heads the queue. Lock held.
    ///
    /// Clearing is always a read-modify-write (`settle` relies on it); when
    /// the bit is already right this is one load.
    fn sync_drain_at_head(&self, waiters: &Waiters) {
        let head = waiters.queue.head;
        let at_head = head != NIL && waiters.slots[head].kind == Kind::Drain;
        let state = self.state.load(Ordering::Relaxed);
        if at_head && state & DRAIN_AT_HEAD == 0 {
            self.state.fetch_or(DRAIN_AT_HEAD, Ordering::AcqRel);
        } else if !at_head && state & DRAIN_AT_HEAD != 0 {
            self.state.fetch_and(!DRAIN_AT_HEAD, Ordering::AcqRel);
        }
    }

    // ----- introspection --------------------------------------------------

    pub(crate) fn readers_in_flight(&self) -> usize {
        self.state.load(Ordering::Relaxed) & READERS
    }

    pub(crate) fn waiters(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    pub(crate) fn is_drain_pending(&self) -> bool {
        self.state.load(Ordering::Relaxed) & DRAIN_PENDING != 0
    }

    pub(crate) fn is_drain_held(&self) -> bool {
        self.state.load(Ordering::Relaxed) & DRAIN_HELD != 0
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state.load(Ordering::Relaxed) & CLOSED != 0
    }
}

/// Why a non-waiting attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryFail {
    Closed,
    /// At cap, a drain held, or someone queued ahead.
    Busy,
}

pub(crate) use crate::error::Closed;
