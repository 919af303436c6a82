//! Postgres tests, each in a fresh database, run by a `harness = false`
//! test target with [`libtest_mimic`].
//!
//! A test that cannot run here is reported as *ignored*, with the reason,
//! never as passed: when the crate was built without its `postgres`
//! feature, or when `DATABASE_URL` is unset. A `DATABASE_URL` that is set
//! but unusable (malformed, or no server answers) fails every test.
//!
//! ```no_run
//! // tests/postgres.rs, with `[[test]] name = "postgres" harness = false`
//! use cold_testkit::postgres::{run, test};
//!
//! fn main() -> std::process::ExitCode {
//!     run(
//!         cfg!(feature = "postgres"),
//!         vec![test("connects", |db| async move {
//!             println!("a fresh database at {}", db.name);
//!         })],
//!     )
//! }
//! ```

use futures_util::FutureExt;
use libtest_mimic::{Arguments, Completion, Trial};
use std::{future::Future, panic::AssertUnwindSafe, pin::Pin, process::ExitCode, time::Duration};

/// The `DATABASE_URL` of a local server with trust authentication and a
/// database `test`, as on the project's machines.
pub const LOCAL_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The database a test runs in: created for it, dropped after it.
#[derive(Debug, Clone)]
pub struct FreshDatabase {
    /// `DATABASE_URL` with the database replaced by [`name`](Self::name).
    pub url: String,
    /// The database's name.
    pub name: String,
    /// `DATABASE_URL` itself, for an admin connection of the test's own.
    pub admin_url: String,
}

type Body = Box<dyn FnOnce(FreshDatabase) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// One Postgres test: a name and its body.
pub struct PgTest {
    name: String,
    body: Body,
}

/// A test named `name` that runs `body` in a fresh database, on a
/// two-worker tokio runtime of its own. The test fails if `body` panics.
pub fn test<F, Fut>(name: impl Into<String>, body: F) -> PgTest
where
    F: FnOnce(FreshDatabase) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    PgTest { name: name.into(), body: Box::new(move |db| Box::pin(body(db))) }
}

/// The server Postgres tests and benches run against: `DATABASE_URL`,
/// unless unset or empty.
pub fn database_url() -> Option<String> {
    std::env::var("DATABASE_URL").ok().filter(|url| !url.is_empty())
}

/// Why Postgres tests cannot run here, or `None` when they can.
/// `postgres_feature` is whether the crate under test was built with its
/// `postgres` feature (pass `cfg!(feature = "postgres")`).
pub fn skip_reason(postgres_feature: bool) -> Option<String> {
    if !postgres_feature {
        return Some("built without the `postgres` feature (add --features postgres)".to_owned());
    }
    match database_url() {
        Some(_) => None,
        None => Some(format!("DATABASE_URL not set; the local server: {LOCAL_DATABASE_URL}")),
    }
}

/// Runs `tests` as a libtest-style test binary (filters, `--list`,
/// `--test-threads` and the other flags of `cargo test -- …` work) and
/// returns its exit code. Each test is ignored, with the reason, when
/// [`skip_reason`] gives one.
pub fn run(postgres_feature: bool, tests: Vec<PgTest>) -> ExitCode {
    let args = Arguments::from_args();
    let skip = skip_reason(postgres_feature);
    let trials = tests
        .into_iter()
        .map(|PgTest { name, body }| {
            let skip = skip.clone();
            Trial::ignorable_test(name.clone(), move || match skip {
                Some(reason) => Ok(Completion::ignored_with(reason)),
                None => {
                    in_fresh_database(&name, body);
                    Ok(Completion::Completed)
                }
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// `url` with its database (the path) replaced by `db`; the query, user
/// and password are kept. An error for a URL that does not parse or has
/// no host (the error never holds the URL, so no password is shown).
pub fn with_database(url: &str, db: &str) -> Result<String, url::ParseError> {
    let mut parsed = url::Url::parse(url)?;
    if parsed.cannot_be_a_base() {
        return Err(url::ParseError::RelativeUrlWithCannotBeABaseBase);
    }
    parsed.set_path(db);
    Ok(parsed.into())
}

/// Creates a database named `{prefix}_{pid}_{nanos}` (the prefix cut to 32
/// characters, anything but ASCII letters and digits made `_`) on the
/// server of `admin_url`.
///
/// # Panics
///
/// When `admin_url` is not a usable URL, the server cannot be reached or
/// refuses to create the database.
pub async fn create_database(admin_url: &str, prefix: &str) -> FreshDatabase {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    // Postgres names are at most 63 bytes.
    let prefix: String = prefix
        .chars()
        .take(32)
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect();
    let name = format!("{prefix}_{}_{nanos}", std::process::id());
    let url = with_database(admin_url, &name)
        .unwrap_or_else(|err| panic!("DATABASE_URL is set but is not a usable URL: {err}"));
    let pool = admin(admin_url).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .unwrap_or_else(|err| panic!("cannot create database {name}: {err}"));
    pool.close().await;
    FreshDatabase { url, name, admin_url: admin_url.to_owned() }
}

/// Drops `db`, closing any connection still open to it (`WITH (FORCE)`).
///
/// # Errors
///
/// When the server refuses or cannot be reached.
pub async fn drop_database(db: &FreshDatabase) -> Result<(), sqlx::Error> {
    let pool = admin(&db.admin_url).await;
    let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
        .execute(&pool)
        .await;
    pool.close().await;
    dropped.map(drop)
}

/// Creates a database named after `test`, runs `body` in it and drops it,
/// also when `body` panics (the panic is then resumed).
fn in_fresh_database(test: &str, body: Body) {
    let admin_url = database_url().expect("checked by skip_reason");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let db = create_database(&admin_url, &format!("cold_{test}")).await;
        let outcome = AssertUnwindSafe(body(db.clone())).catch_unwind().await;
        let dropped = drop_database(&db).await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        dropped.unwrap_or_else(|err| panic!("cannot drop database {}: {err}", db.name));
    });
}

/// One connection to `url` with the `any` driver, for administration.
///
/// # Panics
///
/// When no server answers within 10 s: a `DATABASE_URL` that is set but
/// unusable fails the test.
pub async fn admin(url: &str) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::pool::PoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
        .unwrap_or_else(|err| panic!("DATABASE_URL is set but the server cannot be reached: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_database() {
        assert_eq!(
            with_database("postgres://u:pw@h:5432/test?sslmode=disable", "fresh").unwrap(),
            "postgres://u:pw@h:5432/fresh?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "fresh").unwrap(), "postgres://h/fresh");
        assert!(with_database("not a url", "fresh").is_err());
        let err = with_database("postgres://u:pa/ss@h/test", "fresh").unwrap_err().to_string();
        assert!(!err.contains("ss@"), "{err}");
    }
}
