//! The task: construction, running the writer, and shutdown.

use crate::{
    ColdStorageConfig, ColdStorageHandle, Shared, metrics,
    writes::{WriteRequest, write_loop},
};
use signet_cold::ColdStorageBackend;
use std::sync::{Arc, atomic::Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Owns the write queue. Dropped (at the end of `run`, when the `run`
/// future is dropped unfinished, or with a task that never ran) it closes
/// the shared state and abandons every write still queued, each logged at
/// error level and counted (see [`ColdStorageTask::run`]).
struct Queue {
    shared: Arc<Shared>,
    receiver: mpsc::Receiver<WriteRequest>,
    /// Set once `run` has finished every queued write.
    finished: bool,
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.shared.close();
        self.receiver.close();
        let mut abandoned = 0usize;
        while let Ok(request) = self.receiver.try_recv() {
            abandoned += 1;
            drop(request); // an awaited caller gets TaskTerminated; a dispatch logs its loss
        }
        metrics::write_queue_depth(0);
        // Only shutdown abandons writes, so the task's total is this
        // shutdown's: the write that was running included.
        let lost = self.shared.writes_lost.load(Ordering::Relaxed);
        if !self.finished && (abandoned > 0 || lost > 0) {
            tracing::error!(
                writes_abandoned = abandoned,
                acknowledged_lost = lost,
                "cold storage task stopped before running every queued write",
            );
        }
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
    queue: Queue,
    _backend: std::marker::PhantomData<fn() -> B>,
}

impl<B> std::fmt::Debug for ColdStorageTask<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ColdStorageTask")
            .field("config", &self.queue.shared.config)
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
        let (shared, receiver) = Shared::new(backend, config, shutdown);
        let shared = Arc::new(shared);
        let handle = ColdStorageHandle::new(Arc::clone(&shared));
        let queue = Queue { shared, receiver, finished: false };
        (Self { queue, _backend: std::marker::PhantomData }, handle)
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

    /// Runs the writer until shutdown, then finishes the queued writes.
    ///
    /// Writes run one at a time, in arrival order, each under a drain of the
    /// read gate; a write failing transiently is retried, and one failing
    /// for good halts appends (see
    /// [`dispatch_append_blocks`](ColdStorageHandle::dispatch_append_blocks)).
    ///
    /// See [Shutdown](crate#shutdown) for what happens once shutdown
    /// starts, and when `run` returns.
    ///
    /// # Cancel safety
    ///
    /// Not cancel safe: dropping the future (aborting its task, shutting the
    /// runtime down) shuts the task down at once, without the grace
    /// period. The write running is dropped mid-call and every write still
    /// queued is abandoned, as when the grace period ends: each
    /// acknowledged one is logged at error level and counted as lost, and a
    /// summary with the count is logged. Cancel the token and await `run`
    /// instead.
    pub async fn run(self) {
        let Self { mut queue, .. } = self;
        let shared = Arc::clone(&queue.shared);
        let work = async {
            write_loop(&shared, &mut queue.receiver).await;
            shared.stream_tasks.wait().await;
        };
        let grace = async {
            shared.shutdown.cancelled().await;
            shared.close();
            tokio::time::sleep(shared.config.shutdown_grace()).await;
        };
        let finished = tokio::select! {
            biased;
            () = work => true,
            () = grace => false,
        };
        if finished {
            queue.finished = true;
            tracing::debug!("cold storage task stopped");
        } else {
            tracing::error!(
                grace_ms = shared.config.shutdown_grace().as_millis() as u64,
                reads_in_flight = shared.gate.readers_in_flight(),
                "cold storage shutdown grace period passed; abandoning what is left",
            );
        }
        drop(queue);
    }
}
