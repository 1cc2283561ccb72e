//! `bench mqtt --idle N`: the memory a broker spends per connected, idle
//! client. Opens N connections (clean sessions, keep alive on, nothing
//! subscribed), waits for the broker to settle, and reads the broker
//! process's resident set (`VmRSS` of /proc/PID/status, `--broker-pid`)
//! before and after. Linux only for the memory figure; the connection
//! counts work anywhere. It says nothing about busy connections.

use std::time::Duration;

use anyhow::{Context as _, bail};
use citystream_mqtt_client::{ConnectOptions, MqttClient};
use futures::StreamExt as _;
use serde_json::json;
use tokio::time::Instant;

use super::{MqttArgs, client_address};

/// Connections being opened at once.
const CONNECTING_AT_ONCE_MAX: usize = 64;
/// Wait after the last connection before reading the broker's memory.
const SETTLE: Duration = Duration::from_secs(2);

/// The idle run's figures.
struct IdleReport {
    asked: u32,
    connected: u64,
    failed: u64,
    first_error: Option<String>,
    connect_elapsed: Duration,
    rss_before_bytes: Option<u64>,
    rss_after_bytes: Option<u64>,
}

impl IdleReport {
    fn per_connection_bytes(&self) -> Option<f64> {
        let grown = self.rss_after_bytes? as f64 - self.rss_before_bytes? as f64;
        (self.connected > 0).then(|| grown / self.connected as f64)
    }
}

pub async fn run_idle(args: &MqttArgs, count: u32, run_tag: &str) -> anyhow::Result<()> {
    let rss_before_bytes = args.broker_pid.map(rss_bytes).transpose()?;
    let started = Instant::now();
    let opened: Vec<Result<MqttClient, String>> = futures::stream::iter(0..count)
        .map(|index| connect_idle(args, index, run_tag))
        .buffer_unordered(CONNECTING_AT_ONCE_MAX)
        .collect()
        .await;
    let connect_elapsed = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let rss_after_bytes = args.broker_pid.map(rss_bytes).transpose()?;
    let mut clients = Vec::new();
    let mut first_error = None;
    for outcome in opened {
        match outcome {
            Ok(client) => clients.push(client),
            Err(error) => first_error = first_error.or(Some(error)),
        }
    }
    let report = IdleReport {
        asked: count,
        connected: clients.len() as u64,
        failed: u64::from(count) - clients.len() as u64,
        first_error,
        connect_elapsed,
        rss_before_bytes,
        rss_after_bytes,
    };
    print_report(args, &report);
    futures::stream::iter(clients)
        .map(|client| async move { drop(client.disconnect().await) })
        .buffer_unordered(CONNECTING_AT_ONCE_MAX * 4)
        .collect::<Vec<()>>()
        .await;
    if report.failed > 0 {
        bail!("{} of {count} connections failed", report.failed);
    }
    Ok(())
}

async fn connect_idle(args: &MqttArgs, index: u32, run_tag: &str) -> Result<MqttClient, String> {
    let mut options = ConnectOptions::new(args.protocol.into(), format!("idle-{run_tag}-{index}"));
    options.keep_alive_secs = args.keep_alive_secs;
    options.messages_capacity = 16;
    let address = client_address(&args.addresses, index as usize);
    match MqttClient::connect(address, options).await {
        Ok((client, _)) => Ok(client),
        Err(error) => Err(error.to_string()),
    }
}

/// The resident set of process `pid`, from /proc/PID/status.
fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_rss_bytes(&status).with_context(|| format!("no VmRSS line in {path}"))
}

/// The `VmRSS:   1234 kB` line of a /proc status file, in bytes.
fn parse_rss_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}

fn print_report(args: &MqttArgs, report: &IdleReport) {
    let mib = |bytes: Option<u64>| bytes.map(|bytes| bytes as f64 / (1024.0 * 1024.0));
    if args.json {
        let value = json!({
            "mode": "mqtt-idle",
            "addresses": args.addresses,
            "version": args.protocol.name(),
            "asked": report.asked,
            "connected": report.connected,
            "failed": report.failed,
            "first_error": report.first_error,
            "connect_elapsed_s": report.connect_elapsed.as_secs_f64(),
            "broker_pid": args.broker_pid,
            "rss_before_bytes": report.rss_before_bytes,
            "rss_after_bytes": report.rss_after_bytes,
            "rss_per_connection_bytes": report.per_connection_bytes(),
        });
        println!("{value}");
        return;
    }
    println!(
        "bench mqtt --idle {}: MQTT {}, keep alive {} s, {}",
        report.asked,
        args.protocol.name(),
        args.keep_alive_secs,
        args.addresses.join(",")
    );
    println!(
        "  connected   {} (failed {}) in {:.3} s",
        report.connected,
        report.failed,
        report.connect_elapsed.as_secs_f64()
    );
    match (mib(report.rss_before_bytes), mib(report.rss_after_bytes)) {
        (Some(before), Some(after)) => println!(
            "  broker RSS  {before:.1} MiB -> {after:.1} MiB: {:.0} bytes per connection",
            report.per_connection_bytes().unwrap_or(0.0)
        ),
        _ => println!("  broker RSS  not measured (give --broker-pid)"),
    }
    if let Some(error) = &report.first_error {
        println!("  problem     {error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// VmRSS is read from its line and converted from kB.
    #[test]
    fn rss_is_parsed_from_proc_status() {
        let status = "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t1\n";
        assert_eq!(parse_rss_bytes(status), Some(5120 * 1024));
        assert_eq!(parse_rss_bytes("Name:\tx\n"), None);
    }
}
