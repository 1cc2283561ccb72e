//! Rough throughput and latency of the server over loopback, for the
//! performance notes; ignored by default. Run with
//! `cargo test --release -p citystream-server --test throughput -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use citystream_broker::BrokerConfig;
use citystream_protocol::{Acks, ErrorCode, Response};
use common::*;

const ROUND_TRIPS: u32 = 5_000;
const BATCHES: u32 = 2_000;
const RECORDS_PER_BATCH: usize = 100;
const RECORD_BYTES: usize = 100;
const WINDOW: u32 = 32;

/// Measures the rates over an in-memory broker (the server's own cost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn loopback_throughput_in_memory() {
    measure(broker_config()).await;
}

/// Measures the rates over an on-disk broker with the default interval fsync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn loopback_throughput_on_disk() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = BrokerConfig {
        data_dir: Some(data_dir.path().to_path_buf()),
        ..broker_config()
    };
    measure(config).await;
}

/// Sequential request latency, then pipelined produce and fetch rates.
async fn measure(config: BrokerConfig) {
    let server = TestServer::start_with(config, server_config()).await;
    let mut client = server.client().await;
    client.create_topic("bench", 1).await.unwrap();

    let started = Instant::now();
    for _ in 0..ROUND_TRIPS {
        client.call(metadata_request()).await.unwrap();
    }
    let per_call_us = started.elapsed().as_micros() / u128::from(ROUND_TRIPS);
    println!("sequential metadata round trip: {per_call_us} us");

    let value = [0x5a; RECORD_BYTES];
    let values: Vec<&[u8]> = (0..RECORDS_PER_BATCH).map(|_| &value[..]).collect();
    let one_batch = batch(&values);
    let started = Instant::now();
    let (mut sent, mut answered) = (0, 0);
    while answered < BATCHES {
        while sent < BATCHES && sent - answered < WINDOW {
            let request = produce_request(Acks::Leader, "bench", 0, one_batch.clone());
            client.send(request).await;
            sent += 1;
        }
        let frame = client.recv().await;
        let Ok(Response::Produce(produced)) = frame.response else {
            panic!("produce failed: {:?}", frame.response);
        };
        assert_eq!(produced.partitions[0].status.error, ErrorCode::NONE);
        answered += 1;
    }
    report("pipelined produce", started, one_batch.len());

    let started = Instant::now();
    let mut offset = 0;
    let mut bytes = 0;
    let total = u64::from(BATCHES) * RECORDS_PER_BATCH as u64;
    while offset < total {
        let fetched = client.fetch(fetch_request("bench", offset, 0, 0)).await;
        let partition = &fetched.partitions[0];
        bytes += partition.records.len();
        offset = records(&partition.records).last().unwrap().0 + 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "sequential 1 MiB fetches: {:.0} MB/s",
        bytes as f64 / elapsed / 1e6
    );
    server.stop().await;
}

fn report(what: &str, started: Instant, batch_bytes: usize) {
    let elapsed = started.elapsed().as_secs_f64();
    let records = f64::from(BATCHES) * RECORDS_PER_BATCH as f64;
    let megabytes = f64::from(BATCHES) * batch_bytes as f64 / 1e6;
    println!(
        "{what}: {:.0} batches/s, {:.0} records/s, {:.0} MB/s",
        f64::from(BATCHES) / elapsed,
        records / elapsed,
        megabytes / elapsed
    );
}
