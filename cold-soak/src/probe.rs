//! A backend wrapper that reports commits to the record and measures write
//! lag: from the follower's first dispatch attempt to the backend's commit.

use crate::record::ChainRecord;
use alloy::primitives::{B256, BlockNumber};
use hdrhistogram::Histogram;
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageBackend, ColdStorageRead, ColdStorageWrite,
    Confirmed, Filter, HeaderSpecifier, ReceiptSpecifier, RpcLog, SignetEventsSpecifier,
    StreamParams, TransactionSpecifier, ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

#[derive(Default)]
struct Lag {
    handed_over: HashMap<B256, Instant>,
    micros: Option<Histogram<u64>>,
}

/// Wraps the soak's backend; reads pass straight through.
#[derive(Clone)]
pub struct Probe<B> {
    inner: B,
    record: Arc<ChainRecord>,
    lag: Arc<Mutex<Lag>>,
}

impl<B> Probe<B> {
    /// Wraps `inner`, reporting commits to `record`.
    pub fn new(inner: B, record: Arc<ChainRecord>) -> Self {
        Self { inner, record, lag: Arc::default() }
    }

    fn lag(&self) -> std::sync::MutexGuard<'_, Lag> {
        self.lag.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The follower first tried to hand block `hash` over now.
    pub fn handed_over(&self, hash: B256) {
        self.lag().handed_over.entry(hash).or_insert_with(Instant::now);
    }

    /// Write lag so far, in microseconds.
    pub fn lag_histogram(&self) -> Histogram<u64> {
        self.lag().micros.clone().unwrap_or_else(crate::report::new_histogram)
    }

    fn on_commit(&self, hashes: &[B256]) {
        self.record.committed(hashes.iter().copied());
        let now = Instant::now();
        let mut lag = self.lag();
        for hash in hashes {
            if let Some(at) = lag.handed_over.remove(hash) {
                let micros = now.duration_since(at).as_micros() as u64;
                lag.micros
                    .get_or_insert_with(crate::report::new_histogram)
                    .saturating_record(micros);
            }
        }
    }
}

impl<B: ColdStorageRead> ColdStorageRead for Probe<B> {
    fn get_header(
        &self,
        spec: HeaderSpecifier,
    ) -> impl Future<Output = ColdResult<Option<SealedHeader>>> + Send {
        self.inner.get_header(spec)
    }

    fn get_headers(
        &self,
        specs: Vec<HeaderSpecifier>,
    ) -> impl Future<Output = ColdResult<Vec<Option<SealedHeader>>>> + Send {
        self.inner.get_headers(specs)
    }

    fn get_transaction(
        &self,
        spec: TransactionSpecifier,
    ) -> impl Future<Output = ColdResult<Option<Confirmed<RecoveredTx>>>> + Send {
        self.inner.get_transaction(spec)
    }

    fn get_transactions_in_block(
        &self,
        block: BlockNumber,
    ) -> impl Future<Output = ColdResult<Vec<RecoveredTx>>> + Send {
        self.inner.get_transactions_in_block(block)
    }

    fn get_transaction_count(
        &self,
        block: BlockNumber,
    ) -> impl Future<Output = ColdResult<u64>> + Send {
        self.inner.get_transaction_count(block)
    }

    fn get_receipt(
        &self,
        spec: ReceiptSpecifier,
    ) -> impl Future<Output = ColdResult<Option<ColdReceipt>>> + Send {
        self.inner.get_receipt(spec)
    }

    fn get_receipts_in_block(
        &self,
        block: BlockNumber,
    ) -> impl Future<Output = ColdResult<Vec<ColdReceipt>>> + Send {
        self.inner.get_receipts_in_block(block)
    }

    fn get_signet_events(
        &self,
        spec: SignetEventsSpecifier,
    ) -> impl Future<Output = ColdResult<Vec<DbSignetEvent>>> + Send {
        self.inner.get_signet_events(spec)
    }

    fn get_zenith_header(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> impl Future<Output = ColdResult<Option<DbZenithHeader>>> + Send {
        self.inner.get_zenith_header(spec)
    }

    fn get_zenith_headers(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> impl Future<Output = ColdResult<Vec<DbZenithHeader>>> + Send {
        self.inner.get_zenith_headers(spec)
    }

    fn get_latest_block(&self) -> impl Future<Output = ColdResult<Option<BlockNumber>>> + Send {
        self.inner.get_latest_block()
    }

    fn get_logs(
        &self,
        filter: &Filter,
        max_logs: usize,
    ) -> impl Future<Output = ColdResult<Vec<RpcLog>>> + Send {
        self.inner.get_logs(filter, max_logs)
    }

    fn produce_log_stream(
        &self,
        filter: &Filter,
        params: StreamParams,
    ) -> impl Future<Output = ()> + Send {
        self.inner.produce_log_stream(filter, params)
    }
}

impl<B: ColdStorageWrite> ColdStorageWrite for Probe<B> {
    async fn append_block(&self, data: BlockData) -> ColdResult<()> {
        let hash = data.header.hash();
        self.inner.append_block(data).await?;
        self.on_commit(&[hash]);
        Ok(())
    }

    async fn append_blocks(&self, data: Vec<BlockData>) -> ColdResult<()> {
        let hashes: Vec<B256> = data.iter().map(|b| b.header.hash()).collect();
        self.inner.append_blocks(data).await?;
        self.on_commit(&hashes);
        Ok(())
    }

    fn truncate_above(&self, block: BlockNumber) -> impl Future<Output = ColdResult<()>> + Send {
        self.inner.truncate_above(block)
    }
}

impl<B: ColdStorageBackend> ColdStorageBackend for Probe<B> {
    fn read_timeout(&self) -> Option<Duration> {
        self.inner.read_timeout()
    }

    fn write_timeout(&self) -> Option<Duration> {
        self.inner.write_timeout()
    }

    fn drain_above(
        &self,
        block: BlockNumber,
    ) -> impl Future<Output = ColdResult<Vec<Vec<ColdReceipt>>>> + Send {
        self.inner.drain_above(block)
    }
}
