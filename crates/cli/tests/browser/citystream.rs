//! The real `citystream` binary as the browser tests run it: one broker
//! (`--in-memory`, with its HTTP port), `citystream demo` (three nodes on
//! free consecutive ports, its data in a temp dir of the test), and CLI
//! commands (`produce` from stdin, `consume --format json`). Every process
//! is killed and reaped by its guard, even when the test panics; every
//! wait is bounded.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use citystream_testkit::free_ports;
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

/// How long a broker, or the demo's cluster, may take to be ready (a debug
/// build on shared cores).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the demo may take to stop every node after SIGINT.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on one CLI command.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at starting the demo when a free port was taken meanwhile.
const DEMO_START_ATTEMPTS: u32 = 3;

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_citystream")
}

/// A child process whose stdout lines arrive on a channel; killed and
/// reaped on drop unless it already exited.
struct Process {
    child: Child,
    /// Unbounded on purpose: the reader must never block the child's
    /// stdout, and a test reads far fewer lines than it could hold.
    lines: mpsc::Receiver<String>,
}

impl Process {
    fn spawn(command: &mut Command) -> Process {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn citystream");
        let stdout = child.stdout.take().expect("piped stdout");
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Process { child, lines }
    }

    /// The first stdout line containing `text`, or every line seen when the
    /// process ended or `READY_TIMEOUT` passed first.
    fn line_with(&self, text: &str) -> Result<String, Vec<String>> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else {
                return Err(seen);
            };
            if line.contains(text) {
                return Ok(line);
            }
            seen.push(line);
        }
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, signal);
        }
    }

    /// Waits up to `timeout` for the exit; true if it exited.
    fn wait_bounded(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// One broker with its data in memory, serving the HTTP API and the
/// console next to its native listener.
pub struct Broker {
    _process: Process,
    /// `host:port` of the native listener (the CLI's `--broker`).
    pub native: String,
    /// `host:port` of the HTTP listener (the console).
    pub http: String,
}

impl Broker {
    pub fn start() -> Broker {
        let process = Process::spawn(
            Command::new(binary())
                .args(["broker", "--in-memory", "--listen", "127.0.0.1:0"])
                .args(["--http", "127.0.0.1:0"]),
        );
        let ready = process
            .line_with(" listening on ")
            .unwrap_or_else(|seen| panic!("the broker did not get ready; it printed {seen:#?}"));
        // `citystream broker 1 listening on 127.0.0.1:4321 (...; http on 127.0.0.1:4322)`
        let native = word_after(&ready, " listening on ");
        let http = word_after(&ready, "http on ");
        Broker {
            _process: process,
            native,
            http,
        }
    }
}

/// The address after `label` in a ready line, up to a space, `)` or `;`.
fn word_after(line: &str, label: &str) -> String {
    line.split(label)
        .nth(1)
        .and_then(|rest| rest.split([' ', ')', ';', ',']).next())
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"))
        .to_owned()
}

/// One node of the demo: its HTTP (console) and native addresses.
#[derive(Debug, Clone)]
pub struct DemoNode {
    pub node_id: u32,
    pub http: String,
    pub native: String,
}

/// `citystream demo`: three nodes, the city topics and (unless `--no-sim`)
/// the simulation. Stopped with SIGINT (as Ctrl-C), killed if it does not
/// stop in time (its nodes die with it: they have a parent-death signal).
pub struct Demo {
    process: Process,
    pub nodes: Vec<DemoNode>,
    _data: tempfile::TempDir,
}

impl Demo {
    pub fn start(extra_args: &[&str]) -> Demo {
        let mut failures = Vec::new();
        for _ in 0..DEMO_START_ATTEMPTS {
            match Demo::try_start(extra_args) {
                Ok(demo) => return demo,
                Err(seen) => failures.push(seen),
            }
        }
        panic!("the demo did not start; it printed {failures:#?}");
    }

    fn try_start(extra_args: &[&str]) -> Result<Demo, Vec<String>> {
        const NODES: u16 = 3;
        let (http, native, mqtt) = (free_ports(NODES), free_ports(NODES), free_ports(NODES));
        let data = tempfile::tempdir().expect("temp dir for the demo's data");
        let process = Process::spawn(
            Command::new(binary())
                .arg("demo")
                .args(extra_args)
                .args([
                    "--http-port",
                    &http.to_string(),
                    "--native-port",
                    &native.to_string(),
                    "--mqtt-port",
                    &mqtt.to_string(),
                ])
                .arg("--data-dir")
                .arg(data.path()),
        );
        process.line_with("data in ")?;
        let nodes = (0..NODES)
            .map(|index| DemoNode {
                node_id: u32::from(index) + 1,
                http: format!("127.0.0.1:{}", http + index),
                native: format!("127.0.0.1:{}", native + index),
            })
            .collect();
        Ok(Demo {
            process,
            nodes,
            _data: data,
        })
    }

    pub fn node(&self, node_id: u32) -> &DemoNode {
        self.nodes
            .iter()
            .find(|node| node.node_id == node_id)
            .unwrap_or_else(|| panic!("the demo has no node {node_id}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.process.signal(libc::SIGINT);
        if !self.process.wait_bounded(STOP_TIMEOUT) {
            eprintln!("the demo did not stop within {STOP_TIMEOUT:?} of SIGINT; killing it");
        }
        // Process's own drop kills (if still running) and reaps.
    }
}

/// Runs `citystream args...` with `stdin`; asserts it succeeded within
/// `COMMAND_TIMEOUT` and returns its stdout.
pub async fn cli(args: &[&str], stdin: &str) -> String {
    let mut child = tokio::process::Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn citystream");
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.as_bytes())
        .await
        .expect("write stdin");
    drop(input);
    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("citystream {args:?} did not finish within {COMMAND_TIMEOUT:?}"))
        .expect("run citystream");
    assert!(
        output.status.success(),
        "citystream {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 stdout")
}

/// `citystream topic create TOPIC FLAGS... --broker BROKER`.
pub async fn create_topic(broker: &str, topic: &str, flags: &[&str]) {
    let args = [
        &["topic", "create", topic][..],
        flags,
        &["--broker", broker],
    ]
    .concat();
    cli(&args, "").await;
}

/// A record as `citystream consume --format json` prints it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConsumedRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<String>,
    pub value: String,
    #[serde(default)]
    pub headers: serde_json::Map<String, serde_json::Value>,
}

/// Every record of `topic`, read from the beginning through `broker`.
pub async fn consume_all(broker: &str, topic: &str) -> Vec<ConsumedRecord> {
    let args = [
        "consume",
        topic,
        "--from-beginning",
        "--format",
        "json",
        "--broker",
        broker,
    ];
    let args = [&args[..], &["--idle-timeout-ms", "3000"]].concat();
    cli(&args, "")
        .await
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect()
}

/// A `citystream produce TOPIC --key-separator ,` reading `key,value` lines
/// from a pipe the test writes to over time; killed on drop.
pub struct Producer {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
}

impl Producer {
    pub fn start(broker: &str, topic: &str) -> Producer {
        let mut child = tokio::process::Command::new(binary())
            .args(["produce", topic, "--key-separator", ",", "--broker", broker])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn citystream produce");
        let stdin = child.stdin.take();
        Producer { child, stdin }
    }

    /// Sends one record (a line); the producer sends it as it reads it.
    pub async fn send(&mut self, key: &str, value: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open until finish");
        stdin
            .write_all(format!("{key},{value}\n").as_bytes())
            .await
            .expect("write to the producer");
        stdin.flush().await.expect("flush to the producer");
    }

    /// Closes stdin and waits for every acknowledgement; returns stdout.
    pub async fn finish(mut self) -> String {
        drop(self.stdin.take());
        let output = tokio::time::timeout(COMMAND_TIMEOUT, self.child.wait_with_output())
            .await
            .expect("the producer finishes in time")
            .expect("run citystream produce");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "citystream produce failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}
