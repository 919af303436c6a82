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

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use std::path::Path;

/// Bytes of a path that a SQLite URL would read as something else: `%`
/// (sqlx percent-decodes the path), `?` and `#` (they end it), and
/// controls and spaces.
const NOT_IN_PATH: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'?').add(b'#');

/// The URL `signet-cold-sql` needs to open (and create) the SQLite file at
/// `path`, whatever characters the path holds (they are percent-encoded,
/// and sqlx decodes them back).
///
/// ```
/// use std::path::Path;
///
/// assert_eq!(cold_testkit::sqlite_url(Path::new("/tmp/cold.db")), "sqlite:/tmp/cold.db?mode=rwc");
/// assert_eq!(
///     cold_testkit::sqlite_url(Path::new("/tmp/a b%20?.db")),
///     "sqlite:/tmp/a%20b%2520%3F.db?mode=rwc",
/// );
/// ```
pub fn sqlite_url(path: &Path) -> String {
    let path = path.to_string_lossy();
    format!("sqlite:{}?mode=rwc", utf8_percent_encode(&path, NOT_IN_PATH))
}
