//! `berthctl system info|df|prune` (and `berthctl info`): the daemon as a whole.

mod df;
mod info;
mod prune;
mod usage;

pub use info::InfoArgs;

use crate::client::Client;

/// Show what the daemon holds and clean it up.
///
/// Example: `berthctl system df -v`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    Info(InfoArgs),
    Df(df::Args),
    Prune(prune::Args),
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    match args.action {
        Action::Info(args) => info(args, client).await,
        Action::Df(args) => df::run(args, client).await,
        Action::Prune(args) => prune::run(args, client).await,
    }
}

/// Runs `system info` (also `berthctl info`).
pub async fn info(args: InfoArgs, client: &Client) -> anyhow::Result<()> {
    info::run(args, client).await
}
