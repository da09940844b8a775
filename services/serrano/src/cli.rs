//! Command-line grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use uuid::Uuid;

use crate::{client_commands, up};

#[derive(Debug, Parser)]
#[command(
    name = "serrano",
    version,
    about = "Run and use the SERRANO cloud-continuum platform"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Resource Orchestrator API root.
    #[arg(
        long,
        global = true,
        env = "SERRANO_URL",
        default_value = "http://127.0.0.1:7102"
    )]
    pub url: String,
    /// Bearer token (default: read from --token-file).
    #[arg(long, global = true, env = "SERRANO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token (`serrano up` writes one).
    #[arg(
        long,
        global = true,
        env = "SERRANO_TOKEN_FILE",
        default_value = "serrano-data/admin.token"
    )]
    pub token_file: PathBuf,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every platform service in this process on embedded backends, at the fixed ports.
    Up {
        /// Where the embedded datastore and the admin token live.
        #[arg(long, default_value = "serrano-data")]
        data_dir: PathBuf,
    },
    /// Application deployments (D6.7 4.2.3.2.3).
    #[command(subcommand)]
    Deployments(DeploymentCommand),
    /// Secure storage policies (D6.7 4.2.3.2.2).
    #[command(subcommand, name = "storage-policies")]
    StoragePolicies(PolicyCommand),
    /// Registered Kubernetes and HPC clusters.
    #[command(subcommand)]
    Clusters(ClusterCommand),
    /// FaaS kernel executions.
    #[command(subcommand)]
    Faas(FaasCommand),
    /// Assignments of deployments to clusters.
    #[command(subcommand)]
    Assignments(AssignmentCommand),
}

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Create from a JSON request (`{"name", "deployment_description", "deployment_objectives"}`)
    /// or from a Kubernetes YAML file (`.yaml`/`.yml`).
    Create {
        #[arg(short = 'f', long)]
        file: PathBuf,
        /// Name (for YAML files; overrides a JSON request's name).
        #[arg(long)]
        name: Option<String>,
    },
    List,
    Get {
        uuid: Uuid,
    },
    Logs {
        uuid: Uuid,
    },
    /// Terminate a deployment.
    Delete {
        uuid: Uuid,
    },
    /// Follow changes until interrupted.
    Watch {
        #[arg(long)]
        revision: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Create from a JSON request (`{"name", "description", "policy_parameters"}`).
    Create {
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    List,
    Get {
        uuid: Uuid,
    },
    Delete {
        uuid: Uuid,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    List {
        /// Only clusters seen within this window, e.g. 10m.
        #[arg(long)]
        active: Option<String>,
    },
    Get {
        uuid: Uuid,
    },
    Watch {
        #[arg(long)]
        revision: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum FaasCommand {
    List,
    Get { uuid: Uuid },
}

#[derive(Debug, Subcommand)]
pub enum AssignmentCommand {
    List {
        #[arg(long)]
        cluster: Option<Uuid>,
    },
    /// Follow one cluster's assignments, as its driver does.
    Watch {
        cluster: Uuid,
        #[arg(long)]
        revision: Option<i64>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up { data_dir } => up::run(&data_dir).await,
        other => client_commands::run(&cli.global, other).await,
    }
}
