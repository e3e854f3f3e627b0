//! `berthctl snapshot ls|info|mounts|rm|tree`: a snapshotter's snapshots (like
//! `ctr snapshots`).

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context as _, bail};
use containerd_client::services::v1::snapshots::{
    Info, Kind, ListSnapshotsRequest, MountsRequest, RemoveSnapshotRequest, StatSnapshotRequest,
    UsageRequest, snapshots_client::SnapshotsClient,
};
use serde_json::{Value, json};

use crate::{
    client::Client,
    human,
    output::{self, Format},
};

/// Work with a snapshotter's snapshots directly (like `ctr snapshots`).
///
/// Example: `berthctl snapshot --snapshotter native tree`
#[derive(clap::Args)]
pub struct Args {
    /// The snapshotter.
    #[arg(long, default_value = "overlayfs", global = true)]
    snapshotter: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List snapshots: KEY PARENT KIND.
    ///
    /// Example: `berthctl snapshot ls --format json`
    #[command(alias = "list")]
    Ls {
        /// containerd filters, e.g. `kind==active`.
        filters: Vec<String>,
        /// Print keys only.
        #[arg(short, long)]
        quiet: bool,
        /// `table`, `json` or a Go template over Key, Parent, Kind, CreatedAt, Labels.
        #[arg(long)]
        format: Option<String>,
    },
    /// Show a snapshot as JSON, with its disk usage.
    ///
    /// Example: `berthctl snapshot info 4f1c…`
    Info {
        /// The snapshot's key.
        key: String,
        /// `json` or a Go template.
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Print the `mount` commands that would mount a snapshot at TARGET.
    ///
    /// Example: `berthctl snapshot mounts /mnt 4f1c… | sh`
    Mounts {
        /// Where to mount it.
        target: String,
        /// The snapshot's key.
        key: String,
    },
    /// Remove snapshots (children first).
    ///
    /// Example: `berthctl snapshot rm 4f1c…`
    #[command(alias = "delete", alias = "remove")]
    Rm {
        /// The snapshots' keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Show snapshots as a tree, each child under its parent.
    ///
    /// Example: `berthctl snapshot tree`
    Tree,
}

fn kind_word(kind: i32) -> &'static str {
    match Kind::try_from(kind).unwrap_or(Kind::Unknown) {
        Kind::View => "View",
        Kind::Active => "Active",
        Kind::Committed => "Committed",
        Kind::Unknown => "Unknown",
    }
}

fn to_json(info: &Info) -> Value {
    json!({
        "Key": info.name,
        "Parent": info.parent,
        "Kind": kind_word(info.kind),
        "CreatedAt": human::rfc3339(info.created_at.as_ref()),
        "UpdatedAt": human::rfc3339(info.updated_at.as_ref()),
        "Labels": info.labels,
    })
}

/// Lists the snapshots of `snapshotter` (all pages of the stream).
pub async fn list(
    client: &Client,
    snapshotter: &str,
    filters: Vec<String>,
) -> anyhow::Result<Vec<Info>> {
    let mut stream = SnapshotsClient::new(client.channel.clone())
        .list(client.request(ListSnapshotsRequest {
            snapshotter: snapshotter.to_string(),
            filters,
        }))
        .await
        .with_context(|| format!("listing snapshots of {snapshotter}"))?
        .into_inner();
    let mut infos = Vec::new();
    while let Some(page) = stream.message().await? {
        infos.extend(page.info);
    }
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(infos)
}

/// Bytes a snapshot uses on disk (its own layer only), or 0 when unknown.
pub async fn usage(client: &Client, snapshotter: &str, key: &str) -> i64 {
    SnapshotsClient::new(client.channel.clone())
        .usage(client.request(UsageRequest {
            snapshotter: snapshotter.to_string(),
            key: key.to_string(),
        }))
        .await
        .map(|r| r.into_inner().size)
        .unwrap_or(0)
}

/// Lines of the tree under `parent`, each indented by its depth.
fn tree_lines(children: &BTreeMap<String, Vec<String>>, parent: &str, depth: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for child in children.get(parent).into_iter().flatten() {
        lines.push(if depth == 0 {
            child.clone()
        } else {
            format!("{}\\_ {child}", "  ".repeat(depth))
        });
        lines.extend(tree_lines(children, child, depth + 1));
    }
    lines
}

/// The tree of `infos`: roots are snapshots without a (listed) parent.
fn tree(infos: &[Info]) -> Vec<String> {
    let names: HashSet<&str> = infos.iter().map(|i| i.name.as_str()).collect();
    let mut children: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for info in infos {
        let parent = if names.contains(info.parent.as_str()) {
            info.parent.clone()
        } else {
            String::new()
        };
        children.entry(parent).or_default().push(info.name.clone());
    }
    tree_lines(&children, "", 0)
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let snapshotter = args.snapshotter;
    let mut api = SnapshotsClient::new(client.channel.clone());
    let not_found = |key: &str, s: tonic::Status| match s.code() {
        tonic::Code::NotFound => anyhow::anyhow!("no such snapshot: {key} (in {snapshotter})"),
        _ => anyhow::Error::new(s).context(format!("snapshot {key}")),
    };
    match args.action {
        Action::Ls {
            filters,
            quiet,
            format,
        } => {
            let format = Format::parse(format.as_deref())?;
            let infos = list(client, &snapshotter, filters).await?;
            if quiet {
                infos.iter().for_each(|i| println!("{}", i.name));
                return Ok(());
            }
            let items: Vec<Value> = infos.iter().map(to_json).collect();
            output::print_items(&format, &items, &["KEY", "PARENT", "KIND"], |v| {
                ["Key", "Parent", "Kind"]
                    .iter()
                    .map(|k| v[*k].as_str().unwrap_or("").to_string())
                    .collect()
            });
        }
        Action::Info { key, format } => {
            let info = api
                .stat(client.request(StatSnapshotRequest {
                    snapshotter: snapshotter.clone(),
                    key: key.clone(),
                }))
                .await
                .map_err(|s| not_found(&key, s))?
                .into_inner()
                .info
                .context("berthd returned no snapshot info")?;
            let mut item = to_json(&info);
            item["Size"] = json!(usage(client, &snapshotter, &key).await);
            item["Snapshotter"] = json!(snapshotter);
            output::print_objects(&Format::parse(format.as_deref())?, &[item])?;
        }
        Action::Mounts { target, key } => {
            let mounts = api
                .mounts(client.request(MountsRequest {
                    snapshotter: snapshotter.clone(),
                    key: key.clone(),
                }))
                .await
                .map_err(|s| not_found(&key, s))?
                .into_inner()
                .mounts;
            for m in mounts {
                let at = match m.target.trim_start_matches('/') {
                    "" => target.clone(),
                    inner => std::path::Path::new(&target)
                        .join(inner)
                        .display()
                        .to_string(),
                };
                println!(
                    "mount -t {} {} {at} -o {}",
                    m.r#type,
                    m.source,
                    m.options.join(",")
                );
            }
        }
        Action::Rm { keys } => {
            let mut failed = 0;
            for key in keys {
                match api
                    .remove(client.request(RemoveSnapshotRequest {
                        snapshotter: snapshotter.clone(),
                        key: key.clone(),
                    }))
                    .await
                {
                    Ok(_) => println!("{key}"),
                    Err(s) => {
                        failed += 1;
                        eprintln!("berthctl: {:#}", not_found(&key, s));
                    }
                }
            }
            if failed > 0 {
                bail!("{failed} snapshot(s) could not be removed");
            }
        }
        Action::Tree => {
            let infos = list(client, &snapshotter, Vec::new()).await?;
            tree(&infos).iter().for_each(|l| println!("{l}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_nests_children_under_parents() {
        let info = |name: &str, parent: &str| Info {
            name: name.into(),
            parent: parent.into(),
            ..Default::default()
        };
        let lines = tree(&[
            info("c", "b"),
            info("a", ""),
            info("b", "a"),
            info("d", "gone"),
        ]);
        assert_eq!(lines, ["a", "  \\_ b", "    \\_ c", "d"]);
    }
}
