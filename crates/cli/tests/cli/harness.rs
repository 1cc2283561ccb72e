//! Test harness: a real `citystream broker` child process on a free port,
//! and a way to run CLI commands against it. Every wait is bounded; the
//! broker is killed and reaped on drop, so a failing test leaves nothing
//! running.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a broker may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a broker may take to exit after SIGTERM.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on any one CLI command of a test.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_citystream")
}

/// A broker child process serving on 127.0.0.1 at a port it chose.
pub struct TestBroker {
    child: Child,
    /// `host:port` from the broker's ready line.
    pub address: String,
    /// The line the broker printed when it was ready.
    pub ready_line: String,
    stderr_path: PathBuf,
    _logs: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker storing its data under `data_dir`.
    pub fn start(data_dir: &Path) -> TestBroker {
        let data_dir = data_dir.to_str().expect("UTF-8 temp path");
        TestBroker::start_with(&["--data-dir", data_dir], &[])
    }

    /// Starts a broker with these flags and environment variables
    /// (`--listen 127.0.0.1:0` is added).
    pub fn start_with(flags: &[&str], envs: &[(&str, &str)]) -> TestBroker {
        TestBroker::try_start("127.0.0.1:0", flags, envs)
            .unwrap_or_else(|stderr| panic!("broker not ready; its stderr:\n{stderr}"))
    }

    /// Starts a broker listening on `listen`; `Err` carries its stderr if it
    /// exited or did not get ready (e.g. the port was taken meanwhile).
    pub fn try_start(
        listen: &str,
        flags: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<TestBroker, String> {
        TestBroker::try_start_via(&[], listen, flags, envs)
    }

    /// As [`TestBroker::try_start`], the binary run by `launcher` (e.g.
    /// `ip netns exec NS`, which execs it: the child is still the broker).
    pub fn try_start_via(
        launcher: &[&str],
        listen: &str,
        flags: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<TestBroker, String> {
        let logs = tempfile::tempdir().expect("temp dir for broker logs");
        let stderr_path = logs.path().join("broker.stderr");
        let stderr = File::create(&stderr_path).expect("broker stderr file");
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(binary());
                command
            }
            None => Command::new(binary()),
        };
        let mut child = command
            .arg("broker")
            .args(flags)
            .args(["--listen", listen])
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn citystream broker");
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, ready_line) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining stdout so the broker never blocks on a full pipe.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains(" listening on ") {
                    let _ = ready.send(line);
                }
            }
        });
        let mut broker = TestBroker {
            child,
            address: String::new(),
            ready_line: String::new(),
            stderr_path,
            _logs: logs,
        };
        match ready_line.recv_timeout(READY_TIMEOUT) {
            Ok(line) => {
                broker.address = parse_address(&line);
                broker.ready_line = line;
                Ok(broker)
            }
            Err(error) => Err(format!("({error}) {}", broker.stderr())),
        }
    }

    /// Kills the broker with SIGKILL (no clean shutdown) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the broker with SIGSTOP: its sockets stay open, it answers nothing.
    pub fn freeze(&self) {
        signal(&self.child, "-STOP");
    }

    /// Lets a frozen broker run again (SIGCONT).
    pub fn resume(&self) {
        signal(&self.child, "-CONT");
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// A CLI command aimed at this broker (via `CITYSTREAM_BROKER`).
    pub fn command(&self, args: &[&str]) -> assert_cmd::Command {
        let mut command = assert_cmd::Command::new(binary());
        command
            .args(args)
            .env("CITYSTREAM_BROKER", &self.address)
            .timeout(COMMAND_TIMEOUT);
        command
    }

    /// Runs a command, asserts it succeeded and returns its stdout.
    pub fn run(&self, args: &[&str]) -> String {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> String {
        let output = self
            .command(args)
            .write_stdin(stdin.to_string())
            .output()
            .expect("run citystream");
        assert!(
            output.status.success(),
            "citystream {args:?} failed ({}):\nstdout: {}\nstderr: {}\nbroker stderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.stderr()
        );
        String::from_utf8(output.stdout).expect("UTF-8 stdout")
    }

    /// Runs a command expected to fail; returns its exit code and stderr.
    pub fn run_failing(&self, args: &[&str], stdin: &str) -> (i32, String) {
        let output = self
            .command(args)
            .write_stdin(stdin.to_string())
            .output()
            .expect("run citystream");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "citystream {args:?} succeeded");
        (output.status.code().expect("exited, not killed"), stderr)
    }

    /// Starts a long-running CLI command (e.g. `consume --follow`).
    pub fn spawn(&self, args: &[&str]) -> CliChild {
        let mut child = Command::new(binary())
            .args(args)
            .env("CITYSTREAM_BROKER", &self.address)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn citystream");
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_sender.send(line).is_err() {
                    break;
                }
            }
        });
        CliChild { child, lines }
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(mut self) {
        signal(&self.child, "-TERM");
        let status = wait_bounded(&mut self.child, EXIT_TIMEOUT);
        assert!(
            status.success(),
            "broker exited with {status} on SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }
}

/// A CLI child process whose stdout lines arrive on a channel; killed on drop.
pub struct CliChild {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl CliChild {
    /// The next stdout line, waiting at most `COMMAND_TIMEOUT`.
    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(COMMAND_TIMEOUT)
            .expect("a line from the command in time")
    }

    /// Sends SIGINT, as Ctrl-C would.
    pub fn interrupt(&self) {
        signal(&self.child, "-INT");
    }

    /// Waits (bounded) for the exit; returns the status and the rest of stdout.
    pub fn wait(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = wait_bounded(&mut self.child, COMMAND_TIMEOUT);
        let rest = std::iter::from_fn(|| self.lines.recv_timeout(EXIT_TIMEOUT).ok()).collect();
        (status, rest)
    }
}

impl Drop for CliChild {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

fn signal(child: &Child, signal: &str) {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid} failed");
}

/// Waits for `child` to exit, panicking (the caller's Drop kills it) after `timeout`.
fn wait_bounded(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "child did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// `citystream broker 1 listening on 127.0.0.1:4321 (...)` → `127.0.0.1:4321`.
fn parse_address(line: &str) -> String {
    let after = line
        .split(" listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in ready line {line:?}"));
    after
        .split_whitespace()
        .next()
        .expect("address after 'listening on'")
        .to_string()
}

/// One HTTP/1.1 request with a JSON body and `Connection: close`; returns
/// the status and the body.
pub fn http_request(address: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).expect("connect to the HTTP listener");
    stream.set_read_timeout(Some(COMMAND_TIMEOUT)).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// The address a ready line names after `label` (e.g. `"http on "`).
pub fn listener_address(ready_line: &str, label: &str) -> String {
    ready_line
        .split(label)
        .nth(1)
        .and_then(|rest| rest.split([')', ';']).next())
        .unwrap_or_else(|| panic!("no {label:?} in {ready_line:?}"))
        .trim()
        .to_owned()
}
