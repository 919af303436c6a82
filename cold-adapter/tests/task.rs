//! The task's mechanisms one by one: drain deadline, write batching, cache
//! eviction, streams, handle lifetime.

mod common;

use cold_adapter::{ColdStorageConfig, ColdStorageTask, DispatchError};
use common::{ParkedBackend, chain, guard, start, until};
use futures_util::StreamExt;
use signet_cold::{ColdStorageError, Filter, mem::MemColdBackend};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn drain_deadline_stops_stuck_reads() {
    let backend = ParkedBackend::closed(MemColdBackend::new());
    let run = start(backend.clone(), ColdStorageConfig::default());
    run.handle.append_blocks(chain(3)).await.unwrap();

    let h = run.handle.clone();
    let stuck = tokio::spawn(async move { h.get_receipts_in_block(2).await });
    backend.wait_parked(1).await;
    let started = Instant::now();
    run.handle.truncate_above(1).await.unwrap();
    // Paused time: the drain deadline (5 s) passed, nothing else advanced it.
    assert!(started.elapsed() >= Duration::from_secs(5));
    let stuck = stuck.await.unwrap();
    assert!(
        matches!(stuck, Err(ColdStorageError::DeadlineExceeded(d)) if d == Duration::from_secs(5)),
        "{stuck:?}"
    );
    assert_eq!(backend.parked(), 0);

    // Later reads are not stopped by the old drain's deadline.
    backend.release_all();
    assert_eq!(run.handle.get_latest_block().await.unwrap(), Some(1));
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn drain_deadline_none_waits_for_reads() {
    let backend = ParkedBackend::closed(MemColdBackend::new());
    let run = start(backend.clone(), ColdStorageConfig::default().with_drain_deadline(None));
    run.handle.append_blocks(chain(2)).await.unwrap();
    let h = run.handle.clone();
    let read = tokio::spawn(async move { h.get_transaction_count(2).await });
    backend.wait_parked(1).await;
    let h = run.handle.clone();
    let mut write = tokio::spawn(async move { h.truncate_above(1).await });
    assert!(tokio::time::timeout(Duration::from_secs(60), &mut write).await.is_err());
    backend.release_all();
    write.await.unwrap().unwrap();
    assert_eq!(read.await.unwrap().unwrap(), chain(2)[1].transactions.len() as u64);
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_share_one_drain() {
    let backend = ParkedBackend::closed(MemColdBackend::new());
    let run = start(backend.clone(), ColdStorageConfig::default().with_drain_deadline(None));
    let blocks = chain(10);
    let h = run.handle.clone();
    let read = tokio::spawn(async move { h.get_latest_block().await });
    backend.wait_parked(1).await;
    let before = run.handle.health().drains_granted;

    // Ten appends in order: the first waits for the drain, nine queue.
    let mut writes = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let h = run.handle.clone();
        let block = block.clone();
        writes.push(tokio::spawn(async move { h.append_block(block).await }));
        let h = run.handle.clone();
        if i == 0 {
            until("the first write's drain", || h.health().drain_waiting.is_some()).await;
        } else {
            until("the write to queue", || h.health().write_queue_depth == i).await;
        }
    }
    backend.release_all();
    for write in writes {
        guard("a queued write", write).await.unwrap().unwrap();
    }
    read.await.unwrap().unwrap();
    assert_eq!(run.handle.health().drains_granted - before, 1, "ten writes, one drain");
    assert_eq!(run.handle.get_latest_block().await.unwrap(), Some(10));
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_batch_is_bounded() {
    let backend = ParkedBackend::closed(MemColdBackend::new());
    let config = ColdStorageConfig::default().with_drain_deadline(None).with_write_batch(4);
    let run = start(backend.clone(), config);
    let h = run.handle.clone();
    let read = tokio::spawn(async move { h.get_latest_block().await });
    backend.wait_parked(1).await;
    let before = run.handle.health().drains_granted;
    for block in chain(10) {
        run.handle.dispatch_append_blocks(vec![block]).unwrap();
    }
    backend.release_all();
    run.handle.append_blocks(Vec::new()).await.unwrap();
    read.await.unwrap().unwrap();
    // 11 writes in batches of at most 4: three drains, or four when the
    // writer's last batch starts before the awaited append is queued (it is
    // sent after the reads are released, so that race is real).
    let drains = run.handle.health().drains_granted - before;
    assert!((3..=4).contains(&drains), "{drains} drains for 11 writes in batches of 4");
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_evicts_cached_entries_above() {
    let run = start(MemColdBackend::new(), ColdStorageConfig::default());
    let blocks = chain(5);
    run.handle.append_blocks(blocks.clone()).await.unwrap();
    let h = &run.handle;
    // Fill the caches.
    assert!(h.get_header_by_number(5).await.unwrap().is_some());
    assert!(h.get_tx_by_block_and_index(5, 0).await.unwrap().is_some());
    assert!(h.get_receipt_by_block_and_index(5, 0).await.unwrap().is_some());
    assert!(h.get_header_by_number(3).await.unwrap().is_some());

    h.truncate_above(3).await.unwrap();
    assert!(h.get_header_by_number(5).await.unwrap().is_none());
    assert!(h.get_tx_by_block_and_index(5, 0).await.unwrap().is_none());
    assert!(h.get_receipt_by_block_and_index(5, 0).await.unwrap().is_none());
    assert_eq!(h.get_header_by_number(3).await.unwrap().unwrap().hash(), blocks[2].header.hash());

    h.drain_above(2).await.unwrap();
    assert!(h.get_header_by_number(3).await.unwrap().is_none());
    run.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stream_setup_latest_is_bounded() {
    let backend = ParkedBackend::closed(MemColdBackend::new());
    let run = start(backend.clone(), ColdStorageConfig::default());
    let started = Instant::now();
    let open_ended = Filter::new().from_block(0);
    let stream = run.handle.stream_logs(open_ended.clone(), 10, Duration::from_secs(5)).await;
    assert!(
        matches!(stream, Err(ColdStorageError::DeadlineExceeded(d)) if d == Duration::from_millis(500)),
        "{stream:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(500));

    // The backend's own read timeout is the bound when it has one.
    let backend =
        ParkedBackend::closed(MemColdBackend::new()).with_read_timeout(Duration::from_millis(50));
    let run2 = start(backend, ColdStorageConfig::default());
    let stream = run2.handle.stream_logs(open_ended, 10, Duration::from_secs(5)).await;
    assert!(
        matches!(stream, Err(ColdStorageError::DeadlineExceeded(d)) if d == Duration::from_millis(50))
    );
    run2.stop().await;
    backend_release_and_stop(run).await;
}

async fn backend_release_and_stop(run: common::Running) {
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_stream_frees_its_slot() {
    let backend = ParkedBackend::open(MemColdBackend::new()).with_parked_streams();
    let run = start(backend.clone(), ColdStorageConfig::default().with_stream_cap(1));
    run.handle.append_blocks(chain(3)).await.unwrap();
    let filter = Filter::new().from_block(1).to_block(3);

    let first = run.handle.stream_logs(filter.clone(), 100, Duration::from_secs(30)).await.unwrap();
    assert_eq!(run.handle.health().streams_active, 1);
    drop(first);
    let h = run.handle.clone();
    until("the slot to free", || h.health().streams_active == 0).await;
    let second = guard(
        "a second stream",
        run.handle.stream_logs(filter.clone(), 100, Duration::from_secs(30)),
    )
    .await
    .unwrap();
    backend.release_streams();
    let logs = guard("the stream", second.collect::<Vec<_>>()).await;
    let expected = run.handle.get_logs(filter, 100).await.unwrap();
    assert_eq!(logs.len(), expected.len());
    run.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_stops_the_task() {
    let cancel = CancellationToken::new();
    let (task, handle) = ColdStorageTask::new(MemColdBackend::new(), cancel.clone());
    let mut task = tokio::spawn(task.run());
    handle.append_blocks(chain(1)).await.unwrap();

    // A read handle alone keeps the task alive.
    let reader = handle.reader();
    drop(handle);
    assert!(tokio::time::timeout(Duration::from_millis(50), &mut task).await.is_err());
    assert_eq!(reader.get_latest_block().await.unwrap(), Some(1));
    drop(reader);
    guard("run() after the last handle dropped", task).await.unwrap();
    assert!(!cancel.is_cancelled(), "the user's token is left alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_task_unrun_terminates_calls() {
    let (task, handle) = ColdStorageTask::new(MemColdBackend::new(), CancellationToken::new());
    drop(task);
    assert!(matches!(handle.get_latest_block().await, Err(ColdStorageError::TaskTerminated)));
    assert!(matches!(handle.append_blocks(chain(1)).await, Err(ColdStorageError::TaskTerminated)));
    assert_eq!(handle.dispatch_truncate_above(0), Err(DispatchError::TaskTerminated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_runs_the_task() {
    let cancel = CancellationToken::new();
    let handle = ColdStorageTask::spawn(MemColdBackend::new(), cancel.clone());
    handle.append_block(chain(1).remove(0)).await.unwrap();
    assert_eq!(handle.get_latest_block().await.unwrap(), Some(1));
    cancel.cancel();
    assert!(matches!(handle.get_latest_block().await, Err(ColdStorageError::TaskTerminated)));
}

#[test]
fn dispatch_error_converts_into_cold_storage_error() {
    let terminated: ColdStorageError = DispatchError::TaskTerminated.into();
    assert!(matches!(terminated, ColdStorageError::TaskTerminated));
    let full: ColdStorageError = DispatchError::Backpressure.into();
    match full {
        ColdStorageError::Backend(inner) => {
            assert_eq!(inner.downcast_ref::<DispatchError>(), Some(&DispatchError::Backpressure));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(cold_adapter::error_kind(&DispatchError::Backpressure.into()), "backpressure");
}

/// A dispatch that returned `Ok` was acknowledged: shutdown must not drop it,
/// whether it comes from the token or from the last handle going away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_dispatches_survive_shutdown() {
    use signet_cold::ColdStorageRead;
    for by_token in [true, false] {
        let backend = MemColdBackend::new();
        let cancel = CancellationToken::new();
        let (task, handle) = ColdStorageTask::new(backend.clone(), cancel.clone());
        let blocks = chain(7);
        // Queued before the writer ever runs, so all of it is still queued
        // when shutdown starts.
        handle.dispatch_append_blocks(blocks[..4].to_vec()).unwrap();
        for block in &blocks[4..] {
            handle.dispatch_append_blocks(vec![block.clone()]).unwrap();
        }
        let kept = if by_token {
            cancel.cancel();
            Some(handle)
        } else {
            drop(handle);
            None
        };
        guard("run() after shutdown", tokio::spawn(task.run())).await.unwrap();
        drop(kept);
        assert_eq!(
            backend.get_latest_block().await.unwrap(),
            Some(7),
            "acknowledged dispatches lost (shutdown by token: {by_token})"
        );
    }
}

/// A backend that overwrites an existing block number (MemColdBackend does)
/// must not leave the old header cached under that number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reappending_a_number_evicts_its_cached_header() {
    let cancel = CancellationToken::new();
    let handle = ColdStorageTask::spawn(MemColdBackend::new(), cancel.clone());
    handle.append_blocks(chain(5)).await.unwrap();
    let old = handle.get_header_by_number(3).await.unwrap().unwrap(); // now cached
    let other_branch =
        cold_testkit::chain::ChainSpec::with_seed(7).blocks(3, 3, 1, Default::default());
    let new_hash = other_branch[0].header.hash();
    assert_ne!(old.hash(), new_hash);
    handle.append_blocks(other_branch).await.unwrap();
    let now = handle.get_header_by_number(3).await.unwrap().unwrap();
    assert_eq!(now.hash(), new_hash, "stale cached header after re-append");
    cancel.cancel();
}

/// Found by review: at shutdown, an awaited write still queued was dropped
/// (its caller got `TaskTerminated`) while an acknowledged dispatch queued
/// after it still ran, so block 4 landed without block 3. Every queued
/// write now runs, in arrival order.
async fn writes_queued_at_shutdown_run_in_arrival_order<B>(inner: B, name: &str)
where
    B: signet_cold::ColdStorageBackend + Clone,
{
    use signet_cold::HeaderSpecifier;
    let backend = ParkedBackend::closed(inner.clone());
    let cancel = CancellationToken::new();
    let config = ColdStorageConfig::default().with_drain_deadline(None);
    let (task, handle) = ColdStorageTask::with_config(backend.clone(), cancel.clone(), config);
    let task = tokio::spawn(task.run());
    let blocks = chain(4);
    handle.append_blocks(blocks[..1].to_vec()).await.unwrap();
    // A parked read keeps the writer waiting for its drain.
    let reader = handle.clone();
    let read = tokio::spawn(async move { reader.get_transaction_count(1).await });
    backend.wait_parked(1).await;
    // Block 2: dispatched, taken off the queue by the writer, which waits.
    handle.dispatch_append_blocks(vec![blocks[1].clone()]).unwrap();
    let h = handle.clone();
    until("the writer waits for its drain", || h.health().drain_waiting.is_some()).await;
    // Block 3: awaited, queued. Block 4: dispatched behind it.
    let h = handle.clone();
    let b3 = blocks[2].clone();
    let awaited = tokio::spawn(async move { h.append_block(b3).await });
    let h = handle.clone();
    until("block 3 is queued", || h.health().write_queue_depth == 1).await;
    handle.dispatch_append_blocks(vec![blocks[3].clone()]).unwrap();

    cancel.cancel();
    backend.release_all();
    // Shutdown tells the read in flight to stop; released at the same time,
    // it may also have finished first.
    let read = read.await.unwrap();
    assert!(
        matches!(read, Ok(_) | Err(signet_cold::ColdStorageError::TaskTerminated)),
        "[{name}] the read in flight: {read:?}"
    );
    let awaited = guard("the awaited write", awaited).await.unwrap();
    assert!(awaited.is_ok(), "[{name}] queued awaited write ran: {awaited:?}");
    guard("run() after shutdown", task).await.unwrap();
    for number in 1..=4 {
        let header = inner.get_header(HeaderSpecifier::Number(number)).await.unwrap();
        assert!(header.is_some(), "[{name}] block {number} missing after shutdown");
    }
    assert_eq!(inner.get_latest_block().await.unwrap(), Some(4), "[{name}]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_at_shutdown_run_in_arrival_order_mem() {
    writes_queued_at_shutdown_run_in_arrival_order(MemColdBackend::new(), "mem").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_queued_at_shutdown_run_in_arrival_order_sqlite() {
    let store = common::sqlite().await;
    writes_queued_at_shutdown_run_in_arrival_order(store.backend.clone(), "sqlite").await;
}

/// A `get_logs` takes read permits by the blocks it spans once resolved (at
/// read cap 8, at most 2): four whole-store queries fill the cap, a 1-block
/// query takes 1, and open ends, tags and `blockHash` filters are charged by
/// the range they resolve to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_log_queries_take_permits_by_span() {
    let backend = ParkedBackend::closed(MemColdBackend::new());
    // 2 blocks per permit: the 3-block store read end to end takes 2.
    let config = ColdStorageConfig::default().with_read_cap(8).with_log_blocks_per_permit(2);
    assert_eq!(config.log_query_permits(Some(3)), 2);
    let run = start(backend.clone(), config);
    run.handle.append_blocks(chain(3)).await.unwrap();
    let wide = || Filter::new().from_block(0u64).to_block(999u64);

    let mut queries = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (h, f) = (run.handle.clone(), wide());
        queries.spawn(async move { h.get_logs(f, 100).await });
    }
    backend.wait_parked(4).await;
    until("the fifth query to queue", || run.handle.health().readers_queued == 1).await;
    assert_eq!(run.handle.health().reads_in_flight, 8, "four queries of 2 permits");
    assert_eq!(backend.parked(), 4);

    // A narrow query behind them waits its turn (request order), then takes 1.
    let (h, narrow) = (run.handle.clone(), Filter::new().from_block(2u64).to_block(2u64));
    queries.spawn(async move { h.get_logs(narrow, 100).await });
    until("the narrow query to queue", || run.handle.health().readers_queued == 2).await;
    backend.release(4);
    backend.wait_parked(2).await;
    // The four released queries give their permits back as they finish;
    // then one wide (2) and the narrow one (1) hold the rest.
    until("one wide and one narrow query in flight", || {
        let health = run.handle.health();
        (health.readers_queued, health.reads_in_flight) == (0, 3)
    })
    .await;
    assert_eq!(backend.parked(), 2);
    backend.release_all();
    while let Some(done) = queries.join_next().await {
        done.unwrap().unwrap();
    }

    // Charged as the handle resolves the filter, cut at the tip (3): a
    // missing bound or a tag is the tip (1 block), a `blockHash` 1 block,
    // an explicit 0..=1000 the 4 stored blocks (2 permits at 2 blocks
    // each). Resolving a tag or a hash is a backend call of its own (the
    // tip, the header) under the same permits, before the query itself.
    let parked = ParkedBackend::closed(MemColdBackend::new());
    let config = ColdStorageConfig::default().with_read_cap(8).with_log_blocks_per_permit(2);
    let run2 = start(parked.clone(), config);
    let blocks = chain(3);
    let hash = blocks[1].header.hash();
    run2.handle.append_blocks(blocks).await.unwrap();
    for (filter, permits, calls) in [
        (Filter::new(), 1, 2),
        (Filter::new().from_block(alloy::rpc::types::BlockNumberOrTag::Latest), 1, 2),
        (Filter::new().from_block(0u64), 2, 2),
        (Filter::new().at_block_hash(hash), 1, 2),
        (Filter::new().from_block(0u64).to_block(1_000u64), 2, 1),
    ] {
        let h = run2.handle.clone();
        let query = tokio::spawn(async move { h.get_logs(filter, 1_000).await });
        for _ in 0..calls {
            parked.wait_parked(1).await;
            assert_eq!(run2.handle.health().reads_in_flight, permits);
            parked.release(1);
        }
        query.await.unwrap().unwrap();
    }
    run2.stop().await;
    run.stop().await;
}
