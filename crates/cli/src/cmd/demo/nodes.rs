//! The demo's broker nodes: child processes of this binary (`citystream
//! broker ...`), each with its data dir and log file under the demo's
//! directory. A node can be killed (SIGKILL: no clean shutdown, as a
//! crash) and started again with the same flags; at the end every node
//! gets SIGTERM and, if it does not stop in time, SIGKILL.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Serialize;
use tokio::process::{Child, Command};

/// How long a node may take to print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One node's fixed settings.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub node_id: u32,
    pub native: String,
    pub http: String,
    /// The MQTT listener (TCP; WebSocket at `/mqtt` on `http`).
    pub mqtt: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// Every flag after `broker`.
    pub flags: Vec<String>,
}

/// What the control API and the console show of a node.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub node_id: u32,
    pub running: bool,
    pub http: String,
    pub native: String,
    pub log: String,
}

pub struct Node {
    pub spec: NodeSpec,
    child: Option<Child>,
}

impl Node {
    pub fn new(spec: NodeSpec) -> Node {
        Node { spec, child: None }
    }

    pub fn view(&mut self) -> NodeView {
        NodeView {
            node_id: self.spec.node_id,
            running: self.is_running(),
            http: self.spec.http.clone(),
            native: self.spec.native.clone(),
            log: self.spec.log.display().to_string(),
        }
    }

    /// Whether the process runs (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(child) => match child.try_wait() {
                Ok(None) => true,
                _ => {
                    self.child = None;
                    false
                }
            },
            None => false,
        }
    }

    /// Starts the node and waits for its ready line; on failure the
    /// process is gone and the error names its log file.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        std::fs::create_dir_all(&self.spec.data_dir)
            .with_context(|| format!("cannot create {}", self.spec.data_dir.display()))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.log)
            .with_context(|| format!("cannot open the log {}", self.spec.log.display()))?;
        let from = log.metadata().map(|m| m.len()).unwrap_or(0);
        let program = std::env::current_exe().context("cannot find this program's path")?;
        let mut command = Command::new(program);
        // SAFETY: prctl(2) only, between fork and exec. A node dies with the
        // demo even if the demo is killed without a chance to stop it.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .arg("broker")
            .args(&self.spec.flags)
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share the log file")?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a broker process")?;
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if ready_line(&self.spec.log, from).is_some() {
                self.child = Some(child);
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "node {} exited during its start ({status}); its log {} ends with:\n{}",
                    self.spec.node_id,
                    self.spec.log.display(),
                    tail(&self.spec.log, from, 8)
                );
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill().await;
                bail!(
                    "node {} did not start within {} s; see its log {}",
                    self.spec.node_id,
                    READY_TIMEOUT.as_secs(),
                    self.spec.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the node dies as in a crash.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// SIGTERM, then SIGKILL if it has not stopped within [`STOP_TIMEOUT`].
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
            // SAFETY: kill(2) with a pid this process spawned and has not
            // reaped yet (the Child still owns it).
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    }
}

/// The ready line written to `log` after byte `from`, if any.
fn ready_line(log: &Path, from: u64) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(text.get(from as usize..)?);
    text.lines()
        .find(|line| line.starts_with("citystream broker ") && line.contains(" listening on "))
        .map(str::to_owned)
}

/// The last `lines` lines written to `log` after byte `from`.
fn tail(log: &Path, from: u64, lines: usize) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default()).into_owned();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
