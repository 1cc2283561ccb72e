//! Consumer groups through the CLI: commits of what was printed, describe,
//! reset.

use crate::harness::TestBroker;

/// A second run of the same group prints only records produced after the first.
#[test]
fn group_consume_twice_prints_only_new_records() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "feed", "--partitions", "2"]);
    broker.run_with_stdin(&["produce", "feed"], "a\nb\nc\n");
    let consume = ["consume", "feed", "--group", "dash", "--from-beginning"];

    let first = broker.run(&consume);
    let mut first_lines: Vec<&str> = first.lines().collect();
    first_lines.sort();
    assert_eq!(first_lines, vec!["a", "b", "c"]);

    broker.run_with_stdin(&["produce", "feed"], "d\ne\n");
    let second = broker.run(&consume);
    let mut second_lines: Vec<&str> = second.lines().collect();
    second_lines.sort();
    assert_eq!(second_lines, vec!["d", "e"]);

    let describe = broker.run(&["group", "describe", "dash"]);
    assert!(describe.contains("group dash"), "{describe}");
    let lag_total: u64 = describe
        .lines()
        .filter(|line| line.starts_with("feed "))
        .map(|line| {
            line.split_whitespace()
                .last()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert_eq!(lag_total, 0, "{describe}");
    assert!(broker.run(&["group", "list"]).contains("dash"));
}

/// `--max` commits only what was printed: the next run continues after it.
#[test]
fn group_commit_stops_at_the_last_printed_record() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "queue", "--partitions", "1"]);
    broker.run_with_stdin(&["produce", "queue"], "1\n2\n3\n4\n5\n");
    let args = [
        "consume",
        "queue",
        "--group",
        "workers",
        "--from-beginning",
        "--max",
        "2",
    ];
    assert_eq!(broker.run(&args), "1\n2\n");
    assert_eq!(broker.run(&args), "3\n4\n");
}

/// `group reset --to-earliest` makes the group read everything again.
#[test]
fn group_reset_to_earliest_rereads() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "replay", "--partitions", "1"]);
    broker.run_with_stdin(&["produce", "replay"], "x\ny\n");
    let consume = ["consume", "replay", "--group", "g", "--from-beginning"];
    assert_eq!(broker.run(&consume), "x\ny\n");
    assert_eq!(broker.run(&consume), "");
    broker.run(&["group", "reset", "g", "--topic", "replay", "--to-earliest"]);
    assert_eq!(broker.run(&consume), "x\ny\n");
}

/// Ctrl-C stops `consume --follow` cleanly, and the group keeps what was printed.
#[test]
fn interrupted_follow_commits_what_was_printed() {
    let data = tempfile::tempdir().unwrap();
    let broker = TestBroker::start(data.path());
    broker.run(&["topic", "create", "live", "--partitions", "1"]);
    broker.run_with_stdin(&["produce", "live"], "first\nsecond\n");
    let follow = broker.spawn(&[
        "consume",
        "live",
        "--group",
        "ops",
        "--from-beginning",
        "--follow",
    ]);
    assert_eq!(follow.next_line(), "first");
    assert_eq!(follow.next_line(), "second");
    follow.interrupt();
    let (status, rest) = follow.wait();
    assert!(status.success(), "{status}");
    assert!(rest.is_empty(), "{rest:?}");

    broker.run_with_stdin(&["produce", "live"], "third\n");
    let next = broker.run(&["consume", "live", "--group", "ops", "--from-beginning"]);
    assert_eq!(next, "third\n");
}
