//! `berthctl task ls|ps|kill|rm`: the low-level view of tasks by container (like
//! `ctr tasks`).

use anyhow::{Context as _, bail};
use containerd_client::{
    services::v1::{
        DeleteTaskRequest, KillRequest, ListPidsRequest, ListTasksRequest, WaitRequest,
        tasks_client::TasksClient,
    },
    types::v1::Status,
};
use serde_json::{Value, json};

use crate::{
    client::Client,
    container::signals,
    lookup,
    output::{self, Format},
};

/// Work with tasks (a container's running process) directly (like `ctr tasks`).
///
/// Example: `berthctl task ls`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List tasks: TASK PID STATUS.
    ///
    /// Example: `berthctl task ls --format '{{.ID}} {{.Status}}'`
    #[command(alias = "list")]
    Ls {
        /// Print container IDs only.
        #[arg(short, long)]
        quiet: bool,
        /// `table`, `json` or a Go template over ID, PID, Status, ExitStatus.
        #[arg(long)]
        format: Option<String>,
    },
    /// List the processes of a task: PID INFO.
    ///
    /// Example: `berthctl task ps web`
    Ps {
        /// Container ID, name or unique ID prefix.
        container: String,
    },
    /// Send a signal to a task.
    ///
    /// Example: `berthctl task kill -s SIGKILL web`
    Kill {
        /// Container ID, name or unique ID prefix.
        container: String,
        /// The signal, by name (`SIGTERM`, `TERM`) or number.
        #[arg(short, long, default_value = "SIGTERM")]
        signal: String,
        /// Signal every process of the task, not only its init process.
        #[arg(short, long)]
        all: bool,
        /// Signal this exec process instead of the init process.
        #[arg(long)]
        exec_id: Option<String>,
    },
    /// Delete stopped tasks (the container record stays).
    ///
    /// Example: `berthctl task rm -f web`
    #[command(alias = "delete", alias = "remove")]
    Rm {
        /// Container IDs, names or unique ID prefixes.
        #[arg(required = true)]
        containers: Vec<String>,
        /// Kill a running task first.
        #[arg(short, long)]
        force: bool,
    },
}

fn status_word(status: i32) -> &'static str {
    match Status::try_from(status).unwrap_or(Status::Unknown) {
        Status::Created => "CREATED",
        Status::Running => "RUNNING",
        Status::Stopped => "STOPPED",
        Status::Paused => "PAUSED",
        Status::Pausing => "PAUSING",
        Status::Unknown => "UNKNOWN",
    }
}

fn api(client: &Client) -> TasksClient<tonic::transport::Channel> {
    TasksClient::new(client.channel.clone())
}

/// Deletes the task of `id`, first killing it and waiting for its exit when `force`.
async fn delete(client: &Client, id: &str, force: bool) -> anyhow::Result<()> {
    let state = crate::task::state(client, id)
        .await?
        .with_context(|| format!("container {id} has no task"))?;
    if !matches!(state.status, Status::Stopped | Status::Created) {
        if !force {
            bail!(
                "task {id} is {}: stop it first or pass -f",
                state.docker_state()
            );
        }
        api(client)
            .kill(client.request(KillRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
                signal: 9,
                all: true,
            }))
            .await
            .with_context(|| format!("killing task {id}"))?;
        // Wait answers at once for a task that has already exited.
        api(client)
            .wait(client.request(WaitRequest {
                container_id: id.to_string(),
                exec_id: String::new(),
            }))
            .await
            .with_context(|| format!("waiting for task {id}"))?;
    }
    api(client)
        .delete(client.request(DeleteTaskRequest {
            container_id: id.to_string(),
        }))
        .await
        .with_context(|| format!("deleting task {id}"))?;
    Ok(())
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    match args.action {
        Action::Ls { quiet, format } => {
            let format = Format::parse(format.as_deref())?;
            let mut tasks = api(client)
                .list(client.request(ListTasksRequest {
                    filter: String::new(),
                }))
                .await
                .context("listing tasks")?
                .into_inner()
                .tasks;
            tasks.sort_by(|a, b| a.container_id.cmp(&b.container_id));
            if quiet {
                tasks.iter().for_each(|t| println!("{}", t.container_id));
                return Ok(());
            }
            let items: Vec<Value> = tasks
                .iter()
                .map(|t| {
                    json!({
                        "ID": t.container_id,
                        "PID": t.pid,
                        "Status": status_word(t.status),
                        "ExitStatus": t.exit_status,
                    })
                })
                .collect();
            output::print_items(&format, &items, &["TASK", "PID", "STATUS"], |v| {
                vec![
                    v["ID"].as_str().unwrap_or("").into(),
                    v["PID"].to_string(),
                    v["Status"].as_str().unwrap_or("").into(),
                ]
            });
        }
        Action::Ps { container } => {
            let c = lookup::find(client, &container).await?;
            let processes = api(client)
                .list_pids(client.request(ListPidsRequest {
                    container_id: c.id.clone(),
                }))
                .await
                .with_context(|| format!("listing the processes of {container}"))?
                .into_inner()
                .processes;
            let rows: Vec<Vec<String>> = processes
                .iter()
                .map(|p| vec![p.pid.to_string(), "-".into()])
                .collect();
            output::print_table(&["PID", "INFO"], &rows);
        }
        Action::Kill {
            container,
            signal,
            all,
            exec_id,
        } => {
            let signal = signals::parse(&signal)?;
            let c = lookup::find(client, &container).await?;
            api(client)
                .kill(client.request(KillRequest {
                    container_id: c.id.clone(),
                    exec_id: exec_id.unwrap_or_default(),
                    signal,
                    all,
                }))
                .await
                .with_context(|| format!("signalling {container}"))?;
        }
        Action::Rm { containers, force } => {
            for reference in containers {
                let c = lookup::find(client, &reference).await?;
                delete(client, &c.id, force).await?;
                println!("{}", c.id);
            }
        }
    }
    Ok(())
}
