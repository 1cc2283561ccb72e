//! [`LoadMeter`]: bytes produced and fetched through this node, as counters
//! the data handlers bump without locking, and the per-second rates of the
//! last closed window (rolled once a second by a timer). The rates feed
//! gossip and ClusterStatus; they are figures for people and placement
//! hints, not measurements to assert on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Length of one rate window.
pub(crate) const LOAD_WINDOW_MS: u64 = 1_000;

/// Byte counters and the rates of the last window.
pub(crate) struct LoadMeter {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    window: Mutex<Window>,
}

/// Counter values at the start of the current window, and the last rates.
struct Window {
    started: Instant,
    bytes_in_at_start: u64,
    bytes_out_at_start: u64,
    rates: LoadRates,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LoadRates {
    pub(crate) bytes_in_per_s: u64,
    pub(crate) bytes_out_per_s: u64,
}

impl LoadMeter {
    pub(crate) fn new(now: Instant) -> LoadMeter {
        LoadMeter {
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            window: Mutex::new(Window {
                started: now,
                bytes_in_at_start: 0,
                bytes_out_at_start: 0,
                rates: LoadRates::default(),
            }),
        }
    }

    /// Counts bytes accepted from producers.
    pub(crate) fn record_in(&self, bytes: usize) {
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts record bytes sent to consumers.
    pub(crate) fn record_out(&self, bytes: usize) {
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Closes the current window at `now` and starts the next one.
    pub(crate) fn roll(&self, now: Instant) {
        let bytes_in = self.bytes_in.load(Ordering::Relaxed);
        let bytes_out = self.bytes_out.load(Ordering::Relaxed);
        let mut window = self.window.lock().expect("load window lock");
        let elapsed = now.saturating_duration_since(window.started);
        window.rates = LoadRates {
            bytes_in_per_s: per_second(bytes_in - window.bytes_in_at_start, elapsed),
            bytes_out_per_s: per_second(bytes_out - window.bytes_out_at_start, elapsed),
        };
        *window = Window {
            started: now,
            bytes_in_at_start: bytes_in,
            bytes_out_at_start: bytes_out,
            rates: window.rates,
        };
    }

    /// Rates of the last closed window.
    pub(crate) fn rates(&self) -> LoadRates {
        self.window.lock().expect("load window lock").rates
    }
}

/// `bytes` over `elapsed`, per second; 0 for an empty window.
fn per_second(bytes: u64, elapsed: Duration) -> u64 {
    let elapsed_us = elapsed.as_micros();
    if elapsed_us == 0 {
        return 0;
    }
    u64::try_from(u128::from(bytes) * 1_000_000 / elapsed_us).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window's rate is its bytes over its length; the next window starts at zero.
    #[test]
    fn rates_cover_the_last_window() {
        let start = Instant::now();
        let meter = LoadMeter::new(start);
        meter.record_in(3_000);
        meter.record_out(500);
        meter.record_out(500);
        meter.roll(start + Duration::from_millis(500));
        assert_eq!(
            meter.rates(),
            LoadRates {
                bytes_in_per_s: 6_000,
                bytes_out_per_s: 2_000
            }
        );
        meter.roll(start + Duration::from_millis(1_500));
        assert_eq!(meter.rates(), LoadRates::default());
        meter.roll(start + Duration::from_millis(1_500));
        assert_eq!(meter.rates(), LoadRates::default());
    }
}
