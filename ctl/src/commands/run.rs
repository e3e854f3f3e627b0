//! `berthctl run`: create a container and start it, detached or in the foreground.

use anyhow::Context as _;

use crate::{
    client::Client,
    container::{create, flags::CreateFlags, process, remove},
    exit, lookup,
};

/// Create and run a container: in the foreground (its exit code is ours) or detached (`-d`,
/// prints the ID; output goes to its log).
///
/// Example: `berthctl run --rm -it busybox sh` or `berthctl run -d --name web busybox httpd -f`
#[derive(clap::Args)]
pub struct Args {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    rm: bool,
    #[command(flatten)]
    flags: CreateFlags,
}

/// Creates and starts the container.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let created = create::create(client, &args.flags, args.detach && args.rm, true).await?;
    let id = created.id.clone();
    if args.detach {
        process::create_task(client, &id, Default::default(), args.flags.tty).await?;
        process::start(client, &id, "").await?;
        println!("{id}");
        return Ok(());
    }
    let result = foreground(client, &id, &args.flags).await;
    if args.rm {
        let removed = async {
            process::delete_task(client, &id).await?;
            remove::delete(client, &created.container).await?;
            remove::remove_anonymous_volumes(client, &created.container).await;
            anyhow::Ok(())
        };
        if let Err(e) = removed.await {
            eprintln!("berthctl: removing {}: {e:#}", lookup::short_id(&id));
        }
    }
    let code = result?;
    if code == 0 {
        Ok(())
    } else {
        Err(exit::with_code(code))
    }
}

/// Runs the container's task with our stdio attached; returns its exit status.
async fn foreground(client: &Client, id: &str, flags: &CreateFlags) -> anyhow::Result<u32> {
    let fg = process::Foreground::prepare(id, flags.interactive, flags.tty)
        .context("setting up the container's stdio")?;
    process::create_task(client, id, fg.stdio(), flags.tty).await?;
    fg.run(client, id, "").await
}
