//! Stable replay of the `cold_ops` fuzz model: proptest over the same byte
//! decoder and over structured operation sequences, every file of the
//! committed seed corpus (`fuzz/corpus/cold_ops/`), and named sequences
//! (model sanity cases and regressions). The decoder, model and checker are
//! in `tests/model/mod.rs`, shared with the fuzz target.

mod common;
mod model;

use std::path::Path;

use model::{Fault, Op, Read, Setup, Write};
use proptest::prelude::*;

/// `cases` unless `PROPTEST_CASES` asks for another number (a longer local
/// run: `PROPTEST_CASES=20000 cargo test --release ...`).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    // Failures are kept as named tests below, not as persistence files.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

fn read_strategy() -> impl Strategy<Value = Read> {
    (0..Read::KINDS, any::<u8>(), any::<u8>()).prop_map(|(kind, a, b)| Read { kind, a, b })
}

fn write_strategy() -> impl Strategy<Value = Write> {
    prop_oneof![
        Just(Write::AppendBlock),
        (0u8..4).prop_map(Write::AppendBlocks),
        any::<u8>().prop_map(Write::Truncate),
        any::<u8>().prop_map(Write::Drain),
    ]
}

fn fault_strategy() -> impl Strategy<Value = Fault> {
    prop_oneof![Just(Fault::Transient), Just(Fault::Ambiguous), Just(Fault::Permanent)]
}

/// Every operation but shutdown (and races with it).
fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => read_strategy().prop_map(Op::Read),
        1 => read_strategy().prop_map(Op::ReadOnly),
        3 => write_strategy().prop_map(Op::Write),
        2 => (0u8..3).prop_map(Op::DispatchAppend),
        1 => any::<u8>().prop_map(Op::DispatchTruncate),
        2 => (read_strategy(), 1u8..=4).prop_map(|(r, n)| Op::CancelRead(r, n)),
        3 => (write_strategy(), 1u8..=4).prop_map(|(w, n)| Op::CancelWrite(w, n)),
        1 => (0u8..16).prop_map(Op::Yield),
        1 => Just(Op::Settle),
        2 => (fault_strategy(), 1u8..=4).prop_map(|(f, n)| Op::ArmFault(f, n)),
        1 => Just(Op::Health),
        1 => Just(Op::Recover),
    ]
}

/// How a structured case shuts down: the token, or dispatches racing it.
fn shutdown_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Shutdown),
        (1u8..=8, any::<bool>(), 0u8..16).prop_map(|(dispatches, thread, spins)| Op::Race {
            dispatches,
            thread,
            spins
        }),
    ]
}

fn setup_strategy() -> impl Strategy<Value = Setup> {
    (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Setup::from_bytes(a, b))
}

proptest! {
    #![proptest_config(config(256))]

    /// Raw bytes through the fuzz target's decoder.
    #[test]
    fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..160)) {
        model::run(&data);
    }

    /// Structured sequences: a stretch with the task running (faults
    /// included), then shutdown (or dispatches racing it), then a few more
    /// operations that must all fail fast.
    #[test]
    fn open_then_shutdown(
        setup in setup_strategy(),
        open in prop::collection::vec(op_strategy(), 0..48),
        shutdown in shutdown_strategy(),
        closed in prop::collection::vec(op_strategy(), 0..6),
    ) {
        let mut ops = open;
        ops.push(shutdown);
        ops.extend(closed);
        model::run_ops(setup, &ops);
    }
}

/// Every file of the committed seed corpus replays cleanly.
#[test]
fn seed_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/cold_ops");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "seed corpus {} is empty", dir.display());
    for path in &files {
        let data = std::fs::read(path).expect("corpus file");
        let run = std::panic::catch_unwind(|| model::run(&data));
        assert!(run.is_ok(), "corpus file {} fails", path.display());
    }
}

/// The decoder reads back what the encoder writes.
#[test]
fn decoder_round_trips() {
    let r = Read { kind: 7, a: 200, b: 3 };
    let ops = vec![
        Op::Read(r),
        Op::ReadOnly(Read { kind: 11, a: 0, b: 255 }),
        Op::Write(Write::AppendBlock),
        Op::Write(Write::AppendBlocks(3)),
        Op::Write(Write::Truncate(9)),
        Op::Write(Write::Drain(250)),
        Op::DispatchAppend(2),
        Op::DispatchTruncate(4),
        Op::CancelRead(r, 4),
        Op::CancelWrite(Write::Drain(7), 3),
        Op::CancelWrite(Write::AppendBlocks(2), 1),
        Op::Yield(15),
        Op::Settle,
        Op::ArmFault(Fault::Transient, 4),
        Op::ArmFault(Fault::Ambiguous, 1),
        Op::ArmFault(Fault::Permanent, 2),
        Op::Health,
        Op::Race { dispatches: 8, thread: true, spins: 15 },
        Op::Race { dispatches: 1, thread: false, spins: 0 },
        Op::Recover,
        Op::Yield(5),
        Op::Shutdown,
    ];
    for setup in [
        Setup::default(),
        Setup::from_bytes(0x7f, 0x7f),
        Setup::from_bytes(0, 0),
        Setup::from_bytes(0x15, 0x52),
    ] {
        assert_eq!(model::decode(&model::encode(setup, &ops)), (setup, ops.clone()));
    }
}

// ----- named sequences --------------------------------------------------------

fn read(kind: u8, a: u8, b: u8) -> Read {
    Read { kind, a, b }
}

/// Reads of every kind see appended blocks, and none above a truncate.
#[test]
fn reads_follow_appends_and_truncates() {
    let mut ops = vec![Op::Write(Write::AppendBlocks(3)), Op::Write(Write::AppendBlock)];
    ops.extend((0..Read::KINDS).map(|k| Op::Read(read(k, 3, 1))));
    ops.push(Op::Write(Write::Truncate(2)));
    ops.extend((0..Read::KINDS).map(|k| Op::Read(read(k, 3, 1))));
    ops.push(Op::Write(Write::Drain(0)));
    ops.push(Op::Read(read(2, 0, 0)));
    model::run_ops(Setup::default(), &ops);
}

/// A cached header above a truncate is not served after the truncate.
#[test]
fn truncate_evicts_the_cache() {
    let ops = [
        Op::Write(Write::AppendBlocks(3)),
        Op::Read(read(0, 3, 0)),
        Op::Read(read(4, 3, 0)),
        Op::Read(read(6, 3, 0)),
        Op::DispatchTruncate(1),
        Op::Write(Write::AppendBlock),
        Op::Read(read(0, 3, 0)),
        Op::Read(read(4, 3, 0)),
        Op::Read(read(6, 3, 0)),
    ];
    model::run_ops(Setup::default(), &ops);
}

/// Dispatches past a one-slot queue meet Backpressure; what was queued runs.
#[test]
fn dispatch_backpressure_on_a_full_queue() {
    let setup = Setup::from_bytes(0x00, 0x00);
    assert_eq!(setup.write_queue, 1);
    let ops = [
        Op::DispatchAppend(0),
        Op::DispatchAppend(1),
        Op::DispatchTruncate(1),
        Op::Yield(3),
        Op::DispatchAppend(2),
        Op::Read(read(2, 0, 0)),
        Op::Write(Write::AppendBlock),
    ];
    model::run_ops(setup, &ops);
}

/// Dropped write futures, each either queued or not, are settled by reads.
#[test]
fn cancelled_writes_are_decided_by_reads() {
    let ops = [
        Op::Write(Write::AppendBlocks(2)),
        Op::CancelWrite(Write::AppendBlock, 1),
        Op::CancelWrite(Write::Truncate(1), 1),
        Op::CancelWrite(Write::AppendBlocks(2), 2),
        Op::Read(read(2, 0, 0)),
        Op::CancelWrite(Write::Drain(0), 1),
        Op::Read(read(10, 1, 0)),
        Op::Write(Write::AppendBlock),
        Op::Read(read(2, 0, 0)),
        Op::Settle,
    ];
    for setup in [Setup::default(), Setup::from_bytes(0x40, 0x00)] {
        model::run_ops(setup, &ops);
    }
}

/// After shutdown, writes, dispatches and uncached reads fail at once, and
/// `run` returns; dispatched writes may or may not have run.
#[test]
fn shutdown_fails_everything_and_returns() {
    let ops = [
        Op::Write(Write::AppendBlocks(2)),
        Op::DispatchAppend(1),
        Op::DispatchTruncate(1),
        Op::Shutdown,
        Op::Read(read(2, 0, 0)),
        Op::Write(Write::AppendBlock),
        Op::CancelWrite(Write::Truncate(0), 2),
        Op::DispatchAppend(0),
        Op::CancelRead(read(8, 1, 0), 1),
    ];
    model::run_ops(Setup::default(), &ops);
    model::run_ops(Setup::from_bytes(0x40, 0x08), &ops);
}

/// Regression: after shutdown, a read the cache could answer (header by
/// number, transaction or receipt by block and index) returned `Ok` with the
/// cached value instead of `TaskTerminated`, against `ColdStorageTask::run`'s
/// "waiting and new reads ... fail with TaskTerminated": the cache was
/// consulted before the shutdown check. Found by this model; fixed in
/// b5a6044. The model now requires `TaskTerminated` from every read after
/// shutdown.
#[test]
fn reads_after_shutdown_fail_even_when_cached() {
    use signet_cold::{ColdStorageError, mem::MemColdBackend};
    use tokio_util::sync::CancellationToken;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let cancel = CancellationToken::new();
        let (task, handle) =
            cold_adapter::ColdStorageTask::new(MemColdBackend::new(), cancel.clone());
        let task = tokio::spawn(task.run());
        handle.append_block(signet_cold::conformance::make_test_block(1)).await.unwrap();
        // Fills the header cache.
        assert!(handle.get_header_by_number(1).await.unwrap().is_some());

        cancel.cancel();
        task.await.unwrap();
        // Uncached: fails as documented.
        assert!(matches!(handle.get_latest_block().await, Err(ColdStorageError::TaskTerminated)));
        // Cached: expected TaskTerminated, observed Ok(Some(header 1)).
        let cached = handle.get_header_by_number(1).await;
        assert!(
            matches!(cached, Err(ColdStorageError::TaskTerminated)),
            "a cached read after shutdown returned {:?}",
            cached.map(|h| h.map(|h| h.number))
        );
    });
}

/// Regression (found by `cold_ops`; fixed in 9c76dd9, where the writer waits
/// for the closed gate to be idle instead): an acknowledged dispatch was
/// lost at shutdown when the writer had already taken it from the queue and
/// was waiting for its drain. `write_loop` returned on `acquire_drain` →
/// `None` (the gate closed) and dropped the request it held, while `run`
/// then executed the dispatches still queued behind it: the later write
/// landed, the earlier acknowledged one never did (lost, and the order
/// broken).
///
/// Expected: blocks 1 and 2 both stored. Observed before the fix: only
/// block 2.
///
/// The fuzzer's input (multi-thread runtime, so it reproduces only
/// sometimes) dispatched appends of blocks 9-10 … 21-22 into a 4-slot queue,
/// then shut down: blocks 15-16 (acknowledged) were missing from the final
/// state while 17-22 were present.
#[test]
fn acknowledged_dispatch_waiting_for_its_drain_survives_shutdown() {
    use cold_adapter::{ColdStorageConfig, ColdStorageTask};
    use signet_cold::{
        ColdStorageRead, HeaderSpecifier, conformance::make_test_block, mem::MemColdBackend,
    };
    use tokio_util::sync::CancellationToken;

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mem = MemColdBackend::new();
        let backend = common::ParkedBackend::closed(mem.clone());
        let cancel = CancellationToken::new();
        let config = ColdStorageConfig::default().with_drain_deadline(None);
        let (task, handle) = ColdStorageTask::with_config(backend.clone(), cancel.clone(), config);
        let task = tokio::spawn(task.run());

        // A read holds its permit, so the writer's next drain has to wait.
        let reader = handle.clone();
        let read = tokio::spawn(async move { reader.get_latest_block().await });
        backend.wait_parked(1).await;

        // Acknowledged; the writer takes it from the queue and waits for the
        // drain. A second acknowledged dispatch queues behind it.
        handle.dispatch_append_blocks(vec![make_test_block(1)]).unwrap();
        common::until("the writer's drain to wait", || handle.health().drain_waiting.is_some())
            .await;
        handle.dispatch_append_blocks(vec![make_test_block(2)]).unwrap();

        cancel.cancel();
        backend.release_all();
        common::guard("run() after cancel", task).await.unwrap();
        let _ = read.await.unwrap();

        let stored = |n| {
            let mem = mem.clone();
            async move { mem.get_header(HeaderSpecifier::Number(n)).await.unwrap().is_some() }
        };
        let (one, two) = (stored(1).await, stored(2).await);
        assert!(
            one && two,
            "both dispatches were acknowledged; stored: block 1 {one}, block 2 {two}"
        );
    });
}

// ----- write faults (durable writes) ------------------------------------------

/// `setup` with `retries` write retries and, if `slow`, 1 ms between them.
fn with_retries(setup: Setup, retries: usize, slow: bool) -> Setup {
    Setup { write_retries: retries, slow_retries: slow, ..setup }
}

/// The two runtimes, ended by the token (so the final health is read).
fn both_runtimes(retries: usize) -> [Setup; 2] {
    [
        with_retries(Setup::default(), retries, false),
        with_retries(Setup { multi_thread: true, ..Setup::default() }, retries, true),
    ]
}

/// Block numbers of a final chain.
fn numbers(report: &model::Report) -> Vec<u64> {
    report.chain.iter().map(|&(n, _)| n).collect()
}

/// Transient faults within the retry budget: every write runs once, in
/// order, and nobody sees an error (an append, a dispatch behind it, a
/// truncate, a drain).
#[test]
fn transient_faults_within_the_budget_are_retried_in_order() {
    let ops = [
        Op::ArmFault(Fault::Transient, 3),
        Op::Write(Write::AppendBlocks(2)),
        Op::DispatchAppend(0),
        Op::Read(read(2, 0, 0)),
        Op::ArmFault(Fault::Transient, 2),
        Op::DispatchAppend(1),
        Op::Write(Write::Truncate(4)),
        Op::Health,
        Op::ArmFault(Fault::Transient, 3),
        Op::Write(Write::Drain(2)),
        Op::Read(read(10, 1, 0)),
    ];
    for setup in both_runtimes(3) {
        let report = model::run_ops(setup, &ops);
        assert_eq!(numbers(&report), [1, 2]);
        assert_eq!(report.faults_served, 8);
        assert_eq!(report.halted, Some(None));
        assert_eq!(report.writes_rejected, Some(0));
    }
}

/// The retry budget is exact: `n` retries absorb `n` transient faults in a
/// row, and one more halts appends at the write's first block.
#[test]
fn transient_faults_past_the_budget_halt_appends() {
    for retries in 0..=3u8 {
        for setup in both_runtimes(usize::from(retries)) {
            let within =
                [Op::ArmFault(Fault::Transient, retries.max(1)), Op::Write(Write::AppendBlock)];
            let report = model::run_ops(setup, &within[usize::from(retries == 0)..]);
            assert_eq!((numbers(&report), report.halted), (vec![1], Some(None)));

            let past = [
                Op::Write(Write::AppendBlock),
                Op::ArmFault(Fault::Transient, retries + 1),
                Op::Write(Write::AppendBlocks(2)),
                Op::Health,
                Op::DispatchAppend(0),
                Op::Write(Write::AppendBlock),
                Op::Read(read(2, 0, 0)),
            ];
            let report = model::run_ops(setup, &past);
            assert_eq!((numbers(&report), report.halted), (vec![1], Some(Some(2))));
            assert_eq!(report.faults_served, usize::from(retries) + 1);
        }
    }
}

/// Ambiguous commits (applied, then a connection reset): an append counts
/// as applied once (the backend's count of applications per block is
/// checked), a truncate is retried harmlessly, and a drain that committed
/// reports its lost receipts without halting.
#[test]
fn ambiguous_commits_count_as_applied_once() {
    let ops = [
        Op::ArmFault(Fault::Ambiguous, 1),
        Op::Write(Write::AppendBlocks(3)),
        Op::ArmFault(Fault::Ambiguous, 1),
        Op::DispatchAppend(1),
        Op::Settle,
        Op::ArmFault(Fault::Ambiguous, 2),
        Op::Write(Write::Truncate(2)),
        Op::Read(read(2, 0, 0)),
        Op::ArmFault(Fault::Ambiguous, 1),
        Op::Write(Write::Drain(1)),
        Op::Health,
        Op::Write(Write::AppendBlock),
    ];
    for setup in both_runtimes(2) {
        let report = model::run_ops(setup, &ops);
        assert_eq!(numbers(&report), [1, 2]);
        assert_eq!(report.faults_served, 5);
        assert_eq!(report.halted, Some(None));
    }
}

/// A permanent fault halts appends: the acknowledged dispatch that met it
/// and the one queued behind it are refused (counted), later dispatches
/// and appends fail with the halt, a truncate at or above the halted block
/// is refused, reads and empty appends go on, and a truncate below it
/// clears the halt and appends resume.
#[test]
fn permanent_fault_halts_appends_until_a_truncate_below() {
    let ops = [
        Op::Write(Write::AppendBlocks(2)),
        Op::ArmFault(Fault::Permanent, 1),
        Op::DispatchAppend(0),
        Op::DispatchAppend(1),
        Op::Yield(3),
        Op::Health,
        Op::DispatchAppend(0),
        Op::Write(Write::AppendBlock),
        Op::Write(Write::Truncate(3)),
        Op::DispatchTruncate(3),
        Op::Read(read(2, 0, 0)),
        Op::Read(read(0, 2, 0)),
        Op::Write(Write::AppendBlocks(0)),
        // The halt holds until the writer has run the truncate: an append
        // right after the dispatch may still be refused.
        Op::DispatchTruncate(1),
        Op::Write(Write::AppendBlock),
        Op::Settle,
        Op::Health,
        Op::Write(Write::AppendBlock),
    ];
    let report = model::run_ops(with_retries(Setup::default(), 3, false), &ops);
    assert_eq!(numbers(&report), [1, 2]);
    assert_eq!(report.halted, Some(None));
    // On the current-thread runtime the writer runs only during the yield:
    // the second dispatch was queued, then refused.
    assert_eq!(report.writes_rejected, Some(1));
    model::run_ops(with_retries(Setup { multi_thread: true, ..Setup::default() }, 3, true), &ops);
}

/// `Recover` (truncate below the halted block) after a permanent fault on a
/// truncate: the halt names `k + 1`, the blocks above `k` stay; recovery
/// truncates them and appends resume.
#[test]
fn permanent_fault_on_a_truncate_halts_at_the_block_above() {
    let ops = [
        Op::Write(Write::AppendBlocks(3)),
        Op::ArmFault(Fault::Permanent, 1),
        Op::Write(Write::Truncate(2)),
        Op::Health,
        Op::Write(Write::AppendBlock),
        Op::Recover,
        Op::Health,
        Op::Write(Write::AppendBlock),
    ];
    for setup in both_runtimes(1) {
        let report = model::run_ops(setup, &ops);
        assert_eq!(numbers(&report), [1, 2, 3]);
        assert_eq!(report.halted, Some(None));
    }
}

/// Dispatches racing the cancellation of the token, from another OS thread
/// and interleaved on the driver's: every `Ok` runs (the model checks the
/// final state), on both runtimes, for every cancel point, also with a
/// permanent fault that refuses the racing appends.
#[test]
fn dispatches_racing_shutdown_run_when_acknowledged() {
    let mut acknowledged = 0;
    for setup in [
        Setup::default(),
        Setup::from_bytes(0x40, 0x00),
        Setup { multi_thread: true, ..Setup::default() },
    ] {
        for thread in [false, true] {
            for spins in [0, 1, 3, 8, 15] {
                let race = Op::Race { dispatches: 8, thread, spins };
                let ops = [Op::Write(Write::AppendBlock), Op::DispatchAppend(1), race];
                acknowledged += model::run_ops(setup, &ops).raced_ok;
                let ops = [
                    Op::Write(Write::AppendBlock),
                    Op::ArmFault(Fault::Permanent, 1),
                    Op::DispatchAppend(0),
                    race,
                    Op::DispatchAppend(0),
                ];
                let report = model::run_ops(setup, &ops);
                assert_eq!(numbers(&report), [1]);
                acknowledged += report.raced_ok;
            }
        }
    }
    assert!(acknowledged > 0, "no racing dispatch was ever acknowledged");
}
