//! An air-quality station. Traffic drives NO2, CO and part of the fine
//! dust, so they rise in the rush hours (more at roadside stations);
//! ozone forms in afternoon sunlight, more on warm days, and is eaten by
//! fresh NO2; wind dilutes and rain washes dust out. Rare pollution
//! episodes (a fire, works nearby) raise PM for one to four hours and are
//! what pushes the AQI above 150.

use rand::Rng as _;
use rand::rngs::StdRng;

use super::process::{Drift, chance, gaussian};
use super::weather::Sky;
use crate::daily;

const EPISODES_PER_HOUR: f64 = 1.0 / 96.0;
const HOUR_MS: f64 = 3_600_000.0;

#[derive(Debug, Clone)]
struct Episode {
    end_ms: i64,
    pm25_ug_m3: f64,
}

#[derive(Debug, Clone)]
pub struct AirStation {
    rng: StdRng,
    /// How close to traffic the station is: 0.5 (a park) to 1.5 (a crossing).
    traffic_exposure: f64,
    pm25_background_ug_m3: f64,
    pm_drift: Drift,
    no2_drift: Drift,
    o3_drift: Drift,
    episode: Option<Episode>,
    last_ms: Option<i64>,
}

impl AirStation {
    pub fn new(mut rng: StdRng) -> AirStation {
        AirStation {
            traffic_exposure: rng.random_range(0.5..1.5),
            pm25_background_ug_m3: rng.random_range(4.0..9.0),
            pm_drift: Drift::new(&mut rng, 3.0, 3.0),
            no2_drift: Drift::new(&mut rng, 4.0, 1.0),
            o3_drift: Drift::new(&mut rng, 5.0, 2.0),
            episode: None,
            last_ms: None,
            rng,
        }
    }

    /// Concentrations in `Pollutant::ALL` order (pm25, pm10, o3, no2, co).
    pub fn read(&mut self, ts_ms: i64, sky: &Sky) -> [f64; 5] {
        let elapsed_ms = ts_ms - self.last_ms.unwrap_or(ts_ms);
        self.last_ms = Some(ts_ms);
        self.update_episode(ts_ms, elapsed_ms);
        let rng = &mut self.rng;
        let pm_noise = self.pm_drift.step(rng, elapsed_ms);
        let no2_noise = self.no2_drift.step(rng, elapsed_ms);
        let o3_noise = self.o3_drift.step(rng, elapsed_ms);
        let hour = daily::hour_of_day(ts_ms);
        let traffic = self.traffic_exposure * daily::traffic_load(hour);
        let dilution = 1.0 + sky.wind_speed_ms / 8.0;
        let washout = 1.0 - 0.5 * sky.storm - 0.03 * sky.precipitation_mm_h.min(10.0);
        let episode = self.episode.as_ref().map_or(0.0, |e| e.pm25_ug_m3);
        let pm25 = (self.pm25_background_ug_m3 + 6.0 * traffic + pm_noise) * washout + episode;
        let pm25 = pm25.max(1.0) + 0.3 * gaussian(rng);
        let pm10 = 1.5 * pm25 + 4.0 + 0.6 * sky.wind_speed_ms + gaussian(rng);
        let no2_traffic_ppb = 45.0 * traffic / dilution;
        let no2 = 8.0 + no2_traffic_ppb + no2_noise;
        let sunlight = daily::ozone_sunlight(hour);
        let warmth_c = (sky.temperature_c - 12.0).max(0.0);
        let o3 = 18.0 + 3.2 * warmth_c * sunlight * (1.0 - 0.7 * sky.cloud)
            - 0.25 * no2_traffic_ppb
            + o3_noise;
        let co = 0.2 + 0.8 * traffic / dilution + 0.03 * gaussian(rng);
        [
            pm25.max(0.5),
            pm10.max(1.0),
            o3.max(2.0),
            no2.max(1.0),
            co.max(0.05),
        ]
    }

    fn update_episode(&mut self, ts_ms: i64, elapsed_ms: i64) {
        if self.episode.as_ref().is_some_and(|e| ts_ms >= e.end_ms) {
            self.episode = None;
        }
        if self.episode.is_none() && chance(&mut self.rng, EPISODES_PER_HOUR, elapsed_ms) {
            let hours = self.rng.random_range(1.0..4.0);
            self.episode = Some(Episode {
                end_ms: ts_ms + (hours * HOUR_MS) as i64,
                pm25_ug_m3: self.rng.random_range(30.0..120.0),
            });
        }
    }
}
