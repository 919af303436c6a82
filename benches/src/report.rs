//! The one-run report's table and header: rows of (ours, anchor, ratio,
//! target, met?), the machine (cores, CPU model, load) and the date.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Which direction is better for a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    /// Times and latencies: lower is better; a target is a ceiling on
    /// `ours / anchor`.
    Lower,
    /// Throughputs: higher is better; a target is a floor on `ours / anchor`.
    Higher,
}

/// The unit a row's figures are printed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds per operation.
    NsPerOp,
    /// Nanoseconds.
    Nanos,
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
    /// Million operations per second.
    MopsPerSec,
    /// Thousand operations per second.
    KopsPerSec,
    /// A plain count.
    Count,
}

impl Unit {
    /// The unit's label, as printed after each figure.
    pub fn label(self) -> &'static str {
        match self {
            Unit::NsPerOp => "ns/op",
            Unit::Nanos => "ns",
            Unit::Micros => "µs",
            Unit::Millis => "ms",
            Unit::MopsPerSec => "Mops/s",
            Unit::KopsPerSec => "kops/s",
            Unit::Count => "",
        }
    }

    /// Which direction is better for this unit.
    pub fn better(self) -> Better {
        match self {
            Unit::MopsPerSec | Unit::KopsPerSec => Better::Higher,
            _ => Better::Lower,
        }
    }
}

/// One line of the table.
#[derive(Clone, Debug)]
pub struct Row {
    /// The bench group (`gate_uncontended`, `cold_task`, …).
    pub group: &'static str,
    /// What is measured, for ours.
    pub what: String,
    /// The anchor it is compared with.
    pub anchor_name: String,
    /// The unit of both figures.
    pub unit: Unit,
    /// Our figure.
    pub ours: f64,
    /// The anchor's figure.
    pub anchor: f64,
    /// The target on `ours / anchor`, if the issue sets one.
    pub target: Option<f64>,
}

impl Row {
    /// `ours / anchor` (infinite if the anchor's figure is 0).
    pub fn ratio(&self) -> f64 {
        if self.anchor == 0.0 { f64::INFINITY } else { self.ours / self.anchor }
    }

    /// Whether the target is met; `None` when the row has no target.
    pub fn met(&self) -> Option<bool> {
        let target = self.target?;
        Some(match self.unit.better() {
            Better::Lower => self.ratio() <= target,
            Better::Higher => self.ratio() >= target,
        })
    }

    fn target_text(&self) -> String {
        match (self.target, self.unit.better()) {
            (None, _) => String::new(),
            (Some(t), Better::Lower) => format!("≤ {t:.2}x"),
            (Some(t), Better::Higher) => format!("≥ {t:.2}x"),
        }
    }
}

/// Nanoseconds per operation from a total time over `ops` operations.
pub fn ns_per_op(total: Duration, ops: u64) -> f64 {
    total.as_secs_f64() * 1e9 / ops.max(1) as f64
}

/// Operations per second, scaled by `scale` (1e6 for Mops/s, 1e3 for kops/s).
pub fn per_sec(ops: u64, total: Duration, scale: f64) -> f64 {
    ops as f64 / total.as_secs_f64().max(1e-12) / scale
}

/// The median of `values` (mean of the two middle ones for an even count).
/// Zero when empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

fn figure(value: f64, unit: Unit) -> String {
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let label = unit.label();
    if label.is_empty() { format!("{value:.digits$}") } else { format!("{value:.digits$} {label}") }
}

/// The table as Markdown, one row per [`Row`].
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| group | measure | ours | anchor | anchor figure | ours/anchor | target | met? |\n",
    );
    out.push_str("|---|---|---:|---|---:|---:|---|---|\n");
    for row in rows {
        let met = match row.met() {
            None => "",
            Some(true) => "yes",
            Some(false) => "**no**",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:.2}x | {} | {} |",
            row.group,
            row.what,
            figure(row.ours, row.unit),
            row.anchor_name,
            figure(row.anchor, row.unit),
            row.ratio(),
            row.target_text(),
            met,
        );
    }
    out
}

/// Logical cores the process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The first `model name` in `/proc/cpuinfo`, or `unknown`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The 1-minute load average from `/proc/loadavg`, if readable.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Today's date and time (UTC) as `YYYY-MM-DD HH:MM UTC`.
pub fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let (y, m, d) = civil_from_days(days);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn met_follows_direction() {
        let mut row = Row {
            group: "g",
            what: "w".into(),
            anchor_name: "a".into(),
            unit: Unit::NsPerOp,
            ours: 10.0,
            anchor: 40.0,
            target: Some(1.0 / 3.0),
        };
        assert_eq!(row.met(), Some(true));
        row.unit = Unit::MopsPerSec;
        row.target = Some(1.3);
        assert_eq!(row.met(), Some(false));
        row.target = None;
        assert_eq!(row.met(), None);
    }

    #[test]
    fn median_and_table() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let rows = [Row {
            group: "g",
            what: "w".into(),
            anchor_name: "a".into(),
            unit: Unit::Count,
            ours: 1.0,
            anchor: 64.0,
            target: None,
        }];
        assert!(table(&rows).contains("| g | w | 1.00 | a | 64.0 | 0.02x |  |  |"));
    }
}
