//! Instructions per uncontended acquire + release, for callgrind: one loop of
//! `ITERS` iterations of one case, on this thread, polled with a no-op
//! waker (no runtime), inside [`measured`] so callgrind can count just it.
//!
//! Two more cases count the slow path, without contention: `queued` is one
//! read that waits (queued behind the only permit, granted by its release,
//! polled again to observe the grant: the path nearly every operation takes
//! in the contended rows with a drain every 100 at 256 tasks), and
//! `drain_batch` is one drain on an idle gate with `CAP` readers queued
//! behind it, admitted as a batch by its release (per iteration: the drain
//! and `CAP` reads).
//!
//! ```text
//! cargo build --release -p benches --example gate_instructions
//! for case in empty floor acquire acquire_owned try_acquire drain_idle tokio_acquire \
//!     queued drain_batch; do
//!   valgrind --tool=callgrind --toggle-collect='*gate_instructions::measured*' \
//!     --callgrind-out-file=/tmp/cg.$case target/release/examples/gate_instructions $case 1000000
//! done
//! ```
//!
//! The `Collected` line (or `callgrind_annotate`'s `PROGRAM TOTALS`) is the
//! loop's total Ir; instructions per operation are
//! `(Ir(case) - Ir(empty)) / ITERS`. The loop bodies are those of
//! `benches::uncontended` (the permit goes through `black_box`, then is
//! dropped), so the gate's 128-request budget yields here too: once every
//! 129 polls the request returns `Pending` and this loop polls it again.

use std::hint::black_box;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::task::{Context, Poll, Waker};

use benches::CAP;
use benches::uncontended::cas_then_fetch_sub;
use drain_gate::DrainGate;

const USAGE: &str = "usage: gate_instructions \
    empty|floor|acquire|acquire_owned|try_acquire|drain_idle|tokio_acquire|queued|drain_batch \
    ITERS";

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().expect(USAGE);
    let iters: u64 = args.next().and_then(|n| n.parse().ok()).expect(USAGE);
    // Built before the counted loop, so construction is not counted.
    let gate = Arc::new(DrainGate::new(CAP));
    let word = AtomicUsize::new(0);
    let sem = tokio::sync::Semaphore::new(CAP);
    measured(&case, black_box(iters), &gate, &word, &sem);
    println!("{case}: {iters} iterations");
}

/// The counted loop: `iters` iterations of `case`.
#[inline(never)]
fn measured(
    case: &str,
    iters: u64,
    gate: &Arc<DrainGate>,
    word: &AtomicUsize,
    sem: &tokio::sync::Semaphore,
) {
    match case {
        "empty" => poll_to_end(async {
            for i in 0..iters {
                black_box(i);
            }
        }),
        "floor" => poll_to_end(async {
            for _ in 0..iters {
                cas_then_fetch_sub(word);
            }
        }),
        "acquire" => poll_to_end(async {
            for _ in 0..iters {
                drop(black_box(gate.acquire().await.unwrap()));
            }
        }),
        "acquire_owned" => poll_to_end(async {
            for _ in 0..iters {
                drop(black_box(gate.clone().acquire_owned().await.unwrap()));
            }
        }),
        "try_acquire" => poll_to_end(async {
            for _ in 0..iters {
                drop(black_box(gate.try_acquire().unwrap()));
            }
        }),
        "drain_idle" => poll_to_end(async {
            for _ in 0..iters {
                drop(black_box(gate.drain().await.unwrap()));
            }
        }),
        "tokio_acquire" => poll_to_end(async {
            for _ in 0..iters {
                drop(black_box(sem.acquire().await.unwrap()));
            }
        }),
        "queued" => queued(iters),
        "drain_batch" => drain_batch(iters),
        other => panic!("unknown case {other:?} ({USAGE})"),
    }
}

/// `iters` reads through the queue: on a gate of cap 1 whose permit is
/// held, a read queues (first poll), the holder's release grants it (under
/// the lock), and a second poll observes the grant; its permit is the next
/// holder.
fn queued(iters: u64) {
    let gate = DrainGate::new(1);
    let mut cx = Context::from_waker(Waker::noop());
    let mut held = gate.try_acquire().unwrap();
    for _ in 0..iters {
        let mut next = gate.acquire();
        assert!(Pin::new(&mut next).poll(&mut cx).is_pending(), "queues behind the holder");
        drop(held);
        held = match Pin::new(&mut next).poll(&mut cx) {
            Poll::Ready(permit) => permit.unwrap(),
            Poll::Pending => unreachable!("granted by the release"),
        };
    }
    drop(held);
}

/// `iters` drains on an idle gate, each with `CAP` reads queued behind it
/// and admitted as one batch by its release, then polled and released.
fn drain_batch(iters: u64) {
    let gate = DrainGate::new(CAP);
    let mut cx = Context::from_waker(Waker::noop());
    let mut reads = Vec::with_capacity(CAP);
    let mut permits = Vec::with_capacity(CAP);
    for _ in 0..iters {
        let guard = gate.try_drain().unwrap();
        for _ in 0..CAP {
            let mut read = gate.acquire();
            assert!(Pin::new(&mut read).poll(&mut cx).is_pending(), "queues behind the drain");
            reads.push(read);
        }
        drop(guard);
        for mut read in reads.drain(..) {
            match Pin::new(&mut read).poll(&mut cx) {
                Poll::Ready(permit) => permits.push(permit.unwrap()),
                Poll::Pending => unreachable!("admitted by the drain's release"),
            }
        }
        permits.clear();
    }
}

/// Polls `fut` with a no-op waker until it is ready: the smallest executor,
/// so the count is the gate's and the loop's, not a runtime's.
fn poll_to_end(fut: impl Future<Output = ()>) {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    while fut.as_mut().poll(&mut cx) == Poll::Pending {}
}
