//! Limits and deadlines of a cold storage task.

use std::time::Duration;

/// Default number of backend reads in flight at once.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdStorageConfig {
    read_cap: usize,
    stream_cap: usize,
    write_queue: usize,
    cache_entries: usize,
    max_stream_deadline: Duration,
    drain_deadline: Option<Duration>,
    write_batch: usize,
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
        }
    }
}

impl ColdStorageConfig {
    /// Sets how many backend reads may be in flight at once (default 64).
    ///
    /// Reads above the cap wait in their caller's task, in arrival order;
    /// they never hold up other reads' dispatch or the writer.
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
    /// and receipts (default 2048 each).
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
