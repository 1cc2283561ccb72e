//! `citystream produce` and `consume` against a real broker: stdin lines,
//! CSV and producer-log files, `--max`, JSON output.

use std::io::Write as _;

use crate::harness::TestBroker;

fn numbered_lines(count: usize) -> Vec<String> {
    (1..=count).map(|n| format!("reading {n}")).collect()
}

fn write_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()))
        .expect("write test input");
    path.to_str().expect("UTF-8 path").to_string()
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

/// 100 stdin lines come back from the beginning exactly, in order.
#[test]
fn produced_lines_are_consumed_in_order() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "lines", "--partitions", "1"]);
    let lines = numbered_lines(100);
    let produced = broker.run_with_stdin(&["produce", "lines"], &(lines.join("\n") + "\n"));
    assert!(produced.contains("acknowledged 100 records"), "{produced}");

    let consumed = broker.run(&["consume", "lines", "--from-beginning", "--format", "value"]);
    assert_eq!(consumed.lines().collect::<Vec<_>>(), lines);
}

/// `--max 5` prints exactly five records, the first five.
#[test]
fn consume_max_stops_after_n_records() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "many", "--partitions", "1"]);
    broker.run_with_stdin(
        &["produce", "many"],
        &(numbered_lines(20).join("\n") + "\n"),
    );

    let consumed = broker.run(&["consume", "many", "--from-beginning", "--max", "5"]);
    assert_eq!(consumed.lines().collect::<Vec<_>>(), numbered_lines(5));
}

/// A CSV file becomes one JSON object per row, keyed by the header.
#[test]
fn csv_rows_become_json_objects_keyed_by_header() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let csv = "sensor,pm25,note\ns1,12,\"dusty, windy\"\ns2,7,\n";
    let file = write_file(data.path(), "air.csv", csv);
    let produced = broker.run(&[
        "produce",
        "air",
        "--file",
        &file,
        "--format",
        "csv",
        "--key-column",
        "sensor",
    ]);
    assert!(produced.contains("acknowledged 2 records"), "{produced}");

    let consumed = broker.run(&["consume", "air", "--from-beginning", "--format", "json"]);
    let records = json_lines(&consumed);
    assert_eq!(records.len(), 2);
    let values: Vec<serde_json::Value> = records
        .iter()
        .map(|record| serde_json::from_str(record["value"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        values[0],
        serde_json::json!({"sensor": "s1", "pm25": "12", "note": "dusty, windy"})
    );
    assert_eq!(
        values[1],
        serde_json::json!({"sensor": "s2", "pm25": "7", "note": ""})
    );
    assert_eq!(records[0]["key"], "s1");
}

/// A CSV row with the wrong column count fails with its line; nothing is sent.
#[test]
fn bad_csv_row_sends_nothing() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let file = write_file(data.path(), "bad.csv", "a,b\n1,2\n3\n4,5\n");
    let (code, stderr) = broker.run_failing(
        &["produce", "badcsv", "--file", &file, "--format", "csv"],
        "",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 3: expected 2 fields"), "{stderr}");
    let list = broker.run(&["topic", "list"]);
    assert!(!list.contains("badcsv"), "a record was sent:\n{list}");
}

/// Producer-log lines land in the topic named on each line, with the
/// time as timestamp and the tag as key and header; JSON output carries
/// the broker's HLC and its milliseconds.
#[test]
fn producer_log_routes_each_line_to_its_topic() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let log = "time\tmessage\ttag\ttopic\n\
               2024-05-01T12:00:00Z\tPM2.5 high\tair\tcity.alerts\n\
               1714564800500\tbus 42 late\ttraffic\tcity.events\n\
               2024-05-01T12:00:01.250Z\tPM2.5 normal\tair\tcity.alerts\n";
    let file = write_file(data.path(), "city.log", log);
    let produced = broker.run(&["produce", "--file", &file, "--format", "producer-log"]);
    assert!(produced.contains("acknowledged 3 records"), "{produced}");

    let alerts = broker.run(&[
        "consume",
        "city.alerts",
        "--from-beginning",
        "--format",
        "json",
    ]);
    let alerts = json_lines(&alerts);
    let values: Vec<&str> = alerts
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["PM2.5 high", "PM2.5 normal"]);
    assert_eq!(alerts[0]["timestamp"], 1_714_564_800_000_i64);
    assert_eq!(alerts[1]["timestamp"], 1_714_564_801_250_i64);
    assert_eq!(alerts[0]["key"], "air");
    assert_eq!(alerts[0]["headers"]["tag"], "air");
    let hlc = |i: usize| alerts[i]["hlc"].as_u64().unwrap();
    assert!(hlc(0) < hlc(1), "HLCs grow along the partition");
    assert_eq!(alerts[0]["hlc_ms"].as_i64().unwrap(), (hlc(0) >> 16) as i64);

    let events = broker.run(&["consume", "city.events", "--from-beginning"]);
    assert_eq!(events, "bus 42 late\n");

    let since = broker.run(&[
        "consume",
        "city.alerts",
        "--from-time",
        "2024-05-01T12:00:01Z",
    ]);
    assert_eq!(since, "PM2.5 normal\n");
}

/// `--key`, `--partition` and `--header` reach the record, as JSON shows.
#[test]
fn key_partition_and_headers_are_applied() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "keyed", "--partitions", "3"]);
    let args = [
        "produce",
        "keyed",
        "--key",
        "station-7",
        "--partition",
        "2",
        "--header",
        "unit=ug/m3",
        "--acks",
        "quorum",
        "--idempotent",
    ];
    broker.run_with_stdin(&args, "12\n13\n");

    let consumed = broker.run(&["consume", "keyed", "--from-beginning", "--format", "json"]);
    let records = json_lines(&consumed);
    assert_eq!(records.len(), 2, "{consumed}");
    for (record, value) in records.iter().zip(["12", "13"]) {
        assert_eq!(record["partition"], 2);
        assert_eq!(record["key"], "station-7");
        assert_eq!(record["headers"]["unit"], "ug/m3");
        assert_eq!(record["value"], value);
    }
}

/// `--key-separator` splits each stdin line into key and value; `--no-idempotent`
/// still writes every line.
#[test]
fn key_separator_keys_each_line() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "split", "--partitions", "2"]);
    let args = [
        "produce",
        "split",
        "--key-separator",
        "=",
        "--no-idempotent",
    ];
    let out = broker.run_with_stdin(&args, "a=1\nb=2=3\na=4\n");
    assert!(out.contains("acknowledged 3 records"), "{out}");
    let consumed = broker.run(&["consume", "split", "--from-beginning", "--format", "json"]);
    let mut pairs: Vec<(String, String)> = json_lines(&consumed)
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    let expected = [("a", "1"), ("a", "4"), ("b", "2=3")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(pairs, expected);
}

/// Producer settings that cannot work are refused with a usage error
/// (exit 2) and write nothing.
#[test]
fn bad_producer_settings_send_nothing() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "strict", "--partitions", "1"]);
    let refused: [(&[&str], &str); 4] = [
        (&["--delivery-timeout-ms", "0"], "delivery_timeout_ms"),
        (&["--key-separator", ""], "must not be empty"),
        (
            &["--key-separator", ",", "--format", "csv"],
            "--format lines only",
        ),
        (
            &["--key-separator", ",", "--key", "k"],
            "cannot be used with",
        ),
    ];
    for (flags, message) in refused {
        let mut args = vec!["produce", "strict"];
        args.extend_from_slice(flags);
        let (code, stderr) = broker.run_failing(&args, "a,1\n");
        assert_eq!(code, 2, "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
    // A stdin line without the separator stops the stream at that line.
    let args = ["produce", "strict", "--key-separator", ","];
    let (code, stderr) = broker.run_failing(&args, "no separator\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 1: no key separator"), "{stderr}");
    let consumed = broker.run(&["consume", "strict", "--from-beginning"]);
    assert_eq!(consumed, "", "nothing was written");
}

/// A producer-log line with a bad time or topic name is refused before
/// anything is sent.
#[test]
fn producer_log_bad_time_sends_nothing() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    let log = "1000\tok\tt\tfirst.topic\nlater\tbad\tt\tfirst.topic\n";
    let file = write_file(data.path(), "bad.log", log);
    let (code, stderr) = broker.run_failing(
        &["produce", "--file", &file, "--format", "producer-log"],
        "",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(!broker.run(&["topic", "list"]).contains("first.topic"));

    let log = "1000\tok\tt\tfirst.topic\n2000\tbad\tt\tno spaces\n";
    let file = write_file(data.path(), "bad-topic.log", log);
    let (code, stderr) = broker.run_failing(
        &["produce", "--file", &file, "--format", "producer-log"],
        "",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("line 2: invalid topic name"), "{stderr}");
    assert!(!broker.run(&["topic", "list"]).contains("first.topic"));
}

/// `--follow` keeps waiting and prints records produced after it started.
#[test]
fn follow_prints_records_produced_later() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "later", "--partitions", "1"]);
    broker.run_with_stdin(&["produce", "later"], "before\n");
    let follow = broker.spawn(&[
        "consume",
        "later",
        "--from-beginning",
        "--follow",
        "--max",
        "3",
    ]);
    assert_eq!(follow.next_line(), "before");
    broker.run_with_stdin(&["produce", "later"], "after-1\nafter-2\n");
    let (status, rest) = follow.wait();
    assert!(status.success(), "{status}");
    assert_eq!(rest, vec!["after-1", "after-2"]);
}

/// On a compacted topic `--tombstone` sends one tombstone per stdin line
/// (the line is the key), and `consume --format json` shows it as
/// `"value": null` after the value it deletes; a delete topic refuses it.
#[test]
fn tombstones_are_produced_by_key_and_consumed_as_null() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "retained", "--cleanup", "compact"]);
    let produced = broker.run_with_stdin(
        &["produce", "retained", "--key-separator", ","],
        "lamp,on\n",
    );
    assert!(produced.contains("acknowledged 1 records"), "{produced}");
    let produced = broker.run_with_stdin(&["produce", "retained", "--tombstone"], "lamp\n");
    assert!(produced.contains("acknowledged 1 records"), "{produced}");

    let consumed = broker.run(&[
        "consume",
        "retained",
        "--from-beginning",
        "--format",
        "json",
    ]);
    let records = json_lines(&consumed);
    assert_eq!(records.len(), 2, "{consumed}");
    assert_eq!(records[0]["value"], "on");
    assert_eq!(records[1]["key"], "lamp");
    assert!(records[1]["value"].is_null(), "{consumed}");

    broker.run(&["topic", "create", "plain"]);
    let (code, stderr) = broker.run_failing(&["produce", "plain", "--tombstone"], "lamp\n");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("null values (tombstones) need a compacted topic"),
        "{stderr}"
    );
}
