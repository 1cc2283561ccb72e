//! The random processes the station models are built from: Gaussian
//! noise, a mean-reverting drift (Ornstein-Uhlenbeck, exact over any time
//! step, so a station read every 10 s or every hour drifts alike) and
//! events arriving at a rate per hour (Poisson). Each takes the caller's
//! random stream; none keeps one of its own.

use rand::Rng;
use rand::rngs::StdRng;

const HOUR_MS: f64 = 3_600_000.0;

/// A standard normal sample (Box-Muller).
pub fn gaussian(rng: &mut StdRng) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let radius = (-2.0 * (1.0 - rng.random::<f64>()).ln()).sqrt();
    radius * (std::f64::consts::TAU * rng.random::<f64>()).cos()
}

/// Whether an event with `rate_per_hour` happens within `elapsed_ms`.
pub fn chance(rng: &mut StdRng, rate_per_hour: f64, elapsed_ms: i64) -> bool {
    let elapsed_hours = elapsed_ms.max(0) as f64 / HOUR_MS;
    let probability = 1.0 - (-rate_per_hour * elapsed_hours).exp();
    rng.random::<f64>() < probability
}

/// A value wandering around 0 with standard deviation `spread`, pulled
/// back over `relax_hours`.
#[derive(Debug, Clone)]
pub struct Drift {
    pub value: f64,
    spread: f64,
    relax_hours: f64,
}

impl Drift {
    /// Starts at a random point of its stationary distribution.
    pub fn new(rng: &mut StdRng, spread: f64, relax_hours: f64) -> Drift {
        assert!(relax_hours > 0.0 && spread >= 0.0);
        Drift {
            value: spread * gaussian(rng),
            spread,
            relax_hours,
        }
    }

    /// Moves `elapsed_ms` forward; returns the new value.
    pub fn step(&mut self, rng: &mut StdRng, elapsed_ms: i64) -> f64 {
        let decay = (-(elapsed_ms.max(0) as f64 / HOUR_MS) / self.relax_hours).exp();
        let fresh = self.spread * (1.0 - decay * decay).sqrt();
        self.value = self.value * decay + fresh * gaussian(rng);
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::stream;

    /// Gaussian samples have mean about 0 and deviation about 1.
    #[test]
    fn gaussian_is_standard() {
        let mut rng = stream(1, "test");
        let samples: Vec<f64> = (0..20_000).map(|_| gaussian(&mut rng)).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let variance =
            samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((variance.sqrt() - 1.0).abs() < 0.03, "{variance}");
    }

    /// A drift keeps its spread whatever the step; a zero step keeps it still.
    #[test]
    fn drift_keeps_its_spread() {
        let mut rng = stream(2, "test");
        let mut drift = Drift::new(&mut rng, 3.0, 2.0);
        let before = drift.value;
        assert_eq!(drift.step(&mut rng, 0), before);
        let samples: Vec<f64> = (0..20_000).map(|_| drift.step(&mut rng, 600_000)).collect();
        let spread = (samples.iter().map(|x| x * x).sum::<f64>() / samples.len() as f64).sqrt();
        assert!((spread - 3.0).abs() < 0.3, "{spread}");
    }

    /// Events at one per hour happen in about 63% of one-hour windows.
    #[test]
    fn chance_follows_the_rate() {
        let mut rng = stream(3, "test");
        let hits = (0..10_000)
            .filter(|_| chance(&mut rng, 1.0, 3_600_000))
            .count();
        assert!((6_000..6_600).contains(&hits), "{hits}");
        assert!(!chance(&mut rng, 1.0, 0));
    }
}
