//! The same reads and writes through the handle give the same answers over
//! `MemColdBackend` and over SQLite (and over Postgres in `postgres.rs`).

mod common;

use common::roundtrip::roundtrip;
use common::{mem, sqlite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_and_write_over_mem() {
    roundtrip(mem().backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_and_write_over_sqlite() {
    let store = sqlite().await;
    roundtrip(store.backend.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conformance() {
    // The SQLite backend exactly as cold-soak opens it.
    let store = sqlite().await;
    signet_cold::conformance::conformance(store.backend.clone()).await.unwrap();
}
