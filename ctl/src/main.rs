//! `berthctl`: the operator's CLI for berthd. `main` only parses and dispatches; each verb
//! lives in `commands/<verb>.rs`.

mod client;
mod commands;
mod exit;
mod image;
mod lookup;
mod metrics;
mod output;
mod rootfs;
mod tarfs;
mod task;
mod when;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate a Berth daemon.
#[derive(Parser)]
#[command(name = "berthctl", version)]
struct Cli {
    /// Address of berthd's API socket (`-H` like docker's `--host`: `-a` is `ps -a`).
    #[arg(
        short = 'H',
        long,
        env = "BERTH_ADDRESS",
        default_value = "/run/berth/berth.sock",
        global = true
    )]
    address: String,
    /// Namespace to work in.
    #[arg(
        short = 'n',
        long,
        env = "BERTH_NAMESPACE",
        default_value = "default",
        global = true
    )]
    namespace: String,
    /// Print debug details of errors.
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show client and server versions.
    Version(commands::version::Args),
    /// Manage namespaces.
    #[command(alias = "namespaces", alias = "ns")]
    Namespace(commands::namespace::Args),
    /// List the daemon's plugins.
    Plugins(commands::plugins::Args),
    /// Pull an image from a registry.
    Pull(commands::pull::Args),
    /// Push an image to a registry.
    Push(commands::push::Args),
    /// Load images from an OCI or `docker save` tarball.
    Load(commands::archive::LoadArgs),
    /// Create an image from a root filesystem tarball.
    Import(commands::archive::ImportArgs),
    /// Save images to a tarball.
    Save(commands::archive::SaveArgs),
    /// Store registry credentials.
    Login(commands::login::LoginArgs),
    /// Remove registry credentials.
    Logout(commands::login::LogoutArgs),
    // inspect worker: looking at containers and images, files in and out (each `Args` doc
    // comment is the help text, so its `Example:` line shows in `--help`)
    Ps(commands::ps::Args),
    Inspect(commands::inspect::Args),
    Images(commands::images::Args),
    Image(commands::image::Args),
    Tag(commands::tag::Args),
    Rmi(commands::rmi::Args),
    Top(commands::top::Args),
    Stats(commands::stats::Args),
    Cp(commands::cp::Args),
    Commit(commands::commit::Args),
    Export(commands::export::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berthctl: {e}");
            return ExitCode::from(125);
        }
    };
    let result = runtime.block_on(async {
        // Credentials are local files: no daemon needed.
        let command = match cli.command {
            Command::Login(args) => return commands::login::login(args),
            Command::Logout(args) => return commands::login::logout(args),
            other => other,
        };
        let client = client::Client::connect(&cli.address, &cli.namespace).await?;
        match command {
            Command::Version(args) => commands::version::run(args, &client).await,
            Command::Namespace(args) => commands::namespace::run(args, &client).await,
            Command::Plugins(args) => commands::plugins::run(args, &client).await,
            Command::Pull(args) => commands::pull::run(args, &client).await,
            Command::Push(args) => commands::push::run(args, &client).await,
            Command::Load(args) => commands::archive::load(args, &client).await,
            Command::Import(args) => commands::archive::import(args, &client).await,
            Command::Save(args) => commands::archive::save(args, &client).await,
            // inspect worker
            Command::Ps(args) => commands::ps::run(args, &client).await,
            Command::Inspect(args) => commands::inspect::run(args, &client).await,
            Command::Images(args) => commands::images::run(args, &client).await,
            Command::Image(args) => commands::image::run(args, &client).await,
            Command::Tag(args) => commands::tag::run(args, &client).await,
            Command::Rmi(args) => commands::rmi::run(args, &client).await,
            Command::Top(args) => commands::top::run(args, &client).await,
            Command::Stats(args) => commands::stats::run(args, &client).await,
            Command::Cp(args) => commands::cp::run(args, &client).await,
            Command::Commit(args) => commands::commit::run(args, &client).await,
            Command::Export(args) => commands::export::run(args, &client).await,
            Command::Login(_) | Command::Logout(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<exit::ExitStatus>().is_some() && e.chain().count() == 1 => {
            ExitCode::from(e.downcast_ref::<exit::ExitStatus>().map_or(0, |s| s.0))
        }
        Err(e) => {
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<exit::ExitStatus>())
                .map_or(exit::DAEMON_ERROR, |s| s.0);
            if cli.debug {
                eprintln!("berthctl: {e:?}");
            } else {
                eprintln!("berthctl: {e:#}");
            }
            ExitCode::from(code)
        }
    }
}
