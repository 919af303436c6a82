//! The adapter's own error type, and labels for signet-cold's.

use crate::WritesHalted;
use signet_cold::ColdStorageError;

/// Why a non-blocking `dispatch_*` call did not queue its write.
///
/// signet-cold 0.10's [`ColdStorageError`] has no Backpressure variant, so
/// the dispatch methods return this type instead. It converts into
/// [`ColdStorageError`] for code that propagates cold errors with `?`
/// (`.map_err(ColdStorageError::from)`):
///
/// - [`DispatchError::TaskTerminated`] becomes
///   [`ColdStorageError::TaskTerminated`];
/// - [`DispatchError::Backpressure`] becomes [`ColdStorageError::Backend`]
///   wrapping this value, so it can be recovered with `downcast_ref`;
/// - [`DispatchError::Halted`] becomes [`ColdStorageError::Backend`]
///   wrapping the [`WritesHalted`], as awaited writes get it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DispatchError {
    /// The write queue is full: the task is alive but behind. Transient;
    /// retry later or accept the gap (hot storage stays authoritative).
    #[error("cold storage write queue is full")]
    Backpressure,
    /// The task has shut down (cancelled, or every handle dropped) and
    /// accepts no more work.
    #[error("cold storage task terminated")]
    TaskTerminated,
    /// Appends are halted after a permanent write failure: the write was
    /// not queued. Carries the failed block and its cause; see
    /// [`WritesHalted`] for the recovery.
    #[error(transparent)]
    Halted(WritesHalted),
}

impl From<DispatchError> for ColdStorageError {
    fn from(err: DispatchError) -> Self {
        match err {
            DispatchError::TaskTerminated => Self::TaskTerminated,
            DispatchError::Backpressure => Self::Backend(Box::new(err)),
            DispatchError::Halted(halt) => halt.to_cold(),
        }
    }
}

/// A read was called outside a tokio runtime; reads that must wait or
/// whose backend call does not answer at once run in a task of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cold storage reads need a tokio runtime")]
pub struct NoRuntime;

/// A backend call panicked; the panic was caught and its permit released.
///
/// Returned to the caller inside [`ColdStorageError::Backend`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cold storage backend panicked during {op}: {message}")]
pub struct BackendPanicked {
    /// The operation whose backend call panicked, e.g. `"get_header"`.
    pub op: &'static str,
    /// The panic message, when the payload was a string.
    pub message: String,
}

impl BackendPanicked {
    pub(crate) fn from_payload(op: &'static str, payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        Self { op, message }
    }
}

/// A short, stable label for an error's kind, used as a metric label and in
/// the soak report.
pub fn error_kind(err: &ColdStorageError) -> &'static str {
    match err {
        ColdStorageError::Backend(inner) => {
            if inner.downcast_ref::<BackendPanicked>().is_some() {
                "panic"
            } else if inner.downcast_ref::<DispatchError>().is_some() {
                "backpressure"
            } else if inner.downcast_ref::<WritesHalted>().is_some() {
                "halted"
            } else if inner.downcast_ref::<crate::InvalidBlockRange>().is_some() {
                "invalid_filter"
            } else {
                "backend"
            }
        }
        ColdStorageError::NotFound(_) => "not_found",
        ColdStorageError::TooManyLogs { .. } => "too_many_logs",
        ColdStorageError::DeadlineExceeded(_) => "deadline",
        ColdStorageError::StreamDeadlineExceeded => "stream_deadline",
        ColdStorageError::ReorgDetected => "reorg",
        ColdStorageError::TaskTerminated => "task_terminated",
    }
}
