//! Log streams: their own cap, a task per producing stream, no read permit.

use crate::{
    Shared,
    error::BackendPanicked,
    metrics::{self, InFlight},
};
use futures_util::FutureExt;
use signet_cold::{ColdResult, ColdStorageError, Filter, LogStream, StreamParams};
use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;

/// Bound on resolving "latest" for an open-ended stream when the backend
/// advertises no `read_timeout`.
pub(crate) const DEFAULT_STREAM_SETUP_TIMEOUT: Duration = Duration::from_millis(500);

/// Items a stream producer may buffer ahead of its consumer.
const STREAM_CHANNEL_BUFFER: usize = 256;

impl Shared {
    pub(crate) async fn stream_logs(
        self: &Arc<Self>,
        filter: Filter,
        max_logs: usize,
        deadline: Duration,
    ) -> ColdResult<LogStream> {
        self.ensure_open()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ColdStorageError::backend(crate::error::NoRuntime));
        }
        let from = filter.get_from_block().unwrap_or(0);
        let to = match filter.get_to_block() {
            Some(to) => to,
            None => match self.resolve_latest().await? {
                Some(latest) => latest,
                None => return Ok(ReceiverStream::new(mpsc::channel(1).1)),
            },
        };

        let Ok(permit) = self.streams.clone().acquire_owned().await else {
            return Err(ColdStorageError::TaskTerminated);
        };
        let deadline = Instant::now() + deadline.min(self.config.max_stream_deadline());
        let (sender, receiver) = mpsc::channel(STREAM_CHANNEL_BUFFER);
        let watcher = sender.clone();
        let backend = Arc::clone(&self.backend);
        let shutdown = self.shutdown.clone();
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
                // Shutdown: the consumer sees the stream end with this error.
                () = shutdown.cancelled() => {
                    let _ = watcher.try_send(Err(ColdStorageError::TaskTerminated));
                }
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

    /// The tip, for an open-ended stream: bounded by the backend's read
    /// timeout, a panic returned as [`BackendPanicked`].
    async fn resolve_latest(&self) -> ColdResult<Option<alloy::primitives::BlockNumber>> {
        let limit = self.backend.dyn_read_timeout().unwrap_or(DEFAULT_STREAM_SETUP_TIMEOUT);
        let call =
            std::panic::catch_unwind(AssertUnwindSafe(|| self.backend.dyn_get_latest_block()));
        let latest = match call {
            Ok(call) => tokio::time::timeout(limit, AssertUnwindSafe(call).catch_unwind()).await,
            Err(payload) => Ok(Err(payload)),
        };
        match latest {
            Err(_) => {
                metrics::op_error("stream_logs", "deadline");
                Err(ColdStorageError::DeadlineExceeded(limit))
            }
            Ok(Err(payload)) => {
                metrics::op_error("stream_logs", "panic");
                Err(ColdStorageError::backend(BackendPanicked::from_payload(
                    "stream_logs",
                    &*payload,
                )))
            }
            Ok(Ok(latest)) => latest,
        }
    }
}
