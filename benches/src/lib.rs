//! Benchmarks of `drain-gate` and the cold adapter against their anchors
//! (tokio, async-lock, signet-cold). The criterion benches and the one-run
//! report land with the benches issue.
