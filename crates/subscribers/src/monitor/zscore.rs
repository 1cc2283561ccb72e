//! Rolling z-scores: how many standard deviations a value lies from the
//! mean of the values before it ([`RollingWindow`] keeps the last N of
//! one station's metric). A value is scored against the window before it
//! joins it, so a spike is measured against the calm it interrupts; it
//! then joins the window like any other value. Pure.

use std::collections::VecDeque;

use crate::monitor::episode::Level;

#[derive(Debug, Clone, PartialEq)]
pub struct ZScoreConfig {
    /// Values a window keeps (the last N readings).
    pub window: usize,
    /// Values the window must hold before a score is given.
    pub min_readings: usize,
    /// |z| above this (exclusive): warning.
    pub warning_above: f64,
    /// |z| above this (exclusive): critical.
    pub critical_above: f64,
}

impl Default for ZScoreConfig {
    fn default() -> Self {
        ZScoreConfig {
            window: 30,
            min_readings: 10,
            warning_above: 3.0,
            critical_above: 6.0,
        }
    }
}

impl ZScoreConfig {
    pub fn level(&self, score: &ZScore) -> Level {
        Level::of(
            score.z.abs(),
            Some(self.warning_above),
            Some(self.critical_above),
        )
    }
}

/// A value's score against the window before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZScore {
    pub z: f64,
    pub mean: f64,
    pub std_dev: f64,
    /// Values it was scored against.
    pub count: usize,
}

/// The last `capacity` values of one metric.
#[derive(Debug, Clone)]
pub struct RollingWindow {
    values: VecDeque<f64>,
    capacity: usize,
}

impl RollingWindow {
    pub fn new(capacity: usize) -> RollingWindow {
        assert!(capacity >= 2, "a window needs two values for a deviation");
        RollingWindow {
            values: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Scores `value` against the window (none with fewer than
    /// `min_readings` values, or when they do not vary), then adds it.
    pub fn score_then_push(&mut self, value: f64, min_readings: usize) -> Option<ZScore> {
        let score = self.score(value, min_readings.max(2));
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
        score
    }

    fn score(&self, value: f64, min_readings: usize) -> Option<ZScore> {
        let count = self.values.len();
        if count < min_readings {
            return None;
        }
        let mean = self.values.iter().sum::<f64>() / count as f64;
        let squares: f64 = self.values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let std_dev = (squares / (count - 1) as f64).sqrt();
        // A flat window (a sensor stuck on one value) has no scale to
        // measure against: every change would be infinitely unusual.
        if std_dev <= f64::EPSILON * mean.abs().max(1.0) {
            return None;
        }
        Some(ZScore {
            z: (value - mean) / std_dev,
            mean,
            std_dev,
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic noise source in [-1, 1).
    fn noise(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed % 2_000_000) as f64 / 1_000_000.0 - 1.0
    }

    /// Noise around a level is never flagged; a spike through it is, and
    /// the calm after it is not.
    #[test]
    fn flags_a_spike_and_not_noise() {
        let config = ZScoreConfig::default();
        let mut window = RollingWindow::new(config.window);
        let mut seed = 42;
        for _ in 0..200 {
            let score = window.score_then_push(20.0 + noise(&mut seed), config.min_readings);
            if let Some(score) = score {
                assert_eq!(config.level(&score), Level::Normal, "{score:?}");
            }
        }
        let spike = window.score_then_push(35.0, config.min_readings).unwrap();
        assert!(spike.z > 6.0, "{spike:?}");
        assert_eq!(config.level(&spike), Level::Critical);
        let after = window.score_then_push(20.0, config.min_readings).unwrap();
        assert_eq!(config.level(&after), Level::Normal, "{after:?}");
    }

    /// No score before `min_readings` values, nor over a flat window.
    #[test]
    fn no_score_without_enough_varied_values() {
        let mut window = RollingWindow::new(30);
        for i in 0..10 {
            let value = if i % 2 == 0 { 1.0 } else { 2.0 };
            assert_eq!(window.score_then_push(value, 10), None);
        }
        assert!(window.score_then_push(100.0, 10).is_some());
        let mut flat = RollingWindow::new(30);
        for _ in 0..20 {
            assert_eq!(flat.score_then_push(5.0, 10), None);
        }
        assert_eq!(flat.score_then_push(50.0, 10), None);
    }

    /// The window forgets values older than its capacity.
    #[test]
    fn the_window_rolls() {
        let mut window = RollingWindow::new(3);
        for value in [100.0, 1.0, 2.0, 3.0] {
            window.score_then_push(value, 2);
        }
        let score = window.score_then_push(2.0, 2).unwrap();
        assert_eq!((score.mean, score.count), (2.0, 3));
    }
}
