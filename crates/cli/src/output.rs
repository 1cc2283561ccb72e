//! What the CLI prints: aligned text tables, records as JSON lines, error
//! reports with exit codes, and the tracing subscriber. Commands decide
//! *what* to show; this module owns *how* it looks. It does no I/O with the
//! broker.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::process::ExitCode;

use citystream_client::ClientError;

/// A settings or argument problem the user must fix; exits with code 2
/// (as clap's own usage errors do) instead of 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Logs go to stderr so stdout stays parseable; `RUST_LOG` overrides.
/// With `json`, one JSON object per event (fields and spans included) for
/// log collectors.
pub fn init_tracing(default_level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // A log line that cannot be written (stderr a pipe whose reader is
    // gone) is dropped. With internal errors logged, tracing-subscriber
    // would report it with `eprintln!`, which panics on that same pipe and
    // ends the task, or the process, that logged.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match json {
        true => logs.json().init(),
        false => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
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

/// One consumed record as a JSON line (the HTTP API's record shape).
pub use citystream_http::views::record_json;

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use citystream_client::ConsumerRecord;

    /// A cause repeating its wrapper's text is printed once; context is kept.
    #[test]
    fn error_chain_skips_repeated_causes() {
        let api =
            citystream_client::ApiError::new(citystream_client::ErrorCode::UNKNOWN_TOPIC, "no t");
        let error = anyhow::Error::new(ClientError::Api(api)).context("reading t");
        assert_eq!(error_chain(&error), "reading t: UNKNOWN_TOPIC (7): no t");
    }

    /// base64 matches the RFC 4648 test vectors, padding included.
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
            tombstone: false,
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
