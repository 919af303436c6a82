//! The state shared by handles and the task, and the read, stream and
//! write-enqueue paths that run in the caller's own task.
//!
//! Reads run in the caller's task: the caller waits for its permit, then
//! polls the backend call itself while holding it. Nothing here waits on a
//! permit on behalf of anyone else, so no number of reads can stop other
//! reads from being dispatched or the writer from queueing its drain.
//!
//! Why not a spawned task per read, as signet-cold does: measured with
//! `examples/read_dispatch.rs` (256 tasks, uncached `get_header_by_hash`
//! over `MemColdBackend`, release build, 2 cores), awaiting in the caller
//! costs 0.7–1.0 µs per read against 1.9–2.6 µs through a spawn, and, more
//! important, a spawned call outlives a caller that gave up and keeps its
//! permit until the backend returns, so a burst of timed-out RPC calls would
//! still hold off every write (scenario C07). In the caller's task, dropping
//! the future drops the backend call and its permit at once.

use crate::{
    ColdStorageConfig, DispatchError,
    cache::ColdCache,
    error::BackendPanicked,
    error_kind,
    metrics::{self, InFlight},
};
use alloy::primitives::{B256, BlockNumber};
use drain_gate::{DrainGate, OwnedReadPermit};
use futures_util::FutureExt;
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageError, Confirmed, DynColdStorageBackend, Filter,
    HeaderSpecifier, LogStream, ReceiptSpecifier, RpcLog, SignetEventsSpecifier, StorageFuture,
    StreamParams, TransactionSpecifier, ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    sync::{Semaphore, mpsc, oneshot, watch},
    time::Instant,
};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Bound on resolving "latest" for an open-ended stream when the backend
/// advertises no `read_timeout`.
pub(crate) const DEFAULT_STREAM_SETUP_TIMEOUT: Duration = Duration::from_millis(500);

/// Items a stream producer may buffer ahead of its consumer.
const STREAM_CHANNEL_BUFFER: usize = 256;

/// One write, as queued for the writer.
pub(crate) enum WriteOp {
    AppendBlock(Box<BlockData>),
    AppendBlocks(Vec<BlockData>),
    TruncateAbove(BlockNumber),
    DrainAbove(BlockNumber),
}

impl WriteOp {
    pub(crate) const fn name(&self) -> &'static str {
        match self {
            Self::AppendBlock(_) => "append_block",
            Self::AppendBlocks(_) => "append_blocks",
            Self::TruncateAbove(_) => "truncate_above",
            Self::DrainAbove(_) => "drain_above",
        }
    }
}

/// What a write returns on success.
pub(crate) enum WriteOutput {
    Done,
    Drained(Vec<Vec<ColdReceipt>>),
}

/// A queued write and where its result goes (`None` for `dispatch_*`).
pub(crate) struct WriteRequest {
    pub(crate) op: WriteOp,
    pub(crate) reply: Option<oneshot::Sender<ColdResult<WriteOutput>>>,
}

/// Everything handles and the task share.
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn DynColdStorageBackend>,
    pub(crate) gate: Arc<DrainGate>,
    pub(crate) cache: ColdCache,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) stream_tasks: TaskTracker,
    pub(crate) writes: mpsc::Sender<WriteRequest>,
    /// Fires on the user's cancel, when the last handle drops, or when the
    /// task's `run` future is dropped.
    pub(crate) shutdown: CancellationToken,
    /// True while a pending drain is past its deadline: reads in flight stop.
    pub(crate) overdue: watch::Sender<bool>,
    pub(crate) config: ColdStorageConfig,
    /// When the drain now pending started waiting.
    pub(crate) drain_waiting_since: Mutex<Option<Instant>>,
    pub(crate) drains_granted: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        backend: Arc<dyn DynColdStorageBackend>,
        config: ColdStorageConfig,
        shutdown: CancellationToken,
    ) -> (Self, mpsc::Receiver<WriteRequest>) {
        let (writes, queue) = mpsc::channel(config.write_queue());
        let shared = Self {
            backend,
            gate: Arc::new(DrainGate::new(config.read_cap())),
            cache: ColdCache::new(config.cache_entries()),
            streams: Arc::new(Semaphore::new(config.stream_cap())),
            stream_tasks: TaskTracker::new(),
            writes,
            shutdown,
            overdue: watch::Sender::new(false),
            config,
            drain_waiting_since: Mutex::new(None),
            drains_granted: AtomicU64::new(0),
        };
        (shared, queue)
    }

    /// Stops admitting work: waiting and new reads, streams and drains fail
    /// with `TaskTerminated`; holders finish.
    pub(crate) fn close(&self) {
        self.shutdown.cancel();
        self.gate.close();
        self.streams.close();
        self.stream_tasks.close();
    }

    pub(crate) fn write_queue_depth(&self) -> usize {
        self.writes.max_capacity() - self.writes.capacity()
    }

    pub(crate) fn drains_granted(&self) -> u64 {
        self.drains_granted.load(Ordering::Relaxed)
    }

    pub(crate) fn drain_waited(&self) -> Option<Duration> {
        let since = self.drain_waiting_since.lock().unwrap_or_else(|e| e.into_inner());
        since.map(|t| t.elapsed())
    }

    /// Fails with `TaskTerminated` once shutdown has begun, so a cache hit
    /// after shutdown fails like any other read.
    fn ensure_open(&self) -> ColdResult<()> {
        if self.shutdown.is_cancelled() { Err(ColdStorageError::TaskTerminated) } else { Ok(()) }
    }

    /// Resolves when this read must stop: a drain is pending on it and has
    /// passed its deadline. Never resolves when drain deadlines are off.
    async fn stop_requested(&self, permit: &OwnedReadPermit) {
        if self.config.drain_deadline().is_none() {
            return std::future::pending().await;
        }
        let mut overdue = self.overdue.subscribe();
        permit.drain_requested().await;
        if overdue.wait_for(|late| *late).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Runs one backend read under a read permit, in the caller's task.
    ///
    /// `keep` sees a successful value while the permit is still held, so a
    /// cache insert cannot race a truncate's eviction (which holds the drain).
    async fn read<'f, T, F>(
        &'f self,
        op: &'static str,
        call: F,
        keep: impl FnOnce(&ColdCache, &T),
    ) -> ColdResult<T>
    where
        F: FnOnce(&'f dyn DynColdStorageBackend) -> StorageFuture<'f, ColdResult<T>>,
    {
        let waited = Instant::now();
        // The token fires synchronously with the user's cancel; the gate is
        // closed a moment later by the task. Checking both fails calls fast
        // even before the task has run (or if it is never polled).
        let acquired = if self.shutdown.is_cancelled() {
            None
        } else {
            tokio::select! {
                biased;
                permit = self.gate.clone().acquire_owned() => permit.ok(),
                () = self.shutdown.cancelled() => None,
            }
        };
        let Some(permit) = acquired else {
            metrics::op_error(op, "task_terminated");
            return Err(ColdStorageError::TaskTerminated);
        };
        metrics::permit_wait(waited.elapsed());
        let _in_flight = InFlight::read();
        let started = Instant::now();

        let backend = &*self.backend;
        let panicked = |payload: Box<dyn std::any::Any + Send>| {
            Err(ColdStorageError::backend(BackendPanicked::from_payload(op, &*payload)))
        };
        let result = match std::panic::catch_unwind(AssertUnwindSafe(|| call(backend))) {
            Err(payload) => panicked(payload),
            Ok(call) => {
                tokio::select! {
                    biased;
                    outcome = AssertUnwindSafe(call).catch_unwind() => {
                        outcome.unwrap_or_else(panicked)
                    }
                    () = self.stop_requested(&permit) => {
                        metrics::read_stopped();
                        let limit = self.config.drain_deadline().unwrap_or_default();
                        Err(ColdStorageError::DeadlineExceeded(limit))
                    }
                }
            }
        };
        if let Ok(value) = &result {
            keep(&self.cache, value);
        }
        drop(permit);

        metrics::op_duration(op, started.elapsed());
        if let Err(err) = &result {
            metrics::op_error(op, error_kind(err));
        }
        result
    }

    // ----- reads -----

    pub(crate) async fn get_header(
        &self,
        spec: HeaderSpecifier,
    ) -> ColdResult<Option<SealedHeader>> {
        self.ensure_open()?;
        if let HeaderSpecifier::Number(n) = spec
            && let Some(hit) = self.cache.header(n)
        {
            return Ok(Some(hit));
        }
        self.read(
            "get_header",
            |b| b.dyn_get_header(spec),
            |cache, found| {
                if let Some(header) = found {
                    cache.put_header(header);
                }
            },
        )
        .await
    }

    pub(crate) async fn get_headers(
        &self,
        specs: Vec<HeaderSpecifier>,
    ) -> ColdResult<Vec<Option<SealedHeader>>> {
        self.read("get_headers", |b| b.dyn_get_headers(specs), |_, _| {}).await
    }

    pub(crate) async fn get_transaction(
        &self,
        spec: TransactionSpecifier,
    ) -> ColdResult<Option<Confirmed<RecoveredTx>>> {
        self.ensure_open()?;
        if let TransactionSpecifier::BlockAndIndex { block, index } = spec
            && let Some(hit) = self.cache.transaction(block, index)
        {
            return Ok(Some(hit));
        }
        self.read(
            "get_transaction",
            |b| b.dyn_get_transaction(spec),
            |cache, found| {
                if let Some(tx) = found {
                    cache.put_transaction(tx);
                }
            },
        )
        .await
    }

    pub(crate) async fn get_transactions_in_block(
        &self,
        block: BlockNumber,
    ) -> ColdResult<Vec<RecoveredTx>> {
        self.read(
            "get_transactions_in_block",
            |b| b.dyn_get_transactions_in_block(block),
            |_, _| {},
        )
        .await
    }

    pub(crate) async fn get_transaction_count(&self, block: BlockNumber) -> ColdResult<u64> {
        self.read("get_transaction_count", |b| b.dyn_get_transaction_count(block), |_, _| {}).await
    }

    pub(crate) async fn get_receipt(
        &self,
        spec: ReceiptSpecifier,
    ) -> ColdResult<Option<ColdReceipt>> {
        self.ensure_open()?;
        if let ReceiptSpecifier::BlockAndIndex { block, index } = spec
            && let Some(hit) = self.cache.receipt(block, index)
        {
            return Ok(Some(hit));
        }
        self.read(
            "get_receipt",
            |b| b.dyn_get_receipt(spec),
            |cache, found| {
                if let Some(receipt) = found {
                    cache.put_receipt(receipt);
                }
            },
        )
        .await
    }

    pub(crate) async fn get_receipts_in_block(
        &self,
        block: BlockNumber,
    ) -> ColdResult<Vec<ColdReceipt>> {
        self.read("get_receipts_in_block", |b| b.dyn_get_receipts_in_block(block), |_, _| {}).await
    }

    pub(crate) async fn get_signet_events(
        &self,
        spec: SignetEventsSpecifier,
    ) -> ColdResult<Vec<DbSignetEvent>> {
        self.read("get_signet_events", |b| b.dyn_get_signet_events(spec), |_, _| {}).await
    }

    pub(crate) async fn get_zenith_header(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Option<DbZenithHeader>> {
        self.read("get_zenith_header", |b| b.dyn_get_zenith_header(spec), |_, _| {}).await
    }

    pub(crate) async fn get_zenith_headers(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Vec<DbZenithHeader>> {
        self.read("get_zenith_headers", |b| b.dyn_get_zenith_headers(spec), |_, _| {}).await
    }

    pub(crate) async fn get_logs(
        &self,
        filter: Filter,
        max_logs: usize,
    ) -> ColdResult<Vec<RpcLog>> {
        let filter = &filter;
        self.read("get_logs", move |b| b.dyn_get_logs(filter, max_logs), |_, _| {}).await
    }

    pub(crate) async fn get_latest_block(&self) -> ColdResult<Option<BlockNumber>> {
        self.read("get_latest_block", |b| b.dyn_get_latest_block(), |_, _| {}).await
    }

    pub(crate) async fn get_header_by_hash(&self, hash: B256) -> ColdResult<Option<SealedHeader>> {
        self.get_header(HeaderSpecifier::Hash(hash)).await
    }

    // ----- streams -----

    pub(crate) async fn stream_logs(
        &self,
        filter: Filter,
        max_logs: usize,
        deadline: Duration,
    ) -> ColdResult<LogStream> {
        if self.shutdown.is_cancelled() {
            return Err(ColdStorageError::TaskTerminated);
        }
        let from = filter.get_from_block().unwrap_or(0);
        let to = match filter.get_to_block() {
            Some(to) => to,
            None => {
                let limit = self.backend.dyn_read_timeout().unwrap_or(DEFAULT_STREAM_SETUP_TIMEOUT);
                let latest = tokio::time::timeout(limit, self.backend.dyn_get_latest_block())
                    .await
                    .map_err(|_| {
                        metrics::op_error("stream_logs", "deadline");
                        ColdStorageError::DeadlineExceeded(limit)
                    })??;
                match latest {
                    Some(latest) => latest,
                    None => return Ok(ReceiverStream::new(mpsc::channel(1).1)),
                }
            }
        };

        let Ok(permit) = self.streams.clone().acquire_owned().await else {
            return Err(ColdStorageError::TaskTerminated);
        };
        let deadline = Instant::now() + deadline.min(self.config.max_stream_deadline());
        let (sender, receiver) = mpsc::channel(STREAM_CHANNEL_BUFFER);
        let watcher = sender.clone();
        let backend = Arc::clone(&self.backend);
        self.stream_tasks.spawn(async move {
            let _permit = permit;
            let _active = InFlight::stream();
            let started = Instant::now();
            let params = StreamParams { from, to, max_logs, sender, deadline };
            let produce = AssertUnwindSafe(backend.dyn_produce_log_stream(&filter, params));
            tokio::select! {
                biased;
                // The consumer dropped the stream: stop and free the permit now.
                () = watcher.closed() => {}
                outcome = produce.catch_unwind() => {
                    if let Err(payload) = outcome {
                        let err = BackendPanicked::from_payload("stream_logs", &*payload);
                        metrics::op_error("stream_logs", "panic");
                        let _ = watcher.try_send(Err(ColdStorageError::backend(err)));
                    }
                }
            }
            metrics::op_duration("stream_logs", started.elapsed());
        });
        Ok(ReceiverStream::new(receiver))
    }

    // ----- writes -----

    /// Queues a write and waits for its result.
    pub(crate) async fn write(&self, op: WriteOp) -> ColdResult<WriteOutput> {
        if self.shutdown.is_cancelled() {
            return Err(ColdStorageError::TaskTerminated);
        }
        let (reply, result) = oneshot::channel();
        let request = WriteRequest { op, reply: Some(reply) };
        let sent = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return Err(ColdStorageError::TaskTerminated),
            sent = self.writes.send(request) => sent,
        };
        sent.map_err(|_| ColdStorageError::TaskTerminated)?;
        metrics::write_queue_depth(self.write_queue_depth());
        // The writer drops the reply sender, unanswered, only at shutdown.
        result.await.map_err(|_| ColdStorageError::TaskTerminated)?
    }

    /// Queues a write without waiting for a slot or a result.
    pub(crate) fn dispatch(&self, op: WriteOp) -> Result<(), DispatchError> {
        if self.shutdown.is_cancelled() {
            return Err(DispatchError::TaskTerminated);
        }
        match self.writes.try_send(WriteRequest { op, reply: None }) {
            Ok(()) => {
                metrics::write_queue_depth(self.write_queue_depth());
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::backpressure();
                Err(DispatchError::Backpressure)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(DispatchError::TaskTerminated),
        }
    }
}
