//! `berthctl version`.

use containerd_client::services::v1::version_client::VersionClient;

use crate::client::Client;

/// Show client and server versions.
///
/// Example: `berthctl version`
#[derive(clap::Args)]
pub struct Args {}

/// Prints both versions.
pub async fn run(_args: Args, client: &Client) -> anyhow::Result<()> {
    let server = VersionClient::new(client.channel.clone())
        .version(client.request(()))
        .await?
        .into_inner();
    println!("Client:\n  Version:  {}", env!("CARGO_PKG_VERSION"));
    println!(
        "Server:\n  Version:  {}\n  Revision: {}",
        server.version, server.revision
    );
    Ok(())
}
