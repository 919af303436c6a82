//! A cheap snapshot of the task's progress.

use std::time::Duration;

/// What the task is doing right now; see
/// [`ColdStorageHandle::health`](crate::ColdStorageHandle::health).
///
/// Each field is read separately from atomics, without a lock, so the
/// snapshot is not atomic as a whole: use it for dashboards, watchdogs and
/// log lines, not for synchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ColdStorageHealth {
    /// Backend reads holding a permit (at most the read cap).
    pub reads_in_flight: usize,
    /// Reads waiting for a permit.
    pub readers_queued: usize,
    /// How long the drain now pending has waited, if one is pending.
    pub drain_waiting: Option<Duration>,
    /// Writes waiting in the write queue (not counting the one running).
    pub write_queue_depth: usize,
    /// Log streams producing.
    pub streams_active: usize,
    /// Drains granted since the task started (a batch of writes shares one).
    pub drains_granted: u64,
    /// Whether the task has shut down (or is shutting down).
    pub closed: bool,
}
