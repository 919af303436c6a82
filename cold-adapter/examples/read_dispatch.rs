//! The measurement behind how reads run (see the crate docs, "How it
//! works").
//!
//! 32 and 256 tasks each make uncached `get_header_by_hash` reads over
//! `MemColdBackend` (read cap 64), (a) awaiting the handle directly, as node
//! code does, and (b) through a `tokio::spawn` per read around it, the
//! cost of always running a read in a task of its own. At 32 tasks every
//! permit is free and the in-memory call answers on its first poll, so (a)
//! runs every read in the caller's task; at 256, most reads wait for a
//! permit and (a) moves them into a task of their own, as it does for a
//! pending SQL call. Run with `cargo run --release -p cold-adapter
//! --example read_dispatch`.

use cold_adapter::ColdStorageTask;
use signet_cold::mem::MemColdBackend;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const READS_PER_TASK: usize = 400;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        let handle = ColdStorageTask::spawn(MemColdBackend::new(), cancel.clone());
        let blocks =
            cold_testkit::chain::ChainSpec::with_seed(3).blocks(1, 64, 0, Default::default());
        let hashes: Vec<_> = blocks.iter().map(|b| b.header.hash()).collect();
        handle.append_blocks(blocks).await.unwrap();

        for round in 0..3 {
            for (count, spawned) in [(32, false), (32, true), (256, false), (256, true)] {
                let started = Instant::now();
                let mut tasks = tokio::task::JoinSet::new();
                for t in 0..count {
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
                let reads = (count * READS_PER_TASK) as f64;
                println!(
                    "round {round} {count:>3} tasks {:<8} {:>9.0} reads/s  {:>6.2} µs/read",
                    if spawned { "spawned" } else { "handle" },
                    reads / elapsed.as_secs_f64(),
                    elapsed.as_secs_f64() * 1e6 / reads,
                );
            }
        }
        cancel.cancel();
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
}
