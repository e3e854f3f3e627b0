//! `berthctl wait`: block until containers stop, printing their exit codes.

use anyhow::bail;

use crate::{client::Client, commands::stop::each, container::process, lookup, task};

/// Block until containers stop, then print each one's exit code.
///
/// Example: `berthctl wait web`
#[derive(clap::Args)]
pub struct Args {
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Waits for each container in turn.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        if task::state(client, &container.id).await?.is_none() {
            bail!("container {reference} has not been started: nothing to wait for");
        }
        let code = process::wait(client, &container.id, "").await?;
        println!("{code}");
        Ok(())
    })
    .await
}
