//! Measures how fast the publishers go: runs `run_publishers` at a rate
//! (0: unpaced) for some seconds against a broker, printing the readings
//! sent and acknowledged each second. Without an address it starts an
//! in-memory broker in this process (sharing its CPUs).
//!
//! ```text
//! cargo run --release -p citystream-sim --example publish_rate -- 50000 5
//! cargo run --release -p citystream-sim --example publish_rate -- 0 5 127.0.0.1:9400
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use citystream_broker::{Broker, BrokerConfig};
use citystream_client::{Client, ClientConfig};
use citystream_server::{ServerConfig, serve};
use citystream_sim::{CityConfig, Pace, SimConfig, SimStats, run_publishers};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rate: u32 = args
        .next()
        .map_or(50_000, |a| a.parse().expect("RATE (0: unpaced)"));
    let seconds: u64 = args.next().map_or(5, |a| a.parse().expect("SECONDS"));
    let address = match args.next() {
        Some(address) => address,
        None => start_broker().await,
    };
    let client = Client::connect(ClientConfig::new(address)).await.unwrap();
    let pace = if rate == 0 {
        Pace::Unpaced
    } else {
        Pace::Rate(rate)
    };
    let config = SimConfig {
        pace,
        ..SimConfig::new(CityConfig::default())
    };
    let stats = Arc::new(SimStats::default());
    let stop = CancellationToken::new();
    let run = tokio::spawn(run_publishers(client, config, stats.clone(), stop.clone()));
    let started = Instant::now();
    let mut last = stats.snapshot();
    for _ in 0..seconds {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = stats.snapshot();
        let (sent, acknowledged) = (now.sent - last.sent, now.acknowledged - last.acknowledged);
        println!(
            "{sent} sent/s, {acknowledged} acknowledged/s, {} failed",
            now.failed
        );
        last = now;
    }
    stop.cancel();
    run.await.unwrap().unwrap();
    let totals = stats.snapshot();
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{} acknowledged, {} failed in {elapsed:.1} s: {:.0}/s",
        totals.acknowledged,
        totals.failed,
        totals.acknowledged as f64 / elapsed
    );
}

/// An in-memory broker on a free local port; returns its address.
async fn start_broker() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let broker = Arc::new(Broker::open(BrokerConfig::default(), 0).unwrap());
    let config = ServerConfig {
        advertised_address: address.clone(),
        tick_interval_ms: 10,
        ..ServerConfig::default()
    };
    tokio::spawn(serve(listener, broker, config, CancellationToken::new()));
    address
}
