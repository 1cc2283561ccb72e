//! The Consume view: each read shows the records the group had not read,
//! and only those.

use crate::browser::{Browser, ShownRecord, browser_test};
use crate::citystream::{Broker, cli, create_topic};

const TOPIC: &str = "browser-consume";
const GROUP: &str = "browser-group";

/// Three records produced, a read shows those three; two more produced,
/// the next read adds exactly those two; a third read adds nothing. The
/// lag caption goes to 0 after each read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_view_reads_only_new_records() {
    browser_test("consume", consume).await;
}

async fn consume(browser: Browser) {
    let broker = Broker::start();
    create_topic(&broker.native, TOPIC, &["--partitions", "1"]).await;
    let produce = ["produce", TOPIC, "--broker", &broker.native];
    cli(&produce, "c-1\nc-2\nc-3\n").await;

    browser.open(&broker.http, "consume").await;
    // The automatic read every 30 s could take records meant for the button.
    browser.click("consume-auto").await;
    browser.fill("consume-group", GROUP).await;
    browser.fill("consume-topic", TOPIC).await;
    let first = read(&browser, 3).await;
    assert_eq!(values(&first), ["c-3", "c-2", "c-1"]);
    assert_eq!(offsets(&first), [2, 1, 0]);

    cli(&produce, "c-4\nc-5\n").await;
    let second = read(&browser, 5).await;
    assert_eq!(
        values(&second[..2]),
        ["c-5", "c-4"],
        "the read added exactly the new records"
    );
    assert_eq!(offsets(&second[..2]), [4, 3]);
    assert_eq!(
        second[2..],
        first[..],
        "the earlier records stay below, unchanged"
    );
    assert!(browser.text("consume-status").await.contains("2 records"));
    browser.screenshot("consume").await;

    browser.click("consume-refresh").await;
    let script =
        "const status = document.querySelector('[data-testid=\"consume-status\"]').textContent;
        return status.includes('nothing unread') ? status : null;";
    let _: String = browser
        .wait_for("a read with nothing new", script, &[])
        .await;
    assert_eq!(
        browser.records("consume-record").await,
        second,
        "nothing added"
    );
    browser.finish().await;
}

/// Presses "Read unread records"; waits until the page shows `total`
/// records and a lag of 0, and returns them (newest first).
async fn read(browser: &Browser, total: usize) -> Vec<ShownRecord> {
    browser.click("consume-refresh").await;
    let script =
        "const shown = document.querySelectorAll('[data-testid=\"consume-record\"]').length;
        const lag = document.querySelector('[data-testid=\"consume-lag\"] caption').dataset.lag;
        return shown >= arguments[0] && lag === '0' ? shown : null;";
    let shown: usize = browser
        .wait_for(
            &format!("{total} records read, lag 0"),
            script,
            &[total.into()],
        )
        .await;
    assert_eq!(shown, total, "more records than produced");
    let records = browser.records("consume-record").await;
    assert!(
        records.iter().all(|r| r.topic == TOPIC && r.partition == 0),
        "{records:#?}"
    );
    records
}

fn values(records: &[ShownRecord]) -> Vec<&str> {
    records.iter().map(|record| record.value.as_str()).collect()
}

fn offsets(records: &[ShownRecord]) -> Vec<u64> {
    records.iter().map(|record| record.offset).collect()
}
