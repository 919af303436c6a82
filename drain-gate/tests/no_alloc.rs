//! The uncontended fast path allocates nothing. This binary counts every
//! allocation made on the test's thread through its own global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use drain_gate::DrainGate;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: delegates every call to `System` unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which
        // is `System::alloc`'s.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn i_uncontended_acquire_release_and_drain_allocate_nothing() {
    let gate = Arc::new(DrainGate::new(64));
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let poll =
        |cx: &mut std::task::Context<'_>,
         f: &mut dyn FnMut(&mut std::task::Context<'_>) -> bool| { while !f(cx) {} };
    // Warm up thread-locals.
    drop(gate.try_acquire());
    let before = allocations();
    for _ in 0..if cfg!(miri) { 300 } else { 10_000 } {
        poll(&mut cx, &mut |cx| {
            let mut fut = gate.acquire();
            std::pin::Pin::new(&mut fut).poll(cx).is_ready()
        });
        poll(&mut cx, &mut |cx| {
            let mut fut = gate.clone().acquire_owned();
            std::pin::Pin::new(&mut fut).poll(cx).is_ready()
        });
        poll(&mut cx, &mut |cx| {
            let mut fut = gate.drain();
            std::pin::Pin::new(&mut fut).poll(cx).is_ready()
        });
        drop(gate.try_acquire().unwrap());
        drop(gate.try_drain().unwrap());
    }
    assert_eq!(allocations() - before, 0);
}

use std::future::Future;
