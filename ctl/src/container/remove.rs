//! Removing a container: its stopped task, its record and its snapshot (concurrently), and
//! with `-v` the anonymous volumes it used.

use std::time::Duration;

use anyhow::{Context as _, bail};
use berth_proto::{
    berth::volumes::v1::{GetVolumeRequest, RemoveVolumeRequest, volumes_client::VolumesClient},
    labels::berth::VOLUMES,
};
use containerd_client::{
    services::v1::{
        Container, DeleteContainerRequest, ResumeTaskRequest, containers_client::ContainersClient,
        tasks_client::TasksClient,
    },
    types::v1::Status,
};

use super::{create::remove_snapshot, process, signals};
use crate::{client::Client, lookup, task};

/// Removes `container`. A running (or paused) one is refused unless `force`, which kills
/// it first; `volumes` also removes the anonymous volumes it used.
pub async fn remove(
    client: &Client,
    container: &Container,
    force: bool,
    volumes: bool,
) -> anyhow::Result<()> {
    let id = container.id.as_str();
    if let Some(state) = task::state(client, id).await? {
        if state.status != Status::Stopped {
            if !force {
                bail!(
                    "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                    lookup::name_of(container),
                    state.docker_state()
                );
            }
            kill_and_wait(client, id).await?;
        }
        process::delete_task(client, id).await?;
    }
    delete(client, container).await?;
    if volumes {
        remove_anonymous_volumes(client, container).await;
    }
    Ok(())
}

/// Deletes the record and the snapshot of a container that has no task, concurrently.
pub async fn delete(client: &Client, container: &Container) -> anyhow::Result<()> {
    let record = async {
        let res = ContainersClient::new(client.channel.clone())
            .delete(client.request(DeleteContainerRequest {
                id: container.id.clone(),
            }))
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(s).context("deleting the container"),
        }
    };
    let snapshot = async {
        if !container.snapshot_key.is_empty() {
            remove_snapshot(client, &container.snapshotter, &container.snapshot_key).await;
        }
    };
    let (record, ()) = tokio::join!(record, snapshot);
    record
}

/// SIGKILLs the task of `id` and waits for its exit. A paused task is thawed first, as a
/// frozen process may not die.
pub async fn kill_and_wait(client: &Client, id: &str) -> anyhow::Result<()> {
    resume_if_paused(client, id).await?;
    let killed = signals::kill(client, id, "", 9).await;
    if let Err(e) = killed
        && task::state(client, id)
            .await?
            .is_some_and(|s| s.status != Status::Stopped)
    {
        return Err(e.context(format!("killing {}", lookup::short_id(id))));
    }
    tokio::time::timeout(Duration::from_secs(30), process::wait(client, id, ""))
        .await
        .with_context(|| format!("{} did not exit after SIGKILL", lookup::short_id(id)))??;
    Ok(())
}

/// Resumes the task of `id` if it is paused (one that is no longer paused is fine).
pub async fn resume_if_paused(client: &Client, id: &str) -> anyhow::Result<()> {
    let paused = task::state(client, id)
        .await?
        .is_some_and(|s| matches!(s.status, Status::Paused | Status::Pausing));
    if !paused {
        return Ok(());
    }
    let res = TasksClient::new(client.channel.clone())
        .resume(client.request(ResumeTaskRequest {
            container_id: id.to_string(),
        }))
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::FailedPrecondition => Ok(()),
        Err(s) => Err(s).context("resuming the paused container"),
    }
}

/// Removes the anonymous volumes named in the container's `berth.io/volumes` label (best
/// effort: a volume another container still uses stays).
pub async fn remove_anonymous_volumes(client: &Client, container: &Container) {
    let Some(names) = container.labels.get(VOLUMES) else {
        return;
    };
    let mut volumes = VolumesClient::new(client.channel.clone());
    for name in names.split(',').filter(|n| !n.is_empty()) {
        let anonymous = volumes
            .get(client.request(GetVolumeRequest {
                name: name.to_string(),
                with_size: false,
            }))
            .await
            .is_ok_and(|v| v.into_inner().anonymous);
        if anonymous {
            let _ = volumes
                .remove(client.request(RemoveVolumeRequest {
                    name: name.to_string(),
                    force: false,
                }))
                .await;
        }
    }
}
