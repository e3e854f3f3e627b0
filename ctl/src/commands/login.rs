//! `berthctl login | logout`: registry credentials in a docker `config.json`, which berthd
//! reads at every pull and push (`[registry] docker_config`, by default root's).

use std::{io::BufRead, path::PathBuf};

use anyhow::Context as _;
use base64::Engine as _;

/// Store credentials for a registry (docker `config.json` compatible).
///
/// Example: `echo s3cret | berthctl login --username alice --password-stdin localhost:5000`
#[derive(clap::Args)]
pub struct LoginArgs {
    /// The registry host (`docker.io` for Docker Hub).
    registry: String,
    /// User name.
    #[arg(short, long)]
    username: String,
    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,
    /// The password (prefer --password-stdin).
    #[arg(short, long)]
    password: Option<String>,
    /// The config file (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).
    #[arg(long)]
    config: Option<PathBuf>,
}

/// Remove stored credentials for a registry.
///
/// Example: `berthctl logout localhost:5000`
#[derive(clap::Args)]
pub struct LogoutArgs {
    /// The registry host.
    registry: String,
    /// The config file (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn config_path(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p);
    }
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Ok(PathBuf::from(dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; pass --config")?;
    Ok(PathBuf::from(home).join(".docker/config.json"))
}

/// Docker Hub's credentials live under its historical key.
fn key(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".to_string()
        }
        other => other.to_string(),
    }
}

fn read(path: &PathBuf) -> anyhow::Result<serde_json::Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not valid JSON", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(serde_json::json!({})),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

fn write(path: &PathBuf, value: &serde_json::Value) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    serde_json::to_writer_pretty(&mut file, value)?;
    std::io::Write::write_all(&mut file, b"\n")?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Runs `login`.
pub fn login(args: LoginArgs) -> anyhow::Result<()> {
    let password = match (args.password_stdin, args.password) {
        (true, _) => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (false, Some(p)) => p,
        (false, None) => anyhow::bail!("give the password with --password-stdin (or --password)"),
    };
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    let path = config_path(args.config)?;
    let mut config = read(&path)?;
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", args.username));
    config["auths"][key(&args.registry)] = serde_json::json!({ "auth": auth });
    write(&path, &config)?;
    println!(
        "Credentials for {} stored in {}",
        args.registry,
        path.display()
    );
    Ok(())
}

/// Runs `logout`.
pub fn logout(args: LogoutArgs) -> anyhow::Result<()> {
    let path = config_path(args.config)?;
    let mut config = read(&path)?;
    let removed = config
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .and_then(|a| a.remove(&key(&args.registry)))
        .is_some();
    if removed {
        write(&path, &config)?;
        println!("Removed credentials for {}", args.registry);
    } else {
        println!("Not logged in to {}", args.registry);
    }
    Ok(())
}
