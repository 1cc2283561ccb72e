//! The city model: [`Simulation`] owns every station's model, each
//! district's weather and the schedule of readings, and hands out the
//! readings one at a time in simulated-time order. It is pure: time is an
//! input (the start and the cadence), randomness comes from the seed, and
//! nothing here touches the network or the wall clock.
//!
//! Determinism: a station's readings depend only on the seed, the start,
//! the cadence and its own id (its random stream, its first reading's
//! offset within the cadence) plus its district's weather, which depends
//! only on the seed, the start and the district. Adding a station or a
//! district changes no other station's readings; only the Lamport
//! counters, which count every reading of the publisher, shift.

mod air;
mod buildings;
mod process;
mod traffic;
mod weather;

#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::Rng as _;

use crate::aqi::{Aqi, Pollutant};
use crate::city::{CityConfig, DISTRICT_NAMES, Kind, Station, stations};
use crate::lamport::LamportClock;
use crate::reading::Reading;
use crate::streams::stream;
pub use weather::{DistrictWeather, Sky};

/// The behaviour of one station.
#[derive(Debug, Clone)]
enum Model {
    Air(air::AirStation),
    Traffic(traffic::TrafficStation),
    Weather(weather::WeatherStation),
    Buildings(buildings::BuildingStation),
}

#[derive(Debug, Clone)]
struct StationState {
    station: Station,
    model: Model,
}

/// The whole city, producing readings in time order.
#[derive(Debug, Clone)]
pub struct Simulation {
    cadence_ms: i64,
    stations: Vec<StationState>,
    districts: Vec<DistrictWeather>,
    /// When each station reads next: (time, index in `stations`).
    due: BinaryHeap<Reverse<(i64, usize)>>,
    lamport: LamportClock,
}

impl Simulation {
    /// A city whose stations each read once every `cadence_ms` of
    /// simulated time from `start_ms` on (each at its own offset within
    /// the first cadence, so readings spread evenly).
    pub fn new(city: &CityConfig, start_ms: i64, cadence_ms: i64) -> Simulation {
        assert!(cadence_ms > 0, "the cadence must be positive");
        city.validate().expect("a validated city configuration");
        let districts = DISTRICT_NAMES[..city.districts]
            .iter()
            .map(|name| {
                DistrictWeather::new(stream(city.seed, &format!("weather:{name}")), start_ms)
            })
            .collect();
        let mut due = BinaryHeap::new();
        let mut states = Vec::new();
        for (index, station) in stations(city).into_iter().enumerate() {
            let mut rng = stream(city.seed, &station.id);
            due.push(Reverse((start_ms + rng.random_range(0..cadence_ms), index)));
            let model = match station.kind {
                Kind::Air => Model::Air(air::AirStation::new(rng)),
                Kind::Traffic => Model::Traffic(traffic::TrafficStation::new(rng)),
                Kind::Weather => Model::Weather(weather::WeatherStation::new(rng)),
                Kind::Buildings => Model::Buildings(buildings::BuildingStation::new(rng)),
            };
            states.push(StationState { station, model });
        }
        Simulation {
            cadence_ms,
            stations: states,
            districts,
            due,
            lamport: LamportClock::default(),
        }
    }

    /// Every station, by district, kind and number.
    pub fn stations(&self) -> impl Iterator<Item = &Station> {
        self.stations.iter().map(|state| &state.station)
    }

    /// The simulated time of the next reading.
    pub fn next_ts_ms(&self) -> i64 {
        let Reverse((ts_ms, _)) = self.due.peek().expect("a city has stations");
        *ts_ms
    }

    /// The next reading in time order (ties: in station order), with the
    /// next Lamport counter.
    pub fn next_reading(&mut self) -> Reading {
        let Reverse((ts_ms, index)) = self.due.pop().expect("a city has stations");
        self.due.push(Reverse((ts_ms + self.cadence_ms, index)));
        let state = &mut self.stations[index];
        let sky = self.districts[state.station.district_index].advance_to(ts_ms);
        let mut reading = read(state, ts_ms, &sky);
        reading.lamport = self.lamport.tick();
        reading
    }
}

fn read(state: &mut StationState, ts_ms: i64, sky: &Sky) -> Reading {
    let station = &state.station;
    let new = |values| {
        Reading::new(
            station.id.clone(),
            station.district,
            station.kind,
            ts_ms,
            values,
        )
    };
    match &mut state.model {
        Model::Air(model) => {
            let [pm25, pm10, o3, no2, co] = model.read(ts_ms, sky);
            let mut reading = new(vec![pm25, pm10, no2, o3, co, 0.0]);
            // The index of the published (rounded) values, so consumers can recompute it.
            let published = Pollutant::ALL.map(|p| reading.value(p.name()).expect("an air value"));
            let aqi = Aqi::of(published);
            reading.set_value("aqi", f64::from(aqi.index));
            reading.labels = vec![
                ("category", aqi.category()),
                ("dominant", aqi.dominant.name()),
            ];
            reading
        }
        Model::Traffic(model) => {
            let sample = model.read(ts_ms, sky);
            let values = vec![
                sample.vehicles_per_min,
                sample.mean_speed_kmh,
                sample.congestion,
            ];
            let mut reading = new(values);
            let congestion = reading.value("congestion").expect("a traffic value");
            reading.labels.push(("level", traffic::level(congestion)));
            if let Some(incident) = sample.incident {
                reading.labels.push(("incident", incident));
            }
            reading
        }
        Model::Weather(model) => {
            let (values, description) = model.read(sky);
            let mut reading = new(values);
            reading.labels.push(("description", description));
            reading
        }
        Model::Buildings(model) => new(model.read(ts_ms, sky)),
    }
}
