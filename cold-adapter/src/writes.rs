//! Writes: how handles queue them, and the writer that runs them in arrival
//! order, each under a drain, retrying transient failures and halting
//! appends on a permanent one.

use crate::{
    DispatchError, Shared, WritesHalted, error::BackendPanicked, error_kind, is_transient, metrics,
    shared::RetryingWrite,
};
use alloy::primitives::BlockNumber;
use drain_gate::OwnedDrainGuard;
use futures_util::FutureExt;
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageError, DynColdStorageBackend, HeaderSpecifier,
};
use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

/// How a successful write moves the tip ([`Shared::note_tip`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum TipChange {
    /// An append up to this block.
    Raise(BlockNumber),
    /// A truncate above this block.
    Lower(BlockNumber),
}

/// One write, as queued for the writer.
#[derive(Clone)]
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

    fn blocks(&self) -> &[BlockData] {
        match self {
            Self::AppendBlock(block) => std::slice::from_ref(&**block),
            Self::AppendBlocks(blocks) => blocks,
            Self::TruncateAbove(_) | Self::DrainAbove(_) => &[],
        }
    }

    /// What this write does to the store's tip once it succeeds.
    fn tip_change(&self) -> Option<TipChange> {
        match self {
            Self::TruncateAbove(n) | Self::DrainAbove(n) => Some(TipChange::Lower(*n)),
            _ => self.last_block().map(TipChange::Raise),
        }
    }

    /// The first block number this write changes (for a truncate above
    /// `n`, `n + 1`); `None` for an empty append.
    fn first_block(&self) -> Option<BlockNumber> {
        match self {
            Self::TruncateAbove(n) | Self::DrainAbove(n) => Some(n.saturating_add(1)),
            _ => self.blocks().iter().map(BlockData::block_number).min(),
        }
    }

    fn last_block(&self) -> Option<BlockNumber> {
        self.blocks().iter().map(BlockData::block_number).max().or_else(|| self.first_block())
    }

    /// Whether this write runs while `halt` is in force: a truncate (or
    /// drain) to below the halted block (to 0 when block 0 failed), which
    /// clears it, and an empty append, which writes nothing.
    fn resumes(&self, halt: &WritesHalted) -> bool {
        self.clears(halt)
            || matches!(self, Self::AppendBlock(_) | Self::AppendBlocks(_))
                && self.blocks().is_empty()
    }

    /// Whether this write, run successfully, clears `halt`.
    fn clears(&self, halt: &WritesHalted) -> bool {
        match self {
            Self::TruncateAbove(n) | Self::DrainAbove(n) => *n < halt.block.max(1),
            Self::AppendBlock(_) | Self::AppendBlocks(_) => false,
        }
    }
}

/// What a write returns on success.
pub(crate) enum WriteOutput {
    Done,
    Drained(Vec<Vec<ColdReceipt>>),
}

/// A queued write and where its outcome goes.
pub(crate) struct WriteRequest {
    pub(crate) op: WriteOp,
    pub(crate) reply: Reply,
}

pub(crate) enum Reply {
    /// An awaited write: its caller gets the result (or `TaskTerminated`
    /// if this is dropped unanswered).
    Awaited(oneshot::Sender<ColdResult<WriteOutput>>),
    /// A dispatched write, acknowledged with `Ok`.
    Dispatched(Ack),
}

/// A dispatched write's acknowledgement. Dropped without being settled
/// (the task abandoned the write), it logs the loss at error level and
/// counts it.
pub(crate) struct Ack {
    lost: Arc<AtomicU64>,
    op: &'static str,
    first: Option<BlockNumber>,
    last: Option<BlockNumber>,
    settled: bool,
}

impl Drop for Ack {
    fn drop(&mut self) {
        if !self.settled {
            self.lost.fetch_add(1, Ordering::Relaxed);
            metrics::write_lost(self.op);
            tracing::error!(
                op = self.op,
                first_block = self.first,
                last_block = self.last,
                "acknowledged cold write lost: the task stopped before it completed",
            );
        }
    }
}

impl Reply {
    fn deliver(self, op: &'static str, result: ColdResult<WriteOutput>) {
        match self {
            Self::Awaited(reply) => {
                let _ = reply.send(result);
            }
            Self::Dispatched(mut ack) => {
                ack.settled = true;
                if let Err(err) = result {
                    tracing::error!(
                        op,
                        first_block = ack.first,
                        last_block = ack.last,
                        error = %err,
                        "dispatched cold write failed",
                    );
                }
            }
        }
    }
}

impl Shared {
    /// Queues a write and waits for its result.
    pub(crate) async fn write(&self, op: WriteOp) -> ColdResult<WriteOutput> {
        self.ensure_open()?;
        self.admit(&op).map_err(|halt| halt.to_cold())?;
        let (reply, result) = oneshot::channel();
        let request = WriteRequest { op, reply: Reply::Awaited(reply) };
        let sent = tokio::select! {
            biased;
            () = self.shutdown.cancelled() => return Err(ColdStorageError::TaskTerminated),
            sent = self.writes.send(request) => sent,
        };
        sent.map_err(|_| ColdStorageError::TaskTerminated)?;
        metrics::write_queue_depth(self.write_queue_depth());
        // The writer drops the reply sender unanswered only when the task
        // stops without running it (grace period over, `run` dropped).
        result.await.map_err(|_| ColdStorageError::TaskTerminated)?
    }

    /// Queues a write without waiting for a slot or a result.
    pub(crate) fn dispatch(&self, op: WriteOp) -> Result<(), DispatchError> {
        if self.shutdown.is_cancelled() {
            return Err(DispatchError::TaskTerminated);
        }
        self.admit(&op).map_err(DispatchError::Halted)?;
        let ack = Ack {
            lost: Arc::clone(&self.writes_lost),
            op: op.name(),
            first: op.first_block(),
            last: op.last_block(),
            settled: false,
        };
        match self.writes.try_send(WriteRequest { op, reply: Reply::Dispatched(ack) }) {
            Ok(()) => {
                metrics::write_queue_depth(self.write_queue_depth());
                Ok(())
            }
            Err(refused) => {
                let (full, request) = match refused {
                    mpsc::error::TrySendError::Full(request) => (true, request),
                    mpsc::error::TrySendError::Closed(request) => (false, request),
                };
                // Refused, so never acknowledged: not a loss.
                if let Reply::Dispatched(mut ack) = request.reply {
                    ack.settled = true;
                }
                if full {
                    metrics::backpressure();
                    Err(DispatchError::Backpressure)
                } else {
                    Err(DispatchError::TaskTerminated)
                }
            }
        }
    }
}

impl Shared {
    /// Whether `op` may be queued now: not while appends are halted, unless
    /// it clears the halt or writes nothing. Appends are accepted again once
    /// the clearing truncate has run (not when it is merely queued).
    fn admit(&self, op: &WriteOp) -> Result<(), WritesHalted> {
        match self.halted() {
            Some(halt) if !op.resumes(&halt) => Err(halt),
            _ => Ok(()),
        }
    }
}

/// Runs writes in arrival order until shutdown, then every write still
/// queued. Queued writes share a drain, up to the write batch.
///
/// At shutdown the queue is closed and read with `recv` until it reports
/// the end, so a dispatch holding a reserved slot it has not yet filled
/// (tokio's mpsc) is still waited for: `try_recv` would answer `Empty` and
/// lose it.
pub(crate) async fn write_loop(shared: &Shared, queue: &mut mpsc::Receiver<WriteRequest>) {
    let mut writer = Writer { shared, drain: None, closed_idle: false };
    let mut closing = false;
    let mut ran = 0;
    loop {
        let next = if closing {
            queue.recv().await
        } else {
            tokio::select! {
                biased;
                () = shared.shutdown.cancelled() => {
                    closing = true;
                    queue.close();
                    continue;
                }
                next = queue.recv() => next,
            }
        };
        let Some(request) = next else { break };
        writer.run(request).await;
        ran += 1;
        metrics::write_queue_depth(shared.write_queue_depth());
        if ran >= shared.config.write_batch() || queue.is_empty() {
            writer.drain = None;
            ran = 0;
        }
    }
}

/// Waits for a drain; past the drain deadline, tells the reads in flight to
/// stop. `None` when the gate closed (shutdown) first.
async fn acquire_drain(shared: &Shared) -> Option<OwnedDrainGuard> {
    let started = Instant::now();
    shared.set_drain_waiting(Some(started));
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
    shared.set_drain_waiting(None);
    metrics::drain_wait(started.elapsed());
    if granted.is_ok() {
        shared.drains_granted.fetch_add(1, Ordering::Relaxed);
    }
    granted.ok()
}

/// Bound on one write attempt when the backend declares no write timeout.
const WRITE_ATTEMPT_LIMIT: Duration = Duration::from_secs(60);
/// Bound on one read of the found-applied check when the backend declares
/// no read timeout.
const CHECK_LIMIT: Duration = Duration::from_secs(10);

/// How long the writer lets one backend call run: twice the backend's own
/// timeout (which should fire first, with its own error) plus a second, or
/// `fallback` for a backend that declares none. Past it the call is dropped
/// and counts as a transient failure, so a hung backend call cannot hold
/// the writer (and every later write) forever.
fn attempt_limit(declared: Option<Duration>, fallback: Duration) -> Duration {
    declared.map_or(fallback, |t| t.saturating_mul(2).saturating_add(Duration::from_secs(1)))
}

/// What the backend holds of an append that reported a failure.
enum Applied {
    /// Every block is there with the same hash: the append committed.
    All,
    /// None of them is there.
    None,
    /// Some are there; these are the ones still to append, in order.
    Rest(WriteOp),
    /// A block is there with another hash.
    Conflict(String),
    /// The check itself failed, for this reason.
    Unknown(String),
}

/// What is being retried, for [`Writer::wait_to_retry`].
enum Retry<'a> {
    /// The write, after this error.
    Write(&'a ColdStorageError),
    /// The check whether a failed append committed, `failed` checks so far.
    Check { failed: u32, why: &'a str },
}

/// How a write ended.
enum Outcome {
    Done(WriteOutput),
    /// Failed; appends halt unless `halt` is false.
    Failed {
        err: ColdStorageError,
        halt: bool,
    },
}

/// An error the writer makes up, for a write that is known to have failed
/// (or committed without its result) but whose backend error says nothing
/// useful.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct WriteFault(String);

/// `err` for a [`WriteFault`] message: a backend error without the
/// "Backend error: " prefix the fault's own wrapping adds again.
fn cause(err: &ColdStorageError) -> String {
    match err {
        ColdStorageError::Backend(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

struct Writer<'a> {
    shared: &'a Shared,
    drain: Option<OwnedDrainGuard>,
    /// The gate is closed and no read is in flight: writes need no drain.
    closed_idle: bool,
}

impl Writer<'_> {
    /// Makes sure no read is in flight: holds a drain, or (at shutdown) waits
    /// until the closed gate is idle.
    async fn exclusive(&mut self) {
        if self.drain.is_some() || self.closed_idle {
            return;
        }
        match acquire_drain(self.shared).await {
            Some(guard) => self.drain = Some(guard),
            None => {
                self.shared.gate.closed_and_idle().await;
                self.closed_idle = true;
            }
        }
    }

    async fn run(&mut self, request: WriteRequest) {
        let WriteRequest { op, reply } = request;
        let name = op.name();
        if let Some(halt) = self.shared.halted()
            && !op.resumes(&halt)
        {
            self.shared.writes_rejected.fetch_add(1, Ordering::Relaxed);
            metrics::write_rejected(name);
            tracing::error!(
                op = name,
                first_block = op.first_block(),
                halted_at = halt.block,
                "cold write refused: appends are halted",
            );
            reply.deliver(name, Err(halt.to_cold()));
            return;
        }
        let result = match self.run_with_retries(op.clone()).await {
            Outcome::Done(output) => {
                if let Some(halt) = self.shared.halted()
                    && op.clears(&halt)
                {
                    self.shared.set_halted(None);
                    metrics::writes_halted(false);
                    tracing::info!(op = name, halted_at = halt.block, "cold appends resumed");
                }
                Ok(output)
            }
            Outcome::Failed { err, halt } => {
                if halt {
                    let halted = WritesHalted {
                        op: name,
                        block: op.first_block().unwrap_or_default(),
                        cause: err.to_string(),
                    };
                    tracing::error!(
                        op = name,
                        block = halted.block,
                        error = %err,
                        "cold write failed for good: appends halted until a truncate below it",
                    );
                    metrics::writes_halted(true);
                    self.shared.set_halted(Some(halted));
                }
                Err(err)
            }
        };
        reply.deliver(name, result);
    }

    async fn run_with_retries(&mut self, mut op: WriteOp) -> Outcome {
        let name = op.name();
        let config = &self.shared.config;
        let mut delays = config.write_backoff().delays(config.write_retries());
        let mut attempts = 0u32;
        // Checks whether a failed append committed that failed themselves
        // and were asked again.
        let mut checks = 0u32;
        let outcome = loop {
            self.exclusive().await;
            attempts += 1;
            let err = match self.attempt(op.clone()).await {
                Ok(output) => break Outcome::Done(output),
                Err(err) => err,
            };
            // Set when the check explains the failure (some blocks were
            // already there): the rest is retried whatever the error was.
            let mut retry_rest = false;
            // A failed write may still have committed (the reply to COMMIT
            // can be lost with the connection), or may have found its
            // blocks already there: ask the backend before anything else.
            // Only this writer writes, so nothing else changes meanwhile.
            match &op {
                WriteOp::AppendBlock(_) | WriteOp::AppendBlocks(_) => {
                    match self.applied_asking_again(&op, attempts, &mut delays, &mut checks).await {
                        Applied::All => {
                            metrics::write_found_applied(name);
                            tracing::info!(op = name, error = %err, "cold write reported failure but had committed");
                            if let Some(change) = op.tip_change() {
                                self.shared.note_tip(change);
                            }
                            break Outcome::Done(WriteOutput::Done);
                        }
                        Applied::Rest(rest) => {
                            op = rest;
                            retry_rest = true;
                        }
                        Applied::Conflict(why) => {
                            let err = ColdStorageError::backend(WriteFault(format!(
                                "{}; {why}",
                                cause(&err)
                            )));
                            break Outcome::Failed { err, halt: true };
                        }
                        Applied::Unknown(why) => {
                            let err = ColdStorageError::backend(WriteFault(format!(
                                "{}; it may have committed, and the check whether it did \
                                 failed {} times: {why}",
                                cause(&err),
                                checks + 1,
                            )));
                            break Outcome::Failed { err, halt: true };
                        }
                        Applied::None => {}
                    }
                }
                WriteOp::DrainAbove(block) if is_transient(&err) => {
                    // Retrying a drain that committed would return no
                    // receipts as if there were none.
                    let backend = &*self.shared.backend;
                    let limit = attempt_limit(backend.dyn_read_timeout(), CHECK_LIMIT);
                    let latest = AssertUnwindSafe(backend.dyn_get_latest_block()).catch_unwind();
                    if let Ok(Ok(Ok(latest))) = tokio::time::timeout(limit, latest).await
                        && latest.is_none_or(|tip| tip <= *block)
                    {
                        let err = ColdStorageError::backend(WriteFault(format!(
                            "drain_above({block}) committed but its receipts were lost with the \
                             connection: {}",
                            cause(&err)
                        )));
                        break Outcome::Failed { err, halt: false };
                    }
                }
                _ => {}
            }
            let retryable = is_transient(&err) || retry_rest;
            let Some(delay) = delays.next().filter(|_| retryable) else {
                let err = if retryable && (attempts > 1 || checks > 0) {
                    ColdStorageError::backend(WriteFault(format!(
                        "gave up after {attempts} tries and {checks} repeated checks: {}",
                        cause(&err)
                    )))
                } else {
                    err
                };
                break Outcome::Failed { err, halt: true };
            };
            self.wait_to_retry(&op, attempts, Retry::Write(&err), delay).await;
        };
        self.shared.set_retrying(None);
        outcome
    }

    /// [`applied`](Self::applied), asked again while it cannot answer: a
    /// check that fails says nothing, and appending again could repeat a
    /// committed block (a unique-key error on SQL, which is permanent).
    /// Repeats take the write's backoff `delays` and count in `checks`.
    async fn applied_asking_again(
        &mut self,
        op: &WriteOp,
        attempts: u32,
        delays: &mut impl Iterator<Item = Duration>,
        checks: &mut u32,
    ) -> Applied {
        loop {
            let applied = self.applied(op).await;
            let Applied::Unknown(why) = &applied else { return applied };
            let Some(delay) = delays.next() else { return applied };
            *checks += 1;
            self.wait_to_retry(op, attempts, Retry::Check { failed: *checks, why }, delay).await;
            self.exclusive().await;
        }
    }

    /// Counts a retry (of the write, or of the check whether it committed),
    /// shows it in the log, the metrics and `health().retrying`, then waits
    /// `delay` without the drain: reads run meanwhile, later writes stay
    /// behind this one.
    async fn wait_to_retry(
        &mut self,
        op: &WriteOp,
        attempts: u32,
        retry: Retry<'_>,
        delay: Duration,
    ) {
        self.shared.write_retries.fetch_add(1, Ordering::Relaxed);
        let (name, first_block, retry_in_ms) = (op.name(), op.first_block(), delay.as_millis());
        let error = match retry {
            Retry::Write(err) => {
                metrics::write_retry(name, error_kind(err));
                tracing::warn!(
                    op = name,
                    first_block,
                    attempts,
                    retry_in_ms,
                    error = %err,
                    "cold write failed transiently; retrying",
                );
                err.to_string()
            }
            Retry::Check { failed, why } => {
                metrics::write_retry(name, "check");
                tracing::warn!(
                    op = name,
                    first_block,
                    attempts,
                    checks_failed = failed,
                    retry_in_ms,
                    error = why,
                    "cold write failed and the check whether it committed failed too; \
                     checking again",
                );
                format!("checking whether it committed, {failed} checks failed: {why}")
            }
        };
        self.shared.set_retrying(Some(RetryingWrite {
            op: name,
            block: first_block.unwrap_or_default(),
            attempts,
            error,
        }));
        self.drain = None;
        tokio::time::sleep(delay).await;
    }

    /// One try, under the drain held by the caller.
    async fn attempt(&self, op: WriteOp) -> ColdResult<WriteOutput> {
        let name = op.name();
        let evict_from = op.first_block();
        let tip_change = op.tip_change();
        let backend = &*self.shared.backend;
        let started = Instant::now();
        let limit = attempt_limit(backend.dyn_write_timeout(), WRITE_ATTEMPT_LIMIT);
        let outcome =
            tokio::time::timeout(limit, AssertUnwindSafe(run_op(backend, op)).catch_unwind()).await;
        let result = match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(payload)) => {
                Err(ColdStorageError::backend(BackendPanicked::from_payload(name, &*payload)))
            }
            // Dropped mid-call: a SQL transaction rolls back. Transient, and
            // ambiguous like any failure: the retry checks first.
            Err(_) => Err(ColdStorageError::DeadlineExceeded(limit)),
        };
        // Evict even on failure: the backend state from there up is in
        // doubt. A backend that overwrites an existing number (MemColdBackend
        // does) would otherwise leave the old block cached under it. This
        // happens under the drain, before any later read can start.
        if let Some(block) = evict_from {
            self.shared.cache.invalidate_from(block);
        }
        metrics::op_duration(name, started.elapsed());
        match &result {
            Ok(_) => tip_change.into_iter().for_each(|change| self.shared.note_tip(change)),
            Err(err) => metrics::op_error(name, error_kind(err)),
        }
        result
    }

    /// What the backend holds of `op`'s blocks: one `get_headers` call (one
    /// read to fail, not one per block).
    async fn applied(&self, op: &WriteOp) -> Applied {
        let backend = &*self.shared.backend;
        let blocks = op.blocks();
        let specs = blocks.iter().map(|b| HeaderSpecifier::Number(b.block_number())).collect();
        let limit = attempt_limit(backend.dyn_read_timeout(), CHECK_LIMIT);
        let call = AssertUnwindSafe(backend.dyn_get_headers(specs));
        let found = match tokio::time::timeout(limit, call.catch_unwind()).await {
            Err(_) => return Applied::Unknown(format!("get_headers took over {limit:?}")),
            Ok(Err(payload)) => {
                return Applied::Unknown(
                    BackendPanicked::from_payload("get_headers", &*payload).to_string(),
                );
            }
            Ok(Ok(Err(err))) => return Applied::Unknown(format!("get_headers: {err}")),
            Ok(Ok(Ok(found))) if found.len() != blocks.len() => {
                return Applied::Unknown(format!(
                    "get_headers answered {} headers for {} blocks",
                    found.len(),
                    blocks.len()
                ));
            }
            Ok(Ok(Ok(found))) => found,
        };
        let mut rest = Vec::new();
        for (block, header) in blocks.iter().zip(found) {
            match header {
                Some(header) if header.hash() == block.header.hash() => {}
                Some(header) => {
                    return Applied::Conflict(format!(
                        "block {} is already stored with hash {}, not {}",
                        block.block_number(),
                        header.hash(),
                        block.header.hash()
                    ));
                }
                None => rest.push(block.clone()),
            }
        }
        if rest.is_empty() {
            Applied::All
        } else if rest.len() == blocks.len() {
            Applied::None
        } else {
            Applied::Rest(WriteOp::AppendBlocks(rest))
        }
    }
}

async fn run_op(backend: &dyn DynColdStorageBackend, op: WriteOp) -> ColdResult<WriteOutput> {
    match op {
        WriteOp::AppendBlock(block) => {
            backend.dyn_append_block(*block).await.map(|()| WriteOutput::Done)
        }
        WriteOp::AppendBlocks(blocks) => {
            backend.dyn_append_blocks(blocks).await.map(|()| WriteOutput::Done)
        }
        WriteOp::TruncateAbove(block) => {
            backend.dyn_truncate_above(block).await.map(|()| WriteOutput::Done)
        }
        WriteOp::DrainAbove(block) => {
            backend.dyn_drain_above(block).await.map(WriteOutput::Drained)
        }
    }
}
