//! The smart-city simulation behind `citystream sim` and `citystream demo`:
//! a seeded city whose air, traffic, weather and building stations publish
//! readings to the city topics in the shapes of `docs/city-data.md`, and a
//! CSV replayer. The subscribers that read those topics live elsewhere
//! (crate `subscribers`).
//!
//! Pure core, I/O shell. The core takes the seed and the simulated time as
//! inputs and never touches the network or the wall clock: `city` (districts
//! and stations), `streams` (one random stream per station), `daily` (the
//! day's and year's cycles), `model/` (each kind of station, the district
//! weather, [`Simulation`] handing out readings in time order), `aqi` (US
//! EPA index), `reading` (the JSON, key, topic and priority of a reading),
//! `lamport`, `pace` (when a record is due), `csv` (an RFC 4180 reader).
//! The shell: `publisher` ([`run_publishers`]), `replay` ([`run_replay`]),
//! `outbox` (the one producer and its window of pending deliveries), with
//! counters in `stats`.

pub mod aqi;
pub mod city;
pub mod csv;
mod daily;
mod error;
mod lamport;
mod model;
mod outbox;
mod pace;
mod publisher;
pub mod reading;
mod replay;
mod stats;
mod streams;

pub use city::{CITY_TOPICS, CityConfig, Kind, Station};
pub use error::SimError;
pub use lamport::LamportClock;
pub use model::{DistrictWeather, Simulation, Sky};
pub use outbox::{TOPIC_PARTITIONS, Via};
pub use pace::{Pace, RATE_MAX_PER_S, SPEED_MAX};
pub use publisher::{
    CADENCE_MS_DEFAULT, PENDING_MAX_DEFAULT, SimConfig, reading_record, run_publishers,
};
pub use reading::{PRIORITY_HEADER, Priority, Reading};
pub use replay::{
    REPLAY_FILE_BYTES_MAX, REPLAY_TOPIC_DEFAULT, ReplayColumns, ReplayError, ReplayFile,
    parse_time_ms, run_replay,
};
pub use stats::{SimStats, SimStatsSnapshot};
