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

/// A request for a number of read permits the gate can never grant: 0, or
/// more than its cap. Returned by the `acquire_many` family of
/// [`DrainGate`](crate::DrainGate) at once, never after waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidPermits {
    /// The number of permits asked for.
    pub permits: usize,
    /// The gate's cap: valid requests are `1..=cap`.
    pub cap: usize,
}

impl fmt::Display for InvalidPermits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let InvalidPermits { permits, cap } = self;
        write!(f, "cannot acquire {permits} read permits from a drain gate of cap {cap}")?;
        f.write_str(if *permits == 0 {
            ": ask for at least 1"
        } else {
            ": ask for at most the cap"
        })
    }
}

impl std::error::Error for InvalidPermits {}

/// Why a waiting [`acquire_many`](crate::DrainGate::acquire_many) gave no
/// permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcquireManyError {
    /// The gate is closed (see [`Closed`]).
    Closed,
    /// The count is 0 or above the cap; returned on the first poll, before
    /// the request waits or queues.
    Invalid(InvalidPermits),
}

impl fmt::Display for AcquireManyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireManyError::Closed => fmt::Display::fmt(&Closed, f),
            AcquireManyError::Invalid(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for AcquireManyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AcquireManyError::Closed => None,
            AcquireManyError::Invalid(e) => Some(e),
        }
    }
}

impl From<InvalidPermits> for AcquireManyError {
    fn from(e: InvalidPermits) -> Self {
        AcquireManyError::Invalid(e)
    }
}

impl From<Closed> for AcquireManyError {
    fn from(Closed: Closed) -> Self {
        AcquireManyError::Closed
    }
}

/// Why [`DrainGate::try_acquire`](crate::DrainGate::try_acquire) (or
/// [`try_acquire_many`](crate::DrainGate::try_acquire_many)) gave no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TryAcquireError {
    /// The gate is closed.
    Closed,
    /// The permits cannot be had without waiting: too few of the cap are
    /// free, a drain guard is held, or a request is queued ahead (a
    /// non-waiting attempt never overtakes a waiter).
    NoPermits,
    /// `try_acquire_many` asked for 0 permits or more than the cap. Checked
    /// first, whatever the gate's state; never returned by `try_acquire`.
    Invalid(InvalidPermits),
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::Closed => f.write_str("drain gate closed"),
            TryAcquireError::NoPermits => f.write_str("no read permit available without waiting"),
            TryAcquireError::Invalid(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for TryAcquireError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TryAcquireError::Invalid(e) => Some(e),
            TryAcquireError::Closed | TryAcquireError::NoPermits => None,
        }
    }
}

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
