//! A backend wrapper that injects write and read faults on a script.

use alloy::primitives::BlockNumber;
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageBackend, ColdStorageError, ColdStorageRead,
    ColdStorageWrite, Confirmed, Filter, HeaderSpecifier, ReceiptSpecifier, RpcLog,
    SignetEventsSpecifier, StreamParams, TransactionSpecifier, ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

/// What a scripted write fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// Fails before applying anything, with a connection reset.
    Transient,
    /// Applies the write, then reports a connection reset (the reply to
    /// COMMIT was lost).
    Ambiguous,
    /// Fails before applying anything, with an error no retry fixes.
    Permanent,
    /// Never returns.
    Hang,
}

/// A permanent error, as a constraint violation would be.
#[derive(Debug, thiserror::Error)]
#[error("constraint violated: block {0} rejected")]
pub struct Rejected(pub BlockNumber);

fn reset() -> ColdStorageError {
    ColdStorageError::backend(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "connection reset by peer",
    ))
}

struct Rule {
    /// Matches writes touching this block; `None` matches every write.
    block: Option<BlockNumber>,
    fault: WriteFault,
    remaining: usize,
}

#[derive(Default)]
struct Script {
    rules: Vec<Rule>,
    read_failures: usize,
    /// Write calls per block number (appends), for duplicate checks.
    append_calls: BTreeMap<BlockNumber, usize>,
    write_calls: usize,
    faults_injected: usize,
}

/// Wraps any backend; faults follow the script set by the test.
#[derive(Clone)]
pub struct FaultyBackend<B> {
    inner: B,
    script: Arc<Mutex<Script>>,
}

impl<B> FaultyBackend<B> {
    pub fn new(inner: B) -> Self {
        Self { inner, script: Arc::default() }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap()
    }

    /// The next `times` writes (touching `block`, if given) meet `fault`.
    pub fn fail_writes(&self, block: Option<BlockNumber>, fault: WriteFault, times: usize) {
        self.script().rules.push(Rule { block, fault, remaining: times });
    }

    /// The next `n` reads fail with a connection reset.
    pub fn fail_reads(&self, n: usize) {
        self.script().read_failures += n;
    }

    /// Removes every scripted fault: the backend heals.
    pub fn heal(&self) {
        let mut script = self.script();
        script.rules.clear();
        script.read_failures = 0;
    }

    /// Append calls that included `block`.
    pub fn append_calls(&self, block: BlockNumber) -> usize {
        self.script().append_calls.get(&block).copied().unwrap_or(0)
    }

    /// Write calls so far.
    pub fn write_calls(&self) -> usize {
        self.script().write_calls
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> usize {
        self.script().faults_injected
    }

    fn write_fault(&self, blocks: &[BlockNumber]) -> Option<WriteFault> {
        let mut script = self.script();
        script.write_calls += 1;
        for n in blocks {
            *script.append_calls.entry(*n).or_default() += 1;
        }
        let rule = script
            .rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.block.is_none_or(|b| blocks.contains(&b)))?;
        rule.remaining -= 1;
        let fault = rule.fault;
        script.faults_injected += 1;
        Some(fault)
    }

    fn read_fault(&self) -> ColdResult<()> {
        let mut script = self.script();
        if script.read_failures > 0 {
            script.read_failures -= 1;
            script.faults_injected += 1;
            return Err(reset());
        }
        Ok(())
    }

    async fn write<T>(
        &self,
        blocks: &[BlockNumber],
        apply: impl Future<Output = ColdResult<T>>,
    ) -> ColdResult<T> {
        match self.write_fault(blocks) {
            None => apply.await,
            Some(WriteFault::Transient) => Err(reset()),
            Some(WriteFault::Permanent) => {
                Err(ColdStorageError::backend(Rejected(blocks.first().copied().unwrap_or(0))))
            }
            Some(WriteFault::Ambiguous) => {
                apply.await?;
                Err(reset())
            }
            Some(WriteFault::Hang) => std::future::pending().await,
        }
    }
}

use std::future::Future;

impl<B: ColdStorageRead> ColdStorageRead for FaultyBackend<B> {
    async fn get_header(&self, spec: HeaderSpecifier) -> ColdResult<Option<SealedHeader>> {
        self.read_fault()?;
        self.inner.get_header(spec).await
    }

    async fn get_headers(
        &self,
        specs: Vec<HeaderSpecifier>,
    ) -> ColdResult<Vec<Option<SealedHeader>>> {
        self.read_fault()?;
        self.inner.get_headers(specs).await
    }

    async fn get_transaction(
        &self,
        spec: TransactionSpecifier,
    ) -> ColdResult<Option<Confirmed<RecoveredTx>>> {
        self.read_fault()?;
        self.inner.get_transaction(spec).await
    }

    async fn get_transactions_in_block(&self, block: BlockNumber) -> ColdResult<Vec<RecoveredTx>> {
        self.read_fault()?;
        self.inner.get_transactions_in_block(block).await
    }

    async fn get_transaction_count(&self, block: BlockNumber) -> ColdResult<u64> {
        self.read_fault()?;
        self.inner.get_transaction_count(block).await
    }

    async fn get_receipt(&self, spec: ReceiptSpecifier) -> ColdResult<Option<ColdReceipt>> {
        self.read_fault()?;
        self.inner.get_receipt(spec).await
    }

    async fn get_receipts_in_block(&self, block: BlockNumber) -> ColdResult<Vec<ColdReceipt>> {
        self.read_fault()?;
        self.inner.get_receipts_in_block(block).await
    }

    async fn get_signet_events(
        &self,
        spec: SignetEventsSpecifier,
    ) -> ColdResult<Vec<DbSignetEvent>> {
        self.read_fault()?;
        self.inner.get_signet_events(spec).await
    }

    async fn get_zenith_header(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Option<DbZenithHeader>> {
        self.read_fault()?;
        self.inner.get_zenith_header(spec).await
    }

    async fn get_zenith_headers(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Vec<DbZenithHeader>> {
        self.read_fault()?;
        self.inner.get_zenith_headers(spec).await
    }

    async fn get_latest_block(&self) -> ColdResult<Option<BlockNumber>> {
        self.read_fault()?;
        self.inner.get_latest_block().await
    }

    async fn get_logs(&self, filter: &Filter, max_logs: usize) -> ColdResult<Vec<RpcLog>> {
        self.read_fault()?;
        self.inner.get_logs(filter, max_logs).await
    }

    async fn produce_log_stream(&self, filter: &Filter, params: StreamParams) {
        self.inner.produce_log_stream(filter, params).await;
    }
}

impl<B: ColdStorageWrite> ColdStorageWrite for FaultyBackend<B> {
    async fn append_block(&self, data: BlockData) -> ColdResult<()> {
        let n = [data.block_number()];
        self.write(&n, self.inner.append_block(data)).await
    }

    async fn append_blocks(&self, data: Vec<BlockData>) -> ColdResult<()> {
        let numbers: Vec<_> = data.iter().map(BlockData::block_number).collect();
        self.write(&numbers, self.inner.append_blocks(data)).await
    }

    async fn truncate_above(&self, block: BlockNumber) -> ColdResult<()> {
        self.write(&[], self.inner.truncate_above(block)).await
    }
}

impl<B: ColdStorageBackend> ColdStorageBackend for FaultyBackend<B> {
    fn read_timeout(&self) -> Option<Duration> {
        self.inner.read_timeout()
    }

    async fn drain_above(&self, block: BlockNumber) -> ColdResult<Vec<Vec<ColdReceipt>>> {
        self.write(&[], self.inner.drain_above(block)).await
    }
}
