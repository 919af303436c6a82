//! The measurement behind running reads in the caller's task.
//!
//! 256 tasks each make uncached `get_header_by_hash` reads over
//! `MemColdBackend`, (a) awaiting the handle directly, as the adapter runs
//! them, and (b) through a `tokio::spawn` per read, the cost a spawned
//! design adds. Run with `cargo run --release -p cold-adapter --example
//! read_dispatch`.

use cold_adapter::ColdStorageTask;
use signet_cold::mem::MemColdBackend;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const TASKS: usize = 256;
const READS_PER_TASK: usize = 400;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let handle = ColdStorageTask::spawn(MemColdBackend::new(), cancel.clone());
        let blocks =
            cold_adapter::soak::chain::ChainSpec::with_seed(3).blocks(1, 64, 0, Default::default());
        let hashes: Vec<_> = blocks.iter().map(|b| b.header.hash()).collect();
        handle.append_blocks(blocks).await.unwrap();

        for round in 0..3 {
            for spawned in [false, true] {
                let started = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for t in 0..TASKS {
                    let h = handle.reader();
                    let hashes = hashes.clone();
                    tasks.spawn(async move {
                        for i in 0..READS_PER_TASK {
                            let hash = hashes[(t + i) % hashes.len()];
                            if spawned {
                                let h = h.clone();
                                tokio::spawn(async move { h.get_header_by_hash(hash).await })
                                    .await
                                    .unwrap()
                                    .unwrap();
                            } else {
                                h.get_header_by_hash(hash).await.unwrap();
                            }
                        }
                    });
                }
                while tasks.join_next().await.is_some() {}
                let elapsed = started.elapsed();
                let reads = (TASKS * READS_PER_TASK) as f64;
                println!(
                    "round {round} {:<8} {:>9.0} reads/s  {:>6.2} µs/read",
                    if spawned { "spawned" } else { "inline" },
                    reads / elapsed.as_secs_f64(),
                    elapsed.as_secs_f64() * 1e6 / reads,
                );
            }
        }
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
}
