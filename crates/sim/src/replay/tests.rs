//! Loading replay files: typed objects in header order, and every kind of
//! bad file refused with its line before anything could be sent.

use serde_json::json;

use super::*;

fn columns(key: &str, time: Option<&str>) -> ReplayColumns {
    ReplayColumns {
        key: key.to_owned(),
        time: time.map(str::to_owned),
    }
}

fn load(text: &str, columns: &ReplayColumns) -> Result<ReplayFile, ReplayError> {
    ReplayFile::parse(Path::new("sensors.csv"), text, columns)
}

fn object(file: &ReplayFile, row: usize, lamport: u64) -> serde_json::Value {
    let record = file.rows[row].record(&file.header, "city.replay", lamport);
    serde_json::from_slice(&record.value).unwrap()
}

/// Each row becomes an object of the header's fields in header order,
/// numbers where they parse as finite numbers, with `lamport` appended;
/// the record is keyed by the key column and sent with `priority: low`.
#[test]
fn rows_become_typed_objects() {
    let text = "sequence,timestamp,sensor_id,temperature_c,note\n\
                1,1700000000000,b-1,21.5,\"ok, fine\"\n\
                2,1700000010000,b-2,-3,NaN\n";
    let file = load(text, &columns("sensor_id", Some("timestamp"))).unwrap();
    assert_eq!(file.rows(), 2);
    assert!(file.has_times());
    let first = file.rows[0].record(&file.header, "city.replay", 7);
    assert_eq!(first.key.as_deref(), Some(&b"b-1"[..]));
    assert_eq!(
        first.headers,
        vec![("priority".to_owned(), Bytes::from_static(b"low"))]
    );
    assert_eq!(
        String::from_utf8(first.value.to_vec()).unwrap(),
        r#"{"sequence":1,"timestamp":1700000000000,"sensor_id":"b-1","temperature_c":21.5,"note":"ok, fine","lamport":7}"#
    );
    assert_eq!(
        object(&file, 1, 8),
        json!({"sequence": 2, "timestamp": 1_700_000_010_000_i64, "sensor_id": "b-2", "temperature_c": -3, "note": "NaN", "lamport": 8})
    );
    assert_eq!(file.rows[1].time_ms, Some(1_700_000_010_000));
}

/// A row's own `lamport` column is replaced by the publisher's counter,
/// which moves past it first.
#[test]
fn own_lamport_is_witnessed() {
    let file = load("k,lamport\na,41\nb,x\n", &columns("k", None)).unwrap();
    assert_eq!(file.rows[0].own_lamport(&file.header), Some(41));
    assert_eq!(file.rows[1].own_lamport(&file.header), None);
    assert_eq!(object(&file, 0, 42), json!({"k": "a", "lamport": 42}));
    assert!(!file.has_times());
}

fn refused(text: &str, columns: &ReplayColumns) -> String {
    load(text, columns).unwrap_err().to_string()
}

/// Ragged rows (too few or too many fields) are refused with their line.
#[test]
fn ragged_rows_are_refused() {
    let message = refused("a,b,c\n1,2,3\n4,5\n", &columns("a", None));
    assert_eq!(
        message,
        "sensors.csv line 3: 2 fields, but the header has 3"
    );
    let message = refused("a,b\n1,2\n\n3,\"4,5\",6\n", &columns("a", None));
    assert_eq!(
        message,
        "sensors.csv line 4: 3 fields, but the header has 2"
    );
}

/// A bad header (missing key or time column, duplicate or empty name, no
/// header at all) is refused naming line 1.
#[test]
fn bad_headers_are_refused() {
    let message = refused("a,b\n1,2\n", &columns("station", None));
    assert_eq!(
        message,
        "sensors.csv line 1: no column \"station\" in the header (a,b)"
    );
    let message = refused("a,b\n1,2\n", &columns("a", Some("ts")));
    assert!(message.contains("no column \"ts\""), "{message}");
    assert!(refused("a,a\n1,2\n", &columns("a", None)).contains("twice"));
    assert!(
        refused("a,,c\n1,2,3\n", &columns("a", None))
            .contains("column 2 of the header has no name")
    );
    assert!(refused("", &columns("a", None)).contains("empty"));
}

/// Bad times and bad quoting are refused with their line.
#[test]
fn bad_times_and_quoting_are_refused() {
    let message = refused("k,t\na,1700000000\nb,yesterday\n", &columns("k", Some("t")));
    assert!(
        message.starts_with("sensors.csv line 3: time \"yesterday\""),
        "{message}"
    );
    let message = refused("k,t\na,\"1\n", &columns("k", None));
    assert_eq!(
        message,
        "sensors.csv is not valid CSV: line 2: a quoted field is never closed"
    );
}

/// A missing file is refused naming it.
#[test]
fn missing_file_is_refused() {
    let error =
        ReplayFile::load(Path::new("/nonexistent/city.csv"), &columns("k", None)).unwrap_err();
    assert!(matches!(error, ReplayError::Read { .. }));
    assert_eq!(error.to_string(), "cannot read /nonexistent/city.csv");
}
