//! `citystream cluster status|remove-node|rebalance`. `status` is one
//! node's view of the cluster through the client's `Admin::cluster_status`,
//! printed as tables (nodes, metadata leader, partitions) or as one JSON
//! object with `--json`; the view is the answering node's: liveness and
//! load come from its gossip. `remove-node` and `rebalance` change replica
//! placement and print the moves (`reassign`).

mod reassign;

use citystream_protocol::{ClusterNode, ClusterPartition, ClusterStatusResponse, NodeState};
use serde_json::json;

use super::ConnectArgs;
use crate::output::Table;

const EXAMPLES: &str = "\
Examples:
  citystream cluster status
  citystream cluster status --broker 127.0.0.1:9402
  citystream cluster status --json | jq '.nodes[] | select(.state != \"alive\")'
  citystream cluster rebalance --dry-run
  citystream cluster remove-node 3 --broker 10.0.0.1:9400";

const STATUS_EXAMPLES: &str = "\
Examples:
  citystream cluster status
  citystream cluster status --broker 127.0.0.1:9402
  citystream cluster status --json | jq '.nodes[] | select(.state != \"alive\")'";

#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ClusterCommand {
    /// Show the nodes (state, addresses, load), the metadata leader and the partitions.
    #[command(after_help = STATUS_EXAMPLES)]
    Status {
        /// Print the answer as one JSON object instead of tables.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connect: ConnectArgs,
    },
    /// Move every replica off a node so it can be retired; prints the moves.
    #[command(after_help = reassign::REMOVE_NODE_EXAMPLES)]
    RemoveNode(reassign::RemoveNodeArgs),
    /// Spread replicas and leaders evenly over the alive nodes; prints the moves.
    #[command(after_help = reassign::REBALANCE_EXAMPLES)]
    Rebalance(reassign::RebalanceArgs),
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Status { json, connect } => {
            let client = connect.connect("cluster-status").await?;
            let status = client.admin().cluster_status().await?;
            if json {
                println!("{}", status_json(&status));
            } else {
                print!("{}", status_text(&status));
            }
            Ok(())
        }
        ClusterCommand::RemoveNode(args) => reassign::run_remove_node(args).await,
        ClusterCommand::Rebalance(args) => reassign::run_rebalance(args).await,
    }
}

fn state_name(state: NodeState) -> &'static str {
    match state {
        NodeState::Alive => "alive",
        NodeState::Suspect => "suspect",
        NodeState::Dead => "dead",
    }
}

/// The response as JSON; node states are names (`alive`, `suspect`, `dead`).
fn status_json(status: &ClusterStatusResponse) -> serde_json::Value {
    json!({
        "cluster_id": status.cluster_id,
        "node_id": status.node_id,
        "metadata_leader": status.metadata_leader,
        "metadata_term": status.metadata_term,
        "nodes": status.nodes.iter().map(node_json).collect::<Vec<_>>(),
        "partitions": status.partitions.iter().map(partition_json).collect::<Vec<_>>(),
    })
}

fn node_json(node: &ClusterNode) -> serde_json::Value {
    let addresses: serde_json::Map<String, serde_json::Value> = node
        .addresses
        .iter()
        .map(|listener| (listener.name.clone(), json!(listener.address)))
        .collect();
    json!({
        "node_id": node.node_id,
        "addresses": addresses,
        "state": state_name(node.state),
        "partitions_led": node.partitions_led,
        "bytes_in_per_s": node.bytes_in_per_s,
        "bytes_out_per_s": node.bytes_out_per_s,
        "cpu_permille": node.cpu_permille,
        "generation": node.generation,
    })
}

fn partition_json(partition: &ClusterPartition) -> serde_json::Value {
    json!({
        "topic": partition.topic,
        "partition": partition.partition,
        "leader": partition.leader,
        "replicas": partition.replicas,
        "commit_index": partition.commit_index,
        "log_end": partition.log_end,
        "lag": partition.lag,
        "quiet": partition.quiet,
    })
}

/// Tables for people: the nodes, the metadata leader, the partitions.
fn status_text(status: &ClusterStatusResponse) -> String {
    let mut nodes = Table::new(&["NODE", "STATE", "ADDRESSES", "LEADS", "IN/S", "OUT/S"]);
    for node in &status.nodes {
        let addresses: Vec<String> = node
            .addresses
            .iter()
            .map(|listener| format!("{}={}", listener.name, listener.address))
            .collect();
        let marker = if node.node_id == status.node_id {
            "*"
        } else {
            ""
        };
        nodes.push(vec![
            format!("{}{marker}", node.node_id),
            state_name(node.state).to_string(),
            addresses.join(" "),
            node.partitions_led.to_string(),
            node.bytes_in_per_s.to_string(),
            node.bytes_out_per_s.to_string(),
        ]);
    }
    let leader = status.metadata_leader.map_or_else(
        || "none known".to_string(),
        |id| format!("node {id}, term {}", status.metadata_term),
    );
    let mut text = format!(
        "cluster {} as seen by node {} (*)\n\n{}\nmetadata leader: {leader}\n",
        status.cluster_id,
        status.node_id,
        nodes.render()
    );
    if !status.partitions.is_empty() {
        text.push('\n');
        text.push_str(&partitions_table(&status.partitions));
    }
    text
}

fn partitions_table(partitions: &[ClusterPartition]) -> String {
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "LEADER",
        "REPLICAS",
        "COMMIT",
        "LAG",
        "QUIET",
    ]);
    for partition in partitions {
        let replicas: Vec<String> = partition.replicas.iter().map(u32::to_string).collect();
        table.push(vec![
            partition.topic.clone(),
            partition.partition.to_string(),
            partition.leader.to_string(),
            replicas.join(","),
            partition.commit_index.to_string(),
            partition.lag.to_string(),
            if partition.quiet { "yes" } else { "no" }.to_string(),
        ]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use citystream_protocol::ListenerAddress;

    use super::*;

    fn status() -> ClusterStatusResponse {
        ClusterStatusResponse {
            cluster_id: "city-a".to_string(),
            node_id: 1,
            metadata_leader: None,
            metadata_term: 0,
            nodes: vec![ClusterNode {
                node_id: 1,
                addresses: vec![ListenerAddress {
                    name: "native".to_string(),
                    address: "127.0.0.1:9401".to_string(),
                }],
                state: NodeState::Alive,
                partitions_led: 1,
                bytes_in_per_s: 10,
                bytes_out_per_s: 20,
                cpu_permille: 0,
                generation: 5,
            }],
            partitions: vec![ClusterPartition {
                topic: "t".to_string(),
                partition: 0,
                leader: 1,
                replicas: vec![1],
                commit_index: 3,
                log_end: 3,
                lag: 0,
                quiet: false,
            }],
        }
    }

    /// The text form shows the nodes, the leader line and the partitions.
    #[test]
    fn text_has_nodes_leader_and_partitions() {
        let text = status_text(&status());
        let expected = "\
cluster city-a as seen by node 1 (*)

NODE  STATE  ADDRESSES              LEADS  IN/S  OUT/S
1*    alive  native=127.0.0.1:9401  1      10    20

metadata leader: none known

TOPIC  PARTITION  LEADER  REPLICAS  COMMIT  LAG  QUIET
t      0          1       1         3       0    no
";
        assert_eq!(text, expected);
    }

    /// The JSON form names states and keys addresses by listener.
    #[test]
    fn json_names_states_and_listeners() {
        let json = status_json(&status());
        assert_eq!(json["nodes"][0]["state"], "alive");
        assert_eq!(json["nodes"][0]["addresses"]["native"], "127.0.0.1:9401");
        assert_eq!(json["metadata_leader"], serde_json::Value::Null);
        assert_eq!(json["partitions"][0]["commit_index"], 3);
    }
}
