//! loom models of the gate's races. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p drain-gate --test loom --release`;
//! `LOOM_MAX_PREEMPTIONS` raises the preemption bound (default 2 here).
//!
//! The gate swaps in loom's atomics and mutex through its internal `loom`
//! module, so these models check the code that ships.

#![cfg(loom)]

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use drain_gate::{Closed, DrainGate};
use loom::future::block_on;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use support::poll_reentrant;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    builder.check(f);
}

/// Polls once with a no-op waker.
fn poll_once<F: Future + Unpin>(fut: &mut F) -> Poll<F::Output> {
    Pin::new(fut).poll(&mut Context::from_waker(std::task::Waker::noop()))
}

#[test]
fn release_races_drain_request() {
    model(|| {
        let gate = Arc::new(DrainGate::new(2));
        let permit = gate.clone().try_acquire_owned().unwrap();
        let reader = thread::spawn(move || drop(permit));
        let guard = block_on(gate.drain()).unwrap();
        assert_eq!(gate.readers_in_flight(), 0);
        assert!(gate.is_drain_held());
        drop(guard);
        reader.join().unwrap();
        assert!(!gate.is_drain_held() && !gate.is_drain_pending());
        assert_eq!(gate.waiters(), 0);
        drop(gate.try_drain().unwrap());
    });
}

#[test]
fn pending_drain_dropped_while_reader_releases() {
    model(|| {
        let gate = Arc::new(DrainGate::new(1));
        let permit = gate.clone().try_acquire_owned().unwrap();
        let mut drain = gate.clone().drain_owned();
        // The permit is still held, so the drain queues.
        assert!(poll_once(&mut drain).is_pending());
        let reader = thread::spawn(move || drop(permit));
        // A reader queued behind the drain, on its own thread.
        let waiter = {
            let gate = gate.clone();
            thread::spawn(move || {
                let permit = block_on(gate.acquire()).unwrap();
                assert!(!gate.is_drain_held());
                drop(permit);
            })
        };
        drop(drain);
        reader.join().unwrap();
        waiter.join().unwrap();
        assert_eq!(gate.readers_in_flight(), 0);
        assert_eq!(gate.waiters(), 0);
        assert!(!gate.is_drain_pending() && !gate.is_drain_held());
        drop(gate.try_drain().unwrap());
        drop(gate.try_acquire().unwrap());
    });
}

#[test]
fn close_races_acquire_and_drain() {
    model(|| {
        let gate = Arc::new(DrainGate::new(1));
        let reader = {
            let gate = gate.clone();
            thread::spawn(move || block_on(gate.clone().acquire_owned()).map(drop))
        };
        let writer = {
            let gate = gate.clone();
            thread::spawn(move || block_on(gate.drain()).map(drop))
        };
        gate.close();
        let read: Result<(), Closed> = reader.join().unwrap();
        let write: Result<(), Closed> = writer.join().unwrap();
        // Either may have won before the close; nothing hangs (loom reports
        // a deadlock if a waiter is never woken) and nothing is left behind.
        let _ = (read, write);
        block_on(gate.closed_and_idle());
        assert_eq!(gate.readers_in_flight(), 0);
        assert!(!gate.is_drain_held());
        assert!(gate.try_acquire().is_err() && gate.try_drain().is_err());
    });
}

#[test]
fn two_drains_and_a_reader() {
    model(|| {
        let gate = Arc::new(DrainGate::new(2));
        // Who is inside: readers count 1 each, a drain counts 100.
        let inside = Arc::new(AtomicUsize::new(0));
        let drains: Vec<_> = (0..2)
            .map(|_| {
                let (gate, inside) = (gate.clone(), inside.clone());
                thread::spawn(move || {
                    let guard = block_on(gate.drain()).unwrap();
                    assert_eq!(inside.fetch_add(100, Ordering::SeqCst), 0, "drain not exclusive");
                    inside.fetch_sub(100, Ordering::SeqCst);
                    drop(guard);
                })
            })
            .collect();
        let permit = block_on(gate.acquire()).unwrap();
        assert!(inside.fetch_add(1, Ordering::SeqCst) < 100, "reader inside a drain");
        inside.fetch_sub(1, Ordering::SeqCst);
        drop(permit);
        for d in drains {
            d.join().unwrap();
        }
        assert_eq!(gate.waiters(), 0);
        assert_eq!(gate.readers_in_flight(), 0);
        drop(gate.try_drain().unwrap());
    });
}

#[test]
fn granted_waiter_dropped_passes_grant_on() {
    model(|| {
        let gate = Arc::new(DrainGate::new(1));
        let permit = gate.clone().try_acquire_owned().unwrap();
        let mut first = gate.clone().acquire_owned();
        assert!(poll_once(&mut first).is_pending());
        let second = {
            let gate = gate.clone();
            thread::spawn(move || block_on(gate.acquire_owned()).map(drop))
        };
        let releaser = thread::spawn(move || drop(permit));
        drop(first);
        releaser.join().unwrap();
        second.join().unwrap().unwrap();
        assert_eq!(gate.readers_in_flight(), 0);
        assert_eq!(gate.waiters(), 0);
    });
}

/// Found by review: the guard's release cleared `DRAIN_HELD` before taking
/// the queue's lock, so a drain requested in between saw neither a drain
/// held nor one queued, went to the front and was granted ahead of the
/// reader the released guard's batch was owed to.
#[test]
fn drain_released_while_another_is_requested_admits_its_batch_first() {
    model(|| {
        let gate = Arc::new(DrainGate::new(1));
        let d1 = gate.clone().try_drain_owned().unwrap();
        // R1 queues while D1 is held: it is D1's batch.
        let mut r1 = gate.clone().acquire_owned();
        assert!(poll_once(&mut r1).is_pending());
        let releaser = thread::spawn(move || drop(d1));
        let requester = {
            let gate = gate.clone();
            thread::spawn(move || {
                let mut d2 = gate.drain_owned();
                assert!(poll_once(&mut d2).is_pending(), "R1 is queued ahead of any new drain");
                d2
            })
        };
        releaser.join().unwrap();
        let d2 = requester.join().unwrap();
        assert_eq!(gate.readers_in_flight(), 1, "D1's release admitted R1");
        assert!(!gate.is_drain_held(), "D2 did not overtake R1");
        let r1 = match poll_once(&mut r1) {
            Poll::Ready(permit) => permit.unwrap(),
            Poll::Pending => panic!("R1 was granted but is not ready"),
        };
        drop(r1);
        drop(d2);
        assert_eq!(gate.readers_in_flight(), 0);
        assert_eq!(gate.waiters(), 0);
    });
}

/// G11 under every interleaving: a queued reader re-polled with a new
/// waker (the old one's drop releases a permit) and a drain dropped while
/// it waits (likewise), while another thread releases and closes.
#[test]
fn waker_drop_reenters_the_gate() {
    model(|| {
        let gate = Arc::new(DrainGate::new(2));
        let held = gate.clone().try_acquire_owned().unwrap();
        let in_waker = gate.clone().try_acquire_owned().unwrap();
        let mut reader = gate.clone().acquire_owned();
        assert!(poll_reentrant(&mut reader, &gate, in_waker).is_pending());
        let releaser = thread::spawn(move || drop(held));
        // Re-poll with a new waker: the old one releases its permit.
        let permit = block_on(reader).unwrap();
        releaser.join().unwrap();

        let in_waker = gate.clone().try_acquire_owned().unwrap();
        let mut drain = gate.clone().drain_owned();
        assert!(poll_reentrant(&mut drain, &gate, in_waker).is_pending());
        let closer = {
            let gate = gate.clone();
            thread::spawn(move || {
                gate.close();
            })
        };
        // Dropping the waiting (or failed) drain drops its waker.
        drop(drain);
        drop(permit);
        closer.join().unwrap();
        block_on(gate.closed_and_idle());
        assert_eq!(gate.readers_in_flight(), 0);
        assert_eq!(gate.waiters(), 0);
        assert!(!gate.is_drain_held() && !gate.is_drain_pending());
    });
}

/// Weighted permits: with 1 + 2 of 3 permits out, a drain and a request
/// for 2 queue (the drain at the front) while another thread gives the
/// permits back one request at a time; the drain waits for every permit,
/// then the request for 2 is admitted, and nothing is ever over the cap.
#[test]
fn weighted_request_and_drain_race_releases() {
    model(|| {
        let gate = Arc::new(DrainGate::new(3));
        let a = gate.clone().try_acquire_owned().unwrap();
        let b = gate.clone().try_acquire_many_owned(2).unwrap();
        let mut drain = gate.clone().drain_owned();
        assert!(poll_once(&mut drain).is_pending());
        let mut wide = gate.clone().acquire_many_owned(2);
        assert!(poll_once(&mut wide).is_pending());
        let releaser = thread::spawn(move || {
            drop(a);
            drop(b);
        });
        let guard = block_on(drain).unwrap();
        assert_eq!(gate.readers_in_flight(), 0, "a drain waits for every permit");
        drop(guard);
        let wide = block_on(wide).unwrap();
        assert_eq!((wide.permits(), gate.readers_in_flight()), (2, 2));
        drop(wide);
        releaser.join().unwrap();
        assert_eq!(gate.readers_in_flight(), 0);
        assert_eq!(gate.waiters(), 0);
    });
}

/// A read release skips the lock when a drain heads the queue and other
/// permits are still out. Cap 2, both permits out, a drain at the head and a
/// reader behind it; two threads give the permits back while this thread
/// either drops the drain (`keep_drain` false) or waits for it. Whichever
/// order: only the release that brings the count to zero may rely on the
/// lock, the drain is granted by it (or leaves), the reader is admitted,
/// and nothing waits forever.
fn two_releases_behind_a_drain_at_the_head(keep_drain: bool) {
    model(move || {
        let gate = Arc::new(DrainGate::new(2));
        let a = gate.clone().try_acquire_owned().unwrap();
        let b = gate.clone().try_acquire_owned().unwrap();
        let mut drain = gate.clone().drain_owned();
        assert!(poll_once(&mut drain).is_pending());
        let mut reader = gate.clone().acquire_owned();
        assert!(poll_once(&mut reader).is_pending());
        let releasers = [thread::spawn(move || drop(a)), thread::spawn(move || drop(b))];
        if keep_drain {
            let guard = block_on(drain).unwrap();
            assert_eq!(gate.readers_in_flight(), 0);
            drop(guard);
        } else {
            drop(drain);
        }
        let permit = block_on(reader).unwrap();
        for r in releasers {
            r.join().unwrap();
        }
        drop(permit);
        assert_eq!((gate.readers_in_flight(), gate.waiters()), (0, 0));
        assert!(!gate.is_drain_pending() && !gate.is_drain_held());
    });
}

#[test]
fn release_skipping_the_lock_races_the_drain_leaving() {
    two_releases_behind_a_drain_at_the_head(false);
}

/// Deadlocks if the last release may skip the lock too.
#[test]
fn last_release_grants_the_drain_at_the_head() {
    two_releases_behind_a_drain_at_the_head(true);
}
