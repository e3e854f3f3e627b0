//! `berthctl exec`: run a command in a running container.

use anyhow::{Context as _, bail};
use containerd_client::{
    services::v1::{ExecProcessRequest, tasks_client::TasksClient},
    types::v1::Status,
};
use oci_spec::runtime::{Process, User};

use crate::{
    client::Client,
    container::{
        flags,
        process::{self, Foreground},
    },
    exit, lookup, task,
};

/// The type URL of a process spec in an exec request (as containerd's clients send it).
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// Run a command in a running container; its exit code is ours (126: cannot be run, 127:
/// not found).
///
/// Example: `berthctl exec -it web sh` or `berthctl exec -e DEBUG=1 -w /tmp web ls`
#[derive(clap::Args)]
pub struct Args {
    /// Run the command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables (KEY=VALUE).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// User as name|uid[:group|gid].
    #[arg(short, long)]
    user: Option<String>,
    /// The container (name, ID or ID prefix).
    container: String,
    /// The command and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Runs the command and ends with its exit code.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let container = lookup::find(client, &args.container).await?;
    let id = container.id.clone();
    let state = task::state(client, &id).await?;
    let pid = match state {
        Some(s) if s.status == Status::Running => s.pid,
        Some(s) if matches!(s.status, Status::Paused | Status::Pausing) => {
            bail!(
                "container {} is paused, unpause the container before exec",
                args.container
            )
        }
        _ => bail!("container {} is not running", args.container),
    };
    let spec = container
        .spec
        .as_ref()
        .context("the container has no spec")
        .and_then(|s| Ok(berth_spec::from_json(&s.value)?))?;
    let process = exec_process(&args, spec.process().clone().unwrap_or_default(), pid)?;
    let exec_id = format!("exec-{}", &lookup::new_id()[..12]);
    let spec_any = prost_types::Any {
        type_url: PROCESS_TYPE_URL.to_string(),
        value: serde_json::to_vec(&process)?,
    };
    let mut tasks = TasksClient::new(client.channel.clone());
    if args.detach {
        tasks
            .exec(client.request(ExecProcessRequest {
                container_id: id.clone(),
                terminal: args.tty,
                spec: Some(spec_any),
                exec_id: exec_id.clone(),
                ..Default::default()
            }))
            .await
            .map_err(|s| process::start_error(s, "creating the exec process"))?;
        process::start(client, &id, &exec_id).await?;
        return Ok(());
    }
    let fg = Foreground::prepare(&exec_id, args.interactive, args.tty)?;
    let (stdin, stdout, stderr) = fg.stdio();
    tasks
        .exec(client.request(ExecProcessRequest {
            container_id: id.clone(),
            stdin,
            stdout,
            stderr,
            terminal: args.tty,
            spec: Some(spec_any),
            exec_id: exec_id.clone(),
        }))
        .await
        .map_err(|s| process::start_error(s, "creating the exec process"))?;
    let status = fg.run(client, &id, &exec_id).await;
    process::delete_process(client, &id, &exec_id).await;
    match status? {
        0 => Ok(()),
        code => Err(exit::with_code(code)),
    }
}

/// The exec'd process: the container's process with the command, environment, working
/// directory, user and terminal asked for.
fn exec_process(args: &Args, mut process: Process, pid: u32) -> anyhow::Result<Process> {
    process.set_args(Some(args.command.clone()));
    process.set_terminal(Some(args.tty));
    process.set_console_size(None);
    let mut env = process.env().clone().unwrap_or_default();
    for entry in &args.env {
        let entry = if entry.contains('=') {
            entry.clone()
        } else {
            match std::env::var(entry) {
                Ok(v) => format!("{entry}={v}"),
                Err(_) => continue,
            }
        };
        let key = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(key));
        env.push(entry);
    }
    if args.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_string());
    }
    process.set_env(Some(env));
    if let Some(w) = &args.workdir {
        process.set_cwd(w.into());
    }
    if let Some(u) = &args.user {
        // As in Docker, a numeric uid takes its group from the container's /etc/passwd when
        // it is listed there; names must be found there.
        let root = format!("/proc/{pid}/root");
        let rootfs = std::path::Path::new(&root);
        let resolved = match berth_spec::resolve_user(u, Some(rootfs)) {
            Err(_) if !flags::user_needs_lookup(u) => berth_spec::resolve_user(u, None)?,
            other => other?,
        };
        let mut user = User::default();
        user.set_uid(resolved.uid);
        user.set_gid(resolved.gid);
        user.set_additional_gids(Some(resolved.additional_gids));
        process.set_user(user);
    }
    Ok(process)
}
