//! `berthctl kill`: send a signal to containers' main processes.

use containerd_client::types::v1::Status;

use crate::{
    client::Client,
    commands::stop::each,
    container::{labels, signals},
    lookup, task,
};

/// Send a signal (default KILL) to the main process of running containers. The restart
/// policy leaves a killed container alone.
///
/// Example: `berthctl kill -s TERM web`
#[derive(clap::Args)]
pub struct Args {
    /// Signal to send: a name (KILL, SIGTERM…) or a number.
    #[arg(short, long, default_value = "KILL")]
    signal: String,
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Signals each container, printing the name or ID given.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let number = signals::parse(&args.signal)?;
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        let running = task::state(client, &container.id)
            .await?
            .is_some_and(|s| matches!(s.status, Status::Running | Status::Paused));
        if !running {
            anyhow::bail!(
                "cannot kill container {reference}: container {} is not running",
                lookup::short_id(&container.id)
            );
        }
        labels::mark_stopped(client, &container).await?;
        signals::kill(client, &container.id, "", number).await?;
        println!("{reference}");
        Ok(())
    })
    .await
}
