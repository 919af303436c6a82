//! The roundtrip, signet-cold's conformance suite and a short soak over
//! Postgres, each in a fresh database created and dropped by the test.
//!
//! Runs only with the `postgres` feature and `DATABASE_URL` set (a server
//! where that user may create databases); otherwise each test prints why it
//! skipped. A `DATABASE_URL` that is set but unusable fails the tests.

mod common;

#[cfg(feature = "postgres")]
mod pg {
    use super::common::roundtrip::roundtrip;
    use futures_util::FutureExt;
    use signet_cold_sql::SqlColdBackend;
    use std::{future::Future, panic::AssertUnwindSafe, time::Duration};

    /// `url` with its database name replaced by `db`.
    fn with_database(url: &str, db: &str) -> String {
        let (scheme, rest) = url.split_once("://").expect("DATABASE_URL has a scheme");
        let (authority, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let query = tail.find('?').map(|i| &tail[i..]).unwrap_or("");
        format!("{scheme}://{authority}/{db}{query}")
    }

    async fn admin(url: &str) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::pool::PoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .expect("DATABASE_URL is set but the server cannot be reached")
    }

    /// Runs `body` against a fresh database, dropped afterwards even if the
    /// body panics. `None` (after printing why) when `DATABASE_URL` is unset.
    pub(super) async fn in_fresh_database<F, Fut>(test: &str, body: F) -> Option<()>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()>,
    {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            println!("skipping {test}: DATABASE_URL not set");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos();
        let db = format!("cold_adapter_{}_{}_{nanos}", test, std::process::id());
        let pool = admin(&url).await;
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&pool)
            .await
            .expect("create database");
        let outcome = AssertUnwindSafe(body(with_database(&url, &db))).catch_unwind().await;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
            .execute(&pool)
            .await
            .expect("drop database");
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
        Some(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_roundtrip() {
        in_fresh_database("roundtrip", |url| async move {
            roundtrip(SqlColdBackend::connect(&url).await.expect("connect")).await;
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_conformance() {
        in_fresh_database("conformance", |url| async move {
            let backend = SqlColdBackend::connect(&url).await.expect("connect");
            signet_cold::conformance::conformance(backend).await.unwrap();
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_short_soak() {
        in_fresh_database("soak", |url| async move {
            let config = cold_adapter::soak::SoakConfig {
                backend: Some(url.parse().expect("a postgres URL")),
                duration: Duration::from_secs(3),
                readers: 64,
                block_interval: Duration::from_millis(20),
                reorg_every: 10,
                initial_blocks: 16,
                progress: false,
                ..Default::default()
            };
            let report = cold_adapter::soak::run(config).await.expect("soak runs");
            println!("{report}");
            assert!(report.passed(), "{report}");
        })
        .await;
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_tests_need_the_feature() {
    println!("skipping the Postgres tests: built without the `postgres` feature");
}
