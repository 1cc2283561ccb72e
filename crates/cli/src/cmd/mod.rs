//! One module per subcommand, plus what the client subcommands share: the
//! `--broker` flag, connecting, and the `--acks` choice. Argument parsing
//! and printing live with each command; protocol work lives in the client.

pub mod bench;
pub mod broker;
pub mod cluster;
pub mod consume;
pub mod demo;
pub mod group;
pub mod produce;
pub mod sim;
pub mod topic;

use citystream_client::{Acks, ApiError, Client, ClientConfig, ClientError, ErrorCode};

/// Default address of the native protocol listener of a local broker.
pub const BROKER_ADDRESS_DEFAULT: &str = "127.0.0.1:9400";

/// The broker to talk to; any node of the cluster will do.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Address of a broker's native listener.
    #[arg(
        long,
        env = "CITYSTREAM_BROKER",
        default_value = BROKER_ADDRESS_DEFAULT,
        value_name = "HOST:PORT"
    )]
    pub broker: String,
}

impl ConnectArgs {
    /// Connects with a client id naming the CLI command (seen in logs).
    pub async fn connect(&self, command: &str) -> Result<Client, ClientError> {
        let mut config = ClientConfig::new(self.broker.clone());
        config.client_id = format!("citystream-cli-{command}");
        Client::connect(config).await
    }
}

/// How many replicas must have a record before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AcksArg {
    /// Do not wait for any acknowledgement (fire and forget).
    None,
    /// Wait until the partition leader has appended the record.
    Leader,
    /// Wait until a majority of replicas have it (same as leader on one node).
    Quorum,
}

impl From<AcksArg> for Acks {
    fn from(acks: AcksArg) -> Acks {
        match acks {
            AcksArg::None => Acks::None,
            AcksArg::Leader => Acks::Leader,
            AcksArg::Quorum => Acks::Quorum,
        }
    }
}

/// The broker's error code, when `error` is an answer from the broker.
pub fn api_code(error: &ClientError) -> Option<ErrorCode> {
    match error {
        ClientError::Api(ApiError { code, .. }) => Some(*code),
        _ => None,
    }
}
