//! What a role's pure core takes and gives: an [`Input`] (a parsed reading
//! with the record it came in) and [`Output`]s (records for the output
//! topic, or CSV rows for the archive), each naming its [`Source`]. The
//! [`Process`] trait is the whole interface between a role's logic and
//! the I/O shell (`runner/`). The `source` header every output record
//! carries is written and read here.

use bytes::Bytes;

use crate::contract::Kind;
use crate::reading::{Reading, Source};

/// The header naming an output record's source, as JSON
/// `{"topic":..,"partition":..,"offset":..}`. Every output record has it,
/// also those of `city.latest`, whose value is the reading as read.
pub const SOURCE_HEADER: &str = "source";

/// One reading and the record it came in.
pub struct Input<'a> {
    pub reading: &'a Reading,
    /// The record's key (the reading's own key if the record had none).
    pub key: &'a str,
    /// The record's value, as read.
    pub value: &'a [u8],
    pub headers: &'a [(std::sync::Arc<str>, Bytes)],
    pub source: &'a Source,
}

/// One thing a role writes.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A record for the role's output topic.
    Record {
        key: String,
        value: Vec<u8>,
        headers: Vec<(String, Bytes)>,
        source: Source,
    },
    /// A CSV line (ending in `\n`) for `<archive_dir>/<station>.csv`.
    Row {
        station: String,
        kind: Kind,
        line: String,
        source: Source,
    },
}

impl Output {
    /// A JSON record with the source header.
    pub fn json(key: String, value: &impl serde::Serialize, source: &Source) -> Output {
        Output::Record {
            key,
            value: serde_json::to_vec(value).expect("outputs always serialize"),
            headers: vec![source_header(source)],
            source: source.clone(),
        }
    }

    /// Outputs of one stream (same key) are written in order: this key is
    /// what the restart dedupe follows (`dedupe.rs`).
    pub fn stream_key(&self) -> &str {
        match self {
            Output::Record { key, .. } => key,
            Output::Row { station, .. } => station,
        }
    }

    pub fn source(&self) -> &Source {
        match self {
            Output::Record { source, .. } | Output::Row { source, .. } => source,
        }
    }
}

/// A role's logic: every reading in, its outputs out, in order. Given the
/// same readings in the same order it gives the same outputs (the restart
/// dedupe relies on it).
pub trait Process: Send {
    fn process(&mut self, input: &Input<'_>) -> Vec<Output>;
}

pub fn source_header(source: &Source) -> (String, Bytes) {
    let json = serde_json::to_vec(source).expect("a source always serializes");
    (SOURCE_HEADER.to_owned(), Bytes::from(json))
}

/// The source named by an output record's header, if it has a valid one.
pub fn source_of<N: AsRef<str>>(headers: &[(N, Bytes)]) -> Option<Source> {
    headers
        .iter()
        .rev()
        .find(|(name, _)| name.as_ref() == SOURCE_HEADER)
        .and_then(|(_, value)| serde_json::from_slice(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source header round-trips and is found among other headers.
    #[test]
    fn source_header_round_trips() {
        let source = Source {
            topic: "city.air".into(),
            partition: 1,
            offset: 4711,
        };
        let header = source_header(&source);
        assert_eq!(
            header.1,
            Bytes::from_static(br#"{"topic":"city.air","partition":1,"offset":4711}"#)
        );
        let headers = vec![("priority".to_owned(), Bytes::from_static(b"high")), header];
        assert_eq!(source_of(&headers), Some(source));
        assert_eq!(source_of(&headers[..1]), None);
    }
}
