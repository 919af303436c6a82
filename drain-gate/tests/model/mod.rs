//! The `permit_sequences` model: a byte decoder, a plain sequential reference
//! model of one [`DrainGate`], and a checker that drives the real gate with
//! hand-polled futures and counting wakers and compares the two after every
//! operation.
//!
//! Shared, unchanged, by the `permit_sequences` fuzz target (through
//! `#[path]`) and by the stable replay in `tests/model_replay.rs`, so a crash
//! file found by the fuzzer replays in `cargo test`.
//!
//! # Input format
//!
//! The first byte picks the cap, `1 + b % 8`. Every later byte is one
//! operation: the high nibble picks it and the low nibble `k` is its argument
//! (see [`Op::from_byte`]; [`Op::to_byte`] is its canonical inverse). Every
//! byte string is a valid input.
//!
//! # What the model says
//!
//! The reference model is the contract documented on [`DrainGate`]: one
//! queue over read and drain requests, served from the front; a read asks
//! for `n` permits (1, or `1..=cap` through `acquire_many`) and is granted
//! when `n` are free; readers queue at the back; a drain queues behind every
//! drain already queued and the *batch* right behind the last of them, the
//! longest run of readers whose permits add up to at most `cap` (with none
//! queued: taken from the front if a drain is held, else nobody: the
//! front), so it overtakes only readers outside those batches; a request for
//! 0 or more than `cap` permits fails at once, before anything else;
//! a queued request is granted on its
//! behalf as soon as it is at the front and the gate allows it (so the
//! reader count includes granted-but-unobserved grants); a dropped granted
//! future gives its grant back; close fails every queued request and, on
//! its next poll, every granted-but-unobserved one (giving the grant back);
//! `try_*` fail while anyone is queued; after [`BUDGET`] requests in a row on
//! one thread that did not wait, the next request yields once (wakes itself,
//! returns `Pending`, takes nothing). The thread's budget counter is brought to
//! a known value before every run (see [`Harness::new`]), so the model tracks
//! the yield exactly.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::task::Poll;

use drain_gate::{
    Acquire, AcquireMany, AcquireManyError, AcquireManyOwned, AcquireOwned, Closed, ClosedAndIdle,
    Drain, DrainGate, DrainGuard, DrainOwned, DrainRequested, InvalidPermits, OwnedDrainGuard,
    OwnedReadPermit, OwnedReadPermits, ReadPermit, ReadPermits, TryAcquireError, TryDrainError,
};

/// Requests a thread may start in a row without waiting before one yields
/// (documented under "Executor fairness" on [`DrainGate`]).
pub const BUDGET: u32 = 128;

/// At most this many futures are alive at once; further starts are skipped.
pub const MAX_FUTURES: usize = 64;

/// Inputs are cut to this many operations, to bound a run's time.
pub const MAX_OPS: usize = 1024;

/// One operation of a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Create an [`Acquire`] future and poll it once.
    Acquire,
    /// Create an [`AcquireOwned`] future and poll it once.
    AcquireOwned,
    /// [`DrainGate::try_acquire`].
    TryAcquire,
    /// [`DrainGate::try_acquire_owned`].
    TryAcquireOwned,
    /// Create a [`Drain`] future and poll it once.
    Drain,
    /// Create a [`DrainOwned`] future and poll it once.
    DrainOwned,
    /// [`DrainGate::try_drain`].
    TryDrain,
    /// [`DrainGate::try_drain_owned`].
    TryDrainOwned,
    /// Poll the `k % len`-th live future with its own waker.
    Poll(u8),
    /// Poll the `k % len`-th live future with a fresh waker (the old one
    /// must no longer be the one woken).
    PollFresh(u8),
    /// Drop the `k % len`-th live future.
    DropFuture(u8),
    /// Drop the `k % len`-th held permit or guard.
    DropHeld(u8),
    /// Create a [`ClosedAndIdle`] future and poll it once.
    ClosedAndIdle,
    /// Create a [`DrainRequested`] watcher on the `k % len`-th held read
    /// permit and poll it once (kept if it is a borrowed permit's).
    DrainRequested(u8),
    /// [`DrainGate::close`].
    Close,
    /// Poll every live future once, oldest first.
    PollAll,
    /// `8 * (k + 1)` times: start an acquire and drop what it gave, to run
    /// the thread's budget out (checked as one step; every poll in it is
    /// still compared with the model).
    Burst(u8),
    /// Create an [`AcquireMany`] (or, if `owned`, an [`AcquireManyOwned`])
    /// future for `n` permits (0 to 7: 0 and above the cap are invalid) and
    /// poll it once.
    AcquireMany { n: u8, owned: bool },
    /// [`DrainGate::try_acquire_many`] (or `_owned`) for `n` permits (0 to 6).
    TryAcquireMany { n: u8, owned: bool },
}

impl Op {
    /// Decodes one operation byte: high nibble the operation, low nibble `k`.
    pub fn from_byte(b: u8) -> Op {
        let k = b & 0x0f;
        match b >> 4 {
            0x0 => Op::Acquire,
            0xc => Op::AcquireMany { n: k & 7, owned: k & 8 != 0 },
            0x1 => Op::AcquireOwned,
            0x2 if k < 2 && k.is_multiple_of(2) => Op::TryAcquire,
            0x2 if k < 2 => Op::TryAcquireOwned,
            0x2 => Op::TryAcquireMany { n: (k >> 1) - 1, owned: k & 1 != 0 },
            0x3 if k.is_multiple_of(2) => Op::Drain,
            0x3 => Op::DrainOwned,
            0x4 if k.is_multiple_of(2) => Op::TryDrain,
            0x4 => Op::TryDrainOwned,
            0x5 | 0xd => Op::Poll(k),
            0x6 => Op::PollFresh(k),
            0x7 | 0xe => Op::DropFuture(k),
            0x8 | 0xf => Op::DropHeld(k),
            0x9 if k < 8 => Op::ClosedAndIdle,
            0x9 => Op::DrainRequested(k - 8),
            0xa if k == 0 => Op::Close,
            0xa => Op::PollAll,
            _ => Op::Burst(k),
        }
    }

    /// The canonical byte that [`Op::from_byte`] decodes to `self`.
    /// Arguments are taken modulo their range.
    pub fn to_byte(self) -> u8 {
        match self {
            Op::Acquire => 0x00,
            Op::AcquireOwned => 0x10,
            Op::TryAcquire => 0x20,
            Op::TryAcquireOwned => 0x21,
            Op::Drain => 0x30,
            Op::DrainOwned => 0x31,
            Op::TryDrain => 0x40,
            Op::TryDrainOwned => 0x41,
            Op::Poll(k) => 0x50 | (k & 0x0f),
            Op::PollFresh(k) => 0x60 | (k & 0x0f),
            Op::DropFuture(k) => 0x70 | (k & 0x0f),
            Op::DropHeld(k) => 0x80 | (k & 0x0f),
            Op::ClosedAndIdle => 0x90,
            Op::DrainRequested(k) => 0x98 | (k & 0x07),
            Op::Close => 0xa0,
            Op::PollAll => 0xa1,
            Op::Burst(k) => 0xb0 | (k & 0x0f),
            Op::AcquireMany { n, owned } => 0xc0 | (n & 7) | if owned { 8 } else { 0 },
            Op::TryAcquireMany { n, owned } => 0x20 | (((n % 7) + 1) << 1) | u8::from(owned),
        }
    }
}

/// Decodes an input into a cap (1 to 8) and at most [`MAX_OPS`] operations.
pub fn decode(data: &[u8]) -> (usize, Vec<Op>) {
    let cap = data.first().map_or(1, |b| 1 + usize::from(b % 8));
    let ops = data.iter().skip(1).take(MAX_OPS).map(|&b| Op::from_byte(b)).collect();
    (cap, ops)
}

/// Encodes a cap and operations into an input that [`decode`] gives back.
pub fn encode(cap: usize, ops: &[Op]) -> Vec<u8> {
    assert!((1..=8).contains(&cap), "the model runs caps 1 to 8");
    let mut out = vec![(cap - 1) as u8];
    out.extend(ops.iter().map(|op| op.to_byte()));
    out
}

/// Decodes `data` and runs it; panics, naming the step, on any divergence.
pub fn run(data: &[u8]) {
    let (cap, ops) = decode(data);
    run_ops(cap, &ops);
}

/// Runs `ops` on a fresh gate of `cap`, checking after every step, then drops
/// everything and checks the gate is idle; panics on any divergence.
pub fn run_ops(cap: usize, ops: &[Op]) {
    let gate = Arc::new(DrainGate::new(cap));
    let mut harness = Harness::new(&gate);
    for &op in ops {
        harness.apply(op);
    }
    harness.finish();
}

// ----- counting wakers ------------------------------------------------------

// The same hand-polling helpers as the other drain-gate tests; a relative
// `#[path]` so the fuzz target, which includes this file by path, finds it too.
#[path = "../support/mod.rs"]
mod support;
use support::Probe;

// ----- the real objects -----------------------------------------------------

/// A permit or guard the harness holds.
enum Held<'g> {
    Read(ReadPermit<'g>),
    ReadOwned(OwnedReadPermit),
    Reads(ReadPermits<'g>),
    ReadsOwned(OwnedReadPermits),
    Guard(DrainGuard<'g>),
    GuardOwned(OwnedDrainGuard),
}

impl Held<'_> {
    fn is_read(&self) -> bool {
        matches!(self, Held::Read(_) | Held::ReadOwned(_) | Held::Reads(_) | Held::ReadsOwned(_))
    }

    /// Read permits held (0 for a guard).
    fn permits(&self) -> usize {
        match self {
            Held::Read(_) | Held::ReadOwned(_) => 1,
            Held::Reads(p) => p.permits(),
            Held::ReadsOwned(p) => p.permits(),
            Held::Guard(_) | Held::GuardOwned(_) => 0,
        }
    }
}

/// A live future.
enum Fut<'g> {
    Acquire(Acquire<'g>),
    AcquireOwned(AcquireOwned),
    Drain(Drain<'g>),
    DrainOwned(DrainOwned),
    AcquireMany(AcquireMany<'g>),
    AcquireManyOwned(AcquireManyOwned),
    Idle(ClosedAndIdle<'g>),
    DrainRequested(DrainRequested<'g>),
}

/// What one poll of a [`Fut`] gave.
enum Outcome<'g> {
    Pending,
    Granted(Held<'g>),
    Closed,
    /// `acquire_many` refused the count.
    Invalid(InvalidPermits),
    Fired,
}

impl<'g> Fut<'g> {
    fn poll(&mut self, probe: &Probe) -> Outcome<'g> {
        fn req<'a, T>(p: Poll<Result<T, Closed>>, wrap: impl FnOnce(T) -> Held<'a>) -> Outcome<'a> {
            match p {
                Poll::Pending => Outcome::Pending,
                Poll::Ready(Ok(t)) => Outcome::Granted(wrap(t)),
                Poll::Ready(Err(Closed)) => Outcome::Closed,
            }
        }
        fn many<'a, T>(
            p: Poll<Result<T, AcquireManyError>>,
            wrap: impl FnOnce(T) -> Held<'a>,
        ) -> Outcome<'a> {
            match p {
                Poll::Pending => Outcome::Pending,
                Poll::Ready(Ok(t)) => Outcome::Granted(wrap(t)),
                Poll::Ready(Err(AcquireManyError::Closed)) => Outcome::Closed,
                Poll::Ready(Err(AcquireManyError::Invalid(e))) => Outcome::Invalid(e),
            }
        }
        match self {
            Fut::AcquireMany(f) => many(probe.poll(f), Held::Reads),
            Fut::AcquireManyOwned(f) => many(probe.poll(f), Held::ReadsOwned),
            Fut::Acquire(f) => req(probe.poll(f), Held::Read),
            Fut::AcquireOwned(f) => req(probe.poll(f), Held::ReadOwned),
            Fut::Drain(f) => req(probe.poll(f), Held::Guard),
            Fut::DrainOwned(f) => req(probe.poll(f), Held::GuardOwned),
            Fut::Idle(f) => match probe.poll(f) {
                Poll::Pending => Outcome::Pending,
                Poll::Ready(()) => Outcome::Fired,
            },
            Fut::DrainRequested(f) => match probe.poll(f) {
                Poll::Pending => Outcome::Pending,
                Poll::Ready(()) => Outcome::Fired,
            },
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Fut::Acquire(_)
            | Fut::AcquireOwned(_)
            | Fut::AcquireMany(_)
            | Fut::AcquireManyOwned(_) => Kind::Read,
            Fut::Drain(_) | Fut::DrainOwned(_) => Kind::Drain,
            Fut::Idle(_) => Kind::Idle,
            Fut::DrainRequested(_) => Kind::DrainRequested,
        }
    }
}

// ----- the model --------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Read,
    Drain,
    Idle,
    DrainRequested,
}

/// Where the model says a future stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// Request not yet past its first poll: it yielded (woke itself).
    Yielded,
    /// Request in the FIFO queue.
    Linked,
    /// Request granted on its behalf, not yet observed.
    Granted,
    /// Request failed by close while queued, not yet observed.
    ClosedFail,
    /// Request resolved `Err(Closed)`; re-polls say so again.
    Failed,
    /// Watcher registered, condition not met.
    WatchLinked,
    /// Watcher's condition met since it registered, not yet observed.
    WatchFired,
    /// Watcher resolved; re-polls resolve again.
    WatchDone,
}

struct Tracked<'g> {
    id: u64,
    kind: Kind,
    /// Read permits asked for (1 for drains and watchers).
    permits: usize,
    fut: Fut<'g>,
    probe: Probe,
    /// Wake count of `probe` the model has accounted for.
    seen: usize,
    st: St,
}

/// The real gate, the objects it handed out, and the model beside them.
pub struct Harness<'g> {
    gate: &'g Arc<DrainGate>,
    futs: Vec<Tracked<'g>>,
    held: Vec<Held<'g>>,
    next_id: u64,
    // The model.
    cap: usize,
    readers: usize,
    drain_held: bool,
    closed: bool,
    /// Queued requests: id, kind, permits asked for.
    queue: VecDeque<(u64, Kind, usize)>,
    /// Drains in `queue`.
    drains_queued: usize,
    run: u32,
    // Context for failure messages.
    trace: Vec<Op>,
    sub: &'static str,
}

macro_rules! ensure {
    ($h:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            $h.fail(format!($($fmt)+));
        }
    };
}

impl<'g> Harness<'g> {
    /// A harness over `gate`, which must be fresh.
    ///
    /// Brings this thread's request budget to a known state first: a request
    /// that has to wait resets the run, so one blocked request on a scratch
    /// gate (polled again if its first poll was the budget's yield) leaves
    /// the count at zero whatever ran on this thread before.
    pub fn new(gate: &'g Arc<DrainGate>) -> Self {
        let scratch = DrainGate::new(1);
        let _guard = scratch.try_drain().expect("a fresh gate can be drained");
        let mut blocked = scratch.acquire();
        let probe = Probe::new();
        for _ in 0..2 {
            assert!(probe.poll(&mut blocked).is_pending(), "calibration request must wait");
            if scratch.waiters() == 1 {
                break;
            }
        }
        assert_eq!(scratch.waiters(), 1, "calibration request never queued");
        drop(blocked);

        let cap = gate.cap();
        let harness = Harness {
            gate,
            futs: Vec::new(),
            held: Vec::new(),
            next_id: 0,
            cap,
            readers: 0,
            drain_held: false,
            closed: false,
            queue: VecDeque::new(),
            drains_queued: 0,
            run: 0,
            trace: Vec::new(),
            sub: "",
        };
        harness.check();
        harness
    }

    #[track_caller]
    fn fail(&self, msg: String) -> ! {
        let mut ctx = String::new();
        let _ = write!(
            ctx,
            "cap {}, step {} {:?}{}\n  model: readers {} drain_held {} closed {} queue {:?} run {}\n  futures:",
            self.cap,
            self.trace.len().saturating_sub(1),
            self.trace.last(),
            self.sub,
            self.readers,
            self.drain_held,
            self.closed,
            self.queue,
            self.run,
        );
        for t in &self.futs {
            let _ = write!(
                ctx,
                " #{}:{:?}:{:?}(wakes {} seen {})",
                t.id,
                t.kind,
                t.st,
                t.probe.wakes(),
                t.seen
            );
        }
        let _ = write!(ctx, "\n  ops: {:?}", self.trace);
        panic!("drain-gate model divergence: {msg}\n  {ctx}");
    }

    fn drain_pending(&self) -> bool {
        self.drains_queued > 0
    }

    fn enqueue(&mut self, id: u64, kind: Kind, permits: usize) {
        match kind {
            Kind::Drain => {
                // Behind the last queued drain and the batch it will admit;
                // only readers follow the last drain.
                let (start, batch) =
                    match self.queue.iter().rposition(|&(_, k, _)| k == Kind::Drain) {
                        Some(last) => (last + 1, self.cap),
                        None if self.drain_held => (0, self.cap),
                        None => (0, 0),
                    };
                // The batch: the longest run of readers from `start` whose
                // permits add up to at most `batch`.
                let mut at = start;
                let mut admitted = 0;
                while let Some(&(_, _, n)) = self.queue.get(at) {
                    if admitted + n > batch {
                        break;
                    }
                    admitted += n;
                    at += 1;
                }
                self.queue.insert(at, (id, kind, permits));
                self.drains_queued += 1;
            }
            _ => self.queue.push_back((id, kind, permits)),
        }
    }

    fn unqueue(&mut self, id: u64, kind: Kind) {
        let at = self.queue.iter().position(|&(q, _, _)| q == id).expect("queued future is queued");
        self.queue.remove(at);
        self.drains_queued -= usize::from(kind == Kind::Drain);
    }

    fn pos(&self, id: u64) -> usize {
        self.futs.iter().position(|t| t.id == id).expect("queued future is alive")
    }

    /// Whether the gate itself (ignoring the queue) allows `kind` (a read of
    /// `permits`) now.
    fn allows(&self, kind: Kind, permits: usize) -> bool {
        match kind {
            Kind::Read => !self.drain_held && self.readers + permits <= self.cap,
            Kind::Drain => !self.drain_held && self.readers == 0,
            Kind::Idle | Kind::DrainRequested => unreachable!("watchers are not granted"),
        }
    }

    fn take(&mut self, kind: Kind, permits: usize) {
        match kind {
            Kind::Read => self.readers += permits,
            Kind::Drain => self.drain_held = true,
            _ => unreachable!(),
        }
    }

    fn give_back(&mut self, kind: Kind, permits: usize) {
        match kind {
            Kind::Read => self.readers -= permits,
            Kind::Drain => self.drain_held = false,
            _ => unreachable!(),
        }
    }

    /// The model's reaction to anything that may let the queue move: grant
    /// (or fail, once closed) from the front, then fire watchers.
    fn settle(&mut self) {
        while let Some(&(id, kind, permits)) = self.queue.front() {
            let i = self.pos(id);
            if self.closed {
                self.futs[i].st = St::ClosedFail;
            } else if self.allows(kind, permits) {
                self.take(kind, permits);
                self.futs[i].st = St::Granted;
            } else {
                break;
            }
            self.unqueue(id, kind);
        }
        let idle = self.closed && self.readers == 0 && !self.drain_held;
        let pending = self.drain_pending();
        for t in &mut self.futs {
            let fire = match t.kind {
                Kind::Idle => idle,
                Kind::DrainRequested => pending,
                _ => false,
            };
            if fire && t.st == St::WatchLinked {
                t.st = St::WatchFired;
            }
        }
    }

    /// Counts one request against the thread's budget; `true` if it yields.
    fn budget_yields(&mut self) -> bool {
        if self.run >= BUDGET {
            self.run = 0;
            true
        } else {
            self.run += 1;
            false
        }
    }

    // ----- operations -------------------------------------------------------

    /// Applies one operation and checks the gate against the model.
    pub fn apply(&mut self, op: Op) {
        self.trace.push(op);
        self.sub = "";
        self.step(op);
        self.check();
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Acquire => self.start(Fut::Acquire(self.gate.acquire())),
            Op::AcquireOwned => self.start(Fut::AcquireOwned(self.gate.clone().acquire_owned())),
            Op::Drain => self.start(Fut::Drain(self.gate.drain())),
            Op::DrainOwned => self.start(Fut::DrainOwned(self.gate.clone().drain_owned())),
            Op::ClosedAndIdle => self.start(Fut::Idle(self.gate.closed_and_idle())),
            Op::AcquireMany { n, owned } => {
                let n = usize::from(n);
                let fut = if owned {
                    Fut::AcquireManyOwned(self.gate.clone().acquire_many_owned(n))
                } else {
                    Fut::AcquireMany(self.gate.acquire_many(n))
                };
                self.start_weighted(fut, n);
            }
            Op::TryAcquire | Op::TryAcquireOwned | Op::TryAcquireMany { .. } => {
                let (n, got) = match op {
                    Op::TryAcquire => (1, self.gate.try_acquire().map(Held::Read)),
                    Op::TryAcquireOwned => {
                        (1, self.gate.clone().try_acquire_owned().map(Held::ReadOwned))
                    }
                    Op::TryAcquireMany { n, owned: false } => {
                        let n = usize::from(n);
                        (n, self.gate.try_acquire_many(n).map(Held::Reads))
                    }
                    Op::TryAcquireMany { n, owned: true } => {
                        let n = usize::from(n);
                        (n, self.gate.clone().try_acquire_many_owned(n).map(Held::ReadsOwned))
                    }
                    _ => unreachable!(),
                };
                let want = if n == 0 || n > self.cap {
                    Err(TryAcquireError::Invalid(InvalidPermits { permits: n, cap: self.cap }))
                } else if self.closed {
                    Err(TryAcquireError::Closed)
                } else if !self.queue.is_empty() || !self.allows(Kind::Read, n) {
                    Err(TryAcquireError::NoPermits)
                } else {
                    Ok(())
                };
                let got_unit = got.as_ref().map(|_| ()).map_err(|e| *e);
                ensure!(
                    self,
                    got_unit == want,
                    "try_acquire of {n} gave {got_unit:?}, model says {want:?}"
                );
                if let Ok(held) = got {
                    ensure!(self, held.permits() == n, "permit holds {} not {n}", held.permits());
                    self.take(Kind::Read, n);
                    self.held.push(held);
                }
            }
            Op::TryDrain | Op::TryDrainOwned => {
                let got = if op == Op::TryDrain {
                    self.gate.try_drain().map(Held::Guard)
                } else {
                    self.gate.clone().try_drain_owned().map(Held::GuardOwned)
                };
                let want = if self.closed {
                    Err(TryDrainError::Closed)
                } else if !self.queue.is_empty() || !self.allows(Kind::Drain, 1) {
                    Err(TryDrainError::Busy)
                } else {
                    Ok(())
                };
                let got_unit = got.as_ref().map(|_| ()).map_err(|e| *e);
                ensure!(self, got_unit == want, "try_drain gave {got_unit:?}, model says {want:?}");
                if let Ok(held) = got {
                    self.take(Kind::Drain, 1);
                    self.held.push(held);
                }
            }
            Op::Poll(k) | Op::PollFresh(k) => {
                if !self.futs.is_empty() {
                    let i = usize::from(k) % self.futs.len();
                    self.poll_at(i, matches!(op, Op::PollFresh(_)));
                }
            }
            Op::DropFuture(k) => {
                if !self.futs.is_empty() {
                    self.drop_future(usize::from(k) % self.futs.len());
                }
            }
            Op::DropHeld(k) => {
                if !self.held.is_empty() {
                    self.drop_held(usize::from(k) % self.held.len());
                }
            }
            Op::DrainRequested(k) => self.watch_drain(k),
            Op::Close => {
                let first = self.gate.close();
                ensure!(
                    self,
                    first != self.closed,
                    "close() returned {first} on a gate closed={}",
                    self.closed
                );
                self.closed = true;
                self.settle();
            }
            Op::PollAll => self.poll_all(),
            Op::Burst(k) => {
                self.sub = " (in burst)";
                for _ in 0..8 * (usize::from(k) + 1) {
                    let (futs, held) = (self.futs.len(), self.held.len());
                    self.step(Op::Acquire);
                    if self.held.len() > held {
                        self.drop_held(self.held.len() - 1);
                    } else if self.futs.len() > futs {
                        self.drop_future(self.futs.len() - 1);
                    }
                }
            }
        }
    }

    fn poll_all(&mut self) {
        let ids: Vec<u64> = self.futs.iter().map(|t| t.id).collect();
        for id in ids {
            if let Some(i) = self.futs.iter().position(|t| t.id == id) {
                self.poll_at(i, false);
                self.check();
            }
        }
    }

    /// Creates a tracked future and polls it once.
    fn start(&mut self, fut: Fut<'g>) {
        self.start_weighted(fut, 1);
    }

    /// [`Harness::start`] for a read of `permits`; a count the gate can
    /// never grant must fail on every poll, before the budget or the queue
    /// are touched.
    fn start_weighted(&mut self, mut fut: Fut<'g>, permits: usize) {
        if permits == 0 || permits > self.cap {
            let probe = Probe::new();
            let want = InvalidPermits { permits, cap: self.cap };
            for _ in 0..2 {
                match fut.poll(&probe) {
                    Outcome::Invalid(e) => {
                        ensure!(self, e == want, "acquire_many({permits}) refused with {e:?}")
                    }
                    out => self.fail(format!(
                        "acquire_many({permits}) at cap {} should fail Invalid, got {}",
                        self.cap,
                        name(&out)
                    )),
                }
            }
            ensure!(self, probe.wakes() == 0, "an invalid acquire_many woke");
            return;
        }
        if self.futs.len() >= MAX_FUTURES {
            return;
        }
        let kind = fut.kind();
        let st = match kind {
            Kind::Read | Kind::Drain => St::Yielded, // "not past its first poll"
            _ => St::WatchLinked,
        };
        let id = self.next_id;
        self.next_id += 1;
        self.futs.push(Tracked { id, kind, permits, fut, probe: Probe::new(), seen: 0, st });
        let i = self.futs.len() - 1;
        self.first_poll(i);
    }

    /// The first poll of a request (fresh or after a yield) or a watcher.
    fn first_poll(&mut self, i: usize) {
        let (kind, permits) = (self.futs[i].kind, self.futs[i].permits);
        let before = self.futs[i].probe.wakes();
        let out = {
            let t = &mut self.futs[i];
            t.fut.poll(&t.probe)
        };
        match kind {
            Kind::Read | Kind::Drain => {
                if self.budget_yields() {
                    ensure!(
                        self,
                        matches!(out, Outcome::Pending),
                        "{kind:?} request should yield (budget spent) but resolved"
                    );
                    ensure!(
                        self,
                        self.futs[i].probe.wakes() > before,
                        "{kind:?} request yielded without waking itself"
                    );
                    self.futs[i].st = St::Yielded;
                    self.futs[i].seen = before;
                    return;
                }
                if self.closed {
                    ensure!(
                        self,
                        matches!(out, Outcome::Closed),
                        "{kind:?} request on a closed gate should fail Closed, got {}",
                        name(&out)
                    );
                    self.futs[i].st = St::Failed;
                } else if self.queue.is_empty() && self.allows(kind, permits) {
                    let Outcome::Granted(held) = out else {
                        self.fail(format!(
                            "{kind:?} request should be granted at once, got {}",
                            name(&out)
                        ));
                    };
                    ensure!(self, held.is_read() == (kind == Kind::Read), "wrong token kind");
                    self.check_permits(&held, kind, permits);
                    self.take(kind, permits);
                    self.held.push(held);
                    self.futs.remove(i);
                    return;
                } else {
                    ensure!(
                        self,
                        matches!(out, Outcome::Pending),
                        "{kind:?} request should queue, got {}",
                        name(&out)
                    );
                    self.run = 0;
                    let id = self.futs[i].id;
                    self.futs[i].st = St::Linked;
                    self.enqueue(id, kind, permits);
                    self.settle();
                }
            }
            Kind::Idle | Kind::DrainRequested => {
                let fired = match kind {
                    Kind::Idle => self.closed && self.readers == 0 && !self.drain_held,
                    _ => self.drain_pending(),
                };
                if fired {
                    ensure!(
                        self,
                        matches!(out, Outcome::Fired),
                        "{kind:?} watcher should resolve at once, got {}",
                        name(&out)
                    );
                    self.futs[i].st = St::WatchDone;
                } else {
                    ensure!(
                        self,
                        matches!(out, Outcome::Pending),
                        "{kind:?} watcher should be pending, got {}",
                        name(&out)
                    );
                    self.futs[i].st = St::WatchLinked;
                }
            }
        }
        self.futs[i].seen = self.futs[i].probe.wakes();
    }

    fn poll_at(&mut self, i: usize, fresh: bool) {
        if fresh {
            let t = &mut self.futs[i];
            // Wake-ups owed before this poll were owed to the old waker.
            t.probe = Probe::new();
            t.seen = 0;
        }
        let st = self.futs[i].st;
        if st == St::Yielded {
            return self.first_poll(i);
        }
        let kind = self.futs[i].kind;
        let out = {
            let t = &mut self.futs[i];
            t.fut.poll(&t.probe)
        };
        match st {
            St::Linked | St::WatchLinked => {
                ensure!(
                    self,
                    matches!(out, Outcome::Pending),
                    "{kind:?} future the model has waiting resolved: {}",
                    name(&out)
                );
            }
            St::Granted if self.closed => {
                ensure!(
                    self,
                    matches!(out, Outcome::Closed),
                    "{kind:?} granted before close, observed after, should fail Closed, got {}",
                    name(&out)
                );
                self.futs[i].st = St::Failed;
                self.give_back(kind, self.futs[i].permits);
                self.settle();
            }
            St::Granted => {
                let Outcome::Granted(held) = out else {
                    self.fail(format!(
                        "granted {kind:?} future should complete, got {}",
                        name(&out)
                    ));
                };
                ensure!(self, held.is_read() == (kind == Kind::Read), "wrong token kind");
                self.check_permits(&held, kind, self.futs[i].permits);
                self.held.push(held);
                self.futs.remove(i);
                return;
            }
            St::ClosedFail | St::Failed => {
                ensure!(
                    self,
                    matches!(out, Outcome::Closed),
                    "{kind:?} future failed by close should say Closed, got {}",
                    name(&out)
                );
                self.futs[i].st = St::Failed;
            }
            St::WatchFired | St::WatchDone => {
                ensure!(
                    self,
                    matches!(out, Outcome::Fired),
                    "{kind:?} watcher whose condition was met should resolve, got {}",
                    name(&out)
                );
                self.futs[i].st = St::WatchDone;
            }
            St::Yielded => unreachable!(),
        }
        self.futs[i].seen = self.futs[i].probe.wakes();
    }

    fn drop_future(&mut self, i: usize) {
        let t = self.futs.remove(i);
        let (id, kind, st, permits) = (t.id, t.kind, t.st, t.permits);
        drop(t);
        match st {
            St::Linked => {
                self.unqueue(id, kind);
                self.settle();
            }
            St::Granted => {
                self.give_back(kind, permits);
                self.settle();
            }
            _ => {}
        }
    }

    fn drop_held(&mut self, i: usize) {
        let held = self.held.remove(i);
        let kind = if held.is_read() { Kind::Read } else { Kind::Drain };
        let permits = held.permits();
        drop(held);
        self.give_back(kind, permits);
        self.settle();
    }

    /// A read permit must hold what its request asked for.
    fn check_permits(&self, held: &Held<'_>, kind: Kind, permits: usize) {
        if kind == Kind::Read {
            ensure!(
                self,
                held.permits() == permits,
                "permit holds {} not {permits}",
                held.permits()
            );
        }
    }

    fn watch_drain(&mut self, k: u8) {
        let reads: Vec<usize> = (0..self.held.len()).filter(|&i| self.held[i].is_read()).collect();
        if reads.is_empty() {
            return;
        }
        let i = reads[usize::from(k) % reads.len()];
        let pending = self.drain_pending();
        match &self.held[i] {
            Held::Read(permit) => {
                ensure!(
                    self,
                    permit.is_drain_pending() == pending,
                    "permit.is_drain_pending() says {}, model {pending}",
                    !pending
                );
                let watcher = permit.drain_requested();
                self.start(Fut::DrainRequested(watcher));
            }
            Held::Reads(permits) => {
                ensure!(
                    self,
                    permits.is_drain_pending() == pending,
                    "permits.is_drain_pending() says {}, model {pending}",
                    !pending
                );
                let watcher = permits.drain_requested();
                self.start(Fut::DrainRequested(watcher));
            }
            Held::ReadOwned(_) | Held::ReadsOwned(_) => {
                let (is_pending, mut watcher) = match &self.held[i] {
                    Held::ReadOwned(p) => (p.is_drain_pending(), p.drain_requested()),
                    Held::ReadsOwned(p) => (p.is_drain_pending(), p.drain_requested()),
                    _ => unreachable!(),
                };
                ensure!(
                    self,
                    is_pending == pending,
                    "owned permit.is_drain_pending() says {}, model {pending}",
                    !pending
                );
                // Borrows the permit: polled once here, then dropped.
                let probe = Probe::new();
                let fired = probe.poll(&mut watcher).is_ready();
                drop(watcher);
                ensure!(
                    self,
                    fired == pending,
                    "owned permit's drain_requested resolved={fired}, model says drain pending={pending}"
                );
                ensure!(self, probe.wakes() == 0, "drain_requested woke on its first poll");
            }
            Held::Guard(_) | Held::GuardOwned(_) => unreachable!(),
        }
    }

    // ----- checks -------------------------------------------------------------

    /// Compares the gate with the model and checks the invariants and the
    /// wake-ups.
    fn check(&self) {
        let g = self.gate;
        let (readers, waiters) = (g.readers_in_flight(), g.waiters());
        ensure!(self, readers <= self.cap, "readers_in_flight {readers} above cap {}", self.cap);
        ensure!(
            self,
            !(readers > 0 && g.is_drain_held()),
            "{readers} readers in flight while a drain guard is held"
        );
        ensure!(
            self,
            readers == self.readers,
            "readers_in_flight {readers}, model {}",
            self.readers
        );
        ensure!(self, waiters == self.queue.len(), "waiters {waiters}, model {}", self.queue.len());
        ensure!(
            self,
            g.is_drain_pending() == self.drain_pending(),
            "is_drain_pending {}, model {}",
            g.is_drain_pending(),
            self.drain_pending()
        );
        ensure!(
            self,
            g.is_drain_held() == self.drain_held,
            "is_drain_held {}, model {}",
            g.is_drain_held(),
            self.drain_held
        );
        ensure!(
            self,
            g.is_closed() == self.closed,
            "is_closed {}, model {}",
            g.is_closed(),
            self.closed
        );

        // On the objects alone, whatever the model says.
        let guards = self.held.iter().filter(|h| !h.is_read()).count();
        let reads: usize = self.held.iter().map(Held::permits).sum();
        ensure!(self, reads <= self.cap, "{reads} read permits held at cap {}", self.cap);
        ensure!(self, guards <= 1, "{guards} drain guards held at once");
        ensure!(self, guards == 0 || reads == 0, "a drain guard held beside {reads} read permits");
        ensure!(self, reads <= readers, "{reads} permits held but readers_in_flight {readers}");
        ensure!(
            self,
            guards == 0 || g.is_drain_held(),
            "a guard is held but is_drain_held is false"
        );

        for t in &self.futs {
            let wakes = t.probe.wakes();
            match t.st {
                St::Granted | St::ClosedFail | St::WatchFired | St::Yielded => ensure!(
                    self,
                    wakes > t.seen,
                    "lost wake-up: future #{} ({:?}, model {:?}) can complete but was not woken since its last poll",
                    t.id,
                    t.kind,
                    t.st
                ),
                St::Linked | St::WatchLinked | St::Failed | St::WatchDone => ensure!(
                    self,
                    wakes == t.seen,
                    "spurious wake-up: future #{} ({:?}, model {:?}) was woken but cannot progress",
                    t.id,
                    t.kind,
                    t.st
                ),
            }
        }
    }

    /// Polls everything once, drops every future and then every permit and
    /// guard, and checks that the gate is idle (and still usable unless
    /// closed).
    pub fn finish(mut self) {
        self.trace.push(Op::PollAll);
        self.sub = " (finish: poll all)";
        self.poll_all();
        self.check();
        self.sub = " (finish: drop futures)";
        while !self.futs.is_empty() {
            self.drop_future(0);
            self.check();
        }
        self.sub = " (finish: drop held)";
        while !self.held.is_empty() {
            self.drop_held(0);
            self.check();
        }
        self.sub = " (finish: idle)";
        let g = self.gate;
        ensure!(
            self,
            g.readers_in_flight() == 0 && g.waiters() == 0,
            "not idle after everything was dropped"
        );
        ensure!(
            self,
            !g.is_drain_pending() && !g.is_drain_held(),
            "drain flags left after everything was dropped"
        );
        if self.closed {
            ensure!(
                self,
                g.try_acquire().err() == Some(TryAcquireError::Closed),
                "try_acquire on a closed gate"
            );
            ensure!(
                self,
                g.try_drain().err() == Some(TryDrainError::Closed),
                "try_drain on a closed gate"
            );
            let probe = Probe::new();
            ensure!(
                self,
                probe.poll(&mut g.closed_and_idle()).is_ready(),
                "closed_and_idle pending on a closed idle gate"
            );
            for op in [Op::Acquire, Op::Drain, Op::AcquireOwned, Op::DrainOwned] {
                self.step(op);
                if let Some(t) = self.futs.last()
                    && t.st == St::Yielded
                {
                    self.poll_at(self.futs.len() - 1, false);
                }
                let failed = self.futs.last().is_some_and(|t| t.st == St::Failed);
                ensure!(self, failed, "{op:?} on a closed gate did not fail Closed");
                self.drop_future(self.futs.len() - 1);
            }
        } else {
            match g.try_drain() {
                Ok(guard) => drop(guard),
                Err(e) => self.fail(format!("try_drain on an idle gate: {e:?}")),
            }
            let permits: Vec<_> = (0..self.cap).map(|_| g.try_acquire()).collect();
            ensure!(
                self,
                permits.iter().all(Result::is_ok),
                "an idle gate refused one of {} try_acquire",
                self.cap
            );
            ensure!(
                self,
                g.try_acquire().err() == Some(TryAcquireError::NoPermits),
                "try_acquire above cap"
            );
            drop(permits);
            ensure!(self, g.readers_in_flight() == 0, "permits not released");
        }
        self.check();
    }
}

fn name(out: &Outcome<'_>) -> &'static str {
    match out {
        Outcome::Pending => "Pending",
        Outcome::Granted(_) => "Ready(Ok)",
        Outcome::Closed => "Ready(Err(Closed))",
        Outcome::Invalid(_) => "Ready(Err(Invalid))",
        Outcome::Fired => "Ready(())",
    }
}
