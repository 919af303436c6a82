//! Stable replay of the `permit_sequences` fuzz model: proptest over the same
//! byte decoder, every file of the committed seed corpus
//! (`fuzz/corpus/permit_sequences/`), and named sequences (model sanity cases
//! and regressions found by the fuzzer). The decoder, model and checker are in
//! `tests/model/mod.rs`, shared with the fuzz target.

mod model;

use std::path::Path;

use model::Op::{self, *};
use proptest::prelude::*;

/// `cases` unless `PROPTEST_CASES` asks for another number (a longer local
/// run: `PROPTEST_CASES=100000 cargo test --release ...`).
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    // Failures are kept as named tests below, not as persistence files.
    ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
}

/// Canonical bytes of every operation, for the structured strategy.
fn op_strategy(with_close: bool) -> impl Strategy<Value = Op> {
    let mut ops = vec![
        Acquire,
        AcquireOwned,
        TryAcquire,
        TryAcquireOwned,
        Drain,
        DrainOwned,
        TryDrain,
        TryDrainOwned,
        ClosedAndIdle,
        PollAll,
    ];
    if with_close {
        ops.push(Close);
    }
    prop_oneof![
        4 => prop::sample::select(ops),
        3 => (0u8..16).prop_map(Poll),
        1 => (0u8..16).prop_map(PollFresh),
        2 => (0u8..16).prop_map(DropFuture),
        3 => (0u8..16).prop_map(DropHeld),
        1 => (0u8..8).prop_map(DrainRequested),
        1 => (0u8..16).prop_map(Burst),
        2 => (0u8..8, any::<bool>()).prop_map(|(n, owned)| AcquireMany { n, owned }),
        1 => (0u8..7, any::<bool>()).prop_map(|(n, owned)| TryAcquireMany { n, owned }),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    /// Raw bytes through the fuzz target's decoder.
    #[test]
    fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..400)) {
        model::run(&data);
    }
}

proptest! {
    #![proptest_config(config(384))]

    /// A long stretch without close, then close, then more operations: most
    /// byte strings close early, so this spends its time on the open gate.
    #[test]
    fn open_then_close(
        cap in 1usize..=8,
        open in prop::collection::vec(op_strategy(false), 0..300),
        closed in prop::collection::vec(op_strategy(false), 0..40),
    ) {
        let mut ops = open;
        ops.push(Close);
        ops.extend(closed);
        model::run_ops(cap, &ops);
    }
}

/// Every file of the committed seed corpus replays cleanly.
#[test]
fn seed_corpus_replays() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/permit_sequences");
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

/// The decoder's canonical bytes round-trip.
#[test]
fn decoder_round_trips() {
    for b in 0..=255u8 {
        let op = Op::from_byte(b);
        assert_eq!(Op::from_byte(op.to_byte()), op, "byte {b:#04x}");
    }
    let ops = [
        Acquire,
        DrainOwned,
        Poll(3),
        Burst(15),
        DrainRequested(7),
        AcquireMany { n: 5, owned: true },
        TryAcquireMany { n: 6, owned: false },
        Close,
    ];
    assert_eq!(model::decode(&model::encode(5, &ops)), (5, ops.to_vec()));
}

// ----- named sequences --------------------------------------------------------

/// A reader queued behind a pending drain is admitted when the drain is dropped.
#[test]
fn dropped_drain_admits_reader_behind_it() {
    model::run_ops(4, &[TryAcquire, Drain, Acquire, DropFuture(0), Poll(0)]);
}

/// A grant made to a future that is dropped before observing it moves on.
#[test]
fn dropped_granted_reader_passes_grant_on() {
    model::run_ops(1, &[TryAcquire, Acquire, Acquire, DropHeld(0), DropFuture(0), Poll(0)]);
}

/// A drain granted before close and observed after fails and gives back the
/// guard, which lets `closed_and_idle` fire.
#[test]
fn granted_drain_observed_after_close_fails() {
    model::run_ops(2, &[TryAcquire, Drain, ClosedAndIdle, DropHeld(0), Close, Poll(0), Poll(1)]);
}

/// A borrowed permit's `drain_requested` watcher fires when a drain queues.
#[test]
fn drain_requested_fires_on_queued_drain() {
    model::run_ops(3, &[TryAcquire, DrainRequested(0), Drain, Poll(0), DropHeld(0), PollAll]);
}

/// Requests that never wait run the budget out: the 129th yields once,
/// waking itself, and is granted on its next poll.
#[test]
fn budget_yield_is_modelled() {
    model::run_ops(2, &[Burst(7), Burst(7), Acquire, Poll(0), Drain, Poll(0)]);
}

/// A waiter polled with a new waker is woken through the new one.
#[test]
fn replaced_waker_is_the_one_woken() {
    model::run_ops(1, &[TryAcquire, Acquire, PollFresh(0), DropHeld(0), Poll(0)]);
}

/// Close fails more queued requests than the gate wakes in one batch (32),
/// and more `closed_and_idle` watchers fire at once than fit in one batch.
#[test]
fn close_wakes_more_than_one_batch() {
    let mut ops = vec![TryDrain];
    ops.extend([Acquire, Drain, AcquireOwned, DrainOwned].repeat(10));
    ops.extend([ClosedAndIdle; 20]);
    ops.extend([Close, DropHeld(0), PollAll]);
    model::run_ops(3, &ops);
}

/// Dropping a drain guard grants a whole run of queued readers, then stops at
/// the next drain; its `drain_requested` watchers all fire.
#[test]
fn guard_drop_admits_readers_up_to_the_next_drain() {
    let mut ops = vec![TryAcquire];
    ops.extend([DrainRequested(0); 34]);
    ops.extend([Drain, Acquire, Acquire, Acquire, Drain, Acquire, DropHeld(0), Poll(34)]);
    ops.extend([DropHeld(0), PollAll, DropHeld(0), DropHeld(0), DropHeld(0), PollAll]);
    model::run_ops(8, &ops);
}

/// Weighted requests keep request order: a request for 3 at the front holds
/// back a request for 1 behind it while only 2 are free.
#[test]
fn weighted_request_at_the_front_is_not_overtaken() {
    let many = |n, owned| AcquireMany { n, owned };
    model::run_ops(4, &[TryAcquireMany { n: 2, owned: false }, many(3, false), Acquire, PollAll]);
    model::run_ops(4, &[TryAcquire, TryAcquire, many(3, true), Acquire, DropHeld(0), PollAll]);
}

/// The batch a drain's release admits is counted in permits, and a drain
/// requested while one is held queues behind that batch.
#[test]
fn drain_batch_is_counted_in_permits() {
    let many = |n| AcquireMany { n, owned: false };
    let batch_released = [DropHeld(0), PollAll, DropHeld(0), DropHeld(0), PollAll];
    let mut ops = vec![TryDrain, many(2), many(2), many(1), Drain, DropHeld(0), PollAll];
    ops.extend(batch_released);
    model::run_ops(4, &ops);
    model::run_ops(4, &[TryDrain, many(3), many(2), Drain, many(1), DropHeld(0), PollAll]);
}

/// Counts of 0 and above the cap fail at once on every poll, waiting for
/// nothing and queueing nothing.
#[test]
fn invalid_counts_fail_at_once() {
    for cap in 1..=8 {
        let ops = [
            AcquireMany { n: 0, owned: false },
            AcquireMany { n: 7, owned: true },
            TryAcquireMany { n: 0, owned: false },
            TryAcquireMany { n: 6, owned: true },
            Close,
            AcquireMany { n: 0, owned: true },
        ];
        model::run_ops(cap, &ops);
    }
}
