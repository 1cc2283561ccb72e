//! Replaying a CSV file: each row after the header becomes one JSON object
//! (the header's names as fields, in header order; a field that parses as
//! a finite number is a JSON number, every other one a string), keyed by
//! the key column and published to one topic, paced by a time column
//! (scaled by the speed) or a rate.
//!
//! [`ReplayFile::load`] reads and checks the whole file first, so a bad
//! header, a ragged row or an unreadable time sends nothing. Each object
//! gets a `lamport` field: the publisher's counter, which first moves past
//! the row's own `lamport` value if it has one (so a replayed archive
//! continues its counters). Records are sent with `priority: low`.

mod time;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use citystream_client::{Client, ProducerRecord};
use serde::ser::SerializeMap as _;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::csv;
use crate::error::SimError;
use crate::lamport::LamportClock;
use crate::outbox::{Outbox, ensure_topics};
use crate::pace::{Pace, Pacer};
use crate::publisher::{
    PENDING_MAX_DEFAULT, SEND_RETRY_BACKOFF, SENDS_PER_YIELD, pause, wait_until,
};
use crate::reading::{PRIORITY_HEADER, Priority};
use crate::stats::SimStats;
pub use time::parse_time_ms;

/// Where a replay publishes unless told otherwise.
pub const REPLAY_TOPIC_DEFAULT: &str = "city.replay";
/// Largest file a replay reads: it is held in memory whole, parsed and
/// checked before the first row is sent.
pub const REPLAY_FILE_BYTES_MAX: u64 = 512 * 1024 * 1024;
/// The field carrying the publisher's Lamport counter.
const LAMPORT_FIELD: &str = "lamport";

/// Why a file cannot be replayed. Each names the file, and the line where
/// there is one; all are the user's to fix.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {size_bytes} bytes, above the replay limit of {max_bytes}")]
    TooLarge {
        path: PathBuf,
        size_bytes: u64,
        max_bytes: u64,
    },
    /// The CSV error is part of the message (not a source): it is the whole story.
    #[error("{path} is not valid CSV: {error}")]
    Csv { path: PathBuf, error: csv::CsvError },
    #[error("{path} line {line}: {message}")]
    Row {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// The columns the replay needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayColumns {
    pub key: String,
    /// Paces the replay when given; its values must be times.
    pub time: Option<String>,
}

/// A checked file, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFile {
    pub path: PathBuf,
    header: Vec<String>,
    time_column: Option<String>,
    rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq)]
struct Row {
    line: usize,
    key: String,
    time_ms: Option<i64>,
    values: Vec<Value>,
}

impl ReplayFile {
    /// Reads and checks `path` whole.
    pub fn load(path: &Path, columns: &ReplayColumns) -> Result<ReplayFile, ReplayError> {
        let read_error = |source| ReplayError::Read {
            path: path.to_owned(),
            source,
        };
        let size_bytes = std::fs::metadata(path).map_err(read_error)?.len();
        if size_bytes > REPLAY_FILE_BYTES_MAX {
            return Err(ReplayError::TooLarge {
                path: path.to_owned(),
                size_bytes,
                max_bytes: REPLAY_FILE_BYTES_MAX,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        ReplayFile::parse(path, &text, columns)
    }

    /// Checks `text` as the contents of `path`.
    pub fn parse(
        path: &Path,
        text: &str,
        columns: &ReplayColumns,
    ) -> Result<ReplayFile, ReplayError> {
        let row_error = |line: usize, message: String| ReplayError::Row {
            path: path.to_owned(),
            line,
            message,
        };
        let mut records = csv::parse(text)
            .map_err(|error| ReplayError::Csv {
                path: path.to_owned(),
                error,
            })?
            .into_iter();
        let header = records
            .next()
            .ok_or_else(|| row_error(1, "the file is empty; it needs a header row".to_owned()))?;
        check_header(&header.fields).map_err(|message| row_error(header.line, message))?;
        let find = |name: &str| {
            let index = header.fields.iter().position(|field| field == name);
            index.ok_or_else(|| {
                let message = format!(
                    "no column {name:?} in the header ({})",
                    header.fields.join(",")
                );
                row_error(header.line, message)
            })
        };
        let key_index = find(&columns.key)?;
        let time_index = columns.time.as_deref().map(find).transpose()?;
        let rows = records
            .map(|record| {
                Row::check(record, header.fields.len(), key_index, time_index)
                    .map_err(|(line, message)| row_error(line, message))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReplayFile {
            path: path.to_owned(),
            header: header.fields,
            time_column: columns.time.clone(),
            rows,
        })
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// Whether the file was loaded with a time column.
    pub fn has_times(&self) -> bool {
        self.time_column.is_some()
    }
}

/// Names must be present and distinct: they become one object's fields.
fn check_header(names: &[String]) -> Result<(), String> {
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(format!("column {} of the header has no name", index + 1));
        }
        if names[..index].contains(name) {
            return Err(format!("the header names column {name:?} twice"));
        }
    }
    Ok(())
}

impl Row {
    fn check(
        record: csv::CsvRecord,
        columns: usize,
        key_index: usize,
        time_index: Option<usize>,
    ) -> Result<Row, (usize, String)> {
        let line = record.line;
        if record.fields.len() != columns {
            let count = record.fields.len();
            let fields = if count == 1 { "field" } else { "fields" };
            let message = format!("{count} {fields}, but the header has {columns}");
            return Err((line, message));
        }
        let time_ms = time_index
            .map(|index| {
                let text = &record.fields[index];
                parse_time_ms(text).ok_or_else(|| {
                    (
                        line,
                        format!(
                            "time {text:?} is neither epoch seconds or ms nor an RFC 3339 time"
                        ),
                    )
                })
            })
            .transpose()?;
        Ok(Row {
            line,
            key: record.fields[key_index].clone(),
            time_ms,
            values: record.fields.into_iter().map(typed).collect(),
        })
    }

    /// The row's record: its object (with `lamport`) keyed by the key column.
    fn record(&self, header: &[String], topic: &str, lamport: u64) -> ProducerRecord {
        let object = RowObject {
            header,
            values: &self.values,
            lamport,
        };
        let value = serde_json::to_vec(&object).expect("a row always encodes");
        let priority = Bytes::from_static(Priority::Low.as_str().as_bytes());
        ProducerRecord {
            headers: vec![(PRIORITY_HEADER.to_owned(), priority)],
            ..ProducerRecord::new(topic, value).with_key(self.key.clone())
        }
    }

    fn own_lamport(&self, header: &[String]) -> Option<u64> {
        let index = header.iter().position(|name| name == LAMPORT_FIELD)?;
        self.values[index].as_u64()
    }
}

/// A number where the text is a finite number, else the text.
fn typed(text: String) -> Value {
    if let Ok(integer) = text.parse::<i64>() {
        return Value::from(integer);
    }
    match text.parse::<f64>() {
        Ok(number) if number.is_finite() => Value::from(number),
        _ => Value::String(text),
    }
}

struct RowObject<'a> {
    header: &'a [String],
    values: &'a [Value],
    lamport: u64,
}

impl serde::Serialize for RowObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (name, value) in self.header.iter().zip(self.values) {
            if name == LAMPORT_FIELD {
                map.serialize_entry(name, &self.lamport)?;
            } else {
                map.serialize_entry(name, value)?;
            }
        }
        if !self.header.iter().any(|name| name == LAMPORT_FIELD) {
            map.serialize_entry(LAMPORT_FIELD, &self.lamport)?;
        }
        map.end()
    }
}

/// Publishes every row of `file` to `topic` at `pace`, or until `stop`.
/// `Pace::Speed` needs a file loaded with a time column.
pub async fn run_replay(
    client: Client,
    file: ReplayFile,
    topic: &str,
    pace: Pace,
    stats: Arc<SimStats>,
    stop: CancellationToken,
) -> Result<(), SimError> {
    pace.validate().map_err(SimError::InvalidConfig)?;
    if matches!(pace, Pace::Speed(_)) && !file.has_times() {
        return Err(SimError::InvalidConfig(
            "replaying at a speed needs a time column".to_owned(),
        ));
    }
    ensure_topics(&client, &[topic]).await?;
    let mut outbox = Outbox::start(&client, stats, PENDING_MAX_DEFAULT)?;
    let origin_ms = file.rows.first().and_then(|row| row.time_ms).unwrap_or(0);
    let pacer = Pacer::start(pace, origin_ms);
    let mut lamport = LamportClock::default();
    for (index, row) in (0u64..).zip(&file.rows) {
        let due = pacer.due(index, row.time_ms.unwrap_or(origin_ms));
        if !wait_until(due, &stop, &mut outbox).await {
            break;
        }
        let counter = match row.own_lamport(&file.header) {
            Some(seen) => lamport.witness(seen),
            None => lamport.tick(),
        };
        if outbox
            .send(row.record(&file.header, topic, counter), false)
            .await
            .is_err()
        {
            tracing::debug!(line = row.line, "a replayed row was refused");
            pause(SEND_RETRY_BACKOFF, &stop).await;
        }
        if (index + 1).is_multiple_of(SENDS_PER_YIELD) {
            tokio::task::yield_now().await;
        }
    }
    outbox.close().await;
    Ok(())
}

#[cfg(test)]
mod tests;
