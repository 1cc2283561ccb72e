//! The analytics logic (air, weather and traffic readings in,
//! `city.analytics` out): per station and metric, tumbling windows of
//! simulated time (`window.rs`, one minute of `ts_ms` by default) and,
//! over the window means, Holt's linear trend (`holt.rs`) forecasting the
//! mean `horizon_ms` ahead. When a window closes (a reading of a later
//! window arrives) one summary is written, keyed `<station>/<metric>`,
//! whose `source` is the window's last reading.
//!
//! Defaults: α = 0.5 (the level follows a change within about two
//! windows; window means are already averages, so little noise is left to
//! smooth), β = 0.3 (the trend turns within about three windows), a 95%
//! interval (z = 1.96). Wind direction is left out: it is circular, its
//! mean is meaningless. Pure.

pub mod holt;
pub mod window;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::contract::Kind;
use crate::output::{Input, Output, Process};
use crate::reading::Source;
use holt::Holt;
use window::{Added, Tumbling, WindowStats};

/// Values not aggregated.
const SKIPPED_METRICS: [&str; 1] = ["wind_dir_deg"];

#[derive(Debug, Clone, PartialEq)]
pub struct AnalyticsConfig {
    /// Width of a tumbling window of simulated time.
    pub window_ms: i64,
    /// How far past the closed window's start the forecast looks (rounded
    /// to whole windows, at least one).
    pub horizon_ms: i64,
    /// Holt's level smoothing, in (0, 1].
    pub alpha: f64,
    /// Holt's trend smoothing, in [0, 1].
    pub beta: f64,
    /// Half-width of the interval in standard errors.
    pub interval_z: f64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            window_ms: 60_000,
            horizon_ms: 300_000,
            alpha: 0.5,
            beta: 0.3,
            interval_z: 1.96,
        }
    }
}

impl AnalyticsConfig {
    fn horizon_windows(&self) -> u32 {
        let windows = (self.horizon_ms as f64 / self.window_ms as f64).round();
        windows.clamp(1.0, f64::from(u32::MAX)) as u32
    }
}

/// One `city.analytics` value (`docs/city-data.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub station: String,
    pub kind: Kind,
    pub metric: String,
    pub window_start_ms: i64,
    pub window_ms: i64,
    pub count: u64,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub forecast: ForecastView,
    /// The window's last reading.
    pub source: Source,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastView {
    pub horizon_ms: i64,
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

struct MetricState {
    window: Tumbling,
    holt: Holt,
    /// The source of the open window's last reading.
    last_source: Option<Source>,
}

pub struct Analytics {
    config: AnalyticsConfig,
    /// By (station, metric).
    metrics: HashMap<(String, String), MetricState>,
}

impl Analytics {
    pub fn new(config: AnalyticsConfig) -> Analytics {
        Analytics {
            config,
            metrics: HashMap::new(),
        }
    }

    /// Adds one value; returns the summary of the window it closed, if any.
    fn add(&mut self, input: &Input<'_>, metric: &str, value: f64) -> Option<Summary> {
        let config = &self.config;
        let state = self
            .metrics
            .entry((input.reading.station.clone(), metric.to_owned()))
            .or_insert_with(|| MetricState {
                window: Tumbling::new(config.window_ms),
                holt: Holt::new(config.alpha, config.beta),
                last_source: None,
            });
        let added = state.window.add(input.reading.ts_ms, value);
        if added == Added::Late {
            return None;
        }
        let last_source = state.last_source.replace(input.source.clone());
        let Added::Closed(closed) = added else {
            return None;
        };
        let source = last_source.expect("a closed window had a reading");
        Some(summarize(config, state, input, metric, closed, source))
    }
}

/// Feeds the closed window's mean to Holt and describes the window.
fn summarize(
    config: &AnalyticsConfig,
    state: &mut MetricState,
    input: &Input<'_>,
    metric: &str,
    closed: WindowStats,
    source: Source,
) -> Summary {
    state
        .holt
        .observe(closed.start_ms.div_euclid(config.window_ms), closed.mean);
    let horizon = config.horizon_windows();
    let forecast = state
        .holt
        .forecast(horizon, config.interval_z, closed.std_dev())
        .expect("Holt has just observed a value");
    Summary {
        station: input.reading.station.clone(),
        kind: input.reading.kind,
        metric: metric.to_owned(),
        window_start_ms: closed.start_ms,
        window_ms: config.window_ms,
        count: closed.count,
        mean: closed.mean,
        min: closed.min,
        max: closed.max,
        forecast: ForecastView {
            horizon_ms: i64::from(horizon) * config.window_ms,
            value: forecast.value,
            low: forecast.low,
            high: forecast.high,
        },
        source,
    }
}

impl Process for Analytics {
    fn process(&mut self, input: &Input<'_>) -> Vec<Output> {
        if input.reading.kind == Kind::Buildings {
            return Vec::new();
        }
        let mut outputs = Vec::new();
        for (metric, value) in &input.reading.values {
            if SKIPPED_METRICS.contains(&metric.as_str()) {
                continue;
            }
            if let Some(summary) = self.add(input, metric, *value) {
                let key = format!("{}/{metric}", input.reading.station);
                outputs.push(Output::json(key, &summary, &summary.source));
            }
        }
        outputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Received, reading};

    fn summaries(analytics: &mut Analytics, readings: &[(i64, f64)]) -> Vec<(String, Summary)> {
        let mut out = Vec::new();
        for (offset, (ts_ms, pm25)) in readings.iter().enumerate() {
            let values = [("pm25", *pm25), ("wind_dir_deg", 90.0)];
            let received =
                Received::at(reading("north-air-1", *ts_ms, &values, &[]), offset as u64);
            for output in analytics.process(&received.input()) {
                let Output::Record {
                    key, value, source, ..
                } = output
                else {
                    panic!("a row")
                };
                let summary: Summary = serde_json::from_slice(&value).unwrap();
                assert_eq!(source, summary.source);
                out.push((key, summary));
            }
        }
        out
    }

    /// A window's summary comes out when the next minute's first reading
    /// arrives, names the window's last reading as its source, and carries
    /// a forecast five windows ahead.
    #[test]
    fn a_summary_per_closed_window() {
        let mut analytics = Analytics::new(AnalyticsConfig::default());
        let readings = [
            (0, 10.0),
            (20_000, 14.0),
            (59_999, 12.0),
            (60_000, 20.0),
            (61_000, 22.0),
        ];
        let out = summaries(&mut analytics, &readings);
        assert_eq!(out.len(), 1, "only the first minute closed");
        let (key, summary) = &out[0];
        assert_eq!(key, "north-air-1/pm25");
        assert_eq!(
            (summary.window_start_ms, summary.window_ms, summary.count),
            (0, 60_000, 3)
        );
        assert_eq!((summary.mean, summary.min, summary.max), (12.0, 10.0, 14.0));
        assert_eq!(summary.source.offset, 2);
        assert_eq!(summary.forecast.horizon_ms, 300_000);
        assert_eq!(summary.forecast.value, 12.0);
        assert!((summary.forecast.high - summary.forecast.low) > 0.0);
    }

    /// A rising series of window means is forecast along its trend.
    #[test]
    fn forecasts_follow_the_trend() {
        let mut analytics = Analytics::new(AnalyticsConfig::default());
        let readings: Vec<(i64, f64)> = (0..6).map(|m| (m * 60_000, 10.0 + m as f64)).collect();
        let out = summaries(&mut analytics, &readings);
        assert_eq!(out.len(), 5);
        let last = &out[4].1;
        assert_eq!(last.window_start_ms, 240_000);
        assert!(
            (last.forecast.value - 19.0).abs() < 1e-9,
            "{:?}",
            last.forecast
        );
    }
}
