//! Unit tests of the key schema: exact keys, round trips, refused names, and peers'
//! malformed values.

use std::collections::BTreeMap;

use super::*;

fn sample() -> NodeInfo {
    let mut info = NodeInfo::new(NodeId(3), "city-north")
        .with_listener("native", "127.0.0.2:9400")
        .with_listener("http", "127.0.0.2:6001");
    info.generation = 1_700_000_000_123;
    info.load = NodeLoad {
        partitions_led: 12,
        bytes_in_per_s: 1_048_576,
        bytes_out_per_s: 7,
        cpu_permille: 250,
    };
    info.leaderships = BTreeMap::from([("t3/0".to_string(), 2), ("meta".to_string(), 7)]);
    info.metadata_leader = Some(LeaderHint {
        node_id: NodeId(3),
        term: 7,
    });
    info
}

fn as_pairs(map: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    map.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The encoding writes exactly the documented keys with the documented values.
#[test]
fn encodes_exact_keys_and_values() {
    let encoded = sample().to_key_values().unwrap();
    let expected: BTreeMap<String, String> = [
        ("schema_version", "1"),
        ("cluster_id", "city-north"),
        ("node_id", "3"),
        ("addr.http", "127.0.0.2:6001"),
        ("addr.native", "127.0.0.2:9400"),
        ("meta.leader", "3@7"),
        ("leads", "meta@7,t3/0@2"),
        ("load.partitions_led", "12"),
        ("load.bytes_in_per_s", "1048576"),
        ("load.bytes_out_per_s", "7"),
        ("load.cpu_permille", "250"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(encoded, expected);
}

/// Decoding what was encoded gives back the same node, generation included.
#[test]
fn round_trips() {
    let info = sample();
    let encoded = info.to_key_values().unwrap();
    let decoded = NodeInfo::decode("3", info.generation, as_pairs(&encoded)).unwrap();
    assert_eq!(decoded.info, info);
    assert!(decoded.skipped.is_empty());
}

/// A node without leaderships or a leader hint encodes empty values and decodes to none.
#[test]
fn empty_leaderships_round_trip() {
    let info = NodeInfo::new(NodeId(1), "c");
    let encoded = info.to_key_values().unwrap();
    assert_eq!(encoded["leads"], "");
    assert_eq!(encoded["meta.leader"], "");
    let decoded = NodeInfo::decode("1", 0, as_pairs(&encoded)).unwrap();
    assert_eq!(decoded.info, info);
}

/// Names that would break the schema are refused at encode time.
#[test]
fn refuses_unencodable_names() {
    let mut bad_group = NodeInfo::new(NodeId(1), "c");
    bad_group.leaderships.insert("a,b".into(), 1);
    assert!(matches!(
        bad_group.to_key_values(),
        Err(MembershipError::InvalidName { what: "group", .. })
    ));
    let bad_listener = NodeInfo::new(NodeId(1), "c").with_listener("Native", "x:1");
    assert!(bad_listener.to_key_values().is_err());
    let empty_address = NodeInfo::new(NodeId(1), "c").with_listener("native", "");
    assert!(empty_address.to_key_values().is_err());
    assert!(
        NodeInfo::new(NodeId(1), "has space")
            .to_key_values()
            .is_err()
    );
}

/// A leadership list over the value limit is refused rather than silently never sent.
#[test]
fn refuses_oversized_leads() {
    let mut info = NodeInfo::new(NodeId(1), "c");
    for partition in 0..5_000 {
        info.leaderships.insert(format!("topic-{partition}/0"), 1);
    }
    assert!(matches!(
        info.to_key_values(),
        Err(MembershipError::ValueTooLarge { .. })
    ));
}

/// Missing or wrong identity keys make the peer unreadable, with a typed reason.
#[test]
fn identity_errors_are_typed() {
    let encoded = sample().to_key_values().unwrap();
    let mut pairs = as_pairs(&encoded);
    assert!(matches!(
        NodeInfo::decode("4", 0, pairs.clone()),
        Err(DecodeError::NodeIdMismatch { in_value: 3, .. })
    ));
    pairs.retain(|(k, _)| *k != "cluster_id");
    assert_eq!(
        NodeInfo::decode("3", 0, pairs.clone()),
        Err(DecodeError::MissingKey("cluster_id"))
    );
    pairs.retain(|(k, _)| *k != "schema_version");
    pairs.push(("schema_version", "2"));
    assert_eq!(
        NodeInfo::decode("3", 0, pairs),
        Err(DecodeError::UnsupportedSchema("2".into()))
    );
    let junk_id = [
        ("schema_version", "1"),
        ("cluster_id", "c"),
        ("node_id", "x"),
    ];
    assert!(matches!(
        NodeInfo::decode("x", 0, junk_id),
        Err(DecodeError::Malformed { .. })
    ));
}

/// Malformed optional values from a peer are skipped and reported, never a panic.
#[test]
fn malformed_optional_values_are_skipped() {
    let pairs = [
        ("schema_version", "1"),
        ("cluster_id", "c"),
        ("node_id", "9"),
        ("addr.native", "10.0.0.1:9400"),
        ("addr.BAD NAME", "x"),
        ("addr.http", ""),
        ("meta.leader", "one@two"),
        (
            "leads",
            "ok@3,,no-term@,@5,x@-1,also ok@9,fine@18446744073709551615",
        ),
        ("load.partitions_led", "-4"),
        ("load.bytes_in_per_s", "99999999999999999999999"),
        ("load.cpu_permille", "12"),
        ("future.key", "ignored"),
    ];
    let decoded = NodeInfo::decode("9", 5, pairs).unwrap();
    let info = decoded.info;
    assert_eq!(info.node_id, NodeId(9));
    assert_eq!(info.generation, 5);
    assert_eq!(info.listener("native"), Some("10.0.0.1:9400"));
    assert_eq!(info.listeners.len(), 1);
    assert_eq!(info.metadata_leader, None);
    let groups: Vec<_> = info.leaderships.keys().map(String::as_str).collect();
    assert_eq!(groups, ["fine", "ok"]);
    assert_eq!(info.load.partitions_led, 0);
    assert_eq!(info.load.bytes_in_per_s, 0);
    assert_eq!(info.load.cpu_permille, 12);
    // Two listeners, the leader hint, four lead entries and two load values.
    assert_eq!(decoded.skipped.len(), 9, "{:?}", decoded.skipped);
}

/// Arbitrary bytes-as-text in every known key never panic the decoder.
#[test]
fn garbage_never_panics() {
    let garbage = ["", "@", ",", "@@,@", "\u{0}", "é@é", "1@", "@1", "🙂,🙂@1"];
    let keys = [
        "schema_version",
        "cluster_id",
        "node_id",
        "addr.x",
        "meta.leader",
        "leads",
        "load.cpu_permille",
    ];
    for value in garbage {
        let mut pairs = vec![
            ("schema_version", "1"),
            ("cluster_id", "c"),
            ("node_id", "1"),
        ];
        pairs.extend(keys.iter().map(|key| (*key, value)));
        let _ = NodeInfo::decode("1", 0, pairs);
    }
}

/// The diff sets only changed keys and deletes only removed ones.
#[test]
fn diff_is_minimal() {
    let old = sample().to_key_values().unwrap();
    let mut changed = sample();
    changed.load.cpu_permille = 300;
    changed.listeners.remove("http");
    changed
        .listeners
        .insert("mqtt".into(), "127.0.0.2:1883".into());
    let new = changed.to_key_values().unwrap();
    let diff = diff_key_values(&old, &new);
    assert_eq!(
        diff.set,
        vec![
            ("addr.mqtt".to_string(), "127.0.0.2:1883".to_string()),
            ("load.cpu_permille".to_string(), "300".to_string()),
        ]
    );
    assert_eq!(diff.delete, vec!["addr.http".to_string()]);
    assert_eq!(diff_key_values(&new, &new), KeyValueDiff::default());
}
