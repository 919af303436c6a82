//! The one-run report: a short fixed version of every bench in one process,
//! ours and the anchor alternating, printed as one Markdown table with the
//! machine and the date.
//!
//! ```text
//! cargo run --release -p benches --bin report [-- --out PATH] [--only GROUP]
//! ```
//!
//! `--out PATH` also writes the output (Markdown) to `PATH`. `--only GROUP`
//! runs only the groups whose name contains `GROUP` (`gate_uncontended`,
//! `gate_contended`, `drain_latency`, `cold_task`; repeatable), for
//! iterating on one of them; the README's table comes from a full run.
//! Progress goes to stderr; the report to stdout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use benches::cold::{self, Backend, Fixture, Side, Writes};
use benches::contended::{self, Primitive, Workload};
use benches::latency::{self, Subject};
use benches::report::{self, Row, Unit, median, ns_per_op, per_sec};
use benches::uncontended::{self, Case};

/// Rounds per measurement; ours and the anchor alternate within each round,
/// and which goes first flips every round.
const ROUNDS: usize = 5;
const UNCONTENDED_ITERS: u64 = 400_000;
const CONTENDED_OPS: u64 = 400_000;
const DRAIN_EVERY: u64 = 100;
const LATENCY_ITERS: u64 = 2_000;

fn main() {
    const USAGE: &str = "usage: report [--out PATH] [--only GROUP]...";
    let mut out_path = None;
    let mut only: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => out_path = Some(args.next().expect("--out needs a path")),
            "--only" => only.push(args.next().expect("--only needs a group name")),
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            other => panic!("unknown argument {other:?} ({USAGE})"),
        }
    }
    let groups: [(&str, Group); 4] = [
        ("gate_uncontended", gate_uncontended),
        ("gate_contended", gate_contended),
        ("drain_latency", drain_latency),
        ("cold_task", cold_task),
    ];
    let unknown: Vec<&String> =
        only.iter().filter(|o| !groups.iter().any(|(name, _)| name.contains(o.as_str()))).collect();
    assert!(unknown.is_empty(), "--only {unknown:?} matches no group ({USAGE})");

    let started = Instant::now();
    let load_before = report::load_average();
    cold::install_drain_counter();
    let mut rows = Vec::new();
    for (name, run) in groups {
        if only.is_empty() || only.iter().any(|o| name.contains(o.as_str())) {
            run(&mut rows);
        }
    }
    let load_after = report::load_average();

    let fmt_load = |l: Option<f64>| l.map_or_else(|| "?".to_owned(), |l| format!("{l:.2}"));
    let mut text = String::new();
    text.push_str(&format!(
        "Machine: {} cores, {}; {}; load average {} before, {} after; report took {:.0} s.\n\n",
        report::cores(),
        report::cpu_model(),
        report::utc_now(),
        fmt_load(load_before),
        fmt_load(load_after),
        started.elapsed().as_secs_f64(),
    ));
    text.push_str(&report::table(&rows));
    let (met, missed): (Vec<&Row>, Vec<&Row>) =
        rows.iter().filter(|r| r.target.is_some()).partition(|r| r.met() == Some(true));
    text.push_str(&format!("\nTargets met: {} of {}.", met.len(), met.len() + missed.len()));
    if !missed.is_empty() {
        let names: Vec<String> = missed.iter().map(|r| format!("{} {}", r.group, r.what)).collect();
        text.push_str(&format!(" Missed: {}.", names.join("; ")));
    }
    text.push('\n');
    print!("{text}");
    if let Some(path) = out_path {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {path}: {e}"));
        eprintln!("report written to {path}");
    }
}

/// One group of the report: appends its rows.
type Group = fn(&mut Vec<Row>);

fn progress(what: &str) {
    eprintln!("[report] {what}");
}

/// Runs `measure` for every subject in `subjects`, `ROUNDS` times, in an
/// order that alternates and flips each round; returns each subject's
/// median.
fn alternate<K: Copy + Eq + std::hash::Hash>(
    subjects: &[K],
    mut measure: impl FnMut(K) -> f64,
) -> HashMap<K, f64> {
    let mut samples: HashMap<K, Vec<f64>> = HashMap::new();
    for round in 0..ROUNDS {
        let order: Vec<K> = if round % 2 == 0 {
            subjects.to_vec()
        } else {
            subjects.iter().rev().copied().collect()
        };
        for k in order {
            samples.entry(k).or_default().push(measure(k));
        }
    }
    samples.into_iter().map(|(k, v)| (k, median(&v))).collect()
}

fn gate_uncontended(rows: &mut Vec<Row>) {
    progress("gate_uncontended");
    let rt = benches::current_thread();
    // Warm-up: page in code and the allocator.
    for case in Case::ALL {
        uncontended::run(&rt, case, UNCONTENDED_ITERS / 10);
    }
    let m = alternate(&Case::ALL, |case| {
        ns_per_op(uncontended::run(&rt, case, UNCONTENDED_ITERS), UNCONTENDED_ITERS)
    });
    let third = Some(1.0 / 3.0);
    // The last three rows set ours against the physical floor: the floor
    // itself (its ratio to tokio is the best any gate could show there), then
    // how far above it our acquire + release sits (the owned one also clones
    // and drops an `Arc`: two more read-modify-writes, on another line).
    let floor = "floor: CAS + fetch_sub on one cache line";
    let pairs: [(&str, Case, Case, Option<f64>); 13] = [
        ("acquire+release (borrowed)", Case::GateAcquire, Case::SemAcquire, third),
        ("acquire+release (owned)", Case::GateAcquireOwned, Case::SemAcquireOwned, third),
        ("try_acquire+release", Case::GateTryAcquire, Case::SemTryAcquire, None),
        ("drain on idle gate", Case::GateDrainIdle, Case::SemAcquireManyCap, Some(0.5)),
        ("acquire+release (borrowed)", Case::GateAcquire, Case::TokioRwLockRead, None),
        ("acquire+release (borrowed)", Case::GateAcquire, Case::AsyncRwLockRead, None),
        ("acquire+release (borrowed)", Case::GateAcquire, Case::AsyncSemAcquire, None),
        ("acquire+release (owned)", Case::GateAcquireOwned, Case::AsyncSemAcquireArc, None),
        ("drain on idle gate", Case::GateDrainIdle, Case::TokioRwLockWrite, None),
        ("drain on idle gate", Case::GateDrainIdle, Case::AsyncRwLockWrite, None),
        (floor, Case::AtomicFloor, Case::SemAcquire, None),
        ("acquire+release (borrowed)", Case::GateAcquire, Case::AtomicFloor, None),
        ("acquire+release (owned)", Case::GateAcquireOwned, Case::AtomicFloor, None),
    ];
    for (what, ours, anchor, target) in pairs {
        rows.push(Row {
            group: "gate_uncontended",
            what: what.to_owned(),
            anchor_name: anchor.name().to_owned(),
            unit: Unit::NsPerOp,
            ours: m[&ours],
            anchor: m[&anchor],
            target,
        });
    }
}

fn gate_contended(rows: &mut Vec<Row>) {
    progress("gate_contended");
    let rt = benches::multi_thread(2);
    for drain_every in [None, Some(DRAIN_EVERY)] {
        for tasks in [2usize, 64, 256] {
            let workload = Workload {
                tasks,
                ops_per_task: CONTENDED_OPS / tasks as u64,
                drain_every,
                cap: benches::CAP,
            };
            let subjects: Vec<Primitive> = Primitive::ALL
                .into_iter()
                .filter(|p| drain_every.is_none() || p.can_drain())
                .collect();
            contended::run(&rt, Primitive::Gate, workload);
            let m = alternate(&subjects, |p| {
                per_sec(workload.total_ops(), contended::run(&rt, p, workload), 1e6)
            });
            let what = match drain_every {
                None => format!("{tasks} tasks, acquire/release"),
                Some(every) => format!("{tasks} tasks, drain every {every}"),
            };
            for anchor in subjects.iter().copied().filter(|&p| p != Primitive::Gate) {
                let target =
                    (tasks == 2 && drain_every.is_none() && anchor == Primitive::Semaphore)
                        .then_some(1.3);
                rows.push(Row {
                    group: "gate_contended (2 workers)",
                    what: what.clone(),
                    anchor_name: anchor.name().to_owned(),
                    unit: Unit::MopsPerSec,
                    ours: m[&Primitive::Gate],
                    anchor: m[&anchor],
                    target,
                });
            }
        }
    }
}

fn drain_latency(rows: &mut Vec<Row>) {
    progress("drain_latency");
    let rt = benches::current_thread();
    type Measure = fn(&tokio::runtime::Runtime, Subject, u64) -> Vec<Duration>;
    let measures: [(&str, Measure); 2] = [
        ("last release → drain holds guard (p50)", latency::release_to_drain),
        ("pending drain dropped → queued reader runs (p50)", latency::cancel_to_reader),
    ];
    for (what, measure) in measures {
        measure(&rt, Subject::Gate, LATENCY_ITERS / 10);
        let m = alternate(&Subject::ALL, |s| {
            cold::quantile(&measure(&rt, s, LATENCY_ITERS), 0.5).as_secs_f64() * 1e9
        });
        for anchor in &Subject::ALL[1..] {
            rows.push(Row {
                group: "drain_latency (current-thread)",
                what: what.to_owned(),
                anchor_name: anchor.name().to_owned(),
                unit: Unit::Nanos,
                ours: m[&Subject::Gate],
                anchor: m[anchor],
                target: None,
            });
        }
    }
}

struct ColdPlan {
    backend: Backend,
    blocks: u64,
    uncached_reads: u64,
    cached_reads: u64,
    sequential_writes: usize,
    write_rounds: usize,
}

fn cold_task(rows: &mut Vec<Row>) {
    let plans = [
        ColdPlan {
            backend: Backend::Mem,
            blocks: 1024,
            uncached_reads: 20_000,
            cached_reads: 100_000,
            sequential_writes: 100,
            write_rounds: 2,
        },
        ColdPlan {
            backend: Backend::Sqlite,
            blocks: 1024,
            uncached_reads: 3_000,
            cached_reads: 50_000,
            sequential_writes: 40,
            write_rounds: 2,
        },
    ];
    for plan in plans {
        cold_backend(rows, &plan);
    }
}

fn cold_backend(rows: &mut Vec<Row>, plan: &ColdPlan) {
    let backend = plan.backend;
    let group = match backend {
        Backend::Mem => "cold_task (mem)",
        Backend::Sqlite => "cold_task (sqlite)",
    };
    progress(group);
    let rt = benches::multi_thread(2);
    let mut ours = rt.block_on(Fixture::new(Side::Ours, backend, plan.blocks));
    let mut signet = rt.block_on(Fixture::new(Side::Signet, backend, plan.blocks));
    let sides = [Side::Ours, Side::Signet];
    let anchor_name = format!("signet-cold 0.10 ColdStorage ({})", backend.name());
    let mut push = |what: String, unit: Unit, o: f64, s: f64, target: Option<f64>| {
        rows.push(Row {
            group,
            what,
            anchor_name: anchor_name.clone(),
            unit,
            ours: o,
            anchor: s,
            target,
        });
    };

    for concurrency in [1usize, 64, 256, 1024] {
        progress(&format!("{group}: uncached reads at {concurrency}"));
        let total = plan.uncached_reads;
        let m = alternate(&sides, |side| {
            let fx = if side == Side::Ours { &ours } else { &signet };
            per_sec(total, cold::uncached_reads(&rt, fx, concurrency, total), 1e3)
        });
        let target = (concurrency == 256).then_some(1.5);
        push(
            format!("uncached reads (by hash), concurrency {concurrency}"),
            Unit::KopsPerSec,
            m[&Side::Ours],
            m[&Side::Signet],
            target,
        );
    }

    progress(&format!("{group}: cached reads"));
    let total = plan.cached_reads;
    let m = alternate(&sides, |side| {
        let fx = if side == Side::Ours { &ours } else { &signet };
        per_sec(total, cold::cached_reads(&rt, fx, 64, total), 1e3)
    });
    push(
        "cached reads (by number), concurrency 64".to_owned(),
        Unit::KopsPerSec,
        m[&Side::Ours],
        m[&Side::Signet],
        None,
    );

    progress(&format!("{group}: writes under a 256-reader flood"));
    let mut latencies: HashMap<Side, Vec<Duration>> = HashMap::new();
    let mut flood_rates: HashMap<Side, Vec<f64>> = HashMap::new();
    let mut drain_waits: HashMap<Side, (Duration, u64)> = HashMap::new();
    let mut bursts: HashMap<Side, Vec<(f64, f64)>> = HashMap::new();
    for round in 0..plan.write_rounds {
        let order = if round % 2 == 0 { sides } else { [Side::Signet, Side::Ours] };
        for side in order {
            let fx = if side == Side::Ours { &mut ours } else { &mut signet };
            let seq =
                cold::writes_under_flood(&rt, fx, 256, Writes::Sequential(plan.sequential_writes));
            flood_rates.entry(side).or_default().push(per_sec(seq.reads, seq.total, 1e3));
            let waits = drain_waits.entry(side).or_default();
            waits.0 += seq.drain_wait;
            waits.1 += seq.drains;
            latencies.entry(side).or_default().extend(seq.latencies);
            let burst = cold::writes_under_flood(&rt, fx, 256, Writes::Burst(64));
            bursts
                .entry(side)
                .or_default()
                .push((burst.drains as f64, burst.total.as_secs_f64() * 1e3));
        }
    }
    let q = |side: Side, q: f64| cold::quantile(&latencies[&side], q).as_secs_f64() * 1e6;
    push(
        "append_block latency p50, 256 readers flooding".to_owned(),
        Unit::Micros,
        q(Side::Ours, 0.5),
        q(Side::Signet, 0.5),
        None,
    );
    push(
        "append_block latency p99, 256 readers flooding".to_owned(),
        Unit::Micros,
        q(Side::Ours, 0.99),
        q(Side::Signet, 0.99),
        Some(0.5),
    );
    let mean_wait = |side: Side| {
        let (total, drains) = drain_waits[&side];
        total.as_secs_f64() * 1e6 / drains.max(1) as f64
    };
    push(
        "mean drain wait of those appends".to_owned(),
        Unit::Micros,
        mean_wait(Side::Ours),
        mean_wait(Side::Signet),
        None,
    );
    push(
        "flood read throughput while those appends run".to_owned(),
        Unit::KopsPerSec,
        median(&flood_rates[&Side::Ours]),
        median(&flood_rates[&Side::Signet]),
        None,
    );
    let burst = |side: Side, pick: fn(&(f64, f64)) -> f64| {
        median(&bursts[&side].iter().map(pick).collect::<Vec<_>>())
    };
    push(
        "burst of 64 appends: drains".to_owned(),
        Unit::Count,
        burst(Side::Ours, |b| b.0),
        burst(Side::Signet, |b| b.0),
        None,
    );
    push(
        "burst of 64 appends: total time".to_owned(),
        Unit::Millis,
        burst(Side::Ours, |b| b.1),
        burst(Side::Signet, |b| b.1),
        None,
    );
    drop(ours);
    drop(signet);
    rt.shutdown_timeout(Duration::from_secs(5));
}
