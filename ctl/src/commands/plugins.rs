//! `berthctl plugins`.

use containerd_client::services::v1::{PluginsRequest, introspection_client::IntrospectionClient};
use serde_json::{Value, json};

use crate::{
    client::Client,
    output::{self, Format},
};

/// List the daemon's plugins (like `ctr plugins ls`).
///
/// Example: `berthctl plugins 'type==io.containerd.snapshotter.v1' --format '{{.ID}}'`
#[derive(clap::Args)]
pub struct Args {
    /// containerd filters, e.g. `type==io.containerd.grpc.v1`.
    filters: Vec<String>,
    /// Print `TYPE.ID` only.
    #[arg(short, long)]
    quiet: bool,
    /// `table`, `json` or a Go template over Type, ID, Status, Requires, Exports.
    #[arg(long)]
    format: Option<String>,
}

/// Prints one line per plugin.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let plugins = IntrospectionClient::new(client.channel.clone())
        .plugins(client.request(PluginsRequest {
            filters: args.filters,
        }))
        .await?
        .into_inner()
        .plugins;
    if args.quiet {
        plugins
            .iter()
            .for_each(|p| println!("{}.{}", p.r#type, p.id));
        return Ok(());
    }
    let items: Vec<Value> = plugins
        .iter()
        .map(|p| {
            json!({
                "Type": p.r#type,
                "ID": p.id,
                "Status": if p.init_err.is_some() { "error" } else { "ok" },
                "Requires": p.requires,
                "Exports": p.exports,
            })
        })
        .collect();
    let cell = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    output::print_items(&format, &items, &["TYPE", "ID", "STATUS"], |v| {
        vec![cell(v, "Type"), cell(v, "ID"), cell(v, "Status")]
    });
    Ok(())
}
