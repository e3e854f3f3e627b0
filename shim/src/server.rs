//! The long-running shim: listen on the socket, serve `containerd.task.v2.Task` and
//! `containerd.task.v3.Task` (same messages; containerd 1.6/1.7 call v2, 2.x v3) until
//! Shutdown arrives with no container left.

use std::io::Write;
use std::sync::Arc;

use containerd_shim::Flags;
use containerd_shim_protos::shim_async::{Task, create_task};
use containerd_shim_protos::ttrpc::r#async::Server;
use containerd_shim_protos::ttrpc::r#async::transport::Listener;
use tokio::sync::Notify;

use crate::events::Publisher;
use crate::memory::Trimmer;
use crate::service::Service;
use crate::{address, reaper};

/// The service name containerd 2.x calls (the one the generated code registers).
pub const TASK_V3: &str = "containerd.task.v3.Task";
/// The service name containerd 1.6/1.7 call.
pub const TASK_V2: &str = "containerd.task.v2.Task";

/// Tells the `start` process waiting on our stdout how starting went, then detaches
/// stdout from its pipe.
fn report_ready(result: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(result.as_bytes());
    let _ = out.flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        use std::os::fd::AsRawFd;
        // SAFETY: dup2 onto our own stdout descriptor.
        unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    }
}

/// Runs the server for `flags.socket` until shut down.
pub async fn run(flags: &Flags) -> anyhow::Result<()> {
    match serve(flags).await {
        Ok(()) => Ok(()),
        Err(e) => {
            report_ready(&format!("{e:#}"));
            Err(e)
        }
    }
}

async fn serve(flags: &Flags) -> anyhow::Result<()> {
    if flags.socket.is_empty() {
        anyhow::bail!("-socket is required");
    }
    reaper::start()?;
    let ttrpc_address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    let publisher = Publisher::start(&ttrpc_address, &flags.namespace);
    let shutdown = Arc::new(Notify::new());
    let service: Arc<dyn Task + Send + Sync> = Arc::new(Service::new(
        &flags.namespace,
        publisher,
        shutdown.clone(),
        address::socket_path(&flags.socket).into(),
        Trimmer::start(),
    ));
    let v3 = create_task(service.clone());
    let mut v2 = create_task(service);
    let task = v2
        .remove(TASK_V3)
        .ok_or_else(|| anyhow::anyhow!("generated task service has no {TASK_V3}"))?;
    v2.insert(TASK_V2.to_string(), task);
    let listener = match address::listen(&flags.socket) {
        Ok(l) => l,
        Err(e) if address::is_live(&flags.socket) => {
            // Another start of the same group won the race: that shim serves us.
            tracing::info!(error = %e, "shim already running");
            report_ready("ok");
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let listener = Listener::try_from(listener)?;
    let mut server = Server::new()
        .add_listener(listener)
        .register_service(v3)
        .register_service(v2);
    server.start().await?;
    report_ready("ok");
    tracing::info!(socket = %flags.socket, "serving");
    shutdown.notified().await;
    tracing::info!("shutting down");
    // The socket file went when Shutdown was accepted (a successor may own the path now).
    let _ = server.shutdown().await;
    Ok(())
}
