//! `serrano`: runs the platform (`serrano up`) and talks to it (`serrano deployments ...`).

use clap::Parser;

mod cli;
mod client_commands;
mod table;
mod up;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
