//! `berthctl push`: the daemon uploads a stored image to a registry.

use berth_proto::berth::transfer::v1::{
    PushRequest, RegistryOptions, transfer_client::TransferClient,
};

use crate::client::Client;

/// Push an image to a registry (the daemon uploads it; blobs the registry has are skipped).
///
/// Example: `berthctl push --plain-http localhost:5000/lab/busybox:1 localhost:5000/other/busybox:1`
#[derive(clap::Args)]
pub struct Args {
    /// The stored image.
    image: String,
    /// Where to push it (defaults to the image's name).
    reference: Option<String>,
    /// Push only this platform's manifest.
    #[arg(long)]
    platform: Option<String>,
    /// Use plain HTTP for the registry.
    #[arg(long)]
    plain_http: bool,
    /// Registry user (password from BERTH_REGISTRY_PASSWORD).
    #[arg(long, short = 'u')]
    user: Option<String>,
}

/// Streams the daemon's progress as lines until the image is pushed.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let req = PushRequest {
        image: args.image.clone(),
        reference: args.reference.clone().unwrap_or_default(),
        platform: args.platform.unwrap_or_default(),
        registry: Some(RegistryOptions {
            plain_http: args.plain_http,
            username: args.user.unwrap_or_default(),
            password: std::env::var("BERTH_REGISTRY_PASSWORD").unwrap_or_default(),
        }),
    };
    let mut stream = TransferClient::new(client.channel.clone())
        .push(client.request(req))
        .await?
        .into_inner();
    while let Some(p) = stream.message().await? {
        match p.event.as_str() {
            "done" => println!("{}: pushed {}", p.id, p.digest),
            "uploading" => {}
            event => println!("{event} {} ({} bytes)", p.id, p.total),
        }
    }
    Ok(())
}
