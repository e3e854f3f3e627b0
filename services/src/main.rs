//! `berthd`: the Berth daemon.

use std::path::PathBuf;

use anyhow::Context as _;
use berth_services::{config::Config, server};
use clap::{Parser, Subcommand};

/// Berth's container daemon: containerd's API v1 on a unix socket.
#[derive(Parser)]
#[command(name = "berthd", version = berth_services::version::VERSION)]
struct Args {
    /// Address of the gRPC API socket.
    #[arg(short = 'a', long)]
    address: Option<PathBuf>,
    /// Directory for persistent data.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Directory for runtime state.
    #[arg(long)]
    state: Option<PathBuf>,
    /// Config file (optional when left at its default path).
    #[arg(short = 'c', long, default_value = "/etc/berth/config.toml")]
    config: PathBuf,
    /// Log level: trace, debug, info, warn, error.
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Configuration helpers.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the default configuration.
    Default,
}

const DEFAULT_CONFIG: &str = "/etc/berth/config.toml";

fn load_config(args: &Args) -> anyhow::Result<Config> {
    let mut config = match std::fs::read_to_string(&args.config) {
        Ok(text) => Config::parse(&text)
            .with_context(|| format!("parsing config {}", args.config.display()))?,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && args.config == std::path::Path::new(DEFAULT_CONFIG) =>
        {
            Config::default()
        }
        Err(e) => {
            return Err(e).with_context(|| format!("reading config {}", args.config.display()));
        }
    };
    if let Some(a) = &args.address {
        config.grpc.address = a.clone();
    }
    if let Some(r) = &args.root {
        config.root = r.clone();
    }
    if let Some(s) = &args.state {
        config.state = s.clone();
    }
    if let Some(l) = &args.log_level {
        config.debug.level = l.clone();
    }
    Ok(config)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Command::Config {
        action: ConfigAction::Default,
    }) = &args.command
    {
        print!("{}", Config::default_toml());
        return Ok(());
    }
    let config = load_config(&args)?;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.debug.level)
        .with_context(|| format!("invalid log level {:?}", config.debug.level))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("berthd")
        .max_blocking_threads(64)
        .build()
        .context("starting the runtime")?;
    runtime.block_on(server::run(config))
}
