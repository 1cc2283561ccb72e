//! The `citystream broker` process: settings validation, clean shutdown on
//! SIGTERM, and data that survives a restart.

use crate::harness::{TestBroker, binary};

/// Records written before a SIGTERM are there after a restart on the same dir.
#[test]
fn data_survives_a_broker_restart() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "durable", "--partitions", "1"]);
    broker.run_with_stdin(&["produce", "durable"], "one\ntwo\nthree\n");
    broker.terminate();

    let restarted = TestBroker::start(data.path());
    let consumed = restarted.run(&["consume", "durable", "--from-beginning"]);
    assert_eq!(consumed, "one\ntwo\nthree\n");
}

/// Contradictory or invalid settings are refused before anything starts.
#[test]
fn bad_broker_settings_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--data-dir", dir, "--in-memory"], "not both"),
        (&[], "--data-dir"),
        (
            &["--in-memory", "--fsync-interval-ms", "0"],
            "--fsync-interval-ms",
        ),
        (&["--in-memory", "--listen", "nowhere"], "--listen"),
    ];
    for (flags, expected) in cases {
        let output = assert_cmd::Command::new(binary())
            .arg("broker")
            .args(flags)
            .env_remove("CITYSTREAM_DATA_DIR")
            .env_remove("CITYSTREAM_IN_MEMORY")
            .timeout(crate::harness::COMMAND_TIMEOUT)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flags:?} was accepted");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
}

/// Settings can come from CITYSTREAM_* variables instead of flags.
#[test]
fn settings_come_from_the_environment() {
    let envs = [
        ("CITYSTREAM_IN_MEMORY", "true"),
        ("CITYSTREAM_NODE_ID", "7"),
        ("CITYSTREAM_AUTO_CREATE_TOPICS", "false"),
    ];
    let broker = TestBroker::start_with(&[], &envs);
    assert!(
        broker
            .ready_line
            .starts_with("citystream broker 7 listening on 127.0.0.1:"),
        "{}",
        broker.ready_line
    );
    assert!(
        broker.ready_line.contains("(in memory)"),
        "{}",
        broker.ready_line
    );
    // Auto-creation is off: producing to a missing topic fails.
    let (code, stderr) = broker.run_failing(&["produce", "nowhere"], "x\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("UNKNOWN_TOPIC"), "{stderr}");
}
