//! Scenarios C01–C07 of `shared/cases/cold-scenarios.md`, each through the
//! public handle, each over `MemColdBackend` and over SQLite.

mod common;

use cold_adapter::{BackendPanicked, ColdStorageConfig, DispatchError};
use common::{ParkedBackend, chain, guard, join_all, mem, sqlite, start, until};
use signet_cold::{ColdStorageBackend, ColdStorageError};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Drain deadline off, so only the test decides when parked reads finish.
fn patient() -> ColdStorageConfig {
    ColdStorageConfig::default().with_drain_deadline(None)
}

async fn c01<B: ColdStorageBackend>(backend: B, name: &str) {
    // Free-running: 256 concurrent reads, 4x the cap of 64.
    let backend = ParkedBackend::closed(backend);
    let run = start(backend.clone(), ColdStorageConfig::default().with_read_cap(64));
    run.handle.append_blocks(chain(4)).await.unwrap();
    backend.release_all();
    let started = Instant::now();
    let mut reads = JoinSet::new();
    for i in 0..256u64 {
        let h = run.handle.clone();
        reads.spawn(async move { (i % 4 + 1, h.get_header_by_number(i % 4 + 1).await) });
    }
    for (n, header) in join_all("256 reads", reads).await {
        assert_eq!(header.unwrap().unwrap().number, n);
    }
    println!("C01 [{name}]: 256 reads at cap 64 finished in {:?}", started.elapsed());
    run.stop().await;
}

async fn c01_at_cap<B: ColdStorageBackend>(backend: B) {
    // Deterministic: the backend parks reads, so the cap is really reached
    // and 192 reads really queue; releasing them completes every one.
    let backend = ParkedBackend::closed(backend);
    let run = start(backend.clone(), patient().with_read_cap(64));
    run.handle.append_blocks(chain(4)).await.unwrap();
    let mut reads = JoinSet::new();
    for i in 0..256u64 {
        let h = run.handle.clone();
        // Transaction counts are never cached: every call needs a permit.
        reads.spawn(async move { h.get_transaction_count(i % 4 + 1).await });
    }
    backend.wait_parked(64).await;
    let h = run.handle.clone();
    until("192 readers queued", || h.health().readers_queued == 192).await;
    assert_eq!(run.handle.health().reads_in_flight, 64);
    backend.release_all();
    for count in join_all("256 parked reads", reads).await {
        assert!(count.unwrap() >= 1);
    }
    assert_eq!(run.handle.health().reads_in_flight, 0);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c01_reads_above_cap_complete() {
    c01(mem().backend, "mem").await;
    c01_at_cap(mem().backend).await;
    let store = sqlite().await;
    c01(store.backend.clone(), "sqlite").await;
    let store = sqlite().await;
    c01_at_cap(store.backend.clone()).await;
}

async fn c02<B: ColdStorageBackend>(backend: B, name: &str) {
    let backend = ParkedBackend::closed(backend);
    let run = start(backend.clone(), patient());
    let blocks = chain(5);
    let fifth = blocks[4].clone();
    run.handle.append_blocks(blocks[..4].to_vec()).await.unwrap();

    let started = Instant::now();
    let mut reads = JoinSet::new();
    for i in 0..256u64 {
        let h = run.handle.clone();
        reads.spawn(async move { h.get_transactions_in_block(i % 4 + 1).await });
    }
    backend.wait_parked(64).await;
    // The write is awaited while the flood is in flight and queued.
    let h = run.handle.clone();
    let write = tokio::spawn(async move { h.append_blocks(vec![fifth]).await });
    let h = run.handle.clone();
    until("the write's drain to be pending", || h.health().drain_waiting.is_some()).await;
    backend.release_all();
    guard("the write", write).await.unwrap().unwrap();
    for txs in join_all("256 reads", reads).await {
        assert!(!txs.unwrap().is_empty());
    }
    assert_eq!(run.handle.get_latest_block().await.unwrap(), Some(5));
    println!("C02 [{name}]: write + 256 reads finished in {:?}", started.elapsed());
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c02_write_interleaved_with_read_flood() {
    common::on_mem_and_sqlite!(c02);
}

async fn c03<B: ColdStorageBackend>(backend: B) {
    let backend = ParkedBackend::closed(backend);
    let run = start(backend.clone(), patient());
    run.handle.append_blocks(chain(3)).await.unwrap();

    let mut reads = JoinSet::new();
    for i in 0..16u64 {
        let h = run.handle.clone();
        reads.spawn(async move { h.get_receipts_in_block(i % 3 + 1).await });
    }
    backend.wait_parked(16).await;

    let h = run.handle.clone();
    let mut truncate = tokio::spawn(async move { h.truncate_above(0).await });
    let h = run.handle.clone();
    until("the truncate's drain to be pending", || h.health().drain_waiting.is_some()).await;
    // Parked reads hold it off: it must not complete while they are parked.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), &mut truncate).await.is_err(),
        "truncate_above completed while 16 reads were in flight"
    );
    assert_eq!(backend.parked(), 16);

    let released = Instant::now();
    backend.release_all();
    guard("the truncate", truncate).await.unwrap().unwrap();
    assert!(released.elapsed() < Duration::from_secs(2), "truncate was not prompt");
    for receipts in join_all("16 reads", reads).await {
        // They ran before the truncate, so they saw the blocks.
        assert!(!receipts.unwrap().is_empty());
    }
    assert_eq!(run.handle.get_latest_block().await.unwrap(), None);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c03_write_waits_for_reads_in_flight() {
    c03(mem().backend).await;
    let store = sqlite().await;
    c03(store.backend.clone()).await;
}

async fn c04<B: ColdStorageBackend>(backend: B) {
    let backend = ParkedBackend::closed(backend);
    let run = start(backend.clone(), patient().with_read_cap(4));
    run.handle.append_blocks(chain(2)).await.unwrap();

    // Four reads in flight, one waiting for a permit.
    let mut in_flight = JoinSet::new();
    for _ in 0..4 {
        let h = run.handle.clone();
        in_flight.spawn(async move { h.get_transaction_count(1).await });
    }
    backend.wait_parked(4).await;
    let h = run.handle.clone();
    let waiting = tokio::spawn(async move { h.get_transaction_count(2).await });
    let h = run.handle.clone();
    until("a reader to queue", || h.health().readers_queued == 1).await;

    run.cancel.cancel();
    let waited = guard("the waiting read", waiting).await.unwrap();
    assert!(matches!(waited, Err(ColdStorageError::TaskTerminated)), "{waited:?}");
    let read = guard("a new read", run.handle.get_transaction_count(1)).await;
    assert!(matches!(read, Err(ColdStorageError::TaskTerminated)), "{read:?}");
    let write = guard("a new write", run.handle.append_blocks(chain(3)[2..].to_vec())).await;
    assert!(matches!(write, Err(ColdStorageError::TaskTerminated)), "{write:?}");
    assert_eq!(run.handle.dispatch_append_blocks(Vec::new()), Err(DispatchError::TaskTerminated));
    let stream = run.handle.stream_logs(Default::default(), 10, Duration::from_secs(1)).await;
    assert!(matches!(stream, Err(ColdStorageError::TaskTerminated)));
    assert!(run.handle.health().closed);

    // The reads in flight are told to stop at once (their backend calls
    // never return here), and run() returns without waiting for them.
    for read in join_all("reads in flight", in_flight).await {
        assert!(matches!(read, Err(ColdStorageError::TaskTerminated)), "{read:?}");
    }
    guard("run() to return", run.task).await.unwrap();
    assert_eq!(backend.parked(), 0, "the parked backend calls were dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c04_shutdown_fails_fast() {
    c04(mem().backend).await;
    let store = sqlite().await;
    c04(store.backend.clone()).await;
}

async fn c05<B: ColdStorageBackend>(backend: B) {
    const QUEUE: usize = 8;
    const BLOCKS: u64 = 40;
    let backend = ParkedBackend::closed(backend);
    let run = start(backend.clone(), patient().with_read_cap(4).with_write_queue(QUEUE));
    let blocks = chain(BLOCKS);
    run.handle.append_blocks(blocks[..1].to_vec()).await.unwrap();

    // Saturate reads: 4 in flight, 12 queued.
    let mut reads = JoinSet::new();
    for _ in 0..16 {
        let h = run.handle.clone();
        reads.spawn(async move { h.get_transaction_count(1).await });
    }
    backend.wait_parked(4).await;

    // The follower dispatches one block at a time, faster than any drain.
    // The first is taken by the writer, which then waits for its drain.
    run.handle.dispatch_append_blocks(blocks[1..2].to_vec()).unwrap();
    let h = run.handle.clone();
    until("the writer to wait for a drain", || h.health().drain_waiting.is_some()).await;
    let mut pending = std::collections::VecDeque::new();
    let mut backpressure = 0;
    for block in &blocks[2..] {
        pending.push_back(block.clone());
        while let Some(next) = pending.front() {
            match run.handle.dispatch_append_blocks(vec![next.clone()]) {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(DispatchError::Backpressure) => {
                    // Only when the queue is truly full.
                    assert_eq!(run.handle.health().write_queue_depth, QUEUE);
                    backpressure += 1;
                    break;
                }
                Err(e) => panic!("dispatch failed: {e}"),
            }
        }
    }
    assert!(backpressure > 0, "the queue should have filled");
    assert_eq!(pending.len() as u64, BLOCKS - 1 - QUEUE as u64 - 1);

    // The backend catches up; the follower retries what was refused.
    backend.release_all();
    guard("pending dispatches", async {
        while let Some(next) = pending.front() {
            match run.handle.dispatch_append_blocks(vec![next.clone()]) {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(DispatchError::Backpressure) => tokio::task::yield_now().await,
                Err(e) => panic!("dispatch failed: {e}"),
            }
        }
    })
    .await;
    // Writes run in order: an awaited empty append completes after them all.
    guard("the queue to drain", run.handle.append_blocks(Vec::new())).await.unwrap();
    for count in join_all("saturating reads", reads).await {
        count.unwrap();
    }
    for block in &blocks {
        let got = run.handle.get_header_by_number(block.block_number()).await.unwrap();
        assert_eq!(got.map(|h| h.hash()), Some(block.header.hash()), "block lost");
    }
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c05_dispatch_never_wedges() {
    c05(mem().backend).await;
    let store = sqlite().await;
    c05(store.backend.clone()).await;
}

async fn c06<B: ColdStorageBackend>(backend: B) {
    let backend = ParkedBackend::open(backend);
    let run = start(backend.clone(), patient());
    run.handle.append_blocks(chain(2)).await.unwrap();

    backend.panic_reads(true);
    let read = guard("the panicking read", run.handle.get_transaction_count(1)).await;
    match read {
        Err(ColdStorageError::Backend(inner)) => {
            let panicked = inner.downcast_ref::<BackendPanicked>().expect("a BackendPanicked");
            assert_eq!(panicked.op, "get_transaction_count");
            assert!(panicked.message.contains("test backend read panicked"));
        }
        other => panic!("expected a backend error, got {other:?}"),
    }
    backend.panic_reads(false);
    assert_eq!(run.handle.health().reads_in_flight, 0);
    // The permit was released: the write gets its drain.
    guard("the write after a panic", run.handle.truncate_above(1)).await.unwrap();
    assert_eq!(run.handle.get_latest_block().await.unwrap(), Some(1));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c06_panicking_read_releases_permit() {
    c06(mem().backend).await;
    let store = sqlite().await;
    c06(store.backend.clone()).await;
}

async fn c07<B: ColdStorageBackend>(backend: B) {
    // Slow backend: reads park and are never released.
    let backend = ParkedBackend::closed(backend);
    let run = start(backend.clone(), patient());
    run.handle.append_blocks(chain(2)).await.unwrap();

    let mut callers = JoinSet::new();
    for i in 0..200u64 {
        let h = run.handle.clone();
        callers.spawn(async move {
            tokio::time::timeout(Duration::from_millis(1), h.get_receipts_in_block(i % 2 + 1)).await
        });
    }
    for outcome in join_all("200 impatient callers", callers).await {
        assert!(outcome.is_err(), "a parked read cannot have completed");
    }
    // Each read ran in a task of its own, aborted with its caller: the
    // runtime drops it (and its permit) at its next turn.
    until("the aborted reads to release their permits", || {
        let health = run.handle.health();
        (health.reads_in_flight, health.readers_queued) == (0, 0)
    })
    .await;
    until("the backend calls to be dropped", || backend.parked() == 0).await;

    let started = Instant::now();
    guard("a write after the callers gave up", run.handle.append_blocks(chain(3)[2..].to_vec()))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1), "the drain was not immediate");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn c07_cancelled_callers_do_not_leak() {
    c07(mem().backend).await;
    let store = sqlite().await;
    c07(store.backend.clone()).await;
}
