//! The gate's contract, point by point (a–j of the drain-gate issue). Each
//! test is named after the behaviour it pins; futures are polled by hand.

mod support;

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use drain_gate::{
    Closed, DrainGate, OwnedDrainGuard, OwnedReadPermit, PollDrainGate, TryAcquireError,
    TryDrainError,
};
use futures_core::Stream;
use support::{Probe, pending, ready};

// ----- a. construction -----------------------------------------------------

#[test]
#[should_panic(expected = "drain gate cap must be at least 1, got 0")]
fn a_new_with_cap_zero_panics_naming_the_limit() {
    let _ = DrainGate::new(0);
}

#[test]
#[should_panic(expected = "exceeds the maximum of")]
fn a_new_above_max_cap_panics_naming_the_limit() {
    let _ = DrainGate::new(drain_gate::MAX_CAP + 1);
}

#[test]
fn a_try_new_returns_errors_that_explain_the_limit() {
    let zero = DrainGate::try_new(0).unwrap_err();
    assert_eq!(zero.to_string(), "drain gate cap must be at least 1, got 0");
    let above = DrainGate::try_new(usize::MAX).unwrap_err();
    assert!(above.to_string().contains(&drain_gate::MAX_CAP.to_string()));
    assert_eq!(DrainGate::try_new(1).unwrap().cap(), 1);
}

// ----- b. read permits -----------------------------------------------------

fn assert_static_send_sync<T: 'static + Send + Sync>() {}

#[test]
fn b_owned_permits_and_guards_are_static_send_sync() {
    assert_static_send_sync::<OwnedReadPermit>();
    assert_static_send_sync::<OwnedDrainGuard>();
    assert_static_send_sync::<drain_gate::AcquireOwned>();
    assert_static_send_sync::<drain_gate::DrainOwned>();
    fn assert_send<T: Send>(_: &T) {}
    let gate = DrainGate::new(1);
    assert_send(&gate.acquire());
    assert_send(&gate.drain());
}

#[test]
fn b_never_more_than_cap_permits_outstanding() {
    let gate = DrainGate::new(3);
    let mut held: Vec<_> = (0..3).map(|_| ready(&mut gate.acquire()).unwrap()).collect();
    let mut fourth = gate.acquire();
    let probe = pending(&mut fourth);
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    assert_eq!(gate.readers_in_flight(), 3);
    drop(held.pop());
    assert!(probe.woken());
    let _fourth = ready(&mut fourth).unwrap();
    assert_eq!(gate.readers_in_flight(), 3);
}

#[test]
fn b_try_acquire_never_waits_and_never_overtakes_a_waiter() {
    let gate = DrainGate::new(2);
    let _r1 = gate.try_acquire().unwrap();
    let _guard_req = {
        let mut d = gate.drain();
        pending(&mut d);
        d
    };
    // One permit is free, but a drain is queued: try_acquire must not jump it.
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
}

#[test]
fn b_permit_is_released_during_panic_unwinding() {
    let gate = Arc::new(DrainGate::new(2));
    let permit = gate.clone().try_acquire_owned().unwrap();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _permit = permit;
        panic!("read failed");
    }));
    assert!(unwound.is_err());
    assert_eq!(gate.readers_in_flight(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b_owned_permit_travels_into_a_task_that_panics() {
    let gate = Arc::new(DrainGate::new(4));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<OwnedReadPermit>(1);
    tx.send(gate.clone().acquire_owned().await.unwrap()).await.unwrap();
    let task = tokio::spawn(async move {
        let _permit = rx.recv().await.unwrap();
        panic!("backend read panicked");
    });
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(gate.readers_in_flight(), 0);
    let _guard = gate.try_drain().expect("the panicking task's permit was released");
}

// ----- c. drain ----------------------------------------------------------

#[test]
fn c_no_read_permit_exists_while_a_guard_does() {
    let gate = DrainGate::new(4);
    let guard = ready(&mut gate.drain()).unwrap();
    assert!(gate.is_drain_held());
    assert_eq!(gate.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    let mut r = gate.acquire();
    let probe = pending(&mut r);
    assert_eq!(gate.readers_in_flight(), 0);
    drop(guard);
    assert!(probe.woken());
    let _r = ready(&mut r).unwrap();
    assert!(!gate.is_drain_held());
}

#[test]
fn c_drains_are_served_in_request_order() {
    let gate = DrainGate::new(2);
    let r = gate.try_acquire().unwrap();
    let mut d1 = gate.drain();
    let p1 = pending(&mut d1);
    let mut d2 = gate.drain();
    let p2 = pending(&mut d2);
    drop(r);
    assert!(p1.woken() && !p2.woken());
    let g1 = ready(&mut d1).unwrap();
    assert!(gate.is_drain_pending() && p2.poll(&mut d2).is_pending());
    drop(g1);
    assert!(p2.woken());
    let _g2 = ready(&mut d2).unwrap();
}

#[test]
fn c_readers_queued_behind_a_drain_go_before_a_later_drain() {
    let gate = DrainGate::new(4);
    let r0 = gate.try_acquire().unwrap();
    let mut d1 = gate.drain();
    pending(&mut d1);
    let mut readers: Vec<_> = (0..2).map(|_| gate.acquire()).collect();
    let reader_probes: Vec<_> = readers.iter_mut().map(pending).collect();
    let mut d2 = gate.drain();
    let p2 = pending(&mut d2);

    drop(r0);
    let g1 = ready(&mut d1).unwrap();
    drop(g1);

    assert!(reader_probes.iter().all(Probe::woken), "readers behind D1 are admitted");
    assert!(!p2.woken(), "D2 waits for the readers queued before it");
    let admitted: Vec<_> = readers.iter_mut().map(|r| ready(r).unwrap()).collect();
    assert_eq!(gate.readers_in_flight(), 2);
    drop(admitted);
    assert!(p2.woken());
    let _g2 = ready(&mut d2).unwrap();
}

#[test]
fn c_try_drain_needs_an_idle_gate() {
    let gate = DrainGate::new(2);
    let g = gate.try_drain().unwrap();
    assert_eq!(gate.try_drain().unwrap_err(), TryDrainError::Busy);
    drop(g);
    let r = gate.try_acquire().unwrap();
    assert_eq!(gate.try_drain().unwrap_err(), TryDrainError::Busy);
    drop(r);
    let _g = gate.try_drain().unwrap();
}

// ----- d. cancel safety ------------------------------------------------------

#[test]
fn d_dropping_a_never_polled_future_changes_nothing() {
    let gate = Arc::new(DrainGate::new(1));
    drop(gate.acquire());
    drop(gate.drain());
    drop(gate.clone().acquire_owned());
    drop(gate.clone().drain_owned());
    drop(gate.closed_and_idle());
    assert_eq!(gate.readers_in_flight(), 0);
    assert_eq!(gate.waiters(), 0);
    let _g = gate.try_drain().unwrap();
}

#[test]
fn d_dropping_a_granted_unobserved_drain_passes_the_grant_on() {
    let gate = Arc::new(DrainGate::new(2));
    let r = gate.try_acquire().unwrap();
    let mut d = gate.clone().drain_owned();
    let dp = pending(&mut d);
    let mut r2 = gate.clone().acquire_owned();
    let rp = pending(&mut r2);
    drop(r);
    assert!(dp.woken() && gate.is_drain_held(), "the drain was granted");
    drop(d);
    assert!(!gate.is_drain_held());
    assert!(rp.woken());
    let _r2 = ready(&mut r2).unwrap();
    assert_eq!(gate.readers_in_flight(), 1);
}

#[test]
fn d_dropping_a_pending_owned_drain_readmits_at_once() {
    let gate = Arc::new(DrainGate::new(2));
    let _r = gate.try_acquire().unwrap();
    let mut d = gate.clone().drain_owned();
    pending(&mut d);
    let mut queued: Vec<_> = (0..2).map(|_| gate.clone().acquire_owned()).collect();
    queued.iter_mut().for_each(|r| drop(pending(r)));
    drop(d);
    // One permit free (cap 2, one in flight): the first queued reader gets it.
    let _first = ready(&mut queued[0]).unwrap();
    assert!(Probe::new().poll(&mut queued[1]).is_pending());
    assert_eq!(gate.waiters(), 1);
}

#[test]
fn d_a_waiter_polled_with_a_new_waker_is_woken_through_it() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut r1 = gate.acquire();
    let old = pending(&mut r1);
    let new = pending(&mut r1); // moved to another task, say
    drop(r0);
    assert!(new.woken());
    assert!(!old.woken());
    let _r1 = ready(&mut r1).unwrap();
}

#[test]
fn d_many_cancelled_waiters_leave_the_queue_empty() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut futures: Vec<_> = (0..100).map(|i| (i, gate.acquire(), gate.drain())).collect();
    for (_, r, d) in futures.iter_mut() {
        pending(r);
        pending(d);
    }
    assert_eq!(gate.waiters(), 200);
    // Drop in an order that is neither FIFO nor LIFO.
    futures.sort_by_key(|(i, _, _)| (i * 37) % 100);
    drop(futures);
    assert_eq!(gate.waiters(), 0);
    assert!(!gate.is_drain_pending());
    drop(r0);
    let _g = gate.try_drain().unwrap();
}

// ----- e. close ------------------------------------------------------------

#[test]
fn e_close_is_idempotent_and_keeps_held_permits_valid() {
    let gate = DrainGate::new(2);
    let r = gate.try_acquire().unwrap();
    assert!(gate.close());
    assert!(!gate.close());
    assert!(gate.is_closed());
    assert_eq!(gate.readers_in_flight(), 1);
    assert!(r.gate().is_closed());
    let mut idle = gate.closed_and_idle();
    let p = pending(&mut idle);
    drop(r);
    assert!(p.woken());
    ready(&mut idle);
    ready(&mut idle); // a re-poll stays ready
}

#[test]
fn e_a_grant_not_observed_before_close_resolves_closed() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut r1 = gate.acquire();
    pending(&mut r1);
    drop(r0); // granted to r1, not yet observed
    assert_eq!(gate.readers_in_flight(), 1);
    gate.close();
    let mut idle = gate.closed_and_idle();
    let p = pending(&mut idle);
    assert_eq!(ready(&mut r1).unwrap_err(), Closed);
    assert_eq!(gate.readers_in_flight(), 0, "the grant went back");
    assert!(p.woken());
    ready(&mut idle);
}

#[test]
fn e_close_fails_waiting_drain_and_later_requests() {
    let gate = Arc::new(DrainGate::new(1));
    let r = gate.try_acquire().unwrap();
    let mut d = gate.clone().drain_owned();
    let p = pending(&mut d);
    gate.close();
    assert!(p.woken());
    assert_eq!(ready(&mut d).unwrap_err(), Closed);
    assert_eq!(ready(&mut d).unwrap_err(), Closed);
    assert_eq!(gate.clone().try_drain_owned().unwrap_err(), TryDrainError::Closed);
    assert_eq!(gate.clone().try_acquire_owned().unwrap_err(), TryAcquireError::Closed);
    drop(r);
}

#[test]
fn e_closed_and_idle_resolves_at_once_when_already_idle() {
    let gate = DrainGate::new(1);
    gate.close();
    ready(&mut gate.closed_and_idle());
}

#[test]
fn e_closed_and_idle_waits_for_a_held_guard() {
    let gate = DrainGate::new(1);
    let g = gate.try_drain().unwrap();
    gate.close();
    let mut idle = gate.closed_and_idle();
    let p = pending(&mut idle);
    drop(g);
    assert!(p.woken());
    ready(&mut idle);
}

#[test]
fn e_closed_and_idle_wakes_many_watchers() {
    let gate = DrainGate::new(1);
    let r = gate.try_acquire().unwrap();
    let mut watchers: Vec<_> = (0..70).map(|_| gate.closed_and_idle()).collect();
    let probes: Vec<_> = watchers.iter_mut().map(pending).collect();
    gate.close();
    assert!(probes.iter().all(|p| !p.woken()));
    drop(r);
    assert!(probes.iter().all(Probe::woken));
    watchers.iter_mut().for_each(|w| ready(w));
}

#[test]
fn e_close_fails_more_waiters_than_one_wake_batch() {
    let gate = DrainGate::new(1);
    let _r = gate.try_acquire().unwrap();
    let mut waiters: Vec<_> = (0..100).map(|_| gate.acquire()).collect();
    let probes: Vec<_> = waiters.iter_mut().map(pending).collect();
    gate.close();
    assert!(probes.iter().all(Probe::woken));
    assert!(waiters.iter_mut().all(|w| ready(w).unwrap_err() == Closed));
}

// ----- f. cooperative preemption ----------------------------------------------

#[test]
fn f_permit_sees_a_pending_drain_and_its_future_fires() {
    let gate = Arc::new(DrainGate::new(2));
    let permit = gate.clone().try_acquire_owned().unwrap();
    assert!(!permit.is_drain_pending());
    let mut watch = permit.drain_requested();
    let wp = pending(&mut watch);

    let mut d = gate.drain();
    pending(&mut d);
    assert!(wp.woken(), "a queued drain wakes the permit's watcher");
    assert!(permit.is_drain_pending());
    ready(&mut watch);
    // Already pending: a new watcher is ready at once.
    ready(&mut permit.drain_requested());
    drop(watch);
    drop(permit);
    let _g = ready(&mut d).unwrap();
}

#[test]
fn f_borrowed_permit_watcher_is_unregistered_on_drop() {
    let gate = DrainGate::new(2);
    let permit = gate.try_acquire().unwrap();
    let mut watch = permit.drain_requested();
    pending(&mut watch);
    drop(watch);
    let mut d = gate.drain();
    pending(&mut d);
    assert!(permit.is_drain_pending());
    drop(permit);
    let _g = ready(&mut d).unwrap();
}

#[tokio::test(start_paused = true)]
async fn f_long_read_stops_early_when_a_drain_is_requested() {
    let gate = Arc::new(DrainGate::new(4));
    let permit = gate.clone().acquire_owned().await.unwrap();
    let read = tokio::spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => "finished",
            _ = permit.drain_requested() => "stopped early",
        }
    });
    let _guard = gate.drain().await.unwrap();
    assert_eq!(read.await.unwrap(), "stopped early");
}

// ----- g. introspection ---------------------------------------------------

#[test]
fn g_introspection_reports_readers_waiters_and_drain_state() {
    let gate = DrainGate::new(1);
    assert_eq!((gate.readers_in_flight(), gate.waiters()), (0, 0));
    let r = gate.try_acquire().unwrap();
    let mut r2 = gate.acquire();
    pending(&mut r2);
    let mut d = gate.drain();
    pending(&mut d);
    assert_eq!(gate.readers_in_flight(), 1);
    assert_eq!(gate.waiters(), 2);
    assert!(gate.is_drain_pending() && !gate.is_drain_held() && !gate.is_closed());
    drop(r);
    // The drain waited only for the reader admitted before it.
    let g = ready(&mut d).unwrap();
    assert!(gate.is_drain_held() && !gate.is_drain_pending());
    assert_eq!((gate.readers_in_flight(), gate.waiters()), (0, 1));
    drop(g);
    assert!(!gate.is_drain_held());
    let _r2 = ready(&mut r2).unwrap();
    assert_eq!((gate.readers_in_flight(), gate.waiters()), (1, 0));
}

// ----- h. poll form ----------------------------------------------------------

#[test]
fn h_poll_gate_keeps_its_place_between_polls() {
    let gate = Arc::new(DrainGate::new(1));
    let mut pg = PollDrainGate::new(gate.clone());
    let probe = Probe::new();
    let first = match poll_fn_once(&mut pg, &probe, PollDrainGate::poll_acquire) {
        Poll::Ready(p) => p.unwrap(),
        Poll::Pending => panic!("idle gate"),
    };
    assert!(poll_fn_once(&mut pg, &probe, PollDrainGate::poll_acquire).is_pending());
    assert!(poll_fn_once(&mut pg, &probe, PollDrainGate::poll_drain).is_pending());
    assert_eq!(gate.waiters(), 2, "one read and one drain request, not one per poll");
    assert!(poll_fn_once(&mut pg, &probe, PollDrainGate::poll_acquire).is_pending());
    assert_eq!(gate.waiters(), 2);
    drop(first);
    // The drain goes ahead of the read that only waited for capacity.
    let guard = match poll_fn_once(&mut pg, &probe, PollDrainGate::poll_drain) {
        Poll::Ready(g) => g.unwrap(),
        Poll::Pending => panic!("the drain was granted"),
    };
    assert!(poll_fn_once(&mut pg, &probe, PollDrainGate::poll_acquire).is_pending());
    drop(guard);
    assert!(poll_fn_once(&mut pg, &probe, PollDrainGate::poll_acquire).is_ready());
}

fn poll_fn_once<T>(
    pg: &mut PollDrainGate,
    probe: &Probe,
    f: fn(&mut PollDrainGate, &mut std::task::Context<'_>) -> Poll<T>,
) -> Poll<T> {
    let mut fut = poll_fn(|cx| f(pg, cx));
    probe.poll(&mut fut)
}

#[test]
fn h_dropping_a_poll_gate_cancels_its_requests() {
    let gate = Arc::new(DrainGate::new(1));
    let r = gate.try_acquire().unwrap();
    let mut pg = PollDrainGate::new(gate.clone());
    let probe = Probe::new();
    assert!(poll_fn_once(&mut pg, &probe, PollDrainGate::poll_drain).is_pending());
    assert!(poll_fn_once(&mut pg, &probe, PollDrainGate::poll_acquire).is_pending());
    drop(pg);
    assert_eq!(gate.waiters(), 0);
    drop(r);
    let _g = gate.try_drain().unwrap();
}

#[test]
fn h_poll_gate_stream_ends_when_the_gate_closes() {
    let gate = Arc::new(DrainGate::new(1));
    let mut pg = PollDrainGate::new(gate.clone());
    let mut next = poll_fn(|cx| std::pin::Pin::new(&mut pg).poll_next(cx));
    let permit = ready(&mut next).expect("a permit");
    let mut next = poll_fn(|cx| std::pin::Pin::new(&mut pg).poll_next(cx));
    let p = pending(&mut next);
    gate.close();
    assert!(p.woken());
    assert!(ready(&mut next).is_none());
    drop(permit);
}

// ----- i. fast path ------------------------------------------------------------
// (The allocation-free fast path is pinned in tests/no_alloc.rs, which needs
// its own global allocator.)

#[test]
fn i_uncontended_acquire_does_not_touch_the_queue() {
    let gate = DrainGate::new(8);
    let probe = Probe::new();
    for _ in 0..1000 {
        let mut acquire = gate.acquire();
        // The executor-fairness yield (j) may make the first poll Pending.
        let permit = loop {
            if let Poll::Ready(permit) = probe.poll(&mut acquire) {
                break permit.unwrap();
            }
        };
        assert_eq!(gate.waiters(), 0);
        drop(permit);
    }
    assert_eq!(gate.readers_in_flight(), 0);
}

// ----- j. executor fairness --------------------------------------------------

#[test]
fn j_a_request_yields_once_after_a_run_of_immediate_grants() {
    let gate = DrainGate::new(1);
    let mut yields = 0;
    for _ in 0..1000 {
        let mut acquire = gate.acquire();
        let probe = Probe::new();
        match probe.poll(&mut acquire) {
            Poll::Ready(permit) => drop(permit.unwrap()),
            Poll::Pending => {
                assert_eq!(probe.wakes(), 1, "a yield wakes its own task");
                assert_eq!(gate.waiters(), 0, "a yield holds nothing");
                yields += 1;
                drop(ready(&mut acquire).unwrap());
            }
        }
    }
    assert!((7..=8).contains(&yields), "one yield per 129 requests, got {yields}");
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "current_thread")]
async fn j_with_the_tokio_feature_each_grant_spends_tokio_budget() {
    use tokio::task::coop::has_budget_remaining;
    let task = tokio::spawn(async {
        let gate = DrainGate::new(1);
        // tokio gives a task 128 units per poll; 127 grants leave one.
        for _ in 0..127 {
            drop(gate.acquire().await.unwrap());
        }
        let after_127 = has_budget_remaining();
        drop(gate.acquire().await.unwrap());
        (after_127, has_budget_remaining())
    });
    assert_eq!(task.await.unwrap(), (true, false));
}

#[test]
fn c_drain_waits_for_admitted_readers_not_for_readers_queued_for_capacity() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut r1 = gate.acquire(); // queued only because the gate is at cap
    let p1 = pending(&mut r1);
    let mut d = gate.drain();
    let pd = pending(&mut d);

    drop(r0);
    assert!(pd.woken() && !p1.woken(), "the drain waits only for R0, admitted before it");
    let guard = ready(&mut d).unwrap();
    drop(guard);
    assert!(p1.woken());
    let _r1 = ready(&mut r1).unwrap();
}

#[test]
fn c_a_held_drain_admits_the_reader_it_overtook_before_a_later_drain() {
    let gate = DrainGate::new(1);
    let r0 = gate.try_acquire().unwrap();
    let mut r1 = gate.acquire();
    let p1 = pending(&mut r1);
    let mut d1 = gate.drain();
    pending(&mut d1);
    drop(r0);
    let g1 = ready(&mut d1).unwrap(); // D1 overtook R1
    let mut d2 = gate.drain(); // requested while D1 is held
    let p2 = pending(&mut d2);

    drop(g1);
    assert!(p1.woken() && !p2.woken(), "R1 is D1's batch: it goes before D2");
    let r1 = ready(&mut r1).unwrap();
    drop(r1);
    assert!(p2.woken());
    let _g2 = ready(&mut d2).unwrap();
}

#[test]
fn c_each_drain_lets_one_batch_of_cap_readers_ahead_of_the_next() {
    let gate = DrainGate::new(2);
    let r0 = gate.try_acquire().unwrap();
    let mut d1 = gate.drain();
    pending(&mut d1);
    let mut behind: Vec<_> = (0..3).map(|_| gate.acquire()).collect();
    let probes: Vec<_> = behind.iter_mut().map(|r| pending(r)).collect();
    // D2 queues behind D1 and D1's batch: the first two readers behind it.
    let mut d2 = gate.drain();
    let p2 = pending(&mut d2);

    drop(r0);
    drop(ready(&mut d1).unwrap());
    assert!(probes[0].woken() && probes[1].woken(), "D1's batch is admitted");
    assert!(!probes[2].woken() && !p2.woken(), "the third reader is behind D2");
    let batch: Vec<_> = behind[..2].iter_mut().map(|r| ready(r).unwrap()).collect();
    // D3, requested while D2 is queued, goes behind D2's batch: the third reader.
    let mut d3 = gate.drain();
    let p3 = pending(&mut d3);
    drop(batch);
    assert!(p2.woken() && !probes[2].woken());
    let g2 = ready(&mut d2).unwrap();
    drop(g2);
    assert!(probes[2].woken() && !p3.woken(), "D2's batch goes before D3");
    let third = ready(&mut behind[2]).unwrap();
    drop(third);
    assert!(p3.woken());
    let _g3 = ready(&mut d3).unwrap();
}

/// Found by review: a release woke its batch in chunks of 32, dropping the
/// queue's lock between chunks, so with `cap` above 32 a drain requested
/// while the first chunk was being woken (here: by the first reader's
/// waker, as another thread would) went ahead of the rest of the batch.
#[test]
fn c_a_release_admits_its_whole_batch_before_a_drain_requested_while_it_wakes() {
    use std::sync::Mutex;
    use std::task::{Wake, Waker};

    /// Requests a drain the first time it is woken, and keeps the future.
    struct RequestDrainOnWake {
        gate: Arc<DrainGate>,
        drain: Mutex<Option<drain_gate::DrainOwned>>,
    }
    impl Wake for RequestDrainOnWake {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            let mut slot = self.drain.lock().unwrap();
            if slot.is_none() {
                let mut drain = self.gate.clone().drain_owned();
                assert!(Probe::new().poll(&mut drain).is_pending());
                *slot = Some(drain);
            }
        }
    }

    const CAP: usize = 64;
    let gate = Arc::new(DrainGate::new(CAP));
    let d1 = gate.clone().try_drain_owned().unwrap();
    let requester = Arc::new(RequestDrainOnWake { gate: gate.clone(), drain: Mutex::new(None) });
    let mut first = gate.clone().acquire_owned();
    let waker = Waker::from(requester.clone());
    let mut cx = std::task::Context::from_waker(&waker);
    assert!(std::pin::Pin::new(&mut first).poll(&mut cx).is_pending());
    let mut rest: Vec<_> = (0..2 * CAP).map(|_| gate.clone().acquire_owned()).collect();
    rest.iter_mut().for_each(|r| drop(pending(r)));

    drop(d1);
    assert!(requester.drain.lock().unwrap().is_some(), "the first reader's wake requested D2");
    assert_eq!(gate.readers_in_flight(), CAP, "D1's release admitted its whole batch");
    assert!(!gate.is_drain_held());
    let batch: Vec<_> = std::iter::once(ready(&mut first).unwrap())
        .chain(rest[..CAP - 1].iter_mut().map(|r| ready(r).unwrap()))
        .collect();
    let mut d2 = requester.drain.lock().unwrap().take().unwrap();
    assert!(Probe::new().poll(&mut d2).is_pending(), "D2 waits for the batch in flight");
    drop(batch);
    let g2 = ready(&mut d2).unwrap();
    drop(g2);
    assert_eq!(gate.readers_in_flight(), CAP, "D2's batch: the next CAP readers");
}

/// Found by the cold-task benches: one write after another under a reader
/// flood waited for the whole reader backlog each time, because every
/// reader a drain had overtaken was fenced against all later drains.
#[test]
fn c_drains_under_a_reader_backlog_wait_for_one_batch_not_the_backlog() {
    const CAP: usize = 2;
    let gate = DrainGate::new(CAP);
    let mut in_flight: Vec<_> = (0..CAP).map(|_| gate.try_acquire().unwrap()).collect();
    let mut backlog: Vec<_> = (0..10).map(|_| gate.acquire()).collect();
    let probes: Vec<_> = backlog.iter_mut().map(|r| pending(r)).collect();
    for round in 0..4 {
        // One write: its drain waits only for the CAP readers in flight.
        let mut d = gate.drain();
        let pd = pending(&mut d);
        in_flight.clear();
        assert!(pd.woken(), "round {round}: the drain waits for the readers in flight only");
        drop(ready(&mut d).unwrap());
        // Its release admits the next CAP readers of the backlog, in order.
        let batch = round * CAP..(round + 1) * CAP;
        for (i, probe) in probes.iter().enumerate() {
            assert_eq!(probe.woken(), i < batch.end, "round {round}: reader {i}");
        }
        in_flight = backlog[batch].iter_mut().map(|r| ready(r).unwrap()).collect();
    }
    drop(in_flight);
    // The rest of the backlog was never lost.
    let rest: Vec<_> = backlog[8..].iter_mut().map(|r| ready(r).unwrap()).collect();
    assert_eq!(rest.len(), 2);
}
