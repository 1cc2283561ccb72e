//! A building's indoor sensor: temperature held near its heating or
//! cooling set point (warmer by day, cooler at night) and pulled a little
//! towards the weather outside, humidity following the outdoor humidity,
//! the district's air pressure, and the sensor's own reading counter.

use rand::Rng as _;
use rand::rngs::StdRng;

use super::process::{Drift, gaussian};
use super::weather::Sky;
use crate::daily;

#[derive(Debug, Clone)]
pub struct BuildingStation {
    rng: StdRng,
    set_point_c: f64,
    /// How much the outside leaks in: 0.05 (well insulated) to 0.2.
    leakage: f64,
    /// The barometer's offset from the district's (height, calibration).
    pressure_offset_hpa: f64,
    temperature_drift: Drift,
    sequence: u64,
    last_ms: Option<i64>,
}

impl BuildingStation {
    pub fn new(mut rng: StdRng) -> BuildingStation {
        BuildingStation {
            set_point_c: rng.random_range(20.0..22.5),
            leakage: rng.random_range(0.05..0.2),
            pressure_offset_hpa: rng.random_range(-4.0..0.0),
            temperature_drift: Drift::new(&mut rng, 0.4, 1.0),
            sequence: 0,
            last_ms: None,
            rng,
        }
    }

    /// Values in `metrics(Kind::Buildings)` order.
    pub fn read(&mut self, ts_ms: i64, sky: &Sky) -> Vec<f64> {
        let elapsed_ms = ts_ms - self.last_ms.unwrap_or(ts_ms);
        self.last_ms = Some(ts_ms);
        self.sequence += 1;
        let rng = &mut self.rng;
        let hour = daily::hour_of_day(ts_ms);
        let occupied = (7.0..20.0).contains(&hour);
        let target_c = if occupied {
            self.set_point_c
        } else {
            self.set_point_c - 2.0
        };
        let temperature_c = target_c
            + self.leakage * (sky.temperature_c - target_c)
            + self.temperature_drift.step(rng, elapsed_ms);
        let humidity_pct = 40.0 + 0.3 * (sky.humidity_pct - 60.0) + gaussian(rng);
        vec![
            temperature_c + 0.02 * gaussian(rng),
            humidity_pct.clamp(10.0, 90.0),
            sky.pressure_hpa + self.pressure_offset_hpa + 0.1 * gaussian(rng),
            self.sequence as f64,
        ]
    }
}
