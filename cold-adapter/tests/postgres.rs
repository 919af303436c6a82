//! The roundtrip, signet-cold's conformance suite and connection kills
//! over Postgres, each in a fresh database created and dropped by the test.
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

    /// F07: every connection of the backend's pool is killed, again and
    /// again, under a read flood with appends running. Reads are retried on
    /// fresh connections and their callers see no error; writes are retried
    /// and applied; the task recovers; nothing acknowledged is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn f07_postgres_connections_killed() {
        in_fresh_database("f07", |url| async move {
            use super::common::{chain, guard};
            use cold_adapter::{ColdStorageConfig, ColdStorageTask};
            use std::sync::{
                Arc,
                atomic::{AtomicBool, AtomicU64, Ordering},
            };

            let db = url.rsplit('/').next().unwrap().split('?').next().unwrap().to_owned();
            let admin_pool = admin(&std::env::var("DATABASE_URL").unwrap()).await;
            let backend = SqlColdBackend::connect(&url).await.expect("connect");
            let cancel = tokio_util::sync::CancellationToken::new();
            let (task, handle) =
                ColdStorageTask::with_config(backend, cancel.clone(), ColdStorageConfig::default());
            let run = tokio::spawn(task.run());

            const BLOCKS: u64 = 60;
            let blocks = chain(BLOCKS);
            handle.append_blocks(blocks[..10].to_vec()).await.unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let (reads, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
            let examples = Arc::new(std::sync::Mutex::new(Vec::new()));
            let mut readers = tokio::task::JoinSet::new();
            for r in 0..32u64 {
                let (h, stop, reads, errors, examples) = (
                    handle.reader(),
                    stop.clone(),
                    reads.clone(),
                    errors.clone(),
                    examples.clone(),
                );
                readers.spawn(async move {
                    let mut i = r;
                    while !stop.load(Ordering::Relaxed) {
                        i = i.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                        // Uncached reads of committed blocks: 1..=10 always are.
                        let n = (i >> 33) % 10 + 1;
                        let outcome = if i & 1 == 0 {
                            h.get_transactions_in_block(n).await.map(drop)
                        } else {
                            h.get_receipts_in_block(n).await.map(drop)
                        };
                        reads.fetch_add(1, Ordering::Relaxed);
                        if let Err(err) = outcome {
                            errors.fetch_add(1, Ordering::Relaxed);
                            examples.lock().unwrap().push(err.to_string());
                        }
                    }
                });
            }
            // Appends keep running: one dispatch every 50 ms.
            let appender = tokio::spawn({
                let (h, blocks) = (handle.clone(), blocks.clone());
                async move {
                    for block in &blocks[10..] {
                        h.dispatch_append_blocks(vec![block.clone()]).expect("acknowledged");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            });
            // Kill every connection of the backend's pool every 250 ms.
            let mut killed = 0i64;
            for _ in 0..12 {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let row: (i64,) = sqlx::query_as(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&db)
                .fetch_one(&admin_pool)
                .await
                .expect("admin connection");
                killed += row.0;
            }
            guard("the appender", appender).await.unwrap();
            // Recovery: a fresh read and a write succeed within seconds.
            guard("a read after the kills", handle.get_latest_block()).await.unwrap();
            guard("writes to settle", handle.append_blocks(Vec::new())).await.unwrap();
            stop.store(true, Ordering::Relaxed);
            while readers.join_next().await.is_some() {}

            let (reads, errors) = (reads.load(Ordering::Relaxed), errors.load(Ordering::Relaxed));
            let health = handle.health();
            println!(
                "f07: {killed} connections killed, {reads} reads, {errors} errors, {health:?}"
            );
            assert!(killed >= 12, "the kills did not reach the pool ({killed})");
            assert!(reads > 100, "too few reads to mean anything: {reads}");
            assert_eq!(errors, 0, "reads saw errors: {:?}", &examples.lock().unwrap()[..]);
            assert_eq!(health.halted, None);
            for block in &blocks {
                let header = handle.get_header_by_number(block.block_number()).await.unwrap();
                assert_eq!(header.map(|h| h.hash()), Some(block.header.hash()));
            }
            cancel.cancel();
            guard("run()", run).await.unwrap();
            assert_eq!(handle.health().writes_lost, 0);
        })
        .await;
    }
}

#[cfg(not(feature = "postgres"))]
#[test]
fn postgres_tests_need_the_feature() {
    println!("skipping the Postgres tests: built without the `postgres` feature");
}
