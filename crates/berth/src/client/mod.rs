//! The client commands: `apply`, `ps`, `logs`, `scale`, `restart`, `rollback`, `stop`, `delete`, `events`, `nodes`, `drain`. Each talks to
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
        #[command(flatten)]
        endpoint: Endpoint,
    },
    /// Show the cluster -> service -> task -> container tree with status, health (a load-balanced task's target health too) and ports.
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

pub async fn run(command: ClientCommand) -> anyhow::Result<()> {
    commands::run(command).await
}
