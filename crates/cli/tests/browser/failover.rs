//! Stopping a partition's leader from the Cluster page while the Live
//! stream of its topic is open in another window: the stream goes on with
//! no gap and no duplicate. Stopping the node that served the page: the
//! page moves to another node, and back once its own node is started again.

use std::collections::BTreeMap;

use crate::browser::{Browser, ShownRecord, browser_test};
use crate::citystream::{Demo, DemoNode, Producer, consume_all, create_topic};
use crate::stream::{assert_newest_first, subscribe, wait_for_entries};

const TOPIC: &str = "browser-failover";
/// Keys spread the records over both partitions (by key hash).
const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];
/// Records, in the stream's page, every visibility change (none expected:
/// a hidden page would pause its streams and resume them later, which is
/// not the path this test means to cover).
const WATCH_VISIBILITY: &str = "window.visibilityChanges = [];
    document.addEventListener('visibilitychange', () => window.visibilityChanges.push(document.visibilityState));";
/// Records produced before the stop, right after it, and once a new leader is shown.
const PER_PHASE: usize = 20;

/// `citystream demo --no-sim`; the Live stream of a 2-partition,
/// 3-replica topic open on a node that is not partition 0's leader; a
/// CLI producer through that node. Pressing Stop on the leader's row of
/// the Cluster page (in another window) kills it; the producer keeps
/// going through the election, and the stream, open all along, shows
/// every produced value exactly once, each partition's in the order the
/// CLI reads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_leader_from_the_cluster_page_leaves_no_gap_in_the_live_stream() {
    browser_test("failover", failover).await;
}

async fn failover(mut browser: Browser) {
    let demo = Demo::start(&["--no-sim"]);
    let flags = ["--partitions", "2", "--replication", "3"];
    create_topic(&demo.node(1).native, TOPIC, &flags).await;
    browser.open(&demo.node(1).http, "cluster").await;
    let leader = partition_leader(&browser, None).await;
    let page = demo
        .nodes
        .iter()
        .find(|node| node.node_id != leader)
        .expect("another node");

    browser.open(&page.http, "stream").await;
    subscribe(&browser, TOPIC).await;
    let mut producer = Producer::start(&page.native, TOPIC);
    let mut sent = 0;
    sent += produce(&mut producer, sent).await;
    wait_for_entries(&browser, sent).await;

    browser.run(WATCH_VISIBILITY, &[]).await;
    let stream_window = browser.window().await;
    let cluster_window = browser.new_window().await;
    browser.switch_to(&cluster_window).await;
    browser.open(&page.http, "cluster").await;
    stop_node(&browser, leader).await;
    sent += produce(&mut producer, sent).await;
    // These records were sent during the election: they reach the open stream live.
    browser.switch_to(&stream_window).await;
    wait_for_entries(&browser, sent).await;
    browser.switch_to(&cluster_window).await;
    let new_leader = partition_leader(&browser, Some(leader)).await;
    browser.screenshot("cluster").await;
    sent += produce(&mut producer, sent).await;
    let acknowledged = producer.finish().await;
    assert!(
        acknowledged.contains(&format!("acknowledged {sent} records")),
        "{acknowledged}"
    );

    browser.switch_to(&stream_window).await;
    let shown = wait_for_entries(&browser, sent).await;
    browser.screenshot("stream").await;
    assert_newest_first(&shown);
    assert_still_on(&browser, page).await;
    let hidden = browser.run("return window.visibilityChanges;", &[]).await;
    assert_eq!(
        hidden,
        serde_json::json!([]),
        "the stream's page was never hidden (not paused)"
    );
    assert_each_value_once(&shown, sent);
    let read = consume_all(&page.native, TOPIC).await;
    let read_values = by_partition(read.iter().map(|r| (r.partition, r.value.clone())));
    // Oldest first, as the log was written; offsets may jump at the leader change.
    let shown_values = by_partition(shown.iter().rev().map(|r| (r.partition, r.value.clone())));
    assert_eq!(
        shown_values, read_values,
        "per partition: shown in the order the log holds"
    );
    for (partition, values) in &shown_values {
        assert!(
            values.is_sorted(),
            "partition {partition} out of produce order: {values:?}"
        );
    }
    eprintln!("partition 0 led by node {leader}, then node {new_leader}; {sent} records shown");
    browser.finish().await;
}

/// The Live stream open on node 2, a CLI producer through node 1. Node 2
/// is stopped from the Cluster page (on node 1, in another window): the
/// stream's page moves to another node and goes on; node 2 is started
/// again: the page moves back to it. The stream shows every value exactly
/// once, in each partition's order, and is live on node 2 at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_moves_away_from_its_stopped_node_and_back_when_it_returns() {
    browser_test("failover-home", move_away_and_back).await;
}

async fn move_away_and_back(mut browser: Browser) {
    let demo = Demo::start(&["--no-sim"]);
    let flags = ["--partitions", "2", "--replication", "3"];
    create_topic(&demo.node(1).native, TOPIC, &flags).await;
    let home = demo.node(2);
    browser.open(&home.http, "stream").await;
    subscribe(&browser, TOPIC).await;
    let mut producer = Producer::start(&demo.node(1).native, TOPIC);
    let mut sent = produce(&mut producer, 0).await;
    wait_for_entries(&browser, sent).await;

    let stream_window = browser.window().await;
    let cluster_window = browser.new_window().await;
    browser.switch_to(&cluster_window).await;
    browser.open(&demo.node(1).http, "cluster").await;
    stop_node(&browser, home.node_id).await;
    sent += produce(&mut producer, sent).await;
    browser.switch_to(&stream_window).await;
    let away = wait_talking_to(&browser, |node, moved| moved && node != home.node_id).await;
    wait_for_entries(&browser, sent).await;

    browser.switch_to(&cluster_window).await;
    start_node(&browser, home.node_id).await;
    browser.switch_to(&stream_window).await;
    wait_talking_to(&browser, |node, moved| !moved && node == home.node_id).await;
    sent += produce(&mut producer, sent).await;
    let acknowledged = producer.finish().await;
    assert!(
        acknowledged.contains(&format!("acknowledged {sent} records")),
        "{acknowledged}"
    );
    let shown = wait_for_entries(&browser, sent).await;
    assert_newest_first(&shown);
    assert_still_on(&browser, home).await;
    assert_each_value_once(&shown, sent);
    let shown_values = by_partition(shown.iter().rev().map(|r| (r.partition, r.value.clone())));
    for (partition, values) in &shown_values {
        assert!(
            values.is_sorted(),
            "partition {partition} out of produce order: {values:?}"
        );
    }
    eprintln!(
        "the page moved from node {} to node {away} and back",
        home.node_id
    );
    // While node 2 was down, the browser logged its failed requests.
    let home_url = format!("http://{}/", home.http);
    browser
        .finish_allowing(|entry| {
            entry.source == "network" && entry.message.contains(&home_url)
                || entry.message.contains("net::ERR_CONNECTION_REFUSED")
        })
        .await;
}

/// Waits until the page's "talking to" label satisfies `wanted(node id,
/// moved)`; returns the node id.
async fn wait_talking_to(browser: &Browser, wanted: impl Fn(u32, bool) -> bool) -> u32 {
    let script = "const label = document.querySelector('[data-testid=\"talking-to\"]');
        const node = Number(label?.dataset.nodeId);
        return Number.isInteger(node) && node > 0 ? [node, label.classList.contains('moved')] : null;";
    let deadline = std::time::Instant::now() + crate::browser::WAIT_TIMEOUT;
    loop {
        let seen: Option<(u32, bool)> =
            serde_json::from_value(browser.run(script, &[]).await).expect("[node, moved]");
        if let Some((node, moved)) = seen
            && wanted(node, moved)
        {
            return node;
        }
        if std::time::Instant::now() > deadline {
            browser
                .fail(&format!(
                    "the page's node never changed as expected; last seen {seen:?}"
                ))
                .await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Presses Start on `node_id`'s row and waits until the page no longer
/// shows it stopped.
async fn start_node(browser: &Browser, node_id: u32) {
    let button = format!("[data-testid=\"node-start\"][data-node-id=\"{node_id}\"]");
    let script = "const button = document.querySelector(arguments[0]);
        return button && !button.disabled && button.offsetParent !== null ? true : null;";
    let _: bool = browser
        .wait_for("the Start button", script, &[button.clone().into()])
        .await;
    browser.click_on(&button).await;
    let script = "const row = document.querySelector(`[data-testid=\"cluster-node\"][data-node-id=\"${arguments[0]}\"]`);
        return row && row.dataset.health !== 'stopped' ? true : null;";
    let _: bool = browser
        .wait_for(
            &format!("node {node_id} started"),
            script,
            &[node_id.into()],
        )
        .await;
}

/// Partition 0's leader as the Cluster page shows it, once it is a node
/// other than `not`.
async fn partition_leader(browser: &Browser, not: Option<u32>) -> u32 {
    let script = "const [topic, not] = arguments;
        const row = document.querySelector(`[data-testid=\"cluster-partition\"][data-topic=\"${topic}\"][data-partition=\"0\"]`);
        const leader = row ? Number(row.children[2].textContent) : NaN;
        return Number.isInteger(leader) && leader > 0 && leader !== not ? leader : null;";
    let what = format!("a leader of {TOPIC} partition 0 other than {not:?}");
    browser
        .wait_for(&what, script, &[TOPIC.into(), not.into()])
        .await
}

/// Presses Stop on `node_id`'s row (once the demo controls are shown) and
/// waits until the page shows it stopped.
async fn stop_node(browser: &Browser, node_id: u32) {
    let button = format!("[data-testid=\"node-stop\"][data-node-id=\"{node_id}\"]");
    let script = "const button = document.querySelector(arguments[0]);
        return button && !button.disabled && button.offsetParent !== null ? true : null;";
    let _: bool = browser
        .wait_for("the Stop button", script, &[button.clone().into()])
        .await;
    browser.click_on(&button).await;
    let script = "const row = document.querySelector(`[data-testid=\"cluster-node\"][data-node-id=\"${arguments[0]}\"]`);
        return row?.dataset.health === 'stopped' ? true : null;";
    let _: bool = browser
        .wait_for(
            &format!("node {node_id} stopped"),
            script,
            &[node_id.into()],
        )
        .await;
}

/// Sends the next `PER_PHASE` records (`v-<n>`, keys in turn); returns how many.
async fn produce(producer: &mut Producer, sent: usize) -> usize {
    for n in sent..sent + PER_PHASE {
        producer.send(KEYS[n % KEYS.len()], &value(n)).await;
    }
    PER_PHASE
}

fn value(n: usize) -> String {
    format!("v-{n:03}")
}

/// The page did not need to move: its node stayed up.
async fn assert_still_on(browser: &Browser, node: &DemoNode) {
    let script = "const label = document.querySelector('[data-testid=\"talking-to\"]');
        return { node: label.dataset.nodeId, moved: label.classList.contains('moved') };";
    let talking = browser.run(script, &[]).await;
    assert_eq!(
        talking,
        serde_json::json!({"node": node.node_id.to_string(), "moved": false})
    );
    let state = browser.text("stream-subscription-state").await;
    assert_eq!(state, "live");
}

fn assert_each_value_once(shown: &[ShownRecord], sent: usize) {
    let mut values: Vec<&str> = shown.iter().map(|record| record.value.as_str()).collect();
    values.sort_unstable();
    let expected: Vec<String> = (0..sent).map(value).collect();
    assert_eq!(values, expected, "every produced value exactly once");
}

fn by_partition(records: impl Iterator<Item = (u32, String)>) -> BTreeMap<u32, Vec<String>> {
    let mut partitions: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (partition, value) in records {
        partitions.entry(partition).or_default().push(value);
    }
    partitions
}
