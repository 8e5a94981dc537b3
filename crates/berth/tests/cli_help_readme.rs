//! What berth tells users about itself holds: every command `berth --help` lists runs
//! (its own `--help` succeeds, down to subcommands), every `berth COMMAND` the README
//! shows is one of them, and the README's apply files, taken from README.md itself, are
//! accepted by `berth apply` as written (against a real control plane, no Docker).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use berth_auth::{Credentials, Verifier};
use berth_server::ControlPlane;
use berth_store::{MemoryBackend, Store};

const ACCESS_KEY_ID: &str = "AKIDREADMETEST";
const SECRET: &str = "readme-test-secret";

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .env_remove("BERTH_ENDPOINT")
        .env_remove("BERTH_CLUSTER")
        .env(
            "BERTH_DATA_DIR",
            std::env::temp_dir().join("berth-readme-test-no-such-dir"),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run berth")
}

/// The subcommands a `--help` text lists under `Commands:` (without clap's `help`).
fn listed_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| line.trim() != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// `berth PATH... --help` succeeds for every command listed, recursively; returns the
/// top-level ones.
fn check_help(path: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = berth(&args);
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && help.contains("Usage: berth"),
        "berth {} failed: {}{}",
        args.join(" "),
        help,
        String::from_utf8_lossy(&out.stderr)
    );
    let commands = listed_commands(&help);
    for command in &commands {
        let mut deeper = path.to_vec();
        deeper.push(command.clone());
        check_help(&deeper);
    }
    commands
}

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The code blocks of a markdown text fenced as `lang`.
fn code_blocks(markdown: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.trim() == format!("```{lang}") => current = Some(String::new()),
            None => {}
        }
    }
    blocks
}

#[test]
fn every_command_in_help_runs_and_the_readme_uses_only_those() {
    let commands = check_help(&[]);
    for expected in ["dev", "server", "agent", "apply", "ps", "logs", "nodes"] {
        assert!(commands.iter().any(|c| c == expected), "{commands:?}");
    }
    let readme = readme();
    let mut shown = Vec::new();
    for block in code_blocks(&readme, "sh") {
        for line in block.lines() {
            let mut words = line.split_whitespace();
            if words.next() == Some("berth") {
                if let Some(command) = words.next().filter(|w| !w.starts_with('-')) {
                    shown.push(command.to_string());
                }
            }
        }
    }
    assert!(
        shown.len() > 5,
        "the README shows berth commands: {shown:?}"
    );
    for command in shown {
        assert!(
            commands.contains(&command),
            "the README shows `berth {command}`, which `berth --help` does not list ({commands:?})"
        );
    }
}

/// A control plane over an in-memory store, serving on a free port while the test runs.
fn start_server() -> std::net::SocketAddr {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let address = listener.local_addr().unwrap();
    let store = Arc::new(Store::open(Box::new(MemoryBackend::default())).unwrap());
    let control_plane = Arc::new(ControlPlane::new(
        store,
        "000000000000".to_string(),
        "us-east-1".to_string(),
        berth_core::PrivilegePolicy::allow_all(),
    ));
    let verifier = Verifier::from_credentials(Credentials::new(ACCESS_KEY_ID, SECRET));
    std::thread::spawn(move || {
        runtime
            .block_on(berth_server::serve(
                listener,
                control_plane,
                verifier,
                std::future::pending(),
            ))
            .unwrap();
    });
    address
}

fn apply(address: std::net::SocketAddr, file: &Path) -> Output {
    let endpoint = format!("http://{address}");
    berth(&[
        "apply",
        "-f",
        file.to_str().unwrap(),
        "--endpoint",
        &endpoint,
        "--access-key-id",
        ACCESS_KEY_ID,
        "--secret-access-key",
        SECRET,
        "--region",
        "us-east-1",
    ])
}

/// What the README's excerpts stand beside: the clusters and task definitions of
/// examples/our-project.yaml, as a file of their own.
fn example_clusters_and_task_definitions() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/our-project.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let example: serde_yaml::Mapping = serde_yaml::from_str(&text).unwrap();
    let mut kept = serde_yaml::Mapping::new();
    for key in ["clusters", "taskDefinitions"] {
        let value = example
            .get(key)
            .unwrap_or_else(|| panic!("{key} in the example"));
        kept.insert(key.into(), value.clone());
    }
    serde_yaml::to_string(&kept).unwrap()
}

#[test]
fn the_readme_apply_files_are_accepted_as_written() {
    let blocks = code_blocks(&readme(), "yaml");
    assert!(!blocks.is_empty(), "the README shows an apply file");
    let dir = tempfile::tempdir().unwrap();
    let beside = dir.path().join("beside.yaml");
    std::fs::write(&beside, example_clusters_and_task_definitions()).unwrap();
    for (index, block) in blocks.iter().enumerate() {
        // Each on a berth of its own, as a reader who copies it into a file would.
        let address = start_server();
        let out = apply(address, &beside);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file: PathBuf = dir.path().join(format!("readme-{index}.yaml"));
        std::fs::write(&file, block).unwrap();
        let out = apply(address, &file);
        assert!(
            out.status.success(),
            "the README's apply file #{} is refused:\n{block}\n{}",
            index + 1,
            String::from_utf8_lossy(&out.stderr)
        );
        // The README calls apply idempotent: a second run changes nothing.
        let again = apply(address, &file);
        let said = String::from_utf8_lossy(&again.stdout);
        assert!(
            again.status.success() && said.lines().all(|line| line.ends_with(" unchanged")),
            "the second apply of #{} changed something:\n{said}{}",
            index + 1,
            String::from_utf8_lossy(&again.stderr)
        );
    }
}
