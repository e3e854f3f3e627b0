//! `berthctl container ls|info|rm|label`: the low-level view of container records (like
//! `ctr containers`), with no task handling beyond what removal needs.

use anyhow::Context as _;
use containerd_client::services::v1::{
    Container, DeleteContainerRequest, DeleteTaskRequest, UpdateContainerRequest,
    containers_client::ContainersClient, snapshots::RemoveSnapshotRequest,
    snapshots::snapshots_client::SnapshotsClient, tasks_client::TasksClient,
};
use serde_json::{Value, json};

use crate::{
    client::Client,
    commands::namespace::parse_labels,
    human, lookup,
    output::{self, Format},
};

/// Work with container records directly (like `ctr containers`).
///
/// Example: `berthctl container ls -q`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List container records: CONTAINER IMAGE RUNTIME.
    ///
    /// Example: `berthctl container ls 'labels."berth.io/name"==web'`
    #[command(alias = "list")]
    Ls {
        /// containerd filters, e.g. `image~=busybox`.
        filters: Vec<String>,
        /// Print IDs only.
        #[arg(short, long)]
        quiet: bool,
        /// `table`, `json` or a Go template over ID, Image, Runtime, Labels, …
        #[arg(long)]
        format: Option<String>,
    },
    /// Show a container record as JSON (its spec decoded).
    ///
    /// Example: `berthctl container info web --format '{{.Snapshotter}}'`
    Info {
        /// Container ID, name or unique ID prefix.
        container: String,
        /// `json` or a Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Remove container records; the task must be gone (see `task rm`).
    ///
    /// Example: `berthctl container rm --snapshot 4f1c2a`
    #[command(alias = "remove", alias = "delete")]
    Rm {
        /// Container IDs, names or unique ID prefixes.
        #[arg(required = true)]
        containers: Vec<String>,
        /// Also remove the container's snapshot.
        #[arg(short, long)]
        snapshot: bool,
    },
    /// Show a container's labels, or set them (`KEY=VALUE`; `KEY=` removes one).
    ///
    /// Example: `berthctl container label web team=web tier=`
    Label {
        /// Container ID, name or unique ID prefix.
        container: String,
        /// Labels to set as KEY=VALUE.
        labels: Vec<String>,
    },
}

/// A container record as JSON, the spec decoded when it is the OCI spec.
pub fn to_json(c: &Container) -> Value {
    let spec = c.spec.as_ref().map(|any| {
        serde_json::from_slice::<Value>(&any.value)
            .unwrap_or_else(|_| json!({"type_url": any.type_url}))
    });
    json!({
        "ID": c.id,
        "Name": lookup::name_of(c),
        "Labels": c.labels,
        "Image": c.image,
        "Runtime": {
            "Name": c.runtime.as_ref().map(|r| r.name.as_str()).unwrap_or(""),
        },
        "SnapshotKey": c.snapshot_key,
        "Snapshotter": c.snapshotter,
        "CreatedAt": human::rfc3339(c.created_at.as_ref()),
        "UpdatedAt": human::rfc3339(c.updated_at.as_ref()),
        "Spec": spec,
        "Sandbox": c.sandbox,
    })
}

/// Removes a container the way berthctl does: its (stopped) task, its record, and its
/// snapshot when `with_snapshot`.
pub async fn remove(client: &Client, c: &Container, with_snapshot: bool) -> anyhow::Result<()> {
    if crate::task::state(client, &c.id).await?.is_some() {
        TasksClient::new(client.channel.clone())
            .delete(client.request(DeleteTaskRequest {
                container_id: c.id.clone(),
            }))
            .await
            .with_context(|| format!("deleting the task of {}", lookup::name_of(c)))?;
    }
    ContainersClient::new(client.channel.clone())
        .delete(client.request(DeleteContainerRequest { id: c.id.clone() }))
        .await
        .with_context(|| format!("removing container {}", lookup::name_of(c)))?;
    if with_snapshot && !c.snapshot_key.is_empty() {
        let res = SnapshotsClient::new(client.channel.clone())
            .remove(client.request(RemoveSnapshotRequest {
                snapshotter: c.snapshotter.clone(),
                key: c.snapshot_key.clone(),
            }))
            .await;
        match res {
            Ok(_) => {}
            Err(s) if s.code() == tonic::Code::NotFound => {}
            Err(s) => return Err(s).context("removing the container's snapshot"),
        }
    }
    Ok(())
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    match args.action {
        Action::Ls {
            filters,
            quiet,
            format,
        } => {
            let format = Format::parse(format.as_deref())?;
            let mut containers = lookup::list(client, filters).await?;
            containers.sort_by(|a, b| a.id.cmp(&b.id));
            if quiet {
                containers.iter().for_each(|c| println!("{}", c.id));
                return Ok(());
            }
            let items: Vec<Value> = containers.iter().map(to_json).collect();
            output::print_items(&format, &items, &["CONTAINER", "IMAGE", "RUNTIME"], |v| {
                vec![
                    v["ID"].as_str().unwrap_or("").into(),
                    v["Image"].as_str().unwrap_or("").into(),
                    v["Runtime"]["Name"].as_str().unwrap_or("").into(),
                ]
            });
        }
        Action::Info { container, format } => {
            let c = lookup::find(client, &container).await?;
            output::print_objects(&Format::parse(format.as_deref())?, &[to_json(&c)])?;
        }
        Action::Rm {
            containers,
            snapshot,
        } => {
            for reference in containers {
                let c = lookup::find(client, &reference).await?;
                if let Some(task) = crate::task::state(client, &c.id).await? {
                    anyhow::bail!(
                        "container {reference} still has a task ({}): remove it first with `berthctl task rm {}`",
                        task.docker_state(),
                        c.id
                    );
                }
                remove(client, &c, snapshot).await?;
                println!("{}", c.id);
            }
        }
        Action::Label { container, labels } => {
            let mut c = lookup::find(client, &container).await?;
            if !labels.is_empty() {
                let updates = parse_labels(&labels)?;
                let paths = updates.keys().map(|k| format!("labels.{k}")).collect();
                for (k, v) in updates {
                    if v.is_empty() {
                        c.labels.remove(&k);
                    } else {
                        c.labels.insert(k, v);
                    }
                }
                c = ContainersClient::new(client.channel.clone())
                    .update(client.request(UpdateContainerRequest {
                        container: Some(c),
                        update_mask: Some(prost_types::FieldMask { paths }),
                    }))
                    .await
                    .context("updating the labels")?
                    .into_inner()
                    .container
                    .context("berthd returned no container")?;
            }
            let mut pairs: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.sort();
            pairs.iter().for_each(|p| println!("{p}"));
        }
    }
    Ok(())
}
