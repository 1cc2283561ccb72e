//! Consumer groups through the broker facade: joining and assignment,
//! commits guarded by membership and generation, committed offsets that
//! survive a restart, and a new consumer resuming where the group left off.

mod common;

use citystream_broker::{
    Broker, BrokerError, GroupPartition, JoinRequest, JoinResult, JoinTicket, TopicSettings,
};
use common::{batch, disk_config, memory_broker, records_from};

fn gp(topic: &str, partition: u32) -> GroupPartition {
    GroupPartition {
        topic: topic.to_owned(),
        partition,
    }
}

fn join(broker: &Broker, member_id: &str, now_ms: i64) -> JoinTicket {
    let request = JoinRequest {
        group: "g".to_owned(),
        member_id: member_id.to_owned(),
        client_id: "consumer".to_owned(),
        topics: vec!["t".to_owned()],
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 20_000,
    };
    broker.join_group(request, now_ms).unwrap()
}

fn done(mut ticket: JoinTicket) -> JoinResult {
    ticket.try_recv().expect("join completed").unwrap()
}

fn broker_with_topic() -> Broker {
    let broker = memory_broker();
    broker
        .create_topic("t", 4, TopicSettings::default())
        .unwrap();
    broker
}

/// Two members split a topic's partitions; after one leaves the other owns them all.
#[test]
fn join_assign_leave() {
    let broker = broker_with_topic();
    let a = done(join(&broker, "", 0));
    assert_eq!(a.assignment.len(), 4);
    let b_ticket = join(&broker, "", 1);
    let err = broker.heartbeat("g", &a.member_id, 1, 2).unwrap_err();
    assert!(matches!(err, BrokerError::RebalanceInProgress(_)), "{err}");
    let a = done(join(&broker, &a.member_id, 3));
    let b = done(b_ticket);
    assert_eq!((a.assignment.len(), b.assignment.len()), (2, 2));
    assert_eq!(
        broker.sync_group("g", &a.member_id, 2).unwrap(),
        a.assignment
    );
    broker.leave_group("g", &a.member_id, 4).unwrap();
    let b = done(join(&broker, &b.member_id, 5));
    assert_eq!((b.generation, b.assignment.len()), (3, 4));
}

/// A member that stops heartbeating is expired by tick; the group rebalances.
#[test]
fn session_expiry_through_tick() {
    let broker = broker_with_topic();
    let a = done(join(&broker, "", 0));
    let b_ticket = join(&broker, "", 0);
    let a = done(join(&broker, &a.member_id, 0));
    let b = done(b_ticket);
    for now_ms in (1_000..=11_000).step_by(1_000) {
        broker.heartbeat("g", &b.member_id, 2, now_ms).unwrap_or(());
        broker.tick(now_ms);
    }
    let overview = broker.describe_group("g").unwrap();
    assert_eq!(overview.members.len(), 1);
    let err = broker.commit_offsets("g", &a.member_id, 2, &[(gp("t", 0), 1, String::new())]);
    assert!(
        matches!(err, Err(BrokerError::UnknownMember { .. })),
        "{err:?}"
    );
}

/// A commit from an earlier generation is refused, and the offset stays put.
#[test]
fn stale_generation_commit_refused() {
    let broker = broker_with_topic();
    let a = done(join(&broker, "", 0));
    broker
        .commit_offsets("g", &a.member_id, 1, &[(gp("t", 0), 3, String::new())])
        .unwrap();
    let again = done(join(&broker, &a.member_id, 1));
    assert_eq!(again.generation, 2);
    let err = broker
        .commit_offsets("g", &a.member_id, 1, &[(gp("t", 0), 9, String::new())])
        .unwrap_err();
    assert!(
        matches!(
            err,
            BrokerError::IllegalGeneration {
                received: 1,
                current: 2,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(broker.fetch_offsets("g", &[gp("t", 0)])[0].1, Some(3));
}

/// Per-partition commit errors refuse only that partition; unknown groups are refused whole.
#[test]
fn commit_partition_errors() {
    let broker = broker_with_topic();
    let results = broker
        .commit_offsets(
            "manual",
            "",
            0,
            &[
                (gp("t", 1), 7, "meta".to_owned()),
                (gp("nope", 0), 1, String::new()),
                (gp("t", 9), 1, String::new()),
                (gp("__consumer_offsets", 0), 1, String::new()),
            ],
        )
        .unwrap();
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(BrokerError::UnknownTopic(_))));
    assert!(matches!(
        results[2],
        Err(BrokerError::UnknownPartition { .. })
    ));
    assert!(matches!(results[3], Err(BrokerError::UnknownTopic(_))));
    assert_eq!(
        broker.fetch_offsets("manual", &[]),
        [(gp("t", 1), Some(7), "meta".to_owned())]
    );
    let err = broker.commit_offsets("ghost", "m", 1, &[]).unwrap_err();
    assert!(matches!(err, BrokerError::UnknownGroup(_)), "{err}");
}

/// Committed offsets survive closing and reopening the broker.
#[test]
fn offsets_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
        broker
            .create_topic("t", 2, TopicSettings::default())
            .unwrap();
        let commit = |p, o| {
            broker
                .commit_offsets("g", "", 0, &[(gp("t", p), o, format!("m{o}"))])
                .unwrap()
        };
        commit(0, 5);
        commit(1, 2);
        commit(0, 8);
        broker.close().unwrap();
    }
    let broker = Broker::open(disk_config(dir.path()), 100).unwrap();
    assert_eq!(
        broker.fetch_offsets("g", &[gp("t", 0), gp("t", 1), gp("t", 3)]),
        [
            (gp("t", 0), Some(8), "m8".to_owned()),
            (gp("t", 1), Some(2), "m2".to_owned()),
            (gp("t", 3), None, String::new()),
        ]
    );
    let groups = broker.list_groups();
    assert_eq!(groups.len(), 1);
    assert_eq!((groups[0].group.as_str(), groups[0].state), ("g", "Empty"));
}

/// A new consumer of the group resumes at the offset its predecessor committed.
#[test]
fn new_consumer_resumes_at_committed_offset() {
    let broker = memory_broker();
    broker
        .create_topic("t", 1, TopicSettings::default())
        .unwrap();
    let values: Vec<String> = (0..10).map(|i| format!("r{i}")).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    broker.produce("t", 0, batch(&refs), 0).unwrap();

    let first = done(join(&broker, "", 0));
    let fetched = broker.fetch("t", 0, 0, 1 << 20).unwrap();
    assert_eq!(records_from(&fetched.records, 0).len(), 10);
    broker
        .commit_offsets(
            "g",
            &first.member_id,
            first.generation,
            &[(gp("t", 0), 6, String::new())],
        )
        .unwrap();
    broker.leave_group("g", &first.member_id, 1).unwrap();

    let second = done(join(&broker, "", 2));
    assert_ne!(second.member_id, first.member_id);
    assert_eq!(second.assignment, [gp("t", 0)]);
    let committed = broker.fetch_offsets("g", &second.assignment)[0].1.unwrap();
    let fetched = broker.fetch("t", 0, committed, 1 << 20).unwrap();
    let resumed: Vec<u64> = records_from(&fetched.records, committed)
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(resumed, [6, 7, 8, 9]);
}

/// describe_group shows members, their assignments, and lag information.
#[test]
fn describe_group_shows_lag() {
    let broker = broker_with_topic();
    broker.produce("t", 2, batch(&["a", "b", "c"]), 0).unwrap();
    let member = done(join(&broker, "", 0));
    broker
        .commit_offsets("g", &member.member_id, 1, &[(gp("t", 2), 1, String::new())])
        .unwrap();
    let overview = broker.describe_group("g").unwrap();
    assert_eq!((overview.state, overview.generation), ("Stable", 1));
    assert_eq!(overview.members[0].assignment.len(), 4);
    assert_eq!(overview.offsets, [(gp("t", 2), 1, 3)]);
    let err = broker.describe_group("nope").unwrap_err();
    assert!(matches!(err, BrokerError::UnknownGroup(_)), "{err}");
}

/// Deleting a topic forgets its committed offsets, so a re-created topic starts clean.
#[test]
fn delete_topic_forgets_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
    broker
        .create_topic("t", 1, TopicSettings::default())
        .unwrap();
    broker
        .commit_offsets("g", "", 0, &[(gp("t", 0), 4, String::new())])
        .unwrap();
    broker.delete_topic("t").unwrap();
    assert!(broker.fetch_offsets("g", &[]).is_empty());
    drop(broker);
    let broker = Broker::open(disk_config(dir.path()), 0).unwrap();
    assert!(broker.fetch_offsets("g", &[]).is_empty());
}

/// `check_commit` answers as `commit_offsets` would but writes nothing; a
/// refused request (stale generation) changes nothing either.
#[test]
fn check_commit_writes_nothing() {
    let broker = broker_with_topic();
    let a = done(join(&broker, "", 0));
    let offsets = [
        (gp("t", 0), 5, String::new()),
        (gp("t", 9), 6, String::new()),
    ];
    let checked = broker.check_commit("g", &a.member_id, 1, &offsets).unwrap();
    assert_eq!(checked.updates.len(), 1, "{checked:?}");
    assert!(checked.results[0].is_ok());
    assert!(matches!(
        checked.results[1],
        Err(BrokerError::UnknownPartition { partition: 9, .. })
    ));
    assert_eq!(broker.fetch_offsets("g", &[gp("t", 0)])[0].1, None);
    let stale = broker.check_commit("g", &a.member_id, 7, &offsets);
    assert!(matches!(stale, Err(BrokerError::IllegalGeneration { .. })));
    broker.apply_offsets("g", &checked.updates).unwrap();
    assert_eq!(broker.fetch_offsets("g", &[gp("t", 0)])[0].1, Some(5));
}

/// `replace_offsets` leaves exactly the wanted offsets: it adds, changes
/// and deletes, over groups on either side.
#[test]
fn replace_offsets_makes_the_store_equal() {
    use citystream_broker::offsets::Committed;
    use std::collections::BTreeMap;
    let broker = broker_with_topic();
    let manual = |group: &str, partition: u32, offset: u64| {
        broker
            .commit_offsets(group, "", 0, &[(gp("t", partition), offset, String::new())])
            .unwrap();
    };
    manual("g", 0, 1);
    manual("g", 1, 2);
    manual("old", 0, 3);
    let committed = |offset: u64| Committed {
        offset,
        metadata: "m".to_owned(),
    };
    let wanted = BTreeMap::from([
        ("g".to_owned(), BTreeMap::from([(gp("t", 0), committed(1))])),
        (
            "new".to_owned(),
            BTreeMap::from([(gp("t", 3), committed(8))]),
        ),
    ]);
    // g/0 gets metadata "m", g/1 and old/0 go, new/3 comes.
    assert_eq!(broker.replace_offsets(&wanted).unwrap(), 4);
    assert_eq!(
        broker.replace_offsets(&wanted).unwrap(),
        0,
        "nothing differs"
    );
    let fetched = |group: &str| broker.fetch_offsets(group, &[]);
    assert_eq!(fetched("g"), vec![(gp("t", 0), Some(1), "m".to_owned())]);
    assert_eq!(fetched("new"), vec![(gp("t", 3), Some(8), "m".to_owned())]);
    assert!(fetched("old").is_empty());
}
