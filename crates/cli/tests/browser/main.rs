//! End-to-end tests of the web console in headless Chromium: each test
//! starts the real `citystream` binary (one broker, or `citystream demo`)
//! on free ports and its own chromedriver, drives the console's pages
//! through their `data-testid`s (crates/console/README.md), checks what
//! they show against what the CLI produced or reads, and fails on any
//! error in the browser's console.
//!
//! Without `chromedriver` or `chromium` on the PATH every test prints why
//! and passes (CI installs both: see `.ci/run`). Screenshots of every page
//! a test visits land in `$CARGO_TARGET_TMPDIR/browser-screenshots/`.
//!
//! Not here: the console's own unit tests (crates/console), and the HTTP
//! API's behaviour without a browser (tests/cli).

mod browser;
mod city;
mod citystream;
mod consume;
mod failover;
mod publish;
mod stream;
mod webdriver;
