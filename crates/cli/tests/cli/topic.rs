//! `citystream topic ...` against a real broker.

use crate::harness::TestBroker;

/// A topic can be created, listed, described and deleted.
#[test]
fn topic_create_list_describe_delete_round_trip() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());

    let created = broker.run(&["topic", "create", "city.air", "--partitions", "3"]);
    assert!(
        created.contains("created topic city.air with 3 partitions"),
        "{created}"
    );

    let list = broker.run(&["topic", "list"]);
    let row = list
        .lines()
        .find(|line| line.starts_with("city.air "))
        .unwrap_or_else(|| panic!("city.air not listed:\n{list}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, vec!["city.air", "3", "0", "0", "delete"]);

    let describe = broker.run(&["topic", "describe", "city.air"]);
    assert!(
        describe.contains("topic city.air: 3 partitions"),
        "{describe}"
    );
    let partition_rows = describe
        .lines()
        .skip_while(|line| !line.starts_with("PARTITION"))
        .skip(1)
        .count();
    assert_eq!(partition_rows, 3, "{describe}");

    let deleted = broker.run(&["topic", "delete", "city.air"]);
    assert!(deleted.contains("deleted topic city.air"));
    let list = broker.run(&["topic", "list"]);
    assert!(!list.contains("city.air"), "{list}");
}

/// A bad topic name fails with exit code 1 and the naming rule on stderr.
#[test]
fn bad_topic_name_exits_1_with_the_rule() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let (code, stderr) = broker.run_failing(&["topic", "create", "no spaces allowed"], "");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("error: INVALID_TOPIC_NAME (6)"), "{stderr}");
    assert!(
        stderr.contains("topic names are 1-249 characters"),
        "{stderr}"
    );
}

/// Describing a topic that does not exist is an error, not an empty table.
#[test]
fn describe_unknown_topic_fails() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let (code, stderr) = broker.run_failing(&["topic", "describe", "missing"], "");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("UNKNOWN_TOPIC"), "{stderr}");
}

/// A compacted topic is created with its settings, and describe and list
/// show them (unset ones with the default the broker applies).
#[test]
fn compacted_topic_create_and_describe() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let created = broker.run(&[
        "topic",
        "create",
        "retained",
        "--cleanup",
        "compact",
        "--tombstone-retention-ms",
        "60000",
    ]);
    assert!(
        created.contains("created topic retained with 1 partition (cleanup compact)"),
        "{created}"
    );
    let describe = broker.run(&["topic", "describe", "retained"]);
    assert!(
        describe.contains(
            "cleanup: compact, compaction lag ms: 0 (default), tombstone retention ms: 60000, \
             segment roll ms: 3600000 (default)"
        ),
        "{describe}"
    );
    let list = broker.run(&["topic", "list"]);
    let row = list
        .lines()
        .find(|line| line.starts_with("retained "))
        .unwrap_or_else(|| panic!("retained not listed:\n{list}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, vec!["retained", "1", "0", "0", "compact"]);
}

/// Bad compaction settings fail with an error that names the setting, and
/// create nothing.
#[test]
fn bad_compaction_settings_fail_clearly() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let (code, stderr) =
        broker.run_failing(&["topic", "create", "x", "--cleanup", "compacted"], "");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "unknown cleanup policy \"compacted\": expected delete, compact or compact,delete"
        ),
        "{stderr}"
    );
    let zero = [
        "topic",
        "create",
        "x",
        "--cleanup",
        "compact",
        "--tombstone-retention-ms",
        "0",
    ];
    let (code, stderr) = broker.run_failing(&zero, "");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("tombstone_retention_ms must be greater than 0"),
        "{stderr}"
    );
    let misplaced = ["topic", "create", "x", "--compaction-lag-ms", "5"];
    let (code, stderr) = broker.run_failing(&misplaced, "");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("compaction_lag_ms needs cleanup compact or compact,delete"),
        "{stderr}"
    );
    let list = broker.run(&["topic", "list"]);
    assert!(!list.contains("\nx "), "{list}");
}
