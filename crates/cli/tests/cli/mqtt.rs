//! The broker's `--mqtt` listener driven by MQTT clients nobody here wrote:
//! Debian's `mosquitto_pub` / `mosquitto_sub` (package mosquitto-clients)
//! and Python paho-mqtt 2.x (`mqtt/paho_roundtrip.py`, run with
//! `$CITYSTREAM_PYTHON`), over MQTT 3.1.1 and 5.0: QoS 0/1/2 round trips,
//! v5 properties, MQTT publishes read back as records (HTTP API, `citystream
//! consume`) and records produced natively reaching MQTT subscribers, wills,
//! retained messages, topic aliases, WebSocket. A test skips, saying why on stderr, where its
//! client is missing. Sessions across nodes are in `mqtt_cluster.rs`.
//!
//! Every subscriber is known to be subscribed (its SUBACK seen) before
//! anything it should receive is published, and every wait is bounded.

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{COMMAND_TIMEOUT, TestBroker, http_request, listener_address};

/// How long a subscriber may take to be subscribed or to get a message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(15);
const PAHO_SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/cli/mqtt/paho_roundtrip.py"
);
/// `-V` values of the mosquitto clients, and the versions the tests cover.
const V311: &str = "mqttv311";
const V5: &str = "mqttv5";

/// A standalone in-memory broker with the HTTP API and the MQTT listener;
/// auto-created topics have one partition, so a topic's records are all in
/// partition 0, in write order.
struct MqttBroker {
    broker: TestBroker,
    mqtt_host: String,
    mqtt_port: String,
    http: String,
}

impl MqttBroker {
    fn start() -> MqttBroker {
        let broker = TestBroker::start_with(
            &[
                "--in-memory",
                "--default-partitions",
                "1",
                "--http",
                "127.0.0.1:0",
                "--mqtt",
                "127.0.0.1:0",
            ],
            &[],
        );
        let http = listener_address(&broker.ready_line, "http on ");
        let mqtt = listener_address(&broker.ready_line, "mqtt on ");
        let (host, port) = mqtt.rsplit_once(':').expect("HOST:PORT");
        MqttBroker {
            mqtt_host: host.to_owned(),
            mqtt_port: port.to_owned(),
            http,
            broker,
        }
    }

    /// Partition 0 of `topic` from the start, read with the HTTP API.
    fn records(&self, topic: &str) -> Vec<Value> {
        let path = format!("/api/topics/{topic}/records?partition=0&offset=0");
        let (status, body) = http_request(&self.http, "GET", &path, "");
        assert_eq!(status, 200, "GET {path}: {body}");
        let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
        answer["records"].as_array().expect("records").clone()
    }

    /// `mosquitto_pub` on this broker; asserts it succeeded (for QoS 1 and
    /// 2 it exits only once the broker acknowledged).
    fn mosquitto_pub(&self, version: &str, args: &[&str]) {
        let output = assert_cmd::Command::new("mosquitto_pub")
            .args(["-h", &self.mqtt_host, "-p", &self.mqtt_port, "-V", version])
            .args(args)
            .timeout(COMMAND_TIMEOUT)
            .output()
            .expect("run mosquitto_pub");
        assert!(
            output.status.success(),
            "mosquitto_pub {args:?} failed ({}): {}\nbroker stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            self.broker.stderr()
        );
    }
}

/// A `mosquitto_sub` printing each message as one JSON line (`-F %j`, with
/// v5 properties) and its debug lines (`-d`, for the SUBACK), its stdout
/// line-buffered by `stdbuf` (mosquitto_sub flushes only message lines);
/// killed on drop.
pub(crate) struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Message lines that arrived while another line was waited for (a
    /// resumed session's messages may come before its SUBACK).
    backlog: std::collections::VecDeque<String>,
}

impl Subscriber {
    /// Subscribes to `filter` at `qos` (plus `extra` arguments, e.g. a will)
    /// and waits for the SUBACK; returns the subscriber and what the SUBACK
    /// granted (a QoS, or a v5 reason code).
    fn start(
        broker: &MqttBroker,
        version: &str,
        qos: u8,
        filter: &str,
        extra: &[&str],
    ) -> (Subscriber, u8) {
        let address = format!("{}:{}", broker.mqtt_host, broker.mqtt_port);
        Subscriber::start_at(&address, version, qos, filter, extra)
    }

    /// [`Subscriber::start`] on the MQTT listener at `address` (HOST:PORT).
    pub(crate) fn start_at(
        address: &str,
        version: &str,
        qos: u8,
        filter: &str,
        extra: &[&str],
    ) -> (Subscriber, u8) {
        let (host, port) = address.rsplit_once(':').expect("HOST:PORT");
        let qos = qos.to_string();
        let mut child = Command::new("stdbuf")
            .args(["-oL", "mosquitto_sub", "-d", "-F", "%j", "-V", version])
            .args(["-h", host, "-p", port])
            .args(["-q", &qos, "-t", filter])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line_sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut subscriber = Subscriber {
            child,
            lines,
            backlog: std::collections::VecDeque::new(),
        };
        let granted = subscriber.next_line_after("Subscribed (mid: 1): ");
        let granted = granted
            .parse()
            .unwrap_or_else(|e| panic!("{e}: {granted:?}"));
        (subscriber, granted)
    }

    /// The rest of the first line starting with `prefix`, skipping others.
    fn next_line_after(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + MESSAGE_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                self.fail(&format!("no {prefix:?} line in time; saw {seen:#?}"));
            };
            if let Some(rest) = line.strip_prefix(prefix) {
                return rest.to_owned();
            }
            if line.starts_with('{') {
                self.backlog.push_back(line.clone());
            }
            seen.push(line);
        }
    }

    /// The next message as `mosquitto_sub -F %j` prints it.
    pub(crate) fn next_message(&mut self) -> Value {
        let json = match self.backlog.pop_front() {
            Some(line) => line[1..].to_owned(),
            None => self.next_line_after("{"),
        };
        serde_json::from_str(&format!("{{{json}")).unwrap_or_else(|e| panic!("{e}: {json}"))
    }

    /// The next `count` messages.
    fn messages(&mut self, count: usize) -> Vec<Value> {
        (0..count).map(|_| self.next_message()).collect()
    }

    /// Waits (bounded) for it to exit by itself, and asserts it succeeded.
    fn exits_cleanly(mut self) {
        let deadline = Instant::now() + MESSAGE_TIMEOUT;
        loop {
            match self.child.try_wait().expect("wait for mosquitto_sub") {
                Some(status) if status.success() => return,
                Some(status) => self.fail(&format!("exited with {status}")),
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                None => self.fail(&format!("still running after {MESSAGE_TIMEOUT:?}")),
            }
        }
    }

    /// Kills it with SIGKILL: no DISCONNECT, the broker sees the socket drop.
    pub(crate) fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        panic!("mosquitto_sub: {why}\nits stderr: {stderr}");
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Why the mosquitto clients cannot run here, if they cannot.
fn mosquitto_missing() -> Option<String> {
    [
        ("mosquitto_pub", "mosquitto-clients"),
        ("mosquitto_sub", "mosquitto-clients"),
        ("stdbuf", "coreutils"),
    ]
    .into_iter()
    .find(|(program, _)| Command::new(program).arg("--help").output().is_err())
    .map(|(program, package)| format!("{program} is not installed (Debian package {package})"))
}

/// Prints why `test` skips and returns true when the mosquitto clients are missing.
pub(crate) fn skip_without_mosquitto(test: &str) -> bool {
    let Some(why) = mosquitto_missing() else {
        return false;
    };
    eprintln!("skipping {test}: {why}");
    true
}

/// A command line's arguments, for ones without spaces in them.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// A received message's topic, payload and QoS.
fn topic_payload_qos(message: &Value) -> Vec<String> {
    let text = |field: &str| match &message[field] {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    vec![text("topic"), text("payload"), text("qos")]
}

fn sorted(mut messages: Vec<Vec<String>>) -> Vec<Vec<String>> {
    messages.sort();
    messages
}

/// A record's key, value and the headers `names`.
fn key_value_headers(record: &Value, names: &[&str]) -> Vec<String> {
    let text = |value: &Value| value.as_str().unwrap_or("(none)").to_owned();
    let headers = names.iter().map(|name| text(&record["headers"][name]));
    [text(&record["key"]), text(&record["value"])]
        .into_iter()
        .chain(headers)
        .collect()
}

/// QoS 0, 1 and 2 publishes of `mosquitto_pub -V version` reach
/// `mosquitto_sub -V version` wildcard subscribers at min(publish, granted)
/// QoS, a non-matching one does not, and each is a record keyed by its topic
/// name with its QoS and client id as headers.
fn mosquitto_qos_round_trips(version: &str) {
    let broker = MqttBroker::start();
    let (mut at_qos_2, granted) = Subscriber::start(&broker, version, 2, "city/+/air/#", &[]);
    assert_eq!(granted, 2);
    let (mut at_qos_1, granted) = Subscriber::start(&broker, version, 1, "city/+/air/#", &[]);
    assert_eq!(granted, 1);
    let publish = |topic: &str, payload: &str, qos: &str| {
        let id = format!("pub-q{qos}");
        broker.mosquitto_pub(version, &["-i", &id, "-q", qos, "-t", topic, "-m", payload]);
    };
    // Acknowledged, so written before the matching ones: it would come first.
    publish("city/north/noise/1", "not for air", "2");
    publish("city/north/air/2", "pm25 at 2", "2");
    publish("city/north/air/1", "pm25 at 1", "1");
    publish("city/north/air/0", "pm25 at 0", "0");

    let received = sorted(at_qos_2.messages(3).iter().map(topic_payload_qos).collect());
    let expected = [
        ["city/north/air/0", "pm25 at 0", "0"],
        ["city/north/air/1", "pm25 at 1", "1"],
        ["city/north/air/2", "pm25 at 2", "2"],
    ];
    assert_eq!(received, expected);
    let received = sorted(at_qos_1.messages(3).iter().map(topic_payload_qos).collect());
    let expected = [
        ["city/north/air/0", "pm25 at 0", "0"],
        ["city/north/air/1", "pm25 at 1", "1"],
        ["city/north/air/2", "pm25 at 2", "1"],
    ];
    assert_eq!(received, expected);

    // Every message was delivered, so every record is written.
    let records: Vec<_> = broker
        .records("mqtt.city")
        .iter()
        .map(|record| key_value_headers(record, &["$mqtt.qos", "$mqtt.from"]))
        .collect();
    let expected = [
        ["city/north/noise/1", "not for air", "2", "pub-q2"],
        ["city/north/air/2", "pm25 at 2", "2", "pub-q2"],
        ["city/north/air/1", "pm25 at 1", "1", "pub-q1"],
        ["city/north/air/0", "pm25 at 0", "0", "pub-q0"],
    ];
    assert_eq!(records, expected);
}

/// Retained messages with `mosquitto_pub -r`: a later `mosquitto_sub`
/// gets the newest retained message of each matching name with the
/// retain flag; `-r -n` (an empty retained payload) deletes a name's; a
/// message published without `-r` is delivered live, not retained.
fn mosquitto_retained_messages(version: &str) {
    let broker = MqttBroker::start();
    let retain = |topic: &str, payload: Option<&str>| {
        let mut args = vec!["-i", "pub-r", "-q", "1", "-r", "-t", topic];
        match payload {
            Some(payload) => args.extend(["-m", payload]),
            None => args.push("-n"),
        }
        broker.mosquitto_pub(version, &args);
    };
    retain("city/north/temp", Some("10"));
    retain("city/north/temp", Some("11"));
    retain("city/south/temp", Some("20"));
    retain("city/east/temp", Some("30"));
    retain("city/east/temp", None);
    retain("town/x/temp", Some("99"));

    let (mut late, granted) = Subscriber::start(&broker, version, 1, "city/+/temp", &[]);
    assert_eq!(granted, 1);
    let topic_payload_retain = |message: &Value| {
        let mut fields = topic_payload_qos(message);
        // mosquitto_sub prints the flag as 1 or 0.
        let retained = message["retain"] == json!(true) || message["retain"] == json!(1);
        fields.push(retained.to_string());
        fields
    };
    let received = sorted(late.messages(2).iter().map(topic_payload_retain).collect());
    let expected = [
        ["city/north/temp", "11", "1", "true"],
        ["city/south/temp", "20", "1", "true"],
    ];
    assert_eq!(received, expected);
    broker.mosquitto_pub(version, &words("-q 1 -t city/west/temp -m 40"));
    let live = topic_payload_retain(&late.next_message());
    assert_eq!(live, ["city/west/temp", "40", "1", "false"]);
}

#[test]
fn mosquitto_v311_retained_messages_reach_a_late_subscriber() {
    if !skip_without_mosquitto("mosquitto_v311_retained_messages_reach_a_late_subscriber") {
        mosquitto_retained_messages(V311);
    }
}

#[test]
fn mosquitto_v5_retained_messages_reach_a_late_subscriber() {
    if !skip_without_mosquitto("mosquitto_v5_retained_messages_reach_a_late_subscriber") {
        mosquitto_retained_messages(V5);
    }
}

/// See [`mosquitto_qos_round_trips`], over MQTT 3.1.1.
#[test]
fn mosquitto_v311_qos_0_1_2_round_trips() {
    if !skip_without_mosquitto("mosquitto_v311_qos_0_1_2_round_trips") {
        mosquitto_qos_round_trips(V311);
    }
}

/// See [`mosquitto_qos_round_trips`], over MQTT 5.0.
#[test]
fn mosquitto_v5_qos_0_1_2_round_trips() {
    if !skip_without_mosquitto("mosquitto_v5_qos_0_1_2_round_trips") {
        mosquitto_qos_round_trips(V5);
    }
}

/// A v5 `mosquitto_pub -D publish user-property` and content type reach a v5
/// subscriber as properties and are headers of the record over the HTTP API.
#[test]
fn mosquitto_v5_user_property_reaches_the_subscriber_and_the_record() {
    if skip_without_mosquitto("mosquitto_v5_user_property_reaches_the_subscriber_and_the_record") {
        return;
    }
    let broker = MqttBroker::start();
    let (mut subscriber, _) = Subscriber::start(&broker, V5, 1, "city/#", &[]);
    broker.mosquitto_pub(
        V5,
        &words(
            "-q 1 -t city/south/air/4 -m pm25=8 \
             -D publish user-property station s-4 -D publish content-type text/plain",
        ),
    );

    let message = subscriber.next_message();
    assert_eq!(
        topic_payload_qos(&message),
        ["city/south/air/4", "pm25=8", "1"]
    );
    assert_eq!(
        message["properties"],
        json!({"content-type": "text/plain", "user-properties": {"station": "s-4"}}),
        "{message}"
    );
    let records = broker.records("mqtt.city");
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["key"], "city/south/air/4");
    assert_eq!(records[0]["headers"]["station"], "s-4", "{records:#?}");
    assert_eq!(records[0]["headers"]["content-type"], "text/plain");
}

/// Records produced over the native protocol into `mqtt.city`, keyed with
/// topic names, reach 3.1.1 and v5 `mosquitto_sub` subscribers whose
/// filter matches the key, and only those.
#[test]
fn native_produce_keyed_by_topic_name_reaches_mosquitto_subscribers() {
    if skip_without_mosquitto("native_produce_keyed_by_topic_name_reaches_mosquitto_subscribers") {
        return;
    }
    let broker = MqttBroker::start();
    let (mut v311, _) = Subscriber::start(&broker, V311, 1, "city/+/air/#", &[]);
    let (mut v5, _) = Subscriber::start(&broker, V5, 1, "city/+/air/#", &[]);
    let produced = broker.broker.run_with_stdin(
        &["produce", "mqtt.city", "--key-separator", "|"],
        "city/south/noise/1|not for air\ncity/south/air/3|pm25=9\n",
    );
    assert!(produced.contains("acknowledged 2 records"), "{produced}");

    for subscriber in [&mut v311, &mut v5] {
        let received = topic_payload_qos(&subscriber.next_message());
        assert_eq!(received[..2], ["city/south/air/3", "pm25=9"]);
    }
}

/// Publishes of 3.1.1 and v5 `mosquitto_pub` are records `citystream
/// consume` reads from `mqtt.city`: key = topic name, value = payload,
/// QoS and client id as headers.
#[test]
fn mosquitto_publishes_are_read_with_citystream_consume() {
    if skip_without_mosquitto("mosquitto_publishes_are_read_with_citystream_consume") {
        return;
    }
    let broker = MqttBroker::start();
    broker.mosquitto_pub(
        V311,
        &words("-i east-v311 -q 1 -t city/east/air/1 -m pm25=1"),
    );
    broker.mosquitto_pub(V5, &words("-i east-v5 -q 2 -t city/east/air/2 -m pm25=2"));

    let consumed = broker.broker.run(&words(
        "consume mqtt.city --from-beginning --format json --max 2",
    ));
    let records: Vec<_> = consumed
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .map(|record| key_value_headers(&record, &["$mqtt.qos", "$mqtt.from"]))
        .collect();
    let expected = [
        ["city/east/air/1", "pm25=1", "1", "east-v311"],
        ["city/east/air/2", "pm25=2", "2", "east-v5"],
    ];
    assert_eq!(records, expected, "{consumed}");
}

/// The wills of 3.1.1 and v5 `mosquitto_sub` clients killed with SIGKILL
/// reach another subscriber at the will's QoS; the will of a client that
/// disconnected cleanly does not.
#[test]
fn wills_of_killed_mosquitto_clients_reach_another_subscriber() {
    if skip_without_mosquitto("wills_of_killed_mosquitto_clients_reach_another_subscriber") {
        return;
    }
    let broker = MqttBroker::start();
    let (mut watcher, _) = Subscriber::start(&broker, V5, 2, "city/+/will", &[]);
    // `-E`: exits with DISCONNECT once subscribed; its will must be dropped.
    let clean_will = words("-E --will-topic city/clean/will --will-payload clean-exit");
    let (clean, _) = Subscriber::start(&broker, V311, 0, "nowhere/clean", &clean_will);
    clean.exits_cleanly();
    for version in [V311, V5] {
        let will =
            format!("--will-topic city/{version}/will --will-payload {version}-gone --will-qos 1");
        let (client, _) = Subscriber::start(&broker, version, 0, "nowhere/killed", &words(&will));
        client.kill();
    }

    let wills = sorted(watcher.messages(2).iter().map(topic_payload_qos).collect());
    let expected = [
        ["city/mqttv311/will", "mqttv311-gone", "1"],
        ["city/mqttv5/will", "mqttv5-gone", "1"],
    ];
    assert_eq!(wills, expected);
    // Anything the clean exit wrongly sent was written before this.
    broker.mosquitto_pub(V5, &words("-q 1 -t city/end/will -m end"));
    let received = topic_payload_qos(&watcher.next_message());
    assert_eq!(received, ["city/end/will", "end", "1"]);
}

/// The interpreter with paho-mqtt 2.x (`$CITYSTREAM_PYTHON`, else
/// `python3`), or why there is none.
fn paho_python() -> Result<String, String> {
    let python = std::env::var("CITYSTREAM_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args([
            "-c",
            "import paho.mqtt; assert paho.mqtt.__version__.startswith('2.')",
        ])
        .output();
    match probe {
        Ok(output) if output.status.success() => Ok(python),
        Ok(output) => Err(format!(
            "{python} has no paho-mqtt 2.x (CI installs paho-mqtt into its venv): {}",
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
        Err(error) => Err(format!("{python} cannot be run: {error}")),
    }
}

/// Runs one scenario of `mqtt/paho_roundtrip.py` against a new broker;
/// returns the broker and what the script reported, or `None` (having said
/// why) where paho cannot run.
fn paho_scenario(test: &str, scenario: &str) -> Option<(MqttBroker, Value)> {
    let python = match paho_python() {
        Ok(python) => python,
        Err(why) => {
            eprintln!("skipping {test}: {why}");
            return None;
        }
    };
    let broker = MqttBroker::start();
    let http_port = broker
        .http
        .rsplit_once(':')
        .expect("HOST:PORT")
        .1
        .to_owned();
    let output = assert_cmd::Command::new(&python)
        .args([
            PAHO_SCRIPT,
            &broker.mqtt_host,
            &broker.mqtt_port,
            scenario,
            &http_port,
        ])
        .timeout(COMMAND_TIMEOUT)
        .output()
        .expect("run the paho script");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "paho_roundtrip.py {scenario} failed ({}):\n{stdout}\n{}\nbroker stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr),
        broker.broker.stderr()
    );
    let report = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    Some((broker, report))
}

/// A paho v5 subscriber with subscription identifier 7 gets paho's QoS 1
/// and QoS 2 publishes at their QoS with the identifier, the content type
/// and the user properties in order, a repeated name included.
#[test]
fn paho_v5_properties_and_subscription_identifier_round_trip() {
    let test = "paho_v5_properties_and_subscription_identifier_round_trip";
    let Some((broker, report)) = paho_scenario(test, "v5-properties") else {
        return;
    };
    assert_eq!(report["suback"], json!([2]));
    let properties = json!({
        "ContentType": "text/plain",
        "SubscriptionIdentifier": [7],
        "UserProperty": [["zone", "north"], ["sensor", "7"], ["zone", "south"]],
    });
    let expected: Vec<Value> = [1, 2]
        .map(|qos| {
            json!({
                "topic": format!("city/north/air/{qos}"),
                "payload": format!("pm25 at qos {qos}"),
                "qos": qos,
                "properties": properties,
            })
        })
        .into();
    assert_eq!(report["received"], json!(expected));
    let records = broker.records("mqtt.city");
    let headers: Vec<_> = records.iter().map(|r| &r["headers"]).collect();
    assert_eq!(records.len(), 2, "{records:#?}");
    for header in headers {
        assert_eq!(header["content-type"], "text/plain", "{header}");
        assert_eq!(header["sensor"], "7", "{header}");
        assert_eq!(header["$mqtt.from"], "paho-pub-v5", "{header}");
    }
}

/// A paho 3.1.1 QoS 1 publish reaches a paho 3.1.1 `city/#` subscriber at QoS 1.
#[test]
fn paho_v311_qos_1_round_trip() {
    let Some((_broker, report)) = paho_scenario("paho_v311_qos_1_round_trip", "v311-qos1") else {
        return;
    };
    assert_eq!(report["suback"], json!([1]));
    let expected = json!([{
        "topic": "city/west/air/2", "payload": "pm25=11", "qos": 1, "properties": {},
    }]);
    assert_eq!(report["received"], expected);
}

/// The broker offers topic aliases in its CONNACK, and a paho publish by
/// alias alone (empty topic name) is delivered and stored under the
/// topic name the alias was set to.
#[test]
fn paho_v5_topic_alias_publishes_under_the_full_topic_name() {
    let test = "paho_v5_topic_alias_publishes_under_the_full_topic_name";
    let Some((broker, report)) = paho_scenario(test, "v5-topic-alias") else {
        return;
    };
    let alias_maximum = &report["connack"]["properties"]["TopicAliasMaximum"];
    assert!(alias_maximum.as_u64() >= Some(1), "{report}");
    let received: Vec<_> = report["received"]
        .as_array()
        .expect("received")
        .iter()
        .map(topic_payload_qos)
        .collect();
    let expected = [
        ["city/alias/air/1", "first", "1"],
        ["city/alias/air/1", "second", "1"],
    ];
    assert_eq!(received, expected);
    let records: Vec<_> = broker
        .records("mqtt.city")
        .iter()
        .map(|record| key_value_headers(record, &["$mqtt.from"]))
        .collect();
    let expected = [
        ["city/alias/air/1", "first", "paho-pub-alias"],
        ["city/alias/air/1", "second", "paho-pub-alias"],
    ];
    assert_eq!(records, expected);
}

/// MQTT over WebSocket at `/mqtt` on the HTTP port: a paho v5 client over
/// WebSocket receives a 3.1.1 TCP client's publish, and its own publish
/// reaches a TCP subscriber.
#[test]
fn paho_over_websocket_talks_to_tcp_clients() {
    let Some((_broker, report)) =
        paho_scenario("paho_over_websocket_talks_to_tcp_clients", "v5-websocket")
    else {
        return;
    };
    let to_websocket = &report["to_websocket"][0];
    assert_eq!(
        (&to_websocket["topic"], &to_websocket["payload"]),
        (&json!("city/ws/air/1"), &json!("to the browser"))
    );
    let from_websocket = &report["from_websocket"][0];
    assert_eq!(
        (&from_websocket["topic"], &from_websocket["payload"]),
        (&json!("city/ws/air/2"), &json!("from the browser"))
    );
}
