//! The client commands: `apply`, `down`, `ps`, `describe`, `logs`, `top`, `exec`, `scale`, `restart`, `deploy`, `rollback`, `stop`, `delete`, `events`, `nodes`, `drain`. Each talks to
//! a running berth through the signed ECS API, like the `aws` CLI does.

mod api_client;
mod aws_config;
mod commands;
mod query_xml;

use std::path::PathBuf;

pub use api_client::{is_elbv2_error, ApiClient};
pub use query_xml::XmlElement;

/// Where to reach berth and who to sign as. Flags win over env, env over the file
/// `berth dev` wrote in its data directory.
#[derive(clap::Args, Debug, Clone)]
pub struct Endpoint {
    /// berth's API address, e.g. http://127.0.0.1:9650.
    #[arg(long, global = true, env = "BERTH_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Access key id to sign with, given with --secret-access-key (else BERTH_ACCESS_KEY_ID, the dev connection file, or AWS_ACCESS_KEY_ID).
    #[arg(long, global = true)]
    pub access_key_id: Option<String>,
    /// Secret access key to sign with, given with --access-key-id (else BERTH_SECRET_ACCESS_KEY, the dev connection file, or AWS_SECRET_ACCESS_KEY).
    #[arg(long, global = true, hide_env_values = true)]
    pub secret_access_key: Option<String>,
    /// Region to sign for.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// The data directory of the `berth dev` to talk to (for its connection file).
    #[arg(long, global = true, env = "BERTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A PEM file of certificates to trust for an https endpoint, as the aws CLI's
    /// --ca-bundle (else AWS_CA_BUNDLE, else the one the dev connection file names).
    #[arg(long, global = true)]
    pub ca_bundle: Option<PathBuf>,
    /// The cluster (default: `default`).
    #[arg(long, short = 'c', global = true, env = "BERTH_CLUSTER")]
    pub cluster: Option<String>,
    /// The profile of the shared AWS config files (~/.aws/config, ~/.aws/credentials)
    /// whose endpoint_url, region and keys to use (else AWS_PROFILE, else `default`).
    #[arg(long, global = true)]
    pub profile: Option<String>,
}

#[derive(clap::Subcommand, Debug)]
pub enum ClientCommand {
    /// Create or update task definitions, clusters and services from a YAML or JSON file (idempotent).
    Apply {
        /// The file (`-` for standard input).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Check the file against berth and print what apply would change, changing nothing.
        #[arg(long)]
        dry_run: bool,
        /// Follow the rollout of every service apply created or gave a new deployment
        /// until all are COMPLETED (exit non-zero when one FAILED). The default when
        /// standard output is a terminal.
        #[arg(long, conflicts_with = "no_wait")]
        wait: bool,
        /// Return once the changes are made (the default when standard output is not a
        /// terminal).
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Remove what a file created, in the right order, waiting for drains: its services,
    /// listeners, load balancers, target groups (unless something else uses them), the
    /// ACTIVE revisions of its task definition families, and its clusters once empty.
    Down {
        /// The file `berth apply` was given (`-` for standard input).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Read berth and print the steps down would take, changing nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// What ECS's describe says of a service or a task, readable: deployments, load
    /// balancers with each target's health, events and tasks; or a task's times, stop
    /// reason and containers.
    Describe {
        /// A service name, or a task id (a unique prefix of it) or ARN.
        target: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Show the cluster -> service -> task -> container tree with status, health (a load-balanced task's target health too) and ports, then any listener the load balancer cannot serve, with the reason.
    Ps {
        /// Every cluster, also when --cluster (or BERTH_CLUSTER) selects one; without a
        /// selected cluster every cluster is shown anyway.
        #[arg(long, short = 'a')]
        all: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Print a task's or a service's container output.
    Logs {
        /// A task id or ARN, or a service name.
        target: String,
        /// Keep printing new output.
        #[arg(short = 'f', long)]
        follow: bool,
        /// Only this container.
        #[arg(long)]
        container: Option<String>,
        /// Only the last N lines of each container.
        #[arg(long)]
        tail: Option<i64>,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Run a command in a running container of a task, as ECS Exec or `docker exec` does,
    /// through this machine's Docker engine (the task must run on this machine). Exits
    /// with the command's exit code, or the engine's when it cannot run the command (Docker
    /// 20.10: 126, also for a command not found), as `docker exec` does.
    #[command(
        after_help = "Examples:\n  berth exec 1a2b3c4d5e6f -- sh              # a shell (at a terminal: as with -i -t)\n  berth exec 1a2b3c4d5e6f --container web -- env\n  echo hi | berth exec -i 1a2b3c4d5e6f -- cat"
    )]
    Exec {
        /// A task id, a unique prefix of one (as `berth ps` shows it), or a task ARN.
        task: String,
        /// The container to run in (default: the task's only container, else its first
        /// essential one).
        #[arg(long)]
        container: Option<String>,
        /// Pass standard input to the command. Without -i and -t, both are on when
        /// standard input and output are a terminal, and off otherwise (a pipe, a script).
        #[arg(short = 'i', long)]
        interactive: bool,
        /// Give the command a terminal; the local one is in raw mode meanwhile (keys, Ctrl-C
        /// included, go to the command; put back when it ends) and its size is forwarded.
        #[arg(short = 't', long)]
        tty: bool,
        /// The command and its arguments, after `--`.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<String>,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Show each running container's CPU, memory, network and block I/O, as `docker
    /// stats` does: of every task of the cluster, of a service's tasks, or of one task.
    /// Redraws every 2 s on a terminal until Ctrl-C.
    Top {
        /// A service name, or a task id or ARN (default: every task of the cluster).
        target: Option<String>,
        /// Print once and exit (also when the output is no terminal).
        #[arg(long)]
        no_stream: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Set a service's desired count.
    Scale {
        service: String,
        count: i64,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Replace every task of a service with a new one of the same task definition (a new
    /// deployment), waiting until its rollout is COMPLETED or FAILED.
    Restart {
        service: String,
        /// Return once the deployment is started.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Roll out new images or environment variables: a new revision of the service's
    /// task definition with only those changed, followed live until its rollout is
    /// COMPLETED or FAILED.
    Deploy {
        service: String,
        /// A container's new image, as CONTAINER=IMAGE (repeatable).
        #[arg(long = "image", value_name = "CONTAINER=IMAGE")]
        images: Vec<String>,
        /// An environment variable to set (added, or replaced when the container has
        /// it), as CONTAINER:KEY=VALUE (repeatable).
        #[arg(long = "env", value_name = "CONTAINER:KEY=VALUE")]
        envs: Vec<String>,
        /// Return once the deployment is started.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Roll a service back to the task definition of its last SUCCESSFUL deployment of
    /// another task definition (from ECS's deployment history), waiting until that
    /// rollout is COMPLETED or FAILED.
    Rollback {
        service: String,
        /// Return once the deployment is started.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Delete a service (its tasks are stopped), an empty cluster or a load balancer.
    Delete {
        #[command(subcommand)]
        what: DeleteCommand,
    },
    /// Stop a task.
    Stop {
        task: String,
        /// Why (shown as the task's stoppedReason).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Show a service's events, newest last, dated.
    Events {
        service: String,
        /// Keep printing new events as they happen, until interrupted.
        #[arg(long, short = 'f')]
        follow: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// List the container instances (machines) with their status, agent connection,
    /// reserved and free resources, and running tasks.
    Nodes {
        /// Every cluster, not only the selected one.
        #[arg(long, short = 'a')]
        all: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Drain a container instance: its service tasks move to other instances (within
    /// each service's minimumHealthyPercent and maximumPercent) and it takes no new ones.
    Drain {
        /// The instance's id (or a unique prefix of it) or host name, as `berth nodes` shows.
        node: String,
        /// Make it ACTIVE again.
        #[arg(long)]
        undo: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum DeleteCommand {
    /// Scale the service to 0 and delete it, waiting until its tasks stopped and it is INACTIVE.
    Service {
        name: String,
        /// Return once the deletion is started.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Delete a cluster; refused while it has services or tasks.
    Cluster {
        name: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Delete a load balancer: its listeners, it, and the target groups no other load balancer uses.
    Lb {
        name: String,
        #[command(flatten)]
        endpoint: Endpoint,
    },
}

/// Runs a client command; its exit code (the command's own for `berth exec`).
pub async fn run(command: ClientCommand) -> anyhow::Result<std::process::ExitCode> {
    commands::run(command).await
}
