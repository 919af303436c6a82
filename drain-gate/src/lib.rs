//! A cancel-safe async gate: up to `cap` concurrent read permits, and an
//! exclusive drain that waits for every reader in flight while holding new
//! ones back.
//!
//! Storage tasks that serve many reads at once but need exclusive access for
//! each write keep building this barrier by hand, from a semaphore with
//! `acquire_many(cap)` as the drain, or from a task tracker whose `wait()`
//! only resolves once it is closed *and* empty (which wedges the task the
//! moment the cap is reached). [`DrainGate`] is that barrier as one type:
//!
//! * **Read permits**: [`DrainGate::acquire`] / [`acquire_owned`] /
//!   [`try_acquire`]; at most `cap` out at once, released on drop.
//! * **Weighted permits**: [`acquire_many(n)`] / [`acquire_many_owned(n)`] /
//!   [`try_acquire_many(n)`] / [`try_acquire_many_owned(n)`] take `n` of
//!   the cap at once as one request ([`ReadPermits`], [`OwnedReadPermits`]),
//!   so costly reads can be charged by their cost; 0 or more than the cap
//!   is an error at once ([`InvalidPermits`]).
//! * **Drain**: [`DrainGate::drain`] / [`drain_owned`] / [`try_drain`]; a
//!   guard under which no read permit exists. A requested drain holds back
//!   readers requested after it and waits for the readers in flight, not
//!   for the backlog (see [Fairness](#fairness)).
//! * **Close**: [`DrainGate::close`] fails every waiting and later request
//!   with [`Closed`]; [`DrainGate::closed_and_idle`] resolves once the last
//!   permit or guard is gone.
//! * **Cooperative preemption**: a held permit can see a drain waiting
//!   ([`OwnedReadPermit::is_drain_pending`], [`OwnedReadPermit::drain_requested`]).
//! * **Poll form**: [`PollDrainGate`] for hand-written futures and services.
//!
//! The crate is runtime-agnostic (its only dependency is `futures-core`) and
//! has no `unsafe` code.
//!
//! # Fairness
//!
//! Requests that must wait are served from the front of one queue, readers
//! and drains together; a drain waits for the readers in flight and at most
//! one batch of readers per drain ahead of it, never for the backlog. The
//! rule, its bounds and its two consequences (a request is served on its
//! behalf, polled or not; a task that holds a permit and asks for another can
//! wait for itself) are stated once, on [`DrainGate`](DrainGate#fairness).
//!
//! # Cancel safety
//!
//! Every future may be dropped at any point, including after it was granted
//! but before it observed the grant; nothing leaks and no wake-up is lost.
//! See [`DrainGate`](DrainGate#cancel-safety). No waker is woken or dropped
//! under the gate's lock, so a waker whose drop releases a permit of the same
//! gate cannot deadlock it: see [`DrainGate`](DrainGate#wakers-run-outside-the-lock).
//!
//! # Cost
//!
//! With nothing queued, an acquire is one compare-and-swap on one state word
//! and a release one `fetch_sub`: no lock, no allocation. A drain on an idle
//! gate is one compare-and-swap. Waiting requests go through a mutex-guarded
//! queue whose slots are reused.
//!
//! # Example: drain before write
//!
//! ```
//! use std::sync::Arc;
//! use drain_gate::DrainGate;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let gate = Arc::new(DrainGate::new(64));
//! let store = Arc::new(std::sync::RwLock::new(Vec::<u64>::new()));
//!
//! // Readers: many at once, each under a permit.
//! let mut reads = Vec::new();
//! for _ in 0..8 {
//!     let permit = gate.clone().acquire_owned().await.unwrap();
//!     let store = store.clone();
//!     reads.push(tokio::spawn(async move {
//!         let _permit = permit;
//!         store.read().unwrap().len()
//!     }));
//! }
//!
//! // The writer: wait until no read is in flight, then write.
//! let guard = gate.drain().await.unwrap();
//! assert_eq!(gate.readers_in_flight(), 0);
//! store.write().unwrap().push(1);
//! drop(guard);
//!
//! for read in reads {
//!     read.await.unwrap();
//! }
//!
//! // Graceful shutdown.
//! gate.close();
//! gate.closed_and_idle().await;
//! assert!(gate.acquire().await.is_err());
//! # }
//! ```
//!
//! [`acquire_owned`]: DrainGate::acquire_owned
//! [`try_acquire`]: DrainGate::try_acquire
//! [`drain_owned`]: DrainGate::drain_owned
//! [`try_drain`]: DrainGate::try_drain
//! [`acquire_many(n)`]: DrainGate::acquire_many
//! [`acquire_many_owned(n)`]: DrainGate::acquire_many_owned
//! [`try_acquire_many(n)`]: DrainGate::try_acquire_many
//! [`try_acquire_many_owned(n)`]: DrainGate::try_acquire_many_owned

#![forbid(unsafe_code)]

mod budget;
mod error;
mod future;
mod gate;
mod loom;
mod permit;
mod poll;
mod raw;

pub use crate::error::{
    AcquireManyError, CapError, Closed, InvalidPermits, TryAcquireError, TryDrainError,
};
pub use crate::future::{
    Acquire, AcquireMany, AcquireManyOwned, AcquireOwned, ClosedAndIdle, Drain, DrainOwned,
    DrainRequested,
};
pub use crate::gate::{DrainGate, MAX_CAP};
pub use crate::permit::{
    DrainGuard, OwnedDrainGuard, OwnedReadPermit, OwnedReadPermits, ReadPermit, ReadPermits,
};
pub use crate::poll::PollDrainGate;
