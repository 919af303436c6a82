//! `cold-soak`: a node-like workload against the cold storage task.
//!
//! Parses flags and wires [`cold_soak::run`]; see that module.

use clap::Parser;
use cold_adapter::ColdStorageConfig;
use cold_soak::{SoakConfig, backend::BackendSpec};
use std::{io::Write, process::ExitCode, time::Duration};

/// A node-like soak of the cold storage task: a chain follower that appends
/// and reorgs, and hundreds of RPC-like readers whose every answer is checked.
/// Exits 1 on a stall, a stale read, a wrong answer, a lost block, or a
/// backend error or task failure.
#[derive(Debug, Parser)]
#[command(name = "cold-soak", version)]
struct Flags {
    /// Store: `mem`, `sqlite:PATH` or `postgres://…` (default: a SQLite file
    /// in a temporary directory). Blocks already in it are truncated.
    /// (Parsed after clap, so that a bad value is never echoed unredacted.)
    #[arg(long, value_name = "BACKEND")]
    backend: Option<String>,
    /// Seed of the generated chain and of the readers' choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How long the workload runs, in seconds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: u64,
    /// Concurrent readers.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    readers: u64,
    /// Backend reads in flight at once (default: the SQL pool size, 10; 64
    /// on `mem`).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    read_cap: Option<u64>,
    /// Exit 1 if nothing completes for this many seconds while work is pending.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    stall_secs: u64,
    /// Milliseconds between the follower's blocks.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=60_000))]
    block_ms: u64,
    /// Blocks between reorgs.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    reorg_every: u64,
    /// Fault rate: the base probability that a backend call or a reader
    /// misbehaves, scaled per kind (transient, ambiguous and
    /// permanent-looking write errors, read errors, panics and hangs,
    /// callers that cancel or stop polling; against Postgres, connections
    /// killed every few seconds). 0 injects none.
    #[arg(long, default_value_t = cold_soak::DEFAULT_FAULTS, value_parser = parse_rate)]
    faults: f64,
    /// Against Postgres with faults on: seconds between connection kills.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    kill_every_secs: u64,
    /// Print the report as JSON on stdout (no progress bar).
    #[arg(long)]
    json: bool,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(rate) if (0.0..=0.1).contains(&rate) => Ok(rate),
        Ok(_) => Err("the fault rate must be between 0 and 0.1".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    // Injected read panics are caught and returned to their callers as
    // errors; keep the default hook for every other panic.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains(cold_soak::faults::INJECTED));
        if !injected {
            default_hook(info);
        }
    }));
    let backend = match flags.backend.as_deref().map(str::parse::<BackendSpec>).transpose() {
        Ok(backend) => backend,
        Err(err) => {
            eprintln!("cold-soak: {err}");
            return ExitCode::from(2);
        }
    };
    let config = SoakConfig {
        backend,
        seed: flags.seed,
        duration: Duration::from_secs(flags.duration),
        readers: flags.readers as usize,
        stall: Duration::from_secs(flags.stall_secs),
        block_interval: Duration::from_millis(flags.block_ms),
        reorg_every: flags.reorg_every,
        progress: !flags.json,
        faults: flags.faults,
        kill_connections_every: Duration::from_secs(flags.kill_every_secs),
        read_cap_from_pool: flags.read_cap.is_none(),
        task: flags.read_cap.map_or_else(ColdStorageConfig::default, |cap| {
            ColdStorageConfig::default().with_read_cap(cap as usize)
        }),
        ..SoakConfig::default()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cold-soak: cannot start the runtime: {err}");
            return ExitCode::from(2);
        }
    };
    // Ctrl-C drops the run: its task shuts down and the default store's
    // temporary directory is removed.
    let interrupted = runtime.block_on(async {
        tokio::select! {
            report = cold_soak::run(config) => Some(report),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let report = match interrupted {
        Some(Ok(report)) => report,
        Some(Err(err)) => {
            eprintln!("cold-soak: {err}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("cold-soak: interrupted; no report");
            runtime.shutdown_background();
            return ExitCode::from(130);
        }
    };
    // A closed stdout (`| head`) must not turn a passing run into a panic.
    let mut out = std::io::stdout().lock();
    let _ =
        if flags.json { writeln!(out, "{}", report.to_json()) } else { writeln!(out, "{report}") };
    drop(out);
    let passed = report.passed();
    // A stalled run leaves wedged tasks behind: do not wait for them.
    runtime.shutdown_background();
    if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
