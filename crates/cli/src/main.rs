//! The `citystream` binary: parses the command line, starts a tokio runtime
//! and dispatches to one module per subcommand under `cmd/`. It owns exit
//! codes and error printing (`output`), nothing else: each subcommand's
//! behaviour lives in its own module.

mod cmd;
mod input;
mod output;
mod timestamp;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cmd::{bench, broker, cluster, consume, demo, group, produce, sim, topic};

/// mimalloc instead of glibc's malloc: a broker allocates and frees small
/// buffers per request on every worker thread, where glibc's arenas
/// showed as ~15% of the HTTP produce profile (decision 0013).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits a whole arena up front where the OS overcommits, and
/// then only resets (does not decommit) the pages it frees, so they stay
/// in the resident set: an idle cluster node showed 135 MB RSS, 46 MB
/// with lazy commit, at the same CPU (decision 0013). The option must be
/// set before the first allocation reserves the arena, so it runs as an
/// ELF constructor, before the Rust runtime starts; it does not allocate.
/// An explicit `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still wins.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static LAZY_ARENA_COMMIT: extern "C" fn() = lazy_arena_commit;

#[cfg(target_os = "linux")]
extern "C" fn lazy_arena_commit() {
    // `mi_option_arena_eager_commit` in mimalloc.h's `mi_option_e` (v2 and
    // v3 alike); libmimalloc-sys 0.1.49 names no constant for it.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: getenv reads the environment the loader set up, with a
    // NUL-terminated name; mi_option_set stores a plain integer option and
    // any value is valid.
    unsafe {
        if libc::getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
            libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        }
    }
}

const EXAMPLES: &str = "\
Examples:
  citystream demo                  # a 3-node cluster, the city and the console on :6001
  citystream broker --data-dir ./data --listen 127.0.0.1:9400
  citystream topic create sensors --partitions 3
  seq 1 10 | citystream produce sensors
  citystream consume sensors --from-beginning
  citystream group describe dashboard
  citystream cluster status
  citystream cluster rebalance --dry-run
  citystream bench produce --count 100000 --size 100

Every client subcommand talks to --broker (default 127.0.0.1:9400, env CITYSTREAM_BROKER).
Run `citystream <subcommand> --help` for the examples of each subcommand.";

/// citystream: a distributed streaming broker for city and IoT data.
#[derive(Debug, Parser)]
#[command(name = "citystream", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the city in one command: a 3-node cluster, the simulation and the web console.
    Demo(demo::DemoArgs),
    /// Run a broker node.
    Broker(broker::BrokerArgs),
    /// Create, list, describe and delete topics.
    Topic(topic::TopicArgs),
    /// Write records from stdin or a file to a topic.
    Produce(produce::ProduceArgs),
    /// Read records from a topic and print them.
    Consume(consume::ConsumeArgs),
    /// List, describe and reset consumer groups.
    Group(group::GroupArgs),
    /// Show the cluster's nodes and partitions; remove a node, rebalance replicas.
    Cluster(cluster::ClusterArgs),
    /// Measure throughput and latency (produce, consume, end to end) or cluster failover time.
    Bench(bench::BenchArgs),
    /// Run the smart-city simulation: stations publishing readings, or a replayed CSV file.
    Sim(sim::SimArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (default_log_level, json_logs) = match &cli.command {
        // openraft logs every externally triggered heartbeat at info (ten
        // lines a second per node); its warnings and errors still show.
        Command::Broker(args) => (
            "info,openraft=warn",
            args.log_format == cmd::broker::LogFormat::Json,
        ),
        _ => ("warn", false),
    };
    output::init_tracing(default_log_level, json_logs);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Command::Broker(broker::BrokerArgs {
        worker_threads: Some(threads),
        ..
    }) = &cli.command
    {
        runtime.worker_threads(threads.get());
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli.command));
    // Do not wait for stray blocking tasks (e.g. a stdin reader) at exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => output::report_error(&error),
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Broker(args) => broker::run(args).await,
        Command::Topic(args) => topic::run(args).await,
        Command::Produce(args) => produce::run(args).await,
        Command::Consume(args) => consume::run(args).await,
        Command::Group(args) => group::run(args).await,
        Command::Cluster(args) => cluster::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Sim(args) => sim::run(args).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// The clap definition is consistent (no duplicate flags, bad defaults...).
    #[test]
    fn command_line_definition_is_valid() {
        Cli::command().debug_assert();
    }

    /// Every subcommand, at every depth, carries examples in its help.
    #[test]
    fn every_subcommand_has_examples() {
        fn check(command: &clap::Command, path: &str) {
            let help = command
                .get_after_help()
                .or(command.get_after_long_help())
                .map(|help| help.to_string())
                .unwrap_or_default();
            assert!(help.contains("Example"), "{path} has no examples");
            for sub in command.get_subcommands() {
                check(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        check(&Cli::command(), "citystream");
    }
}
