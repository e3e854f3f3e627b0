//! A container's task as the CLI sees it: its state, and the words docker uses for it.

use anyhow::Context as _;
use containerd_client::{
    services::v1::{GetRequest, tasks_client::TasksClient},
    types::v1::Status,
};

use crate::client::Client;

/// What `Tasks.Get` says about a container's init process.
#[derive(Debug, Clone)]
pub struct TaskState {
    /// containerd's status (created, running, stopped, paused, pausing).
    pub status: Status,
    /// The init process's host pid (0 when it has none).
    pub pid: u32,
    /// The exit status once stopped.
    pub exit_status: u32,
    /// When it exited, if it has.
    pub exited_at: Option<prost_types::Timestamp>,
}

impl TaskState {
    /// docker's word for the state: `created`, `running`, `paused` or `exited`.
    pub fn docker_state(&self) -> &'static str {
        match self.status {
            Status::Running => "running",
            Status::Paused | Status::Pausing => "paused",
            Status::Stopped => "exited",
            Status::Created | Status::Unknown => "created",
        }
    }
}

/// The task of container `id`, or `None` when it has none.
pub async fn state(client: &Client, id: &str) -> anyhow::Result<Option<TaskState>> {
    let res = TasksClient::new(client.channel.clone())
        .get(client.request(GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await;
    match res {
        Ok(r) => Ok(r.into_inner().process.map(|p| TaskState {
            status: Status::try_from(p.status).unwrap_or(Status::Unknown),
            pid: p.pid,
            exit_status: p.exit_status,
            exited_at: p.exited_at,
        })),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(s).with_context(|| format!("getting the task of {id}")),
    }
}
