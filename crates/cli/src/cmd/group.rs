//! `citystream group list|describe|reset`: consumer group inspection through
//! the client's `Admin`, and an offset reset done as a manual commit (empty
//! member id, generation 0) while the group has no active members. Group
//! coordination itself is the broker's.

use anyhow::{Context as _, bail};
use citystream_client::{Admin, Client, ClientError, ErrorCode};
use citystream_protocol::{
    CommitOffsetsRequest, CommittedOffset, DescribeGroupResponse, GroupSummary, OffsetSpec,
    Request, Response,
};

use super::{ConnectArgs, api_code};
use crate::output::Table;

const EXAMPLES: &str = "\
Examples:
  citystream group list
  citystream group describe dashboard
  citystream group reset dashboard --topic sensors --to-earliest
  citystream group reset dashboard --topic sensors --partition 0 --to-offset 42";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, clap::Subcommand)]
enum GroupCommand {
    /// List consumer groups with their state and member count.
    #[command(after_help = "Examples:\n  citystream group list")]
    List {
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Show a group's members and, per partition, committed offset and lag.
    #[command(after_help = "Examples:\n  citystream group describe dashboard")]
    Describe {
        /// Group name.
        group: String,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Move a group's committed offsets (the group must have no active members).
    #[command(after_help = "Examples:\n  \
        citystream group reset dashboard --topic sensors --to-earliest\n  \
        citystream group reset dashboard --topic sensors --to-latest\n  \
        citystream group reset dashboard --topic sensors --partition 1 --to-offset 500")]
    Reset(ResetArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true)))]
struct ResetArgs {
    /// Group name.
    group: String,
    /// Topic whose offsets move.
    #[arg(long)]
    topic: String,
    /// Only this partition [default: every partition of the topic].
    #[arg(long)]
    partition: Option<u32>,
    /// To the oldest record still in the log.
    #[arg(long, group = "target")]
    to_earliest: bool,
    /// To the end of the log (skip everything there now).
    #[arg(long, group = "target")]
    to_latest: bool,
    /// To this offset.
    #[arg(long, group = "target", value_name = "N")]
    to_offset: Option<u64>,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub async fn run(args: GroupArgs) -> anyhow::Result<()> {
    match args.command {
        GroupCommand::List { connect } => {
            let admin = connect.connect("group").await?.admin();
            print!("{}", list_table(&admin.list_groups().await?));
            Ok(())
        }
        GroupCommand::Describe { group, connect } => {
            let admin = connect.connect("group").await?.admin();
            print!("{}", describe_text(&admin.describe_group(&group).await?));
            Ok(())
        }
        GroupCommand::Reset(reset) => run_reset(reset).await,
    }
}

fn list_table(groups: &[GroupSummary]) -> String {
    let mut table = Table::new(&["GROUP", "STATE", "GENERATION", "MEMBERS"]);
    for group in groups {
        table.push(vec![
            group.group.clone(),
            group.state.clone(),
            group.generation.to_string(),
            group.member_count.to_string(),
        ]);
    }
    table.render()
}

fn describe_text(group: &DescribeGroupResponse) -> String {
    let summary = &group.summary;
    let mut text = format!(
        "group {}: {}, generation {}, {} members\n\n",
        summary.group, summary.state, summary.generation, summary.member_count
    );
    let mut members = Table::new(&["MEMBER", "CLIENT", "ASSIGNMENT"]);
    for member in &group.members {
        let assignment: Vec<String> = member
            .assignment
            .iter()
            .map(|tp| format!("{}/{}", tp.topic, tp.partition))
            .collect();
        members.push(vec![
            member.member_id.clone(),
            member.client_id.clone(),
            assignment.join(","),
        ]);
    }
    if group.members.is_empty() {
        text.push_str("no active members\n\n");
    } else {
        text.push_str(&members.render());
        text.push('\n');
    }
    let mut offsets = Table::new(&["TOPIC", "PARTITION", "COMMITTED", "HIGH WATERMARK", "LAG"]);
    for offset in &group.offsets {
        offsets.push(vec![
            offset.topic.clone(),
            offset.partition.to_string(),
            offset.committed.to_string(),
            offset.high_watermark.to_string(),
            offset
                .high_watermark
                .saturating_sub(offset.committed)
                .to_string(),
        ]);
    }
    text.push_str(&offsets.render());
    text
}

async fn run_reset(args: ResetArgs) -> anyhow::Result<()> {
    let client = args.connect.connect("group").await?;
    let admin = client.admin();
    ensure_no_members(&admin, &args.group).await?;
    let partitions = match args.partition {
        Some(partition) => vec![partition],
        None => {
            let topic = admin.describe_topic(&args.topic).await?;
            if !topic.status.error.is_ok() {
                bail!("{}: {}", topic.status.error, topic.status.message);
            }
            topic.partitions.iter().map(|p| p.partition).collect()
        }
    };
    let mut offsets = Vec::new();
    for partition in partitions {
        let offset = target_offset(&admin, &args, partition).await?;
        offsets.push(CommittedOffset {
            topic: args.topic.clone(),
            partition,
            offset,
            metadata: "reset by citystream group reset".to_string(),
        });
    }
    commit_offsets(&client, &args.group, offsets.clone()).await?;
    let mut table = Table::new(&["TOPIC", "PARTITION", "NEW OFFSET"]);
    for offset in offsets {
        table.push(vec![
            offset.topic,
            offset.partition.to_string(),
            offset.offset.to_string(),
        ]);
    }
    println!("reset group {}:", args.group);
    print!("{}", table.render());
    Ok(())
}

/// Members would overwrite the reset with their next commit; refuse.
async fn ensure_no_members(admin: &Admin, group: &str) -> anyhow::Result<()> {
    match admin.describe_group(group).await {
        Ok(description) if !description.members.is_empty() => bail!(
            "group {group} has {} active members; stop them before resetting its offsets",
            description.members.len()
        ),
        Ok(_) => Ok(()),
        // A group that never committed is simply created by the reset.
        Err(error) if api_code(&error) == Some(ErrorCode::UNKNOWN_GROUP) => Ok(()),
        Err(error) => Err(error.into()),
    }
}

async fn target_offset(admin: &Admin, args: &ResetArgs, partition: u32) -> anyhow::Result<u64> {
    let lookup = |spec| admin.list_offsets(&args.topic, partition, spec);
    let earliest = lookup(OffsetSpec::Earliest).await?;
    let latest = lookup(OffsetSpec::Latest).await?;
    let offset = match args.to_offset {
        Some(offset) => offset,
        None if args.to_earliest => earliest,
        None => latest,
    };
    if !(earliest..=latest).contains(&offset) {
        bail!(
            "offset {offset} is outside partition {partition}'s range {earliest}..={latest} of {}",
            args.topic
        );
    }
    Ok(offset)
}

/// A manual commit (empty member id, generation 0): no membership check.
pub async fn commit_offsets(
    client: &Client,
    group: &str,
    offsets: Vec<CommittedOffset>,
) -> anyhow::Result<()> {
    let request = Request::CommitOffsets(CommitOffsetsRequest {
        group: group.to_string(),
        member_id: String::new(),
        generation: 0,
        offsets,
    });
    let response = client
        .request(request)
        .await
        .context("committing offsets")?;
    let Response::CommitOffsets(response) = response else {
        return Err(
            ClientError::Protocol(format!("a commit was answered with {response:?}")).into(),
        );
    };
    for partition in response.partitions {
        if !partition.status.error.is_ok() {
            bail!(
                "committing {}/{} for group {group}: {}: {}",
                partition.topic,
                partition.partition,
                partition.status.error,
                partition.status.message
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use citystream_protocol::{GroupMember, GroupOffsetLag, TopicPartition};

    use super::*;

    /// Describe shows members with assignments and lag per partition.
    #[test]
    fn describe_shows_members_and_lag() {
        let group = DescribeGroupResponse {
            summary: GroupSummary {
                group: "dash".into(),
                state: "Stable".into(),
                generation: 3,
                member_count: 1,
            },
            members: vec![GroupMember {
                member_id: "m-1".into(),
                client_id: "cli".into(),
                assignment: vec![TopicPartition {
                    topic: "t".into(),
                    partition: 0,
                }],
            }],
            offsets: vec![GroupOffsetLag {
                topic: "t".into(),
                partition: 0,
                committed: 4,
                high_watermark: 10,
            }],
        };
        let text = describe_text(&group);
        assert!(text.starts_with("group dash: Stable, generation 3, 1 members\n"));
        assert!(text.contains("m-1     cli     t/0"), "{text}");
        assert!(
            text.contains("t      0          4          10              6"),
            "{text}"
        );
    }
}
