//! `berthctl pull`: the daemon pulls and unpacks; the CLI shows per-layer progress.

use std::{collections::HashMap, io::IsTerminal, time::Duration};

use berth_proto::berth::transfer::v1::{
    Progress, PullRequest, RegistryOptions, transfer_client::TransferClient,
};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::client::Client;

/// Pull an image from a registry (the daemon fetches, verifies and unpacks it).
///
/// Example: `berthctl pull --plain-http localhost:5000/lab/busybox:1`
#[derive(clap::Args)]
pub struct Args {
    /// The image reference (`busybox` means `docker.io/library/busybox:latest`).
    reference: String,
    /// Platform to pull (`os/arch[/variant]`), or `all`.
    #[arg(long)]
    platform: Option<String>,
    /// Snapshotter to unpack into.
    #[arg(long)]
    snapshotter: Option<String>,
    /// Use plain HTTP for the registry.
    #[arg(long)]
    plain_http: bool,
    /// Fetch without unpacking.
    #[arg(long)]
    skip_unpack: bool,
    /// Registry user (password from BERTH_REGISTRY_PASSWORD).
    #[arg(long, short = 'u')]
    user: Option<String>,
    /// Print only the image digest.
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn short(id: &str) -> &str {
    id.strip_prefix("sha256:")
        .map(|h| &h[..12.min(h.len())])
        .unwrap_or(id)
}

/// How progress is shown: bars on a terminal, lines otherwise.
pub(crate) enum Display {
    Bars(MultiProgress, HashMap<String, ProgressBar>),
    Lines,
    Quiet,
}

impl Display {
    /// Shows one progress message.
    pub(crate) fn show(&mut self, p: &Progress) {
        match self {
            Display::Quiet => {}
            Display::Lines => match p.event.as_str() {
                "fetching" | "uploading" => {}
                "resolved" => println!("{}: resolved {}", p.id, p.digest),
                "done" => {}
                event => println!("{event} {} ({} bytes)", p.id, p.total.max(p.offset)),
            },
            Display::Bars(multi, bars) => {
                if p.event == "resolved" {
                    let _ = multi.println(format!("{}: resolved {}", p.id, p.digest));
                    return;
                }
                if p.event == "done" {
                    return;
                }
                let bar = bars.entry(p.id.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(p.total.max(0) as u64));
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{prefix:14} {msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_prefix(short(&p.id).to_string());
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                });
                if p.total > 0 {
                    bar.set_length(p.total as u64);
                }
                bar.set_position(p.offset.max(0) as u64);
                bar.set_message(p.event.clone());
                if matches!(p.event.as_str(), "fetched" | "exists" | "unpacked") {
                    bar.set_position(p.total.max(p.offset).max(0) as u64);
                    if p.event != "fetched" {
                        bar.finish();
                    }
                }
            }
        }
    }
}

/// Streams the daemon's progress until the image exists.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let password = std::env::var("BERTH_REGISTRY_PASSWORD").unwrap_or_default();
    let req = PullRequest {
        reference: args.reference.clone(),
        platform: args.platform.unwrap_or_default(),
        snapshotter: args.snapshotter.unwrap_or_default(),
        skip_unpack: args.skip_unpack,
        registry: Some(RegistryOptions {
            plain_http: args.plain_http,
            username: args.user.unwrap_or_default(),
            password,
        }),
    };
    let mut stream = TransferClient::new(client.channel.clone())
        .pull(client.request(req))
        .await?
        .into_inner();
    let mut display = if args.quiet {
        Display::Quiet
    } else if std::io::stdout().is_terminal() {
        Display::Bars(MultiProgress::new(), HashMap::new())
    } else {
        Display::Lines
    };
    let mut digest = String::new();
    while let Some(p) = stream.message().await? {
        if p.event == "done" {
            digest = p.digest.clone();
        }
        display.show(&p);
    }
    if args.quiet {
        println!("{digest}");
    } else {
        println!("{}: {digest}", args.reference);
    }
    Ok(())
}
