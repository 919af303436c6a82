//! A cheap snapshot of the task's progress.

use crate::{RetryingWrite, WritesHalted};
use std::time::Duration;

/// What the task is doing right now; see
/// [`ColdStorageHandle::health`](crate::ColdStorageHandle::health).
///
/// Each field is read separately (atomics, and two short uncontended
/// locks for the write state), so the snapshot is not atomic as a whole:
/// use it for dashboards, watchdogs and log lines, not for synchronisation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColdStorageHealth {
    /// Read permits held by backend reads (at most the read cap): a
    /// `get_logs` holds one per 100 blocks it spans, see
    /// [`ColdStorageConfig::log_query_permits`](crate::ColdStorageConfig::log_query_permits).
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
    /// Write retries since the task started: each retry of a transiently
    /// failing write counts once, and so does each repeat of a failed check
    /// whether a failed append committed (see [durable
    /// writes](crate#durable-writes)).
    pub write_retries: u64,
    /// Read retries since the task started (each retry of a transiently
    /// failing read counts once).
    pub read_retries: u64,
    /// The write being retried now, if one is.
    pub retrying: Option<RetryingWrite>,
    /// Set while appends are halted after a permanent write failure; see
    /// [`WritesHalted`].
    pub halted: Option<WritesHalted>,
    /// Queued writes refused because appends were halted (each also logged
    /// at error level).
    pub writes_rejected: u64,
    /// Acknowledged writes that never ran: still queued when the shutdown
    /// grace period ended or when the `run` future was dropped (each also
    /// logged at error level).
    pub writes_lost: u64,
    /// Whether the task has shut down (or is shutting down).
    pub closed: bool,
}
