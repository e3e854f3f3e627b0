//! What images, containers and volumes take on disk, and which of it is in use: shared by
//! `system df` and `system prune`.

use std::collections::{HashMap, HashSet};

use berth_proto::berth::volumes::v1::Volume;
use containerd_client::services::v1::{Container, Image};

use crate::{client::Client, commands, human, image, lookup, task::TaskState};

/// One image and the blobs it is made of.
pub struct ImageUsage {
    /// The stored record.
    pub record: Image,
    /// The config digest: the image ID docker shows.
    pub id: String,
    /// Its blobs (index or manifest, config, layers) as digest → size.
    pub blobs: HashMap<String, i64>,
    /// How many containers were created from it.
    pub containers: usize,
}

/// One container, its task's state and the bytes its writable snapshot holds.
pub struct ContainerUsage {
    /// The record.
    pub container: Container,
    /// Its task, if it has one.
    pub task: Option<TaskState>,
    /// Bytes in its own snapshot layer.
    pub size: i64,
}

impl ContainerUsage {
    /// Whether the container is running or paused (not prunable).
    pub fn active(&self) -> bool {
        self.task
            .as_ref()
            .is_some_and(|t| matches!(t.docker_state(), "running" | "paused"))
    }
}

/// Every image of the namespace with its blobs; `containers` tells which are in use.
pub async fn images(client: &Client, containers: &[Container]) -> anyhow::Result<Vec<ImageUsage>> {
    let records = crate::image::list(client).await?;
    let mut out = Vec::new();
    for record in records {
        let mut blobs = HashMap::new();
        if let Some(target) = &record.target {
            blobs.insert(target.digest.clone(), target.size);
        }
        // An image of another platform, or one with missing blobs, counts its target only.
        let mut id = record
            .target
            .as_ref()
            .map(|t| t.digest.clone())
            .unwrap_or_default();
        if let Ok(resolved) = image::resolve(client, &record.name, None).await {
            let config = resolved.manifest.config();
            id = config.digest().to_string();
            blobs.insert(id.clone(), config.size() as i64);
            for layer in resolved.manifest.layers() {
                blobs.insert(layer.digest().to_string(), layer.size() as i64);
            }
        }
        let containers = containers.iter().filter(|c| c.image == record.name).count();
        out.push(ImageUsage {
            record,
            id,
            blobs,
            containers,
        });
    }
    Ok(out)
}

/// Total bytes of the images' distinct blobs, and the bytes that only unused images hold.
pub fn image_sizes(images: &[ImageUsage]) -> (i64, i64) {
    let mut all: HashMap<&str, i64> = HashMap::new();
    let mut used: HashSet<&str> = HashSet::new();
    for image in images {
        for (digest, size) in &image.blobs {
            all.insert(digest, *size);
            if image.containers > 0 {
                used.insert(digest);
            }
        }
    }
    let total = all.values().sum();
    let reclaimable = all
        .iter()
        .filter(|(d, _)| !used.contains(*d))
        .map(|(_, s)| s)
        .sum();
    (total, reclaimable)
}

/// An image's bytes shared with other images and its own, as `system df -v` shows them.
pub fn shared_and_unique(images: &[ImageUsage], index: usize) -> (i64, i64) {
    let mut shared = 0;
    let mut unique = 0;
    for (digest, size) in &images[index].blobs {
        let elsewhere = images
            .iter()
            .enumerate()
            .any(|(i, other)| i != index && other.blobs.contains_key(digest));
        if elsewhere {
            shared += size;
        } else {
            unique += size;
        }
    }
    (shared, unique)
}

/// Every container of the namespace with its task state and snapshot usage.
pub async fn containers(client: &Client) -> anyhow::Result<Vec<ContainerUsage>> {
    let mut out = Vec::new();
    let mut list = lookup::list(client, Vec::new()).await?;
    list.sort_by_key(|c| std::cmp::Reverse(human::time(c.created_at.as_ref())));
    for container in list {
        let task = crate::task::state(client, &container.id).await?;
        let size = if container.snapshot_key.is_empty() {
            0
        } else {
            commands::snapshot::usage(client, &container.snapshotter, &container.snapshot_key).await
        };
        out.push(ContainerUsage {
            container,
            task,
            size,
        });
    }
    Ok(out)
}

/// Every volume with its size; none when berthd has no volumes service.
pub async fn volumes(client: &Client) -> anyhow::Result<Vec<Volume>> {
    match commands::volume::list(client, true).await {
        Ok(v) => Ok(v),
        Err(e)
            if e.downcast_ref::<tonic::Status>()
                .is_some_and(|s| s.code() == tonic::Code::Unimplemented) =>
        {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}
