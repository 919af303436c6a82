//! `cold_adapter::v010::ColdStorage` against the behaviours signet-cold
//! 0.10's own handle tests pin (`concurrency.rs`, `drain_barrier.rs`,
//! `stream_isolation.rs`, `shutdown.rs`, `stream_setup_timeout.rs`,
//! `handle_shape.rs`), plus its `wait_shutdown` rule and a check that code
//! written for 0.10 compiles and answers the same with only the import
//! changed.
//!
//! Where 0.10's tests sleep to let things settle, these wait for a state
//! they can see (calls held at a gate, `health()`), poll futures by hand,
//! or run on tokio's paused clock. Where ours differs from 0.10 on purpose
//! (see the README's table), the test says so and asserts ours.

mod common;

use cold_adapter::{ColdStorageConfig, v010::ColdStorage};
use common::{
    ParkedBackend, chain,
    gated::{Gate, GatedBackend},
    guard, join_all, until,
};
use futures_util::{FutureExt, StreamExt};
use signet_cold::{
    ColdResult, ColdStorageError, ColdStorageRead, ErasedBackend, Filter, HeaderSpecifier,
    conformance::make_test_block, mem::MemColdBackend,
};
use std::{future::Future, time::Duration};
use tokio::{task::JoinSet, time::Instant};
use tokio_util::sync::CancellationToken;

/// Drain deadline off: only the test decides when held reads finish.
fn patient() -> ColdStorageConfig {
    ColdStorageConfig::default().with_drain_deadline(None)
}

/// A handle over a gated in-memory store. `mem` is the same store, read
/// directly, past the gate and the handle.
struct Fixture {
    cs: ColdStorage<GatedBackend<MemColdBackend>>,
    gate: Gate,
    mem: MemColdBackend,
    cancel: CancellationToken,
}

fn gated(config: ColdStorageConfig) -> Fixture {
    let mem = MemColdBackend::new();
    let (backend, gate) = GatedBackend::new(mem.clone());
    let cancel = CancellationToken::new();
    let cs = ColdStorage::with_config(backend, cancel.clone(), config);
    Fixture { cs, gate, mem, cancel }
}

/// Polls `fut` once: whether it is still pending.
fn pending<F: Future + Unpin>(fut: &mut F) -> bool {
    fut.now_or_never().is_none()
}

/// `n` uncached reads (`get_transaction_count(1)`), each in a task.
fn spawn_reads<B: signet_cold::ColdStorageBackend>(
    cs: &ColdStorage<B>,
    n: usize,
) -> JoinSet<ColdResult<u64>> {
    let mut reads = JoinSet::new();
    for _ in 0..n {
        let cs = cs.clone();
        reads.spawn(async move { cs.get_transaction_count(1).await });
    }
    reads
}

fn log_count(blocks: &[signet_cold::BlockData]) -> usize {
    blocks.iter().flat_map(|b| &b.receipts).map(|r| r.inner.logs.len()).sum()
}

// ---------------------------------------------------------------------------
// Handle shape (0.10: handle_shape.rs)
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_shape() {
    fn shape<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    shape::<ColdStorage>();
    shape::<ColdStorage<MemColdBackend>>();
    shape::<ColdStorage<ErasedBackend>>();
    // The parameter defaults to `ErasedBackend`, and `new_erased` returns that.
    fn erased(cs: ColdStorage) -> ColdStorage<ErasedBackend> {
        cs
    }
    fn send<F: Future + Send>(_: &F) {}

    let cancel = CancellationToken::new();
    let cs: ColdStorage = erased(ColdStorage::new_erased(MemColdBackend::new(), cancel.clone()));
    // Every future is `Send`, so node code can spawn them (futures never
    // polled queue nothing).
    send(&cs.get_header(HeaderSpecifier::Number(1)));
    send(&cs.get_tx_by_hash(Default::default()));
    send(&cs.get_receipts_in_block(1));
    send(&cs.get_zenith_headers_in_range(1, 2));
    send(&cs.get_logs(Filter::new(), 1));
    send(&cs.stream_logs(Filter::new(), 1, Duration::from_secs(1)));
    send(&cs.get_latest_block());
    send(&cs.append_blocks(Vec::new()));
    send(&cs.drain_above(0));
    send(&cs.wait_shutdown());

    // Clones share one task (0.10's handle_is_clone_cheap, with data).
    let typed: ColdStorage<MemColdBackend> =
        ColdStorage::new(MemColdBackend::new(), cancel.clone());
    let clone = typed.clone();
    typed.append_blocks(chain(2)).await.unwrap();
    assert_eq!(clone.get_latest_block().await.unwrap(), Some(2));
    clone.truncate_above(1).await.unwrap();
    assert_eq!(typed.get_latest_block().await.unwrap(), Some(1));
    assert_eq!(cs.get_latest_block().await.unwrap(), None, "another task, another store");
    assert!(format!("{typed:?}").starts_with("ColdStorage {"));

    cancel.cancel();
    guard("wait_shutdown", typed.wait_shutdown()).await;
    guard("wait_shutdown", cs.wait_shutdown()).await;
}

#[test]
fn new_outside_a_runtime_panics_as_in_0_10() {
    let theirs = std::panic::catch_unwind(|| {
        signet_cold::ColdStorage::new(MemColdBackend::new(), CancellationToken::new())
    });
    let ours = std::panic::catch_unwind(|| {
        ColdStorage::new_erased(MemColdBackend::new(), CancellationToken::new())
    });
    assert!(theirs.is_err() && ours.is_err());
}

/// Code as a signet-cold 0.10 user writes it. Expanded twice below, once
/// per import; nothing else differs.
macro_rules! written_for_signet_cold_0_10 {
    ($($import:tt)*) => {
        $($import)*
        use futures_util::StreamExt;
        use signet_cold::{
            BlockData, ColdResult, ColdStorageBackend, Filter, HeaderSpecifier, ReceiptSpecifier,
            SignetEventsSpecifier, TransactionSpecifier, ZenithHeaderSpecifier,
            mem::MemColdBackend,
        };
        use std::{fmt::Debug, time::Duration};
        use tokio_util::sync::CancellationToken;

        /// Held the way signet-storage holds it: no type parameter.
        pub(crate) struct Storage {
            pub(crate) cold: ColdStorage,
        }

        impl Storage {
            pub(crate) fn open(cancel: CancellationToken) -> Self {
                Self { cold: ColdStorage::new_erased(MemColdBackend::new(), cancel) }
            }
        }

        pub(crate) fn open_typed<B: ColdStorageBackend>(
            backend: B,
            cancel: CancellationToken,
        ) -> ColdStorage<B> {
            ColdStorage::new(backend, cancel)
        }

        fn see(seen: &mut Vec<String>, what: &str, value: impl Debug) {
            seen.push(format!("{what}: {value:?}"));
        }

        /// Every method, over `blocks` (numbered from 1), each answer as text.
        pub(crate) async fn exercise<B: ColdStorageBackend>(
            cold: &ColdStorage<B>,
            blocks: &[BlockData],
        ) -> ColdResult<Vec<String>> {
            let mut seen = Vec::new();
            let s = &mut seen;
            let last = blocks.len() as u64;
            see(s, "empty", cold.get_latest_block().await?);
            cold.append_block(blocks[0].clone()).await?;
            cold.append_blocks(blocks[1..].to_vec()).await?;
            see(s, "latest", cold.get_latest_block().await?);
            for block in blocks {
                let (n, hash) = (block.block_number(), block.header.hash());
                see(s, "by number", cold.get_header_by_number(n).await?);
                see(s, "header", cold.get_header(HeaderSpecifier::Number(n)).await?);
                see(s, "by hash", cold.get_header_by_hash(hash).await?);
                see(s, "tx count", cold.get_transaction_count(n).await?);
                see(s, "txs", cold.get_transactions_in_block(n).await?);
                see(s, "receipts", cold.get_receipts_in_block(n).await?);
                for (i, tx) in block.transactions.iter().enumerate() {
                    let (i, tx) = (i as u64, *tx.tx_hash());
                    see(s, "tx", cold.get_tx_by_block_and_index(n, i).await?);
                    see(s, "tx", cold.get_tx_by_hash(tx).await?);
                    see(s, "tx", cold.get_tx_by_block_hash_and_index(hash, i).await?);
                    see(s, "tx", cold.get_transaction(TransactionSpecifier::Hash(tx)).await?);
                    see(s, "receipt", cold.get_receipt_by_block_and_index(n, i).await?);
                    see(s, "receipt", cold.get_receipt_by_tx_hash(tx).await?);
                    see(s, "receipt", cold.get_receipt(ReceiptSpecifier::TxHash(tx)).await?);
                }
                see(s, "events", cold.get_signet_events_in_block(n).await?);
                see(s, "events", cold.get_signet_events(SignetEventsSpecifier::Block(n)).await?);
                see(s, "zenith", cold.get_zenith_header(n).await?);
                see(s, "zenith", cold.get_zenith_headers(ZenithHeaderSpecifier::Number(n)).await?);
            }
            see(s, "events", cold.get_signet_events_in_range(1, last).await?);
            see(s, "zenith", cold.get_zenith_headers_in_range(1, last).await?);
            let specs = vec![HeaderSpecifier::Number(2), HeaderSpecifier::Number(99)];
            see(s, "headers", cold.get_headers(specs).await?);

            // Explicit ranges of stored blocks: read alike by both (ours
            // resolves other filters its own way; see the README).
            let filter = Filter::new().from_block(1).to_block(last);
            let logs = cold.get_logs(filter.clone(), 10_000).await?;
            let streamed: Vec<_> = cold
                .stream_logs(filter, 10_000, Duration::from_secs(10))
                .await?
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<ColdResult<_>>()?;
            assert_eq!(logs, streamed);
            see(s, "logs", logs);

            let clone = cold.clone();
            clone.truncate_above(last - 1).await?;
            see(s, "truncated", cold.get_latest_block().await?);
            see(s, "gone", cold.get_header_by_number(last).await?);
            see(s, "drained", clone.drain_above(last - 3).await?);
            see(s, "latest", cold.get_latest_block().await?);
            cold.wait_shutdown().await; // no cancel: every call above is done
            see(s, "after wait", cold.get_latest_block().await?);
            Ok(seen)
        }
    };
}

mod upstream {
    written_for_signet_cold_0_10!(
        use signet_cold::ColdStorage;
    );
}

mod ours {
    written_for_signet_cold_0_10!(
        use cold_adapter::v010::ColdStorage;
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_written_for_0_10_runs_unchanged_but_the_import() {
    let blocks = chain(4);
    assert!(log_count(&blocks) > 0, "the fixture has logs to compare");
    let cancel = CancellationToken::new();
    let theirs = upstream::Storage::open(cancel.clone());
    let mine = ours::Storage::open(cancel.clone());
    let expected = guard("0.10's handle", upstream::exercise(&theirs.cold, &blocks)).await.unwrap();
    let got = guard("ours", ours::exercise(&mine.cold, &blocks)).await.unwrap();
    assert_eq!(got.len(), expected.len());
    for (line, want) in got.iter().zip(&expected) {
        assert_eq!(line, want);
    }
    // `ColdStorage<B>` with a concrete backend, through `new`.
    let theirs_typed = upstream::open_typed(MemColdBackend::new(), cancel.clone());
    let typed = ours::open_typed(MemColdBackend::new(), cancel.clone());
    let expected =
        guard("0.10's, typed", upstream::exercise(&theirs_typed, &blocks)).await.unwrap();
    let again = guard("ours, typed", ours::exercise(&typed, &blocks)).await.unwrap();
    assert_eq!(again, expected);

    cancel.cancel();
    guard("0.10's wait_shutdown", theirs.cold.wait_shutdown()).await;
    guard("our wait_shutdown", mine.cold.wait_shutdown()).await;
    guard("0.10's wait_shutdown", theirs_typed.wait_shutdown()).await;
    guard("our wait_shutdown", typed.wait_shutdown()).await;
}

// ---------------------------------------------------------------------------
// Concurrency (0.10: concurrency.rs)
// ---------------------------------------------------------------------------

/// 0.10 #1: 256 reads on 64 permits all complete. Here the cap is really
/// reached: 64 reads are held inside the backend and 192 queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_above_the_cap_complete() {
    let f = gated(patient());
    let blocks = chain(4);
    f.cs.append_blocks(blocks.clone()).await.unwrap();
    f.gate.hold_reads();
    let mut reads = JoinSet::new();
    for i in 0..256u64 {
        let cs = f.cs.clone();
        // Transaction counts are never cached: each takes a permit.
        reads.spawn(async move { (i % 4, cs.get_transaction_count(i % 4 + 1).await) });
    }
    f.gate.wait_for("64 reads held", |c| c.reads_held == 64).await;
    let cs = f.cs.clone();
    until("192 reads queued", || cs.health().readers_queued == 192).await;
    assert_eq!(f.gate.counts().reads, 64, "no more than the cap inside the backend");
    f.gate.open_reads();
    for (i, count) in join_all("256 reads", reads).await {
        assert_eq!(count.unwrap(), blocks[i as usize].transactions.len() as u64);
    }
}

/// 0.10 #2: a write amid reads that fill the cap, with more reads queued
/// before and after it, completes, and so does every read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_amid_saturating_reads_makes_progress() {
    let f = gated(patient());
    f.cs.append_blocks(chain(4)).await.unwrap();
    f.gate.hold_reads();
    let mut reads = JoinSet::new();
    for i in 0..128u64 {
        let cs = f.cs.clone();
        reads.spawn(async move { cs.get_transaction_count(i % 4 + 1).await });
    }
    f.gate.wait_for("64 reads held", |c| c.reads_held == 64).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.truncate_above(2).await });
    let cs = f.cs.clone();
    until("the write's drain pending", || cs.health().drain_waiting.is_some()).await;
    for i in 0..128u64 {
        let cs = f.cs.clone();
        reads.spawn(async move { cs.get_transaction_count(i % 4 + 1).await });
    }
    let cs = f.cs.clone();
    until("192 reads queued", || cs.health().readers_queued == 192).await;
    f.gate.open_reads();
    guard("the write", write).await.unwrap().unwrap();
    for count in join_all("256 reads", reads).await {
        count.unwrap();
    }
    assert_eq!(f.cs.get_latest_block().await.unwrap(), Some(2));
    assert_eq!(f.gate.counts().overlaps, 0, "no read inside the backend while a write ran");
}

/// 0.10 #3: a write queued behind reads that fill the cap is served before
/// the reads queued after it. Proved by data: every later read sees the
/// block the write appends.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_is_served_before_reads_queued_after_it() {
    let f = gated(patient());
    f.gate.hold_reads();
    let first = spawn_reads(&f.cs, 64);
    f.gate.wait_for("64 reads held", |c| c.reads_held == 64).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.append_block(make_test_block(1)).await });
    let cs = f.cs.clone();
    until("the write's drain pending", || cs.health().drain_waiting.is_some()).await;
    let mut later = JoinSet::new();
    for _ in 0..64 {
        let cs = f.cs.clone();
        // Not held by the gate: once they get a permit they answer at once.
        later.spawn(async move { cs.get_latest_block().await });
    }
    let cs = f.cs.clone();
    until("64 later reads queued", || cs.health().readers_queued == 64).await;
    f.gate.open_reads();
    guard("the write", write).await.unwrap().unwrap();
    for latest in join_all("later reads", later).await {
        assert_eq!(latest.unwrap(), Some(1), "a read queued after the write ran before it");
    }
    for count in join_all("first reads", first).await {
        assert_eq!(count.unwrap(), 0, "a read in flight before the write saw it");
    }
}

/// 0.10 #4: cancelling while reads fill the cap and one queues. New calls
/// fail on their first poll. Ours also stops the reads in flight (0.10 lets
/// them run until the backend returns): all 65 fail with `TaskTerminated`
/// while the backend still holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_under_read_backpressure_fails_every_read_fast() {
    let f = gated(patient());
    f.gate.hold_reads();
    let reads = spawn_reads(&f.cs, 65);
    f.gate.wait_for("64 reads held", |c| c.reads_held == 64).await;
    let cs = f.cs.clone();
    until("one read queued", || cs.health().readers_queued == 1).await;

    f.cancel.cancel();
    let now = f.cs.get_transaction_count(1).now_or_never();
    assert!(matches!(now, Some(Err(ColdStorageError::TaskTerminated))), "{now:?}");
    guard("wait_shutdown", f.cs.wait_shutdown()).await;
    assert_eq!(f.gate.counts().reads, 0, "wait_shutdown returned with backend reads in flight");
    for read in join_all("65 reads after cancel", reads).await {
        assert!(matches!(read, Err(ColdStorageError::TaskTerminated)), "{read:?}");
    }
}

/// 0.10 #5: cancelling while a write waits for its drain. 0.10 fails the
/// write with `TaskTerminated` and does not apply it. Ours had queued it,
/// so it runs once the reads in flight have stopped, and returns `Ok`:
/// a queued write is never dropped at shutdown (within the grace period).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_during_a_write_drain_still_runs_the_queued_write() {
    let f = gated(patient());
    f.cs.append_blocks(chain(3)).await.unwrap();
    f.gate.hold_reads();
    let reads = spawn_reads(&f.cs, 64);
    f.gate.wait_for("64 reads held", |c| c.reads_held == 64).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.truncate_above(1).await });
    let cs = f.cs.clone();
    until("the write's drain pending", || cs.health().drain_waiting.is_some()).await;

    f.cancel.cancel();
    guard("the write after cancel", write).await.unwrap().unwrap();
    assert_eq!(f.mem.get_latest_block().await.unwrap(), Some(1), "the write was applied");
    for read in join_all("64 reads after cancel", reads).await {
        assert!(matches!(read, Err(ColdStorageError::TaskTerminated)), "{read:?}");
    }
    guard("wait_shutdown", f.cs.wait_shutdown()).await;
    assert_eq!(f.gate.counts().overlaps, 0);
}

/// 0.10 #6: a stream setup waiting for a slot and dropped gives its place
/// back. Ours also frees a slot as soon as its stream is dropped (0.10's
/// producer keeps it until it ends), so the 8 streams are kept alive here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropped_stream_setup_gives_its_place_back() {
    let backend = ParkedBackend::open(MemColdBackend::new()).with_parked_streams();
    let cancel = CancellationToken::new();
    let cs = ColdStorage::new(backend.clone(), cancel.clone());
    let blocks = chain(3);
    cs.append_blocks(blocks.clone()).await.unwrap();
    let filter = Filter::new().from_block(1).to_block(3);
    let deadline = Duration::from_secs(30);

    let mut streams = Vec::new();
    for _ in 0..8 {
        streams.push(guard("a stream", cs.stream_logs(filter.clone(), 1000, deadline)).await);
    }
    assert_eq!(cs.health().streams_active, 8);
    let mut ninth = Box::pin(cs.stream_logs(filter.clone(), 1000, deadline));
    assert!(pending(&mut ninth), "a ninth stream started above the cap of 8");
    drop(ninth);
    assert_eq!(cs.health().streams_active, 8);

    drop(streams.pop());
    let h = cs.clone();
    until("the dropped stream's slot to free", || h.health().streams_active == 7).await;
    // Had the dropped setup kept its place, it would take this slot first.
    let tenth = guard("a stream in the freed slot", cs.stream_logs(filter.clone(), 1000, deadline))
        .await
        .unwrap();
    backend.release_streams();
    let logs: Vec<_> = guard("the stream", tenth.collect::<Vec<_>>()).await;
    assert_eq!(logs.len(), log_count(&blocks));
    cancel.cancel();
    guard("wait_shutdown", cs.wait_shutdown()).await;
}

/// 0.10 #7: a truncate evicts cached entries above it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncate_evicts_cached_headers() {
    let cancel = CancellationToken::new();
    let cs = ColdStorage::new(MemColdBackend::new(), cancel.clone());
    for n in 0..=20 {
        cs.append_block(make_test_block(n)).await.unwrap();
    }
    let reader = cs.clone();
    assert!(reader.get_header(HeaderSpecifier::Number(10)).await.unwrap().is_some());
    assert!(cs.health().reads_in_flight == 0);
    cs.truncate_above(5).await.unwrap();
    assert!(reader.get_header(HeaderSpecifier::Number(10)).await.unwrap().is_none());
    assert!(cs.get_header_by_number(5).await.unwrap().is_some());
    cancel.cancel();
}

// ---------------------------------------------------------------------------
// Drain barrier (0.10: drain_barrier.rs)
// ---------------------------------------------------------------------------

/// A write waits for the reads in flight, and no read is inside the
/// backend while it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn write_waits_for_reads_in_flight() {
    let f = gated(patient());
    f.cs.append_blocks(chain(3)).await.unwrap();
    let writes_before = f.gate.counts().writes_done;
    f.gate.hold_reads();
    let mut reads = JoinSet::new();
    for i in 0..16u64 {
        let cs = f.cs.clone();
        reads.spawn(async move { cs.get_transaction_count(i % 3 + 1).await });
    }
    f.gate.wait_for("16 reads held", |c| c.reads_held == 16).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.truncate_above(1).await });
    let cs = f.cs.clone();
    until("the write to wait for its drain, or finish", || {
        cs.health().drain_waiting.is_some() || write.is_finished()
    })
    .await;
    assert!(!write.is_finished(), "the write finished with 16 reads in flight");
    let counts = f.gate.counts();
    assert_eq!((counts.writes_running, counts.writes_done), (0, writes_before));
    assert_eq!(f.mem.get_latest_block().await.unwrap(), Some(3));

    f.gate.open_reads();
    guard("the write", write).await.unwrap().unwrap();
    assert_eq!(f.mem.get_latest_block().await.unwrap(), Some(1));
    for count in join_all("16 reads", reads).await {
        count.unwrap();
    }
    assert_eq!(f.gate.counts().overlaps, 0);
}

// ---------------------------------------------------------------------------
// Stream isolation (0.10: stream_isolation.rs)
// ---------------------------------------------------------------------------

/// Streams take no read permit and are not drained: with every permit held
/// and a write's drain pending, a stream still sets up and produces.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streams_run_beside_a_full_read_pool_and_a_pending_drain() {
    let f = gated(patient());
    let blocks = chain(3);
    f.cs.append_blocks(blocks.clone()).await.unwrap();
    f.gate.hold_reads();
    let reads = spawn_reads(&f.cs, 64);
    f.gate.wait_for("64 reads held", |c| c.reads_held == 64).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.truncate_above(0).await });
    let cs = f.cs.clone();
    until("the write's drain pending", || cs.health().drain_waiting.is_some()).await;

    // Explicit and open-ended ranges (ours resolves both against the tip).
    for filter in [Filter::new().from_block(1).to_block(3), Filter::new().from_block(1)] {
        let stream = guard(
            "stream setup beside a full read pool",
            f.cs.stream_logs(filter, 1000, Duration::from_secs(10)),
        )
        .await
        .unwrap();
        let logs: Vec<_> = guard("the stream", stream.collect::<Vec<_>>()).await;
        assert_eq!(logs.len(), log_count(&blocks));
        assert!(logs.iter().all(Result::is_ok));
    }
    let health = f.cs.health();
    assert_eq!(health.reads_in_flight, 64);
    assert!(health.drain_waiting.is_some());
    assert!(!write.is_finished());

    f.gate.open_reads();
    guard("the write", write).await.unwrap().unwrap();
    join_all("64 reads", reads).await;
}

// ---------------------------------------------------------------------------
// Stream setup timeout (0.10: stream_setup_timeout.rs)
// ---------------------------------------------------------------------------

/// Stream setup looks the tip up within the backend's `read_timeout`
/// (500 ms when it has none), and fails with `DeadlineExceeded` past it.
#[tokio::test(start_paused = true)]
async fn stream_setup_fails_fast_when_the_tip_lookup_hangs() {
    let cancel = CancellationToken::new();
    for (read_timeout, bound) in [
        (Some(Duration::from_millis(50)), Duration::from_millis(50)),
        (None, Duration::from_millis(500)),
    ] {
        let mut backend = ParkedBackend::closed(MemColdBackend::new());
        if let Some(t) = read_timeout {
            backend = backend.with_read_timeout(t);
        }
        let cs: ColdStorage = ColdStorage::new_erased(backend, cancel.clone());
        for filter in [Filter::new().from_block(0), Filter::new().from_block(0).to_block(10)] {
            let started = Instant::now();
            let setup =
                guard("stream setup", cs.stream_logs(filter, 1000, Duration::from_secs(5))).await;
            assert!(
                matches!(setup, Err(ColdStorageError::DeadlineExceeded(d)) if d == bound),
                "{setup:?}"
            );
            assert_eq!(started.elapsed(), bound);
        }
    }
    cancel.cancel();
}

// ---------------------------------------------------------------------------
// Shutdown (0.10: shutdown.rs) and wait_shutdown
// ---------------------------------------------------------------------------

/// After cancel, every call fails with `TaskTerminated` on its first poll
/// (0.10 needs its coordinator task to run first), cached reads included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_after_cancel() {
    let cancel = CancellationToken::new();
    let cs = ColdStorage::new(MemColdBackend::new(), cancel.clone());
    cs.append_blocks(chain(1)).await.unwrap();
    assert!(cs.get_header_by_number(1).await.unwrap().is_some()); // now cached
    cancel.cancel();
    let terminated = |what: &str, r: Option<Result<(), ColdStorageError>>| {
        assert!(matches!(r, Some(Err(ColdStorageError::TaskTerminated))), "{what}: {r:?}");
    };
    terminated("read", cs.get_latest_block().now_or_never().map(|r| r.map(drop)));
    terminated("cached read", cs.get_header_by_number(1).now_or_never().map(|r| r.map(drop)));
    terminated("get_logs", cs.get_logs(Filter::new(), 10).now_or_never().map(|r| r.map(drop)));
    let stream = cs.stream_logs(Filter::new(), 10, Duration::from_secs(1)).now_or_never();
    terminated("stream_logs", stream.map(|r| r.map(drop)));
    terminated("write", cs.truncate_above(0).now_or_never());
    terminated("append", cs.append_blocks(chain(2)).now_or_never());
    guard("wait_shutdown", cs.wait_shutdown()).await;
}

/// Dropping every clone shuts the task down and frees the backend, as in
/// 0.10; one clone left keeps it running. The user's token is left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_clone_shuts_the_task_down() {
    let f = gated(ColdStorageConfig::default());
    let clone = f.cs.clone();
    f.cs.append_blocks(chain(1)).await.unwrap();
    drop(f.cs);
    assert_eq!(clone.get_latest_block().await.unwrap(), Some(1));
    clone.append_blocks(chain(2)[1..].to_vec()).await.unwrap();
    assert!(!f.gate.is_dropped());
    drop(clone);
    guard("the backend dropped after the last clone", f.gate.dropped()).await;
    assert!(!f.cancel.is_cancelled());
    assert_eq!(f.mem.get_latest_block().await.unwrap(), Some(2));
}

/// Once shutdown has started, `wait_shutdown` waits for the task's `run`
/// to return: here, for a write queued before the cancel. Its read stopped
/// and the gate closed, the write runs without a drain (nothing in the gate
/// to wait for) and is held in the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_shutdown_after_cancel_waits_for_queued_writes() {
    let f = gated(patient());
    f.cs.append_blocks(chain(2)).await.unwrap();
    let writes_before = f.gate.counts().writes_done;
    f.gate.hold_reads();
    f.gate.hold_writes();
    let cs = f.cs.clone();
    let read = tokio::spawn(async move { cs.get_transaction_count(1).await });
    f.gate.wait_for("the read held", |c| c.reads_held == 1).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.truncate_above(1).await });
    let cs = f.cs.clone();
    until("the write's drain pending", move || cs.health().drain_waiting.is_some()).await;
    f.cancel.cancel();
    f.gate
        .wait_for("the read stopped, the write held", |c| c.reads == 0 && c.writes_held == 1)
        .await;

    let mut wait = Box::pin(f.cs.wait_shutdown());
    assert!(pending(&mut wait), "wait_shutdown returned with a write in flight");
    f.gate.open_writes();
    guard("wait_shutdown", wait).await;
    assert_eq!(f.gate.counts().writes_done, writes_before + 1, "returned before the write ran");
    assert_eq!(f.mem.get_latest_block().await.unwrap(), Some(1));
    guard("the write", write).await.unwrap().unwrap();
    let read = read.await.unwrap();
    assert!(matches!(read, Err(ColdStorageError::TaskTerminated)), "{read:?}");

    // Again, from another clone: at once.
    let clone = f.cs.clone();
    assert!(!pending(&mut Box::pin(clone.wait_shutdown())), "a second wait_shutdown waited");
    assert!(f.cs.health().closed);
    drop((f.cs, clone));
    guard("the backend dropped", f.gate.dropped()).await;
}

/// A write that never returns holds `wait_shutdown` only until the grace
/// period ends; the write is abandoned (`TaskTerminated`), a read in
/// flight stopped.
#[tokio::test(start_paused = true)]
async fn wait_shutdown_ends_with_the_grace_period() {
    let grace = Duration::from_secs(2);
    let f = gated(patient().with_shutdown_grace(grace));
    f.cs.append_blocks(chain(2)).await.unwrap();
    f.gate.hold_reads();
    f.gate.hold_writes();
    let cs = f.cs.clone();
    let read = tokio::spawn(async move { cs.get_transaction_count(1).await });
    f.gate.wait_for("the read held", |c| c.reads_held == 1).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.truncate_above(1).await });
    let cs = f.cs.clone();
    until("the write's drain pending", || cs.health().drain_waiting.is_some()).await;

    let started = Instant::now();
    f.cancel.cancel();
    guard("wait_shutdown", f.cs.wait_shutdown()).await;
    let waited = started.elapsed();
    assert!(waited >= grace && waited < grace + Duration::from_secs(1), "{waited:?}");
    let write = write.await.unwrap();
    assert!(matches!(write, Err(ColdStorageError::TaskTerminated)), "{write:?}");
    let read = read.await.unwrap();
    assert!(matches!(read, Err(ColdStorageError::TaskTerminated)), "{read:?}");
    let counts = f.gate.counts();
    assert_eq!((counts.reads, counts.writes_held, counts.writes_running), (0, 0, 0));
    assert_eq!(f.mem.get_latest_block().await.unwrap(), Some(2), "the truncate never ran");
}

/// Without cancel, `wait_shutdown` is a barrier: it returns once the reads
/// in flight and the writes queued before it are done, and shuts nothing
/// down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_shutdown_without_cancel_is_a_barrier() {
    let f = gated(patient());
    f.cs.append_blocks(chain(2)).await.unwrap();
    let writes_before = f.gate.counts().writes_done;
    f.gate.hold_reads();
    f.gate.hold_writes();
    let mut reads = JoinSet::new();
    for n in 1..=2 {
        let cs = f.cs.clone();
        reads.spawn(async move { cs.get_transaction_count(n).await });
    }
    f.gate.wait_for("2 reads held", |c| c.reads_held == 2).await;
    let cs = f.cs.clone();
    let write = tokio::spawn(async move { cs.truncate_above(1).await });
    let cs = f.cs.clone();
    until("the write's drain pending", || cs.health().drain_waiting.is_some()).await;

    let mut wait = Box::pin(f.cs.wait_shutdown());
    assert!(pending(&mut wait), "returned with reads in flight");
    f.gate.open_reads();
    let counts = f.gate.wait_for("the write held", |c| c.writes_held == 1).await;
    assert_eq!(counts.reads, 0);
    assert!(pending(&mut wait), "returned before a write queued before it had run");
    f.gate.open_writes();
    guard("wait_shutdown", wait).await;
    assert_eq!(f.mem.get_latest_block().await.unwrap(), Some(1), "the write had run");
    let counts = f.gate.counts();
    assert_eq!(counts.reads, 0);
    // The truncate, and the barrier's own empty write.
    assert_eq!(counts.writes_done, writes_before + 2);
    assert_eq!(counts.overlaps, 0);
    guard("the write", write).await.unwrap().unwrap();
    for count in join_all("2 reads", reads).await {
        count.unwrap();
    }

    // Nothing was shut down.
    assert!(!f.cs.health().closed);
    f.cs.append_blocks(chain(2)[1..].to_vec()).await.unwrap();
    assert_eq!(f.cs.get_latest_block().await.unwrap(), Some(2));
    f.cancel.cancel();
    guard("wait_shutdown", f.cs.wait_shutdown()).await;
}

/// `wait_shutdown` never waits forever by itself: without cancel, a read
/// that never returns holds it until the drain deadline (5 s) stops that
/// read. (0.10's waits for the read.)
#[tokio::test(start_paused = true)]
async fn wait_shutdown_is_bounded_by_the_drain_deadline() {
    let f = gated(ColdStorageConfig::default());
    f.cs.append_blocks(chain(1)).await.unwrap();
    f.gate.hold_reads();
    let cs = f.cs.clone();
    let read = tokio::spawn(async move { cs.get_transaction_count(1).await });
    f.gate.wait_for("the read held", |c| c.reads_held == 1).await;

    let started = Instant::now();
    guard("wait_shutdown", f.cs.wait_shutdown()).await;
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let read = read.await.unwrap();
    assert!(
        matches!(read, Err(ColdStorageError::DeadlineExceeded(d)) if d == Duration::from_secs(5)),
        "{read:?}"
    );
    assert!(!f.cs.health().closed);
    f.cancel.cancel();
}
