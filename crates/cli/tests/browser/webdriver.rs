//! A WebDriver child on a free port (chromedriver driving a headless
//! Chromium, or geckodriver driving a headless Firefox) with a fresh
//! profile, and the WebDriver session on it (fantoccini over plain HTTP:
//! both drivers listen on 127.0.0.1 only). Whatever happens to the test,
//! the guard ends the session (which quits the browser and its helper
//! processes), kills the driver's process group and reaps it, and the
//! profile directory goes with it.
//!
//! Also here: the page's console errors. Chromium's come from
//! chromedriver's `browser` log, which fantoccini does not wrap (what the
//! page wrote to its console and every error Chromium reported for it:
//! uncaught exceptions, failed loads, CSP refusals). Firefox has no such
//! log over WebDriver; it prints content console messages and uncaught
//! errors on its output when `devtools.console.stdout.content` is set, and
//! geckodriver passes that output on: those lines are read back.

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
/// Firefox's arguments: headless, at the same window size as Chromium.
const FIREFOX_ARGS: [&str; 3] = ["-headless", "--width=1280", "--height=1000"];
/// How long the driver may take to answer `/status` with ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound on one request to the driver made outside fantoccini.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Tries with a new free port when the driver does not come up.
const START_ATTEMPTS: u32 = 3;

/// The browsers the tests run in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Chromium, Engine::Firefox];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
        }
    }
}

/// The two programs one engine needs.
pub struct Tools {
    pub engine: Engine,
    driver: PathBuf,
    browser: PathBuf,
}

/// Both programs of `engine` from the PATH, or why its tests cannot run.
pub fn find_tools(engine: Engine) -> Result<Tools, String> {
    let (driver, browser) = match engine {
        Engine::Chromium => (
            on_path("chromedriver").ok_or(
                "chromedriver is not on the PATH (Debian: apt-get install chromium-driver)",
            )?,
            on_path("chromium")
                .or_else(|| on_path("chromium-browser"))
                .ok_or("chromium is not on the PATH (Debian: apt-get install chromium)")?,
        ),
        Engine::Firefox => (
            on_path("geckodriver")
                .ok_or("geckodriver is not on the PATH (cargo install geckodriver)")?,
            on_path("firefox-esr")
                .or_else(|| on_path("firefox"))
                .ok_or("firefox is not on the PATH (Debian: apt-get install firefox-esr)")?,
        ),
    };
    Ok(Tools {
        engine,
        driver,
        browser,
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

/// A running driver and, once made, its one session.
pub struct Driver {
    engine: Engine,
    child: Child,
    address: SocketAddr,
    session_id: Option<String>,
    profile: tempfile::TempDir,
    /// The driver's output (for Firefox also the browser's).
    stderr_path: PathBuf,
    /// How much of that output the console-error reader has consumed.
    read_to: std::sync::Mutex<usize>,
}

impl Driver {
    pub fn start(tools: &Tools) -> Driver {
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Driver::try_start(tools) {
                Ok(driver) => return driver,
                Err(failure) => failures.push(failure),
            }
        }
        panic!("{} did not start: {failures:#?}", tools.driver.display());
    }

    fn try_start(tools: &Tools) -> Result<Driver, String> {
        let profile = tempfile::tempdir().expect("temp dir for the browser profile");
        let address = free_address();
        let stderr_path = profile.path().join("driver.output");
        let stderr = std::fs::File::create(&stderr_path).expect("driver output file");
        let stdout = stderr.try_clone().expect("driver output file");
        let child = Command::new(&tools.driver)
            .arg(format!("--port={}", address.port()))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: the guard kills it and whatever it started at once.
            .process_group(0)
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", tools.driver.display()))?;
        let mut driver = Driver {
            engine: tools.engine,
            child,
            address,
            session_id: None,
            profile,
            stderr_path,
            read_to: std::sync::Mutex::new(0),
        };
        driver.wait_ready()?;
        Ok(driver)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the driver exited ({status}): {}", self.stderr()));
            }
            let answer = request(self.address, "GET", "/status", "");
            if matches!(&answer, Ok((200, body)) if body.contains("\"ready\":true")) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the driver is not ready in {READY_TIMEOUT:?}: {}",
            self.stderr()
        ))
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Starts the browser with a fresh profile and its console errors
    /// recorded (Chromium's `browser` log, Firefox's output).
    pub async fn session(&mut self, tools: &Tools) -> fantoccini::Client {
        let capabilities = match self.engine {
            Engine::Chromium => {
                let profile = self.profile.path().join("chromium");
                let mut args: Vec<String> =
                    CHROMIUM_FLAGS.iter().map(|flag| flag.to_string()).collect();
                args.push(format!("--user-data-dir={}", profile.display()));
                serde_json::json!({
                    "browserName": "chrome",
                    "goog:loggingPrefs": { "browser": "ALL" },
                    "goog:chromeOptions": { "binary": tools.browser, "args": args },
                })
            }
            // geckodriver makes (and removes) a fresh profile itself.
            Engine::Firefox => serde_json::json!({
                "browserName": "firefox",
                "moz:firefoxOptions": {
                    "binary": tools.browser,
                    "args": FIREFOX_ARGS,
                    "prefs": {
                        "devtools.console.stdout.content": true,
                        "devtools.console.stdout.chrome": false,
                        "app.normandy.enabled": false,
                        "app.update.enabled": false,
                        "browser.shell.checkDefaultBrowser": false,
                        "datareporting.policy.dataSubmissionEnabled": false,
                        "messaging-system.rsexperimentloader.enabled": false,
                    },
                },
            }),
        };
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

    /// The page's console errors since the last call.
    pub async fn take_browser_log(&self) -> Vec<LogEntry> {
        match self.engine {
            Engine::Chromium => self.take_chromium_log().await,
            Engine::Firefox => self.take_firefox_output(),
        }
    }

    /// chromedriver's `/se/log`; each call takes the entries it returns.
    async fn take_chromium_log(&self) -> Vec<LogEntry> {
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

    /// The page's lines in Firefox's output since the last call: its
    /// `console.error` calls and its uncaught errors (`JavaScript error:`
    /// with an http(s) address; the browser's own scripts have others).
    fn take_firefox_output(&self) -> Vec<LogEntry> {
        let output = std::fs::read(&self.stderr_path).unwrap_or_default();
        let mut read_to = self.read_to.lock().expect("the reader's position");
        let new = String::from_utf8_lossy(&output[(*read_to).min(output.len())..]).into_owned();
        *read_to = output.len();
        firefox_errors(&new)
    }
}

/// Console errors in Firefox's output. A `console.error` message runs on
/// over its indented lines; one whose text names `resource://` or
/// `chrome://` comes from the browser's own code (e.g. its remote settings
/// loader failing without a network), not from the page.
fn firefox_errors(output: &str) -> Vec<LogEntry> {
    let mut errors = Vec::new();
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with("JavaScript error: http") {
            errors.push(severe(line.to_string(), "javascript"));
        } else if line.starts_with("console.error: ") {
            let mut message = line.to_string();
            while let Some(more) = lines.next_if(|next| next.starts_with(' ') || next.is_empty()) {
                message.push('\n');
                message.push_str(more);
            }
            if !message.contains("resource://") && !message.contains("chrome://") {
                errors.push(severe(message, "console-api"));
            }
        }
    }
    errors
}

fn severe(message: String, source: &str) -> LogEntry {
    LogEntry {
        level: "SEVERE".to_string(),
        message,
        source: source.to_string(),
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(session_id) = self.session_id.take() {
            // Ending the session quits the browser, crash handler included.
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

/// A port nothing listens on right now (the driver binds it next).
fn free_address() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe port");
    probe.local_addr().expect("the probe's address")
}

/// One HTTP/1.1 request to the driver; returns the status and the body.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The page's console errors and uncaught errors count; the browser's
    /// own do not.
    #[test]
    fn firefox_output_yields_the_page_errors_only() {
        let output = "\
*** You are running in headless mode.
console.error: RSLoader: 
  Failed to retrieve recipes from Remote Settings
  Stack:
    RemoteSettingsSyncError@resource://nimbus/lib/RemoteSettingsExperimentLoader.sys.mjs:1570:5

console.error: \"boom\"
JavaScript error: http://127.0.0.1:6001/js/main.js, line 3: Error: thrown
JavaScript error: resource://gre/modules/PrivateBrowsingUtils.sys.mjs, line 50: TypeError: x
";
        let errors = firefox_errors(output);
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "console.error: \"boom\"",
                "JavaScript error: http://127.0.0.1:6001/js/main.js, line 3: Error: thrown"
            ]
        );
    }
}
