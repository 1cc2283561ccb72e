//! The shape of the city: its districts and stations, named as
//! `docs/city-data.md` says (`<district>-<kind>-<n>`, one weather station
//! per district). Pure data: how stations behave is `model`'s, when they
//! report is `schedule`'s.

use std::fmt;
use std::sync::Arc;

/// District names in the order `--districts N` takes them: lowercase ASCII
/// words (a hyphen joins two), so keys and station ids stay readable.
pub const DISTRICT_NAMES: [&str; 16] = [
    "north",
    "south",
    "east",
    "west",
    "harbor",
    "old-town",
    "university",
    "airport",
    "riverside",
    "market",
    "hills",
    "docks",
    "park",
    "central",
    "industrial",
    "lakeside",
];

/// Most districts a city can have: one per name.
pub const DISTRICTS_MAX: usize = DISTRICT_NAMES.len();
/// Most stations of one kind in one district (a bound on memory and on the
/// schedule's heap, far above what a demo or a load test needs).
pub const STATIONS_PER_KIND_MAX: usize = 1_000;

/// The topics the publishers write, one per kind, in [`Kind::ALL`] order.
pub const CITY_TOPICS: [&str; 4] = ["city.air", "city.traffic", "city.weather", "city.buildings"];

/// What a station measures; each kind has its own topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Air,
    Traffic,
    Weather,
    Buildings,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Air, Kind::Traffic, Kind::Weather, Kind::Buildings];

    /// The name used in station ids, keys and the `kind` field.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Air => "air",
            Kind::Traffic => "traffic",
            Kind::Weather => "weather",
            Kind::Buildings => "buildings",
        }
    }

    /// The topic this kind's readings are published to.
    pub fn topic(self) -> &'static str {
        match self {
            Kind::Air => "city.air",
            Kind::Traffic => "city.traffic",
            Kind::Weather => "city.weather",
            Kind::Buildings => "city.buildings",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// How big the city is and which seed drives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CityConfig {
    /// 1 to [`DISTRICTS_MAX`].
    pub districts: usize,
    /// Air, traffic and building stations per district, each (1 to
    /// [`STATIONS_PER_KIND_MAX`]); weather has one per district.
    pub stations_per_kind: usize,
    pub seed: u64,
}

impl Default for CityConfig {
    fn default() -> Self {
        CityConfig {
            districts: 4,
            stations_per_kind: 3,
            seed: 42,
        }
    }
}

impl CityConfig {
    /// Checks the bounds; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=DISTRICTS_MAX).contains(&self.districts) {
            return Err(format!(
                "districts must be 1 to {DISTRICTS_MAX} (one per name: {}), not {}",
                DISTRICT_NAMES.join(", "),
                self.districts
            ));
        }
        if !(1..=STATIONS_PER_KIND_MAX).contains(&self.stations_per_kind) {
            return Err(format!(
                "stations per district and kind must be 1 to {STATIONS_PER_KIND_MAX}, not {}",
                self.stations_per_kind
            ));
        }
        Ok(())
    }
}

/// One station: where it is and what it measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Station {
    /// `<district>-<kind>-<n>`, unique city-wide.
    pub id: Arc<str>,
    pub district: &'static str,
    /// Index of the district in [`DISTRICT_NAMES`].
    pub district_index: usize,
    pub kind: Kind,
}

/// Every station of a city, grouped by district, then kind, then number.
pub fn stations(config: &CityConfig) -> Vec<Station> {
    let mut stations = Vec::new();
    for (district_index, district) in DISTRICT_NAMES.iter().take(config.districts).enumerate() {
        for kind in Kind::ALL {
            let count = match kind {
                Kind::Weather => 1,
                _ => config.stations_per_kind,
            };
            for number in 1..=count {
                stations.push(Station {
                    id: format!("{district}-{kind}-{number}").into(),
                    district,
                    district_index,
                    kind,
                });
            }
        }
    }
    stations
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default city has 4 districts of 3 air, 3 traffic, 3 building and
    /// 1 weather station, named as the data contract says.
    #[test]
    fn default_city_has_named_stations() {
        let stations = stations(&CityConfig::default());
        assert_eq!(stations.len(), 4 * 10);
        let ids: Vec<&str> = stations.iter().map(|s| &*s.id).collect();
        assert!(ids.contains(&"north-air-3"));
        assert!(ids.contains(&"west-weather-1"));
        assert!(!ids.contains(&"west-weather-2"));
        assert!(ids.contains(&"east-buildings-1"));
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }

    /// Each kind's topic is `city.<kind>`, as listed in [`CITY_TOPICS`].
    #[test]
    fn topics_are_named_after_kinds() {
        for (kind, topic) in Kind::ALL.into_iter().zip(CITY_TOPICS) {
            assert_eq!(kind.topic(), topic);
            assert_eq!(topic, format!("city.{kind}"));
        }
    }

    /// District names are lowercase ASCII words, optionally hyphenated.
    #[test]
    fn district_names_are_lowercase_words() {
        for name in DISTRICT_NAMES {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    /// Zero districts, too many districts and zero stations are refused.
    #[test]
    fn bad_sizes_are_refused() {
        let bad = |districts, stations_per_kind| CityConfig {
            districts,
            stations_per_kind,
            seed: 1,
        };
        assert!(bad(0, 3).validate().is_err());
        assert!(bad(DISTRICTS_MAX + 1, 3).validate().is_err());
        assert!(bad(4, 0).validate().is_err());
        assert!(bad(DISTRICTS_MAX, 1).validate().is_ok());
    }
}
