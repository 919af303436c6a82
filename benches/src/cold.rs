//! The cold adapter's `ColdStorageHandle` against signet-cold 0.10's own
//! `ColdStorage` handle, over the same kind of backend (each side gets its
//! own backend instance holding the same blocks, so writes on one side never
//! touch the other's data; on Postgres each side gets a fresh database).
//! [`Side::Ceiling`] is the backend itself, called directly with no task or
//! handle: the most any handle could reach on uncached reads.
//!
//! * [`uncached_reads`]: `get_header_by_hash` (cached by neither handle) from
//!   C concurrent tasks, closed loop; throughput.
//! * [`cached_reads`]: `get_header_by_number` of blocks already in both
//!   handles' header caches; throughput.
//! * [`writes_under_flood`]: 256 reader tasks flood uncached reads while
//!   appends run, either one after another (per-write latency, p50/p99) or
//!   as a burst of concurrent appends (number of drains and total time).
//!
//! Drains are counted through the `metrics` facade, from what each handle
//! records anyway: the adapter records `cold_adapter.drain_wait_us` once per
//! drain, signet-cold records `cold.permit_wait_us{sem="drain"}` once per
//! write (each of its writes takes all read permits). [`install_drain_counter`]
//! installs the global recorder that counts them and ignores everything
//! else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use cold_adapter::{ColdStorageConfig, ColdStorageHandle, ColdStorageTask};
use cold_testkit::postgres::{FreshDatabase, create_database, database_url, drop_database};
use metrics::{Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, SharedString, Unit};
use signet_cold::conformance::make_test_block;
use signet_cold::mem::MemColdBackend;
use signet_cold::{
    BlockData, ColdStorage, ColdStorageBackend, ColdStorageRead, ColdStorageWrite, HeaderSpecifier,
};
use signet_cold_sql::SqlColdBackend;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Which handle is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// `cold_adapter::ColdStorageHandle` (drain-gate inside).
    Ours,
    /// `signet_cold::ColdStorage` 0.10 (tokio semaphores inside).
    Signet,
    /// The backend called directly from the reading tasks: no handle, no
    /// task, no permit, no cache. Reads only.
    Ceiling,
}

impl Side {
    /// A short name for bench ids and the report.
    pub fn name(self) -> &'static str {
        match self {
            Side::Ours => "cold_adapter",
            Side::Signet => "signet_cold_0_10",
            Side::Ceiling => "backend_direct",
        }
    }
}

/// Which backend both handles run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `signet_cold::mem::MemColdBackend`.
    Mem,
    /// `signet_cold_sql::SqlColdBackend` over a SQLite file in a temporary
    /// directory (default pool: 10 connections).
    Sqlite,
    /// `signet_cold_sql::SqlColdBackend` over a fresh database on the server
    /// of `DATABASE_URL` (default pool: 10 connections), dropped with the
    /// fixture.
    Postgres,
}

impl Backend {
    /// A short name for bench ids and the report.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Mem => "mem",
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The SQL backends' default pool size (sqlx's `PoolOptions` default),
    /// `None` for the in-memory backend.
    pub fn pool_size(self) -> Option<usize> {
        match self {
            Backend::Mem => None,
            Backend::Sqlite | Backend::Postgres => Some(10),
        }
    }
}

#[derive(Clone)]
enum Handle {
    Ours(ColdStorageHandle),
    SignetMem(ColdStorage<MemColdBackend>),
    SignetSql(ColdStorage<SqlColdBackend>),
    CeilingMem(MemColdBackend),
    CeilingSql(SqlColdBackend),
}

/// Runs `$call` on the handle inside `$handle`, or `$direct` on the backend
/// of a ceiling: one arm per variant, written once.
macro_rules! on_each {
    ($handle:expr, |$h:ident| $call:expr, |$b:ident| $direct:expr) => {
        match $handle {
            Handle::Ours($h) => $call,
            Handle::SignetMem($h) => $call,
            Handle::SignetSql($h) => $call,
            Handle::CeilingMem($b) => $direct,
            Handle::CeilingSql($b) => $direct,
        }
    };
}

impl Handle {
    async fn header_by_hash(&self, hash: B256) {
        let found = on_each!(self, |h| h.get_header_by_hash(hash).await, |b| b
            .get_header(HeaderSpecifier::Hash(hash))
            .await);
        assert!(found.expect("read failed").is_some(), "header missing");
    }

    async fn header_by_number(&self, number: u64) {
        let found = on_each!(self, |h| h.get_header_by_number(number).await, |b| b
            .get_header(HeaderSpecifier::Number(number))
            .await);
        assert!(found.expect("read failed").is_some(), "header missing");
    }

    async fn append_block(&self, block: BlockData) {
        on_each!(self, |h| h.append_block(block).await, |b| b.append_block(block).await)
            .expect("append failed");
    }

    async fn append_blocks(&self, blocks: Vec<BlockData>) {
        on_each!(self, |h| h.append_blocks(blocks).await, |b| b.append_blocks(blocks).await)
            .expect("append failed");
    }

    /// `side`'s handle over `backend`; `signet` and `ceiling` wrap the
    /// variants of `backend`'s type.
    fn over<B: ColdStorageBackend>(
        side: Side,
        backend: B,
        cancel: &CancellationToken,
        config: ColdStorageConfig,
        signet: fn(ColdStorage<B>) -> Handle,
        ceiling: fn(B) -> Handle,
    ) -> Handle {
        match side {
            Side::Ours => {
                Handle::Ours(ColdStorageTask::spawn_with_config(backend, cancel.clone(), config))
            }
            Side::Signet => signet(ColdStorage::new(backend, cancel.clone())),
            Side::Ceiling => ceiling(backend),
        }
    }
}

/// One handle over one freshly filled backend.
///
/// Dropping it cancels the handle's task(s), removes the SQLite file and
/// drops the Postgres database.
pub struct Fixture {
    handle: Handle,
    hashes: Arc<Vec<B256>>,
    next_block: u64,
    cancel: CancellationToken,
    _dir: Option<tempfile::TempDir>,
    database: Option<FreshDatabase>,
}

impl std::fmt::Debug for Fixture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fixture")
            .field("blocks", &self.hashes.len())
            .field("next_block", &self.next_block)
            .finish_non_exhaustive()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(db) = self.database.take() {
            // Drop may run inside the bench's runtime: drop the database
            // from a thread with a runtime of its own.
            let dropped =
                std::thread::spawn(move || crate::current_thread().block_on(drop_database(&db)))
                    .join();
            if let Ok(Err(err)) = dropped {
                eprintln!("cannot drop a bench database: {err}");
            }
        }
    }
}

impl Fixture {
    /// Builds `side`'s handle over a new `backend` holding blocks
    /// `0..blocks`, appended through the handle itself. Must be called
    /// inside `rt`.
    ///
    /// # Panics
    ///
    /// If the backend cannot be created or the appends fail.
    pub async fn new(side: Side, backend: Backend, blocks: u64) -> Fixture {
        Self::build(side, backend, blocks, ColdStorageConfig::default()).await
    }

    /// [`Fixture::new`] for [`Side::Ours`] with the read cap set to
    /// `read_cap` (the rest of the configuration is the default).
    ///
    /// # Panics
    ///
    /// As [`Fixture::new`]; also if `read_cap` is 0.
    pub async fn ours_with_read_cap(backend: Backend, blocks: u64, read_cap: usize) -> Fixture {
        let config = ColdStorageConfig::default().with_read_cap(read_cap);
        Self::build(Side::Ours, backend, blocks, config).await
    }

    async fn build(
        side: Side,
        backend: Backend,
        blocks: u64,
        config: ColdStorageConfig,
    ) -> Fixture {
        let cancel = CancellationToken::new();
        let mut dir = None;
        let mut database = None;
        let handle = match backend {
            Backend::Mem => Handle::over(
                side,
                MemColdBackend::new(),
                &cancel,
                config,
                Handle::SignetMem,
                Handle::CeilingMem,
            ),
            Backend::Sqlite | Backend::Postgres => {
                let url = if backend == Backend::Sqlite {
                    let tmp = tempfile::tempdir().expect("temporary directory");
                    let url = cold_testkit::sqlite_url(&tmp.path().join("cold.db"));
                    dir = Some(tmp);
                    url
                } else {
                    let admin = database_url().expect("Postgres fixtures need DATABASE_URL");
                    let db = create_database(&admin, &format!("bench_{}", side.name())).await;
                    let url = db.url.clone();
                    database = Some(db);
                    url
                };
                let sql = SqlColdBackend::connect(&url).await.expect("open the SQL backend");
                Handle::over(side, sql, &cancel, config, Handle::SignetSql, Handle::CeilingSql)
            }
        };
        let data: Vec<BlockData> = (0..blocks).map(make_test_block).collect();
        let hashes = data.iter().map(|b| b.header.hash()).collect();
        for chunk in data.chunks(256) {
            handle.append_blocks(chunk.to_vec()).await;
        }
        Fixture {
            handle,
            hashes: Arc::new(hashes),
            next_block: blocks,
            cancel,
            _dir: dir,
            database,
        }
    }

    /// Blocks stored so far (the next append gets this number).
    pub fn blocks(&self) -> u64 {
        self.next_block
    }
}

/// Runs `total` uncached reads (`get_header_by_hash`) from `concurrency`
/// tasks on `rt` and returns the wall time (spawns and joins included).
///
/// # Panics
///
/// If a read fails or finds nothing.
pub fn uncached_reads(rt: &Runtime, fx: &Fixture, concurrency: usize, total: u64) -> Duration {
    let per_task = total.div_ceil(concurrency as u64);
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|t| {
                let handle = fx.handle.clone();
                let hashes = fx.hashes.clone();
                tokio::spawn(async move {
                    let n = hashes.len();
                    for i in 0..per_task as usize {
                        handle.header_by_hash(hashes[(t * 131 + i * 7) % n]).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("reader panicked");
        }
        start.elapsed()
    })
}

/// Warms both header caches, then runs `total` cached reads
/// (`get_header_by_number` over the first `min(blocks, 1024)` blocks) from
/// `concurrency` tasks; returns the wall time of the timed part.
///
/// # Panics
///
/// If a read fails or finds nothing.
pub fn cached_reads(rt: &Runtime, fx: &Fixture, concurrency: usize, total: u64) -> Duration {
    let hot = fx.next_block.min(1024);
    let per_task = total.div_ceil(concurrency as u64);
    rt.block_on(async {
        for n in 0..hot {
            fx.handle.header_by_number(n).await;
        }
        let start = Instant::now();
        let tasks: Vec<_> = (0..concurrency)
            .map(|t| {
                let handle = fx.handle.clone();
                tokio::spawn(async move {
                    for i in 0..per_task {
                        handle.header_by_number((t as u64 * 131 + i * 7) % hot).await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("reader panicked");
        }
        start.elapsed()
    })
}

/// How the appends of [`writes_under_flood`] are issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Writes {
    /// `n` appends one after another, each awaited before the next: the
    /// per-write latency.
    Sequential(usize),
    /// `n` appends issued at once from one task (polled in block order, so
    /// they queue in order) and awaited together.
    Burst(usize),
}

/// What [`writes_under_flood`] saw.
#[derive(Clone, Debug, Default)]
pub struct FloodResult {
    /// Latency of each append (for [`Writes::Burst`], each append's time from
    /// the start of the burst to its own completion).
    pub latencies: Vec<Duration>,
    /// Wall time from the first append issued to the last completed.
    pub total: Duration,
    /// Each drain the handle made while the appends ran: how long it waited
    /// for reads to leave, as the handles record it (adapter:
    /// `drain_wait_us`, once per drain; signet-cold: the `acquire_many(64)`
    /// permit wait, once per write).
    pub drain_waits: Vec<Duration>,
    /// Reads the flood completed while the appends ran.
    pub reads: u64,
}

/// Starts `readers` tasks looping uncached reads, lets them saturate the
/// handle, runs the appends, stops the readers. The appends extend the
/// fixture's chain (`fx.blocks()` grows by the number of appends).
///
/// # Panics
///
/// If a read or an append fails, or for [`Side::Ceiling`] (no drains to
/// measure there).
pub fn writes_under_flood(
    rt: &Runtime,
    fx: &mut Fixture,
    readers: usize,
    writes: Writes,
) -> FloodResult {
    assert!(
        !matches!(fx.handle, Handle::CeilingMem(_) | Handle::CeilingSql(_)),
        "no drains to time"
    );
    let first = fx.next_block;
    let count = match writes {
        Writes::Sequential(n) | Writes::Burst(n) => n,
    };
    fx.next_block += count as u64;
    let fx = &*fx;
    rt.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        let flood: Vec<_> = (0..readers)
            .map(|t| {
                let handle = fx.handle.clone();
                let hashes = fx.hashes.clone();
                let stop = stop.clone();
                let reads = reads.clone();
                tokio::spawn(async move {
                    let n = hashes.len();
                    let mut i = t * 131;
                    while !stop.load(Ordering::Relaxed) {
                        handle.header_by_hash(hashes[i % n]).await;
                        reads.fetch_add(1, Ordering::Relaxed);
                        i += 7;
                    }
                })
            })
            .collect();
        // Let the flood fill the read permits and the queues behind them.
        tokio::time::sleep(Duration::from_millis(20)).await;

        let blocks: Vec<BlockData> = (first..first + count as u64).map(make_test_block).collect();
        let drains_before = drains_recorded();
        let reads_before = reads.load(Ordering::Relaxed);
        let start = Instant::now();
        let latencies = match writes {
            Writes::Sequential(_) => {
                let mut latencies = Vec::with_capacity(count);
                for block in blocks {
                    let t0 = Instant::now();
                    fx.handle.append_block(block).await;
                    latencies.push(t0.elapsed());
                }
                latencies
            }
            Writes::Burst(_) => {
                let appends = blocks.into_iter().map(|block| {
                    let handle = &fx.handle;
                    async move {
                        handle.append_block(block).await;
                        start.elapsed()
                    }
                });
                futures_util::future::join_all(appends).await
            }
        };
        let total = start.elapsed();
        let drain_waits = drain_waits_since(drains_before);
        let reads_done = reads.load(Ordering::Relaxed) - reads_before;

        stop.store(true, Ordering::Relaxed);
        for task in flood {
            task.await.expect("reader panicked");
        }
        FloodResult { latencies, total, drain_waits, reads: reads_done }
    })
}

/// The `q`-quantile (0.0..=1.0) of `samples`, nearest rank. Zero when empty.
pub fn quantile(samples: &[Duration], q: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

// ----- drain counting through the metrics facade ---------------------------

/// Every drain wait recorded so far, in microseconds, in order.
static DRAIN_WAITS_US: Mutex<Vec<u64>> = Mutex::new(Vec::new());

fn drain_waits() -> std::sync::MutexGuard<'static, Vec<u64>> {
    DRAIN_WAITS_US.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Drains recorded by either handle since the process started (0 until
/// [`install_drain_counter`] has run).
pub fn drains_recorded() -> usize {
    drain_waits().len()
}

/// The waits of the drains recorded after the first `mark` (a
/// [`drains_recorded`] taken earlier).
pub fn drain_waits_since(mark: usize) -> Vec<Duration> {
    drain_waits()
        .get(mark..)
        .unwrap_or_default()
        .iter()
        .map(|&us| Duration::from_micros(us))
        .collect()
}

/// Installs, once per process, the global `metrics` recorder that counts
/// drains (see the module docs). Returns `false` if another recorder was
/// already installed, in which case drains read as 0.
pub fn install_drain_counter() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| metrics::set_global_recorder(DrainRecorder).is_ok())
}

struct DrainRecorder;

struct DrainTick;

impl HistogramFn for DrainTick {
    fn record(&self, micros: f64) {
        // Both handles record whole, non-negative microseconds.
        drain_waits().push(micros.max(0.0) as u64);
    }
}

fn is_drain(key: &Key) -> bool {
    match key.name() {
        cold_adapter::metrics::DRAIN_WAIT_US => true,
        "cold.permit_wait_us" => key.labels().any(|l| l.key() == "sem" && l.value() == "drain"),
        _ => false,
    }
}

impl metrics::Recorder for DrainRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }

    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        if is_drain(key) { Histogram::from_arc(Arc::new(DrainTick)) } else { Histogram::noop() }
    }
}
