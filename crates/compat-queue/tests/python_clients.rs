//! Runs `tests/queue_clients.py` (Python `requests` clients, as the
//! original broker's users have: two producers and two consumers on two
//! topics, in threads) against a broker and its queue listener on
//! 127.0.0.1:0, and requires it to pass. The interpreter is
//! `$CITYSTREAM_PYTHON`, else `python3`; without it or without `requests`
//! the test says why and passes (skips).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// The interpreter to use, or why there is none.
fn python() -> Result<String, String> {
    let python = std::env::var("CITYSTREAM_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-c", "import requests"])
        .output();
    match probe {
        Ok(output) if output.status.success() => Ok(python),
        Ok(output) => Err(format!(
            "{python} cannot import requests: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(error) => Err(format!("{python} cannot be run: {error}")),
    }
}

/// The Python clients see every message of their topics once, in one
/// order per topic, and the original's answers throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_clients_work_unchanged() {
    let python = match python() {
        Ok(python) => python,
        Err(why) => {
            eprintln!("skipping the Python client test: {why}");
            return;
        }
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/queue_clients.py");
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Node::start(&broker.address).await;
        let base = node.base.clone();
        let run = tokio::task::spawn_blocking(move || {
            Command::new(&python).arg(&script).arg(&base).output()
        });
        let output: Output = run.await.unwrap().expect("the interpreter starts");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("{stdout}");
        assert!(
            output.status.success(),
            "queue_clients.py failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
    })
    .await;
}
