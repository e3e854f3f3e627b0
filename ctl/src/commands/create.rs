//! `berthctl create`: make a container without starting it.

use crate::{
    client::Client,
    container::{create, flags::CreateFlags},
};

/// Create a container (image, command and options as for `run`) and print its ID; start it
/// with `berthctl start`.
///
/// Example: `berthctl create --name web busybox httpd -f -p 8080`
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    flags: CreateFlags,
}

/// Creates the container.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let created = create::create(client, &args.flags, false, false).await?;
    println!("{}", created.id);
    Ok(())
}
