//! `berthctl volume create|ls|inspect|rm|prune`: named volumes through `berth.volumes.v1`.

use anyhow::Context as _;
use berth_proto::berth::volumes::v1::{
    CreateVolumeRequest, GetVolumeRequest, ListVolumesRequest, PruneVolumesRequest,
    RemoveVolumeRequest, Volume, volumes_client::VolumesClient,
};
use serde_json::{Value, json};

use crate::{
    client::Client,
    commands::namespace::parse_labels,
    filters::Filters,
    human,
    output::{self, Format},
};

/// Manage named volumes: directories that containers mount by name and that outlive them.
///
/// Example: `berthctl volume create data && berthctl run -v data:/data busybox ls /data`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Create a volume (an existing name is returned unchanged).
    ///
    /// Example: `berthctl volume create --label team=web data`
    Create {
        /// The volume's name (default: a random one).
        name: Option<String>,
        /// Set a label (KEY=VALUE); may be repeated.
        #[arg(short, long = "label")]
        labels: Vec<String>,
    },
    /// List volumes.
    ///
    /// Example: `berthctl volume ls --filter dangling=true -q`
    #[command(alias = "list")]
    Ls {
        /// Print names only.
        #[arg(short, long)]
        quiet: bool,
        /// Filter: `name=SUBSTRING`, `label=KEY[=VALUE]`, `dangling=true|false`.
        #[arg(short, long = "filter")]
        filters: Vec<String>,
        /// `table`, `json` or a Go template such as `{{.Name}}\t{{.Mountpoint}}`.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show volumes in detail (JSON).
    ///
    /// Example: `berthctl volume inspect --format '{{.Mountpoint}}' data`
    Inspect {
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
        /// `json` or a Go template.
        #[arg(short, long)]
        format: Option<String>,
        /// Also report the bytes used and how many containers use it (`UsageData`).
        #[arg(short, long)]
        size: bool,
    },
    /// Remove volumes and their data.
    ///
    /// Example: `berthctl volume rm data cache`
    #[command(alias = "remove")]
    Rm {
        /// The volumes.
        #[arg(required = true)]
        names: Vec<String>,
        /// Remove even while containers use them.
        #[arg(short, long)]
        force: bool,
    },
    /// Remove volumes no container uses (anonymous ones only, unless `--all`).
    ///
    /// Example: `berthctl volume prune -a -f`
    Prune {
        /// Remove unused named volumes too.
        #[arg(short, long)]
        all: bool,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        force: bool,
    },
}

/// A volume as docker's `volume inspect` shows it; `UsageData` only when it was measured.
pub fn to_json(v: &Volume) -> Value {
    let mut item = json!({
        "CreatedAt": human::rfc3339(v.created_at.as_ref()),
        "Driver": "local",
        "Labels": v.labels,
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": Value::Null,
        "Scope": "local",
        "Anonymous": v.anonymous,
        "UsedBy": v.used_by,
    });
    if v.size >= 0 {
        item["UsageData"] = json!({"Size": v.size, "RefCount": v.used_by.len()});
    }
    item
}

fn api(client: &Client) -> VolumesClient<tonic::transport::Channel> {
    VolumesClient::new(client.channel.clone())
}

/// Lists every volume of the namespace, with sizes when `with_size`.
pub async fn list(client: &Client, with_size: bool) -> anyhow::Result<Vec<Volume>> {
    let mut volumes = api(client)
        .list(client.request(ListVolumesRequest {
            filters: Vec::new(),
            with_size,
        }))
        .await
        .context("listing volumes")?
        .into_inner()
        .volumes;
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(volumes)
}

fn matches(filters: &Filters, v: &Volume) -> bool {
    filters.accepts("name", |want| v.name.contains(want))
        && filters.accepts_labels(&v.labels)
        && filters.accepts("dangling", |want| {
            let dangling = v.used_by.is_empty();
            matches!(
                (want, dangling),
                ("true" | "1", true) | ("false" | "0", false)
            )
        })
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    match args.action {
        Action::Create { name, labels } => {
            let volume = api(client)
                .create(client.request(CreateVolumeRequest {
                    name: name.unwrap_or_default(),
                    labels: parse_labels(&labels)?,
                    anonymous: false,
                }))
                .await
                .context("creating the volume")?
                .into_inner();
            println!("{}", volume.name);
        }
        Action::Ls {
            quiet,
            filters,
            format,
        } => {
            let filters = Filters::parse(&filters, &["name", "label", "dangling"])?;
            let format = Format::parse(format.as_deref())?;
            let volumes: Vec<Volume> = list(client, false)
                .await?
                .into_iter()
                .filter(|v| matches(&filters, v))
                .collect();
            if quiet {
                volumes.iter().for_each(|v| println!("{}", v.name));
                return Ok(());
            }
            let items: Vec<Value> = volumes.iter().map(to_json).collect();
            output::print_items(&format, &items, &["DRIVER", "VOLUME NAME"], |v| {
                vec!["local".into(), v["Name"].as_str().unwrap_or("").into()]
            });
        }
        Action::Inspect {
            names,
            format,
            size,
        } => {
            let format = Format::parse(format.as_deref())?;
            let mut items = Vec::new();
            for name in names {
                let res = api(client)
                    .get(client.request(GetVolumeRequest {
                        name: name.clone(),
                        with_size: size,
                    }))
                    .await;
                match res {
                    Ok(v) => items.push(to_json(&v.into_inner())),
                    Err(s) if s.code() == tonic::Code::NotFound => {
                        anyhow::bail!("no such volume: {name}")
                    }
                    Err(s) => return Err(s).with_context(|| format!("inspecting {name}")),
                }
            }
            output::print_objects(&format, &items)?;
        }
        Action::Rm { names, force } => {
            let mut failed = 0;
            for name in names {
                let res = api(client)
                    .remove(client.request(RemoveVolumeRequest {
                        name: name.clone(),
                        force,
                    }))
                    .await;
                match res {
                    Ok(_) => println!("{name}"),
                    Err(s) => {
                        failed += 1;
                        let why = match s.code() {
                            tonic::Code::NotFound => format!("no such volume: {name}"),
                            tonic::Code::FailedPrecondition => format!(
                                "volume {name} is in use: {} (remove those containers or pass -f)",
                                s.message()
                            ),
                            _ => format!("removing {name}: {}", s.message()),
                        };
                        eprintln!("berthctl: {why}");
                    }
                }
            }
            anyhow::ensure!(failed == 0, "{failed} volume(s) could not be removed");
        }
        Action::Prune { all, force } => {
            let what = if all {
                "all local volumes not used by at least one container"
            } else {
                "anonymous local volumes not used by at least one container"
            };
            if !human::confirm(&format!("WARNING! This will remove {what}."), force)? {
                return Ok(());
            }
            let res = api(client)
                .prune(client.request(PruneVolumesRequest { all }))
                .await
                .context("pruning volumes")?
                .into_inner();
            if !res.removed.is_empty() {
                println!("Deleted Volumes:");
                res.removed.iter().for_each(|n| println!("{n}"));
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                human::size(res.space_reclaimed)
            );
        }
    }
    Ok(())
}
