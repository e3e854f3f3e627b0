//! `berthctl inspect`: containers and images as JSON shaped like docker's, derived from the
//! container record, its OCI spec, its task, and the image's manifest and config.

use anyhow::bail;
use berth_proto::labels::{berth, restart};
use containerd_client::services::v1::{ListImagesRequest, images_client::ImagesClient};
use oci_spec::runtime::{Capability, Spec};
use serde_json::{Value, json};

use crate::{
    client::Client,
    commands::ps::{self, Entry},
    image::{self, ResolvedImage},
    lookup,
    output::{self, Format},
    task, when,
};

/// Show low-level details of containers or images as JSON.
///
/// Example: `berthctl inspect -f '{{.State.Status}}' web`
#[derive(clap::Args)]
pub struct Args {
    /// Containers or images (names or IDs).
    #[arg(required = true)]
    names: Vec<String>,
    /// Only look for this kind of object: container or image.
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Go template for each object (e.g. '{{.State.Pid}}'), or json.
    #[arg(short, long)]
    format: Option<String>,
}

/// Runs `inspect --type image` (`image inspect`).
pub async fn run_images(
    names: Vec<String>,
    format: Option<String>,
    client: &Client,
) -> anyhow::Result<()> {
    let args = Args {
        names,
        kind: Some("image".to_string()),
        format,
    };
    run(args, client).await
}

/// Runs `inspect`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let (containers, images) = match args.kind.as_deref() {
        None => (true, true),
        Some("container") => (true, false),
        Some("image") => (false, true),
        Some(other) => bail!("unknown --type {other:?}: use container or image"),
    };
    let mut objects = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        if containers && let Ok(c) = lookup::find(client, name).await {
            let task = task::state(client, &c.id).await?;
            objects.push(container_json(client, &Entry { container: c, task }).await);
            continue;
        }
        if images && let Ok(img) = image::resolve(client, name, None).await {
            objects.push(image_json(client, &img).await?);
            continue;
        }
        missing.push(name.clone());
    }
    output::print_objects(&format, &objects)?;
    if !missing.is_empty() {
        let what = match (containers, images) {
            (true, false) => "container",
            (false, true) => "image",
            _ => "object",
        };
        for name in &missing {
            eprintln!("berthctl: no such {what}: {name}");
        }
        bail!("{} of {} not found", missing.len(), args.names.len());
    }
    Ok(())
}

/// docker's capability names without `CAP_`.
fn cap_name(cap: &Capability) -> String {
    let s = serde_json::to_value(cap)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    s.trim_start_matches("CAP_").to_string()
}

/// CapAdd/CapDrop relative to docker's default set, and whether it looks privileged.
fn capabilities(spec: &Spec) -> (Vec<String>, Vec<String>, bool) {
    let bounding: Vec<String> = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .map(|set| set.iter().map(cap_name).collect())
        .unwrap_or_default();
    let default: Vec<String> = berth_spec::DEFAULT_CAPABILITIES
        .iter()
        .map(cap_name)
        .collect();
    let mut add: Vec<String> = bounding
        .iter()
        .filter(|c| !default.contains(c))
        .cloned()
        .collect();
    let mut drop: Vec<String> = default
        .iter()
        .filter(|c| !bounding.contains(c))
        .cloned()
        .collect();
    add.sort();
    drop.sort();
    let linux = spec.linux().as_ref();
    let privileged = bounding.len() >= berth_spec::all_capabilities().len()
        && linux.is_none_or(|l| l.seccomp().is_none())
        && linux.is_none_or(|l| l.masked_paths().as_ref().is_none_or(Vec::is_empty));
    (add, drop, privileged)
}

/// `on-failure:3` → (`on-failure`, 3); absent → `no`.
fn restart_policy(labels: &std::collections::HashMap<String, String>) -> (String, u64) {
    let policy = labels.get(restart::POLICY).map_or("no", String::as_str);
    match policy.split_once(':') {
        Some((name, n)) => (name.to_string(), n.parse().unwrap_or(0)),
        None => (policy.to_string(), 0),
    }
}

/// The container's mounts other than the runtime's own (`/proc`, `/dev`, …): binds and
/// volumes, as docker's `Mounts` and `HostConfig.Binds`.
fn mounts(spec: &Spec, volumes: &[&str]) -> (Vec<Value>, Vec<String>) {
    let mut list = Vec::new();
    let mut binds = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        let options = m.options().clone().unwrap_or_default();
        let is_bind = m.typ().as_deref() == Some("bind") || options.iter().any(|o| o == "rbind");
        if !is_bind {
            continue;
        }
        let source = m
            .source()
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_default();
        let dest = m.destination().display().to_string();
        let rw = !options.iter().any(|o| o == "ro");
        let volume = volumes
            .iter()
            .find(|v| source.contains(&format!("/{v}/")) || source.ends_with(&format!("/{v}")));
        let mut entry = json!({
            "Type": if volume.is_some() { "volume" } else { "bind" },
            "Source": source,
            "Destination": dest,
            "Mode": if rw { "" } else { "ro" },
            "RW": rw,
            "Propagation": options.iter().find(|o| o.contains("private") || o.contains("shared") || o.contains("slave")).cloned().unwrap_or_default(),
        });
        match volume {
            Some(name) => entry["Name"] = json!(name),
            None => binds.push(format!("{source}:{dest}{}", if rw { "" } else { ":ro" })),
        }
        list.push(entry);
    }
    (list, binds)
}

/// Splits the process args into docker's Entrypoint and Cmd when the image's entrypoint is
/// their prefix.
fn split_command(args: &[String], img: Option<&ResolvedImage>) -> (Value, Value) {
    let entrypoint: Vec<String> = img
        .and_then(|i| i.config.config().as_ref())
        .and_then(|c| c.entrypoint().clone())
        .unwrap_or_default();
    if !entrypoint.is_empty() && args.starts_with(&entrypoint) {
        return (json!(entrypoint), json!(args[entrypoint.len()..]));
    }
    (Value::Null, json!(args))
}

/// A container as docker's `inspect` shows it.
pub async fn container_json(client: &Client, entry: &Entry) -> Value {
    let c = &entry.container;
    let spec = ps::spec_of(c).unwrap_or_default();
    let args = ps::args_of(Some(&spec));
    let img = image::resolve(client, &c.image, None).await.ok();
    let image_id = img
        .as_ref()
        .map(|i| i.manifest.config().digest().to_string())
        .unwrap_or_else(|| c.image.clone());
    let process = spec.process().clone().unwrap_or_default();
    let user = process.user();
    let user = if user.uid() == 0 && user.gid() == 0 {
        String::new()
    } else {
        format!("{}:{}", user.uid(), user.gid())
    };
    let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
    let memory = resources
        .as_ref()
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .unwrap_or(0);
    let nano_cpus = resources
        .as_ref()
        .and_then(|r| r.cpu().as_ref())
        .and_then(|cpu| Some((cpu.quota()?, cpu.period()?)))
        .filter(|(q, p)| *q > 0 && *p > 0)
        .map_or(0, |(q, p)| q as u64 * 1_000_000_000 / p);
    let pids = resources
        .as_ref()
        .and_then(|r| r.pids().as_ref())
        .map(|p| p.limit())
        .filter(|l| *l > 0);
    let (cap_add, cap_drop, privileged) = capabilities(&spec);
    let volumes: Vec<&str> = c
        .labels
        .get(berth::VOLUMES)
        .map(|v| v.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let (mount_list, binds) = mounts(&spec, &volumes);
    let (policy, retries) = restart_policy(&c.labels);
    let (entrypoint, cmd) = split_command(&args, img.as_ref());
    let state = entry.state();
    let task = entry.task.as_ref();
    let pid = task
        .filter(|_| matches!(state, "running" | "paused"))
        .map_or(0, |t| t.pid);
    let mut config_labels = c.labels.clone();
    config_labels.retain(|k, _| !k.starts_with("containerd.io/restart."));
    json!({
        "Id": c.id,
        "Created": when::rfc3339(when::from_proto(c.created_at.as_ref())),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state,
            "Running": matches!(state, "running" | "paused"),
            "Paused": state == "paused",
            "Restarting": false,
            "OOMKilled": false,
            "Dead": false,
            "Pid": pid,
            "ExitCode": task.filter(|_| state == "exited").map_or(0, |t| t.exit_status),
            "Error": "",
            "StartedAt": when::rfc3339(entry.started_at()),
            "FinishedAt": when::rfc3339(entry.finished_at()),
        },
        "Image": image_id,
        "Name": format!("/{}", lookup::name_of(c)),
        "RestartCount": c.labels.get(restart::COUNT).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0),
        "Driver": c.snapshotter,
        "Platform": "linux",
        "HostConfig": {
            "Binds": binds,
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
            "AutoRemove": c.labels.get(berth::AUTO_REMOVE).is_some_and(|v| v == "true"),
            "Runtime": c.runtime.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
            "Memory": memory,
            "NanoCpus": nano_cpus,
            "PidsLimit": pids,
            "ReadonlyRootfs": spec.root().as_ref().and_then(|r| r.readonly()).unwrap_or(false),
            "CapAdd": cap_add,
            "CapDrop": cap_drop,
            "Privileged": privileged,
            "LogConfig": {"Type": c.labels.get(berth::LOG_DRIVER).cloned().unwrap_or_default()},
        },
        "Mounts": mount_list,
        "Config": {
            "Hostname": spec.hostname().clone().unwrap_or_default(),
            "User": user,
            "Env": process.env().clone().unwrap_or_default(),
            "Cmd": cmd,
            "Entrypoint": entrypoint,
            "WorkingDir": process.cwd().display().to_string(),
            "Labels": config_labels,
            "Image": entry.image(),
            "Tty": process.terminal().unwrap_or(false),
            "OpenStdin": false,
            "AttachStdin": false,
            "AttachStdout": false,
            "AttachStderr": false,
        },
        "GraphDriver": {"Name": c.snapshotter, "Data": {"SnapshotKey": c.snapshot_key}},
    })
}

/// An image as docker's `image inspect` shows it.
pub async fn image_json(client: &Client, img: &ResolvedImage) -> anyhow::Result<Value> {
    let target = img
        .record
        .target
        .as_ref()
        .map(|t| t.digest.clone())
        .unwrap_or_default();
    let all = ImagesClient::new(client.channel.clone())
        .list(client.request(ListImagesRequest {
            filters: Vec::new(),
        }))
        .await?
        .into_inner()
        .images;
    let names: Vec<String> = all
        .iter()
        .filter(|i| i.target.as_ref().is_some_and(|t| t.digest == target))
        .map(|i| i.name.clone())
        .collect();
    let repo_tags: Vec<String> = names
        .iter()
        .filter(|n| is_reference(n) && !n.contains('@'))
        .map(|n| image::familiar(n))
        .collect();
    let mut repo_digests: Vec<String> = names
        .iter()
        .filter(|n| is_reference(n))
        .map(|n| {
            let repo = repository(&image::familiar(n));
            format!("{repo}@{target}")
        })
        .collect();
    repo_digests.dedup();
    let config = serde_json::to_value(&img.config)?;
    let inner = config.get("config").cloned().unwrap_or(json!({}));
    let field = |k: &str| inner.get(k).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "Id": img.manifest.config().digest().to_string(),
        "RepoTags": repo_tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": config.get("history").and_then(Value::as_array).and_then(|h| h.last()).and_then(|h| h.get("comment")).cloned().unwrap_or(json!("")),
        "Created": config.get("created").cloned().unwrap_or(Value::Null),
        "Author": config.get("author").cloned().unwrap_or(json!("")),
        "Architecture": config.get("architecture").cloned().unwrap_or(Value::Null),
        "Variant": config.get("variant").cloned(),
        "Os": config.get("os").cloned().unwrap_or(Value::Null),
        "Size": img.size(),
        "Config": {
            "User": field("User"),
            "Env": field("Env"),
            "Cmd": field("Cmd"),
            "Entrypoint": field("Entrypoint"),
            "WorkingDir": field("WorkingDir"),
            "Labels": field("Labels"),
            "ExposedPorts": field("ExposedPorts"),
            "Volumes": field("Volumes"),
            "StopSignal": field("StopSignal"),
        },
        "RootFS": {
            "Type": "layers",
            "Layers": img.config.rootfs().diff_ids(),
        },
        "Metadata": {
            "ManifestDigest": img.manifest_digest,
            "Name": img.record.name,
        },
    }))
}

/// Whether a stored image name is a reference (`repo:tag` or `repo@digest`) rather than a
/// bare digest (what an untagged `commit` is stored as).
pub fn is_reference(name: &str) -> bool {
    !name.starts_with("sha256:") && !name.is_empty()
}

/// The repository part of a familiar reference (`busybox:1` → `busybox`).
pub fn repository(familiar: &str) -> String {
    if let Some((repo, _)) = familiar.split_once('@') {
        return repo.to_string();
    }
    let last_slash = familiar.rfind('/').map_or(0, |i| i + 1);
    match familiar[last_slash..].rfind(':') {
        Some(i) => familiar[..last_slash + i].to_string(),
        None => familiar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_policies() {
        assert_eq!(repository("busybox:1"), "busybox");
        assert_eq!(repository("localhost:5000/x/y:2"), "localhost:5000/x/y");
        assert_eq!(repository("a@sha256:ab"), "a");
        assert!(!is_reference("sha256:abc"));
        let labels = [(restart::POLICY.to_string(), "on-failure:3".to_string())]
            .into_iter()
            .collect();
        assert_eq!(restart_policy(&labels), ("on-failure".to_string(), 3));
        assert_eq!(restart_policy(&Default::default()), ("no".to_string(), 0));
    }
}
