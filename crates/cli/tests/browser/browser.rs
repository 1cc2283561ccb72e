//! The console as a test sees it: one headless browser session (see
//! `webdriver`) with the actions a user takes (open a page, click, type,
//! choose) addressed by `data-testid`, reads of what a page shows as data
//! (the records of a log, a status line), waits that poll the DOM until a
//! condition holds or a timeout fails the test, screenshots, and the check
//! that the browser's console stayed free of errors.
//!
//! Browser tests run one at a time (`start` takes a process-wide turn):
//! each runs a browser and up to four broker processes, which is all a
//! 2-core CI machine can carry without timing out waits.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::wd::WindowHandle;
use fantoccini::{Client, Locator};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::{Mutex, MutexGuard};

use crate::webdriver::{Driver, Engine, LogEntry, Tools, find_tools};

/// Upper bound on a test once its browser runs (every wait has its own).
const TEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Upper bound on starting the browser for a session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound on every wait for the page.
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a wait looks at the DOM again.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// The tallest window `fit_window_to_page` makes, in pixels.
const WINDOW_HEIGHT_MAX: u64 = 4000;
/// Page text quoted in a timeout's message.
const PAGE_TEXT_QUOTED_MAX: usize = 3000;

static TURN: Mutex<()> = Mutex::const_new(());

/// A record as a page shows it (the live log, the records consumed): the
/// data attributes and the text of its key, value and headers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ShownRecord {
    pub topic: String,
    pub partition: u32,
    pub offset: u64,
    pub key: Option<String>,
    pub value: String,
    /// "name=value name=value", empty without headers.
    pub headers: String,
}

/// Reads every element with the testid `arguments[0]` as a `ShownRecord`.
const READ_RECORDS: &str = r#"
const [testid] = arguments;
return [...document.querySelectorAll(`[data-testid="${testid}"]`)].map((e) => ({
  topic: e.dataset.topic,
  partition: Number(e.dataset.partition),
  offset: Number(e.dataset.offset),
  key: e.querySelector(".key")?.textContent ?? null,
  value: e.querySelector(".value")?.textContent ?? "",
  headers: e.querySelector(".headers")?.textContent ?? "",
}));
"#;

/// Runs `body` for `test` in each browser (Chromium, then Firefox), each
/// within `TEST_TIMEOUT`; passes over a browser (saying why) whose browser
/// or driver is not installed. When the time is up the body is dropped
/// first, so its guards stop every process it started.
pub async fn browser_test<Body>(test: &'static str, body: impl Fn(Browser) -> Body)
where
    Body: Future<Output = ()>,
{
    for engine in Engine::ALL {
        let Some(browser) = Browser::start(test, engine).await else {
            continue;
        };
        if tokio::time::timeout(TEST_TIMEOUT, body(browser))
            .await
            .is_err()
        {
            panic!(
                "browser test {test} did not finish in {} within {TEST_TIMEOUT:?}",
                engine.name()
            );
        }
    }
}

/// A browser session for one test, holding that test's turn.
pub struct Browser {
    client: Client,
    driver: Driver,
    test: &'static str,
    pub engine: Engine,
    /// Console entries taken from the browser log so far.
    console: Vec<LogEntry>,
    _turn: MutexGuard<'static, ()>,
}

impl Browser {
    /// `engine` for `test`, or `None` (after printing why) when the browser
    /// or its driver is not installed. Waits for the turn of `test`.
    async fn start(test: &'static str, engine: Engine) -> Option<Browser> {
        let tools: Tools = match find_tools(engine) {
            Ok(tools) => tools,
            Err(reason) => {
                eprintln!(
                    "skipping browser test {test} in {}: {reason}",
                    engine.name()
                );
                return None;
            }
        };
        let turn = TURN.lock().await;
        let mut driver = Driver::start(&tools);
        let client = tokio::time::timeout(SESSION_TIMEOUT, driver.session(&tools))
            .await
            .unwrap_or_else(|_| panic!("no {} session within {SESSION_TIMEOUT:?}", engine.name()));
        Some(Browser {
            client,
            driver,
            test,
            engine,
            console: Vec::new(),
            _turn: turn,
        })
    }

    /// Loads the console from a node's HTTP address at `#/route` and waits
    /// until that page is shown.
    pub async fn open(&self, http: &str, route: &str) {
        let url = format!("http://{http}/#/{route}");
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|error| panic!("open {url}: {error}"));
        self.wait_shown(route).await;
    }

    async fn wait_shown(&self, route: &str) {
        let script =
            "const page = document.querySelector(`[data-testid=\"page-${arguments[0]}\"]`);
            return page && !page.hidden ? true : null;";
        let _: bool = self
            .wait_for(&format!("page {route} shown"), script, &[route.into()])
            .await;
    }

    /// The first element with this testid (it must be there).
    pub async fn element(&self, testid: &str) -> fantoccini::elements::Element {
        self.find(&css(testid)).await
    }

    pub async fn find(&self, selector: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(selector))
            .await
            .unwrap_or_else(|error| panic!("no element {selector}: {error}"))
    }

    pub async fn click(&self, testid: &str) {
        self.click_on(&css(testid)).await;
    }

    /// Clicks the element `selector` finds, as a user would (WebDriver
    /// refuses elements that are hidden or covered).
    pub async fn click_on(&self, selector: &str) {
        let element = self.find(selector).await;
        element
            .click()
            .await
            .unwrap_or_else(|error| panic!("click {selector}: {error}"));
    }

    /// Replaces the text of the input with this testid, typing `text`.
    pub async fn fill(&self, testid: &str, text: &str) {
        let input = self.element(testid).await;
        input
            .clear()
            .await
            .unwrap_or_else(|error| panic!("clear {testid}: {error}"));
        if text.is_empty() {
            return;
        }
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|error| panic!("type into {testid}: {error}"));
    }

    /// Chooses the option with `value` of the select with this testid.
    pub async fn choose(&self, testid: &str, value: &str) {
        self.element(testid)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|error| panic!("choose {value:?} in {testid}: {error}"));
    }

    /// Runs `script` (a function body; `arguments` are `args`).
    pub async fn run(&self, script: &str, args: &[Value]) -> Value {
        self.client
            .execute(script, args.to_vec())
            .await
            .unwrap_or_else(|error| panic!("script failed: {error}\n{script}"))
    }

    /// Runs `script` until it returns something other than null, and
    /// returns that; fails the test (with a screenshot and the page's
    /// text) after `WAIT_TIMEOUT`.
    pub async fn wait_for<T: DeserializeOwned>(
        &self,
        what: &str,
        script: &str,
        args: &[Value],
    ) -> T {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            let value = self.run(script, args).await;
            if !value.is_null() {
                return serde_json::from_value(value.clone())
                    .unwrap_or_else(|error| panic!("waiting for {what}: {error} in {value}"));
            }
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {WAIT_TIMEOUT:?} waiting for {what}"
                ))
                .await;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Fails the test with a screenshot and the page's text.
    pub async fn fail(&self, message: &str) -> ! {
        let screenshot = self.screenshot("failure").await;
        let text = self.run("return document.body.innerText;", &[]).await;
        let text: String = text
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(PAGE_TEXT_QUOTED_MAX)
            .collect();
        panic!(
            "{message}\nscreenshot: {}\npage text:\n{text}",
            screenshot.display()
        );
    }

    /// Every element with this testid, read as a record.
    pub async fn records(&self, testid: &str) -> Vec<ShownRecord> {
        let value = self.run(READ_RECORDS, &[testid.into()]).await;
        serde_json::from_value(value).expect("records as READ_RECORDS returns them")
    }

    /// The text of the first element with this testid.
    pub async fn text(&self, testid: &str) -> String {
        let script = "return document.querySelector(`[data-testid=\"${arguments[0]}\"]`)?.textContent ?? null;";
        let value = self.run(script, &[testid.into()]).await;
        value
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no element {testid}"))
    }

    /// Makes the window tall enough to show the whole page (up to
    /// `WINDOW_HEIGHT_MAX`), for a screenshot of all of it.
    pub async fn fit_window_to_page(&self) {
        let script = "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;";
        let height = self
            .run(script, &[])
            .await
            .as_u64()
            .expect("a height in pixels");
        let (width, _) = self
            .client
            .get_window_size()
            .await
            .expect("the window's size");
        let height = height.min(WINDOW_HEIGHT_MAX) as u32;
        self.client
            .set_window_size(width as u32, height)
            .await
            .expect("resize the window");
    }

    /// Saves a screenshot of what the tab shows as `<test>-<name>.png`
    /// (`<test>-<name>-firefox.png` in Firefox)
    /// under the screenshot directory and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("a screenshot");
        let directory = screenshot_directory();
        std::fs::create_dir_all(&directory).expect("the screenshot directory");
        let suffix = match self.engine {
            Engine::Chromium => String::new(),
            other => format!("-{}", other.name()),
        };
        let path = directory.join(format!("{}-{name}{suffix}.png", self.test));
        std::fs::write(&path, png)
            .unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        path
    }

    /// The window (or tab) the session drives now.
    pub async fn window(&self) -> WindowHandle {
        self.client.window().await.expect("the current window")
    }

    /// Opens another browser window, not a tab: the current tab stays
    /// visible (a background tab is hidden, and the console pauses a
    /// hidden page's streams). Returns it without switching to it.
    pub async fn new_window(&self) -> WindowHandle {
        self.client
            .new_window(false)
            .await
            .expect("a new window")
            .handle
    }

    /// Switches to another window or tab (taking the console entries so far first).
    pub async fn switch_to(&mut self, window: &WindowHandle) {
        self.take_console().await;
        self.client
            .switch_to_window(window.clone())
            .await
            .expect("switch windows");
    }

    async fn take_console(&mut self) {
        let entries = self.driver.take_browser_log().await;
        self.console.extend(entries);
    }

    /// Fails the test if any tab's console has an error (other than the
    /// one the console's README documents); then ends the session.
    pub async fn finish(self) {
        self.finish_allowing(|_| false).await;
    }

    /// As [`Browser::finish`], also allowing the errors `expected` accepts
    /// (e.g. the browser's network errors for a node the test killed).
    pub async fn finish_allowing(mut self, expected: impl Fn(&LogEntry) -> bool) {
        for window in self.client.windows().await.expect("the windows") {
            self.switch_to(&window).await;
        }
        self.take_console().await;
        let errors: Vec<&LogEntry> = self
            .console
            .iter()
            .filter(|entry| entry.level == "SEVERE" && !is_documented(entry) && !expected(entry))
            .collect();
        assert!(
            errors.is_empty(),
            "errors in the browser's console: {errors:#?}"
        );
        self.client
            .clone()
            .close()
            .await
            .expect("end the WebDriver session");
        self.driver.session_closed();
    }
}

/// The console README's one expected console error: the browser logs the
/// 404 of `GET /api/demo` on a cluster that is not a demo.
fn is_documented(entry: &LogEntry) -> bool {
    entry.source == "network"
        && entry.message.contains("/api/demo")
        && entry.message.contains("404")
}

pub fn css(testid: &str) -> String {
    format!("[data-testid=\"{testid}\"]")
}

/// `$CARGO_TARGET_TMPDIR/browser-screenshots` (cargo sets it for
/// integration tests), else one under the system's temp directory.
pub fn screenshot_directory() -> PathBuf {
    let base = option_env!("CARGO_TARGET_TMPDIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CARGO_TARGET_TMPDIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    base.join("browser-screenshots")
}
