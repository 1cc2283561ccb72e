//! The result of one benchmark run and its two renderings: a readable
//! summary and a one-line JSON object (`--json`). Latencies are recorded in
//! microseconds in an HDR histogram and reported in milliseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

/// Significant figures of every latency histogram (0.1% precision).
const HISTOGRAM_SIGNIFICANT_FIGURES: u8 = 3;

/// An empty, auto-resizing histogram of microseconds.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new(HISTOGRAM_SIGNIFICANT_FIGURES).expect("3 significant figures are valid")
}

pub fn record_latency(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    // `record` grows the auto-resizing histogram; `saturating_record` would
    // clamp to its current bound instead.
    if histogram.record(micros.max(1)).is_err() {
        histogram.saturating_record(micros.max(1));
    }
}

#[derive(Debug)]
pub struct Report {
    pub mode: &'static str,
    /// What was run, in words (first line of the summary).
    pub setup: String,
    /// The settings, for the JSON form.
    pub settings: serde_json::Value,
    pub records: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    pub latency: Histogram<u64>,
    /// What the latency measures, e.g. "send -> ack".
    pub latency_label: &'static str,
}

impl Report {
    fn records_per_s(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Megabytes (10^6 bytes) of record values per second.
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn percentile_ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    pub fn summary(&self) -> String {
        let mut text = format!(
            "{}\n  throughput  {:.0} records/s  {:.2} MB/s  ({} records, {} bytes in {:.3} s)\n",
            self.setup,
            self.records_per_s(),
            self.mb_per_s(),
            self.records,
            self.bytes,
            self.elapsed.as_secs_f64()
        );
        if self.latency.is_empty() {
            text.push_str("  latency     not measured\n");
        } else {
            text.push_str(&format!(
                "  latency     p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms  ({})\n",
                self.percentile_ms(0.50),
                self.percentile_ms(0.99),
                self.percentile_ms(0.999),
                self.max_ms(),
                self.latency_label
            ));
        }
        text
    }

    pub fn json(&self) -> String {
        let latency = if self.latency.is_empty() {
            serde_json::Value::Null
        } else {
            json!({
                "p50": self.percentile_ms(0.50),
                "p99": self.percentile_ms(0.99),
                "p99_9": self.percentile_ms(0.999),
                "max": self.max_ms(),
                "measures": self.latency_label,
            })
        };
        json!({
            "mode": self.mode,
            "settings": self.settings,
            "records": self.records,
            "bytes": self.bytes,
            "elapsed_s": self.elapsed.as_secs_f64(),
            "records_per_s": self.records_per_s(),
            "mb_per_s": self.mb_per_s(),
            "latency_ms": latency,
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut latency = new_histogram();
        for millis in 1..=100 {
            record_latency(&mut latency, Duration::from_millis(millis));
        }
        Report {
            mode: "produce",
            setup: "bench produce".into(),
            settings: json!({"size_bytes": 100}),
            records: 1000,
            bytes: 100_000,
            elapsed: Duration::from_millis(500),
            latency,
            latency_label: "send -> ack",
        }
    }

    /// Throughput divides by elapsed time; percentiles come from the histogram.
    #[test]
    fn summary_shows_rates_and_percentiles() {
        let text = report().summary();
        assert!(text.contains("2000 records/s  0.20 MB/s"), "{text}");
        assert!(text.contains("p50 50.015 ms"), "{text}");
        assert!(text.contains("max 100.031 ms"), "{text}");
    }

    /// The JSON form is one line with the same numbers.
    #[test]
    fn json_is_one_line_with_numbers() {
        let text = report().json();
        assert!(!text.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["records_per_s"], 2000.0);
        assert_eq!(value["settings"]["size_bytes"], 100);
        assert!(value["latency_ms"]["p99"].as_f64().unwrap() > 98.0);
    }
}
