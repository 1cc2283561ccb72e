//! The environmental monitor's logic (air and weather readings in,
//! `city.alerts` out): per station and metric, fixed limits
//! (`thresholds.rs`) and rolling z-score anomalies (`zscore.rs`), each
//! rule alerting once per episode (`episode.rs`): when a value first
//! leaves the normal range and when its severity rises, then nothing
//! until a reading is back in range. Both rules may alert on one reading.
//! Z-scores are kept for the continuous metrics only: not wind direction
//! (circular) nor precipitation (mostly zero, so any rain is "anomalous").
//! Pure: state in memory, one alert value per output.

pub mod episode;
pub mod thresholds;
pub mod zscore;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::contract::Kind;
use crate::output::{Input, Output, Process};
use crate::reading::{Reading, Source};
use episode::{Episode, Level};
use thresholds::{ThresholdRule, with_unit};
use zscore::{RollingWindow, ZScore, ZScoreConfig};

/// The metrics whose z-scores are watched, per kind.
fn zscore_metrics(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Air => &["pm25", "pm10", "no2", "o3", "co", "aqi"],
        Kind::Weather => &[
            "temperature_c",
            "humidity_pct",
            "pressure_hpa",
            "wind_speed_ms",
        ],
        Kind::Traffic | Kind::Buildings => &[],
    }
}

/// One `city.alerts` value (`docs/city-data.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `warning` or `critical`.
    pub severity: String,
    pub station: String,
    pub district: String,
    pub kind: Kind,
    pub metric: String,
    pub value: f64,
    pub reason: String,
    /// `threshold` or `zscore`.
    pub rule: String,
    pub ts_ms: i64,
    pub source: Source,
}

/// What the monitor remembers of one station's metric.
struct MetricState {
    window: RollingWindow,
    threshold: Episode,
    zscore: Episode,
}

pub struct Monitor {
    thresholds: Vec<ThresholdRule>,
    zscore: ZScoreConfig,
    /// By (station, metric).
    metrics: HashMap<(String, String), MetricState>,
}

impl Monitor {
    pub fn new(thresholds: Vec<ThresholdRule>, zscore: ZScoreConfig) -> Monitor {
        Monitor {
            thresholds,
            zscore,
            metrics: HashMap::new(),
        }
    }

    /// The alerts due for one metric of a reading: threshold, then z-score.
    fn check_metric(&mut self, input: &Input<'_>, metric: &str, value: f64) -> Vec<Alert> {
        let reading = input.reading;
        let window = self.zscore.window;
        let state = self
            .metrics
            .entry((reading.station.clone(), metric.to_owned()))
            .or_insert_with(|| MetricState {
                window: RollingWindow::new(window),
                threshold: Episode::default(),
                zscore: Episode::default(),
            });
        let mut alerts = Vec::new();
        let rule = self
            .thresholds
            .iter()
            .find(|rule| rule.kind == reading.kind && rule.metric == metric);
        if let Some(rule) = rule
            && let Some(level) = state.threshold.observe(rule.level(value))
        {
            let reason = rule.reason(value, level);
            alerts.push(alert(input, metric, value, level, reason, "threshold"));
        }
        if zscore_metrics(reading.kind).contains(&metric) {
            let score = state
                .window
                .score_then_push(value, self.zscore.min_readings);
            let level = score.map_or(Level::Normal, |score| self.zscore.level(&score));
            if let (Some(level), Some(score)) = (state.zscore.observe(level), score) {
                let reason = zscore_reason(reading, metric, value, &score);
                alerts.push(alert(input, metric, value, level, reason, "zscore"));
            }
        }
        alerts
    }
}

impl Process for Monitor {
    fn process(&mut self, input: &Input<'_>) -> Vec<Output> {
        let kind = input.reading.kind;
        let mut alerts = Vec::new();
        for metric in kind.value_names() {
            if let Some(value) = input.reading.value(metric) {
                alerts.extend(self.check_metric(input, metric, value));
            }
        }
        alerts
            .iter()
            .map(|alert| Output::json(input.key.to_owned(), alert, input.source))
            .collect()
    }
}

fn alert(
    input: &Input<'_>,
    metric: &str,
    value: f64,
    level: Level,
    reason: String,
    rule: &str,
) -> Alert {
    let reading = input.reading;
    Alert {
        severity: level.severity().to_owned(),
        station: reading.station.clone(),
        district: reading.district.clone(),
        kind: reading.kind,
        metric: metric.to_owned(),
        value,
        reason,
        rule: rule.to_owned(),
        ts_ms: reading.ts_ms,
        source: input.source.clone(),
    }
}

/// `PM2.5 87.1 ug/m3 is 4.2 standard deviations above the mean 12.3 of the last 30 readings`.
fn zscore_reason(reading: &Reading, metric: &str, value: f64, score: &ZScore) -> String {
    let unit = reading.units.get(metric).map_or("", String::as_str);
    let direction = if score.z >= 0.0 { "above" } else { "below" };
    format!(
        "{metric} {} is {:.1} standard deviations {direction} the mean {:.2} of the last {} readings",
        with_unit(value, unit),
        score.z.abs(),
        score.mean,
        score.count
    )
}

#[cfg(test)]
mod tests;
