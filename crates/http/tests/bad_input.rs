//! Seeded random bad input to every POST route (random bytes, JSON of the
//! wrong shape or types, bodies over the limit): each gets a 4xx JSON error
//! and changes nothing (no record written, no topic created, no offset
//! committed, no webhook registered). Raw bodies of other content types are records by design, so
//! the JSON routes are fed JSON content types.

mod common;

use citystream_http::HttpConfig;
use common::{Api, bounded};
use serde_json::{Value, json};

const CASES: usize = 300;

/// A small deterministic generator (xorshift), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// A JSON value of a random type (never a valid record object).
    fn wrong_json(&mut self) -> Value {
        match self.below(11) {
            9 => json!(["fuzz-topic", 1]),
            10 => json!(["target", 0, 5]),
            0 => json!(self.next()),
            1 => json!("text"),
            2 => json!(null),
            3 => json!([1, "two", null]),
            4 => json!({"value": "x", "partition": "zero"}),
            5 => json!({"value": "x", "headers": [1, 2]}),
            6 => json!({"value": "x", "key": 5}),
            7 => json!({"value": "x", "timestamp": "now"}),
            _ => json!({"values": "typo"}),
        }
    }
}

async fn post(api: &Api, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = api
        .http
        .post(api.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Random bad bodies to produce, topic creation, webhook registration and
/// commits: 4xx, nothing changed.
#[tokio::test]
async fn random_bad_input_is_refused_and_changes_nothing() {
    bounded(async {
        let config = HttpConfig {
            body_bytes_max: 2048,
            ..HttpConfig::default()
        };
        let api = Api::start_with(config).await;
        api.create_topic("target", 2).await;
        let (_, before) = api.get("/api/topics").await;
        let mut rng = Rng(0x5eed_cafe_f00d_0001);
        for case in 0..CASES {
            let (path, content_type) = match rng.below(5) {
                0 => ("/api/topics/target/records", "application/json"),
                1 => ("/api/topics/target/records", "application/x-ndjson"),
                2 => ("/api/topics", "application/json"),
                3 => ("/api/webhooks", "application/json"),
                _ => ("/api/groups/g/offsets", "application/json"),
            };
            let body = match rng.below(3) {
                0 => {
                    let len = rng.below(64) as usize + 1;
                    rng.bytes(len)
                }
                1 => serde_json::to_vec(&rng.wrong_json()).unwrap(),
                _ => vec![b'{'; 4096], // over the body limit
            };
            let (status, answer) = post(&api, path, content_type, body.clone()).await;
            assert!(
                (400..500).contains(&status),
                "case {case}: {path} {content_type} {:?} got {status} {answer}",
                String::from_utf8_lossy(&body)
            );
            assert!(answer["error"]["code"].is_string(), "case {case}: {answer}");
        }
        let (_, after) = api.get("/api/topics").await;
        assert_eq!(before, after, "no topic created, no record written");
        for partition in 0..2 {
            assert!(api.values("target", partition).await.is_empty());
        }
        let (_, webhooks) = api.get("/api/webhooks").await;
        assert_eq!(webhooks, json!({"webhooks": []}), "no webhook registered");
        let (status, _) = api.get("/api/groups/g").await;
        let (_, groups) = api.get("/api/groups").await;
        assert!(
            status == 404 || groups["groups"].as_array().unwrap().is_empty(),
            "no offset committed"
        );
    })
    .await;
}
