//! A chromedriver child on a free port, driving a headless Chromium with a
//! fresh profile, and the WebDriver session on it (fantoccini over plain
//! HTTP: chromedriver only listens on 127.0.0.1). Whatever happens to the
//! test, the guard ends the session (which quits Chromium and its helper
//! processes), kills chromedriver's process group and reaps it, and the
//! profile directory goes with it.
//!
//! Also here: chromedriver's `browser` log, which fantoccini does not wrap.
//! It holds what the page wrote to its console and every error Chromium
//! reported for it (uncaught exceptions, failed loads, CSP refusals).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Chromium's flags: headless, no sandbox (containers, root), nothing that
/// reaches the network on its own, a first run without prompts.
/// `--disable-dev-shm-usage` because containers often have a small
/// /dev/shm; the window size makes screenshots comparable between runs.
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];
/// How long chromedriver may take to answer `/status` with ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on one request to chromedriver made outside fantoccini.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Tries with a new free port when chromedriver does not come up.
const START_ATTEMPTS: u32 = 3;

/// The two programs the tests need.
pub struct Tools {
    chromedriver: PathBuf,
    chromium: PathBuf,
}

/// Both programs from the PATH, or why the browser tests cannot run.
pub fn find_tools() -> Result<Tools, String> {
    let chromedriver = on_path("chromedriver")
        .ok_or("chromedriver is not on the PATH (Debian: apt-get install chromium-driver)")?;
    let chromium = on_path("chromium")
        .or_else(|| on_path("chromium-browser"))
        .ok_or("chromium is not on the PATH (Debian: apt-get install chromium)")?;
    Ok(Tools {
        chromedriver,
        chromium,
    })
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| candidate.is_file())
}

/// One entry of chromedriver's `browser` log.
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntry {
    pub level: String,
    pub message: String,
    #[serde(default)]
    pub source: String,
}

/// A running chromedriver and, once made, its one session.
pub struct Chromedriver {
    child: Child,
    address: SocketAddr,
    session_id: Option<String>,
    profile: tempfile::TempDir,
    stderr_path: PathBuf,
}

impl Chromedriver {
    pub fn start(tools: &Tools) -> Chromedriver {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Chromedriver::try_start(tools) {
                Ok(driver) => return driver,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("chromedriver did not start: {failures:#?}");
    }

    fn try_start(tools: &Tools) -> Result<Chromedriver, String> {
        let profile = tempfile::tempdir().expect("temp dir for the Chromium profile");
        let address = free_address();
        let stderr_path = profile.path().join("chromedriver.stderr");
        let stderr = std::fs::File::create(&stderr_path).expect("chromedriver stderr file");
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={}", address.port()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            // Its own process group: the guard kills it and whatever it started at once.
            .process_group(0)
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", tools.chromedriver.display()))?;
        let mut driver = Chromedriver {
            child,
            address,
            session_id: None,
            profile,
            stderr_path,
        };
        driver.wait_ready()?;
        Ok(driver)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("chromedriver exited ({status}): {}", self.stderr()));
            }
            let answer = request(self.address, "GET", "/status", "");
            if matches!(&answer, Ok((200, body)) if body.contains("\"ready\":true")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "chromedriver not ready in {READY_TIMEOUT:?}: {}",
            self.stderr()
        ))
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Starts Chromium with a fresh profile and the `browser` log on.
    pub async fn session(&mut self, tools: &Tools) -> fantoccini::Client {
        let profile = self.profile.path().join("chromium");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|flag| flag.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": { "binary": tools.chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal");
        };
        let client = fantoccini::ClientBuilder::new(
            hyper_util::client::legacy::connect::HttpConnector::new(),
        )
        .capabilities(capabilities)
        .connect(&format!("http://{}", self.address))
        .await
        .unwrap_or_else(|error| panic!("no WebDriver session: {error}\n{}", self.stderr()));
        self.session_id = client.session_id().await.expect("the session's id");
        client
    }

    /// The session was closed through fantoccini: nothing left to end.
    pub fn session_closed(&mut self) {
        self.session_id = None;
    }

    /// The `browser` log entries since the last call (chromedriver's
    /// `/se/log`; each call takes the entries it returns).
    pub async fn take_browser_log(&self) -> Vec<LogEntry> {
        let address = self.address;
        let path = format!(
            "/session/{}/se/log",
            self.session_id.as_deref().expect("a session")
        );
        let answer = tokio::task::spawn_blocking(move || {
            request(address, "POST", &path, r#"{"type":"browser"}"#)
        })
        .await
        .expect("the log request ran");
        let (status, body) = answer.unwrap_or_else(|error| panic!("browser log: {error}"));
        assert_eq!(status, 200, "browser log: {body}");
        #[derive(Deserialize)]
        struct Answer {
            value: Vec<LogEntry>,
        }
        let answer: Answer = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("browser log is not a list ({error}): {body}"));
        answer.value
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        if let Some(session_id) = self.session_id.take() {
            // Ending the session quits Chromium, crash handler included.
            let _ = request(
                self.address,
                "DELETE",
                &format!("/session/{session_id}"),
                "",
            );
        }
        let group = -(self.child.id() as i32);
        // SAFETY: kill(2) on our child's process group; no memory is involved.
        unsafe {
            libc::kill(group, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// A port nothing listens on right now (chromedriver binds it next).
fn free_address() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    probe.local_addr().expect("the probe's address")
}

/// One HTTP/1.1 request to chromedriver; returns the status and the body.
/// Blocking, bounded by `REQUEST_TIMEOUT`. Chromedriver keeps connections
/// open whatever the request says, so the body is read by its length.
fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let text = |error: std::io::Error| error.to_string();
    let mut stream = TcpStream::connect_timeout(&address, REQUEST_TIMEOUT).map_err(text)?;
    stream
        .set_read_timeout(Some(REQUEST_TIMEOUT))
        .map_err(text)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream
        .write_all(format!("{head}{body}").as_bytes())
        .map_err(text)?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).map_err(text)?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status in {status_line:?}"))?;
    let mut length = None;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(text)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse::<usize>().ok();
        }
    }
    let length = length.ok_or("chromedriver's answer has no Content-Length")?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).map_err(text)?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
