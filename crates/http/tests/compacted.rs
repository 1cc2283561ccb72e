//! Compacted topics over HTTP (decision 0017 §4, §9): a topic is created
//! and described with its cleanup settings, a `"value": null` record is a
//! tombstone that reads back as `null`, and what a topic's policy forbids
//! is refused with 400 before anything is written.

mod common;

use common::{Api, assert_error, bounded};
use reqwest::StatusCode;
use serde_json::json;

/// A compacted topic is created with its settings and shows them; an
/// unknown policy and a zero tombstone retention are 400.
#[tokio::test]
async fn compacted_topic_settings() {
    bounded(async {
        let api = Api::start().await;
        let body = json!({
            "name": "retained",
            "cleanup": "compact",
            "tombstone_retention_ms": 60_000,
            "segment_roll_ms": 600_000,
        });
        let (status, created) = api.post_json("/api/topics", body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (status, topic) = api.get("/api/topics/retained").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(topic["cleanup"], "compact", "{topic}");
        assert_eq!(topic["tombstone_retention_ms"], 60_000, "{topic}");
        assert_eq!(topic["segment_roll_ms"], 600_000, "{topic}");
        assert!(topic["compaction_lag_ms"].is_null(), "{topic}");
        api.create_topic("plain", 1).await;
        let (_, plain) = api.get("/api/topics/plain").await;
        assert_eq!(plain["cleanup"], "delete", "{plain}");

        let unknown = json!({"name": "x", "cleanup": "compacted"});
        let (status, body) = api.post_json("/api/topics", unknown).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let zero = json!({"name": "x", "cleanup": "compact", "tombstone_retention_ms": 0});
        let (status, body) = api.post_json("/api/topics", zero).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("tombstone_retention_ms must be greater than 0"),
            "{body}"
        );
    })
    .await;
}

/// On a compacted topic a null value is a tombstone: produced, then read
/// back as `"value": null` after the value it deletes.
#[tokio::test]
async fn tombstone_round_trip() {
    bounded(async {
        let api = Api::start().await;
        let body = json!({"name": "retained", "cleanup": "compact"});
        let (status, created) = api.post_json("/api/topics", body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let records = json!([
            {"key": "lamp", "value": "on"},
            {"key": "lamp", "value": null},
        ]);
        let (status, produced) = api.post_json("/api/topics/retained/records", records).await;
        assert_eq!(status, StatusCode::OK, "{produced}");
        let (status, read) = api.get("/api/topics/retained/records").await;
        assert_eq!(status, StatusCode::OK, "{read}");
        let values: Vec<_> = read["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].clone())
            .collect();
        assert_eq!(values, [json!("on"), json!(null)], "{read}");
    })
    .await;
}

/// A tombstone on a delete topic and a keyless record on a compacted one
/// are 400, naming the record, and nothing of the request is written.
#[tokio::test]
async fn policy_refusals_write_nothing() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("plain", 1).await;
        let records = json!([
            {"key": "lamp", "value": "on"},
            {"key": "lamp", "value": null},
        ]);
        let (status, body) = api.post_json("/api/topics/plain/records", records).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("record 1: a null value (tombstone) needs a compacted topic"),
            "{body}"
        );
        assert!(api.values("plain", 0).await.is_empty());

        let compacted = json!({"name": "retained", "cleanup": "compact,delete"});
        let (status, created) = api.post_json("/api/topics", compacted).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let keyless = json!([{"key": "a", "value": "1"}, {"value": "2"}]);
        let (status, body) = api.post_json("/api/topics/retained/records", keyless).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("record 1 has no key"), "{body}");
        assert!(api.values("retained", 0).await.is_empty());
    })
    .await;
}
