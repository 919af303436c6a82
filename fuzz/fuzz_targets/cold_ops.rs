//! Fuzz target `cold_ops`: decodes bytes into reads, awaited writes,
//! dispatches, dropped (cancelled) read and write futures, armed write
//! faults (transient, ambiguous commit, permanent), health checks,
//! recovery from a halt, shutdown and dispatches racing it (from another OS
//! thread or interleaved with the cancel) against a fresh cold task over
//! `MemColdBackend` behind a fault-injecting wrapper, and checks every
//! result and the backend's final state against a model of the chain and
//! of the task's durable-write rules that allows every state a dropped
//! write or a race can leave. Every call must resolve (no hang).
//!
//! The decoder, the model and the checker live in
//! `cold-adapter/tests/model/mod.rs`, shared with the stable replay
//! (`cargo test -p cold-adapter --test model_replay`), which also replays
//! `fuzz/corpus/cold_ops/`. One current-thread and one multi-thread runtime
//! serve every case of the process; each case builds its own task and
//! backend.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../cold-adapter/tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    model::run(data);
});
