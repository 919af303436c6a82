//! The `cold-soak` load test: a node-like workload against the task.
//!
//! A chain follower appends realistic blocks at a cadence through
//! `dispatch_append_blocks`, as the Signet node does, and periodically
//! reorgs (an awaited `truncate_above`, then a different branch). A fleet of
//! RPC-like readers (default 256, four times the read cap) mixes header,
//! transaction, receipt, whole-block, `get_logs`, `stream_logs`, gas-oracle
//! `get_headers` and latest-block calls, and checks every answer against the
//! soak's own [record](record::ChainRecord) of the chain. A watchdog declares
//! a stall when nothing completes for `stall` while work is pending.
//!
//! The `cold-soak` binary only parses flags and calls [`run`].

pub mod backend;
pub mod faults;
#[cfg(feature = "postgres")]
mod kill;
pub mod probe;
pub mod reads;
pub mod record;
pub mod report;

use alloy::primitives::B256;
use backend::{BackendSpec, redact};
use cold_adapter::{
    ColdStorageConfig, ColdStorageHandle, ColdStorageHealth, ColdStorageTask, DispatchError,
    error_kind, is_transient,
};
use cold_testkit::{
    chain::{ChainSpec, SplitMix},
    sqlite_url,
};
use faults::{FaultTally, Faulty, is_injected};
use hdrhistogram::Histogram;
use probe::Probe;
use record::{ChainRecord, Verdict};
use report::{OpStats, SoakReport, new_histogram};
use signet_cold::{ColdStorageBackend, mem::MemColdBackend};
use signet_cold_sql::SqlColdBackend;
use signet_storage_types::SealedHeader;
use sqlx::any::AnyPoolOptions;
use std::{
    collections::{BTreeMap, VecDeque},
    io::IsTerminal,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Settings of one soak run.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// The store; `None` is a SQLite file in a fresh temporary directory.
    pub backend: Option<BackendSpec>,
    /// Seed of the generated chain and of every reader's choices.
    pub seed: u64,
    /// How long the readers and the follower run (the whole run adds the
    /// set-up and a final check, a few seconds).
    pub duration: Duration,
    /// Concurrent reader tasks.
    pub readers: usize,
    /// The watchdog fires when nothing completes for this long while work
    /// is pending.
    pub stall: Duration,
    /// Time between the follower's blocks.
    pub block_interval: Duration,
    /// Blocks between reorgs.
    pub reorg_every: u64,
    /// Blocks appended before the readers start.
    pub initial_blocks: u64,
    /// Show a progress bar on stderr (only drawn when it is a terminal).
    pub progress: bool,
    /// Fault rate: the base probability that a backend call, or a reader,
    /// misbehaves, scaled per kind (see [`faults`]); `0.0` injects none.
    pub faults: f64,
    /// Against Postgres with faults on: terminate every connection of the
    /// backend's pool this often, from a separate admin connection.
    pub kill_connections_every: Duration,
    /// Limits of the task under test.
    pub task: ColdStorageConfig,
    /// On a SQL backend, set `task`'s read cap to the pool size (see
    /// cold-adapter's *Choosing the read cap*); `false` keeps `task`'s.
    pub read_cap_from_pool: bool,
}

impl Default for SoakConfig {
    fn default() -> Self {
        Self {
            backend: None,
            seed: 1,
            duration: Duration::from_secs(30),
            readers: 256,
            stall: Duration::from_secs(10),
            block_interval: Duration::from_millis(50),
            reorg_every: 20,
            initial_blocks: 64,
            progress: true,
            faults: DEFAULT_FAULTS,
            kill_connections_every: Duration::from_secs(3),
            task: ColdStorageConfig::default(),
            read_cap_from_pool: true,
        }
    }
}

/// Why a soak could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// The backend could not be opened or reached.
    #[error("cannot open backend {backend}: {reason}")]
    Connect {
        /// The backend, password redacted.
        backend: String,
        /// What went wrong, password redacted.
        reason: String,
    },
    /// A Postgres URL was given to a build without the `postgres` feature.
    #[error("backend {0} needs cold-soak built with the `postgres` feature")]
    PostgresDisabled(String),
    /// The temporary directory for the default SQLite file.
    #[error("cannot create a temporary directory: {0}")]
    TempDir(#[from] std::io::Error),
    /// The store was not usable for a soak (for example, clearing it failed).
    #[error("cannot prepare the store: {0}")]
    Prepare(String),
}

/// The default fault rate of a soak: modest, every kind shows up in a
/// 30-second run.
pub const DEFAULT_FAULTS: f64 = 0.002;

/// How long connecting to a database may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in a SQL backend's pool (sqlx's default).
pub const POOL_SIZE: u32 = 10;

/// Opens a SQL backend over a pool of [`POOL_SIZE`] connections and, if
/// `config` asks for it, sets the task's read cap to that pool's size.
async fn connect_sql(url: &str, config: &mut SoakConfig) -> Result<SqlColdBackend, SoakError> {
    let fail = |reason: String| SoakError::Connect {
        backend: redact(url),
        reason: backend::scrub(&reason, url),
    };
    let connect = async {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(POOL_SIZE).connect(url).await?;
        if config.read_cap_from_pool {
            config.task = config.task.with_read_cap_for_pool(&pool);
        }
        SqlColdBackend::new(pool).await
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(backend)) => Ok(backend),
        Ok(Err(err)) => Err(fail(err.to_string())),
        Err(_) => Err(fail(format!("no answer within {CONNECT_TIMEOUT:?}"))),
    }
}

/// Opens the configured backend and runs the soak against it.
///
/// # Errors
///
/// [`SoakError`] when the backend cannot be opened, reached or cleared. A
/// run that stalls or reads wrong data is not an error: see
/// [`SoakReport::passed`].
///
/// # Cancel safety
///
/// Dropping the future abandons the run; the task it started shuts down as
/// its handles drop.
pub async fn run(mut config: SoakConfig) -> Result<SoakReport, SoakError> {
    match config.backend.clone() {
        None => {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("cold.db");
            let backend = connect_sql(&sqlite_url(&path), &mut config).await?;
            let label = format!("sqlite:{} (temporary)", path.display());
            run_on(backend, label, config).await
        }
        Some(BackendSpec::Mem) => run_on(MemColdBackend::new(), "mem".to_owned(), config).await,
        Some(BackendSpec::Sqlite(path)) => {
            let backend = connect_sql(&sqlite_url(&path), &mut config).await?;
            run_on(backend, BackendSpec::Sqlite(path).to_string(), config).await
        }
        Some(BackendSpec::Postgres(url)) => {
            let backend = open_postgres(&url, &mut config).await?;
            let tally = Arc::new(FaultTally::default());
            let stop = CancellationToken::new();
            #[cfg(feature = "postgres")]
            let killer = (config.faults > 0.0).then(|| {
                tokio::spawn(kill::kill_loop(
                    url.clone(),
                    config.kill_connections_every,
                    stop.clone(),
                    Arc::clone(&tally),
                ))
            });
            let report = run_with(backend, redact(&url), config, tally).await;
            stop.cancel();
            #[cfg(feature = "postgres")]
            if let Some(killer) = killer {
                let _ = killer.await;
            }
            report
        }
    }
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, config: &mut SoakConfig) -> Result<SqlColdBackend, SoakError> {
    // sqlx's pool retries a refused connection until its timeout and then
    // reports only the timeout; one plain TCP connect first names the cause
    // (refused, no route) at once.
    if let Some((host, connect, port)) = backend::tcp_target(url) {
        let probe = tokio::net::TcpStream::connect((connect.as_str(), port));
        let reason = match tokio::time::timeout(CONNECT_TIMEOUT, probe).await {
            Ok(Ok(_)) => None,
            Ok(Err(err)) => Some(format!("cannot reach {host}:{port}: {err}")),
            Err(_) => {
                Some(format!("cannot reach {host}:{port}: no answer within {CONNECT_TIMEOUT:?}"))
            }
        };
        if let Some(reason) = reason {
            return Err(SoakError::Connect { backend: redact(url), reason });
        }
    }
    connect_sql(url, config).await
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(url: &str, _: &mut SoakConfig) -> Result<SqlColdBackend, SoakError> {
    Err(SoakError::PostgresDisabled(redact(url)))
}

/// What changes while the writer makes progress: drains granted, retries
/// made, and the queue's depth.
fn writer_progress(health: &ColdStorageHealth) -> (u64, u64, usize) {
    (health.drains_granted, health.write_retries, health.write_queue_depth)
}

/// Shared counters of a run.
#[derive(Default)]
struct Tally {
    completed: AtomicU64,
    in_flight: AtomicU64,
    readers_started: AtomicU64,
    stale: AtomicU64,
    wrong: AtomicU64,
    backpressure: AtomicU64,
    blocks: AtomicU64,
    reorgs: AtomicU64,
    recoveries: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    examples: Mutex<Vec<String>>,
}

impl Tally {
    fn error(&self, kind: &str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind.to_owned())
            .or_default() += 1;
    }

    fn example(&self, what: String) {
        let mut examples = self.examples.lock().unwrap_or_else(|e| e.into_inner());
        if examples.len() < 10 {
            examples.push(what);
        }
    }
}

/// Runs the soak against an opened `backend`, labelled `label` in the report.
///
/// Blocks above 0 already in the store are truncated first.
///
/// # Errors
///
/// [`SoakError::Prepare`] when clearing the store or appending the initial
/// chain fails.
///
/// # Cancel safety
///
/// As [`run`].
pub async fn run_on<B: ColdStorageBackend>(
    backend: B,
    label: String,
    config: SoakConfig,
) -> Result<SoakReport, SoakError> {
    run_with(backend, label, config, Arc::default()).await
}

async fn run_with<B: ColdStorageBackend>(
    backend: B,
    label: String,
    config: SoakConfig,
    faults: Arc<FaultTally>,
) -> Result<SoakReport, SoakError> {
    let record = Arc::new(ChainRecord::default());
    let probe = Probe::new(backend, Arc::clone(&record));
    let faulty = Faulty::new(probe.clone(), config.faults, config.seed, Arc::clone(&faults));
    let armed = faulty.armed();
    armed.store(false, Ordering::Relaxed);
    let cancel = CancellationToken::new();
    let (task, handle) = ColdStorageTask::with_config(faulty, cancel.clone(), config.task);
    let task = tokio::spawn(task.run());
    let tally = Arc::new(Tally::default());
    let spec = ChainSpec::with_seed(config.seed);

    // A clean store and an initial chain.
    handle.truncate_above(0).await.map_err(|e| SoakError::Prepare(e.to_string()))?;
    let initial = spec.blocks(1, config.initial_blocks.max(1), 0, B256::ZERO);
    for block in &initial {
        record.add(block, 0);
    }
    tally.blocks.fetch_add(initial.len() as u64, Ordering::Relaxed);
    handle.append_blocks(initial).await.map_err(|e| SoakError::Prepare(e.to_string()))?;
    armed.store(true, Ordering::Relaxed);

    let stop = CancellationToken::new();
    let started = Instant::now();
    let latencies: Arc<Latencies> =
        Arc::new(reads::MIX.iter().map(|_| Mutex::new((new_histogram(), 0))).collect());
    let mut readers = JoinSet::new();
    for id in 0..config.readers {
        readers.spawn(reader(
            Reader {
                handle: handle.reader(),
                record: Arc::clone(&record),
                tally: Arc::clone(&tally),
                faults: Arc::clone(&faults),
                latencies: Arc::clone(&latencies),
                fault_rate: config.faults,
            },
            stop.clone(),
            SplitMix::new(config.seed ^ (id as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d)),
        ));
    }
    let follower = tokio::spawn(follower(
        handle.clone(),
        probe.clone(),
        Arc::clone(&record),
        Arc::clone(&tally),
        stop.clone(),
        config.clone(),
        spec,
    ));

    let stall = watch(&handle, &record, &tally, &config, started).await;
    stop.cancel();
    let elapsed = started.elapsed();

    let mut report = SoakReport {
        backend: label,
        seed: config.seed,
        readers: config.readers,
        read_cap: config.task.read_cap(),
        elapsed_secs: elapsed.as_secs_f64(),
        ..SoakReport::default()
    };
    if let Some(health) = stall {
        report.stalled = true;
        report.stall_health = Some(health);
        readers.abort_all();
        follower.abort();
    } else {
        let wind_down = async {
            while readers.join_next().await.is_some() {}
            let _ = follower.await;
            // Writes run in order: this completes after every dispatched one.
            let _ = handle.append_blocks(Vec::new()).await;
        };
        // Under heavy faults the writes queued at the end can take longer
        // than `stall` to run: a stall is `stall` without the writer moving
        // (a drain granted, a retry made, the queue shorter), not a long
        // backlog.
        let mut wind_down = std::pin::pin!(wind_down);
        let mut moved = writer_progress(&handle.health());
        let stalled = loop {
            if tokio::time::timeout(config.stall, wind_down.as_mut()).await.is_ok() {
                break false;
            }
            let now = writer_progress(&handle.health());
            if now == moved {
                break true;
            }
            moved = now;
        };
        if stalled {
            report.stalled = true;
            report.stall_health = Some(format!("{:?} (winding down)", handle.health()));
        } else {
            report.missing_blocks = final_check(&handle, &record, &tally).await;
        }
    }

    let mut reads = 0;
    for ((name, _), slot) in reads::MIX.iter().zip(latencies.iter()) {
        let (h, errors) = &*slot.lock().unwrap_or_else(|e| e.into_inner());
        reads += h.len();
        report.ops.insert((*name).to_owned(), OpStats::from_histogram(h, *errors));
    }
    report.reads_per_sec = reads as f64 / elapsed.as_secs_f64();
    report.write_lag = OpStats::from_histogram(&probe.lag_histogram(), 0);
    report.blocks_appended = tally.blocks.load(Ordering::Relaxed);
    report.reorgs = tally.reorgs.load(Ordering::Relaxed);
    report.backpressure = tally.backpressure.load(Ordering::Relaxed);
    report.errors_by_kind = tally.errors.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report.stale_reads = tally.stale.load(Ordering::Relaxed);
    report.wrong_answers = tally.wrong.load(Ordering::Relaxed);
    report.examples = tally.examples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    report.recoveries = tally.recoveries.load(Ordering::Relaxed);

    cancel.cancel();
    let watcher = handle.reader();
    drop(handle);
    if !report.stalled {
        if tokio::time::timeout(config.stall, task).await.is_ok() {
            report.missing_blocks += check_store(&probe, &record, &tally).await;
        } else {
            report.stalled = true;
            report.stall_health = Some(format!("{:?} (run() did not return)", watcher.health()));
        }
        report.examples = tally.examples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    }
    let health = watcher.health();
    report.write_retries = health.write_retries;
    report.read_retries = health.read_retries;
    report.writes_rejected = health.writes_rejected;
    report.writes_lost = health.writes_lost;
    report.faults = faults.snapshot();
    Ok(report)
}

/// A watchdog tick this late means the process, not the task, was starved.
const STARVED: Duration = Duration::from_secs(1);

/// What the watchdog sees at one tick.
#[derive(Debug, Clone, Copy)]
struct Watch {
    /// Since the last completed read or commit.
    since_progress: Duration,
    /// A read or a handed-over block is waiting.
    pending: bool,
    /// Every reader has started (made its first call).
    all_started: bool,
}

impl Watch {
    /// A stall: work is pending and nothing completed for `stall`. Not
    /// before every reader has started: starting 1,024 readers on a loaded
    /// 2-core machine took longer than 10 s once, with 64 reads in flight
    /// and nothing yet completed, when each reader allocated 2 MB of
    /// histograms on its first poll (issue 9's "1,024-reader stall").
    fn stalled(self, stall: Duration) -> bool {
        self.all_started && self.pending && self.since_progress >= stall
    }
}

/// Shows progress until the duration is over; returns the task's health if
/// the watchdog fired first.
async fn watch(
    handle: &ColdStorageHandle,
    record: &ChainRecord,
    tally: &Tally,
    config: &SoakConfig,
    started: Instant,
) -> Option<String> {
    let bar = if config.progress && std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(config.duration.as_secs().max(1))
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut progress = (0, 0);
    let mut last_progress = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        let due = tick.tick().await;
        // The watchdog itself ran late: the process got no CPU (a loaded
        // machine), which is not the task's stall; don't count that time.
        let late = due.elapsed();
        if late >= STARVED {
            last_progress += late;
        }
        let now = (tally.completed.load(Ordering::Relaxed), record.commits());
        if now != progress {
            progress = now;
            last_progress = Instant::now();
        }
        let watch = Watch {
            since_progress: last_progress.elapsed(),
            pending: tally.in_flight.load(Ordering::Relaxed) > 0 || record.uncommitted() > 0,
            all_started: tally.readers_started.load(Ordering::Relaxed) >= config.readers as u64,
        };
        if !watch.all_started {
            last_progress = Instant::now();
        }
        if watch.stalled(config.stall) {
            let health = format!("{:?}", handle.health());
            bar.abandon_with_message(format!("STALL: nothing completed for {:?}", config.stall));
            eprintln!(
                "cold-soak: stall: nothing completed for {:?}; health: {health}",
                config.stall
            );
            break Some(health);
        }
        let elapsed = started.elapsed();
        bar.set_position(elapsed.as_secs());
        bar.set_message(format!(
            "{} reads ({:.0}/s)  tip {}  stale {}  wrong {}",
            progress.0,
            progress.0 as f64 / elapsed.as_secs_f64().max(0.001),
            record.tip().unwrap_or(0),
            tally.stale.load(Ordering::Relaxed),
            tally.wrong.load(Ordering::Relaxed),
        ));
        if elapsed >= config.duration {
            break None;
        }
    };
    bar.finish_and_clear();
    outcome
}

/// Latency histograms and error counts of every read kind, in
/// [`reads::MIX`] order, shared by all readers (one set, however many
/// readers: a set is about 200 kB).
type Latencies = Vec<Mutex<(Histogram<u64>, u64)>>;

/// What a reader task shares with the run.
struct Reader {
    handle: cold_adapter::ColdStorageReadHandle,
    record: Arc<ChainRecord>,
    tally: Arc<Tally>,
    faults: Arc<FaultTally>,
    latencies: Arc<Latencies>,
    fault_rate: f64,
}

/// How a reader misbehaves on one read, as RPC callers do.
enum Caller {
    Patient,
    /// Gives up after this long (a timed-out RPC call).
    Cancels(Duration),
    /// Polls once, then stops polling for this long before awaiting again
    /// (a `buffered` stream whose consumer is slow).
    StopsPolling(Duration),
}

fn pick_caller(rng: &mut SplitMix, rate: f64) -> Caller {
    let roll = rng.next_u64() as f64 / u64::MAX as f64;
    if roll < rate * 2.0 {
        Caller::Cancels(Duration::from_micros(rng.between(1, 2_000)))
    } else if roll < rate * 2.2 {
        Caller::StopsPolling(Duration::from_millis(rng.between(1, 1_000)))
    } else {
        Caller::Patient
    }
}

/// One reader: random checked reads until `stop`.
async fn reader(me: Reader, stop: CancellationToken, mut rng: SplitMix) {
    let Reader { handle, record, tally, faults, latencies, fault_rate } = me;
    tally.readers_started.fetch_add(1, Ordering::Relaxed);
    while !stop.is_cancelled() {
        tally.in_flight.fetch_add(1, Ordering::Relaxed);
        let began = Instant::now();
        let caller = pick_caller(&mut rng, fault_rate);
        let done = match caller {
            Caller::Patient => Some(reads::one_read(&handle, &record, &mut rng).await),
            Caller::Cancels(after) => {
                let read = reads::one_read(&handle, &record, &mut rng);
                let done = tokio::time::timeout(after, read).await.ok();
                if done.is_none() {
                    faults.add("caller_cancel", 1);
                }
                done
            }
            Caller::StopsPolling(pause) => {
                let mut read = std::pin::pin!(reads::one_read(&handle, &record, &mut rng));
                let first =
                    std::future::poll_fn(|cx| std::task::Poll::Ready(read.as_mut().poll(cx))).await;
                Some(match first {
                    std::task::Poll::Ready(done) => done,
                    std::task::Poll::Pending => {
                        faults.add("caller_stop_polling", 1);
                        tokio::time::sleep(pause).await;
                        read.await
                    }
                })
            }
        };
        tally.in_flight.fetch_sub(1, Ordering::Relaxed);
        tally.completed.fetch_add(1, Ordering::Relaxed);
        let Some((op, outcome)) = done else { continue };
        let micros = began.elapsed().as_micros() as u64;
        let failed = match outcome {
            Ok(Verdict::Ok) => false,
            Ok(Verdict::Stale(what)) => {
                tally.stale.fetch_add(1, Ordering::Relaxed);
                tally.example(format!("stale {}: {what}", reads::MIX[op].0));
                false
            }
            Ok(Verdict::Wrong(what)) => {
                tally.wrong.fetch_add(1, Ordering::Relaxed);
                tally.example(format!("wrong {}: {what}", reads::MIX[op].0));
                false
            }
            Err(err) => {
                tally.error(soak_error_kind(&err));
                if soak_error_kind(&err) == "backend" {
                    tally.example(format!("{} failed: {err}", reads::MIX[op].0));
                }
                true
            }
        };
        let mut slot = latencies[op].lock().unwrap_or_else(|e| e.into_inner());
        slot.0.saturating_record(micros.max(1));
        slot.1 += u64::from(failed);
    }
}

/// The soak's label for an error: `injected` for a fault it injected,
/// `transient` for a real transient fault that outlived the task's retries
/// (a killed connection), otherwise [`error_kind`].
fn soak_error_kind(err: &signet_cold::ColdStorageError) -> &'static str {
    if is_injected(err) {
        "injected"
    } else if is_transient(err) && error_kind(err) == "backend" {
        "transient"
    } else {
        error_kind(err)
    }
}

/// The chain follower: a block per interval through
/// `dispatch_append_blocks`, retrying what Backpressure refused, and a reorg
/// every `reorg_every` blocks.
async fn follower<B: ColdStorageBackend>(
    handle: ColdStorageHandle,
    probe: Probe<B>,
    record: Arc<ChainRecord>,
    tally: Arc<Tally>,
    stop: CancellationToken,
    config: SoakConfig,
    spec: ChainSpec,
) {
    let mut rng = SplitMix::new(config.seed.rotate_left(17));
    let mut branch = 0u64;
    let (mut tip, mut parent) = match record.tip().and_then(|n| record.canonical(n)) {
        Some((hash, meta)) => (meta.number, hash),
        None => (0, B256::ZERO),
    };
    let mut since_reorg = 0u64;
    let mut pending: VecDeque<signet_cold::BlockData> = VecDeque::new();
    let mut tick = tokio::time::interval(config.block_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.is_cancelled() {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        if handle.health().halted.is_some() {
            match recover(&handle, &record, &spec, &tally, tip).await {
                Some(blocks) => pending = blocks,
                None => continue,
            }
        }
        if since_reorg >= config.reorg_every && tip > 4 {
            let depth = rng.between(1, 3);
            let keep = tip - depth;
            // Blocks refused earlier and still above `keep` never reached the
            // store; the new branch replaces them.
            pending.retain(|b| b.block_number() <= keep);
            record.truncating(keep);
            match handle.truncate_above(keep).await {
                Ok(()) => record.truncated(keep),
                Err(err) => {
                    tally.error(soak_error_kind(&err));
                    tally.example(format!("truncate_above({keep}) failed: {err}"));
                    continue;
                }
            }
            tally.reorgs.fetch_add(1, Ordering::Relaxed);
            branch += 1;
            since_reorg = 0;
            tip = keep;
            parent = record.canonical(keep).map(|(hash, _)| hash).unwrap_or_default();
        }
        let block = spec.block(tip + 1, branch, parent);
        record.add(&block, branch);
        tip += 1;
        parent = block.header.hash();
        since_reorg += 1;
        tally.blocks.fetch_add(1, Ordering::Relaxed);
        pending.push_back(block);
        while let Some(next) = pending.front() {
            probe.handed_over(next.header.hash());
            match handle.dispatch_append_blocks(vec![next.clone()]) {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(DispatchError::Backpressure) => {
                    tally.backpressure.fetch_add(1, Ordering::Relaxed);
                    tally.error("backpressure");
                    break;
                }
                Err(DispatchError::TaskTerminated) => return,
                // Recovered at the next tick.
                Err(DispatchError::Halted(_)) => break,
            }
        }
    }
    // Hand over what Backpressure held back, waiting for queue slots, and
    // recover from a halt met on the way (a bounded number of times).
    for _ in 0..8 {
        if !pending.is_empty() {
            let _ = handle.append_blocks(std::mem::take(&mut pending).into()).await;
        }
        let _ = handle.append_blocks(Vec::new()).await; // after every write queued
        if handle.health().halted.is_none() {
            break;
        }
        if let Some(blocks) = recover(&handle, &record, &spec, &tally, tip).await {
            pending = blocks;
        }
    }
}

/// Appends are halted (a write failed for good): truncates to the last good
/// block, as a node would, and returns every canonical block from the failed
/// one up to `tip`, to hand over again (the writer refused them all). `None`
/// if the truncate failed.
async fn recover(
    handle: &ColdStorageHandle,
    record: &ChainRecord,
    spec: &ChainSpec,
    tally: &Tally,
    tip: u64,
) -> Option<VecDeque<signet_cold::BlockData>> {
    let halt = handle.health().halted?;
    let keep = halt.block.saturating_sub(1);
    if let Err(err) = handle.truncate_above(keep).await {
        tally.error(soak_error_kind(&err));
        tally.example(format!("recovery truncate_above({keep}) failed: {err}"));
        return None;
    }
    tally.recoveries.fetch_add(1, Ordering::Relaxed);
    let mut blocks = VecDeque::new();
    for number in halt.block..=tip {
        let Some((hash, meta)) = record.canonical(number) else { continue };
        let parent = record.canonical(number.wrapping_sub(1)).map(|(h, _)| h).unwrap_or_default();
        let block = spec.block(number, meta.branch, parent);
        debug_assert_eq!(block.header.hash(), hash, "the generator is deterministic");
        blocks.push_back(block);
    }
    Some(blocks)
}

/// After the follower stopped and its writes ran: every canonical block
/// must be readable with the right hash. Returns how many are not.
async fn final_check(handle: &ColdStorageHandle, record: &ChainRecord, tally: &Tally) -> u64 {
    check_chain(record, tally, "final check", async |number| {
        // Faults are still being injected: retry a read that met one (an
        // injected or a transient error says nothing about the store).
        let mut found = handle.get_header_by_number(number).await;
        for _ in 0..10 {
            match &found {
                Err(err)
                    if soak_error_kind(err) == "injected"
                        || soak_error_kind(err) == "transient" =>
                {
                    found = handle.get_header_by_number(number).await;
                }
                _ => break,
            }
        }
        found
    })
    .await
}

/// Once `run()` has returned: every block of the canonical chain the
/// follower was acknowledged, read straight from the store (below the fault
/// injector and the task), so a write lost at shutdown shows.
async fn check_store<B: ColdStorageBackend>(store: &B, record: &ChainRecord, tally: &Tally) -> u64 {
    check_chain(record, tally, "after run() returned", async |number| {
        store.get_header(signet_cold::HeaderSpecifier::Number(number)).await
    })
    .await
}

/// Counts the blocks of `record`'s canonical chain that `get` does not
/// return with the recorded hash; each one becomes an example.
async fn check_chain(
    record: &ChainRecord,
    tally: &Tally,
    when: &str,
    mut get: impl AsyncFnMut(u64) -> signet_cold::ColdResult<Option<SealedHeader>>,
) -> u64 {
    let mut missing = 0;
    for (number, hash) in record.canonical_chain() {
        match get(number).await {
            Ok(Some(header)) if header.hash() == hash => {}
            Ok(found) => {
                missing += 1;
                tally.example(format!(
                    "{when}: block {number} is {:?}, expected {hash}",
                    found.map(|h| h.hash())
                ));
            }
            Err(err) => {
                missing += 1;
                tally.example(format!("{when}: block {number}: {err}"));
            }
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 1,024-reader stall: on a starved machine the readers had not all
    /// started 10 s in, and nothing had completed. The watchdog waits for
    /// them; once they have all started, a real stall still fires.
    #[test]
    fn the_watchdog_waits_for_every_reader_to_start() {
        let stall = Duration::from_secs(10);
        let starting = Watch { since_progress: stall * 2, pending: true, all_started: false };
        assert!(!starting.stalled(stall));
        let stuck = Watch { all_started: true, ..starting };
        assert!(stuck.stalled(stall));
        assert!(!Watch { pending: false, ..stuck }.stalled(stall));
        assert!(!Watch { since_progress: stall / 2, ..stuck }.stalled(stall));
    }

    /// The other half of the cause: a reader's first poll allocated twelve
    /// histograms of about 170 kB each. Now one set is shared by all
    /// readers, whatever their number.
    #[test]
    fn latency_histograms_are_one_set_for_all_readers() {
        let one = std::mem::size_of::<u64>() * new_histogram().distinct_values();
        let set = one * reads::MIX.len();
        assert!(set < 4 << 20, "{set} bytes");
        let reader = std::mem::size_of::<Reader>();
        assert!(reader < 256, "a reader's own state is {reader} bytes");
    }
}
