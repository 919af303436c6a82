//! Which backend errors are worth retrying, and the error a halted writer
//! returns.
//!
//! # Transient errors
//!
//! [`is_transient`] is the one table the task retries by, for writes (see
//! [`ColdStorageConfig::with_write_retries`](crate::ColdStorageConfig::with_write_retries))
//! and for reads (see
//! [`ColdStorageConfig::with_read_retries`](crate::ColdStorageConfig::with_read_retries)).
//! It is derived from signet-cold 0.10's `ColdStorageError` and
//! signet-cold-sql 0.10's `SqlColdError` (which wraps `sqlx::Error`):
//!
//! | error | transient | why |
//! |---|---|---|
//! | `DeadlineExceeded` (a backend read or write timeout; Postgres `statement_timeout`, SQLSTATE 57014) | yes | the statement was cancelled and its transaction rolled back |
//! | `Backend(std::io::Error)`, `sqlx::Error::Io` | yes | connection reset, refused, aborted, broken pipe, timed out |
//! | `sqlx::Error::PoolTimedOut`, `WorkerCrashed` | yes | no connection was free in time; SQLite's worker thread died and the pool opens another |
//! | Postgres SQLSTATE class `08` (connection exception), `40001` (serialization failure), `40P01` (deadlock), `53300` (too many connections), `55P03` (lock not available), `57P01`–`57P03` (admin or crash shutdown, cannot connect now: a killed or failing-over server) | yes | the server dropped or refused the session, or asked for a retry |
//! | SQLite `SQLITE_BUSY`, `SQLITE_LOCKED`, `SQLITE_IOERR` (primary codes 5, 6, 10, with any extended code) | yes | another connection holds the lock; an I/O hiccup |
//! | anything else: other database errors (constraint violations, …), conversion errors, `sqlx::Error::PoolClosed`, [`BackendPanicked`](crate::BackendPanicked), `NotFound`, `TooManyLogs`, `TaskTerminated`, … | no | retrying gives the same answer |
//!
//! The rows that name sqlx or `SqlColdError` need the crate's `sqlite` or
//! `postgres` feature. Without either, an I/O error anywhere in an error's
//! source chain (how `sqlx::Error::Io` wraps a lost connection) and
//! `DeadlineExceeded` still count as transient; every other SQL error
//! counts as permanent.
//!
//! A transient failure of a write may still have committed (the reply to
//! `COMMIT` can be lost with the connection), so before retrying an append
//! the writer asks the backend what it holds; see
//! [`ColdStorageHandle::dispatch_append_blocks`](crate::ColdStorageHandle::dispatch_append_blocks).

use alloy::primitives::BlockNumber;
use signet_cold::ColdStorageError;
use std::error::Error as StdError;

/// Whether `err` is a transient backend fault, worth retrying; see the
/// [table](crate::fault).
///
/// ```
/// use cold_adapter::is_transient;
/// use signet_cold::ColdStorageError;
/// use std::{io, time::Duration};
///
/// let reset = io::Error::new(io::ErrorKind::ConnectionReset, "reset by peer");
/// assert!(is_transient(&ColdStorageError::backend(reset)));
/// assert!(is_transient(&ColdStorageError::DeadlineExceeded(Duration::ZERO)));
/// assert!(!is_transient(&ColdStorageError::NotFound("block 7".into())));
/// ```
pub fn is_transient(err: &ColdStorageError) -> bool {
    match err {
        ColdStorageError::DeadlineExceeded(_) => true,
        ColdStorageError::Backend(inner) => source_chain_is_transient(inner.as_ref()),
        _ => false,
    }
}

fn source_chain_is_transient(err: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(verdict) = classify(err) {
            return verdict;
        }
        next = err.source();
    }
    false
}

/// `Some(verdict)` for an error this table knows, `None` to look at its
/// source.
fn classify(err: &(dyn StdError + 'static)) -> Option<bool> {
    if err.is::<std::io::Error>() {
        return Some(true);
    }
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    if let Some(sql) = err.downcast_ref::<signet_cold_sql::SqlColdError>() {
        return Some(match sql {
            signet_cold_sql::SqlColdError::Timeout => true,
            signet_cold_sql::SqlColdError::Sqlx(e) => sqlx_is_transient(e),
            signet_cold_sql::SqlColdError::Convert(_) => false,
        });
    }
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    if let Some(e) = err.downcast_ref::<sqlx_core::Error>() {
        return Some(sqlx_is_transient(e));
    }
    None
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn sqlx_is_transient(err: &sqlx_core::Error) -> bool {
    match err {
        sqlx_core::Error::Io(_)
        | sqlx_core::Error::PoolTimedOut
        | sqlx_core::Error::WorkerCrashed => true,
        sqlx_core::Error::Database(db) => db.code().is_some_and(|code| code_is_transient(&code)),
        _ => false,
    }
}

/// Postgres SQLSTATEs are five characters; SQLite codes are decimal
/// numbers of at most four digits (extended code in the high bits).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn code_is_transient(code: &str) -> bool {
    if code.len() == 5 {
        return code.starts_with("08")
            || matches!(
                code,
                "40001" | "40P01" | "53300" | "55P03" | "57014" | "57P01" | "57P02" | "57P03"
            );
    }
    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10))
}

/// Appends are halted: a write failed permanently (or ran out of retries),
/// and no later block is applied over the gap it left.
///
/// Returned inside [`ColdStorageError::Backend`] to later awaited writes,
/// and as [`DispatchError::Halted`](crate::DispatchError::Halted) to later
/// dispatches, until a `truncate_above(n)` with `n` below
/// [`block`](Self::block) (or `0` when it is 0) succeeds; shown in
/// [`ColdStorageHealth::halted`](crate::ColdStorageHealth::halted). Reads
/// keep working meanwhile.
///
/// # Recovery
///
/// Truncate to the last good block (or below), then append again from there
/// (for example from hot storage):
///
/// ```
/// # use cold_adapter::WritesHalted;
/// # async fn recover(handle: &cold_adapter::ColdStorageHandle, halt: &WritesHalted) -> signet_cold::ColdResult<()> {
/// handle.truncate_above(halt.block.saturating_sub(1)).await?; // appends resume now
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cold storage appends halted: {op} of block {block} failed ({cause}); \
     truncate_above a block below {block} to resume"
)]
pub struct WritesHalted {
    /// The write that failed: `"append_blocks"`, `"truncate_above"`, ….
    pub op: &'static str,
    /// The first block number that write would have written (for a
    /// truncate or drain above `n`, `n + 1`).
    pub block: BlockNumber,
    /// The backend's error, as text.
    pub cause: String,
}

impl WritesHalted {
    /// Wraps a copy in the error awaited writes get.
    pub(crate) fn to_cold(&self) -> ColdStorageError {
        ColdStorageError::backend(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn sqlstates_and_sqlite_codes() {
        for code in [
            "08006", "08P01", "40001", "40P01", "57P01", "57014", "5", "6", "517", "261", "10",
            "3850",
        ] {
            assert!(code_is_transient(code), "{code} should be transient");
        }
        for code in ["23505", "23503", "42P01", "19", "2067", "1555", "1"] {
            assert!(!code_is_transient(code), "{code} should be permanent");
        }
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn wrapped_io_errors_are_transient() {
        let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone");
        let sql = signet_cold_sql::SqlColdError::Sqlx(sqlx_core::Error::Io(io));
        assert!(is_transient(&ColdStorageError::from(sql)));
        let sql = signet_cold_sql::SqlColdError::Sqlx(sqlx_core::Error::PoolClosed);
        assert!(!is_transient(&ColdStorageError::from(sql)));
        let sql = signet_cold_sql::SqlColdError::Timeout;
        assert!(is_transient(&ColdStorageError::from(sql)));
    }

    /// Without a SQL feature, an I/O error is still found down the source
    /// chain, however it is wrapped.
    #[test]
    fn io_errors_down_the_source_chain_are_transient() {
        #[derive(Debug, thiserror::Error)]
        #[error("driver: {0}")]
        struct Driver(#[source] std::io::Error);
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(is_transient(&ColdStorageError::backend(Driver(io))));
        let halted = WritesHalted { op: "append_blocks", block: 7, cause: "x".into() };
        assert!(!is_transient(&halted.to_cold()));
    }
}
