//! Webhook delivery across the death of the delivering node, with real
//! processes: three nodes with `--http`, a replication-3 topic, a webhook
//! registered through one node's API to a receiver in this test (slow on
//! purpose, so the kill lands mid-stream). The node that delivers (the
//! registry's leader) is SIGKILLed after part of the stream arrived; more
//! records are produced; another node takes over from the committed
//! position: every record arrives, none ever ahead of one not yet seen
//! (order kept, at least once), and the registration is still listed by
//! every node, the restarted one too.

use std::collections::BTreeSet;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::failover::create_replicated_topic;
use crate::harness::{http_request, listener_address};
use crate::test_cluster::TestCluster;

const TOPIC: &str = "webhook-failover";
/// Bounds each wait for deliveries.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);
/// The receiver takes this long per POST, so 150 records take 1.5 s.
const RECEIVER_DELAY: Duration = Duration::from_millis(10);

/// A minimal HTTP/1.1 receiver (keep-alive) recording each POST's body.
struct Receiver {
    address: String,
    bodies: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.address); // wake the accept loop
    }
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (got, stopped) = (bodies.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (got, stopped) = (got.clone(), stopped.clone());
                std::thread::spawn(move || serve_connection(stream, &got, &stopped));
            }
        });
        Receiver {
            address,
            bodies,
            stop,
        }
    }

    fn bodies(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            let bodies = self.bodies();
            if done(&bodies) {
                return bodies;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: only {} POSTs within {DELIVERY_TIMEOUT:?}",
                bodies.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn serve_connection(stream: TcpStream, got: &Mutex<Vec<String>>, stop: &AtomicBool) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while !stop.load(Ordering::SeqCst) {
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        std::thread::sleep(RECEIVER_DELAY);
        got.lock().unwrap().push(String::from_utf8(body).unwrap());
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(answer).is_err() {
            return;
        }
    }
}

fn http_address(cluster: &TestCluster, node_id: u32) -> String {
    listener_address(&cluster.broker(node_id).ready_line, "http on ")
}

fn produce(cluster: &TestCluster, via: u32, range: std::ops::RangeInclusive<u32>) {
    let input: String = range.map(|i| format!("{i}\n")).collect();
    let out = cluster
        .broker(via)
        .run_with_stdin(&["produce", TOPIC], &input);
    assert!(out.contains("acknowledged"), "{out}");
}

/// The record numbers of the POSTed bodies (the read API's record JSON).
fn numbers(bodies: &[String]) -> Vec<u32> {
    bodies
        .iter()
        .map(|body| {
            let record: serde_json::Value = serde_json::from_str(body).expect("record JSON");
            record["value"]
                .as_str()
                .expect("a text value")
                .parse()
                .expect("a number")
        })
        .collect()
}

fn describe(address: &str, id: u64) -> serde_json::Value {
    let (status, body) = http_request(address, "GET", &format!("/api/webhooks/{id}"), "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn webhook_delivery_continues_after_the_delivering_node_is_killed() {
    let mut cluster = TestCluster::start_with_flags(3, &["--http", "127.0.0.1:0"]);
    create_replicated_topic(&cluster, TOPIC, 1);
    let receiver = Receiver::start();
    let body = format!(
        r#"{{"topic":"{TOPIC}","url":"http://{}/hook"}}"#,
        receiver.address
    );
    let (status, created) =
        http_request(&http_address(&cluster, 1), "POST", "/api/webhooks", &body);
    assert_eq!(status, 201, "{created}");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let id = created["id"].as_u64().expect("an id");
    // The deliverer is the leader of the registry topic's partition.
    let deliverer = {
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        loop {
            if let Some(node) = describe(&http_address(&cluster, 1), id)["delivered_by"].as_u64() {
                break node as u32;
            }
            assert!(Instant::now() < deadline, "no delivering node");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let other = deliverer % 3 + 1;
    produce(&cluster, other, 1..=150);
    receiver.wait_for("part of the stream", |bodies| bodies.len() >= 40);
    cluster.kill(deliverer);
    let killed_at = receiver.bodies().len();
    produce(&cluster, other, 151..=250);
    let bodies = receiver.wait_for("every record after the failover", |bodies| {
        numbers(bodies).into_iter().collect::<BTreeSet<u32>>().len() == 250
    });
    let got = numbers(&bodies);
    // Order kept: nothing ever arrives before every record before it has.
    let mut highest = 0;
    for (i, &number) in got.iter().enumerate() {
        assert!(
            number <= highest + 1,
            "record {number} arrived (POST {i}) before record {}",
            highest + 1
        );
        highest = highest.max(number);
    }
    assert!(
        killed_at < 150,
        "the kill landed after the stream ({killed_at} POSTs)"
    );
    let duplicates = got.len() - 250;
    eprintln!("{duplicates} records POSTed twice around the failover (at least once)");
    // The registration survives: listed by the survivors and, restarted,
    // by the killed node, with the new deliverer and nothing left to do.
    cluster.restart(deliverer);
    for node in cluster.node_ids() {
        let address = http_address(&cluster, node);
        let deadline = Instant::now() + DELIVERY_TIMEOUT;
        let hook = loop {
            let (status, body) = http_request(&address, "GET", &format!("/api/webhooks/{id}"), "");
            if status == 200 {
                let hook: serde_json::Value = serde_json::from_str(&body).unwrap();
                // A restarted node may read a stale high watermark for a
                // moment (its replica catching up): wait for agreement.
                let partition = &hook["partitions"][0];
                if hook["lag"] == 0 && partition["position"] == partition["high_watermark"] {
                    break hook;
                }
            }
            assert!(Instant::now() < deadline, "node {node}: {status} {body}");
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(hook["topic"], TOPIC, "node {node}");
        assert_eq!(
            hook["partitions"][0]["position"], hook["partitions"][0]["high_watermark"],
            "node {node}: {hook}"
        );
    }
}
