//! `berthctl attach`: follow a running container's output and forward signals to it.

use anyhow::{Context as _, bail};
use berth_proto::berth::logs::v1::{ReadRequest, logs_client::LogsClient};
use containerd_client::types::v1::Status;

use crate::{
    client::Client,
    commands::logs::write_entry,
    container::{process, signals},
    exit, lookup, task,
};

/// Attach to a running container: stream its new output (from its log) and forward our
/// signals to it; ends with its exit code. Stdin is not attached: a container started
/// detached has no stdin FIFO (use `berthctl start --attach -i` or `exec -i`).
///
/// Example: `berthctl attach web`
#[derive(clap::Args)]
pub struct Args {
    /// The container (name, ID or ID prefix).
    container: String,
}

/// Follows the output until the container stops.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let container = lookup::find(client, &args.container).await?;
    let id = container.id.clone();
    let running = task::state(client, &id)
        .await?
        .is_some_and(|s| matches!(s.status, Status::Running | Status::Paused));
    if !running {
        bail!("you cannot attach to a stopped container, start it first");
    }
    let forwarder = signals::forward(client, &id, "");
    let mut stream = LogsClient::new(client.channel.clone())
        .read(client.request(ReadRequest {
            container_id: id.clone(),
            follow: true,
            tail: 0,
            since: None,
            until: None,
        }))
        .await
        .with_context(|| format!("reading the output of {}", args.container))?
        .into_inner();
    while let Some(entry) = stream.message().await? {
        write_entry(&entry, false)?;
    }
    let code = process::wait(client, &id, "").await;
    forwarder.abort();
    match code? {
        0 => Ok(()),
        c => Err(exit::with_code(c)),
    }
}
