//! `berthctl plugins`.

use containerd_client::services::v1::{PluginsRequest, introspection_client::IntrospectionClient};

use crate::client::Client;

/// List the daemon's plugins.
///
/// Example: `berthctl plugins 'type==io.containerd.grpc.v1'`
#[derive(clap::Args)]
pub struct Args {
    /// containerd filters, e.g. `type==io.containerd.grpc.v1`.
    filters: Vec<String>,
}

/// Prints one line per plugin.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let plugins = IntrospectionClient::new(client.channel.clone())
        .plugins(client.request(PluginsRequest {
            filters: args.filters,
        }))
        .await?
        .into_inner()
        .plugins;
    let width = plugins
        .iter()
        .map(|p| p.r#type.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:width$}  {:20}  STATUS", "TYPE", "ID");
    for p in plugins {
        let status = if p.init_err.is_some() { "error" } else { "ok" };
        println!("{:width$}  {:20}  {status}", p.r#type, p.id);
    }
    Ok(())
}
