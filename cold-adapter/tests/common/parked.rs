//! A backend wrapper whose reads park until the test releases them.

use alloy::primitives::BlockNumber;
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageBackend, ColdStorageRead, ColdStorageWrite,
    Confirmed, Filter, HeaderSpecifier, ReceiptSpecifier, RpcLog, SignetEventsSpecifier,
    StreamParams, TransactionSpecifier, ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::{Semaphore, watch};

const OPEN: usize = Semaphore::MAX_PERMITS / 2;

/// Wraps any backend. Every read (and stream production) first waits for a
/// permit of its gate; writes pass straight through. Counts reads parked.
#[derive(Clone)]
pub struct ParkedBackend<B> {
    inner: B,
    reads: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    parked: Arc<watch::Sender<usize>>,
    panic_reads: Arc<AtomicBool>,
    read_timeout: Option<Duration>,
}

struct Parked<'a>(&'a watch::Sender<usize>);

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl<B> ParkedBackend<B> {
    /// Reads park until [`release`](Self::release)d.
    pub fn closed(inner: B) -> Self {
        Self {
            inner,
            reads: Arc::new(Semaphore::new(0)),
            streams: Arc::new(Semaphore::new(OPEN)),
            parked: Arc::new(watch::Sender::new(0)),
            panic_reads: Arc::new(AtomicBool::new(false)),
            read_timeout: None,
        }
    }

    /// Reads pass straight through until the gate is closed again (never).
    pub fn open(inner: B) -> Self {
        let me = Self::closed(inner);
        me.release_all();
        me
    }

    /// Stream production parks too.
    pub fn with_parked_streams(mut self) -> Self {
        self.streams = Arc::new(Semaphore::new(0));
        self
    }

    /// Advertise a read timeout to the task.
    pub fn with_read_timeout(mut self, d: Duration) -> Self {
        self.read_timeout = Some(d);
        self
    }

    /// Let `n` parked (or future) reads through.
    pub fn release(&self, n: usize) {
        self.reads.add_permits(n);
    }

    /// Let every read through from now on.
    pub fn release_all(&self) {
        self.reads.add_permits(OPEN);
    }

    pub fn release_streams(&self) {
        self.streams.add_permits(OPEN);
    }

    /// Every read from now on panics instead of parking.
    pub fn panic_reads(&self, on: bool) {
        self.panic_reads.store(on, Ordering::SeqCst);
    }

    /// Reads parked right now.
    pub fn parked(&self) -> usize {
        *self.parked.borrow()
    }

    /// Waits until exactly `n` reads are parked.
    pub async fn wait_parked(&self, n: usize) {
        let mut rx = self.parked.subscribe();
        super::guard("reads to park", rx.wait_for(|p| *p == n)).await.expect("sender alive");
    }

    async fn park(&self) {
        assert!(!self.panic_reads.load(Ordering::SeqCst), "test backend read panicked");
        self.parked.send_modify(|n| *n += 1);
        let _parked = Parked(&self.parked);
        self.reads.acquire().await.expect("never closed").forget();
    }
}

impl<B: ColdStorageRead> ColdStorageRead for ParkedBackend<B> {
    async fn get_header(&self, spec: HeaderSpecifier) -> ColdResult<Option<SealedHeader>> {
        self.park().await;
        self.inner.get_header(spec).await
    }

    async fn get_headers(
        &self,
        specs: Vec<HeaderSpecifier>,
    ) -> ColdResult<Vec<Option<SealedHeader>>> {
        self.park().await;
        self.inner.get_headers(specs).await
    }

    async fn get_transaction(
        &self,
        spec: TransactionSpecifier,
    ) -> ColdResult<Option<Confirmed<RecoveredTx>>> {
        self.park().await;
        self.inner.get_transaction(spec).await
    }

    async fn get_transactions_in_block(&self, block: BlockNumber) -> ColdResult<Vec<RecoveredTx>> {
        self.park().await;
        self.inner.get_transactions_in_block(block).await
    }

    async fn get_transaction_count(&self, block: BlockNumber) -> ColdResult<u64> {
        self.park().await;
        self.inner.get_transaction_count(block).await
    }

    async fn get_receipt(&self, spec: ReceiptSpecifier) -> ColdResult<Option<ColdReceipt>> {
        self.park().await;
        self.inner.get_receipt(spec).await
    }

    async fn get_receipts_in_block(&self, block: BlockNumber) -> ColdResult<Vec<ColdReceipt>> {
        self.park().await;
        self.inner.get_receipts_in_block(block).await
    }

    async fn get_signet_events(
        &self,
        spec: SignetEventsSpecifier,
    ) -> ColdResult<Vec<DbSignetEvent>> {
        self.park().await;
        self.inner.get_signet_events(spec).await
    }

    async fn get_zenith_header(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Option<DbZenithHeader>> {
        self.park().await;
        self.inner.get_zenith_header(spec).await
    }

    async fn get_zenith_headers(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Vec<DbZenithHeader>> {
        self.park().await;
        self.inner.get_zenith_headers(spec).await
    }

    async fn get_latest_block(&self) -> ColdResult<Option<BlockNumber>> {
        self.park().await;
        self.inner.get_latest_block().await
    }

    async fn get_logs(&self, filter: &Filter, max_logs: usize) -> ColdResult<Vec<RpcLog>> {
        self.park().await;
        self.inner.get_logs(filter, max_logs).await
    }

    async fn produce_log_stream(&self, filter: &Filter, params: StreamParams) {
        self.streams.acquire().await.expect("never closed").forget();
        self.inner.produce_log_stream(filter, params).await;
    }
}

impl<B: ColdStorageWrite> ColdStorageWrite for ParkedBackend<B> {
    async fn append_block(&self, data: BlockData) -> ColdResult<()> {
        self.inner.append_block(data).await
    }

    async fn append_blocks(&self, data: Vec<BlockData>) -> ColdResult<()> {
        self.inner.append_blocks(data).await
    }

    async fn truncate_above(&self, block: BlockNumber) -> ColdResult<()> {
        self.inner.truncate_above(block).await
    }
}

impl<B: ColdStorageBackend> ColdStorageBackend for ParkedBackend<B> {
    fn read_timeout(&self) -> Option<Duration> {
        self.read_timeout
    }

    async fn drain_above(&self, block: BlockNumber) -> ColdResult<Vec<Vec<ColdReceipt>>> {
        self.inner.drain_above(block).await
    }
}
