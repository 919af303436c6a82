//! The gate's errors.
//!
//! Written by hand rather than with `thiserror` so the crate's only
//! dependency stays `futures-core`.

use std::fmt;

/// The gate was closed: returned by every request made, or still waiting,
/// after [`DrainGate::close`](crate::DrainGate::close).
///
/// Permits and guards handed out before the close stay valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("drain gate closed")
    }
}

impl std::error::Error for Closed {}

/// Why [`DrainGate::try_acquire`](crate::DrainGate::try_acquire) gave no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryAcquireError {
    /// The gate is closed.
    Closed,
    /// No permit can be had without waiting: `cap` readers are in flight, a
    /// drain guard is held, or a request is queued ahead (a non-waiting
    /// attempt never overtakes a waiter).
    NoPermits,
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("drain gate closed"),
            TryAcquireError::NoPermits => f.write_str("no read permit available without waiting"),
        }
    }
}

impl std::error::Error for TryAcquireError {}

/// Why [`DrainGate::try_drain`](crate::DrainGate::try_drain) gave no guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryDrainError {
    /// The gate is closed.
    Closed,
    /// The gate is not idle: a reader is in flight, a drain guard is held, or
    /// a request is queued.
    Busy,
}

impl fmt::Display for TryDrainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryDrainError::Closed => f.write_str("drain gate closed"),
            TryDrainError::Busy => {
                f.write_str("drain gate busy: readers in flight or requests queued")
            }
        }
    }
}

impl std::error::Error for TryDrainError {}

/// A cap [`DrainGate::try_new`](crate::DrainGate::try_new) refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapError {
    /// A cap of 0 would admit no reader and let no request ever complete.
    Zero,
    /// The cap exceeds [`MAX_CAP`](crate::MAX_CAP).
    AboveMax {
        /// The cap asked for.
        cap: usize,
    },
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapError::Zero => f.write_str("drain gate cap must be at least 1, got 0"),
            CapError::AboveMax { cap } => {
                write!(f, "drain gate cap {cap} exceeds the maximum of {}", crate::MAX_CAP)
            }
        }
    }
}

impl std::error::Error for CapError {}
