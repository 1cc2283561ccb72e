use super::*;
use crate::testing::{Received, reading};

fn monitor() -> Monitor {
    Monitor::new(thresholds::default_thresholds(), ZScoreConfig::default())
}

/// Runs PM2.5 values of one air station through `monitor`; returns the alerts.
fn pm25_alerts(monitor: &mut Monitor, values: &[f64], first_offset: u64) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let offset = first_offset + i as u64;
        let received = Received::at(
            reading(
                "north-air-1",
                offset as i64 * 1_000,
                &[("pm25", *value)],
                &[],
            ),
            offset,
        );
        for output in monitor.process(&received.input()) {
            let Output::Record { value, key, .. } = output else {
                panic!("a row")
            };
            assert_eq!(key, "city/north/air/north-air-1");
            alerts.push(serde_json::from_slice(&value).unwrap());
        }
    }
    alerts
}

/// A long exceedance alerts on entry and on its rise to critical, then
/// nothing until it clears; the next one alerts again.
#[test]
fn an_exceedance_alerts_on_entry_and_on_a_rise_only() {
    let mut monitor = monitor();
    let values = [10.0, 40.0, 41.0, 60.0, 45.0, 61.0, 62.0, 10.0, 10.0, 70.0];
    let alerts: Vec<(String, u64)> = pm25_alerts(&mut monitor, &values, 100)
        .into_iter()
        .filter(|alert| alert.rule == "threshold")
        .map(|alert| (alert.severity, alert.source.offset))
        .collect();
    let expected = [("warning", 101), ("critical", 103), ("critical", 109)];
    let expected: Vec<(String, u64)> = expected.iter().map(|(s, o)| (s.to_string(), *o)).collect();
    assert_eq!(alerts, expected);
}

/// The alert value has the contract's fields, the reason the limit.
#[test]
fn an_alert_follows_the_contract() {
    let mut monitor = monitor();
    let alert = &pm25_alerts(&mut monitor, &[87.1], 4711)[0];
    let json = serde_json::to_value(alert).unwrap();
    let expected = serde_json::json!({
        "severity": "critical", "station": "north-air-1", "district": "north", "kind": "air",
        "metric": "pm25", "value": 87.1, "reason": "PM2.5 87.1 ug/m3 above 55.4",
        "rule": "threshold", "ts_ms": 4_711_000,
        "source": {"topic": "city.air", "partition": 0, "offset": 4711}
    });
    assert_eq!(json, expected);
}

/// A spike within the limits is caught by the z-score rule, once.
#[test]
fn a_spike_within_limits_is_an_anomaly() {
    let mut monitor = monitor();
    let mut values: Vec<f64> = (0..20).map(|i| 10.0 + (i % 3) as f64 * 0.5).collect();
    values.extend([30.0, 30.0, 10.5]);
    let alerts = pm25_alerts(&mut monitor, &values, 0);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        (alerts[0].rule.as_str(), alerts[0].source.offset),
        ("zscore", 20)
    );
    assert!(
        alerts[0].reason.contains("standard deviations above"),
        "{}",
        alerts[0].reason
    );
}

/// Weather: storm wind and heavy rain are critical; traffic is not watched.
#[test]
fn weather_limits_and_unwatched_kinds() {
    let mut monitor = monitor();
    let storm = reading(
        "harbor-weather-1",
        0,
        &[("wind_speed_ms", 24.0), ("precipitation_mm_h", 12.0)],
        &[],
    );
    let outputs = monitor.process(&Received::at(storm, 0).input());
    assert_eq!(outputs.len(), 2);
    let jam = reading("harbor-traffic-1", 0, &[("congestion", 1.0)], &[]);
    assert!(monitor.process(&Received::at(jam, 0).input()).is_empty());
}
