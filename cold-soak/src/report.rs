//! The soak's final report, as text or JSON.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::{collections::BTreeMap, fmt};

/// A latency histogram in microseconds, 1 µs to 10 min, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Count and latency of one operation kind.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct OpStats {
    /// Calls completed (successfully or not).
    pub count: u64,
    /// Calls that returned an error.
    pub errors: u64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Slowest call, ms.
    pub max_ms: f64,
}

impl OpStats {
    /// Summarises a histogram of microseconds.
    pub fn from_histogram(h: &Histogram<u64>, errors: u64) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            errors,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

/// Everything the soak measured.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SoakReport {
    /// The backend, password redacted.
    pub backend: String,
    /// Seed of the generated chain and of the readers' choices.
    pub seed: u64,
    /// Reader tasks.
    pub readers: usize,
    /// The task's read cap.
    pub read_cap: usize,
    /// Wall time of the workload, s.
    pub elapsed_secs: f64,
    /// Per operation kind.
    pub ops: BTreeMap<String, OpStats>,
    /// Reads completed per second, all kinds together.
    pub reads_per_sec: f64,
    /// Blocks the follower appended (initial chain and reorg branches).
    pub blocks_appended: u64,
    /// Reorgs (truncate, then a new branch).
    pub reorgs: u64,
    /// Write lag (first dispatch attempt → backend commit).
    pub write_lag: OpStats,
    /// `dispatch_append_blocks` calls refused with Backpressure.
    pub backpressure: u64,
    /// Errors by kind (see [`error_kind`](cold_adapter::error_kind)).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Reads that returned data removed before they began.
    pub stale_reads: u64,
    /// Reads that returned data that never existed, or missed data that
    /// must exist.
    pub wrong_answers: u64,
    /// Up to ten examples of stale or wrong answers.
    pub examples: Vec<String>,
    /// Canonical blocks not readable (an acknowledged block lost, or a
    /// gap): through the handle once the follower stopped, and again
    /// straight from the store once `run()` had returned.
    pub missing_blocks: u64,
    /// Faults injected, by kind (see [`faults`](crate::faults)), with the
    /// readers' own (`caller_cancel`, `caller_stop_polling`) and Postgres
    /// connections killed (`pg_connections_killed`).
    pub faults: BTreeMap<String, u64>,
    /// Write retries the task made.
    pub write_retries: u64,
    /// Read retries the task made.
    pub read_retries: u64,
    /// Halted appends the follower recovered (truncate, append again).
    pub recoveries: u64,
    /// Queued writes the task refused while appends were halted.
    pub writes_rejected: u64,
    /// Acknowledged writes the task abandoned (must be 0).
    pub writes_lost: u64,
    /// The watchdog fired: nothing completed for `--stall-secs`.
    pub stalled: bool,
    /// The task's health when the watchdog fired (`Debug` form).
    pub stall_health: Option<String>,
}

/// Error kinds (as in `errors_by_kind`) that fail a run: the store failed
/// (or panicked) with an error neither injected nor transient, or the task
/// stopped under a running soak.
pub const FAILURE_KINDS: [&str; 3] = ["backend", "panic", "task_terminated"];

impl SoakReport {
    /// Whether the run passed: no stall, no stale read, no wrong answer, no
    /// missing block (lost or gap), no acknowledged write lost, and no error
    /// of a [failure kind](FAILURE_KINDS). Other errors are outcomes the API
    /// defines for this workload (an injected fault, a stream interrupted by
    /// a reorg, a deadline under load) and are only counted.
    pub fn passed(&self) -> bool {
        !self.stalled
            && self.stale_reads == 0
            && self.wrong_answers == 0
            && self.missing_blocks == 0
            && self.writes_lost == 0
            && !self.errors_by_kind.keys().any(|kind| FAILURE_KINDS.contains(&kind.as_str()))
    }

    /// The report as pretty JSON, with the verdict as `"passed"`.
    pub fn to_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("report serialises");
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("passed".to_owned(), self.passed().into());
        }
        serde_json::to_string_pretty(&value).expect("report serialises")
    }
}

impl fmt::Display for SoakReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cold-soak report")?;
        writeln!(
            f,
            "  backend {}  seed {}  readers {}  read cap {}  elapsed {:.1} s",
            self.backend, self.seed, self.readers, self.read_cap, self.elapsed_secs
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "  {:<32} {:>9} {:>7} {:>9} {:>9} {:>9}",
            "operation", "count", "errors", "p50 ms", "p99 ms", "max ms"
        )?;
        for (op, s) in &self.ops {
            writeln!(
                f,
                "  {:<32} {:>9} {:>7} {:>9.3} {:>9.3} {:>9.3}",
                op, s.count, s.errors, s.p50_ms, s.p99_ms, s.max_ms
            )?;
        }
        writeln!(f)?;
        writeln!(f, "  reads/s           {:.0}", self.reads_per_sec)?;
        writeln!(f, "  blocks appended   {}  (reorgs {})", self.blocks_appended, self.reorgs)?;
        writeln!(
            f,
            "  write lag         p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({} blocks)",
            self.write_lag.p50_ms,
            self.write_lag.p99_ms,
            self.write_lag.max_ms,
            self.write_lag.count
        )?;
        writeln!(f, "  backpressure      {}", self.backpressure)?;
        if self.errors_by_kind.is_empty() {
            writeln!(f, "  errors            none")?;
        } else {
            let kinds: Vec<String> =
                self.errors_by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(f, "  errors            {}", kinds.join(", "))?;
        }
        writeln!(f, "  stale reads       {}", self.stale_reads)?;
        writeln!(f, "  wrong answers     {}", self.wrong_answers)?;
        writeln!(f, "  missing blocks    {}", self.missing_blocks)?;
        writeln!(f, "  writes lost       {}", self.writes_lost)?;
        if self.faults.is_empty() {
            writeln!(f, "  faults            none")?;
        } else {
            let kinds: Vec<String> = self.faults.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(f, "  faults            {}", kinds.join(", "))?;
        }
        writeln!(
            f,
            "  retries           writes {}  reads {}  (halts recovered {}, writes refused while halted {})",
            self.write_retries, self.read_retries, self.recoveries, self.writes_rejected
        )?;
        writeln!(f, "  stalls            {}", u8::from(self.stalled))?;
        if let Some(health) = &self.stall_health {
            writeln!(f, "  health at stall   {health}")?;
        }
        for example in &self.examples {
            writeln!(f, "  ! {example}")?;
        }
        write!(f, "  result            {}", if self.passed() { "PASS" } else { "FAIL" })
    }
}
