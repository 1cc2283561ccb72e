//! An intersection's traffic counter. Volume follows the day's load
//! (quiet at night, heavy in the rush hours); congestion grows with the
//! load and cuts the mean speed. Incidents (a collision, a breakdown,
//! roadworks) start at random, more often in the rush hours, last 10 to 60
//! simulated minutes, raise congestion and cut speed further. Storms thin
//! the traffic and slow it down.

use rand::Rng as _;
use rand::rngs::StdRng;

use super::process::{Drift, chance, gaussian};
use super::weather::Sky;
use crate::daily;

const INCIDENTS_PER_HOUR: f64 = 1.0 / 16.0;
const INCIDENT_MINUTES_MIN: f64 = 10.0;
const INCIDENT_MINUTES_MAX: f64 = 60.0;
const MINUTE_MS: f64 = 60_000.0;

#[derive(Debug, Clone)]
struct Incident {
    label: &'static str,
    end_ms: i64,
    congestion_added: f64,
    speed_factor: f64,
}

impl Incident {
    fn start(rng: &mut StdRng, ts_ms: i64) -> Incident {
        let label = match rng.random_range(0..10) {
            0..=3 => "collision",
            4..=7 => "breakdown",
            _ => "roadworks",
        };
        let minutes = rng.random_range(INCIDENT_MINUTES_MIN..=INCIDENT_MINUTES_MAX);
        Incident {
            label,
            end_ms: ts_ms + (minutes * MINUTE_MS) as i64,
            congestion_added: rng.random_range(0.3..0.5),
            speed_factor: rng.random_range(0.4..0.7),
        }
    }
}

/// What one traffic reading reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficSample {
    pub vehicles_per_min: f64,
    pub mean_speed_kmh: f64,
    pub congestion: f64,
    /// The active incident's label, if any.
    pub incident: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct TrafficStation {
    rng: StdRng,
    capacity_per_min: f64,
    free_speed_kmh: f64,
    load_drift: Drift,
    incident: Option<Incident>,
    last_ms: Option<i64>,
}

impl TrafficStation {
    pub fn new(mut rng: StdRng) -> TrafficStation {
        TrafficStation {
            capacity_per_min: rng.random_range(30.0..60.0),
            free_speed_kmh: rng.random_range(40.0..60.0),
            load_drift: Drift::new(&mut rng, 0.05, 0.5),
            incident: None,
            last_ms: None,
            rng,
        }
    }

    pub fn read(&mut self, ts_ms: i64, sky: &Sky) -> TrafficSample {
        let elapsed_ms = ts_ms - self.last_ms.unwrap_or(ts_ms);
        self.last_ms = Some(ts_ms);
        let hour = daily::hour_of_day(ts_ms);
        self.update_incident(ts_ms, elapsed_ms, daily::rush(hour));
        let rng = &mut self.rng;
        let weather_factor = 1.0 - 0.15 * sky.storm;
        let load = ((daily::traffic_load(hour) + self.load_drift.step(rng, elapsed_ms))
            * weather_factor)
            .clamp(0.02, 1.0);
        let incident = self.incident.as_ref();
        let congestion_added = incident.map_or(0.0, |i| i.congestion_added);
        // A full rush hour is heavy (0.8); only an incident on top jams it.
        let congestion_from_load = 0.8 * ((load - 0.3) / 0.7).max(0.0).powf(1.5);
        let congestion = (congestion_from_load + congestion_added).clamp(0.0, 1.0);
        let incident_speed = incident.map_or(1.0, |i| i.speed_factor);
        let storm_speed = 1.0 - 0.2 * sky.storm;
        let speed = self.free_speed_kmh * (1.0 - 0.75 * congestion) * incident_speed * storm_speed;
        let flow = if incident.is_some() { 0.7 } else { 1.0 };
        let vehicles = self.capacity_per_min * load * flow * (1.0 + 0.05 * gaussian(rng));
        TrafficSample {
            vehicles_per_min: vehicles.max(0.0),
            mean_speed_kmh: (speed + gaussian(rng)).max(3.0),
            congestion,
            incident: incident.map(|i| i.label),
        }
    }

    fn update_incident(&mut self, ts_ms: i64, elapsed_ms: i64, rush: f64) {
        if self.incident.as_ref().is_some_and(|i| ts_ms >= i.end_ms) {
            self.incident = None;
        }
        let rate_per_hour = INCIDENTS_PER_HOUR * (1.0 + rush);
        if self.incident.is_none() && chance(&mut self.rng, rate_per_hour, elapsed_ms) {
            self.incident = Some(Incident::start(&mut self.rng, ts_ms));
        }
    }
}

/// The `level` label of a (published) congestion.
pub fn level(congestion: f64) -> &'static str {
    match congestion {
        c if c < 0.3 => "free",
        c if c < 0.6 => "moderate",
        c if c < 0.85 => "heavy",
        _ => "jammed",
    }
}
