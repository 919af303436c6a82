//! Faults the soak injects into its backend, and the tally of each kind.
//!
//! [`Faulty`] wraps the soak's backend. With probability set by one rate
//! (`--faults`), scaled per kind so that each kind shows up a few times a
//! minute without drowning the workload, a backend call:
//!
//! | kind | what the backend does | what the task must do |
//! |---|---|---|
//! | `write_transient` | fails a write before applying it (connection reset) | retry it, in order |
//! | `write_ambiguous` | applies a write, then reports a connection reset | find it applied; no duplicate, no error |
//! | `write_permanent` | rejects a write (a constraint violation) the first time only | halt appends; the follower truncates and appends again |
//! | `read_transient` | fails a read (connection reset) | retry it; the caller rarely sees it |
//! | `read_panic` | panics in a read | return [`BackendPanicked`](cold_adapter::BackendPanicked) |
//! | `read_hang` | never answers a read | stop it at the drain deadline or shutdown |
//!
//! Injected errors and panics carry [`INJECTED`] in their text, so the
//! soak can tell them from real ones.

use alloy::primitives::BlockNumber;
use cold_testkit::chain::SplitMix;
use signet_cold::{
    BlockData, ColdReceipt, ColdResult, ColdStorageBackend, ColdStorageError, ColdStorageRead,
    ColdStorageWrite, Confirmed, Filter, HeaderSpecifier, ReceiptSpecifier, RpcLog,
    SignetEventsSpecifier, StreamParams, TransactionSpecifier, ZenithHeaderSpecifier,
};
use signet_storage_types::{DbSignetEvent, DbZenithHeader, RecoveredTx, SealedHeader};
use std::{
    collections::{BTreeMap, HashSet},
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

/// Marks every injected error and panic message.
pub const INJECTED: &str = "injected fault";

/// Fault kinds, in report order, and their rate as a multiple of `--faults`
/// (per backend call of that side: write or read).
pub const KINDS: &[(&str, f64)] = &[
    ("write_transient", 5.0),
    ("write_ambiguous", 2.0),
    ("write_permanent", 1.0),
    ("read_transient", 1.0),
    ("read_panic", 0.05),
    ("read_hang", 0.000_5),
];

/// Counts of what was injected, and of the caller-side faults the readers
/// play (`caller_cancel`, `caller_stop_polling`) and the connection kills.
#[derive(Debug, Default)]
pub struct FaultTally {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl FaultTally {
    /// Counts one fault of `kind`.
    pub fn add(&self, kind: &'static str, n: u64) {
        *self.counts.lock().unwrap_or_else(|e| e.into_inner()).entry(kind).or_default() += n;
    }

    /// Every count so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }
}

/// The injected error's type.
#[derive(Debug, thiserror::Error)]
#[error("{INJECTED}: {0}")]
pub struct Injected(&'static str);

/// Whether `err` is (or wraps) an injected fault.
pub fn is_injected(err: &ColdStorageError) -> bool {
    err.to_string().contains(INJECTED)
}

fn injected_reset(what: &'static str) -> ColdStorageError {
    ColdStorageError::backend(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        Injected(what),
    ))
}

/// Wraps the soak's backend and injects faults at `rate`.
#[derive(Clone)]
pub struct Faulty<B> {
    inner: B,
    rate: f64,
    rng: Arc<Mutex<SplitMix>>,
    tally: Arc<FaultTally>,
    /// Blocks rejected once already: a permanent-looking fault heals.
    rejected: Arc<Mutex<HashSet<BlockNumber>>>,
    calls: Arc<AtomicU64>,
    armed: Arc<AtomicBool>,
}

impl<B> Faulty<B> {
    /// `rate` 0 injects nothing.
    pub fn new(inner: B, rate: f64, seed: u64, tally: Arc<FaultTally>) -> Self {
        Self {
            inner,
            rate,
            rng: Arc::new(Mutex::new(SplitMix::new(seed ^ 0xfa17))),
            tally,
            rejected: Arc::default(),
            calls: Arc::default(),
            armed: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The switch shared by every clone: while it is `false` nothing is
    /// injected (the soak's own set-up runs so; a fault there would only
    /// stop the run before it starts).
    pub fn armed(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.armed)
    }

    /// Rolls for fault `kind`; counts it when it fires.
    fn roll(&self, kind: &'static str) -> bool {
        if self.rate <= 0.0 || !self.armed.load(Ordering::Relaxed) {
            return false;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let scale = KINDS.iter().find(|(k, _)| *k == kind).map_or(0.0, |(_, s)| *s);
        let p = (self.rate * scale).min(1.0);
        let draw = self.rng.lock().unwrap_or_else(|e| e.into_inner()).next_u64();
        let fires = (draw as f64 / u64::MAX as f64) < p;
        if fires {
            self.tally.add(kind, 1);
        }
        fires
    }

    async fn read<T>(&self, call: impl Future<Output = ColdResult<T>>) -> ColdResult<T> {
        if self.roll("read_transient") {
            return Err(injected_reset("read_transient"));
        }
        if self.roll("read_panic") {
            panic!("{INJECTED}: read_panic");
        }
        if self.roll("read_hang") {
            return std::future::pending().await;
        }
        call.await
    }

    async fn write<T>(
        &self,
        first: Option<BlockNumber>,
        apply: impl Future<Output = ColdResult<T>>,
    ) -> ColdResult<T> {
        if self.roll("write_transient") {
            return Err(injected_reset("write_transient"));
        }
        if let Some(first) = first
            && self.roll("write_permanent")
        {
            let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
            if rejected.insert(first) {
                return Err(ColdStorageError::backend(Injected("write_permanent: rejected")));
            }
        }
        let value = apply.await?;
        if self.roll("write_ambiguous") {
            return Err(injected_reset("write_ambiguous"));
        }
        Ok(value)
    }
}

impl<B: ColdStorageRead> ColdStorageRead for Faulty<B> {
    async fn get_header(&self, spec: HeaderSpecifier) -> ColdResult<Option<SealedHeader>> {
        self.read(self.inner.get_header(spec)).await
    }

    async fn get_headers(
        &self,
        specs: Vec<HeaderSpecifier>,
    ) -> ColdResult<Vec<Option<SealedHeader>>> {
        self.read(self.inner.get_headers(specs)).await
    }

    async fn get_transaction(
        &self,
        spec: TransactionSpecifier,
    ) -> ColdResult<Option<Confirmed<RecoveredTx>>> {
        self.read(self.inner.get_transaction(spec)).await
    }

    async fn get_transactions_in_block(&self, block: BlockNumber) -> ColdResult<Vec<RecoveredTx>> {
        self.read(self.inner.get_transactions_in_block(block)).await
    }

    async fn get_transaction_count(&self, block: BlockNumber) -> ColdResult<u64> {
        self.read(self.inner.get_transaction_count(block)).await
    }

    async fn get_receipt(&self, spec: ReceiptSpecifier) -> ColdResult<Option<ColdReceipt>> {
        self.read(self.inner.get_receipt(spec)).await
    }

    async fn get_receipts_in_block(&self, block: BlockNumber) -> ColdResult<Vec<ColdReceipt>> {
        self.read(self.inner.get_receipts_in_block(block)).await
    }

    async fn get_signet_events(
        &self,
        spec: SignetEventsSpecifier,
    ) -> ColdResult<Vec<DbSignetEvent>> {
        self.read(self.inner.get_signet_events(spec)).await
    }

    async fn get_zenith_header(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Option<DbZenithHeader>> {
        self.read(self.inner.get_zenith_header(spec)).await
    }

    async fn get_zenith_headers(
        &self,
        spec: ZenithHeaderSpecifier,
    ) -> ColdResult<Vec<DbZenithHeader>> {
        self.read(self.inner.get_zenith_headers(spec)).await
    }

    async fn get_latest_block(&self) -> ColdResult<Option<BlockNumber>> {
        self.read(self.inner.get_latest_block()).await
    }

    async fn get_logs(&self, filter: &Filter, max_logs: usize) -> ColdResult<Vec<RpcLog>> {
        self.read(self.inner.get_logs(filter, max_logs)).await
    }

    fn produce_log_stream(
        &self,
        filter: &Filter,
        params: StreamParams,
    ) -> impl Future<Output = ()> + Send {
        self.inner.produce_log_stream(filter, params)
    }
}

impl<B: ColdStorageWrite> ColdStorageWrite for Faulty<B> {
    async fn append_block(&self, data: BlockData) -> ColdResult<()> {
        let first = Some(data.block_number());
        self.write(first, self.inner.append_block(data)).await
    }

    async fn append_blocks(&self, data: Vec<BlockData>) -> ColdResult<()> {
        let first = data.first().map(BlockData::block_number);
        self.write(first, self.inner.append_blocks(data)).await
    }

    async fn truncate_above(&self, block: BlockNumber) -> ColdResult<()> {
        self.write(None, self.inner.truncate_above(block)).await
    }
}

impl<B: ColdStorageBackend> ColdStorageBackend for Faulty<B> {
    fn read_timeout(&self) -> Option<Duration> {
        self.inner.read_timeout()
    }

    fn write_timeout(&self) -> Option<Duration> {
        self.inner.write_timeout()
    }

    async fn drain_above(&self, block: BlockNumber) -> ColdResult<Vec<Vec<ColdReceipt>>> {
        self.write(None, self.inner.drain_above(block)).await
    }
}
