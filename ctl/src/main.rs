//! `berthctl`: the operator's CLI for berthd. `main` only parses and dispatches; each verb
//! lives in `commands/<verb>.rs`.

mod client;
mod commands;
mod container;
mod exit;
mod filters;
mod human;
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
///
/// The daemon options go before the verb, as with `ctr` (`berthctl -n team-a ps -a`): verbs
/// keep their short options free for docker's meanings (`-a` is `--all`).
///
/// Example: `berthctl -n default system info`
#[derive(Parser)]
#[command(name = "berthctl", version)]
struct Cli {
    /// Address of berthd's API socket (`-H` works too, like docker's `--host`).
    #[arg(
        short = 'a',
        short_alias = 'H',
        long,
        env = "BERTH_ADDRESS",
        default_value = "/run/berth/berth.sock"
    )]
    address: String,
    /// Namespace to work in.
    #[arg(short = 'n', long, env = "BERTH_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Print debug details of errors.
    #[arg(long)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

// The verbs. Variants carry no doc comment of their own: clap then shows the `Args` struct's
// doc (summary, details and its `Example:` line) as the verb's help.
#[derive(Subcommand)]
enum Command {
    Version(commands::version::Args),
    #[command(alias = "namespaces", alias = "ns")]
    Namespace(commands::namespace::Args),
    Plugins(commands::plugins::Args),
    Pull(commands::pull::Args),
    Push(commands::push::Args),
    Load(commands::archive::LoadArgs),
    Import(commands::archive::ImportArgs),
    Save(commands::archive::SaveArgs),
    Login(commands::login::LoginArgs),
    Logout(commands::login::LogoutArgs),
    // wt-ctl-system: volumes, system, events, completion and the low-level groups.
    #[command(alias = "volumes")]
    Volume(commands::volume::Args),
    System(commands::system::Args),
    Info(commands::system::InfoArgs),
    Events(commands::events::Args),
    Completion(commands::completion::Args),
    Content(commands::content::Args),
    #[command(alias = "snapshots")]
    Snapshot(commands::snapshot::Args),
    #[command(alias = "leases")]
    Lease(commands::lease::Args),
    #[command(alias = "tasks")]
    Task(commands::task::Args),
    #[command(alias = "containers")]
    Container(commands::container::Args),
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
    // Container lifecycle and I/O.
    Run(commands::run::Args),
    Create(commands::create::Args),
    Start(commands::start::Args),
    Stop(commands::stop::Args),
    Restart(commands::stop::RestartArgs),
    Kill(commands::kill::Args),
    #[command(alias = "remove")]
    Rm(commands::rm::Args),
    Wait(commands::wait::Args),
    Attach(commands::attach::Args),
    Exec(commands::exec::Args),
    Logs(commands::logs::Args),
    Pause(commands::pause::Args),
    Unpause(commands::pause::UnpauseArgs),
    Rename(commands::rename::Args),
}

/// Parses the command line; usage errors leave with 125 as docker's do, while `--help` and
/// `--version` print to standard output and leave with 0.
fn parse() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(exit::DAEMON_ERROR)
        } else {
            ExitCode::SUCCESS
        }
    })
}

fn main() -> ExitCode {
    // Like other Unix tools, end quietly when the reader of our output goes away
    // (`berthctl content ls | head -1`) instead of failing to print.
    // SAFETY: called first thing in main, before any other thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
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
            Command::Completion(args) => {
                return commands::completion::run(
                    args,
                    &mut <Cli as clap::CommandFactory>::command(),
                );
            }
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
            // wt-ctl-system
            Command::Volume(args) => commands::volume::run(args, &client).await,
            Command::System(args) => commands::system::run(args, &client).await,
            Command::Info(args) => commands::system::info(args, &client).await,
            Command::Events(args) => commands::events::run(args, &client).await,
            Command::Content(args) => commands::content::run(args, &client).await,
            Command::Snapshot(args) => commands::snapshot::run(args, &client).await,
            Command::Lease(args) => commands::lease::run(args, &client).await,
            Command::Task(args) => commands::task::run(args, &client).await,
            Command::Container(args) => commands::container::run(args, &client).await,
            Command::Login(_) | Command::Logout(_) | Command::Completion(_) => Ok(()),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// clap's own consistency checks (e.g. two options of one verb sharing a short name).
    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every verb and sub-verb's help ends with an example.
    #[test]
    fn every_command_has_an_example() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let path = format!("{path} {}", sub.get_name());
                let help = sub
                    .get_long_about()
                    .or(sub.get_about())
                    .map(|h| h.to_string())
                    .unwrap_or_default();
                let last = help.trim_end().lines().last().unwrap_or("").to_string();
                if !last.starts_with("Example:") {
                    missing.push(path.clone());
                }
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "berthctl", &mut missing);
        assert!(missing.is_empty(), "no `Example:` line: {missing:?}");
    }
}
