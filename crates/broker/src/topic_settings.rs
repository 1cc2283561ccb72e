//! Per-topic settings given at creation ([`TopicSettings`]) and the cleanup
//! policy ([`Cleanup`]) of decision 0017 §9: whether old records are
//! deleted by age and size, compacted to the newest record per key, or
//! both. This file owns the values, their defaults and their validation;
//! how a log applies them is `topic::log_config`, and compaction itself is
//! the log crate's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::BrokerError;

/// Tombstones live this long after their own timestamp unless the topic
/// says otherwise (Kafka's `delete.retention.ms`).
pub const TOMBSTONE_RETENTION_MS_DEFAULT: u64 = 86_400_000;
/// A compacted topic's active segment is rolled after this age unless the
/// topic says otherwise, so a quiet topic still becomes compactable.
pub const COMPACTED_SEGMENT_ROLL_MS_DEFAULT: u64 = 3_600_000;
/// Smallest segment size a topic may ask for.
pub const SEGMENT_BYTES_MIN: u64 = 1024;

/// What happens to a topic's old records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cleanup {
    /// Whole segments are deleted by age and size (retention); the default.
    #[default]
    #[serde(rename = "delete")]
    Delete,
    /// Only the newest record of each key is kept; retention does not apply.
    #[serde(rename = "compact")]
    Compact,
    /// Compacted, and old segments are also deleted by retention.
    #[serde(rename = "compact,delete")]
    CompactDelete,
}

impl Cleanup {
    pub const ALL: [Cleanup; 3] = [Cleanup::Delete, Cleanup::Compact, Cleanup::CompactDelete];

    /// Whether the newest record per key is kept (and tombstones allowed).
    pub fn compacts(self) -> bool {
        matches!(self, Cleanup::Compact | Cleanup::CompactDelete)
    }

    /// Whether retention deletes old segments.
    pub fn deletes(self) -> bool {
        matches!(self, Cleanup::Delete | Cleanup::CompactDelete)
    }

    /// The name used in files, flags and JSON: `delete`, `compact` or
    /// `compact,delete`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cleanup::Delete => "delete",
            Cleanup::Compact => "compact",
            Cleanup::CompactDelete => "compact,delete",
        }
    }
}

impl fmt::Display for Cleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown cleanup policy name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cleanup policy {0:?}: expected delete, compact or compact,delete")]
pub struct UnknownCleanup(pub String);

impl FromStr for Cleanup {
    type Err = UnknownCleanup;

    /// Also takes `delete,compact`, the same set written the other way.
    fn from_str(text: &str) -> Result<Cleanup, UnknownCleanup> {
        match text.trim() {
            "delete" => Ok(Cleanup::Delete),
            "compact" => Ok(Cleanup::Compact),
            "compact,delete" | "delete,compact" => Ok(Cleanup::CompactDelete),
            other => Err(UnknownCleanup(other.to_owned())),
        }
    }
}

/// Per-topic settings given at creation. `None` means the broker's (or,
/// for the compaction settings, the documented) default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicSettings {
    pub retention_ms: Option<u64>,
    pub retention_bytes: Option<u64>,
    pub segment_bytes: Option<u64>,
    pub cleanup: Cleanup,
    /// The newest data a compaction pass may touch is older than this
    /// (default 0; the broker's `compaction_lag_floor_ms` applies anyway).
    pub compaction_lag_ms: Option<u64>,
    /// How long a tombstone is kept, in log time after its own timestamp
    /// (default [`TOMBSTONE_RETENTION_MS_DEFAULT`]).
    pub tombstone_retention_ms: Option<u64>,
    /// Roll the active segment after this age (default: none, or
    /// [`COMPACTED_SEGMENT_ROLL_MS_DEFAULT`] on a compacted topic).
    pub segment_roll_ms: Option<u64>,
}

impl TopicSettings {
    /// The compaction lag in force (0 when unset).
    pub fn compaction_lag_ms_or_default(&self) -> u64 {
        self.compaction_lag_ms.unwrap_or(0)
    }

    /// The tombstone retention in force.
    pub fn tombstone_retention_ms_or_default(&self) -> u64 {
        self.tombstone_retention_ms
            .unwrap_or(TOMBSTONE_RETENTION_MS_DEFAULT)
    }

    /// The segment roll age of the topic itself: its setting, else the
    /// compacted default; `None` leaves the broker's log default.
    pub fn segment_roll_ms_or_default(&self) -> Option<u64> {
        match self.segment_roll_ms {
            Some(roll_ms) => Some(roll_ms),
            None if self.cleanup.compacts() => Some(COMPACTED_SEGMENT_ROLL_MS_DEFAULT),
            None => None,
        }
    }

    /// Checks every value against its documented bounds, with a message
    /// that names the setting.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let invalid = |message: String| Err(BrokerError::InvalidRequest(message));
        if self.segment_bytes.is_some_and(|b| b < SEGMENT_BYTES_MIN) {
            return invalid(format!(
                "segment_bytes must be at least {SEGMENT_BYTES_MIN}"
            ));
        }
        if self.tombstone_retention_ms == Some(0) {
            return invalid("tombstone_retention_ms must be greater than 0".to_owned());
        }
        if self.segment_roll_ms == Some(0) {
            return invalid("segment_roll_ms must be greater than 0".to_owned());
        }
        self.validate_policy_fit()
    }

    /// Settings that the cleanup policy would silently ignore are refused.
    fn validate_policy_fit(&self) -> Result<(), BrokerError> {
        let policy = self.cleanup;
        let needs = |setting: &str, what: &str| {
            Err(BrokerError::InvalidRequest(format!(
                "{setting} needs cleanup {what}; this topic's cleanup is {policy}"
            )))
        };
        if !policy.compacts() {
            if self.compaction_lag_ms.is_some() {
                return needs("compaction_lag_ms", "compact or compact,delete");
            }
            if self.tombstone_retention_ms.is_some() {
                return needs("tombstone_retention_ms", "compact or compact,delete");
            }
        }
        if !policy.deletes() {
            if self.retention_ms.is_some() {
                return needs("retention_ms", "delete or compact,delete");
            }
            if self.retention_bytes.is_some() {
                return needs("retention_bytes", "delete or compact,delete");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every policy's name parses back to it; unknown names say what is expected.
    #[test]
    fn cleanup_names_round_trip() {
        for cleanup in Cleanup::ALL {
            assert_eq!(cleanup.as_str().parse::<Cleanup>(), Ok(cleanup));
        }
        assert_eq!("delete,compact".parse(), Ok(Cleanup::CompactDelete));
        let error = "compacted".parse::<Cleanup>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown cleanup policy \"compacted\": expected delete, compact or compact,delete"
        );
    }

    /// The JSON form of a policy is its name.
    #[test]
    fn cleanup_serializes_as_its_name() {
        let json = serde_json::to_string(&Cleanup::CompactDelete).unwrap();
        assert_eq!(json, "\"compact,delete\"");
        let back: Cleanup = serde_json::from_str("\"compact\"").unwrap();
        assert_eq!(back, Cleanup::Compact);
    }

    /// Zero retentions and rolls are refused, and so are settings the
    /// policy would ignore.
    #[test]
    fn validation_names_the_setting() {
        let compact = TopicSettings {
            cleanup: Cleanup::Compact,
            ..TopicSettings::default()
        };
        let cases = [
            (
                TopicSettings {
                    tombstone_retention_ms: Some(0),
                    ..compact.clone()
                },
                "tombstone_retention_ms must be greater than 0",
            ),
            (
                TopicSettings {
                    segment_roll_ms: Some(0),
                    ..compact.clone()
                },
                "segment_roll_ms must be greater than 0",
            ),
            (
                TopicSettings {
                    tombstone_retention_ms: Some(5),
                    ..TopicSettings::default()
                },
                "tombstone_retention_ms needs cleanup compact or compact,delete",
            ),
            (
                TopicSettings {
                    retention_ms: Some(5),
                    ..compact.clone()
                },
                "retention_ms needs cleanup delete or compact,delete",
            ),
        ];
        for (settings, expected) in cases {
            let error = settings.validate().unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        compact.validate().unwrap();
    }

    /// A compacted topic rolls hourly unless it says otherwise; a delete
    /// topic keeps the broker's default.
    #[test]
    fn segment_roll_defaults() {
        let compact = TopicSettings {
            cleanup: Cleanup::CompactDelete,
            ..TopicSettings::default()
        };
        assert_eq!(compact.segment_roll_ms_or_default(), Some(3_600_000));
        let set = TopicSettings {
            segment_roll_ms: Some(5),
            ..compact
        };
        assert_eq!(set.segment_roll_ms_or_default(), Some(5));
        assert_eq!(TopicSettings::default().segment_roll_ms_or_default(), None);
        assert_eq!(
            TopicSettings::default().tombstone_retention_ms_or_default(),
            86_400_000
        );
    }
}
