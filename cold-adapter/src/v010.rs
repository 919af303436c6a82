//! signet-cold 0.10's [`ColdStorage`] handle, on this crate's task.
//!
//! signet-storage and other users of signet-cold 0.10 hold a
//! `signet_cold::ColdStorage`: one cloneable handle with awaited reads and
//! writes, built with `new` or `new_erased`, shut down with the
//! cancellation token and [`wait_shutdown`](ColdStorage::wait_shutdown).
//! [`ColdStorage`] here has the same name, type parameter (defaulting to
//! [`ErasedBackend`]), constructors and methods with the same signatures,
//! so such code switches by changing its import:
//!
//! ```
//! // before: use signet_cold::ColdStorage;
//! use cold_adapter::v010::ColdStorage;
//! use signet_cold::{conformance::make_test_block, mem::MemColdBackend};
//! use tokio_util::sync::CancellationToken;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> signet_cold::ColdResult<()> {
//! let cancel = CancellationToken::new();
//! let storage: ColdStorage = ColdStorage::new_erased(MemColdBackend::new(), cancel.clone());
//! storage.append_block(make_test_block(1)).await?;
//! assert_eq!(storage.get_latest_block().await?, Some(1));
//!
//! cancel.cancel();
//! storage.wait_shutdown().await; // queued writes done, nothing in flight
//! # Ok(())
//! # }
//! ```
//!
//! Underneath, each [`ColdStorage`] spawns a [`ColdStorageTask`] and
//! forwards to its [`ColdStorageHandle`], so it gets the task's rules:
//! reads under the [drain gate](crate#how-it-works), writes queued to one
//! writer and [retried or halting](crate#durable-writes), log filters
//! resolved the same on every backend, and the [shutdown](crate#shutdown)
//! sequence. Where that differs from signet-cold 0.10's own handle, and
//! why, is tabled in the README (`README.md` at the repository root,
//! section *signet-cold 0.10's `ColdStorage`*).
//!
//! [`ErasedBackend`]: signet_cold::ErasedBackend

use crate::{ColdStorageConfig, ColdStorageHandle, ColdStorageHealth, ColdStorageTask, Shared};
use alloy::primitives::{B256, BlockNumber};
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageBackend, Confirmed, ErasedBackend, Filter,
    HeaderSpecifier, LogStream, ReceiptSpecifier, RpcLog, SignetEventsSpecifier,
    TransactionSpecifier, ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{marker::PhantomData, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// signet-cold 0.10's cold storage handle, on this crate's task.
///
/// Cheap to [`Clone`]: clones share one task. The task shuts down when the
/// cancellation token given to [`new`](Self::new) fires, or when the last
/// clone is dropped; queued writes still run (see
/// [Shutdown](crate#shutdown)).
///
/// `B` only names the backend type, as in signet-cold 0.10, so code that
/// spells `ColdStorage<MyBackend>` or plain `ColdStorage` (that is,
/// `ColdStorage<ErasedBackend>`) keeps compiling; calls go through the
/// task's type-erased backend either way.
///
/// Reads and streams run in the caller's task (a read that must wait moves
/// into a task of its own), writes in the task's writer; see
/// [how it works](crate#how-it-works).
pub struct ColdStorage<B: ColdStorageBackend = ErasedBackend> {
    handle: ColdStorageHandle,
    shared: Arc<Shared>,
    /// Fires when the task's `run` returns, or its future is dropped.
    finished: CancellationToken,
    _backend: PhantomData<fn() -> B>,
}

impl<B: ColdStorageBackend> Clone for ColdStorage<B> {
    fn clone(&self) -> Self {
        Self {
            handle: self.handle.clone(),
            shared: Arc::clone(&self.shared),
            finished: self.finished.clone(),
            _backend: PhantomData,
        }
    }
}

impl<B: ColdStorageBackend> std::fmt::Debug for ColdStorage<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStorage").field("health", &self.health()).finish_non_exhaustive()
    }
}

/// Forwards awaited reads to the task's handle, linking to its docs for
/// errors and cancel safety.
macro_rules! reads {
    ($(
        $(#[doc = $doc:literal])+
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;
    )*) => {$(
        $(#[doc = $doc])+
        ///
        /// # Errors
        ///
        #[doc = concat!(
            "Those of [`ColdStorageHandle::", stringify!($name), "`] (its *Errors* section): \
             `TaskTerminated` once shutdown has started, `DeadlineExceeded` when the read held \
             up a write past the drain deadline, and the backend's errors (a panic as \
             [`BackendPanicked`](crate::BackendPanicked))."
        )]
        ///
        /// # Cancel safety
        ///
        #[doc = concat!(
            "Cancel safe, as [`ColdStorageHandle::", stringify!($name), "`] (its *Cancel \
             safety* section)."
        )]
        pub async fn $name(&self, $($arg: $ty),*) -> $ret {
            self.handle.$name($($arg),*).await
        }
    )*};
}

/// Forwards awaited writes to the task's handle, linking to its docs for
/// errors and cancel safety.
macro_rules! writes {
    ($(
        $(#[doc = $doc:literal])+
        fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;
    )*) => {$(
        $(#[doc = $doc])+
        ///
        /// # Errors
        ///
        #[doc = concat!(
            "Those of [`ColdStorageHandle::", stringify!($name), "`] (its *Errors* section): \
             `TaskTerminated` when shutdown started before the write was queued (a queued \
             write still runs and returns its own result), [`WritesHalted`](crate::WritesHalted) \
             while appends are halted, and the backend's error once the write failed for good \
             ([durable writes](crate#durable-writes))."
        )]
        ///
        /// # Cancel safety
        ///
        #[doc = concat!(
            "As [`ColdStorageHandle::", stringify!($name), "`] (its *Cancel safety* section): \
             once queued, the write runs even if the future is dropped; only its result is lost."
        )]
        pub async fn $name(&self, $($arg: $ty),*) -> $ret {
            self.handle.$name($($arg),*).await
        }
    )*};
}

impl<B: ColdStorageBackend> ColdStorage<B> {
    /// Creates the task over `backend` with the default
    /// [`ColdStorageConfig`] (the same caps as signet-cold 0.10: 64 reads,
    /// 8 streams, 60 s stream deadline), spawns it on the current tokio
    /// runtime, and returns its first handle.
    ///
    /// Firing `cancel`, or dropping every clone, shuts the task down.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as signet-cold 0.10's `new` does.
    pub fn new(backend: B, cancel: CancellationToken) -> Self {
        Self::with_config(backend, cancel, ColdStorageConfig::default())
    }

    /// Like [`new`](Self::new), with explicit limits (not in signet-cold
    /// 0.10).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn with_config(backend: B, cancel: CancellationToken, config: ColdStorageConfig) -> Self {
        let (task, handle) = ColdStorageTask::with_config(backend, cancel, config);
        let shared = Arc::clone(&handle.reader().inner.shared);
        let finished = CancellationToken::new();
        let on_return = finished.clone().drop_guard();
        tokio::spawn(async move {
            let _on_return = on_return;
            task.run().await;
        });
        Self { handle, shared, finished, _backend: PhantomData }
    }

    /// Waits until the task is done with what it was given: bounded, and
    /// never cancels anything by itself.
    ///
    /// - **Once shutdown has started** (the token fired; the task stopped):
    ///   waits until the task's [`run`](ColdStorageTask::run) has returned,
    ///   that is until every write queued before shutdown has run or the
    ///   [grace period](ColdStorageConfig::with_shutdown_grace) has ended,
    ///   and then until no read holds a permit (reads and streams stop at
    ///   shutdown). No backend call of this task is in flight afterwards.
    /// - **Otherwise** it is a barrier: it queues an empty write and waits
    ///   for it, so it returns once every write queued before the call has
    ///   finished and every read that held a permit at the call has
    ///   finished too (the write takes a drain). Reads waiting for a permit
    ///   and streams are not waited for, and the task keeps running. The
    ///   wait is bounded by the writes ahead (their retries and attempt
    ///   limits) and the [drain deadline](ColdStorageConfig::with_drain_deadline);
    ///   with the drain deadline off, a read that never returns holds it
    ///   until shutdown starts. If shutdown starts meanwhile, it waits as
    ///   in the first case.
    ///
    /// signet-cold 0.10's `wait_shutdown` closes a task tracker and waits
    /// for every task in flight, which a hung backend call holds forever.
    /// Safe to call from several clones at once, and again after it
    /// returned.
    ///
    /// # Errors
    ///
    /// None: it returns `()`, like signet-cold 0.10's.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops only the waiting. An empty
    /// barrier write already queued still runs, and changes nothing.
    pub async fn wait_shutdown(&self) {
        let shutdown = &self.shared.shutdown;
        if !shutdown.is_cancelled() {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => {}
                // An empty append runs in order under a drain, also while
                // appends are halted, and never fails but at shutdown.
                _ = self.handle.append_blocks(Vec::new()) => {}
            }
            if !shutdown.is_cancelled() {
                return;
            }
        }
        self.finished.cancelled().await;
        self.shared.gate.closed_and_idle().await;
    }

    /// A snapshot of the task's progress and faults (not in signet-cold
    /// 0.10); see [`ColdStorageHandle::health`]. Never waits.
    pub fn health(&self) -> ColdStorageHealth {
        self.handle.health()
    }

    reads! {
        /// Gets a header by number or hash; `Ok(None)` if it is not stored.
        fn get_header(spec: HeaderSpecifier) -> ColdResult<Option<SealedHeader>>;
        /// Gets a header by block number.
        fn get_header_by_number(block: BlockNumber) -> ColdResult<Option<SealedHeader>>;
        /// Gets a header by block hash.
        fn get_header_by_hash(hash: B256) -> ColdResult<Option<SealedHeader>>;
        /// Gets several headers in one backend read, one entry per specifier.
        fn get_headers(specs: Vec<HeaderSpecifier>) -> ColdResult<Vec<Option<SealedHeader>>>;
        /// Gets a transaction, with its block confirmation, by specifier.
        fn get_transaction(
            spec: TransactionSpecifier
        ) -> ColdResult<Option<Confirmed<RecoveredTx>>>;
        /// Gets a transaction by hash.
        fn get_tx_by_hash(hash: B256) -> ColdResult<Option<Confirmed<RecoveredTx>>>;
        /// Gets a transaction by block number and index.
        fn get_tx_by_block_and_index(
            block: BlockNumber,
            index: u64
        ) -> ColdResult<Option<Confirmed<RecoveredTx>>>;
        /// Gets a transaction by block hash and index.
        fn get_tx_by_block_hash_and_index(
            block_hash: B256,
            index: u64
        ) -> ColdResult<Option<Confirmed<RecoveredTx>>>;
        /// Gets every transaction in a block, in order.
        fn get_transactions_in_block(block: BlockNumber) -> ColdResult<Vec<RecoveredTx>>;
        /// Gets the number of transactions in a block.
        fn get_transaction_count(block: BlockNumber) -> ColdResult<u64>;
        /// Gets a receipt by specifier.
        fn get_receipt(spec: ReceiptSpecifier) -> ColdResult<Option<ColdReceipt>>;
        /// Gets a receipt by transaction hash.
        fn get_receipt_by_tx_hash(hash: B256) -> ColdResult<Option<ColdReceipt>>;
        /// Gets a receipt by block number and index.
        fn get_receipt_by_block_and_index(
            block: BlockNumber,
            index: u64
        ) -> ColdResult<Option<ColdReceipt>>;
        /// Gets every receipt in a block, in order.
        fn get_receipts_in_block(block: BlockNumber) -> ColdResult<Vec<ColdReceipt>>;
        /// Gets signet events by specifier.
        fn get_signet_events(spec: SignetEventsSpecifier) -> ColdResult<Vec<DbSignetEvent>>;
        /// Gets the signet events of one block.
        fn get_signet_events_in_block(block: BlockNumber) -> ColdResult<Vec<DbSignetEvent>>;
        /// Gets the signet events of blocks `start..=end`.
        fn get_signet_events_in_range(
            start: BlockNumber,
            end: BlockNumber
        ) -> ColdResult<Vec<DbSignetEvent>>;
        /// Gets the zenith header of a block, if it has one.
        fn get_zenith_header(block: BlockNumber) -> ColdResult<Option<DbZenithHeader>>;
        /// Gets zenith headers by specifier.
        fn get_zenith_headers(spec: ZenithHeaderSpecifier) -> ColdResult<Vec<DbZenithHeader>>;
        /// Gets the zenith headers of blocks `start..=end`.
        fn get_zenith_headers_in_range(
            start: BlockNumber,
            end: BlockNumber
        ) -> ColdResult<Vec<DbZenithHeader>>;
        /// Gets the highest stored block number; `Ok(None)` when empty.
        fn get_latest_block() -> ColdResult<Option<BlockNumber>>;
    }

    /// Gets the logs matching `filter`, ordered by (block, transaction, log
    /// index), with `eth_getLogs` semantics: the block range is resolved
    /// the same way over every backend, as
    /// [`ColdStorageHandle::get_logs`] describes (signet-cold 0.10 passes
    /// the filter to the backend as it is).
    ///
    /// # Errors
    ///
    /// Those of [`ColdStorageHandle::get_logs`] (its *Errors* section): the
    /// read errors, `TooManyLogs` above `max_logs`, `NotFound` for an unknown
    /// `blockHash`, [`InvalidBlockRange`](crate::InvalidBlockRange) for
    /// explicit numbers out of order.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`ColdStorageHandle::get_logs`] (its *Cancel safety*
    /// section).
    pub async fn get_logs(&self, filter: Filter, max_logs: usize) -> ColdResult<Vec<RpcLog>> {
        self.handle.get_logs(filter, max_logs).await
    }

    /// Streams the logs matching `filter`, in order; the last item is an
    /// error if the stream stopped early.
    ///
    /// As [`ColdStorageHandle::stream_logs`]: no read permit, its own cap
    /// (8 by default, as in 0.10), `deadline` clamped to the maximum (60 s
    /// by default, as in 0.10), the range resolved first within the
    /// backend's `read_timeout` (500 ms when it has none, as in 0.10). More
    /// than `max_logs` matching logs end the stream with `TooManyLogs`
    /// (signet-cold 0.10's producers stop quietly at the limit).
    ///
    /// # Errors
    ///
    /// Those of [`ColdStorageHandle::stream_logs`] (its *Errors* section):
    /// `TaskTerminated` once shutdown has started, `DeadlineExceeded` when
    /// resolving the range took too long, the range errors of
    /// [`get_logs`](Self::get_logs); errors met while producing arrive as
    /// the stream's last item.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`ColdStorageHandle::stream_logs`] (its *Cancel
    /// safety* section); dropping the returned stream stops production and
    /// frees its slot.
    pub async fn stream_logs(
        &self,
        filter: Filter,
        max_logs: usize,
        deadline: Duration,
    ) -> ColdResult<LogStream> {
        self.handle.stream_logs(filter, max_logs, deadline).await
    }

    writes! {
        /// Appends one block and waits until it is committed.
        fn append_block(data: BlockData) -> ColdResult<()>;
        /// Appends blocks, in order, as one write, and waits until committed.
        fn append_blocks(data: Vec<BlockData>) -> ColdResult<()>;
        /// Removes every block above `block` and waits until that is
        /// committed; cached entries above it are evicted.
        fn truncate_above(block: BlockNumber) -> ColdResult<()>;
        /// Removes every block above `block` and returns their receipts:
        /// entry 0 for `block + 1`, and so on.
        fn drain_above(block: BlockNumber) -> ColdResult<Vec<Vec<ColdReceipt>>>;
    }
}

impl ColdStorage<ErasedBackend> {
    /// Creates a type-erased handle, as signet-cold 0.10's `new_erased`:
    /// the same as `ColdStorage::new(ErasedBackend::new(backend), cancel)`,
    /// without wrapping the backend twice (the task erases it anyway).
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn new_erased<B: ColdStorageBackend>(backend: B, cancel: CancellationToken) -> Self {
        let ColdStorage { handle, shared, finished, _backend } = ColdStorage::new(backend, cancel);
        Self { handle, shared, finished, _backend: PhantomData }
    }
}
