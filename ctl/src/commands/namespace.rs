//! `berthctl namespace ls|create|rm`.

use std::collections::HashMap;

use anyhow::Context as _;
use containerd_client::services::v1::{
    CreateNamespaceRequest, DeleteNamespaceRequest, ListNamespacesRequest, Namespace,
    namespaces_client::NamespacesClient,
};

use crate::{
    client::Client,
    output::{self, Format},
};

/// Manage namespaces.
///
/// Example: `berthctl namespace create team-a tier=gold && berthctl namespace ls -q`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// List namespaces.
    ///
    /// Example: `berthctl namespace ls --format json`
    #[command(alias = "list")]
    Ls {
        /// Print names only.
        #[arg(short, long)]
        quiet: bool,
        /// `table`, `json` or a Go template over Name and Labels.
        #[arg(long)]
        format: Option<String>,
    },
    /// Create a namespace with optional KEY=VALUE labels.
    ///
    /// Example: `berthctl namespace create team-a tier=gold`
    Create {
        /// The namespace's name.
        name: String,
        /// Labels as KEY=VALUE.
        labels: Vec<String>,
    },
    /// Remove namespaces (they must be empty).
    ///
    /// Example: `berthctl namespace rm team-a`
    #[command(alias = "remove", alias = "delete")]
    Rm {
        /// Names to remove.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

/// Parses `KEY=VALUE` labels (as `--label` options and namespace labels give them).
pub fn parse_labels(labels: &[String]) -> anyhow::Result<HashMap<String, String>> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .with_context(|| format!("label {l:?} is not KEY=VALUE"))?;
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Runs the chosen action.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let mut api = NamespacesClient::new(client.channel.clone());
    match args.action {
        Action::Ls { quiet, format } => {
            let format = Format::parse(format.as_deref())?;
            let mut list = api
                .list(client.request(ListNamespacesRequest {
                    filter: String::new(),
                }))
                .await?
                .into_inner()
                .namespaces;
            list.sort_by(|a, b| a.name.cmp(&b.name));
            if quiet {
                list.iter().for_each(|ns| println!("{}", ns.name));
                return Ok(());
            }
            let items: Vec<serde_json::Value> = list
                .iter()
                .map(|ns| serde_json::json!({"Name": ns.name, "Labels": ns.labels}))
                .collect();
            output::print_items(&format, &items, &["NAME", "LABELS"], |v| {
                let mut labels: Vec<String> = v["Labels"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                            .collect()
                    })
                    .unwrap_or_default();
                labels.sort();
                vec![v["Name"].as_str().unwrap_or("").into(), labels.join(",")]
            });
        }
        Action::Create { name, labels } => {
            let labels = parse_labels(&labels)?;
            api.create(client.request(CreateNamespaceRequest {
                namespace: Some(Namespace { name, labels }),
            }))
            .await?;
        }
        Action::Rm { names } => {
            let mut failed = false;
            for name in names {
                match api
                    .delete(client.request(DeleteNamespaceRequest { name: name.clone() }))
                    .await
                {
                    Ok(_) => println!("{name}"),
                    Err(e) => {
                        eprintln!("berthctl: removing {name}: {}", e.message());
                        failed = true;
                    }
                }
            }
            if failed {
                anyhow::bail!("some namespaces could not be removed");
            }
        }
    }
    Ok(())
}
