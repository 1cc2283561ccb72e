//! Properties of the city model: determinism, independence of stations,
//! the daily cycles and correlations the brief asks for, and the readings'
//! JSON shape against `docs/city-data.md`.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use super::*;
use crate::daily::hour_of_day;

/// 2026-01-05T00:00:00Z, a midnight, so simulated hours are easy to read.
const MIDNIGHT_MS: i64 = 1_767_571_200_000;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

fn city(seed: u64) -> CityConfig {
    CityConfig {
        seed,
        ..CityConfig::default()
    }
}

fn readings(simulation: &mut Simulation, count: usize) -> Vec<Reading> {
    (0..count).map(|_| simulation.next_reading()).collect()
}

/// Every reading until `end_ms` (simulated).
fn readings_until(simulation: &mut Simulation, end_ms: i64) -> Vec<Reading> {
    let mut readings = Vec::new();
    while simulation.next_ts_ms() < end_ms {
        readings.push(simulation.next_reading());
    }
    readings
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0), |(sum, count), value| (sum + value, count + 1));
    assert!(count > 0, "no values to average");
    sum / f64::from(count)
}

/// The mean of `metric` over readings of `kind` whose hour of day is in `hours`.
fn mean_at(readings: &[Reading], kind: Kind, metric: &str, hours: std::ops::Range<f64>) -> f64 {
    mean(
        readings
            .iter()
            .filter(|r| r.kind == kind && hours.contains(&hour_of_day(r.ts_ms)))
            .map(|r| r.value(metric).unwrap()),
    )
}

/// The same seed gives the same first 1,000 readings, byte for byte.
#[test]
fn same_seed_same_readings() {
    let first = readings(&mut Simulation::new(&city(42), MIDNIGHT_MS, 10_000), 1_000);
    let second = readings(&mut Simulation::new(&city(42), MIDNIGHT_MS, 10_000), 1_000);
    let json = |readings: &[Reading]| readings.iter().map(Reading::to_json).collect::<Vec<_>>();
    assert_eq!(json(&first), json(&second));
}

/// Another seed gives other readings.
#[test]
fn different_seed_different_readings() {
    let first = readings(&mut Simulation::new(&city(42), MIDNIGHT_MS, 10_000), 1_000);
    let second = readings(&mut Simulation::new(&city(43), MIDNIGHT_MS, 10_000), 1_000);
    let differing = first
        .iter()
        .zip(&second)
        .filter(|(a, b)| a.values != b.values)
        .count();
    assert!(differing > 900, "only {differing} of 1,000 readings differ");
}

/// What a station read, without the publisher-wide Lamport counter.
type StationReading = (i64, Vec<f64>, Vec<(&'static str, &'static str)>);

/// Adding stations and districts changes no existing station's readings
/// (only the Lamport counters, which count all readings).
#[test]
fn adding_stations_changes_no_other_station() {
    let small = CityConfig {
        districts: 2,
        stations_per_kind: 2,
        seed: 7,
    };
    let large = CityConfig {
        districts: 5,
        stations_per_kind: 4,
        seed: 7,
    };
    let by_station = |config: &CityConfig| {
        let mut simulation = Simulation::new(config, MIDNIGHT_MS, 10_000);
        let mut by_station: HashMap<Arc<str>, Vec<StationReading>> = HashMap::new();
        for reading in readings_until(&mut simulation, MIDNIGHT_MS + 6 * HOUR_MS) {
            by_station
                .entry(reading.station.clone())
                .or_default()
                .push((reading.ts_ms, reading.values, reading.labels));
        }
        by_station
    };
    let small = by_station(&small);
    let large = by_station(&large);
    assert_eq!(small.len(), 2 * 7);
    for (station, readings) in &small {
        assert_eq!(Some(readings), large.get(station), "{station}");
    }
}

/// Per station, simulated time only grows, one cadence apart; the Lamport
/// counter grows by one per reading across the publisher.
#[test]
fn times_and_counters_grow() {
    let mut simulation = Simulation::new(&city(1), MIDNIGHT_MS, 10_000);
    let all = readings(&mut simulation, 5_000);
    let mut last_ts: HashMap<Arc<str>, i64> = HashMap::new();
    for (index, reading) in all.iter().enumerate() {
        assert_eq!(reading.lamport, index as u64 + 1);
        if let Some(previous) = last_ts.insert(reading.station.clone(), reading.ts_ms) {
            assert_eq!(reading.ts_ms - previous, 10_000, "{}", reading.station);
        }
    }
    assert!(all.windows(2).all(|pair| pair[0].ts_ms <= pair[1].ts_ms));
}

/// Rush hours raise traffic volume and congestion and lower speed compared
/// with 3 a.m.; they raise NO2 and CO too.
#[test]
fn rush_hour_raises_traffic_and_exhaust() {
    let mut simulation = Simulation::new(&city(42), MIDNIGHT_MS, 60_000);
    let week = readings_until(&mut simulation, MIDNIGHT_MS + 7 * DAY_MS);
    let rush = 7.0..9.0;
    let night = 3.0..4.0;
    let traffic = |metric, hours| mean_at(&week, Kind::Traffic, metric, hours);
    assert!(
        traffic("vehicles_per_min", rush.clone())
            > 3.0 * traffic("vehicles_per_min", night.clone())
    );
    assert!(traffic("congestion", rush.clone()) > traffic("congestion", night.clone()) + 0.3);
    assert!(
        traffic("mean_speed_kmh", rush.clone()) < traffic("mean_speed_kmh", night.clone()) - 10.0
    );
    let air = |metric, hours| mean_at(&week, Kind::Air, metric, hours);
    assert!(air("no2", rush.clone()) > 2.0 * air("no2", night.clone()));
    assert!(air("co", rush.clone()) > air("co", night.clone()) + 0.3);
}

/// Ozone peaks in the afternoon, above the morning and the night.
#[test]
fn ozone_peaks_mid_afternoon() {
    // Mid-June, when afternoons are warm enough to make ozone.
    let june_ms = MIDNIGHT_MS + 160 * DAY_MS;
    let mut simulation = Simulation::new(&city(42), june_ms, 60_000);
    let week = readings_until(&mut simulation, june_ms + 7 * DAY_MS);
    let afternoon = mean_at(&week, Kind::Air, "o3", 13.0..16.0);
    assert!(afternoon > mean_at(&week, Kind::Air, "o3", 2.0..5.0) + 10.0);
    assert!(afternoon > mean_at(&week, Kind::Air, "o3", 7.0..9.0) + 10.0);
}

/// Over two months, storms happen; while one is on the pressure is lower,
/// wind and precipitation higher, and the description is `storm`.
#[test]
fn storms_drop_pressure_and_raise_wind_and_rain() {
    let mut weather =
        DistrictWeather::new(crate::streams::stream(42, "weather:north"), MIDNIGHT_MS);
    let skies: Vec<Sky> = (1..60 * 24 * 6)
        .map(|step| weather.advance_to(MIDNIGHT_MS + step * 10 * 60_000))
        .collect();
    let (storm, calm): (Vec<Sky>, Vec<Sky>) = skies.into_iter().partition(Sky::is_storm);
    assert!(storm.len() > 100, "only {} storm samples", storm.len());
    let pressure = |skies: &[Sky]| mean(skies.iter().map(|s| s.pressure_hpa));
    let wind = |skies: &[Sky]| mean(skies.iter().map(|s| s.wind_speed_ms));
    let rain = |skies: &[Sky]| mean(skies.iter().map(|s| s.precipitation_mm_h));
    assert!(pressure(&storm) < pressure(&calm) - 8.0);
    assert!(wind(&storm) > wind(&calm) + 5.0);
    assert!(rain(&storm) > rain(&calm) + 5.0);
    assert!(storm.iter().all(|s| s.description() == "storm"));
    assert!(calm.iter().all(|s| s.description() != "storm"));
}

/// Traffic incidents start, last 10 to 60 simulated minutes and, while
/// on, raise congestion and cut speed.
#[test]
fn incidents_are_bounded_and_slow_traffic() {
    let mut simulation = Simulation::new(&city(42), MIDNIGHT_MS, 10_000);
    let days = readings_until(&mut simulation, MIDNIGHT_MS + 3 * DAY_MS);
    let traffic: Vec<&Reading> = days.iter().filter(|r| r.kind == Kind::Traffic).collect();
    let mut spans: HashMap<&str, (i64, i64)> = HashMap::new();
    let mut durations_ms = Vec::new();
    for reading in &traffic {
        let station: &str = &reading.station;
        match (reading.label("incident"), spans.get(station).copied()) {
            (Some(_), span) => {
                let start = span.map_or(reading.ts_ms, |(start, _)| start);
                spans.insert(station, (start, reading.ts_ms));
            }
            (None, Some((start, end))) => {
                durations_ms.push(end - start);
                spans.remove(station);
            }
            (None, None) => {}
        }
    }
    assert!(
        durations_ms.len() >= 10,
        "only {} incidents",
        durations_ms.len()
    );
    for duration_ms in &durations_ms {
        assert!(
            (9 * 60_000 - 10_000..=60 * 60_000).contains(duration_ms),
            "{duration_ms} ms"
        );
    }
    let (with, without): (Vec<&&Reading>, Vec<&&Reading>) =
        traffic.iter().partition(|r| r.label("incident").is_some());
    let congestion =
        |readings: &[&&Reading]| mean(readings.iter().map(|r| r.value("congestion").unwrap()));
    let speed =
        |readings: &[&&Reading]| mean(readings.iter().map(|r| r.value("mean_speed_kmh").unwrap()));
    assert!(congestion(&with) > congestion(&without) + 0.2);
    assert!(speed(&with) < speed(&without) * 0.8);
}

/// Over a simulated week every alarm kind occurs, and a reading is an
/// alarm exactly when the contract says so.
#[test]
fn alarms_occur_and_match_their_cause() {
    let mut simulation = Simulation::new(&city(42), MIDNIGHT_MS, 60_000);
    let week = readings_until(&mut simulation, MIDNIGHT_MS + 7 * DAY_MS);
    let mut alarms: HashMap<Kind, usize> = HashMap::new();
    for reading in &week {
        let cause = match reading.kind {
            Kind::Air => reading.value("aqi").unwrap() > 150.0,
            Kind::Traffic => reading.label("incident").is_some(),
            Kind::Weather => reading.label("description") == Some("storm"),
            Kind::Buildings => false,
        };
        assert_eq!(reading.is_alarm(), cause);
        *alarms.entry(reading.kind).or_default() += usize::from(cause);
    }
    for kind in [Kind::Air, Kind::Traffic, Kind::Weather] {
        assert!(
            alarms.get(&kind).copied().unwrap_or(0) > 0,
            "no {kind} alarm in a week"
        );
    }
}

/// An air reading's AQI, category and dominant pollutant are those of its
/// published values.
#[test]
fn air_readings_carry_their_own_aqi() {
    let mut simulation = Simulation::new(&city(42), MIDNIGHT_MS, 60_000);
    for reading in readings_until(&mut simulation, MIDNIGHT_MS + 2 * DAY_MS) {
        if reading.kind != Kind::Air {
            continue;
        }
        let aqi = Aqi::of(Pollutant::ALL.map(|p| reading.value(p.name()).unwrap()));
        assert_eq!(reading.value("aqi"), Some(f64::from(aqi.index)));
        assert_eq!(reading.label("category"), Some(aqi.category()));
        assert_eq!(reading.label("dominant"), Some(aqi.dominant.name()));
    }
}

/// Value names and their units.
type Units = Vec<(&'static str, &'static str)>;
/// Label names and their allowed values.
type Labels = Vec<(&'static str, Vec<&'static str>)>;

/// The values, units and labels of each kind, as `docs/city-data.md` lists them.
fn contract(kind: &str) -> (Units, Labels) {
    match kind {
        "air" => (
            vec![
                ("pm25", "ug/m3"),
                ("pm10", "ug/m3"),
                ("no2", "ppb"),
                ("o3", "ppb"),
                ("co", "ppm"),
                ("aqi", "index"),
            ],
            vec![
                (
                    "category",
                    vec![
                        "Good",
                        "Moderate",
                        "Unhealthy for Sensitive Groups",
                        "Unhealthy",
                        "Very Unhealthy",
                        "Hazardous",
                    ],
                ),
                ("dominant", vec!["pm25", "pm10", "no2", "o3", "co"]),
            ],
        ),
        "traffic" => (
            vec![
                ("vehicles_per_min", "1/min"),
                ("mean_speed_kmh", "km/h"),
                ("congestion", "0..1"),
            ],
            vec![
                ("level", vec!["free", "moderate", "heavy", "jammed"]),
                ("incident", vec!["collision", "breakdown", "roadworks"]),
            ],
        ),
        "weather" => (
            vec![
                ("temperature_c", "C"),
                ("humidity_pct", "%"),
                ("pressure_hpa", "hPa"),
                ("wind_speed_ms", "m/s"),
                ("wind_dir_deg", "deg"),
                ("precipitation_mm_h", "mm/h"),
            ],
            vec![(
                "description",
                vec!["clear", "cloudy", "rain", "storm", "fog", "snow"],
            )],
        ),
        "buildings" => (
            vec![
                ("temperature_c", "C"),
                ("humidity_pct", "%"),
                ("pressure_hpa", "hPa"),
                ("sequence", "count"),
            ],
            vec![],
        ),
        other => panic!("unknown kind {other}"),
    }
}

/// Every reading's JSON has exactly the contract's fields: station ids
/// `<district>-<kind>-<n>`, the kind's values (numbers) with their units,
/// and labels (strings) from the contract's vocabularies.
#[test]
fn json_shape_follows_the_contract() {
    let mut simulation = Simulation::new(&city(42), MIDNIGHT_MS, 60_000);
    for reading in readings_until(&mut simulation, MIDNIGHT_MS + DAY_MS) {
        let json: Value = serde_json::from_slice(&reading.to_json()).unwrap();
        let object = json.as_object().unwrap();
        let fields: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut expected = vec![
            "district", "kind", "labels", "lamport", "station", "ts_ms", "units", "values",
        ];
        expected.sort();
        assert_eq!(fields, expected);
        let (kind, district, station) = (
            json["kind"].as_str().unwrap(),
            json["district"].as_str().unwrap(),
            json["station"].as_str().unwrap(),
        );
        assert!(
            station.starts_with(&format!("{district}-{kind}-")),
            "{station}"
        );
        assert!(json["ts_ms"].is_i64() && json["lamport"].is_u64());
        let (units, labels) = contract(kind);
        assert_eq!(json["values"].as_object().unwrap().len(), units.len());
        assert_eq!(json["units"].as_object().unwrap().len(), units.len());
        for (name, unit) in units {
            assert!(json["values"][name].is_number(), "{kind} {name}");
            assert_eq!(json["units"][name], unit, "{kind} {name}");
        }
        for (name, value) in json["labels"].as_object().unwrap() {
            let allowed = labels
                .iter()
                .find(|(label, _)| label == name)
                .map(|(_, values)| values);
            let allowed = allowed.unwrap_or_else(|| panic!("{kind} has no label {name}"));
            assert!(
                allowed.contains(&value.as_str().unwrap()),
                "{kind} {name}={value}"
            );
        }
    }
}
