//! A short soak over Postgres, in a fresh database created and dropped by
//! the test, with the connection killer on (faults at the default rate).
//!
//! Needs the `postgres` feature and `DATABASE_URL` (a server where that user
//! may create databases; the local one:
//! `postgres://postgres@127.0.0.1:5432/test`). Without either the test is
//! reported as ignored, with the reason. A `DATABASE_URL` that is set but
//! unusable fails it.

use cold_testkit::postgres::{run, test};
use std::{process::ExitCode, time::Duration};

fn main() -> ExitCode {
    run(cfg!(feature = "postgres"), vec![test("postgres_short_soak", postgres_short_soak)])
}

async fn postgres_short_soak(db: cold_testkit::postgres::FreshDatabase) {
    let config = cold_soak::SoakConfig {
        backend: Some(db.url.parse().expect("a postgres URL")),
        duration: Duration::from_secs(3),
        readers: 64,
        block_interval: Duration::from_millis(20),
        reorg_every: 10,
        initial_blocks: 16,
        progress: false,
        ..Default::default()
    };
    let report = cold_soak::run(config).await.expect("soak runs");
    println!("{report}");
    assert!(report.passed(), "{report}");
}
