//! The measurement behind charging `get_logs` by span (see
//! `ColdStorageConfig::log_query_permits`).
//!
//! A mixed workload over SQLite (a fresh temporary file, 2,000 blocks): 16
//! tasks (or the second argument) loop wide `get_logs` over 1,000-block ranges while 64 tasks loop
//! narrow 1-block `get_logs`, for 10 s, once with every query charged one
//! permit (`with_log_blocks_per_permit(u64::MAX)`, the old behaviour) and
//! once with the default (100 blocks per permit, at most a quarter of the
//! cap). Prints the narrow queries' rate and latency percentiles and the
//! wide queries' rate.
//! Run with `cargo run --release -p benches --example log_span`
//! (`-- 3 4` for 3-second phases and 4 wide tasks).

use cold_adapter::{ColdStorageConfig, ColdStorageHandle, ColdStorageTask};
use signet_cold::Filter;
use signet_cold_sql::SqlColdBackend;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use tokio_util::sync::CancellationToken;

const BLOCKS: u64 = 2_000;
const WIDE_SPAN: u64 = 1_000;
const NARROW_TASKS: u64 = 64;

#[derive(Default)]
struct Tally {
    /// Narrow query latencies, µs.
    narrow: Mutex<Vec<u64>>,
    wide: AtomicUsize,
}

fn main() {
    let secs = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let wide_tasks: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        for (label, per_permit) in [("one permit per query", u64::MAX), ("by span (default)", 100)]
        {
            let dir = tempfile::tempdir().unwrap();
            let url = cold_testkit::sqlite_url(&dir.path().join("cold.db"));
            let backend = SqlColdBackend::connect(&url).await.unwrap();
            let cancel = CancellationToken::new();
            let config = ColdStorageConfig::default().with_log_blocks_per_permit(per_permit);
            let (task, handle) = ColdStorageTask::with_config(backend, cancel.clone(), config);
            let task = tokio::spawn(task.run());
            let chain = cold_testkit::chain::ChainSpec::with_seed(5);
            for first in (1..=BLOCKS).step_by(100) {
                let blocks = chain.blocks(first, first + 99, 0, Default::default());
                handle.append_blocks(blocks).await.unwrap();
            }
            let tally = Arc::new(Tally::default());
            let stop = Arc::new(AtomicBool::new(false));
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..wide_tasks {
                tasks.spawn(wide(handle.clone(), t, Arc::clone(&tally), Arc::clone(&stop)));
            }
            for t in 0..NARROW_TASKS {
                tasks.spawn(narrow(handle.clone(), t, Arc::clone(&tally), Arc::clone(&stop)));
            }
            tokio::time::sleep(Duration::from_secs(secs)).await;
            stop.store(true, Ordering::Relaxed);
            while tasks.join_next().await.is_some() {}
            let mut narrow = std::mem::take(&mut *tally.narrow.lock().unwrap());
            narrow.sort_unstable();
            let ms = |q: f64| narrow[((narrow.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
            println!(
                "{label:<22} narrow {:>6}/s p50 {:>7.2} ms p99 {:>8.2} ms max {:>8.2} ms | wide {:>5.1}/s",
                narrow.len() as u64 / secs,
                ms(0.5),
                ms(0.99),
                ms(1.0),
                tally.wide.load(Ordering::Relaxed) as f64 / secs as f64,
            );
            cancel.cancel();
            drop(handle);
            task.await.unwrap();
        }
    });
}

async fn wide(handle: ColdStorageHandle, t: u64, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut i = t;
    while !stop.load(Ordering::Relaxed) {
        let from = 1 + (i * 97) % (BLOCKS - WIDE_SPAN);
        i += 1;
        let filter = Filter::new().from_block(from).to_block(from + WIDE_SPAN - 1);
        handle.get_logs(filter, usize::MAX).await.unwrap();
        tally.wide.fetch_add(1, Ordering::Relaxed);
    }
}

async fn narrow(handle: ColdStorageHandle, t: u64, tally: Arc<Tally>, stop: Arc<AtomicBool>) {
    let mut i = t;
    let mut local = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let block = 1 + (i * 31) % BLOCKS;
        i += 1;
        let started = Instant::now();
        handle.get_logs(Filter::new().from_block(block).to_block(block), 1_000).await.unwrap();
        local.push(started.elapsed().as_micros() as u64);
    }
    tally.narrow.lock().unwrap().extend(local);
}
