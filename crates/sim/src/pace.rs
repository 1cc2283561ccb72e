//! When each record is due in real time. The sequence of records does not
//! depend on the pace, only when they go out: at `Speed(x)` a record
//! stamped `t` goes `(t - origin) / x` after the start (x simulated
//! seconds per real second); at `Rate(n)` the i-th goes `i / n` seconds
//! after the start, whatever its stamp; `Unpaced` sends as fast as the
//! producer accepts.

use std::time::Duration;

use tokio::time::Instant;

/// Most records per second a `Rate` may ask for.
pub const RATE_MAX_PER_S: u32 = 10_000_000;
/// Fastest simulated clock: a simulated year per real second.
pub const SPEED_MAX: f64 = 365.0 * 86_400.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Simulated (or recorded) seconds per real second.
    Speed(f64),
    /// Records per second in total.
    Rate(u32),
    Unpaced,
}

impl Pace {
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Pace::Speed(speed) if !(speed > 0.0 && speed <= SPEED_MAX) => Err(format!(
                "speed must be above 0 and at most {SPEED_MAX} (simulated seconds per real second), not {speed}"
            )),
            Pace::Rate(rate) if !(1..=RATE_MAX_PER_S).contains(&rate) => Err(format!(
                "rate must be 1 to {RATE_MAX_PER_S} records per second, not {rate}"
            )),
            _ => Ok(()),
        }
    }
}

/// A pace started at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    pace: Pace,
    started: Instant,
    origin_ms: i64,
}

impl Pacer {
    /// Starts now; `origin_ms` is the stamp due at once under `Speed`.
    pub fn start(pace: Pace, origin_ms: i64) -> Pacer {
        Pacer {
            pace,
            started: Instant::now(),
            origin_ms,
        }
    }

    /// When record number `index` (from 0), stamped `ts_ms`, is due.
    pub fn due(&self, index: u64, ts_ms: i64) -> Instant {
        self.started + self.offset(index, ts_ms)
    }

    fn offset(&self, index: u64, ts_ms: i64) -> Duration {
        let seconds = match self.pace {
            Pace::Speed(speed) => (ts_ms - self.origin_ms).max(0) as f64 / 1000.0 / speed,
            Pace::Rate(rate) => index as f64 / f64::from(rate),
            Pace::Unpaced => 0.0,
        };
        // Far beyond any run; keeps from_secs_f64 away from overflow.
        Duration::from_secs_f64(seconds.min(1e12))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speed scales the stamps, rate counts records, unpaced is always due.
    #[test]
    fn offsets_follow_the_pace() {
        let speed = Pacer::start(Pace::Speed(60.0), 1_000);
        assert_eq!(speed.offset(99, 1_000), Duration::ZERO);
        assert_eq!(speed.offset(0, 61_000), Duration::from_secs(1));
        assert_eq!(speed.offset(0, 0), Duration::ZERO);
        let rate = Pacer::start(Pace::Rate(50_000), 0);
        assert_eq!(rate.offset(50_000, 123), Duration::from_secs(1));
        assert_eq!(rate.offset(25, 0), Duration::from_micros(500));
        assert_eq!(
            Pacer::start(Pace::Unpaced, 0).offset(1_000, 9_999),
            Duration::ZERO
        );
    }

    /// Zero, negative and absurd paces are refused.
    #[test]
    fn bad_paces_are_refused() {
        assert!(Pace::Speed(0.0).validate().is_err());
        assert!(Pace::Speed(-1.0).validate().is_err());
        assert!(Pace::Speed(f64::NAN).validate().is_err());
        assert!(Pace::Speed(f64::INFINITY).validate().is_err());
        assert!(Pace::Rate(0).validate().is_err());
        assert!(Pace::Speed(60.0).validate().is_ok());
        assert!(Pace::Rate(50_000).validate().is_ok());
    }
}
