//! `berthctl version`.

use containerd_client::services::v1::version_client::VersionClient;
use serde_json::json;

use crate::{
    client::Client,
    output::{self, Format},
};

/// Show client and server versions.
///
/// Example: `berthctl version --format '{{.Server.Version}}'`
#[derive(clap::Args)]
pub struct Args {
    /// `json` or a Go template over `Client` and `Server` (e.g. `{{.Server.Version}}`).
    #[arg(short, long)]
    format: Option<String>,
}

/// Prints both versions.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let format = Format::parse(args.format.as_deref())?;
    let server = VersionClient::new(client.channel.clone())
        .version(client.request(()))
        .await?
        .into_inner();
    let item = json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": std::env::consts::OS,
            "Arch": std::env::consts::ARCH,
        },
        "Server": {"Version": server.version, "Revision": server.revision},
    });
    match format {
        Format::Table => {
            println!("Client:\n  Version:  {}", env!("CARGO_PKG_VERSION"));
            println!(
                "  OS/Arch:  {}/{}",
                std::env::consts::OS,
                std::env::consts::ARCH
            );
            println!(
                "\nServer:\n  Version:  {}\n  Revision: {}",
                server.version, server.revision
            );
        }
        other => output::print_objects(&other, &[item])?,
    }
    Ok(())
}
