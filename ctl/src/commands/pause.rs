//! `berthctl pause` and `berthctl unpause`: freeze and thaw containers' processes.

use containerd_client::services::v1::{
    PauseTaskRequest, ResumeTaskRequest, tasks_client::TasksClient,
};

use crate::{client::Client, commands::stop::each, lookup};

/// Pause all processes of containers (cgroup freezer).
///
/// Example: `berthctl pause web`
#[derive(clap::Args)]
pub struct Args {
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Pauses each container, printing the name or ID given.
pub async fn pause(args: Args, client: &Client) -> anyhow::Result<()> {
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        TasksClient::new(client.channel.clone())
            .pause(client.request(PauseTaskRequest {
                container_id: container.id,
            }))
            .await
            .map_err(|s| anyhow::anyhow!("cannot pause {reference}: {}", s.message()))?;
        println!("{reference}");
        Ok(())
    })
    .await
}

/// Resume all processes of paused containers.
///
/// Example: `berthctl unpause web`
#[derive(clap::Args)]
pub struct UnpauseArgs {
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Resumes each container, printing the name or ID given.
pub async fn unpause(args: UnpauseArgs, client: &Client) -> anyhow::Result<()> {
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        TasksClient::new(client.channel.clone())
            .resume(client.request(ResumeTaskRequest {
                container_id: container.id,
            }))
            .await
            .map_err(|s| anyhow::anyhow!("cannot unpause {reference}: {}", s.message()))?;
        println!("{reference}");
        Ok(())
    })
    .await
}
