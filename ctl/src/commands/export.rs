//! `berthctl export`: a container's filesystem as one tar archive (docker export).

use std::{
    io::{IsTerminal as _, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, bail};

use crate::{
    client::Client,
    lookup,
    rootfs::ContainerRoot,
    tarfs::{self, PackOptions},
};

/// Export a container's filesystem as a tar archive.
///
/// A running container is read live; its volumes, `/proc`, `/sys` and other mounts are left
/// out (their mount points are kept).
///
/// Example: `berthctl export -o web.tar web`
#[derive(clap::Args)]
pub struct Args {
    /// The container.
    container: String,
    /// Write to this file instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Runs `export`.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let container = lookup::find(client, &args.container).await?;
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        ),
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: use -o FILE or redirect");
            }
            Box::new(std::io::stdout().lock())
        }
    };
    let croot = ContainerRoot::open(client, &container, true).await?;
    let root = croot.root();
    let mut tar = tar::Builder::new(std::io::BufWriter::with_capacity(1 << 20, out));
    tarfs::pack_children(
        &mut tar,
        root.fd(),
        Path::new(""),
        PackOptions { same_mount: true },
    )
    .with_context(|| format!("exporting {}", args.container))?;
    tar.into_inner()?.flush().context("writing the archive")?;
    Ok(())
}
