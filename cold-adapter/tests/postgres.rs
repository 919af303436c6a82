//! The roundtrip, signet-cold's conformance suite, connection kills and the
//! `eth_getLogs` cases (L01–L09 and the differential test of
//! `tests/logs.rs`) over Postgres, each in a fresh database created and
//! dropped by the test.
//!
//! Needs the `postgres` feature and `DATABASE_URL` (a server where that
//! user may create databases; the local one:
//! `postgres://postgres@127.0.0.1:5432/test`). Without either, each test is
//! reported as ignored, with the reason. A `DATABASE_URL` that is set but
//! unusable fails them.

mod common;

use cold_adapter::{ColdStorageConfig, ColdStorageTask};
use cold_testkit::postgres::{self, FreshDatabase, admin};
use common::{chain, guard, logs, roundtrip::roundtrip};
use signet_cold_sql::SqlColdBackend;
use std::{
    process::ExitCode,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

fn main() -> ExitCode {
    postgres::run(
        cfg!(feature = "postgres"),
        vec![
            postgres::test("postgres_roundtrip", postgres_roundtrip),
            postgres::test("postgres_conformance", postgres_conformance),
            postgres::test("f07_postgres_connections_killed", f07_postgres_connections_killed),
            postgres::test(
                "random_filters_agree_with_the_chain_postgres",
                random_filters_agree_with_the_chain_postgres,
            ),
        ]
        .into_iter()
        .chain(log_cases())
        .collect(),
    )
}

async fn postgres_roundtrip(db: FreshDatabase) {
    roundtrip(SqlColdBackend::connect(&db.url).await.expect("connect")).await;
}

async fn postgres_conformance(db: FreshDatabase) {
    let backend = SqlColdBackend::connect(&db.url).await.expect("connect");
    signet_cold::conformance::conformance(backend).await.unwrap();
}

/// F07: every connection of the backend's pool is killed, again and
/// again, under a read flood with appends running. Reads are retried on
/// fresh connections and their callers see no error; writes are retried
/// and applied; the task recovers; nothing acknowledged is lost.
async fn f07_postgres_connections_killed(db: FreshDatabase) {
    let admin_pool = admin(&db.admin_url).await;
    let backend = SqlColdBackend::connect(&db.url).await.expect("connect");
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
        let (h, stop, reads, errors, examples) =
            (handle.reader(), stop.clone(), reads.clone(), errors.clone(), examples.clone());
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
        .bind(&db.name)
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
    println!("f07: {killed} connections killed, {reads} reads, {errors} errors, {health:?}");
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
}

/// L01–L09 of `../shared/cases/logs-semantics.md`, one test per case
/// named after its id (see `tests/logs.rs`), each in a fresh database.
fn log_cases() -> impl Iterator<Item = postgres::PgTest> {
    logs::CASES.into_iter().map(|(id, case)| {
        postgres::test(format!("{id}_postgres"), move |db: FreshDatabase| async move {
            let backend = SqlColdBackend::connect(&db.url).await.expect("connect");
            let run = common::start(backend, ColdStorageConfig::default());
            logs::run_case(&run.handle, case, "postgres").await;
            run.stop().await;
        })
    })
}

/// The differential test of `tests/logs.rs` over Postgres: 24 random
/// chains, each with random filters, against the answer computed from the
/// chain. One database; each chain replaces the last (`truncate_above(0)`).
/// The cases come from a fixed proptest seed (no shrinking here: a
/// failure names the filter and the chain).
async fn random_filters_agree_with_the_chain_postgres(db: FreshDatabase) {
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let backend = SqlColdBackend::connect(&db.url).await.expect("connect");
    let run = common::start(backend, ColdStorageConfig::default());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    for _ in 0..24 {
        let (seed, tip, queries) = logs::case().new_tree(&mut runner).expect("a case").current();
        let blocks =
            cold_testkit::chain::ChainSpec::with_seed(seed).blocks(1, tip, 0, Default::default());
        run.handle.truncate_above(0).await.unwrap();
        run.handle.append_blocks(blocks.clone()).await.unwrap();
        logs::run_queries(&[(&run.handle, "postgres")], &blocks, queries).await;
    }
    run.stop().await;
}
