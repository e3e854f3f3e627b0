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
// Variants carry no doc comment: clap shows each `Args` doc with its `Example:` line.
enum Action {
    #[command(alias = "list")]
    Ls(images::Args),
    Inspect(ImageInspectArgs),
    #[command(alias = "remove", alias = "rmi")]
    Rm(rmi::Args),
    Tag(tag::Args),
    Pull(pull::Args),
    Push(push::Args),
    Save(archive::SaveArgs),
    Load(archive::LoadArgs),
    Import(archive::ImportArgs),
}

/// Show images' details as JSON (= `inspect --type image`).
///
/// Example: `berthctl image inspect -f '{{.Id}}' busybox`
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
