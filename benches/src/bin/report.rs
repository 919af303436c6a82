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
//! `gate_contended`, `drain_latency`, `cold_task`, or one backend of it:
//! `"cold_task (mem)"`, `"cold_task (sqlite)"`, `"cold_task (postgres)"`;
//! repeatable), for iterating on one of them; the README's table comes from
//! a full run. The Postgres rows run when `DATABASE_URL` is set, each
//! handle in a fresh database of that server.
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
    let sub_groups = ["cold_task (mem)", "cold_task (sqlite)", "cold_task (postgres)"];
    let unknown: Vec<&String> = only
        .iter()
        .filter(|o| {
            !groups.iter().map(|(name, _)| *name).chain(sub_groups).any(|n| n.contains(o.as_str()))
        })
        .collect();
    assert!(unknown.is_empty(), "--only {unknown:?} matches no group ({USAGE})");
    ONLY.set(only.clone()).expect("set once");

    let started = Instant::now();
    let load_before = report::load_average();
    cold::install_drain_counter();
    let mut rows = Vec::new();
    let mut notes = String::new();
    for (name, run) in groups {
        if selected(name) {
            run(&mut rows, &mut notes);
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
    text.push_str(&notes);
    print!("{text}");
    if let Some(path) = out_path {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("write {path}: {e}"));
        eprintln!("report written to {path}");
    }
}

/// The `--only` arguments.
static ONLY: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();

/// Whether `--only` selects group `name`: no `--only`, or one that is part
/// of `name` (`cold` selects every backend) or names one of its sub-groups
/// (`cold_task (mem)` selects `cold_task` and, inside it, mem only).
fn selected(name: &str) -> bool {
    let only = ONLY.get().map(Vec::as_slice).unwrap_or_default();
    only.is_empty() || only.iter().any(|o| name.contains(o.as_str()) || o.starts_with(name))
}

/// One group of the report: appends its rows.
type Group = fn(&mut Vec<Row>, &mut String);

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

fn gate_uncontended(rows: &mut Vec<Row>, _notes: &mut String) {
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

fn gate_contended(rows: &mut Vec<Row>, _notes: &mut String) {
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

fn drain_latency(rows: &mut Vec<Row>, _notes: &mut String) {
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

fn cold_task(rows: &mut Vec<Row>, notes: &mut String) {
    let mut plans = vec![
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
            uncached_reads: 2_000,
            cached_reads: 50_000,
            sequential_writes: 40,
            write_rounds: 2,
        },
    ];
    if cold_testkit::postgres::database_url().is_some() {
        plans.push(ColdPlan {
            backend: Backend::Postgres,
            blocks: 1024,
            uncached_reads: 800,
            cached_reads: 50_000,
            sequential_writes: 30,
            write_rounds: 2,
        });
    } else {
        notes.push_str(
            "\nPostgres rows skipped: DATABASE_URL is not set (the local server: \
             postgres://postgres@127.0.0.1:5432/test).\n",
        );
    }
    notes.push_str(
        "\nDrain waits under the 256-reader flood (sequential appends; the adapter \
         records one per drain, signet-cold one per write), by bucket:\n\n\
         | backend | handle | drains | < 10 µs | < 100 µs | < 1 ms | < 10 ms | < 100 ms | ≥ 100 ms | max |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for plan in plans {
        let group = cold_group(plan.backend);
        if selected(group) {
            cold_backend(rows, notes, &plan);
        }
    }
}

fn cold_group(backend: Backend) -> &'static str {
    match backend {
        Backend::Mem => "cold_task (mem)",
        Backend::Sqlite => "cold_task (sqlite)",
        Backend::Postgres => "cold_task (postgres)",
    }
}

/// Who is measured on one backend: the two handles, the backend called
/// directly, and ours with the read cap at the pool size (10 on mem).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Ours,
    Signet,
    Ceiling,
    OursAtPool,
}

fn histogram_line(backend: Backend, who: &str, waits: &[Duration]) -> String {
    let bounds = [10u128, 100, 1_000, 10_000, 100_000];
    let mut counts = [0usize; 6];
    for w in waits {
        let us = w.as_micros();
        counts[bounds.iter().position(|&b| us < b).unwrap_or(bounds.len())] += 1;
    }
    let max = waits.iter().max().copied().unwrap_or_default();
    let cells: Vec<String> = counts.iter().map(usize::to_string).collect();
    format!(
        "| {} | {who} | {} | {} | {:.0} µs |\n",
        backend.name(),
        waits.len(),
        cells.join(" | "),
        max.as_secs_f64() * 1e6
    )
}

fn cold_backend(rows: &mut Vec<Row>, notes: &mut String, plan: &ColdPlan) {
    let backend = plan.backend;
    let group = cold_group(backend);
    progress(group);
    let rt = benches::multi_thread(2);
    let mut fixtures: HashMap<Who, Fixture> = HashMap::new();
    for (who, side) in
        [(Who::Ours, Side::Ours), (Who::Signet, Side::Signet), (Who::Ceiling, Side::Ceiling)]
    {
        fixtures.insert(who, rt.block_on(Fixture::new(side, backend, plan.blocks)));
    }
    // The small read cap: the pool size on SQL backends; on mem, which has
    // no pool, the same 10, to see what a small cap costs there.
    let pool = backend.pool_size().unwrap_or(10);
    let fx = rt.block_on(Fixture::ours_with_read_cap(backend, plan.blocks, pool));
    fixtures.insert(Who::OursAtPool, fx);
    let pool_note = if backend.pool_size().is_some() { " (= pool)" } else { "" };
    let at_pool = |what: &str| format!("{what}, read cap {pool}{pool_note}");
    let anchor_name = |anchor: Who| match anchor {
        Who::Signet => format!("signet-cold 0.10 ColdStorage ({})", backend.name()),
        Who::Ceiling => format!("{} backend called directly", backend.name()),
        Who::Ours => format!("cold_adapter, read cap {}", benches::CAP),
        Who::OursAtPool => unreachable!("never an anchor"),
    };
    // One row: `value` of the first against `value` of the second.
    let mut row = |what: String,
                   (ours, anchor): (Who, Who),
                   unit: Unit,
                   value: &dyn Fn(Who) -> f64,
                   target: Option<f64>| {
        rows.push(Row {
            group,
            what,
            anchor_name: anchor_name(anchor),
            unit,
            ours: value(ours),
            anchor: value(anchor),
            target,
        });
    };
    const VS_SIGNET: (Who, Who) = (Who::Ours, Who::Signet);
    const VS_CEILING: (Who, Who) = (Who::Ours, Who::Ceiling);
    const AT_POOL: (Who, Who) = (Who::OursAtPool, Who::Ours);

    for concurrency in [1usize, 64, 256, 1024] {
        progress(&format!("{group}: uncached reads at {concurrency}"));
        // One reader at a time is the slowest row on a SQL backend.
        let total = if concurrency == 1 { plan.uncached_reads / 4 } else { plan.uncached_reads };
        let m = alternate(&[Who::Ours, Who::Signet, Who::Ceiling, Who::OursAtPool], |who| {
            per_sec(total, cold::uncached_reads(&rt, &fixtures[&who], concurrency, total), 1e3)
        });
        let what = format!("uncached reads (by hash), concurrency {concurrency}");
        let rate = |who: Who| m[&who];
        row(what.clone(), VS_SIGNET, Unit::KopsPerSec, &rate, Some(1.0));
        row(what.clone(), VS_CEILING, Unit::KopsPerSec, &rate, Some(0.95));
        row(at_pool(&what), AT_POOL, Unit::KopsPerSec, &rate, None);
    }

    progress(&format!("{group}: cached reads"));
    let total = plan.cached_reads;
    let m = alternate(&[Who::Ours, Who::Signet], |who| {
        per_sec(total, cold::cached_reads(&rt, &fixtures[&who], 64, total), 1e3)
    });
    let what = "cached reads (by number), concurrency 64".to_owned();
    row(what, VS_SIGNET, Unit::KopsPerSec, &|who| m[&who], Some(1.5));

    progress(&format!("{group}: writes under a 256-reader flood"));
    let writers = [Who::Ours, Who::Signet, Who::OursAtPool];
    let mut latencies: HashMap<Who, Vec<Duration>> = HashMap::new();
    let mut flood_rates: HashMap<Who, Vec<f64>> = HashMap::new();
    let mut drain_waits: HashMap<Who, Vec<Duration>> = HashMap::new();
    let mut bursts: HashMap<Who, Vec<(f64, f64)>> = HashMap::new();
    for round in 0..plan.write_rounds {
        let mut order = writers;
        if round % 2 == 1 {
            order.reverse();
        }
        for who in order {
            let fx = fixtures.get_mut(&who).expect("a fixture per writer");
            let seq =
                cold::writes_under_flood(&rt, fx, 256, Writes::Sequential(plan.sequential_writes));
            flood_rates.entry(who).or_default().push(per_sec(seq.reads, seq.total, 1e3));
            drain_waits.entry(who).or_default().extend(seq.drain_waits);
            latencies.entry(who).or_default().extend(seq.latencies);
            let burst = cold::writes_under_flood(&rt, fx, 256, Writes::Burst(64));
            bursts
                .entry(who)
                .or_default()
                .push((burst.drain_waits.len() as f64, burst.total.as_secs_f64() * 1e3));
        }
    }
    let (latencies, drain_waits, bursts) = (&latencies, &drain_waits, &bursts);
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let latency = |q: f64| move |who: Who| micros(cold::quantile(&latencies[&who], q));
    let wait = |q: f64| move |who: Who| micros(cold::quantile(&drain_waits[&who], q));
    let flood_rate = |who: Who| median(&flood_rates[&who]);
    let burst = |pick: fn(&(f64, f64)) -> f64| {
        move |who: Who| median(&bursts[&who].iter().map(pick).collect::<Vec<_>>())
    };
    let appends = "append_block latency";
    let flood = "256 readers flooding";
    let flood_reads = "flood read throughput while those appends run";
    row(format!("{appends} p50, {flood}"), VS_SIGNET, Unit::Micros, &latency(0.5), None);
    row(format!("{appends} p99, {flood}"), VS_SIGNET, Unit::Micros, &latency(0.99), Some(0.5));
    for (label, q) in [("p50", 0.5), ("p99", 0.99), ("max", 1.0)] {
        let what = format!("drain wait {label} of those appends");
        row(what, VS_SIGNET, Unit::Micros, &wait(q), None);
    }
    row(flood_reads.to_owned(), VS_SIGNET, Unit::KopsPerSec, &flood_rate, None);
    let what = "burst of 64 appends: drains".to_owned();
    row(what, VS_SIGNET, Unit::Count, &burst(|b| b.0), None);
    let what = "burst of 64 appends: total time".to_owned();
    row(what, VS_SIGNET, Unit::Millis, &burst(|b| b.1), None);
    let what = at_pool(&format!("{appends} p99, {flood}"));
    row(what, AT_POOL, Unit::Micros, &latency(0.99), None);
    row(at_pool("drain wait p99"), AT_POOL, Unit::Micros, &wait(0.99), None);
    row(at_pool(flood_reads), AT_POOL, Unit::KopsPerSec, &flood_rate, None);
    for who in &writers {
        let name = match who {
            Who::Ours => "cold_adapter".to_owned(),
            Who::Signet => "signet-cold 0.10".to_owned(),
            Who::OursAtPool => format!("cold_adapter, read cap {}", pool),
            Who::Ceiling => unreachable!("the ceiling makes no writes"),
        };
        notes.push_str(&histogram_line(backend, &name, &drain_waits[who]));
    }
    drop(fixtures);
    rt.shutdown_timeout(Duration::from_secs(5));
}
