//! Server-side partition assignment: deterministic round-robin.
//!
//! Members are taken in member-id order, partitions in (topic, partition)
//! order. Each partition goes to the next member, cyclically, that subscribes
//! to its topic. So every partition of every subscribed topic has exactly one
//! owner, and members with the same subscription get counts that differ by at
//! most one. A subscribed topic that does not exist contributes nothing; a
//! topic created later is picked up at the next rebalance (not before).

use std::collections::BTreeSet;

use super::{GroupPartition, PartitionCount};

/// One member's subscription, as the assignor reads it.
#[derive(Debug, Clone, Copy)]
pub struct Subscription<'a> {
    pub member_id: &'a str,
    pub topics: &'a [String],
}

/// Assigns the partitions of every subscribed topic; returns one assignment
/// per member, in the order of `members` (which may be in any order).
pub fn assign_round_robin(
    members: &[Subscription<'_>],
    partitions_of: PartitionCount<'_>,
) -> Vec<Vec<GroupPartition>> {
    let mut order: Vec<usize> = (0..members.len()).collect();
    order.sort_by_key(|&i| members[i].member_id);
    let topics: BTreeSet<&str> = members
        .iter()
        .flat_map(|m| m.topics.iter().map(String::as_str))
        .collect();
    let mut assignments = vec![Vec::new(); members.len()];
    let mut cursor = 0;
    for topic in topics {
        for partition in 0..partitions_of(topic) {
            let Some(owner) = next_subscriber(&order, members, topic, cursor) else {
                break;
            };
            assignments[order[owner]].push(GroupPartition {
                topic: topic.to_owned(),
                partition,
            });
            cursor = owner + 1;
        }
    }
    assignments
}

/// Position in `order` of the first subscriber of `topic` at or after `cursor`.
fn next_subscriber(
    order: &[usize],
    members: &[Subscription<'_>],
    topic: &str,
    cursor: usize,
) -> Option<usize> {
    (0..order.len())
        .map(|step| (cursor + step) % order.len())
        .find(|&pos| members[order[pos]].topics.iter().any(|t| t == topic))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn gp(topic: &str, partition: u32) -> GroupPartition {
        GroupPartition {
            topic: topic.to_owned(),
            partition,
        }
    }

    /// Two members on one topic alternate partitions in member-id order.
    #[test]
    fn alternates_in_member_order() {
        let topics = vec!["t".to_owned()];
        let members = [
            Subscription {
                member_id: "b",
                topics: &topics,
            },
            Subscription {
                member_id: "a",
                topics: &topics,
            },
        ];
        let result = assign_round_robin(&members, &|_| 3);
        assert_eq!(result[1], vec![gp("t", 0), gp("t", 2)]);
        assert_eq!(result[0], vec![gp("t", 1)]);
    }

    /// A topic goes only to its subscribers; a missing topic yields nothing.
    #[test]
    fn respects_subscriptions() {
        let only_x = vec!["x".to_owned()];
        let x_and_missing = vec!["x".to_owned(), "y".to_owned(), "missing".to_owned()];
        let members = [
            Subscription {
                member_id: "a",
                topics: &only_x,
            },
            Subscription {
                member_id: "b",
                topics: &x_and_missing,
            },
        ];
        let counts = |t: &str| match t {
            "x" => 2,
            "y" => 2,
            _ => 0,
        };
        let result = assign_round_robin(&members, &counts);
        assert_eq!(result[0], vec![gp("x", 0)]);
        assert_eq!(result[1], vec![gp("x", 1), gp("y", 0), gp("y", 1)]);
    }

    proptest! {
        /// Every partition of every subscribed topic has exactly one owner, who subscribes to it.
        #[test]
        fn every_partition_exactly_once(
            subs in proptest::collection::vec(proptest::collection::vec(0u8..4, 1..4), 1..8),
            counts in proptest::collection::vec(0u32..7, 4),
        ) {
            let topic_lists: Vec<Vec<String>> = subs
                .iter()
                .map(|s| s.iter().map(|t| format!("t{t}")).collect())
                .collect();
            let ids: Vec<String> = (0..subs.len()).map(|i| format!("m{}", (i * 7) % 11)).collect();
            let members: Vec<Subscription<'_>> = ids
                .iter()
                .zip(&topic_lists)
                .map(|(id, topics)| Subscription { member_id: id, topics })
                .collect();
            let count_of = |t: &str| counts[t[1..].parse::<usize>().unwrap()];
            let result = assign_round_robin(&members, &count_of);
            let mut owners: HashMap<GroupPartition, usize> = HashMap::new();
            for (member, parts) in result.iter().enumerate() {
                for part in parts {
                    prop_assert!(topic_lists[member].contains(&part.topic));
                    prop_assert!(owners.insert(part.clone(), member).is_none());
                }
            }
            let subscribed: BTreeSet<&String> = topic_lists.iter().flatten().collect();
            let expected: usize = subscribed.iter().map(|t| count_of(t) as usize).sum();
            prop_assert_eq!(owners.len(), expected);
        }
    }
}
