//! `berthctl system prune`: remove stopped containers, and unused images and volumes when
//! asked (like `docker system prune`).

use anyhow::Context as _;
use berth_proto::berth::volumes::v1::{PruneVolumesRequest, volumes_client::VolumesClient};
use containerd_client::services::v1::{DeleteImageRequest, images_client::ImagesClient};

use super::usage;
use crate::{client::Client, commands::container, human, image};

/// Remove stopped containers (task, record and snapshot); with `-a` also images no container
/// uses, with `--volumes` also volumes no container uses.
///
/// Example: `berthctl system prune -a --volumes -f`
#[derive(clap::Args)]
pub struct Args {
    /// Also remove every image no container uses.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Also remove volumes no container uses (anonymous ones; all of them with `-a`).
    #[arg(long)]
    volumes: bool,
}

/// Prunes and reports what went and the space reclaimed.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let mut warning = String::from("WARNING! This will remove:\n  - all stopped containers");
    if args.volumes {
        warning.push_str("\n  - all volumes not used by at least one container");
    }
    if args.all {
        warning.push_str("\n  - all images without at least one container associated to them");
    }
    if !human::confirm(&warning, args.force)? {
        return Ok(());
    }
    let mut reclaimed: u64 = 0;

    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for c in usage::containers(client).await? {
        if c.active() {
            kept.push(c.container);
            continue;
        }
        container::remove(client, &c.container, true).await?;
        reclaimed += c.size.max(0) as u64;
        removed.push(c.container.id);
    }
    if !removed.is_empty() {
        println!("Deleted Containers:");
        removed.iter().for_each(|id| println!("{id}"));
        println!();
    }

    if args.volumes {
        let res = VolumesClient::new(client.channel.clone())
            .prune(client.request(PruneVolumesRequest { all: args.all }))
            .await;
        match res {
            Ok(r) => {
                let r = r.into_inner();
                if !r.removed.is_empty() {
                    println!("Deleted Volumes:");
                    r.removed.iter().for_each(|n| println!("{n}"));
                    println!();
                }
                reclaimed += r.space_reclaimed;
            }
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                eprintln!("berthctl: this berthd has no volumes service: no volume pruned");
            }
            Err(s) => return Err(s).context("pruning volumes"),
        }
    }

    if args.all {
        let images = usage::images(client, &kept).await?;
        let (before, _) = usage::image_sizes(&images);
        let (unused, used): (Vec<_>, Vec<_>) = images.into_iter().partition(|i| i.containers == 0);
        let (after, _) = usage::image_sizes(&used);
        let mut deleted = Vec::new();
        for img in &unused {
            ImagesClient::new(client.channel.clone())
                .delete(client.request(DeleteImageRequest {
                    name: img.record.name.clone(),
                    sync: true,
                    target: None,
                }))
                .await
                .with_context(|| format!("removing image {}", img.record.name))?;
            deleted.push(image::familiar(&img.record.name));
        }
        if !deleted.is_empty() {
            println!("Deleted Images:");
            deleted.iter().for_each(|n| println!("untagged: {n}"));
            println!();
        }
        reclaimed += (before - after).max(0) as u64;
    }

    println!("Total reclaimed space: {}", human::size(reclaimed));
    Ok(())
}
