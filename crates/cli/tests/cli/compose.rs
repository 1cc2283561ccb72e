//! The container files stay true to the binary (no container engine runs
//! here): compose.yaml parses, every service's command uses a subcommand
//! and flags `citystream` accepts, the brokers form one consistent cluster,
//! and the Dockerfile builds the binary the services run.

use std::collections::BTreeSet;
use std::process::Command;

use crate::harness::binary;

fn repository_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `--flags` a subcommand's help lists.
fn accepted_flags(subcommand: &str) -> BTreeSet<String> {
    let output = Command::new(binary())
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "citystream {subcommand} --help failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
        .filter(|word| word.starts_with("--") && word.len() > 2)
        .map(|word| {
            word.split('=')
                .next()
                .unwrap()
                .trim_end_matches('.')
                .to_owned()
        })
        .collect()
}

#[test]
fn compose_services_use_flags_the_binary_accepts() {
    let compose: serde_yaml::Value =
        serde_yaml::from_str(&repository_file("compose.yaml")).expect("compose.yaml is YAML");
    let services = compose["services"].as_mapping().expect("services");
    let mut brokers = Vec::new();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let command: Vec<String> = service["command"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{name} has a command list"))
            .iter()
            .map(|arg| arg.as_str().expect("string arguments").to_owned())
            .collect();
        let subcommand = &command[0];
        let accepted = accepted_flags(subcommand);
        for flag in command.iter().filter(|arg| arg.starts_with("--")) {
            assert!(
                accepted.contains(flag),
                "{name}: `citystream {subcommand}` has no {flag} (it has {accepted:?})"
            );
        }
        if subcommand == "broker" {
            brokers.push((name.to_owned(), command));
        }
    }
    assert_eq!(brokers.len(), 3, "three brokers");
    let value = |command: &[String], flag: &str| {
        let at = command.iter().position(|arg| arg == flag).unwrap();
        command[at + 1].clone()
    };
    let peers: BTreeSet<String> = brokers.iter().map(|(_, c)| value(c, "--peers")).collect();
    assert_eq!(peers.len(), 1, "every broker lists the same peers");
    let peers = peers.into_iter().next().unwrap();
    for (name, command) in &brokers {
        let id = value(command, "--node-id");
        let advertised = value(command, "--advertised-address");
        assert!(
            peers
                .split(',')
                .any(|peer| peer == format!("{id}={advertised}")),
            "{name}: node {id} at {advertised} is in --peers {peers}"
        );
        assert_eq!(
            advertised,
            format!("{name}:9400"),
            "{name} advertises its own hostname"
        );
    }
}

#[test]
fn dockerfile_builds_the_binary_the_services_run() {
    let dockerfile = repository_file("Dockerfile");
    assert!(dockerfile.contains("cargo build --release --locked --bin citystream"));
    assert!(dockerfile.contains("ENTRYPOINT [\"citystream\"]"));
    let compose = repository_file("compose.yaml");
    assert!(compose.contains("image: citystream:latest"));
}
