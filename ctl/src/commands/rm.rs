//! `berthctl rm`: remove containers (task, record, snapshot).

use crate::{client::Client, commands::stop::each, container::remove, lookup};

/// Remove containers: their stopped task, record and root filesystem. A running container
/// is refused unless `-f` kills it first.
///
/// Example: `berthctl rm -f web`
#[derive(clap::Args)]
pub struct Args {
    /// Kill a running container before removing it.
    #[arg(short, long)]
    force: bool,
    /// Remove the anonymous volumes the container used.
    #[arg(short, long)]
    volumes: bool,
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Removes each container, printing the name or ID given.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        remove::remove(client, &container, args.force, args.volumes).await?;
        println!("{reference}");
        Ok(())
    })
    .await
}
