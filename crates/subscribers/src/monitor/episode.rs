//! [`Episode`]: when a rule's level deserves an alert. A station's metric
//! is in an episode from the first reading at `Warning` or above until a
//! reading back at `Normal` clears it. An alert is due when an episode
//! starts and when its severity rises above the highest it reached so
//! far; a long exceedance, or one that dips from critical to warning and
//! back, is not re-alerted reading after reading. Pure.

/// How far a value is outside what a rule allows, in rising order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Level {
    #[default]
    Normal,
    Warning,
    Critical,
}

impl Level {
    /// The alert's `severity`: `warning` or `critical`.
    pub fn severity(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Warning => "warning",
            Level::Critical => "critical",
        }
    }

    /// `Critical` above `critical`, else `Warning` above `warning`.
    pub fn of(value: f64, warning: Option<f64>, critical: Option<f64>) -> Level {
        if critical.is_some_and(|limit| value > limit) {
            Level::Critical
        } else if warning.is_some_and(|limit| value > limit) {
            Level::Warning
        } else {
            Level::Normal
        }
    }
}

/// The highest level of the current episode (`Normal`: none running).
#[derive(Debug, Clone, Copy, Default)]
pub struct Episode {
    peak: Level,
}

impl Episode {
    /// Takes the level of the next reading; returns the severity to alert
    /// with, if an alert is due.
    pub fn observe(&mut self, level: Level) -> Option<Level> {
        if level == Level::Normal {
            self.peak = Level::Normal;
            return None;
        }
        if level <= self.peak {
            return None;
        }
        self.peak = level;
        Some(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    fn alerts(levels: &[Level]) -> Vec<Option<Level>> {
        let mut episode = Episode::default();
        levels.iter().map(|level| episode.observe(*level)).collect()
    }

    /// Entering alerts once; staying, or dipping and coming back, does not.
    #[test]
    fn alerts_on_entry_and_on_a_new_peak_only() {
        let seen = alerts(&[
            Normal, Warning, Warning, Critical, Warning, Critical, Normal,
        ]);
        let due = [None, Some(Warning), None, Some(Critical), None, None, None];
        assert_eq!(seen, due);
    }

    /// After it clears, the next exceedance is a new episode.
    #[test]
    fn a_cleared_episode_alerts_again() {
        let seen = alerts(&[Critical, Critical, Normal, Warning]);
        assert_eq!(seen, [Some(Critical), None, None, Some(Warning)]);
    }

    /// Limits are exclusive and either may be missing.
    #[test]
    fn levels_from_limits() {
        assert_eq!(Level::of(35.4, Some(35.4), Some(55.4)), Normal);
        assert_eq!(Level::of(35.5, Some(35.4), Some(55.4)), Warning);
        assert_eq!(Level::of(55.5, Some(35.4), Some(55.4)), Critical);
        assert_eq!(Level::of(25.0, None, Some(20.0)), Critical);
        assert_eq!(Level::of(15.0, None, Some(20.0)), Normal);
    }
}
