//! `citystream demo` as a user runs it: three nodes on consecutive ports,
//! the console's stop and start buttons (through any node's `/api/demo`),
//! Ctrl-C stopping everything and removing the temporary data; a taken
//! port refused up front, naming it, with nothing left running.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use citystream_testkit::free_ports;

use crate::harness::{binary, http_request};

/// The demo forms its cluster within this (a debug build, shared cores).
const START_TIMEOUT: Duration = Duration::from_secs(90);

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Demo {
    fn start(args: &[&str]) -> Demo {
        let mut child = Command::new(binary())
            .arg("demo")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn citystream demo");
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Demo { child, lines }
    }

    /// Stdout lines up to and including the first containing `text`.
    fn until(&self, text: &str) -> Vec<String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {text:?} in time; saw {seen:#?}"));
            let found = line.contains(text);
            seen.push(line);
            if found {
                return seen;
            }
        }
    }
}

fn demo_nodes(http: &str) -> Vec<(u64, bool)> {
    let (status, body) = http_request(http, "GET", "/api/demo", "");
    assert_eq!(status, 200, "{body}");
    let nodes: serde_json::Value = serde_json::from_str(&body).unwrap();
    nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["node_id"].as_u64().unwrap(),
                n["running"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn post(http: &str, path: &str) {
    let (status, body) = http_request(http, "POST", path, "");
    assert_eq!(status, 200, "POST {path}: {body}");
}

#[test]
fn demo_runs_a_cluster_the_console_can_stop_and_start_and_ctrl_c_cleans_up() {
    let (http, native, mqtt) = (free_ports(3), free_ports(3), free_ports(3));
    let demo = Demo::start(&[
        "--no-sim",
        "--http-port",
        &http.to_string(),
        "--native-port",
        &native.to_string(),
        "--mqtt-port",
        &mqtt.to_string(),
    ]);
    let lines = demo.until("data in ");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("console at http://127.0.0.1:{http}"))),
        "{lines:#?}"
    );
    let data_dir = lines
        .last()
        .unwrap()
        .split("data in ")
        .nth(1)
        .and_then(|rest| rest.split(" (").next())
        .unwrap()
        .to_owned();
    assert!(std::path::Path::new(&data_dir).is_dir(), "{data_dir}");
    let node = |id: u16| format!("127.0.0.1:{}", http + id - 1);
    assert_eq!(demo_nodes(&node(2)), vec![(1, true), (2, true), (3, true)]);
    // The console's stop button, pressed on node 2's page: node 1 dies.
    post(&node(2), "/api/demo/nodes/1/stop");
    assert_eq!(demo_nodes(&node(3)), vec![(1, false), (2, true), (3, true)]);
    assert!(
        std::net::TcpStream::connect(node(1)).is_err(),
        "node 1 is down"
    );
    post(&node(3), "/api/demo/nodes/1/start");
    let (status, body) = http_request(&node(1), "GET", "/healthz", "");
    assert_eq!(status, 200, "node 1 serves again: {body}");
    assert_eq!(demo_nodes(&node(1)), vec![(1, true), (2, true), (3, true)]);
    let (status, _) = http_request(&node(1), "POST", "/api/demo/nodes/9/stop", "");
    assert_eq!(status, 404, "no node 9");
    // Ctrl-C: every node stops, the ports are free, the data is gone.
    let pid = demo.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    demo.until("every node shut down");
    let mut demo = demo;
    let status = demo.child.wait().unwrap();
    assert!(status.success(), "{status}");
    for port in (http..http + 3).chain(native..native + 3) {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} still taken"
        );
    }
    assert!(
        !std::path::Path::new(&data_dir).exists(),
        "{data_dir} removed"
    );
}

#[test]
fn demo_refuses_a_taken_port_and_names_it() {
    let http = free_ports(3);
    let _taken = TcpListener::bind(("127.0.0.1", http + 1)).unwrap();
    let (native, mqtt) = (free_ports(3), free_ports(3));
    let output = Command::new(binary())
        .args(["demo", "--no-sim", "--http-port", &http.to_string()])
        .args(["--native-port", &native.to_string()])
        .args(["--mqtt-port", &mqtt.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{}", http + 1)) && stderr.contains("node 2"),
        "{stderr}"
    );
    for port in native..native + 3 {
        assert!(
            TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "nothing started"
        );
    }
}
