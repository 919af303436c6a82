//! Fuzz target `permit_sequences`: decodes bytes into operations on one gate
//! of cap 1 to 8, driven by hand-polled futures with counting wakers, and
//! checks the gate against a sequential reference model after every step.
//!
//! The decoder, the model and the checker live in
//! `drain-gate/tests/model/mod.rs`, shared with the stable replay
//! (`cargo test -p drain-gate --test model_replay`), which also replays
//! `fuzz/corpus/permit_sequences/`.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../drain-gate/tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    model::run(data);
});
