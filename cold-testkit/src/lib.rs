//! Fixtures shared by cold-adapter's tests, the benches, the fuzz targets
//! and `cold-soak`; not published.
//!
//! - [`chain`]: realistic blocks, generated deterministically from a seed.
//! - [`sqlite_url`]: the URL `signet-cold-sql` opens a SQLite file with.
//! - `postgres` (feature `postgres-harness`): a test harness that runs
//!   Postgres tests in fresh databases and reports them as ignored, with
//!   the reason, when they cannot run.

pub mod chain;
#[cfg(feature = "postgres-harness")]
pub mod postgres;

use std::path::Path;

/// The URL `signet-cold-sql` needs to open (and create) a SQLite file.
///
/// ```
/// let url = cold_testkit::sqlite_url(std::path::Path::new("/tmp/cold.db"));
/// assert_eq!(url, "sqlite:/tmp/cold.db?mode=rwc");
/// ```
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite:{}?mode=rwc", path.display())
}
