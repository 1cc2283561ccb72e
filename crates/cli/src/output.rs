//! What the CLI prints: aligned text tables, records as JSON lines, error
//! reports with exit codes, and the tracing subscriber. Commands decide
//! *what* to show; this module owns *how* it looks. It does no I/O with the
//! broker.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use bytes::Bytes;
use citystream_client::{ClientError, ConsumerRecord};
use serde::Serialize;
use serde::ser::SerializeMap;

/// A settings or argument problem the user must fix; exits with code 2
/// (as clap's own usage errors do) instead of 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Logs go to stderr so stdout stays parseable; `RUST_LOG` overrides.
pub fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Prints `error: ...` (plus a hint where one helps) and picks the exit code.
pub fn report_error(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", error_chain(error));
    if let Some(ClientError::Connect { address, .. }) = error.downcast_ref::<ClientError>() {
        eprintln!(
            "hint: is a broker running at {address}? Start one with \
             `citystream broker --data-dir DIR`, or pass --broker HOST:PORT"
        );
    }
    if error.downcast_ref::<UsageError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// The error and its causes joined by `: `, skipping a cause whose text the
/// message already ends with (transparent wrappers such as
/// `ClientError::Api` display their source verbatim).
fn error_chain(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// A plain text table: left-aligned columns separated by two spaces.
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|header| header.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        assert_eq!(row.len(), self.headers.len(), "table row width");
        self.rows.push(row);
    }

    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
                if index > 0 {
                    line.push_str("  ");
                }
                let _ = write!(line, "{cell:<width$}");
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

/// One consumed record as a JSON object. Keys and values that are valid
/// UTF-8 are strings; others are base64 with `key_encoding`/`value_encoding`
/// set to `"base64"`. Headers are an object (a repeated name appears twice).
pub fn record_json(record: &ConsumerRecord) -> String {
    let (key, key_encoding) = match &record.key {
        Some(key) => {
            let (text, encoding) = text_or_base64(key);
            (Some(text), encoding)
        }
        None => (None, None),
    };
    let (value, value_encoding) = text_or_base64(&record.value);
    let json = RecordJson {
        topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp_ms,
        hlc: record.hlc,
        hlc_ms: record.hlc_ms(),
        key,
        key_encoding,
        value,
        value_encoding,
        headers: HeadersJson(&record.headers),
    };
    serde_json::to_string(&json).expect("a record always serializes")
}

#[derive(Serialize)]
struct RecordJson<'a> {
    topic: &'a str,
    partition: u32,
    offset: u64,
    timestamp: i64,
    /// The broker's hybrid logical clock for the record.
    hlc: u64,
    /// Physical part of `hlc`: milliseconds since the Unix epoch.
    hlc_ms: i64,
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_encoding: Option<&'static str>,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_encoding: Option<&'static str>,
    headers: HeadersJson<'a>,
}

struct HeadersJson<'a>(&'a [(String, Bytes)]);

impl Serialize for HeadersJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in self.0 {
            map.serialize_entry(name, &String::from_utf8_lossy(value))?;
        }
        map.end()
    }
}

/// The bytes as a string when they are UTF-8, else base64 and its marker.
fn text_or_base64(bytes: &[u8]) -> (String, Option<&'static str>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (base64(bytes), Some("base64")),
    }
}

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                text.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                text.push('=');
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cause repeating its wrapper's text is printed once; context is kept.
    #[test]
    fn error_chain_skips_repeated_causes() {
        let api =
            citystream_client::ApiError::new(citystream_client::ErrorCode::UNKNOWN_TOPIC, "no t");
        let error = anyhow::Error::new(ClientError::Api(api)).context("reading t");
        assert_eq!(error_chain(&error), "reading t: UNKNOWN_TOPIC (7): no t");
    }

    /// base64 matches the RFC 4648 test vectors, padding included.
    #[test]
    fn base64_matches_rfc_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in vectors {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    /// Columns are padded to the widest cell and trailing spaces trimmed.
    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&["NAME", "N"]);
        table.push(vec!["a-long-name".into(), "1".into()]);
        table.push(vec!["b".into(), "22".into()]);
        assert_eq!(
            table.render(),
            "NAME         N\na-long-name  1\nb            22\n"
        );
    }

    /// UTF-8 values are strings, binary ones base64 with a marker field.
    #[test]
    fn record_json_encodes_binary_as_base64() {
        let record = ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp_ms: 1_000,
            hlc: (1_001 << 16) | 3,
            key: Some(Bytes::from_static(b"k")),
            value: Bytes::from_static(&[0xff, 0x00]),
            headers: vec![("tag".into(), Bytes::from_static(b"x"))],
        };
        let json: serde_json::Value = serde_json::from_str(&record_json(&record)).unwrap();
        assert_eq!(json["topic"], "t");
        assert_eq!(json["partition"], 2);
        assert_eq!(json["offset"], 7);
        assert_eq!(json["timestamp"], 1_000);
        assert_eq!(json["hlc"], (1_001u64 << 16) | 3);
        assert_eq!(json["hlc_ms"], 1_001);
        assert_eq!(json["key"], "k");
        assert!(json.get("key_encoding").is_none());
        assert_eq!(json["value"], "/wA=");
        assert_eq!(json["value_encoding"], "base64");
        assert_eq!(json["headers"]["tag"], "x");
    }
}
