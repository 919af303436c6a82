//! Limits and deadlines of a cold storage task.

use std::time::Duration;

/// Default number of backend reads in flight at once: signet-cold's own
/// read concurrency. Right for the in-memory backend; for a SQL backend set
/// the cap to the pool size (see [Choosing the read
/// cap](ColdStorageConfig#choosing-the-read-cap)).
pub const DEFAULT_READ_CAP: usize = 64;
/// Default number of log streams producing at once.
pub const DEFAULT_STREAM_CAP: usize = 8;
/// Default number of writes that may wait in the write queue.
pub const DEFAULT_WRITE_QUEUE: usize = 256;
/// Default number of entries in each of the three cache maps.
pub const DEFAULT_CACHE_ENTRIES: usize = 2048;
/// Default upper bound on a stream's deadline.
pub const DEFAULT_MAX_STREAM_DEADLINE: Duration = Duration::from_secs(60);
/// Default time a drain may wait for reads in flight before they are told to stop.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(5);
/// Default number of queued writes that may share one drain.
pub const DEFAULT_WRITE_BATCH: usize = 64;
/// Default number of retries of a write that fails with a
/// [transient](crate::is_transient) error, before appends halt.
pub const DEFAULT_WRITE_RETRIES: usize = 12;
/// Default backoff between write retries: from 50 ms, doubling, capped at 5 s.
pub const DEFAULT_WRITE_BACKOFF: Backoff =
    Backoff { min: Duration::from_millis(50), max: Duration::from_secs(5) };
/// Default number of retries of a read that fails with a transient error.
pub const DEFAULT_READ_RETRIES: usize = 3;
/// Default backoff between read retries: from 10 ms, doubling, capped at 200 ms.
pub const DEFAULT_READ_BACKOFF: Backoff =
    Backoff { min: Duration::from_millis(10), max: Duration::from_millis(200) };
/// Default number of blocks of a `get_logs` range charged as one read
/// permit; see [`ColdStorageConfig::log_query_permits`].
pub const DEFAULT_LOG_BLOCKS_PER_PERMIT: u64 = 100;
/// Default bound on how long [`run`](crate::ColdStorageTask::run) takes
/// once shutdown starts.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Capped, jittered exponential backoff: the first wait is `min`, each next
/// one doubles, none exceeds `max`, and each is scaled by a random factor in
/// `[1, 2)` (full jitter above the base), so retries of many callers do not
/// line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub min: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The waits of up to `retries` retries.
    pub(crate) fn delays(&self, retries: usize) -> impl Iterator<Item = Duration> + use<> {
        use backon::BackoffBuilder;
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min)
            .with_max_delay(self.max)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(retries)
            .build()
            .map({
                let max = self.max;
                move |d| d.min(max)
            })
    }
}

/// Limits and deadlines of a [`ColdStorageTask`](crate::ColdStorageTask).
///
/// Built with chained setters from [`ColdStorageConfig::default`]:
///
/// ```
/// use cold_adapter::ColdStorageConfig;
/// use std::time::Duration;
///
/// let config = ColdStorageConfig::default()
///     .with_read_cap(128)
///     .with_drain_deadline(Some(Duration::from_secs(2)));
/// assert_eq!(config.read_cap(), 128);
/// assert_eq!(config.stream_cap(), 8);
/// ```
///
/// Every count must be at least 1; the setters panic on 0 (see each one).
///
/// # Choosing the read cap
///
/// A drain waits for every read in flight, so each permit beyond what the
/// backend can actually serve at once is a read that holds off writes while
/// it only waits. A SQL backend serves as many reads at once as its pool has
/// connections: with 64 permits over sqlx's default pool of 10, 54 reads
/// hold permits while they wait for a connection. **Set the read cap to the
/// pool size** ([`with_read_cap_for_pool`](Self::with_read_cap_for_pool)
/// reads it from the pool). Measured with the benches report, cap 10 against
/// cap 64 over a pool of 10, SQLite and Postgres, runs I–L in
/// `benches/RESULTS.md`: append p99 under 256 readers flooding uncached
/// reads 0.18x–0.43x; uncached reads/s 0.75x–1.06x (most runs within
/// ±10%). The price: fewer reads complete while writes run back to back
/// (0.34x–0.71x), since each drain lets at most 10 reads in between. The
/// in-memory backend answers every read on its first poll, so its reads
/// never wait for a connection; it keeps the default (with cap 10, 64
/// readers make 0.18x the reads/s: every read beyond the cap waits, in a
/// task of its own).
///
/// `signet_cold_sql::SqlColdBackend::connect` opens sqlx's default pool: 10
/// connections, 1 for an in-memory SQLite database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdStorageConfig {
    read_cap: usize,
    stream_cap: usize,
    write_queue: usize,
    cache_entries: usize,
    max_stream_deadline: Duration,
    drain_deadline: Option<Duration>,
    write_batch: usize,
    write_retries: usize,
    write_backoff: Backoff,
    read_retries: usize,
    read_backoff: Backoff,
    shutdown_grace: Duration,
    log_blocks_per_permit: u64,
}

impl Default for ColdStorageConfig {
    fn default() -> Self {
        Self {
            read_cap: DEFAULT_READ_CAP,
            stream_cap: DEFAULT_STREAM_CAP,
            write_queue: DEFAULT_WRITE_QUEUE,
            cache_entries: DEFAULT_CACHE_ENTRIES,
            max_stream_deadline: DEFAULT_MAX_STREAM_DEADLINE,
            drain_deadline: Some(DEFAULT_DRAIN_DEADLINE),
            write_batch: DEFAULT_WRITE_BATCH,
            write_retries: DEFAULT_WRITE_RETRIES,
            write_backoff: DEFAULT_WRITE_BACKOFF,
            read_retries: DEFAULT_READ_RETRIES,
            read_backoff: DEFAULT_READ_BACKOFF,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            log_blocks_per_permit: DEFAULT_LOG_BLOCKS_PER_PERMIT,
        }
    }
}

impl ColdStorageConfig {
    /// Sets how many backend reads may be in flight at once (default 64;
    /// see [Choosing the read cap](Self#choosing-the-read-cap)).
    ///
    /// Reads above the cap wait in arrival order, each in a task of its own
    /// that its caller aborts when it drops the read (see
    /// [How it works](crate#how-it-works)); they never hold up other reads'
    /// dispatch or the writer. A `get_logs` may take several permits (see
    /// [`log_query_permits`](Self::log_query_permits)).
    ///
    /// # Panics
    ///
    /// Panics if `cap` is 0 or above [`drain_gate::MAX_CAP`].
    #[must_use]
    pub fn with_read_cap(mut self, cap: usize) -> Self {
        assert!(cap > 0 && cap <= drain_gate::MAX_CAP, "read cap must be in 1..=MAX_CAP");
        self.read_cap = cap;
        self
    }

    /// Sets the read cap to `pool`'s maximum number of connections (see
    /// [Choosing the read cap](Self#choosing-the-read-cap)); needs the
    /// `sqlite` or `postgres` feature.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use cold_adapter::{ColdStorageConfig, ColdStorageTask, signet_cold_sql::SqlColdBackend};
    /// use sqlx::any::AnyPoolOptions;
    ///
    /// sqlx::any::install_default_drivers();
    /// let dir = tempfile::tempdir()?;
    /// let url = format!("sqlite:{}?mode=rwc", dir.path().join("cold.db").display());
    /// let pool = AnyPoolOptions::new().max_connections(16).connect(&url).await?;
    /// let config = ColdStorageConfig::default().with_read_cap_for_pool(&pool);
    /// assert_eq!(config.read_cap(), 16);
    ///
    /// let cancel = cold_adapter::CancellationToken::new();
    /// let handle =
    ///     ColdStorageTask::spawn_with_config(SqlColdBackend::new(pool).await?, cancel.clone(), config);
    /// assert_eq!(handle.get_latest_block().await?, None);
    /// cancel.cancel();
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// Never: sqlx pools have at least one connection and the count is
    /// capped at [`drain_gate::MAX_CAP`].
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[must_use]
    pub fn with_read_cap_for_pool<DB: sqlx_core::database::Database>(
        self,
        pool: &sqlx_core::pool::Pool<DB>,
    ) -> Self {
        let connections =
            usize::try_from(pool.options().get_max_connections()).unwrap_or(usize::MAX);
        self.with_read_cap(connections.clamp(1, drain_gate::MAX_CAP))
    }

    /// Sets how many log streams may be producing at once (default 8).
    ///
    /// # Panics
    ///
    /// Panics if `cap` is 0 or above `tokio::sync::Semaphore::MAX_PERMITS`.
    #[must_use]
    pub fn with_stream_cap(mut self, cap: usize) -> Self {
        assert!(
            cap > 0 && cap <= tokio::sync::Semaphore::MAX_PERMITS,
            "stream cap must be in 1..=Semaphore::MAX_PERMITS"
        );
        self.stream_cap = cap;
        self
    }

    /// Sets how many writes may wait in the write queue (default 256).
    ///
    /// When the queue is full, `dispatch_*` returns
    /// [`DispatchError::Backpressure`](crate::DispatchError::Backpressure) and
    /// the async writes wait for a slot.
    ///
    /// # Panics
    ///
    /// Panics if `slots` is 0 or above `tokio::sync::Semaphore::MAX_PERMITS`.
    #[must_use]
    pub fn with_write_queue(mut self, slots: usize) -> Self {
        assert!(
            slots > 0 && slots <= tokio::sync::Semaphore::MAX_PERMITS,
            "write queue must be in 1..=Semaphore::MAX_PERMITS"
        );
        self.write_queue = slots;
        self
    }

    /// Sets the number of entries in each cache map: headers, transactions
    /// and receipts (default 2048 each). The bound is approximate: each map
    /// is split into shards and the capacity rounded per shard.
    ///
    /// # Panics
    ///
    /// Panics if `entries` is 0.
    #[must_use]
    pub fn with_cache_entries(mut self, entries: usize) -> Self {
        assert!(entries > 0, "cache entries must be at least 1");
        self.cache_entries = entries;
        self
    }

    /// Sets the upper bound applied to each `stream_logs` deadline
    /// (default 60 s).
    #[must_use]
    pub const fn with_max_stream_deadline(mut self, deadline: Duration) -> Self {
        self.max_stream_deadline = deadline;
        self
    }

    /// Sets how long a drain may wait for reads in flight before those reads
    /// are told to stop and return
    /// [`ColdStorageError::DeadlineExceeded`](signet_cold::ColdStorageError::DeadlineExceeded)
    /// (default `Some(5 s)`; `None` lets a drain wait for as long as the reads
    /// take).
    #[must_use]
    pub const fn with_drain_deadline(mut self, deadline: Option<Duration>) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// Sets how many queued writes may run under one drain (default 64).
    ///
    /// # Panics
    ///
    /// Panics if `writes` is 0.
    #[must_use]
    pub fn with_write_batch(mut self, writes: usize) -> Self {
        assert!(writes > 0, "write batch must be at least 1");
        self.write_batch = writes;
        self
    }

    /// Sets how many times a write that fails with a
    /// [transient](crate::is_transient) error is retried, and the
    /// [`Backoff`] between tries (default 12 retries, 50 ms to 5 s: about
    /// 40 s in all).
    ///
    /// Retries run in arrival order: later writes wait behind the one being
    /// retried, so no block is applied over a gap. The drain is released
    /// while the writer waits, so reads go on. A write still failing after
    /// the last retry, or failing with a permanent error at once, halts
    /// appends; see [`WritesHalted`](crate::WritesHalted). `0` retries halts
    /// on the first failure.
    ///
    /// # Panics
    ///
    /// Panics if `backoff.min` exceeds `backoff.max`.
    #[must_use]
    pub fn with_write_retries(mut self, retries: usize, backoff: Backoff) -> Self {
        assert!(backoff.min <= backoff.max, "backoff.min must not exceed backoff.max");
        self.write_retries = retries;
        self.write_backoff = backoff;
        self
    }

    /// Sets how many times a read that fails with a
    /// [transient](crate::is_transient) error is retried (reads are
    /// idempotent), and the [`Backoff`] between tries (default 3 retries,
    /// 10 ms to 200 ms). The read keeps its permit meanwhile; the drain
    /// deadline and shutdown still stop it. `0` returns the first error.
    ///
    /// # Panics
    ///
    /// Panics if `backoff.min` exceeds `backoff.max`.
    #[must_use]
    pub fn with_read_retries(mut self, retries: usize, backoff: Backoff) -> Self {
        assert!(backoff.min <= backoff.max, "backoff.min must not exceed backoff.max");
        self.read_retries = retries;
        self.read_backoff = backoff;
        self
    }

    /// Sets how long [`run`](crate::ColdStorageTask::run) may take once
    /// shutdown starts (default 10 s): running reads and streams are told to
    /// stop at once, queued writes run, and whatever has not finished when
    /// the grace period ends is abandoned; see
    /// [Shutdown](crate#shutdown).
    ///
    /// This is the one bound on the promise that acknowledged writes are
    /// applied: a write still queued when the grace period ends is lost
    /// (logged at error level, counted in
    /// [`writes_lost`](crate::ColdStorageHealth::writes_lost)). A grace of
    /// zero abandons every write still queued when shutdown starts; size it
    /// for a full write queue at the backend's write latency.
    #[must_use]
    pub const fn with_shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Sets how many blocks of a `get_logs` range count as one read permit
    /// (default 100); the formula is on
    /// [`log_query_permits`](Self::log_query_permits). `u64::MAX` charges
    /// every query one permit, as other reads are.
    ///
    /// # Panics
    ///
    /// Panics if `blocks` is 0.
    #[must_use]
    pub fn with_log_blocks_per_permit(mut self, blocks: u64) -> Self {
        assert!(blocks > 0, "log blocks per permit must be at least 1");
        self.log_blocks_per_permit = blocks;
        self
    }

    /// Blocks of a `get_logs` range charged as one read permit.
    pub const fn log_blocks_per_permit(&self) -> u64 {
        self.log_blocks_per_permit
    }

    /// The read permits a `get_logs` over a range of `blocks` blocks takes:
    /// wide scans cost in proportion to their span, so a few of them cannot
    /// fill the read cap alone.
    ///
    /// `ceil(blocks / log_blocks_per_permit)`, at least 1 and at most a
    /// quarter of the read cap (at least 1): with the defaults (100 blocks,
    /// cap 64) a 1-block query takes 1 permit, 1,000 blocks take 10, and
    /// 1,600 or more take 16.
    ///
    /// `blocks` is the filter's block range as the handle resolves it (see
    /// [`get_logs`](crate::ColdStorageReadHandle::get_logs)), cut at the
    /// highest block the task has written: a `blockHash` is 1 block, an
    /// empty range counts 1. `None` (the range ends at the tip and the task
    /// does not know it yet: it learns it from its own writes) takes the
    /// quarter.
    ///
    /// ```
    /// use cold_adapter::ColdStorageConfig;
    ///
    /// let config = ColdStorageConfig::default();
    /// assert_eq!(config.log_query_permits(Some(1)), 1);
    /// assert_eq!(config.log_query_permits(Some(1_000)), 10);
    /// assert_eq!(config.log_query_permits(Some(1_000_000)), 16);
    /// assert_eq!(config.log_query_permits(None), 16);
    /// ```
    pub fn log_query_permits(&self, blocks: Option<u64>) -> usize {
        let most = (self.read_cap / 4).max(1);
        blocks.map_or(most, |blocks| {
            let permits = blocks.div_ceil(self.log_blocks_per_permit);
            usize::try_from(permits).unwrap_or(usize::MAX).clamp(1, most)
        })
    }

    /// Retries of a write failing transiently.
    pub const fn write_retries(&self) -> usize {
        self.write_retries
    }

    /// Backoff between write retries.
    pub const fn write_backoff(&self) -> Backoff {
        self.write_backoff
    }

    /// Retries of a read failing transiently.
    pub const fn read_retries(&self) -> usize {
        self.read_retries
    }

    /// Backoff between read retries.
    pub const fn read_backoff(&self) -> Backoff {
        self.read_backoff
    }

    /// How long `run` may take once shutdown starts.
    pub const fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// Backend reads in flight at once.
    pub const fn read_cap(&self) -> usize {
        self.read_cap
    }

    /// Log streams producing at once.
    pub const fn stream_cap(&self) -> usize {
        self.stream_cap
    }

    /// Slots in the write queue.
    pub const fn write_queue(&self) -> usize {
        self.write_queue
    }

    /// Entries in each cache map.
    pub const fn cache_entries(&self) -> usize {
        self.cache_entries
    }

    /// Upper bound on a stream's deadline.
    pub const fn max_stream_deadline(&self) -> Duration {
        self.max_stream_deadline
    }

    /// How long a drain waits before reads in flight are told to stop.
    pub const fn drain_deadline(&self) -> Option<Duration> {
        self.drain_deadline
    }

    /// Queued writes that may run under one drain.
    pub const fn write_batch(&self) -> usize {
        self.write_batch
    }
}
