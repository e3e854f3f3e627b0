//! `berthctl rmi`: remove image records; the collector then frees what nothing references.

use anyhow::{Context as _, bail};
use containerd_client::services::v1::{DeleteImageRequest, Image, images_client::ImagesClient};

use crate::{
    client::Client,
    commands::{inspect::is_reference, tag},
    image, lookup,
};

/// Remove one or more images (refused while a container uses one, unless forced).
///
/// Example: `berthctl rmi busybox:1 localhost:5000/lab/busybox:stable`
#[derive(clap::Args)]
pub struct Args {
    /// Image names, or image IDs (config digests or their prefixes).
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove even if containers use the image, and every name of an image given by ID.
    #[arg(short, long)]
    force: bool,
}

/// The records an argument names: the image of that name, else every image whose config
/// digest starts with it (an image ID).
async fn records(client: &Client, arg: &str, all: &[Image]) -> anyhow::Result<Vec<Image>> {
    if let Ok(record) = tag::find(client, arg).await {
        return Ok(vec![record]);
    }
    let want = arg.strip_prefix("sha256:").unwrap_or(arg);
    if want.len() < 4 || !want.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("no such image: {arg}");
    }
    let mut found = Vec::new();
    for record in all {
        if let Ok(resolved) = image::resolve(client, &record.name, None).await {
            let id = resolved.manifest.config().digest().to_string();
            if id.trim_start_matches("sha256:").starts_with(want) {
                found.push(record.clone());
            }
        }
    }
    if found.is_empty() {
        bail!("no such image: {arg}");
    }
    Ok(found)
}

/// Runs `rmi`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let mut api = ImagesClient::new(client.channel.clone());
    let mut failed = 0;
    for arg in &args.images {
        if let Err(e) = remove(client, &mut api, arg, args.force).await {
            eprintln!("berthctl: {e:#}");
            failed += 1;
        }
    }
    if failed > 0 {
        bail!(
            "{failed} of {} images could not be removed",
            args.images.len()
        );
    }
    Ok(())
}

async fn remove(
    client: &Client,
    api: &mut ImagesClient<tonic::transport::Channel>,
    arg: &str,
    force: bool,
) -> anyhow::Result<()> {
    let all = image::list(client).await?;
    let targets = records(client, arg, &all).await?;
    if targets.len() > 1 && !force {
        bail!(
            "conflict: unable to delete {arg} (must be forced): the image is referenced by {} names",
            targets.len()
        );
    }
    let containers = lookup::list(client, Vec::new()).await?;
    for record in &targets {
        if !force && let Some(c) = containers.iter().find(|c| c.image == record.name) {
            bail!(
                "conflict: unable to remove {} (must force): container {} ({}) is using it",
                image::familiar(&record.name),
                lookup::short_id(&c.id),
                lookup::name_of(c)
            );
        }
    }
    for record in &targets {
        let id = image::resolve(client, &record.name, None)
            .await
            .map(|r| r.manifest.config().digest().to_string())
            .ok();
        api.delete(client.request(DeleteImageRequest {
            name: record.name.clone(),
            sync: true,
            target: None,
        }))
        .await
        .with_context(|| format!("removing {}", record.name))?;
        if is_reference(&record.name) {
            println!("Untagged: {}", image::familiar(&record.name));
        }
        let digest = record.target.as_ref().map(|t| t.digest.as_str());
        let still_named = all.iter().any(|i| {
            i.target.as_ref().map(|t| t.digest.as_str()) == digest
                && !targets.iter().any(|t| t.name == i.name)
        });
        if !still_named && let Some(id) = id.or(digest.map(str::to_string)) {
            println!("Deleted: {id}");
        }
    }
    Ok(())
}
