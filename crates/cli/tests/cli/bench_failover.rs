//! `bench failover` end to end: it starts its own 3-node cluster, kills and
//! restarts leaders, and reports every trial and the loss check. Timing is
//! not asserted (it lives in BENCHMARKS.md).

use std::time::Duration;

use crate::harness::binary;

/// Upper bound on the whole run: cluster start, two trials, the read-back.
const RUN_TIMEOUT: Duration = Duration::from_secs(240);

/// Two trials run to the end and report two failover times and no loss.
#[test]
fn failover_bench_reports_each_trial() {
    let data = tempfile::tempdir().expect("temp dir");
    let output = assert_cmd::Command::new(binary())
        .args(["bench", "failover", "--trials", "2", "--json", "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .timeout(RUN_TIMEOUT)
        .output()
        .expect("run citystream bench failover");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failover failed ({}):\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let trials = report["trials"].as_array().expect("a trials array");
    assert_eq!(trials.len(), 2);
    for trial in trials {
        assert!(trial["failover_ms"].is_f64(), "{trial}");
        assert_ne!(trial["killed_leader"], trial["new_leader"], "{trial}");
    }
    assert!(report["failover_ms"]["median"].is_f64(), "{report}");
    assert_eq!(report["loss"]["lost"], 0, "{report}");
    assert!(
        report["loss"]["acknowledged"].as_u64().unwrap() > 0,
        "{report}"
    );
}
