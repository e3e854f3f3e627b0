//! `berthctl system df`: disk usage by images, containers and volumes (like `docker system df`).

use serde_json::{Value, json};

use super::usage;
use crate::{
    client::Client,
    human, image, lookup,
    output::{self, Format},
};

/// Show disk usage: TYPE TOTAL ACTIVE SIZE RECLAIMABLE.
///
/// Images count their distinct blobs; containers their writable snapshot; volumes their data.
///
/// Example: `berthctl system df -v`
#[derive(clap::Args)]
pub struct Args {
    /// Show every image, container and volume too.
    #[arg(short, long)]
    verbose: bool,
    /// `table`, `json` or a Go template over Type, TotalCount, Active, Size, Reclaimable.
    #[arg(long)]
    format: Option<String>,
}

fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 {
        return "0B".into();
    }
    format!(
        "{} ({}%)",
        human::size(part.max(0) as u64),
        part * 100 / whole
    )
}

fn row(kind: &str, total: usize, active: usize, size: i64, reclaimable: i64) -> Value {
    json!({
        "Type": kind,
        "TotalCount": total,
        "Active": active,
        "Size": human::size(size.max(0) as u64),
        "Reclaimable": percent(reclaimable, size),
    })
}

/// Prints the summary table and, with `-v`, the details.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let containers = usage::containers(client).await?;
    let records: Vec<_> = containers.iter().map(|c| c.container.clone()).collect();
    let images = usage::images(client, &records).await?;
    let volumes = usage::volumes(client).await?;

    let (image_size, image_reclaimable) = usage::image_sizes(&images);
    let container_size: i64 = containers.iter().map(|c| c.size).sum();
    let container_reclaimable: i64 = containers
        .iter()
        .filter(|c| !c.active())
        .map(|c| c.size)
        .sum();
    let volume_size: i64 = volumes.iter().map(|v| v.size.max(0)).sum();
    let volume_reclaimable: i64 = volumes
        .iter()
        .filter(|v| v.used_by.is_empty())
        .map(|v| v.size.max(0))
        .sum();
    let rows = [
        row(
            "Images",
            images.len(),
            images.iter().filter(|i| i.containers > 0).count(),
            image_size,
            image_reclaimable,
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| c.active()).count(),
            container_size,
            container_reclaimable,
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|v| !v.used_by.is_empty()).count(),
            volume_size,
            volume_reclaimable,
        ),
    ];
    let cells = |v: &Value| -> Vec<String> {
        ["Type", "TotalCount", "Active", "Size", "Reclaimable"]
            .iter()
            .map(|k| match &v[*k] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect()
    };
    if !args.verbose {
        output::print_items(
            &format,
            &rows,
            &["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"],
            cells,
        );
        return Ok(());
    }

    println!("Images space usage:\n");
    let image_rows: Vec<Vec<String>> = images
        .iter()
        .enumerate()
        .map(|(i, img)| {
            let (shared, unique) = usage::shared_and_unique(&images, i);
            vec![
                image::familiar(&img.record.name),
                lookup::short_id(img.id.trim_start_matches("sha256:")).to_string(),
                human::ago(img.record.created_at.as_ref()),
                human::size((shared + unique).max(0) as u64),
                human::size(shared.max(0) as u64),
                human::size(unique.max(0) as u64),
                img.containers.to_string(),
            ]
        })
        .collect();
    output::print_table(
        &[
            "IMAGE",
            "IMAGE ID",
            "CREATED",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ],
        &image_rows,
    );

    println!("\nContainers space usage:\n");
    let container_rows: Vec<Vec<String>> = containers
        .iter()
        .map(|c| {
            vec![
                lookup::short_id(&c.container.id).to_string(),
                image::familiar(&c.container.image),
                human::size(c.size.max(0) as u64),
                human::ago(c.container.created_at.as_ref()),
                c.task
                    .as_ref()
                    .map(|t| t.docker_state())
                    .unwrap_or("created")
                    .to_string(),
                lookup::name_of(&c.container).to_string(),
            ]
        })
        .collect();
    output::print_table(
        &[
            "CONTAINER ID",
            "IMAGE",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ],
        &container_rows,
    );

    println!("\nLocal Volumes space usage:\n");
    let volume_rows: Vec<Vec<String>> = volumes
        .iter()
        .map(|v| {
            vec![
                v.name.clone(),
                v.used_by.len().to_string(),
                human::size(v.size.max(0) as u64),
            ]
        })
        .collect();
    output::print_table(&["VOLUME NAME", "LINKS", "SIZE"], &volume_rows);
    Ok(())
}
