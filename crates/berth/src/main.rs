//! The `berth` binary: `berth dev` runs a whole cluster in one process, `berth server`
//! the control plane for agents on other machines, `berth agent` one machine's agent;
//! the other commands are clients of a running berth over the same signed ECS API.

mod agent;
mod agent_balancer;
mod client;
mod control_plane;
mod dev;
mod paths;
mod pid_file;
mod process;
mod server;
mod task_requests;
mod tls;

use clap::{Parser, Subcommand};

/// berth: the ECS model and API on your own machines.
#[derive(Parser, Debug)]
#[command(name = "berth", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a whole cluster on this machine: API server, scheduler and agent in one process.
    Dev(DevArgs),
    /// Run the control plane (API, scheduler, store, load balancer) for agents that join
    /// from other machines; `berth server token` prints the join command.
    Server(server::ServerArgs),
    /// Join a `berth server`'s cluster and run this machine's tasks on its Docker engine.
    Agent(agent::AgentArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

#[derive(clap::Args, Debug, Clone)]
pub struct DevArgs {
    #[command(flatten)]
    pub control_plane: control_plane::ControlPlaneArgs,
    /// How long a stopped task's containers are kept (for `berth logs`) before removal, in seconds.
    #[arg(long, default_value_t = 600)]
    pub task_cleanup_wait: u64,
    /// Stop the `berth dev` running on the data directory (--data-dir, else the default):
    /// SIGTERM to the process its pid file names, then wait until it has exited.
    #[arg(long)]
    pub stop: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("berth: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => dev::run(args).await,
            Command::Server(args) => match args.command {
                Some(server::ServerCommand::Token(token)) => server::token(token),
                None => server::run(args).await,
            },
            Command::Agent(args) => agent::run(args).await,
            // `berth exec` exits with its command's code.
            Command::Client(command) => return client::run(command).await,
        }
        .map(|()| std::process::ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("berth: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
