//! A backend wrapper with gates on reads and on writes, like signet-cold
//! 0.10's `tests/common/gated.rs`, that also counts what is inside the
//! backend and tells when the task has dropped it.
//!
//! Self-contained (no `super::`), so a test file can include it on its own.

#![allow(dead_code, unreachable_pub)]

use alloy::primitives::BlockNumber;
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageBackend, ColdStorageRead, ColdStorageWrite,
    Confirmed, Filter, HeaderSpecifier, ReceiptSpecifier, RpcLog, SignetEventsSpecifier,
    StreamParams, TransactionSpecifier, ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

/// Permits added to let everything through; far below `Semaphore::MAX_PERMITS`
/// even when added a few times.
const OPEN: usize = 1 << 24;

/// What is inside the backend right now, and what went through it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Reads inside the backend: held at the gate or running.
    pub reads: usize,
    /// Reads held at the gate.
    pub reads_held: usize,
    /// Writes held at the gate.
    pub writes_held: usize,
    /// Writes past the gate and not returned.
    pub writes_running: usize,
    /// Writes that returned.
    pub writes_done: usize,
    /// Times a read and a write past its gate were inside the backend at
    /// once. The drain barrier allows none (stream setup's tip lookup, which
    /// takes no permit, aside).
    pub overlaps: usize,
}

/// A gate: passes everything until held; while held, each call takes one
/// released permit.
struct Valve {
    held: AtomicBool,
    permits: Semaphore,
}

impl Valve {
    fn new() -> Self {
        Self { held: AtomicBool::new(false), permits: Semaphore::new(0) }
    }

    fn held(&self) -> bool {
        self.held.load(Ordering::SeqCst)
    }

    async fn pass(&self) {
        self.permits.acquire().await.expect("never closed").forget();
    }

    fn open(&self) {
        if self.held.swap(false, Ordering::SeqCst) {
            self.permits.add_permits(OPEN);
        }
    }
}

struct State {
    reads: Valve,
    writes: Valve,
    counts: watch::Sender<Counts>,
}

impl State {
    fn update(&self, f: impl FnOnce(&mut Counts)) {
        self.counts.send_modify(f);
    }
}

/// Undoes a count when dropped, also when the call is dropped mid-way.
struct Undo<'a>(&'a State, fn(&mut Counts));

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        self.0.update(self.1);
    }
}

/// Wraps any backend. Reads and writes pass until the test holds them (see
/// [`Gate`]); `get_latest_block` and stream production are never held, so
/// stream setup, which looks the tip up without a read permit, can run
/// while the handle's reads are held. When the last clone is dropped,
/// [`Gate::dropped`] resolves: the test keeps none, only the [`Gate`].
#[derive(Clone)]
pub struct GatedBackend<B> {
    inner: B,
    state: Arc<State>,
    _alive: Arc<DropGuard>,
}

/// The test's side of a [`GatedBackend`].
pub struct Gate {
    state: Arc<State>,
    alive: CancellationToken,
}

impl<B> GatedBackend<B> {
    /// Wraps `inner`, with both gates open.
    pub fn new(inner: B) -> (Self, Gate) {
        let state = Arc::new(State {
            reads: Valve::new(),
            writes: Valve::new(),
            counts: watch::Sender::new(Counts::default()),
        });
        let alive = CancellationToken::new();
        let backend =
            Self { inner, state: Arc::clone(&state), _alive: Arc::new(alive.clone().drop_guard()) };
        (backend, Gate { state, alive })
    }

    async fn read<T>(&self, gated: bool, call: impl Future<Output = T>) -> T {
        let state = &*self.state;
        state.update(|c| {
            c.reads += 1;
            if c.writes_running > 0 {
                c.overlaps += 1;
            }
        });
        let _inside = Undo(state, |c| c.reads -= 1);
        if gated && state.reads.held() {
            state.update(|c| c.reads_held += 1);
            let _held = Undo(state, |c| c.reads_held -= 1);
            state.reads.pass().await;
        }
        call.await
    }

    async fn write<T>(&self, call: impl Future<Output = T>) -> T {
        let state = &*self.state;
        if state.writes.held() {
            state.update(|c| c.writes_held += 1);
            let _held = Undo(state, |c| c.writes_held -= 1);
            state.writes.pass().await;
        }
        state.update(|c| {
            c.writes_running += 1;
            if c.reads > 0 {
                c.overlaps += 1;
            }
        });
        let running = Undo(state, |c| c.writes_running -= 1);
        let out = call.await;
        drop(running);
        state.update(|c| c.writes_done += 1);
        out
    }
}

impl Gate {
    /// From now on, reads (but `get_latest_block`) wait for a released permit.
    pub fn hold_reads(&self) {
        self.state.reads.held.store(true, Ordering::SeqCst);
    }

    /// Lets `n` held (or later) reads through.
    pub fn release_reads(&self, n: usize) {
        self.state.reads.permits.add_permits(n);
    }

    /// Lets every read through from now on, held ones included.
    pub fn open_reads(&self) {
        self.state.reads.open();
    }

    /// From now on, writes wait for a released permit.
    pub fn hold_writes(&self) {
        self.state.writes.held.store(true, Ordering::SeqCst);
    }

    /// Lets `n` held (or later) writes through.
    pub fn release_writes(&self, n: usize) {
        self.state.writes.permits.add_permits(n);
    }

    /// Lets every write through from now on, held ones included.
    pub fn open_writes(&self) {
        self.state.writes.open();
    }

    pub fn counts(&self) -> Counts {
        *self.state.counts.borrow()
    }

    /// Waits until `cond` holds, failing the test after 15 s.
    pub async fn wait_for(&self, what: &str, cond: impl FnMut(&Counts) -> bool) -> Counts {
        let mut rx = self.state.counts.subscribe();
        match tokio::time::timeout(Duration::from_secs(15), rx.wait_for(cond)).await {
            Ok(counts) => *counts.expect("the gate's state outlives this"),
            Err(_) => panic!("{what}: not reached within 15 s; counts {:?}", self.counts()),
        }
    }

    /// Resolves once the backend has been dropped.
    pub async fn dropped(&self) {
        self.alive.cancelled().await;
    }

    pub fn is_dropped(&self) -> bool {
        self.alive.is_cancelled()
    }
}

impl<B: ColdStorageRead> ColdStorageRead for GatedBackend<B> {
    async fn get_header(&self, spec: HeaderSpecifier) -> ColdResult<Option<SealedHeader>> {
        self.read(true, self.inner.get_header(spec)).await
    }

    async fn get_headers(
        &self,
        specs: Vec<HeaderSpecifier>,
    ) -> ColdResult<Vec<Option<SealedHeader>>> {
        self.read(true, self.inner.get_headers(specs)).await
    }

    async fn get_transaction(
        &self,
        spec: TransactionSpecifier,
    ) -> ColdResult<Option<Confirmed<RecoveredTx>>> {
        self.read(true, self.inner.get_transaction(spec)).await
    }

    async fn get_transactions_in_block(&self, block: BlockNumber) -> ColdResult<Vec<RecoveredTx>> {
        self.read(true, self.inner.get_transactions_in_block(block)).await
    }

    async fn get_transaction_count(&self, block: BlockNumber) -> ColdResult<u64> {
        self.read(true, self.inner.get_transaction_count(block)).await
    }

    async fn get_receipt(&self, spec: ReceiptSpecifier) -> ColdResult<Option<ColdReceipt>> {
        self.read(true, self.inner.get_receipt(spec)).await
    }

    async fn get_receipts_in_block(&self, block: BlockNumber) -> ColdResult<Vec<ColdReceipt>> {
        self.read(true, self.inner.get_receipts_in_block(block)).await
    }

    async fn get_signet_events(
        &self,
        spec: SignetEventsSpecifier,
    ) -> ColdResult<Vec<DbSignetEvent>> {
        self.read(true, self.inner.get_signet_events(spec)).await
    }

    async fn get_zenith_header(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Option<DbZenithHeader>> {
        self.read(true, self.inner.get_zenith_header(spec)).await
    }

    async fn get_zenith_headers(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Vec<DbZenithHeader>> {
        self.read(true, self.inner.get_zenith_headers(spec)).await
    }

    async fn get_latest_block(&self) -> ColdResult<Option<BlockNumber>> {
        self.read(false, self.inner.get_latest_block()).await
    }

    async fn get_logs(&self, filter: &Filter, max_logs: usize) -> ColdResult<Vec<RpcLog>> {
        self.read(true, self.inner.get_logs(filter, max_logs)).await
    }

    async fn produce_log_stream(&self, filter: &Filter, params: StreamParams) {
        self.inner.produce_log_stream(filter, params).await;
    }
}

impl<B: ColdStorageWrite> ColdStorageWrite for GatedBackend<B> {
    async fn append_block(&self, data: BlockData) -> ColdResult<()> {
        self.write(self.inner.append_block(data)).await
    }

    async fn append_blocks(&self, data: Vec<BlockData>) -> ColdResult<()> {
        self.write(self.inner.append_blocks(data)).await
    }

    async fn truncate_above(&self, block: BlockNumber) -> ColdResult<()> {
        self.write(self.inner.truncate_above(block)).await
    }
}

impl<B: ColdStorageBackend> ColdStorageBackend for GatedBackend<B> {
    fn read_timeout(&self) -> Option<Duration> {
        self.inner.read_timeout()
    }

    fn write_timeout(&self) -> Option<Duration> {
        self.inner.write_timeout()
    }

    async fn drain_above(&self, block: BlockNumber) -> ColdResult<Vec<Vec<ColdReceipt>>> {
        self.write(self.inner.drain_above(block)).await
    }
}
