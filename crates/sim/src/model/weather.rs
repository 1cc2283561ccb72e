//! A district's weather and its weather station. The weather ([`Sky`]) is
//! shared by every station of the district: air stations read its
//! temperature (ozone) and wind (dilution), traffic its storms, buildings
//! its pressure. It evolves in fixed one-minute steps from the simulation
//! start with the district's own random stream, so it is the same at a
//! given time whichever stations ask and how often.
//!
//! Storms arrive at random (about one per district every two days), last
//! one to five hours, and while on drop the pressure, raise wind and
//! precipitation, cool the air and make the description `storm`.

use rand::Rng as _;
use rand::rngs::StdRng;

use super::process::{Drift, chance, gaussian};
use crate::daily;

/// The weather moves on in steps of one simulated minute.
pub const STEP_MS: i64 = 60_000;
const STORMS_PER_HOUR: f64 = 1.0 / 48.0;
const STORM_HOURS_MIN: f64 = 1.0;
const STORM_HOURS_MAX: f64 = 5.0;
/// A storm builds up (and dies down) over this long.
const STORM_RAMP_MS: f64 = 30.0 * 60_000.0;
const HOUR_MS: f64 = 3_600_000.0;

/// The weather of a district at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sky {
    pub temperature_c: f64,
    pub humidity_pct: f64,
    pub pressure_hpa: f64,
    pub wind_speed_ms: f64,
    pub wind_dir_deg: f64,
    pub precipitation_mm_h: f64,
    /// Cloud cover, 0 to 1.
    pub cloud: f64,
    /// 0 without a storm; 0.1 to 1 while one is on.
    pub storm: f64,
}

impl Sky {
    pub fn is_storm(&self) -> bool {
        self.storm > 0.0
    }

    /// The `description` label.
    pub fn description(&self) -> &'static str {
        if self.is_storm() {
            "storm"
        } else if self.precipitation_mm_h >= 0.1 && self.temperature_c < 1.0 {
            "snow"
        } else if self.precipitation_mm_h >= 0.1 {
            "rain"
        } else if self.humidity_pct > 93.0 && self.wind_speed_ms < 2.0 {
            "fog"
        } else if self.cloud > 0.6 {
            "cloudy"
        } else {
            "clear"
        }
    }
}

#[derive(Debug, Clone)]
struct Storm {
    start_ms: i64,
    end_ms: i64,
    peak: f64,
    pressure_drop_hpa: f64,
    wind_ms: f64,
    rain_mm_h: f64,
}

impl Storm {
    fn start(rng: &mut StdRng, start_ms: i64) -> Storm {
        let hours = rng.random_range(STORM_HOURS_MIN..STORM_HOURS_MAX);
        Storm {
            start_ms,
            end_ms: start_ms + (hours * HOUR_MS) as i64,
            peak: rng.random_range(0.6..1.0),
            pressure_drop_hpa: rng.random_range(15.0..30.0),
            wind_ms: rng.random_range(10.0..20.0),
            rain_mm_h: rng.random_range(8.0..30.0),
        }
    }

    /// 0.1 to `peak`: building up, full, dying down.
    fn intensity(&self, at_ms: i64) -> f64 {
        let since = (at_ms - self.start_ms) as f64 / STORM_RAMP_MS;
        let until = (self.end_ms - at_ms) as f64 / STORM_RAMP_MS;
        let shape = since.min(until).clamp(0.0, 1.0);
        self.peak * (0.1 + 0.9 * shape)
    }
}

/// A district's weather, stepped forward on demand.
#[derive(Debug, Clone)]
pub struct DistrictWeather {
    rng: StdRng,
    at_ms: i64,
    temperature: Drift,
    humidity: Drift,
    pressure: Drift,
    wind: Drift,
    cloud: Drift,
    wind_dir_deg: f64,
    storm: Option<Storm>,
    sky: Sky,
}

impl DistrictWeather {
    pub fn new(mut rng: StdRng, start_ms: i64) -> DistrictWeather {
        let mut weather = DistrictWeather {
            temperature: Drift::new(&mut rng, 2.0, 8.0),
            humidity: Drift::new(&mut rng, 6.0, 4.0),
            pressure: Drift::new(&mut rng, 6.0, 24.0),
            wind: Drift::new(&mut rng, 1.5, 3.0),
            cloud: Drift::new(&mut rng, 0.3, 5.0),
            wind_dir_deg: rng.random_range(0.0..360.0),
            storm: None,
            at_ms: start_ms,
            sky: calm_sky(),
            rng,
        };
        weather.sky = weather.compute_sky();
        weather
    }

    /// The weather at `ts_ms` (the last whole step at or before it). Time
    /// only moves forward: asking for an earlier time gives the current sky.
    pub fn advance_to(&mut self, ts_ms: i64) -> Sky {
        while self.at_ms + STEP_MS <= ts_ms {
            self.at_ms += STEP_MS;
            self.step();
        }
        self.sky
    }

    fn step(&mut self) {
        let rng = &mut self.rng;
        for drift in [
            &mut self.temperature,
            &mut self.humidity,
            &mut self.pressure,
            &mut self.wind,
            &mut self.cloud,
        ] {
            drift.step(rng, STEP_MS);
        }
        let turn_deg = if self.storm.is_some() { 15.0 } else { 4.0 };
        self.wind_dir_deg = (self.wind_dir_deg + turn_deg * gaussian(rng)).rem_euclid(360.0);
        if self.storm.as_ref().is_some_and(|s| self.at_ms >= s.end_ms) {
            self.storm = None;
        }
        if self.storm.is_none() && chance(rng, STORMS_PER_HOUR, STEP_MS) {
            self.storm = Some(Storm::start(rng, self.at_ms));
        }
        self.sky = self.compute_sky();
    }

    fn compute_sky(&self) -> Sky {
        let hour = daily::hour_of_day(self.at_ms);
        let seasonal_c = daily::seasonal_temperature_c(self.at_ms);
        let storm = self.storm.as_ref();
        let intensity = storm.map_or(0.0, |s| s.intensity(self.at_ms));
        let cloud = (0.45 + self.cloud.value).clamp(0.0, 1.0).max(intensity);
        let swing_c = 5.0 * (1.0 - 0.6 * cloud) * daily::temperature_swing(hour);
        let temperature_c = seasonal_c + swing_c + self.temperature.value - 3.0 * intensity;
        let showers = ((cloud - 0.75) * 6.0).max(0.0);
        let storm_rain = storm.map_or(0.0, |s| s.rain_mm_h * intensity);
        let humidity = 50.0 + 30.0 * cloud - 1.5 * swing_c + self.humidity.value + 25.0 * intensity;
        let storm_drop = storm.map_or(0.0, |s| s.pressure_drop_hpa * intensity);
        let storm_wind = storm.map_or(0.0, |s| s.wind_ms * intensity);
        Sky {
            temperature_c,
            humidity_pct: humidity.clamp(15.0, 100.0),
            pressure_hpa: 1013.0 + self.pressure.value - 6.0 * cloud - storm_drop,
            wind_speed_ms: (2.5 + self.wind.value).abs() + storm_wind,
            wind_dir_deg: self.wind_dir_deg,
            precipitation_mm_h: showers + storm_rain,
            cloud,
            storm: intensity,
        }
    }
}

/// A placeholder replaced before anyone reads it.
fn calm_sky() -> Sky {
    Sky {
        temperature_c: 10.0,
        humidity_pct: 60.0,
        pressure_hpa: 1013.0,
        wind_speed_ms: 2.0,
        wind_dir_deg: 0.0,
        precipitation_mm_h: 0.0,
        cloud: 0.5,
        storm: 0.0,
    }
}

/// A district's weather station: the sky plus its sensors' small errors.
#[derive(Debug, Clone)]
pub struct WeatherStation {
    rng: StdRng,
}

impl WeatherStation {
    pub fn new(rng: StdRng) -> WeatherStation {
        WeatherStation { rng }
    }

    /// Values in `metrics(Kind::Weather)` order, and the description.
    pub fn read(&mut self, sky: &Sky) -> (Vec<f64>, &'static str) {
        let rng = &mut self.rng;
        let values = vec![
            sky.temperature_c + 0.1 * gaussian(rng),
            (sky.humidity_pct + 0.5 * gaussian(rng)).clamp(0.0, 100.0),
            sky.pressure_hpa + 0.1 * gaussian(rng),
            (sky.wind_speed_ms + 0.2 * gaussian(rng)).max(0.0),
            sky.wind_dir_deg.round().rem_euclid(360.0),
            sky.precipitation_mm_h,
        ];
        (values, sky.description())
    }
}
