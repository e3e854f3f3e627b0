//! `berthctl commit`: a container's changes become a new image.
//!
//! The differ writes the container snapshot's changes against a view of the image's top layer
//! as a gzip layer; a new config (one more diff ID and history entry) and manifest are written
//! with containerd's GC labels; the layer is applied onto a snapshot named by the new chain ID
//! (so the image runs at once); then the image record is created. Everything happens under a
//! lease, so the collector cannot take the new blobs before the image names them.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use containerd_client::{
    services::v1::{
        ApplyRequest, Container, CreateRequest, DeleteRequest, DiffRequest, Image, InfoRequest,
        PauseTaskRequest, ResumeTaskRequest, WriteAction, WriteContentRequest,
        content_client::ContentClient,
        diff_client::DiffClient,
        leases_client::LeasesClient,
        snapshots::{
            CommitSnapshotRequest, MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
            StatSnapshotRequest, ViewSnapshotRequest, snapshots_client::SnapshotsClient,
        },
        tasks_client::TasksClient,
    },
    types::{Descriptor, Mount},
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tonic::Request;

use crate::{
    client::Client,
    commands::tag,
    image::{self, ResolvedImage},
    lookup, task,
};

/// Media type of the new layer (what the differ writes).
const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The same layer's type in a Docker schema 2 manifest.
const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker schema 2 manifest media type.
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI manifest media type.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Create a new image from a container's changes.
///
/// Example: `berthctl commit -m "add config" web example.com/web:2`
#[derive(clap::Args)]
pub struct Args {
    /// The container.
    container: String,
    /// The new image's name (`repo[:tag]`); without it the image has no name but its ID.
    reference: Option<String>,
    /// Commit message (the history entry's comment).
    #[arg(short, long)]
    message: Option<String>,
    /// Author (e.g. "Jane <jane@example.com>").
    #[arg(short, long)]
    author: Option<String>,
    /// Pause a running container while committing (default true, as docker's).
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
}

/// A request in the client's namespace under `lease`.
fn leased<T>(client: &Client, lease: &str, msg: T) -> Request<T> {
    let mut req = client.request(msg);
    if let Ok(v) = lease.parse() {
        req.metadata_mut().insert("containerd-lease", v);
    }
    req
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Runs `commit`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let container = lookup::find(client, &args.container).await?;
    let base = image::resolve(client, &container.image, None)
        .await
        .with_context(|| {
            format!(
                "the container's image {} is needed to commit it",
                container.image
            )
        })?;
    let lease = format!("berthctl-commit-{}", lookup::new_id());
    let expire = chrono::Utc::now() + chrono::Duration::hours(1);
    let labels = HashMap::from([(
        "containerd.io/gc.expire".to_string(),
        expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )]);
    let mut leases = LeasesClient::new(client.channel.clone());
    leases
        .create(client.request(CreateRequest {
            id: lease.clone(),
            labels,
        }))
        .await
        .context("creating a lease for the commit")?;
    let paused = pause(client, &container, args.pause).await?;
    let result = commit(&args, client, &container, &base, &lease).await;
    if paused {
        let resumed = TasksClient::new(client.channel.clone())
            .resume(client.request(ResumeTaskRequest {
                container_id: container.id.clone(),
            }))
            .await;
        if let Err(e) = resumed {
            eprintln!("berthctl: resuming {}: {}", args.container, e.message());
        }
    }
    if let Err(e) = leases
        .delete(client.request(DeleteRequest {
            id: lease.clone(),
            sync: false,
        }))
        .await
    {
        eprintln!("berthctl: removing lease {lease}: {}", e.message());
    }
    println!("{}", result?);
    Ok(())
}

/// Pauses the container's task when it runs and pausing was asked for.
async fn pause(client: &Client, container: &Container, wanted: bool) -> anyhow::Result<bool> {
    if !wanted {
        return Ok(false);
    }
    let running = task::state(client, &container.id)
        .await?
        .is_some_and(|t| t.docker_state() == "running");
    if !running {
        return Ok(false);
    }
    TasksClient::new(client.channel.clone())
        .pause(client.request(PauseTaskRequest {
            container_id: container.id.clone(),
        }))
        .await
        .context("pausing the container (use --pause=false to commit it running)")?;
    Ok(true)
}

/// Writes the layer, config, manifest, snapshot and image; returns the config digest.
async fn commit(
    args: &Args,
    client: &Client,
    container: &Container,
    base: &ResolvedImage,
    lease: &str,
) -> anyhow::Result<String> {
    let snapshotter = if container.snapshotter.is_empty() {
        "overlayfs".to_string()
    } else {
        container.snapshotter.clone()
    };
    let layer = diff_layer(client, container, base, &snapshotter, lease).await?;
    let diff_id = uncompressed_digest(client, &layer.digest).await?;

    let mut diff_ids: Vec<String> = base.config.rootfs().diff_ids().clone();
    diff_ids.push(diff_id.clone());
    let chain = image::chain_id(&diff_ids);
    let config = new_config(client, base, &diff_id, args).await?;
    let config_digest = sha256(&config);
    let config_labels = HashMap::from([(
        format!("containerd.io/gc.ref.snapshot.{snapshotter}"),
        chain.clone(),
    )]);
    write_blob(client, lease, &config, &config_digest, config_labels).await?;

    let (manifest, media_type, layer_digests) =
        new_manifest(client, base, &config_digest, config.len(), &layer).await?;
    let manifest_digest = sha256(&manifest);
    let mut manifest_labels = HashMap::from([(
        "containerd.io/gc.ref.content.config".to_string(),
        config_digest.clone(),
    )]);
    for (i, digest) in layer_digests.iter().enumerate() {
        manifest_labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            digest.clone(),
        );
    }
    write_blob(client, lease, &manifest, &manifest_digest, manifest_labels).await?;

    unpack(client, lease, &snapshotter, &base.chain_id, &chain, &layer).await?;

    let name = match &args.reference {
        Some(r) => {
            let name = image::normalize(r);
            if name.contains('@') {
                bail!("the new image's name cannot be a digest reference: {r}");
            }
            name
        }
        None => config_digest.clone(),
    };
    tag::store(
        client,
        Image {
            name,
            labels: HashMap::new(),
            target: Some(Descriptor {
                media_type,
                digest: manifest_digest,
                size: manifest.len() as i64,
                annotations: HashMap::new(),
            }),
            created_at: None,
            updated_at: None,
        },
    )
    .await?;
    Ok(config_digest)
}

/// Diffs the container's snapshot against a view of its image's top layer.
async fn diff_layer(
    client: &Client,
    container: &Container,
    base: &ResolvedImage,
    snapshotter: &str,
    lease: &str,
) -> anyhow::Result<Descriptor> {
    let mut snapshots = SnapshotsClient::new(client.channel.clone());
    let upper = snapshots
        .mounts(client.request(MountsRequest {
            snapshotter: snapshotter.to_string(),
            key: container.snapshot_key.clone(),
        }))
        .await
        .with_context(|| format!("getting the mounts of {}", container.snapshot_key))?
        .into_inner()
        .mounts;
    let view = format!("berthctl-commit-view-{}", lookup::new_id());
    let lower = snapshots
        .view(leased(
            client,
            lease,
            ViewSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: view.clone(),
                parent: base.chain_id.clone(),
                labels: HashMap::new(),
            },
        ))
        .await
        .with_context(|| format!("viewing the image's layers ({})", base.chain_id))?
        .into_inner()
        .mounts;
    let diff = DiffClient::new(client.channel.clone())
        .diff(leased(
            client,
            lease,
            DiffRequest {
                left: lower,
                right: upper,
                media_type: LAYER_GZIP.to_string(),
                r#ref: format!("berthctl-commit-{}", container.id),
                labels: HashMap::new(),
                source_date_epoch: None,
            },
        ))
        .await;
    let removed = snapshots
        .remove(client.request(RemoveSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: view,
        }))
        .await;
    let diff = diff
        .context("computing the container's changes")?
        .into_inner()
        .diff
        .context("the differ returned no layer")?;
    if let Err(e) = removed {
        eprintln!("berthctl: removing the temporary view: {}", e.message());
    }
    Ok(diff)
}

/// The diff ID of a compressed layer, from its `containerd.io/uncompressed` label.
async fn uncompressed_digest(client: &Client, digest: &str) -> anyhow::Result<String> {
    let info = ContentClient::new(client.channel.clone())
        .info(client.request(InfoRequest {
            digest: digest.to_string(),
        }))
        .await
        .with_context(|| format!("reading the labels of layer {digest}"))?
        .into_inner()
        .info
        .context("berthd returned no content info")?;
    info.labels
        .get("containerd.io/uncompressed")
        .cloned()
        .with_context(|| format!("layer {digest} has no uncompressed digest label"))
}

/// The base config with the new layer's diff ID and a history entry for it.
async fn new_config(
    client: &Client,
    base: &ResolvedImage,
    diff_id: &str,
    args: &Args,
) -> anyhow::Result<Vec<u8>> {
    let digest = base.manifest.config().digest().to_string();
    let mut config: Value = serde_json::from_slice(&image::read_blob(client, &digest).await?)
        .with_context(|| format!("parsing image config {digest}"))?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let layers = base.config.rootfs().diff_ids().len();
    let Some(obj) = config.as_object_mut() else {
        bail!("image config {digest} is not a JSON object");
    };
    let rootfs = obj
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
        Some(ids) => ids.push(json!(diff_id)),
        None => rootfs["diff_ids"] = json!([diff_id]),
    }
    let history = obj.entry("history").or_insert_with(|| json!([]));
    if !history.is_array() {
        *history = json!([]);
    }
    if let Some(entries) = history.as_array_mut() {
        // Keep history aligned with the layers: one entry per non-empty layer.
        let non_empty = entries
            .iter()
            .filter(|h| {
                !h.get("empty_layer")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            })
            .count();
        for _ in non_empty..layers {
            entries.push(json!({"created_by": ""}));
        }
        let mut entry = json!({"created": now, "created_by": "berthctl commit"});
        if let Some(author) = &args.author {
            entry["author"] = json!(author);
        }
        if let Some(message) = &args.message {
            entry["comment"] = json!(message);
        }
        entries.push(entry);
    }
    obj.insert("created".to_string(), json!(now));
    if let Some(author) = &args.author {
        obj.insert("author".to_string(), json!(author));
    }
    Ok(serde_json::to_vec(&config)?)
}

/// The base manifest pointing at the new config, with the new layer appended; returns the
/// bytes, the media type and the digests of all layers (for the GC labels).
async fn new_manifest(
    client: &Client,
    base: &ResolvedImage,
    config_digest: &str,
    config_size: usize,
    layer: &Descriptor,
) -> anyhow::Result<(Vec<u8>, String, Vec<String>)> {
    let mut manifest: Value =
        serde_json::from_slice(&image::read_blob(client, &base.manifest_digest).await?)
            .with_context(|| format!("parsing manifest {}", base.manifest_digest))?;
    let media_type = manifest
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(OCI_MANIFEST)
        .to_string();
    let layer_type = if media_type == DOCKER_MANIFEST {
        DOCKER_LAYER_GZIP
    } else {
        LAYER_GZIP
    };
    manifest["config"]["digest"] = json!(config_digest);
    manifest["config"]["size"] = json!(config_size);
    let new_layer = json!({"mediaType": layer_type, "digest": layer.digest, "size": layer.size});
    match manifest.get_mut("layers").and_then(Value::as_array_mut) {
        Some(layers) => layers.push(new_layer),
        None => manifest["layers"] = json!([new_layer]),
    }
    let digests = manifest["layers"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|d| d.get("digest").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok((serde_json::to_vec(&manifest)?, media_type, digests))
}

/// Writes a blob in one committing message; an existing blob is fine.
async fn write_blob(
    client: &Client,
    lease: &str,
    data: &[u8],
    digest: &str,
    labels: HashMap<String, String>,
) -> anyhow::Result<()> {
    let req = WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: format!("berthctl-commit-{digest}"),
        total: data.len() as i64,
        expected: digest.to_string(),
        offset: 0,
        data: data.to_vec(),
        labels,
    };
    let stream = tokio_stream::iter(vec![req]);
    let res = ContentClient::new(client.channel.clone())
        .write(leased(client, lease, stream))
        .await;
    let mut responses = match res {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(()),
        Err(s) => return Err(s).with_context(|| format!("writing {digest}")),
    };
    loop {
        match responses.message().await {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(()),
            Err(s) if s.code() == tonic::Code::AlreadyExists => return Ok(()),
            Err(s) => return Err(s).with_context(|| format!("writing {digest}")),
        }
    }
}

/// Applies the new layer onto a snapshot named by the new chain ID, unless it exists.
async fn unpack(
    client: &Client,
    lease: &str,
    snapshotter: &str,
    parent: &str,
    chain: &str,
    layer: &Descriptor,
) -> anyhow::Result<()> {
    let mut snapshots = SnapshotsClient::new(client.channel.clone());
    let exists = snapshots
        .stat(client.request(StatSnapshotRequest {
            snapshotter: snapshotter.to_string(),
            key: chain.to_string(),
        }))
        .await
        .is_ok();
    if exists {
        return Ok(());
    }
    let key = format!("berthctl-unpack-{}", lookup::new_id());
    let mounts: Vec<Mount> = snapshots
        .prepare(leased(
            client,
            lease,
            PrepareSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key: key.clone(),
                parent: parent.to_string(),
                labels: HashMap::new(),
            },
        ))
        .await
        .context("preparing a snapshot for the new layer")?
        .into_inner()
        .mounts;
    let applied = DiffClient::new(client.channel.clone())
        .apply(client.request(ApplyRequest {
            diff: Some(Descriptor {
                media_type: LAYER_GZIP.to_string(),
                ..layer.clone()
            }),
            mounts,
            payloads: HashMap::new(),
            sync_fs: false,
        }))
        .await
        .context("applying the new layer");
    let committed = match applied {
        Ok(_) => snapshots
            .commit(leased(
                client,
                lease,
                CommitSnapshotRequest {
                    snapshotter: snapshotter.to_string(),
                    name: chain.to_string(),
                    key: key.clone(),
                    labels: HashMap::new(),
                },
            ))
            .await
            .context("committing the new layer's snapshot")
            .map(|_| ()),
        Err(e) => Err(e),
    };
    if committed.is_err() {
        let _ = snapshots
            .remove(client.request(RemoveSnapshotRequest {
                snapshotter: snapshotter.to_string(),
                key,
            }))
            .await;
    }
    committed
}
