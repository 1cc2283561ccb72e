//! The data path: produce, fetch (with long poll) and offset lookups. Batches
//! pass through as opaque bytes; validation, limits and dedup are the
//! broker's. This file owns the fetch wait and the response byte budget.
//!
//! Single node: the leader is a quorum of one, so `Acks::Quorum` is answered
//! exactly like `Acks::Leader`, right after the append; and the high
//! watermark is the log end, so `OffsetQuery::Latest` gives it.

use std::time::Duration;

use citystream_broker::{Broker, BrokerError, FetchOutcome, OffsetQuery, ProduceOutcome};
use citystream_protocol::{
    Acks, FetchPartition, FetchPartitionResponse, FetchRequest, FetchResponse,
    ListOffsetsPartition, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetSpec, PartitionStatus, ProducePartition, ProducePartitionResponse, ProduceRequest,
    ProduceResponse,
};
use futures::future::select_all;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::errors::partition_status;
use crate::node::ClusterNode;
use crate::server::Shared;

/// Where partitions are read: the standalone broker, or this node's
/// replicas in cluster mode (same rules, committed data only).
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Local(&'a Broker),
    Cluster(&'a ClusterNode),
}

impl Source<'_> {
    pub(crate) fn of(shared: &Shared) -> Source<'_> {
        match &shared.node {
            Some(node) => Source::Cluster(node),
            None => Source::Local(&shared.broker),
        }
    }

    fn fetch(
        self,
        topic: &str,
        partition: u32,
        offset: u64,
        max_bytes: u32,
    ) -> Result<FetchOutcome, BrokerError> {
        match self {
            Source::Local(broker) => broker.fetch(topic, partition, offset, max_bytes),
            Source::Cluster(node) => node.fetch(topic, partition, offset, max_bytes),
        }
    }

    fn list_offset(
        self,
        topic: &str,
        partition: u32,
        query: OffsetQuery,
    ) -> Result<u64, BrokerError> {
        match self {
            Source::Local(broker) => broker.list_offset(topic, partition, query),
            Source::Cluster(node) => node.list_offset(topic, partition, query),
        }
    }

    fn watch_partition(
        self,
        topic: &str,
        partition: u32,
    ) -> Result<watch::Receiver<u64>, BrokerError> {
        match self {
            Source::Local(broker) => broker.watch_partition(topic, partition),
            Source::Cluster(node) => node.watch_partition(topic, partition),
        }
    }
}

// ---- produce ------------------------------------------------------------------

/// Appends every batch; `None` (no response at all) for `acks = None`.
/// `timeout_ms` has nothing to bound on a single node: the append is local.
pub(crate) fn produce(shared: &Shared, request: ProduceRequest) -> Option<ProduceResponse> {
    let now_ms = now_ms();
    let partitions = request
        .partitions
        .into_iter()
        .map(|partition| {
            let batch = partition.batch.clone();
            let response = produce_partition(&shared.broker, partition, now_ms);
            if response.status.error.is_ok() {
                shared.load.record_in(batch.len());
                crate::metrics::produced(&response.topic, &batch);
            }
            response
        })
        .collect();
    match request.acks {
        Acks::None => None,
        Acks::Leader | Acks::Quorum => Some(ProduceResponse { partitions }),
    }
}

fn produce_partition(
    broker: &Broker,
    request: ProducePartition,
    now_ms: i64,
) -> ProducePartitionResponse {
    let ProducePartition {
        topic,
        partition,
        batch,
    } = request;
    let result = broker.produce(&topic, partition, batch, now_ms);
    produce_answer(topic, partition, result)
}

/// The response entry of one partition's produce: its offsets, or why it
/// was refused or not acknowledged.
pub(crate) fn produce_answer(
    topic: String,
    partition: u32,
    result: Result<ProduceOutcome, BrokerError>,
) -> ProducePartitionResponse {
    let (status, base_offset, log_start_offset) = match result {
        Ok(outcome) => (
            PartitionStatus::ok(),
            outcome.base_offset,
            outcome.log_start_offset,
        ),
        Err(error) => {
            tracing::debug!(%topic, partition, %error, "produce rejected");
            (partition_status(&error), 0, 0)
        }
    };
    ProducePartitionResponse {
        topic,
        partition,
        status,
        base_offset,
        log_start_offset,
    }
}

// ---- fetch --------------------------------------------------------------------

/// Reads every partition; while fewer than `min_bytes` are available it
/// waits for any of them to grow, until the deadline (`max_wait_ms` clamped
/// to `fetch_wait_ms_max`) or `stop`. A partition error answers at once.
pub(crate) async fn fetch(
    shared: &Shared,
    stop: &CancellationToken,
    request: FetchRequest,
) -> FetchResponse {
    let wait_ms = request.max_wait_ms.min(shared.config.fetch_wait_ms_max);
    let deadline = Instant::now() + Duration::from_millis(u64::from(wait_ms));
    // Subscribed before the first read, so a produce landing between a read
    // and the wait still wakes the wait.
    let mut watchers = if wait_ms > 0 && request.min_bytes > 0 {
        watch_partitions(Source::of(shared), &request.partitions)
    } else {
        Vec::new()
    };
    loop {
        let response = read_partitions(Source::of(shared), &request);
        if !needs_more(&response, request.min_bytes)
            || !wait_for_change(&mut watchers, deadline, stop).await
        {
            let records_bytes = response.partitions.iter().map(|p| p.records.len()).sum();
            shared.load.record_out(records_bytes);
            for partition in &response.partitions {
                crate::metrics::fetched(&partition.topic, partition.records.len());
            }
            return response;
        }
    }
}

/// Whether the response is short of `min_bytes` and has nothing to report.
fn needs_more(response: &FetchResponse, min_bytes: u32) -> bool {
    let bytes: usize = response.partitions.iter().map(|p| p.records.len()).sum();
    bytes < min_bytes as usize && response.partitions.iter().all(|p| p.status.error.is_ok())
}

fn watch_partitions(
    broker: Source<'_>,
    partitions: &[FetchPartition],
) -> Vec<watch::Receiver<u64>> {
    partitions
        .iter()
        .filter_map(|p| broker.watch_partition(&p.topic, p.partition).ok())
        .collect()
}

/// Waits until a watched partition changes (true), or the deadline passes,
/// `stop` is cancelled or nothing is left to watch (false).
async fn wait_for_change(
    watchers: &mut Vec<watch::Receiver<u64>>,
    deadline: Instant,
    stop: &CancellationToken,
) -> bool {
    if watchers.is_empty() {
        return false;
    }
    let changed = {
        let changes = watchers
            .iter_mut()
            .enumerate()
            .map(|(index, watcher)| Box::pin(async move { (index, watcher.changed().await) }));
        tokio::select! {
            biased;
            () = stop.cancelled() => return false,
            () = tokio::time::sleep_until(deadline) => return false,
            ((index, changed), _, _) = select_all(changes) => (index, changed.is_ok()),
        }
    };
    if let (index, false) = changed {
        // The partition went away (topic deleted); the re-read reports it.
        watchers.swap_remove(index);
    }
    true
}

/// One read of every partition within the request's byte budget. Each
/// partition gets at most its own `max_bytes` and what the budget has left;
/// the first batch returned is kept even when larger, so a consumer always
/// makes progress.
fn read_partitions(broker: Source<'_>, request: &FetchRequest) -> FetchResponse {
    let mut budget_bytes = request.max_bytes;
    let mut returned_any = false;
    let partitions = request
        .partitions
        .iter()
        .map(|partition| {
            let limit_bytes = budget_bytes.min(partition.max_bytes);
            let response = if limit_bytes == 0 && returned_any {
                read_watermarks(broker, partition)
            } else {
                read_partition(broker, partition, limit_bytes, !returned_any)
            };
            let returned = u32::try_from(response.records.len()).unwrap_or(u32::MAX);
            budget_bytes = budget_bytes.saturating_sub(returned);
            returned_any |= returned > 0;
            response
        })
        .collect();
    FetchResponse { partitions }
}

fn read_partition(
    broker: Source<'_>,
    request: &FetchPartition,
    limit_bytes: u32,
    may_exceed_limit: bool,
) -> FetchPartitionResponse {
    let mut response = empty_fetch_response(request);
    match broker.fetch(
        &request.topic,
        request.partition,
        request.offset,
        limit_bytes,
    ) {
        Ok(outcome) => {
            response.high_watermark = outcome.high_watermark;
            response.log_start_offset = outcome.log_start_offset;
            // An oversize first batch of a later partition waits for a fetch
            // where it comes first.
            if may_exceed_limit || outcome.records.len() <= limit_bytes as usize {
                response.records = outcome.records;
            }
        }
        Err(error) => response.status = partition_status(&error),
    }
    response
}

/// Watermarks without records, for a partition the budget has no room for.
fn read_watermarks(broker: Source<'_>, request: &FetchPartition) -> FetchPartitionResponse {
    let mut response = empty_fetch_response(request);
    let (topic, partition) = (&request.topic, request.partition);
    let watermarks = broker
        .list_offset(topic, partition, OffsetQuery::Earliest)
        .and_then(|start| {
            Ok((
                start,
                broker.list_offset(topic, partition, OffsetQuery::Latest)?,
            ))
        });
    match watermarks {
        Ok((log_start_offset, high_watermark)) => {
            response.log_start_offset = log_start_offset;
            response.high_watermark = high_watermark;
        }
        Err(error) => response.status = partition_status(&error),
    }
    response
}

fn empty_fetch_response(request: &FetchPartition) -> FetchPartitionResponse {
    FetchPartitionResponse {
        topic: request.topic.clone(),
        partition: request.partition,
        status: PartitionStatus::ok(),
        high_watermark: 0,
        log_start_offset: 0,
        records: bytes::Bytes::new(),
    }
}

// ---- offsets ------------------------------------------------------------------

pub(crate) fn list_offsets(shared: &Shared, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let partitions = request
        .partitions
        .into_iter()
        .map(|partition| list_offset(Source::of(shared), partition))
        .collect();
    ListOffsetsResponse { partitions }
}

fn list_offset(broker: Source<'_>, request: ListOffsetsPartition) -> ListOffsetsPartitionResponse {
    let query = match request.spec {
        OffsetSpec::Earliest => OffsetQuery::Earliest,
        OffsetSpec::Latest => OffsetQuery::Latest,
        OffsetSpec::Timestamp(timestamp_ms) => OffsetQuery::Timestamp(timestamp_ms),
    };
    let (status, offset) = match broker.list_offset(&request.topic, request.partition, query) {
        Ok(offset) => (PartitionStatus::ok(), offset),
        Err(error) => (partition_status(&error), 0),
    };
    ListOffsetsPartitionResponse {
        topic: request.topic,
        partition: request.partition,
        status,
        offset,
    }
}
