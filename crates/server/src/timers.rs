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

use citystream_broker::{Broker, FsyncPolicy};
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
        timers.spawn(group_commit(Arc::clone(broker), interval_ms, stop.clone()));
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

/// Syncs at most every `interval_ms`, and only after something was written.
async fn group_commit(broker: Arc<Broker>, interval_ms: u64, stop: CancellationToken) {
    let window = Duration::from_millis(interval_ms.max(1));
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = broker.unsynced_writes() => {}
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            () = tokio::time::sleep(window) => {}
        }
        let sync_broker = Arc::clone(&broker);
        match tokio::task::spawn_blocking(move || sync_broker.sync_logs()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "interval fsync failed"),
            Err(error) => tracing::warn!(%error, "interval fsync panicked"),
        }
    }
}
