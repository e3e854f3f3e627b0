//! Task and process operations, and running a process in the foreground: stdio attached,
//! terminal handled, signals forwarded, ending with its exit status.

use anyhow::Context as _;
use containerd_client::services::v1::{
    CreateTaskRequest, DeleteProcessRequest, DeleteTaskRequest, StartRequest, WaitRequest,
    tasks_client::TasksClient,
};

use super::{
    signals,
    stdio::{Ends, Fifos},
    tty,
};
use crate::{client::Client, exit};

/// Maps a failure to create or start a process: the runtime's "cannot execute" errors get
/// docker's 126/127, anything else stays a daemon error (125).
pub fn start_error(status: tonic::Status, what: &str) -> anyhow::Error {
    let message = status.message().to_string();
    let lower = message.to_lowercase();
    if lower.contains("exec:")
        || lower.contains("executable file not found")
        || lower.contains("permission denied")
        || lower.contains("no such file or directory")
    {
        exit::invocation_error(&message)
    } else {
        anyhow::Error::new(status).context(what.to_string())
    }
}

/// Creates the init task of container `id` with the given stdio (empty strings: none, and
/// berthd logs the output of containers that have the log-driver label).
pub async fn create_task(
    client: &Client,
    id: &str,
    (stdin, stdout, stderr): (String, String, String),
    terminal: bool,
) -> anyhow::Result<u32> {
    let request = CreateTaskRequest {
        container_id: id.to_string(),
        stdin,
        stdout,
        stderr,
        terminal,
        ..Default::default()
    };
    let res = TasksClient::new(client.channel.clone())
        .create(client.request(request))
        .await
        .map_err(|s| start_error(s, "creating the task"))?;
    Ok(res.into_inner().pid)
}

/// Starts process `exec_id` (the init process when empty) of container `id`.
pub async fn start(client: &Client, id: &str, exec_id: &str) -> anyhow::Result<u32> {
    let res = TasksClient::new(client.channel.clone())
        .start(client.request(StartRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        }))
        .await
        .map_err(|s| start_error(s, "starting the process"))?;
    Ok(res.into_inner().pid)
}

/// Waits until process `exec_id` of container `id` exits; returns its exit status.
pub async fn wait(client: &Client, id: &str, exec_id: &str) -> anyhow::Result<u32> {
    let res = TasksClient::new(client.channel.clone())
        .wait(client.request(WaitRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        }))
        .await
        .context("waiting for the process")?;
    Ok(res.into_inner().exit_status)
}

/// Deletes the (stopped) init task of container `id`; a missing task is fine.
pub async fn delete_task(client: &Client, id: &str) -> anyhow::Result<()> {
    let res = TasksClient::new(client.channel.clone())
        .delete(client.request(DeleteTaskRequest {
            container_id: id.to_string(),
        }))
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(s).context("deleting the task"),
    }
}

/// Deletes exec process `exec_id` of container `id` (best effort).
pub async fn delete_process(client: &Client, id: &str, exec_id: &str) {
    let _ = TasksClient::new(client.channel.clone())
        .delete_process(client.request(DeleteProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        }))
        .await;
}

/// A process about to run in the foreground: its FIFOs, with our ends open.
pub struct Foreground {
    fifos: Fifos,
    ends: Ends,
    tty: bool,
}

impl Foreground {
    /// Makes and opens the FIFOs of process `name`: stdin when `interactive`, one output
    /// stream with `tty`.
    pub fn prepare(name: &str, interactive: bool, tty: bool) -> anyhow::Result<Foreground> {
        let fifos = Fifos::new(name, interactive, tty)?;
        let ends = fifos.open()?;
        Ok(Foreground { fifos, ends, tty })
    }

    /// The stdio strings for the create or exec request.
    pub fn stdio(&self) -> (String, String, String) {
        self.fifos.paths()
    }

    /// Copies stdio, starts the (created) process, forwards window sizes or signals, and
    /// returns its exit status once it has exited and its output is drained.
    pub async fn run(self, client: &Client, id: &str, exec_id: &str) -> anyhow::Result<u32> {
        let raw = if self.tty {
            tty::RawMode::enter()
        } else {
            None
        };
        let copies = self.ends.start(client, id, exec_id);
        // The wait goes out before the start, so that both travel together.
        let waiter = {
            let client = client.clone();
            let (id, exec_id) = (id.to_string(), exec_id.to_string());
            tokio::spawn(async move { wait(&client, &id, &exec_id).await })
        };
        tokio::task::yield_now().await;
        if let Err(e) = start(client, id, exec_id).await {
            waiter.abort();
            return Err(e);
        }
        let helper = if self.tty {
            tty::follow_resizes(client, id, exec_id)
        } else {
            signals::forward(client, id, exec_id)
        };
        let status = match waiter.await {
            Ok(status) => status,
            Err(e) => Err(anyhow::Error::new(e).context("waiting for the process")),
        };
        helper.abort();
        if status.is_ok() {
            copies.finish().await;
        }
        drop(raw);
        drop(self.fifos);
        status
    }
}
