//! `berthctl rename`: give a container a new name.

use berth_proto::labels::berth::NAME;

use crate::{client::Client, container::labels, lookup};

/// Rename a container (the new name must be free).
///
/// Example: `berthctl rename web web-old`
#[derive(clap::Args)]
pub struct Args {
    /// The container (name, ID or ID prefix).
    container: String,
    /// Its new name.
    new_name: String,
}

/// Checks the new name is free and sets it.
pub async fn run(args: Args, client: &Client) -> anyhow::Result<()> {
    let container = lookup::find(client, &args.container).await?;
    if lookup::name_of(&container) == args.new_name {
        anyhow::bail!(
            "renaming container {}: the new name is the same as the old one",
            args.container
        );
    }
    lookup::check_new_name(client, &args.new_name).await?;
    labels::set(client, &container.id, &[(NAME, Some(&args.new_name))]).await
}
