//! A station's reading and its record form, exactly as
//! `docs/city-data.md` specifies: the JSON value (station, district, kind,
//! ts_ms, lamport, values, units, labels), the key
//! `city/<district>/<kind>/<station>`, the topic `city.<kind>` and the
//! `priority` header (`high` for alarms). What a reading contains is the
//! model's; this file only names, rounds and encodes it.

use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap as _, SerializeStruct as _, Serializer};

use crate::city::Kind;

/// The record header carrying [`Reading::priority`].
pub const PRIORITY_HEADER: &str = "priority";
/// Readings with an AQI above this are alarms.
pub const AQI_ALARM_ABOVE: f64 = 150.0;

/// One value of a kind's readings: its name, unit and the decimals it is
/// published with (0: an integer in the JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    pub name: &'static str,
    pub unit: &'static str,
    pub decimals: u8,
}

const fn metric(name: &'static str, unit: &'static str, decimals: u8) -> Metric {
    Metric {
        name,
        unit,
        decimals,
    }
}

const AIR: [Metric; 6] = [
    metric("pm25", "ug/m3", 1),
    metric("pm10", "ug/m3", 1),
    metric("no2", "ppb", 1),
    metric("o3", "ppb", 1),
    metric("co", "ppm", 2),
    metric("aqi", "index", 0),
];
const TRAFFIC: [Metric; 3] = [
    metric("vehicles_per_min", "1/min", 1),
    metric("mean_speed_kmh", "km/h", 1),
    // The data contract gives congestion's range where other values have a unit.
    metric("congestion", "0..1", 3),
];
const WEATHER: [Metric; 6] = [
    metric("temperature_c", "C", 1),
    metric("humidity_pct", "%", 1),
    metric("pressure_hpa", "hPa", 1),
    metric("wind_speed_ms", "m/s", 1),
    metric("wind_dir_deg", "deg", 0),
    metric("precipitation_mm_h", "mm/h", 1),
];
const BUILDINGS: [Metric; 4] = [
    metric("temperature_c", "C", 2),
    metric("humidity_pct", "%", 1),
    metric("pressure_hpa", "hPa", 1),
    metric("sequence", "count", 0),
];

/// The values a reading of `kind` carries, in the order they are encoded.
pub fn metrics(kind: Kind) -> &'static [Metric] {
    match kind {
        Kind::Air => &AIR,
        Kind::Traffic => &TRAFFIC,
        Kind::Weather => &WEATHER,
        Kind::Buildings => &BUILDINGS,
    }
}

/// `high` for alarms, `low` for everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    High,
    Low,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::High => "high",
            Priority::Low => "low",
        }
    }
}

/// One reading of one station.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub station: Arc<str>,
    pub district: &'static str,
    pub kind: Kind,
    /// Simulated time of the reading, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The publisher's Lamport counter when this reading was made.
    pub lamport: u64,
    /// One value per [`metrics`] of the kind, in that order, already
    /// rounded to the metric's decimals.
    pub values: Vec<f64>,
    /// Labels from fixed vocabularies (category, level, description...).
    pub labels: Vec<(&'static str, &'static str)>,
}

impl Reading {
    /// A reading with `values` (in [`metrics`] order) rounded as published.
    pub fn new(
        station: Arc<str>,
        district: &'static str,
        kind: Kind,
        ts_ms: i64,
        values: Vec<f64>,
    ) -> Reading {
        let metrics = metrics(kind);
        assert_eq!(values.len(), metrics.len(), "one value per {kind} metric");
        let values = metrics
            .iter()
            .zip(values)
            .map(|(metric, value)| round(value, metric.decimals))
            .collect();
        Reading {
            station,
            district,
            kind,
            ts_ms,
            lamport: 0,
            values,
            labels: Vec::new(),
        }
    }

    /// The value named `name`, if this kind has it.
    pub fn value(&self, name: &str) -> Option<f64> {
        let index = metrics(self.kind).iter().position(|m| m.name == name)?;
        Some(self.values[index])
    }

    /// Replaces the value named `name` (rounded as published).
    pub fn set_value(&mut self, name: &str, value: f64) {
        let metrics = metrics(self.kind);
        let index = metrics
            .iter()
            .position(|m| m.name == name)
            .unwrap_or_else(|| panic!("{} readings have no {name}", self.kind));
        self.values[index] = round(value, metrics[index].decimals);
    }

    pub fn label(&self, name: &str) -> Option<&'static str> {
        self.labels
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// `city/<district>/<kind>/<station>`.
    pub fn key(&self) -> String {
        format!("city/{}/{}/{}", self.district, self.kind, self.station)
    }

    pub fn topic(&self) -> &'static str {
        self.kind.topic()
    }

    /// An AQI above 150, an active traffic incident or a storm.
    pub fn is_alarm(&self) -> bool {
        match self.kind {
            Kind::Air => self.value("aqi").is_some_and(|aqi| aqi > AQI_ALARM_ABOVE),
            Kind::Traffic => self.label("incident").is_some(),
            Kind::Weather => self.label("description") == Some("storm"),
            Kind::Buildings => false,
        }
    }

    pub fn priority(&self) -> Priority {
        if self.is_alarm() {
            Priority::High
        } else {
            Priority::Low
        }
    }

    /// The record value: one compact JSON object.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a reading always encodes")
    }
}

fn round(value: f64, decimals: u8) -> f64 {
    assert!(value.is_finite(), "the model produced a non-finite value");
    let scale = 10f64.powi(i32::from(decimals));
    (value * scale).round() / scale
}

impl Serialize for Reading {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let metrics = metrics(self.kind);
        let mut object = serializer.serialize_struct("Reading", 8)?;
        object.serialize_field("station", &*self.station)?;
        object.serialize_field("district", self.district)?;
        object.serialize_field("kind", self.kind.name())?;
        object.serialize_field("ts_ms", &self.ts_ms)?;
        object.serialize_field("lamport", &self.lamport)?;
        object.serialize_field("values", &Values(metrics, &self.values))?;
        object.serialize_field("units", &Units(metrics))?;
        object.serialize_field("labels", &Labels(&self.labels))?;
        object.end()
    }
}

/// `{"name": number, ...}`; whole-number metrics as JSON integers.
struct Values<'a>(&'static [Metric], &'a [f64]);

impl Serialize for Values<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (metric, value) in self.0.iter().zip(self.1) {
            if metric.decimals == 0 {
                map.serialize_entry(metric.name, &(*value as i64))?;
            } else {
                map.serialize_entry(metric.name, value)?;
            }
        }
        map.end()
    }
}

struct Units(&'static [Metric]);

impl Serialize for Units {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|metric| (metric.name, metric.unit)))
    }
}

struct Labels<'a>(&'a [(&'static str, &'static str)]);

impl Serialize for Labels<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn air_reading(aqi: f64) -> Reading {
        let values = vec![12.44, 21.0, 38.2, 41.0, 0.414, aqi];
        let mut reading = Reading::new(
            "north-air-3".into(),
            "north",
            Kind::Air,
            1_796_580_563_199,
            values,
        );
        reading.lamport = 1042;
        reading.labels = vec![("category", "Moderate"), ("dominant", "pm25")];
        reading
    }

    /// The JSON has exactly the contract's fields, values rounded to their
    /// decimals, the AQI as an integer and the contract's units.
    #[test]
    fn air_reading_encodes_as_the_contract_example() {
        let json: Value = serde_json::from_slice(&air_reading(52.0).to_json()).unwrap();
        let expected = json!({
            "station": "north-air-3", "district": "north", "kind": "air",
            "ts_ms": 1_796_580_563_199_i64, "lamport": 1042,
            "values": {"pm25": 12.4, "pm10": 21.0, "no2": 38.2, "o3": 41.0, "co": 0.41, "aqi": 52},
            "units": {"pm25": "ug/m3", "pm10": "ug/m3", "no2": "ppb", "o3": "ppb", "co": "ppm", "aqi": "index"},
            "labels": {"category": "Moderate", "dominant": "pm25"}
        });
        assert_eq!(json, expected);
        assert!(json["values"]["aqi"].is_u64());
    }

    /// Fields come in the contract's order, compactly encoded.
    #[test]
    fn json_is_compact_and_ordered() {
        let text = String::from_utf8(air_reading(52.0).to_json()).unwrap();
        assert!(
            text.starts_with(
                r#"{"station":"north-air-3","district":"north","kind":"air","ts_ms":"#
            )
        );
        assert!(!text.contains(": ") && !text.contains(", "));
    }

    /// Key, topic and priority follow the contract; AQI 150 is not an
    /// alarm, 151 is.
    #[test]
    fn key_topic_and_priority() {
        let reading = air_reading(150.0);
        assert_eq!(reading.key(), "city/north/air/north-air-3");
        assert_eq!(reading.topic(), "city.air");
        assert_eq!(reading.priority(), Priority::Low);
        assert_eq!(air_reading(151.0).priority(), Priority::High);
    }

    /// Every kind names a unit for every value.
    #[test]
    fn every_metric_has_a_unit() {
        for kind in Kind::ALL {
            assert!(metrics(kind).iter().all(|m| !m.unit.is_empty()));
        }
    }
}
