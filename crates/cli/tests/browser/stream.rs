//! The Live stream page: a subscription shows records the CLI produces,
//! with their values, keys, partitions and offsets.

use crate::browser::{Browser, ShownRecord, browser_test, css};
use crate::citystream::{Broker, cli, consume_all, create_topic};

const TOPIC: &str = "browser-live";

/// Subscribing to a topic on the Live stream page, then producing with
/// `citystream produce` from stdin, shows exactly those records in the
/// log, at the partitions and offsets the CLI reads them back from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_stream_shows_records_produced_by_the_cli() {
    browser_test("live_stream", live_stream).await;
}

async fn live_stream(browser: Browser) {
    let broker = Broker::start();
    create_topic(&broker.native, TOPIC, &["--partitions", "2"]).await;
    let produce = ["produce", TOPIC, "--broker", &broker.native];
    cli(&produce, "before the subscription\n").await;

    browser.open(&broker.http, "stream").await;
    subscribe(&browser, TOPIC).await;
    let lines = "station-7,{\"pm25\":12.5,\"unit\":\"ug/m3\"}\nstation-9,plain text from the CLI\n";
    cli(&[&produce[..], &["--key-separator", ","]].concat(), lines).await;

    let shown = wait_for_entries(&browser, 2).await;
    browser.screenshot("stream").await;
    assert_newest_first(&shown);
    let read = consume_all(&broker.native, TOPIC).await;
    let expected: Vec<ShownRecord> = read
        .iter()
        .filter(|record| record.value != "before the subscription")
        .map(|record| ShownRecord {
            topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            key: record.key.clone(),
            value: record.value.clone(),
            headers: String::new(),
        })
        .collect();
    assert_eq!(read.len(), 3, "{read:#?}");
    assert_eq!(sorted(shown), sorted(expected.clone()));
    let values: Vec<&str> = expected.iter().map(|r| r.value.as_str()).collect();
    assert!(
        values.contains(&r#"{"pm25":12.5,"unit":"ug/m3"}"#),
        "{values:?}"
    );
    assert!(values.contains(&"plain text from the CLI"), "{values:?}");
    let count = browser.text("stream-subscription-count").await;
    assert_eq!(count, "2 records");
    browser.finish().await;
}

/// Chooses `topic` (once the topic list has it), subscribes and waits
/// until the subscription is live.
pub async fn subscribe(browser: &Browser, topic: &str) {
    let script = "const select = document.querySelector('[data-testid=\"stream-topic\"]');
        return [...select.options].some((o) => o.value === arguments[0]) ? true : null;";
    let _: bool = browser
        .wait_for(
            &format!("{topic} in the topic list"),
            script,
            &[topic.into()],
        )
        .await;
    browser.choose("stream-topic", topic).await;
    browser.click("stream-subscribe").await;
    let script = "const row = document.querySelector(`[data-testid=\"stream-subscription\"][data-topic=\"${arguments[0]}\"]`);
        const state = row?.querySelector('[data-testid=\"stream-subscription-state\"]')?.textContent;
        return state === 'live' ? true : null;";
    let _: bool = browser
        .wait_for(
            &format!("the {topic} subscription live"),
            script,
            &[topic.into()],
        )
        .await;
}

/// Waits until the live log holds `count` records (and not more), then
/// returns them newest first.
pub async fn wait_for_entries(browser: &Browser, count: usize) -> Vec<ShownRecord> {
    let script = "const n = document.querySelectorAll(arguments[0]).length; return n >= arguments[1] ? n : null;";
    let args = [css("log-entry").into(), count.into()];
    let found: usize = browser
        .wait_for(&format!("{count} records in the log"), script, &args)
        .await;
    assert_eq!(found, count, "more records in the log than produced");
    browser.records("log-entry").await
}

/// The log is newest first: within a partition, offsets go down.
pub fn assert_newest_first(records: &[ShownRecord]) {
    for pair in records.windows(2) {
        if pair[0].partition == pair[1].partition {
            assert!(pair[0].offset > pair[1].offset, "{records:#?}");
        }
    }
}

fn sorted(mut records: Vec<ShownRecord>) -> Vec<ShownRecord> {
    records.sort_by_key(|record| (record.partition, record.offset));
    records
}
