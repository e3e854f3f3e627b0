//! `berthctl tag`: another name for the same image (a new image record, same target).

use anyhow::Context as _;
use containerd_client::services::v1::{
    CreateImageRequest, Image, UpdateImageRequest, images_client::ImagesClient,
};

use crate::{client::Client, image};

/// Create a tag TARGET that refers to SOURCE.
///
/// Example: `berthctl tag busybox:1 localhost:5000/lab/busybox:stable`
#[derive(clap::Args)]
pub struct Args {
    /// The existing image.
    source: String,
    /// The new name (`repo[:tag]`; `busybox` means `docker.io/library/busybox:latest`).
    target: String,
}

/// Stores `image`, replacing the target of an existing record of that name.
pub async fn store(client: &Client, image: Image) -> anyhow::Result<()> {
    let mut api = ImagesClient::new(client.channel.clone());
    let name = image.name.clone();
    let created = api
        .create(client.request(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await;
    match created {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::AlreadyExists => {
            api.update(client.request(UpdateImageRequest {
                image: Some(image),
                update_mask: None,
                source_date_epoch: None,
            }))
            .await
            .with_context(|| format!("updating image {name}"))?;
            Ok(())
        }
        Err(s) => Err(s).with_context(|| format!("creating image {name}")),
    }
}

/// Finds a stored image by the name as given or its normalized form.
pub async fn find(client: &Client, name: &str) -> anyhow::Result<Image> {
    match image::get(client, name).await {
        Ok(record) => Ok(record),
        Err(first) => image::get(client, &image::normalize(name))
            .await
            .map_err(|_| first),
    }
}

/// Runs `tag`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let source = find(client, &args.source).await?;
    let name = image::normalize(&args.target);
    if name.contains('@') {
        anyhow::bail!("a tag cannot be a digest reference: {}", args.target);
    }
    store(
        client,
        Image {
            name,
            labels: source.labels,
            target: source.target,
            created_at: None,
            updated_at: None,
        },
    )
    .await
}
