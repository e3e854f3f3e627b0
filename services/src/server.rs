//! Serving the API: the unix socket (0660, optional group), HTTP/2 tuning for large content
//! streams, and a clean shutdown on SIGTERM/SIGINT.

use std::{os::unix::fs::PermissionsExt, path::Path};

use anyhow::Context as _;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::{config::Config, plugins};

/// Binds the API socket at `path`, replacing a stale one, with mode 0660 and group `gid`.
pub fn bind(path: &Path, gid: u32) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => anyhow::bail!("{} is in use by another daemon", path.display()),
        Err(_) => {
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(e).with_context(|| format!("remove stale {}", path.display()));
            }
        }
    }
    let listener = UnixListener::bind(path).with_context(|| format!("bind {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", path.display()))?;
    if gid != 0 {
        nix::unistd::chown(path, None, Some(nix::unistd::Gid::from_raw(gid)))
            .with_context(|| format!("chown {} to group {gid}", path.display()))?;
    }
    Ok(listener)
}

/// How long open connections (event subscribers, idle clients) may delay the exit after a
/// shutdown signal.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Resolves when the process is asked to stop.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop berthd with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Starts every plugin and serves the API until a shutdown signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.root)
        .with_context(|| format!("create root {}", config.root.display()))?;
    std::fs::create_dir_all(&config.state)
        .with_context(|| format!("create state {}", config.state.display()))?;
    let routes = plugins::init_all(&config).context("starting plugins")?;
    let listener = bind(&config.grpc.address, config.grpc.gid)?;
    tracing::info!(address = %config.grpc.address.display(), version = crate::version::VERSION, "berthd serving");
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let signalled = stopping.clone();
    let serve = tonic::transport::Server::builder()
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            shutdown_signal().await;
            signalled.notify_one();
        });
    tokio::select! {
        served = serve => served.context("serving the API")?,
        _ = async {
            stopping.notified().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => tracing::info!("closing connections still open after the grace period"),
    }
    if let Err(e) = std::fs::remove_file(&config.grpc.address) {
        tracing::warn!(error = %e, "removing the API socket");
    }
    tracing::info!("berthd stopped");
    Ok(())
}
