//! Load tool for the Server-Sent-Events fan-out: opens `STREAMS` streams
//! of one topic on a running broker's HTTP API, produces `RATE` records/s
//! over HTTP for `SECONDS`, and reports the delivery latency (produce
//! timestamp to receipt, same machine clock) over every stream's events,
//! and the broker's resident memory per stream when its pid is given.
//!
//! ```sh
//! citystream broker --in-memory --listen 127.0.0.1:19700 --http 127.0.0.1:16700 &
//! cargo run --release -p citystream-http --example sse_load -- 127.0.0.1:16700 1000 100 10 $!
//! ```
//! Arguments: HTTP address, streams, records per second, seconds, broker pid (optional).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventsource_stream::Eventsource as _;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use parking_lot::Mutex;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: sse_load HTTP_ADDRESS STREAMS RATE SECONDS [BROKER_PID]";
    let base = format!("http://{}", args.get(1).ok_or(usage)?);
    let streams: usize = args.get(2).ok_or(usage)?.parse()?;
    let rate: u64 = args.get(3).ok_or(usage)?.parse()?;
    let seconds: u64 = args.get(4).ok_or(usage)?.parse()?;
    let pid = args.get(5).cloned();
    citystream_http::webhooks::install_tls_provider();
    let http = reqwest::Client::new();
    let topic = format!("sse-load-{}", now_ms());
    http.post(format!("{base}/api/topics"))
        .json(&serde_json::json!({"name": topic, "partitions": 1}))
        .send()
        .await?
        .error_for_status()?;
    let rss_before = pid.as_deref().and_then(rss_kib);
    let latencies = Arc::new(Mutex::new(Histogram::<u64>::new_with_bounds(1, 60_000, 3)?));
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut opened = 0;
    for _ in 0..streams {
        let response = http
            .get(format!("{base}/api/topics/{topic}/stream"))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("stream refused: {}", response.status()).into());
        }
        opened += 1;
        let (latencies, received) = (latencies.clone(), received.clone());
        tokio::spawn(async move {
            let mut events = response.bytes_stream().eventsource();
            while let Some(Ok(event)) = events.next().await {
                let Ok(record) = serde_json::from_str::<serde_json::Value>(&event.data) else {
                    continue;
                };
                if let Some(sent) = record["timestamp"].as_i64() {
                    let latency = (now_ms() - sent).max(1) as u64;
                    let _ = latencies.lock().record(latency);
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_open = pid.as_deref().and_then(rss_kib);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut sent = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let next = started + interval * sent as u32;
        tokio::time::sleep_until(next.into()).await;
        http.post(format!("{base}/api/topics/{topic}/records?acks=leader"))
            .header("content-type", "text/plain")
            .body(format!("r{sent}"))
            .send()
            .await?
            .error_for_status()?;
        sent += 1;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let histogram = latencies.lock().clone();
    let got = received.load(std::sync::atomic::Ordering::Relaxed);
    println!(
        "streams {opened}, records sent {sent} at {rate}/s, events received {got} of {}",
        sent * opened as u64
    );
    println!(
        "delivery latency ms: p50 {} p90 {} p99 {} max {}",
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.9),
        histogram.value_at_quantile(0.99),
        histogram.max()
    );
    if let (Some(before), Some(open)) = (rss_before, rss_open) {
        println!(
            "broker RSS {before} KiB before, {open} KiB with the streams open: {:.1} KiB per stream",
            (open.saturating_sub(before)) as f64 / opened as f64
        );
    }
    Ok(())
}
