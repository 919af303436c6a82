//! The state handles and the task share, and the health snapshot built
//! from it.

use crate::{
    ColdStorageConfig, ColdStorageHealth, WritesHalted,
    cache::ColdCache,
    writes::{TipChange, WriteRequest},
};
use drain_gate::DrainGate;
use signet_cold::{ColdResult, ColdStorageError, DynColdStorageBackend};
use std::{
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::{
    sync::{Semaphore, mpsc, watch},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// A write being retried, as [`ColdStorageHealth::retrying`] shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryingWrite {
    /// The write: `"append_blocks"`, `"truncate_above"`, ….
    pub op: &'static str,
    /// The first block it writes (for a truncate above `n`, `n + 1`).
    pub block: u64,
    /// Tries so far, the first included.
    pub attempts: u32,
    /// The last try's error, as text.
    pub error: String,
}

/// Everything handles and the task share.
pub(crate) struct Shared {
    pub(crate) backend: Arc<dyn DynColdStorageBackend>,
    pub(crate) gate: Arc<DrainGate>,
    pub(crate) cache: ColdCache,
    pub(crate) streams: Arc<Semaphore>,
    pub(crate) stream_tasks: TaskTracker,
    pub(crate) writes: mpsc::Sender<WriteRequest>,
    /// Fires on the user's cancel, when the last handle drops, or when the
    /// task's `run` future is dropped.
    pub(crate) shutdown: CancellationToken,
    /// True while a pending drain is past its deadline: reads in flight stop.
    pub(crate) overdue: watch::Sender<bool>,
    pub(crate) config: ColdStorageConfig,
    /// When the drain now pending started waiting.
    pub(crate) drain_waiting_since: Mutex<Option<Instant>>,
    pub(crate) drains_granted: AtomicU64,
    /// Set while appends are halted; `halted_flag` mirrors it for the
    /// dispatch fast path.
    halted: Mutex<Option<WritesHalted>>,
    halted_flag: AtomicBool,
    retrying: Mutex<Option<RetryingWrite>>,
    pub(crate) write_retries: AtomicU64,
    pub(crate) read_retries: AtomicU64,
    pub(crate) writes_lost: Arc<AtomicU64>,
    pub(crate) writes_rejected: AtomicU64,
    /// The highest block this task's writes left in the store, plus one; 0
    /// until the first write. A hint for charging open-ended log queries,
    /// not a source of truth.
    tip: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section here is a single assignment or clone: a panic
    // cannot leave the value half-updated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new(
        backend: Arc<dyn DynColdStorageBackend>,
        config: ColdStorageConfig,
        shutdown: CancellationToken,
    ) -> (Self, mpsc::Receiver<WriteRequest>) {
        let (writes, queue) = mpsc::channel(config.write_queue());
        let shared = Self {
            backend,
            gate: Arc::new(DrainGate::new(config.read_cap())),
            cache: ColdCache::new(config.cache_entries()),
            streams: Arc::new(Semaphore::new(config.stream_cap())),
            stream_tasks: TaskTracker::new(),
            writes,
            shutdown,
            overdue: watch::Sender::new(false),
            config,
            drain_waiting_since: Mutex::new(None),
            drains_granted: AtomicU64::new(0),
            halted: Mutex::new(None),
            halted_flag: AtomicBool::new(false),
            retrying: Mutex::new(None),
            write_retries: AtomicU64::new(0),
            read_retries: AtomicU64::new(0),
            writes_lost: Arc::new(AtomicU64::new(0)),
            writes_rejected: AtomicU64::new(0),
            tip: AtomicU64::new(0),
        };
        (shared, queue)
    }

    /// The highest block this task's writes left in the store, if it has
    /// written any (see [`Shared::note_tip`]).
    pub(crate) fn tip(&self) -> Option<u64> {
        self.tip.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Records a write that succeeded: an append raises the tip to its last
    /// block, a truncate lowers it to its bound.
    pub(crate) fn note_tip(&self, change: TipChange) {
        match change {
            TipChange::Raise(n) => self.tip.fetch_max(n.saturating_add(1), Ordering::Relaxed),
            TipChange::Lower(n) => self.tip.fetch_min(n.saturating_add(1), Ordering::Relaxed),
        };
    }

    /// Stops admitting work: waiting and new reads, streams and drains fail
    /// with `TaskTerminated`; reads and streams in flight are told to stop.
    pub(crate) fn close(&self) {
        self.shutdown.cancel();
        self.gate.close();
        self.streams.close();
        self.stream_tasks.close();
    }

    /// Fails with `TaskTerminated` once shutdown has begun, so a cache hit
    /// after shutdown fails like any other read.
    pub(crate) fn ensure_open(&self) -> ColdResult<()> {
        if self.shutdown.is_cancelled() { Err(ColdStorageError::TaskTerminated) } else { Ok(()) }
    }

    pub(crate) fn write_queue_depth(&self) -> usize {
        self.writes.max_capacity() - self.writes.capacity()
    }

    pub(crate) fn set_drain_waiting(&self, since: Option<Instant>) {
        *lock(&self.drain_waiting_since) = since;
    }

    /// The halt in force, if any.
    pub(crate) fn halted(&self) -> Option<WritesHalted> {
        if !self.halted_flag.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.halted).clone()
    }

    pub(crate) fn set_halted(&self, halt: Option<WritesHalted>) {
        let mut slot = lock(&self.halted);
        self.halted_flag.store(halt.is_some(), Ordering::Release);
        *slot = halt;
    }

    pub(crate) fn set_retrying(&self, retrying: Option<RetryingWrite>) {
        *lock(&self.retrying) = retrying;
    }

    /// A snapshot for [`ColdStorageHandle::health`](crate::ColdStorageHandle::health).
    pub(crate) fn health(&self) -> ColdStorageHealth {
        let drain_pending = self.gate.is_drain_pending();
        let drain_waiting: Option<Duration> =
            if drain_pending { lock(&self.drain_waiting_since).map(|t| t.elapsed()) } else { None };
        ColdStorageHealth {
            reads_in_flight: self.gate.readers_in_flight(),
            readers_queued: self.gate.waiters().saturating_sub(usize::from(drain_pending)),
            drain_waiting,
            write_queue_depth: self.write_queue_depth(),
            streams_active: self.config.stream_cap() - self.streams.available_permits(),
            drains_granted: self.drains_granted.load(Ordering::Relaxed),
            write_retries: self.write_retries.load(Ordering::Relaxed),
            retrying: lock(&self.retrying).clone(),
            read_retries: self.read_retries.load(Ordering::Relaxed),
            halted: self.halted(),
            writes_rejected: self.writes_rejected.load(Ordering::Relaxed),
            writes_lost: self.writes_lost.load(Ordering::Relaxed),
            closed: self.shutdown.is_cancelled() || self.gate.is_closed(),
        }
    }
}
