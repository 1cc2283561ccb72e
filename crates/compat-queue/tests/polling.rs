//! Busy `/size` pollers, as the original's clients run them: four of them
//! sustain hundreds of polls per second while a producer keeps producing,
//! every poll is answered, and no produce waits long. (Its own test binary,
//! so no other test competes for the two cores while it measures.)

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const POLLERS: usize = 4;
const MEASURE_FOR: Duration = Duration::from_secs(2);
/// Far below what a debug build does here (over a thousand per second),
/// far above what re-reading the topic per poll would.
const POLLS_PER_S_MIN: u64 = 200;
/// A produce answered later than this means polls got in its way.
const PRODUCE_LATENCY_MAX: Duration = Duration::from_secs(2);

/// Four busy pollers get at least [`POLLS_PER_S_MIN`] answers per second
/// between them, with a producer writing all along whose every produce
/// is answered within [`PRODUCE_LATENCY_MAX`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_size_pollers_do_not_stall_producers() {
    bounded(async {
        let broker = TestBroker::start().await;
        let node = Arc::new(Node::start(&broker.address).await);
        let producer = node.register_producer("t").await;
        let consumer = node.register_consumer("t").await;
        let stop = Arc::new(AtomicBool::new(false));
        let polls = Arc::new(AtomicU64::new(0));
        let mut pollers = Vec::new();
        for _ in 0..POLLERS {
            let (node, stop, polls) = (node.clone(), stop.clone(), polls.clone());
            pollers.push(tokio::spawn(async move {
                let mut last = 0;
                while !stop.load(Ordering::Relaxed) {
                    let size = node.size("t", consumer).await;
                    assert!(size >= last, "the backlog went from {last} to {size}");
                    last = size;
                    polls.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let started = Instant::now();
        let mut produced = 0;
        let mut slowest = Duration::ZERO;
        while started.elapsed() < MEASURE_FOR {
            let sent = Instant::now();
            node.produce("t", producer, json!(produced)).await;
            slowest = slowest.max(sent.elapsed());
            produced += 1;
        }
        let elapsed = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        for poller in pollers {
            poller.await.unwrap();
        }
        let polls_per_s = polls.load(Ordering::Relaxed) * 1000 / elapsed.as_millis() as u64;
        println!("{polls_per_s} polls/s; {produced} produces, slowest {slowest:?}");
        assert!(polls_per_s >= POLLS_PER_S_MIN, "{polls_per_s} polls/s");
        assert!(slowest <= PRODUCE_LATENCY_MAX, "a produce took {slowest:?}");
        assert_eq!(node.size("t", consumer).await, produced);
    })
    .await;
}
