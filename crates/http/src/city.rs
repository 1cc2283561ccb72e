//! `/api/city/*`: the smart city's views (`docs/city-data.md`), served by
//! every node from the log.
//!
//! * `GET /api/city/latest` and `/api/city/latest/{station}`: each
//!   station's latest reading, folded from `city.latest` (written by the
//!   public-interface subscriber; the newest record per key wins), caught
//!   up to each partition's high watermark before answering, so an answer
//!   holds every reading acknowledged before the request.
//! * `GET /api/city/stations/{id}/export.csv`: the archiver's CSV rows of
//!   one station (`citystream_subscribers::csv_row`), read from its
//!   partition of its input topic, filtered by key and time.
//!
//! Where the fold lives: `HttpState` has no slot for it, so this module
//! keeps one fold per state in a small registry keyed by the state's
//! shared SSE tails (an `Arc` unique to each state). The key is held
//! weakly: a dropped state's entry is dropped on the next lookup, and
//! while the entry lives the address cannot be reused by another state.
//! A node serves one state; test processes serve many.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use citystream_client::tail::{Fold, Tail, high_watermark};
use citystream_client::{Client, ConsumerRecord, partition_for_key};
use citystream_protocol::OffsetSpec;
use citystream_subscribers::contract::{Kind, LATEST_TOPIC};
use citystream_subscribers::csv_header;
use citystream_subscribers::export::{ExportTarget, TargetError, TimeRange, parse_time_ms};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::error::{ErrorBody, HttpError};
use crate::records::partition_count;
use crate::sse::EventTails;
use crate::state::HttpState;

/// Bytes asked for per read of an export.
const EXPORT_READ_BYTES: u32 = 1024 * 1024;
/// Largest CSV an export answers (413 beyond: narrow `from`/`to`).
const EXPORT_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Station → latest reading, of one partition of `city.latest`.
#[derive(Default)]
struct Latest {
    stations: BTreeMap<String, Value>,
    /// After the last record folded (to notice a recreated topic).
    next_offset: u64,
}

impl Fold for Latest {
    fn apply(&mut self, record: &ConsumerRecord) {
        self.next_offset = record.offset + 1;
        let Some(station) = record
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
        else {
            return;
        };
        if let Ok(reading @ Value::Object(_)) = serde_json::from_slice(&record.value) {
            self.stations.insert(station.to_owned(), reading);
        }
    }
}

/// The fold of every partition of `city.latest`, for one state.
type LatestFold = tokio::sync::Mutex<Vec<Tail<Latest>>>;

static FOLDS: Mutex<Vec<(Weak<EventTails>, Arc<LatestFold>)>> = Mutex::new(Vec::new());

fn fold_of(state: &HttpState) -> Arc<LatestFold> {
    let owner = Arc::downgrade(state.tails());
    let mut folds = FOLDS.lock().expect("the fold registry is never poisoned");
    folds.retain(|(owner, _)| owner.strong_count() > 0);
    if let Some((_, fold)) = folds.iter().find(|(known, _)| known.ptr_eq(&owner)) {
        return fold.clone();
    }
    let fold = Arc::new(LatestFold::default());
    folds.push((owner, fold.clone()));
    fold
}

/// Every station's latest reading, caught up to the high watermarks.
async fn latest_readings(state: &HttpState) -> Result<BTreeMap<String, Value>, HttpError> {
    let client = state.client();
    let Some(partitions) = client.partition_count(LATEST_TOPIC).await? else {
        return Ok(BTreeMap::new());
    };
    let fold = fold_of(state);
    let mut tails = fold.lock().await;
    if tails.len() != partitions as usize {
        tails.clear();
        for partition in 0..partitions {
            tails.push(new_tail(client, partition).await?);
        }
    }
    let mut stations = BTreeMap::new();
    for (partition, tail) in (0..).zip(tails.iter_mut()) {
        let end = high_watermark(client, LATEST_TOPIC, partition).await?;
        if end < tail.state().next_offset {
            // The topic was deleted and created again.
            *tail = new_tail(client, partition).await?;
        }
        tail.catch_up(client, end).await?;
        let folded = tail.state().stations.iter();
        stations.extend(folded.map(|(station, reading)| (station.clone(), reading.clone())));
    }
    Ok(stations)
}

async fn new_tail(client: &Client, partition: u32) -> Result<Tail<Latest>, HttpError> {
    let admin = client.admin();
    let start = admin
        .list_offsets(LATEST_TOPIC, partition, OffsetSpec::Earliest)
        .await?;
    Ok(Tail::new(LATEST_TOPIC, partition, start, Latest::default()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LatestQuery {
    /// Only stations of this kind: `air`, `traffic`, `weather` or `buildings`.
    pub kind: Option<String>,
    /// Only stations of this district (e.g. `north`).
    pub district: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LatestStations {
    /// The latest reading of each station, by station id.
    #[schema(value_type = Vec<Object>)]
    pub stations: Vec<Value>,
}

/// A reading, as the publishers write it (`docs/city-data.md`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct StationReading(Value);

/// The latest reading of every station (none yet: an empty list).
#[utoipa::path(get, path = "/api/city/latest", tag = "city",
    params(LatestQuery),
    responses(
        (status = 200, body = LatestStations),
        (status = 400, body = ErrorBody, description = "unknown kind"),
        (status = 503, body = ErrorBody, description = "city.latest has no leader yet; retry"),
    ))]
pub async fn latest(
    State(state): State<HttpState>,
    query: Result<Query<LatestQuery>, QueryRejection>,
) -> Result<Json<LatestStations>, HttpError> {
    let Query(query) = query?;
    if let Some(kind) = query
        .kind
        .as_deref()
        .filter(|kind| Kind::parse(kind).is_none())
    {
        return Err(HttpError::bad_request(format!(
            "unknown kind {kind:?}: air, traffic, weather or buildings"
        )));
    }
    let matches = |reading: &Value, field: &str, wanted: &Option<String>| {
        wanted
            .as_deref()
            .is_none_or(|wanted| reading[field] == wanted)
    };
    let stations = latest_readings(&state)
        .await?
        .into_values()
        .filter(|reading| matches(reading, "kind", &query.kind))
        .filter(|reading| matches(reading, "district", &query.district))
        .collect();
    Ok(Json(LatestStations { stations }))
}

/// The latest reading of one station.
#[utoipa::path(get, path = "/api/city/latest/{station}", tag = "city",
    params(("station" = String, Path, description = "a station id, e.g. north-air-3")),
    responses(
        (status = 200, body = StationReading),
        (status = 404, body = ErrorBody, description = "no reading of this station yet"),
    ))]
pub async fn station_latest(
    State(state): State<HttpState>,
    Path(station): Path<String>,
) -> Result<Json<StationReading>, HttpError> {
    let mut readings = latest_readings(&state).await?;
    let reading = readings.remove(&station).ok_or_else(|| {
        HttpError::not_found(
            "UNKNOWN_STATION",
            format!("no reading of station {station:?} yet"),
        )
    })?;
    Ok(Json(StationReading(reading)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// First reading time (inclusive): ms since the epoch or RFC 3339.
    pub from: Option<String>,
    /// End of the readings (exclusive): ms since the epoch or RFC 3339.
    pub to: Option<String>,
}

/// One station's readings as the archiver's CSV: the header, then one row
/// per reading in log order, the reading's offset last.
#[utoipa::path(get, path = "/api/city/stations/{id}/export.csv", tag = "city",
    params(("id" = String, Path, description = "a station id, e.g. north-air-3"), ExportQuery),
    responses(
        (status = 200, content_type = "text/csv", body = String),
        (status = 400, body = ErrorBody, description = "malformed station id or time"),
        (status = 404, body = ErrorBody, description = "unknown station"),
        (status = 413, body = ErrorBody, description = "more than 64 MiB of rows: narrow from/to"),
    ))]
pub async fn export_csv(
    State(state): State<HttpState>,
    Path(id): Path<String>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, HttpError> {
    let Query(query) = query?;
    let target = ExportTarget::of(&id).map_err(|error| match error {
        TargetError::Malformed(_) => HttpError::bad_request(error.to_string()),
        TargetError::UnknownKind { .. } => {
            HttpError::not_found("UNKNOWN_STATION", error.to_string())
        }
    })?;
    let range = TimeRange {
        from_ms: time_param("from", query.from.as_deref())?,
        to_ms: time_param("to", query.to.as_deref())?,
    };
    let csv = export_rows(&state, &target, &range).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response())
}

fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, HttpError> {
    value
        .map(|text| {
            parse_time_ms(text).map_err(|error| HttpError::bad_request(format!("{name}: {error}")))
        })
        .transpose()
}

/// The header and the rows of `target` in `range`, read from its
/// partition up to the high watermark; 404 if the station never wrote.
async fn export_rows(
    state: &HttpState,
    target: &ExportTarget,
    range: &TimeRange,
) -> Result<String, HttpError> {
    let client = state.client();
    let partitions = partition_count(state, target.topic).await?;
    let partition = partition_for_key(target.key.as_bytes(), partitions);
    let end = high_watermark(client, target.topic, partition).await?;
    let admin = client.admin();
    let mut offset = admin
        .list_offsets(target.topic, partition, OffsetSpec::Earliest)
        .await?;
    let mut csv = csv_header(target.kind);
    let mut station_seen = false;
    while offset < end {
        let read = client
            .read_partition(target.topic, partition, offset, EXPORT_READ_BYTES, 0)
            .await?;
        for record in read.records.iter().filter(|record| record.offset < end) {
            let key = record.key.as_deref();
            station_seen |= key == Some(target.key.as_bytes());
            if let Some(row) = target.row(range, key, &record.value, record.offset) {
                csv.push_str(&row);
            }
        }
        if csv.len() > EXPORT_BYTES_MAX {
            return Err(HttpError::too_large(format!(
                "the export is over {EXPORT_BYTES_MAX} bytes: narrow it with from and to"
            )));
        }
        if read.next_offset <= offset {
            break;
        }
        offset = read.next_offset;
    }
    match station_seen {
        true => Ok(csv),
        false => Err(HttpError::not_found(
            "UNKNOWN_STATION",
            format!(
                "no reading of station {:?} in {}",
                target.station, target.topic
            ),
        )),
    }
}
