//! Test harness: an in-memory broker on 127.0.0.1:0, city listeners
//! ("nodes") over it, each with its own native client and webhooks, a real
//! HTTP client (reqwest) aimed at them, an event-stream reader, and a
//! webhook receiver that records what it is POSTed.

#![allow(dead_code, unused_imports)] // each test binary uses a different subset

use std::time::Duration;

use axum::body::Bytes;
use citystream_client::{Client, ClientConfig};
use citystream_http::webhooks::{WebhookConfig, Webhooks};
use futures::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use citystream_testkit::{TestBroker, bounded};

/// How long a test waits for something that should come promptly.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// One city listener over its own native client.
pub struct Node {
    pub base: String,
    pub address: std::net::SocketAddr,
    pub http: reqwest::Client,
    pub webhooks: Webhooks,
    pub shutdown: CancellationToken,
    pub served: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Node {
    pub async fn start(native_address: &str) -> Node {
        let client = Client::connect(ClientConfig::new(native_address))
            .await
            .unwrap();
        let config = WebhookConfig {
            supervise_every: Duration::from_millis(100),
            read_wait_ms: 200,
            ..WebhookConfig::default()
        };
        let webhooks = Webhooks::new(client.clone(), config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(citystream_compat_city::serve(
            listener,
            client,
            webhooks.clone(),
            shutdown.clone(),
        ));
        Node {
            base: format!("http://{address}"),
            address,
            http: reqwest::Client::new(),
            webhooks,
            shutdown,
            served,
        }
    }

    /// Runs webhook delivery for this node until it stops.
    pub fn spawn_delivery(&self) {
        self.webhooks.spawn_delivery(self.shutdown.child_token());
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::of(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        let request = self.http.post(self.url(path)).json(&body);
        Answer::of(request.send().await.unwrap()).await
    }

    /// POSTs `body` as it is, typed `application/json`.
    pub async fn post_bytes(&self, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        let request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.into());
        Answer::of(request.send().await.unwrap()).await
    }

    /// Publishes `object` (it names its topic); fails the test unless the
    /// answer is 200 with an empty body.
    pub async fn publish(&self, object: &Value) {
        let answer = self.post("/publish", object.clone()).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.text, "");
    }

    /// The `logs` of `GET /logs/<topic>` (`topic` percent-encoded as needed).
    pub async fn logs(&self, path_topic: &str) -> Vec<Value> {
        let answer = self.get(&format!("/logs/{path_topic}")).await;
        answer.assert_json(StatusCode::OK);
        answer.body["logs"].as_array().expect("a logs list").clone()
    }

    /// Subscribes or unsubscribes; returns the answer.
    pub async fn subscription(&self, route: &str, body: Value) -> Answer {
        self.post(route, body).await
    }

    /// Opens `GET /stream/<path_topic>` and checks its head.
    pub async fn open_stream(&self, path_topic: &str) -> EventReader {
        let response = self
            .http
            .get(self.url(&format!("/stream/{path_topic}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        EventReader {
            chunks: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
        }
    }
}

/// Reads an event stream event by event.
pub struct EventReader {
    chunks: std::pin::Pin<Box<dyn futures::Stream<Item = Result<Bytes, reqwest::Error>> + Send>>,
    buffer: Vec<u8>,
}

impl EventReader {
    /// The next event's raw text (without its blank line), within `wait`;
    /// `None` if none came in time. Panics if the stream ends.
    pub async fn next_event_within(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                assert!(event.is_ascii(), "a non-ASCII event: {event:?}");
                return Some(String::from_utf8(event).unwrap());
            }
            let chunk = tokio::time::timeout_at(deadline, self.chunks.next()).await;
            match chunk {
                Err(_) => return None,
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk.unwrap()),
                Ok(None) => panic!("the stream ended"),
            }
        }
    }

    /// The next event, which must come promptly.
    pub async fn next_event(&mut self) -> String {
        self.next_event_within(PROMPTLY)
            .await
            .expect("an event within 5 s")
    }

    /// The next `data:` event's JSON (heartbeats would fail the test).
    pub async fn next_data(&mut self) -> Value {
        let event = self.next_event().await;
        let json = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data event: {event:?}"));
        assert!(
            !json.contains('\n'),
            "an event on more than one line: {event:?}"
        );
        serde_json::from_str(json).unwrap()
    }

    /// Whether the stream ends within `wait` (reading past any events).
    pub async fn ends_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.chunks.next()).await {
                Err(_) => return false,
                Ok(None) => return true,
                Ok(Some(Err(_))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub async fn of(response: reqwest::Response) -> Answer {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    /// `status`, `application/json`, CORS for any origin, ASCII.
    pub fn assert_json(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.text);
        assert_eq!(self.headers["content-type"], "application/json");
        assert_eq!(self.headers["access-control-allow-origin"], "*");
        assert!(self.text.is_ascii(), "{}", self.text);
    }

    /// 200 with exactly `{"message":message}` (ASCII-escaped as needed).
    pub fn assert_message(&self, message: &str) {
        self.assert_json(StatusCode::OK);
        assert_eq!(self.body, json!({ "message": message }), "{}", self.text);
    }

    /// 400 with exactly `{"error":message}`.
    pub fn assert_error(&self, message: &str) {
        self.assert_json(StatusCode::BAD_REQUEST);
        assert_eq!(self.body, json!({ "error": message }), "{}", self.text);
    }
}

/// A local HTTP server recording the bodies POSTed to it, in order.
pub struct Receiver {
    pub url: String,
    bodies: mpsc::Receiver<Bytes>,
    shutdown: CancellationToken,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Bodies a receiver holds before it answers 503 (the deliverer retries).
const RECEIVER_BODIES_MAX: usize = 1_024;

impl Receiver {
    pub async fn start() -> Receiver {
        let (sender, bodies) = mpsc::channel::<Bytes>(RECEIVER_BODIES_MAX);
        let record = move |body: Bytes| {
            let sender = sender.clone();
            async move {
                match sender.try_send(body) {
                    Ok(()) => StatusCode::OK,
                    Err(_) => StatusCode::SERVICE_UNAVAILABLE,
                }
            }
        };
        let app = axum::Router::new().route("/hook", axum::routing::post(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        Receiver {
            url,
            bodies,
            shutdown,
        }
    }

    /// The next body POSTed, as JSON, within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let body = tokio::time::timeout(wait, self.bodies.recv())
            .await
            .ok()??;
        Some(serde_json::from_slice(&body).expect("a JSON body"))
    }
}
