//! `berthctl load | import | save`: image archives in and out of the daemon.

use std::{
    io::{Read, Write},
    path::PathBuf,
};

use anyhow::Context as _;
use berth_proto::berth::transfer::v1::{
    ExportRequest, ImportOptions, ImportRequest, transfer_client::TransferClient,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Client;

/// Load images from an OCI layout or `docker save` tarball (plain or gzip).
///
/// Example: `berthctl load -i busybox.tar`
#[derive(clap::Args)]
pub struct LoadArgs {
    /// The archive (default: standard input).
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Store without unpacking.
    #[arg(long)]
    skip_unpack: bool,
}

/// Create a one-layer image from a root filesystem tarball (like `docker import`).
///
/// Example: `berthctl import rootfs.tar.gz example.com/mine:1`
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The tarball (`-` for standard input).
    file: String,
    /// The image name to create.
    name: String,
    /// The image's platform (`os/arch`).
    #[arg(long)]
    platform: Option<String>,
}

/// Save images as one tarball (OCI layout with Docker's manifest.json).
///
/// Example: `berthctl save -o images.tar busybox:latest alpine:3`
#[derive(clap::Args)]
pub struct SaveArgs {
    /// The images.
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to this file (default: standard output).
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Only this platform's manifest of each image.
    #[arg(long)]
    platform: Option<String>,
}

fn open(path: Option<&str>) -> anyhow::Result<Box<dyn Read + Send>> {
    Ok(match path {
        None | Some("-") => Box::new(std::io::stdin()),
        Some(p) => Box::new(std::fs::File::open(p).with_context(|| format!("opening {p}"))?),
    })
}

async fn send_import(
    client: &Client,
    options: ImportOptions,
    mut reader: Box<dyn Read + Send>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<ImportRequest>(4);
    let reading = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut first = Some(options);
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = reader.read(&mut buf).context("reading the archive")?;
            buf.truncate(n);
            let msg = ImportRequest {
                options: first.take(),
                data: buf,
            };
            if tx.blocking_send(msg).is_err() || n == 0 {
                return Ok(());
            }
        }
    });
    let mut progress = TransferClient::new(client.channel.clone())
        .import(client.request(ReceiverStream::new(rx)))
        .await?
        .into_inner();
    while let Some(p) = progress.message().await? {
        if p.event == "done" {
            println!("{}: {}", p.id, p.digest);
        }
    }
    reading.await??;
    Ok(())
}

/// Runs `load`.
pub async fn load(args: LoadArgs, client: &Client) -> anyhow::Result<()> {
    let input = args.input.as_ref().map(|p| p.display().to_string());
    let options = ImportOptions {
        format: "archive".into(),
        skip_unpack: args.skip_unpack,
        ..Default::default()
    };
    send_import(client, options, open(input.as_deref())?).await
}

/// Runs `import`.
pub async fn import(args: ImportArgs, client: &Client) -> anyhow::Result<()> {
    let options = ImportOptions {
        format: "rootfs".into(),
        name: args.name,
        platform: args.platform.unwrap_or_default(),
        ..Default::default()
    };
    send_import(client, options, open(Some(&args.file))?).await
}

/// Runs `save`.
pub async fn save(args: SaveArgs, client: &Client) -> anyhow::Result<()> {
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => {
            Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?)
        }
        None => {
            anyhow::ensure!(
                !std::io::IsTerminal::is_terminal(&std::io::stdout()),
                "refusing to write an archive to a terminal: use -o FILE or redirect"
            );
            Box::new(std::io::stdout())
        }
    };
    let mut stream = TransferClient::new(client.channel.clone())
        .export(client.request(ExportRequest {
            images: args.images,
            platform: args.platform.unwrap_or_default(),
        }))
        .await?
        .into_inner();
    while let Some(chunk) = stream.message().await? {
        out.write_all(&chunk.data).context("writing the archive")?;
    }
    out.flush().context("writing the archive")?;
    Ok(())
}
