//! The cases of `shared/cases/cold-faults.md` (F01–F10): the task under a
//! backend that fails, hangs or lies, and callers that give up or stop
//! polling. F07 (Postgres connections killed) is in `postgres.rs`.

mod common;

use cold_adapter::{
    Backoff, ColdStorageConfig, ColdStorageHandle, ColdStorageTask, DispatchError, WritesHalted,
    metrics as names,
};
use common::{
    ParkedBackend, chain,
    faulty::{FaultyBackend, WriteFault},
    guard, mem, sqlite, until,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use signet_cold::{
    BlockData, ColdStorageBackend, ColdStorageError, ColdStorageRead, Filter, HeaderSpecifier,
};
use std::{
    future::Future,
    sync::{Arc, Mutex, OnceLock},
    task::Poll,
    time::Duration,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Metrics and log lines of this test binary, recorded from its start.
struct Observed {
    snapshotter: Snapshotter,
    /// Counter totals: a snapshot resets the recorder's counters, and tests
    /// run in parallel, so every snapshot is added up here.
    counters: Mutex<Vec<(String, String, u64)>>,
    logs: Arc<Mutex<Vec<u8>>>,
}

#[derive(Clone)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn observed() -> &'static Observed {
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("first recorder of this binary");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = LogSink(Arc::clone(&logs));
        tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        Observed { snapshotter, counters: Mutex::default(), logs }
    })
}

/// The sum of counter `name` over all its labels whose `op` is `op`.
fn counter(name: &str, op: &str) -> u64 {
    let observed = observed();
    let mut totals = observed.counters.lock().unwrap();
    for (key, .., value) in observed.snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            let key_op = key.key().labels().find(|l| l.key() == "op").map(|l| l.value().to_owned());
            totals.push((key.key().name().to_owned(), key_op.unwrap_or_default(), n));
        }
    }
    totals.iter().filter(|(n, o, _)| n == name && o == op).map(|(.., v)| v).sum()
}

/// Log lines recorded so far that contain every one of `parts`.
fn logged(parts: &[&str]) -> Vec<String> {
    let logs = observed().logs.lock().unwrap();
    String::from_utf8_lossy(&logs)
        .lines()
        .filter(|line| parts.iter().all(|p| line.contains(p)))
        .map(str::to_owned)
        .collect()
}

/// Retries in tests: quick, and many, so a scripted fault heals first.
fn quick() -> ColdStorageConfig {
    observed();
    let backoff = Backoff { min: Duration::from_millis(1), max: Duration::from_millis(4) };
    ColdStorageConfig::default().with_write_retries(5, backoff).with_read_retries(3, backoff)
}

struct Task {
    handle: ColdStorageHandle,
    cancel: CancellationToken,
    run: tokio::task::JoinHandle<()>,
}

fn start<B: ColdStorageBackend>(backend: B, config: ColdStorageConfig) -> Task {
    let cancel = CancellationToken::new();
    let (task, handle) = ColdStorageTask::with_config(backend, cancel.clone(), config);
    Task { handle, cancel, run: tokio::spawn(task.run()) }
}

impl Task {
    async fn stop(self) {
        self.cancel.cancel();
        guard("run() to return", self.run).await.unwrap();
    }

    /// Waits until every write queued so far has run (writes run in order).
    async fn settle(&self) {
        guard("writes to settle", self.handle.append_blocks(Vec::new())).await.unwrap();
    }
}

async fn hashes_present<B: ColdStorageRead>(backend: &B, blocks: &[BlockData]) -> Vec<bool> {
    let mut found = Vec::new();
    for block in blocks {
        let header = backend.get_header(HeaderSpecifier::Number(block.block_number())).await;
        found.push(header.unwrap().is_some_and(|h| h.hash() == block.header.hash()));
    }
    found
}

// ----- F01 -----

async fn f01<B: ColdStorageBackend + Clone>(inner: B, name: &str) {
    let backend = FaultyBackend::new(inner.clone());
    // Long backoff, paused or not: health is checked while the writer waits.
    let backoff = Backoff { min: Duration::from_millis(300), max: Duration::from_millis(300) };
    let task = start(backend.clone(), quick().with_write_retries(5, backoff));
    backend.fail_writes(None, WriteFault::Transient, 2);
    let retries_before = counter(names::WRITE_RETRIES_TOTAL, "append_blocks");

    let blocks = chain(10);
    for block in &blocks {
        task.handle.dispatch_append_blocks(vec![block.clone()]).unwrap();
    }
    let h = task.handle.clone();
    until("the first retry to show in health()", || h.health().retrying.is_some()).await;
    let retrying = task.handle.health().retrying.unwrap();
    assert_eq!((retrying.op, retrying.block), ("append_blocks", 1), "[{name}] {retrying:?}");
    assert!(retrying.error.contains("connection reset"), "[{name}] {retrying:?}");

    task.settle().await;
    assert_eq!(hashes_present(&inner, &blocks).await, vec![true; 10], "[{name}]");
    assert_eq!(inner.get_latest_block().await.unwrap(), Some(10), "[{name}]");
    let health = task.handle.health();
    assert_eq!((health.write_retries, health.retrying, health.halted), (2, None, None));
    assert!(counter(names::WRITE_RETRIES_TOTAL, "append_blocks") >= retries_before + 2);
    task.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f01_transient_fault_on_a_dispatched_append_is_retried() {
    common::on_mem_and_sqlite!(f01);
}

// ----- F02 -----

async fn f02<B: ColdStorageBackend + Clone>(inner: B, name: &str) {
    let backend = FaultyBackend::new(inner.clone());
    let task = start(backend.clone(), quick());
    backend.fail_writes(Some(5), WriteFault::Ambiguous, 1);
    let found_before = counter(names::WRITES_FOUND_APPLIED_TOTAL, "append_blocks");

    let blocks = chain(10);
    for block in &blocks {
        task.handle.dispatch_append_blocks(vec![block.clone()]).unwrap();
    }
    task.settle().await;
    assert_eq!(backend.faults_injected(), 1, "[{name}] the fault was injected");
    assert_eq!(backend.append_calls(5), 1, "[{name}] block 5 appended twice");
    assert_eq!(hashes_present(&inner, &blocks).await, vec![true; 10], "[{name}]");
    let health = task.handle.health();
    assert_eq!((health.write_retries, &health.halted), (0, &None), "[{name}] {health:?}");
    assert_eq!(counter(names::WRITES_FOUND_APPLIED_TOTAL, "append_blocks"), found_before + 1);
    // An awaited write over the same fault gets Ok, too.
    backend.fail_writes(Some(11), WriteFault::Ambiguous, 1);
    let next = ChainExt::next_block(&blocks);
    task.handle.append_block(next).await.unwrap();
    assert_eq!(backend.append_calls(11), 1, "[{name}]");
    task.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f02_ambiguous_commit_is_found_applied() {
    common::on_mem_and_sqlite!(f02);
}

/// Found by a new user's trial: when the check whether an ambiguous append
/// committed failed too, the append ran again; on SQL its blocks were there
/// already, the unique key refused them (a permanent error), the next check
/// failed as well, and appends halted over a block that had committed. A
/// failed check is asked again; the append is not repeated.
async fn f02_check<B: ColdStorageBackend + Clone>(inner: B, name: &str) {
    let backend = FaultyBackend::new(inner.clone());
    let task = start(backend.clone(), quick());
    let blocks = chain(6);
    task.handle.append_blocks(blocks[..4].to_vec()).await.unwrap();
    backend.fail_writes(Some(5), WriteFault::Ambiguous, 1);
    // The first two checks meet a connection reset.
    backend.fail_reads(2);

    let appended = guard("append_block(5)", task.handle.append_block(blocks[4].clone())).await;
    assert!(appended.is_ok(), "[{name}] block 5 committed, yet: {appended:?}");
    assert_eq!(backend.append_calls(5), 1, "[{name}] block 5 appended again");
    let health = task.handle.health();
    assert_eq!((health.halted, health.retrying), (None, None), "[{name}]");
    assert_eq!(health.write_retries, 2, "[{name}] two checks asked again");
    task.handle.append_block(blocks[5].clone()).await.unwrap();
    assert_eq!(hashes_present(&inner, &blocks).await, vec![true; 6], "[{name}]");
    task.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f02_a_failed_check_of_an_ambiguous_append_is_asked_again_not_appended_again() {
    common::on_mem_and_sqlite!(f02_check);
}

/// A check that keeps failing ends the write with an error that says the
/// append may have committed, and halts appends (nothing is repeated).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f02_an_append_whose_check_never_answers_halts_without_repeating() {
    let store = sqlite().await;
    let backend = FaultyBackend::new(store.backend.clone());
    let task = start(backend.clone(), quick());
    let blocks = chain(5);
    task.handle.append_blocks(blocks[..4].to_vec()).await.unwrap();
    backend.fail_writes(Some(5), WriteFault::Ambiguous, 1);
    backend.fail_reads(1_000);

    let appended = guard("append_block(5)", task.handle.append_block(blocks[4].clone())).await;
    backend.heal();
    let err = appended.expect_err("the check never answered").to_string();
    // `quick()` allows 5 retries: the first check and 5 repeats.
    assert!(err.contains("may have committed") && err.contains("failed 6 times"), "{err}");
    assert_eq!(backend.append_calls(5), 1, "block 5 appended again");
    let halted = task.handle.health().halted.expect("appends halted");
    assert_eq!(halted.block, 5);
    task.stop().await;
}

/// Found by review: an append whose first blocks were already stored
/// failed on SQL with the unique-key error (permanent) and halted, though
/// the check had found the rest to append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f02_an_append_whose_first_blocks_are_stored_appends_the_rest() {
    let store = sqlite().await;
    let backend = FaultyBackend::new(store.backend.clone());
    let task = start(backend.clone(), quick());
    let blocks = chain(7);
    signet_cold::ColdStorageWrite::append_blocks(&store.backend, blocks[..5].to_vec())
        .await
        .unwrap();

    let appended = guard("append 5..=7", task.handle.append_blocks(blocks[4..].to_vec())).await;
    assert!(appended.is_ok(), "{appended:?}");
    assert_eq!(hashes_present(&store.backend, &blocks).await, vec![true; 7]);
    let health = task.handle.health();
    assert_eq!((health.halted, health.retrying), (None, None));
    task.stop().await;
}

/// The generator's block after the last of a chain made by [`chain`].
struct ChainExt;

impl ChainExt {
    fn next_block(blocks: &[BlockData]) -> BlockData {
        let last = blocks.last().expect("a chain");
        cold_testkit::chain::ChainSpec::with_seed(7).block(
            last.block_number() + 1,
            0,
            last.header.hash(),
        )
    }
}

// ----- F03 -----

async fn f03<B: ColdStorageBackend + Clone>(inner: B, name: &str) {
    let parked = ParkedBackend::closed(inner.clone());
    let backend = FaultyBackend::new(parked.clone());
    let task = start(backend.clone(), quick().with_drain_deadline(None));
    backend.fail_writes(Some(7), WriteFault::Permanent, usize::MAX);

    // A parked read holds the writer back until all ten are dispatched.
    let h = task.handle.clone();
    let read = tokio::spawn(async move { h.get_latest_block().await });
    parked.wait_parked(1).await;
    let blocks = chain(10);
    for block in &blocks {
        task.handle.dispatch_append_blocks(vec![block.clone()]).unwrap();
    }
    parked.release_all();
    read.await.unwrap().unwrap();
    task.settle().await;
    let halt = task.handle.health().halted.expect("appends halted");
    assert_eq!((halt.op, halt.block), ("append_blocks", 7), "[{name}] {halt:?}");
    assert!(halt.cause.contains("constraint violated"), "[{name}] {halt:?}");
    assert_eq!(task.handle.health().write_retries, 0, "[{name}] a permanent error is not retried");
    // Nothing applied over the gap; the writes behind it were refused.
    let present = hashes_present(&inner, &blocks).await;
    assert_eq!(present, [[true; 6].as_slice(), &[false; 4]].concat(), "[{name}]");
    assert_eq!(task.handle.health().writes_rejected, 3, "[{name}]");
    assert!(!logged(&["ERROR", "appends halted", "block=7"]).is_empty(), "[{name}] not logged");

    // Later writes and dispatches name block 7 and the cause.
    let next = ChainExt::next_block(&blocks);
    let refused = task.handle.dispatch_append_blocks(vec![next.clone()]).unwrap_err();
    assert!(matches!(&refused, DispatchError::Halted(h) if h.block == 7), "[{name}] {refused:?}");
    assert!(refused.to_string().contains("block 7"), "{refused}");
    assert!(refused.to_string().contains("constraint violated"), "{refused}");
    let err = task.handle.append_block(next).await.unwrap_err();
    let halted = match &err {
        ColdStorageError::Backend(inner) => inner.downcast_ref::<WritesHalted>(),
        _ => None,
    };
    assert_eq!(halted.map(|h| h.block), Some(7), "[{name}] {err:?}");
    assert_eq!(cold_adapter::error_kind(&err), "halted");
    // A truncate above the halted block does not clear it.
    assert!(task.handle.truncate_above(8).await.is_err(), "[{name}]");

    // Reads keep working.
    let header = task.handle.get_header_by_number(3).await.unwrap();
    assert_eq!(header.map(|h| h.hash()), Some(blocks[2].header.hash()), "[{name}]");

    // Recovery: the fault heals, truncate to the last good block, append.
    backend.heal();
    task.handle.truncate_above(6).await.unwrap();
    assert_eq!(task.handle.health().halted, None, "[{name}]");
    task.handle.dispatch_append_blocks(blocks[6..].to_vec()).unwrap();
    task.settle().await;
    assert_eq!(hashes_present(&inner, &blocks).await, vec![true; 10], "[{name}]");
    task.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f03_permanent_failure_halts_appends_until_truncated() {
    common::on_mem_and_sqlite!(f03);
}

/// Found by review: a halt at block 0 could not be cleared (no truncate
/// goes below 0). `truncate_above(0)` clears it, as for any block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f03_a_halt_at_block_0_is_cleared_by_truncate_above_0() {
    let inner = mem().backend;
    let backend = FaultyBackend::new(inner.clone());
    let task = start(backend.clone(), quick());
    let spec = cold_testkit::chain::ChainSpec::with_seed(9);
    let genesis = spec.block(0, 0, Default::default());
    backend.fail_writes(Some(0), WriteFault::Permanent, 1);
    assert!(task.handle.append_block(genesis.clone()).await.is_err());
    assert_eq!(task.handle.health().halted.map(|h| h.block), Some(0));
    task.handle.truncate_above(0).await.unwrap();
    assert_eq!(task.handle.health().halted, None);
    task.handle.append_block(genesis.clone()).await.unwrap();
    let found = inner.get_header(HeaderSpecifier::Number(0)).await.unwrap();
    assert_eq!(found.map(|h| h.hash()), Some(genesis.header.hash()));
    task.stop().await;
}

/// Recovery with dispatches: appends are accepted again once the
/// dispatched truncate has run (`health().halted` clears), as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f03_recovery_with_dispatches() {
    let inner = mem().backend;
    let backend = FaultyBackend::new(inner.clone());
    let task = start(backend.clone(), quick());
    let blocks = chain(4);
    backend.fail_writes(Some(1), WriteFault::Permanent, 1);
    task.handle.dispatch_append_blocks(blocks[..3].to_vec()).unwrap();
    task.settle().await;
    assert_eq!(task.handle.health().halted.map(|h| h.block), Some(1));
    // Still refused without a clearing truncate queued ahead.
    assert!(matches!(
        task.handle.dispatch_append_blocks(blocks.clone()),
        Err(DispatchError::Halted(_))
    ));
    task.handle.dispatch_truncate_above(0).unwrap();
    let h = task.handle.clone();
    until("the dispatched truncate to clear the halt", || h.health().halted.is_none()).await;
    task.handle.dispatch_append_blocks(blocks.clone()).unwrap();
    task.settle().await;
    assert_eq!(task.handle.health().halted, None);
    assert_eq!(hashes_present(&inner, &blocks).await, vec![true; 4]);
    task.stop().await;
}

/// Found by review: a panic in the writer's check after a failed
/// `drain_above` unwound through the writer and stopped the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f09_a_panic_in_the_writers_own_check_is_an_error() {
    let parked = ParkedBackend::open(mem().backend);
    let backend = FaultyBackend::new(parked.clone());
    let task = start(backend.clone(), quick());
    task.handle.append_blocks(chain(2)).await.unwrap();
    backend.fail_writes(None, WriteFault::Transient, 1);
    parked.panic_reads(true);
    let drained = task.handle.drain_above(1).await;
    parked.panic_reads(false);
    assert!(!matches!(drained, Err(ColdStorageError::TaskTerminated)), "{drained:?}");
    assert!(!task.handle.health().closed, "the task is still running");
    assert!(task.handle.get_latest_block().await.is_ok());
    task.stop().await;
}

/// Found by review: `stream_logs` outside a tokio runtime panicked; it
/// returns `NoRuntime` like every read.
#[test]
fn f09_stream_logs_outside_a_runtime_is_an_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let task = runtime.block_on(async { start(mem().backend, quick()) });
    let filter = Filter::new().from_block(0).to_block(1);
    let stream = block_on(task.handle.stream_logs(filter, 10, Duration::from_secs(1)));
    let err = stream.map(drop).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
    runtime.block_on(task.stop());
}

/// Polls `fut` on this thread, outside any runtime.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// Retries that never heal halt appends too, after the budget.
#[tokio::test(start_paused = true)]
async fn f03_exhausted_retries_halt_appends() {
    let inner = mem().backend;
    let backend = FaultyBackend::new(inner.clone());
    let task = start(backend.clone(), quick());
    backend.fail_writes(None, WriteFault::Transient, usize::MAX);
    let blocks = chain(2);
    task.handle.dispatch_append_blocks(blocks.clone()).unwrap();
    let err = task.handle.append_block(ChainExt::next_block(&blocks)).await.unwrap_err();
    assert!(err.to_string().contains("block 1"), "{err}");
    let halt = task.handle.health().halted.expect("halted");
    assert!(halt.cause.contains("gave up after 6 tries"), "{halt:?}");
    assert_eq!(task.handle.health().write_retries, 5);
    assert_eq!(inner.get_latest_block().await.unwrap(), None);
    task.stop().await;
}

/// A write attempt that never returns is dropped after the attempt limit
/// (60 s for a backend without a write timeout) and retried; later writes
/// wait behind it and then run.
#[tokio::test(start_paused = true)]
async fn f01_a_hung_write_attempt_is_dropped_and_retried() {
    let inner = mem().backend;
    let backend = FaultyBackend::new(inner.clone());
    let task = start(backend.clone(), quick());
    backend.fail_writes(None, WriteFault::Hang, 1);
    let blocks = chain(3);
    for block in &blocks {
        task.handle.dispatch_append_blocks(vec![block.clone()]).unwrap();
    }
    let started = Instant::now();
    // Past the test's usual guard: the attempt limit is 60 s (paused time).
    let settled = tokio::time::timeout(Duration::from_secs(120), task.handle.append_blocks(vec![]));
    settled.await.expect("the hung attempt was not dropped").unwrap();
    assert!(started.elapsed() >= Duration::from_secs(60), "{:?}", started.elapsed());
    assert_eq!(hashes_present(&inner, &blocks).await, vec![true; 3]);
    let health = task.handle.health();
    assert_eq!((health.write_retries, &health.halted), (1, &None), "{health:?}");
    task.stop().await;
}

// ----- F04 -----

/// Repeats shutdown while OS threads dispatch: every `Ok` must have run.
#[test]
fn f04_shutdown_while_dispatching_loses_no_acknowledged_write() {
    const ROUNDS: usize = 1_000;
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 200;
    let template = chain(1).remove(0);
    for round in 0..ROUNDS {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let inner = signet_cold::mem::MemColdBackend::new();
        let cancel = CancellationToken::new();
        let config = ColdStorageConfig::default().with_write_queue(64);
        let (task, handle) = ColdStorageTask::with_config(inner.clone(), cancel.clone(), config);
        let run = runtime.spawn(task.run());
        let acked: Vec<Vec<u64>> = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..THREADS)
                .map(|t| {
                    let handle = handle.clone();
                    let template = template.clone();
                    scope.spawn(move || {
                        let mut acked = Vec::new();
                        for i in 0..PER_THREAD {
                            let mut block = template.clone();
                            let number = t * 1_000_000 + i + 1;
                            let mut header = block.header.clone().unseal();
                            header.number = number;
                            block.header = signet_storage_types::SealedHeader::new(header);
                            match handle.dispatch_append_blocks(vec![block]) {
                                Ok(()) => acked.push(number),
                                Err(DispatchError::Backpressure) => std::thread::yield_now(),
                                Err(_) => break,
                            }
                        }
                        acked
                    })
                })
                .collect();
            // Shut down while they dispatch.
            while handle.health().drains_granted < 1 {
                std::thread::yield_now();
            }
            cancel.cancel();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        runtime.block_on(async { guard("run()", run).await.unwrap() });
        runtime.block_on(async {
            for number in acked.iter().flatten() {
                let header = inner.get_header(HeaderSpecifier::Number(*number)).await.unwrap();
                assert!(header.is_some(), "round {round}: acknowledged block {number} lost");
            }
        });
        assert_eq!(handle.health().writes_lost, 0, "round {round}");
    }
}

// ----- F05 -----

#[tokio::test(start_paused = true)]
async fn f05_reads_that_never_return_do_not_hold_shutdown() {
    let inner = mem().backend;
    let parked = ParkedBackend::closed(inner.clone());
    let grace = Duration::from_secs(3);
    let task = start(parked.clone(), quick().with_shutdown_grace(grace).with_drain_deadline(None));
    let blocks = chain(3);
    task.handle.append_blocks(blocks[..1].to_vec()).await.unwrap();

    let mut reads = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let h = task.handle.clone();
        reads.spawn(async move { h.get_transaction_count(1).await });
    }
    parked.wait_parked(3).await;
    // Acknowledged writes queue behind the reads' drain.
    task.handle.dispatch_append_blocks(blocks[1..].to_vec()).unwrap();

    let cancelled = Instant::now();
    task.cancel.cancel();
    while let Some(read) = reads.join_next().await {
        let read = read.unwrap();
        assert!(matches!(read, Err(ColdStorageError::TaskTerminated)), "{read:?}");
    }
    guard("run() to return", task.run).await.unwrap();
    assert!(cancelled.elapsed() <= grace, "run() took {:?}", cancelled.elapsed());
    assert_eq!(parked.parked(), 0, "the parked reads were dropped");
    assert_eq!(hashes_present(&inner, &blocks).await, vec![true; 3], "queued writes ran");
    assert_eq!(task.handle.health().writes_lost, 0);
}

/// The backend cannot take the queued writes: `run` still returns at the
/// end of the grace period, and the loss is logged and counted.
#[tokio::test(start_paused = true)]
async fn f05_writes_the_backend_cannot_take_are_reported_lost() {
    let inner = mem().backend;
    let backend = FaultyBackend::new(inner.clone());
    let grace = Duration::from_secs(3);
    let task = start(backend.clone(), quick().with_shutdown_grace(grace));
    backend.fail_writes(None, WriteFault::Hang, usize::MAX);
    let lost_before = counter(names::WRITES_LOST_TOTAL, "append_blocks");
    let blocks = chain(3);
    for block in &blocks {
        task.handle.dispatch_append_blocks(vec![block.clone()]).unwrap();
    }
    let h = task.handle.clone();
    until("the first write to hang", || backend.write_calls() == 1).await;
    let cancelled = Instant::now();
    task.cancel.cancel();
    guard("run() to return", task.run).await.unwrap();
    assert_eq!(cancelled.elapsed(), grace, "run() returns at the end of the grace period");
    assert_eq!(h.health().writes_lost, 3);
    assert_eq!(counter(names::WRITES_LOST_TOTAL, "append_blocks"), lost_before + 3);
    assert!(!logged(&["ERROR", "acknowledged cold write lost", "first_block=3"]).is_empty());
    assert!(!logged(&["ERROR", "grace period passed"]).is_empty());
}

// ----- F06 -----

/// Polls `fut` exactly once.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut *fut).poll(cx))).await
}

#[tokio::test(start_paused = true)]
async fn f06_a_read_no_longer_polled_does_not_hold_a_write() {
    let inner = mem().backend;
    let parked = ParkedBackend::closed(inner.clone());
    let deadline = Duration::from_secs(2);
    let task = start(parked.clone(), quick().with_drain_deadline(Some(deadline)).with_read_cap(1));
    let blocks = chain(2);
    task.handle.append_blocks(blocks[..1].to_vec()).await.unwrap();

    // One read in flight, one waiting for the only permit: each polled
    // once, then kept alive without being polled.
    let mut in_flight = Box::pin(task.handle.get_transaction_count(1));
    assert!(poll_once(&mut in_flight).await.is_pending());
    parked.wait_parked(1).await;
    let mut queued = Box::pin(task.handle.get_receipts_in_block(1));
    assert!(poll_once(&mut queued).await.is_pending());

    let started = Instant::now();
    guard("the write", task.handle.append_blocks(blocks[1..].to_vec())).await.unwrap();
    let waited = started.elapsed();
    assert!(waited >= deadline && waited <= deadline + Duration::from_millis(50), "{waited:?}");

    // The stopped read reports why; the queued one ran after the write.
    let stopped = in_flight.await;
    assert!(matches!(stopped, Err(ColdStorageError::DeadlineExceeded(_))), "{stopped:?}");
    parked.release_all();
    assert_eq!(queued.await.unwrap().len(), blocks[0].receipts.len());
    task.stop().await;
}

// ----- F07 (the Postgres case is in postgres.rs) -----

/// Reads are idempotent: one meeting a dropped connection is retried, and
/// its caller sees no error; one that keeps failing returns a clear error
/// once the retries are spent.
#[tokio::test(start_paused = true)]
async fn f07_transient_read_faults_are_retried() {
    let backend = FaultyBackend::new(mem().backend);
    let task = start(backend.clone(), quick());
    let blocks = chain(2);
    task.handle.append_blocks(blocks.clone()).await.unwrap();
    let retries_before = counter(names::READ_RETRIES_TOTAL, "get_transactions_in_block");

    backend.fail_reads(3);
    let txs = task.handle.get_transactions_in_block(2).await.unwrap();
    assert_eq!(txs.len(), blocks[1].transactions.len());
    assert_eq!(counter(names::READ_RETRIES_TOTAL, "get_transactions_in_block"), retries_before + 3);

    backend.fail_reads(4);
    let err = task.handle.get_transactions_in_block(2).await.unwrap_err();
    assert!(err.to_string().contains("connection reset"), "{err}");
    assert_eq!(task.handle.health().reads_in_flight, 0);
    task.stop().await;
}

// ----- F08 -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f08_reappending_block_0_is_not_served_stale() {
    let spec = cold_testkit::chain::ChainSpec::with_seed(9);
    let (old, new) = (spec.block(0, 0, Default::default()), spec.block(0, 1, Default::default()));
    assert_ne!(old.header.hash(), new.header.hash());
    let task = start(mem().backend, quick());
    task.handle.append_block(old.clone()).await.unwrap();
    let cached = task.handle.get_header_by_number(0).await.unwrap().unwrap();
    assert_eq!(cached.hash(), old.header.hash());
    task.handle.append_block(new.clone()).await.unwrap();
    let fresh = task.handle.get_header_by_number(0).await.unwrap().unwrap();
    assert_eq!(fresh.hash(), new.header.hash(), "the old header 0 was served from the cache");
    task.stop().await;
}

// ----- F09 -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f09_a_panic_resolving_latest_for_a_stream_is_an_error() {
    let parked = ParkedBackend::open(mem().backend);
    let task = start(parked.clone(), quick());
    task.handle.append_blocks(chain(2)).await.unwrap();
    parked.panic_reads(true);
    let open_ended = Filter::new().from_block(1);
    let outcome = guard(
        "stream_logs",
        tokio::spawn({
            let h = task.handle.clone();
            async move { h.stream_logs(open_ended, 10, Duration::from_secs(1)).await.map(drop) }
        }),
    )
    .await
    .expect("the panic did not reach the caller");
    let err = outcome.unwrap_err();
    assert_eq!(cold_adapter::error_kind(&err), "panic", "{err:?}");
    parked.panic_reads(false);
    task.stop().await;
}

// ----- F10 -----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f10_dropping_run_logs_and_counts_the_acknowledged_writes_it_abandons() {
    let inner = mem().backend;
    let parked = ParkedBackend::closed(inner.clone());
    let task = start(parked.clone(), quick().with_drain_deadline(None));
    let blocks = chain(5);
    task.handle.append_blocks(blocks[..1].to_vec()).await.unwrap();
    // A parked read holds the writer's drain; four dispatches queue.
    let h = task.handle.clone();
    let _read = tokio::spawn(async move { h.get_transaction_count(1).await });
    parked.wait_parked(1).await;
    for block in &blocks[1..] {
        task.handle.dispatch_append_blocks(vec![block.clone()]).unwrap();
    }
    let h = task.handle.clone();
    until("the writer to wait for its drain", || h.health().drain_waiting.is_some()).await;

    task.run.abort();
    assert!(task.run.await.unwrap_err().is_cancelled());
    let health = task.handle.health();
    assert_eq!(health.writes_lost, 4, "{health:?}");
    assert!(health.closed);
    assert!(!logged(&["ERROR", "acknowledged cold write lost", "first_block=5"]).is_empty());
    assert!(
        !logged(&["ERROR", "stopped before running every queued write", "acknowledged_lost=4"])
            .is_empty()
    );
    assert_eq!(inner.get_latest_block().await.unwrap(), Some(1), "nothing ran after the drop");
}
