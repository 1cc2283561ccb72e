//! `GET /api/topics/{topic}/stream`: a topic's records as Server-Sent
//! Events, every partition merged.
//!
//! Each event is one record (`data:` the record JSON of the read API) with
//! `id: <partition>:<offset>,...` listing, for every partition, the offset
//! of the next record the stream would send: a client reconnecting with it
//! as `Last-Event-ID` (or `?from=` the same list) continues with no gap and
//! no duplicate, at any node, across leader changes (offsets are the same
//! on every replica). Without it, `?from=earliest|latest|<ms since the
//! epoch>|<partition>:<offset>,...` says where to start (default latest).
//!
//! How records flow: one shared [`citystream_client::live::Tails`] reader per partition and
//! node broadcasts new records; a stream subscribes to the tails of its
//! partitions first, reads the log from its own positions up to the end,
//! then takes the broadcast batches, filling any gap between its position
//! and a batch from the log. Slow clients: each stream has a bounded queue
//! (`HttpConfig::stream_queue_events`, 256 events); while it is full the
//! stream stops taking batches, the shared broadcast buffer
//! (`tail_buffer_batches`, 1,024 batches) runs past it, and the stream gets
//! `event: lagged` (`data: {"partition": p}`) and resumes from the log at
//! its position. Nothing a client does slows the
//! tail, the producers or other streams. A comment line every 15 s keeps
//! idle connections open.

pub mod filter;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use citystream_client::live::TailBatch;
use citystream_client::{Client, ConsumerRecord, ErrorCode};
use citystream_protocol::OffsetSpec;
use futures::stream::{Stream, StreamExt as _, select_all};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, ReceiverStream};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use crate::error::{ErrorBody, HttpError};
use crate::records::partition_count;
use crate::state::HttpState;
use crate::views::record_json;
use filter::{Sampler, check_key_filter, key_matches};

/// A tail's batch with each record's event data, encoded once for every
/// stream.
pub type EventBatch = TailBatch<Vec<String>>;
/// The shared tails of the HTTP API's streams.
pub type EventTails = citystream_client::live::Tails<Vec<String>>;

/// The tails of a node's event streams.
pub fn event_tails(buffer_batches: usize) -> EventTails {
    EventTails::new(buffer_batches, |records| {
        records.iter().map(record_json).collect()
    })
}

/// The comment heartbeat period.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// Bytes per catch-up read from the log.
const CATCH_UP_FETCH_BYTES: u32 = 1024 * 1024;
/// Pause after a failed catch-up read.
const CATCH_UP_RETRY: Duration = Duration::from_millis(200);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// `earliest`, `latest` (default), a time in ms since the epoch, or
    /// `partition:offset,...`. A `Last-Event-ID` header takes precedence.
    pub from: Option<String>,
    /// Only records whose key matches: an MQTT-style filter (`city/+/air/#`)
    /// or, without `+`/`#`, a key prefix.
    pub key: Option<String>,
    /// At most this many records per key per second (dashboards).
    pub max_per_key_per_s: Option<u32>,
}

/// Streams a topic's records as Server-Sent Events.
#[utoipa::path(get, path = "/api/topics/{topic}/stream", tag = "records",
    params(("topic" = String, Path), StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last event received: resume after it")),
    responses(
        (status = 200, content_type = "text/event-stream", description = "one event per record; id lists every partition's next offset"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<HttpState>,
    Path(topic): Path<String>,
    query: Result<Query<StreamQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, HttpError> {
    let Query(query) = query?;
    if let Some(filter) = &query.key {
        check_key_filter(filter).map_err(HttpError::bad_request)?;
    }
    if query.max_per_key_per_s == Some(0) {
        return Err(HttpError::bad_request(
            "max_per_key_per_s must be at least 1",
        ));
    }
    let partitions = partition_count(&state, &topic).await?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok());
    let start = last_event_id.or(query.from.as_deref()).unwrap_or("latest");
    let cursors = start_positions(state.client(), &topic, partitions, start).await?;
    // Subscribe before catching up, so no record falls between the two.
    let stop = state.stop_token();
    let receivers: Vec<(u32, BroadcastStream<_>)> = (0..partitions)
        .map(|p| {
            let receiver = state.tails().subscribe(state.client(), &topic, p, &stop);
            (p, BroadcastStream::new(receiver))
        })
        .collect();
    let (events, queue) = mpsc::channel(state.config().stream_queue_events.max(1));
    let sender = StreamSender {
        client: state.client().clone(),
        topic,
        cursors,
        key_filter: query.key,
        sampler: query.max_per_key_per_s.map(Sampler::new),
        events,
    };
    tokio::spawn(sender.run(receivers, stop));
    let events = ReceiverStream::new(queue).map(Ok);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT)))
}

/// Where each partition starts, from `start` (see [`StreamQuery::from`]).
async fn start_positions(
    client: &Client,
    topic: &str,
    partitions: u32,
    start: &str,
) -> Result<BTreeMap<u32, u64>, HttpError> {
    // Listed partitions start where listed; the others from `spec`.
    let (listed, spec) = match start {
        "earliest" => (BTreeMap::new(), OffsetSpec::Earliest),
        "latest" => (BTreeMap::new(), OffsetSpec::Latest),
        list if list.contains(':') => (parse_positions(list, partitions)?, OffsetSpec::Latest),
        time => {
            let time = time.parse::<i64>().map_err(|_| {
                HttpError::bad_request(format!(
                    "from {time:?}: give earliest, latest, a time in ms or partition:offset,..."
                ))
            })?;
            (BTreeMap::new(), OffsetSpec::Timestamp(time))
        }
    };
    let admin = client.admin();
    let mut cursors = BTreeMap::new();
    for partition in 0..partitions {
        let offset = match listed.get(&partition) {
            Some(offset) => *offset,
            None => admin.list_offsets(topic, partition, spec).await?,
        };
        cursors.insert(partition, offset);
    }
    Ok(cursors)
}

/// `0:15,1:7` into positions; every partition must exist.
fn parse_positions(list: &str, partitions: u32) -> Result<BTreeMap<u32, u64>, HttpError> {
    let mut positions = BTreeMap::new();
    for item in list.split(',') {
        let parsed = item.split_once(':').and_then(|(p, o)| {
            Some((p.trim().parse::<u32>().ok()?, o.trim().parse::<u64>().ok()?))
        });
        match parsed {
            Some((partition, offset)) if partition < partitions => {
                positions.insert(partition, offset);
            }
            _ => {
                return Err(HttpError::bad_request(format!(
                    "{item:?} is not partition:offset with a partition below {partitions}"
                )));
            }
        }
    }
    Ok(positions)
}

/// The `id:` of an event: every partition's position.
fn event_id(cursors: &BTreeMap<u32, u64>) -> String {
    let parts: Vec<String> = cursors.iter().map(|(p, o)| format!("{p}:{o}")).collect();
    parts.join(",")
}

/// The client went away (its queue is closed).
struct Gone;

/// One stream's task: positions, filters, and the queue to the client.
struct StreamSender {
    client: Client,
    topic: String,
    cursors: BTreeMap<u32, u64>,
    key_filter: Option<String>,
    sampler: Option<Sampler>,
    events: mpsc::Sender<Event>,
}

type PartitionItem = (
    u32,
    Result<std::sync::Arc<EventBatch>, BroadcastStreamRecvError>,
);

impl StreamSender {
    async fn run(
        mut self,
        receivers: Vec<(u32, BroadcastStream<std::sync::Arc<EventBatch>>)>,
        stop: CancellationToken,
    ) {
        let _open = crate::observe::StreamGauge::open();
        let partitions: Vec<u32> = self.cursors.keys().copied().collect();
        for partition in partitions {
            if self.catch_up(partition, None).await.is_err() {
                return;
            }
        }
        let mut merged = select_all(
            receivers
                .into_iter()
                .map(|(p, stream)| stream.map(move |item| (p, item)).boxed()),
        );
        loop {
            let item: Option<PartitionItem> = tokio::select! {
                item = merged.next() => item,
                _ = stop.cancelled() => return,
                _ = self.events.closed() => return,
            };
            let outcome = match item {
                None => return, // every tail stopped (the topic was deleted)
                Some((partition, Ok(batch))) => self.apply(partition, &batch).await,
                Some((partition, Err(BroadcastStreamRecvError::Lagged(_)))) => {
                    self.lagged(partition).await
                }
            };
            if outcome.is_err() {
                return;
            }
        }
    }

    /// Sends a batch's records at or past this stream's position; a gap
    /// before the batch is filled from the log first.
    async fn apply(&mut self, partition: u32, batch: &EventBatch) -> Result<(), Gone> {
        if batch.from > self.cursors[&partition] {
            self.catch_up(partition, Some(batch.from)).await?;
        }
        let cursor = self.cursors[&partition];
        if batch.from <= cursor && cursor < batch.next {
            let records = batch.records.iter().zip(&batch.rendered);
            for (record, json) in records.filter(|(r, _)| r.offset >= cursor) {
                self.emit(record, Some(json)).await?;
            }
            self.cursors.insert(partition, batch.next);
        }
        Ok(())
    }

    async fn lagged(&mut self, partition: u32) -> Result<(), Gone> {
        let data = format!("{{\"partition\":{partition}}}");
        self.send(Event::default().event("lagged").data(data))
            .await?;
        self.catch_up(partition, None).await
    }

    /// Reads the log from the position up to `until` (or the high
    /// watermark), sending what passes the filters.
    async fn catch_up(&mut self, partition: u32, until: Option<u64>) -> Result<(), Gone> {
        loop {
            let cursor = self.cursors[&partition];
            if until.is_some_and(|until| cursor >= until) {
                return Ok(());
            }
            let read = self
                .client
                .read_partition(&self.topic, partition, cursor, CATCH_UP_FETCH_BYTES, 0)
                .await;
            match read {
                Ok(read) => {
                    for record in &read.records {
                        self.emit(record, None).await?;
                    }
                    let next = read.next_offset.max(cursor);
                    self.cursors.insert(partition, next);
                    let stalled = next >= read.high_watermark || next == cursor;
                    match until {
                        None if stalled => return Ok(()),
                        // The gap before a tail batch, read from a node whose
                        // high watermark lags the batch (a new leader): read
                        // again after a pause. Returning would drop the batch,
                        // and its records would wait for the next one.
                        Some(_) if stalled => self.pause().await?,
                        _ => {}
                    }
                }
                Err(error) if error.code() == Some(ErrorCode::OFFSET_OUT_OF_RANGE) => {
                    // Retention deleted what this stream had not read yet.
                    let admin = self.client.admin();
                    match admin
                        .list_offsets(&self.topic, partition, OffsetSpec::Earliest)
                        .await
                    {
                        Ok(start) if start > cursor => {
                            self.cursors.insert(partition, start);
                            let data =
                                format!("{{\"partition\":{partition},\"reason\":\"retention\"}}");
                            self.send(Event::default().event("lagged").data(data))
                                .await?;
                        }
                        _ => self.pause().await?,
                    }
                }
                Err(error) => {
                    tracing::debug!(topic = %self.topic, partition, %error, "stream catch-up failed; retrying");
                    self.pause().await?;
                }
            }
        }
    }

    async fn pause(&self) -> Result<(), Gone> {
        tokio::select! {
            _ = tokio::time::sleep(CATCH_UP_RETRY) => Ok(()),
            _ = self.events.closed() => Err(Gone),
        }
    }

    /// Moves the position past `record` and sends it if the filters let it
    /// (as `json` when the tail encoded it already).
    async fn emit(&mut self, record: &ConsumerRecord, json: Option<&str>) -> Result<(), Gone> {
        let position = self.cursors.entry(record.partition).or_default();
        *position = (*position).max(record.offset + 1);
        let key = record.key.as_deref();
        if let Some(filter) = &self.key_filter
            && !key_matches(filter, key)
        {
            return Ok(());
        }
        if let Some(sampler) = &mut self.sampler
            && !sampler.admit(key, Instant::now())
        {
            return Ok(());
        }
        let event = Event::default().id(event_id(&self.cursors));
        let event = match json {
            Some(json) => event.data(json),
            None => event.data(record_json(record)),
        };
        self.send(event).await
    }

    async fn send(&self, event: Event) -> Result<(), Gone> {
        self.events.send(event).await.map_err(|_| Gone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Positions parse from an id and print back the same.
    #[test]
    fn positions_round_trip_through_an_event_id() {
        let positions = parse_positions("0:15, 2:7", 3).unwrap();
        assert_eq!(event_id(&positions), "0:15,2:7");
        assert!(parse_positions("3:1", 3).is_err(), "no partition 3");
        assert!(parse_positions("0:x", 3).is_err());
        assert!(parse_positions("0-1", 3).is_err());
    }
}
