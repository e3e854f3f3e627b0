//! `berthctl image …`: docker's image group, each verb an alias of the top-level one.

use crate::{
    client::Client,
    commands::{archive, images, inspect, pull, push, rmi, tag},
};

/// Manage images (`image ls`, `image inspect`, `image rm`, `image tag`, `image pull`, …).
///
/// Example: `berthctl image ls -q`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List images (= `images`).
    #[command(alias = "list")]
    Ls(images::Args),
    /// Show images' details as JSON (= `inspect --type image`).
    Inspect(ImageInspectArgs),
    /// Remove images (= `rmi`).
    #[command(alias = "remove", alias = "rmi")]
    Rm(rmi::Args),
    /// Give an image another name (= `tag`).
    Tag(tag::Args),
    /// Pull an image (= `pull`).
    Pull(pull::Args),
    /// Push an image (= `push`).
    Push(push::Args),
    /// Save images to a tarball (= `save`).
    Save(archive::SaveArgs),
    /// Load images from a tarball (= `load`).
    Load(archive::LoadArgs),
    /// Create an image from a root filesystem tarball (= `import`).
    Import(archive::ImportArgs),
}

/// Arguments of `image inspect`.
#[derive(clap::Args)]
struct ImageInspectArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
    /// Go template for each image, or json.
    #[arg(short, long)]
    format: Option<String>,
}

/// Runs the chosen verb.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    match args.action {
        Action::Ls(a) => images::run(a, client).await,
        Action::Inspect(a) => inspect::run_images(a.images, a.format, client).await,
        Action::Rm(a) => rmi::run(a, client).await,
        Action::Tag(a) => tag::run(a, client).await,
        Action::Pull(a) => pull::run(a, client).await,
        Action::Push(a) => push::run(a, client).await,
        Action::Save(a) => archive::save(a, client).await,
        Action::Load(a) => archive::load(a, client).await,
        Action::Import(a) => archive::import(a, client).await,
    }
}
