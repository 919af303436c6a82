//! Real connection faults against Postgres: every few seconds, terminate
//! every connection to the soak's database but the killer's own.

use crate::faults::FaultTally;
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Kills the backend's connections every `every` until `stop`. Counts them
/// as `pg_connections_killed`; a failure of the admin connection itself is
/// reported once on stderr and ends the loop.
pub(super) async fn kill_loop(
    url: String,
    every: Duration,
    stop: CancellationToken,
    tally: Arc<FaultTally>,
) {
    sqlx::any::install_default_drivers();
    let admin = sqlx::pool::PoolOptions::<sqlx::Any>::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&url)
        .await;
    let admin = match admin {
        Ok(admin) => admin,
        Err(err) => {
            eprintln!(
                "cold-soak: connection killer cannot connect: {}",
                crate::backend::scrub(&err.to_string(), &url)
            );
            return;
        }
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        let killed: Result<(i64,), _> = sqlx::query_as(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&admin)
        .await;
        match killed {
            Ok((n,)) => tally.add("pg_connections_killed", n.max(0) as u64),
            Err(err) => {
                eprintln!(
                    "cold-soak: connection killer failed: {}",
                    crate::backend::scrub(&err.to_string(), &url)
                );
                break;
            }
        }
    }
    admin.close().await;
}
