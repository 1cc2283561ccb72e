//! The smart city's subscribers (`citystream sim --only <role>`, and
//! inside `citystream demo`): five [`Role`]s, each its own consumer group
//! reading the publishers' topics and writing its own output, as
//! `docs/city-data.md` lays down:
//!
//! | role | reads | writes |
//! |---|---|---|
//! | environmental monitor | `city.air`, `city.weather` | `city.alerts` (thresholds, z-score anomalies) |
//! | traffic manager | `city.traffic` | `city.advisories` (congestion, incidents, cleared) |
//! | public interface | all four | `city.latest` (each station's latest reading) |
//! | analytics | air, weather, traffic | `city.analytics` (per-minute windows, Holt forecasts) |
//! | archiver | all four | `<archive_dir>/<station>.csv` |
//!
//! Exactly-once outputs across restarts: a role commits its input offsets
//! only after its outputs are acknowledged (or fsynced); every output
//! names its source reading (topic, partition, offset); on start a role
//! reads its output back (the archiver: each file's last row) and skips
//! what is already there (`dedupe.rs` says why that is exact). Stateful
//! roles replay the readings just before where they resume, outputs
//! dropped, so windows and episodes carry over a restart.
//!
//! Module map. Pure (no I/O, unit-tested): `contract` (names, station
//! ids, keys), `reading`, `output` (the [`Input`]/[`Output`]/`Process`
//! interface), `dedupe`, and one module per role's logic: `monitor/`
//! (thresholds, z-scores, episodes), `traffic`, `public`, `analytics/`
//! (windows, Holt), `archive/` (CSV rows and crash repair; `files` is its
//! I/O), `export` (the http crate's `export.csv`). The I/O shell:
//! `runner/` (consumer, replay and read-back, sink, topics). It does not
//! publish readings (crate `sim`) nor serve HTTP (crate `http`).

pub mod analytics;
pub mod archive;
mod config;
pub mod contract;
mod dedupe;
mod error;
pub mod export;
pub mod monitor;
mod output;
pub mod public;
pub mod reading;
mod role;
mod runner;
mod stats;
#[cfg(test)]
mod testing;
pub mod traffic;

use std::sync::Arc;

use citystream_client::Client;
use tokio_util::sync::CancellationToken;

pub use archive::csv::{csv_field_count, csv_header, csv_row};
pub use config::SubscriberConfig;
pub use error::SubscriberError;
pub use output::{Input, Output, Process, SOURCE_HEADER};
pub use role::Role;
pub use stats::{StatsSnapshot, SubscriberStats};

/// Runs `role` until `stop` is cancelled (then it leaves its group and
/// returns `Ok`), or until an error it cannot retry away.
pub async fn run(
    role: Role,
    client: Client,
    config: SubscriberConfig,
    stats: Arc<SubscriberStats>,
    stop: CancellationToken,
) -> Result<(), SubscriberError> {
    runner::run(role, client, config, &stats, stop).await
}

/// The logic of `role`, fresh.
fn processor(role: Role, config: &SubscriberConfig) -> Box<dyn Process> {
    match role {
        Role::Monitor => Box::new(monitor::Monitor::new(
            config.thresholds.clone(),
            config.zscore.clone(),
        )),
        Role::Traffic => Box::new(traffic::Traffic::new(config.congestion.clone())),
        Role::Public => Box::new(public::Public),
        Role::Analytics => Box::new(analytics::Analytics::new(config.analytics.clone())),
        Role::Archiver => Box::new(archive::Archiver),
    }
}
