//! The HTTP API against a real broker (in-memory, on 127.0.0.1:0) through
//! a real HTTP client (reqwest): topics, produce in every body form, reads
//! by offset and time, group reads that hand each record out once, health,
//! the OpenAPI document, and every refusal with its status and code (and
//! nothing written).

mod common;

use citystream_http::HttpConfig;
use common::{Api, assert_error, bounded};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Topics are created, listed, described and deleted; a second create is
/// 409, an unknown topic 404, a bad name 400.
#[tokio::test]
async fn topics_lifecycle() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("air", 3).await;
        let (status, list) = api.get("/api/topics").await;
        assert_eq!(status, StatusCode::OK);
        let names: Vec<&str> = list["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"air"), "{list}");
        let (status, topic) = api.get("/api/topics/air").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(topic["partitions"].as_array().unwrap().len(), 3);
        let (status, body) = api.post_json("/api/topics", json!({"name": "air"})).await;
        assert_error(status, &body, StatusCode::CONFLICT, "TOPIC_ALREADY_EXISTS");
        let (status, body) = api
            .post_json("/api/topics", json!({"name": "no spaces"}))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "INVALID_TOPIC_NAME");
        let (status, body) = api
            .post_json("/api/topics", json!({"name": "x", "partitions": "3"}))
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let response = api
            .http
            .delete(api.url("/api/topics/air"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let (status, body) = api.get("/api/topics/air").await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "UNKNOWN_TOPIC");
        let response = api
            .http
            .delete(api.url("/api/topics/air"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    })
    .await;
}

/// Headers sent as a list keep their order and repeated names; reading
/// back shows them all in `header_list` (and the last value per name in
/// `headers`); a record whose names are unique has no `header_list`.
#[tokio::test]
async fn repeated_headers_round_trip_in_order() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("tags", 1).await;
        let listed = json!([
            {"name": "tag", "value": "north"},
            {"name": "unit", "value": "C"},
            {"name": "tag", "value": "air"},
        ]);
        let body = json!([
            {"value": "a", "headers": listed},
            {"value": "b", "headers": {"unit": "C"}},
        ]);
        let (status, answer) = api.post_json("/api/topics/tags/records", body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        let (_, read) = api.get("/api/topics/tags/records?offset=0&limit=2").await;
        let (first, second) = (&read["records"][0], &read["records"][1]);
        assert_eq!(first["header_list"], listed);
        assert_eq!(first["headers"], json!({"tag": "air", "unit": "C"}));
        assert!(second.get("header_list").is_none(), "{second}");
        assert_eq!(second["headers"], json!({"unit": "C"}));
    })
    .await;
}

/// A JSON record, a JSON array, NDJSON and a raw body are all produced;
/// the answer names each record's partition and offset, and the records
/// read back in order with their keys and headers.
#[tokio::test]
async fn produce_every_body_form_and_read_back() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("city", 1).await;
        let (status, one) = api
            .post_json(
                "/api/topics/city/records",
                json!({"value": "first", "key": "s1", "headers": {"unit": "C"}}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{one}");
        assert_eq!(one["records"][0], json!({"partition": 0, "offset": 0}));
        let (status, many) = api
            .post_json(
                "/api/topics/city/records",
                json!([{"value": {"pm25": 12}}, {"value": 7}]),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{many}");
        assert_eq!(many["records"][1]["offset"], 2);
        let ndjson = "{\"value\":\"n1\"}\n{\"value\":\"n2\"}\n";
        let (status, _) = api
            .post_raw("/api/topics/city/records", "application/x-ndjson", ndjson)
            .await;
        assert_eq!(status, StatusCode::OK);
        let (status, raw) = api
            .post_raw("/api/topics/city/records?key=k9", "text/plain", "raw body")
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(raw["records"][0]["offset"], 5);
        assert_eq!(
            api.values("city", 0).await,
            ["first", "{\"pm25\":12}", "7", "n1", "n2", "raw body"]
        );
        let (_, read) = api.get("/api/topics/city/records?offset=0&limit=1").await;
        let first = &read["records"][0];
        assert_eq!(
            (first["key"].as_str(), first["headers"]["unit"].as_str()),
            (Some("s1"), Some("C"))
        );
        assert_eq!(read["next_offset"], 1);
        assert_eq!(read["high_watermark"], 6);
        let (_, from_time) = api
            .get("/api/topics/city/records?timestamp=0&limit=2")
            .await;
        assert_eq!(from_time["records"].as_array().unwrap().len(), 2);
    })
    .await;
}

/// Many records in one request, spread over partitions by key, keep each
/// key's order.
#[tokio::test]
async fn keyed_batch_keeps_each_keys_order() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("keyed", 4).await;
        let records: Vec<Value> = (0..400)
            .map(|i| json!({"key": format!("k{}", i % 8), "value": format!("{i}")}))
            .collect();
        let (status, produced) = api
            .post_json("/api/topics/keyed/records", Value::Array(records))
            .await;
        assert_eq!(status, StatusCode::OK, "{produced}");
        assert_eq!(produced["records"].as_array().unwrap().len(), 400);
        let mut total = 0;
        for partition in 0..4 {
            let values: Vec<u32> = api
                .values("keyed", partition)
                .await
                .iter()
                .map(|v| v.parse().unwrap())
                .collect();
            total += values.len();
            for key in 0..8 {
                let of_key: Vec<u32> = values.iter().copied().filter(|v| v % 8 == key).collect();
                assert!(
                    of_key.windows(2).all(|w| w[0] < w[1]),
                    "key {key}: {of_key:?}"
                );
            }
        }
        assert_eq!(total, 400);
    })
    .await;
}

/// Every bad produce is refused with its status and code, and nothing is
/// written: malformed JSON, wrong types, unknown topic or partition, too
/// many records, a body over the limit, a record over the broker's limit.
#[tokio::test]
async fn bad_produce_requests_write_nothing() {
    bounded(async {
        let config = HttpConfig {
            body_bytes_max: 4 * 1024,
            records_per_request_max: 5,
            ..HttpConfig::default()
        };
        let api = Api::start_with(config).await;
        api.create_topic("strict", 2).await;
        let path = "/api/topics/strict/records";
        let cases: Vec<(Value, StatusCode, &str)> = vec![
            (
                json!({"key": "no value"}),
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                json!({"value": "x", "partition": "one"}),
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                json!([{"value": "ok"}, {"value": "x", "bogus": 1}]),
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                json!([{"value": "ok"}, {"value": "x", "partition": 7}]),
                StatusCode::NOT_FOUND,
                "UNKNOWN_PARTITION",
            ),
            (
                json!(vec![json!({"value": 1}); 6]),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            (
                json!({"value": "x".repeat(5_000)}),
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
            ),
            (json!([]), StatusCode::BAD_REQUEST, "BAD_REQUEST"),
        ];
        for (body, expected, code) in cases {
            let (status, answer) = api.post_json(path, body.clone()).await;
            assert_error(status, &answer, expected, code);
        }
        let (status, answer) = api.post_raw(path, "application/json", "{not json").await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let (status, answer) = api
            .post_json("/api/topics/missing/records", json!({"value": 1}))
            .await;
        assert_error(status, &answer, StatusCode::NOT_FOUND, "UNKNOWN_TOPIC");
        let (status, answer) = api
            .post_raw("/api/topics/strict/records?acks=all", "text/plain", "x")
            .await;
        assert_error(status, &answer, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        for partition in 0..2 {
            assert!(
                api.values("strict", partition).await.is_empty(),
                "partition {partition} was written"
            );
        }
    })
    .await;
}

/// Reads refuse bad parameters and offsets outside the log.
#[tokio::test]
async fn bad_reads_are_refused() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("r", 1).await;
        let cases = [
            (
                "/api/topics/r/records?limit=0",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/topics/r/records?limit=abc",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/topics/r/records?offset=1&timestamp=5",
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
            ),
            (
                "/api/topics/r/records?offset=99",
                StatusCode::BAD_REQUEST,
                "OFFSET_OUT_OF_RANGE",
            ),
            (
                "/api/topics/r/records?partition=3",
                StatusCode::NOT_FOUND,
                "UNKNOWN_PARTITION",
            ),
            (
                "/api/topics/nope/records",
                StatusCode::NOT_FOUND,
                "UNKNOWN_TOPIC",
            ),
        ];
        for (path, expected, code) in cases {
            let (status, body) = api.get(path).await;
            assert_error(status, &body, expected, code);
        }
    })
    .await;
}

/// A group read returns only what the group has not consumed yet and
/// commits past it; describe shows the lag; an explicit commit moves it.
#[tokio::test]
async fn group_reads_hand_each_record_out_once() {
    bounded(async {
        let api = Api::start().await;
        api.create_topic("g", 2).await;
        let records: Vec<Value> = (0..10)
            .map(|i| json!({"value": format!("v{i}"), "partition": i % 2}))
            .collect();
        api.post_json("/api/topics/g/records", Value::Array(records))
            .await;
        let path = "/api/groups/dash/records?topic=g&limit=6";
        let (status, first) = api.post_json(path, Value::Null).await;
        assert_eq!(status, StatusCode::OK, "{first}");
        let (_, second) = api.post_json(path, Value::Null).await;
        let (_, third) = api.post_json(path, Value::Null).await;
        let mut seen: Vec<String> = [&first, &second, &third]
            .iter()
            .flat_map(|read| {
                read["records"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["value"].as_str().unwrap().to_owned())
            })
            .collect();
        assert_eq!(first["records"].as_array().unwrap().len(), 6);
        assert!(third["records"].as_array().unwrap().is_empty(), "{third}");
        seen.sort();
        let mut expected: Vec<String> = (0..10).map(|i| format!("v{i}")).collect();
        expected.sort();
        assert_eq!(seen, expected, "each record once");
        let (status, group) = api.get("/api/groups/dash").await;
        assert_eq!(status, StatusCode::OK, "{group}");
        let lags: Vec<u64> = group["offsets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["lag"].as_u64().unwrap())
            .collect();
        assert_eq!(lags, [0, 0]);
        let commit = json!({"topic": "g", "partition": 0, "offset": 3});
        let response = api
            .http
            .post(api.url("/api/groups/dash/offsets"))
            .json(&commit)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let (_, again) = api.post_json(path, Value::Null).await;
        assert_eq!(again["records"].as_array().unwrap().len(), 2, "{again}");
        let (status, body) = api
            .post_json("/api/groups/dash/records?topic=nope", Value::Null)
            .await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "UNKNOWN_TOPIC");
        let (status, body) = api.post_json("/api/groups/dash/records", Value::Null).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");
    })
    .await;
}

/// Health, readiness and the cluster view answer on a standalone broker.
#[tokio::test]
async fn health_readiness_and_cluster() {
    bounded(async {
        let api = Api::start().await;
        assert_eq!(
            api.get("/healthz").await,
            (StatusCode::OK, json!({"status": "ok"}))
        );
        let (status, ready) = api.get("/readyz").await;
        assert_eq!(
            (status, ready["status"].as_str()),
            (StatusCode::OK, Some("ready"))
        );
        let (status, cluster) = api.get("/api/cluster").await;
        assert_eq!(status, StatusCode::OK);
        assert!(cluster["nodes"].is_array(), "{cluster}");
    })
    .await;
}

/// The OpenAPI document lists every route the router serves.
#[tokio::test]
async fn openapi_lists_every_route() {
    bounded(async {
        let api = Api::start().await;
        let (status, doc) = api.get("/api/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        let paths = doc["paths"].as_object().unwrap();
        let expected = [
            ("/healthz", "get"),
            ("/readyz", "get"),
            ("/api/cluster", "get"),
            ("/metrics", "get"),
            ("/api/topics", "get"),
            ("/api/topics", "post"),
            ("/api/topics/{topic}", "get"),
            ("/api/topics/{topic}", "delete"),
            ("/api/topics/{topic}/records", "get"),
            ("/api/topics/{topic}/records", "post"),
            ("/api/topics/{topic}/stream", "get"),
            ("/api/groups", "get"),
            ("/api/groups/{group}", "get"),
            ("/api/groups/{group}/records", "post"),
            ("/api/groups/{group}/offsets", "post"),
            ("/api/city/latest", "get"),
            ("/api/city/latest/{station}", "get"),
            ("/api/city/stations/{id}/export.csv", "get"),
            ("/api/webhooks", "get"),
            ("/api/webhooks", "post"),
            ("/api/webhooks/{id}", "get"),
            ("/api/webhooks/{id}", "delete"),
            ("/api/demo", "get"),
            ("/api/demo/nodes/{node}/{action}", "post"),
        ];
        for (path, method) in expected {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} missing"
            );
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(
            documented,
            expected.len(),
            "every documented route is tested here"
        );
    })
    .await;
}

/// With a CORS origin set, preflights and answers carry it.
#[tokio::test]
async fn cors_origin_is_announced() {
    bounded(async {
        let config = HttpConfig {
            cors_origin: Some("http://dash.example:8080".into()),
            ..HttpConfig::default()
        };
        let api = Api::start_with(config).await;
        let response = api
            .http
            .get(api.url("/healthz"))
            .header("origin", "http://dash.example:8080")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            "http://dash.example:8080"
        );
    })
    .await;
}

/// `/api/demo` acts only on brokers a `citystream demo` started: others
/// list no nodes and answer actions with 404; a bad node id or action is
/// 400 before anything else.
#[tokio::test]
async fn demo_routes_refuse_outside_a_demo() {
    bounded(async {
        let api = Api::start().await;
        let (status, body) = api.get("/api/demo").await;
        assert_eq!((status, body), (StatusCode::OK, json!({"nodes": []})));
        let (status, body) = api.post_json("/api/demo/nodes/1/stop", json!({})).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "NOT_FOUND");
        let (status, body) = api.post_json("/api/demo/nodes/one/stop", json!({})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");
        let (status, body) = api.post_json("/api/demo/nodes/1/reboot", json!({})).await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "BAD_REQUEST");
    })
    .await;
}

/// Every node serves the web console at `/` (its assets under `/console/`).
#[tokio::test]
async fn the_console_is_served_at_the_root() {
    bounded(async {
        let api = Api::start().await;
        let response = api.http.get(api.url("/")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let page = response.text().await.unwrap();
        assert!(page.contains("/console/js/main.js"), "{page}");
        let script = api
            .http
            .get(api.url("/console/js/main.js"))
            .send()
            .await
            .unwrap();
        assert_eq!(script.status(), StatusCode::OK);
    })
    .await;
}
