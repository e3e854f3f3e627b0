//! `berthctl start`: start created or stopped containers, optionally attached.

use anyhow::{Context as _, bail};
use containerd_client::{services::v1::Container, types::v1::Status};

use crate::{
    client::Client,
    commands::stop::each,
    container::{labels, process},
    exit, lookup, task,
};

/// Start one or more stopped containers. With `--attach` (one container) our stdio is
/// connected and the container's exit code is ours; otherwise its output goes to its log.
///
/// Example: `berthctl start web` or `berthctl start -ai web`
#[derive(clap::Args)]
pub struct Args {
    /// Attach stdout/stderr and exit with the container's code.
    #[arg(short, long)]
    attach: bool,
    /// Attach stdin too.
    #[arg(short, long)]
    interactive: bool,
    /// Containers (name, ID or ID prefix).
    #[arg(required = true)]
    containers: Vec<String>,
}

/// Starts each container in turn.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    if (args.attach || args.interactive) && args.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    if args.attach || args.interactive {
        let container = lookup::find(client, &args.containers[0]).await?;
        let code = start_attached(client, &container, args.interactive).await?;
        return if code == 0 {
            Ok(())
        } else {
            Err(exit::with_code(code))
        };
    }
    each(&args.containers, |reference| async move {
        let container = lookup::find(client, &reference).await?;
        start_detached(client, &container).await?;
        println!("{reference}");
        Ok(())
    })
    .await
}

/// Whether the container's spec asks for a terminal.
pub fn wants_terminal(container: &Container) -> bool {
    container
        .spec
        .as_ref()
        .and_then(|s| berth_spec::from_json(&s.value).ok())
        .and_then(|s| s.process().as_ref().and_then(|p| p.terminal()))
        .unwrap_or(false)
}

/// What a container needs before it can start.
enum Readiness {
    /// It runs already: nothing to do.
    Running,
    /// It has a created (not yet started) task.
    Created,
    /// It has no task (a stopped one was deleted).
    NoTask,
}

/// Gets the container ready for a new task: deletes a stopped task, and tells the restart
/// monitor it should run.
async fn make_ready(client: &Client, container: &Container) -> anyhow::Result<Readiness> {
    let readiness = match task::state(client, &container.id).await? {
        Some(s) if s.status == Status::Stopped => {
            process::delete_task(client, &container.id).await?;
            Readiness::NoTask
        }
        Some(s) if s.status == Status::Created => Readiness::Created,
        Some(_) => return Ok(Readiness::Running),
        None => Readiness::NoTask,
    };
    labels::mark_running(client, container).await?;
    Ok(readiness)
}

/// Starts the container with empty stdio (berthd logs its output); a running one is left
/// alone.
pub async fn start_detached(client: &Client, container: &Container) -> anyhow::Result<()> {
    let id = &container.id;
    match make_ready(client, container).await? {
        Readiness::Running => return Ok(()),
        Readiness::Created => {}
        Readiness::NoTask => {
            process::create_task(client, id, Default::default(), wants_terminal(container)).await?;
        }
    }
    process::start(client, id, "").await?;
    Ok(())
}

/// Starts the container with our stdio attached; returns its exit status.
async fn start_attached(
    client: &Client,
    container: &Container,
    interactive: bool,
) -> anyhow::Result<u32> {
    let id = &container.id;
    match make_ready(client, container).await? {
        Readiness::Running => bail!(
            "container {} is already running: use `berthctl attach`",
            lookup::name_of(container)
        ),
        // A task created elsewhere without our FIFOs: replace it.
        Readiness::Created => process::delete_task(client, id).await?,
        Readiness::NoTask => {}
    }
    let tty = wants_terminal(container);
    let fg = process::Foreground::prepare(id, interactive, tty)
        .context("setting up the container's stdio")?;
    process::create_task(client, id, fg.stdio(), tty).await?;
    fg.run(client, id, "").await
}
