//! `/api/topics/{topic}/records`: produce (through the node's idempotent,
//! order-keeping producer) and read one partition from an offset or a time.
//! A produce body is parsed and checked whole (record count, partitions,
//! record sizes) before any record is sent.

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use citystream_client::{Acks, Cleanup, ProducerRecord, UNKNOWN_OFFSET};
use citystream_protocol::OffsetSpec;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::body::{BodyKind, NewRecord, RawRecordOptions, RecordInput, parse_body};
use crate::error::{ErrorBody, HttpError};
use crate::state::HttpState;
use crate::views::RecordView;

/// Bytes a record adds to a batch besides key, value and headers.
const RECORD_OVERHEAD_BYTES: usize = 22;
/// Bytes asked for per fetch of a read.
const READ_FETCH_BYTES: u32 = 1024 * 1024;
/// Records a read returns when `limit` is not given.
const READ_LIMIT_DEFAULT: usize = 100;

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AcksParam {
    /// Do not wait (offsets are not known).
    None,
    /// The partition leader appended it.
    Leader,
    /// A majority of replicas have it (default).
    Quorum,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProduceQuery {
    /// `quorum` (default), `leader` or `none`.
    pub acks: Option<AcksParam>,
    /// Key of a raw-body record.
    pub key: Option<String>,
    /// Partition of a raw-body record.
    pub partition: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Produced {
    /// Where each record went, in the order sent.
    pub records: Vec<ProducedRecord>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProducedRecord {
    pub partition: u32,
    /// `null` with `acks=none`.
    pub offset: Option<u64>,
}

/// Produces one or many records; answers once each is acknowledged as
/// `acks` asks. Records of one partition keep the order of the body.
#[utoipa::path(post, path = "/api/topics/{topic}/records", tag = "records",
    params(("topic" = String, Path), ProduceQuery),
    request_body(content = Vec<RecordInput>, description = "A record object, an array of them (application/json), one per line (application/x-ndjson), or any other body as one raw record"),
    responses(
        (status = 200, body = Produced),
        (status = 400, body = ErrorBody, description = "malformed body"),
        (status = 404, body = ErrorBody, description = "unknown topic or partition"),
        (status = 413, body = ErrorBody, description = "body, record count or a record too large"),
        (status = 503, body = ErrorBody, description = "no leader yet; retry"),
    ))]
pub async fn produce(
    State(state): State<HttpState>,
    Path(topic): Path<String>,
    query: Result<Query<ProduceQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Produced>, HttpError> {
    let Query(query) = query?;
    let body = body?;
    let kind = BodyKind::of(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let raw = RawRecordOptions {
        key: query.key.clone(),
        partition: query.partition,
    };
    let records = parse_body(kind, &body, &raw, state.config().records_per_request_max)?;
    check_records(&state, &topic, &records).await?;
    let acks = match query.acks.unwrap_or(AcksParam::Quorum) {
        AcksParam::None => Acks::None,
        AcksParam::Leader => Acks::Leader,
        AcksParam::Quorum => Acks::Quorum,
    };
    let producer = state.producer(acks).await?;
    let mut deliveries = Vec::with_capacity(records.len());
    for record in records {
        let record = ProducerRecord {
            topic: topic.clone(),
            partition: record.partition,
            key: record.key,
            value: record.value,
            headers: record.headers,
            timestamp_ms: record.timestamp_ms,
            tombstone: record.tombstone,
        };
        deliveries.push(producer.send(record).await?);
    }
    let mut produced = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        let written = delivery.await?;
        produced.push(ProducedRecord {
            partition: written.partition,
            offset: (written.offset != UNKNOWN_OFFSET).then_some(written.offset),
        });
    }
    Ok(Json(Produced { records: produced }))
}

/// Refuses, before anything is sent, an unknown topic, a partition it does
/// not have, a record over the broker's record limit, and what the topic's
/// cleanup policy forbids.
async fn check_records(
    state: &HttpState,
    topic: &str,
    records: &[NewRecord],
) -> Result<(), HttpError> {
    let partitions = partition_count(state, topic).await?;
    check_cleanup(state, topic, records).await?;
    let record_bytes_max = state.record_bytes_max().await?;
    for (index, record) in records.iter().enumerate() {
        if let Some(partition) = record.partition.filter(|p| *p >= partitions) {
            return Err(HttpError::not_found(
                "UNKNOWN_PARTITION",
                format!(
                    "record {index}: topic {topic:?} has {partitions} partitions, not {partition}"
                ),
            ));
        }
        let size = RECORD_OVERHEAD_BYTES
            + record.key.as_ref().map_or(0, Bytes::len)
            + record.value.len()
            + record
                .headers
                .iter()
                .map(|(name, value)| 6 + name.len() + value.len())
                .sum::<usize>();
        if size > record_bytes_max as usize {
            return Err(HttpError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "RECORD_TOO_LARGE",
                format!(
                    "record {index} is {size} bytes; the broker takes at most {record_bytes_max}"
                ),
            ));
        }
    }
    Ok(())
}

/// A tombstone needs a compacted topic, and a compacted topic needs a key
/// on every record (decision 0017 §4). The broker checks both too; checking
/// here keeps a request all-or-nothing.
async fn check_cleanup(
    state: &HttpState,
    topic: &str,
    records: &[NewRecord],
) -> Result<(), HttpError> {
    let cleanup = state.client().topic_cleanup(topic).await?;
    let compacted = cleanup.is_some_and(Cleanup::compacts);
    for (index, record) in records.iter().enumerate() {
        if record.tombstone && !compacted {
            return Err(HttpError::bad_request(format!(
                "record {index}: a null value (tombstone) needs a compacted topic; topic \
                 {topic:?} has cleanup {}",
                cleanup.unwrap_or_default()
            )));
        }
        if compacted && record.key.is_none() {
            return Err(HttpError::bad_request(format!(
                "record {index} has no key: every record of compacted topic {topic:?} needs one"
            )));
        }
    }
    Ok(())
}

/// The partition count of `topic`, 404 if it does not exist.
pub async fn partition_count(state: &HttpState, topic: &str) -> Result<u32, HttpError> {
    state
        .client()
        .partition_count(topic)
        .await?
        .ok_or_else(|| HttpError::not_found("UNKNOWN_TOPIC", format!("unknown topic {topic:?}")))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadQuery {
    /// Default 0.
    pub partition: Option<u32>,
    /// First offset to read; default: the log start.
    pub offset: Option<u64>,
    /// Instead of `offset`: the first record at or after this time (ms since the epoch).
    pub timestamp: Option<i64>,
    /// Records to return at most (default 100).
    pub limit: Option<usize>,
    /// Wait this long for a first record if none is there yet (default 0).
    pub wait_ms: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Records {
    pub records: Vec<RecordView>,
    /// Where the next read continues.
    pub next_offset: u64,
    /// Records below it are readable (committed).
    pub high_watermark: u64,
    pub log_start_offset: u64,
}

/// Reads committed records of one partition.
#[utoipa::path(get, path = "/api/topics/{topic}/records", tag = "records",
    params(("topic" = String, Path), ReadQuery),
    responses(
        (status = 200, body = Records),
        (status = 400, body = ErrorBody, description = "bad parameters, or an offset outside the log"),
        (status = 404, body = ErrorBody, description = "unknown topic or partition"),
    ))]
pub async fn read(
    State(state): State<HttpState>,
    Path(topic): Path<String>,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Records>, HttpError> {
    let Query(query) = query?;
    let config = state.config();
    let limit = read_limit(config, query.limit)?;
    let wait_ms = query.wait_ms.unwrap_or(0);
    if wait_ms > config.read_wait_ms_max {
        return Err(HttpError::bad_request(format!(
            "wait_ms must be at most {}",
            config.read_wait_ms_max
        )));
    }
    let partition = query.partition.unwrap_or(0);
    let partitions = partition_count(&state, &topic).await?;
    if partition >= partitions {
        return Err(HttpError::not_found(
            "UNKNOWN_PARTITION",
            format!("topic {topic:?} has {partitions} partitions, not {partition}"),
        ));
    }
    let start = match (query.offset, query.timestamp) {
        (Some(_), Some(_)) => {
            return Err(HttpError::bad_request("give offset or timestamp, not both"));
        }
        (Some(offset), None) => offset,
        (None, time) => {
            let spec = time.map_or(OffsetSpec::Earliest, OffsetSpec::Timestamp);
            let admin = state.client().admin();
            admin.list_offsets(&topic, partition, spec).await?
        }
    };
    let read = read_from(&state, &topic, partition, start, limit, wait_ms).await?;
    Ok(Json(read))
}

/// A read's `limit` (default 100), checked against the configured maximum.
pub fn read_limit(config: &crate::HttpConfig, limit: Option<usize>) -> Result<usize, HttpError> {
    let limit = limit.unwrap_or(READ_LIMIT_DEFAULT);
    if limit == 0 || limit > config.read_records_max {
        return Err(HttpError::bad_request(format!(
            "limit must be 1 to {}",
            config.read_records_max
        )));
    }
    Ok(limit)
}

/// Up to `limit` records of one partition from `offset`.
pub async fn read_from(
    state: &HttpState,
    topic: &str,
    partition: u32,
    offset: u64,
    limit: usize,
    wait_ms: u32,
) -> Result<Records, HttpError> {
    let client = state.client();
    let mut records = Vec::new();
    let mut next_offset = offset;
    let mut wait = wait_ms;
    loop {
        let read = client
            .read_partition(topic, partition, next_offset, READ_FETCH_BYTES, wait)
            .await?;
        wait = 0;
        let room = limit - records.len();
        let got = read.records.len();
        let taken = read.records.into_iter().take(room);
        records.extend(taken.map(|r| RecordView::of(&r)));
        next_offset = match got > room {
            true => records.last().map_or(next_offset, |r| r.offset + 1),
            false => read.next_offset,
        };
        let done = records.len() >= limit || got == 0 || next_offset >= read.high_watermark;
        if done {
            return Ok(Records {
                records,
                next_offset,
                high_watermark: read.high_watermark,
                log_start_offset: read.log_start_offset,
            });
        }
    }
}
