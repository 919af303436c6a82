//! The gate on executors other than tokio: it depends on no runtime.

use std::sync::Arc;

use drain_gate::DrainGate;
use futures_executor::{LocalPool, ThreadPool, block_on};
use futures_util::task::LocalSpawnExt;

#[test]
fn runs_under_futures_executor_threads() {
    let pool = ThreadPool::builder().pool_size(2).create().unwrap();
    let gate = Arc::new(DrainGate::new(4));
    let (done, finished) = std::sync::mpsc::channel();
    for i in 0..64 {
        let (gate, done) = (gate.clone(), done.clone());
        pool.spawn_ok(async move {
            if i % 8 == 0 {
                let _guard = gate.drain().await.unwrap();
                assert_eq!(gate.readers_in_flight(), 0);
            } else {
                let _permit = gate.acquire().await.unwrap();
                assert!(gate.readers_in_flight() <= gate.cap());
                assert!(!gate.is_drain_held());
            }
            done.send(i).unwrap();
        });
    }
    drop(done);
    // Every task reports; a panicking task drops its sender without sending.
    assert_eq!(finished.iter().count(), 64);
    gate.close();
    block_on(gate.closed_and_idle());
}

#[test]
fn executor_fairness_holds_on_a_local_pool() {
    use std::cell::Cell;
    use std::rc::Rc;
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let gate = Rc::new(DrainGate::new(2));
    let iterations = Rc::new(Cell::new(0usize));
    let seen = Rc::new(Cell::new(None));
    let (tx, rx) = futures_channel_oneshot();
    spawner
        .spawn_local({
            let (iterations, seen) = (iterations.clone(), seen.clone());
            async move {
                rx.await;
                seen.set(Some(iterations.get()));
            }
        })
        .unwrap();
    spawner
        .spawn_local({
            let iterations = iterations.clone();
            async move {
                let mut tx = Some(tx);
                for i in 0..50_000 {
                    drop(gate.acquire().await.unwrap());
                    iterations.set(i + 1);
                    if let Some(tx) = tx.take() {
                        tx.send();
                    }
                }
            }
        })
        .unwrap();
    pool.run();
    let seen = seen.get().unwrap();
    assert!(seen <= 1 + 129, "the other task waited {seen} iterations");
}

/// A minimal one-shot signal built on `std`, so this test needs no channel crate.
fn futures_channel_oneshot() -> (Signal, Signal) {
    let shared = Rc::new(std::cell::RefCell::new((false, None::<std::task::Waker>)));
    (Signal(shared.clone()), Signal(shared))
}

use std::rc::Rc;

struct Signal(Rc<std::cell::RefCell<(bool, Option<std::task::Waker>)>>);

impl Signal {
    fn send(self) {
        let mut s = self.0.borrow_mut();
        s.0 = true;
        if let Some(w) = s.1.take() {
            w.wake();
        }
    }
}

impl std::future::Future for Signal {
    type Output = ();
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let mut s = self.0.borrow_mut();
        if s.0 {
            std::task::Poll::Ready(())
        } else {
            s.1 = Some(cx.waker().clone());
            std::task::Poll::Pending
        }
    }
}
