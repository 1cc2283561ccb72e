//! Housekeeping the domain cannot do itself because it owns no clock or
//! task: `Broker::tick` every `tick_interval_ms` (group sessions, rebalance
//! deadlines, retention) and, under `FsyncPolicy::Interval`, group commit:
//! once a write leaves a partition unsynced, wait `interval_ms` (collecting
//! the writes that follow) and `Broker::sync_logs`. An idle broker therefore
//! does no fsync work at all. Compacted topics are compacted every
//! `retention_check_interval_ms` (`Broker::compact`), apart from the tick
//! so a long rewrite delays no session expiry. These jobs run on the
//! blocking pool since they may touch the disk. A third closes the byte-rate window of the load
//! meter every `LOAD_WINDOW_MS`.

use std::sync::Arc;
use std::time::Duration;

use citystream_broker::FsyncPolicy;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::now_ms;
use crate::load::LOAD_WINDOW_MS;
use crate::server::Shared;

/// Starts the timers; they stop when `stop` is cancelled. The returned
/// tracker is closed, so `wait` returns once they have.
pub(crate) fn start(shared: &Arc<Shared>, stop: &CancellationToken) -> TaskTracker {
    let broker = &shared.broker;
    let timers = TaskTracker::new();
    let tick_broker = Arc::clone(broker);
    timers.spawn(every(
        shared.config.tick_interval_ms,
        "tick",
        stop.clone(),
        move || {
            tick_broker.tick(now_ms());
        },
    ));
    let compact_broker = Arc::clone(broker);
    timers.spawn(every(
        broker.config().retention_check_interval_ms,
        "compaction",
        stop.clone(),
        move || compact_broker.compact(now_ms()),
    ));
    let load_shared = Arc::clone(shared);
    timers.spawn(every(LOAD_WINDOW_MS, "load", stop.clone(), move || {
        load_shared.load.roll(std::time::Instant::now());
    }));
    if let FsyncPolicy::Interval { interval_ms } = broker.config().log.fsync {
        let (written, synced) = (Arc::clone(broker), Arc::clone(broker));
        timers.spawn(group_commit(
            interval_ms,
            stop.clone(),
            move || {
                let broker = Arc::clone(&written);
                async move { broker.unsynced_writes().await }
            },
            move || synced.sync_logs(),
        ));
    }
    timers.close();
    timers
}

/// Runs `job` every `period_ms` (at least 1 ms) until `stop`. A slow job
/// delays the next run instead of bunching missed ones up.
async fn every<F>(period_ms: u64, name: &'static str, stop: CancellationToken, job: F)
where
    F: Fn() + Send + Sync + 'static,
{
    let job = Arc::new(job);
    let mut ticks = tokio::time::interval(Duration::from_millis(period_ms.max(1)));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let job = Arc::clone(&job);
        if let Err(error) = tokio::task::spawn_blocking(move || job()).await {
            tracing::warn!(timer = name, %error, "timer job failed");
        }
    }
}

/// Syncs at most every `interval_ms`, and only after something was written
/// (`written` resolves then): `sync` runs on a blocking thread. The
/// broker's partitions use it, and a cluster node's replicas (decision
/// 0020).
pub(crate) async fn group_commit<W, F, S, E>(
    interval_ms: u64,
    stop: CancellationToken,
    written: W,
    sync: S,
) where
    W: Fn() -> F,
    F: std::future::Future<Output = ()>,
    S: Fn() -> Result<(), E> + Send + Sync + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let window = Duration::from_millis(interval_ms.max(1));
    let sync = Arc::new(sync);
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = written() => {}
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(window) => {}
        }
        let sync = Arc::clone(&sync);
        match tokio::task::spawn_blocking(move || sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "interval fsync failed"),
            Err(error) => tracing::warn!(%error, "interval fsync panicked"),
        }
    }
}
