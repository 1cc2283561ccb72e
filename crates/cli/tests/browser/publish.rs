//! The Publish dialog: what it writes is what `citystream consume` reads,
//! at the partition and offset the dialog reported.

use serde::Deserialize;

use crate::browser::{Browser, browser_test};
use crate::citystream::{Broker, consume_all, create_topic};

const TOPIC: &str = "browser-publish";

/// What the dialog's result line says after a write.
#[derive(Debug, Deserialize)]
struct Written {
    partition: u32,
    offset: u64,
}

/// Two records published from the dialog (a keyed JSON value with a
/// header and a priority; a text value to a chosen partition) are read
/// back by the CLI with their values, keys and headers, at the partitions
/// and offsets the dialog showed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_dialog_writes_what_the_cli_reads() {
    browser_test("publish", publish).await;
}

async fn publish(browser: Browser) {
    let broker = Broker::start();
    create_topic(&broker.native, TOPIC, &["--partitions", "3"]).await;
    browser.open(&broker.http, "publish").await;
    browser.click("publish-open").await;
    browser.fill("publish-topic", TOPIC).await;
    browser.fill("publish-key", "station-north-1").await;
    browser
        .fill(
            "publish-value",
            r#"{ "reading": 42, "station": "north-1" }"#,
        )
        .await;
    browser.click("publish-header-add").await;
    browser.fill("publish-header-name", "source").await;
    browser.fill("publish-header-value", "browser").await;
    browser.choose("publish-priority", "high").await;
    let first = submit(&browser, 1).await;
    browser.screenshot("dialog").await;

    browser.click("publish-format-text").await;
    browser.fill("publish-key", "").await;
    browser
        .fill("publish-value", "plain text, partition two")
        .await;
    browser.click("publish-header-remove").await;
    browser.choose("publish-priority", "").await;
    browser.fill("publish-partition", "2").await;
    let second = submit(&browser, 2).await;
    assert_eq!(second.partition, 2, "the chosen partition");
    browser.click("publish-close").await;
    browser.screenshot("publish").await;
    let history = browser
        .run(
            "return document.querySelectorAll('[data-testid=\"publish-history-entry\"]').length;",
            &[],
        )
        .await;
    assert_eq!(history, 2, "both sends in the page's history");

    let read = consume_all(&broker.native, TOPIC).await;
    assert_eq!(read.len(), 2, "{read:#?}");
    let json = read
        .iter()
        .find(|r| r.key.as_deref() == Some("station-north-1"))
        .expect("the keyed record");
    let value: serde_json::Value = serde_json::from_str(&json.value).expect("a JSON value");
    assert_eq!(
        value,
        serde_json::json!({"reading": 42, "station": "north-1"})
    );
    assert_eq!(
        (json.partition, json.offset),
        (first.partition, first.offset)
    );
    assert_eq!(json.headers.get("source"), Some(&"browser".into()));
    assert_eq!(json.headers.get("priority"), Some(&"high".into()));
    let text = read
        .iter()
        .find(|r| r.key.is_none())
        .expect("the keyless record");
    assert_eq!(text.value, "plain text, partition two");
    assert_eq!(
        (text.partition, text.offset),
        (second.partition, second.offset)
    );
    assert!(text.headers.is_empty(), "{:?}", text.headers);
    browser.finish().await;
}

/// Submits the dialog and waits for the `nth` successful result line.
async fn submit(browser: &Browser, nth: usize) -> Written {
    browser.click("publish-submit").await;
    let script = "const result = document.querySelector('[data-testid=\"publish-result\"]');
        const history = document.querySelectorAll('[data-testid=\"publish-history-entry\"]').length;
        if (history < arguments[0]) return null;
        if (!result.classList.contains('ok')) return { error: result.textContent };
        return { partition: Number(result.dataset.partition), offset: Number(result.dataset.offset) };";
    let answer: serde_json::Value = browser
        .wait_for(&format!("publish result {nth}"), script, &[nth.into()])
        .await;
    serde_json::from_value(answer.clone())
        .unwrap_or_else(|_| panic!("the dialog did not write: {answer}"))
}
