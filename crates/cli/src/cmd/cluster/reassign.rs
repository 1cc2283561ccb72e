//! `citystream cluster remove-node N` and `citystream cluster rebalance`:
//! replica placement changes through the client's `Admin::remove_node` and
//! `Admin::rebalance` (which find the metadata leader), with the moves
//! printed as a table or, with `--json`, as one JSON object. Planning the
//! moves is the metadata leader's job; this module only asks and prints.

use citystream_protocol::Reassignment;
use serde_json::json;

use crate::cmd::ConnectArgs;
use crate::output::Table;

pub const REMOVE_NODE_EXAMPLES: &str = "\
Examples:
  citystream cluster remove-node 3
  citystream cluster remove-node 3 --broker 10.0.0.1:9400 --json";

pub const REBALANCE_EXAMPLES: &str = "\
Examples:
  citystream cluster rebalance --dry-run
  citystream cluster rebalance
  citystream cluster rebalance --json | jq '.reassignments | length'";

#[derive(Debug, clap::Args)]
pub struct RemoveNodeArgs {
    /// Id of the node to empty (as in `citystream cluster status`).
    #[arg(value_name = "NODE_ID")]
    node_id: u32,
    /// Print the moves as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(Debug, clap::Args)]
pub struct RebalanceArgs {
    /// Only plan: print the moves without committing them.
    #[arg(long)]
    dry_run: bool,
    /// Print the moves as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    connect: ConnectArgs,
}

pub async fn run_remove_node(args: RemoveNodeArgs) -> anyhow::Result<()> {
    let client = args.connect.connect("cluster-remove-node").await?;
    let moves = client.admin().remove_node(args.node_id).await?;
    if args.json {
        println!("{}", moves_json(&moves, false));
    } else {
        let summary = format!("node {}: {}", args.node_id, summary(&moves, false));
        print!("{}", moves_text(&summary, &moves));
    }
    Ok(())
}

pub async fn run_rebalance(args: RebalanceArgs) -> anyhow::Result<()> {
    let client = args.connect.connect("cluster-rebalance").await?;
    let moves = client.admin().rebalance(args.dry_run).await?;
    if args.json {
        println!("{}", moves_json(&moves, args.dry_run));
    } else {
        print!("{}", moves_text(&summary(&moves, args.dry_run), &moves));
    }
    Ok(())
}

/// One line saying how many moves there are and whether they happened.
fn summary(moves: &[Reassignment], dry_run: bool) -> String {
    let count = moves.len();
    let plural = if count == 1 { "" } else { "s" };
    match (count, dry_run) {
        (0, _) => "nothing to move".to_string(),
        (_, true) => format!("{count} move{plural} planned (dry run: nothing changed)"),
        (_, false) => format!("{count} move{plural} committed"),
    }
}

/// The summary line, then (if any) a table of the moves.
fn moves_text(summary: &str, moves: &[Reassignment]) -> String {
    let mut text = format!("{summary}\n");
    if moves.is_empty() {
        return text;
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "FROM", "TO"]);
    for reassignment in moves {
        table.push(vec![
            reassignment.topic.clone(),
            reassignment.partition.to_string(),
            node_list(&reassignment.from),
            node_list(&reassignment.to),
        ]);
    }
    text.push('\n');
    text.push_str(&table.render());
    text
}

fn node_list(nodes: &[u32]) -> String {
    let ids: Vec<String> = nodes.iter().map(u32::to_string).collect();
    ids.join(",")
}

/// The moves as JSON, with the wire's field names.
fn moves_json(moves: &[Reassignment], dry_run: bool) -> serde_json::Value {
    let reassignments: Vec<serde_json::Value> = moves
        .iter()
        .map(|reassignment| {
            json!({
                "topic": reassignment.topic,
                "partition": reassignment.partition,
                "from": reassignment.from,
                "to": reassignment.to,
            })
        })
        .collect();
    json!({ "dry_run": dry_run, "reassignments": reassignments })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moves() -> Vec<Reassignment> {
        let reassignment = |topic: &str, partition, from: &[u32], to: &[u32]| Reassignment {
            topic: topic.to_string(),
            partition,
            from: from.to_vec(),
            to: to.to_vec(),
        };
        vec![
            reassignment("sensors", 0, &[1, 3], &[1, 2]),
            reassignment("air", 11, &[3], &[4]),
        ]
    }

    /// The text form is a summary line, then one row per move.
    #[test]
    fn text_lists_each_move() {
        let text = moves_text(&summary(&moves(), true), &moves());
        let expected = "\
2 moves planned (dry run: nothing changed)

TOPIC    PARTITION  FROM  TO
sensors  0          1,3   1,2
air      11         3     4
";
        assert_eq!(text, expected);
    }

    /// With nothing to move only the summary is printed.
    #[test]
    fn text_without_moves_is_one_line() {
        assert_eq!(moves_text(&summary(&[], false), &[]), "nothing to move\n");
        assert_eq!(summary(&moves()[..1], false), "1 move committed");
    }

    /// The JSON form keeps the wire's field names and says if it was a dry run.
    #[test]
    fn json_has_wire_field_names() {
        let json = moves_json(&moves(), false);
        assert_eq!(json["dry_run"], false);
        assert_eq!(json["reassignments"][1]["topic"], "air");
        assert_eq!(json["reassignments"][1]["partition"], 11);
        assert_eq!(json["reassignments"][0]["from"], json!([1, 3]));
        assert_eq!(json["reassignments"][0]["to"], json!([1, 2]));
    }
}
