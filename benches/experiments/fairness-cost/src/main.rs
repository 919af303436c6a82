//! The report's contended workload (2 workers, tasks doing acquire/release
//! around a tiny critical section, every M-th op a drain), for: the stock
//! gate, the same gate with readers woken to retry instead of granted on
//! their behalf (no reader bound), tokio Semaphore, async-lock RwLock.
//! Interleaved rounds; prints each sample and the medians.
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

fn critical_section(seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..4 {
        x = black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    x
}

#[derive(Clone)]
enum P {
    Gate(Arc<drain_gate::DrainGate>),
    Barging(Arc<drain_gate_barging::DrainGate>),
    Sem(Arc<tokio::sync::Semaphore>),
    Rw(Arc<async_lock::RwLock<()>>),
}

const CAP: usize = 64;
const OPS: u64 = 400_000;

impl P {
    fn new(name: &str) -> P {
        match name {
            "gate" => P::Gate(Arc::new(drain_gate::DrainGate::new(CAP))),
            "gate_barging" => P::Barging(Arc::new(drain_gate_barging::DrainGate::new(CAP))),
            "tokio_semaphore" => P::Sem(Arc::new(tokio::sync::Semaphore::new(CAP))),
            "async_lock_rwlock" => P::Rw(Arc::new(async_lock::RwLock::new(()))),
            _ => panic!("unknown {name}"),
        }
    }
    async fn work(
        &self,
        seed: u64,
        k: u64,
        m: u64,
        waits: &mut Vec<u64>,
        reads: &mut Vec<u64>,
        timed: bool,
    ) -> u64 {
        let mut acc = seed;
        for i in 1..=k {
            let drain = i % m == 0;
            let t = (drain || timed).then(Instant::now);
            match (self, drain) {
                (P::Gate(g), false) => {
                    let _p = g.acquire().await.unwrap();
                    if timed {
                        reads.push(t.unwrap().elapsed().as_nanos() as u64);
                    }
                    acc = critical_section(acc);
                }
                (P::Gate(g), true) => {
                    let _d = g.drain().await.unwrap();
                    waits.push(t.unwrap().elapsed().as_nanos() as u64);
                    acc = critical_section(acc);
                }
                (P::Barging(g), false) => {
                    let _p = g.acquire().await.unwrap();
                    if timed {
                        reads.push(t.unwrap().elapsed().as_nanos() as u64);
                    }
                    acc = critical_section(acc);
                }
                (P::Barging(g), true) => {
                    let _d = g.drain().await.unwrap();
                    waits.push(t.unwrap().elapsed().as_nanos() as u64);
                    acc = critical_section(acc);
                }
                (P::Sem(s), false) => {
                    let _p = s.acquire().await.unwrap();
                    if timed {
                        reads.push(t.unwrap().elapsed().as_nanos() as u64);
                    }
                    acc = critical_section(acc);
                }
                (P::Sem(s), true) => {
                    let _d = s.acquire_many(CAP as u32).await.unwrap();
                    waits.push(t.unwrap().elapsed().as_nanos() as u64);
                    acc = critical_section(acc);
                }
                (P::Rw(l), false) => {
                    let _p = l.read().await;
                    if timed {
                        reads.push(t.unwrap().elapsed().as_nanos() as u64);
                    }
                    acc = critical_section(acc);
                }
                (P::Rw(l), true) => {
                    let _d = l.write().await;
                    waits.push(t.unwrap().elapsed().as_nanos() as u64);
                    acc = critical_section(acc);
                }
            }
        }
        acc
    }
}

struct Sample {
    mops: f64,
    read_p99: u64,
    read_wait_max_ns: u64,
    drain_p50: u64,
    drain_p99: u64,
    drain_max: u64,
}

fn run(rt: &tokio::runtime::Runtime, name: &str, tasks: usize, m: u64, timed: bool) -> Sample {
    rt.block_on(async {
        let p = P::new(name);
        let k = OPS / tasks as u64;
        let start = Instant::now();
        let hs: Vec<_> = (0..tasks)
            .map(|t| {
                let p = p.clone();
                tokio::spawn(async move {
                    let mut waits = Vec::new();
                    let mut reads = Vec::new();
                    let acc = p.work(t as u64, k, m, &mut waits, &mut reads, timed).await;
                    (acc, waits, reads)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut rd = Vec::new();
        let mut sum = 0u64;
        for h in hs {
            let (a, w, r) = h.await.unwrap();
            sum = sum.wrapping_add(a);
            all.extend(w);
            rd.extend(r);
        }
        rd.sort_unstable();
        let read_p99 = rd.get(((rd.len() as f64 - 1.0) * 0.99) as usize).copied().unwrap_or(0);
        let read_max = rd.last().copied().unwrap_or(0);
        let el = start.elapsed();
        black_box(sum);
        all.sort_unstable();
        let q = |f: f64| all.get(((all.len() as f64 - 1.0) * f) as usize).copied().unwrap_or(0);
        Sample {
            mops: (tasks as u64 * k) as f64 / el.as_secs_f64() / 1e6,
            read_p99,
            read_wait_max_ns: read_max,
            drain_p50: q(0.5),
            drain_p99: q(0.99),
            drain_max: q(1.0),
        }
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tasks: usize = args.first().map_or(256, |a| a.parse().unwrap());
    let rounds: usize = args.get(1).map_or(5, |a| a.parse().unwrap());
    let m: u64 = args.get(2).map_or(100, |a| a.parse().unwrap());
    let timed = args.get(3).is_some_and(|a| a == "timed");
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let names = ["gate", "gate_barging", "tokio_semaphore", "async_lock_rwlock"];
    let mut res: std::collections::HashMap<&str, Vec<Sample>> = Default::default();
    for &n in &names {
        run(&rt, n, tasks, m, timed);
    }
    for r in 0..rounds {
        let order: Vec<&str> =
            if r % 2 == 0 { names.to_vec() } else { names.iter().rev().copied().collect() };
        for n in order {
            let s = run(&rt, n, tasks, m, timed);
            println!(
                "round {r} {n:18} {:6.2} Mops/s  drain wait p50 {:>9} ns p99 {:>10} ns max {:>10} ns  read p99 {:>9} ns max {:>10} ns",
                s.mops, s.drain_p50, s.drain_p99, s.drain_max, s.read_p99, s.read_wait_max_ns
            );
            res.entry(n).or_default().push(s);
        }
    }
    println!("--- medians, {tasks} tasks, drain every {m}, {rounds} rounds");
    for n in names {
        let v = res.get_mut(n).unwrap();
        let med = |mut x: Vec<f64>| {
            x.sort_by(f64::total_cmp);
            x[x.len() / 2]
        };
        println!(
            "{n:18} {:6.2} Mops/s  drain p50 {:>9.0} ns  p99 {:>10.0} ns  max {:>10.0} ns  read p99 {:>9.0} ns  max {:>10.0} ns",
            med(v.iter().map(|s| s.mops).collect()),
            med(v.iter().map(|s| s.drain_p50 as f64).collect()),
            med(v.iter().map(|s| s.drain_p99 as f64).collect()),
            med(v.iter().map(|s| s.drain_max as f64).collect()),
            med(v.iter().map(|s| s.read_p99 as f64).collect()),
            med(v.iter().map(|s| s.read_wait_max_ns as f64).collect())
        );
    }
}
