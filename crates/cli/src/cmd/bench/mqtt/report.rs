//! The figures of one `bench mqtt` load run and their two renderings: a
//! readable summary and one JSON line (`--json`). Rates divide by the
//! run's elapsed times; latencies come from HDR histograms of
//! microseconds, printed in milliseconds. Deciding pass/fail is `mqtt.rs`.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::json;

use super::accounting::Accounting;

/// Per-subscriber counts are listed in the summary up to this many
/// subscribers (all of them are in the JSON).
const LISTED_SUBSCRIBERS_MAX: usize = 8;

#[derive(Debug)]
pub struct MqttReport {
    /// What was run, in words (first line of the summary).
    pub setup: String,
    pub settings: serde_json::Value,
    pub subscribers: u32,
    /// Handed to the clients.
    pub sent: u64,
    /// QoS 0: written; QoS 1/2: acknowledged.
    pub published: u64,
    pub publish_failed: u64,
    /// The last error a publisher saw, and connections that ended early.
    pub problems: Vec<String>,
    pub accounting: Accounting,
    /// Start -> the last publisher done (QoS 1/2: its last ack).
    pub publish_elapsed: Duration,
    /// Start -> the last delivery to any subscriber.
    pub delivery_elapsed: Duration,
    /// Publish -> delivered (first arrivals).
    pub latency: Histogram<u64>,
    /// Publish -> PUBACK/PUBCOMP; empty at QoS 0.
    pub ack_latency: Histogram<u64>,
    pub window_stalls: u64,
}

fn per_s(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// p50 / p99 / max in milliseconds, or `None` if nothing was recorded.
fn percentiles_ms(histogram: &Histogram<u64>) -> Option<[f64; 3]> {
    if histogram.is_empty() {
        return None;
    }
    let ms = |micros: u64| micros as f64 / 1000.0;
    Some([
        ms(histogram.value_at_quantile(0.50)),
        ms(histogram.value_at_quantile(0.99)),
        ms(histogram.max()),
    ])
}

impl MqttReport {
    pub fn published_per_s(&self) -> f64 {
        per_s(self.published, self.publish_elapsed)
    }

    /// Messages delivered per second, each counted once however many
    /// subscribers got it (fan-in: the same as deliveries/s).
    pub fn messages_per_s(&self) -> f64 {
        let messages = self.accounting.delivered_total / u64::from(self.subscribers.max(1));
        per_s(messages, self.delivery_elapsed)
    }

    /// Copies delivered per second, over all subscribers.
    pub fn deliveries_per_s(&self) -> f64 {
        per_s(self.accounting.delivered_total, self.delivery_elapsed)
    }

    pub fn summary(&self) -> String {
        let accounting = &self.accounting;
        let mut text = format!(
            "{}\n  published   {} (sent {}, failed {}) in {:.3} s: {:.0} msgs/s\n",
            self.setup,
            self.published,
            self.sent,
            self.publish_failed,
            self.publish_elapsed.as_secs_f64(),
            self.published_per_s(),
        );
        text.push_str(&format!(
            "  delivered   {} in all; per subscriber: {}\n",
            accounting.delivered_total,
            per_subscriber(&accounting.delivered_per_subscriber)
        ));
        text.push_str(&format!(
            "  checks      lost {}, duplicates {}, out of order {} (per publisher: {}), foreign {}, window stalls {}\n",
            accounting.lost,
            accounting.duplicates,
            accounting.out_of_order(),
            join(&accounting.out_of_order_per_publisher),
            accounting.foreign,
            self.window_stalls,
        ));
        text.push_str(&format!(
            "  throughput  {:.0} msgs/s delivered, {:.0} deliveries/s (last delivery at {:.3} s)\n",
            self.messages_per_s(),
            self.deliveries_per_s(),
            self.delivery_elapsed.as_secs_f64(),
        ));
        text.push_str(&latency_line(
            "latency    ",
            &self.latency,
            "publish -> delivered",
        ));
        if !self.ack_latency.is_empty() {
            text.push_str(&latency_line(
                "ack latency",
                &self.ack_latency,
                "publish -> ack",
            ));
        }
        for problem in &self.problems {
            text.push_str(&format!("  problem     {problem}\n"));
        }
        text
    }

    pub fn json(&self) -> String {
        let accounting = &self.accounting;
        let latency = |histogram: &Histogram<u64>| match percentiles_ms(histogram) {
            Some([p50, p99, max]) => json!({"p50": p50, "p99": p99, "max": max}),
            None => serde_json::Value::Null,
        };
        json!({
            "mode": "mqtt",
            "settings": self.settings,
            "sent": self.sent,
            "published": self.published,
            "publish_failed": self.publish_failed,
            "delivered": accounting.delivered_total,
            "delivered_per_subscriber": accounting.delivered_per_subscriber,
            "lost": accounting.lost,
            "duplicates": accounting.duplicates,
            "out_of_order": accounting.out_of_order(),
            "out_of_order_per_publisher": accounting.out_of_order_per_publisher,
            "foreign": accounting.foreign,
            "window_stalls": self.window_stalls,
            "publish_elapsed_s": self.publish_elapsed.as_secs_f64(),
            "delivery_elapsed_s": self.delivery_elapsed.as_secs_f64(),
            "published_per_s": self.published_per_s(),
            "messages_per_s": self.messages_per_s(),
            "deliveries_per_s": self.deliveries_per_s(),
            "latency_ms": latency(&self.latency),
            "ack_latency_ms": latency(&self.ack_latency),
            "problems": self.problems,
        })
        .to_string()
    }
}

fn latency_line(label: &str, histogram: &Histogram<u64>, measures: &str) -> String {
    match percentiles_ms(histogram) {
        Some([p50, p99, max]) => {
            format!("  {label} p50 {p50:.3} ms  p99 {p99:.3} ms  max {max:.3} ms  ({measures})\n")
        }
        None => format!("  {label} none recorded\n"),
    }
}

fn join(counts: &[u64]) -> String {
    let words: Vec<String> = counts.iter().map(u64::to_string).collect();
    words.join(" ")
}

/// All counts for a few subscribers, else min and max.
fn per_subscriber(counts: &[u64]) -> String {
    if counts.len() <= LISTED_SUBSCRIBERS_MAX {
        return join(counts);
    }
    let min = counts.iter().min().copied().unwrap_or(0);
    let max = counts.iter().max().copied().unwrap_or(0);
    format!("min {min}, max {max} over {} (all in --json)", counts.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::bench::report::{new_histogram, record_latency};

    fn report() -> MqttReport {
        let mut latency = new_histogram();
        for millis in 1..=100 {
            record_latency(&mut latency, Duration::from_millis(millis));
        }
        MqttReport {
            setup: "bench mqtt".into(),
            settings: json!({"qos": 1}),
            subscribers: 2,
            sent: 1000,
            published: 1000,
            publish_failed: 0,
            problems: Vec::new(),
            accounting: Accounting {
                delivered_per_subscriber: vec![1000, 990],
                delivered_total: 1990,
                lost: 10,
                duplicates: 0,
                out_of_order_per_publisher: vec![0],
                foreign: 0,
            },
            publish_elapsed: Duration::from_millis(500),
            delivery_elapsed: Duration::from_secs(1),
            latency,
            ack_latency: new_histogram(),
            window_stalls: 0,
        }
    }

    /// Messages per second count each message once; deliveries count copies.
    #[test]
    fn rates_tell_messages_from_deliveries() {
        let report = report();
        assert_eq!(report.published_per_s(), 2000.0);
        assert_eq!(report.messages_per_s(), 995.0);
        assert_eq!(report.deliveries_per_s(), 1990.0);
        let text = report.summary();
        assert!(text.contains("lost 10"), "{text}");
        assert!(text.contains("per subscriber: 1000 990"), "{text}");
        assert!(!text.contains("ack latency"), "{text}");
    }

    /// The JSON form is one line carrying the same figures.
    #[test]
    fn json_is_one_line_with_the_figures() {
        let text = report().json();
        assert!(!text.contains('\n'));
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["lost"], 10);
        assert_eq!(value["delivered_per_subscriber"][1], 990);
        assert_eq!(value["ack_latency_ms"], serde_json::Value::Null);
        assert!(value["latency_ms"]["p99"].as_f64().unwrap() > 98.0);
    }
}
