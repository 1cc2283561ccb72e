//! The traffic manager's logic (traffic readings in, `city.advisories`
//! out), per intersection:
//! * `congestion` once congestion has been at or above the limit (0.8)
//!   for N (3) readings in a row, and `cleared` at the first reading
//!   below it after that;
//! * `incident` when the `incident` label appears (or names another
//!   incident), and `cleared` when it disappears.
//!
//! Severities: an incident is `critical` for a collision and `warning`
//! otherwise, congestion `warning`, `cleared` `info`. Pure.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::contract::Kind;
use crate::output::{Input, Output, Process};
use crate::reading::Source;

#[derive(Debug, Clone, PartialEq)]
pub struct CongestionConfig {
    /// Congestion (0..1) at or above this counts as congested.
    pub level_min: f64,
    /// Congested readings in a row before the advisory.
    pub readings_min: u32,
}

impl Default for CongestionConfig {
    fn default() -> Self {
        CongestionConfig {
            level_min: 0.8,
            readings_min: 3,
        }
    }
}

/// One `city.advisories` value (`docs/city-data.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// `critical`, `warning` or `info`.
    pub severity: String,
    pub station: String,
    pub district: String,
    pub kind: Kind,
    /// `congestion`, `incident` or `cleared`.
    pub advice: String,
    pub reason: String,
    pub ts_ms: i64,
    pub source: Source,
}

#[derive(Debug, Default)]
struct Intersection {
    congested_readings: u32,
    congestion_advised: bool,
    incident: Option<String>,
}

pub struct Traffic {
    config: CongestionConfig,
    intersections: HashMap<String, Intersection>,
}

impl Traffic {
    pub fn new(config: CongestionConfig) -> Traffic {
        Traffic {
            config,
            intersections: HashMap::new(),
        }
    }
}

impl Process for Traffic {
    fn process(&mut self, input: &Input<'_>) -> Vec<Output> {
        let reading = input.reading;
        if reading.kind != Kind::Traffic {
            return Vec::new();
        }
        let state = self
            .intersections
            .entry(reading.station.clone())
            .or_default();
        let mut advice = Vec::new();
        if let Some(congestion) = reading.value("congestion") {
            advice.extend(congestion_advice(state, &self.config, congestion));
        }
        advice.extend(incident_advice(state, reading.label("incident")));
        advice
            .into_iter()
            .map(|(severity, kind, reason)| {
                let advisory = Advisory {
                    severity: severity.to_owned(),
                    station: reading.station.clone(),
                    district: reading.district.clone(),
                    kind: reading.kind,
                    advice: kind.to_owned(),
                    reason,
                    ts_ms: reading.ts_ms,
                    source: input.source.clone(),
                };
                Output::json(input.key.to_owned(), &advisory, input.source)
            })
            .collect()
    }
}

/// (severity, advice, reason) of one advisory.
type Advice = (&'static str, &'static str, String);

fn congestion_advice(
    state: &mut Intersection,
    config: &CongestionConfig,
    congestion: f64,
) -> Option<Advice> {
    if congestion >= config.level_min {
        state.congested_readings = state.congested_readings.saturating_add(1);
        if state.congested_readings >= config.readings_min && !state.congestion_advised {
            state.congestion_advised = true;
            let reason = format!(
                "congestion {congestion} at or above {} for {} readings",
                config.level_min, state.congested_readings
            );
            return Some(("warning", "congestion", reason));
        }
        return None;
    }
    state.congested_readings = 0;
    if !state.congestion_advised {
        return None;
    }
    state.congestion_advised = false;
    let reason = format!(
        "congestion cleared: {congestion} below {}",
        config.level_min
    );
    Some(("info", "cleared", reason))
}

fn incident_advice(state: &mut Intersection, incident: Option<&str>) -> Option<Advice> {
    if state.incident.as_deref() == incident {
        return None;
    }
    let previous = std::mem::replace(&mut state.incident, incident.map(str::to_owned));
    match (incident, previous) {
        (Some(incident), _) => {
            let severity = if incident == "collision" {
                "critical"
            } else {
                "warning"
            };
            Some((severity, "incident", format!("{incident} reported")))
        }
        (None, Some(previous)) => Some(("info", "cleared", format!("{previous} cleared"))),
        (None, None) => unreachable!("equal incidents returned above"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Received, reading};

    /// Feeds (congestion, incident) readings of one intersection; returns
    /// (offset, advice, severity) of each advisory.
    fn advisories(readings: &[(f64, Option<&str>)]) -> Vec<(u64, String, String)> {
        let mut traffic = Traffic::new(CongestionConfig::default());
        let mut seen = Vec::new();
        for (offset, (congestion, incident)) in readings.iter().enumerate() {
            let labels: Vec<(&str, &str)> = incident.iter().map(|i| ("incident", *i)).collect();
            let values = [("congestion", *congestion)];
            let received = Received::at(
                reading("east-traffic-2", 0, &values, &labels),
                offset as u64,
            );
            for output in traffic.process(&received.input()) {
                let Output::Record { value, .. } = output else {
                    panic!("a row")
                };
                let advisory: Advisory = serde_json::from_slice(&value).unwrap();
                assert_eq!(advisory.source.offset, offset as u64);
                seen.push((advisory.source.offset, advisory.advice, advisory.severity));
            }
        }
        seen
    }

    fn expect(list: &[(u64, &str, &str)]) -> Vec<(u64, String, String)> {
        list.iter()
            .map(|(o, a, s)| (*o, a.to_string(), s.to_string()))
            .collect()
    }

    /// Congestion needs three congested readings in a row; it is advised
    /// once and cleared once.
    #[test]
    fn congestion_after_three_readings_then_cleared() {
        let seen = advisories(&[
            (0.9, None),
            (0.85, None),
            (0.5, None),
            (0.8, None),
            (0.9, None),
            (0.95, None),
            (0.99, None),
            (0.3, None),
            (0.2, None),
        ]);
        assert_eq!(
            seen,
            expect(&[(5, "congestion", "warning"), (7, "cleared", "info")])
        );
    }

    /// An incident is advised when its label appears or changes, and
    /// cleared when it goes.
    #[test]
    fn incidents_appear_change_and_clear() {
        let seen = advisories(&[
            (0.1, None),
            (0.1, Some("collision")),
            (0.1, Some("collision")),
            (0.1, Some("roadworks")),
            (0.1, None),
        ]);
        let expected = [
            (1, "incident", "critical"),
            (3, "incident", "warning"),
            (4, "cleared", "info"),
        ];
        assert_eq!(seen, expect(&expected));
    }
}
