//! `berthctl events`: the daemon's event stream, one line per event, until interrupted.

use std::collections::HashMap;

use anyhow::Context as _;
use containerd_client::{
    events as ev,
    services::v1::{SubscribeRequest, events_client::EventsClient},
    types::Envelope,
};
use prost::Message as _;
use serde_json::{Value, json};

use crate::{
    client::Client,
    filters::Filters,
    human, lookup,
    output::{self, Format},
};

/// Stream the daemon's events (like `ctr events`) until interrupted.
///
/// Each line reads `TIME NAMESPACE TOPIC PAYLOAD`, the payload decoded to JSON. Filters are
/// either containerd's (`topic~="/tasks/"`, sent to the daemon) or docker-style
/// (`type=container`, `event=start`, `container=NAME`, matched here); repeat `--filter` to
/// combine.
///
/// Example: `berthctl events --filter type=container --filter event=start`
#[derive(clap::Args)]
pub struct Args {
    /// A containerd filter (`topic~="/tasks/"`) or `type=`, `event=`, `container=`.
    #[arg(short, long = "filter")]
    filters: Vec<String>,
    /// `json` (or `{{json .}}`) or a Go template over Time, Namespace, Topic, Type, Event.
    #[arg(long)]
    format: Option<String>,
    /// Show events of every namespace, not only the current one.
    #[arg(short = 'A', long)]
    all_namespaces: bool,
}

/// docker-style filter keys, matched client-side.
const DOCKER_KEYS: [&str; 3] = ["type", "event", "container"];

/// Splits filters into containerd ones (for the daemon) and docker-style ones.
fn split_filters(filters: Vec<String>) -> anyhow::Result<(Vec<String>, Filters)> {
    let (docker, containerd): (Vec<String>, Vec<String>) = filters.into_iter().partition(|f| {
        f.split_once('=').is_some_and(|(k, v)| {
            DOCKER_KEYS.contains(&k) && !v.starts_with('=') && !k.ends_with(['!', '~'])
        })
    });
    Ok((containerd, Filters::parse(&docker, &DOCKER_KEYS)?))
}

/// A field of an event payload as JSON.
trait Field {
    fn value(&self) -> Value;
}

impl Field for String {
    fn value(&self) -> Value {
        json!(self)
    }
}

impl Field for u32 {
    fn value(&self) -> Value {
        json!(self)
    }
}

impl Field for i64 {
    fn value(&self) -> Value {
        json!(self)
    }
}

impl Field for HashMap<String, String> {
    fn value(&self) -> Value {
        json!(self)
    }
}

impl Field for Option<prost_types::Timestamp> {
    fn value(&self) -> Value {
        json!(human::rfc3339(self.as_ref()))
    }
}

impl Field for Option<ev::container_create::Runtime> {
    fn value(&self) -> Value {
        json!(self.as_ref().map(|r| r.name.as_str()).unwrap_or(""))
    }
}

/// Decodes `bytes` as message `$ty` and gathers the named fields into a JSON object.
macro_rules! fields {
    ($bytes:expr, $ty:ty, [$($field:ident),*]) => {
        <$ty>::decode($bytes).map(|m| {
            let mut map = serde_json::Map::new();
            $(map.insert(stringify!($field).to_string(), Field::value(&m.$field));)*
            Value::Object(map)
        })
    };
}

/// The payload of an event as JSON fields, for the payload types containerd defines.
fn payload(any: &prost_types::Any) -> Value {
    use containerd_client::services::v1::{ImageCreate, ImageDelete, ImageUpdate};
    let name = any
        .type_url
        .rsplit('/')
        .next()
        .unwrap_or(&any.type_url)
        .trim_start_matches("containerd.events.")
        .trim_start_matches("containerd.services.images.v1.");
    let bytes = any.value.as_slice();
    let decoded = match name {
        "ContainerCreate" => fields!(bytes, ev::ContainerCreate, [id, image, runtime]),
        "ContainerUpdate" => fields!(
            bytes,
            ev::ContainerUpdate,
            [id, image, labels, snapshot_key]
        ),
        "ContainerDelete" => fields!(bytes, ev::ContainerDelete, [id]),
        "ContentCreate" => fields!(bytes, ev::ContentCreate, [digest, size]),
        "ContentDelete" => fields!(bytes, ev::ContentDelete, [digest]),
        "NamespaceCreate" => fields!(bytes, ev::NamespaceCreate, [name, labels]),
        "NamespaceUpdate" => fields!(bytes, ev::NamespaceUpdate, [name, labels]),
        "NamespaceDelete" => fields!(bytes, ev::NamespaceDelete, [name]),
        "SnapshotPrepare" => fields!(bytes, ev::SnapshotPrepare, [key, parent, snapshotter]),
        "SnapshotCommit" => fields!(bytes, ev::SnapshotCommit, [key, name, snapshotter]),
        "SnapshotRemove" => fields!(bytes, ev::SnapshotRemove, [key, snapshotter]),
        "TaskCreate" => fields!(bytes, ev::TaskCreate, [container_id, bundle, pid]),
        "TaskStart" => fields!(bytes, ev::TaskStart, [container_id, pid]),
        "TaskDelete" => fields!(
            bytes,
            ev::TaskDelete,
            [container_id, id, pid, exit_status, exited_at]
        ),
        "TaskExit" => fields!(
            bytes,
            ev::TaskExit,
            [container_id, id, pid, exit_status, exited_at]
        ),
        "TaskOOM" => fields!(bytes, ev::TaskOom, [container_id]),
        "TaskExecAdded" => fields!(bytes, ev::TaskExecAdded, [container_id, exec_id]),
        "TaskExecStarted" => fields!(bytes, ev::TaskExecStarted, [container_id, exec_id, pid]),
        "TaskPaused" => fields!(bytes, ev::TaskPaused, [container_id]),
        "TaskResumed" => fields!(bytes, ev::TaskResumed, [container_id]),
        "TaskCheckpointed" => fields!(bytes, ev::TaskCheckpointed, [container_id, checkpoint]),
        "ImageCreate" => fields!(bytes, ImageCreate, [name, labels]),
        "ImageUpdate" => fields!(bytes, ImageUpdate, [name, labels]),
        "ImageDelete" => fields!(bytes, ImageDelete, [name]),
        _ => return json!({}),
    };
    decoded.unwrap_or_else(|_| json!({}))
}

/// An event as the templates and `--format json` see it.
fn to_json(envelope: &Envelope) -> Value {
    let event = envelope.event.as_ref();
    json!({
        "Time": human::time(envelope.timestamp.as_ref())
            .format("%Y-%m-%d %H:%M:%S%.9f +0000 UTC")
            .to_string(),
        "Namespace": envelope.namespace,
        "Topic": envelope.topic,
        "Type": event.map(|a| a.type_url.as_str()).unwrap_or(""),
        "Event": event.map(payload).unwrap_or_else(|| json!({})),
    })
}

/// Whether docker-style filters accept the event; `containers` are the IDs that
/// `container=` options resolved to.
fn accepts(filters: &Filters, containers: &[String], item: &Value) -> bool {
    let topic = item["Topic"].as_str().unwrap_or("");
    let kind = topic
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    let action = topic.rsplit('/').next().unwrap_or("");
    let event = &item["Event"];
    let id = event["container_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            (kind == "containers")
                .then(|| event["id"].as_str())
                .flatten()
        })
        .unwrap_or("");
    filters.accepts("type", |want| match want {
        // docker's container events include what happens to the container's task.
        "container" => kind == "containers" || kind == "tasks",
        other => kind.trim_end_matches('s') == other.trim_end_matches('s'),
    }) && filters.accepts("event", |want| {
        want == action
            || (want == "die" && action == "exit")
            || (want == "destroy" && action == "delete")
    }) && (containers.is_empty() || containers.iter().any(|c| c == id))
}

/// Subscribes and prints events until the stream ends or the user interrupts.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let (containerd_filters, docker_filters) = split_filters(args.filters)?;
    let mut containers = Vec::new();
    for option in docker_filters.values("container") {
        // A container not created yet is matched by the ID given.
        match lookup::find(client, option).await {
            Ok(c) => containers.push(c.id),
            Err(_) => containers.push(option.clone()),
        }
    }
    let mut stream = EventsClient::new(client.channel.clone())
        .subscribe(client.request(SubscribeRequest {
            filters: containerd_filters,
        }))
        .await
        .context("subscribing to events")?
        .into_inner();
    let namespace = client.namespace().to_string();
    while let Some(envelope) = stream.message().await.context("reading events")? {
        if !args.all_namespaces && envelope.namespace != namespace {
            continue;
        }
        let item = to_json(&envelope);
        if !accepts(&docker_filters, &containers, &item) {
            continue;
        }
        match &format {
            Format::Table => println!(
                "{} {} {} {}",
                item["Time"].as_str().unwrap_or(""),
                envelope.namespace,
                envelope.topic,
                item["Event"]
            ),
            other => output::print_objects(other, std::slice::from_ref(&item))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_containerd_and_docker_filters() {
        let (c, d) = split_filters(vec![
            r#"topic~="/tasks/""#.into(),
            "type=container".into(),
            "namespace==default".into(),
        ])
        .unwrap();
        assert_eq!(c.len(), 2);
        assert!(d.accepts("type", |v| v == "container"));
    }

    #[test]
    fn decodes_and_matches_task_start() {
        let any = berth_proto::to_any(&ev::TaskStart {
            container_id: "web".into(),
            pid: 42,
        });
        let item = to_json(&Envelope {
            timestamp: None,
            namespace: "default".into(),
            topic: "/tasks/start".into(),
            event: Some(any),
        });
        assert_eq!(item["Event"], json!({"container_id": "web", "pid": 42}));
        let (_, f) = split_filters(vec!["type=container".into(), "event=start".into()]).unwrap();
        assert!(accepts(&f, &["web".into()], &item));
        assert!(!accepts(&f, &["db".into()], &item));
        let (_, f) = split_filters(vec!["event=die".into()]).unwrap();
        assert!(!accepts(&f, &[], &item));
    }
}
