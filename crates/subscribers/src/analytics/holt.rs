//! [`Holt`]: Holt's linear trend method (double exponential smoothing)
//! over a series observed at integer steps (window indexes), and a
//! forecast `h` steps ahead with a prediction interval.
//!
//! * Start: the first value sets the level (trend 0); the second sets the
//!   level to itself and the trend to the slope between the two, so a
//!   linear series is followed exactly from then on.
//! * Update at a step `k` after the last (k > 1 when windows were empty):
//!   prediction `p = level + k·trend`; `level' = α·x + (1−α)·p`;
//!   `trend' = β·(level' − level)/k + (1−β)·trend`.
//! * Error scale: the RMSE of the one-step-ahead errors `x − p` seen so far
//!   (before any, the caller's fallback, e.g. the spread within a window).
//! * Interval: `value ± z·RMSE·sqrt(1 + Σ_{j=1}^{h−1} α²(1 + jβ)²)`, the
//!   h-step variance of the additive-trend model (Hyndman & Athanasopoulos,
//!   *Forecasting: Principles and Practice*, ETS(A,A,N)), so it widens
//!   with the horizon.
//!
//! Pure.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, Copy)]
struct Smoothed {
    level: f64,
    trend: f64,
    step: i64,
    /// Whether the trend has been set from two values.
    trend_known: bool,
}

#[derive(Debug, Clone)]
pub struct Holt {
    alpha: f64,
    beta: f64,
    smoothed: Option<Smoothed>,
    squared_errors: f64,
    errors: u64,
}

impl Holt {
    pub fn new(alpha: f64, beta: f64) -> Holt {
        assert!(alpha > 0.0 && alpha <= 1.0, "alpha in (0, 1]");
        assert!((0.0..=1.0).contains(&beta), "beta in [0, 1]");
        Holt {
            alpha,
            beta,
            smoothed: None,
            squared_errors: 0.0,
            errors: 0,
        }
    }

    /// Takes the value at `step` (steps only grow).
    pub fn observe(&mut self, step: i64, value: f64) {
        let Some(last) = &mut self.smoothed else {
            self.smoothed = Some(Smoothed {
                level: value,
                trend: 0.0,
                step,
                trend_known: false,
            });
            return;
        };
        assert!(step > last.step, "Holt steps only grow");
        let k = (step - last.step) as f64;
        if !last.trend_known {
            last.trend = (value - last.level) / k;
            last.level = value;
        } else {
            let predicted = last.level + k * last.trend;
            let error = value - predicted;
            self.squared_errors += error * error;
            self.errors += 1;
            let level = self.alpha * value + (1.0 - self.alpha) * predicted;
            last.trend = self.beta * (level - last.level) / k + (1.0 - self.beta) * last.trend;
            last.level = level;
        }
        last.trend_known = true;
        last.step = step;
    }

    /// The RMSE of the one-step-ahead errors, once there is one.
    pub fn rmse(&self) -> Option<f64> {
        (self.errors > 0).then(|| (self.squared_errors / self.errors as f64).sqrt())
    }

    /// The value `h` (≥ 1) steps after the last observation, with an
    /// interval of `z` standard errors (`fallback_rmse` before any error).
    pub fn forecast(&self, h: u32, z: f64, fallback_rmse: f64) -> Option<Forecast> {
        assert!(h >= 1, "a forecast looks ahead");
        let smoothed = self.smoothed?;
        let value = smoothed.level + f64::from(h) * smoothed.trend;
        let rmse = self.rmse().unwrap_or(fallback_rmse);
        let widening: f64 = (1..h)
            .map(|j| {
                let weight = self.alpha * (1.0 + f64::from(j) * self.beta);
                weight * weight
            })
            .sum();
        let half_width = z * rmse * (1.0 + widening).sqrt();
        Some(Forecast {
            value,
            low: value - half_width,
            high: value + half_width,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise source, uniform in [-1, 1).
    fn noise(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed % 2_000_000) as f64 / 1_000_000.0 - 1.0
    }

    /// On a linear series the forecast is exact at every horizon and the
    /// one-step errors are zero, also across a gap of empty windows.
    #[test]
    fn a_linear_series_is_forecast_exactly() {
        let line = |step: i64| 3.0 + 0.5 * step as f64;
        let mut holt = Holt::new(0.5, 0.3);
        for step in (0..20).chain(23..30) {
            holt.observe(step, line(step));
        }
        for h in [1, 5, 12] {
            let forecast = holt.forecast(h, 1.96, 0.0).unwrap();
            assert!(
                (forecast.value - line(29 + i64::from(h))).abs() < 1e-9,
                "{forecast:?}"
            );
            assert_eq!(
                (forecast.low, forecast.high),
                (forecast.value, forecast.value)
            );
        }
        assert_eq!(holt.rmse(), Some(0.0));
    }

    /// On a noisy line the interval holds the true (noise-free) value at
    /// least 95% of the time, and widens with the horizon.
    #[test]
    fn the_interval_contains_the_truth_for_noisy_data() {
        let line = |step: i64| 100.0 - 0.8 * step as f64;
        let mut holt = Holt::new(0.5, 0.3);
        let mut seed = 7;
        let (mut tries, mut hits) = (0, 0);
        for step in 0..1_000 {
            holt.observe(step, line(step) + 2.0 * noise(&mut seed));
            if step < 10 {
                continue;
            }
            let forecast = holt.forecast(5, 1.96, 0.0).unwrap();
            tries += 1;
            let truth = line(step + 5);
            hits += usize::from(forecast.low <= truth && truth <= forecast.high);
        }
        assert!(hits * 100 >= tries * 95, "{hits} of {tries}");
        let near = holt.forecast(1, 1.96, 0.0).unwrap();
        let far = holt.forecast(5, 1.96, 0.0).unwrap();
        assert!(far.high - far.low > near.high - near.low);
    }

    /// Before two values there is no trend; before one error, the fallback
    /// sets the interval.
    #[test]
    fn the_start_is_flat_and_uses_the_fallback() {
        let mut holt = Holt::new(0.5, 0.3);
        assert!(holt.forecast(1, 1.96, 1.0).is_none());
        holt.observe(0, 10.0);
        let forecast = holt.forecast(3, 2.0, 1.0).unwrap();
        assert_eq!(forecast.value, 10.0);
        let widening = (1.0f64 + 0.25 * 1.3 * 1.3 + 0.25 * 1.6 * 1.6).sqrt();
        assert!((forecast.high - (10.0 + 2.0 * widening)).abs() < 1e-12);
        assert_eq!(holt.rmse(), None);
    }
}
