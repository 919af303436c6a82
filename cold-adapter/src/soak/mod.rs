//! The `cold-soak` load test: a node-like workload against the task.
//!
//! The `cold-soak` binary only parses flags and calls [`run`]; everything
//! else lives here so tests can drive it.

pub mod backend;
pub mod chain;
