//! Every metric the native side records, named in one place (the `metrics`
//! facade; the process that embeds the server installs a recorder, e.g. the
//! Prometheus exporter behind `GET /metrics`, or none: then recording costs
//! next to nothing). Names follow Prometheus conventions: `_total` for
//! counters, units last (`_seconds`, `_bytes`).

use std::time::Duration;

use citystream_protocol::ApiKey;
use citystream_record::BatchHeader;

/// A native request was answered (`ok`: without an error code).
pub(crate) fn request_served(api: ApiKey, elapsed: Duration, ok: bool) {
    let api = format!("{api:?}");
    metrics::histogram!("citystream_request_seconds", "api" => api.clone())
        .record(elapsed.as_secs_f64());
    if !ok {
        metrics::counter!("citystream_request_errors_total", "api" => api).increment(1);
    }
}

/// A batch was accepted into `topic`.
pub(crate) fn produced(topic: &str, batch: &[u8]) {
    let records = BatchHeader::decode(batch).map_or(0, |header| header.record_count);
    metrics::counter!("citystream_records_in_total", "topic" => topic.to_owned())
        .increment(u64::from(records));
    metrics::counter!("citystream_bytes_in_total", "topic" => topic.to_owned())
        .increment(batch.len() as u64);
}

/// Record bytes of `topic` were sent to a consumer.
pub(crate) fn fetched(topic: &str, bytes: usize) {
    if bytes > 0 {
        metrics::counter!("citystream_bytes_out_total", "topic" => topic.to_owned())
            .increment(bytes as u64);
    }
}

/// A connection of `listener` opened (`+1`) or closed (`-1`).
pub(crate) fn connections(listener: &'static str, delta: f64) {
    metrics::gauge!("citystream_connections", "listener" => listener).increment(delta);
}

/// A partition replica's Raft state, sampled periodically: the leader's
/// node id (0: none) and how far the local log runs past what is committed.
pub(crate) fn replica_sampled(topic: &str, partition: u32, leader: u64, commit_lag: u64) {
    let labels = [
        ("topic", topic.to_owned()),
        ("partition", partition.to_string()),
    ];
    metrics::gauge!("citystream_partition_leader", &labels).set(leader as f64);
    metrics::gauge!("citystream_partition_commit_lag_offsets", &labels).set(commit_lag as f64);
}

/// A partition replica saw its leader change.
pub(crate) fn leader_changed(topic: &str, partition: u32) {
    metrics::counter!(
        "citystream_partition_leader_changes_total",
        "topic" => topic.to_owned(),
        "partition" => partition.to_string()
    )
    .increment(1);
}
