//! [`Role`]: the five subscribers, with what the contract
//! (`docs/city-data.md`) gives each: its consumer group, input topics and
//! output topic (none for the archiver, which writes files).

use std::fmt;
use std::str::FromStr;

use crate::contract::{
    ADVISORIES_TOPIC, AIR_TOPIC, ALERTS_TOPIC, ANALYTICS_TOPIC, BUILDINGS_TOPIC, LATEST_TOPIC,
    TRAFFIC_TOPIC, WEATHER_TOPIC,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Environmental monitor: air + weather → `city.alerts`.
    Monitor,
    /// Traffic manager: traffic → `city.advisories`.
    Traffic,
    /// Public interface: every reading → `city.latest`.
    Public,
    /// Analytics: air + weather + traffic → `city.analytics`.
    Analytics,
    /// Archiver: every reading → `<archive_dir>/<station>.csv`.
    Archiver,
}

const ALL_INPUTS: &[&str] = &[AIR_TOPIC, TRAFFIC_TOPIC, WEATHER_TOPIC, BUILDINGS_TOPIC];

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Monitor,
        Role::Traffic,
        Role::Public,
        Role::Analytics,
        Role::Archiver,
    ];

    /// `monitor`, `traffic`, `public`, `analytics`, `archiver`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Monitor => "monitor",
            Role::Traffic => "traffic",
            Role::Public => "public",
            Role::Analytics => "analytics",
            Role::Archiver => "archiver",
        }
    }

    /// The role's consumer group.
    pub fn group(self) -> &'static str {
        match self {
            Role::Monitor => "city-monitor",
            Role::Traffic => "city-traffic",
            Role::Public => "city-public",
            Role::Analytics => "city-analytics",
            Role::Archiver => "city-archiver",
        }
    }

    pub fn inputs(self) -> &'static [&'static str] {
        match self {
            Role::Monitor => &[AIR_TOPIC, WEATHER_TOPIC],
            Role::Traffic => &[TRAFFIC_TOPIC],
            Role::Public | Role::Archiver => ALL_INPUTS,
            Role::Analytics => &[AIR_TOPIC, WEATHER_TOPIC, TRAFFIC_TOPIC],
        }
    }

    /// The output topic; `None` for the archiver.
    pub fn output(self) -> Option<&'static str> {
        match self {
            Role::Monitor => Some(ALERTS_TOPIC),
            Role::Traffic => Some(ADVISORIES_TOPIC),
            Role::Public => Some(LATEST_TOPIC),
            Role::Analytics => Some(ANALYTICS_TOPIC),
            Role::Archiver => None,
        }
    }

    /// Whether the role keeps windows or episodes that a restart must
    /// rebuild by replaying readings before its committed offsets.
    pub fn keeps_state(self) -> bool {
        matches!(self, Role::Monitor | Role::Traffic | Role::Analytics)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(name: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|role| role.name()).collect();
                format!("unknown subscriber {name:?} (one of {})", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names parse back; groups follow the contract.
    #[test]
    fn names_and_groups() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
            assert!(role.group().starts_with("city-"));
        }
        assert_eq!(Role::Monitor.group(), "city-monitor");
        assert!("janitor".parse::<Role>().is_err());
    }
}
