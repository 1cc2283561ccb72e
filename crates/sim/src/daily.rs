//! Cycles of the simulated day and year: time of day, rush hours, the
//! afternoon ozone window, the seasons. Pure functions of the simulated
//! time (UTC: the simulated city lives on UTC, so a demo started at 08:00
//! UTC starts in the morning rush).

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: f64 = 3_600_000.0;

/// Hours since midnight, in [0, 24).
pub fn hour_of_day(ts_ms: i64) -> f64 {
    ts_ms.rem_euclid(DAY_MS) as f64 / HOUR_MS
}

/// Days since 1 January, in [0, 366).
pub fn day_of_year(ts_ms: i64) -> f64 {
    // Close enough for seasons: years of 365.2425 days from the epoch.
    const YEAR_MS: f64 = 365.2425 * 86_400_000.0;
    (ts_ms as f64).rem_euclid(YEAR_MS) / DAY_MS as f64
}

/// 0 to 1: 1 inside the rush hours (07:00–09:00 and 16:00–19:00), with
/// half-hour ramps on both sides, 0 elsewhere.
pub fn rush(hour: f64) -> f64 {
    plateau(hour, 7.0, 9.0, 0.5).max(plateau(hour, 16.0, 19.0, 0.5))
}

/// 0 to 1: how busy the streets are. About 0.1 at night, 0.5 during the
/// day, 0.9 to 1 in the rush hours.
pub fn traffic_load(hour: f64) -> f64 {
    let daytime = plateau(hour, 7.0, 21.0, 1.5);
    0.1 + 0.4 * daytime + 0.5 * rush(hour)
}

/// 0 to 1: the sunlight that drives ozone formation; 0 before 08:00 and
/// after 20:00, highest at 14:00 (ozone peaks mid-afternoon).
pub fn ozone_sunlight(hour: f64) -> f64 {
    (std::f64::consts::PI * (hour - 8.0) / 12.0).sin().max(0.0)
}

/// -1 to 1: the daily temperature swing, highest at 15:00, lowest at 03:00.
pub fn temperature_swing(hour: f64) -> f64 {
    (2.0 * std::f64::consts::PI * (hour - 15.0) / 24.0).cos()
}

/// The seasonal mean temperature (C): about 2 in mid-January, 20 in
/// mid-July (a temperate northern city).
pub fn seasonal_temperature_c(ts_ms: i64) -> f64 {
    let phase = 2.0 * std::f64::consts::PI * (day_of_year(ts_ms) - 15.0) / 365.2425;
    11.0 - 9.0 * phase.cos()
}

/// 1 on [start, end], 0 outside [start - ramp, end + ramp], smooth between.
fn plateau(hour: f64, start: f64, end: f64, ramp: f64) -> f64 {
    let rising = smoothstep((hour - (start - ramp)) / ramp);
    let falling = smoothstep(((end + ramp) - hour) / ramp);
    rising.min(falling)
}

/// 0 below 0, 1 above 1, a smooth S between.
fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rush hours are full inside 7–9 and 16–19 and absent at night
    /// and at noon; traffic is heaviest then.
    #[test]
    fn rush_hours_are_where_the_brief_puts_them() {
        for hour in [7.0, 8.0, 9.0, 16.0, 17.5, 19.0] {
            assert_eq!(rush(hour), 1.0, "{hour}");
        }
        for hour in [3.0, 12.0, 13.0, 22.0] {
            assert_eq!(rush(hour), 0.0, "{hour}");
        }
        assert!(traffic_load(8.0) > 0.9 && traffic_load(3.0) < 0.15);
    }

    /// Ozone sunlight peaks at 14:00 and is zero at night; temperature
    /// peaks at 15:00.
    #[test]
    fn afternoon_peaks() {
        assert!((ozone_sunlight(14.0) - 1.0).abs() < 1e-9);
        assert_eq!(ozone_sunlight(2.0), 0.0);
        assert!((temperature_swing(15.0) - 1.0).abs() < 1e-9);
        assert!((temperature_swing(3.0) + 1.0).abs() < 1e-9);
    }

    /// Hours wrap at midnight, also before the epoch.
    #[test]
    fn hour_of_day_wraps() {
        assert_eq!(hour_of_day(0), 0.0);
        assert_eq!(hour_of_day(DAY_MS + 3_600_000 * 5), 5.0);
        assert_eq!(hour_of_day(-3_600_000), 23.0);
    }
}
