//! Log streams: their own cap, a task per producing stream, no read permit.

use crate::{
    Shared,
    error::BackendPanicked,
    logs,
    metrics::{self, InFlight},
};
use alloy::primitives::BlockNumber;
use futures_util::FutureExt;
use signet_cold::{ColdResult, ColdStorageError, Filter, LogStream, RpcLog, StreamParams};
use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;

/// Bound on resolving a stream's range (the tip, or a block hash) when the
/// backend advertises no `read_timeout`.
pub(crate) const DEFAULT_STREAM_SETUP_TIMEOUT: Duration = Duration::from_millis(500);

/// Items a stream may buffer ahead of its consumer.
const STREAM_CHANNEL_BUFFER: usize = 256;

/// Items a backend's producer may buffer ahead of [`forward`].
const PRODUCER_BUFFER: usize = 16;

/// Forwards a producer's items to the consumer, holding the stream to
/// `max_logs` the way `get_logs` is held: more matching logs than that end
/// the stream with `TooManyLogs { limit: max_logs }`.
///
/// signet-cold 0.10's producers stop quietly once they have sent
/// `max_logs` logs (and, for a limit of 0, after the first block), so a
/// stream with more matches than the limit would end as if complete. Asked
/// for one more than the limit, they send that one (or fail with
/// `TooManyLogs` themselves); either becomes the error here. Sends to the
/// consumer are bounded by the stream's deadline, as the producers' are.
async fn forward(
    mut produced: mpsc::Receiver<ColdResult<RpcLog>>,
    consumer: mpsc::Sender<ColdResult<RpcLog>>,
    max_logs: usize,
    deadline: Instant,
) {
    let mut sent = 0usize;
    while let Some(item) = produced.recv().await {
        let item = match item {
            Ok(_) if sent == max_logs => Err(ColdStorageError::TooManyLogs { limit: max_logs }),
            Err(ColdStorageError::TooManyLogs { .. }) => {
                Err(ColdStorageError::TooManyLogs { limit: max_logs })
            }
            item => item,
        };
        let last = item.is_err();
        match tokio::time::timeout_at(deadline, consumer.send(item)).await {
            Ok(Ok(())) => {}
            // The consumer dropped the stream.
            Ok(Err(_)) => return,
            Err(_) => {
                let _ = consumer.send(Err(ColdStorageError::StreamDeadlineExceeded)).await;
                return;
            }
        }
        if last {
            return;
        }
        sent += 1;
    }
}

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
        logs::check(&filter)?;
        let Some((from, to)) = self.resolve_range(&filter).await? else {
            // Nothing stored in range: a stream that ends at once.
            return Ok(ReceiverStream::new(mpsc::channel(1).1));
        };
        let filter = logs::with_range(&filter, (from, to));

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
            // The producer is asked for one log more than the limit, and
            // `forward` turns that one into the error (see there).
            let (inner, produced) = mpsc::channel(PRODUCER_BUFFER);
            let params = StreamParams {
                from,
                to,
                max_logs: max_logs.saturating_add(1),
                sender: inner,
                deadline,
            };
            let produce =
                AssertUnwindSafe(backend.dyn_produce_log_stream(&filter, params)).catch_unwind();
            let produce = async move {
                tokio::join!(produce, forward(produced, sender, max_logs, deadline)).0
            };
            tokio::select! {
                biased;
                // The consumer dropped the stream: stop and free the permit now.
                () = watcher.closed() => {}
                // Shutdown: the consumer sees the stream end with this error.
                () = shutdown.cancelled() => {
                    let _ = watcher.try_send(Err(ColdStorageError::TaskTerminated));
                }
                outcome = produce => {
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

    /// The stream's range of stored blocks (see [`logs::resolve`]): bounded
    /// by the backend's read timeout, a panic returned as [`BackendPanicked`].
    async fn resolve_range(
        &self,
        filter: &Filter,
    ) -> ColdResult<Option<(BlockNumber, BlockNumber)>> {
        let limit = self.backend.dyn_read_timeout().unwrap_or(DEFAULT_STREAM_SETUP_TIMEOUT);
        let call = AssertUnwindSafe(logs::resolve(&*self.backend, filter, true)).catch_unwind();
        match tokio::time::timeout(limit, call).await {
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
            Ok(Ok(range)) => range,
        }
    }
}
