//! Test support: a backend that parks reads until released, backends to run
//! every scenario over, and small helpers.

#![allow(dead_code, unreachable_pub, unused_macros)]

pub mod faulty;
pub mod gated;
pub mod logs;
pub mod parked;
pub mod roundtrip;

use cold_adapter::{ColdStorageConfig, ColdStorageHandle, ColdStorageTask};
use signet_cold::{BlockData, ColdStorageBackend, mem::MemColdBackend};
use signet_cold_sql::SqlColdBackend;
use std::{future::Future, time::Duration};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[allow(unused_imports)]
pub use parked::ParkedBackend;

/// Every scenario must finish inside this.
pub const GUARD: Duration = Duration::from_secs(15);

/// Awaits `fut`, failing the test if it takes longer than [`GUARD`].
pub async fn guard<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(GUARD, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {GUARD:?}"),
    }
}

/// Yields until `cond` holds, failing the test after [`GUARD`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    guard(what, async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Joins every task of `set`, failing the test if one panics or the lot
/// takes longer than [`GUARD`].
pub async fn join_all<T: 'static>(what: &str, mut set: tokio::task::JoinSet<T>) -> Vec<T> {
    guard(what, async {
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            out.push(done.expect("no test task panics"));
        }
        out
    })
    .await
}

/// A store to run a scenario over. SQLite keeps its temp dir alive.
pub struct Store<B> {
    pub backend: B,
    pub name: &'static str,
    _dir: Option<tempfile::TempDir>,
}

/// Runs `$case(backend, name)` over the in-memory backend (`"mem"`), then
/// over a fresh SQLite store (`"sqlite"`): the scenarios that hold on both.
macro_rules! on_mem_and_sqlite {
    ($case:ident) => {{
        $case($crate::common::mem().backend, "mem").await;
        let store = $crate::common::sqlite().await;
        $case(store.backend.clone(), "sqlite").await;
    }};
}
#[allow(unused_imports)]
pub(crate) use on_mem_and_sqlite;

pub fn mem() -> Store<MemColdBackend> {
    Store { backend: MemColdBackend::new(), name: "mem", _dir: None }
}

/// A fresh SQLite file through the same URL form `cold-soak` uses.
pub async fn sqlite() -> Store<SqlColdBackend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = cold_testkit::sqlite_url(&dir.path().join("cold.db"));
    let backend = SqlColdBackend::connect(&url).await.expect("sqlite connects");
    Store { backend, name: "sqlite", _dir: Some(dir) }
}

/// A running task and what is needed to stop it.
pub struct Running {
    pub handle: ColdStorageHandle,
    pub cancel: CancellationToken,
    pub task: JoinHandle<()>,
}

pub fn start<B: ColdStorageBackend>(backend: B, config: ColdStorageConfig) -> Running {
    let cancel = CancellationToken::new();
    let (task, handle) = ColdStorageTask::with_config(backend, cancel.clone(), config);
    let task = tokio::spawn(task.run());
    Running { handle, cancel, task }
}

impl Running {
    /// Cancels and waits for `run` to return.
    pub async fn stop(self) {
        self.cancel.cancel();
        drop(self.handle);
        guard("run() after cancel", self.task).await.expect("task did not panic");
    }
}

/// Blocks `1..=n` of branch 0 from the soak's generator.
pub fn chain(n: u64) -> Vec<BlockData> {
    cold_testkit::chain::ChainSpec::with_seed(7).blocks(1, n, 0, Default::default())
}
