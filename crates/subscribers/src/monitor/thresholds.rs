//! [`ThresholdRule`]: fixed limits on one value of one kind of reading,
//! and the defaults the environmental monitor uses. Air limits are where
//! the US EPA AQI categories "Unhealthy for Sensitive Groups" (warning)
//! and "Unhealthy" (critical) begin, so PM2.5 35.4/55.4 ug/m3 matches AQI
//! 100/150; weather limits are critical only (storm wind, heavy rain).
//! Pure.

use crate::contract::Kind;
use crate::monitor::episode::Level;

#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    pub kind: Kind,
    /// The name in `values`, e.g. `pm25`.
    pub metric: String,
    /// How the reason names it, e.g. `PM2.5`.
    pub label: String,
    /// How the reason writes its unit (may be empty).
    pub unit: String,
    /// Above this (exclusive): warning.
    pub warning_above: Option<f64>,
    /// Above this (exclusive): critical.
    pub critical_above: Option<f64>,
}

impl ThresholdRule {
    pub fn new(
        kind: Kind,
        metric: &str,
        label: &str,
        unit: &str,
        warning_above: Option<f64>,
        critical_above: Option<f64>,
    ) -> ThresholdRule {
        ThresholdRule {
            kind,
            metric: metric.to_owned(),
            label: label.to_owned(),
            unit: unit.to_owned(),
            warning_above,
            critical_above,
        }
    }

    pub fn level(&self, value: f64) -> Level {
        Level::of(value, self.warning_above, self.critical_above)
    }

    /// `PM2.5 87.1 ug/m3 above 55.4`: the value and the limit it passed.
    pub fn reason(&self, value: f64, level: Level) -> String {
        let limit = match level {
            Level::Critical => self.critical_above,
            _ => self.warning_above,
        };
        let limit = limit.expect("a level above normal has its limit");
        let value = with_unit(value, &self.unit);
        format!("{} {value} above {limit}", self.label)
    }
}

/// `87.1 ug/m3`, or `87.1` without a unit.
pub fn with_unit(value: f64, unit: &str) -> String {
    match unit.is_empty() {
        true => format!("{value}"),
        false => format!("{value} {unit}"),
    }
}

/// The monitor's default limits.
pub fn default_thresholds() -> Vec<ThresholdRule> {
    use Kind::{Air, Weather};
    vec![
        ThresholdRule::new(Air, "pm25", "PM2.5", "ug/m3", Some(35.4), Some(55.4)),
        ThresholdRule::new(Air, "pm10", "PM10", "ug/m3", Some(154.0), Some(254.0)),
        ThresholdRule::new(Air, "no2", "NO2", "ppb", Some(100.0), Some(360.0)),
        ThresholdRule::new(Air, "o3", "O3", "ppb", Some(70.0), Some(85.0)),
        ThresholdRule::new(Air, "co", "CO", "ppm", Some(9.4), Some(12.4)),
        ThresholdRule::new(Air, "aqi", "AQI", "", Some(100.0), Some(150.0)),
        ThresholdRule::new(Weather, "wind_speed_ms", "wind", "m/s", None, Some(20.0)),
        ThresholdRule::new(
            Weather,
            "precipitation_mm_h",
            "precipitation",
            "mm/h",
            None,
            Some(10.0),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(metric: &str) -> ThresholdRule {
        default_thresholds()
            .into_iter()
            .find(|rule| rule.metric == metric)
            .unwrap()
    }

    /// The brief's limits: PM2.5 35.4/55.4, AQI 100/150, wind 20, rain 10.
    #[test]
    fn default_limits() {
        assert_eq!(rule("pm25").level(40.0), Level::Warning);
        assert_eq!(rule("pm25").level(87.1), Level::Critical);
        assert_eq!(rule("aqi").level(100.0), Level::Normal);
        assert_eq!(rule("aqi").level(151.0), Level::Critical);
        assert_eq!(rule("wind_speed_ms").level(19.9), Level::Normal);
        assert_eq!(rule("wind_speed_ms").level(20.5), Level::Critical);
        assert_eq!(rule("precipitation_mm_h").level(12.0), Level::Critical);
    }

    /// The reason names the value, its unit and the limit passed.
    #[test]
    fn reasons_name_value_and_limit() {
        let pm25 = rule("pm25");
        assert_eq!(
            pm25.reason(87.1, Level::Critical),
            "PM2.5 87.1 ug/m3 above 55.4"
        );
        assert_eq!(
            pm25.reason(40.0, Level::Warning),
            "PM2.5 40 ug/m3 above 35.4"
        );
        assert_eq!(
            rule("aqi").reason(160.0, Level::Critical),
            "AQI 160 above 150"
        );
    }
}
