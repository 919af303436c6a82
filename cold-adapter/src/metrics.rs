//! Metric names and the small helpers that record them.
//!
//! All durations are recorded in microseconds.

use metrics::{counter, gauge, histogram};
use std::time::Duration;

/// Histogram (µs): time a read waited for its permit.
pub const PERMIT_WAIT_US: &str = "cold_adapter.permit_wait_us";
/// Histogram (µs): time a write batch waited for its drain.
pub const DRAIN_WAIT_US: &str = "cold_adapter.drain_wait_us";
/// Histogram (µs): backend time of an operation, labelled `op`.
pub const OP_DURATION_US: &str = "cold_adapter.op_duration_us";
/// Counter: failed operations, labelled `op` and `kind`.
pub const OP_ERRORS_TOTAL: &str = "cold_adapter.op_errors_total";
/// Gauge: backend reads holding a permit.
pub const READS_IN_FLIGHT: &str = "cold_adapter.reads_in_flight";
/// Gauge: log streams producing.
pub const STREAMS_ACTIVE: &str = "cold_adapter.streams_active";
/// Gauge: writes waiting in the write queue.
pub const WRITE_QUEUE_DEPTH: &str = "cold_adapter.write_queue_depth";
/// Counter: `dispatch_*` calls refused because the queue was full.
pub const BACKPRESSURE_TOTAL: &str = "cold_adapter.backpressure_total";
/// Counter: reads told to stop because a drain passed its deadline.
pub const READS_STOPPED_TOTAL: &str = "cold_adapter.reads_stopped_total";

/// Counter: retries of writes that failed transiently, labelled `op` and
/// `kind`.
pub const WRITE_RETRIES_TOTAL: &str = "cold_adapter.write_retries_total";
/// Counter: writes that reported a failure but were found committed, so
/// were counted applied, labelled `op`.
pub const WRITES_FOUND_APPLIED_TOTAL: &str = "cold_adapter.writes_found_applied_total";
/// Gauge: 1 while appends are halted after a permanent write failure.
pub const WRITES_HALTED: &str = "cold_adapter.writes_halted";
/// Counter: queued writes refused because appends were halted, labelled `op`.
pub const WRITES_REJECTED_TOTAL: &str = "cold_adapter.writes_rejected_total";
/// Counter: acknowledged writes abandoned at shutdown (grace period over,
/// or the `run` future dropped), labelled `op`.
pub const WRITES_LOST_TOTAL: &str = "cold_adapter.writes_lost_total";
/// Counter: retries of reads that failed transiently, labelled `op` and
/// `kind`.
pub const READ_RETRIES_TOTAL: &str = "cold_adapter.read_retries_total";

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

pub(crate) fn permit_wait(d: Duration) {
    histogram!(PERMIT_WAIT_US).record(micros(d));
}

pub(crate) fn drain_wait(d: Duration) {
    histogram!(DRAIN_WAIT_US).record(micros(d));
}

pub(crate) fn op_duration(op: &'static str, d: Duration) {
    histogram!(OP_DURATION_US, "op" => op).record(micros(d));
}

pub(crate) fn op_error(op: &'static str, kind: &'static str) {
    counter!(OP_ERRORS_TOTAL, "op" => op, "kind" => kind).increment(1);
}

pub(crate) fn write_queue_depth(depth: usize) {
    gauge!(WRITE_QUEUE_DEPTH).set(depth as f64);
}

pub(crate) fn backpressure() {
    counter!(BACKPRESSURE_TOTAL).increment(1);
}

pub(crate) fn write_retry(op: &'static str, kind: &'static str) {
    counter!(WRITE_RETRIES_TOTAL, "op" => op, "kind" => kind).increment(1);
}

pub(crate) fn write_found_applied(op: &'static str) {
    counter!(WRITES_FOUND_APPLIED_TOTAL, "op" => op).increment(1);
}

pub(crate) fn writes_halted(halted: bool) {
    gauge!(WRITES_HALTED).set(f64::from(u8::from(halted)));
}

pub(crate) fn write_rejected(op: &'static str) {
    counter!(WRITES_REJECTED_TOTAL, "op" => op).increment(1);
}

pub(crate) fn write_lost(op: &'static str) {
    counter!(WRITES_LOST_TOTAL, "op" => op).increment(1);
}

pub(crate) fn read_retry(op: &'static str, kind: &'static str) {
    counter!(READ_RETRIES_TOTAL, "op" => op, "kind" => kind).increment(1);
}

pub(crate) fn read_stopped() {
    counter!(READS_STOPPED_TOTAL).increment(1);
}

/// Holds a gauge up by one for as long as it lives, so a panic or a dropped
/// future still brings it back down.
pub(crate) struct InFlight(&'static str);

impl InFlight {
    pub(crate) fn read() -> Self {
        gauge!(READS_IN_FLIGHT).increment(1.0);
        Self(READS_IN_FLIGHT)
    }

    pub(crate) fn stream() -> Self {
        gauge!(STREAMS_ACTIVE).increment(1.0);
        Self(STREAMS_ACTIVE)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        gauge!(self.0).decrement(1.0);
    }
}
