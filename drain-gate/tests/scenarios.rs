//! The cases of `shared/cases/gate-scenarios.md`, one test per id. Futures are
//! polled by hand, so "at once" means "on the next poll".

mod support;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use drain_gate::{
    AcquireManyError, CapError, Closed, DrainGate, InvalidPermits, MAX_CAP, TryAcquireError,
    TryDrainError,
};
use support::{Probe, pending, poll_reentrant, ready};

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

/// Runs `f` on its own thread and fails if it does not finish: a deadlock
/// inside the gate would otherwise hang the test run.
fn without_deadlock(what: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        f();
        let _ = done.send(());
    });
    match finished.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: deadlocked (a waker was dropped under the gate's lock)")
        }
    }
}

#[test]
fn g11_waker_whose_drop_reenters_the_gate() {
    without_deadlock("G11", || {
        let gate = Arc::new(DrainGate::new(2));
        // A's permit lives in D's waker, a second permit in B's.
        let a = gate.clone().try_acquire_owned().unwrap();
        let b_owned = gate.clone().try_acquire_owned().unwrap();
        let mut d = gate.drain();
        assert!(poll_reentrant(&mut d, &gate, a).is_pending());
        let mut b = gate.acquire();
        assert!(poll_reentrant(&mut b, &gate, b_owned).is_pending());
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (2, 2));

        // Re-poll B with another waker: the old one is dropped, releasing
        // its permit; the drain ahead of B still waits for A's.
        let b_probe = Probe::new();
        assert!(b_probe.poll(&mut b).is_pending());
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (1, 2));
        assert!(gate.is_drain_pending());

        // Drop D while it waits: its waker goes, releasing A's permit, and
        // B is granted on its behalf.
        drop(d);
        assert!(b_probe.woken(), "B must be woken once the drain ahead of it left");
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (1, 0));
        assert!(!gate.is_drain_pending());

        // Drop B, granted but unobserved: its grant goes back.
        drop(b);
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (0, 0));

        // Watchers: a permit holder's `drain_requested`, re-polled with a
        // new waker and dropped, while a request is queued (so a release
        // takes the lock).
        let holder = gate.clone().try_acquire_owned().unwrap();
        let second = gate.clone().try_acquire_owned().unwrap();
        let mut queued = gate.acquire();
        let _queued_probe = pending(&mut queued);
        let mut watch = holder.drain_requested();
        assert!(poll_reentrant(&mut watch, &gate, second).is_pending());
        assert_eq!(gate.readers_in_flight(), 2);
        let watch_probe = Probe::new();
        assert!(watch_probe.poll(&mut watch).is_pending());
        // `second` was released by the replaced waker; `queued` took it.
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (2, 0));
        drop(queued);
        let third = gate.clone().try_acquire_owned().unwrap();
        let mut queued = gate.acquire();
        let _queued_probe = pending(&mut queued);
        assert!(poll_reentrant(&mut watch, &gate, third).is_pending());
        drop(watch);
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (2, 0));
        drop(queued);
        drop(holder);
        assert_eq!(gate.readers_in_flight(), 0);

        // Close with waiters whose wakers own permits: each is failed and
        // woken, and its waker's drop releases a permit, after the lock.
        let p1 = gate.clone().try_acquire_owned().unwrap();
        let p2 = gate.clone().try_acquire_owned().unwrap();
        let mut d = gate.drain();
        assert!(poll_reentrant(&mut d, &gate, p1).is_pending());
        let mut r = gate.acquire();
        assert!(poll_reentrant(&mut r, &gate, p2).is_pending());
        assert!(gate.close());
        assert_eq!(ready(&mut d).unwrap_err(), Closed);
        assert_eq!(ready(&mut r).unwrap_err(), Closed);
        drop((d, r));
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (0, 0));
        assert!(!gate.is_drain_pending() && !gate.is_drain_held());
        ready(&mut gate.closed_and_idle());
    });
}

#[test]
fn g12_weighted_permits() {
    let gate = DrainGate::new(4);
    let r1 = gate.try_acquire().unwrap();
    let m3 = ready(&mut gate.acquire_many(3)).expect("3 of the 3 free permits, at once");
    assert_eq!((m3.permits(), gate.readers_in_flight()), (3, 4));

    // Request order: 2 permits asked for before 1.
    let mut m2 = gate.acquire_many(2);
    let m2_probe = pending(&mut m2);
    let mut a1 = gate.acquire();
    let a1_probe = pending(&mut a1);
    drop(r1);
    // One permit is free, but the request at the front needs two: the single
    // request behind it does not overtake it.
    assert!(!m2_probe.woken() && !a1_probe.woken());
    assert_eq!((gate.readers_in_flight(), gate.waiters()), (3, 2));
    drop(m3);
    assert!(m2_probe.woken() && a1_probe.woken());
    let m2 = ready(&mut m2).unwrap();
    let a1 = ready(&mut a1).unwrap();
    assert_eq!((m2.permits(), gate.readers_in_flight()), (2, 3));

    // Counts the gate can never grant fail at once, with the reason.
    let zero = ready(&mut gate.acquire_many(0)).unwrap_err();
    assert_eq!(zero, AcquireManyError::Invalid(InvalidPermits { permits: 0, cap: 4 }));
    assert!(zero.to_string().contains("at least 1"), "{zero}");
    let five = ready(&mut gate.acquire_many(5)).unwrap_err();
    assert!(five.to_string().contains("cap 4"), "{five}");
    let try_five = gate.try_acquire_many(5).unwrap_err();
    assert_eq!(try_five, TryAcquireError::Invalid(InvalidPermits { permits: 5, cap: 4 }));
    // Both errors carry the invalid count as their source.
    for e in [&five as &dyn std::error::Error, &try_five] {
        let source = e.source().expect("an invalid count is the source");
        assert_eq!(source.to_string(), InvalidPermits { permits: 5, cap: 4 }.to_string());
    }
    assert_eq!(gate.waiters(), 0, "an invalid request never queues");

    // A drain waits for every permit, weighted or not.
    let mut d = gate.drain();
    let d_probe = pending(&mut d);
    drop(a1);
    assert!(!d_probe.woken(), "2 permits are still out");
    drop(m2);
    let guard = ready(&mut d).unwrap();

    // The batch a drain's release admits is counted in permits: readers of
    // 2, 2 and 1 queue behind the guard; a drain requested now goes behind
    // the first two (4 permits, the cap) and ahead of the third.
    let mut w = [gate.acquire_many(2), gate.acquire_many(2), gate.acquire_many(1)];
    let probes: Vec<Probe> = w.iter_mut().map(|f| pending(f)).collect();
    let mut d2 = gate.drain();
    let d2_probe = pending(&mut d2);
    drop(guard);
    assert!(probes[0].woken() && probes[1].woken(), "the batch is admitted");
    assert!(!probes[2].woken() && !d2_probe.woken(), "the drain is next, then the third");
    let [w0, w1, w2] = &mut w;
    let batch = (ready(w0).unwrap(), ready(w1).unwrap());
    drop(batch);
    assert!(d2_probe.woken() && !probes[2].woken());
    drop(ready(&mut d2).unwrap());
    assert!(probes[2].woken());
    assert_eq!(ready(w2).unwrap().permits(), 1);
}

/// Documented under Fairness on `DrainGate`: a drain future kept alive but
/// no longer polled holds back every later reader, and once granted on its
/// behalf holds the guard until it is dropped.
#[test]
fn unpolled_drain_holds_back_later_readers_until_dropped() {
    let gate = DrainGate::new(2);
    let reader = gate.try_acquire().unwrap();
    let mut drain = gate.drain();
    let drain_probe = pending(&mut drain);
    // Never polled again from here on.
    let mut later = gate.acquire();
    let later_probe = pending(&mut later);
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);

    drop(reader);
    assert!(drain_probe.woken() && gate.is_drain_held(), "granted on its behalf");
    assert!(!later_probe.woken());
    for _ in 0..3 {
        assert!(later_probe.poll(&mut later).is_pending(), "a later reader waits");
    }
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);

    drop(drain);
    assert!(later_probe.woken() && !gate.is_drain_held());
    drop(ready(&mut later).unwrap());
    assert_eq!((gate.readers_in_flight(), gate.waiters()), (0, 0));
}

/// Documented under Fairness on `DrainGate`: holding a permit and asking
/// for another while a drain is queued waits for itself; releasing the held
/// permit is what lets both go on.
#[test]
fn permit_holder_asking_again_behind_a_drain_waits_for_itself() {
    let gate = DrainGate::new(4);
    let held = gate.try_acquire().unwrap();
    let mut drain = gate.drain();
    let drain_probe = pending(&mut drain);
    let mut again = gate.acquire();
    let again_probe = pending(&mut again);
    let mut wide = gate.acquire_many(2);
    pending(&mut wide);
    // Free permits are not enough: the drain ahead waits for `held`.
    assert_eq!(gate.readers_in_flight(), 1);
    for _ in 0..3 {
        assert!(again_probe.poll(&mut again).is_pending());
        assert!(drain_probe.poll(&mut drain).is_pending());
    }
    assert!(!again_probe.woken() && !drain_probe.woken());

    drop(held);
    let guard = ready(&mut drain).unwrap();
    drop(guard);
    drop(ready(&mut again).unwrap());
    drop(ready(&mut wide).unwrap());
    assert_eq!((gate.readers_in_flight(), gate.waiters()), (0, 0));
}
