//! `berthctl`: the operator's CLI for berthd. `main` only parses and dispatches; each verb
//! lives in `commands/<verb>.rs`.

mod client;
mod commands;
mod container;
mod exit;
mod image;
mod lookup;
mod output;
mod task;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate a Berth daemon.
#[derive(Parser)]
#[command(name = "berthctl", version)]
struct Cli {
    /// Address of berthd's API socket.
    #[arg(
        short = 'a',
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
    // Container lifecycle and I/O.
    /// Create and run a container.
    Run(commands::run::Args),
    /// Create a container without starting it.
    Create(commands::create::Args),
    /// Start stopped containers.
    Start(commands::start::Args),
    /// Stop running containers.
    Stop(commands::stop::Args),
    /// Restart containers.
    Restart(commands::stop::RestartArgs),
    /// Send a signal to containers.
    Kill(commands::kill::Args),
    /// Remove containers.
    #[command(alias = "remove")]
    Rm(commands::rm::Args),
    /// Wait for containers to stop and print their exit codes.
    Wait(commands::wait::Args),
    /// Follow a running container's output.
    Attach(commands::attach::Args),
    /// Run a command in a running container.
    Exec(commands::exec::Args),
    /// Fetch a container's logs.
    Logs(commands::logs::Args),
    /// Pause containers.
    Pause(commands::pause::Args),
    /// Unpause containers.
    Unpause(commands::pause::Args),
    /// Rename a container.
    Rename(commands::rename::Args),
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
            Command::Login(_) | Command::Logout(_) => Ok(()),
            // Container lifecycle and I/O.
            Command::Run(args) => commands::run::run(args, &client).await,
            Command::Create(args) => commands::create::run(args, &client).await,
            Command::Start(args) => commands::start::run(args, &client).await,
            Command::Stop(args) => commands::stop::run(args, &client).await,
            Command::Restart(args) => commands::stop::restart(args, &client).await,
            Command::Kill(args) => commands::kill::run(args, &client).await,
            Command::Rm(args) => commands::rm::run(args, &client).await,
            Command::Wait(args) => commands::wait::run(args, &client).await,
            Command::Attach(args) => commands::attach::run(args, &client).await,
            Command::Exec(args) => commands::exec::run(args, &client).await,
            Command::Logs(args) => commands::logs::run(args, &client).await,
            Command::Pause(args) => commands::pause::pause(args, &client).await,
            Command::Unpause(args) => commands::pause::unpause(args, &client).await,
            Command::Rename(args) => commands::rename::run(args, &client).await,
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
