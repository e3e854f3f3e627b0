//! `berthctl completion bash|zsh|fish`: shell completion scripts for the whole command tree.

use clap_complete::Shell;

/// Print a shell completion script for every berthctl command and flag.
///
/// Load it for the current shell, or install it once (bash:
/// `/etc/bash_completion.d/berthctl`, zsh: a file `_berthctl` on `$fpath`, fish:
/// `~/.config/fish/completions/berthctl.fish`).
///
/// Example: `source <(berthctl completion bash)`
#[derive(clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_parser = ["bash", "zsh", "fish"])]
    shell: String,
}

/// Writes the script for `command` (the CLI's own definition) to standard output.
pub fn run(args: Args, command: &mut clap::Command) -> anyhow::Result<()> {
    let shell = match args.shell.as_str() {
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        _ => Shell::Bash,
    };
    clap_complete::generate(shell, command, "berthctl", &mut std::io::stdout());
    Ok(())
}
