//! The task: construction, the writer, and shutdown.

use crate::{
    ColdStorageConfig, ColdStorageHandle,
    dispatch::{Shared, WriteOp, WriteOutput, WriteRequest},
    error::BackendPanicked,
    error_kind, metrics,
};
use drain_gate::OwnedDrainGuard;
use futures_util::FutureExt;
use signet_cold::{ColdResult, ColdStorageBackend, ColdStorageError};
use std::{panic::AssertUnwindSafe, sync::Arc};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

/// Closes the shared state when dropped: at the end of `run`, when the `run`
/// future is dropped unfinished, or when a task is dropped without running.
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The cold storage task: owns the writer and the shutdown sequence.
///
/// Reads and streams do not go through the task; they run in their callers'
/// tasks under the [`ColdStorageHandle`]'s gate, so they keep working even
/// while a write is slow. Writes are queued to the task, which runs them one
/// at a time, in arrival order, each under a drain of the read gate.
///
/// The task stops when the cancellation token fires or every handle
/// (including read handles) has been dropped; see [`run`](Self::run).
///
/// # Example
///
/// ```
/// use cold_adapter::ColdStorageTask;
/// use signet_cold::mem::MemColdBackend;
/// use tokio_util::sync::CancellationToken;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> signet_cold::ColdResult<()> {
/// let cancel = CancellationToken::new();
/// let handle = ColdStorageTask::spawn(MemColdBackend::new(), cancel.clone());
/// assert_eq!(handle.get_latest_block().await?, None);
/// cancel.cancel();
/// # Ok(())
/// # }
/// ```
pub struct ColdStorageTask<B> {
    shared: Arc<Shared>,
    backend: Arc<B>,
    queue: mpsc::Receiver<WriteRequest>,
    closer: CloseOnDrop,
}

impl<B> std::fmt::Debug for ColdStorageTask<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStorageTask")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<B: ColdStorageBackend> ColdStorageTask<B> {
    /// Creates a task over `backend` with the default
    /// [`ColdStorageConfig`], and its first handle.
    ///
    /// Reads through the handle work at once; writes queue until
    /// [`run`](Self::run) is polled. Firing `cancel` (or dropping every
    /// handle) shuts the task down.
    pub fn new(backend: B, cancel: CancellationToken) -> (Self, ColdStorageHandle) {
        Self::with_config(backend, cancel, ColdStorageConfig::default())
    }

    /// Like [`new`](Self::new), with explicit limits.
    pub fn with_config(
        backend: B,
        cancel: CancellationToken,
        config: ColdStorageConfig,
    ) -> (Self, ColdStorageHandle) {
        let backend = Arc::new(backend);
        let shutdown = cancel.child_token();
        let (shared, queue) = Shared::new(backend.clone(), config, shutdown);
        let shared = Arc::new(shared);
        let handle = ColdStorageHandle::new(Arc::clone(&shared));
        let closer = CloseOnDrop(Arc::clone(&shared));
        (Self { shared, backend, queue, closer }, handle)
    }

    /// Creates a task with the default config, spawns [`run`](Self::run) on
    /// the current tokio runtime, and returns its handle.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime.
    pub fn spawn(backend: B, cancel: CancellationToken) -> ColdStorageHandle {
        Self::spawn_with_config(backend, cancel, ColdStorageConfig::default())
    }

    /// Like [`spawn`](Self::spawn), with explicit limits.
    ///
    /// # Panics
    ///
    /// Panics when called outside a tokio runtime.
    pub fn spawn_with_config(
        backend: B,
        cancel: CancellationToken,
        config: ColdStorageConfig,
    ) -> ColdStorageHandle {
        let (task, handle) = Self::with_config(backend, cancel, config);
        tokio::spawn(task.run());
        handle
    }

    /// Runs the writer until shutdown, then waits for the work in flight.
    ///
    /// Shutdown starts when the cancellation token fires or the last handle
    /// is dropped. From then on, waiting and new reads, new writes, streams
    /// and the drain the writer may be waiting for fail with
    /// [`ColdStorageError::TaskTerminated`]. The write that is running
    /// finishes and gets its result. Every write already queued (awaited or
    /// dispatched: a dispatch's `Ok` was an acknowledgement) still runs, in
    /// arrival order, once the reads in flight have finished, and awaited
    /// callers get its result: dropping only some of them would leave a
    /// later write applied without an earlier one (a gap in the chain).
    /// `run` returns once those writes, every read holding a permit and
    /// every stream producer have finished.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future shuts the task down as above, except that
    /// nothing waits: a write that was running is dropped mid-call (the
    /// backend's transaction rolls back), and its caller gets
    /// `TaskTerminated`.
    pub async fn run(self) {
        let Self { shared, backend, mut queue, closer } = self;
        let close_on_shutdown = async {
            shared.shutdown.cancelled().await;
            shared.close();
        };
        let ((), held) =
            tokio::join!(close_on_shutdown, write_loop(&shared, &*backend, &mut queue));

        // Every write already queued runs, in arrival order, once no read is
        // in flight (the gate is closed, so none can start): dispatched ones
        // were acknowledged, and skipping an awaited one while a later
        // dispatch runs would leave a gap. Nothing new can be queued.
        queue.close();
        // The write the writer held while its drain failed comes first.
        let mut queued: Vec<WriteRequest> = held.into_iter().collect();
        while let Ok(request) = queue.try_recv() {
            queued.push(request);
        }
        shared.gate.closed_and_idle().await;
        for request in queued {
            execute(&shared, &*backend, request).await;
        }
        metrics::write_queue_depth(0);
        shared.stream_tasks.wait().await;
        tracing::debug!("cold storage task stopped");
        drop(closer);
    }
}

/// Runs writes in arrival order until shutdown; queued writes share a drain.
///
/// Returns the write it had taken off the queue when shutdown failed its
/// drain, so that `run` can still honour it if it was acknowledged.
async fn write_loop<B: ColdStorageBackend>(
    shared: &Shared,
    backend: &B,
    queue: &mut mpsc::Receiver<WriteRequest>,
) -> Option<WriteRequest> {
    loop {
        let first = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return None,
            next = queue.recv() => match next {
                Some(request) => request,
                None => return None,
            },
        };
        let Some(drain) = acquire_drain(shared).await else {
            return Some(first);
        };
        execute(shared, backend, first).await;
        let mut ran = 1;
        while ran < shared.config.write_batch() && !shared.shutdown.is_cancelled() {
            let Ok(next) = queue.try_recv() else { break };
            execute(shared, backend, next).await;
            ran += 1;
        }
        metrics::write_queue_depth(shared.write_queue_depth());
        drop::<OwnedDrainGuard>(drain);
    }
}

/// Waits for a drain; past the drain deadline, tells the reads in flight to
/// stop. `None` when the gate closed (shutdown) first.
async fn acquire_drain(shared: &Shared) -> Option<OwnedDrainGuard> {
    let started = Instant::now();
    *shared.drain_waiting_since.lock().unwrap_or_else(|e| e.into_inner()) = Some(started);
    let mut drain = shared.gate.clone().drain_owned();
    let granted = match shared.config.drain_deadline() {
        None => drain.await,
        Some(limit) => tokio::select! {
            biased;
            granted = &mut drain => granted,
            () = tokio::time::sleep(limit) => {
                tracing::warn!(
                    readers_in_flight = shared.gate.readers_in_flight(),
                    limit_ms = limit.as_millis() as u64,
                    "cold drain passed its deadline; telling reads in flight to stop",
                );
                shared.overdue.send_replace(true);
                drain.await
            }
        },
    };
    shared.overdue.send_replace(false);
    *shared.drain_waiting_since.lock().unwrap_or_else(|e| e.into_inner()) = None;
    metrics::drain_wait(started.elapsed());
    if granted.is_ok() {
        shared.drains_granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    granted.ok()
}

/// Runs one write under the drain held by the caller and delivers its result.
async fn execute<B: ColdStorageBackend>(shared: &Shared, backend: &B, request: WriteRequest) {
    let WriteRequest { op, reply } = request;
    let name = op.name();
    let evict_above = match &op {
        WriteOp::TruncateAbove(block) | WriteOp::DrainAbove(block) => Some(*block),
        // A backend that overwrites an existing number (MemColdBackend does)
        // would otherwise leave the old block cached under that number.
        WriteOp::AppendBlock(block) => Some(block.block_number().saturating_sub(1)),
        WriteOp::AppendBlocks(blocks) => {
            blocks.iter().map(|b| b.block_number().saturating_sub(1)).min()
        }
    };
    let started = Instant::now();
    let outcome = AssertUnwindSafe(run_op(backend, op)).catch_unwind().await;
    let result = outcome.unwrap_or_else(|payload| {
        Err(ColdStorageError::backend(BackendPanicked::from_payload(name, &*payload)))
    });
    // Evict even on failure: the backend state above `block` is in doubt.
    // (Appends usually evict nothing: nothing above the tip is cached.)
    // This happens under the drain, before any later read can start.
    if let Some(block) = evict_above {
        shared.cache.invalidate_above(block);
    }
    metrics::op_duration(name, started.elapsed());
    if let Err(err) = &result {
        metrics::op_error(name, error_kind(err));
    }
    match reply {
        Some(reply) => {
            let _ = reply.send(result);
        }
        None => {
            if let Err(err) = result {
                tracing::error!(op = name, error = %err, "dispatched cold write failed");
            }
        }
    }
}

async fn run_op<B: ColdStorageBackend>(backend: &B, op: WriteOp) -> ColdResult<WriteOutput> {
    match op {
        WriteOp::AppendBlock(block) => {
            backend.append_block(*block).await.map(|()| WriteOutput::Done)
        }
        WriteOp::AppendBlocks(blocks) => {
            backend.append_blocks(blocks).await.map(|()| WriteOutput::Done)
        }
        WriteOp::TruncateAbove(block) => {
            backend.truncate_above(block).await.map(|()| WriteOutput::Done)
        }
        WriteOp::DrainAbove(block) => backend.drain_above(block).await.map(WriteOutput::Drained),
    }
}
