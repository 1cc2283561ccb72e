//! `--help` of every subcommand, and a small benchmark run.

use crate::harness::{COMMAND_TIMEOUT, TestBroker, binary};

/// Every subcommand's `--help` exits 0 and shows examples.
#[test]
fn every_subcommand_help_has_examples() {
    let subcommands: [&[&str]; 22] = [
        &[],
        &["broker"],
        &["topic"],
        &["topic", "create"],
        &["topic", "list"],
        &["topic", "describe"],
        &["topic", "delete"],
        &["produce"],
        &["consume"],
        &["group"],
        &["group", "list"],
        &["group", "describe"],
        &["group", "reset"],
        &["cluster"],
        &["cluster", "status"],
        &["cluster", "remove-node"],
        &["cluster", "rebalance"],
        &["bench"],
        &["bench", "produce"],
        &["bench", "consume"],
        &["bench", "e2e"],
        &["bench", "failover"],
    ];
    for subcommand in subcommands {
        let output = assert_cmd::Command::new(binary())
            .args(subcommand)
            .arg("--help")
            .timeout(COMMAND_TIMEOUT)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{subcommand:?} --help failed");
        assert!(
            stdout.contains("Example"),
            "{subcommand:?} --help has no examples:\n{stdout}"
        );
    }
}

/// A small produce benchmark reports its throughput, in both forms.
#[test]
fn bench_produce_reports_throughput() {
    let broker = TestBroker::start_with(&["--in-memory"], &[]);
    let summary = broker.run(&["bench", "produce", "--count", "2000", "--partitions", "2"]);
    assert!(summary.contains("records/s"), "{summary}");
    assert!(summary.contains("p99"), "{summary}");

    let json = broker.run(&["bench", "consume", "--count", "2000", "--json"]);
    let report: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    assert_eq!(report["mode"], "consume");
    assert!(report["records"].as_u64().unwrap() >= 2000);
    assert!(report["records_per_s"].as_f64().unwrap() > 0.0);
}

/// End to end: two producers at a fixed rate, latency reported.
#[test]
fn bench_e2e_reports_latency() {
    let broker = TestBroker::start_with(&["--in-memory"], &[]);
    let args = [
        "bench",
        "e2e",
        "--count",
        "1000",
        "--rate",
        "2000",
        "--producers",
        "2",
        "--json",
    ];
    let report: serde_json::Value = serde_json::from_str(broker.run(&args).trim()).unwrap();
    assert_eq!(report["mode"], "e2e");
    assert!(report["records"].as_u64().unwrap() >= 1000);
    assert!(report["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
}
