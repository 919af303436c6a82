//! Reads: the cache, the read permit, and the backend call.
//!
//! A read first tries the cache, then a read permit without waiting. With a
//! permit in hand it polls the backend call once, in the caller's task: the
//! in-memory backend answers on that first poll, so a read costs no task
//! and no hand-off. A call that is still pending, or a read that must wait
//! for its permit, moves into a task of its own (the runtime polls it),
//! and the caller awaits that task; dropping the caller's future aborts it.
//!
//! Why a task: a read whose caller stops polling it (inside a `buffered`
//! stream whose consumer is a slow RPC client) would otherwise keep its
//! permit, and so hold off every write, for as long as the caller sleeps:
//! stopping a read at the drain deadline or at shutdown needs someone to
//! poll it. In its own task it stops on time and releases its permit
//! whatever the caller does. A read waiting for its permit moves too: a
//! permit granted to a future nobody polls would be held the same way.
//!
//! The cost, measured with `examples/read_dispatch.rs` (uncached
//! `get_header_by_hash` over `MemColdBackend`, release build, idle 2-core
//! machine): 0.7–0.8 µs per read at 32 tasks (free permits: every read in
//! the caller's task); 2.6–2.8 µs at 256 tasks on 64 permits, where most
//! reads wait and so run in tasks of their own (waiting in the caller's
//! task cost 0.7–1.0 µs, but could hold a write forever). A SQL read takes
//! 100 µs and more, so the task costs it nothing measurable.
//!
//! A read failing with a [transient](crate::is_transient) error is retried
//! with backoff, keeping its permit (reads are idempotent); the drain
//! deadline and shutdown still stop it.

use crate::{
    Shared,
    cache::ColdCache,
    error::BackendPanicked,
    error_kind, is_transient, logs,
    metrics::{self, InFlight},
};
use alloy::primitives::{B256, BlockNumber};
use drain_gate::OwnedReadPermits;
use futures_util::FutureExt;
use signet_cold::{
    ColdReceipt, ColdResult, ColdStorageError, Confirmed, DynColdStorageBackend, Filter,
    HeaderSpecifier, ReceiptSpecifier, RpcLog, SignetEventsSpecifier, TransactionSpecifier,
    ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{future::Future, panic::AssertUnwindSafe, pin::Pin, sync::Arc, task::Poll};
use tokio::{task::JoinHandle, time::Instant};

/// A backend call that owns what it needs.
pub(crate) type Call<T> = Pin<Box<dyn Future<Output = ColdResult<T>> + Send>>;

/// How a read makes its backend call; called again for each retry.
pub(crate) trait MakeCall<T>:
    Fn(Arc<dyn DynColdStorageBackend>) -> Call<T> + Send + 'static
{
}
impl<T, F: Fn(Arc<dyn DynColdStorageBackend>) -> Call<T> + Send + 'static> MakeCall<T> for F {}

/// Inserts a successful value into the cache, while the permit is held.
pub(crate) type Keep<T> = fn(&ColdCache, &T);

/// Aborts the read's task when the caller drops its future.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

fn panicked<T>(op: &'static str, payload: &(dyn std::any::Any + Send)) -> ColdResult<T> {
    Err(ColdStorageError::backend(BackendPanicked::from_payload(op, payload)))
}

/// Starts the call, catching a panic in the synchronous part too.
fn start<T: Send + 'static>(
    op: &'static str,
    make: &dyn Fn(Arc<dyn DynColdStorageBackend>) -> Call<T>,
    backend: &Arc<dyn DynColdStorageBackend>,
) -> Call<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| make(Arc::clone(backend)))) {
        Ok(call) => Box::pin(
            AssertUnwindSafe(call)
                .catch_unwind()
                .map(move |out| out.unwrap_or_else(|payload| panicked(op, &*payload))),
        ),
        Err(payload) => Box::pin(std::future::ready(panicked(op, &*payload))),
    }
}

impl Shared {
    /// Runs one backend read under a read permit; see the [module](self).
    ///
    /// `keep` sees a successful value while the permit is still held, so a
    /// cache insert cannot race a truncate's eviction (which holds the
    /// drain).
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        op: &'static str,
        make: impl MakeCall<T>,
        keep: Keep<T>,
    ) -> ColdResult<T> {
        self.read_weighted(op, 1, make, keep).await
    }

    /// [`Shared::read`] under `permits` read permits (`1..=cap`): a read
    /// that costs more than one, such as a wide `get_logs`.
    pub(crate) async fn read_weighted<T: Send + 'static>(
        self: &Arc<Self>,
        op: &'static str,
        permits: usize,
        make: impl MakeCall<T>,
        keep: Keep<T>,
    ) -> ColdResult<T> {
        // The token fires synchronously with the user's cancel; the gate is
        // closed a moment later by the task. Checking both fails calls fast
        // even before the task has run (or if it is never polled).
        if let Err(err) = self.ensure_open() {
            metrics::op_error(op, "task_terminated");
            return Err(err);
        }
        let job = match self.gate.clone().try_acquire_many_owned(permits) {
            Ok(permit) => {
                // Granted without waiting: no clock read for a zero wait.
                metrics::permit_wait(std::time::Duration::ZERO);
                let in_flight = InFlight::read();
                let started = Instant::now();
                let mut call = start(op, &make, &self.backend);
                let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
                match first {
                    Poll::Ready(result) if !is_transient_err(&result) => {
                        return self.finish(op, permit, result, keep, started, in_flight);
                    }
                    Poll::Ready(failed) => Box::pin(Arc::clone(self).held(
                        op,
                        permit,
                        Some(failed),
                        None,
                        make,
                        keep,
                        started,
                        in_flight,
                    )) as Call<T>,
                    Poll::Pending => Box::pin(Arc::clone(self).held(
                        op,
                        permit,
                        None,
                        Some(call),
                        make,
                        keep,
                        started,
                        in_flight,
                    )),
                }
            }
            Err(_) => Box::pin(Arc::clone(self).queued(op, permits, make, keep, Instant::now())),
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Err(ColdStorageError::backend(crate::error::NoRuntime));
        };
        match AbortOnDrop(runtime.spawn(job)).await {
            Ok(result) => result,
            Err(err) if err.is_panic() => panicked(op, &*err.into_panic()),
            // Aborted: only by the runtime shutting down.
            Err(_) => Err(ColdStorageError::TaskTerminated),
        }
    }

    /// A read that waits for its permit, in its own task.
    async fn queued<T: Send + 'static>(
        self: Arc<Self>,
        op: &'static str,
        permits: usize,
        make: impl MakeCall<T>,
        keep: Keep<T>,
        waited: Instant,
    ) -> ColdResult<T> {
        let acquired = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            // `permits` is in `1..=cap` (see `log_query_permits`): only a
            // closed gate fails it.
            permit = self.gate.clone().acquire_many_owned(permits) => permit.ok(),
        };
        let Some(permit) = acquired else {
            metrics::op_error(op, "task_terminated");
            return Err(ColdStorageError::TaskTerminated);
        };
        metrics::permit_wait(waited.elapsed());
        let in_flight = InFlight::read();
        let started = Instant::now();
        self.held(op, permit, None, None, make, keep, started, in_flight).await
    }

    /// A read holding its permit, in its own task: runs (or goes on with)
    /// the call, retries transient failures, and stops at the drain
    /// deadline or shutdown.
    #[allow(clippy::too_many_arguments)]
    async fn held<T: Send + 'static>(
        self: Arc<Self>,
        op: &'static str,
        permit: OwnedReadPermits,
        failed: Option<ColdResult<T>>,
        call: Option<Call<T>>,
        make: impl MakeCall<T>,
        keep: Keep<T>,
        started: Instant,
        in_flight: InFlight,
    ) -> ColdResult<T> {
        let config = &self.config;
        let mut delays = config.read_backoff().delays(config.read_retries());
        let mut last = failed;
        let mut call = call;
        let stopped = loop {
            if let Some(result) = last.take() {
                if !is_transient_err(&result) {
                    break result;
                }
                let Some(delay) = delays.next() else { break result };
                if let Err(err) = &result {
                    metrics::read_retry(op, error_kind(err));
                }
                self.read_retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    biased;
                    () = self.shutdown.cancelled() => break Err(ColdStorageError::TaskTerminated),
                    () = self.stop_requested(&permit) => break self.stopped_by_drain(),
                    () = tokio::time::sleep(delay) => {}
                }
            }
            let mut running = call.take().unwrap_or_else(|| start(op, &make, &self.backend));
            last = Some(tokio::select! {
                biased;
                result = &mut running => result,
                () = self.shutdown.cancelled() => break Err(ColdStorageError::TaskTerminated),
                () = self.stop_requested(&permit) => break self.stopped_by_drain(),
            });
        };
        self.finish(op, permit, stopped, keep, started, in_flight)
    }

    fn stopped_by_drain<T>(&self) -> ColdResult<T> {
        metrics::read_stopped();
        Err(ColdStorageError::DeadlineExceeded(self.config.drain_deadline().unwrap_or_default()))
    }

    /// Keeps a value in the cache, releases the permit, records metrics.
    fn finish<T>(
        &self,
        op: &'static str,
        permit: OwnedReadPermits,
        result: ColdResult<T>,
        keep: Keep<T>,
        started: Instant,
        in_flight: InFlight,
    ) -> ColdResult<T> {
        if let Ok(value) = &result {
            keep(&self.cache, value);
        }
        drop(permit);
        drop(in_flight);
        metrics::op_duration(op, started.elapsed());
        if let Err(err) = &result {
            metrics::op_error(op, error_kind(err));
        }
        result
    }

    /// Resolves when this read must stop: a drain is pending on it and has
    /// passed its deadline. Never resolves when drain deadlines are off.
    async fn stop_requested(&self, permit: &OwnedReadPermits) {
        if self.config.drain_deadline().is_none() {
            return std::future::pending().await;
        }
        let mut overdue = self.overdue.subscribe();
        permit.drain_requested().await;
        if overdue.wait_for(|late| *late).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn is_transient_err<T>(result: &ColdResult<T>) -> bool {
    result.as_ref().err().is_some_and(is_transient)
}

/// A [`MakeCall`] from a backend method and arguments that are `Clone`.
macro_rules! call {
    (|$b:ident| $method:ident($($arg:ident),*)) => {
        move |$b: Arc<dyn DynColdStorageBackend>| -> Call<_> {
            $(let $arg = $arg.clone();)*
            Box::pin(async move { $b.$method($($arg),*).await })
        }
    };
}

fn keep_nothing<T>(_: &ColdCache, _: &T) {}

impl Shared {
    pub(crate) async fn get_header(
        self: &Arc<Self>,
        spec: HeaderSpecifier,
    ) -> ColdResult<Option<SealedHeader>> {
        if let HeaderSpecifier::Number(n) = spec
            && let Some(hit) = self.cache.header(n)
        {
            // A miss is checked by `read`, once.
            self.ensure_open()?;
            return Ok(Some(hit));
        }
        self.read("get_header", call!(|b| dyn_get_header(spec)), |cache, found| {
            if let Some(header) = found {
                cache.put_header(header);
            }
        })
        .await
    }

    pub(crate) async fn get_headers(
        self: &Arc<Self>,
        specs: Vec<HeaderSpecifier>,
    ) -> ColdResult<Vec<Option<SealedHeader>>> {
        self.read("get_headers", call!(|b| dyn_get_headers(specs)), keep_nothing).await
    }

    pub(crate) async fn get_transaction(
        self: &Arc<Self>,
        spec: TransactionSpecifier,
    ) -> ColdResult<Option<Confirmed<RecoveredTx>>> {
        if let TransactionSpecifier::BlockAndIndex { block, index } = spec
            && let Some(hit) = self.cache.transaction(block, index)
        {
            // A miss is checked by `read`, once.
            self.ensure_open()?;
            return Ok(Some(hit));
        }
        self.read("get_transaction", call!(|b| dyn_get_transaction(spec)), |cache, found| {
            if let Some(tx) = found {
                cache.put_transaction(tx);
            }
        })
        .await
    }

    pub(crate) async fn get_transactions_in_block(
        self: &Arc<Self>,
        block: BlockNumber,
    ) -> ColdResult<Vec<RecoveredTx>> {
        self.read(
            "get_transactions_in_block",
            call!(|b| dyn_get_transactions_in_block(block)),
            keep_nothing,
        )
        .await
    }

    pub(crate) async fn get_transaction_count(
        self: &Arc<Self>,
        block: BlockNumber,
    ) -> ColdResult<u64> {
        self.read(
            "get_transaction_count",
            call!(|b| dyn_get_transaction_count(block)),
            keep_nothing,
        )
        .await
    }

    pub(crate) async fn get_receipt(
        self: &Arc<Self>,
        spec: ReceiptSpecifier,
    ) -> ColdResult<Option<ColdReceipt>> {
        if let ReceiptSpecifier::BlockAndIndex { block, index } = spec
            && let Some(hit) = self.cache.receipt(block, index)
        {
            // A miss is checked by `read`, once.
            self.ensure_open()?;
            return Ok(Some(hit));
        }
        self.read("get_receipt", call!(|b| dyn_get_receipt(spec)), |cache, found| {
            if let Some(receipt) = found {
                cache.put_receipt(receipt);
            }
        })
        .await
    }

    pub(crate) async fn get_receipts_in_block(
        self: &Arc<Self>,
        block: BlockNumber,
    ) -> ColdResult<Vec<ColdReceipt>> {
        self.read(
            "get_receipts_in_block",
            call!(|b| dyn_get_receipts_in_block(block)),
            keep_nothing,
        )
        .await
    }

    pub(crate) async fn get_signet_events(
        self: &Arc<Self>,
        spec: SignetEventsSpecifier,
    ) -> ColdResult<Vec<DbSignetEvent>> {
        self.read("get_signet_events", call!(|b| dyn_get_signet_events(spec)), keep_nothing).await
    }

    pub(crate) async fn get_zenith_header(
        self: &Arc<Self>,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Option<DbZenithHeader>> {
        self.read("get_zenith_header", call!(|b| dyn_get_zenith_header(spec)), keep_nothing).await
    }

    pub(crate) async fn get_zenith_headers(
        self: &Arc<Self>,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Vec<DbZenithHeader>> {
        self.read("get_zenith_headers", call!(|b| dyn_get_zenith_headers(spec)), keep_nothing).await
    }

    pub(crate) async fn get_logs(
        self: &Arc<Self>,
        filter: Filter,
        max_logs: usize,
    ) -> ColdResult<Vec<RpcLog>> {
        if let Err(err) = logs::check(&filter) {
            metrics::op_error("get_logs", error_kind(&err));
            return Err(err);
        }
        let permits = self.config.log_query_permits(logs::span(&filter, self.tip()));
        let make = move |b: Arc<dyn DynColdStorageBackend>| -> Call<Vec<RpcLog>> {
            let filter = filter.clone();
            Box::pin(async move {
                // Under the query's permit: no write commits between the
                // lookup of the range and the query over it.
                let Some(range) = logs::resolve(&*b, &filter, false).await? else {
                    return Ok(Vec::new());
                };
                let found = b.dyn_get_logs(&logs::with_range(&filter, range), max_logs).await?;
                // Every backend alike: more than `max_logs` is an error.
                if found.len() > max_logs {
                    return Err(ColdStorageError::TooManyLogs { limit: max_logs });
                }
                Ok(found)
            })
        };
        self.read_weighted("get_logs", permits, make, keep_nothing).await
    }

    pub(crate) async fn get_latest_block(self: &Arc<Self>) -> ColdResult<Option<BlockNumber>> {
        self.read(
            "get_latest_block",
            |b| -> Call<_> { Box::pin(async move { b.dyn_get_latest_block().await }) },
            keep_nothing,
        )
        .await
    }

    pub(crate) async fn get_header_by_hash(
        self: &Arc<Self>,
        hash: B256,
    ) -> ColdResult<Option<SealedHeader>> {
        self.get_header(HeaderSpecifier::Hash(hash)).await
    }
}
