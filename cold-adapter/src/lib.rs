//! The signet-cold 0.7 cold storage task, rebuilt on [`drain_gate`] over
//! signet-cold 0.10 backends.
//!
//! Node code written against signet-cold 0.7's `ColdStorageTask`,
//! `ColdStorageHandle` and `ColdStorageReadHandle` switches by changing its
//! imports to this crate; the backend is any
//! [`ColdStorageBackend`](signet_cold::ColdStorageBackend) of signet-cold 0.10
//! (`MemColdBackend`, `signet-cold-sql`'s SQLite and Postgres backends, …).
//!
//! ```
//! use cold_adapter::alloy::consensus::{Header, Sealable};
//! use cold_adapter::signet_cold::{BlockData, mem::MemColdBackend};
//! use cold_adapter::{CancellationToken, ColdStorageTask};
//!
//! // One block as node code hands it over: a sealed header, no transactions.
//! fn block(number: u64) -> BlockData {
//!     let header = Header { number, ..Default::default() };
//!     BlockData::new(header.seal_slow(), vec![], vec![], vec![], None)
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> cold_adapter::signet_cold::ColdResult<()> {
//! let cancel = CancellationToken::new();
//! let (task, handle) = ColdStorageTask::new(MemColdBackend::new(), cancel.clone());
//! let task = tokio::spawn(task.run());
//!
//! handle.append_block(block(1)).await?;
//! assert_eq!(handle.get_header_by_number(1).await?.map(|h| h.number), Some(1));
//!
//! cancel.cancel();
//! task.await.unwrap(); // returns once in-flight work has finished
//! # Ok(())
//! # }
//! ```
//!
//! The crate re-exports what calling it takes: [`signet_cold`] (the
//! backend trait, `BlockData`, `ColdResult`, … of the very version this
//! crate was built with), [`CancellationToken`] and, with a SQL feature,
//! `signet_cold_sql`, and [`alloy`] (headers, primitives).
//!
//! # Features
//!
//! None by default: the in-memory backend, or any other
//! `ColdStorageBackend`, needs none, and the library then depends on no
//! SQL driver.
//!
//! - `sqlite`, `postgres`: signet-cold-sql's SQLite / Postgres backend,
//!   re-exported as `cold_adapter::signet_cold_sql`, and its errors (sqlx's)
//!   classified as [transient](fault) or not. Enable the one your backend
//!   uses: without it, only I/O errors and timeouts count as transient.
//!
//! # How it works
//!
//! - **Reads** take a permit from a [`DrainGate`](drain_gate::DrainGate)
//!   (the read cap, default 64) and hold it for the backend call. A read
//!   whose permit is free and whose call answers on its first poll (the
//!   in-memory backend, the cache) runs entirely in the caller's task; one
//!   that must wait, or whose call is pending, moves into a task of its own,
//!   which the caller awaits and aborts when it drops its future. So a read
//!   stops at the drain deadline and at shutdown even when its caller has
//!   stopped polling it. The permit is released when the call returns,
//!   fails, panics (caught, returned as [`BackendPanicked`]) or is stopped.
//!   Nothing ever waits on a permit for someone else, so no number of reads
//!   can stop reads or writes (the signet-cold 0.7 task wedged on its 65th
//!   concurrent read). [Transient](fault) read failures are retried.
//! - **Writes** are queued (default 256 slots) to one writer, which runs them
//!   in arrival order, each under a drain: no backend read is in flight while
//!   a write commits. Writes already queued when a drain is granted run under
//!   that same drain (up to 64), each with its own result. Transient
//!   failures are retried; a permanent one halts appends until a truncate;
//!   see [durable writes](crate#durable-writes).
//! - **Drain deadline** (default 5 s): once a drain has waited that long, the
//!   reads it waits for are told, through their permits, to stop; they return
//!   [`DeadlineExceeded`](signet_cold::ColdStorageError::DeadlineExceeded).
//! - **Streams** take no read permit and are not drained; they have their own
//!   cap (default 8).
//! - **Cache**: headers by number, transactions and receipts by
//!   (block, index), consulted before a permit is taken and evicted above a
//!   truncate inside its drain.
//! - **Shutdown**: cancelling the token or dropping every handle fails
//!   new, waiting and running reads and streams with `TaskTerminated`;
//!   queued writes still run, and [`ColdStorageTask::run`] returns within a
//!   grace period; see [Shutdown](crate#shutdown).
//! - **Visibility**: [`metrics`] and
//!   [`ColdStorageHandle::health`].
//!
//! # Durable writes
//!
//! Every write, dispatched or awaited, follows these rules:
//!
//! - A write failing with a [transient](fault) error is retried
//!   with capped, jittered exponential backoff
//!   ([`with_write_retries`](ColdStorageConfig::with_write_retries)),
//!   in arrival order: later writes wait behind it, so no block is
//!   applied over a gap. Reads go on meanwhile. `health().retrying`
//!   shows it.
//! - A write attempt that does not return within twice the backend's
//!   `write_timeout` plus a second (60 s for a backend that declares none)
//!   is dropped (a SQL transaction rolls back) and counts as a transient
//!   failure, so a hung backend call cannot hold every later write.
//! - An append that reports a failure is checked against the backend
//!   first: if every block is there with the same hash (the reply to
//!   `COMMIT` was lost, or the blocks were already stored) it counts as
//!   applied; if some are, only the rest is retried (whatever error the
//!   append reported: the stored blocks explain it). The check is one
//!   `get_headers` read. An append is never run again on a check that
//!   failed: the check is asked again, on the write's backoff and out of its
//!   retries; if it never answers, the write fails with an error saying it
//!   may have committed, and halts appends.
//! - A write that fails for good, or is still failing after the last
//!   retry, **halts appends**: later appends, awaited or dispatched,
//!   queued or new, fail with [`WritesHalted`],
//!   naming the block and the cause; `health().halted` and the
//!   `writes_halted` metric show it; reads keep working. A
//!   `truncate_above(n)` with `n` below the failed block (`0` when block 0
//!   failed) clears the halt (a truncate at or above the failed block is
//!   refused with the same error: it would leave the gap), and appends
//!   resume from `n + 1`, accepted
//!   again once that truncate has run: await it (or, after
//!   `dispatch_truncate_above`, wait for `health().halted` to clear)
//!   before appending again.
//!
//! # Shutdown
//!
//! Shutdown starts when the cancellation token fires or the last handle
//! is dropped. Then, at once:
//!
//! - new and waiting reads, writes and streams fail with
//!   [`TaskTerminated`](signet_cold::ColdStorageError::TaskTerminated),
//!   and so do reads and streams in flight: their backend calls are
//!   dropped (a read runs in a task of its own once it waits, so this
//!   holds even if its caller no longer polls it);
//! - every write already queued (awaited or dispatched: a dispatch's
//!   `Ok` is an acknowledgement) still runs, in arrival order, with its
//!   retries, and awaited callers get its result. A dispatch racing the
//!   shutdown either fails or is queued and runs: the queue is read to
//!   its end, reserved slots included.
//!
//! `run` returns when those writes are done, or when the
//! [shutdown grace period](ColdStorageConfig::with_shutdown_grace)
//! (default 10 s) has passed since shutdown started, whichever is
//! first. Writes not run by then (a backend that hangs or keeps failing)
//! are abandoned: the one running is dropped mid-call (a SQL
//! transaction rolls back), and each is logged at error level and
//! counted in [`ColdStorageHealth::writes_lost`]
//! and the `writes_lost_total` [metric](crate::metrics); awaited callers
//! get `TaskTerminated`.
//!
//! # Differences from signet-cold 0.7
//!
//! - `dispatch_append_blocks` / `dispatch_truncate_above` return
//!   [`DispatchError`] (0.10's `ColdStorageError` has no Backpressure
//!   variant); it converts into `ColdStorageError` with `From`.
//! - Reads may fail with `DeadlineExceeded` when they hold up a write past
//!   the drain deadline.
//! - A write that fails is retried or halts appends instead of being
//!   skipped ([durable writes](#durable-writes)); `dispatch_*` can return
//!   [`DispatchError::Halted`].
//! - Reads and streams in flight stop at shutdown, and `run` returns
//!   within a grace period ([shutdown](#shutdown)).

mod cache;
mod config;
mod error;
pub mod fault;
mod handle;
mod health;
mod logs;
pub mod metrics;
mod read_handle;
mod reads;
mod shared;
mod streams;
mod task;
pub mod v010;
mod writes;

pub(crate) use shared::Shared;

pub use config::{
    Backoff, ColdStorageConfig, DEFAULT_CACHE_ENTRIES, DEFAULT_DRAIN_DEADLINE,
    DEFAULT_LOG_BLOCKS_PER_PERMIT, DEFAULT_MAX_STREAM_DEADLINE, DEFAULT_READ_BACKOFF,
    DEFAULT_READ_CAP, DEFAULT_READ_RETRIES, DEFAULT_SHUTDOWN_GRACE, DEFAULT_STREAM_CAP,
    DEFAULT_WRITE_BACKOFF, DEFAULT_WRITE_BATCH, DEFAULT_WRITE_QUEUE, DEFAULT_WRITE_RETRIES,
};
pub use error::{BackendPanicked, DispatchError, NoRuntime, error_kind};
pub use fault::{WritesHalted, is_transient};
pub use handle::ColdStorageHandle;
pub use health::ColdStorageHealth;
pub use logs::InvalidBlockRange;
pub use read_handle::ColdStorageReadHandle;
pub use shared::RetryingWrite;
pub use task::ColdStorageTask;

/// alloy, as this crate uses it: headers (`alloy::consensus::Header`) and
/// the primitives in the handle's signatures.
pub use alloy;
pub use signet_cold;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use signet_cold_sql;
pub use tokio_util::sync::CancellationToken;

/// The README's Rust examples (the quick start of both API generations, the
/// gate example), compiled and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
