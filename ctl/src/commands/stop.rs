//! `berthctl stop` and `berthctl restart`: SIGTERM, then SIGKILL after a grace period.

use std::time::Duration;

use containerd_client::{services::v1::Container, types::v1::Status};

use crate::{
    client::Client,
    commands::start,
    container::{labels, process, remove, signals},
    exit, lookup, task,
};

/// Stop running containers: SIGTERM, then SIGKILL after the grace period. The restart
/// policy leaves a stopped container alone.
///
/// Example: `berthctl stop -t 1 web`
#[derive(clap::Args)]
pub struct Args {
    /// Seconds to wait for the container to exit before killing it.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Restart containers: stop (SIGTERM, then SIGKILL after the grace period) and start again.
///
/// Example: `berthctl restart -t 2 web`
#[derive(clap::Args)]
pub struct RestartArgs {
    /// Seconds to wait for the container to exit before killing it.
    #[arg(short = 't', long = "time", default_value_t = 10)]
    time: u64,
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Stops each container, printing the name or ID given; failures are reported and the
/// others still stopped.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        stop(client, &container, args.time).await?;
        println!("{reference}");
        Ok(())
    })
    .await
}

/// Restarts each container.
pub async fn restart(args: RestartArgs, client: &Client) -> anyhow::Result<()> {
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        stop(client, &container, args.time).await?;
        start::start_detached(client, &container).await?;
        println!("{reference}");
        Ok(())
    })
    .await
}

/// Runs `op` for each reference; prints each failure and ends with 125 if any failed.
pub async fn each<F, Fut>(references: &[String], op: F) -> anyhow::Result<()>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut failed = false;
    for reference in references {
        if let Err(e) = op(reference.clone()).await {
            eprintln!("berthctl: {e:#}");
            failed = true;
        }
    }
    if failed {
        Err(exit::ExitStatus(exit::DAEMON_ERROR).into())
    } else {
        Ok(())
    }
}

/// Stops one container: marks it stopped for the restart monitor first, then SIGTERM (a
/// paused one is resumed so that it can act on it), SIGKILL after `grace` seconds.
pub async fn stop(client: &Client, container: &Container, grace: u64) -> anyhow::Result<()> {
    labels::mark_stopped(client, container).await?;
    let id = &container.id;
    let Some(state) = task::state(client, id).await? else {
        return Ok(());
    };
    match state.status {
        Status::Stopped | Status::Created | Status::Unknown => return Ok(()),
        Status::Paused | Status::Pausing => remove::resume_if_paused(client, id).await?,
        Status::Running => {}
    }
    signals::kill(client, id, "", 15).await?;
    let waited =
        tokio::time::timeout(Duration::from_secs(grace), process::wait(client, id, "")).await;
    match waited {
        Ok(status) => status.map(|_| ()),
        Err(_) => remove::kill_and_wait(client, id).await,
    }
}
