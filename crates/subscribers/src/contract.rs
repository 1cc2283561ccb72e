//! Names from `docs/city-data.md`, the contract between the publishers,
//! the subscribers, the console and the `/api/city/*` routes: input and
//! output topics, consumer groups, the four kinds of reading with the
//! value and label names each carries, station ids
//! (`<district>-<kind>-<n>`) and record keys (`city/<district>/<kind>/<station>`).
//! Pure: no I/O. It does not parse readings (`reading.rs`).

use serde::{Deserialize, Serialize};

pub const AIR_TOPIC: &str = "city.air";
pub const TRAFFIC_TOPIC: &str = "city.traffic";
pub const WEATHER_TOPIC: &str = "city.weather";
pub const BUILDINGS_TOPIC: &str = "city.buildings";

pub const ALERTS_TOPIC: &str = "city.alerts";
pub const ADVISORIES_TOPIC: &str = "city.advisories";
pub const LATEST_TOPIC: &str = "city.latest";
pub const ANALYTICS_TOPIC: &str = "city.analytics";

/// Partitions of a city topic created by a subscriber (as the publishers do).
pub const CITY_TOPIC_PARTITIONS: u32 = 3;

/// What a station measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Air,
    Traffic,
    Weather,
    Buildings,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Air, Kind::Traffic, Kind::Weather, Kind::Buildings];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Air => "air",
            Kind::Traffic => "traffic",
            Kind::Weather => "weather",
            Kind::Buildings => "buildings",
        }
    }

    /// `air` → `Kind::Air`; `None` for anything else.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The input topic of this kind's readings.
    pub fn topic(self) -> &'static str {
        match self {
            Kind::Air => AIR_TOPIC,
            Kind::Traffic => TRAFFIC_TOPIC,
            Kind::Weather => WEATHER_TOPIC,
            Kind::Buildings => BUILDINGS_TOPIC,
        }
    }

    /// The names of `values` a reading of this kind carries.
    pub fn value_names(self) -> &'static [&'static str] {
        match self {
            Kind::Air => &["pm25", "pm10", "no2", "o3", "co", "aqi"],
            Kind::Traffic => &["vehicles_per_min", "mean_speed_kmh", "congestion"],
            Kind::Weather => &[
                "temperature_c",
                "humidity_pct",
                "pressure_hpa",
                "wind_speed_ms",
                "wind_dir_deg",
                "precipitation_mm_h",
            ],
            Kind::Buildings => &["temperature_c", "humidity_pct", "pressure_hpa", "sequence"],
        }
    }

    /// The names of `labels` a reading of this kind may carry.
    pub fn label_names(self) -> &'static [&'static str] {
        match self {
            Kind::Air => &["category", "dominant"],
            Kind::Traffic => &["level", "incident"],
            Kind::Weather => &["description"],
            Kind::Buildings => &[],
        }
    }
}

/// A station id `<district>-<kind>-<n>` taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StationId<'a> {
    pub district: &'a str,
    /// As written in the id; not necessarily one of the four [`Kind`]s.
    pub kind: &'a str,
    pub number: u32,
}

impl<'a> StationId<'a> {
    /// Parses `<district>-<kind>-<n>`: district and kind lowercase ASCII
    /// words (letters, digits, `_`), n a number from 1. Every station id
    /// that passes is also a safe file name (the archiver's `<station>.csv`).
    pub fn parse(id: &'a str) -> Option<StationId<'a>> {
        let mut parts = id.rsplitn(3, '-');
        let number = parts.next()?;
        let kind = parts.next()?;
        let district = parts.next()?;
        let number_ok = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        if !number_ok || !is_word(kind) || !is_word(district) {
            return None;
        }
        let number: u32 = number.parse().ok().filter(|n| *n >= 1)?;
        Some(StationId {
            district,
            kind,
            number,
        })
    }

    /// The record key of this station's readings.
    pub fn key(&self, station: &str) -> String {
        reading_key(self.district, self.kind, station)
    }
}

/// `city/<district>/<kind>/<station>`: the key of a station's readings.
pub fn reading_key(district: &str, kind: &str, station: &str) -> String {
    format!("city/{district}/{kind}/{station}")
}

/// A lowercase ASCII word: `[a-z0-9_]+`.
fn is_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Well-formed ids come apart into district, kind and number; the key
    /// follows the contract.
    #[test]
    fn station_ids_parse() {
        let id = StationId::parse("north-air-3").unwrap();
        assert_eq!((id.district, id.kind, id.number), ("north", "air", 3));
        assert_eq!(id.key("north-air-3"), "city/north/air/north-air-3");
        let id = StationId::parse("old_town-buildings-12").unwrap();
        assert_eq!((id.district, id.kind), ("old_town", "buildings"));
    }

    /// Anything else is refused, in particular what could escape a directory.
    #[test]
    fn malformed_station_ids_are_refused() {
        for id in [
            "",
            "north",
            "north-air",
            "north-air-0",
            "north-air-x",
            "North-air-1",
            "-air-1",
            "north--1",
            "../etc-air-1",
            "north/x-air-1",
            "north-air-1.csv",
            "a-b-c-1",
        ] {
            assert!(StationId::parse(id).is_none(), "{id:?} was accepted");
        }
    }

    /// Kinds round-trip through their names and topics.
    #[test]
    fn kinds_name_their_topics() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.name()), Some(kind));
            assert_eq!(kind.topic(), format!("city.{}", kind.name()));
        }
        assert_eq!(Kind::parse("noise"), None);
    }
}
