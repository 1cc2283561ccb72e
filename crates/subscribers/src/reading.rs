//! [`Reading`]: one station reading as the publishers write it (one
//! compact JSON object per record, `docs/city-data.md`), and [`Source`]:
//! the position of the record it was read from, which every output
//! carries. Parsing checks what the subscribers rely on: one of the four
//! kinds, and a station id `<district>-<kind>-<n>` that agrees with the
//! reading's district and kind (the id names the archive file and, in the
//! export, the key). It does not check units or the names of values and
//! labels. Pure: no I/O.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::{Kind, StationId, reading_key};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub station: String,
    pub district: String,
    pub kind: Kind,
    /// The simulated reading time, ms since the Unix epoch.
    pub ts_ms: i64,
    #[serde(default)]
    pub lamport: u64,
    #[serde(default)]
    pub values: BTreeMap<String, f64>,
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Why a record is not a reading.
#[derive(Debug, thiserror::Error)]
pub enum ReadingError {
    #[error("not a reading: {0}")]
    Json(#[from] serde_json::Error),
    #[error("station id {0:?} is not <district>-<kind>-<n> of its reading's district and kind")]
    StationId(String),
}

impl Reading {
    pub fn parse(bytes: &[u8]) -> Result<Reading, ReadingError> {
        let reading: Reading = serde_json::from_slice(bytes)?;
        let consistent = StationId::parse(&reading.station)
            .is_some_and(|id| id.district == reading.district && id.kind == reading.kind.name());
        if !consistent {
            return Err(ReadingError::StationId(reading.station));
        }
        Ok(reading)
    }

    pub fn value(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// `city/<district>/<kind>/<station>`, the key its publisher used.
    pub fn key(&self) -> String {
        reading_key(&self.district, self.kind.name(), &self.station)
    }
}

/// Where an output came from: the reading's topic, partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Source {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The contract's example reading parses, with its values and labels.
    #[test]
    fn the_contract_example_parses() {
        let json = br#"{"station":"north-air-3","district":"north","kind":"air","ts_ms":1796580563199,"lamport":1042,
 "values":{"pm25":12.4,"pm10":21.0,"no2":38.2,"o3":41.0,"co":0.41,"aqi":52},
 "units":{"pm25":"ug/m3","pm10":"ug/m3","no2":"ppb","o3":"ppb","co":"ppm","aqi":"index"},
 "labels":{"category":"Moderate"}}"#;
        let reading = Reading::parse(json).unwrap();
        assert_eq!(reading.kind, Kind::Air);
        assert_eq!(reading.value("aqi"), Some(52.0));
        assert_eq!(reading.label("category"), Some("Moderate"));
        assert_eq!(reading.key(), "city/north/air/north-air-3");
    }

    /// A station id that could not name a file, or disagrees with the
    /// reading, or an unknown kind, is refused.
    #[test]
    fn bad_readings_are_refused() {
        let bad_station = br#"{"station":"../x","district":"n","kind":"air","ts_ms":1}"#;
        assert!(matches!(
            Reading::parse(bad_station),
            Err(ReadingError::StationId(_))
        ));
        let other_kind = br#"{"station":"n-air-1","district":"n","kind":"traffic","ts_ms":1}"#;
        assert!(Reading::parse(other_kind).is_err());
        let other_district = br#"{"station":"n-air-1","district":"s","kind":"air","ts_ms":1}"#;
        assert!(Reading::parse(other_district).is_err());
        let bad_kind = br#"{"station":"n-noise-1","district":"n","kind":"noise","ts_ms":1}"#;
        assert!(matches!(
            Reading::parse(bad_kind),
            Err(ReadingError::Json(_))
        ));
        assert!(Reading::parse(b"not json").is_err());
    }
}
