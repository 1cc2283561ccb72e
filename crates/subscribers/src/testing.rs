//! Readings for unit tests: a station's reading with chosen values and
//! labels, and the [`Input`] it makes at a given offset.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::contract::Kind;
use crate::output::Input;
use crate::reading::{Reading, Source};

/// A reading of `station` (`<district>-<kind>-<n>`) at `ts_ms`.
pub fn reading(
    station: &str,
    ts_ms: i64,
    values: &[(&str, f64)],
    labels: &[(&str, &str)],
) -> Reading {
    let mut parts = station.split('-');
    let district = parts.next().unwrap().to_owned();
    let kind = Kind::parse(parts.next().unwrap()).unwrap();
    Reading {
        station: station.to_owned(),
        district,
        kind,
        ts_ms,
        lamport: 0,
        values: values.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        units: BTreeMap::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// A reading with the record it came in (partition 0 of its kind's topic).
pub struct Received {
    pub reading: Reading,
    pub key: String,
    pub value: Vec<u8>,
    pub headers: Vec<(std::sync::Arc<str>, Bytes)>,
    pub source: Source,
}

impl Received {
    pub fn at(reading: Reading, offset: u64) -> Received {
        Received {
            key: reading.key(),
            value: serde_json::to_vec(&reading).unwrap(),
            headers: vec![("priority".into(), Bytes::from_static(b"low"))],
            source: Source {
                topic: reading.kind.topic().to_owned(),
                partition: 0,
                offset,
            },
            reading,
        }
    }

    pub fn input(&self) -> Input<'_> {
        Input {
            reading: &self.reading,
            key: &self.key,
            value: &self.value,
            headers: &self.headers,
            source: &self.source,
        }
    }
}
