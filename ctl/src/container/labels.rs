//! Changing a container's labels in place (`Containers.Update` with a field mask naming only
//! the labels touched): names, and the restart monitor's status labels.

use std::collections::HashMap;

use anyhow::Context as _;
use berth_proto::labels::restart;
use containerd_client::services::v1::{
    Container, UpdateContainerRequest, containers_client::ContainersClient,
};

use crate::client::Client;

/// Sets (`Some`) or removes (`None`) `labels` on container `id`, leaving every other field
/// and label as it is.
pub async fn set(client: &Client, id: &str, labels: &[(&str, Option<&str>)]) -> anyhow::Result<()> {
    let container = Container {
        id: id.to_string(),
        labels: labels
            .iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string())))
            .collect::<HashMap<_, _>>(),
        ..Default::default()
    };
    let paths = labels.iter().map(|(k, _)| format!("labels.{k}")).collect();
    ContainersClient::new(client.channel.clone())
        .update(client.request(UpdateContainerRequest {
            container: Some(container),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .context("updating the container's labels")?;
    Ok(())
}

/// Whether the container has a restart policy other than `no`.
pub fn has_restart_policy(container: &Container) -> bool {
    container
        .labels
        .get(restart::POLICY)
        .is_some_and(|p| !p.is_empty() && p != "no")
}

/// Tells the restart monitor to leave the container stopped (before stopping it, so the
/// monitor does not bring it back).
pub async fn mark_stopped(client: &Client, container: &Container) -> anyhow::Result<()> {
    if !has_restart_policy(container) {
        return Ok(());
    }
    set(
        client,
        &container.id,
        &[
            (restart::STATUS, Some("stopped")),
            (restart::EXPLICITLY_STOPPED, Some("true")),
        ],
    )
    .await
}

/// Tells the restart monitor to keep the container running (on `start`).
pub async fn mark_running(client: &Client, container: &Container) -> anyhow::Result<()> {
    if !has_restart_policy(container) {
        return Ok(());
    }
    set(
        client,
        &container.id,
        &[
            (restart::STATUS, Some("running")),
            (restart::EXPLICITLY_STOPPED, None),
        ],
    )
    .await
}
