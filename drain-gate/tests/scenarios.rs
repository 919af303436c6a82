//! The cases of `shared/cases/gate-scenarios.md`, one test per id. Futures are
//! polled by hand, so "at once" means "on the next poll".

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use drain_gate::{CapError, Closed, DrainGate, MAX_CAP, TryAcquireError, TryDrainError};
use support::{pending, ready};

#[test]
fn g01_cancelled_drain_readmits_queued_reader() {
    let gate = DrainGate::new(4);
    let r1 = gate.try_acquire().unwrap();
    let mut d = gate.drain();
    pending(&mut d);
    let mut r2 = gate.acquire();
    let r2_probe = pending(&mut r2);

    drop(d);

    assert!(r2_probe.woken(), "dropping the drain must wake the reader behind it");
    let r2 = ready(&mut r2).unwrap();
    assert_eq!(gate.readers_in_flight(), 2);
    assert!(!gate.is_drain_pending());
    drop((r1, r2));
}

#[test]
fn g02_cancelled_drain_gives_back_reserved_capacity() {
    let gate = DrainGate::new(3);
    let r1 = gate.try_acquire().unwrap();
    let mut d = gate.drain();
    pending(&mut d);
    let mut r2 = gate.acquire();
    pending(&mut r2);

    drop(d);
    let r2 = ready(&mut r2).unwrap();
    drop(r1);
    drop(r2);

    assert_eq!(gate.readers_in_flight(), 0);
    assert_eq!(gate.waiters(), 0);
    let guard = gate.try_drain().expect("an idle gate can be drained");
    drop(guard);
    let permits: Vec<_> = (0..3).map(|_| gate.try_acquire().unwrap()).collect();
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    assert_eq!(permits.len(), gate.cap());
}

#[test]
fn g03_dropped_waiter_does_not_swallow_handoff() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut r1 = gate.acquire();
    let r1_probe = pending(&mut r1);
    let mut r2 = gate.acquire();
    let r2_probe = pending(&mut r2);

    drop(r0);
    assert!(r1_probe.woken());
    drop(r1); // never polled again: its grant must move on

    assert!(r2_probe.woken(), "the hand-off must reach the next waiter");
    let _r2 = ready(&mut r2).unwrap();
    assert_eq!(gate.readers_in_flight(), 1);
}

#[test]
fn g04_grant_to_dropped_future_is_passed_on() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut r1 = gate.acquire();
    let r1_probe = pending(&mut r1);

    drop(r0);
    assert!(r1_probe.woken());
    assert_eq!(gate.readers_in_flight(), 1, "the grant is made on R1's behalf");
    drop(r1);
    assert_eq!(gate.readers_in_flight(), 0);

    let mut r2 = gate.acquire();
    let _r2 = ready(&mut r2).unwrap();
    assert_eq!(gate.readers_in_flight(), 1);
}

#[test]
fn g05_dropped_drain_leaves_no_writer_flag() {
    let gate = DrainGate::new(8);
    let _r1 = gate.try_acquire().unwrap();
    let mut d = gate.drain();
    pending(&mut d);
    assert!(gate.is_drain_pending());

    drop(d);

    assert!(!gate.is_drain_pending());
    assert!(!gate.is_drain_held());
    assert_eq!(gate.waiters(), 0);
    let _r2 = gate.try_acquire().expect("no drain is left to hold readers back");
}

#[test]
fn g06_after_close_and_idle_nothing_enters() {
    let gate = Arc::new(DrainGate::new(4));
    let r1 = gate.try_acquire().unwrap();
    gate.close();
    let mut idle = gate.closed_and_idle();
    let idle_probe = pending(&mut idle);
    drop(r1);
    assert!(idle_probe.woken());
    ready(&mut idle);

    assert_eq!(ready(&mut gate.acquire()).unwrap_err(), Closed);
    assert_eq!(ready(&mut gate.clone().acquire_owned()).unwrap_err(), Closed);
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::Closed);
    assert_eq!(ready(&mut gate.drain()).unwrap_err(), Closed);
    assert_eq!(ready(&mut gate.clone().drain_owned()).unwrap_err(), Closed);
    assert_eq!(gate.try_drain().unwrap_err(), TryDrainError::Closed);
    assert_eq!(gate.readers_in_flight(), 0);
    assert!(!gate.is_drain_held());
}

#[test]
fn g07_close_wakes_and_fails_every_waiter() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut r1 = gate.acquire();
    let r1_probe = pending(&mut r1);
    let mut d = gate.drain();
    let d_probe = pending(&mut d);

    gate.close();

    assert!(r1_probe.woken() && d_probe.woken(), "close must wake every waiter");
    for _ in 0..2 {
        assert_eq!(ready(&mut r1).unwrap_err(), Closed);
        assert_eq!(ready(&mut d).unwrap_err(), Closed);
    }
    assert_eq!(gate.readers_in_flight(), 1, "R0 stays valid");
    assert_eq!(gate.waiters(), 0);
    drop(r0);
    ready(&mut gate.closed_and_idle());
}

#[test]
fn g08_overlapping_readers_cannot_starve_a_drain() {
    let gate = DrainGate::new(4);
    // Readers overlap: each new one is admitted before the previous leaves.
    let mut held = std::collections::VecDeque::new();
    held.push_back(ready(&mut gate.acquire()).unwrap());
    for _ in 0..10 {
        held.push_back(ready(&mut gate.acquire()).unwrap());
        held.pop_front();
    }
    held.push_back(ready(&mut gate.acquire()).unwrap());
    assert_eq!(held.len(), 2);

    let mut d = gate.drain();
    let d_probe = pending(&mut d);

    // The stream keeps coming, but now queues behind D.
    let mut later: Vec<_> = (0..3).map(|_| gate.acquire()).collect();
    let later_probes: Vec<_> = later.iter_mut().map(pending).collect();
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);

    held.pop_front();
    assert!(!d_probe.woken(), "one reader admitted before D is still in");
    held.pop_front();
    assert!(d_probe.woken(), "D completes once the readers before it are out");
    let guard = ready(&mut d).unwrap();
    assert!(later_probes.iter().all(|p| !p.woken()), "later readers wait for the guard");
    assert_eq!(gate.readers_in_flight(), 0);

    drop(guard);
    assert!(later_probes.iter().all(|p| p.woken()));
    let admitted: Vec<_> = later.iter_mut().map(|r| ready(r).unwrap()).collect();
    assert_eq!(gate.readers_in_flight(), admitted.len());
}

#[test]
fn g09_limits() {
    assert_eq!(DrainGate::try_new(0).unwrap_err(), CapError::Zero);
    assert_eq!(
        DrainGate::try_new(MAX_CAP + 1).unwrap_err(),
        CapError::AboveMax { cap: MAX_CAP + 1 }
    );
    let zero = std::panic::catch_unwind(|| DrainGate::new(0)).unwrap_err();
    assert!(panic_text(&*zero).contains("at least 1"), "{}", panic_text(&*zero));
    let above = std::panic::catch_unwind(|| DrainGate::new(usize::MAX)).unwrap_err();
    assert!(panic_text(&*above).contains(&MAX_CAP.to_string()), "{}", panic_text(&*above));

    // At the maximum cap the count has room for every permit.
    let gate = DrainGate::new(MAX_CAP);
    let permits: Vec<_> = (0..1000).map(|_| gate.try_acquire().unwrap()).collect();
    assert_eq!(gate.readers_in_flight(), 1000);
    assert!(!gate.is_closed() && !gate.is_drain_held() && !gate.is_drain_pending());
    let mut d = gate.drain();
    pending(&mut d);
    drop(permits);
    let guard = ready(&mut d).unwrap();
    assert_eq!(gate.readers_in_flight(), 0);
    drop(guard);

    // At a small cap the count stops at the cap and comes back to zero.
    let gate = DrainGate::new(2);
    let a = gate.try_acquire().unwrap();
    let b = gate.try_acquire().unwrap();
    for _ in 0..100 {
        assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    }
    assert_eq!(gate.readers_in_flight(), 2);
    drop((a, b));
    assert_eq!(gate.readers_in_flight(), 0);
    let _guard = gate.try_drain().unwrap();
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn g10_acquire_loop_that_never_waits_lets_other_tasks_run() {
    // Miri is ~1000x slower; a few budgets of iterations still show the bound.
    const LOOPS: usize = if cfg!(miri) { 1_000 } else { 100_000 };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let local = tokio::task::LocalSet::new();
    let iterations = Rc::new(Cell::new(0usize));
    let seen_by_b = Rc::new(Cell::new(None));
    let started = Rc::new(tokio::sync::Notify::new());
    local.block_on(&rt, async {
        let gate = Rc::new(DrainGate::new(4));
        let b = tokio::task::spawn_local({
            let (iterations, seen_by_b, started) =
                (iterations.clone(), seen_by_b.clone(), started.clone());
            async move {
                started.notified().await;
                seen_by_b.set(Some(iterations.get()));
            }
        });
        let a = tokio::task::spawn_local({
            let (iterations, started) = (iterations.clone(), started.clone());
            async move {
                for i in 0..LOOPS {
                    let permit = gate.acquire().await.unwrap();
                    drop(permit);
                    iterations.set(i + 1);
                    if i == 0 {
                        started.notify_one();
                    }
                }
            }
        });
        a.await.unwrap();
        b.await.unwrap();
    });
    let seen = seen_by_b.get().expect("task B ran");
    // B is woken after A's first iteration; A yields within one budget.
    assert!(seen <= 1 + 129, "task B waited for {seen} of A's iterations");
}
